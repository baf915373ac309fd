// Package limittest is the conformance suite every ratelimit.Limiter backend
// passes, so the embedded and Redis limiters cannot drift apart.
//
// Run runs every test twice: with a fake clock the backend must read (exact
// assertions, and long simulated runs that check the sliding-window bound),
// and in real time (the backend's own clock, e.g. Redis TIME), where only
// timing-robust properties are asserted, each in a few seconds at most.
package limittest

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

// NewLimiter returns a limiter enforcing limits on one backend's state.
// Limiters from one NewLimiter share that state, as replicas share Redis.
type NewLimiter func(limits ratelimit.Limits) ratelimit.Limiter

// Factory returns a fresh, empty backend for one test. clock is the time
// every limiter must read, or nil for the backend's own clock.
type Factory func(t *testing.T, clock func() time.Time) NewLimiter

// NewClock returns a fake clock at a whole second, so µs arithmetic is exact.
func NewClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
}

type mode int

const (
	both mode = iota
	fakeOnly
	realOnly
)

// Run runs the suite against the backend, but for the tests named in skip
// (a backend may skip a long simulation it runs in another variant).
func Run(t *testing.T, f Factory, skip ...string) {
	tests := []struct {
		name string
		mode mode
		fn   func(t *testing.T, e *env)
	}{
		{"Pacing", both, testPacing},
		{"DeniedConsumeNothing", both, testDeniedConsumeNothing},
		{"RetryAfterExact", fakeOnly, testRetryAfterExact},
		{"BurstAfterIdle", both, testBurstAfterIdle},
		{"ResetAfter", fakeOnly, testResetAfter},
		{"BothWindows", fakeOnly, testBothWindows},
		{"BothWindowsRealTime", realOnly, testBothWindowsRealTime},
		{"WindowEdge", fakeOnly, testWindowEdge},
		{"MultiBucketAllOrNothing", both, testMultiBucket},
		{"MultiBucketRetryAfterIsMax", fakeOnly, testMultiBucketRetryAfter},
		{"IndependentBuckets", both, testIndependentBuckets},
		{"InvalidRequests", fakeOnly, testInvalid},
		{"SlidingWindowBound", fakeOnly, testSlidingWindowBound},
		{"SlidingWindowBoundRandom", fakeOnly, testSlidingWindowBoundRandom},
		{"ConcurrentReplicas", both, testConcurrentReplicas},
		{"Wait", realOnly, testWait},
	}
	for _, clockMode := range []mode{fakeOnly, realOnly} {
		name := map[mode]string{fakeOnly: "FakeClock", realOnly: "RealClock"}[clockMode]
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				if tc.mode != both && tc.mode != clockMode || slices.Contains(skip, tc.name) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					e := &env{t: t}
					var clock func() time.Time
					if clockMode == fakeOnly {
						e.clock = NewClock()
						clock = e.clock.Now
					}
					e.newLimiter = f(t, clock)
					tc.fn(t, e)
				})
			}
		})
	}
}

type env struct {
	t          *testing.T
	clock      *fakeclock.Clock // nil in real time
	newLimiter NewLimiter
}

func (e *env) fake() bool { return e.clock != nil }

func (e *env) sleep(d time.Duration) {
	if e.fake() {
		e.clock.Advance(d)
		return
	}
	time.Sleep(d)
}

// allow calls Allow and fails the test on error.
func (e *env) allow(l ratelimit.Limiter, n int, buckets ...string) ratelimit.Result {
	e.t.Helper()
	res, err := l.Allow(e.t.Context(), buckets, n)
	if err != nil {
		e.t.Fatalf("Allow(%q, %d): %v", buckets, n, err)
	}
	return res
}

func (e *env) mustAllow(l ratelimit.Limiter, n int, buckets ...string) ratelimit.Result {
	e.t.Helper()
	res := e.allow(l, n, buckets...)
	if !res.Allowed {
		e.t.Fatalf("Allow(%q, %d) = %+v, want allowed", buckets, n, res)
	}
	return res
}

func (e *env) mustDeny(l ratelimit.Limiter, n int, buckets ...string) ratelimit.Result {
	e.t.Helper()
	res := e.allow(l, n, buckets...)
	if res.Allowed {
		e.t.Fatalf("Allow(%q, %d) = %+v, want denied", buckets, n, res)
	}
	if res.RetryAfter <= 0 {
		e.t.Fatalf("Allow(%q, %d) denied with RetryAfter %v, want > 0", buckets, n, res.RetryAfter)
	}
	return res
}

func limits(perSecond, perMinute ratelimit.Limit) ratelimit.Limits {
	return ratelimit.Limits{PerSecond: perSecond, PerMinute: perMinute}
}

func perSecond(rate, burst int) ratelimit.Limit {
	return ratelimit.Limit{Rate: rate, Period: time.Second, Burst: burst}
}

func perMinute(rate, burst int) ratelimit.Limit {
	return ratelimit.Limit{Rate: rate, Period: time.Minute, Burst: burst}
}

// looseMinute never binds in tests that are about the per-second window
// (T ≈ 10 ms), and its burst admits any n they use.
func looseMinute() ratelimit.Limit { return perMinute(6000, 100) }

func equalDur(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func testPacing(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 1), looseMinute()))
	r1 := e.mustAllow(l, 1, "a")
	if r1.Remaining != 0 || r1.RetryAfter != 0 {
		t.Fatalf("first = %+v, want Remaining 0, RetryAfter 0", r1)
	}
	equalDur(t, "ResetAfter", r1.ResetAfter, 100*time.Millisecond)
	if e.fake() && !r1.At.Equal(e.clock.Now()) {
		t.Fatalf("At = %v, want the clock's %v", r1.At, e.clock.Now())
	}
	r2 := e.mustDeny(l, 1, "a")
	if e.fake() {
		equalDur(t, "RetryAfter", r2.RetryAfter, 100*time.Millisecond)
	} else if want := r1.At.Add(100 * time.Millisecond).Sub(r2.At); r2.RetryAfter-want > time.Microsecond || want-r2.RetryAfter > time.Microsecond {
		// Both readings come from the limiter's clock, so this is exact but
		// for µs truncation.
		t.Fatalf("RetryAfter = %v, want %v (100ms after the admission at %v, asked at %v)", r2.RetryAfter, want, r1.At, r2.At)
	}
	e.sleep(r2.RetryAfter)
	e.mustAllow(l, 1, "a")
}

func testDeniedConsumeNothing(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 1), looseMinute()))
	e.mustAllow(l, 1, "a")
	last := time.Duration(1 << 62)
	for range 30 {
		r := e.mustDeny(l, 1, "a")
		if e.fake() {
			equalDur(t, "RetryAfter", r.RetryAfter, 100*time.Millisecond)
		} else if r.RetryAfter > last {
			t.Fatalf("RetryAfter grew from %v to %v: a denial was charged", last, r.RetryAfter)
		}
		last = r.RetryAfter
	}
	// Had any denial been charged, this would still be denied.
	e.sleep(last)
	e.mustAllow(l, 1, "a")
}

func testRetryAfterExact(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 1), looseMinute()))
	e.mustAllow(l, 1, "a")
	e.sleep(40 * time.Millisecond)
	equalDur(t, "RetryAfter at +40ms", e.mustDeny(l, 1, "a").RetryAfter, 60*time.Millisecond)
	e.sleep(60*time.Millisecond - time.Microsecond)
	equalDur(t, "RetryAfter 1µs early", e.mustDeny(l, 1, "a").RetryAfter, time.Microsecond)
	e.sleep(time.Microsecond)
	e.mustAllow(l, 1, "a")

	// n > 1 needs a burst: 10/s with burst 3 has T = 1s/8 = 125ms, τ = 250ms.
	l = e.newLimiter(limits(perSecond(10, 3), looseMinute()))
	for want := 2; want >= 0; want-- {
		if r := e.mustAllow(l, 1, "b"); r.Remaining != want {
			t.Fatalf("Remaining = %d, want %d", r.Remaining, want)
		}
	}
	// TAT = +375ms; 2 more conform when TAT + T ≤ now + τ, at +250ms.
	equalDur(t, "RetryAfter(n=2)", e.mustDeny(l, 2, "b").RetryAfter, 250*time.Millisecond)
	e.sleep(250*time.Millisecond - time.Microsecond)
	equalDur(t, "RetryAfter(n=2) 1µs early", e.mustDeny(l, 2, "b").RetryAfter, time.Microsecond)
	e.sleep(time.Microsecond)
	if r := e.mustAllow(l, 2, "b"); r.Remaining != 0 {
		t.Fatalf("Remaining after n=2 = %d, want 0", r.Remaining)
	}
	equalDur(t, "RetryAfter(n=1) after n=2", e.mustDeny(l, 1, "b").RetryAfter, 125*time.Millisecond)
}

func testBurstAfterIdle(t *testing.T, e *env) {
	// Burst 4 of 10/s: T = ceil(1s/7) = 142858µs, so at most 10 in any second.
	lim := perSecond(10, 4)
	interval, _ := lim.GCRA()
	equalDur(t, "interval", interval, 142858*time.Microsecond)
	l := e.newLimiter(limits(lim, looseMinute()))
	for round := range 2 {
		var first ratelimit.Result
		for i := range 4 {
			r := e.mustAllow(l, 1, "a")
			if i == 0 {
				first = r
			}
			if r.Remaining != 3-i {
				t.Fatalf("round %d request %d: Remaining = %d, want %d", round, i, r.Remaining, 3-i)
			}
		}
		r := e.allow(l, 1, "a")
		if e.fake() {
			if r.Allowed {
				t.Fatal("fifth request after idle allowed, want denied")
			}
			equalDur(t, "RetryAfter", r.RetryAfter, interval)
		} else if r.Allowed && r.At.Sub(first.At) < interval {
			t.Fatalf("fifth request %v after the first allowed; burst is 4", r.At.Sub(first.At))
		}
		if !e.fake() {
			return // one round is enough in real time
		}
		e.sleep(10 * time.Second) // idle: the full burst is back
	}
}

func testResetAfter(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 3), looseMinute()))
	var r ratelimit.Result
	for range 3 {
		r = e.mustAllow(l, 1, "a")
	}
	equalDur(t, "ResetAfter", r.ResetAfter, 375*time.Millisecond)
	e.sleep(r.ResetAfter)
	if r := e.mustAllow(l, 1, "a"); r.Remaining != 2 {
		t.Fatalf("Remaining after reset = %d, want 2 (full burst 3 minus 1)", r.Remaining)
	}
}

// greedy takes every slot on buckets for d of fake time, sleeping exactly
// RetryAfter, and returns the admission times (one per request).
func greedy(t *testing.T, e *env, l ratelimit.Limiter, d time.Duration, buckets ...string) []time.Time {
	t.Helper()
	end := e.clock.Now().Add(d)
	var times []time.Time
	for e.clock.Now().Before(end) {
		r := e.allow(l, 1, buckets...)
		if r.Allowed {
			times = append(times, r.At)
			continue
		}
		e.sleep(r.RetryAfter)
	}
	return times
}

func testBothWindows(t *testing.T, e *env) {
	// 10/s, and 30/min with burst 20: T_m = ceil(60s/11) = 5454546µs.
	minute := perMinute(30, 20)
	tm, _ := minute.GCRA()
	l := e.newLimiter(limits(perSecond(10, 1), minute))
	start := e.clock.Now()
	for i := range 20 {
		r := e.mustAllow(l, 1, "a")
		if want := start.Add(time.Duration(i) * 100 * time.Millisecond); !r.At.Equal(want) {
			t.Fatalf("request %d at %v, want %v (the per-second pace)", i, r.At.Sub(start), want.Sub(start))
		}
		if i < 19 {
			ra := e.mustDeny(l, 1, "a").RetryAfter
			equalDur(t, "RetryAfter (second window)", ra, 100*time.Millisecond)
			e.sleep(ra)
		}
	}
	// After 20 at 100ms spacing the minute window binds: TAT_m - τ_m = start + T_m.
	e.sleep(100 * time.Millisecond)
	equalDur(t, "RetryAfter (minute window)", e.mustDeny(l, 1, "a").RetryAfter, tm-2*time.Second)
	times := greedy(t, e, l, 5*time.Minute, "a")
	times = append(times, start) // keep the first 20 in the accounting
	for i := 1; i < 20; i++ {
		times = append(times, start.Add(time.Duration(i)*100*time.Millisecond))
	}
	slices.SortFunc(times, time.Time.Compare)
	checkWindows(t, times, 10, 30, true)
}

func testBothWindowsRealTime(t *testing.T, e *env) {
	// 10/s, and 30/min with burst 5 (T_m = 60s/26 ≈ 2.3s): five go at the
	// per-second pace, then the minute window holds the sixth for ~1.8s.
	l := e.newLimiter(limits(perSecond(10, 1), perMinute(30, 5)))
	for i := 0; i < 5; {
		r := e.allow(l, 1, "a")
		if r.Allowed {
			i++
			continue
		}
		if r.RetryAfter > 100*time.Millisecond {
			t.Fatalf("request %d: RetryAfter %v; only the per-second window (100ms) should bind", i, r.RetryAfter)
		}
		e.sleep(r.RetryAfter)
	}
	e.sleep(100 * time.Millisecond) // the per-second window has room again
	if r := e.mustDeny(l, 1, "a"); r.RetryAfter < time.Second {
		t.Fatalf("sixth request: RetryAfter %v, want the minute window's ~1.8s", r.RetryAfter)
	}
}

func testWindowEdge(t *testing.T, e *env) {
	// Burst = Rate = 5: T = 1s, so 5 go at once, then the sixth exactly when
	// they leave the half-open window (t-1s, t], as the upstream counts.
	l := e.newLimiter(limits(perSecond(5, 5), looseMinute()))
	for range 5 {
		e.mustAllow(l, 1, "a")
	}
	equalDur(t, "RetryAfter", e.mustDeny(l, 1, "a").RetryAfter, time.Second)
	e.sleep(time.Second - time.Microsecond)
	equalDur(t, "RetryAfter 1µs before the edge", e.mustDeny(l, 1, "a").RetryAfter, time.Microsecond)
	e.sleep(time.Microsecond)
	e.mustAllow(l, 1, "a")
	equalDur(t, "RetryAfter after the edge", e.mustDeny(l, 1, "a").RetryAfter, time.Second)
}

func testMultiBucket(t *testing.T, e *env) {
	// 3/s with burst 3: T = 1s, so nothing refills during the test's calls.
	l := e.newLimiter(limits(perSecond(3, 3), looseMinute()))
	for range 3 {
		e.mustAllow(l, 1, "a")
	}
	e.mustDeny(l, 1, "a", "b")
	if r := e.mustAllow(l, 1, "b"); r.Remaining != 2 {
		t.Fatalf("b after a denied [a b]: Remaining = %d, want 2 (the denial must not charge b)", r.Remaining)
	}
	ra := e.mustDeny(l, 1, "a").RetryAfter
	if e.fake() {
		equalDur(t, "RetryAfter(a)", ra, time.Second)
	} else {
		// b was charged a moment after a; outlast that moment so b is idle
		// (a gets its second slot only after another second).
		ra += 100 * time.Millisecond
	}
	e.sleep(ra)
	// a has 1 slot, b is idle again (3).
	if r := e.mustAllow(l, 1, "b", "a"); r.Remaining != 0 {
		t.Fatalf("[b a]: Remaining = %d, want 0 (a's window is the smallest)", r.Remaining)
	}
	if r := e.mustAllow(l, 1, "b"); r.Remaining != 1 {
		t.Fatalf("b after [b a]: Remaining = %d, want 1 (the admission must charge b)", r.Remaining)
	}
	e.mustDeny(l, 1, "a") // and it charged a

	// A bucket named twice is charged once.
	if r := e.mustAllow(l, 1, "c", "c"); r.Remaining != 2 {
		t.Fatalf("[c c]: Remaining = %d, want 2", r.Remaining)
	}
}

func testMultiBucketRetryAfter(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(3, 3), looseMinute()))
	for range 3 {
		e.mustAllow(l, 1, "a")
	}
	e.sleep(500 * time.Millisecond)
	for range 3 {
		e.mustAllow(l, 1, "b")
	}
	equalDur(t, "RetryAfter(a)", e.mustDeny(l, 1, "a").RetryAfter, 500*time.Millisecond)
	equalDur(t, "RetryAfter([a b])", e.mustDeny(l, 1, "a", "b").RetryAfter, time.Second)
	e.sleep(time.Second - time.Microsecond)
	e.mustDeny(l, 1, "a", "b")
	e.sleep(time.Microsecond)
	e.mustAllow(l, 1, "a", "b")
}

func testIndependentBuckets(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(3, 3), looseMinute()))
	for range 3 {
		e.mustAllow(l, 1, "a")
	}
	e.mustDeny(l, 1, "a")
	for want := 2; want >= 0; want-- {
		if r := e.mustAllow(l, 1, "b"); r.Remaining != want {
			t.Fatalf("b: Remaining = %d, want %d", r.Remaining, want)
		}
	}
}

func testInvalid(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 3), looseMinute()))
	many := make([]string, ratelimit.MaxBuckets+1)
	for i := range many {
		many[i] = "b" + strconv.Itoa(i)
	}
	for _, tc := range []struct {
		name    string
		buckets []string
		n       int
	}{
		{"n=0", []string{"a"}, 0},
		{"n<0", []string{"a"}, -1},
		{"n>burst", []string{"a"}, 4},
		{"no buckets", nil, 1},
		{"empty name", []string{"a", ""}, 1},
		{"too many buckets", many, 1},
	} {
		_, err := l.Allow(t.Context(), tc.buckets, tc.n)
		if !errors.Is(err, ratelimit.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.Allow(ctx, []string{"a"}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err = %v, want context.Canceled", err)
	}
	// None of that charged anything: the full burst is there.
	if r := e.mustAllow(l, 3, "a"); r.Remaining != 0 {
		t.Fatalf("Remaining = %d, want 0", r.Remaining)
	}
}

// testSlidingWindowBound is the package doc's theorem, checked by
// simulation: a greedy caller at the production limits gets exactly Rate in
// the busiest sliding second and minute, never more.
func testSlidingWindowBound(t *testing.T, e *env) {
	ls := ratelimit.InstantlyLimits(ratelimit.DefaultHeadroom)
	l := e.newLimiter(ls)
	d := 61 * time.Second // over a minute, so the busiest minute is a full one
	times := greedy(t, e, l, d, "ws")
	checkWindows(t, times, ls.PerSecond.Rate, ls.PerMinute.Rate, true)
	if want := int(d/time.Second) * ls.PerSecond.Rate; len(times) != want {
		t.Fatalf("%d admitted in %v, want %d (the full sustained rate)", len(times), d, want)
	}
}

// testSlidingWindowBoundRandom throws random arrivals, batch sizes and bucket
// sets at bursty limits and checks every bucket's windows.
func testSlidingWindowBoundRandom(t *testing.T, e *env) {
	ls := limits(perSecond(10, 3), perMinute(30, 10))
	l := e.newLimiter(ls)
	rng := rand.New(rand.NewPCG(1, 2))
	sets := [][]string{{"a"}, {"b"}, {"a", "b"}}
	admitted := map[string][]time.Time{}
	for range 4000 {
		set := sets[rng.IntN(len(sets))]
		n := 1 + rng.IntN(3)
		r := e.allow(l, n, set...)
		if r.Allowed {
			for _, b := range set {
				for range n {
					admitted[b] = append(admitted[b], r.At)
				}
			}
		}
		switch p := rng.IntN(100); {
		case p < 3:
			e.sleep(time.Duration(rng.Int64N(int64(20 * time.Second))))
		case p < 50 && !r.Allowed:
			e.sleep(r.RetryAfter) // exactly on the edge
		default:
			e.sleep(time.Duration(rng.Int64N(int64(150 * time.Millisecond))))
		}
	}
	for b, times := range admitted {
		t.Logf("bucket %s: %d admitted", b, len(times))
		checkWindows(t, times, 10, 30, false)
	}
}

// checkWindows fails if any half-open window (t-1s, t] holds more than
// perSecond admissions or any (t-60s, t] more than perMinute; with exact, it
// also wants both maxima reached.
func checkWindows(t *testing.T, times []time.Time, perSecond, perMinute int, exact bool) {
	t.Helper()
	s, m := SlidingMax(times, time.Second), SlidingMax(times, time.Minute)
	t.Logf("%d admitted; busiest second %d (limit %d), busiest minute %d (limit %d)", len(times), s, perSecond, m, perMinute)
	if s > perSecond || m > perMinute {
		t.Fatalf("sliding windows exceeded: busiest second %d > %d or busiest minute %d > %d", s, perSecond, m, perMinute)
	}
	if exact && (s != perSecond || m != perMinute) {
		t.Fatalf("greedy caller below the limit: busiest second %d (want %d), busiest minute %d (want %d)", s, perSecond, m, perMinute)
	}
}

// SlidingMax returns the most times in any half-open window (t-w, t], the
// upstream's accounting. times must be sorted.
func SlidingMax(times []time.Time, w time.Duration) int {
	best, i := 0, 0
	for j, tj := range times {
		for !times[i].After(tj.Add(-w)) {
			i++
		}
		best = max(best, j-i+1)
	}
	return best
}

// testConcurrentReplicas is the three-replicas property: separate limiters
// (separate clients, for Redis) hammer one bucket from many goroutines, and
// the admissions, on the limiter's clock, never exceed either window.
func testConcurrentReplicas(t *testing.T, e *env) {
	// 20/s, and 30/min with burst 25 (T_m = 10s): 25 go in the first ~1.25s
	// at the per-second pace, then the minute window holds the rest.
	ls := limits(perSecond(20, 1), perMinute(30, 25))
	const replicas, workers = 3, 3
	d := 2 * time.Second
	var (
		mu    sync.Mutex
		times []time.Time
		wg    sync.WaitGroup
		done  = make(chan struct{})
		errs  = make(chan error, replicas*workers)
	)
	for range replicas {
		l := e.newLimiter(ls)
		for range workers {
			wg.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					r, err := l.Allow(t.Context(), []string{"hot"}, 1)
					if err != nil {
						errs <- err
						return
					}
					if r.Allowed {
						mu.Lock()
						times = append(times, r.At)
						mu.Unlock()
					}
					if e.fake() {
						runtime.Gosched() // let the clock driver run
					}
				}
			})
		}
	}
	if e.fake() {
		end := e.clock.Now().Add(d)
		for e.clock.Now().Before(end) {
			e.clock.Advance(2 * time.Millisecond)
			time.Sleep(100 * time.Microsecond)
		}
	} else {
		time.Sleep(d)
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Allow: %v", err)
	}
	slices.SortFunc(times, time.Time.Compare)
	checkWindows(t, times, 20, 30, false)
	if len(times) != 25 {
		t.Fatalf("%d admitted in %v, want the minute burst, 25", len(times), d)
	}
}

func testWait(t *testing.T, e *env) {
	l := e.newLimiter(limits(perSecond(10, 1), looseMinute()))
	e.mustAllow(l, 1, "a")
	waited, err := ratelimit.Wait(t.Context(), l, []string{"a"})
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if waited < 50*time.Millisecond || waited > 400*time.Millisecond {
		t.Fatalf("Wait took %v, want about the 100ms pace", waited)
	}
	e.mustDeny(l, 1, "a") // Wait's admission was charged

	// A slow bucket: 1/s.
	l = e.newLimiter(limits(perSecond(1, 1), looseMinute()))
	e.mustAllow(l, 1, "slow")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = ratelimit.Wait(ctx, l, []string{"slow"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait past the deadline: err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 40*time.Millisecond {
		t.Fatalf("Wait took %v to see the ~1s wait cannot fit a 50ms deadline; want at once", el)
	}

	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	start = time.Now()
	_, err = ratelimit.Wait(ctx, l, []string{"slow"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Wait: err = %v, want Canceled", err)
	}
	if el := time.Since(start); el > 300*time.Millisecond {
		t.Fatalf("canceled Wait returned after %v", el)
	}
}
