package fanoutsvc

import (
	"slices"
	"strings"
	"testing"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// roles is workspace id → email's role upstream ("" when absent, with "~"
// appended while pending), over a1…a4.
func (f *fleet) roles(t *testing.T, email string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range []string{"a1", "a2", "a3", "a4"} {
		if m := f.e.MemberByEmail(t, f.iid(id), email); m != nil {
			out[id] = m.Role
			if !m.Accepted {
				out[id] += "~"
			}
		} else {
			out[id] = ""
		}
	}
	return out
}

func sameRoles(t *testing.T, got, want map[string]string) {
	t.Helper()
	for id, r := range want {
		if got[id] != r {
			t.Fatalf("roles upstream %v, want %v", got, want)
		}
	}
}

// TestInviteMemberEverywhere: present with the role, or pending, is done
// already; present with another role is skipped with the reason; absent is
// invited. A dry run reports the same and writes nothing; a rerun is all
// done.
func TestInviteMemberEverywhere(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	f.e.AddMember(t, f.iid("a1"), "x@agency.test", "editor", true)
	f.e.AddMember(t, f.iid("a2"), "x@agency.test", "admin", false)
	f.e.AddMember(t, f.iid("a3"), "x@agency.test", "view", true)
	before := map[string]string{"a1": "editor", "a2": "admin~", "a3": "view", "a4": ""}
	perms := []string{instantly.PermissionCampaignsView}
	req := &agencyv1.InviteMemberEverywhereRequest{Selector: all, Email: "X@Agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR, Permissions: perms, DryRun: true}
	want := map[string]string{"a1": "ALREADY_DONE", "a2": "ALREADY_DONE", "a3": "SKIPPED/FailedPrecondition", "a4": "CREATED"}

	resp, err := f.svc.InviteMemberEverywhere(caller(), req)
	wantOutcomes(t, resp, err, want)
	sameRoles(t, f.roles(t, "x@agency.test"), before)
	if !resp.GetDryRun() || slices.ContainsFunc(resp.GetResults(), func(r *agencyv1.WorkspaceResult) bool { return !r.GetDryRun() }) {
		t.Fatalf("a dry run's response and results must say so: %v", resp)
	}

	req.DryRun = false
	resp, err = f.svc.InviteMemberEverywhere(caller(), req)
	wantOutcomes(t, resp, err, want)
	sameRoles(t, f.roles(t, "x@agency.test"), map[string]string{"a1": "editor", "a2": "admin~", "a3": "view", "a4": "editor~"})
	if m := f.e.MemberByEmail(t, f.iid("a4"), "x@agency.test"); !slices.Equal(m.Permissions, perms) {
		t.Fatalf("a4's permissions %v", m.Permissions)
	}
	if s := resp.GetSummary(); s.GetSucceeded() != 1 || s.GetAlreadyDone() != 2 || s.GetSkipped() != 1 || s.GetFailed() != 0 || resp.GetDryRun() {
		t.Fatalf("summary %v", resp)
	}
	// The skipped result shows the member as found, the created one as made.
	if m := resultOf(resp, "workspaces/a3").GetMember(); m.GetRole() != agencyv1.MemberRole_MEMBER_ROLE_VIEW || m.GetName() == "" {
		t.Fatalf("a3 result %v", resultOf(resp, "workspaces/a3"))
	}
	if m := resultOf(resp, "workspaces/a4").GetMember(); !strings.HasPrefix(m.GetName(), "workspaces/a4/members/") || m.GetEmail() != "x@agency.test" {
		t.Fatalf("a4 result %v", resultOf(resp, "workspaces/a4"))
	}

	resp, err = f.svc.InviteMemberEverywhere(caller(), req)
	wantOutcomes(t, resp, err, map[string]string{"a1": "ALREADY_DONE", "a2": "ALREADY_DONE", "a3": "SKIPPED/FailedPrecondition", "a4": "ALREADY_DONE"})

	_, err = f.svc.InviteMemberEverywhere(caller(), &agencyv1.InviteMemberEverywhereRequest{Selector: all, Email: "y@agency.test",
		Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW, Permissions: []string{instantly.PermissionCampaignsView, "campaigns.everything"}})
	servicetest.WantField(t, err, "permissions")
	sameRoles(t, f.roles(t, "y@agency.test"), map[string]string{"a1": "", "a2": "", "a3": "", "a4": ""})
}

// TestMemberChangesEverywhere: role changes and removals go through the
// owner/last-admin guard in each workspace: a1's boss is its last admin,
// a2 has a deputy, a3's boss is only invited, a4 has no boss. Dry runs
// report the outcome and change nothing.
func TestMemberChangesEverywhere(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	boss := "boss@agency.test"
	f.e.AddMember(t, f.iid("a1"), boss, "admin", true)
	f.e.AddMember(t, f.iid("a2"), boss, "admin", true)
	f.e.AddMember(t, f.iid("a2"), "deputy@agency.test", "admin", true)
	f.e.AddMember(t, f.iid("a3"), boss, "admin", false)
	initial := map[string]string{"a1": "admin", "a2": "admin", "a3": "admin~", "a4": ""}
	role := func(r agencyv1.MemberRole, dry bool) (*agencyv1.FanoutResponse, error) {
		return f.svc.UpdateMemberRoleEverywhere(caller(), &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: all, Email: boss, Role: r, DryRun: dry})
	}
	remove := func(email string, dry bool) (*agencyv1.FanoutResponse, error) {
		return f.svc.RemoveMemberEverywhere(caller(), &agencyv1.RemoveMemberEverywhereRequest{Selector: all, Email: email, DryRun: dry})
	}
	view, admin := agencyv1.MemberRole_MEMBER_ROLE_VIEW, agencyv1.MemberRole_MEMBER_ROLE_ADMIN
	steps := []struct {
		what  string
		call  func() (*agencyv1.FanoutResponse, error)
		want  map[string]string
		after map[string]string // boss's roles afterwards
	}{
		{"demote, dry run", func() (*agencyv1.FanoutResponse, error) { return role(view, true) },
			map[string]string{"a1": "FAILED/FailedPrecondition", "a2": "UPDATED", "a3": "UPDATED", "a4": "SKIPPED"}, initial},
		{"same role", func() (*agencyv1.FanoutResponse, error) { return role(admin, false) },
			map[string]string{"a1": "ALREADY_DONE", "a2": "ALREADY_DONE", "a3": "ALREADY_DONE", "a4": "SKIPPED"}, initial},
		{"remove, dry run", func() (*agencyv1.FanoutResponse, error) { return remove(boss, true) },
			map[string]string{"a1": "FAILED/FailedPrecondition", "a2": "DELETED", "a3": "DELETED", "a4": "SKIPPED"}, initial},
		{"demote", func() (*agencyv1.FanoutResponse, error) { return role(view, false) },
			map[string]string{"a1": "FAILED/FailedPrecondition", "a2": "UPDATED", "a3": "UPDATED", "a4": "SKIPPED"},
			map[string]string{"a1": "admin", "a2": "view", "a3": "view~", "a4": ""}},
		{"remove", func() (*agencyv1.FanoutResponse, error) { return remove(boss, false) },
			map[string]string{"a1": "FAILED/FailedPrecondition", "a2": "DELETED", "a3": "DELETED", "a4": "SKIPPED"},
			map[string]string{"a1": "admin", "a2": "", "a3": "", "a4": ""}},
	}
	for _, s := range steps {
		t.Run(s.what, func(t *testing.T) {
			resp, err := s.call()
			wantOutcomes(t, resp, err, s.want)
			sameRoles(t, f.roles(t, boss), s.after)
			// A refusal (CONFLICT) shows the member it protects.
			if r := resultOf(resp, "workspaces/a1"); r.GetMember().GetEmail() != boss || (servicetest.StatusReason(r.GetStatus()) == "CONFLICT") != strings.HasPrefix(s.want["a1"], "FAILED") {
				t.Fatalf("a1 result %v", r)
			}
		})
	}
	// Each workspace's owner is refused: a different person everywhere.
	for _, id := range []string{"a1", "a2"} {
		owner := f.e.State(t, f.iid(id)).Members[0].Email
		resp, err := remove(owner, false)
		want := map[string]string{"a1": "SKIPPED", "a2": "SKIPPED", "a3": "SKIPPED", "a4": "SKIPPED", id: "FAILED/FailedPrecondition"}
		wantOutcomes(t, resp, err, want)
		if f.e.MemberByEmail(t, f.iid(id), owner) == nil {
			t.Fatalf("%s's owner removed", id)
		}
	}
}

// TestListAccess: every member of every selected workspace, pivoted into
// one row per person (emails folded to lower case, sorted); with an email,
// only that person, and workspaces without them are skipped. Nothing of a
// workspace out of scope appears.
func TestListAccess(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	f.e.AddMember(t, f.iid("a1"), "Boss@Agency.test", "admin", true)
	f.e.AddMember(t, f.iid("a2"), "boss@agency.test", "editor", false)
	f.e.AddMember(t, f.iid("b1"), "boss@agency.test", "view", true)
	f.e.AddMember(t, f.iid("b1"), "secret@client-b.test", "admin", true)

	resp, err := f.svc.ListAccess(caller(), &agencyv1.ListAccessRequest{Selector: names("a1", "a2", "b1")})
	wantOutcomes(t, resp, err, map[string]string{"a1": "READ", "a2": "READ", "b1": "FAILED/NotFound"})
	if n := len(resultOf(resp, "workspaces/a1").GetMembers().GetMembers()); n != 2 {
		t.Fatalf("a1 lists %d members, want owner and boss", n)
	}
	var people []string
	for _, p := range resp.GetAccessMatrix() {
		people = append(people, p.GetEmail())
		for _, w := range p.GetWorkspaces() {
			if w.GetWorkspace() == "workspaces/b1" {
				t.Fatalf("b1 leaked into %v", p)
			}
		}
	}
	if len(people) != 3 || !slices.IsSorted(people) || slices.Contains(people, "secret@client-b.test") {
		t.Fatalf("people %v: want boss and the two owners, sorted", people)
	}
	boss := resp.GetAccessMatrix()[slices.Index(people, "boss@agency.test")]
	got := map[string]string{}
	for _, w := range boss.GetWorkspaces() {
		got[w.GetWorkspace()] = w.GetRole().String() + "/" + map[bool]string{true: "accepted", false: "pending"}[w.GetAccepted()]
	}
	if len(got) != 2 || got["workspaces/a1"] != "MEMBER_ROLE_ADMIN/accepted" || got["workspaces/a2"] != "MEMBER_ROLE_EDITOR/pending" {
		t.Fatalf("boss's access %v", got)
	}

	resp, err = f.svc.ListAccess(caller(), &agencyv1.ListAccessRequest{Selector: all, Email: "BOSS@agency.test"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "READ", "a2": "READ", "a3": "SKIPPED", "a4": "SKIPPED"})
	if m := resp.GetAccessMatrix(); len(m) != 1 || m[0].GetEmail() != "boss@agency.test" || len(m[0].GetWorkspaces()) != 2 {
		t.Fatalf("matrix for one email %v", m)
	}
}

// TestListPendingInvitations: only invitations not yet accepted are listed.
func TestListPendingInvitations(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	f.e.AddMember(t, f.iid("a1"), "pending@agency.test", "editor", false)
	f.e.AddMember(t, f.iid("a1"), "joined@agency.test", "editor", true)
	resp, err := f.svc.ListPendingInvitations(caller(), &agencyv1.ListPendingInvitationsRequest{Selector: names("a1", "a2")})
	wantOutcomes(t, resp, err, map[string]string{"a1": "READ", "a2": "READ"})
	var got []string
	for _, m := range resultOf(resp, "workspaces/a1").GetMembers().GetMembers() {
		got = append(got, m.GetEmail())
	}
	if !slices.Equal(got, []string{"pending@agency.test"}) || len(resultOf(resp, "workspaces/a2").GetMembers().GetMembers()) != 0 {
		t.Fatalf("pending: a1 %v, a2 %v", got, resultOf(resp, "workspaces/a2"))
	}
}
