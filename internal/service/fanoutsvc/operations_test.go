package fanoutsvc

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// withOps turns on f's long-running forms on a manager that is not started
// yet (a test may replace an executor first).
func (f *fleet) withOps(t *testing.T, maxItems int64) *ops.Manager {
	t.Helper()
	m := f.e.NewManager(t)
	f.svc.EnableOperations(OperationOptions{Manager: m, Raw: f.e.Raw, MaxItems: maxItems})
	return m
}

// running is withOps with the manager working.
func (f *fleet) running(t *testing.T, maxItems int64) *ops.Manager {
	t.Helper()
	m := f.withOps(t, maxItems)
	servicetest.Start(t, m)
	return m
}

// itemOutcomes renders an operation's results as "id[ email]" → OUTCOME
// (with "/Code" when the item carries a status), failing t on a result
// whose dry_run differs from dryRun.
func itemOutcomes(t *testing.T, results []*agencyv1.WorkspaceResult, dryRun bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range results {
		if r.GetDryRun() != dryRun {
			t.Fatalf("result %v: dry_run is not %v", r, dryRun)
		}
		k := strings.TrimPrefix(r.GetWorkspace(), "workspaces/")
		if r.GetEmail() != "" {
			k += " " + r.GetEmail()
		}
		o := strings.TrimPrefix(r.GetOutcome().String(), "FANOUT_OUTCOME_")
		if r.GetStatus() != nil {
			o += "/" + codes.Code(r.GetStatus().GetCode()).String()
		}
		out[k] = o
	}
	return out
}

func onboardReq(sel *agencyv1.WorkspaceSelector, emails ...string) *agencyv1.OnboardMembersRequest {
	req := &agencyv1.OnboardMembersRequest{Selector: sel}
	for _, e := range emails {
		req.People = append(req.People, &agencyv1.Person{Email: e, Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW})
	}
	return req
}

// TestOnboardMembersRefused: a person listed twice (ignoring case), an
// unknown permission, a bad selector, no caller, or more items than
// --max-operation-items refuse the whole request: no operation is stored
// and nothing is written. Exactly the bound passes.
func TestOnboardMembersRefused(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	m := f.withOps(t, 4) // not started: what is accepted stays queued
	badPerm := onboardReq(names("a1"), "x@agency.test", "y@agency.test")
	badPerm.People[1].Permissions = []string{instantly.PermissionCampaignsView, "campaigns:fly"}
	for _, c := range []struct {
		what  string
		ctx   context.Context
		req   *agencyv1.OnboardMembersRequest
		code  codes.Code
		field string
	}{
		{"same email twice, ignoring case", caller(), onboardReq(names("a1"), "x@agency.test", "y@agency.test", "X@Agency.Test"), codes.InvalidArgument, "people[2].email"},
		{"unknown permission", caller(), badPerm, codes.InvalidArgument, "people[1].permissions"},
		{"workspaces × people over the bound", caller(), onboardReq(all, "x@agency.test", "y@agency.test"), codes.InvalidArgument, "people"},
		{"bad label selector", caller(), onboardReq(&agencyv1.WorkspaceSelector{LabelSelector: "tier in (gold"}, "x@agency.test"), codes.InvalidArgument, "selector.label_selector"},
		{"no caller", context.Background(), onboardReq(names("a1"), "x@agency.test"), codes.Unauthenticated, ""},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := f.svc.OnboardMembers(c.ctx, c.req)
			servicetest.WantErr(t, err, c.code, c.field, "")
			if recs, err := m.Backend().List(context.Background(), ops.ListQuery{Limit: 10}); err != nil || len(recs) != 0 {
				t.Fatalf("operations stored: %v %v", recs, err)
			}
		})
	}
	// 2 × 2 = 4 items: exactly the bound.
	op, err := f.svc.OnboardMembers(caller(), onboardReq(names("a1", "a2"), "x@agency.test", "y@agency.test"))
	if err != nil {
		t.Fatal(err)
	}
	md := &agencyv1.OperationMetadata{}
	if err := op.GetMetadata().UnmarshalTo(md); err != nil || md.GetTotalItems() != 4 || md.GetWorkspaces() != 2 || op.GetDone() {
		t.Fatalf("operation %v (%v)", op, err)
	}
	// The fan-outs without people count workspaces: the unscoped admin's
	// all is 5.
	_, err = f.svc.EnsureTagEverywhere(servicetest.Admin(), &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3", LongRunning: true})
	servicetest.WantField(t, err, "selector")
	f.noTags(t)
	for id := range f.ws {
		if got := f.e.State(t, f.iid(id)).Members; len(got) != 1 {
			t.Fatalf("%s has members %v", id, got)
		}
	}

	// Without EnableOperations there are no long-running forms.
	plain := New(f.e.Scoped, f.e.Resolver, f.e.Client, f.e.Engine, f.e.Locker, Options{})
	_, err = plain.OnboardMembers(caller(), onboardReq(names("a1"), "x@agency.test"))
	servicetest.WantCode(t, err, codes.Unimplemented)
}

// TestOnboardMembers: one result per workspace × person, each with its
// email: present with the role or pending is ALREADY_DONE, present with
// another role SKIPPED, absent CREATED (with the person's role and
// permissions), out of scope NOT_FOUND like a missing name. A dry run
// reports the same, marked, and writes nothing.
func TestOnboardMembers(t *testing.T) {
	for _, dryRun := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry_run=%v", dryRun), func(t *testing.T) {
			f := newFleet(t, sim.Config{}, Options{})
			m := f.running(t, 0)
			f.e.AddMember(t, f.iid("a1"), "x@agency.test", "editor", true)
			f.e.AddMember(t, f.iid("a2"), "x@agency.test", "admin", true)
			f.e.AddMember(t, f.iid("a3"), "x@agency.test", "admin", false)
			before := map[string]string{"a1": "editor", "a2": "admin", "a3": "admin~", "a4": ""}
			perms := []string{instantly.PermissionCampaignsView}
			req := &agencyv1.OnboardMembersRequest{Selector: names("a1", "a2", "a3", "a4", "b1"), DryRun: dryRun, People: []*agencyv1.Person{
				{Email: "X@Agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR, Permissions: perms},
				{Email: "y@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW},
			}}
			op, err := f.svc.OnboardMembers(caller(), req)
			if err != nil {
				t.Fatal(err)
			}
			st, results := servicetest.OperationResults(t, m, op)
			want := map[string]string{
				"a1 X@Agency.test": "ALREADY_DONE", "a2 X@Agency.test": "SKIPPED/FailedPrecondition",
				"a3 X@Agency.test": "ALREADY_DONE", "a4 X@Agency.test": "CREATED", "b1 X@Agency.test": "FAILED/NotFound",
				"a1 y@agency.test": "CREATED", "a2 y@agency.test": "CREATED", "a3 y@agency.test": "CREATED",
				"a4 y@agency.test": "CREATED", "b1 y@agency.test": "FAILED/NotFound",
			}
			if got := itemOutcomes(t, results, dryRun); !maps.Equal(got, want) {
				t.Fatalf("items %v, want %v", got, want)
			}
			if st.Done != 8 || st.Failed != 2 || st.Outcomes["CREATED"] != 5 {
				t.Fatalf("status %+v", st)
			}
			if got := f.e.State(t, f.iid("b1")).Members; len(got) != 1 {
				t.Fatalf("out-of-scope b1 has members %v", got)
			}
			x, y := f.roles(t, "x@agency.test"), f.roles(t, "y@agency.test")
			if dryRun {
				sameRoles(t, x, before)
				sameRoles(t, y, map[string]string{"a1": "", "a2": "", "a3": "", "a4": ""})
				return
			}
			sameRoles(t, x, map[string]string{"a1": "editor", "a2": "admin", "a3": "admin~", "a4": "editor~"})
			sameRoles(t, y, map[string]string{"a1": "view~", "a2": "view~", "a3": "view~", "a4": "view~"})
			if m := f.e.MemberByEmail(t, f.iid("a4"), "x@agency.test"); !slices.Equal(m.Permissions, perms) {
				t.Fatalf("a4's permissions %v", m.Permissions)
			}
		})
	}
}

// TestOnboardMembersLostAnswers: with half of Instantly's answers to
// committed writes lost, every person is still invited exactly once in
// every workspace: a lost answer is followed by a look, not a second
// create, and the item is CREATED (it made the member).
func TestOnboardMembersLostAnswers(t *testing.T) {
	f := newFleet(t, sim.Config{FaultAfterRate: 0.5, Seed: 11}, Options{})
	m := f.running(t, 0)
	var emails []string
	for i := range 6 {
		emails = append(emails, fmt.Sprintf("p%d@agency.test", i))
	}
	op, err := f.svc.OnboardMembers(caller(), onboardReq(all, emails...))
	if err != nil {
		t.Fatal(err)
	}
	_, results := servicetest.OperationResults(t, m, op)
	for k, o := range itemOutcomes(t, results, false) {
		if o != "CREATED" {
			t.Errorf("%s: %s", k, o)
		}
	}
	var lost int64
	for _, id := range []string{"a1", "a2", "a3", "a4"} {
		s := f.e.Sim.Stats()[f.iid(id)]
		lost += s.FaultsAfter
		if s.DuplicateCreates != 0 {
			t.Errorf("%s: %d duplicate creates", id, s.DuplicateCreates)
		}
		count := map[string]int{}
		for _, mb := range f.e.State(t, f.iid(id)).Members {
			count[mb.Email]++
		}
		for _, e := range emails {
			if count[e] != 1 {
				t.Errorf("%s: %s is there %d times", id, e, count[e])
			}
		}
	}
	if lost == 0 {
		t.Fatal("no answer was lost: the test proves nothing")
	}
}

// TestOnboardMembersInterrupted: an attempt that recorded its intent and
// sent the invite, then stopped before recording the result, is taken
// over; the re-run finds the member and reports CREATED (this operation
// made it), not ALREADY_DONE, and invites nobody twice.
func TestOnboardMembersInterrupted(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	m := f.withOps(t, 0)
	var replica *servicetest.Replica
	var interrupted atomic.Bool
	method := agencyv1.FanoutService_OnboardMembers_FullMethodName
	onboard := f.svc.kinds()[method]
	m.Register(method, ops.ExecutorFunc(func(jctx context.Context, job *ops.Job) {
		req := &agencyv1.OnboardMembersRequest{}
		if err := proto.Unmarshal(job.Rec.Request, req); err != nil {
			t.Error(err)
			return
		}
		if interrupted.CompareAndSwap(false, true) {
			// The first attempt writes person 0's invite, then its replica
			// stops: the entry is handed back with no result.
			it := job.Pending()[0]
			if _, err := job.SetIntent(jctx, it); err != nil {
				t.Error(err)
			}
			if _, err := f.e.Sim.InviteMember(f.iid("a1"), req.GetPeople()[it.Person].GetEmail(), "view"); err != nil {
				t.Error(err)
			}
			replica.Stop()
			return
		}
		f.svc.execute(jctx, job, req, onboard)
	}))
	replica = servicetest.StartReplica(t, m)
	op, err := f.svc.OnboardMembers(caller(), onboardReq(names("a1"), "x@agency.test", "y@agency.test"))
	if err != nil {
		t.Fatal(err)
	}
	replica.Stopped(t)
	servicetest.Start(t, m) // the replica taking over
	_, results := servicetest.OperationResults(t, m, op)
	want := map[string]string{"a1 x@agency.test": "CREATED", "a1 y@agency.test": "CREATED"}
	if got := itemOutcomes(t, results, false); !maps.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	if s := f.e.Sim.Stats()[f.iid("a1")]; s.DuplicateCreates != 0 {
		t.Fatalf("%d duplicate creates", s.DuplicateCreates)
	}
	sameRoles(t, f.roles(t, "y@agency.test"), map[string]string{"a1": "view~"})
}

// TestLongRunningMatchesUnary: each fan-out's long_running form, on an
// identical fleet, ends with the results the unary call returns (same
// outcome and code per workspace, the same dry-run marking) and leaves
// Instantly in the same state.
func TestLongRunningMatchesUnary(t *testing.T) {
	// setup gives every fleet the same starting point.
	setup := func(f *fleet) {
		f.e.AddMember(t, f.iid("a1"), "x@agency.test", "editor", true)
		f.e.AddMember(t, f.iid("a2"), "x@agency.test", "admin", true)
		f.e.AddMember(t, f.iid("a3"), "x@agency.test", "view", false)
	}
	type call func(f *fleet, longRunning bool) (*agencyv1.FanoutResponse, error)
	sel := names("a1", "a2", "a3", "a4", "b1")
	cases := []struct {
		what string
		call call
	}{
		{"InviteMemberEverywhere", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.InviteMemberEverywhere(caller(), &agencyv1.InviteMemberEverywhereRequest{Selector: sel, Email: "x@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR, LongRunning: lr})
		}},
		{"InviteMemberEverywhere dry run", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.InviteMemberEverywhere(caller(), &agencyv1.InviteMemberEverywhereRequest{Selector: sel, Email: "x@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR, DryRun: true, LongRunning: lr})
		}},
		{"UpdateMemberRoleEverywhere", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.UpdateMemberRoleEverywhere(caller(), &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: sel, Email: "x@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW, LongRunning: lr})
		}},
		{"RemoveMemberEverywhere", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.RemoveMemberEverywhere(caller(), &agencyv1.RemoveMemberEverywhereRequest{Selector: sel, Email: "x@agency.test", LongRunning: lr})
		}},
		{"EnsureTagEverywhere", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{LabelSelector: "tier=gold"}, Label: "Q3", LongRunning: lr})
		}},
		{"ListAccess", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.ListAccess(caller(), &agencyv1.ListAccessRequest{Selector: sel, LongRunning: lr})
		}},
		{"ListPendingInvitations", func(f *fleet, lr bool) (*agencyv1.FanoutResponse, error) {
			return f.svc.ListPendingInvitations(caller(), &agencyv1.ListPendingInvitationsRequest{Selector: all, LongRunning: lr})
		}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			unary, lr := newFleet(t, sim.Config{}, Options{}), newFleet(t, sim.Config{}, Options{})
			setup(unary)
			setup(lr)
			m := lr.running(t, 0)
			resp, err := c.call(unary, false)
			want := outcomes(t, resp, err)
			started, err := c.call(lr, true)
			if err != nil {
				t.Fatal(err)
			}
			if started.GetOperation() == nil || len(started.GetResults()) != 0 || started.GetDryRun() != resp.GetDryRun() {
				t.Fatalf("long-running response %v", started)
			}
			_, results := servicetest.OperationResults(t, m, started.GetOperation())
			if got := itemOutcomes(t, results, resp.GetDryRun()); !maps.Equal(got, want) {
				t.Fatalf("operation %v, unary %v", got, want)
			}
			// The same payloads (members found or made, tags made) by name.
			for i, r := range results {
				u := resultOf(resp, r.GetWorkspace())
				if (u.GetPayload() == nil) != (r.GetPayload() == nil) || len(u.GetMembers().GetMembers()) != len(r.GetMembers().GetMembers()) {
					t.Fatalf("item %d: %v, unary %v", i, r, u)
				}
			}
			for _, id := range []string{"a1", "a2", "a3", "a4"} {
				if got, want := memberView(unary.e.State(t, unary.iid(id)).Members), memberView(lr.e.State(t, lr.iid(id)).Members); !slices.Equal(got, want) {
					t.Fatalf("%s: long-running left %v, unary %v", id, got, want)
				}
				if got, want := lr.tagLabels(t, id), unary.tagLabels(t, id); !slices.Equal(got, want) {
					t.Fatalf("%s tags: long-running %v, unary %v", id, got, want)
				}
			}
		})
	}
}

// memberView is a workspace's members as "email role accepted", sorted,
// without the owner (whose address differs per simulator).
func memberView(ms []sim.WorkspaceMember) []string {
	var out []string
	for _, m := range ms {
		if m.Role != sim.RoleOwner {
			out = append(out, fmt.Sprintf("%s %s %v", m.Email, m.Role, m.Accepted))
		}
	}
	slices.Sort(out)
	return out
}

// liveKeys are the ids of Instantly workspace id's keys named name.
func (f *fleet) liveKeys(t *testing.T, id, name string) []string {
	t.Helper()
	var out []string
	for _, k := range f.e.State(t, f.iid(id)).APIKeys {
		if k.Name == name {
			out = append(out, k.ID)
		}
	}
	return out
}

// TestCreateApiKeyOperation: the long-running form creates each
// workspace's key once, its secret in the result; a key of that name made
// before the operation is ALREADY_DONE, with no secret.
func TestCreateApiKeyOperation(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	m := f.running(t, 0)
	old, err := f.e.Sim.CreateAPIKey(f.iid("a1"), "reporting", []string{"campaigns:read"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.CreateApiKeyEverywhere(caller(), &agencyv1.CreateApiKeyEverywhereRequest{Selector: names("a1", "a2", "b1"),
		DisplayName: " reporting ", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER, LongRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	_, results := servicetest.OperationResults(t, m, resp.GetOperation())
	want := map[string]string{"a1": "ALREADY_DONE", "a2": "CREATED", "b1": "FAILED/NotFound"}
	if got := itemOutcomes(t, results, false); !maps.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	for _, r := range results {
		id := strings.TrimPrefix(r.GetWorkspace(), "workspaces/")
		if id == "b1" {
			continue
		}
		live, ck := f.liveKeys(t, id, "reporting"), r.GetCreatedApiKey()
		if len(live) != 1 || ck.GetApiKey().GetId() != live[0] || (ck.GetSecret() != "") != (id == "a2") || (id == "a1" && live[0] != old.ID) {
			t.Fatalf("%s: result %v, live keys %v", id, ck, live)
		}
	}
}

// TestCreateKeyItemAnswersLost: when Instantly loses the answer to every
// key creation, the item fails, and no key made without an answer (whose
// secret reached nobody) is left live, as its error says. One try of the
// item, without the executor's retries, shows it.
func TestCreateKeyItemAnswersLost(t *testing.T) {
	f := newFleet(t, sim.Config{FaultAfterRate: 1}, Options{})
	m := f.withOps(t, 0)
	method := agencyv1.FanoutService_CreateApiKeyEverywhere_FullMethodName
	m.Register(method, ops.ExecutorFunc(func(ctx context.Context, job *ops.Job) {
		req := &agencyv1.CreateApiKeyEverywhereRequest{}
		if err := proto.Unmarshal(job.Rec.Request, req); err != nil {
			t.Error(err)
			return
		}
		tg, cred, err := f.svc.workerTarget(ctx, job)
		if err != nil {
			t.Error(err)
			return
		}
		it := job.Pending()[0]
		r, o, err := f.svc.createKeyItem(ctx, job, it, req, tg, cred)
		_ = job.Record(ctx, it, toResult(fanout.Result[*agencyv1.WorkspaceResult]{Workspace: tg.name, Value: r, Outcome: o, Err: err}))
	}))
	servicetest.Start(t, m)
	resp, err := f.svc.CreateApiKeyEverywhere(caller(), &agencyv1.CreateApiKeyEverywhereRequest{Selector: names("a1"),
		DisplayName: "reporting", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER, LongRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	_, results := servicetest.OperationResults(t, m, resp.GetOperation())
	if got := itemOutcomes(t, results, false); got["a1"] != "FAILED/Unavailable" {
		t.Fatalf("items %v", got)
	}
	if live := f.liveKeys(t, "a1", "reporting"); len(live) != 0 {
		t.Fatalf("keys whose secret nobody received are live: %v (%s)", live, results[0].GetStatus().GetMessage())
	}
}
