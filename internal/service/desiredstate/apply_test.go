package desiredstate

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
)

// apply applies plan p as the planner and returns its operation's name and
// results by workspace id.
func (w *world) apply(t *testing.T, p *agencyv1.Plan) (string, map[string]*agencyv1.WorkspaceResult) {
	t.Helper()
	op, err := w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: p.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	_, results := servicetest.OperationResults(t, w.m, op)
	out := map[string]*agencyv1.WorkspaceResult{}
	for _, r := range results {
		out[strings.TrimPrefix(r.GetWorkspace(), "workspaces/")] = r
	}
	return op.GetName(), out
}

// members is workspace id's members as "email role accepted".
func (w *world) members(t *testing.T, id string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range w.e.State(t, w.iid(id)).Members {
		out[m.Email] = fmt.Sprintf("%s %v", m.Role, m.Accepted)
	}
	return out
}

// TestApplyPlan: the apply is an operation of one item per workspace with
// changes; a workspace as planned gets every change APPLIED (UPDATED), one
// changed by hand since the plan is skipped whole (FAILED_PRECONDITION,
// its changes NOT_ATTEMPTED, nothing written there); a second plan finds
// nothing left to do where it applied; the plan names its operation and
// cannot be applied twice.
func TestApplyPlan(t *testing.T) {
	w := newWorld(t, Options{})
	p := w.plan(t, planner(), agencyFile)
	w.add(t, "a2", "late@agency.test", sim.RoleView, true)
	a2 := w.members(t, "a2")
	a1 := w.members(t, "a1")

	op, results := w.apply(t, p)
	if len(results) != 2 || results["a3"] != nil {
		t.Fatalf("items %v: want a1 and a2 (a3 has nothing to change)", results)
	}
	r := results["a1"]
	if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED || r.GetStatus() != nil {
		t.Fatalf("a1: %v", r)
	}
	planned := wsPlan(p, "a1").GetChanges()
	if got := r.GetDesiredState().GetChanges(); len(got) != len(planned) {
		t.Fatalf("a1 changes %v, planned %v", got, planned)
	}
	for i, c := range r.GetDesiredState().GetChanges() {
		want := proto.Clone(planned[i]).(*agencyv1.Change)
		want.State = agencyv1.ChangeState_CHANGE_STATE_APPLIED
		if !proto.Equal(c, want) {
			t.Errorf("a1 change %d: %v, want %v", i, c, want)
		}
	}
	r = results["a2"]
	if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || codes.Code(r.GetStatus().GetCode()) != codes.FailedPrecondition ||
		len(r.GetDesiredState().GetChanges()) != len(wsPlan(p, "a2").GetChanges()) {
		t.Fatalf("a2: %v", r)
	}
	for _, c := range r.GetDesiredState().GetChanges() {
		if c.GetState() != agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED {
			t.Fatalf("a2 change %v", c)
		}
	}
	if got := w.members(t, "a2"); fmt.Sprint(got) != fmt.Sprint(a2) {
		t.Fatalf("skipped a2 went from %v to %v", a2, got)
	}

	// a1 is as the file says; what the plan kept is as it was.
	again := w.plan(t, planner(), agencyFile)
	if got := wsPlan(again, "a1").GetChanges(); len(got) != 0 {
		t.Fatalf("a1 after the apply still has %v", got)
	}
	after := w.members(t, "a1")
	for _, k := range wsPlan(p, "a1").GetKept() {
		if after[k.GetEmail()] != a1[k.GetEmail()] {
			t.Errorf("kept %s went from %q to %q", k.GetEmail(), a1[k.GetEmail()], after[k.GetEmail()])
		}
	}
	if n := w.e.Requests(w.iid("b1")); n != 0 {
		t.Fatalf("out-of-scope b1 was read %d times", n)
	}

	got, err := w.svc.GetPlan(planner(), &agencyv1.GetPlanRequest{Name: p.GetName()})
	if err != nil || got.GetApplyOperation() != op {
		t.Fatalf("applied plan %v (%v), want apply_operation %s", got, err, op)
	}
	_, err = w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: p.GetName()})
	if servicetest.WantCode(t, err, codes.FailedPrecondition).Metadata["plan"] != "applied" {
		t.Fatalf("second apply: %v", err)
	}
}

// TestApplyPlanOutOfScope: a workspace relabelled out of the applier's
// scope since the plan is NOT_FOUND in the result and untouched.
func TestApplyPlanOutOfScope(t *testing.T) {
	w := newWorld(t, Options{})
	p := w.plan(t, planner(), agencyFile)
	if _, err := w.e.Store.Workspaces().Update(context.Background(), "workspaces/a2", func(ws *store.Workspace) error {
		ws.Labels = map[string]string{"client": "b", "team": "smb"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a2, reads := w.members(t, "a2"), w.e.Requests(w.iid("a2"))
	_, results := w.apply(t, p)
	if r := results["a2"]; r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || codes.Code(r.GetStatus().GetCode()) != codes.NotFound ||
		r.GetPayload() != nil {
		t.Fatalf("a2: %v", r)
	}
	if r := results["a1"]; r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
		t.Fatalf("a1: %v", r)
	}
	if got := w.members(t, "a2"); fmt.Sprint(got) != fmt.Sprint(a2) || w.e.Requests(w.iid("a2")) != reads {
		t.Fatalf("out-of-scope a2 was touched: %v", got)
	}
}

// TestApplyPlanRefused: ApplyPlan refuses, before any operation is stored
// or anything written, a caller without members write, a plan the caller
// may not see or that does not exist, and a plan older than the TTL (one
// exactly that old is applied).
func TestApplyPlanRefused(t *testing.T) {
	w := newWorld(t, Options{})
	p := w.plan(t, planner(), agencyFile)
	before := w.snapshot(t)
	for _, c := range []struct {
		what  string
		setup func()
		ctx   context.Context
		name  string
		code  codes.Code
		meta  string // the refusal's plan metadata
	}{
		{"a manager", nil, who("mgr", auth.RoleManager, "client=a"), p.GetName(), codes.PermissionDenied, ""},
		{"an admin of another client", nil, who("other", auth.RoleAdmin, "client=b"), p.GetName(), codes.NotFound, ""},
		{"no such plan", nil, planner(), "plans/" + ops.NewID(), codes.NotFound, ""},
		{"not a plan name", nil, planner(), "operations/" + ops.NewID(), codes.NotFound, ""},
		{"past the TTL", func() { w.clock.Advance(ttl + time.Second) }, planner(), p.GetName(), codes.FailedPrecondition, "expired"},
	} {
		t.Run(c.what, func(t *testing.T) {
			if c.setup != nil {
				c.setup()
			}
			_, err := w.svc.ApplyPlan(c.ctx, &agencyv1.ApplyPlanRequest{Name: c.name})
			if got := servicetest.WantCode(t, err, c.code).Metadata["plan"]; got != c.meta {
				t.Fatalf("plan metadata %q, want %q (%v)", got, c.meta, err)
			}
			if recs, err := w.m.Backend().List(context.Background(), ops.ListQuery{Limit: 10}); err != nil || len(recs) != 0 {
				t.Fatalf("operations stored: %v %v", recs, err)
			}
			if w.snapshot(t) != before {
				t.Fatal("a refused apply wrote")
			}
		})
	}
	// A plan exactly the TTL old is still applied.
	q := w.plan(t, planner(), agencyFile)
	w.clock.Advance(ttl)
	if _, err := w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: q.GetName()}); err != nil {
		t.Fatalf("a plan the TTL old: %v", err)
	}
}

// TestDrift: reconciling plans the last applied file within its applier's
// scope (b1, outside it, is never read or named); a difference made by hand
// shows with its first sighting, kept across reconciles; GetDrift shows a
// caller only the workspaces in their scope.
func TestDrift(t *testing.T) {
	w := newWorld(t, Options{ReconcileInterval: time.Minute})
	ctx := context.Background()
	root := who("root", auth.RoleAdmin, "")
	d, err := w.svc.GetDrift(root, &agencyv1.GetDriftRequest{})
	if err != nil || !d.GetEnabled() || d.GetInterval().AsDuration() != time.Minute || d.GetPlan() != "" || d.GetCheckTime() != nil {
		t.Fatalf("before any apply: %v (%v)", d, err)
	}
	if err := w.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	p := w.plan(t, planner(), agencyFile)
	_, results := w.apply(t, p)
	for id, r := range results {
		if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
			t.Fatalf("%s: %v", id, r)
		}
	}
	if err := w.svc.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	d, err = w.svc.GetDrift(root, &agencyv1.GetDriftRequest{})
	if err != nil || d.GetPlan() != p.GetName() || len(d.GetItems()) != 0 || len(d.GetErrors()) != 0 || !d.GetCheckTime().AsTime().Equal(w.clock.Now()) {
		t.Fatalf("right after the apply: %v (%v)", d, err)
	}

	// By hand: an undeclared member in a1, and one in b1.
	w.add(t, "a1", "drifter@agency.test", sim.RoleEditor, true)
	w.add(t, "b1", "drifter@agency.test", sim.RoleEditor, true)
	w.clock.Advance(time.Minute)
	first := w.clock.Now()
	for range 2 {
		if err := w.svc.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		d, err = w.svc.GetDrift(root, &agencyv1.GetDriftRequest{})
		if err != nil {
			t.Fatal(err)
		}
		want := &agencyv1.Change{Kind: agencyv1.ChangeKind_CHANGE_KIND_REMOVE, Email: "drifter@agency.test", CurrentRole: agencyv1.MemberRole_MEMBER_ROLE_EDITOR}
		if len(d.GetItems()) != 1 || d.GetItems()[0].GetWorkspace() != "workspaces/a1" || !proto.Equal(d.GetItems()[0].GetChange(), want) ||
			!d.GetItems()[0].GetFirstSeenTime().AsTime().Equal(first) || d.GetSummary().GetRemovals() != 1 ||
			!d.GetCheckTime().AsTime().Equal(w.clock.Now()) {
			t.Fatalf("drift %v; first seen should stay %v", d, first)
		}
		w.clock.Advance(time.Minute)
	}
	other, err := w.svc.GetDrift(who("other", auth.RoleAdmin, "client=b"), &agencyv1.GetDriftRequest{})
	if err != nil || len(other.GetItems()) != 0 || other.GetSummary().GetRemovals() != 0 {
		t.Fatalf("another client's view: %v (%v)", other, err)
	}
	if n := w.e.Requests(w.iid("b1")); n != 0 {
		t.Fatalf("b1, outside the applier's scope, was read %d times", n)
	}
}

// TestLongRunningPlan: a long-running CreatePlan returns the plan's name
// and its reading operation; once that ends, GetPlan finds the same plan
// the unary call makes of the same state (the same workspaces, changes
// and fingerprint), and out-of-scope b1 was not read.
func TestLongRunningPlan(t *testing.T) {
	w := newWorld(t, Options{})
	unary := w.plan(t, planner(), agencyFile)
	lr, err := w.svc.CreatePlan(planner(), &agencyv1.CreatePlanRequest{DesiredState: agencyFile, LongRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := parsePlanName(lr.GetName())
	if lr.GetCreateOperation().GetName() != ops.Name(id) || len(lr.GetWorkspaces()) != 0 {
		t.Fatalf("long-running answer %v", lr)
	}
	_, results := servicetest.OperationResults(t, w.m, lr.GetCreateOperation())
	for _, r := range results {
		if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ {
			t.Fatalf("read %v", r)
		}
	}
	got, err := w.svc.GetPlan(planner(), &agencyv1.GetPlanRequest{Name: lr.GetName(), View: agencyv1.PlanView_PLAN_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GetWorkspaces()) != len(unary.GetWorkspaces()) || got.GetFingerprint() != unary.GetFingerprint() ||
		!proto.Equal(got.GetSummary(), unary.GetSummary()) {
		t.Fatalf("long-running plan %v, unary %v", got, unary)
	}
	for i, wp := range got.GetWorkspaces() {
		if !proto.Equal(wp, unary.GetWorkspaces()[i]) {
			t.Fatalf("workspace %d: %v, unary %v", i, wp, unary.GetWorkspaces()[i])
		}
	}
	if n := w.e.Requests(w.iid("b1")); n != 0 {
		t.Fatalf("out-of-scope b1 was read %d times", n)
	}
}

// TestApplyPlanReplan: with replan, a workspace changed by hand since the
// plan is planned again and the new difference applied: a planned change
// someone else made meanwhile is ALREADY_DONE; a new difference that
// breaks the file's per-workspace removal limit fails the workspace with
// nothing written there.
func TestApplyPlanReplan(t *testing.T) {
	for _, c := range []struct {
		what    string
		by      func(w *world) // the change by hand in a2
		outcome agencyv1.FanoutOutcome
		states  map[string]agencyv1.ChangeState // a2's planned changes by email
		limit   string                          // the failure's limit metadata
	}{
		{"a planned invite made by hand", func(w *world) { w.add(t, "a2", "keep@agency.test", sim.RoleAdmin, false) },
			agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED, map[string]agencyv1.ChangeState{
				"keep@agency.test": agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE,
				"x1@agency.test":   agencyv1.ChangeState_CHANGE_STATE_APPLIED,
				"x2@agency.test":   agencyv1.ChangeState_CHANGE_STATE_APPLIED,
			}, ""},
		{"one removal too many", func(w *world) { w.add(t, "a2", "late@agency.test", sim.RoleView, true) },
			agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, map[string]agencyv1.ChangeState{
				"keep@agency.test": agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED,
				"x1@agency.test":   agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED,
				"x2@agency.test":   agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED,
			}, "max_removals_per_workspace"},
	} {
		t.Run(c.what, func(t *testing.T) {
			w := newWorld(t, Options{})
			p := w.plan(t, planner(), agencyFile)
			c.by(w)
			before := w.members(t, "a2")
			op, err := w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: p.GetName(), Replan: true})
			if err != nil {
				t.Fatal(err)
			}
			_, results := servicetest.OperationResults(t, w.m, op)
			var r *agencyv1.WorkspaceResult
			for _, x := range results {
				if x.GetWorkspace() == "workspaces/a2" {
					r = x
				}
			}
			reason := ""
			if c.limit != "" {
				reason = "CONFLICT"
			}
			if r.GetOutcome() != c.outcome || servicetest.StatusReason(r.GetStatus()) != reason {
				t.Fatalf("a2: %v", r)
			}
			got := map[string]agencyv1.ChangeState{}
			for _, ch := range r.GetDesiredState().GetChanges() {
				got[ch.GetEmail()] = ch.GetState()
			}
			if fmt.Sprint(got) != fmt.Sprint(c.states) {
				t.Fatalf("a2 changes %v, want %v", got, c.states)
			}
			after := w.members(t, "a2")
			if c.limit != "" {
				if !strings.Contains(r.GetStatus().GetMessage(), c.limit) || fmt.Sprint(after) != fmt.Sprint(before) {
					t.Fatalf("a2 refused with %q; members %v, were %v", r.GetStatus().GetMessage(), after, before)
				}
				return
			}
			if _, ok := after["x1@agency.test"]; ok || len(after) != len(before)-2 {
				t.Fatalf("a2 members %v, were %v", after, before)
			}
		})
	}
}

// TestPlanProvisioned: a member the identity provider's mapping gave a
// workspace counts as declared: kept, not removed, and only there.
func TestPlanProvisioned(t *testing.T) {
	w := newWorld(t, Options{}, func(d *Deps) {
		d.Provisioned = func(context.Context) (map[string]map[string]bool, error) {
			return map[string]map[string]bool{"workspaces/a1": {"stray@agency.test": true}}, nil
		}
	})
	p := w.plan(t, planner(), agencyFile)
	for _, c := range wsPlan(p, "a1").GetChanges() {
		if c.GetEmail() == "stray@agency.test" {
			t.Fatalf("a1 still changes %v", c)
		}
	}
	kept := false
	for _, k := range wsPlan(p, "a1").GetKept() {
		kept = kept || (k.GetEmail() == "stray@agency.test" && k.GetReason() == agencyv1.KeptReason_KEPT_REASON_IDENTITY_PROVIDER)
	}
	if !kept {
		t.Fatalf("a1 kept %v", wsPlan(p, "a1").GetKept())
	}
	// a2's undeclared members were not provisioned there: still removed.
	if n := p.GetSummary().GetRemovals(); n != int32(len(wsPlan(p, "a2").GetChanges())-1) {
		t.Fatalf("removals %d: %v", n, wsPlan(p, "a2").GetChanges())
	}
}

// TestApplyPlanInterrupted: an attempt that recorded its intent, made one
// of a workspace's changes and died is taken over; the re-run sees the
// workspace changed by that attempt (not by hand), makes the rest of what
// was planned and reports every planned change APPLIED.
func TestApplyPlanInterrupted(t *testing.T) {
	w := buildWorld(t, Options{})
	var replica *servicetest.Replica
	var interrupted atomic.Bool
	w.m.Register(agencyv1.DesiredStateService_ApplyPlan_FullMethodName, ops.ExecutorFunc(func(ctx context.Context, job *ops.Job) {
		if job.Entry.Workspace == "workspaces/a1" && interrupted.CompareAndSwap(false, true) {
			if _, err := job.SetIntent(ctx, job.Pending()[0]); err != nil {
				t.Error(err)
			}
			if _, err := w.e.Sim.InviteMember(w.iid("a1"), "new@agency.test", sim.RoleEditor); err != nil {
				t.Error(err)
			}
			replica.Stop()
			return
		}
		w.svc.Executor().Run(ctx, job)
	}))
	replica = servicetest.StartReplica(t, w.m)
	p := w.plan(t, planner(), agencyFile)
	op, err := w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: p.GetName()})
	if err != nil {
		t.Fatal(err)
	}
	replica.Stopped(t)
	servicetest.Start(t, w.m)
	_, results := servicetest.OperationResults(t, w.m, op)
	for _, r := range results {
		if r.GetWorkspace() != "workspaces/a1" {
			continue
		}
		if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED || len(r.GetDesiredState().GetChanges()) != len(wsPlan(p, "a1").GetChanges()) {
			t.Fatalf("a1: %v", r)
		}
		for _, c := range r.GetDesiredState().GetChanges() {
			if c.GetState() != agencyv1.ChangeState_CHANGE_STATE_APPLIED {
				t.Fatalf("a1 change %v", c)
			}
		}
	}
	if got := wsPlan(w.plan(t, planner(), agencyFile), "a1").GetChanges(); len(got) != 0 {
		t.Fatalf("a1 after the re-run still has %v", got)
	}
	if s := w.e.Sim.Stats()[w.iid("a1")]; s.DuplicateCreates != 0 {
		t.Fatalf("a1: %d duplicate creates", s.DuplicateCreates)
	}
}
