package operations

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// runManager runs m until the test ends.
func runManager(t *testing.T, m *Manager) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitEnded(t *testing.T, b Backend, id string) *Status {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, st, err := b.Get(context.Background(), id); err == nil && !st.EndTime.IsZero() {
			return st
		}
	}
	t.Fatal("operation did not end")
	return nil
}

func result(t *testing.T, m *Manager, id string, index int64) *agencyv1.WorkspaceResult {
	t.Helper()
	data, err := m.Backend().Results(context.Background(), id, []int64{index})
	if err != nil || data[index] == nil {
		t.Fatalf("no result %d: %v", index, err)
	}
	r, err := m.Decode(id, index, data[index])
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestManagerRunsAndCounts: every item gets its executor's result once,
// with the entry's workspace and the person's index.
func TestManagerRunsAndCounts(t *testing.T) {
	b := NewMemory(MemoryOptions{})
	m := NewManager(b, nil, Options{})
	var calls atomic.Int64
	m.Register("/x/Y", ExecutorFunc(func(ctx context.Context, job *Job) {
		for _, it := range job.Pending() {
			calls.Add(1)
			_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED, Email: string(rune('a' + it.Person))})
		}
	}))
	runManager(t, m)
	rec := &Record{Method: "/x/Y", Entries: []Entry{{Workspace: "workspaces/a", People: []int32{0, 1}}, {Workspace: "workspaces/b", People: []int32{1}}}}
	if err := m.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	st := waitEnded(t, b, rec.ID)
	if st.Done != 3 || calls.Load() != 3 || rec.Total != 3 || rec.Entries[1].Offset != 2 {
		t.Fatalf("status %+v, calls %d, record %+v", st, calls.Load(), rec)
	}
	if r := result(t, m, rec.ID, 2); r.GetWorkspace() != "workspaces/b" || r.GetEmail() != "b" {
		t.Fatalf("item 2 = %v", r)
	}
}

// TestJobStart: an executor's Start hands it the items to do; on a
// cancelled operation it hands it none and records them NOT_ATTEMPTED.
func TestJobStart(t *testing.T) {
	for _, cancelled := range []bool{false, true} {
		b := NewMemory(MemoryOptions{})
		m := NewManager(b, nil, Options{})
		var worked atomic.Int64
		m.Register("/x/Y", ExecutorFunc(func(ctx context.Context, job *Job) {
			for _, it := range job.Start(ctx) {
				worked.Add(1)
				_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED})
			}
		}))
		rec := &Record{Method: "/x/Y", Entries: []Entry{{Workspace: "workspaces/a", People: []int32{0, 1}}}}
		if err := m.Create(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		if cancelled {
			if err := b.Cancel(context.Background(), rec.ID); err != nil {
				t.Fatal(err)
			}
		}
		runManager(t, m)
		waitEnded(t, b, rec.ID)
		want, outcome, code := int64(2), agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED, codes.OK
		if cancelled {
			want, outcome, code = 0, agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED, codes.Canceled
		}
		if worked.Load() != want {
			t.Errorf("cancelled=%v: worked on %d items, want %d", cancelled, worked.Load(), want)
		}
		for i := range int64(2) {
			if r := result(t, m, rec.ID, i); r.GetOutcome() != outcome || status.FromProto(r.GetStatus()).Code() != code {
				t.Errorf("cancelled=%v: item %d = %v", cancelled, i, r)
			}
		}
	}
}

// TestManagerPanicFailsTheEntryOnly: an executor that panics fails its
// entry's items; the replica keeps working.
func TestManagerPanicFailsTheEntryOnly(t *testing.T) {
	b := NewMemory(MemoryOptions{})
	m := NewManager(b, nil, Options{})
	m.Register("/x/Y", ExecutorFunc(func(ctx context.Context, job *Job) {
		if job.Entry.Workspace == "workspaces/bad" {
			panic("boom")
		}
		for _, it := range job.Pending() {
			_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED})
		}
	}))
	runManager(t, m)
	rec := &Record{Method: "/x/Y", Entries: []Entry{{Workspace: "workspaces/bad"}, {Workspace: "workspaces/good"}}}
	if err := m.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	st := waitEnded(t, b, rec.ID)
	if st.Failed != 1 || st.Done != 1 {
		t.Fatalf("status %+v", st)
	}
	if r := result(t, m, rec.ID, 0); status.FromProto(r.GetStatus()).Code() != codes.Internal {
		t.Fatalf("bad entry's result %v", r)
	}
}

// TestManagerGivesUpAfterMaxAttempts: an entry whose workers keep dying
// (never acknowledged) fails its items after MaxAttempts deliveries.
func TestManagerGivesUpAfterMaxAttempts(t *testing.T) {
	b := NewMemory(MemoryOptions{ClaimTimeout: 20 * time.Millisecond})
	rec := &Record{ID: NewID(), Method: "/x/Y", Entries: []Entry{{Workspace: "workspaces/a"}}, CreateTime: time.Now()}
	rec.Total = 1
	if err := b.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	// Three "dead" consumers take the entry and never finish it.
	for range 3 {
		for deadline := time.Now().Add(5 * time.Second); ; {
			ds, err := b.Take(context.Background(), "dead", 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(ds) == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("entry never redelivered")
			}
		}
	}
	m := NewManager(b, nil, Options{MaxAttempts: 3, ClaimTimeout: 20 * time.Millisecond})
	var ran atomic.Bool
	m.Register("/x/Y", ExecutorFunc(func(context.Context, *Job) { ran.Store(true) }))
	runManager(t, m)
	st := waitEnded(t, b, rec.ID)
	if st.Failed != 1 || ran.Load() {
		t.Fatalf("status %+v, executor ran %v", st, ran.Load())
	}
	if r := result(t, m, rec.ID, 0); status.FromProto(r.GetStatus()).Code() != codes.Aborted {
		t.Fatalf("result %v, want ABORTED (abandoned)", r)
	}
}

// TestManagerShutdownHandsBack: when Run's context ends, an entry still
// running past the shutdown timeout is handed back at once, and another
// manager finishes it.
func TestManagerShutdownHandsBack(t *testing.T) {
	b := NewMemory(MemoryOptions{ClaimTimeout: time.Hour})
	slow := NewManager(b, nil, Options{ShutdownTimeout: 50 * time.Millisecond, Consumer: "slow"})
	started := make(chan struct{}, 1)
	slow.Register("/x/Y", ExecutorFunc(func(ctx context.Context, job *Job) {
		started <- struct{}{}
		<-ctx.Done() // stuck until the shutdown timeout cancels it
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = slow.Run(ctx); close(done) }()
	rec := &Record{Method: "/x/Y", Entries: []Entry{{Workspace: "workspaces/a"}}}
	if err := slow.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	<-started
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the shutdown timeout")
	}
	fast := NewManager(b, nil, Options{Consumer: "fast"})
	fast.Register("/x/Y", ExecutorFunc(func(ctx context.Context, job *Job) {
		for _, it := range job.Pending() {
			_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED})
		}
	}))
	runManager(t, fast)
	if st := waitEnded(t, b, rec.ID); st.Done != 1 {
		t.Fatalf("status %+v", st)
	}
}
