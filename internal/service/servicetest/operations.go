package servicetest

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	ops "github.com/agencyplane/agencyplane/internal/operations"
)

// NewManager returns an operations Manager on the in-memory backend that
// seals secrets with e's keyring. Enable the services' executors on it,
// then Start it.
func (e *Env) NewManager(t testing.TB) *ops.Manager {
	t.Helper()
	return ops.NewManager(ops.NewMemory(ops.MemoryOptions{}), e.Keyring, ops.Options{Logger: slog.New(slog.DiscardHandler)})
}

// Start works on m's queue until the test ends, then waits for its workers.
func Start(t testing.TB, m *ops.Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = m.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}
