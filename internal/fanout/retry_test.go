package fanout

import (
	"context"
	"errors"
	"testing"
	"time"
)

var errTransient, errFinal = errors.New("transient"), errors.New("final")

func isTransient(err error) bool { return errors.Is(err, errTransient) }

// TestRetry: a transient failure is tried again, a final one is not, and
// an ended context stops the tries.
func TestRetry(t *testing.T) {
	n := 0
	res := Retry(context.Background(), isTransient, func() Result[int] {
		n++
		if n == 1 {
			return Result[int]{Outcome: Failed, Err: errTransient}
		}
		return Result[int]{Outcome: Created, Value: 7}
	})
	if n != 2 || res.Err != nil || res.Value != 7 {
		t.Fatalf("transient: %d tries, %+v; want 2 tries and the value", n, res)
	}
	n = 0
	res = Retry(context.Background(), isTransient, func() Result[int] {
		n++
		return Result[int]{Outcome: Failed, Err: errFinal}
	})
	if n != 1 || !errors.Is(res.Err, errFinal) {
		t.Fatalf("final: %d tries, %+v; want 1", n, res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	res = Retry(ctx, isTransient, func() Result[int] {
		n++
		cancel()
		return Result[int]{Outcome: Failed, Err: errTransient}
	})
	if n != 1 || !errors.Is(res.Err, errTransient) {
		t.Fatalf("cancelled: %d tries, %+v; want 1", n, res)
	}
}

// TestRetryAttempts: an item that keeps failing transiently is tried
// exactly attempts times and ends with its last failure.
func TestRetryAttempts(t *testing.T) {
	b := backoff{attempts: 3, base: time.Microsecond, max: time.Microsecond, jitter: func(time.Duration) time.Duration { return 0 }}
	n := 0
	res := retry(context.Background(), b, isTransient, func() Result[int] {
		n++
		if n > 10 { // a runaway loop ends here, and fails the count below
			return Result[int]{Outcome: Created}
		}
		return Result[int]{Outcome: Failed, Err: errTransient}
	})
	if n != 3 || !errors.Is(res.Err, errTransient) {
		t.Fatalf("%d tries, %+v; want 3 and the transient failure", n, res)
	}
}

// TestRetryPauses: the pause doubles per try up to the cap, and jitter
// only lengthens it (never a pause shorter than the schedule).
func TestRetryPauses(t *testing.T) {
	b := backoff{attempts: RetryAttempts, base: 100 * time.Millisecond, max: time.Second,
		jitter: func(d time.Duration) time.Duration { return d / 2 }}
	want := []time.Duration{150, 300, 600, 1200, 1500, 1500}
	for i, w := range want {
		if got := b.pause(i + 1); got != w*time.Millisecond {
			t.Errorf("pause after try %d = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}

// TestStandardBackoff: Retry tries RetryAttempts times, pausing 200 ms
// doubling to 5 s before jitter.
func TestStandardBackoff(t *testing.T) {
	b := standardBackoff()
	if b.attempts != RetryAttempts {
		t.Fatalf("%d attempts", b.attempts)
	}
	b.jitter = func(time.Duration) time.Duration { return 0 }
	for i, w := range []time.Duration{200, 400, 800, 1600, 3200, 5000, 5000} {
		if got := b.pause(i + 1); got != w*time.Millisecond {
			t.Errorf("pause after try %d = %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
}
