package sim_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestAdminCreateWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{})
	got := e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: `{"name":"Acme"}`})
	if got.status != http.StatusCreated {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	created := decode[sim.CreatedWorkspace](t, got)
	if !uuidPattern.MatchString(created.ID) || !idPattern.MatchString(created.APIKeyID) || created.Name != "Acme" || len(created.APIKey) != 68 {
		t.Fatalf("created %s", got.body)
	}
	// The first key is all:all and works at once.
	if got := e.get(currentPath, created.APIKey); got.status != http.StatusOK {
		t.Errorf("GET with the new key: %d", got.status)
	}
	if got := e.patch(currentPath, created.APIKey, `{"name":"Acme 2"}`); got.status != http.StatusOK {
		t.Errorf("PATCH with the new key: %d", got.status)
	}

	for _, tt := range []struct{ body, message string }{
		{`{}`, "body must have required property 'name'"},
		{`{"name":""}`, "body/name must NOT have fewer than 1 characters"},
		{`{"name":7}`, "body/name must be string"},
		{`{"name":"a","plan":"x"}`, "body must NOT have additional properties"},
		{`{"name":`, "Body is not valid JSON but content-type is set to 'application/json'"},
	} {
		wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: tt.body}), http.StatusBadRequest, tt.message)
	}
}

func TestAdminReadState(t *testing.T) {
	e := newEnv(t, sim.Config{})
	idA, _ := e.sim.CreateWorkspace("A")
	idB, _ := e.sim.CreateWorkspace("B")
	mustKey(t, e.sim, idB, "campaigns:read")

	list := decode[struct{ Items []sim.WorkspaceSummary }](t, e.get("/_sim/workspaces", ""))
	want := []sim.WorkspaceSummary{{ID: idA, Name: "A"}, {ID: idB, Name: "B"}}
	if len(list.Items) != 2 || list.Items[0] != want[0] || list.Items[1] != want[1] {
		t.Errorf("list %+v, want %+v", list.Items, want)
	}

	got := e.get("/_sim/workspaces/"+idB, "")
	if got.status != http.StatusOK {
		t.Fatalf("status %d", got.status)
	}
	if strings.Contains(string(got.body), `"key"`) {
		t.Errorf("state leaks key secrets: %s", got.body)
	}
	state := decode[sim.WorkspaceState](t, got)
	if state.Workspace.ID != idB || len(state.APIKeys) != 2 || state.APIKeys[1].Scopes[0] != "campaigns:read" {
		t.Errorf("state %s", got.body)
	}
	if state.APIKeys[0].OrganizationID != idB {
		t.Errorf("organization_id %q, want the workspace id", state.APIKeys[0].OrganizationID)
	}
	wantError(t, e.get("/_sim/workspaces/unknown", ""), http.StatusNotFound, "Resource not found")
	if got := e.get("/_sim/health", ""); got.status != http.StatusOK {
		t.Errorf("health %d", got.status)
	}
}

func TestAdminAPIKeys(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, _ := e.sim.CreateWorkspace("Acme")
	path := "/_sim/workspaces/" + wsID + "/api-keys"

	got := e.do(req{method: http.MethodPost, path: path, body: `{"name":"reader","scopes":["workspaces:read"]}`})
	if got.status != http.StatusCreated {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	if msg := sim.CheckComponent("APIKey", got.body); msg != "" {
		t.Errorf("created key breaks the spec's APIKey schema: %s\n%s", msg, got.body)
	}
	key := decode[sim.APIKey](t, got)
	if key.Name != "reader" || key.OrganizationID != wsID || key.Key == "" {
		t.Fatalf("key %s", got.body)
	}
	if e.get(currentPath, key.Key).status != http.StatusOK || e.patch(currentPath, key.Key, `{"name":"x"}`).status != http.StatusForbidden {
		t.Error("a workspaces:read key must read and not update")
	}

	for _, tt := range []struct{ body, message string }{
		{`{"name":"k"}`, "body must have required property 'scopes'"},
		{`{"name":"k","scopes":["workspaces:read","root:all"]}`, "body/scopes/1 must be equal to one of the allowed values"},
		{`{"name":"k","scopes":[],"key":"chosen"}`, "body must NOT have additional properties"},
	} {
		wantError(t, e.do(req{method: http.MethodPost, path: path, body: tt.body}), http.StatusBadRequest, tt.message)
	}
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces/nope/api-keys", body: `{"name":"k","scopes":[]}`}),
		http.StatusNotFound, "Resource not found")

	// Revocation answers the deleted key, without its secret; the key stops working.
	got = e.do(req{method: http.MethodDelete, path: path + "/" + key.ID})
	if got.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", got.status, got.body)
	}
	if revoked := decode[sim.APIKey](t, got); revoked.ID != key.ID || revoked.Key != "" {
		t.Errorf("revoked %s", got.body)
	}
	wantError(t, e.get(currentPath, key.Key), http.StatusUnauthorized, "")
	wantError(t, e.do(req{method: http.MethodDelete, path: path + "/" + key.ID}), http.StatusNotFound, "")
}

func TestGoAPIErrors(t *testing.T) {
	s := sim.New(sim.Config{})
	wsID, _ := s.CreateWorkspace("Acme")
	if _, err := s.CreateAPIKey("nope", "k", []string{"all:all"}); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("unknown workspace: %v", err)
	}
	if _, err := s.CreateAPIKey(wsID, "k", []string{"everything"}); !errors.Is(err, sim.ErrInvalid) {
		t.Errorf("bad scope: %v", err)
	}
	if err := s.RevokeAPIKey(wsID, "nope"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := s.WorkspaceState("nope"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("unknown workspace state: %v", err)
	}
	k, err := s.CreateAPIKey(wsID, "k", nil)
	if err != nil || k.Scopes == nil {
		t.Errorf("a key with no scopes: %+v, %v (scopes must encode as [])", k, err)
	}
}
