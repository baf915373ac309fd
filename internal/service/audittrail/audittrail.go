// Package audittrail implements agency.v1.AuditService: the control plane's own
// audit trail, and Instantly's audit logs across many workspaces merged by
// time.
package audittrail

import (
	"cmp"
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/instantlyaudit"
	"github.com/agencyplane/agencyplane/internal/service/tokens"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Service implements agencyv1.AuditServiceServer.
type Service struct {
	agencyv1.UnimplementedAuditServiceServer
	audit      store.Audit
	workspaces store.Workspaces // scoped to the caller
	resolver   *resolve.Resolver
	client     *instantly.Client
	pages      *pagetoken.Codec
	engine     *fanout.Engine
}

// New returns the service; ListInstantlyAuditLogs reads the workspaces
// through e.
func New(a store.Audit, ws store.Workspaces, r *resolve.Resolver, c *instantly.Client, pages *pagetoken.Codec, e *fanout.Engine) *Service {
	return &Service{audit: a, workspaces: ws, resolver: r, client: c, pages: pages, engine: e}
}

// ListEvents implements agencyv1.AuditServiceServer.
func (s *Service) ListEvents(ctx context.Context, req *agencyv1.ListEventsRequest) (*agencyv1.ListEventsResponse, error) {
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	var since time.Time
	if req.StartTime != nil {
		since = req.GetStartTime().AsTime()
	}
	hash := pagetoken.Hash("audit-events", req.GetPrincipal(), req.GetMethod(), req.GetWorkspace(), since.String())
	q := store.AuditQuery{Limit: size + 1, Since: since}
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err != nil {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
		q.Before = tok.After
	}
	seeAll, visible := s.eventScope(ctx)
	q.Match = func(e *store.AuditEvent) bool {
		return (req.GetPrincipal() == "" || e.Principal == req.GetPrincipal()) &&
			(req.GetMethod() == "" || e.Method == req.GetMethod()) &&
			(req.GetWorkspace() == "" || slices.Contains(e.Workspaces, req.GetWorkspace())) &&
			(seeAll || (len(e.Workspaces) > 0 && allVisible(e.Workspaces, visible)))
	}
	events, err := s.audit.List(ctx, q)
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListEventsResponse{}
	if len(events) > size {
		events = events[:size]
		out.NextPageToken = s.pages.Encode(pagetoken.Token{After: events[size-1].ID, FilterHash: hash})
	}
	for _, e := range events {
		out.Events = append(out.Events, &agencyv1.AuditEvent{
			Name: "auditEvents/" + e.ID, Time: timestamppb.New(e.Time), Principal: e.Principal, PrincipalEmail: e.PrincipalEmail, Role: tokens.RoleToProto(e.Role),
			Method: e.Method, RequestId: e.RequestID, Workspaces: e.Workspaces, Code: e.Code,
			Succeeded: int32(e.Succeeded), Failed: int32(e.Failed), AlreadyDone: int32(e.AlreadyDone),
		})
	}
	return out, nil
}

// eventScope says whether the caller sees every event, and otherwise which
// workspaces it may see: a scoped caller sees only events about workspaces
// in its scope (events naming none are agency-wide: unscoped callers only).
func (s *Service) eventScope(ctx context.Context) (bool, func(string) bool) {
	p, ok := auth.FromContext(ctx)
	if ok && p.Scope.Empty() {
		return true, nil
	}
	cache := map[string]bool{}
	return false, func(ws string) bool {
		v, ok := cache[ws]
		if !ok {
			_, err := s.workspaces.Get(ctx, ws)
			v = err == nil
			cache[ws] = v
		}
		return v
	}
}

func allVisible(wss []string, visible func(string) bool) bool {
	for _, w := range wss {
		if !visible(w) {
			return false
		}
	}
	return true
}

// MaxWorkspaces bounds one cross-workspace read, as it bounds a unary
// fan-out: a filter that selects more is INVALID_ARGUMENT, never a silent
// cut.
const MaxWorkspaces = 1000

// ListInstantlyAuditLogs implements agencyv1.AuditServiceServer: the
// selected workspaces are read through the fan-out engine (its limits, its
// deadline margin, one result per workspace) and their entries merged
// newest first; a workspace that cannot be read is an error entry with its
// google.rpc.Status and never fails the call.
func (s *Service) ListInstantlyAuditLogs(ctx context.Context, req *agencyv1.ListInstantlyAuditLogsRequest) (*agencyv1.ListInstantlyAuditLogsResponse, error) {
	sel, err := labels.Parse(req.GetFilter())
	if err != nil {
		return nil, apierr.Field("filter", "%s", err.Error())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	params := instantly.ListAuditLogsParams{Limit: size}
	if at := int(req.GetActivityType()); at != 0 {
		params.ActivityType = &at
	}
	if req.StartTime != nil {
		params.StartDate = req.GetStartTime().AsTime().UTC().Format(time.RFC3339)
	}
	if req.EndTime != nil {
		params.EndDate = req.GetEndTime().AsTime().UTC().Format(time.RFC3339)
	}
	wss, err := s.workspaces.List(ctx, store.ListQuery{Limit: MaxWorkspaces + 1, Match: sel.Matches})
	if err != nil {
		return nil, err
	}
	if len(wss) > MaxWorkspaces {
		return nil, apierr.Field("filter", "selects more than %d workspaces; narrow it", MaxWorkspaces)
	}
	byName := make(map[string]*store.Workspace, len(wss))
	names := make([]string, len(wss))
	for i, w := range wss {
		byName[w.Name], names[i] = w, w.Name
	}
	results := fanout.Run(ctx, s.engine, names, func(ctx context.Context, name string) ([]*agencyv1.WorkspaceAuditLog, fanout.Outcome, error) {
		entries, err := s.read(ctx, byName[name], params)
		if err != nil {
			return nil, fanout.Failed, err
		}
		return entries, fanout.Read, nil
	})
	out := &agencyv1.ListInstantlyAuditLogsResponse{}
	for _, r := range results {
		if r.Outcome.Succeeded() {
			out.Entries = append(out.Entries, r.Value...)
			continue
		}
		out.Errors = append(out.Errors, workspaceError(r))
	}
	slices.SortFunc(out.Entries, func(a, b *agencyv1.WorkspaceAuditLog) int {
		return cmp.Or(b.GetEntry().GetTime().AsTime().Compare(a.GetEntry().GetTime().AsTime()), cmp.Compare(a.GetWorkspace(), b.GetWorkspace()))
	})
	if len(out.Entries) > size {
		out.Entries = out.Entries[:size]
	}
	slices.SortFunc(out.Errors, func(a, b *agencyv1.WorkspaceError) int { return cmp.Compare(a.GetWorkspace(), b.GetWorkspace()) })
	return out, nil
}

// workspaceError reports a workspace that was not read: its error as a
// google.rpc.Status, like a fan-out result's; a workspace the deadline
// reached first (not attempted, or cut) is DEADLINE_EXCEEDED.
func workspaceError(r fanout.Result[[]*agencyv1.WorkspaceAuditLog]) *agencyv1.WorkspaceError {
	e := apierr.FromError(r.Err)
	switch {
	case r.Outcome == fanout.NotAttempted:
		e = apierr.Wrap(codes.DeadlineExceeded, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "not attempted before the deadline", r.Err)
	case r.Outcome == fanout.TimedOut || e == nil:
		e = apierr.Wrap(codes.DeadlineExceeded, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "cut by the deadline", r.Err)
	}
	st := e.GRPCStatus()
	return &agencyv1.WorkspaceError{Workspace: r.Workspace, Code: st.Code().String(), Message: st.Message(), Status: st.Proto()}
}

func (s *Service) read(ctx context.Context, w *store.Workspace, p instantly.ListAuditLogsParams) ([]*agencyv1.WorkspaceAuditLog, error) {
	cred, err := s.resolver.Credential(ctx, w)
	if err != nil {
		return nil, err
	}
	page, err := s.client.ListAuditLogs(ctx, cred, p)
	if err != nil {
		return nil, err
	}
	out := make([]*agencyv1.WorkspaceAuditLog, 0, len(page.Items))
	for i := range page.Items {
		out = append(out, &agencyv1.WorkspaceAuditLog{Workspace: w.Name, Entry: instantlyaudit.ToProto(&page.Items[i])})
	}
	return out, nil
}
