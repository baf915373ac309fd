package fanoutsvc

import (
	"slices"
	"testing"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestEnsureTagEverywhere: a tag whose label matches ignoring case and
// surrounding space is reused; elsewhere it is created trimmed, with its
// description. The dry run writes nothing.
func TestEnsureTagEverywhere(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	pre, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: names("a1"), Label: "Q3 Push"})
	wantOutcomes(t, pre, err, map[string]string{"a1": "CREATED"})
	req := &agencyv1.EnsureTagEverywhereRequest{Selector: names("a1", "a2"), Label: "  q3 push ", Description: "autumn", DryRun: true}

	resp, err := f.svc.EnsureTagEverywhere(caller(), req)
	wantOutcomes(t, resp, err, map[string]string{"a1": "ALREADY_DONE", "a2": "CREATED"})
	if got := f.tagLabels(t, "a2"); len(got) != 0 || resultOf(resp, "workspaces/a2").GetTag() != nil {
		t.Fatalf("dry run wrote %v", got)
	}

	req.DryRun = false
	resp, err = f.svc.EnsureTagEverywhere(caller(), req)
	wantOutcomes(t, resp, err, map[string]string{"a1": "ALREADY_DONE", "a2": "CREATED"})
	if got := f.tagLabels(t, "a1"); !slices.Equal(got, []string{"Q3 Push"}) {
		t.Fatalf("a1 tags %v", got)
	}
	tags := f.e.State(t, f.iid("a2")).CustomTags
	if len(tags) != 1 || tags[0].Label != "q3 push" || tags[0].Description == nil || *tags[0].Description != "autumn" {
		t.Fatalf("a2 tags %+v", tags)
	}
	if tag := resultOf(resp, "workspaces/a2").GetTag(); tag.GetName() != "workspaces/a2/tags/"+tags[0].ID {
		t.Fatalf("a2 result %v", tag)
	}
	if tag := resultOf(resp, "workspaces/a1").GetTag(); tag.GetLabel() != "Q3 Push" || tag.GetName() != pre.GetResults()[0].GetTag().GetName() {
		t.Fatalf("a1 result %v", tag)
	}
}

// TestDeleteTagEverywhere: the tag is deleted where a label matches,
// skipped where none does; the dry run names what it would delete.
func TestDeleteTagEverywhere(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	for _, c := range []struct{ id, label string }{{"a1", "Old"}, {"a2", "OLD"}, {"a3", "Older"}} {
		resp, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: names(c.id), Label: c.label})
		wantOutcomes(t, resp, err, map[string]string{c.id: "CREATED"})
	}
	want := map[string]string{"a1": "DELETED", "a2": "DELETED", "a3": "SKIPPED", "a4": "SKIPPED"}
	resp, err := f.svc.DeleteTagEverywhere(caller(), &agencyv1.DeleteTagEverywhereRequest{Selector: all, Label: " old", DryRun: true})
	wantOutcomes(t, resp, err, want)
	if resultOf(resp, "workspaces/a2").GetTag().GetLabel() != "OLD" || len(f.tagLabels(t, "a1")) != 1 {
		t.Fatalf("dry run: %v, a1 tags %v", resp, f.tagLabels(t, "a1"))
	}
	resp, err = f.svc.DeleteTagEverywhere(caller(), &agencyv1.DeleteTagEverywhereRequest{Selector: all, Label: " old"})
	wantOutcomes(t, resp, err, want)
	if tag := resultOf(resp, "workspaces/a1").GetTag(); tag.GetLabel() != "Old" || tag.GetName() == "" {
		t.Fatalf("a1 result %v", tag)
	}
	for id, left := range map[string][]string{"a1": nil, "a2": nil, "a3": {"Older"}} {
		if got := f.tagLabels(t, id); !slices.Equal(got, left) {
			t.Fatalf("%s tags %v, want %v", id, got, left)
		}
	}
}

// TestInviteSubWorkspacesToGroup: linked subs (pending or accepted) are
// done already, a rejected one is invited again, the admin cannot invite
// itself, and an admin workspace out of scope fails the whole call.
func TestInviteSubWorkspacesToGroup(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	for _, sub := range []string{"a2", "a3"} {
		if _, err := f.e.Sim.InviteGroupMember(f.iid("a1"), f.iid(sub)); err != nil {
			t.Fatal(err)
		}
	}
	rejected, err := f.e.Sim.InviteGroupMember(f.iid("a1"), f.iid("a4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Sim.RejectGroupMember(rejected.ID); err != nil {
		t.Fatal(err)
	}
	active := func() (n int) {
		for _, l := range f.e.State(t, f.iid("a1")).GroupMembers {
			if l.Status != "rejected" {
				n++
			}
		}
		return n
	}
	for _, l := range f.e.State(t, f.iid("a3")).GroupMembers {
		if err := f.e.Sim.AcceptGroupMember(l.ID); err != nil { // a3 accepts
			t.Fatal(err)
		}
	}
	req := &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: "workspaces/a1", Selector: all, DryRun: true}
	want := map[string]string{"a1": "FAILED/InvalidArgument", "a2": "ALREADY_DONE", "a3": "ALREADY_DONE", "a4": "CREATED"}

	resp, err := f.svc.InviteSubWorkspacesToGroup(caller(), req)
	wantOutcomes(t, resp, err, want)
	if active() != 2 {
		t.Fatalf("dry run linked: %d active links", active())
	}
	req.DryRun = false
	resp, err = f.svc.InviteSubWorkspacesToGroup(caller(), req)
	wantOutcomes(t, resp, err, want)
	if active() != 3 {
		t.Fatalf("%d active links, want 3", active())
	}
	if gm := resultOf(resp, "workspaces/a4").GetGroupMember(); gm.GetSubWorkspaceId() != f.iid("a4") || gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING ||
		gm.GetName() != "workspaces/a1/groupMembers/"+gm.GetId() || gm.GetId() == rejected.ID {
		t.Fatalf("a4 result %v", gm)
	}
	if gm := resultOf(resp, "workspaces/a3").GetGroupMember(); gm.GetStatus() != agencyv1.GroupMember_STATUS_ACCEPTED {
		t.Fatalf("a3 result %v", gm)
	}

	_, err = f.svc.InviteSubWorkspacesToGroup(caller(), &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: "workspaces/b1", Selector: names("a4")})
	servicetest.WantCode(t, err, codes.NotFound)
	if n := len(f.e.State(t, f.iid("b1")).GroupMembers); n != 0 {
		t.Fatalf("b1 has %d links", n)
	}
}

// TestCreateApiKeyEverywhere: one key per workspace with the preset's
// scopes and the trimmed name; each result carries that workspace's new
// key and its secret.
func TestCreateApiKeyEverywhere(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	resp, err := f.svc.CreateApiKeyEverywhere(caller(), &agencyv1.CreateApiKeyEverywhereRequest{Selector: names("a1", "a2", "b1"),
		DisplayName: " reporting ", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER})
	wantOutcomes(t, resp, err, map[string]string{"a1": "CREATED", "a2": "CREATED", "b1": "FAILED/NotFound"})
	for _, id := range []string{"a1", "a2"} {
		keys := f.e.State(t, f.iid(id)).APIKeys
		last := keys[len(keys)-1]
		if len(keys) != 2 || last.Name != "reporting" || !slices.Equal(last.Scopes, apikeys.PresetScopes(agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER)) {
			t.Fatalf("%s keys %+v", id, keys)
		}
		ck := resultOf(resp, "workspaces/"+id).GetCreatedApiKey()
		if ck.GetSecret() == "" || ck.GetApiKey().GetId() != last.ID || ck.GetApiKey().GetOverPrivileged() {
			t.Fatalf("%s result %v", id, ck)
		}
	}
	if n := len(f.e.State(t, f.iid("b1")).APIKeys); n != 1 {
		t.Fatalf("b1 has %d keys", n)
	}
}

// TestAuditApiKeys: every key of each workspace, with the over-privileged
// ones (all:all, as every workspace's first key) counted.
func TestAuditApiKeys(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	for name, scopes := range map[string][]string{"viewer": {"campaigns:read"}, "root": {"all:all"}, "writer": {"all:update"}} {
		if _, err := f.e.Sim.CreateAPIKey(f.iid("a1"), name, scopes); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := f.svc.AuditApiKeys(caller(), &agencyv1.AuditApiKeysRequest{Selector: names("a1", "a2")})
	wantOutcomes(t, resp, err, map[string]string{"a1": "READ", "a2": "READ"})
	for id, want := range map[string][2]int{"a1": {4, 3}, "a2": {1, 1}} {
		l := resultOf(resp, "workspaces/"+id).GetApiKeys()
		if len(l.GetApiKeys()) != want[0] || int(l.GetOverPrivileged()) != want[1] {
			t.Fatalf("%s: %d keys, %d over-privileged; want %v", id, len(l.GetApiKeys()), l.GetOverPrivileged(), want)
		}
	}
}

// TestCreatesOnceWhenAnswersAreLost: Instantly applies every write and
// then loses the answer (5xx or a dropped connection); each create is
// found by reading back, reported CREATED, and made exactly once.
func TestCreatesOnceWhenAnswersAreLost(t *testing.T) {
	f := newFleet(t, sim.Config{FaultAfterRate: 1}, Options{})
	sel := names("a2", "a3")
	created := map[string]string{"a2": "CREATED", "a3": "CREATED"}
	resp, err := f.svc.InviteMemberEverywhere(caller(), &agencyv1.InviteMemberEverywhereRequest{Selector: sel, Email: "x@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW})
	wantOutcomes(t, resp, err, created)
	resp, err = f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: sel, Label: "Q3"})
	wantOutcomes(t, resp, err, created)
	resp, err = f.svc.InviteSubWorkspacesToGroup(caller(), &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: "workspaces/a1", Selector: sel})
	wantOutcomes(t, resp, err, created)
	for _, id := range []string{"a2", "a3"} {
		st := f.e.State(t, f.iid(id))
		if len(st.Members) != 2 || len(st.CustomTags) != 1 || len(st.GroupMembers) != 1 {
			t.Fatalf("%s: %d members, %d tags, %d links; want 2, 1, 1", id, len(st.Members), len(st.CustomTags), len(st.GroupMembers))
		}
		if r := resultOf(resp, "workspaces/"+id).GetGroupMember(); r.GetId() != st.GroupMembers[0].ID {
			t.Fatalf("%s result %v", id, r)
		}
	}
}
