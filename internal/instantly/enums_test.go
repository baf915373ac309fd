package instantly_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// dig walks the decoded spec.
func dig(t *testing.T, node any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := node.(map[string]any)
		if !ok {
			t.Fatalf("spec: no %q in the path %v", k, keys)
		}
		node = m[k]
	}
	return node
}

func specStrings(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestGeneratedEnumsMatchSpec fails when the spec is refreshed without
// `go generate ./internal/instantly`.
func TestGeneratedEnumsMatchSpec(t *testing.T) {
	raw := mustSpec(t).raw
	scopes := specStrings(t, dig(t, raw, "components", "schemas", "APIKey", "properties", "scopes", "items", "enum"))
	if len(scopes) != 178 || !slices.Equal(instantly.Scopes(), scopes) {
		t.Fatalf("Scopes() = %d values, spec has %d (or a different order)", len(instantly.Scopes()), len(scopes))
	}
	for _, s := range scopes {
		if !instantly.ValidScope(s) {
			t.Errorf("ValidScope(%q) = false", s)
		}
	}
	for _, s := range []string{"", "all", "all:*", "campaigns:write", "ALL:ALL", "email_verifications:delete"} {
		if instantly.ValidScope(s) {
			t.Errorf("ValidScope(%q) = true", s)
		}
	}
	// Scopes returns a copy: callers cannot change the table.
	instantly.Scopes()[0] = "mutated"
	if instantly.Scopes()[0] != "all:all" {
		t.Fatal("Scopes() shares its backing array")
	}

	perms := specStrings(t, dig(t, raw, "paths", "/api/v2/workspace-members", "post", "requestBody", "content", "application/json", "schema", "properties", "permissions", "items", "enum"))
	if !slices.Equal(instantly.MemberPermissions(), perms) {
		t.Fatalf("MemberPermissions() = %v, spec %v", instantly.MemberPermissions(), perms)
	}
	for _, p := range perms {
		if !instantly.ValidPermission(p) {
			t.Errorf("ValidPermission(%q) = false", p)
		}
	}
	if instantly.ValidPermission("campaigns.launch") {
		t.Error("ValidPermission accepts an unknown permission")
	}

	activity := dig(t, raw, "components", "schemas", "AuditLog", "properties", "activity_type").(map[string]any)
	var want []instantly.AuditActivityType
	for _, v := range activity["enum"].([]any) {
		want = append(want, instantly.AuditActivityType(v.(float64)))
	}
	if !slices.Equal(instantly.AuditActivityTypes(), want) {
		t.Fatalf("AuditActivityTypes() = %v, spec %v", instantly.AuditActivityTypes(), want)
	}
	descs := activity["x-enumDescriptions"].(map[string]any)
	for _, a := range want {
		b, _ := json.Marshal(int(a))
		if a.String() != descs[string(b)] {
			t.Errorf("%d.String() = %q, spec %q", a, a.String(), descs[string(b)])
		}
	}
	if instantly.AuditActivityType(13).String() != "activity type 13" {
		t.Error("unknown activity type")
	}
}

func TestScopeAllows(t *testing.T) {
	cases := []struct {
		granted  []string
		required string
		ok       bool
	}{
		{[]string{"custom_tags:read"}, "custom_tags:read", true},
		{[]string{"custom_tags:all"}, "custom_tags:delete", true},
		{[]string{"all:read"}, "audit_logs:read", true},
		{[]string{"all:all"}, "api_keys:create", true},
		{[]string{"all:read"}, "api_keys:create", false},
		{[]string{"custom_tags:read"}, "custom_tag_mappings:read", false},
		{nil, "", true}, // toggle-resource and group admin document no scope
		{nil, "workspaces:read", false},
	}
	for _, tc := range cases {
		if got := instantly.ScopeAllows(tc.granted, tc.required); got != tc.ok {
			t.Errorf("ScopeAllows(%v, %q) = %v", tc.granted, tc.required, got)
		}
	}
}
