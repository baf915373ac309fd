package instantly

import (
	"context"
	"errors"
)

// Ambiguous reports whether err leaves unknown whether Instantly acted: a
// 5xx or a transport failure after the request may have been sent. A
// create that failed so may have happened; read before repeating it.
func Ambiguous(err error) bool {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode >= 500
	}
	var te *transportError
	return errors.As(err, &te) && !te.notSent && !te.final
}

// maxCreateTries bounds CreateOnce's rounds of create, then look.
const maxCreateTries = 3

// CreateOnce makes a create happen exactly once although Instantly has no
// idempotency keys: it creates, and when the answer is ambiguous it looks
// (find) before creating again, so a create that committed upstream and
// then failed to answer is found instead of repeated. It returns the value
// created or found, or the last error.
func CreateOnce[T any](ctx context.Context, create func(context.Context) (T, error), find func(context.Context) (T, bool, error)) (T, error) {
	var zero T
	var lastErr error
	for range maxCreateTries {
		v, err := create(ctx)
		if err == nil {
			return v, nil
		}
		if !Ambiguous(err) || ctx.Err() != nil {
			return zero, err
		}
		lastErr = err
		found, ok, ferr := find(ctx)
		if ferr != nil {
			return zero, ferr
		}
		if ok {
			return found, nil
		}
	}
	return zero, lastErr
}
