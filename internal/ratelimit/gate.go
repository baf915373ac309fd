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
//     the budget), that bucket set pauses for the Retry-After, or for a
//     doubling backoff, before asking the limiter again; successes decay it.
type Gate struct {
	limiter Limiter
	opts    GateOptions

	mu      sync.Mutex
	entries map[string]*gateEntry
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
}

type gateEntry struct {
	turn    chan struct{} // capacity 1: the bucket set's local queue
	mu      sync.Mutex
	until   time.Time // paused until, after an upstream 429
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
	return &Gate{limiter: l, opts: opts, entries: map[string]*gateEntry{}}
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
// ctx ends, or the limiter fails (fail closed: the error is returned).
func (g *Gate) Acquire(ctx context.Context, buckets []string) error {
	e := g.entry(buckets)
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-e.turn }()
	e.mu.Lock()
	pause := e.until.Sub(g.opts.Now())
	e.mu.Unlock()
	if pause > 0 {
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		}
	}
	_, err := Wait(ctx, g.limiter, buckets)
	return err
}

// Throttled records an upstream 429 for buckets.
func (g *Gate) Throttled(buckets []string, retryAfter time.Duration) {
	e := g.entry(buckets)
	e.mu.Lock()
	defer e.mu.Unlock()
	pause := retryAfter
	if pause <= 0 {
		pause = min(g.opts.BasePenalty<<min(e.strikes, 16), g.opts.MaxPenalty)
	}
	e.strikes++
	if until := g.opts.Now().Add(pause); until.After(e.until) {
		e.until = until
	}
}

// Succeeded records an upstream answer that was not a 429.
func (g *Gate) Succeeded(buckets []string) {
	e := g.entry(buckets)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.strikes > 0 {
		e.strikes--
	}
}
