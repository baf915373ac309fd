package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/memlimit"
)

// countingLimiter counts Allow calls and can fail.
type countingLimiter struct {
	inner ratelimit.Limiter
	calls atomic.Int64
	fail  error
}

func (c *countingLimiter) Allow(ctx context.Context, b []string, n int) (ratelimit.Result, error) {
	c.calls.Add(1)
	if c.fail != nil {
		return ratelimit.Result{}, c.fail
	}
	return c.inner.Allow(ctx, b, n)
}

func limits(perSecond int) ratelimit.Limits {
	return ratelimit.Limits{
		PerSecond: ratelimit.Limit{Rate: perSecond, Period: time.Second},
		PerMinute: ratelimit.Limit{Rate: perSecond * 60, Period: time.Minute},
	}
}

// TestGateQueuesLocally: many goroutines for one workspace produce few
// limiter polls, and the admitted rate holds.
func TestGateQueuesLocally(t *testing.T) {
	ml, err := memlimit.New(limits(20), memlimit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cl := &countingLimiter{inner: ml}
	g := ratelimit.NewGate(cl, ratelimit.GateOptions{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var times []time.Time
	start := time.Now()
	for range 30 {
		wg.Go(func() {
			if err := g.Acquire(context.Background(), []string{"ws-1"}); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			times = append(times, time.Now())
			mu.Unlock()
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 1300*time.Millisecond {
		t.Fatalf("30 requests at 20/s took %v", d)
	}
	// One queue: each admission costs about one successful poll plus a few
	// early ones, never a poll per waiting goroutine per interval.
	if n := cl.calls.Load(); n > 3*30 {
		t.Fatalf("%d limiter calls for 30 admissions", n)
	}
}

// TestGateSlowsDownAfterUpstream429: after Throttled, Acquire waits out the
// pause; the pause doubles and Succeeded decays it.
func TestGateSlowsDownAfterUpstream429(t *testing.T) {
	ml, _ := memlimit.New(limits(1000), memlimit.Options{})
	g := ratelimit.NewGate(ml, ratelimit.GateOptions{BasePenalty: 100 * time.Millisecond})
	b := []string{"ws-1"}
	g.Throttled(b, 0)
	start := time.Now()
	if err := g.Acquire(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("no pause after a 429: %v", d)
	}
	g.Throttled(b, 0) // second strike: 200ms
	start = time.Now()
	_ = g.Acquire(context.Background(), b)
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Fatalf("pause did not grow: %v", d)
	}
	g.Throttled(b, 300*time.Millisecond) // Retry-After wins
	start = time.Now()
	_ = g.Acquire(context.Background(), b)
	if d := time.Since(start); d < 280*time.Millisecond {
		t.Fatalf("Retry-After not honoured: %v", d)
	}
	// While ws-1 is paused, other buckets are not.
	g.Throttled(b, time.Second)
	start = time.Now()
	_ = g.Acquire(context.Background(), []string{"ws-2"})
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("another workspace paused: %v", d)
	}
	// A deadline shorter than the pause ends the wait.
	g.Throttled(b, time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := g.Acquire(ctx, b); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

// TestGateFailsClosed: a limiter error is returned, never treated as allowed.
func TestGateFailsClosed(t *testing.T) {
	g := ratelimit.NewGate(&countingLimiter{fail: ratelimit.ErrUnavailable}, ratelimit.GateOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := g.Acquire(ctx, []string{"ws"})
	if err == nil || !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("hung past the deadline")
	}
}

// TestGateGivesUpWithoutDeadline: with the backend down and no deadline
// (REST calls carry none), Acquire fails closed after MaxUnavailableWait
// instead of hanging.
func TestGateGivesUpWithoutDeadline(t *testing.T) {
	g := ratelimit.NewGate(&countingLimiter{fail: ratelimit.ErrUnavailable}, ratelimit.GateOptions{})
	start := time.Now()
	err := g.Acquire(context.Background(), []string{"ws"})
	if !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < ratelimit.MaxUnavailableWait || d > ratelimit.MaxUnavailableWait+2*time.Second {
		t.Fatalf("gave up after %v, want about %v", d, ratelimit.MaxUnavailableWait)
	}
}

// TestGatePenaltyIsPerBucket: a 429 on a sub workspace acting through its
// admin ([sub, admin]) also pauses direct calls on the admin workspace.
func TestGatePenaltyIsPerBucket(t *testing.T) {
	ml, _ := memlimit.New(limits(1000), memlimit.Options{})
	g := ratelimit.NewGate(ml, ratelimit.GateOptions{})
	g.Throttled([]string{"admin", "sub"}, 300*time.Millisecond)
	start := time.Now()
	if err := g.Acquire(context.Background(), []string{"admin"}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 280*time.Millisecond {
		t.Fatalf("admin not paused by a 429 on [admin, sub]: %v", d)
	}
}
