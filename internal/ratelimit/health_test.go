package ratelimit_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
)

// scripted answers Allow from a function of the call's bucket and the time
// since the limiter was made.
type scripted struct {
	start  time.Time
	answer func(bucket string, since time.Duration) (ratelimit.Result, error)
}

func (s *scripted) Allow(_ context.Context, b []string, _ int) (ratelimit.Result, error) {
	return s.answer(b[0], time.Since(s.start))
}

var denied = ratelimit.Result{RetryAfter: 20 * time.Millisecond}

// TestWaitKeepsWaitingThroughBlips: a backend that times out now and then
// but answers in between is not down. Wait used to count its unavailable
// window from the first timeout it ever saw, so a second timeout
// MaxUnavailableWait later failed a request that was merely queued behind
// its budget: the failed workspaces of the 1,000-workspace benchmark.
func TestWaitKeepsWaitingThroughBlips(t *testing.T) {
	var calls atomic.Int64
	l := &scripted{start: time.Now(), answer: func(_ string, since time.Duration) (ratelimit.Result, error) {
		n := calls.Add(1)
		switch {
		case n == 1:
			return ratelimit.Result{}, ratelimit.ErrTimeout
		case since < ratelimit.MaxUnavailableWait+100*time.Millisecond:
			return denied, nil
		case since < ratelimit.MaxUnavailableWait+150*time.Millisecond:
			return ratelimit.Result{}, ratelimit.ErrTimeout
		}
		return ratelimit.Result{Allowed: true}, nil
	}}
	if _, err := ratelimit.Wait(context.Background(), l, []string{"ws"}); err != nil {
		t.Fatalf("gave up on a backend that answers: %v", err)
	}
	g := ratelimit.NewGate(&scripted{start: time.Now(), answer: l.answer}, ratelimit.GateOptions{})
	calls.Store(0)
	if err := g.Acquire(context.Background(), []string{"ws"}); err != nil {
		t.Fatalf("gate gave up on a backend that answers: %v", err)
	}
}

// TestGateHealthIsShared: under CPU saturation one workspace's tries may
// all time out while others are answered; it keeps waiting (the backend is
// up), until its deadline.
func TestGateHealthIsShared(t *testing.T) {
	l := &scripted{start: time.Now(), answer: func(b string, _ time.Duration) (ratelimit.Result, error) {
		if b == "starved" {
			return ratelimit.Result{}, ratelimit.ErrTimeout
		}
		return denied, nil
	}}
	g := ratelimit.NewGate(l, ratelimit.GateOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*ratelimit.MaxUnavailableWait)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 { // others, answered (denied) all along
		wg.Go(func() { _ = g.Acquire(ctx, []string{"ok"}) })
	}
	err := g.Acquire(ctx, []string{"starved"})
	if errors.Is(err, ratelimit.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("gave up while the backend answered others: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the deadline", err)
	}
	wg.Wait()
}

// TestGateFailsFastOnceDown: once the backend has answered nobody for
// MaxUnavailableWait, the next request fails closed at its first try
// instead of waiting its own window (a fan-out over 1,000 workspaces would
// otherwise take 1,000/concurrency × the window to fail).
func TestGateFailsFastOnceDown(t *testing.T) {
	g := ratelimit.NewGate(&countingLimiter{fail: ratelimit.ErrUnavailable}, ratelimit.GateOptions{})
	start := time.Now()
	if err := g.Acquire(context.Background(), []string{"a"}); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d < ratelimit.MaxUnavailableWait {
		t.Fatalf("gave up after %v, before MaxUnavailableWait", d)
	}
	start = time.Now()
	if err := g.Acquire(context.Background(), []string{"b"}); !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > ratelimit.MaxUnavailableWait/5 {
		t.Fatalf("a request after the backend was known down waited %v", d)
	}
}
