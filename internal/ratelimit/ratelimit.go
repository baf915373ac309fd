package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Instantly's documented per-workspace limits, and the share of them the
// control plane takes by default (the rest is left to the agency's other tools
// and to transit jitter).
const (
	InstantlyPerSecond = 100
	InstantlyPerMinute = 6000
	DefaultHeadroom    = 0.8
)

// MaxBuckets bounds the buckets of one Allow call: the real use is two (a sub
// workspace and its admin), and the bound keeps one script call small.
const MaxBuckets = 16

// Sentinel errors; backends wrap them with %w. Every error from Allow means
// "not allowed".
var (
	// ErrUnavailable: the backend could not decide (unreachable, too slow,
	// malformed reply). Not allowed; retry later. The wrapped cause is for logs.
	ErrUnavailable = errors.New("ratelimit: limiter unavailable")
	// ErrTimeout: the backend did not answer within the per-call timeout. It
	// wraps ErrUnavailable.
	ErrTimeout = fmt.Errorf("%w: timed out", ErrUnavailable)
	// ErrInvalid: the request can never be allowed as asked (no buckets, n < 1,
	// n above a window's burst, ...). Retrying does not help.
	ErrInvalid = errors.New("ratelimit: invalid request")
)

// Limit is one window: at most Rate requests in any sliding window of Period
// (half-open, (t-Period, t]), of which at most Burst may go at once after
// idle. Burst 0 means 1. See the package doc for the trade-off.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// burst returns the effective burst.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return 1
	}
	return l.Burst
}

// Validate reports whether the limit can be enforced.
func (l Limit) Validate() error {
	switch {
	case l.Rate < 1:
		return fmt.Errorf("ratelimit: rate %d must be at least 1", l.Rate)
	case l.Period < time.Microsecond:
		return fmt.Errorf("ratelimit: period %v must be at least 1µs", l.Period)
	case l.Burst < 0 || l.Burst > l.Rate:
		return fmt.Errorf("ratelimit: burst %d must be between 1 and the rate %d (0 means 1)", l.Burst, l.Rate)
	}
	return nil
}

// GCRA returns the emission interval T and the tolerance τ, in whole
// microseconds (Redis TIME's resolution). T is rounded up: rounding down
// could fit Rate+1 requests in one Period.
func (l Limit) GCRA() (interval, tolerance time.Duration) {
	slots := int64(l.Rate - l.burst() + 1)
	us := l.Period.Microseconds()
	if l.Period%time.Microsecond != 0 {
		us++
	}
	t := (us + slots - 1) / slots
	return time.Duration(t) * time.Microsecond, time.Duration(int64(l.burst()-1)*t) * time.Microsecond
}

// Limits are the windows every bucket is held to.
type Limits struct {
	PerSecond Limit
	PerMinute Limit
}

// Window is one of Limits' windows with the short name that backends use in
// storage keys.
type Window struct {
	Name  string // "s" or "m"
	Limit Limit
}

// Windows lists the windows in a fixed order.
func (ls Limits) Windows() []Window {
	return []Window{{"s", ls.PerSecond}, {"m", ls.PerMinute}}
}

// Validate reports whether every window can be enforced.
func (ls Limits) Validate() error {
	for _, w := range ls.Windows() {
		if err := w.Limit.Validate(); err != nil {
			return fmt.Errorf("window %q: %w", w.Name, err)
		}
	}
	return nil
}

// MaxN is the most requests one Allow call can ever be granted: the smallest
// burst of any window.
func (ls Limits) MaxN() int {
	return min(ls.PerSecond.burst(), ls.PerMinute.burst())
}

// Sustained is the requests per second every window allows over time, the
// smallest of (Rate-Burst+1)/Period: what a busy bucket actually spends.
func (ls Limits) Sustained() float64 {
	rate := math.Inf(1)
	for _, w := range ls.Windows() {
		if w.Limit.Period > 0 {
			rate = min(rate, float64(w.Limit.Rate-w.Limit.burst()+1)/w.Limit.Period.Seconds())
		}
	}
	return rate
}

// InstantlyLimits returns Instantly's limits scaled by headroom, burst 1 in
// both windows (full sustained rate; see the package doc). headroom ≤ 0 or NaN
// means DefaultHeadroom (80/s and 4,800/min); above 1 means 1.
func InstantlyLimits(headroom float64) Limits {
	if !(headroom > 0) {
		headroom = DefaultHeadroom
	}
	return Scaled(InstantlyPerSecond, InstantlyPerMinute, min(headroom, 1))
}

// Scaled returns per-second and per-minute limits of perSecond and
// perMinute scaled by headroom (at least 1 each), burst 1 in both windows.
func Scaled(perSecond, perMinute int, headroom float64) Limits {
	scale := func(n int) int {
		// The epsilon keeps 0.29×100 at 29 rather than 28.999….
		return max(1, int(math.Floor(float64(n)*headroom+1e-9)))
	}
	return Limits{
		PerSecond: Limit{Rate: scale(perSecond), Period: time.Second, Burst: 1},
		PerMinute: Limit{Rate: scale(perMinute), Period: time.Minute, Burst: 1},
	}
}

// Result is one decision. Durations are as seen by the limiter's clock.
type Result struct {
	// Allowed: every window of every bucket had room, and all were charged.
	Allowed bool
	// Remaining is how many single requests every window of every bucket
	// would still admit right after this decision.
	Remaining int
	// RetryAfter is 0 when allowed; otherwise how long until the same request
	// would be allowed by every window, if nobody else spends meanwhile.
	RetryAfter time.Duration
	// ResetAfter is how long until every window is idle again (full burst).
	ResetAfter time.Duration
	// At is the limiter clock's time of the decision (Redis TIME for Redis).
	At time.Time
}

// Limiter decides requests against per-bucket budgets.
type Limiter interface {
	// Allow checks and, if every bucket allows n more requests, consumes them
	// in all buckets atomically. Any error means not allowed: ErrUnavailable
	// (retry later), ErrInvalid (never), or the context's error.
	Allow(ctx context.Context, buckets []string, n int) (Result, error)
}

// PrepareRequest validates an Allow call for backends and returns the buckets
// sorted and without duplicates (a bucket named twice is charged once).
func PrepareRequest(ls Limits, buckets []string, n int) ([]string, error) {
	switch {
	case len(buckets) == 0:
		return nil, fmt.Errorf("%w: no buckets", ErrInvalid)
	case len(buckets) > MaxBuckets:
		return nil, fmt.Errorf("%w: %d buckets, at most %d", ErrInvalid, len(buckets), MaxBuckets)
	case n < 1:
		return nil, fmt.Errorf("%w: n = %d, must be at least 1", ErrInvalid, n)
	case n > ls.MaxN():
		return nil, fmt.Errorf("%w: n = %d exceeds the burst %d, so it could never be allowed", ErrInvalid, n, ls.MaxN())
	}
	for _, b := range buckets {
		if b == "" {
			return nil, fmt.Errorf("%w: empty bucket name", ErrInvalid)
		}
	}
	if len(buckets) == 1 {
		return buckets, nil // already sorted; spares the hot path a copy
	}
	out := slices.Clone(buckets)
	slices.Sort(out)
	return slices.Compact(out), nil
}
