package servicetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
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
func Start(t testing.TB, m *ops.Manager) { StartReplica(t, m) }

// OperationResults waits (at most 20 s) for op, as a service returned it,
// to end on m and returns its status and every item's result in item
// order: what the desired-state and fan-out operations' tests compare.
// It fails t when the operation does not end or a result is missing.
func OperationResults(t testing.TB, m *ops.Manager, op *longrunningpb.Operation) (*ops.Status, []*agencyv1.WorkspaceResult) {
	t.Helper()
	id, ok := ops.ParseName(op.GetName())
	if !ok {
		t.Fatalf("not an operation: %q", op.GetName())
	}
	ctx := context.Background()
	rec, st, err := m.Wait(ctx, id, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st.EndTime.IsZero() {
		t.Fatalf("%s has not ended: %+v", op.GetName(), st)
	}
	idx := make([]int64, rec.Total)
	for i := range idx {
		idx[i] = int64(i)
	}
	data, err := m.Backend().Results(ctx, id, idx)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*agencyv1.WorkspaceResult, rec.Total)
	for i := range out {
		d, ok := data[int64(i)]
		if !ok {
			t.Fatalf("%s ended without a result for item %d", op.GetName(), i)
		}
		if out[i], err = m.Decode(id, int64(i), d); err != nil {
			t.Fatal(err)
		}
	}
	return st, out
}

// Replica works on an operations Manager's queue, as Start does, until
// Stop: an executor playing a replica that dies mid-entry calls Stop and
// returns without a result, and the entry is handed back for the next
// replica (Start) to take over.
type Replica struct {
	stop context.CancelFunc
	done chan struct{}
}

// StartReplica starts a Replica on m; it is stopped when the test ends.
func StartReplica(t testing.TB, m *ops.Manager) *Replica {
	ctx, cancel := context.WithCancel(context.Background())
	r := &Replica{stop: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// Stop tells the replica to stop taking work and hand back what it holds.
func (r *Replica) Stop() { r.stop() }

// Stopped waits (at most 10 s) until the replica has stopped.
func (r *Replica) Stopped(t testing.TB) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replica did not stop")
	}
}
