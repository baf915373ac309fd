package instantly_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

// fakeBudget "waits" in Acquire by advancing the clock, and records what
// the client reports.
type fakeBudget struct {
	clock     *fakeclock.Clock
	wait      time.Duration
	mu        sync.Mutex
	acquired  int
	throttled int
	latencies []time.Duration
	buckets   [][]string
}

func (b *fakeBudget) Acquire(_ context.Context, buckets []string) error {
	b.clock.Advance(b.wait)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acquired++
	return nil
}

func (b *fakeBudget) Throttled([]string, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.throttled++
}

func (b *fakeBudget) Succeeded(buckets []string, latency time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latencies = append(b.latencies, latency)
	b.buckets = append(b.buckets, slices.Clone(buckets))
}

// TestBudgetGetsUpstreamLatencyWithoutTheWait: the latency reported to
// the budget runs from sending the request (after Acquire) to the answer:
// a 10 s limiter wait is not in it, the upstream's 150 ms is. A 429 is
// reported as Throttled, not as a latency sample.
func TestBudgetGetsUpstreamLatencyWithoutTheWait(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	budget := &fakeBudget{clock: clock, wait: 10 * time.Second}
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clock.Advance(150 * time.Millisecond)
		if requests.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"statusCode":429,"error":"Too Many Requests","message":"slow down"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"ws-1","name":"Acme"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries, func(o *instantly.Options) {
		o.Budget, o.Now = budget, clock.Now
	})
	cred := instantly.Credential{APIKey: "key", Budget: []string{"ws-1", "admin"}}
	if _, err := c.GetCurrentWorkspace(ctxT(t), cred); err != nil {
		t.Fatal(err)
	}
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if budget.acquired != 2 || budget.throttled != 1 {
		t.Fatalf("acquired %d, throttled %d; want 2 and 1", budget.acquired, budget.throttled)
	}
	if len(budget.latencies) != 1 || budget.latencies[0] != 150*time.Millisecond {
		t.Fatalf("latencies %v, want [150ms] (the 10s limiter wait excluded, the 429 not a sample)", budget.latencies)
	}
	if !slices.Equal(budget.buckets[0], []string{"ws-1", "admin"}) {
		t.Fatalf("buckets %v", budget.buckets[0])
	}
}

// TestCredentialWithoutBudgetSkipsTheBudget: a credential that names no
// budget (a key being checked before it is registered) neither waits on
// the budget nor reports to it.
func TestCredentialWithoutBudgetSkipsTheBudget(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	budget := &fakeBudget{clock: clock}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"ws-1","name":"Acme"}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries, func(o *instantly.Options) { o.Budget, o.Now = budget, clock.Now })
	if _, err := c.GetCurrentWorkspace(ctxT(t), instantly.Credential{APIKey: "key"}); err != nil {
		t.Fatal(err)
	}
	budget.mu.Lock()
	defer budget.mu.Unlock()
	if budget.acquired != 0 || len(budget.latencies) != 0 {
		t.Fatalf("acquired %d, reported %d latencies; want none", budget.acquired, len(budget.latencies))
	}
}
