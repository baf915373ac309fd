package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
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
// never more than PerWorkspace per workspace across calls; and the engine
// does use its bounds: the items of two calls run together, Concurrency of
// each at once (a serial engine would never get there).
func TestConcurrencyBounds(t *testing.T) {
	e := New(Options{Concurrency: 3, PerWorkspace: 1})
	var inFlight, peak atomic.Int64
	var perWS sync.Map
	gate := make(chan struct{})
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
		<-gate // held until the test has seen the first items together
		c.(*atomic.Int64).Add(-1)
		inFlight.Add(-1)
		return 0, Read, nil
	}
	ws := names(12)
	reversed := slices.Clone(ws)
	slices.Reverse(reversed) // the two calls start on different workspaces
	var wg sync.WaitGroup
	released := false
	defer func() {
		if !released {
			close(gate)
		}
		wg.Wait()
	}()
	wg.Go(func() { Run(context.Background(), e, ws, fn) })
	wg.Go(func() { Run(context.Background(), e, reversed, fn) })
	// Lower bound: both calls fill their Concurrency before anything
	// finishes.
	waitFor(t, "in fn 6, engine 6", func() string {
		inflight, _ := e.state("")
		return fmt.Sprintf("in fn %d, engine %d", inFlight.Load(), inflight)
	})
	released = true
	close(gate)
	wg.Wait()
	if p := peak.Load(); p != 6 {
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

// waitFor polls state until it reads want; the timeout only bounds a
// broken engine, it is not a measurement.
func waitFor(t *testing.T, want string, state func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := state()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("never reached %q; last %q", want, got)
		}
		time.Sleep(time.Millisecond)
	}
}

func repeat(w string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = w
	}
	return out
}

// blocker is a Func that counts items in flight (and their peak) and holds
// each until a token arrives on release (or release is closed).
type blocker struct {
	inFlight, peak, done atomic.Int64
	release              chan struct{}
}

func newBlocker() *blocker { return &blocker{release: make(chan struct{})} }

func (b *blocker) fn(context.Context, string) (int, Outcome, error) {
	n := b.inFlight.Add(1)
	for {
		p := b.peak.Load()
		if n <= p || b.peak.CompareAndSwap(p, n) {
			break
		}
	}
	<-b.release
	b.inFlight.Add(-1)
	b.done.Add(1)
	return 0, Read, nil
}

// state reads the Func's and a semaphore's view: items in fn, holding a
// unit of the semaphore (ws, or the process-wide one for ""), queued for
// it, and finished.
func (b *blocker) state(e *Engine, ws string) string {
	inflight, waiting := e.state(ws)
	return fmt.Sprintf("in fn %d, holding %d, queued %d, done %d", b.inFlight.Load(), inflight, waiting, b.done.Load())
}

func (e *Engine) state(ws string) (inflight, waiting int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.global
	if ws != "" {
		w, ok := e.ws[ws]
		if !ok {
			return 0, 0
		}
		s = &w.sem
	}
	return s.inflight, len(s.waiters)
}

// TestPerWorkspaceLimitFollowsLatency: at 80/s, a measured 150 ms latency
// lets ceil(80 × 0.15 × 1.5) + 1 = 19 items of one workspace run at once
// (not fewer: Little's law needs them to spend the budget; not more: the
// rest wait), and 10 ms lets ceil(1.2) + 1 = 3.
func TestPerWorkspaceLimitFollowsLatency(t *testing.T) {
	for _, tc := range []struct {
		latency time.Duration
		want    int
	}{{150 * time.Millisecond, 19}, {10 * time.Millisecond, 3}} {
		t.Run(tc.latency.String(), func(t *testing.T) {
			tr := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: 80})
			tr.Observe([]string{"instantly-acme"}, tc.latency)
			// The engine knows the workspace by name, the tracker by budget.
			e := New(Options{Limit: func(ws string) int {
				if ws != "workspaces/acme" {
					t.Errorf("limit asked for %q", ws)
				}
				return tr.Limit([]string{"instantly-acme"})
			}})
			const items = 60
			b := newBlocker()
			res := make(chan []Result[int], 1)
			go func() {
				res <- RunWith(context.Background(), e, repeat("workspaces/acme", items), RunOptions{Unbounded: true}, b.fn)
			}()
			waitFor(t, fmt.Sprintf("in fn %d, holding %[1]d, queued %d, done 0", tc.want, items-tc.want),
				func() string { return b.state(e, "workspaces/acme") })
			if p := b.peak.Load(); p != int64(tc.want) {
				t.Fatalf("peak %d items of one workspace at once, want %d", p, tc.want)
			}
			close(b.release)
			for _, r := range <-res {
				if r.Outcome != Read {
					t.Fatalf("%v: %v", r.Outcome, r.Err)
				}
			}
			if b.peak.Load() != int64(tc.want) {
				t.Fatalf("peak %d after the release, want %d", b.peak.Load(), tc.want)
			}
		})
	}
}

// TestLimitChangeAppliesToNextItems: a raised limit starts more items as
// soon as one finishes; a lowered one starts none until the running drop
// below it. Running items are never interrupted.
func TestLimitChangeAppliesToNextItems(t *testing.T) {
	var limit atomic.Int64
	limit.Store(2)
	e := New(Options{Limit: func(string) int { return int(limit.Load()) }})
	const items = 10
	b := newBlocker()
	res := make(chan []Result[int], 1)
	go func() {
		res <- RunWith(context.Background(), e, repeat("workspaces/acme", items), RunOptions{Unbounded: true}, b.fn)
	}()
	state := func() string { return b.state(e, "workspaces/acme") }
	waitFor(t, "in fn 2, holding 2, queued 8, done 0", state)
	limit.Store(5)
	b.release <- struct{}{} // one finishes: 1 running, then 4 more start
	waitFor(t, "in fn 5, holding 5, queued 4, done 1", state)
	limit.Store(1)
	b.release <- struct{}{}
	b.release <- struct{}{} // none starts: 3 running is above 1
	waitFor(t, "in fn 3, holding 3, queued 4, done 3", state)
	if p := b.peak.Load(); p != 5 {
		t.Fatalf("peak %d, want 5", p)
	}
	close(b.release)
	<-res
}

// TestMaxInflightAcrossRuns: the process-wide cap holds across a bounded
// and an unbounded Run at once, and is reached (not just respected).
func TestMaxInflightAcrossRuns(t *testing.T) {
	e := New(Options{Concurrency: 10, MaxInflight: 5})
	b := newBlocker()
	var wg sync.WaitGroup
	wg.Go(func() { Run(context.Background(), e, names(10), b.fn) })
	wg.Go(func() {
		RunWith(context.Background(), e, names(20)[10:], RunOptions{Unbounded: true}, b.fn)
	})
	waitFor(t, "in fn 5, holding 5, queued 15, done 0", func() string { return b.state(e, "") })
	if p := b.peak.Load(); p != 5 {
		t.Fatalf("peak %d across two runs, want MaxInflight 5", p)
	}
	close(b.release)
	wg.Wait()
	if b.done.Load() != 20 || b.peak.Load() != 5 {
		t.Fatalf("done %d, peak %d", b.done.Load(), b.peak.Load())
	}
}

// TestUnboundedLiftsConcurrency: an unbounded Run is not held to
// Options.Concurrency; a plain Run is.
func TestUnboundedLiftsConcurrency(t *testing.T) {
	e := New(Options{Concurrency: 2})
	b := newBlocker()
	done := make(chan struct{})
	go func() {
		defer close(done)
		RunWith(context.Background(), e, names(8), RunOptions{Unbounded: true}, b.fn)
	}()
	waitFor(t, "in fn 8, holding 8, queued 0, done 0", func() string { return b.state(e, "") })
	close(b.release)
	<-done

	b = newBlocker()
	done = make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), e, names(8), b.fn)
	}()
	waitFor(t, "in fn 2, holding 2, queued 0, done 0", func() string { return b.state(e, "") })
	close(b.release)
	<-done
	if p := b.peak.Load(); p != 2 {
		t.Fatalf("peak %d for a Run of concurrency 2", p)
	}
}

// TestDoWaitsAndGivesUp: Do holds an item to its workspace's limit; one
// canceled while queued is NOT_ATTEMPTED and leaves nothing behind.
func TestDoWaitsAndGivesUp(t *testing.T) {
	e := New(Options{PerWorkspace: 1})
	b := newBlocker()
	first := make(chan Result[int], 1)
	go func() { first <- Do(context.Background(), e, "workspaces/acme", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 0, done 0", func() string { return b.state(e, "workspaces/acme") })
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan Result[int], 1)
	go func() { second <- Do(ctx, e, "workspaces/acme", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 1, done 0", func() string { return b.state(e, "workspaces/acme") })
	third := make(chan Result[int], 1)
	go func() { third <- Do(context.Background(), e, "workspaces/acme", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 2, done 0", func() string { return b.state(e, "workspaces/acme") })
	cancel()
	if r := <-second; r.Outcome != NotAttempted || !errors.Is(r.Err, ErrNotAttempted) || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("canceled while queued: %v (%v)", r.Outcome, r.Err)
	}
	// The canceled item left the line: the unit the first frees goes to
	// the third, not to nobody.
	if got := b.state(e, "workspaces/acme"); got != "in fn 1, holding 1, queued 1, done 0" {
		t.Fatalf("after the cancel: %s", got)
	}
	close(b.release)
	for _, c := range []chan Result[int]{first, third} {
		if r := <-c; r.Outcome != Read {
			t.Fatalf("an item that was not canceled: %v (%v)", r.Outcome, r.Err)
		}
	}
	if b.done.Load() != 2 {
		t.Fatalf("%d items ran", b.done.Load())
	}
	n, q := e.state("")
	e.mu.Lock()
	slots := len(e.ws)
	e.mu.Unlock()
	if n != 0 || q != 0 || slots != 0 {
		t.Fatalf("left behind: %d running, %d queued, %d workspaces", n, q, slots)
	}
}

// TestSetDefaults: unset fields take the defaults, set ones are kept, and
// New applies them.
func TestSetDefaults(t *testing.T) {
	var o Options
	o.SetDefaults()
	want := Options{Concurrency: 32, PerWorkspace: 256, MaxInflight: 2000, MinMargin: 50 * time.Millisecond, MaxMargin: 2 * time.Second}
	if o.Concurrency != want.Concurrency || o.PerWorkspace != want.PerWorkspace || o.MaxInflight != want.MaxInflight ||
		o.MinMargin != want.MinMargin || o.MaxMargin != want.MaxMargin {
		t.Fatalf("defaults %+v, want %+v", o, want)
	}
	set := Options{Concurrency: 3, PerWorkspace: 4, MaxInflight: 5, MinMargin: time.Millisecond, MaxMargin: time.Second}
	got := set
	got.SetDefaults()
	if got.Concurrency != 3 || got.PerWorkspace != 4 || got.MaxInflight != 5 || got.MinMargin != time.Millisecond || got.MaxMargin != time.Second {
		t.Fatalf("set fields changed: %+v", got)
	}
	if e := New(Options{}); e.opts.Concurrency != want.Concurrency || e.opts.MaxInflight != want.MaxInflight {
		t.Fatalf("New kept unset options: %+v", e.opts)
	}
}

// TestItemOutcome: what an item's Func returns becomes its result: an error
// after the deadline is TIMED_OUT, a skip keeps its explanation, any other
// error is FAILED whatever outcome came with it, and success keeps its
// outcome.
func TestItemOutcome(t *testing.T) {
	e := New(Options{})
	errBoom := errors.New("boom")
	for _, c := range []struct {
		name    string
		outcome Outcome
		err     error
		expire  bool
		want    Outcome
	}{
		{"success", Updated, nil, false, Updated},
		{"error", Created, errBoom, false, Failed},
		{"skip with reason", Skipped, errBoom, false, Skipped},
		{"error after the deadline", Created, errBoom, true, TimedOut},
		{"success after the deadline", Deleted, nil, true, Deleted},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := Do(ctx, e, "workspaces/acme", func(context.Context, string) (int, Outcome, error) {
				if c.expire {
					cancel()
				}
				return 1, c.outcome, c.err
			})
			if r.Outcome != c.want || !errors.Is(r.Err, c.err) || r.Value != 1 {
				t.Fatalf("got %v (%v), value %d; want %v", r.Outcome, r.Err, r.Value, c.want)
			}
		})
	}
}

func TestSucceeded(t *testing.T) {
	want := map[Outcome]bool{Created: true, Updated: true, Deleted: true, Read: true}
	for o := NotAttempted; o <= TimedOut; o++ {
		if o.Succeeded() != want[o] {
			t.Errorf("%v.Succeeded() = %v", o, o.Succeeded())
		}
	}
}

// TestGivingUpOnTheProcessLimit: an item that gave up waiting for the
// process-wide limit hands its workspace unit to the next item of that
// workspace.
func TestGivingUpOnTheProcessLimit(t *testing.T) {
	e := New(Options{PerWorkspace: 1, MaxInflight: 1})
	b := newBlocker()
	holder := make(chan Result[int], 1)
	go func() { holder <- Do(context.Background(), e, "workspaces/a", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 0, done 0", func() string { return b.state(e, "") })
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp, next := make(chan Result[int], 1), make(chan Result[int], 1)
	go func() { gaveUp <- Do(ctx, e, "workspaces/b", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 1, done 0", func() string { return b.state(e, "") })
	go func() { next <- Do(context.Background(), e, "workspaces/b", b.fn) }()
	waitFor(t, "in fn 1, holding 1, queued 1, done 0", func() string { return b.state(e, "workspaces/b") })
	cancel()
	if r := <-gaveUp; r.Outcome != NotAttempted {
		t.Fatalf("gave up: %v", r.Outcome)
	}
	if n, q := e.state("workspaces/b"); n != 1 || q != 0 {
		t.Fatalf("workspaces/b after the cancel: holding %d, queued %d; want its unit passed on", n, q)
	}
	close(b.release)
	for _, c := range []chan Result[int]{holder, next} {
		if r := <-c; r.Outcome != Read {
			t.Fatalf("%v (%v)", r.Outcome, r.Err)
		}
	}
}
