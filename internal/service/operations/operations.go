// Package operations implements google.longrunning.Operations and
// agency.v1.OperationService over internal/operations: thin handlers that
// check visibility (an operation is visible to its creator and to admins
// whose scope covers the creator's; others get NOT_FOUND) and map errors.
package operations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/labels"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
)

// Service implements longrunningpb.OperationsServer and
// agencyv1.OperationServiceServer.
type Service struct {
	longrunningpb.UnimplementedOperationsServer
	agencyv1.UnimplementedOperationServiceServer
	m     *ops.Manager
	pages *pagetoken.Codec
	rules map[string]authz.Rule
	// MaxWait bounds WaitOperation when the caller gives no timeout (and
	// whatever the caller gives).
	maxWait time.Duration
}

// New returns the service.
func New(m *ops.Manager, maxWait time.Duration, pages *pagetoken.Codec) *Service {
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	return &Service{m: m, pages: pages, rules: authz.Rules(), maxWait: maxWait}
}

// Visible reports whether the caller may see an operation: its creator,
// or an admin whose scope covers the creator's scope.
func Visible(p *auth.Principal, rec *ops.Record) bool {
	if p.ID == rec.Creator {
		return true
	}
	if p.Role != auth.RoleAdmin {
		return false
	}
	creatorScope, err := labels.Parse(rec.CreatorScope)
	return err == nil && creatorScope.NarrowerOrEqual(p.Scope)
}

func notFound(name string) error { return apierr.NotFound("operation", name) }

// load returns a visible operation or NOT_FOUND (malformed, unknown,
// expired or not visible alike).
func (s *Service) load(ctx context.Context, name string) (*ops.Record, *ops.Status, error) {
	id, ok := ops.ParseName(name)
	if !ok {
		return nil, nil, notFound(name)
	}
	rec, st, err := s.m.Backend().Get(ctx, id)
	if errors.Is(err, ops.ErrNotFound) {
		return nil, nil, notFound(name)
	}
	if err != nil {
		return nil, nil, err
	}
	p, ok := auth.FromContext(ctx)
	if !ok || !Visible(p, rec) {
		return nil, nil, notFound(name)
	}
	return rec, st, nil
}

// GetOperation implements longrunningpb.OperationsServer.
func (s *Service) GetOperation(ctx context.Context, req *longrunningpb.GetOperationRequest) (*longrunningpb.Operation, error) {
	rec, st, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return s.m.Render(ctx, rec, st)
}

// ListOperations implements longrunningpb.OperationsServer: the caller's
// visible operations, newest first. name must be "operations" (or empty);
// filter is not supported yet and must be empty.
func (s *Service) ListOperations(ctx context.Context, req *longrunningpb.ListOperationsRequest) (*longrunningpb.ListOperationsResponse, error) {
	if n := req.GetName(); n != "" && n != "operations" {
		return nil, apierr.Field("name", "must be \"operations\"")
	}
	if req.GetFilter() != "" {
		return nil, apierr.Field("filter", "filtering operations is not supported; list all and page")
	}
	size, err := apierr.PageSize(req.GetPageSize(), 50, 1000)
	if err != nil {
		return nil, err
	}
	hash := pagetoken.Hash("operations")
	var after *ops.Cursor
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err == nil {
			after, err = parseCursor(tok.After)
		}
		if err != nil {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, notFound("operations")
	}
	recs, err := s.m.Backend().List(ctx, ops.ListQuery{After: after, Limit: size + 1, Match: func(r *ops.Record) bool { return Visible(p, r) }})
	if err != nil {
		return nil, err
	}
	out := &longrunningpb.ListOperationsResponse{}
	for i, rec := range recs {
		if i == size {
			out.NextPageToken = s.pages.Encode(pagetoken.Token{After: cursorString(ops.CursorOf(recs[size-1])), FilterHash: hash})
			break
		}
		_, st, err := s.m.Backend().Get(ctx, rec.ID)
		if errors.Is(err, ops.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		op, err := s.m.Render(ctx, rec, st)
		if err != nil {
			return nil, err
		}
		out.Operations = append(out.Operations, op)
	}
	return out, nil
}

// cursorString renders a page's end for its token: "{id}.{unix ns}". The
// creation time lets the next page start after it even once that
// operation has been deleted (a client deleting what it lists).
func cursorString(c *ops.Cursor) string {
	return c.ID + "." + strconv.FormatInt(c.CreateTime.UnixNano(), 10)
}

func parseCursor(s string) (*ops.Cursor, error) {
	id, ns, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return nil, err
	}
	if _, ok := ops.ParseName(ops.Name(id)); !ok {
		return nil, errors.New("malformed cursor")
	}
	return &ops.Cursor{ID: id, CreateTime: time.Unix(0, n).UTC()}, nil
}

// mayChange: the creator or an admin who sees it may cancel or delete.
func mayChange(ctx context.Context, rec *ops.Record) error {
	if p, ok := auth.FromContext(ctx); ok && (p.ID == rec.Creator || p.Role == auth.RoleAdmin) {
		return nil
	}
	return apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
		"only the operation's creator or an admin may change it")
}

// CancelOperation implements longrunningpb.OperationsServer.
func (s *Service) CancelOperation(ctx context.Context, req *longrunningpb.CancelOperationRequest) (*emptypb.Empty, error) {
	rec, _, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := mayChange(ctx, rec); err != nil {
		return nil, err
	}
	switch err := s.m.Backend().Cancel(ctx, rec.ID); {
	case errors.Is(err, ops.ErrFinished):
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, "the operation has already finished")
	case errors.Is(err, ops.ErrNotFound):
		return nil, notFound(req.GetName())
	case err != nil:
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// DeleteOperation implements longrunningpb.OperationsServer: a finished
// operation and its results are forgotten.
func (s *Service) DeleteOperation(ctx context.Context, req *longrunningpb.DeleteOperationRequest) (*emptypb.Empty, error) {
	rec, _, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if err := mayChange(ctx, rec); err != nil {
		return nil, err
	}
	switch err := s.m.Backend().Delete(ctx, rec.ID); {
	case errors.Is(err, ops.ErrRunning):
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, "the operation is still running: cancel it first")
	case errors.Is(err, ops.ErrNotFound):
		return nil, notFound(req.GetName())
	case err != nil:
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// WaitOperation implements longrunningpb.OperationsServer: it returns when
// the operation ends, or after timeout (default and cap: the service's
// maximum wait, and within the call's deadline) with its current state.
func (s *Service) WaitOperation(ctx context.Context, req *longrunningpb.WaitOperationRequest) (*longrunningpb.Operation, error) {
	rec, _, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	wait := s.maxWait
	if t := req.GetTimeout(); t != nil {
		if err := t.CheckValid(); err != nil || t.AsDuration() < 0 {
			return nil, apierr.Field("timeout", "must be a non-negative duration")
		}
		wait = min(t.AsDuration(), wait)
	}
	if dl, ok := ctx.Deadline(); ok {
		// Answer before the caller's deadline, with a little room.
		wait = min(wait, time.Until(dl)*9/10)
	}
	_, st, err := s.m.Wait(ctx, rec.ID, wait)
	if errors.Is(err, ops.ErrNotFound) {
		return nil, notFound(req.GetName())
	}
	if err != nil {
		return nil, err
	}
	return s.m.Render(context.WithoutCancel(ctx), rec, st)
}

// ListOperationResults implements agencyv1.OperationServiceServer.
func (s *Service) ListOperationResults(ctx context.Context, req *agencyv1.ListOperationResultsRequest) (*agencyv1.ListOperationResultsResponse, error) {
	rec, _, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	n, err := apierr.PageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	size := int64(n)
	hash := pagetoken.Hash("results", rec.ID, strconv.FormatBool(req.GetFailedOnly()))
	after := int64(-1)
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err == nil {
			after, err = strconv.ParseInt(tok.After, 10, 64)
		}
		if err != nil || after < -1 {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
	}
	var indices []int64
	if req.GetFailedOnly() {
		if indices, _, err = s.m.Backend().FailedItems(ctx, rec.ID, after, int(size)+1); err != nil {
			return nil, err
		}
	} else {
		for i := after + 1; i < rec.Total && int64(len(indices)) <= size; i++ {
			indices = append(indices, i)
		}
	}
	out := &agencyv1.ListOperationResultsResponse{TotalSize: rec.Total}
	if int64(len(indices)) > size {
		indices = indices[:size]
		out.NextPageToken = s.pages.Encode(pagetoken.Token{After: strconv.FormatInt(indices[size-1], 10), FilterHash: hash})
	}
	data, err := s.m.Backend().Results(ctx, rec.ID, indices)
	if err != nil {
		return nil, err
	}
	running, err := s.m.Backend().RunningEntries(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	people := peopleOf(rec)
	p, _ := auth.FromContext(ctx)
	for _, i := range indices {
		e, ei := entryOf(rec, i)
		r := &agencyv1.OperationResult{Index: i, State: agencyv1.ItemState_ITEM_STATE_PENDING}
		if d, ok := data[i]; ok {
			res, err := s.m.Decode(rec.ID, i, d)
			if err != nil {
				return nil, apierr.Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "a stored result cannot be read", err)
			}
			if k := res.GetCreatedApiKey(); k != nil && p.ID != rec.Creator {
				// A created key's secret is released to the operation's
				// creator only; an admin who sees the operation sees the key.
				k.Secret = ""
			}
			r.State, r.Result = agencyv1.ItemState_ITEM_STATE_DONE, res
		} else {
			if running[ei] {
				r.State = agencyv1.ItemState_ITEM_STATE_RUNNING
			}
			r.Result = &agencyv1.WorkspaceResult{Workspace: e.Workspace, Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED, DryRun: rec.DryRun}
		}
		if k := i - e.Offset; len(e.People) > 0 && int(e.People[k]) < len(people) {
			r.Result.Email = people[e.People[k]]
		}
		out.Results = append(out.Results, r)
	}
	return out, nil
}

// entryOf finds the entry holding item i.
func entryOf(rec *ops.Record, i int64) (ops.Entry, int) {
	n, _ := slices.BinarySearchFunc(rec.Entries, i, func(e ops.Entry, i int64) int {
		switch {
		case e.Offset+e.Len() <= i:
			return -1
		case e.Offset > i:
			return 1
		}
		return 0
	})
	if n >= len(rec.Entries) {
		return ops.Entry{}, -1
	}
	return rec.Entries[n], n
}

// peopleOf returns the emails of an operation's people, in request order.
func peopleOf(rec *ops.Record) []string {
	req := &agencyv1.OnboardMembersRequest{}
	if rec.Method != agencyv1.FanoutService_OnboardMembers_FullMethodName || proto.Unmarshal(rec.Request, req) != nil {
		return nil
	}
	out := make([]string, len(req.GetPeople()))
	for i, p := range req.GetPeople() {
		out[i] = p.GetEmail()
	}
	return out
}

// RetryOperation implements agencyv1.OperationServiceServer.
func (s *Service) RetryOperation(ctx context.Context, req *agencyv1.RetryOperationRequest) (*longrunningpb.Operation, error) {
	rec, st, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	if rule, ok := s.rules[rec.Method]; !ok || !authz.Has(p.Role, rule.Permission) {
		return nil, apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			fmt.Sprintf("role %s may not run %s", p.Role, rec.Method))
	}
	if st.EndTime.IsZero() {
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, "the operation is still running; wait for it or cancel it first")
	}
	// Every failed or not attempted item, grouped by entry.
	var failed []int64
	for after := int64(-1); ; {
		page, _, err := s.m.Backend().FailedItems(ctx, rec.ID, after, 1000)
		if err != nil {
			return nil, err
		}
		failed = append(failed, page...)
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1]
	}
	retry := &ops.Record{Method: rec.Method, Request: rec.Request, Creator: p.ID, CreatorRole: p.Role,
		CreatorScope: p.Scope.String(), DryRun: rec.DryRun, RetryOf: ops.Name(rec.ID), RequestID: req.GetRequestId()}
	last := -1
	for _, i := range failed {
		e, ei := entryOf(rec, i)
		if ei < 0 {
			continue
		}
		if ei != last {
			// Missing stays missing: a workspace outside the creator's
			// scope must not be reached by retrying.
			retry.Entries = append(retry.Entries, ops.Entry{Workspace: e.Workspace, Missing: e.Missing})
			last = ei
		}
		if len(e.People) > 0 {
			cur := &retry.Entries[len(retry.Entries)-1]
			cur.People = append(cur.People, e.People[i-e.Offset])
		}
	}
	if err := s.m.Create(ctx, retry); err != nil {
		return nil, err
	}
	_, rst, err := s.m.Backend().Get(ctx, retry.ID)
	if err != nil {
		return nil, err
	}
	return s.m.Render(ctx, retry, rst)
}

// Refresh turns a stored answer that names an operation (a replayed
// request_id) into the operation's current state.
func (s *Service) Refresh(ctx context.Context, stored proto.Message) (proto.Message, error) {
	switch m := stored.(type) {
	case *longrunningpb.Operation:
		return s.current(ctx, m)
	case *agencyv1.FanoutResponse:
		if m.GetOperation() == nil {
			return m, nil
		}
		op, err := s.current(ctx, m.GetOperation())
		if err != nil {
			return nil, err
		}
		out := proto.Clone(m).(*agencyv1.FanoutResponse)
		out.Operation = op
		return out, nil
	}
	return stored, nil
}

func (s *Service) current(ctx context.Context, op *longrunningpb.Operation) (*longrunningpb.Operation, error) {
	id, ok := ops.ParseName(op.GetName())
	if !ok {
		return op, nil
	}
	rec, st, err := s.m.Backend().Get(ctx, id)
	if errors.Is(err, ops.ErrNotFound) {
		return op, nil // deleted or expired: the answer as it was
	}
	if err != nil {
		return nil, err
	}
	return s.m.Render(ctx, rec, st)
}
