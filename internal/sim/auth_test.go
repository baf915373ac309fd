package sim_test

import (
	"net/http"
	"testing"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestAuth(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	revoked := mustKey(t, e.sim, wsID, "all:all")
	if err := e.sim.RevokeAPIKey(wsID, revoked.ID); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantMessage   string
	}{
		{"missing", "", http.StatusUnauthorized, "Missing Authorization header"},
		{"not bearer", "Basic " + key, http.StatusUnauthorized, "Invalid authorization header"},
		{"bearer without key", "Bearer ", http.StatusUnauthorized, "Invalid authorization header"},
		{"unknown key", "Bearer nope", http.StatusUnauthorized, "Invalid API key"},
		{"revoked key", "Bearer " + revoked.Key, http.StatusUnauthorized, "Invalid API key"},
		{"valid key", "Bearer " + key, http.StatusOK, ""},
		{"scheme is case-insensitive", "bearer " + key, http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := e.do(req{method: http.MethodGet, path: currentPath, authorization: tt.authorization})
			if tt.wantStatus != http.StatusOK {
				wantError(t, got, tt.wantStatus, tt.wantMessage)
			} else if got.status != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", got.status, got.body)
			}
		})
	}
	if st := e.stats(wsID); st.Requests != 2 {
		t.Errorf("requests %d, want 2: unauthenticated requests must count against no workspace", st.Requests)
	}
}

func TestScopes(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, _ := e.sim.CreateWorkspace("Acme")
	tests := []struct {
		scopes             []string
		wantGet, wantPatch int
	}{
		{[]string{"workspaces:read"}, http.StatusOK, http.StatusForbidden},
		{[]string{"workspaces:update"}, http.StatusForbidden, http.StatusOK},
		{[]string{"workspaces:all"}, http.StatusOK, http.StatusOK},
		{[]string{"all:read"}, http.StatusOK, http.StatusForbidden},
		{[]string{"all:update"}, http.StatusForbidden, http.StatusOK},
		{[]string{"all:all"}, http.StatusOK, http.StatusOK},
		{[]string{"campaigns:all", "workspace_members:read"}, http.StatusForbidden, http.StatusForbidden},
		{[]string{}, http.StatusForbidden, http.StatusForbidden},
	}
	for _, tt := range tests {
		key := mustKey(t, e.sim, wsID, tt.scopes...).Key
		get := e.get(currentPath, key)
		patch := e.patch(currentPath, key, `{"name":"Renamed"}`)
		if get.status != tt.wantGet || patch.status != tt.wantPatch {
			t.Errorf("scopes %v: GET %d PATCH %d, want %d %d", tt.scopes, get.status, patch.status, tt.wantGet, tt.wantPatch)
		}
		if get.status == http.StatusForbidden {
			wantError(t, get, http.StatusForbidden, "")
		}
		if patch.status == http.StatusForbidden {
			wantError(t, patch, http.StatusForbidden, "")
		}
	}
}
