package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// testClock is the injected clock of plan expiry and drift times.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// agencyFile is the desired state of the tests: three teams, two people,
// tags for one team, client staff unmanaged.
const agencyFile = `version: 1
people:
  - email: ana@agency.example
    access:
      - selector: "team=sdr-west"
        role: editor
      - selector: "team=sdr-east"
        role: view
  - email: bo@agency.example
    access:
      - selector: "team in (sdr-east,smb)"
        role: editor
tags:
  - selector: "team=sdr-west"
    labels: ["Q3 push", "warm"]
unmanaged:
  - "*@client-acme.com"
limits:
  max_removals_per_workspace: 3
  max_removals_total: 50
`

var dsTeams = []string{"sdr-west", "sdr-east", "smb"}

// dsWorld is dozens of registered workspaces seeded with a known mix of
// members, invitations and tags.
type dsWorld struct {
	t     *testing.T
	e     *env
	clock *testClock
	inv   invoker
	n     int
	names []string          // registry names, index = seed number
	ids   map[string]string // registry name → Instantly id
}

// newDSWorld starts agencyd (reconcile: the drift interval, 0 = off) and
// seeds n workspaces; workspace i belongs to team dsTeams[i%3] and holds:
// ana with her declared role (i%4 == 0) or the other one (i%4 == 1), in
// sdr-west and sdr-east; an undeclared temp<i> editor (i%5 == 0); client
// staff jo@client-acme.com as admin (i%6 == 0); a pending invitation of bo
// as editor (i%7 == 0); an undeclared boss as the only admin (i == 3); and
// in sdr-west, the tag "warm" on even i.
func newDSWorld(t *testing.T, b backend, n int, reconcile time.Duration) *dsWorld {
	t.Helper()
	clock := &testClock{}
	redisURL := ""
	if b == redisBackend {
		redisURL = "redis://" + redistest.Start(t).Options().Addr + "/0"
	}
	e := startEnvSim(t, sim.Config{}, redisURL, 0, func(c *config.Config) {
		c.Now = clock.Now
		c.ReconcileInterval = reconcile
	})
	w := &dsWorld{t: t, e: e, clock: clock, inv: grpcInvoker{conn: e.conn, token: testToken}, n: n, ids: map[string]string{}}
	ctx := context.Background()
	for i := range n {
		team := dsTeams[i%3]
		id, key := e.sim.CreateWorkspace(fmt.Sprintf("Client %02d", i))
		name := fmt.Sprintf("workspaces/ws-%02d", i)
		if _, err := e.grpc(testToken).Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: fmt.Sprintf("ws-%02d", i),
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": team, "client": fmt.Sprintf("c%02d", i)}}}); err != nil {
			t.Fatal(err)
		}
		w.names = append(w.names, name)
		w.ids[name] = id
		ana := map[string][2]string{"sdr-west": {"editor", "view"}, "sdr-east": {"view", "editor"}}
		if r, ok := ana[team]; ok && i%4 < 2 {
			w.member(i, "ana@agency.example", r[i%4], true)
		}
		if i%5 == 0 {
			w.member(i, fmt.Sprintf("temp%02d@agency.example", i), "editor", true)
		}
		if i%6 == 0 {
			w.member(i, "jo@client-acme.com", "admin", true)
		}
		if i%7 == 0 {
			w.member(i, "bo@agency.example", "editor", false)
		}
		if i == 3 {
			w.member(i, "boss@agency.example", "admin", true)
		}
		if team == "sdr-west" && i%2 == 0 {
			if err := w.inv.Invoke(ctx, "agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: name, Tag: &agencyv1.Tag{Label: "warm"}}, &agencyv1.Tag{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return w
}

// member adds a member by hand in the simulator (accepted or pending).
func (w *dsWorld) member(i int, email, role string, accepted bool) {
	w.t.Helper()
	m, err := w.e.sim.InviteMember(w.ids[w.names[i]], email, role)
	if err != nil {
		w.t.Fatal(err)
	}
	if accepted {
		if err := w.e.sim.AcceptMember(w.ids[w.names[i]], m.ID); err != nil {
			w.t.Fatal(err)
		}
	}
}

// expected is the plan of workspace i under agencyFile, by the seed's
// construction: its changes and the members it leaves alone.
func (w *dsWorld) expected(i int) (changes, kept []string) {
	team := dsTeams[i%3]
	if team == "sdr-west" {
		changes = append(changes, "+tag Q3 push")
		if i%2 != 0 {
			changes = append(changes, "+tag warm")
		}
	}
	ana := map[string][2]string{"sdr-west": {"editor", "view"}, "sdr-east": {"view", "editor"}}
	if r, ok := ana[team]; ok {
		switch i % 4 {
		case 0:
		case 1:
			changes = append(changes, fmt.Sprintf("~ ana@agency.example %s->%s", r[1], r[0]))
		default:
			changes = append(changes, "+ ana@agency.example "+r[0])
		}
	}
	switch {
	case team != "sdr-west" && i%7 == 0:
		kept = append(kept, "= bo@agency.example pending_invitation")
	case team != "sdr-west":
		changes = append(changes, "+ bo@agency.example editor")
	case i%7 == 0:
		changes = append(changes, "- bo@agency.example")
	}
	if i%5 == 0 {
		changes = append(changes, fmt.Sprintf("- temp%02d@agency.example", i))
	}
	if i%6 == 0 {
		kept = append(kept, "= jo@client-acme.com unmanaged")
	}
	if i == 3 {
		kept = append(kept, "= boss@agency.example last_admin")
	}
	kept = append(kept, "= "+w.owner(i)+" owner")
	slices.Sort(changes)
	slices.Sort(kept)
	return changes, kept
}

func (w *dsWorld) state(i int) sim.WorkspaceState {
	w.t.Helper()
	st, err := w.e.sim.WorkspaceState(w.ids[w.names[i]])
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}

func (w *dsWorld) owner(i int) string {
	for _, m := range w.state(i).Members {
		if m.Role == "owner" {
			return m.Email
		}
	}
	w.t.Fatalf("%s has no owner", w.names[i])
	return ""
}

func roleName(r agencyv1.MemberRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "MEMBER_ROLE_"))
}

// renderPlan is a workspace plan in the notation of expected.
func renderPlan(wp *agencyv1.WorkspacePlan) (changes, kept []string) {
	for _, c := range wp.GetChanges() {
		switch c.GetKind() {
		case agencyv1.ChangeKind_CHANGE_KIND_TAG:
			changes = append(changes, "+tag "+c.GetLabel())
		case agencyv1.ChangeKind_CHANGE_KIND_INVITE:
			changes = append(changes, "+ "+c.GetEmail()+" "+roleName(c.GetRole()))
		case agencyv1.ChangeKind_CHANGE_KIND_ROLE:
			changes = append(changes, fmt.Sprintf("~ %s %s->%s", c.GetEmail(), roleName(c.GetCurrentRole()), roleName(c.GetRole())))
		case agencyv1.ChangeKind_CHANGE_KIND_REMOVE:
			changes = append(changes, "- "+c.GetEmail())
		}
	}
	for _, k := range wp.GetKept() {
		kept = append(kept, "= "+k.GetEmail()+" "+strings.ToLower(strings.TrimPrefix(k.GetReason().String(), "KEPT_REASON_")))
	}
	slices.Sort(changes)
	slices.Sort(kept)
	return changes, kept
}

func (w *dsWorld) plan(inv invoker, file string) *agencyv1.Plan {
	w.t.Helper()
	p := &agencyv1.Plan{}
	if err := inv.Invoke(context.Background(), "agency.v1.DesiredStateService/CreatePlan",
		&agencyv1.CreatePlanRequest{DesiredState: file, View: agencyv1.PlanView_PLAN_VIEW_FULL}, p); err != nil {
		w.t.Fatalf("CreatePlan: %v", err)
	}
	return p
}

func (w *dsWorld) apply(name string, replan bool) (*longrunningpb.Operation, error) {
	op := &longrunningpb.Operation{}
	err := w.inv.Invoke(context.Background(), "agency.v1.DesiredStateService/ApplyPlan", &agencyv1.ApplyPlanRequest{Name: name, Replan: replan}, op)
	return op, err
}

// results applies name and returns each workspace's result once done.
func (w *dsWorld) applyAndWait(name string, replan bool) map[string]*agencyv1.WorkspaceResult {
	w.t.Helper()
	op, err := w.apply(name, replan)
	if err != nil {
		w.t.Fatalf("ApplyPlan: %v", err)
	}
	waitOperation(w.t, w.inv, op.GetName(), time.Minute)
	out := map[string]*agencyv1.WorkspaceResult{}
	for _, r := range allResults(w.t, w.inv, op.GetName(), false) {
		out[r.GetResult().GetWorkspace()] = r.GetResult()
	}
	return out
}

func wantRefused(t *testing.T, err error, code codes.Code, key, value string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != code || errorInfo(st).GetMetadata()[key] != value {
		t.Fatalf("got %v (%v), want %v with %s=%s", err, errorInfo(st).GetMetadata(), code, key, value)
	}
}

// snapshot is every workspace's members and tags, to show nothing changed.
func (w *dsWorld) snapshot() string {
	var b strings.Builder
	for i := range w.n {
		st := w.state(i)
		for _, m := range st.Members {
			fmt.Fprintf(&b, "%s %s %s %v\n", w.names[i], m.Email, m.Role, m.Accepted)
		}
		for _, tg := range st.CustomTags {
			fmt.Fprintf(&b, "%s tag %s\n", w.names[i], tg.Label)
		}
	}
	return b.String()
}

// TestDesiredStatePlanApply: on both backends, with 36 workspaces, the plan
// matches the simulator's state exactly (over gRPC and REST alike) and
// writes nothing, reading each workspace's members once and tags once; a
// hand change after planning makes apply skip that workspace; replan
// applies it; apply converges (a second plan is empty); the owner, the last
// admin and unmanaged members are untouched.
func TestDesiredStatePlanApply(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			w := newDSWorld(t, b, 36, 0)
			before := w.snapshot()
			w.e.sim.ResetStats()
			var plans []*agencyv1.Plan
			for _, inv := range w.e.invokers(testToken) {
				plans = append(plans, w.plan(inv, agencyFile))
			}
			// Nothing is written without an apply; each workspace was read
			// once per plan: its members, and its tags where the file
			// declares some. A list read is its pages plus the empty page
			// that ends it (Instantly's last page still has a cursor): two
			// requests for a list of 1-100, one for an empty one.
			if after := w.snapshot(); after != before {
				t.Fatalf("planning changed the simulator:\n%s\nvs\n%s", before, after)
			}
			const plansMade = 2
			for i, name := range w.names {
				perPlan := int64(2) // members: a page and the empty one
				if dsTeams[i%3] == "sdr-west" {
					perPlan += int64(min(len(w.state(i).CustomTags), 1) + 1) // tags
				}
				want := perPlan * plansMade
				if got := w.e.sim.Stats()[w.ids[name]].Requests; got != want {
					t.Fatalf("%s: %d upstream requests for two plans, want %d", name, got, want)
				}
			}
			p := plans[0]
			for _, other := range plans[1:] {
				a, b := proto.Clone(p).(*agencyv1.Plan), proto.Clone(other).(*agencyv1.Plan)
				for _, x := range []*agencyv1.Plan{a, b} {
					x.Name, x.CreateTime, x.ExpireTime = "", nil, nil
				}
				if !proto.Equal(a, b) {
					t.Fatalf("gRPC and REST plans differ:\n%v\n%v", a, b)
				}
			}
			if len(p.GetWorkspaces()) != w.n || p.GetSummary().GetWorkspaces() != int32(w.n) || len(p.GetLimitViolations()) != 0 {
				t.Fatalf("plan: %d workspaces, summary %v, violations %v", len(p.GetWorkspaces()), p.GetSummary(), p.GetLimitViolations())
			}
			for i, wp := range p.GetWorkspaces() {
				changes, kept := renderPlan(wp)
				wantChanges, wantKept := w.expected(i)
				st := w.state(i)
				if wp.GetWorkspace() != w.names[i] || !slices.Equal(changes, wantChanges) || !slices.Equal(kept, wantKept) ||
					wp.GetObservedMembers() != int32(len(st.Members)) || !wp.GetMembersManaged() || wp.GetStatus() != nil {
					t.Fatalf("%s:\n changes %q\n want    %q\n kept    %q\n want    %q\n %v", w.names[i], changes, wantChanges, kept, wantKept, wp)
				}
				if wp.GetTagsManaged() != (dsTeams[i%3] == "sdr-west") || (wp.GetTagsManaged() && wp.GetObservedTags() != int32(len(st.CustomTags))) {
					t.Fatalf("%s: tags %v", w.names[i], wp)
				}
			}
			// Paging gives the same workspaces.
			var paged []*agencyv1.WorkspacePlan
			for token := ""; ; {
				page := &agencyv1.ListPlanWorkspacesResponse{}
				if err := w.inv.Invoke(context.Background(), "agency.v1.DesiredStateService/ListPlanWorkspaces",
					&agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 7, PageToken: token}, page); err != nil {
					t.Fatal(err)
				}
				paged = append(paged, page.GetWorkspaces()...)
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			if !slices.EqualFunc(paged, p.GetWorkspaces(), func(a, b *agencyv1.WorkspacePlan) bool { return proto.Equal(a, b) }) {
				t.Fatalf("paged %d workspaces, the plan has %d", len(paged), len(p.GetWorkspaces()))
			}
			basic := &agencyv1.Plan{}
			if err := w.inv.Invoke(context.Background(), "agency.v1.DesiredStateService/GetPlan", &agencyv1.GetPlanRequest{Name: p.GetName()}, basic); err != nil ||
				len(basic.GetWorkspaces()) != 0 || basic.GetFingerprint() != p.GetFingerprint() {
				t.Fatalf("GetPlan: %v %v", basic, err)
			}

			// A change by hand after the plan: that workspace is skipped.
			hand := 5
			w.member(hand, "hand1@agency.example", "view", true)
			res := w.applyAndWait(plans[1].GetName(), false)
			for i, name := range w.names {
				r := res[name]
				wantChanges, _ := w.expected(i)
				switch {
				case i == hand:
					if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || codes.Code(r.GetStatus().GetCode()) != codes.FailedPrecondition {
						t.Fatalf("%s changed by hand: %v", name, r)
					}
				case len(wantChanges) == 0:
					if r != nil {
						t.Fatalf("%s has nothing to do, yet a result: %v", name, r)
					}
				default:
					if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED || len(r.GetDesiredState().GetChanges()) != len(wantChanges) {
						t.Fatalf("%s: %v", name, r)
					}
					for _, c := range r.GetDesiredState().GetChanges() {
						if c.GetState() != agencyv1.ChangeState_CHANGE_STATE_APPLIED {
							t.Fatalf("%s: change %v", name, c)
						}
					}
				}
			}
			if _, err := w.apply(plans[1].GetName(), false); err == nil {
				t.Fatal("a plan applied twice")
			} else {
				wantRefused(t, err, codes.FailedPrecondition, "plan", "applied")
			}

			// The next plan has only that workspace left, hand change
			// included; another hand change after it, and replan applies
			// both.
			p2 := w.plan(w.inv, agencyFile)
			if p2.GetSummary().GetChangedWorkspaces() != 1 {
				t.Fatalf("second plan: %v", p2.GetSummary())
			}
			w.member(hand, "hand2@agency.example", "editor", false)
			res = w.applyAndWait(p2.GetName(), true)
			if r := res[w.names[hand]]; r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
				t.Fatalf("replan: %v", r)
			}
			for name, r := range res {
				if name != w.names[hand] && r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE {
					t.Fatalf("replan of an unchanged workspace %s: %v", name, r)
				}
			}

			// Converged: the next plan is empty, and the simulator holds
			// exactly what the file says.
			p3 := w.plan(w.inv, agencyFile)
			if s := p3.GetSummary(); s.GetChangedWorkspaces() != 0 || s.GetInvites()+s.GetRoleChanges()+s.GetRemovals()+s.GetTagCreations() != 0 {
				t.Fatalf("not converged: %v", s)
			}
			for i := range w.n {
				team := dsTeams[i%3]
				got := map[string]string{}
				for _, m := range w.state(i).Members {
					got[m.Email] = m.Role
				}
				want := map[string]string{w.owner(i): "owner"}
				switch team {
				case "sdr-west":
					want["ana@agency.example"] = "editor"
				case "sdr-east":
					want["ana@agency.example"] = "view"
				}
				if team != "sdr-west" {
					want["bo@agency.example"] = "editor"
				}
				if i%6 == 0 {
					want["jo@client-acme.com"] = "admin" // unmanaged: untouched
				}
				if i == 3 {
					want["boss@agency.example"] = "admin" // the last admin stays
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("%s holds %v, want %v", w.names[i], got, want)
				}
				if st := w.e.sim.Stats()[w.ids[w.names[i]]]; st.DuplicateCreates != 0 || st.RateLimited != 0 {
					t.Fatalf("%s: %+v", w.names[i], st)
				}
			}
		})
	}
}

// TestDesiredStateGuardRails: each guard rail refuses what it must, and
// nothing is written when it does.
func TestDesiredStateGuardRails(t *testing.T) {
	w := newDSWorld(t, memoryBackend, 12, 0)
	ctx := context.Background()
	before := w.snapshot()

	t.Run("invalid file", func(t *testing.T) {
		err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/CreatePlan",
			&agencyv1.CreatePlanRequest{DesiredState: "version: 1\npeople:\n  - email: nope\n    access: [{selector: team=smb, role: boss}]\n"}, &agencyv1.Plan{})
		wantFieldLines(t, err, "line 3: people[0].email", "line 4: people[0].access[0].role")
	})
	t.Run("two roles in one workspace", func(t *testing.T) {
		file := "version: 1\npeople:\n  - email: ana@agency.example\n    access:\n      - {selector: team=smb, role: view}\n      - {selector: client=c02, role: admin}\n"
		err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/CreatePlan", &agencyv1.CreatePlanRequest{DesiredState: file}, &agencyv1.Plan{})
		wantFieldLines(t, err, "lines 5 and 6 give ana@agency.example two roles (view and admin) in workspaces/ws-02")
	})
	t.Run("removal limits", func(t *testing.T) {
		for limit, file := range map[string]string{
			"max_removals_total":         strings.Replace(agencyFile, "max_removals_total: 50", "max_removals_total: 1", 1),
			"max_removals_per_workspace": strings.Replace(agencyFile, "max_removals_per_workspace: 3", "max_removals_per_workspace: 1", 1),
		} {
			p := w.plan(w.inv, file)
			if len(p.GetLimitViolations()) == 0 || !strings.HasPrefix(p.GetLimitViolations()[len(p.GetLimitViolations())-1], limit) {
				t.Fatalf("%s: violations %q", limit, p.GetLimitViolations())
			}
			_, err := w.apply(p.GetName(), false)
			wantRefused(t, err, codes.FailedPrecondition, "limit", limit)
		}
	})
	t.Run("plan older than the TTL", func(t *testing.T) {
		p := w.plan(w.inv, agencyFile)
		w.clock.Advance(time.Hour + time.Minute)
		defer w.clock.Advance(-(time.Hour + time.Minute))
		_, err := w.apply(p.GetName(), false)
		wantRefused(t, err, codes.FailedPrecondition, "plan", "expired")
	})
	t.Run("unknown plan", func(t *testing.T) {
		_, err := w.apply("plans/aaaaaaaaaaaaaaaaaaaaaaaaaa", false)
		if status.Code(err) != codes.NotFound {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a plan is its creator's", func(t *testing.T) {
		p := w.plan(w.inv, agencyFile)
		var created agencyv1.CreateTokenResponse
		if err := w.inv.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_MANAGER}}, &created); err != nil {
			t.Fatal(err)
		}
		mgr := grpcInvoker{conn: w.e.conn, token: created.GetSecret()}
		if err := mgr.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan", &agencyv1.GetPlanRequest{Name: p.GetName()}, &agencyv1.Plan{}); status.Code(err) != codes.NotFound {
			t.Fatalf("another caller's plan: %v", err)
		}
		// A manager plans (members read) but cannot apply (members write).
		mp := w.plan(mgr, agencyFile)
		err := mgr.Invoke(ctx, "agency.v1.DesiredStateService/ApplyPlan", &agencyv1.ApplyPlanRequest{Name: mp.GetName()}, &longrunningpb.Operation{})
		if status.Code(err) != codes.PermissionDenied {
			t.Fatalf("a manager applied: %v", err)
		}
	})
	if after := w.snapshot(); after != before {
		t.Fatalf("a refused apply wrote:\n%s\nvs\n%s", before, after)
	}
	t.Run("replan promotes before it removes", func(t *testing.T) {
		// Planned while keeper was an admin beside second; keeper is then
		// demoted by hand, so second is the last admin: replan makes keeper
		// admin again first, and only then removes second (through the
		// member guard, which would refuse it otherwise).
		file := "version: 1\npeople:\n  - email: keeper@agency.example\n    access: [{selector: client=c01, role: admin}]\n"
		w.member(1, "keeper@agency.example", "admin", true)
		w.member(1, "second@agency.example", "admin", true)
		p := w.plan(w.inv, file)
		changes, _ := renderPlan(p.GetWorkspaces()[0])
		if !slices.Contains(changes, "- second@agency.example") {
			t.Fatalf("plan %q", changes)
		}
		// keeper is demoted by hand (through agencyd, another path).
		if err := w.inv.Invoke(ctx, "agency.v1.MemberService/UpdateMemberRole", &agencyv1.UpdateMemberRoleRequest{
			Name: w.names[1] + "/members/keeper@agency.example", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{}); err != nil {
			t.Fatal(err)
		}
		res := w.applyAndWait(p.GetName(), true)
		r := res[w.names[1]]
		// Replan: keeper is made admin again first, so second may go.
		if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
			t.Fatalf("%v", r)
		}
		got := map[string]string{}
		for _, m := range w.state(1).Members {
			got[m.Email] = m.Role
		}
		if got["keeper@agency.example"] != "admin" || got["second@agency.example"] != "" || got[w.owner(1)] != "owner" {
			t.Fatalf("members %v", got)
		}
	})
	t.Run("request_id replays the apply", func(t *testing.T) {
		p := w.plan(w.inv, "version: 1\ntags:\n  - selector: client=c09\n    labels: [replayed]\n")
		req := &agencyv1.ApplyPlanRequest{Name: p.GetName(), RequestId: "0190c2a4-0000-7000-8000-00000000d5a1"}
		var names []string
		for range 2 {
			op := &longrunningpb.Operation{}
			if err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/ApplyPlan", req, op); err != nil {
				t.Fatal(err)
			}
			names = append(names, op.GetName())
		}
		if names[0] != names[1] {
			t.Fatalf("a retried ApplyPlan started %v", names)
		}
		waitOperation(t, w.inv, names[0], time.Minute)
		n := 0
		for _, tg := range w.state(9).CustomTags {
			if tg.Label == "replayed" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d tags made", n)
		}
	})
	t.Run("a re-run after an interrupted attempt applies only what is left", func(t *testing.T) {
		file := "version: 1\npeople:\n  - email: ana@agency.example\n    access: [{selector: client=c07, role: view}]\n" +
			"  - email: cy@agency.example\n    access: [{selector: client=c07, role: editor}]\n" +
			"tags:\n  - selector: client=c07\n    labels: [crash]\n"
		p := w.plan(w.inv, file)
		changes, _ := renderPlan(p.GetWorkspaces()[0])
		if want := []string{"+ ana@agency.example view", "+ cy@agency.example editor", "+tag crash", "- bo@agency.example"}; !slices.Equal(changes, want) {
			t.Fatalf("plan %q, want %q", changes, want)
		}
		// The first attempt recorded its intent and invited ana, then its
		// replica died; the re-run finds the workspace changed by that write.
		real := w.e.app.DesiredState.Executor()
		var once sync.Once
		w.e.app.Operations.Register(agencyv1.DesiredStateService_ApplyPlan_FullMethodName, ops.ExecutorFunc(func(ctx context.Context, job *ops.Job) {
			once.Do(func() {
				if _, err := job.SetIntent(ctx, job.Pending()[0]); err != nil {
					t.Error(err)
				}
				w.member(7, "ana@agency.example", "view", false)
			})
			real.Run(ctx, job)
		}))
		defer w.e.app.Operations.Register(agencyv1.DesiredStateService_ApplyPlan_FullMethodName, real)
		res := w.applyAndWait(p.GetName(), false)
		r := res[w.names[7]]
		if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
			t.Fatalf("re-run: %v", r)
		}
		for _, c := range r.GetDesiredState().GetChanges() {
			if c.GetState() != agencyv1.ChangeState_CHANGE_STATE_APPLIED {
				t.Fatalf("change %v", c)
			}
		}
		got := map[string]string{}
		for _, m := range w.state(7).Members {
			got[m.Email] = m.Role
		}
		if got["ana@agency.example"] != "view" || got["cy@agency.example"] != "editor" || got["bo@agency.example"] != "" {
			t.Fatalf("members %v", got)
		}
		if d := w.e.sim.Stats()[w.ids[w.names[7]]].DuplicateCreates; d != 0 {
			t.Fatalf("%d duplicate creates", d)
		}
	})
	t.Run("retry applies what was planned and is still needed", func(t *testing.T) {
		file := "version: 1\npeople:\n  - email: ana@agency.example\n    access: [{selector: client=c10, role: view}]\n" +
			"  - email: bo@agency.example\n    access: [{selector: client=c10, role: editor}]\n"
		p := w.plan(w.inv, file)
		changes, _ := renderPlan(p.GetWorkspaces()[0])
		if want := []string{"+ ana@agency.example view", "+ bo@agency.example editor", "- temp10@agency.example"}; !slices.Equal(changes, want) {
			t.Fatalf("plan %q, want %q", changes, want)
		}
		w.member(10, "bo@agency.example", "editor", false) // by hand, after the plan
		op, err := w.apply(p.GetName(), false)
		if err != nil {
			t.Fatal(err)
		}
		waitOperation(t, w.inv, op.GetName(), time.Minute)
		if r := allResults(t, w.inv, op.GetName(), false); len(r) != 1 || codes.Code(r[0].GetResult().GetStatus().GetCode()) != codes.FailedPrecondition {
			t.Fatalf("skipped: %v", r)
		}
		retry := &longrunningpb.Operation{}
		if err := w.inv.Invoke(ctx, "agency.v1.OperationService/RetryOperation", &agencyv1.RetryOperationRequest{Name: op.GetName()}, retry); err != nil {
			t.Fatal(err)
		}
		waitOperation(t, w.inv, retry.GetName(), time.Minute)
		r := allResults(t, w.inv, retry.GetName(), false)
		if len(r) != 1 || r[0].GetResult().GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED {
			t.Fatalf("retry: %v", r)
		}
		states := map[string]agencyv1.ChangeState{}
		for _, c := range r[0].GetResult().GetDesiredState().GetChanges() {
			states[c.GetEmail()] = c.GetState()
		}
		if states["ana@agency.example"] != agencyv1.ChangeState_CHANGE_STATE_APPLIED || states["temp10@agency.example"] != agencyv1.ChangeState_CHANGE_STATE_APPLIED ||
			states["bo@agency.example"] != agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE {
			t.Fatalf("change states %v", states)
		}
		got := map[string]string{}
		for _, m := range w.state(10).Members {
			got[m.Email] = m.Role
		}
		if got["ana@agency.example"] != "view" || got["bo@agency.example"] != "editor" || got["temp10@agency.example"] != "" {
			t.Fatalf("members %v", got)
		}
	})
}

// wantFieldLines: INVALID_ARGUMENT on desired_state, a violation per
// problem naming its line.
func wantFieldLines(t *testing.T, err error, fragments ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("got %v, want INVALID_ARGUMENT", err)
	}
	var descs []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() != "desired_state" {
					t.Fatalf("violation on %s", v.GetField())
				}
				descs = append(descs, v.GetDescription())
			}
		}
	}
	for _, f := range fragments {
		if !slices.ContainsFunc(descs, func(d string) bool { return strings.Contains(d, f) }) {
			t.Fatalf("violations %q lack %q", descs, f)
		}
	}
}

// TestDesiredStateDrift: with --reconcile-interval, drift appears within
// one interval of a change by hand, keeps its first sighting, shows in the
// metric, and clears after an apply.
func TestDesiredStateDrift(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			const interval = time.Second
			w := newDSWorld(t, b, 12, interval)
			ctx := context.Background()
			drift := func() *agencyv1.Drift {
				d := &agencyv1.Drift{}
				if err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/GetDrift", &agencyv1.GetDriftRequest{}, d); err != nil {
					t.Fatal(err)
				}
				return d
			}
			if d := drift(); !d.GetEnabled() || d.GetPlan() != "" || len(d.GetItems()) != 0 {
				t.Fatalf("before any apply: %v", d)
			}
			p := w.plan(w.inv, agencyFile)
			w.applyAndWait(p.GetName(), false)
			// Converged: a reconcile after the apply finds nothing.
			applied := time.Now()
			waitDrift(t, drift, 3*interval, func(d *agencyv1.Drift) bool {
				return d.GetCheckTime().AsTime().After(applied) && len(d.GetItems()) == 0
			})
			if d := drift(); d.GetPlan() != p.GetName() {
				t.Fatalf("drift against %q, want %q", d.GetPlan(), p.GetName())
			}
			// By hand: someone undeclared joins a workspace.
			w.member(4, "drifter@agency.example", "editor", true)
			changed := time.Now()
			d := waitDrift(t, drift, interval+500*time.Millisecond, func(d *agencyv1.Drift) bool { return len(d.GetItems()) == 1 })
			t.Logf("drift seen %v after the hand change (interval %v)", time.Since(changed).Round(time.Millisecond), interval)
			it := d.GetItems()[0]
			if it.GetWorkspace() != w.names[4] || it.GetChange().GetKind() != agencyv1.ChangeKind_CHANGE_KIND_REMOVE ||
				it.GetChange().GetEmail() != "drifter@agency.example" || d.GetSummary().GetRemovals() != 1 {
				t.Fatalf("drift %v", d)
			}
			first := it.GetFirstSeenTime().AsTime()
			if m := metric(t, w.e, `agencyplane_drift_items{kind="remove"}`); m != "1" {
				t.Fatalf("metric remove = %q", m)
			}
			// The next round still sees it, since the same moment.
			seen := d.GetCheckTime().AsTime()
			d = waitDrift(t, drift, 3*interval, func(d *agencyv1.Drift) bool { return d.GetCheckTime().AsTime().After(seen) })
			if len(d.GetItems()) != 1 || !d.GetItems()[0].GetFirstSeenTime().AsTime().Equal(first) {
				t.Fatalf("first seen moved: %v vs %v", d.GetItems(), first)
			}
			// Applying the file again clears it.
			w.applyAndWait(w.plan(w.inv, agencyFile).GetName(), false)
			waitDrift(t, drift, 3*interval, func(d *agencyv1.Drift) bool { return len(d.GetItems()) == 0 })
			if m := metric(t, w.e, `agencyplane_drift_items{kind="remove"}`); m != "0" {
				t.Fatalf("metric remove = %q after the apply", m)
			}
		})
	}
}

// waitDrift polls GetDrift until ok or limit.
func waitDrift(t *testing.T, get func() *agencyv1.Drift, limit time.Duration, ok func(*agencyv1.Drift) bool) *agencyv1.Drift {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d := get()
		if ok(d) {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("drift not as wanted within %v: %v", limit, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric reads one sample from /metrics.
func metric(t *testing.T, e *env, series string) string {
	t.Helper()
	resp, err := http.Get(e.httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v
		}
	}
	return ""
}
