package operations

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// Operations are counted when created and when they end, by method and
// end state; an executor sees its operation's method in its context.
func TestManagerMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	mx, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b := NewMemory(MemoryOptions{})
	m := NewManager(b, nil, Options{Metrics: mx})
	methods := make(chan string, 4)
	m.Register("/agency.v1.FanoutService/OnboardMembers", ExecutorFunc(func(ctx context.Context, job *Job) {
		methods <- MethodOf(ctx)
		for _, it := range job.Pending() {
			o := agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED
			if job.Entry.Workspace == "workspaces/bad" {
				o = agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED
			}
			_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: o})
		}
	}))
	runManager(t, m)
	ok := &Record{Method: "/agency.v1.FanoutService/OnboardMembers", Entries: []Entry{{Workspace: "workspaces/a", People: []int32{0}}}}
	bad := &Record{Method: "/agency.v1.FanoutService/OnboardMembers", Entries: []Entry{{Workspace: "workspaces/bad", People: []int32{0}}}}
	for _, r := range []*Record{ok, bad} {
		if err := m.Create(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		waitEnded(t, b, r.ID)
	}
	if got := <-methods; got != "/agency.v1.FanoutService/OnboardMembers" {
		t.Fatalf("MethodOf in the executor = %q", got)
	}
	if got := testutil.ToFloat64(mx.created.WithLabelValues("OnboardMembers")); got != 2 {
		t.Fatalf("created = %v", got)
	}
	for state, want := range map[string]float64{"succeeded": 1, "failed": 1, "cancelled": 0} {
		if got := testutil.ToFloat64(mx.ended.WithLabelValues("OnboardMembers", state)); got != want {
			t.Errorf("ended{%s} = %v, want %v", state, got, want)
		}
	}
	if got := testutil.ToFloat64(mx.entries); got != 0 {
		t.Errorf("entries in progress after both ended = %v", got)
	}
	if MethodOf(context.Background()) != "" {
		t.Error("MethodOf outside an executor")
	}
}
