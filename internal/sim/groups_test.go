package sim_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

const (
	groupPath    = "/api/v2/workspace-group-members"
	groupPattern = "/api/v2/workspace-group-members/{id}"
	groupAdmin   = "/api/v2/workspace-group-members/admin"
)

func TestGroupMembersLifecycle(t *testing.T) {
	e := newEnv(t, sim.Config{})
	adminID, adminKey := e.sim.CreateWorkspace("Agency")
	subID, subKey := e.sim.CreateWorkspace("Client A")

	// Before any group: no admin.
	if got := decode[map[string]any](t, e.call(http.MethodGet, groupAdmin, groupAdmin, subKey, "")); got["workspace_name"] != "Undefined" || got["has_admin_workspace"] != false || len(got) != 2 {
		t.Errorf("admin of a lone workspace: %v", got)
	}

	e.clock.Advance(time.Minute)
	inv := decode[sim.WorkspaceGroupMember](t, e.call(http.MethodPost, groupPath, groupPath, adminKey, `{"sub_workspace_id":"`+subID+`"}`))
	if inv.Status != "pending" || inv.AdminWorkspaceID != adminID || inv.SubWorkspaceID != subID || !idPattern.MatchString(inv.ID) ||
		*inv.AdminWorkspaceName != "Agency" || *inv.SubWorkspaceName != "Client A" || inv.TimestampCreated != "2026-03-01T12:01:00.000Z" {
		t.Fatalf("invitation %+v", inv)
	}
	// Pending: the sub has no admin yet, and the admin key cannot act as it.
	if got := decode[sim.GroupAdmin](t, e.get(groupAdmin, subKey)); got.HasAdminWorkspace {
		t.Errorf("pending invitation counted as admin: %+v", got)
	}
	wantError(t, e.do(req{method: http.MethodGet, path: currentPath, key: adminKey, as: subID}), http.StatusForbidden, "")

	// Both sides read it; a third workspace does not.
	_, otherKey := e.sim.CreateWorkspace("Other")
	e.call(http.MethodGet, groupPattern, groupPath+"/"+inv.ID, adminKey, "")
	e.call(http.MethodGet, groupPattern, groupPath+"/"+inv.ID, subKey, "")
	wantSpecError(t, http.MethodGet, groupPattern, e.get(groupPath+"/"+inv.ID, otherKey), http.StatusNotFound, "Resource not found")

	e.clock.Advance(time.Minute)
	got := e.do(req{method: http.MethodPost, path: "/_sim/group-members/" + inv.ID + "/accept"})
	accepted := decode[sim.WorkspaceGroupMember](t, got)
	if got.status != http.StatusOK || accepted.Status != "accepted" || accepted.TimestampUpdated != "2026-03-01T12:02:00.000Z" {
		t.Fatalf("accept: %d %s", got.status, got.body)
	}
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/group-members/" + inv.ID + "/reject"}), http.StatusConflict, "The invitation is accepted, not pending")
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/group-members/nope/accept"}), http.StatusNotFound, "Resource not found")

	admin := decode[map[string]any](t, e.call(http.MethodGet, groupAdmin, groupAdmin, subKey, ""))
	if admin["workspace_name"] != "Agency" || admin["has_admin_workspace"] != true || admin["workspace_group_member_id"] != inv.ID {
		t.Errorf("admin of the sub: %v", admin)
	}
	// The admin itself has no admin.
	if got := decode[sim.GroupAdmin](t, e.get(groupAdmin, adminKey)); got.HasAdminWorkspace {
		t.Errorf("admin workspace reports an admin: %+v", got)
	}
	// The admin lists its links; the sub lists none of its own.
	if l := decode[list[sim.WorkspaceGroupMember]](t, e.call(http.MethodGet, groupPath, groupPath, adminKey, "")); len(l.Items) != 1 || l.Items[0].Status != "accepted" {
		t.Errorf("admin list %+v", l)
	}
	if l := decode[list[sim.WorkspaceGroupMember]](t, e.call(http.MethodGet, groupPath, groupPath, subKey, "")); len(l.Items) != 0 {
		t.Errorf("sub list %+v", l)
	}
	if st, _ := e.sim.WorkspaceState(subID); len(st.GroupMembers) != 1 || st.GroupMembers[0].ID != inv.ID {
		t.Errorf("sub state group members %+v", st.GroupMembers)
	}

	// The sub leaves: DELETE answers the link, and x-as-workspace stops working.
	if got := decode[sim.Workspace](t, e.callAs(req{method: http.MethodGet, path: currentPath, key: adminKey, as: subID}, currentPath)); got.ID != subID {
		t.Errorf("x-as-workspace on an accepted sub read %s", got.ID)
	}
	left := decode[sim.WorkspaceGroupMember](t, e.call(http.MethodDelete, groupPattern, groupPath+"/"+inv.ID, subKey, ""))
	if left.ID != inv.ID || left.Status != "accepted" {
		t.Errorf("deleted %+v", left)
	}
	wantError(t, e.do(req{method: http.MethodGet, path: currentPath, key: adminKey, as: subID}), http.StatusForbidden, "")
	wantSpecError(t, http.MethodDelete, groupPattern, e.do(req{method: http.MethodDelete, path: groupPath + "/" + inv.ID, key: adminKey}), http.StatusNotFound, "Resource not found")

	// Rejected invitations stay listed and can be repeated.
	again, err := e.sim.InviteGroupMember(adminID, subID)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.RejectGroupMember(again.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.AcceptGroupMember(again.ID); !errors.Is(err, sim.ErrConflict) {
		t.Errorf("accepting a rejected invitation: %v", err)
	}
	third := decode[sim.WorkspaceGroupMember](t, e.call(http.MethodPost, groupPath, groupPath, adminKey, `{"sub_workspace_id":"`+subID+`"}`))
	l := decode[list[sim.WorkspaceGroupMember]](t, e.get(groupPath, adminKey))
	if len(l.Items) != 2 || l.Items[0].Status != "rejected" || l.Items[1].ID != third.ID || l.Items[1].Status != "pending" {
		t.Errorf("list after reject and re-invite %+v", l.Items)
	}
	// The admin withdraws a pending invitation.
	e.call(http.MethodDelete, groupPattern, groupPath+"/"+third.ID, adminKey, "")
	if err := e.sim.AcceptGroupMember(third.ID); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("accepting a deleted invitation: %v", err)
	}
}

func TestGroupMembersHierarchyConflicts(t *testing.T) {
	e := newEnv(t, sim.Config{})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	clientA, clientAKey := e.sim.CreateWorkspace("Client A")
	clientB, _ := e.sim.CreateWorkspace("Client B")
	pendingSub, _ := e.sim.CreateWorkspace("Pending")
	rival, rivalKey := e.sim.CreateWorkspace("Rival agency")
	_, loneKey := e.sim.CreateWorkspace("Lone")

	link := func(admin, sub string, accept bool) {
		t.Helper()
		inv, err := e.sim.InviteGroupMember(admin, sub)
		if err != nil {
			t.Fatal(err)
		}
		if accept {
			if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	link(agency, clientA, true)
	link(agency, pendingSub, false)

	tests := []struct {
		name, key, sub string
		status         int
		message        string
	}{
		{"itself", agencyKey, agency, 409, "A workspace cannot be its own sub workspace"},
		{"duplicate of an accepted link", agencyKey, clientA, 409, "The sub workspace already has an active parent or invitation"},
		{"duplicate of a pending link", agencyKey, pendingSub, 409, "The sub workspace already has an active parent or invitation"},
		{"sub of another admin", rivalKey, clientA, 409, "The sub workspace already has an active parent or invitation"},
		{"pending sub of another admin", rivalKey, pendingSub, 409, "The sub workspace already has an active parent or invitation"},
		{"an admin as sub", rivalKey, agency, 409, "The sub workspace is the admin workspace of a workspace group"},
		{"a sub as admin", clientAKey, clientB, 409, "A sub workspace cannot invite workspaces to a workspace group"},
		{"unknown workspace", agencyKey, "nope", 404, "Resource not found"},
		{"missing body field", agencyKey, "", 400, "body must have required property 'sub_workspace_id'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"sub_workspace_id":"` + tt.sub + `"}`
			if tt.sub == "" {
				body = `{}`
			}
			wantSpecError(t, http.MethodPost, groupPath, e.do(req{method: http.MethodPost, path: groupPath, key: tt.key, body: body}), tt.status, tt.message)
		})
	}
	// Valid: a lone workspace may become an admin, and a fresh workspace a sub.
	e.call(http.MethodPost, groupPath, groupPath, loneKey, `{"sub_workspace_id":"`+rival+`"}`)
	e.call(http.MethodPost, groupPath, groupPath, agencyKey, `{"sub_workspace_id":"`+clientB+`"}`)
	if _, err := e.sim.InviteGroupMember(agency, agency); !errors.Is(err, sim.ErrConflict) {
		t.Errorf("InviteGroupMember itself: %v", err)
	}
}

func TestActAsWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 5})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	sub, subKey := e.sim.CreateWorkspace("Client")
	pending, _ := e.sim.CreateWorkspace("Pending client")
	rejected, _ := e.sim.CreateWorkspace("Rejected client")
	unrelated, unrelatedKey := e.sim.CreateWorkspace("Unrelated")
	for _, w := range []struct {
		id     string
		answer func(string) error
	}{{sub, e.sim.AcceptGroupMember}, {pending, nil}, {rejected, e.sim.RejectGroupMember}} {
		inv, err := e.sim.InviteGroupMember(agency, w.id)
		if err != nil {
			t.Fatal(err)
		}
		if w.answer != nil {
			if err := w.answer(inv.ID); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Allowed: the admin's key acts on the sub, with its own scopes.
	ws := decode[sim.Workspace](t, e.callAs(req{method: http.MethodGet, path: currentPath, key: agencyKey, as: sub}, currentPath))
	if ws.ID != sub || ws.Name != "Client" {
		t.Fatalf("x-as-workspace read %+v", ws)
	}
	tag := decode[sim.CustomTag](t, e.callAs(req{method: http.MethodPost, path: tagsPath, key: agencyKey, as: sub, body: `{"label":"VIP"}`}, tagsPath))
	if tag.OrganizationID != sub {
		t.Errorf("tag created as the sub belongs to %s", tag.OrganizationID)
	}
	if l := decode[list[sim.CustomTag]](t, e.get(tagsPath, subKey)); len(l.Items) != 1 {
		t.Errorf("the sub's own key sees %d tags", len(l.Items))
	}
	if l := decode[list[sim.CustomTag]](t, e.get(tagsPath, agencyKey)); len(l.Items) != 0 {
		t.Errorf("the admin's own workspace got %d tags", len(l.Items))
	}
	readOnly := mustKey(t, e.sim, agency, "workspaces:read")
	wantError(t, e.do(req{method: http.MethodPost, path: tagsPath, key: readOnly.Key, as: sub, body: `{"label":"x"}`}), http.StatusForbidden, "")
	e.clock.Advance(time.Second)

	// Refused: pending, rejected, unrelated, unknown, the admin's own id, the reverse
	// direction, and another workspace's key.
	e.sim.ResetStats()
	for _, tt := range []struct{ name, key, as string }{
		{"pending", agencyKey, pending},
		{"rejected", agencyKey, rejected},
		{"unrelated", agencyKey, unrelated},
		{"unknown", agencyKey, "nope"},
		{"itself", agencyKey, agency},
		{"sub acting as admin", subKey, agency},
		{"other workspace's key", unrelatedKey, sub},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do(req{method: http.MethodGet, path: currentPath, key: tt.key, as: tt.as}), http.StatusForbidden, "")
		})
	}
	for id, st := range e.sim.Stats() {
		if st != (sim.WorkspaceStats{}) {
			t.Errorf("refused x-as-workspace requests were counted against %s: %+v", id, st)
		}
	}
	// An invalid key is still 401, before x-as-workspace is looked at.
	wantError(t, e.do(req{method: http.MethodGet, path: currentPath, key: "nope", as: sub}), http.StatusUnauthorized, "Invalid API key")
}

func TestActAsWorkspaceSpendsBothBudgets(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 10})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	sub, subKey := e.sim.CreateWorkspace("Client")
	other, _ := e.sim.CreateWorkspace("Client 2")
	for _, id := range []string{sub, other} {
		inv, _ := e.sim.InviteGroupMember(agency, id)
		if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
			t.Fatal(err)
		}
	}
	asSub := func(n int) map[int]int {
		counts := map[int]int{}
		for range n {
			counts[e.do(req{method: http.MethodGet, path: currentPath, key: agencyKey, as: sub}).status]++
		}
		return counts
	}

	// 6 as the sub spend 6 of each budget: 4 left for the admin's own traffic.
	if got := asSub(6); got[200] != 6 {
		t.Fatalf("as sub: %v", got)
	}
	if got := e.getN(5, agencyKey); got[200] != 4 || got[429] != 1 {
		t.Errorf("admin after 6 as sub: %v, want 4 × 200 and 1 × 429", got)
	}
	// The sub has 4 left of its own; the admin has none, so x-as-workspace is refused even
	// though the sub has room, and that refusal spends nothing.
	if got := asSub(2); got[429] != 2 {
		t.Errorf("as sub with the admin exhausted: %v, want 429s", got)
	}
	if got := e.getN(5, subKey); got[200] != 4 || got[429] != 1 {
		t.Errorf("sub's own key: %v, want the 4 left", got)
	}

	// Next second: the sub is exhausted by its own key, so the admin cannot act as it, but
	// may act as another sub and for itself.
	e.clock.Advance(time.Second)
	if got := e.getN(10, subKey); got[200] != 10 {
		t.Fatalf("sub's own key: %v", got)
	}
	if got := asSub(1); got[429] != 1 {
		t.Errorf("as an exhausted sub: %v, want 429", got)
	}
	if got := e.do(req{method: http.MethodGet, path: currentPath, key: agencyKey, as: other}); got.status != 200 {
		t.Errorf("as the other sub: %d", got.status)
	}
	if got := e.getN(9, agencyKey); got[200] != 9 {
		t.Errorf("admin: %v, want 9 × 200 (1 spent as the other sub)", got)
	}

	stats := e.sim.Stats()
	wantAgency := sim.WorkspaceStats{Requests: 6 + 5 + 2 + 1 + 1 + 9, Admitted: 6 + 4 + 1 + 9, RateLimited: 1 + 2 + 1, MaxAdmitted1s: 10, MaxAdmitted60s: 20}
	wantSub := sim.WorkspaceStats{Requests: 6 + 2 + 5 + 10 + 1, Admitted: 6 + 4 + 10, RateLimited: 2 + 1 + 1, MaxAdmitted1s: 10, MaxAdmitted60s: 20}
	wantOther := sim.WorkspaceStats{Requests: 1, Admitted: 1, MaxAdmitted1s: 1, MaxAdmitted60s: 1}
	if stats[agency] != wantAgency {
		t.Errorf("agency stats %+v, want %+v", stats[agency], wantAgency)
	}
	if stats[sub] != wantSub {
		t.Errorf("sub stats %+v, want %+v", stats[sub], wantSub)
	}
	if stats[other] != wantOther {
		t.Errorf("other sub stats %+v, want %+v", stats[other], wantOther)
	}
}

func TestActAsWorkspaceFaultsCountForBoth(t *testing.T) {
	e := newEnv(t, sim.Config{FaultRate: 1})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	sub, _ := e.sim.CreateWorkspace("Client")
	inv, _ := e.sim.InviteGroupMember(agency, sub)
	if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
		t.Fatal(err)
	}
	if got := e.do(req{method: http.MethodGet, path: currentPath, key: agencyKey, as: sub}); got.status < 500 {
		t.Fatalf("status %d", got.status)
	}
	want := sim.WorkspaceStats{Requests: 1, Faults: 1}
	if st := e.sim.Stats(); st[agency] != want || st[sub] != want {
		t.Errorf("stats %+v, want a fault in both", st)
	}
}
