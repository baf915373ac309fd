package instantly

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestRetryDecision(t *testing.T) {
	c, err := New(Options{BaseBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxAttempts: 6, MaxRetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	get := request{method: http.MethodGet}
	mint := request{method: http.MethodPost, atMostOnce: true}
	unreachable := func(notSent, final bool) error {
		return &transportError{err: fmt.Errorf("%w: x", ErrUnreachable), notSent: notSent, final: final}
	}
	cases := []struct {
		name  string
		req   request
		err   error
		retry bool
	}{
		{"429", get, &Error{StatusCode: 429}, true},
		{"429 at most once", mint, &Error{StatusCode: 429}, true},
		{"503", get, &Error{StatusCode: 503}, true},
		{"504", get, &Error{StatusCode: 504}, true},
		{"503 at most once", mint, &Error{StatusCode: 503}, false},
		{"501", get, &Error{StatusCode: 501}, false},
		{"400", get, &Error{StatusCode: 400}, false},
		{"401", get, &Error{StatusCode: 401}, false},
		{"402", get, &Error{StatusCode: 402}, false},
		{"403", get, &Error{StatusCode: 403}, false},
		{"404", get, &Error{StatusCode: 404}, false},
		{"409", get, &Error{StatusCode: 409}, false},
		{"timeout", get, unreachable(false, false), true},
		{"timeout at most once", mint, unreachable(false, false), false},
		{"refused at most once", mint, unreachable(true, false), true},
		{"undecodable 2xx", get, unreachable(false, true), false},
		{"other", get, errors.New("context canceled"), false},
		{"Retry-After too long", get, &Error{StatusCode: 429, RetryAfter: 3 * time.Second}, false},
	}
	for _, tc := range cases {
		if _, got := c.retryDecision(tc.req, tc.err, 1, false); got != tc.retry {
			t.Errorf("%s: retry = %v", tc.name, got)
		}
	}
	if _, retry := c.retryDecision(get, &Error{StatusCode: 503}, 6, false); retry {
		t.Error("retried past MaxAttempts")
	}
	if wait, _ := c.retryDecision(get, &Error{StatusCode: 429, RetryAfter: 1500 * time.Millisecond}, 1, false); wait != 1500*time.Millisecond {
		t.Errorf("Retry-After wait = %v; it is honoured beyond MaxBackoff", wait)
	}
	// Full jitter: uniform in [0, min(MaxBackoff, Base·2^(attempt-1))].
	for attempt, ceiling := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 4: 50 * time.Millisecond, 5: 50 * time.Millisecond} {
		var maxSeen time.Duration
		for range 2000 {
			wait, _ := c.retryDecision(get, &Error{StatusCode: 503}, attempt, false)
			if wait < 0 || wait > ceiling {
				t.Fatalf("attempt %d: wait %v outside [0, %v]", attempt, wait, ceiling)
			}
			maxSeen = max(maxSeen, wait)
		}
		if maxSeen < ceiling*8/10 {
			t.Errorf("attempt %d: waits never near the ceiling %v (max %v): not full jitter", attempt, ceiling, maxSeen)
		}
	}
}

// TestThrottledRetriesLastWhileTheDeadlineAllows: a 429 keeps being retried
// past MaxAttempts under a deadline (the budget frees up with time), a 5xx
// does not.
func TestThrottledRetriesLastWhileTheDeadlineAllows(t *testing.T) {
	c, err := New(Options{BaseURL: "http://127.0.0.1:1", MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	get := request{method: "GET", path: "/x"}
	if _, retry := c.retryDecision(get, &Error{StatusCode: 429}, 10, true); !retry {
		t.Fatal("429 under a deadline not retried past MaxAttempts")
	}
	if _, retry := c.retryDecision(get, &Error{StatusCode: 429}, 10, false); retry {
		t.Fatal("429 without a deadline retried past MaxAttempts")
	}
	if _, retry := c.retryDecision(get, &Error{StatusCode: 503}, 10, true); retry {
		t.Fatal("503 retried past MaxAttempts")
	}
	if _, retry := c.retryDecision(get, &Error{StatusCode: 429}, maxThrottledAttempts, true); retry {
		t.Fatal("429 retried forever")
	}
}

// TestRetryAfterBounds: a Retry-After of exactly MaxRetryAfter is still sat
// out; an answer without one waits the jittered backoff, not zero.
func TestRetryAfterBounds(t *testing.T) {
	c, err := New(Options{BaseBackoff: time.Hour, MaxBackoff: time.Hour, MaxRetryAfter: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	get := request{method: http.MethodGet}
	if wait, retry := c.retryDecision(get, &Error{StatusCode: 429, RetryAfter: 2 * time.Second}, 1, false); !retry || wait != 2*time.Second {
		t.Fatalf("Retry-After = MaxRetryAfter: wait %v, retry %v", wait, retry)
	}
	// Uniform over [0, 1h]: zero has a chance of 1 in 3.6e12.
	if wait, retry := c.retryDecision(get, &Error{StatusCode: 503}, 1, false); !retry || wait == 0 {
		t.Fatalf("no Retry-After: wait %v, retry %v; want a backoff", wait, retry)
	}
}

// TestJitterReachesTheCeiling: full jitter draws from [0, ceiling], both
// ends included (a 1 ns ceiling gives 0 and 1 ns).
func TestJitterReachesTheCeiling(t *testing.T) {
	c, err := New(Options{BaseBackoff: time.Nanosecond, MaxBackoff: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Duration]bool{}
	for range 200 {
		wait, _ := c.retryDecision(request{method: http.MethodGet}, &Error{StatusCode: 503}, 1, false)
		seen[wait] = true
	}
	if len(seen) != 2 || !seen[0] || !seen[time.Nanosecond] {
		t.Fatalf("waits %v, want 0 and 1ns", seen)
	}
}
