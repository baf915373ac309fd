package desiredstate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/fanout"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/store"
)

// A long-running CreatePlan (long_running) is an operation of one item per
// selected workspace, whose id is the plan's: each item reads its workspace
// (members once, tags once) and records its WorkspacePlan as the item's
// result. The plan itself is put together from those results, and stored
// as the unary CreatePlan stores it, the first time it is asked for
// (GetPlan, ListPlanWorkspaces, ApplyPlan) after the operation has ended:
// never before every workspace was read, and on any replica.

// startPlan stores the operation reading the workspaces of ps and returns
// the plan's name with it.
func (s *Service) startPlan(ctx context.Context, p *auth.Principal, req *agencyv1.CreatePlanRequest, doc *ds.Doc, ps []planned) (*agencyv1.Plan, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	rec := &ops.Record{ID: ops.NewID(), Method: agencyv1.DesiredStateService_CreatePlan_FullMethodName, Request: data,
		Creator: p.ID, CreatorRole: p.Role, CreatorScope: p.Scope.String()}
	for _, pl := range ps {
		rec.Entries = append(rec.Entries, ops.Entry{Workspace: pl.ws.Name})
	}
	if err := s.manager.Create(ctx, rec); err != nil {
		return nil, err
	}
	_, st, err := s.manager.Backend().Get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	op, err := s.manager.Render(ctx, rec, st)
	if err != nil {
		return nil, err
	}
	return &agencyv1.Plan{Name: planName(rec.ID), Creator: p.ID, CreateTime: timestamppb.New(rec.CreateTime),
		SourceSha256: doc.SHA256, CreateOperation: op}, nil
}

// cachedDoc parses an operation's file once per replica.
func (s *Service) cachedDoc(rec *ops.Record) (*ds.Doc, error) {
	s.mu.Lock()
	doc, ok := s.docs[rec.ID]
	s.mu.Unlock()
	if ok {
		return doc, nil
	}
	req := &agencyv1.CreatePlanRequest{}
	if err := proto.Unmarshal(rec.Request, req); err != nil {
		return nil, fmt.Errorf("the operation's request cannot be read: %w", err)
	}
	doc, err := ds.Parse([]byte(req.GetDesiredState()))
	if err != nil {
		return nil, fmt.Errorf("the operation's file no longer parses: %w", err)
	}
	s.mu.Lock()
	if len(s.docs) >= 8 {
		clear(s.docs)
	}
	s.docs[rec.ID] = doc
	s.mu.Unlock()
	return doc, nil
}

// executeRead reads one workspace of a long-running plan (an operation
// entry of one item).
func (s *Service) executeRead(ctx context.Context, job *ops.Job) {
	pending := job.Start(ctx)
	if len(pending) == 0 {
		return
	}
	start := time.Now()
	wp := s.readWorkspace(ctx, job)
	if ctx.Err() != nil {
		return // shutting down: handed back to another worker
	}
	res := &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ,
		Payload: &agencyv1.WorkspaceResult_DesiredState{DesiredState: wp}, Duration: durationpb.New(time.Since(start))}
	if wp.GetStatus() != nil {
		res.Outcome, res.Status = agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, wp.GetStatus()
	}
	_ = job.Record(ctx, pending[0], res)
}

// readWorkspace plans one workspace as the unary CreatePlan does; one that
// cannot be read carries its status (unreadable).
func (s *Service) readWorkspace(ctx context.Context, job *ops.Job) *agencyv1.WorkspacePlan {
	name := job.Entry.Workspace
	pl := planned{ws: &store.Workspace{Name: name}}
	doc, err := s.cachedDoc(job.Rec)
	if err != nil {
		pl.err = err
		return workspacePlan(pl)
	}
	t, err := s.rawResolver.Resolve(ctx, name)
	if err != nil {
		pl.err = err
		return workspacePlan(pl)
	}
	pl.ws = t.Workspace
	want, conflicts := doc.For(name, t.Workspace.Labels)
	pl.want = want
	if len(conflicts) > 0 { // relabelled since the operation started
		pl.err = apierr.Field("desired_state", "%s", conflicts[0].String())
		return workspacePlan(pl)
	}
	prov, err := s.provisioned(ctx)
	if err != nil {
		pl.err = err
		return workspacePlan(pl)
	}
	pl.want.Provisioned = prov[name]
	read := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[ds.Observed] {
		return fanout.Do(ctx, s.engine, name, func(ctx context.Context, _ string) (ds.Observed, fanout.Outcome, error) {
			o, err := s.observe(ctx, t.Cred, pl.want.Members, len(pl.want.Tags) > 0)
			return o, fanout.Read, err
		})
	})
	if read.Err != nil {
		pl.err = read.Err
		return workspacePlan(pl)
	}
	pl.obs = read.Value
	pl.diff = ds.Compute(pl.want, read.Value)
	return workspacePlan(pl)
}

// buildPlan puts a plan together from its workspaces' plans (in name
// order), as CreatePlan returns and stores it.
func (s *Service) buildPlan(id, creator string, now time.Time, doc *ds.Doc, wps []*agencyv1.WorkspacePlan) *agencyv1.Plan {
	plan := &agencyv1.Plan{Name: planName(id), Creator: creator, CreateTime: timestamppb.New(now),
		ExpireTime: timestamppb.New(now.Add(s.opts.PlanTTL)), SourceSha256: doc.SHA256,
		Limits: &agencyv1.RemovalLimits{MaxRemovalsPerWorkspace: int32(doc.Limits.MaxRemovalsPerWorkspace),
			MaxRemovalsTotal: int32(doc.Limits.MaxRemovalsTotal)},
		Workspaces: wps}
	plan.Fingerprint = planFingerprint(doc.SHA256, plan.GetWorkspaces())
	plan.Summary = summarize(plan.GetWorkspaces())
	for _, v := range doc.Limits.Check(removalsOf(plan.GetWorkspaces())) {
		plan.LimitViolations = append(plan.LimitViolations, v.String())
	}
	return plan
}

// planOfOperation returns the plan of a long-running CreatePlan whose
// operation has ended, putting it together and storing it the first time;
// ds.ErrNotFound when id is no such operation (or one the caller may not
// see); FAILED_PRECONDITION while it runs or when it was cancelled.
func (s *Service) planOfOperation(ctx context.Context, p *auth.Principal, id string) (*loadedPlan, error) {
	rec, st, err := s.manager.Backend().Get(ctx, id)
	if errors.Is(err, ops.ErrNotFound) {
		return nil, ds.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if rec.Method != agencyv1.DesiredStateService_CreatePlan_FullMethodName || rec.RetryOf != "" ||
		!visible(p, &ds.PlanRecord{Creator: rec.Creator, CreatorScope: rec.CreatorScope}) {
		return nil, ds.ErrNotFound
	}
	switch {
	case st.CancelRequested:
		return nil, refused("plan", "cancelled", "%s is not complete: its operation %s was cancelled; plan again", planName(id), ops.Name(id))
	case st.EndTime.IsZero():
		return nil, refused("plan", "reading", "%s is not complete yet: its operation %s has read %d of %d workspaces",
			planName(id), ops.Name(id), st.Done+st.Failed, rec.Total)
	}
	// One assembly at a time on this replica; replicas assembling at once
	// store the same record (its time is the operation's end), and an
	// apply's claim is kept apart from it.
	s.assemble.Lock()
	defer s.assemble.Unlock()
	if lp, err := s.loadPlan(ctx, id); !errors.Is(err, ds.ErrNotFound) {
		return lp, err
	}
	doc, err := s.cachedDoc(rec)
	if err != nil {
		return nil, err
	}
	wps := make([]*agencyv1.WorkspacePlan, 0, len(rec.Entries))
	const chunk = 1000
	for start := 0; start < len(rec.Entries); start += chunk {
		entries := rec.Entries[start:min(start+chunk, len(rec.Entries))]
		idx := make([]int64, len(entries))
		for i, e := range entries {
			idx[i] = e.Offset
		}
		data, err := s.manager.Backend().Results(ctx, id, idx)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			wp := &agencyv1.WorkspacePlan{Workspace: e.Workspace}
			if b, ok := data[e.Offset]; !ok {
				wp.Status = apierr.New(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "the workspace's read left no result").GRPCStatus().Proto()
			} else if r, err := s.manager.Decode(id, e.Offset, b); err != nil {
				wp.Status = apierr.FromError(err).GRPCStatus().Proto()
			} else if r.GetDesiredState() != nil {
				wp = r.GetDesiredState()
			} else { // failed as a whole (cancelled, or its workers kept dying)
				wp.Status = r.GetStatus()
				if wp.Status == nil {
					wp.Status = apierr.New(codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "the workspace was not read").GRPCStatus().Proto()
				}
			}
			wps = append(wps, wp)
		}
	}
	plan := s.buildPlan(id, rec.Creator, st.EndTime.UTC(), doc, wps)
	data, err := proto.Marshal(plan)
	if err != nil {
		return nil, err
	}
	req := &agencyv1.CreatePlanRequest{}
	if err := proto.Unmarshal(rec.Request, req); err != nil {
		return nil, err
	}
	prec := &ds.PlanRecord{ID: id, Creator: rec.Creator, CreatorRole: rec.CreatorRole, CreatorScope: rec.CreatorScope,
		CreateTime: st.EndTime.UTC(), Source: []byte(req.GetDesiredState()), Plan: data}
	if err := s.store.SavePlan(ctx, prec, s.opts.PlanTTL+time.Hour); err != nil {
		return nil, err
	}
	return s.loadPlan(ctx, id)
}
