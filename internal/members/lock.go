package members

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
)

// Locker serializes member changes per workspace. Lock waits until the
// workspace's lock is free or ctx ends.
type Locker interface {
	Lock(ctx context.Context, workspace string) (Lease, error)
}

// Lease is one holding of a workspace's lock.
type Lease interface {
	// Check reports whether the lease is still held with enough time left
	// for one write; call it right before the write, and do not write when
	// it fails.
	Check(ctx context.Context) error
	// Unlock releases the lease if it is still ours (never someone else's).
	// It works with a cancelled ctx, is idempotent, and returns an error
	// wrapping ErrLockLost when the lease had been lost before.
	Unlock(ctx context.Context) error
}

// Errors of the lock, reachable with errors.Is through the API errors the
// Locker and Lease return.
var (
	// ErrBusy: ctx ended while another change held the workspace's lock.
	ErrBusy = errors.New("members: workspace member lock busy")
	// ErrLockLost: the lease expired or was taken over.
	ErrLockLost = errors.New("members: workspace member lock lost")
	// ErrUnavailable: the lock's store (Redis) failed; nothing was changed.
	ErrUnavailable = errors.New("members: member lock store unavailable")
)

// busy is the API error of a Lock that gave up waiting: ABORTED (a
// concurrent change won; retry), keeping ctx's error for logs.
func busy(workspace string, cause error) error {
	return apierr.Wrap(codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_CONCURRENT_MODIFICATION,
		"another change to this workspace's members is in progress; nothing was changed, retry",
		fmt.Errorf("%w: %s: %w", ErrBusy, workspace, cause))
}

// lost is the API error of a lease found lost.
func lost(workspace, why string) error {
	return apierr.Wrap(codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_CONCURRENT_MODIFICATION,
		"lost this workspace's member lock before the write; nothing was changed, retry",
		fmt.Errorf("%w: %s: %s", ErrLockLost, workspace, why))
}

// unavailable is the API error of a failed lock store: fail closed.
func unavailable(workspace string, cause error) error {
	return apierr.Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE,
		"the member lock store is unavailable; nothing was changed",
		fmt.Errorf("%w: %s: %w", ErrUnavailable, workspace, cause))
}

// jitter returns a random duration in [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
