package fanout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("workspaces/w%03d", i)
	}
	return out
}

// TestEveryWorkspaceGetsItsOwnResult: failures, panics and successes stay
// per workspace and in order.
func TestEveryWorkspaceGetsItsOwnResult(t *testing.T) {
	e := New(Options{Concurrency: 4})
	ws := names(20)
	res := Run(context.Background(), e, ws, func(_ context.Context, w string) (string, Outcome, error) {
		switch w {
		case ws[3]:
			return "", Failed, errors.New("upstream 403")
		case ws[5]:
			panic("boom")
		case ws[7]:
			return "", AlreadyDone, nil
		case ws[9]:
			return "", Skipped, errors.New("why it was skipped")
		}
		return "ok " + w, Created, nil
	})
	if len(res) != len(ws) {
		t.Fatalf("%d results for %d workspaces", len(res), len(ws))
	}
	for i, r := range res {
		if r.Workspace != ws[i] {
			t.Fatalf("result %d is for %s", i, r.Workspace)
		}
		want := Created
		switch i {
		case 3, 5:
			want = Failed
		case 7:
			want = AlreadyDone
		case 9:
			want = Skipped // an explanation does not make it a failure
		}
		if r.Outcome != want {
			t.Fatalf("%s: %v (%v), want %v", r.Workspace, r.Outcome, r.Err, want)
		}
	}
}

// TestConcurrencyBounds: never more than Concurrency in flight per call, and
// never more than PerWorkspace per workspace across calls.
func TestConcurrencyBounds(t *testing.T) {
	e := New(Options{Concurrency: 3, PerWorkspace: 1})
	var inFlight, peak atomic.Int64
	var perWS sync.Map
	fn := func(_ context.Context, w string) (int, Outcome, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		c, _ := perWS.LoadOrStore(w, new(atomic.Int64))
		if c.(*atomic.Int64).Add(1) > 1 {
			t.Errorf("two items in flight for %s", w)
		}
		time.Sleep(5 * time.Millisecond)
		c.(*atomic.Int64).Add(-1)
		inFlight.Add(-1)
		return 0, Read, nil
	}
	var wg sync.WaitGroup
	for range 2 { // two concurrent calls over the same workspaces
		wg.Go(func() { Run(context.Background(), e, names(12), fn) })
	}
	wg.Wait()
	if p := peak.Load(); p > 6 {
		t.Fatalf("peak %d in flight for two calls of concurrency 3", p)
	}
}

// TestDeadlineReportsEveryWorkspace: at the deadline, started items are
// TIMED_OUT, the rest NOT_ATTEMPTED, none dropped, and Run returns before
// the caller's own deadline (the margin).
func TestDeadlineReportsEveryWorkspace(t *testing.T) {
	e := New(Options{Concurrency: 2, MinMargin: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res := Run(ctx, e, names(10), func(ctx context.Context, w string) (int, Outcome, error) {
		if w == "workspaces/w000" {
			return 1, Created, nil
		}
		<-ctx.Done()
		return 0, Failed, ctx.Err()
	})
	if ctx.Err() != nil {
		t.Fatal("Run did not return before the caller's deadline")
	}
	counts := map[Outcome]int{}
	for _, r := range res {
		counts[r.Outcome]++
	}
	if counts[Created] != 1 || counts[TimedOut] != 2 || counts[NotAttempted] != 7 {
		t.Fatalf("outcomes %v", counts)
	}
	for _, r := range res {
		if r.Outcome == NotAttempted && !errors.Is(r.Err, ErrNotAttempted) {
			t.Fatalf("not attempted without its error: %v", r)
		}
	}
}

// TestCanceledBeforeStart: a canceled context attempts nothing.
func TestCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var calls atomic.Int64
	res := Run(ctx, New(Options{}), names(5), func(context.Context, string) (int, Outcome, error) {
		calls.Add(1)
		return 0, Read, nil
	})
	if calls.Load() != 0 || len(res) != 5 || res[4].Outcome != NotAttempted {
		t.Fatalf("calls %d, results %v", calls.Load(), res)
	}
}

// TestSlotsAreReleased: the per-workspace map does not grow with use.
func TestSlotsAreReleased(t *testing.T) {
	e := New(Options{})
	Run(context.Background(), e, names(50), func(context.Context, string) (int, Outcome, error) { return 0, Read, nil })
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.ws) != 0 {
		t.Fatalf("%d slots left", len(e.ws))
	}
}
