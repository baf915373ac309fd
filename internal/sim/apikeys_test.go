package sim_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

const (
	keysPath    = "/api/v2/api-keys"
	keyPattern  = "/api/v2/api-keys/{id}"
	auditPath   = "/api/v2/audit-logs"
	mgmtScopes  = `["api_keys:all","audit_logs:read","workspaces:read"]`
	readerScope = `["workspaces:read"]`
)

func TestAPIKeysThroughTheAPI(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, rootKey := e.sim.CreateWorkspace("Acme")
	e.clock.Advance(time.Minute)

	created := decode[sim.APIKey](t, e.callAs(req{method: http.MethodPost, path: keysPath, key: rootKey,
		body: `{"name":"automation","scopes":` + mgmtScopes + `}`}, keysPath))
	if created.Name != "automation" || len(created.Key) != 68 || created.OrganizationID != wsID || len(created.Scopes) != 3 {
		t.Fatalf("created %+v", created)
	}
	// The new key works at once, with its scopes.
	mgmt := created.Key
	e.call(http.MethodGet, currentPath, currentPath, mgmt, "")
	wantError(t, e.get(tagsPath, mgmt), http.StatusForbidden, "")

	reader := decode[sim.APIKey](t, e.call(http.MethodPost, keysPath, keysPath, mgmt, `{"name":"reader","scopes":`+readerScope+`}`))

	// Lists never show a secret: the key is masked.
	l := decode[list[sim.APIKey]](t, e.call(http.MethodGet, keysPath, keysPath, mgmt, ""))
	if len(l.Items) != 3 || l.Items[1].ID != created.ID || l.Items[2].ID != reader.ID {
		t.Fatalf("list %+v", l.Items)
	}
	for _, k := range l.Items {
		if !strings.Contains(k.Key, "****") || k.Key == created.Key || k.Key == reader.Key || k.Key == rootKey || len(k.Key) != 68 {
			t.Errorf("listed key %q is not masked", k.Key)
		}
	}
	if l.Items[1].Key[:4] != created.Key[:4] || l.Items[1].Key[64:] != created.Key[64:] {
		t.Errorf("mask %q does not keep the ends of %q", l.Items[1].Key, created.Key)
	}

	// Deleting answers the key, masked; the key stops working.
	e.clock.Advance(time.Minute)
	deleted := decode[sim.APIKey](t, e.call(http.MethodDelete, keyPattern, keysPath+"/"+reader.ID, mgmt, ""))
	if deleted.ID != reader.ID || deleted.Key == reader.Key || !strings.Contains(deleted.Key, "****") {
		t.Errorf("deleted %+v", deleted)
	}
	wantError(t, e.get(currentPath, reader.Key), http.StatusUnauthorized, "Invalid API key")
	wantSpecError(t, http.MethodDelete, keyPattern, e.do(req{method: http.MethodDelete, path: keysPath + "/" + reader.ID, key: mgmt}), http.StatusNotFound, "Resource not found")

	for _, tt := range []struct {
		body, message string
	}{
		{`{"name":"x"}`, "body must have required property 'scopes'"},
		{`{"name":"x","scopes":["god:mode"]}`, "body/scopes/0 must be equal to one of the allowed values"},
		{`{"name":"x","scopes":[],"key":"mine"}`, "body must NOT have additional properties"},
	} {
		wantSpecError(t, http.MethodPost, keysPath, e.do(req{method: http.MethodPost, path: keysPath, key: mgmt, body: tt.body}), http.StatusBadRequest, tt.message)
	}
	noDelete := mustKey(t, e.sim, wsID, "api_keys:read", "api_keys:create")
	wantError(t, e.do(req{method: http.MethodDelete, path: keysPath + "/" + created.ID, key: noDelete.Key}), http.StatusForbidden, "")

	// Audit: one entry per API creation and deletion, newest first; none for Go-API keys.
	logs := decode[list[sim.AuditLog]](t, e.call(http.MethodGet, auditPath, auditPath, mgmt, ""))
	if len(logs.Items) != 3 {
		t.Fatalf("audit %+v", logs.Items)
	}
	want := []struct {
		activity      int
		caller, about string
		at            string
	}{
		{38, created.ID, reader.ID, "2026-03-01T12:02:00.000Z"},
		{37, created.ID, reader.ID, "2026-03-01T12:01:00.000Z"},
		{37, st(t, e, wsID).APIKeys[0].ID, created.ID, "2026-03-01T12:01:00.000Z"},
	}
	for i, w := range want {
		got := logs.Items[i]
		if got.ActivityType != w.activity || got.APIKeyID == nil || *got.APIKeyID != w.caller || !got.FromAPI ||
			got.AuditMetadata["api_key_id"] != w.about || got.Timestamp != w.at || got.OrganizationID != wsID || got.IPAddress != "127.0.0.1" {
			t.Errorf("audit %d: %+v, want %+v", i, got, w)
		}
	}

	// A key may delete itself: the request succeeds, the next one is refused.
	self := decode[sim.APIKey](t, e.call(http.MethodDelete, keyPattern, keysPath+"/"+created.ID, mgmt, ""))
	if self.ID != created.ID {
		t.Errorf("self-deletion answered %+v", self)
	}
	wantError(t, e.get(keysPath, mgmt), http.StatusUnauthorized, "Invalid API key")
	if logs := decode[list[sim.AuditLog]](t, e.get(auditPath, rootKey)); logs.Items[0].ActivityType != 38 || *logs.Items[0].APIKeyID != created.ID {
		t.Errorf("self-deletion audit %+v", logs.Items[0])
	}
}

func st(t *testing.T, e *env, wsID string) sim.WorkspaceState {
	t.Helper()
	s, err := e.sim.WorkspaceState(wsID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAPIKeysAsSubWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	sub, _ := e.sim.CreateWorkspace("Client")
	inv, _ := e.sim.InviteGroupMember(agency, sub)
	if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
		t.Fatal(err)
	}
	created := decode[sim.APIKey](t, e.callAs(req{method: http.MethodPost, path: keysPath, key: agencyKey, as: sub,
		body: `{"name":"for the client","scopes":["all:read"]}`}, keysPath))
	if created.OrganizationID != sub {
		t.Errorf("key made as the sub belongs to %s", created.OrganizationID)
	}
	logs := st(t, e, sub).AuditLogs
	if len(logs) != 1 || *logs[0].APIKeyID != st(t, e, agency).APIKeys[0].ID {
		t.Errorf("the sub's audit names the admin's key: %+v", logs)
	}
	if len(st(t, e, agency).AuditLogs) != 0 {
		t.Error("the admin's audit log got the sub's entry")
	}
	// The admin's own key is not the sub's to delete.
	wantError(t, e.do(req{method: http.MethodDelete, path: keysPath + "/" + st(t, e, agency).APIKeys[0].ID, key: agencyKey, as: sub}), http.StatusNotFound, "Resource not found")
}

func TestAuditLogFilters(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	name, agent := "Ann Admin", "Mozilla/5.0 AgencyPlane"
	add := func(activity int) {
		t.Helper()
		if _, err := e.sim.AddAuditLog(wsID, sim.AuditEntry{ActivityType: activity, UserName: &name}); err != nil {
			t.Fatal(err)
		}
	}
	add(1) // 2026-03-01 12:00 login
	e.clock.Advance(24 * time.Hour)
	add(4) // 2026-03-02 12:00 campaign launch
	e.clock.Advance(24 * time.Hour)
	// 2026-03-03 12:00: a key created through the API, from a named client.
	e.do(req{method: http.MethodPost, path: keysPath, key: key, body: `{"name":"nightly-sync","scopes":[]}`})
	got := e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/audit-logs",
		body: `{"activity_type":1,"user_agent":"` + agent + `","ip_address":"10.0.0.7","audit_metadata":{"mfa":true}}`})
	if got.status != http.StatusCreated {
		t.Fatalf("admin audit: %d %s", got.status, got.body)
	}
	if msg := sim.CheckComponent("AuditLog", got.body); msg != "" {
		t.Errorf("audit entry breaks the spec: %s", msg)
	}
	wantError(t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/audit-logs", body: `{"activity_type":13}`}),
		http.StatusBadRequest, "body/activity_type must be equal to one of the allowed values")
	if _, err := e.sim.AddAuditLog(wsID, sim.AuditEntry{ActivityType: 99}); err == nil {
		t.Error("AddAuditLog accepted activity type 99")
	}

	types := func(query string) []int {
		t.Helper()
		var out []int
		for _, a := range decode[list[sim.AuditLog]](t, e.call(http.MethodGet, auditPath, auditPath+query, key, "")).Items {
			out = append(out, a.ActivityType)
		}
		return out
	}
	for query, want := range map[string][]int{
		"":                                   {1, 37, 4, 1},
		"?activity_type=1":                   {1, 1},
		"?search=nightly":                    {37},
		"?search=ann%20admin":                {4, 1},
		"?search=10.0.0":                     {1},
		"?start_date=2026-03-02":             {1, 37, 4},
		"?end_date=2026-03-02":               {4, 1},
		"?start_date=2026-03-02T12:00:00Z":   {1, 37, 4},
		"?end_date=2026-03-02T11:59:59.999Z": {1},
		"?start_date=2026-03-02&end_date=2026-03-02&activity_type=4": {4},
		"?limit=1000": {1, 37, 4, 1},
	} {
		if got := types(query); !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", query, got, want)
		}
	}
	for query, message := range map[string]string{
		"?limit=1001":          "querystring/limit must be <= 1000",
		"?activity_type=login": "querystring/activity_type must be number",
		"?start_date=soon":     `querystring/start_date must match format "date-time"`,
	} {
		wantError(t, e.get(auditPath+query, key), http.StatusBadRequest, message)
	}
}
