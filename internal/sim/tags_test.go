package sim_test

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

const (
	tagsPath      = "/api/v2/custom-tags"
	tagPattern    = "/api/v2/custom-tags/{id}"
	togglePath    = "/api/v2/custom-tags/toggle-resource"
	mappingsPath  = "/api/v2/custom-tag-mappings"
	campaignsPath = "/api/v2/campaigns"
	accountsPath  = "/api/v2/accounts"
)

func TestCustomTagsCRUD(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")

	created := decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"  VIP  ","description":"Top clients"}`))
	if created.Label != "VIP" || *created.Description != "Top clients" || created.OrganizationID != wsID || !idPattern.MatchString(created.ID) {
		t.Fatalf("created %+v", created)
	}
	plain := decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"Cold"}`))
	if plain.Description != nil || !strings.Contains(string(e.get(tagsPath+"/"+plain.ID, key).body), `"description":null`) {
		t.Errorf("a tag without description: %+v", plain)
	}
	path := tagsPath + "/" + created.ID
	if got := e.call(http.MethodGet, tagPattern, path, key, ""); !reflect.DeepEqual(decode[sim.CustomTag](t, got), created) {
		t.Errorf("get %s, want %+v", got.body, created)
	}

	e.clock.Advance(time.Minute)
	patched := decode[sim.CustomTag](t, e.call(http.MethodPatch, tagPattern, path, key, `{"label":"vip ","description":null}`))
	if patched.Label != "vip" || patched.Description != nil || patched.TimestampUpdated != "2026-03-01T12:01:00.000Z" || patched.TimestampCreated == patched.TimestampUpdated {
		t.Errorf("patched %+v (renaming a tag to its own label in another case is allowed)", patched)
	}
	patched = decode[sim.CustomTag](t, e.call(http.MethodPatch, tagPattern, path, key, `{"description":"again"}`))
	if patched.Label != "vip" || *patched.Description != "again" {
		t.Errorf("patched description %+v", patched)
	}

	for _, tt := range []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"duplicate label", http.MethodPost, tagsPath, `{"label":"Cold"}`, 409, "A tag with this name already exists."},
		{"duplicate after trimming and case", http.MethodPost, tagsPath, `{"label":" cOLD\t"}`, 409, "A tag with this name already exists."},
		{"rename onto another tag", http.MethodPatch, path, `{"label":"COLD"}`, 409, "A tag with this name already exists."},
		{"blank label", http.MethodPost, tagsPath, `{"label":"   "}`, 400, `body/label must match pattern ".*\S.*"`},
		{"empty label", http.MethodPost, tagsPath, `{"label":""}`, 400, "body/label must NOT have fewer than 1 characters"},
		{"no label", http.MethodPost, tagsPath, `{"description":"x"}`, 400, "body must have required property 'label'"},
		{"empty patch", http.MethodPatch, path, `{}`, 400, "body must NOT have fewer than 1 properties"},
		{"unknown get", http.MethodGet, tagsPath + "/nope", ``, 404, "Resource not found"},
		{"unknown patch", http.MethodPatch, tagsPath + "/nope", `{"label":"x"}`, 404, "Resource not found"},
		{"unknown delete", http.MethodDelete, tagsPath + "/nope", ``, 404, "Resource not found"},
		{"limit too big", http.MethodGet, tagsPath + "?limit=500", ``, 400, "querystring/limit must be <= 100"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pattern := tagPattern
			if tt.path == tagsPath || strings.HasPrefix(tt.path, tagsPath+"?") {
				pattern = tagsPath
			}
			wantSpecError(t, tt.method, pattern, e.do(req{method: tt.method, path: tt.path, key: key, body: tt.body}), tt.status, tt.message)
		})
	}

	deleted := decode[sim.CustomTag](t, e.call(http.MethodDelete, tagPattern, path, key, ""))
	if deleted.ID != created.ID {
		t.Errorf("deleted %+v", deleted)
	}
	wantError(t, e.get(path, key), http.StatusNotFound, "Resource not found")
	// The label is free again.
	e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"VIP"}`)
}

func TestToggleResourceAndFilters(t *testing.T) {
	e := newEnv(t, sim.Config{})
	_, key, campaigns, accounts := e.seed("Acme", 4)
	newTag := func(label string) sim.CustomTag {
		return decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"`+label+`"}`))
	}
	vip, eu, spare := newTag("VIP"), newTag("EU"), newTag("Spare")
	toggle := func(body string) {
		t.Helper()
		got := decode[map[string]any](t, e.call(http.MethodPost, togglePath, togglePath, key, body))
		if len(got) != 1 || got["success"] != true {
			t.Fatalf("toggle answered %v", got)
		}
	}
	q := func(ids ...string) string { return `["` + strings.Join(ids, `","`) + `"]` }

	// Campaigns 0 and 1 get VIP, campaign 1 also EU; twice, to show idempotence.
	for range 2 {
		toggle(`{"tag_ids":` + q(vip.ID) + `,"resource_type":2,"assign":true,"resource_ids":` + q(campaigns[0].ID, campaigns[1].ID) + `}`)
		toggle(`{"tag_ids":` + q(eu.ID, eu.ID) + `,"resource_type":2,"assign":true,"resource_ids":` + q(campaigns[1].ID) + `}`)
	}
	// Accounts (keyed by email, in any case): 0 gets VIP and EU, 2 gets EU.
	toggle(`{"tag_ids":` + q(vip.ID, eu.ID) + `,"resource_type":1,"assign":true,"resource_ids":` + q(strings.ToUpper(accounts[0].Email)) + `}`)
	toggle(`{"tag_ids":` + q(eu.ID) + `,"resource_type":1,"assign":true,"resource_ids":` + q(accounts[2].Email) + `}`)

	mappings := decode[list[sim.CustomTagMapping]](t, e.call(http.MethodGet, mappingsPath, mappingsPath+"?limit=100", key, ""))
	if len(mappings.Items) != 6 {
		t.Fatalf("%d mappings, want 6 (assigning twice keeps one): %+v", len(mappings.Items), mappings.Items)
	}
	for _, m := range mappings.Items {
		if (m.ResourceType == 1) != strings.Contains(m.ResourceID, "@") {
			t.Errorf("mapping %+v: type 1 is an account (its email), 2 a campaign", m)
		}
	}

	names := func(path string) []string {
		t.Helper()
		pattern, _, _ := strings.Cut(path, "?")
		l := decode[list[map[string]any]](t, e.call(http.MethodGet, pattern, path, key, ""))
		var out []string
		for _, it := range l.Items {
			if n, ok := it["name"].(string); ok {
				out = append(out, n)
			} else {
				out = append(out, it["email"].(string))
			}
		}
		return out
	}
	tests := []struct {
		path string
		want []string
	}{
		{campaignsPath, []string{"Campaign 0", "Campaign 1", "Campaign 2", "Campaign 3"}},
		{campaignsPath + "?tag_ids=" + vip.ID, []string{"Campaign 0", "Campaign 1"}},
		{campaignsPath + "?tag_ids=" + eu.ID, []string{"Campaign 1"}},
		{campaignsPath + "?tag_ids=" + eu.ID + "," + vip.ID, []string{"Campaign 0", "Campaign 1"}},
		{campaignsPath + "?tag_ids=" + spare.ID, nil},
		{campaignsPath + "?tag_ids=" + vip.ID + "&search=campaign%201", []string{"Campaign 1"}},
		{accountsPath + "?tag_ids=" + vip.ID, []string{accounts[0].Email}},
		{accountsPath + "?tag_ids=" + eu.ID, []string{accounts[0].Email, accounts[2].Email}},
		{accountsPath + "?tag_ids=" + vip.ID + "," + eu.ID, []string{accounts[0].Email, accounts[2].Email}},
		{accountsPath + "?tag_ids_all=" + vip.ID + "," + eu.ID, []string{accounts[0].Email}},
		{accountsPath + "?tag_ids_all=" + eu.ID + "&tag_ids=" + spare.ID, nil},
		{accountsPath + "?search=SENDER3", []string{accounts[3].Email}},
	}
	for _, tt := range tests {
		if got := names(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.path, got, tt.want)
		}
	}

	// Tag and mapping lists filter by resource and by tag.
	tagLabels := func(query string) []string {
		var out []string
		for _, tg := range decode[list[sim.CustomTag]](t, e.call(http.MethodGet, tagsPath, tagsPath+query, key, "")).Items {
			out = append(out, tg.Label)
		}
		return out
	}
	for query, want := range map[string][]string{
		"":                                          {"VIP", "EU", "Spare"},
		"?resource_ids=" + campaigns[1].ID:          {"VIP", "EU"},
		"?resource_ids=" + accounts[2].Email:        {"EU"},
		"?resource_ids=" + campaigns[3].ID:          nil,
		"?tag_ids=" + spare.ID + "," + vip.ID:       {"VIP", "Spare"},
		"?search=s":                                 {"Spare"},
		"?search=v&resource_ids=" + campaigns[0].ID: {"VIP"},
	} {
		if got := tagLabels(query); !slices.Equal(got, want) {
			t.Errorf("tags%s: %v, want %v", query, got, want)
		}
	}
	byResource := decode[list[sim.CustomTagMapping]](t, e.get(mappingsPath+"?resource_ids="+accounts[0].Email+","+campaigns[0].ID, key))
	if len(byResource.Items) != 3 {
		t.Errorf("mappings of account 0 and campaign 0: %+v", byResource.Items)
	}

	// include_tags embeds each account's tags.
	withTags := decode[list[struct {
		Email string
		Tags  []sim.TagRef
	}]](t, e.get(accountsPath+"?include_tags=true&tag_ids="+vip.ID, key))
	if len(withTags.Items) != 1 || len(withTags.Items[0].Tags) != 2 || withTags.Items[0].Tags[0].Label != "VIP" {
		t.Errorf("include_tags: %+v", withTags.Items)
	}
	if strings.Contains(string(e.get(accountsPath, key).body), `"tags"`) {
		t.Error("tags present without include_tags")
	}

	// Unassigning removes only the named pairs; unassigning again is harmless.
	for range 2 {
		toggle(`{"tag_ids":` + q(vip.ID) + `,"resource_type":2,"assign":false,"resource_ids":` + q(campaigns[1].ID) + `}`)
	}
	if got := names(campaignsPath + "?tag_ids=" + vip.ID); !slices.Equal(got, []string{"Campaign 0"}) {
		t.Errorf("after unassigning: %v", got)
	}
	// The same id under the other resource type is another resource.
	toggle(`{"tag_ids":` + q(eu.ID) + `,"resource_type":2,"assign":false,"resource_ids":` + q(campaigns[1].ID) + `}`)
	if got := names(accountsPath + "?tag_ids=" + eu.ID); len(got) != 2 {
		t.Errorf("unassigning campaigns touched accounts: %v", got)
	}

	// Deleting a tag removes its mappings.
	e.call(http.MethodDelete, tagPattern, tagsPath+"/"+eu.ID, key, "")
	for _, m := range decode[list[sim.CustomTagMapping]](t, e.get(mappingsPath+"?limit=100", key)).Items {
		if m.TagID == eu.ID {
			t.Errorf("mapping of a deleted tag survives: %+v", m)
		}
	}
	if got := names(accountsPath + "?tag_ids=" + eu.ID); got != nil {
		t.Errorf("accounts still filtered by a deleted tag: %v", got)
	}
}

func TestToggleResourceErrors(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key, campaigns, accounts := e.seed("Acme", 1)
	tag := decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"VIP"}`))
	otherID, _ := e.sim.CreateWorkspace("Other")
	foreign, _ := e.sim.AddCampaign(otherID, "Not yours")

	tests := []struct {
		name, body string
		status     int
		message    string
	}{
		{"no resources", `{"tag_ids":["` + tag.ID + `"],"resource_type":2,"assign":true}`, 400, "body must have required property 'resource_ids'"},
		{"no tags", `{"tag_ids":[],"resource_type":2,"assign":true,"resource_ids":["x"]}`, 400, "body/tag_ids must NOT have fewer than 1 items"},
		{"bad type", `{"tag_ids":["` + tag.ID + `"],"resource_type":3,"assign":true,"resource_ids":["x"]}`, 400, "body/resource_type must be equal to one of the allowed values"},
		{"no assign", `{"tag_ids":["` + tag.ID + `"],"resource_type":2,"resource_ids":["x"]}`, 400, "body must have required property 'assign'"},
		{"old seed shape", `{"tag_id":"` + tag.ID + `","resource_id":"x","resource_type":2,"assign":true}`, 400, "body must have required property 'tag_ids'"},
		{"old seed shape with tag_ids", `{"tag_ids":["` + tag.ID + `"],"resource_id":"x","resource_type":2,"assign":true}`, 400, "body must NOT have additional properties"},
		// The spec's filter.tag_id is oneOf [string, enum "no-tag"]: "no-tag" matches both
		// branches, so AJV refuses exactly the value the enum documents.
		{"no-tag filter", `{"tag_ids":["` + tag.ID + `"],"resource_type":1,"assign":true,"selected_all":true,"filter":{"tag_id":"no-tag"}}`, 400, "body/filter must match exactly one schema in oneOf"},
		{"unknown tag", `{"tag_ids":["nope"],"resource_type":2,"assign":true,"resource_ids":["` + campaigns[0].ID + `"]}`, 404, "Resource not found"},
		{"unknown campaign", `{"tag_ids":["` + tag.ID + `"],"resource_type":2,"assign":true,"resource_ids":["` + campaigns[0].ID + `","nope"]}`, 404, "Resource not found"},
		{"another workspace's campaign", `{"tag_ids":["` + tag.ID + `"],"resource_type":2,"assign":true,"resource_ids":["` + foreign.ID + `"]}`, 404, "Resource not found"},
		{"campaign id as account", `{"tag_ids":["` + tag.ID + `"],"resource_type":1,"assign":true,"resource_ids":["` + campaigns[0].ID + `"]}`, 404, "Resource not found"},
		{"account email as campaign", `{"tag_ids":["` + tag.ID + `"],"resource_type":2,"assign":true,"resource_ids":["` + accounts[0].Email + `"]}`, 404, "Resource not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantSpecError(t, http.MethodPost, togglePath, e.do(req{method: http.MethodPost, path: togglePath, key: key, body: tt.body}), tt.status, tt.message)
		})
	}
	if st, _ := e.sim.WorkspaceState(wsID); len(st.CustomTagMappings) != 0 {
		t.Errorf("failed toggles left mappings: %+v", st.CustomTagMappings)
	}
	// No scope is documented: a key with none may toggle; a valid key is still required.
	bare := mustKey(t, e.sim, wsID)
	e.call(http.MethodPost, togglePath, togglePath, bare.Key, `{"tag_ids":["`+tag.ID+`"],"resource_type":2,"assign":true,"resource_ids":["`+campaigns[0].ID+`"]}`)
	wantError(t, e.do(req{method: http.MethodPost, path: togglePath, body: `{}`}), http.StatusUnauthorized, "Missing Authorization header")
	wantError(t, e.get(tagsPath, bare.Key), http.StatusForbidden, "")
}

func TestToggleResourceSelectedAll(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key, campaigns, accounts := e.seed("Acme", 4)
	paused := decode[sim.Account](t, e.do(req{method: http.MethodPost, path: "/_sim/workspaces/" + wsID + "/accounts",
		body: `{"email":"paused@acme.test","status":2,"warmup_status":1}`}))
	tag := func(label string) string {
		return decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"`+label+`"}`)).ID
	}
	all, vip, pausedTag, single, both := tag("All"), tag("VIP"), tag("Paused"), tag("Single"), tag("Both")
	toggle := func(body string) {
		t.Helper()
		e.call(http.MethodPost, togglePath, togglePath, key, body)
	}
	tagged := func(path, tagID string) []string {
		t.Helper()
		var out []string
		for _, it := range decode[list[map[string]any]](t, e.get(path+"?limit=100&tag_ids="+tagID, key)).Items {
			if email, ok := it["email"].(string); ok {
				out = append(out, email)
			} else {
				out = append(out, it["id"].(string))
			}
		}
		return out
	}

	// Everything but one; resource_ids are ignored with selected_all.
	toggle(`{"tag_ids":["` + all + `"],"resource_type":1,"assign":true,"selected_all":true,"excluded_resource_ids":["` + accounts[1].Email + `"],"resource_ids":["ignored@nowhere.test"]}`)
	if got := tagged(accountsPath, all); len(got) != 4 || slices.Contains(got, accounts[1].Email) {
		t.Errorf("selected_all minus one: %v", got)
	}
	toggle(`{"tag_ids":["` + vip + `"],"resource_type":1,"assign":true,"resource_ids":["` + accounts[0].Email + `","` + accounts[3].Email + `"]}`)

	// The account-status filter as a string.
	toggle(`{"tag_ids":["` + pausedTag + `"],"resource_type":1,"assign":true,"selected_all":true,"filter":"ACC_FILTER_PAUSED"}`)
	if got := tagged(accountsPath, pausedTag); !slices.Equal(got, []string{paused.Email}) {
		t.Errorf("ACC_FILTER_PAUSED: %v", got)
	}
	// The object filter: one tag, then all-of tags with a search.
	toggle(`{"tag_ids":["` + single + `"],"resource_type":1,"assign":true,"selected_all":true,"filter":{"tag_id":"` + vip + `","filter":"ACC_FILTER_W_PAUSED"}}`)
	if got := tagged(accountsPath, single); !slices.Equal(got, []string{accounts[0].Email, accounts[3].Email}) {
		t.Errorf("filter.tag_id: %v", got)
	}
	toggle(`{"tag_ids":["` + both + `"],"resource_type":1,"assign":true,"selected_all":true,"filter":{"tag_ids_all":["` + all + `","` + vip + `"],"search":"sender3"}}`)
	if got := tagged(accountsPath, both); !slices.Equal(got, []string{accounts[3].Email}) {
		t.Errorf("tag_ids_all + filter.search: %v", got)
	}
	// The top-level search wins over filter.search; campaigns match by name.
	toggle(`{"tag_ids":["` + all + `"],"resource_type":2,"assign":true,"selected_all":true,"search":"campaign 2","filter":{"search":"nothing"}}`)
	if got := tagged(campaignsPath, all); !slices.Equal(got, []string{campaigns[2].ID}) {
		t.Errorf("campaigns by search: %v", got)
	}
	// Unassigning with selected_all.
	toggle(`{"tag_ids":["` + all + `"],"resource_type":1,"assign":false,"selected_all":true,"filter":{"tag_ids":["` + vip + `"]}}`)
	if got := tagged(accountsPath, all); len(got) != 2 || slices.Contains(got, accounts[0].Email) || slices.Contains(got, accounts[3].Email) {
		t.Errorf("after unassigning the VIPs: %v", got)
	}
}
