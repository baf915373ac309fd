package sim

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestRoutesMatchSpec keeps the route table honest: every API route is an operation of the
// embedded spec and requires exactly the scope the spec's description names, and every
// operation of the spec is served except those the project does not use.
func TestRoutesMatchSpec(t *testing.T) {
	spec := mustSpec()
	served := map[string]bool{}
	for _, r := range apiRoutes() {
		op := r.method + " " + r.pattern
		if served[op] {
			t.Errorf("%s has two routes", op)
		}
		served[op] = true
		if spec.operation(r.method, r.pattern) == nil {
			t.Errorf("%s is not in the spec", op)
			continue
		}
		if want := spec.documentedScope(r.method, r.pattern); r.scope != want {
			t.Errorf("%s: scope %q, spec requires %q", op, r.scope, want)
		}
		if r.handle == nil {
			t.Errorf("%s has no handler", op)
		}
		if spec.responseSchema(r.method, r.pattern, http.StatusOK) == nil {
			t.Errorf("%s: the spec documents no 200 body", op)
		}
	}
	// The README: only these two operations document no scope.
	for _, op := range []string{"POST /api/v2/custom-tags/toggle-resource", "GET /api/v2/workspace-group-members/admin"} {
		method, path, _ := strings.Cut(op, " ")
		if got := spec.documentedScope(method, path); got != "" {
			t.Errorf("%s documents scope %q", op, got)
		}
	}
	paths, _ := spec.doc["paths"].(map[string]any)
	for path, item := range paths {
		if strings.HasSuffix(path, "/schedule-for-removal") || strings.HasSuffix(path, "/whitelabel-domain") {
			continue // not used by this project
		}
		for method := range item.(map[string]any) {
			if op := strings.ToUpper(method) + " " + path; !served[op] {
				t.Errorf("%s is in the spec but not served", op)
			}
		}
	}
}

// TestQuerySchemas checks the compiled query strings of list routes: limit bounds as the spec
// sets them, and every parameter typed.
func TestQuerySchemas(t *testing.T) {
	rt := newRouter(apiRoutes(), mustSpec())
	for _, c := range rt.routes {
		if c.method != http.MethodGet || strings.Contains(c.pattern, "{") || strings.HasSuffix(c.pattern, "/current") || strings.HasSuffix(c.pattern, "/admin") {
			if c.query != nil && c.method != http.MethodGet {
				t.Errorf("%s %s has query parameters", c.method, c.pattern)
			}
			continue
		}
		props, _ := c.query["properties"].(map[string]any)
		limit, _ := props["limit"].(map[string]any)
		want := 100.0
		if strings.HasSuffix(c.pattern, "/audit-logs") {
			want = 1000
		}
		if limit["minimum"] != 1.0 || limit["maximum"] != want || limit["type"] != "integer" {
			t.Errorf("%s: limit %v", c.pattern, limit)
		}
		if _, ok := props["starting_after"]; !ok {
			t.Errorf("%s: no starting_after", c.pattern)
		}
		for name, p := range props {
			if _, ok := p.(map[string]any)["type"]; !ok {
				t.Errorf("%s: parameter %s has no type", c.pattern, name)
			}
		}
	}
}

func TestCoerceQuery(t *testing.T) {
	tests := []struct {
		typ  any
		in   string
		want any
	}{
		{"integer", "10", 10.0},
		{"integer", " 7", 7.0},
		{"integer", "1.5", "1.5"},
		{"integer", "", ""},
		{"integer", "ten", "ten"},
		{"number", "1.5", 1.5},
		{"number", "-99", -99.0},
		{"boolean", "true", true},
		{"boolean", "false", false},
		{"boolean", "1", "1"},
		{"string", "42", "42"},
		{[]any{"string", "null"}, "x", "x"},
	}
	for _, tt := range tests {
		if got := coerce(tt.typ, tt.in); got != tt.want {
			t.Errorf("coerce(%v, %q) = %#v, want %#v", tt.typ, tt.in, got, tt.want)
		}
	}
}

func TestIDsAreStrictlyIncreasing(t *testing.T) {
	var g idGen
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 5000 {
		at := now
		switch {
		case i%1000 == 999:
			at = now.Add(-time.Hour) // the clock steps back
		case i%100 == 99:
			now = now.Add(time.Millisecond)
			at = now
		}
		id := g.next(at)
		if id <= prev {
			t.Fatalf("id %d %s is not after %s", i, id, prev)
		}
		if id[14] != '7' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("id %s is not a version 7 UUID", id)
		}
		prev = id
	}
	var fresh idGen
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	id := fresh.next(at)
	if got, want := id[:8]+id[9:13], fmt.Sprintf("%012x", at.UnixMilli()); got != want {
		t.Errorf("id %s: timestamp %s, want %s", id, got, want)
	}
}

func TestRouterPrefersLiteralSegments(t *testing.T) {
	handler := func(string) func(*Server, *call) (any, error) { return nil }
	routes := []route{
		{method: http.MethodGet, pattern: "/api/v2/workspace-group-members/{id}", handle: handler("id")},
		{method: http.MethodGet, pattern: "/api/v2/workspace-group-members/admin", handle: handler("admin")},
		{method: http.MethodDelete, pattern: "/api/v2/workspace-group-members/{id}", handle: handler("delete")},
	}
	rt := newRouter(routes, mustSpec())
	tests := []struct {
		method, path, wantPattern, wantID string
	}{
		{http.MethodGet, "/api/v2/workspace-group-members/admin", "/api/v2/workspace-group-members/admin", ""},
		{http.MethodGet, "/api/v2/workspace-group-members/42", "/api/v2/workspace-group-members/{id}", "42"},
		{http.MethodDelete, "/api/v2/workspace-group-members/42", "/api/v2/workspace-group-members/{id}", "42"},
		{http.MethodGet, "/api/v2/workspace-group-members/", "", ""},
		{http.MethodGet, "/api/v2/workspace-group-members/42/x", "", ""},
		{http.MethodPost, "/api/v2/workspace-group-members/42", "", ""},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, nil)
		got := rt.match(r)
		switch {
		case got == nil && tt.wantPattern != "":
			t.Errorf("%s %s: no match, want %s", tt.method, tt.path, tt.wantPattern)
		case got != nil && got.pattern != tt.wantPattern:
			t.Errorf("%s %s: matched %q, want %q", tt.method, tt.path, got.pattern, tt.wantPattern)
		case got != nil && r.PathValue("id") != tt.wantID:
			t.Errorf("%s %s: id %q, want %q", tt.method, tt.path, r.PathValue("id"), tt.wantID)
		}
	}
}

func TestRingKeepsNewestAscending(t *testing.T) {
	r := ring{max: 4}
	for i := int64(1); i <= 10; i++ {
		r.push(i)
	}
	if len(r.buf) != 4 {
		t.Fatalf("len %d, want 4", len(r.buf))
	}
	for i, want := range []int64{7, 8, 9, 10} {
		if got := r.at(i); got != want {
			t.Errorf("at(%d) = %d, want %d", i, got, want)
		}
	}
	for x, want := range map[int64]int{0: 4, 7: 3, 9: 1, 10: 0} {
		if got := r.countAfter(x); got != want {
			t.Errorf("countAfter(%d) = %d, want %d", x, got, want)
		}
	}
}
