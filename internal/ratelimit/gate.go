package ratelimit

import (
	"context"
	"strings"
	"sync"
	"time"
)

// Gate is what the Instantly client calls around every upstream request. It
// adds two things to a Limiter:
//
//   - one local waiter per bucket set: requests of one replica for the same
//     workspace queue in-process, so only one of them polls the shared
//     limiter at a time (no herd of Redis round trips per workspace);
//   - adaptive slowdown: when upstream answers 429 anyway (another tool spent
//     the budget), each bucket of the set pauses for the Retry-After, or for
//     a doubling backoff, before asking the limiter again; successes decay
//     it, and a request waits out the longest pause among its buckets.
//
// With GateOptions.Latency it also records each answer's upstream latency
// per bucket, which sizes the fan-out engine's per-workspace concurrency.
type Gate struct {
	limiter Limiter
	opts    GateOptions

	// health is shared by every waiter of the gate (see MaxUnavailableWait).
	health health

	mu        sync.Mutex
	entries   map[string]*gateEntry
	penalties map[string]*penalty
}

// GateOptions tunes a Gate; zero values take the defaults.
type GateOptions struct {
	// BasePenalty is the first pause after an upstream 429 without
	// Retry-After (default 250ms); it doubles per consecutive 429 up to
	// MaxPenalty (default 10s).
	BasePenalty time.Duration
	MaxPenalty  time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Latency, when set, receives the latency of every answer reported to
	// Succeeded.
	Latency *LatencyTracker
}

type gateEntry struct {
	turn chan struct{} // capacity 1: the bucket set's local queue
}

// penalty is one bucket's adaptive slowdown after upstream 429s. It is kept
// per bucket, not per set, so a 429 caused by an admin workspace's budget
// also slows direct calls on that admin workspace.
type penalty struct {
	until   time.Time
	strikes int
}

// NewGate wraps l.
func NewGate(l Limiter, opts GateOptions) *Gate {
	if opts.BasePenalty <= 0 {
		opts.BasePenalty = 250 * time.Millisecond
	}
	if opts.MaxPenalty <= 0 {
		opts.MaxPenalty = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Gate{limiter: l, opts: opts, entries: map[string]*gateEntry{}, penalties: map[string]*penalty{}}
}

func (g *Gate) entry(buckets []string) *gateEntry {
	key := strings.Join(buckets, "\x00")
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.entries[key]
	if !ok {
		e = &gateEntry{turn: make(chan struct{}, 1)}
		g.entries[key] = e
	}
	return e
}

// Acquire blocks until every bucket admits one request (consuming it), or
// ctx ends, or the limiter fails (fail closed: the error is returned once
// the backend has answered none of the gate's waiters for
// MaxUnavailableWait).
func (g *Gate) Acquire(ctx context.Context, buckets []string) error {
	e := g.entry(buckets)
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-e.turn }()
	if pause := g.pause(buckets); pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
	_, err := waitWith(ctx, g.limiter, buckets, &g.health)
	return err
}

// pause is how long the most penalized bucket of the set still waits.
func (g *Gate) pause(buckets []string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.opts.Now()
	var longest time.Duration
	for _, b := range buckets {
		if p, ok := g.penalties[b]; ok {
			longest = max(longest, p.until.Sub(now))
		}
	}
	return longest
}

// Throttled records an upstream 429 for buckets.
func (g *Gate) Throttled(buckets []string, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range buckets {
		p, ok := g.penalties[b]
		if !ok {
			p = &penalty{}
			g.penalties[b] = p
		}
		d := retryAfter
		if d <= 0 {
			d = min(g.opts.BasePenalty<<min(p.strikes, 16), g.opts.MaxPenalty)
		}
		p.strikes++
		if until := g.opts.Now().Add(d); until.After(p.until) {
			p.until = until
		}
	}
}

// Succeeded records an upstream answer that was not a 429, latency after
// the request was sent (the limiter's wait excluded); a penalty that has
// fully decayed is forgotten. 429s are not latency samples: a refusal at
// Instantly's edge says nothing about how long admitted requests take.
func (g *Gate) Succeeded(buckets []string, latency time.Duration) {
	if g.opts.Latency != nil {
		g.opts.Latency.Observe(buckets, latency)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range buckets {
		if p, ok := g.penalties[b]; ok {
			if p.strikes > 0 {
				p.strikes--
			}
			if p.strikes == 0 && !p.until.After(g.opts.Now()) {
				delete(g.penalties, b)
			}
		}
	}
}
