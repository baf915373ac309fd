package sim_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestAdminSeedsCampaignsAndAccounts(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	base := "/_sim/workspaces/" + wsID

	got := e.do(req{method: http.MethodPost, path: base + "/campaigns", body: `{"name":"Q3 outbound","status":1}`})
	if got.status != http.StatusCreated {
		t.Fatalf("campaign: %d %s", got.status, got.body)
	}
	if msg := sim.CheckComponent("Campaign", got.body); msg != "" {
		t.Errorf("campaign breaks the spec: %s\n%s", msg, got.body)
	}
	cp := decode[sim.Campaign](t, got)
	if cp.Name != "Q3 outbound" || cp.Status != 1 || !idPattern.MatchString(cp.ID) || *cp.Organization != wsID {
		t.Errorf("campaign %+v", cp)
	}

	got = e.do(req{method: http.MethodPost, path: base + "/accounts", body: `{"email":"Sales@Acme.test","first_name":"Sal","provider_code":3,"status":-1,"stat_warmup_score":97}`})
	if got.status != http.StatusCreated {
		t.Fatalf("account: %d %s", got.status, got.body)
	}
	if msg := sim.CheckComponent("Account", got.body); msg != "" {
		t.Errorf("account breaks the spec: %s\n%s", msg, got.body)
	}
	acc := decode[sim.Account](t, got)
	if acc.Email != "sales@acme.test" || acc.FirstName != "Sal" || acc.ProviderCode != 3 || acc.Status != -1 || acc.Organization != wsID {
		t.Errorf("account %+v", acc)
	}
	if _, err := e.sim.AddAccount(wsID, "SALES@acme.test"); !errors.Is(err, sim.ErrConflict) {
		t.Errorf("the same email twice: %v", err)
	}
	if _, err := e.sim.AddAccount(wsID, "not an email"); !errors.Is(err, sim.ErrInvalid) {
		t.Errorf("bad email: %v", err)
	}
	if _, err := e.sim.AddCampaign(wsID, ""); !errors.Is(err, sim.ErrInvalid) {
		t.Errorf("empty name: %v", err)
	}
	if _, err := e.sim.AddCampaign("nope", "x"); !errors.Is(err, sim.ErrNotFound) {
		t.Errorf("unknown workspace: %v", err)
	}

	for _, tt := range []struct {
		path, body string
		status     int
		message    string
	}{
		{base + "/campaigns", `{}`, 400, "body must have required property 'name'"},
		{base + "/campaigns", `{"name":"x","status":7}`, 400, "body/status must be equal to one of the allowed values"},
		{base + "/accounts", `{"email":"x"}`, 400, `body/email must match format "email"`},
		{base + "/accounts", `{"email":"a@b.test","provider_code":5}`, 400, "body/provider_code must be equal to one of the allowed values"},
		{base + "/accounts", `{"email":"sales@acme.test"}`, 409, "An account with this email already exists"},
		{"/_sim/workspaces/nope/accounts", `{"email":"a@b.test"}`, 404, "Resource not found"},
		{"/_sim/workspaces/nope/campaigns", `{"name":"x"}`, 404, "Resource not found"},
	} {
		wantError(t, e.do(req{method: http.MethodPost, path: tt.path, body: tt.body}), tt.status, tt.message)
	}
	st, _ := e.sim.WorkspaceState(wsID)
	if len(st.Campaigns) != 1 || len(st.Accounts) != 1 {
		t.Errorf("state %+v", st)
	}
	e.call(http.MethodGet, campaignsPath, campaignsPath, key, "")
	e.call(http.MethodGet, accountsPath, accountsPath, key, "")
}

func TestCampaignFilters(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	for _, c := range []string{`{"name":"Draft one"}`, `{"name":"Active one","status":1}`, `{"name":"Paused","status":2}`, `{"name":"Active two","status":1}`} {
		e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/campaigns", body: c})
	}
	for query, want := range map[string][]string{
		"?status=1":                  {"Active one", "Active two"},
		"?exclude_status=1":          {"Draft one", "Paused"},
		"?search=ONE":                {"Draft one", "Active one"},
		"?search=one&status=1":       {"Active one"},
		"?ai_sales_agent_id=x":       nil,
		"?limit=2&exclude_status=-1": {"Draft one", "Active one"},
	} {
		var got []string
		for _, c := range decode[list[sim.Campaign]](t, e.call(http.MethodGet, campaignsPath, campaignsPath+query, key, "")).Items {
			got = append(got, c.Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", query, got, want)
		}
	}
	for query, message := range map[string]string{
		"?status=9":   "querystring/status must be equal to one of the allowed values",
		"?status=one": "querystring/status must be number",
		"?limit=-1":   "querystring/limit must be >= 1",
	} {
		wantSpecError(t, http.MethodGet, campaignsPath, e.get(campaignsPath+query, key), http.StatusBadRequest, message)
	}
}

func TestAccountsListing(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	add := func(body string) {
		t.Helper()
		if got := e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/accounts", body: body}); got.status != http.StatusCreated {
			t.Fatalf("%s: %d %s", body, got.status, got.body)
		}
	}
	// Two at 12:00 (listed by email), one at 12:01, one at 12:02.
	add(`{"email":"zed@acme.test","stat_warmup_score":50}`)
	add(`{"email":"amy@acme.test","status":2,"stat_warmup_score":90}`)
	e.clock.Advance(time.Minute)
	add(`{"email":"bob@acme.test","provider_code":3,"warmup_status":1,"tracking_domain_name":"track.acme.test"}`)
	e.clock.Advance(time.Minute)
	add(`{"email":"cat@acme.test","status":-2,"is_managed_account":true,"setup_pending":true,"warmup_status":-1}`)

	emails := func(query string) ([]string, string) {
		t.Helper()
		l := decode[list[sim.Account]](t, e.call(http.MethodGet, accountsPath, accountsPath+query, key, ""))
		var out []string
		for _, a := range l.Items {
			out = append(out, a.Email)
		}
		return out, l.NextStartingAfter
	}
	got, cursor := emails("?limit=3")
	if !slices.Equal(got, []string{"amy@acme.test", "zed@acme.test", "bob@acme.test"}) || cursor != "2026-03-01T12:01:00.000Z&bob@acme.test" {
		t.Fatalf("first page %v, cursor %q", got, cursor)
	}
	if got, _ := emails("?starting_after=" + url.QueryEscape("2026-03-01T12:00:00.000Z&amy@acme.test")); !slices.Equal(got, []string{"zed@acme.test", "bob@acme.test", "cat@acme.test"}) {
		t.Errorf("after amy: %v", got)
	}
	// The legacy cursor, a bare timestamp, skips everything created at or before it.
	if got, _ := emails("?starting_after=2026-03-01T12:00:00Z"); !slices.Equal(got, []string{"bob@acme.test", "cat@acme.test"}) {
		t.Errorf("after the legacy cursor: %v", got)
	}
	wantError(t, e.get(accountsPath+"?starting_after=yesterday", key), http.StatusBadRequest, "")

	for query, want := range map[string][]string{
		"?status=2":                                    {"amy@acme.test"},
		"?provider_code=3":                             {"bob@acme.test"},
		"?filter=ACC_FILTER_ERROR":                     {"cat@acme.test"},
		"?filter=ACC_FILTER_PAUSED":                    {"amy@acme.test"},
		"?filter=ACC_FILTER_NO_CTD":                    {"amy@acme.test", "zed@acme.test", "cat@acme.test"},
		"?filter=ACC_FILTER_DFY_SETUP_PENDING":         {"cat@acme.test"},
		"?filter=ACC_FILTER_W_ACTIVE":                  {"bob@acme.test"},
		"?filter=ACC_FILTER_W_ERROR":                   {"cat@acme.test"},
		"?filter=ACC_FILTER_PW_ACCOUNTS":               nil,
		"?search=AMY":                                  {"amy@acme.test"},
		"?sort_by=email":                               {"zed@acme.test", "cat@acme.test", "bob@acme.test", "amy@acme.test"},
		"?sort_by=email&sort_order=asc&skip=1&limit=2": {"bob@acme.test", "cat@acme.test"},
		"?sort_by=stat_warmup_score":                   {"amy@acme.test", "zed@acme.test", "bob@acme.test", "cat@acme.test"},
		"?sort_by=timestamp_created":                   {"cat@acme.test", "bob@acme.test", "amy@acme.test", "zed@acme.test"},
		"?skip=3":                                      {"cat@acme.test"},
	} {
		if got, _ := emails(query); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", query, got, want)
		}
	}
	if _, cursor := emails("?sort_by=email"); cursor != "" {
		t.Errorf("sort_by paginates by skip, yet a cursor came: %q", cursor)
	}
	for query, message := range map[string]string{
		"?filter=ACC_FILTER_NOPE": "querystring/filter must be equal to one of the allowed values",
		"?sort_by=name":           "querystring/sort_by must be equal to one of the allowed values",
		"?skip=-1":                "querystring/skip must be >= 0",
		"?include_tags=yes":       "querystring/include_tags must be boolean",
	} {
		wantSpecError(t, http.MethodGet, accountsPath, e.get(accountsPath+query, key), http.StatusBadRequest, message)
	}
	if body := string(e.get(accountsPath, key).body); strings.Contains(body, `"id"`) {
		t.Errorf("accounts have no id: %s", body)
	}
	// Cursors are sent as JSON.stringify would, "&" unescaped.
	if body := string(e.get(accountsPath+"?limit=1", key).body); !strings.Contains(body, `"next_starting_after":"2026-03-01T12:00:00.000Z&amy@acme.test"`) {
		t.Errorf("raw cursor: %s", body)
	}
	// A quirk of the spec: with include_tags the items carry "tags", which the response schema
	// declares in an allOf next to Account's additionalProperties: false, so a strict
	// validator refuses exactly what the parameter documents. The simulator sends the tags.
	withTags := e.get(accountsPath+"?include_tags=true", key)
	if msg := sim.CheckResponse(http.MethodGet, accountsPath, http.StatusOK, withTags.body); msg != "response/items/0 must NOT have additional properties" {
		t.Errorf("include_tags against the spec: %q", msg)
	}
}
