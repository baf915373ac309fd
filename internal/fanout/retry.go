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
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		res := run()
		if res.Err == nil || attempt == RetryAttempts || ctx.Err() != nil || !retryable(res.Err) {
			return res
		}
		t := time.NewTimer(backoff + rand.N(backoff))
		select {
		case <-ctx.Done():
			t.Stop()
			return res
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
