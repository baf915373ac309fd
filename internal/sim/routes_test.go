package sim

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutesMatchSpec keeps the route table honest: every API route is an operation of the
// embedded spec and requires exactly the scope the spec's description names.
func TestRoutesMatchSpec(t *testing.T) {
	spec := mustSpec()
	for _, r := range apiRoutes() {
		if spec.operation(r.method, r.pattern) == nil {
			t.Errorf("%s %s is not in the spec", r.method, r.pattern)
			continue
		}
		if want := spec.documentedScope(r.method, r.pattern); r.scope != want {
			t.Errorf("%s %s: scope %q, spec requires %q", r.method, r.pattern, r.scope, want)
		}
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
