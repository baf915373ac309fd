package sim

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidatorMessages pins Fastify/AJV messages for the request schemas of the spec.
func TestValidatorMessages(t *testing.T) {
	const (
		patchWS   = "PATCH /api/v2/workspaces/current"
		createKey = "POST /api/v2/api-keys"
		createTag = "POST /api/v2/custom-tags"
		invite    = "POST /api/v2/workspace-members"
		deleteTag = "DELETE /api/v2/custom-tags/{id}"
		toggle    = "POST /api/v2/custom-tags/toggle-resource"
	)
	tests := []struct {
		op, body, want string
	}{
		{patchWS, `{"name":"Acme"}`, ""},
		{patchWS, `{"org_logo_url":null}`, ""},
		{patchWS, `{"name":"Acme","org_logo_url":"https://x.test/l.png"}`, ""},
		{patchWS, `null`, "body must be object"},
		{patchWS, `[]`, "body must be object"},
		{patchWS, `{}`, "body must NOT have fewer than 1 properties"},
		{patchWS, `{"name":"a","owner":"b"}`, "body must NOT have additional properties"},
		{patchWS, `{"name":1}`, "body/name must be string"},
		{patchWS, `{"org_logo_url":false}`, "body/org_logo_url must be string,null"},
		{createKey, `{"name":"k","scopes":["all:all","campaigns:read"]}`, ""},
		{createKey, `{"name":"k"}`, "body must have required property 'scopes'"},
		{createKey, `{"scopes":[]}`, "body must have required property 'name'"},
		{createKey, `{"name":"k","scopes":["campaigns:read","bogus:read"]}`, "body/scopes/1 must be equal to one of the allowed values"},
		{createKey, `{"name":"k","scopes":"all:all"}`, "body/scopes must be array"},
		{createTag, `{"label":"  "}`, `body/label must match pattern ".*\S.*"`},
		{createTag, `{"label":""}`, "body/label must NOT have fewer than 1 characters"},
		{invite, `{"email":"a@b.co","role":"editor"}`, ""},
		{invite, `{"email":"not-an-email","role":"editor"}`, `body/email must match format "email"`},
		{invite, `{"email":"a@b.co","role":"boss"}`, "body/role must be equal to one of the allowed values"},
		{invite, `{"email":"a@b.co","role":"view","nickname":"` + strings.Repeat("é", 81) + `"}`, "body/nickname must NOT have more than 80 characters"},
		{deleteTag, `null`, ""},
		{deleteTag, `{}`, "body must be null"},
		{toggle, `{"tag_ids":["t"],"resource_type":2,"assign":true,"resource_ids":["c"]}`, ""},
		{toggle, `{"tag_ids":[],"resource_type":2,"assign":true}`, "body/tag_ids must NOT have fewer than 1 items"},
		{toggle, `{"tag_ids":["t"],"resource_type":3,"assign":true}`, "body/resource_type must be equal to one of the allowed values"},
		{toggle, `{"tag_ids":["t"],"resource_type":1,"assign":true,"filter":"nope"}`, "body/filter must match exactly one schema in oneOf"},
		{toggle, `{"tag_ids":["t"],"resource_type":1,"assign":true,"filter":{"tag_ids":["x"]}}`, ""},
	}
	spec := mustSpec()
	v := &validator{root: spec.doc}
	for _, tt := range tests {
		t.Run(tt.op+" "+tt.body, func(t *testing.T) {
			method, path, _ := strings.Cut(tt.op, " ")
			s := spec.requestSchema(method, path)
			if s == nil {
				t.Fatalf("no request schema for %s", tt.op)
			}
			var body any
			if err := json.Unmarshal([]byte(tt.body), &body); err != nil {
				t.Fatal(err)
			}
			if got := v.check(s, body, "body"); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
