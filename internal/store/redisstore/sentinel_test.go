package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/redisstore"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestConformanceSentinel runs the conformance suite through a go-redis
// failover client, as agencyd uses with a Sentinel --redis-url.
func TestConformanceSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	storetest.RunAll(t, func(t *testing.T) store.Store {
		return redisstore.New(s.NewClient(t), redisstore.Options{Prefix: redistest.Prefix(t)})
	})
}

// TestSentinelFailoverKeepsServing fails the primary over while a writer
// registers workspaces: everything acknowledged before the failover is still
// there, writes fail at most briefly (as ErrUnavailable), and afterwards
// every kind of write and read works on the new primary, including the Lua
// scripts, which are not in its script cache yet. (Creates acknowledged
// during the failover may be lost; see redistest.Sentinel.Failover.)
func TestSentinelFailoverKeepsServing(t *testing.T) {
	s := redistest.StartSentinel(t)
	st := redisstore.New(s.NewClient(t), redisstore.Options{Prefix: redistest.Prefix(t), OpTimeout: time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()

	var (
		mu      sync.Mutex
		acked   []string
		failed  int
		stopped = make(chan struct{})
		done    = make(chan error, 1)
	)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stopped:
				done <- nil
				return
			default:
			}
			w := storetest.Workspace(fmt.Sprintf("w%04d", i))
			err := st.Workspaces().Create(ctx, w)
			mu.Lock()
			switch {
			case err == nil:
				acked = append(acked, w.Name)
			case errors.Is(err, store.ErrUnavailable):
				failed++ // the primary is changing
			default:
				mu.Unlock()
				done <- fmt.Errorf("create %s: %w", w.Name, err)
				return
			}
			mu.Unlock()
			time.Sleep(time.Millisecond) // a steady trickle, not a flood
		}
	}()
	snapshot := func() ([]string, int) {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(acked), failed
	}
	waitFor := func(n int) {
		t.Helper()
		for {
			if got, _ := snapshot(); len(got) >= n {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("writer stopped: %v", err)
			case <-ctx.Done():
				got, _ := snapshot()
				t.Fatalf("only %d workspaces acknowledged, want %d", len(got), n)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	waitFor(30)
	before, _ := snapshot()
	if err := s.Failover(); err != nil {
		t.Fatal(err)
	}
	mark, _ := snapshot()
	waitFor(len(mark) + 30) // the writer carries on against the new primary
	close(stopped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	all, failures := snapshot()
	t.Logf("%d workspaces acknowledged before the failover, %d in all, %d creates failed during it", len(before), len(all), failures)

	for _, name := range before {
		if _, err := st.Workspaces().Get(ctx, name); err != nil {
			t.Fatalf("%s, acknowledged before the failover: %v", name, err)
		}
	}
	for _, name := range all[len(mark):] {
		if _, err := st.Workspaces().Get(ctx, name); err != nil {
			t.Fatalf("%s, acknowledged after the failover: %v", name, err)
		}
	}
	listed := map[string]bool{}
	for after := ""; ; {
		page, err := st.Workspaces().List(ctx, store.ListQuery{After: after, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, w := range page {
			listed[w.Name] = true
		}
		after = page[len(page)-1].Name
	}
	for _, name := range slices.Concat(before, all[len(mark):]) {
		if !listed[name] {
			t.Fatalf("List misses %s", name)
		}
	}
	// Creates acknowledged by the old primary between the promotion and the
	// switch are gone: Redis replication is asynchronous.
	t.Logf("%d of %d creates acknowledged during the failover were lost", len(all)-len(listed), len(mark)-len(before))
	if _, err := st.Workspaces().Update(ctx, before[0], func(w *store.Workspace) error {
		w.DisplayName = "renamed after failover"
		return nil
	}); err != nil {
		t.Fatalf("Update after failover: %v", err)
	}
	if err := st.Tokens().Create(ctx, &store.Token{ID: "t1", Hash: "h1", Role: "admin", CreateTime: time.Now()}); err != nil {
		t.Fatalf("token Create after failover: %v", err)
	}
	if err := st.Audit().Append(ctx, &store.AuditEvent{Time: time.Now(), Principal: "tokens/t1", Method: "/m", Code: "OK"}); err != nil {
		t.Fatalf("audit Append after failover: %v", err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
