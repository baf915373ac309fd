// Package redislimit is the rate limiter replicas share through Redis.
//
// Every decision is one Lua script (gcra.lua) that reads Redis TIME, checks
// every window of every bucket named, and charges all or none, so replicas
// need no clock agreement and no locks. Each bucket is one string key
// holding its windows' TATs (per second, then per minute, µs since the
// epoch, joined by ':'), expiring when every window is idle again:
//
//	<prefix>rl:{<bucket>}   "<TAT per second>:<TAT per minute>"
//
// One key per bucket, not per window: each command a script runs costs
// about as much as all of its arithmetic, and this is the hot path (an
// admitted call costs about 1.5 raw GETs; see BenchmarkAllow).
//
// agencyd builds only *redis.Client (one server, or a Sentinel deployment's
// primary), never a Cluster or Ring client: a multi-bucket call (a sub
// workspace acting through its admin) names several keys in one script,
// which Redis Cluster would refuse across hash slots.
//
// # Failure policy
//
// Each call is bounded by Options.Timeout (default 100 ms) whatever the
// client's own timeouts, and any failure returns an error wrapping
// ratelimit.ErrUnavailable (ratelimit.ErrTimeout when slow): fail closed.
//
// Configure a *redis.Client with ContextTimeoutEnabled: go-redis then honours
// the deadline itself and the call runs inline. Otherwise the call runs on a
// helper goroutine that Allow stops waiting for at the timeout; that
// costs a goroutine handoff (~60 µs on a loaded 2-core host), and an abandoned
// call holds a pooled connection until the client's ReadTimeout. Either way, a
// call abandoned at the timeout may still reach Redis and spend budget, which
// errs on the safe side.
//
// Scripts run with Script.Run (EVALSHA, then EVAL on NOSCRIPT, as after a
// failover or SCRIPT FLUSH) and never in a pipeline, where go-redis cannot
// fall back. An error that merely contains NOSCRIPT (some managed Redis
// prefix it) also falls back. Replies are checked, never blindly asserted.
//
// # Denial cache
//
// A denial also tells us the bucket set stays denied for RetryAfter, because
// TATs only grow. Each Limiter remembers that locally, measured from when it
// sent the call (before Redis' clock read it, so the entry never outlives the
// real denial), and answers repeats without a round trip. This protects a hot
// workspace's keys from callers that spin on Allow.
package redislimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
)

// DefaultTimeout bounds one Allow call: a few Redis round trips, far below any
// caller's patience, and short enough that a stalled Redis cannot pile up
// goroutines.
const DefaultTimeout = 100 * time.Millisecond

// ttlSlack is added to every key's TTL. Redis expires keys on a ms clock
// read at the script's start, which can trail the TIME the script reads by up
// to a millisecond; an early expiry would forget a TAT and admit early.
const ttlSlack = 2 * time.Millisecond

// fakeClockTTLSlack replaces ttlSlack under an injected clock (tests), where
// real time, which expires keys, can outrun the fake one.
const fakeClockTTLSlack = time.Minute

//go:embed gcra.lua
var gcraSource string

// gcra is immutable: a Script only holds the source and its SHA1.
var gcra = redis.NewScript(gcraSource)

// Options configure a Limiter.
type Options struct {
	// Prefix is prepended to every key, e.g. "agencyplane:". Deployments sharing
	// one Redis need distinct prefixes, and every limiter on one prefix must
	// use the same Limits (a TAT means nothing under another interval).
	Prefix string
	// Timeout bounds each Allow call; 0 means DefaultTimeout.
	Timeout time.Duration
	// DisableDenyCache turns off the local denial cache.
	DisableDenyCache bool

	// clock replaces Redis TIME; only this package's tests set it, to run the
	// conformance suite on real Redis with a fake clock.
	clock func() time.Time
}

// Limiter is a ratelimit.Limiter backed by Redis. It is safe for concurrent
// use; create one per process (or several: they share state through Redis).
type Limiter struct {
	client  redis.UniversalClient
	limits  ratelimit.Limits
	params  []any // per window: interval, tolerance (µs), formatted once
	prefix  string
	timeout time.Duration
	clock   func() time.Time // nil: Redis TIME
	cache   *denyCache       // nil when disabled
	inline  bool             // the client enforces context deadlines itself
}

var _ ratelimit.Limiter = (*Limiter)(nil)

// New returns a limiter enforcing limits through client.
func New(client redis.UniversalClient, limits ratelimit.Limits, opts Options) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: nil client")
	}
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("redislimit: negative timeout %v", opts.Timeout)
	}
	l := &Limiter{
		client:  client,
		limits:  limits,
		prefix:  opts.Prefix,
		timeout: opts.Timeout,
		clock:   opts.clock,
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if c, ok := client.(*redis.Client); ok && c.Options().ContextTimeoutEnabled {
		l.inline = true
	}
	for _, w := range limits.Windows() {
		t, tau := w.Limit.GCRA()
		// Strings, so each call passes them without boxing anew.
		l.params = append(l.params, strconv.FormatInt(t.Microseconds(), 10), strconv.FormatInt(tau.Microseconds(), 10))
	}
	if !opts.DisableDenyCache {
		l.cache = &denyCache{entries: make(map[string]denial)}
	}
	return l, nil
}

// Key returns the Redis key of bucket.
func Key(prefix, bucket string) string {
	return prefix + "rl:{" + bucket + "}"
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
	sent := l.localNow()
	cacheKey := strings.Join(buckets, "\x00")
	if res, ok := l.cache.lookup(cacheKey, n, sent); ok {
		return res, nil
	}

	keys := make([]string, len(buckets))
	for i, b := range buckets {
		keys[i] = Key(l.prefix, b)
	}
	args := make([]any, 0, 3+len(l.params))
	var nowArg int64 // 0: the script reads Redis TIME
	slack := ttlSlack
	if l.clock != nil {
		nowArg = sent.UnixMicro()
		slack = fakeClockTTLSlack
	}
	args = append(args, n, nowArg, slack.Milliseconds())
	args = append(args, l.params...)
	reply, err := l.eval(ctx, keys, args)
	if err != nil {
		return ratelimit.Result{}, err
	}
	res, err := parseReply(reply)
	if err != nil {
		return ratelimit.Result{}, err
	}
	if !res.Allowed {
		l.cache.store(cacheKey, n, sent, res)
	}
	return res, nil
}

func (l *Limiter) localNow() time.Time {
	if l.clock != nil {
		return l.clock()
	}
	return time.Now()
}

// eval runs the script, returning when it answers or the timeout passes,
// whichever is first, even if the client ignores context deadlines.
func (l *Limiter) eval(ctx context.Context, keys []string, args []any) (any, error) {
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	type answer struct {
		v   any
		err error
	}
	run := func() answer {
		v, err := gcra.Run(cctx, l.client, keys, args...).Result()
		if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
			// Run falls back only when the message starts with NOSCRIPT.
			v, err = gcra.Eval(cctx, l.client, keys, args...).Result()
		}
		return answer{v, err}
	}
	var a answer
	if l.inline {
		a = run()
	} else {
		ch := make(chan answer, 1) // buffered: an abandoned call must not block
		go func() { ch <- run() }()
		select {
		case a = <-ch:
		case <-cctx.Done():
			a.err = cctx.Err()
		}
	}
	switch {
	case a.err == nil:
		return a.v, nil
	case ctx.Err() != nil:
		// The caller gave up; report its reason, not an outage.
		return nil, ctx.Err()
	case cctx.Err() != nil:
		return nil, fmt.Errorf("%w after %v", ratelimit.ErrTimeout, l.timeout)
	}
	return nil, fmt.Errorf("%w: %w", ratelimit.ErrUnavailable, a.err)
}

// parseReply checks the script's reply shape instead of trusting it.
func parseReply(v any) (ratelimit.Result, error) {
	vals, ok := v.([]any)
	if !ok || len(vals) != 5 {
		return ratelimit.Result{}, fmt.Errorf("%w: unexpected script reply %T %v", ratelimit.ErrUnavailable, v, v)
	}
	var ints [5]int64
	for i, x := range vals {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return ratelimit.Result{}, fmt.Errorf("%w: unexpected script reply element %d: %T %v", ratelimit.ErrUnavailable, i, x, x)
		}
		ints[i] = n
	}
	if ints[0] > 1 {
		return ratelimit.Result{}, fmt.Errorf("%w: unexpected allowed flag %d", ratelimit.ErrUnavailable, ints[0])
	}
	return ratelimit.Result{
		Allowed:    ints[0] == 1,
		Remaining:  int(ints[1]),
		RetryAfter: time.Duration(ints[2]) * time.Microsecond,
		ResetAfter: time.Duration(ints[3]) * time.Microsecond,
		At:         time.UnixMicro(ints[4]),
	}, nil
}

// maxDenials bounds the denial cache; past it, new denials are not cached.
const maxDenials = 4096

// denyCache remembers "denied until" per bucket set. Entries are conservative:
// measured from before Redis read its clock, so they end no later than the
// denial does.
type denyCache struct {
	mu      sync.Mutex
	entries map[string]denial
}

type denial struct {
	n            int
	until, reset time.Time
}

func (c *denyCache) lookup(key string, n int, now time.Time) (ratelimit.Result, bool) {
	if c == nil {
		return ratelimit.Result{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.entries[key]
	if !ok {
		return ratelimit.Result{}, false
	}
	if !now.Before(d.until) {
		delete(c.entries, key)
		return ratelimit.Result{}, false
	}
	if n < d.n {
		return ratelimit.Result{}, false // a smaller request may fit
	}
	// For n above the cached one the true wait is longer: RetryAfter is a
	// lower bound there, and exact for the same n.
	return ratelimit.Result{
		RetryAfter: d.until.Sub(now),
		ResetAfter: max(d.reset.Sub(now), 0),
		At:         now,
	}, true
}

func (c *denyCache) store(key string, n int, sent time.Time, res ratelimit.Result) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxDenials {
		for k, d := range c.entries {
			if !sent.Before(d.until) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxDenials {
			return
		}
	}
	c.entries[key] = denial{n: n, until: sent.Add(res.RetryAfter), reset: sent.Add(res.ResetAfter)}
}
