package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

// FuzzRESTBody sends arbitrary bodies to REST routes of every body shape
// ("*", a field, PATCH with a derived mask). Whatever arrives, the answer is
// a 2xx or a 4xx whose body is a google.rpc.Status — never a 5xx, a Go error
// string, or an unmarshalable detail.
func FuzzRESTBody(f *testing.F) {
	for _, seed := range []string{`{}`, `{"displayName":"x","apiKey":"abcdefgh"}`, `{"displayName":`, `{"bogus":1}`, `null`, `[]`,
		`{"labels":{"Bad Key":"v"}}`, `{"tags":["workspaces/a/tags/b"],"resourceType":"TAGGED_RESOURCE_TYPE_CAMPAIGN","resourceIds":["x"]}`,
		`{"email":"a@b.c","role":2}`, "\x00\xff", `{"displayName":"` + string(make([]byte, 300)) + `"}`,
		`{"labels":5}`, `{"labels":{"a":[1]}}`, "{\"displayName\":\"\xff\"}", `{"email":"a@b.c","role":"BOSS"}`, `{"displayName":"x","display_name":"y"}`} {
		f.Add(uint8(0), []byte(seed))
	}
	e := startEnvWith(f, "", 0, nil) // one server for every input
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/workspaces"},
		{http.MethodPatch, "/v1/workspaces/acme"},
		{http.MethodPost, "/v1/workspaces/acme/members:invite"},
		{http.MethodPost, "/v1/workspaces/acme/tags:assign"},
		{http.MethodPost, "/v1/tokens"},
		{http.MethodPatch, "/v1/workspaces/acme/tags/t1"},
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := routes[int(route)%len(routes)]
		resp, err := e.rest(testToken).raw(context.Background(), r.method, r.path, body, nil)
		if resp == nil {
			t.Fatalf("%s %s: no response: %v", r.method, r.path, err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s with %q: HTTP %d: %v", r.method, r.path, body, resp.StatusCode, err)
		}
		if resp.StatusCode >= 400 {
			he, ok := err.(*httpStatusError)
			if !ok {
				t.Fatalf("HTTP %d without a google.rpc.Status body: %v", resp.StatusCode, err)
			}
			if raw, _ := json.Marshal(he.st.Proto()); len(raw) == 0 {
				t.Fatal("empty status")
			}
		}
	})
}
