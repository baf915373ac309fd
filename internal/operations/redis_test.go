package operations

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
)

// lagging runs write while the replica is stopped and resumes it 300 ms
// later; it reports whether write returned only after that.
func lagging(t *testing.T, pair *redistest.Replicated, write func() error) (waited bool) {
	t.Helper()
	if err := pair.Pause(); err != nil {
		t.Fatal(err)
	}
	var resumed atomic.Bool
	done := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		resumed.Store(true)
		done <- pair.Resume()
	}()
	err := write()
	waited = resumed.Load()
	if rerr := <-done; rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	return waited
}

// TestRedisWaitsForReplica: with WaitReplicas, an operation's creation and
// an item's intent answer only once the replica has them, so a failover
// right after the answer cannot lose them.
func TestRedisWaitsForReplica(t *testing.T) {
	pair := redistest.StartReplicated(t)
	prefix := redistest.Prefix(t)
	b := NewRedis(pair.Primary, RedisOptions{Prefix: prefix, WaitReplicas: 1, WaitTimeout: time.Minute})
	ctx := context.Background()
	rec := newRecord("lag1", time.Now(), "workspaces/a")
	if !lagging(t, pair, func() error { return b.Create(ctx, rec) }) {
		t.Fatal("Create answered before the replica had the operation")
	}
	if n, err := pair.Replica.Exists(ctx, b.opKey("lag1")).Result(); err != nil || n != 1 {
		t.Fatalf("the replica lacks the operation: %d, %v", n, err)
	}
	if !lagging(t, pair, func() error { _, err := b.SetIntent(ctx, "lag1", 1, time.Now()); return err }) {
		t.Fatal("SetIntent answered before the replica had the intent")
	}
	if ok, err := pair.Replica.HExists(ctx, b.opKey("lag1")+":intents", "1").Result(); err != nil || !ok {
		t.Fatalf("the replica lacks the intent: %v, %v", ok, err)
	}
}

// TestRedisReplicaTimeout: a replica that does not acknowledge in time
// delays the write by WaitTimeout and is logged; the write stands.
func TestRedisReplicaTimeout(t *testing.T) {
	pair := redistest.StartReplicated(t)
	var logs syncbuf.Buffer
	b := NewRedis(pair.Primary, RedisOptions{Prefix: redistest.Prefix(t), WaitReplicas: 1, WaitTimeout: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if err := pair.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pair.Resume() })
	start := time.Now()
	if err := b.Create(ctx, newRecord("lag2", time.Now(), "workspaces/a")); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("Create waited %v for a stopped replica, want WaitTimeout", waited)
	}
	if _, _, err := b.Get(ctx, "lag2"); err != nil {
		t.Fatalf("the operation is not on the primary: %v", err)
	}
	if !strings.Contains(logs.String(), "acknowledged=0 wanted=1") {
		t.Fatalf("no warning logged: %q", logs.String())
	}
}
