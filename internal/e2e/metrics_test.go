package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// scrape reads agencyd's /metrics.
func scrape(t *testing.T, e *env) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(e.httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// metricSum adds the values (counter, gauge, or histogram count) of the
// series of family name whose labels include want.
func metricSum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	var sum float64
	mf := mfs[name]
	if mf == nil {
		return 0
	}
next:
	for _, m := range mf.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func labelValues(mfs map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, m := range mfs[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

// Real calls against a throttling simulator show up in /metrics:
// upstream requests by endpoint template and status class, 429s, retries
// by reason, limiter waits, fan-out items by outcome and operations by
// state; no label carries an id.
func TestMetricsAfterRealCalls(t *testing.T) {
	// The simulator admits 4 requests/s per workspace while agencyd's
	// budget allows 80: 429s come back and are retried. (5xx answers and
	// their retries: internal/instantly's TestClientMetrics.)
	e := startEnvSim(t, sim.Config{RPS: 4}, "", 0, nil)
	inv := grpcInvoker{conn: e.conn, token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	before := scrape(t, e)
	if _, ok := before["agencyplane_upstream_workspace_requests_total"]; ok {
		t.Fatal("per-workspace series without --metrics-per-workspace")
	}
	registerWorkspaces(t, e, inv, "m", 3)

	// Ten quick reads of one workspace: over the simulator's 4/s.
	for range 10 {
		if err := inv.Invoke(ctx, "agency.v1.TagService/ListTags", &agencyv1.ListTagsRequest{Parent: "workspaces/m-0"}, &agencyv1.ListTagsResponse{}); err != nil {
			t.Fatalf("ListTags: %v", err)
		}
	}
	// A fan-out (a read and a create per workspace) ...
	var fo agencyv1.FanoutResponse
	if err := inv.Invoke(ctx, "agency.v1.FanoutService/EnsureTagEverywhere",
		&agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{All: true}, Label: "vip"}, &fo); err != nil {
		t.Fatalf("EnsureTagEverywhere: %v", err)
	}
	// ... and a durable operation.
	var op longrunningpb.Operation
	if err := inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", &agencyv1.OnboardMembersRequest{
		Selector: &agencyv1.WorkspaceSelector{All: true},
		People:   []*agencyv1.Person{{Email: "ana@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}},
	}, &op); err != nil {
		t.Fatalf("OnboardMembers: %v", err)
	}
	waitOperation(t, inv, op.GetName(), 60*time.Second)

	mfs := scrape(t, e)
	checks := []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"agencyplane_upstream_requests_total", map[string]string{"endpoint": "GET /api/v2/workspaces/current", "code_class": "2xx"}, 3},
		{"agencyplane_upstream_requests_total", map[string]string{"endpoint": "GET /api/v2/custom-tags", "code_class": "2xx"}, 10},
		{"agencyplane_upstream_requests_total", map[string]string{"endpoint": "POST /api/v2/custom-tags", "code_class": "2xx"}, 3},
		{"agencyplane_upstream_requests_total", map[string]string{"endpoint": "POST /api/v2/workspace-members", "code_class": "2xx"}, 3},
		{"agencyplane_upstream_requests_total", map[string]string{"code_class": "4xx"}, 1},
		{"agencyplane_upstream_throttled_total", nil, 1},
		{"agencyplane_upstream_retries_total", map[string]string{"reason": "throttled"}, 1},
		{"agencyplane_upstream_request_duration_seconds", map[string]string{"endpoint": "GET /api/v2/custom-tags"}, 10},
		{"agencyplane_ratelimit_wait_seconds", map[string]string{"outcome": "allowed"}, 20},
		{"agencyplane_fanout_items_total", map[string]string{"method": "EnsureTagEverywhere", "outcome": "CREATED"}, 3},
		{"agencyplane_fanout_items_total", map[string]string{"method": "OnboardMembers", "outcome": "CREATED"}, 3},
		{"agencyplane_operations_created_total", map[string]string{"method": "OnboardMembers"}, 1},
		{"agencyplane_operations_ended_total", map[string]string{"method": "OnboardMembers", "state": "succeeded"}, 1},
	}
	for _, c := range checks {
		if got := metricSum(mfs, c.name, c.labels); got < c.min {
			t.Errorf("%s%v = %v, want at least %v", c.name, c.labels, got, c.min)
		}
	}
	// A throttled retry follows a 429; each 429 is a 4xx.
	th := metricSum(mfs, "agencyplane_upstream_throttled_total", nil)
	if rt := metricSum(mfs, "agencyplane_upstream_retries_total", map[string]string{"reason": "throttled"}); rt > th {
		t.Errorf("429s %v, throttled retries %v", th, rt)
	}
	if c4 := metricSum(mfs, "agencyplane_upstream_requests_total", map[string]string{"code_class": "4xx"}); c4 < th {
		t.Errorf("429s %v, 4xx answers %v", th, c4)
	}
	if got := metricSum(mfs, "agencyplane_operations_entries_in_progress", nil); got != 0 {
		t.Errorf("entries in progress after the operation ended: %v", got)
	}
	endpoint := regexp.MustCompile(`^(GET|POST|PATCH|DELETE) (/api/v2(/[a-z-]+|/\{id\})+|other)$`)
	for _, name := range []string{"agencyplane_upstream_requests_total", "agencyplane_upstream_retries_total", "agencyplane_upstream_throttled_total"} {
		for _, v := range labelValues(mfs, name, "endpoint") {
			if !endpoint.MatchString(v) {
				t.Errorf("%s endpoint label %q is not a route template", name, v)
			}
		}
	}
	for _, v := range labelValues(mfs, "agencyplane_fanout_items_total", "method") {
		if strings.ContainsAny(v, "/.") {
			t.Errorf("fan-out method label %q", v)
		}
	}
	// Every metric the Grafana dashboard queries exists (the per-workspace
	// one only with --metrics-per-workspace: TestMetricsPerWorkspaceCapped).
	for _, name := range dashboardMetrics(t) {
		if name == "agencyplane_upstream_workspace_requests_total" {
			continue
		}
		if _, ok := mfs[name]; !ok {
			t.Errorf("the dashboard queries %s, which agencyd does not export", name)
		}
	}
}

// dashboardMetrics lists the metric families deploy/grafana/agencyplane.json
// queries (histogram series named by their family).
func dashboardMetrics(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../../deploy/grafana/agencyplane.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`\b(agencyplane|grpc_server)_[a-z_]+`)
	seen := map[string]bool{}
	var out []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				n = strings.TrimSuffix(n, "_bucket")
				if !seen[n] {
					seen[n] = true
					out = append(out, n)
				}
			}
		}
	}
	if len(out) < 10 {
		t.Fatalf("only %d metrics in the dashboard: %v", len(out), out)
	}
	return out
}

// --metrics-per-workspace N gives N workspaces their own upstream series;
// the others count together as _other.
func TestMetricsPerWorkspaceCapped(t *testing.T) {
	e := startEnvSim(t, sim.Config{}, "", 0, func(c *config.Config) { c.MetricsPerWorkspace = 2 })
	inv := grpcInvoker{conn: e.conn, token: testToken}
	ids := registerWorkspaces(t, e, inv, "w", 4)
	for name := range ids {
		if err := inv.Invoke(context.Background(), "agency.v1.TagService/ListTags", &agencyv1.ListTagsRequest{Parent: name}, &agencyv1.ListTagsResponse{}); err != nil {
			t.Fatalf("ListTags: %v", err)
		}
	}
	mfs := scrape(t, e)
	own := map[string]bool{}
	for _, v := range labelValues(mfs, "agencyplane_upstream_workspace_requests_total", "workspace") {
		own[v] = true
	}
	if len(own) != 3 || !own["_other"] {
		t.Fatalf("workspace labels %v, want 2 workspaces and _other", own)
	}
	for w := range own {
		if w == "_other" {
			continue
		}
		found := false
		for _, id := range ids {
			found = found || id == w
		}
		if !found {
			t.Errorf("workspace label %q is not an Instantly workspace id", w)
		}
	}
	if got := metricSum(mfs, "agencyplane_upstream_workspace_requests_total", map[string]string{"workspace": "_other", "code_class": "2xx"}); got < 2 {
		t.Errorf("_other = %v, want the two other workspaces' reads", got)
	}
}
