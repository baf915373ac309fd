package desiredstate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

// agencyFile is the file the tests plan. Every selector line is unique, so
// a change's line is found by its text (lineOf).
const agencyFile = `version: 1
people:
  - email: keep@agency.test
    access:
      - selector: "team"
        role: admin
  - email: promote@agency.test
    access:
      - selector: "team=sdr"
        role: admin
  - email: pend@agency.test
    access:
      - selector: "team in (sdr)"
        role: view
  - email: new@agency.test
    access:
      - selector: "team=sdr,client=a"
        role: editor
tags:
  - selector: "team in (sdr, x)"
    labels: ["WARM", "Q3 push"]
  - selector: "tier=gold"
    labels: ["gold"]
unmanaged:
  - "*@client.test"
limits:
  max_removals_per_workspace: 2
  max_removals_total: 20
`

// lineOf is the 1-based line of file holding text.
func lineOf(t *testing.T, file, text string) int32 {
	t.Helper()
	for i, l := range strings.Split(file, "\n") {
		if strings.Contains(l, text) {
			return int32(i + 1)
		}
	}
	t.Fatalf("%q is not in the file", text)
	return 0
}

// world is a desired-state service over four workspaces: a1 (team=sdr), a2
// (team=smb) and a3 (tier=gold, selected only by a tags entry) of client a,
// the planner's scope, and b1 (team=sdr) of client b outside it.
type world struct {
	e     *servicetest.Env
	svc   *Service
	m     *ops.Manager
	clock *fakeclock.Clock
	ws    map[string]servicetest.Workspace
	owner map[string]string // id → the owner's email
}

const ttl = time.Hour

// newWorld builds the world with its operations manager working; tweaks
// adjust the service's dependencies.
func newWorld(t *testing.T, o Options, tweaks ...func(*Deps)) *world {
	t.Helper()
	w := buildWorld(t, o, tweaks...)
	servicetest.Start(t, w.m)
	return w
}

// buildWorld is newWorld with the manager not started.
func buildWorld(t *testing.T, o Options, tweaks ...func(*Deps)) *world {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{})
	w := &world{e: e, m: e.NewManager(t), clock: fakeclock.New(time.Now().UTC()), ws: map[string]servicetest.Workspace{}, owner: map[string]string{}}
	o.PlanTTL, o.Now = ttl, w.clock.Now
	d := Deps{Scoped: e.Scoped, Raw: e.Store.Workspaces(), Resolver: e.Resolver, RawResolver: e.Raw, Client: e.Client,
		Engine: e.Engine, Locker: e.Locker, Manager: w.m, Store: ds.NewMemory(w.clock.Now), Pages: e.Pages}
	for _, tw := range tweaks {
		tw(&d)
	}
	svc, err := New(d, o)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = svc
	for id, lbls := range map[string]map[string]string{
		"a1": {"client": "a", "team": "sdr"}, "a2": {"client": "a", "team": "smb"},
		"a3": {"client": "a", "tier": "gold"}, "b1": {"client": "b", "team": "sdr"},
	} {
		w.ws[id] = e.Register(t, id, lbls)
		for _, m := range e.State(t, w.ws[id].InstantlyID).Members {
			w.owner[id] = m.Email
		}
	}
	// a1: keep is as declared, promote's role differs, pend's invitation
	// is pending, stray is undeclared, boss unmanaged; new is missing.
	w.add(t, "a1", "keep@agency.test", sim.RoleAdmin, true)
	w.add(t, "a1", "promote@agency.test", sim.RoleView, true)
	w.add(t, "a1", "pend@agency.test", sim.RoleView, false)
	w.add(t, "a1", "stray@agency.test", sim.RoleEditor, true)
	w.add(t, "a1", "boss@client.test", sim.RoleEditor, true)
	w.tag(t, "a1", "warm")
	// a2: its only admin is undeclared (kept: the last admin), two more
	// undeclared members are removed, keep is invited.
	w.add(t, "a2", "solo@agency.test", sim.RoleAdmin, true)
	w.add(t, "a2", "x1@agency.test", sim.RoleView, true)
	w.add(t, "a2", "x2@agency.test", sim.RoleView, false)
	// a3: only tags are managed; its undeclared member stays.
	w.add(t, "a3", "other@agency.test", sim.RoleEditor, true)
	w.tag(t, "a3", "Gold")
	// b1 would change, were it in scope.
	w.add(t, "b1", "stray@agency.test", sim.RoleEditor, true)
	e.Sim.ResetStats()
	return w
}

func (w *world) iid(id string) string { return w.ws[id].InstantlyID }

func (w *world) add(t *testing.T, id, email, role string, accepted bool) {
	t.Helper()
	w.e.AddMember(t, w.iid(id), email, role, accepted)
}

func (w *world) tag(t *testing.T, id, label string) {
	t.Helper()
	if _, err := w.e.Client.CreateCustomTag(context.Background(), instantly.Credential{APIKey: w.ws[id].APIKey}, instantly.CreateCustomTagRequest{Label: label}); err != nil {
		t.Fatal(err)
	}
}

// snapshot is every workspace's members and tags, to compare before and
// after something that must write nothing.
func (w *world) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, id := range []string{"a1", "a2", "a3", "b1"} {
		st := w.e.State(t, w.iid(id))
		for _, m := range st.Members {
			fmt.Fprintf(&b, "%s %s %s %v\n", id, m.Email, m.Role, m.Accepted)
		}
		for _, tg := range st.CustomTags {
			fmt.Fprintf(&b, "%s tag %s\n", id, tg.Label)
		}
	}
	return b.String()
}

// who is a caller with its own token id (servicetest.As names callers by
// role only).
func who(id, role, selector string) context.Context {
	p := &auth.Principal{ID: "tokens/" + id, Role: role}
	if selector != "" {
		p.Scope = labels.MustParse(selector)
	}
	return auth.WithPrincipal(context.Background(), p)
}

// planner is the admin of client a who plans and applies.
func planner() context.Context { return who("planner", auth.RoleAdmin, "client=a") }

func (w *world) plan(t *testing.T, ctx context.Context, file string) *agencyv1.Plan {
	t.Helper()
	p, err := w.svc.CreatePlan(ctx, &agencyv1.CreatePlanRequest{DesiredState: file, View: agencyv1.PlanView_PLAN_VIEW_FULL})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// wsPlan is the plan of workspace id, or nil.
func wsPlan(p *agencyv1.Plan, id string) *agencyv1.WorkspacePlan {
	for _, w := range p.GetWorkspaces() {
		if w.GetWorkspace() == "workspaces/"+id {
			return w
		}
	}
	return nil
}

// TestCreatePlanRefused: a file that does not validate is INVALID_ARGUMENT
// with one desired_state violation per problem, each naming its line; so is
// a file giving one person two roles in one workspace (only the labels
// reveal it) and one selecting more workspaces than allowed. Nothing is
// read from Instantly for any of them.
func TestCreatePlanRefused(t *testing.T) {
	w := newWorld(t, Options{MaxWorkspaces: 3})
	twoRoles := strings.Replace(agencyFile, `      - selector: "team=sdr,client=a"
        role: editor`, `      - selector: "team=sdr,client=a"
        role: editor
      - selector: "client=a,team"
        role: view`, 1)
	badRoles := strings.Replace(strings.Replace(agencyFile, "role: view", "role: boss", 1), "role: editor", "role: chief", 1)
	for _, c := range []struct {
		what string
		ctx  context.Context
		file string
		code codes.Code
		want []string // every violation's description contains its want
	}{
		{"not YAML", planner(), "version: 1\npeople: [\n", codes.InvalidArgument, []string{"line "}},
		{"every problem with its line", planner(), badRoles, codes.InvalidArgument, []string{
			fmt.Sprintf("line %d: people[2].access[0].role", lineOf(t, badRoles, "role: boss")),
			fmt.Sprintf("line %d: people[3].access[0].role", lineOf(t, badRoles, "role: chief")),
		}},
		{"two roles in one workspace", planner(), twoRoles, codes.InvalidArgument, []string{
			fmt.Sprintf("lines %d and %d give new@agency.test two roles (editor and view) in workspaces/a1",
				lineOf(t, twoRoles, `"team=sdr,client=a"`), lineOf(t, twoRoles, `"client=a,team"`)),
		}},
		{"more workspaces than allowed", who("all", auth.RoleAdmin, ""), agencyFile, codes.InvalidArgument, []string{"more than 3 workspaces"}},
		{"no caller", context.Background(), agencyFile, codes.Unauthenticated, nil},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := w.svc.CreatePlan(c.ctx, &agencyv1.CreatePlanRequest{DesiredState: c.file})
			vs := apierr.FromError(err).Violations
			servicetest.WantCode(t, err, c.code)
			if len(vs) != len(c.want) {
				t.Fatalf("violations %v, want %d", vs, len(c.want))
			}
			for i, v := range vs {
				if v.GetField() != "desired_state" || !strings.Contains(v.GetDescription(), c.want[i]) {
					t.Fatalf("violation %d: %v, want desired_state with %q", i, v, c.want[i])
				}
			}
			for id, s := range w.e.Sim.Stats() {
				if s.Requests != 0 {
					t.Fatalf("%s was read %d times", id, s.Requests)
				}
			}
		})
	}
}

// TestCreatePlan: the plan is the difference between the file and what the
// simulator holds, workspace by workspace (changes in apply order with
// their lines, members kept and why), within the caller's scope only (b1
// is neither read nor named); it writes nothing, expires after the TTL,
// and is visible to its creator and to admins whose scope covers theirs.
func TestCreatePlan(t *testing.T) {
	w := newWorld(t, Options{})
	before := w.snapshot(t)
	p := w.plan(t, planner(), agencyFile)
	if got := w.snapshot(t); got != before {
		t.Fatalf("planning wrote:\n%s\nwas\n%s", got, before)
	}
	if n := w.e.Requests(w.iid("b1")); n != 0 {
		t.Fatalf("out-of-scope b1 was read %d times", n)
	}

	line := func(text string) int32 { return lineOf(t, agencyFile, text) }
	role := func(r string) agencyv1.MemberRole {
		return agencyv1.MemberRole(agencyv1.MemberRole_value["MEMBER_ROLE_"+strings.ToUpper(r)])
	}
	want := map[string]struct {
		changes       []*agencyv1.Change
		kept          []*agencyv1.KeptMember
		members, tags bool
	}{
		"a1": {changes: []*agencyv1.Change{
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_TAG, Label: "Q3 push", Line: line(`"team in (sdr, x)"`)},
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_INVITE, Email: "new@agency.test", Role: role("editor"), Line: line(`"team=sdr,client=a"`)},
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_ROLE, Email: "promote@agency.test", Role: role("admin"), CurrentRole: role("view"), Line: line(`"team=sdr"`)},
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_REMOVE, Email: "stray@agency.test", CurrentRole: role("editor")},
		}, kept: []*agencyv1.KeptMember{
			{Email: "boss@client.test", Role: role("editor"), Reason: agencyv1.KeptReason_KEPT_REASON_UNMANAGED},
			{Email: w.owner["a1"], Role: role("owner"), Reason: agencyv1.KeptReason_KEPT_REASON_OWNER},
			{Email: "pend@agency.test", Role: role("view"), Reason: agencyv1.KeptReason_KEPT_REASON_PENDING_INVITATION},
		}, members: true, tags: true},
		"a2": {changes: []*agencyv1.Change{
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_INVITE, Email: "keep@agency.test", Role: role("admin"), Line: line(`"team"`)},
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_REMOVE, Email: "x1@agency.test", CurrentRole: role("view")},
			{Kind: agencyv1.ChangeKind_CHANGE_KIND_REMOVE, Email: "x2@agency.test", CurrentRole: role("view"), Pending: true},
		}, kept: []*agencyv1.KeptMember{
			{Email: w.owner["a2"], Role: role("owner"), Reason: agencyv1.KeptReason_KEPT_REASON_OWNER},
			{Email: "solo@agency.test", Role: role("admin"), Reason: agencyv1.KeptReason_KEPT_REASON_LAST_ADMIN},
		}, members: true},
		"a3": {tags: true},
	}
	var names []string
	for _, wp := range p.GetWorkspaces() {
		names = append(names, wp.GetWorkspace())
	}
	if !slices.Equal(names, []string{"workspaces/a1", "workspaces/a2", "workspaces/a3"}) {
		t.Fatalf("plan's workspaces %v", names)
	}
	for id, c := range want {
		wp := wsPlan(p, id)
		if len(wp.GetChanges()) != len(c.changes) || len(wp.GetKept()) != len(c.kept) {
			t.Fatalf("%s: changes %v, kept %v", id, wp.GetChanges(), wp.GetKept())
		}
		for i, ch := range c.changes {
			if !proto.Equal(wp.GetChanges()[i], ch) {
				t.Errorf("%s change %d: %v, want %v", id, i, wp.GetChanges()[i], ch)
			}
		}
		for i, k := range c.kept {
			got := wp.GetKept()[i]
			if got.GetEmail() != k.GetEmail() || got.GetRole() != k.GetRole() || got.GetReason() != k.GetReason() || got.GetDetail() == "" {
				t.Errorf("%s kept %d: %v, want %v", id, i, got, k)
			}
		}
		// What was read is counted where the file manages it.
		st := w.e.State(t, w.iid(id))
		observed, tags := int32(len(st.Members)), int32(len(st.CustomTags))
		if !c.members {
			observed = 0
		}
		if !c.tags {
			tags = 0
		}
		if wp.GetMembersManaged() != c.members || wp.GetTagsManaged() != c.tags || wp.GetObservedMembers() != observed ||
			wp.GetObservedTags() != tags || wp.GetStatus() != nil || !strings.HasPrefix(wp.GetFingerprint(), "sha256:") {
			t.Errorf("%s: %v", id, wp)
		}
	}
	s := p.GetSummary()
	if s.GetWorkspaces() != 3 || s.GetChangedWorkspaces() != 2 || s.GetInvites() != 2 || s.GetRoleChanges() != 1 ||
		s.GetRemovals() != 3 || s.GetTagCreations() != 1 || s.GetKept() != 5 || s.GetFailedWorkspaces() != 0 {
		t.Errorf("summary %v", s)
	}
	if _, ok := parsePlanName(p.GetName()); !ok || p.GetCreator() != "tokens/planner" || len(p.GetLimitViolations()) != 0 ||
		p.GetLimits().GetMaxRemovalsPerWorkspace() != 2 || p.GetLimits().GetMaxRemovalsTotal() != 20 ||
		!p.GetExpireTime().AsTime().Equal(p.GetCreateTime().AsTime().Add(ttl)) || !p.GetCreateTime().AsTime().Equal(w.clock.Now()) {
		t.Errorf("plan %v", p)
	}

	// The plan as stored; the basic view leaves the workspaces out.
	for _, c := range []struct {
		what  string
		ctx   context.Context
		found bool
	}{
		{"its creator", planner(), true},
		{"an unscoped admin", who("root", auth.RoleAdmin, ""), true},
		{"an admin of another client", who("other", auth.RoleAdmin, "client=b"), false},
		{"a manager of the same client", who("mgr", auth.RoleManager, "client=a"), false},
	} {
		t.Run(c.what, func(t *testing.T) {
			got, err := w.svc.GetPlan(c.ctx, &agencyv1.GetPlanRequest{Name: p.GetName(), View: agencyv1.PlanView_PLAN_VIEW_FULL})
			if !c.found {
				servicetest.WantCode(t, err, codes.NotFound)
				return
			}
			if err != nil || !proto.Equal(got, p) {
				t.Fatalf("GetPlan: %v (%v)", got, err)
			}
			basic, err := w.svc.GetPlan(c.ctx, &agencyv1.GetPlanRequest{Name: p.GetName()})
			if err != nil || len(basic.GetWorkspaces()) != 0 || basic.GetFingerprint() != p.GetFingerprint() {
				t.Fatalf("basic view: %v (%v)", basic, err)
			}
		})
	}
	changed, err := w.svc.ListPlanWorkspaces(planner(), &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), ChangedOnly: true})
	if err != nil || changed.GetTotalSize() != 2 || len(changed.GetWorkspaces()) != 2 || changed.GetWorkspaces()[1].GetWorkspace() != "workspaces/a2" {
		t.Fatalf("changed only: %v (%v)", changed, err)
	}
}

// TestPlanLimitViolations: a plan beyond the file's removal limits says
// which, and ApplyPlan refuses it whole, naming the limit.
func TestPlanLimitViolations(t *testing.T) {
	for _, c := range []struct{ limits, limit string }{
		{"max_removals_per_workspace: 1\n  max_removals_total: 20", "max_removals_per_workspace"},
		{"max_removals_per_workspace: 2\n  max_removals_total: 2", "max_removals_total"},
	} {
		t.Run(c.limit, func(t *testing.T) {
			w := newWorld(t, Options{})
			file := strings.Replace(agencyFile, "max_removals_per_workspace: 2\n  max_removals_total: 20", c.limits, 1)
			p := w.plan(t, planner(), file)
			if len(p.GetLimitViolations()) != 1 || !strings.HasPrefix(p.GetLimitViolations()[0], c.limit+":") {
				t.Fatalf("violations %v", p.GetLimitViolations())
			}
			before := w.snapshot(t)
			_, err := w.svc.ApplyPlan(planner(), &agencyv1.ApplyPlanRequest{Name: p.GetName()})
			if servicetest.WantCode(t, err, codes.FailedPrecondition).Metadata["limit"] != c.limit {
				t.Fatalf("refusal %v", err)
			}
			if got := w.snapshot(t); got != before {
				t.Fatal("a refused apply wrote")
			}
		})
	}
}
