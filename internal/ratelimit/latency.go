package ratelimit

import (
	"math"
	"sync"
	"time"
)

// LatencyTracker keeps, per bucket, an exponentially weighted moving average
// of upstream latency (from sending a request, after the limiter admitted it,
// to its answer), and turns it into how many requests a workspace needs in
// flight to spend its whole budget. By Little's law a workspace answering in
// L at budget R has R·L requests upstream at once; the engine allows
// ceil(R·L·Slack)+1 (the slack absorbs latency spread and per-item work
// outside the request, the +1 keeps one request waiting at the limiter for
// the next slot). It is safe for concurrent use.
type LatencyTracker struct {
	opts LatencyOptions

	mu        sync.Mutex
	buckets   map[string]*latencyEntry
	lastSweep time.Time
}

// LatencyOptions tunes a LatencyTracker; zero values take the defaults.
type LatencyOptions struct {
	// Rate is the requests per second each bucket's budget allows
	// (Limits.Sustained). Default InstantlyLimits(DefaultHeadroom)'s.
	Rate float64
	// Slack multiplies the Little's-law estimate (default 1.5).
	Slack float64
	// Alpha is the weight of the newest sample in the average, in (0, 1]
	// (default 0.2: a step change is mostly absorbed after ~10 answers,
	// well under a second at Instantly's rates).
	Alpha float64
	// Start is the limit of a bucket without a sample yet (default 4):
	// modest, and the first answer replaces it.
	Start int
	// Max caps the limit (default 256).
	Max int
	// Idle is how long a bucket without samples is remembered (default
	// 10m), so memory follows the workspaces in use, not all ever seen.
	Idle time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

type latencyEntry struct {
	ewma float64 // seconds
	last time.Time
}

// NewLatencyTracker returns a LatencyTracker.
func NewLatencyTracker(opts LatencyOptions) *LatencyTracker {
	if !(opts.Rate > 0) {
		opts.Rate = InstantlyLimits(DefaultHeadroom).Sustained()
	}
	if !(opts.Slack > 0) {
		opts.Slack = 1.5
	}
	if !(opts.Alpha > 0 && opts.Alpha <= 1) {
		opts.Alpha = 0.2
	}
	if opts.Max <= 0 {
		opts.Max = 256
	}
	if opts.Start <= 0 {
		opts.Start = 4
	}
	opts.Start = min(opts.Start, opts.Max)
	if opts.Idle <= 0 {
		opts.Idle = 10 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &LatencyTracker{opts: opts, buckets: map[string]*latencyEntry{}, lastSweep: opts.Now()}
}

// Observe records one answer's latency for every bucket its request spent.
func (t *LatencyTracker) Observe(buckets []string, latency time.Duration) {
	if latency < 0 {
		return
	}
	now := t.opts.Now()
	sample := latency.Seconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, b := range buckets {
		e, ok := t.buckets[b]
		switch {
		case !ok:
			t.buckets[b] = &latencyEntry{ewma: sample, last: now}
			continue
		case now.Sub(e.last) > t.opts.Idle:
			e.ewma = sample // a forgotten average does not bias the new one
		default:
			e.ewma += t.opts.Alpha * (sample - e.ewma)
		}
		e.last = now
	}
	// One pass per Idle period keeps the cost amortized O(1) per sample.
	if now.Sub(t.lastSweep) >= t.opts.Idle {
		t.lastSweep = now
		for b, e := range t.buckets {
			if now.Sub(e.last) > t.opts.Idle {
				delete(t.buckets, b)
			}
		}
	}
}

// Latency returns bucket's average latency, and false when it has no
// sample within Idle.
func (t *LatencyTracker) Latency(bucket string) (time.Duration, bool) {
	now := t.opts.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.buckets[bucket]
	if !ok || now.Sub(e.last) > t.opts.Idle {
		return 0, false
	}
	return time.Duration(e.ewma * float64(time.Second)), true
}

// Limit is how many requests a workspace whose requests spend buckets should
// have in flight: ceil(Rate × latency × Slack) + 1 in [1, Max], the smallest
// over buckets (a sub workspace acting through its admin's key spends both
// budgets, and the tighter one paces it). A bucket without a sample counts
// as Start; no buckets at all is Start.
func (t *LatencyTracker) Limit(buckets []string) int {
	if len(buckets) == 0 {
		return t.opts.Start
	}
	limit := t.opts.Max
	for _, b := range buckets {
		l, ok := t.Latency(b)
		if !ok {
			limit = min(limit, t.opts.Start)
			continue
		}
		// The epsilon keeps an exact product (80 × 0.15 × 1.5 = 18) from
		// rounding up on float noise.
		n := math.Ceil(t.opts.Rate*l.Seconds()*t.opts.Slack-1e-9) + 1
		limit = min(limit, int(min(max(n, 1), float64(t.opts.Max))))
	}
	return max(limit, 1)
}

// Len is how many buckets are remembered.
func (t *LatencyTracker) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.buckets)
}
