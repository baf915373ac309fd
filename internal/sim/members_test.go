package sim_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

const (
	membersPath   = "/api/v2/workspace-members"
	memberPattern = "/api/v2/workspace-members/{id}"
)

func TestWorkspaceStartsWithItsOwner(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspaceWithOwner("Acme", "Boss@Acme.test")
	ws := decode[sim.Workspace](t, e.get(currentPath, key))
	got := decode[list[sim.WorkspaceMember]](t, e.call(http.MethodGet, membersPath, membersPath, key, ""))
	if len(got.Items) != 1 {
		t.Fatalf("members %+v, want the owner alone", got.Items)
	}
	m := got.Items[0]
	if m.Email != "boss@acme.test" || m.Role != "owner" || !m.Accepted || m.UserID != ws.Owner || m.WorkspaceID != wsID || !idPattern.MatchString(m.ID) {
		t.Errorf("owner member %+v (workspace owner %s)", m, ws.Owner)
	}
	if got.NextStartingAfter != m.ID {
		t.Errorf("next_starting_after %q, want %q", got.NextStartingAfter, m.ID)
	}

	// The default owner email, over the admin API too.
	created := decode[sim.CreatedWorkspace](t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: `{"name":"B"}`}))
	if created.OwnerEmail != "owner+"+created.ID[:8]+"@example.com" || !uuidPattern.MatchString(created.OwnerUserID) {
		t.Errorf("created %+v", created)
	}
	created = decode[sim.CreatedWorkspace](t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: `{"name":"C","owner_email":"boss@acme.test"}`}))
	if created.OwnerUserID != ws.Owner {
		t.Errorf("the same email owning two workspaces is one user: %s and %s", created.OwnerUserID, ws.Owner)
	}
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: `{"name":"D","owner_email":"nope"}`}),
		http.StatusBadRequest, `body/owner_email must match format "email"`)
}

func TestMembersCRUD(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	e.clock.Advance(time.Minute)

	created := decode[sim.WorkspaceMember](t, e.call(http.MethodPost, membersPath, membersPath, key,
		`{"email":"Ann@Acme.test","role":"editor","nickname":"Ann","permissions":["campaigns.view","unibox.all"],"user_email":null}`))
	owner := decode[sim.Workspace](t, e.get(currentPath, key)).Owner
	if created.Email != "ann@acme.test" || created.Role != "editor" || created.Accepted || created.Nickname == nil || *created.Nickname != "Ann" ||
		len(created.Permissions) != 2 || created.IssuerID == nil || *created.IssuerID != owner || created.WorkspaceID != wsID ||
		created.TimestampCreated != "2026-03-01T12:01:00.000Z" {
		t.Fatalf("created %+v", created)
	}
	path := membersPath + "/" + created.ID
	if got := decode[sim.WorkspaceMember](t, e.call(http.MethodGet, memberPattern, path, key, "")); got.ID != created.ID {
		t.Errorf("get %+v", got)
	}

	patched := decode[sim.WorkspaceMember](t, e.call(http.MethodPatch, memberPattern, path, key, `{"role":"view","nickname":null}`))
	if patched.Role != "view" || patched.Nickname != nil || patched.Email != created.Email {
		t.Errorf("patched %+v", patched)
	}
	patched = decode[sim.WorkspaceMember](t, e.call(http.MethodPatch, memberPattern, path, key, `{"nickname":"Annie"}`))
	if patched.Role != "view" || *patched.Nickname != "Annie" {
		t.Errorf("patched nickname only %+v", patched)
	}

	// Accepting is the invitee's move, through the admin API.
	got := e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/members/" + created.ID + "/accept"})
	if got.status != http.StatusOK || !decode[sim.WorkspaceMember](t, got).Accepted {
		t.Fatalf("accept: %d %s", got.status, got.body)
	}
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/members/nope/accept"}), http.StatusNotFound, "Resource not found")
	if err := e.sim.AcceptMember(wsID, "nope"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("AcceptMember unknown: %v", err)
	}

	deleted := decode[sim.WorkspaceMember](t, e.call(http.MethodDelete, memberPattern, path, key, ""))
	if deleted.ID != created.ID || !deleted.Accepted {
		t.Errorf("deleted %+v", deleted)
	}
	for _, r := range []req{
		{method: http.MethodGet, path: path, key: key},
		{method: http.MethodPatch, path: path, key: key, body: `{"role":"admin"}`},
		{method: http.MethodDelete, path: path, key: key},
	} {
		wantSpecError(t, r.method, memberPattern, e.do(r), http.StatusNotFound, "Resource not found")
	}
	// A member of another workspace is not found either.
	otherID, _ := e.sim.CreateWorkspace("Other")
	other, err := e.sim.InviteMember(otherID, "x@other.test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, e.get(membersPath+"/"+other.ID, key), http.StatusNotFound, "Resource not found")
}

func TestMembersRejectBadRequests(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	invited, err := e.sim.InviteMember(wsID, "ann@acme.test", "editor")
	if err != nil {
		t.Fatal(err)
	}
	state, _ := e.sim.WorkspaceState(wsID)
	ownerPath := membersPath + "/" + state.Members[0].ID
	memberPath := membersPath + "/" + invited.ID

	tests := []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"missing role", http.MethodPost, membersPath, `{"email":"b@acme.test"}`, 400, "body must have required property 'role'"},
		{"bad email", http.MethodPost, membersPath, `{"email":"b","role":"view"}`, 400, `body/email must match format "email"`},
		{"unknown role", http.MethodPost, membersPath, `{"email":"b@acme.test","role":"boss"}`, 400, "body/role must be equal to one of the allowed values"},
		{"owner cannot be invited", http.MethodPost, membersPath, `{"email":"b@acme.test","role":"owner"}`, 400, "body/role must be equal to one of the allowed values"},
		{"client is not in the API", http.MethodPost, membersPath, `{"email":"b@acme.test","role":"client"}`, 400, "body/role must be equal to one of the allowed values"},
		{"unknown permission", http.MethodPost, membersPath, `{"email":"b@acme.test","role":"view","permissions":["root"]}`, 400, "body/permissions/0 must be equal to one of the allowed values"},
		{"extra property", http.MethodPost, membersPath, `{"email":"b@acme.test","role":"view","x":1}`, 400, "body must NOT have additional properties"},
		{"already a member", http.MethodPost, membersPath, `{"email":"ANN@acme.test","role":"view"}`, 409, "A workspace member with this email already exists"},
		{"the owner is a member", http.MethodPost, membersPath, `{"email":"` + state.Members[0].Email + `","role":"admin"}`, 409, ""},
		{"empty patch", http.MethodPatch, memberPath, `{}`, 400, "body must NOT have fewer than 1 properties"},
		{"patch email", http.MethodPatch, memberPath, `{"email":"c@acme.test"}`, 400, "body must NOT have additional properties"},
		{"patch to owner", http.MethodPatch, memberPath, `{"role":"owner"}`, 400, "body/role must be equal to one of the allowed values"},
		{"patch to client", http.MethodPatch, memberPath, `{"role":"client"}`, 400, "body/role must be equal to one of the allowed values"},
		{"demote the owner", http.MethodPatch, ownerPath, `{"role":"admin"}`, 400, "The role of the workspace owner cannot be changed"},
		{"remove the owner", http.MethodDelete, ownerPath, ``, 400, "The workspace owner cannot be removed"},
		{"delete with a body", http.MethodDelete, memberPath, `{}`, 400, "body must be null"},
		{"limit 0", http.MethodGet, membersPath + "?limit=0", ``, 400, "querystring/limit must be >= 1"},
		{"limit 101", http.MethodGet, membersPath + "?limit=101", ``, 400, "querystring/limit must be <= 100"},
		{"limit not a number", http.MethodGet, membersPath + "?limit=ten", ``, 400, "querystring/limit must be integer"},
		{"limit not an integer", http.MethodGet, membersPath + "?limit=1.5", ``, 400, "querystring/limit must be integer"},
		{"limit twice", http.MethodGet, membersPath + "?limit=1&limit=2", ``, 400, "querystring/limit must be integer"},
		{"accepted not a boolean", http.MethodGet, membersPath + "?accepted=1", ``, 400, "querystring/accepted must be boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pattern := membersPath
			if tt.path != membersPath && !strings.Contains(tt.path, "?") {
				pattern = memberPattern
			}
			wantSpecError(t, tt.method, pattern, e.do(req{method: tt.method, path: tt.path, key: key, body: tt.body}), tt.status, tt.message)
		})
	}
	// The owner patches its own nickname.
	if got := e.patch(ownerPath, key, `{"nickname":"Boss","role":"owner"}`); got.status != http.StatusBadRequest {
		t.Errorf("role owner in a patch: %d", got.status)
	}
	if got := decode[sim.WorkspaceMember](t, e.call(http.MethodPatch, memberPattern, ownerPath, key, `{"nickname":"Boss"}`)); got.Role != "owner" || *got.Nickname != "Boss" {
		t.Errorf("owner nickname: %+v", got)
	}
	if state, _ := e.sim.WorkspaceState(wsID); len(state.Members) != 2 || state.Members[0].Role != "owner" || state.Members[1].Role != "editor" {
		t.Errorf("rejected requests changed members: %+v", state.Members)
	}
	if _, err := e.sim.InviteMember(wsID, "z@acme.test", "owner"); !errors.Is(err, sim.ErrInvalid) {
		t.Errorf("InviteMember owner: %v", err)
	}
	if _, err := e.sim.InviteMember(wsID, "ann@acme.test", "view"); !errors.Is(err, sim.ErrConflict) {
		t.Errorf("InviteMember twice: %v", err)
	}
}

func TestMembersFilters(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspaceWithOwner("Acme", "boss@acme.test")
	for _, email := range []string{"ann@acme.test", "bob@acme.test", "carla@partner.test"} {
		m, err := e.sim.InviteMember(wsID, email, "view")
		if err != nil {
			t.Fatal(err)
		}
		if email != "bob@acme.test" {
			if err := e.sim.AcceptMember(wsID, m.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.call(http.MethodPatch, memberPattern, membersPath+"/"+decode[list[sim.WorkspaceMember]](t,
		e.get(membersPath+"?search=bob", key)).Items[0].ID, key, `{"nickname":"Robert"}`)

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{"boss@acme.test", "ann@acme.test", "bob@acme.test", "carla@partner.test"}},
		{"?accepted=true", []string{"boss@acme.test", "ann@acme.test", "carla@partner.test"}},
		{"?accepted=false", []string{"bob@acme.test"}},
		{"?search=ACME", []string{"boss@acme.test", "ann@acme.test", "bob@acme.test"}},
		{"?search=robert", []string{"bob@acme.test"}},
		{"?search=partner&accepted=false", nil},
		{"?limit=2", []string{"boss@acme.test", "ann@acme.test"}},
	}
	for _, tt := range tests {
		got := decode[list[sim.WorkspaceMember]](t, e.call(http.MethodGet, membersPath, membersPath+tt.query, key, ""))
		var emails []string
		for _, m := range got.Items {
			emails = append(emails, m.Email)
		}
		if strings.Join(emails, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: %v, want %v", tt.query, emails, tt.want)
		}
	}
}

func TestChangeOwner(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspaceWithOwner("Acme", "boss@acme.test")
	const path = "/api/v2/workspaces/current/change-owner"
	ann, _ := e.sim.InviteMember(wsID, "ann@acme.test", "admin")
	pending, _ := e.sim.InviteMember(wsID, "pat@acme.test", "admin")
	_ = pending
	if err := e.sim.AcceptMember(wsID, ann.ID); err != nil {
		t.Fatal(err)
	}
	sec, err := e.sim.OwnerTransferSecret(wsID)
	if err != nil || len(sec) != 32 {
		t.Fatalf("sec %q, %v", sec, err)
	}
	viaHTTP := decode[map[string]string](t, e.get("/_sim/workspaces/"+wsID+"/change-owner-sec", ""))
	state, _ := e.sim.WorkspaceState(wsID)
	if viaHTTP["sec"] != sec || state.ChangeOwnerSec != sec {
		t.Fatalf("sec %q over HTTP, %q in state, want %q", viaHTTP["sec"], state.ChangeOwnerSec, sec)
	}

	for _, tt := range []struct {
		name, body string
		status     int
		message    string
	}{
		{"no sec", `{"email":"ann@acme.test"}`, 400, "body must have required property 'sec'"},
		{"bad email", `{"email":"ann","sec":"x"}`, 400, `body/email must match format "email"`},
		{"wrong sec", `{"email":"ann@acme.test","sec":"guess"}`, 403, "Invalid sec"},
		{"not a member", `{"email":"zed@acme.test","sec":"` + sec + `"}`, 400, "The new owner must be an accepted member of the workspace"},
		{"invitation not accepted", `{"email":"pat@acme.test","sec":"` + sec + `"}`, 400, "The new owner must be an accepted member of the workspace"},
		{"already the owner", `{"email":"boss@acme.test","sec":"` + sec + `"}`, 400, "This member is already the owner of the workspace"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, e.do(req{method: http.MethodPost, path: path, key: key, body: tt.body}), tt.status, tt.message)
		})
	}
	scoped := mustKey(t, e.sim, wsID, "workspaces:read")
	wantError(t, e.do(req{method: http.MethodPost, path: path, key: scoped.Key, body: `{"email":"ann@acme.test","sec":"` + sec + `"}`}), http.StatusForbidden, "")

	e.clock.Advance(time.Hour)
	ws := decode[sim.Workspace](t, e.call(http.MethodPost, path, path, key, `{"email":"ANN@acme.test","sec":"`+sec+`"}`))
	if ws.Owner != ann.UserID || ws.TimestampUpdated != "2026-03-01T13:00:00.000Z" {
		t.Errorf("workspace after change-owner %+v, want owner %s", ws, ann.UserID)
	}
	members := decode[list[sim.WorkspaceMember]](t, e.get(membersPath, key)).Items
	roles := map[string]string{}
	for _, m := range members {
		roles[m.Email] = m.Role
	}
	if roles["ann@acme.test"] != "owner" || roles["boss@acme.test"] != "admin" || roles["pat@acme.test"] != "admin" {
		t.Errorf("roles after change-owner %v", roles)
	}
	if got := decode[sim.Workspace](t, e.get(currentPath, key)); got.Owner != ann.UserID {
		t.Errorf("GET current owner %s", got.Owner)
	}
	// The secret is single-use; the new owner is protected, the old one is an ordinary member.
	wantError(t, e.do(req{method: http.MethodPost, path: path, key: key, body: `{"email":"boss@acme.test","sec":"` + sec + `"}`}), http.StatusForbidden, "Invalid sec")
	if next, _ := e.sim.OwnerTransferSecret(wsID); next == sec {
		t.Error("sec not rotated")
	}
	wantError(t, e.do(req{method: http.MethodDelete, path: membersPath + "/" + ann.ID, key: key}), http.StatusBadRequest, "The workspace owner cannot be removed")
	boss := decode[list[sim.WorkspaceMember]](t, e.get(membersPath+"?search=boss", key)).Items[0]
	e.call(http.MethodDelete, memberPattern, membersPath+"/"+boss.ID, key, "")

	if _, err := e.sim.OwnerTransferSecret("nope"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("OwnerTransferSecret unknown: %v", err)
	}
	wantError(t, e.get("/_sim/workspaces/nope/change-owner-sec", ""), http.StatusNotFound, "Resource not found")
}
