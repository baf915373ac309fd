package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// Backoff bounds for retrying an unavailable backend from Wait.
const (
	unavailableBackoffMin = 20 * time.Millisecond
	unavailableBackoffMax = 200 * time.Millisecond
	// maxJitter caps the jitter added to RetryAfter. Any lateness is lost
	// throughput at burst 1 (12.5 ms slots at the default limits), so it stays
	// small; it only has to keep replicas from retrying in lockstep.
	maxJitter = time.Millisecond
	// minSleep keeps a pathological tiny RetryAfter from spinning.
	minSleep = 50 * time.Microsecond
)

// MaxUnavailableWait is how long the backend may answer nobody (every try
// fails with ErrUnavailable) before Wait fails closed. Together with the
// backends' per-call timeout (redislimit: 100 ms) it bounds how long a
// request waits on a dead Redis (README: "Redis down").
const MaxUnavailableWait = 500 * time.Millisecond

// health is what waiters know about the backend together: since when every
// try has failed with ErrUnavailable (zero while it answers). A Gate shares
// one among all its waiters: a try that times out because the CPU is
// saturated, while other waiters still get answers, is a reason to try
// again, never to give up (overload degrades into waiting); and once the
// backend has answered nobody for MaxUnavailableWait, every waiter fails
// closed at its next failed try instead of waiting out its own window.
type health struct {
	mu           sync.Mutex
	failingSince time.Time
	answeredAt   time.Time
}

// answered records an answer (allowed or denied) from the backend.
func (h *health) answered() {
	h.mu.Lock()
	h.failingSince, h.answeredAt = time.Time{}, time.Now()
	h.mu.Unlock()
}

// failed records a try sent at sent that failed, and returns for how long
// the backend has answered nobody: since the first unanswered try was sent
// (after the last answer).
func (h *health) failed(sent time.Time) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failingSince.IsZero() {
		h.failingSince = sent
		if h.answeredAt.After(sent) {
			h.failingSince = h.answeredAt
		}
	}
	return time.Since(h.failingSince)
}

// Wait blocks until one request on buckets is allowed (and charged) or ctx
// ends, sleeping RetryAfter plus a small jitter between tries, and returns the
// time it waited.
//
// While the limiter is unavailable Wait keeps failing closed: it retries with
// jittered exponential backoff (20 ms up to 200 ms) so a Redis blip is
// absorbed without a herd of replicas hammering it, and returns the
// ErrUnavailable once the backend has answered nothing for
// MaxUnavailableWait (counted across a Gate's waiters; for Wait alone,
// across its own tries). It returns early, with an error wrapping
// context.DeadlineExceeded (and the last ErrUnavailable, if that was the
// reason), when the next try would land after ctx's deadline. ErrInvalid
// and the context's errors are returned at once.
//
// Denied waiters reserve nothing, so many waiters on one bucket all retry at
// the next slot and one wins; keep per-workspace concurrency small.
func Wait(ctx context.Context, l Limiter, buckets []string) (time.Duration, error) {
	return waitWith(ctx, l, buckets, &health{})
}

func waitWith(ctx context.Context, l Limiter, buckets []string, h *health) (time.Duration, error) {
	start := time.Now()
	err := wait(ctx, l, buckets, h)
	waited := time.Since(start)
	if il, ok := l.(*instrumented); ok {
		il.m.observeWait(waited, err)
	}
	return waited, err
}

func wait(ctx context.Context, l Limiter, buckets []string, h *health) error {
	var unavailable error // the last ErrUnavailable, to explain giving up
	giveUp := func(err error) error {
		if unavailable != nil {
			return fmt.Errorf("%w (last try: %w)", err, unavailable)
		}
		return err
	}
	backoff := time.Duration(0)
	for {
		sent := time.Now()
		res, err := l.Allow(ctx, buckets, 1)
		var delay time.Duration
		switch {
		case err == nil && res.Allowed:
			h.answered()
			return nil
		case err == nil:
			h.answered()
			unavailable, backoff = nil, 0
			delay = retryDelay(res.RetryAfter, rand.N[time.Duration])
		case errors.Is(err, ErrUnavailable) && ctx.Err() == nil:
			// Fail closed, but not forever: a caller without a deadline
			// gets the error once nobody has been answered for
			// MaxUnavailableWait, instead of hanging.
			if h.failed(sent) >= MaxUnavailableWait {
				return err
			}
			unavailable = err
			backoff = min(max(2*backoff, unavailableBackoffMin), unavailableBackoffMax)
			delay = backoffDelay(backoff, rand.N[time.Duration])
		case ctx.Err() != nil:
			return giveUp(err)
		default:
			return err
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < delay {
			return giveUp(fmt.Errorf("ratelimit: next try in %v is past the deadline: %w", delay.Round(time.Microsecond), context.DeadlineExceeded))
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return giveUp(ctx.Err())
		case <-t.C:
		}
	}
}

// retryDelay is the sleep after a denial: RetryAfter (at least minSleep) plus
// a jitter of up to 1/16 of it, capped at maxJitter. randN(n) is uniform in
// [0, n) (rand.N).
func retryDelay(retryAfter time.Duration, randN func(time.Duration) time.Duration) time.Duration {
	d := max(retryAfter, minSleep)
	return d + randN(min(d/16, maxJitter)+1)
}

// backoffDelay is the sleep before retrying an unavailable backend: uniform
// in [backoff/2, backoff]. randN is as for retryDelay.
func backoffDelay(backoff time.Duration, randN func(time.Duration) time.Duration) time.Duration {
	return backoff/2 + randN(backoff/2+1)
}
