package fanout

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type methodKey struct{}

// Every item is counted once by method and outcome, the items a cancelled
// call never started as NOT_ATTEMPTED.
func TestEngineMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	mx, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := New(Options{Concurrency: 1, Metrics: mx, Method: func(ctx context.Context) string {
		m, _ := ctx.Value(methodKey{}).(string)
		return m
	}})
	ctx := context.WithValue(context.Background(), methodKey{}, "EnsureTagEverywhere")
	Run(ctx, e, []string{"a", "b", "c", "d"}, func(_ context.Context, ws string) (int, Outcome, error) {
		switch ws {
		case "a", "b":
			return 0, Created, nil
		case "c":
			return 0, Failed, errors.New("boom")
		}
		panic("d")
	})
	cctx, cancel := context.WithCancel(context.WithValue(context.Background(), methodKey{}, "RemoveMemberEverywhere"))
	cancel()
	Run(cctx, e, []string{"x", "y"}, func(context.Context, string) (int, Outcome, error) { return 0, Deleted, nil })
	Do(context.Background(), e, "z", func(context.Context, string) (int, Outcome, error) { return 0, Read, nil })

	for _, c := range []struct {
		method, outcome string
		want            float64
	}{
		{"EnsureTagEverywhere", "CREATED", 2},
		{"EnsureTagEverywhere", "FAILED", 2},
		{"RemoveMemberEverywhere", "NOT_ATTEMPTED", 2},
		{"RemoveMemberEverywhere", "DELETED", 0},
		{"unknown", "READ", 1},
	} {
		if got := testutil.ToFloat64(mx.items.WithLabelValues(c.method, c.outcome)); got != c.want {
			t.Errorf("items{%s,%s} = %v, want %v", c.method, c.outcome, got, c.want)
		}
	}
	// What is counted is what the registry serves.
	if n, err := testutil.GatherAndCount(reg, "agencyplane_fanout_items_total"); err != nil || n == 0 {
		t.Fatalf("registry serves %d series (%v)", n, err)
	}
	if _, err := NewMetrics(nil); err != nil {
		t.Fatalf("without a registry: %v", err)
	}
}
