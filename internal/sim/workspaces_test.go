package sim_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// Workspaces and users have random (version 4) ids; everything else has time-ordered
// (version 7) ids, which is what lets lists paginate by comparing ids.
var (
	uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	idPattern   = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

func TestGetCurrentWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme Outbound")
	got := e.get(currentPath, key)
	if got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	if msg := sim.CheckResponse(http.MethodGet, currentPath, http.StatusOK, got.body); msg != "" {
		t.Errorf("response breaks the spec's Workspace schema: %s\n%s", msg, got.body)
	}
	ws := decode[map[string]any](t, got)
	if ws["id"] != wsID || ws["name"] != "Acme Outbound" || !uuidPattern.MatchString(ws["owner"].(string)) {
		t.Errorf("workspace %s", got.body)
	}
	created := e.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	if ws["timestamp_created"] != created || ws["timestamp_updated"] != created {
		t.Errorf("timestamps %v %v, want %s", ws["timestamp_created"], ws["timestamp_updated"], created)
	}
	// Every property of the spec's Workspace is present, nullable ones as null.
	for _, field := range []string{"scheduled_for_removal_at", "plan_id", "plan_id_bundle", "add_unsub_to_block",
		"default_opportunity_value", "plan_id_leadfinder", "plan_id_verification", "org_logo_url",
		"org_client_domain", "plan_id_crm", "plan_id_website_visitor", "plan_id_inbox_placement"} {
		if _, ok := ws[field]; !ok {
			t.Errorf("missing %q", field)
		}
	}
	if !strings.Contains(string(got.body), `"org_logo_url":null`) {
		t.Errorf("org_logo_url should be null: %s", got.body)
	}
}

func TestPatchCurrentWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{})
	_, key := e.sim.CreateWorkspace("Acme")
	e.clock.Advance(time.Hour)

	got := e.patch(currentPath, key, `{"name":"Acme EU","org_logo_url":"https://cdn.test/logo.png"}`)
	if got.status != http.StatusOK {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	if msg := sim.CheckResponse(http.MethodPatch, currentPath, http.StatusOK, got.body); msg != "" {
		t.Errorf("response breaks the spec: %s", msg)
	}
	ws := decode[sim.Workspace](t, got)
	if ws.Name != "Acme EU" || ws.OrgLogoURL == nil || *ws.OrgLogoURL != "https://cdn.test/logo.png" {
		t.Errorf("patched workspace %s", got.body)
	}
	if want := e.clock.Now().UTC().Format("2006-01-02T15:04:05.000Z"); ws.TimestampUpdated != want || ws.TimestampCreated == want {
		t.Errorf("timestamps created %s updated %s, want updated %s", ws.TimestampCreated, ws.TimestampUpdated, want)
	}

	// null clears the logo and leaves the name alone.
	ws = decode[sim.Workspace](t, e.patch(currentPath, key, `{"org_logo_url":null}`))
	if ws.OrgLogoURL != nil || ws.Name != "Acme EU" {
		t.Errorf("after clearing the logo: %+v", ws)
	}
	if after := decode[sim.Workspace](t, e.get(currentPath, key)); after.Name != "Acme EU" || after.OrgLogoURL != nil {
		t.Errorf("GET after PATCH: %+v", after)
	}
}

func TestPatchCurrentWorkspaceRejectsBadBodies(t *testing.T) {
	tests := []struct {
		name, body, contentType string
		wantStatus              int
		wantMessage             string
	}{
		{"unknown property", `{"name":"x","plan_id":"free"}`, "", 400, "body must NOT have additional properties"},
		{"name not a string", `{"name":42}`, "", 400, "body/name must be string"},
		{"logo not a string", `{"org_logo_url":["a"]}`, "", 400, "body/org_logo_url must be string,null"},
		{"no properties", `{}`, "", 400, "body must NOT have fewer than 1 properties"},
		{"not an object", `["name"]`, "", 400, "body must be object"},
		{"malformed JSON", `{"name":`, "", 400, "Body is not valid JSON but content-type is set to 'application/json'"},
		{"no body", ``, "-", 400, "body must be object"},
		{"empty body declared JSON", ``, "application/json", 400, "Body cannot be empty when content-type is set to 'application/json'"},
		{"not JSON", `name=x`, "application/x-www-form-urlencoded", 415, "Unsupported Media Type: application/x-www-form-urlencoded"},
		{"JSON with charset", `{"name":"ok"}`, "application/json; charset=utf-8", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, sim.Config{})
			wsID, key := e.sim.CreateWorkspace("Acme")
			ct := tt.contentType
			if ct == "-" {
				ct = ""
			}
			r := req{method: http.MethodPatch, path: currentPath, key: key, body: tt.body, contentType: ct}
			if tt.contentType == "" && tt.body != "" {
				r.contentType = "application/json"
			}
			got := e.do(r)
			if tt.wantStatus == http.StatusOK {
				if got.status != http.StatusOK {
					t.Fatalf("status %d: %s", got.status, got.body)
				}
				return
			}
			wantError(t, got, tt.wantStatus, tt.wantMessage)
			if state, _ := e.sim.WorkspaceState(wsID); state.Workspace.Name != "Acme" || state.Workspace.OrgLogoURL != nil {
				t.Errorf("a rejected PATCH changed state: %+v", state.Workspace)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t, sim.Config{})
	_, key := e.sim.CreateWorkspace("Acme")
	for _, r := range []req{
		{method: http.MethodGet, path: "/api/v2/nope", key: key},
		{method: http.MethodGet, path: "/api/v2/workspaces/current/", key: key},
		{method: http.MethodDelete, path: currentPath, key: key},
		{method: http.MethodGet, path: "/api/v2/nope"}, // unknown routes answer 404 before auth
		{method: http.MethodGet, path: "/"},
		{method: http.MethodGet, path: "/_sim/nope"},
		{method: http.MethodPut, path: "/_sim/workspaces"},
	} {
		wantError(t, e.do(r), http.StatusNotFound, "Resource not found")
	}
}
