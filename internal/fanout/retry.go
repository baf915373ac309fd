package fanout

import (
	"context"
	"math/rand/v2"
	"time"
)

// RetryAttempts bounds how often Retry tries one item.
const RetryAttempts = 5

// Retry runs one item until it succeeds, fails for good (retryable reports
// false), ctx ends, or it has been tried RetryAttempts times, backing off
// between tries (200 ms doubling to 5 s, jittered). For durable
// operations, which have time: a transient fault (an upstream 5xx after
// the client's own retries, throttling, a store blip) must not become a
// failed item. Each try must read before it writes.
func Retry[T any](ctx context.Context, retryable func(error) bool, run func() Result[T]) Result[T] {
	return retry(ctx, standardBackoff(), retryable, run)
}

// standardBackoff is Retry's pacing.
func standardBackoff() backoff {
	return backoff{attempts: RetryAttempts, base: 200 * time.Millisecond, max: 5 * time.Second, jitter: rand.N[time.Duration]}
}

// backoff paces retry: attempts tries in all; the pause after try n is
// d + jitter(d), d = base doubled per earlier try and capped at max.
type backoff struct {
	attempts  int
	base, max time.Duration
	jitter    func(time.Duration) time.Duration // uniform in [0, d)
}

func (b backoff) pause(try int) time.Duration {
	d := b.base
	for range try - 1 {
		d = min(d*2, b.max)
	}
	return d + b.jitter(d)
}

func retry[T any](ctx context.Context, b backoff, retryable func(error) bool, run func() Result[T]) Result[T] {
	for try := 1; ; try++ {
		res := run()
		if res.Err == nil || try >= b.attempts || ctx.Err() != nil || !retryable(res.Err) {
			return res
		}
		t := time.NewTimer(b.pause(try))
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
	}
}
