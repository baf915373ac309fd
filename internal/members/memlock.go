package members

import (
	"context"
	"fmt"
	"sync"
)

// MemoryLocker is the Locker of the embedded backend: per process, like
// everything else there. Its leases never expire; they end at Unlock.
type MemoryLocker struct {
	mu   sync.Mutex
	held map[string]*memLease // workspace → current holder
}

var _ Locker = (*MemoryLocker)(nil)

// NewMemoryLocker returns an in-process Locker.
func NewMemoryLocker() *MemoryLocker {
	return &MemoryLocker{held: make(map[string]*memLease)}
}

// Lock implements Locker; it waits until the holder unlocks or ctx ends
// (ErrBusy, ABORTED).
func (l *MemoryLocker) Lock(ctx context.Context, workspace string) (Lease, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, busy(workspace, err)
		}
		l.mu.Lock()
		cur := l.held[workspace]
		if cur == nil {
			s := &memLease{l: l, workspace: workspace, released: make(chan struct{})}
			l.held[workspace] = s
			l.mu.Unlock()
			return s, nil
		}
		l.mu.Unlock()
		select {
		case <-cur.released:
		case <-ctx.Done():
			return nil, busy(workspace, ctx.Err())
		}
	}
}

// drop ends s if it is the workspace's holder, waking waiters; it reports
// whether it was.
func (l *MemoryLocker) drop(s *memLease) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[s.workspace] != s {
		return false
	}
	delete(l.held, s.workspace)
	close(s.released)
	return true
}

type memLease struct {
	l         *MemoryLocker
	workspace string
	released  chan struct{} // closed when the lease ends

	once      sync.Once
	unlockErr error
}

// Check implements Lease.
func (s *memLease) Check(ctx context.Context) error {
	s.l.mu.Lock()
	defer s.l.mu.Unlock()
	if s.l.held[s.workspace] != s {
		return lost(s.workspace, "released")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("members: checking the lock of %s: %w", s.workspace, err)
	}
	return nil
}

// Unlock implements Lease.
func (s *memLease) Unlock(context.Context) error {
	s.once.Do(func() {
		if !s.l.drop(s) {
			s.unlockErr = lost(s.workspace, "already released at unlock")
		}
	})
	return s.unlockErr
}
