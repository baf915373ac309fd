package desiredstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/authz"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/members"
	"github.com/agencyplane/agencyplane/internal/store"
)

func refused(meta, value, format string, args ...any) error {
	return apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, fmt.Sprintf(format, args...)).WithMetadata(meta, value)
}

// ApplyPlan implements agencyv1.DesiredStateServiceServer.
func (s *Service) ApplyPlan(ctx context.Context, req *agencyv1.ApplyPlanRequest) (*longrunningpb.Operation, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	// The table gives ApplyPlan members write; its tag creations need tags
	// write too.
	for _, perm := range []authz.Permission{authz.MembersWrite, authz.TagsWrite} {
		if !authz.Has(p.Role, perm) {
			return nil, apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
				fmt.Sprintf("role %s lacks %s", p.Role, perm)).WithMetadata("permission", string(perm))
		}
	}
	lp, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if lp.rec.ApplyOperation != "" {
		return nil, refused("plan", "applied", "%s was already applied by %s; plan again (or retry that operation)", req.GetName(), lp.rec.ApplyOperation)
	}
	if age := s.opts.Now().Sub(lp.rec.CreateTime); age > s.opts.PlanTTL {
		return nil, refused("plan", "expired", "%s is %s old, older than --plan-ttl (%s); plan again", req.GetName(), age.Round(time.Second), s.opts.PlanTTL)
	}
	// The limits refuse the whole apply before anything is written.
	if vs := lp.doc.Limits.Check(removalsOf(lp.plan.GetWorkspaces())); len(vs) > 0 {
		msgs := make([]string, len(vs))
		for i, v := range vs {
			msgs[i] = v.String()
		}
		return nil, refused("limit", vs[0].Limit, "the plan exceeds its removal limits, nothing was applied: %s", strings.Join(msgs, "; "))
	}
	// The scope applies now too: a workspace relabelled out of the caller's
	// scope since the plan is NOT_FOUND in its result.
	inScope, err := s.visibleNames(ctx)
	if err != nil {
		return nil, err
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	rec := &ops.Record{ID: ops.NewID(), Method: agencyv1.DesiredStateService_ApplyPlan_FullMethodName, Request: data,
		Creator: p.ID, CreatorRole: p.Role, CreatorScope: p.Scope.String(), RequestID: req.GetRequestId()}
	for _, w := range lp.plan.GetWorkspaces() {
		if w.GetStatus() != nil || (len(w.GetChanges()) == 0 && !req.GetReplan()) {
			continue
		}
		rec.Entries = append(rec.Entries, ops.Entry{Workspace: w.GetWorkspace(), Missing: !inScope[w.GetWorkspace()]})
	}
	holder, err := s.store.ClaimApply(ctx, lp.rec.ID, ops.Name(rec.ID), s.opts.Retention)
	if err != nil {
		return nil, err
	}
	if holder != "" {
		return nil, refused("plan", "applied", "%s was already applied by %s; plan again (or retry that operation)", req.GetName(), holder)
	}
	if err := s.manager.Create(ctx, rec); err != nil {
		_ = s.store.ReleaseApply(context.WithoutCancel(ctx), lp.rec.ID, ops.Name(rec.ID))
		return nil, err
	}
	applied := &ds.Applied{Plan: planName(lp.rec.ID), Operation: ops.Name(rec.ID), Source: lp.rec.Source, Creator: p.ID,
		CreatorScope: lp.rec.CreatorScope, ApplyTime: s.opts.Now().UTC()}
	if err := s.store.SetApplied(context.WithoutCancel(ctx), applied); err != nil {
		s.opts.Logger.ErrorContext(ctx, "the applied desired state could not be recorded: drift is measured against the previous one",
			"plan", applied.Plan, "operation", applied.Operation, "error", err.Error())
	}
	_, st, err := s.manager.Backend().Get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	return s.manager.Render(ctx, rec, st)
}

// visibleNames is every workspace name in the caller's scope.
func (s *Service) visibleNames(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	after := ""
	for {
		wss, err := s.scoped.List(ctx, store.ListQuery{After: after, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, w := range wss {
			out[w.Name] = true
		}
		if len(wss) < 1000 {
			return out, nil
		}
		after = wss[len(wss)-1].Name
	}
}

// cachedPlan loads a plan for a worker, cached: stored plans never change
// (but for their claim, which workers do not need).
func (s *Service) cachedPlan(ctx context.Context, id string) (*loadedPlan, error) {
	s.mu.Lock()
	lp, ok := s.plans[id]
	s.mu.Unlock()
	if ok {
		return lp, nil
	}
	lp, err := s.loadPlan(ctx, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if len(s.plans) >= 8 {
		clear(s.plans)
	}
	s.plans[id] = lp
	s.mu.Unlock()
	return lp, nil
}

// Executor returns the ApplyPlan executor New registers (tests wrap it to
// play an interrupted attempt).
func (s *Service) Executor() ops.Executor { return ops.ExecutorFunc(s.execute) }

// execute applies one workspace of a plan (an operation entry of one item).
func (s *Service) execute(ctx context.Context, job *ops.Job) {
	pending := job.Start(ctx)
	if len(pending) == 0 {
		return
	}
	start := time.Now()
	res := s.applyWorkspace(ctx, job, pending[0])
	if res == nil || ctx.Err() != nil {
		// Shutting down: handed back to another worker, whose re-run sees
		// this one's intent.
		return
	}
	res.Duration = durationpb.New(time.Since(start))
	_ = job.Record(ctx, pending[0], res)
}

// failed renders a workspace that failed as a whole; its planned changes
// were not attempted.
func failed(err error, wp *agencyv1.WorkspacePlan) *agencyv1.WorkspaceResult {
	r := &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, Status: apierr.FromError(err).GRPCStatus().Proto()}
	if wp != nil {
		c := proto.Clone(wp).(*agencyv1.WorkspacePlan)
		for _, ch := range c.GetChanges() {
			ch.State = agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED
		}
		r.Payload = &agencyv1.WorkspaceResult_DesiredState{DesiredState: c}
	}
	return r
}

// applyWorkspace re-reads the workspace, decides what to apply and applies
// it. nil means the item is left for another worker (shutdown).
func (s *Service) applyWorkspace(ctx context.Context, job *ops.Job, it ops.Item) *agencyv1.WorkspaceResult {
	name := job.Entry.Workspace
	if job.Entry.Missing {
		return failed(apierr.NotFound("workspace", name), nil)
	}
	req := &agencyv1.ApplyPlanRequest{}
	if err := proto.Unmarshal(job.Rec.Request, req); err != nil {
		return failed(fmt.Errorf("the operation's request cannot be read: %w", err), nil)
	}
	id, _ := parsePlanName(req.GetName())
	lp, err := s.cachedPlan(ctx, id)
	if errors.Is(err, ds.ErrNotFound) {
		return failed(refused("plan", "gone", "%s is no longer stored (kept --operation-retention once applied); plan again", req.GetName()), nil)
	}
	if err != nil {
		return failed(err, nil)
	}
	wps := lp.plan.GetWorkspaces()
	i, ok := slices.BinarySearchFunc(wps, name, func(w *agencyv1.WorkspacePlan, n string) int { return strings.Compare(w.GetWorkspace(), n) })
	if !ok {
		return failed(apierr.NotFound("workspace", name), nil)
	}
	wp := wps[i]
	t, err := s.rawResolver.Resolve(ctx, name)
	if err != nil {
		return failed(err, wp)
	}
	read := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[ds.Observed] {
		return fanout.Do(ctx, s.engine, name, func(ctx context.Context, _ string) (ds.Observed, fanout.Outcome, error) {
			o, err := s.observe(ctx, t.Cred, wp.GetMembersManaged(), wp.GetTagsManaged())
			return o, fanout.Read, err
		})
	})
	if read.Err != nil {
		return failed(read.Err, wp)
	}
	planned := make([]ds.Change, len(wp.GetChanges()))
	for i, c := range wp.GetChanges() {
		planned[i] = changeFromProto(c)
	}
	intent, err := job.Intent(ctx, it)
	if err != nil {
		return failed(err, wp)
	}
	// An earlier attempt of this item wrote (its intent is recorded), or
	// the operation this one retries may have: their own writes changed
	// the fingerprint. Then only what was planned and is still needed is
	// applied (all of the new difference with replan).
	wrote := !intent.IsZero()
	mayHaveWritten := wrote || job.Rec.RetryOf != ""
	changed := ds.Fingerprint(read.Value) != wp.GetFingerprint()
	changes := planned
	if changed || mayHaveWritten {
		if changed && !mayHaveWritten && !req.GetReplan() {
			return failed(refused("workspace", "changed", "%s changed since the plan (its members or tags differ from what was planned against); nothing was written here: plan again, or apply with replan", name), wp)
		}
		want, conflicts := lp.doc.For(name, t.Workspace.Labels)
		if len(conflicts) > 0 {
			return failed(apierr.Field("desired_state", "%s", conflicts[0].String()), wp)
		}
		prov, err := s.provisioned(ctx)
		if err != nil {
			return failed(err, wp)
		}
		want.Provisioned = prov[name]
		now := ds.Compute(want, read.Value).Changes
		if req.GetReplan() {
			changes = now
		} else {
			// Only what was planned and is still needed.
			keep := map[string]bool{}
			for _, c := range now {
				keep[c.Key()] = true
			}
			changes = slices.DeleteFunc(slices.Clone(planned), func(c ds.Change) bool { return !keep[c.Key()] })
		}
	}
	removals := 0
	for _, c := range changes {
		if c.Kind == ds.Remove {
			removals++
		}
	}
	if limit := lp.doc.Limits.MaxRemovalsPerWorkspace; removals > limit {
		return failed(refused("limit", "max_removals_per_workspace", "%s would lose %d members, the limit is %d (max_removals_per_workspace); nothing was written here", name, removals, limit), wp)
	}
	ok, err = s.store.ReserveRemovals(ctx, job.Rec.ID, name, removals, lp.doc.Limits.MaxRemovalsTotal, s.opts.Retention)
	switch {
	case err != nil:
		return failed(err, wp)
	case !ok:
		return failed(refused("limit", "max_removals_total", "the apply's removals would exceed max_removals_total (%d); nothing was written here", lp.doc.Limits.MaxRemovalsTotal), wp)
	}
	if len(changes) > 0 {
		if _, err := job.SetIntent(ctx, it); err != nil {
			return failed(err, wp) // fail closed: no intent, no write
		}
	}
	results := s.applyChanges(ctx, t, name, changes)
	if ctx.Err() != nil {
		return nil // cut by shutdown: the re-run sees the intent and finishes
	}
	return s.outcome(wp, planned, changes, results, wrote)
}

// outcome renders the workspace's result: every planned change with what
// became of it (those no longer needed after an earlier attempt are
// APPLIED: that attempt made them), plus replanned ones.
func (s *Service) outcome(wp *agencyv1.WorkspacePlan, planned, changes []ds.Change, results []*agencyv1.Change, wrote bool) *agencyv1.WorkspaceResult {
	out := proto.Clone(wp).(*agencyv1.WorkspacePlan)
	out.Changes = nil
	done := map[string]*agencyv1.Change{}
	for i, c := range changes {
		done[c.Key()] = results[i]
	}
	for _, c := range planned {
		if r, ok := done[c.Key()]; ok {
			out.Changes = append(out.Changes, r)
			delete(done, c.Key())
			continue
		}
		pc := changeToProto(c)
		pc.State = agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE
		if wrote {
			pc.State = agencyv1.ChangeState_CHANGE_STATE_APPLIED
		}
		out.Changes = append(out.Changes, pc)
	}
	for _, c := range changes { // replanned changes that were not planned
		if r, ok := done[c.Key()]; ok {
			out.Changes = append(out.Changes, r)
			delete(done, c.Key())
		}
	}
	res := &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE,
		Payload: &agencyv1.WorkspaceResult_DesiredState{DesiredState: out}}
	var fails []string
	for _, c := range out.GetChanges() {
		switch c.GetState() {
		case agencyv1.ChangeState_CHANGE_STATE_APPLIED:
			if res.Outcome == agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE {
				res.Outcome = agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED
			}
		case agencyv1.ChangeState_CHANGE_STATE_FAILED:
			if res.Status == nil {
				res.Status = c.GetStatus()
			}
			fails = append(fails, describe(changeFromProto(c))+": "+c.GetStatus().GetMessage())
		}
	}
	if len(fails) > 0 {
		res.Outcome = agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED
		res.Note = fmt.Sprintf("%d of %d changes failed: %s", len(fails), len(out.GetChanges()), strings.Join(fails, "; "))
	}
	return res
}

// applyChanges makes the changes: tags and invites at once (they only
// add), then role changes (promotions first, as ordered) and removals one
// after another, each through the member guard, so no step removes the
// owner or the last admin whatever happened since the read. Each change
// runs under the workspace's in-flight limit.
func (s *Service) applyChanges(ctx context.Context, t *resolve.Target, name string, changes []ds.Change) []*agencyv1.Change {
	out := make([]*agencyv1.Change, len(changes))
	one := func(i int) {
		c := changes[i]
		res := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[agencyv1.ChangeState] {
			return fanout.Do(ctx, s.engine, name, func(ctx context.Context, _ string) (agencyv1.ChangeState, fanout.Outcome, error) {
				st, err := s.applyOne(ctx, t, c)
				return st, fanout.Updated, err
			})
		})
		pc := changeToProto(c)
		switch {
		case res.Err != nil:
			pc.State, pc.Status = agencyv1.ChangeState_CHANGE_STATE_FAILED, apierr.FromError(res.Err).GRPCStatus().Proto()
		default:
			pc.State = res.Value
		}
		out[i] = pc
	}
	var wg sync.WaitGroup
	for i, c := range changes {
		if c.Kind == ds.Tag || c.Kind == ds.Invite {
			wg.Go(func() { one(i) })
		}
	}
	wg.Wait()
	for i, c := range changes {
		if c.Kind == ds.Role || c.Kind == ds.Remove {
			one(i)
		}
	}
	return out
}

// applyOne makes one change, read before write.
func (s *Service) applyOne(ctx context.Context, t *resolve.Target, c ds.Change) (agencyv1.ChangeState, error) {
	switch c.Kind {
	case ds.Tag:
		find := func(ctx context.Context) (*instantly.CustomTag, bool, error) {
			for tag, err := range s.client.AllCustomTags(ctx, t.Cred, instantly.ListCustomTagsParams{Search: strings.TrimSpace(c.Label)}) {
				if err != nil {
					return nil, false, err
				}
				if strings.EqualFold(strings.TrimSpace(tag.Label), strings.TrimSpace(c.Label)) {
					return &tag, true, nil
				}
			}
			return nil, false, nil
		}
		_, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.CustomTag, error) {
			return s.client.CreateCustomTag(ctx, t.Cred, instantly.CreateCustomTagRequest{Label: c.Label})
		}, find)
		if resolve.HTTPStatus(err) == 409 {
			return agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, nil // made meanwhile: present
		}
		return agencyv1.ChangeState_CHANGE_STATE_APPLIED, err
	case ds.Invite:
		_, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceMember, error) {
			return s.client.CreateWorkspaceMember(ctx, t.Cred, instantly.CreateWorkspaceMemberRequest{Email: c.Email, Role: c.Role})
		}, func(ctx context.Context) (*instantly.WorkspaceMember, bool, error) {
			m, err := members.FindByEmail(ctx, s.client, t.Cred, c.Email)
			return m, m != nil, err
		})
		if resolve.HTTPStatus(err) == 409 {
			return agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, nil // invited meanwhile: present counts
		}
		return agencyv1.ChangeState_CHANGE_STATE_APPLIED, err
	case ds.Role, ds.Remove:
		change := memberguard.Removal()
		if c.Kind == ds.Role {
			change = memberguard.SetRole(c.Role)
		}
		res, err := s.guard.Apply(ctx, memberguard.Request{Workspace: t.Workspace, Cred: t.Cred, Member: c.Email, Change: change})
		switch {
		case err != nil:
			return agencyv1.ChangeState_CHANGE_STATE_FAILED, err
		case res.Outcome == memberguard.Unchanged:
			return agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, nil
		case res.Outcome == memberguard.NoSuchMember && c.Kind == ds.Remove:
			return agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, nil
		case res.Outcome == memberguard.NoSuchMember:
			return agencyv1.ChangeState_CHANGE_STATE_FAILED, refused("member", "absent", "%s is no longer a member of %s", c.Email, t.Workspace.Name)
		}
		return agencyv1.ChangeState_CHANGE_STATE_APPLIED, nil
	}
	return agencyv1.ChangeState_CHANGE_STATE_FAILED, fmt.Errorf("desiredstate: unknown change kind %q", c.Kind)
}
