package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

const (
	provisionerToken = "agp_provisioner-token-for-tests-0000000000000"
	viewerToken      = "agp_viewer-token-for-tests-00000000000000000000"
)

type client struct {
	t     *testing.T
	base  string
	token string
}

func start(t *testing.T, st scim.Store) *client {
	t.Helper()
	tokens := memory.New().Tokens()
	for tok, role := range map[string]string{provisionerToken: auth.RoleProvisioner, viewerToken: auth.RoleViewer} {
		if err := tokens.Create(context.Background(), &store.Token{ID: role, Hash: auth.HashToken(tok), Role: role, CreateTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	authn, err := auth.NewAuthenticator(auth.Options{Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	h, err := scim.New(scim.Options{Store: st, Authn: authn})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &client{t: t, base: srv.URL + scim.Prefix, token: provisionerToken}
}

func backends(t *testing.T, run func(t *testing.T, c *client)) {
	t.Run("memory", func(t *testing.T) { run(t, start(t, scim.NewMemory())) })
	t.Run("redis", func(t *testing.T) {
		run(t, start(t, scim.NewRedis(redistest.Start(t), redistest.Prefix(t))))
	})
}

// do sends a request and decodes the JSON answer (nil for 204).
func (c *client) do(method, path string, body any, want int) map[string]any {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if len(data) == 0 {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		c.t.Fatalf("%s %s: %v: %s", method, path, err, data)
	}
	return out
}

func filterQ(attr, v string) string {
	return "filter=" + url.QueryEscape(fmt.Sprintf(`%s eq "%s"`, attr, v))
}

func resources(m map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range m["Resources"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func members(g map[string]any) []string {
	var out []string
	ms, _ := g["members"].([]any)
	for _, m := range ms {
		out = append(out, m.(map[string]any)["value"].(string))
	}
	return out
}

func patch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}
}

// TestOktaSequence replays Okta's documented provisioning calls: look up
// by userName, create, read, push a group, add and remove a member,
// rename the group, deactivate, reactivate, delete the group.
func TestOktaSequence(t *testing.T) {
	backends(t, func(t *testing.T, c *client) {
		if got := c.do("GET", "/Users?"+filterQ("userName", "dana@agency.example")+"&startIndex=1&count=100", nil, 200); got["totalResults"].(float64) != 0 {
			t.Fatalf("lookup before create: %v", got)
		}
		user := map[string]any{
			"schemas": []string{scim.SchemaUser}, "userName": "dana@agency.example",
			"name":        map[string]any{"givenName": "Dana", "familyName": "Scully"},
			"emails":      []any{map[string]any{"primary": true, "value": "dana@agency.example", "type": "work"}},
			"displayName": "Dana Scully", "locale": "en-US", "externalId": "00u1", "groups": []any{},
			"password": "t1meMa$heen", "active": true,
		}
		created := c.do("POST", "/Users", user, 201)
		id := created["id"].(string)
		if created["active"] != true || created["userName"] != "dana@agency.example" || created["password"] != nil {
			t.Fatalf("created %v", created)
		}
		// Okta expects 409 for a duplicate userName (any case).
		user["userName"] = "DANA@agency.example"
		c.do("POST", "/Users", user, 409)
		c.do("GET", "/Users/"+id, nil, 200)
		got := c.do("GET", "/Users?"+filterQ("userName", "dana@AGENCY.example"), nil, 200)
		if got["totalResults"].(float64) != 1 || resources(got)[0]["id"] != id {
			t.Fatalf("lookup after create: %v", got)
		}

		g := c.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "sdr-west", "members": []any{}}, 201)
		gid := g["id"].(string)
		add := patch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": id, "display": "dana@agency.example"}}})
		c.do("PATCH", "/Groups/"+gid, add, 204)
		v1 := c.do("GET", "/Groups/"+gid, nil, 200)
		c.do("PATCH", "/Groups/"+gid, add, 204) // Okta retries: nothing changes twice
		v2 := c.do("GET", "/Groups/"+gid, nil, 200)
		if fmt.Sprint(members(v2)) != "["+id+"]" || v1["meta"].(map[string]any)["version"] != v2["meta"].(map[string]any)["version"] {
			t.Fatalf("after add twice: %v then %v", v1, v2)
		}
		u := c.do("GET", "/Users/"+id, nil, 200)
		if gs, _ := u["groups"].([]any); len(gs) != 1 || gs[0].(map[string]any)["display"] != "sdr-west" {
			t.Fatalf("user's groups %v", u["groups"])
		}
		c.do("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "remove", "path": `members[value eq "` + id + `"]`}), 204)
		if m := members(c.do("GET", "/Groups/"+gid, nil, 200)); len(m) != 0 {
			t.Fatalf("members after remove: %v", m)
		}
		c.do("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "replace", "value": map[string]any{"id": gid, "displayName": "sdr-west-2"}}), 204)
		if got := c.do("GET", "/Groups?"+filterQ("displayName", "sdr-west-2"), nil, 200); got["totalResults"].(float64) != 1 {
			t.Fatalf("renamed group not found: %v", got)
		}

		deact := patch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
		if got := c.do("PATCH", "/Users/"+id, deact, 200); got["active"] != false {
			t.Fatalf("deactivated %v", got)
		}
		if got := c.do("PATCH", "/Users/"+id, patch(map[string]any{"op": "replace", "value": map[string]any{"active": true}}), 200); got["active"] != true {
			t.Fatalf("reactivated %v", got)
		}
		c.do("DELETE", "/Groups/"+gid, nil, 204)
		c.do("GET", "/Groups/"+gid, nil, 404)
	})
}

// TestEntraSequence replays Microsoft Entra's provisioning calls with its
// quirks: PascalCase ops, "False" as a string, Add and Replace for the
// same change, members removed by value list, excludedAttributes.
func TestEntraSequence(t *testing.T) {
	backends(t, func(t *testing.T, c *client) {
		c.do("GET", "/Users?"+filterQ("userName", "ryan@agency.example"), nil, 200)
		created := c.do("POST", "/Users", map[string]any{
			"schemas":    []string{scim.SchemaUser, scim.SchemaEnterprise},
			"externalId": "ryan", "userName": "ryan@agency.example", "active": true, "displayName": "Ryan Leenay",
			"emails":              []any{map[string]any{"primary": true, "type": "work", "value": "ryan@agency.example"}},
			"meta":                map[string]any{"resourceType": "User"},
			"name":                map[string]any{"formatted": "Ryan Leenay", "familyName": "Leenay", "givenName": "Ryan"},
			"roles":               []any{},
			scim.SchemaEnterprise: map[string]any{"department": "Sales"},
		}, 201)
		id := created["id"].(string)
		c.do("PATCH", "/Users/"+id, patch(
			map[string]any{"op": "Replace", "path": "displayName", "value": "Ryan L."},
			map[string]any{"op": "Add", "path": `emails[type eq "work"].value`, "value": "ryan.l@agency.example"},
			map[string]any{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Ops"},
		), 200)
		u := c.do("GET", "/Users/"+id, nil, 200)
		if u["displayName"] != "Ryan L." || u["emails"].([]any)[0].(map[string]any)["value"] != "ryan.l@agency.example" {
			t.Fatalf("after PATCH %v", u)
		}

		if got := c.do("GET", "/Groups?excludedAttributes=members&"+filterQ("displayName", "sdr-east"), nil, 200); got["totalResults"].(float64) != 0 {
			t.Fatalf("group lookup %v", got)
		}
		g := c.do("POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "externalId": "g-1", "displayName": "sdr-east",
			"meta": map[string]any{"resourceType": "Group"}, "members": []any{}}, 201)
		gid := g["id"].(string)
		c.do("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": id}}}), 204)
		// Entra sometimes says Replace for the same change.
		c.do("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": id}}}), 204)
		if got := c.do("GET", "/Groups?excludedAttributes=members&"+filterQ("displayName", "SDR-EAST"), nil, 200); len(resources(got)) != 1 || resources(got)[0]["members"] != nil {
			t.Fatalf("excludedAttributes=members: %v", got)
		}
		if m := members(c.do("GET", "/Groups/"+gid, nil, 200)); fmt.Sprint(m) != "["+id+"]" {
			t.Fatalf("members %v", m)
		}
		c.do("PATCH", "/Groups/"+gid, patch(map[string]any{"op": "Remove", "path": "members", "value": []any{map[string]any{"value": id}}}), 204)
		if m := members(c.do("GET", "/Groups/"+gid, nil, 200)); len(m) != 0 {
			t.Fatalf("members after Remove %v", m)
		}

		deact := patch(map[string]any{"op": "Replace", "path": "active", "value": "False"})
		first := c.do("PATCH", "/Users/"+id, deact, 200)
		again := c.do("PATCH", "/Users/"+id, deact, 200)
		if first["active"] != false || first["meta"].(map[string]any)["version"] != again["meta"].(map[string]any)["version"] {
			t.Fatalf("deactivate twice: %v then %v", first, again)
		}
		// A deactivated user stays readable, with active false.
		got := c.do("GET", "/Users?"+filterQ("userName", "ryan@agency.example"), nil, 200)
		if len(resources(got)) != 1 || resources(got)[0]["active"] != false {
			t.Fatalf("deactivated user lookup %v", got)
		}
		c.do("PATCH", "/Users/"+id, patch(map[string]any{"op": "Replace", "path": "active", "value": "True"}), 200)
		c.do("DELETE", "/Users/"+id, nil, 204)
		c.do("GET", "/Users/"+id, nil, 404)
		c.do("DELETE", "/Users/"+id, nil, 404)
	})
}

func TestDiscoveryPagingAndErrors(t *testing.T) {
	c := start(t, scim.NewMemory())
	if got := c.do("GET", "/ServiceProviderConfig", nil, 200); got["patch"].(map[string]any)["supported"] != true {
		t.Fatalf("ServiceProviderConfig %v", got)
	}
	if got := c.do("GET", "/ResourceTypes", nil, 200); got["totalResults"].(float64) != 2 {
		t.Fatalf("ResourceTypes %v", got)
	}
	c.do("GET", "/ResourceTypes/User", nil, 200)
	if got := c.do("GET", "/Schemas", nil, 200); got["totalResults"].(float64) != 2 {
		t.Fatalf("Schemas %v", got)
	}
	c.do("GET", "/Schemas/"+scim.SchemaGroup, nil, 200)
	for i := range 5 {
		c.do("POST", "/Users", map[string]any{"userName": fmt.Sprintf("u%d@agency.example", i)}, 201)
	}
	p := c.do("GET", "/Users?startIndex=2&count=2", nil, 200)
	if p["totalResults"].(float64) != 5 || p["itemsPerPage"].(float64) != 2 || p["startIndex"].(float64) != 2 {
		t.Fatalf("page %v", p)
	}
	if p := c.do("GET", "/Users?startIndex=5&count=10", nil, 200); p["itemsPerPage"].(float64) != 1 {
		t.Fatalf("last page %v", p)
	}
	if e := c.do("GET", "/Users?filter="+url.QueryEscape(`userName co "u"`), nil, 400); e["scimType"] != "invalidFilter" {
		t.Fatalf("error %v", e)
	}
	c.do("POST", "/Users", map[string]any{"displayName": "no userName"}, 400)
	c.do("PATCH", "/Users/nope", patch(map[string]any{"op": "replace", "path": "active", "value": false}), 404)
	c.do("POST", "/Groups", map[string]any{"displayName": "g", "members": []any{map[string]any{"value": "not-a-user"}}}, 400)
	c.do("PATCH", "/Users/x", patch(map[string]any{"op": "frobnicate", "path": "active", "value": false}), 400)

	// Only a provisioner token.
	c.token = viewerToken
	c.do("GET", "/Users", nil, 403)
	c.token = "agp_unknown-token-000000000000000000000000000000"
	c.do("GET", "/Users", nil, 401)
	c.token = ""
	c.do("GET", "/ServiceProviderConfig", nil, 401)
}
