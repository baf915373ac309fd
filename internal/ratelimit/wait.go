package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Backoff bounds for retrying an unavailable backend from Wait.
const (
	unavailableBackoffMin = 20 * time.Millisecond
	unavailableBackoffMax = time.Second
	// maxJitter caps the jitter added to RetryAfter. Any lateness is lost
	// throughput at burst 1 (12.5 ms slots at the default limits), so it stays
	// small; it only has to keep replicas from retrying in lockstep.
	maxJitter = time.Millisecond
	// minSleep keeps a pathological tiny RetryAfter from spinning.
	minSleep = 50 * time.Microsecond
)

// Wait blocks until one request on buckets is allowed (and charged) or ctx
// ends, sleeping RetryAfter plus a small jitter between tries, and returns the
// time it waited.
//
// While the limiter is unavailable Wait keeps failing closed: it retries with
// jittered exponential backoff (20 ms up to 1 s) so a Redis blip is absorbed
// without a herd of replicas hammering it. It returns early, with an error
// wrapping context.DeadlineExceeded (and the last ErrUnavailable, if that was
// the reason), when the next try would land after ctx's deadline. ErrInvalid
// and the context's errors are returned at once.
//
// Denied waiters reserve nothing, so many waiters on one bucket all retry at
// the next slot and one wins; keep per-workspace concurrency small.
// MaxUnavailableWait bounds how long Wait keeps retrying a backend that
// answers ErrUnavailable before returning that error.
const MaxUnavailableWait = 3 * time.Second

func Wait(ctx context.Context, l Limiter, buckets []string) (time.Duration, error) {
	start := time.Now()
	err := wait(ctx, l, buckets)
	waited := time.Since(start)
	if il, ok := l.(*instrumented); ok {
		il.m.observeWait(waited, err)
	}
	return waited, err
}

func wait(ctx context.Context, l Limiter, buckets []string) error {
	var unavailable error // the last ErrUnavailable, to explain giving up
	giveUp := func(err error) error {
		if unavailable != nil {
			return fmt.Errorf("%w (last try: %w)", err, unavailable)
		}
		return err
	}
	backoff := time.Duration(0)
	var downSince time.Time
	for {
		res, err := l.Allow(ctx, buckets, 1)
		var delay time.Duration
		switch {
		case err == nil && res.Allowed:
			return nil
		case err == nil:
			unavailable, backoff = nil, 0
			delay = max(res.RetryAfter, minSleep)
			delay += rand.N(min(delay/16, maxJitter) + 1)
		case errors.Is(err, ErrUnavailable) && ctx.Err() == nil:
			// Fail closed, but not forever: a caller without a deadline
			// gets the error after MaxUnavailableWait instead of hanging.
			if downSince.IsZero() {
				downSince = time.Now()
			} else if time.Since(downSince) >= MaxUnavailableWait {
				return err
			}
			unavailable = err
			backoff = min(max(2*backoff, unavailableBackoffMin), unavailableBackoffMax)
			delay = backoff/2 + rand.N(backoff/2+1)
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
