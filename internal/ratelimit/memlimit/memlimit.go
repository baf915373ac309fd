// Package memlimit is the in-process rate limiter for the embedded (no-Redis)
// mode. It runs the same GCRA as redislimit's Lua script (see package
// ratelimit for the algorithm and its guarantee) under one mutex, so one
// process's goroutines share budgets; it forgets them on exit.
package memlimit

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
)

// sweepEvery is how many calls pass between sweeps of drained windows, which
// keeps the map at the size of the recently active buckets.
const sweepEvery = 1024

// Options configure a Limiter.
type Options struct {
	// Clock returns the current time; nil means time.Now. Tests inject a fake.
	Clock func() time.Time
}

// Limiter is a ratelimit.Limiter in memory. It is safe for concurrent use.
type Limiter struct {
	windows []window
	limits  ratelimit.Limits
	clock   func() time.Time
	origin  time.Time // times are measured from here with Sub, which uses the monotonic clock

	mu    sync.Mutex
	tats  map[key]int64 // TAT in µs since origin; absent = idle
	calls int
}

type window struct {
	interval, tolerance int64 // µs
}

type key struct {
	bucket string
	window int
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter enforcing limits.
func New(limits ratelimit.Limits, opts Options) (*Limiter, error) {
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	l := &Limiter{limits: limits, clock: clock, tats: make(map[key]int64)}
	for _, w := range limits.Windows() {
		t, tau := w.Limit.GCRA()
		l.windows = append(l.windows, window{t.Microseconds(), tau.Microseconds()})
	}
	l.origin = clock()
	return l, nil
}

// Allow implements ratelimit.Limiter.
func (l *Limiter) Allow(ctx context.Context, buckets []string, n int) (ratelimit.Result, error) {
	buckets, err := ratelimit.PrepareRequest(l.limits, buckets, n)
	if err != nil {
		return ratelimit.Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Result{}, err
	}
	N := int64(n)

	l.mu.Lock()
	defer l.mu.Unlock()
	// The clock is read under the lock, so decisions are made in the order
	// of their times (as Redis TIME inside the script does): a time read
	// before waiting for the lock could be older than a decision already
	// made, and the admission it reports would look earlier than it was.
	now := l.clock().Sub(l.origin).Microseconds()
	// The decision's time at the limiter's resolution (whole µs, as Redis
	// TIME): admissions reported at finer times than they were decided on
	// could appear up to 1 µs closer together than the windows allow.
	at := l.origin.Add(time.Duration(now) * time.Microsecond)

	// The same two passes as the Lua script: check every window of every
	// bucket, then charge all of them or none.
	var retry int64
	var buf [2 * ratelimit.MaxBuckets]int64 // every bucket's windows (at most two) without an allocation
	tats := buf[:0]
	for _, b := range buckets {
		for wi, w := range l.windows {
			tat := now // idle (no TAT, or one in the past): max(TAT, now)
			if stored, ok := l.tats[key{b, wi}]; ok {
				tat = max(stored, now)
			}
			tats = append(tats, tat)
			retry = max(retry, tat+(N-1)*w.interval-w.tolerance-now)
		}
	}
	allowed := retry == 0
	remaining, reset := int64(math.MaxInt64), int64(0)
	i := 0
	for _, b := range buckets {
		for wi, w := range l.windows {
			tat := tats[i]
			i++
			if allowed {
				tat += N * w.interval
				l.tats[key{b, wi}] = tat
			}
			r := (now + w.tolerance + w.interval - tat) / w.interval
			remaining = min(remaining, r)
			reset = max(reset, tat-now)
		}
	}
	l.calls = (l.calls + 1) % sweepEvery
	if l.calls == 0 {
		l.sweep(now)
	}
	return ratelimit.Result{
		Allowed:    allowed,
		Remaining:  int(max(remaining, 0)),
		RetryAfter: time.Duration(retry) * time.Microsecond,
		ResetAfter: time.Duration(reset) * time.Microsecond,
		At:         at,
	}, nil
}

// sweep drops windows that are idle again (the in-memory PEXPIRE). l.mu is held.
func (l *Limiter) sweep(now int64) {
	for k, tat := range l.tats {
		if tat <= now {
			delete(l.tats, k)
		}
	}
}

// size returns how many windows hold state.
func (l *Limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tats)
}
