package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/memlimit"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

func newFakeClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }

func near(a, b time.Duration) bool { return a-b < time.Microsecond && b-a < time.Microsecond }

// TestLatencyTrackerLimit: Little's law with slack, the EWMA, the start
// before any sample, the clamp, and the tighter of two buckets.
func TestLatencyTrackerLimit(t *testing.T) {
	clk := newFakeClock()
	tr := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80, Now: clk.Now})
	if got := tr.Limit([]string{"a"}); got != 4 {
		t.Fatalf("before any sample: %d, want the start 4", got)
	}
	if got := tr.Limit(nil); got != 4 {
		t.Fatalf("no buckets: %d, want the start 4", got)
	}
	tr.Observe([]string{"a"}, 150*time.Millisecond) // the first sample is the average
	if l, ok := tr.Latency("a"); !ok || !near(l, 150*time.Millisecond) {
		t.Fatalf("latency %v %v, want 150ms", l, ok)
	}
	if got := tr.Limit([]string{"a"}); got != 19 { // ceil(80 × 0.15 × 1.5) + 1
		t.Fatalf("150ms at 80/s: %d, want 19", got)
	}
	tr.Observe([]string{"a"}, 10*time.Millisecond) // 150 + 0.2 × (10 - 150)
	if l, _ := tr.Latency("a"); !near(l, 122*time.Millisecond) {
		t.Fatalf("ewma %v, want 122ms", l)
	}
	for range 100 {
		tr.Observe([]string{"a"}, 10*time.Millisecond)
	}
	if got := tr.Limit([]string{"a"}); got != 3 { // ceil(80 × 0.01 × 1.5) + 1
		t.Fatalf("10ms at 80/s: %d, want 3", got)
	}
	tr.Observe([]string{"fast"}, 0)
	if got := tr.Limit([]string{"fast"}); got != 1 {
		t.Fatalf("0 latency: %d, want 1", got)
	}
	tr.Observe([]string{"slow"}, time.Minute)
	if got := tr.Limit([]string{"slow"}); got != 256 {
		t.Fatalf("1 minute: %d, want the cap 256", got)
	}
	// A sub workspace through its admin spends both budgets: the smaller
	// limit wins, and an unmeasured bucket counts as the start.
	if got := tr.Limit([]string{"slow", "a"}); got != 3 {
		t.Fatalf("[slow, a]: %d, want 3", got)
	}
	if got := tr.Limit([]string{"slow", "unknown"}); got != 4 {
		t.Fatalf("[slow, unknown]: %d, want 4", got)
	}
	capped := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80, Max: 8, Start: 16})
	capped.Observe([]string{"a"}, time.Second)
	if got, start := capped.Limit([]string{"a"}), capped.Limit([]string{"b"}); got != 8 || start != 8 {
		t.Fatalf("Max 8: %d, start %d", got, start)
	}
}

// TestLatencyTrackerForgetsIdleBuckets: memory follows the buckets in use.
func TestLatencyTrackerForgetsIdleBuckets(t *testing.T) {
	clk := newFakeClock()
	tr := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80, Idle: 10 * time.Minute, Now: clk.Now})
	tr.Observe([]string{"a"}, 150*time.Millisecond)
	clk.Advance(5 * time.Minute)
	tr.Observe([]string{"b"}, 150*time.Millisecond)
	clk.Advance(6 * time.Minute) // a idle for 11m, b for 6m
	if _, ok := tr.Latency("a"); ok {
		t.Fatal("an idle bucket still has a latency")
	}
	if got := tr.Limit([]string{"a"}); got != 4 {
		t.Fatalf("an idle bucket's limit %d, want the start 4", got)
	}
	tr.Observe([]string{"c"}, time.Millisecond) // sweeps
	if n := tr.Len(); n != 2 {
		t.Fatalf("%d buckets remembered, want 2 (b, c)", n)
	}
	clk.Advance(11 * time.Minute)
	tr.Observe([]string{"d"}, time.Millisecond)
	if n := tr.Len(); n != 1 {
		t.Fatalf("%d buckets remembered, want 1 (d)", n)
	}
	// A bucket that comes back starts from its new sample, not the old one.
	tr.Observe([]string{"a"}, 10*time.Millisecond)
	if l, _ := tr.Latency("a"); !near(l, 10*time.Millisecond) {
		t.Fatalf("returning bucket %v, want 10ms", l)
	}
}

// TestGateRecordsLatencyOfAnswers: Succeeded feeds the tracker for every
// bucket of the request; Throttled (a 429) does not; and the limiter's
// wait inside Acquire is never a sample.
func TestGateRecordsLatencyOfAnswers(t *testing.T) {
	tr := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80})
	ml, _ := memlimit.New(limits(1000), memlimit.Options{})
	g := ratelimit.NewGate(ml, ratelimit.GateOptions{Latency: tr})
	if err := g.Acquire(context.Background(), []string{"sub", "admin"}); err != nil {
		t.Fatal(err)
	}
	if tr.Len() != 0 {
		t.Fatal("Acquire recorded a latency")
	}
	g.Throttled([]string{"sub", "admin"}, 0)
	if tr.Len() != 0 {
		t.Fatal("a 429 was recorded as a latency")
	}
	g.Succeeded([]string{"sub", "admin"}, 150*time.Millisecond)
	for _, b := range []string{"sub", "admin"} {
		if l, ok := tr.Latency(b); !ok || !near(l, 150*time.Millisecond) {
			t.Fatalf("%s: %v %v", b, l, ok)
		}
	}
}

// TestSustained: the budget a busy bucket spends per second is the
// tighter window's.
func TestSustained(t *testing.T) {
	if got := ratelimit.InstantlyLimits(0.8).Sustained(); got != 80 {
		t.Fatalf("80 %% of Instantly: %v/s", got)
	}
	if got := ratelimit.Scaled(100, 3000, 1).Sustained(); got != 50 {
		t.Fatalf("100/s and 3000/min: %v/s, want 50", got)
	}
	// A window left unset (zero) does not bound the rate.
	if got := (ratelimit.Limits{PerSecond: ratelimit.Limit{Rate: 50, Period: time.Second}}).Sustained(); got != 50 {
		t.Fatalf("50/s without a per-minute window: %v/s, want 50", got)
	}
}

// TestLatencyTrackerOptions: Rate, Slack and Alpha are used as given when
// valid, and out-of-range values take the defaults (80/s, 1.5, 0.2).
func TestLatencyTrackerOptions(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name        string
		opts        ratelimit.LatencyOptions
		wantLatency time.Duration // after samples of 150ms then 10ms
		wantLimit   int
	}{
		// ceil(80 × 0.122 × 1.5) + 1
		{"defaults", ratelimit.LatencyOptions{}, 122 * ms, 16},
		{"nonsense means default", ratelimit.LatencyOptions{Rate: -1, Slack: -1, Alpha: -1}, 122 * ms, 16},
		{"alpha above 1 means default", ratelimit.LatencyOptions{Alpha: 1.5}, 122 * ms, 16},
		// ceil(40 × 0.122 × 1.5) + 1
		{"rate", ratelimit.LatencyOptions{Rate: 40}, 122 * ms, 9},
		// ceil(80 × 0.122 × 1) + 1
		{"slack", ratelimit.LatencyOptions{Slack: 1}, 122 * ms, 11},
		// 150 + 0.5 × (10 - 150); ceil(80 × 0.08 × 1.5) + 1
		{"alpha", ratelimit.LatencyOptions{Alpha: 0.5}, 80 * ms, 11},
		// Alpha 1: the newest sample is the average; ceil(80 × 0.01 × 1.5) + 1
		{"alpha 1", ratelimit.LatencyOptions{Alpha: 1}, 10 * ms, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Now = newFakeClock().Now
			tr := ratelimit.NewLatencyTracker(tc.opts)
			tr.Observe([]string{"a"}, 150*ms)
			tr.Observe([]string{"a"}, 10*ms)
			if l, ok := tr.Latency("a"); !ok || !near(l, tc.wantLatency) {
				t.Fatalf("latency %v %v, want %v", l, ok, tc.wantLatency)
			}
			if got := tr.Limit([]string{"a"}); got != tc.wantLimit {
				t.Fatalf("limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}

// TestLatencyTrackerIdleEdges: a sample exactly Idle old still counts (even
// across a sweep), and a bucket unused for 2×Idle is forgotten by the next
// sample of any bucket, so memory stays bounded.
func TestLatencyTrackerIdleEdges(t *testing.T) {
	clk := newFakeClock()
	tr := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80, Idle: 10 * time.Minute, Now: clk.Now})
	clk.Advance(time.Second)
	tr.Observe([]string{"a"}, 100*time.Millisecond)
	clk.Advance(10 * time.Minute)
	tr.Observe([]string{"b"}, 100*time.Millisecond) // a sweep: Idle since the tracker began
	if l, ok := tr.Latency("a"); !ok || !near(l, 100*time.Millisecond) {
		t.Fatalf("a sample exactly Idle old: %v %v, want 100ms", l, ok)
	}
	if got := tr.Limit([]string{"a"}); got != 13 { // ceil(80 × 0.1 × 1.5) + 1
		t.Fatalf("limit %d from a sample exactly Idle old, want 13", got)
	}
	clk.Advance(10 * time.Minute)
	tr.Observe([]string{"c"}, 100*time.Millisecond)
	if n := tr.Len(); n != 2 {
		t.Fatalf("%d buckets remembered, want 2 (b, c): a has been unused for 2×Idle", n)
	}
}
