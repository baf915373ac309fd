package instantly_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

func TestEndpointLabels(t *testing.T) {
	for _, c := range []struct{ method, path, want string }{
		{"GET", "/workspace-members/0190a3c4-7e86-47af-b764-e075564821ba", "GET /api/v2/workspace-members/{id}"},
		{"PATCH", "/workspace-members/ana%40client.example", "PATCH /api/v2/workspace-members/{id}"},
		{"GET", "/workspace-group-members/admin", "GET /api/v2/workspace-group-members/admin"},
		{"DELETE", "/workspace-group-members/0190a3c4", "DELETE /api/v2/workspace-group-members/{id}"},
		{"POST", "/custom-tags/toggle-resource", "POST /api/v2/custom-tags/toggle-resource"},
		{"GET", "/custom-tags", "GET /api/v2/custom-tags"},
		{"POST", "/workspaces/current/change-owner", "POST /api/v2/workspaces/current/change-owner"},
		{"GET", "/workspaces/0190a3c4", "GET other"},
		{"GET", "/nothing/we/call", "GET other"},
	} {
		if got := instantly.Endpoint(c.method, c.path); got != c.want {
			t.Errorf("Endpoint(%s %s) = %q, want %q", c.method, c.path, got, c.want)
		}
	}
}

// Every route template the labels use is a path of Instantly's spec.
func TestEndpointTemplatesAreSpecPaths(t *testing.T) {
	data, err := os.ReadFile("../sim/spec/openapi-v2-subset.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	for p := range spec.Paths {
		concrete := strings.ReplaceAll(strings.TrimPrefix(p, "/api/v2"), "{id}", "x-1")
		if strings.Contains(p, "schedule-for-removal") || strings.Contains(p, "whitelabel-domain") {
			continue // not called by the client
		}
		if got := instantly.Endpoint("GET", concrete); got != "GET "+p {
			t.Errorf("spec path %s is labelled %q", p, got)
		}
	}
}

// Attempts, 429s and retries are counted as they happen: a 429, a 503 and
// a refused connection, each followed by a success.
func TestClientMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := instantly.NewMetrics(reg, instantly.MetricsOptions{MaxWorkspaces: 1})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch n.Add(1) {
		case 1:
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"statusCode":429,"error":"Too Many Requests","message":"Rate limit exceeded"}`))
		case 3:
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"statusCode":503,"error":"Service Unavailable","message":"down"}`))
		default:
			_, _ = w.Write([]byte(`{"id":"ws-1","name":"Acme"}`))
		}
	}))
	defer srv.Close()
	c, err := instantly.New(instantly.Options{BaseURL: srv.URL, Metrics: m, BaseBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, budget := range [][]string{{"ws-a"}, {"ws-b"}} {
		if _, err := c.GetCurrentWorkspace(ctx, instantly.Credential{APIKey: "k", Budget: budget}); err != nil {
			t.Fatal(err)
		}
	}
	ep := "GET /api/v2/workspaces/current"
	want := map[string]float64{
		`agencyplane_upstream_requests_total{code_class="2xx",endpoint="` + ep + `"}`:        2,
		`agencyplane_upstream_requests_total{code_class="4xx",endpoint="` + ep + `"}`:        1,
		`agencyplane_upstream_requests_total{code_class="5xx",endpoint="` + ep + `"}`:        1,
		`agencyplane_upstream_throttled_total{endpoint="` + ep + `"}`:                        1,
		`agencyplane_upstream_retries_total{endpoint="` + ep + `",reason="throttled"}`:       1,
		`agencyplane_upstream_retries_total{endpoint="` + ep + `",reason="server_error"}`:    1,
		`agencyplane_upstream_workspace_requests_total{code_class="2xx",workspace="ws-a"}`:   1,
		`agencyplane_upstream_workspace_requests_total{code_class="4xx",workspace="ws-a"}`:   1,
		`agencyplane_upstream_workspace_requests_total{code_class="2xx",workspace="_other"}`: 1,
		`agencyplane_upstream_workspace_requests_total{code_class="5xx",workspace="_other"}`: 1,
	}
	got := counters(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if n := testutil.CollectAndCount(reg, "agencyplane_upstream_request_duration_seconds"); n != 1 {
		t.Errorf("%d latency series, want 1", n)
	}

	// No answer at all: class "error", retried as a transport failure.
	srv.Close()
	short, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	_, _ = c.GetCurrentWorkspace(short, instantly.Credential{APIKey: "k"})
	got = counters(t, reg)
	if v := got[`agencyplane_upstream_requests_total{code_class="error",endpoint="`+ep+`"}`]; v < 1 {
		t.Errorf("unanswered attempts = %v", v)
	}
	if v := got[`agencyplane_upstream_retries_total{endpoint="`+ep+`",reason="transport"}`]; v < 1 {
		t.Errorf("transport retries = %v", v)
	}
}

// counters reads every counter series of reg as name{labels} → value.
func counters(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if s.GetCounter() != nil {
				out[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = s.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestNoPerWorkspaceSeriesByDefault: without --metrics-per-workspace no
// series is labelled by workspace (cardinality stays bounded).
func TestNoPerWorkspaceSeriesByDefault(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := instantly.NewMetrics(reg, instantly.MetricsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"ws-1","name":"Acme"}`))
	}))
	defer srv.Close()
	c, err := instantly.New(instantly.Options{BaseURL: srv.URL, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetCurrentWorkspace(t.Context(), instantly.Credential{APIKey: "k", Budget: []string{"ws-a"}}); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "agencyplane_upstream_workspace_requests_total"); n != 0 {
		t.Fatalf("%d per-workspace series without the flag", n)
	}
	if n := testutil.CollectAndCount(reg, "agencyplane_upstream_requests_total"); n != 1 {
		t.Fatalf("%d request series, want 1", n)
	}
}
