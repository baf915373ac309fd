package fanout

import (
	"context"
	"errors"
	"testing"
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
