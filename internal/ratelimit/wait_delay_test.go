package ratelimit

import (
	"testing"
	"time"
)

// lowest and highest stand in for rand.N: the ends of [0, n).
func lowest(time.Duration) time.Duration    { return 0 }
func highest(n time.Duration) time.Duration { return n - 1 }

// TestRetryDelay: after a denial Wait sleeps RetryAfter (at least minSleep)
// plus a jitter of up to RetryAfter/16, never more than maxJitter (1ms).
func TestRetryDelay(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		retryAfter, min, max time.Duration
	}{
		{30 * time.Millisecond, 30 * time.Millisecond, 31 * time.Millisecond}, // jitter capped at 1ms
		{16 * time.Millisecond, 16 * time.Millisecond, 17 * time.Millisecond}, // 1/16 is exactly the cap
		{8 * time.Millisecond, 8 * time.Millisecond, 8500 * us},               // 1/16
		{0, 50 * us, 50*us + 3125*time.Nanosecond},                            // minSleep, plus 1/16 of it
		{-time.Second, 50 * us, 50*us + 3125*time.Nanosecond},
	} {
		if got := retryDelay(tc.retryAfter, lowest); got != tc.min {
			t.Errorf("retryDelay(%v) without jitter = %v, want %v", tc.retryAfter, got, tc.min)
		}
		if got := retryDelay(tc.retryAfter, highest); got != tc.max {
			t.Errorf("retryDelay(%v) with the most jitter = %v, want %v", tc.retryAfter, got, tc.max)
		}
	}
}

// TestBackoffDelay: a retry of an unavailable backend sleeps a random time
// in [backoff/2, backoff].
func TestBackoffDelay(t *testing.T) {
	for _, b := range []time.Duration{unavailableBackoffMin, 40 * time.Millisecond, unavailableBackoffMax} {
		if lo, hi := backoffDelay(b, lowest), backoffDelay(b, highest); lo != b/2 || hi != b {
			t.Errorf("backoff %v sleeps in [%v, %v], want [%v, %v]", b, lo, hi, b/2, b)
		}
	}
}
