package operations

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/replication"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
)

// TestRedisWaitsForReplica: with Replication set, an operation's creation and
// an item's intent answer only once the replica has them, so a failover
// right after the answer cannot lose them.
func TestRedisWaitsForReplica(t *testing.T) {
	pair := redistest.StartReplicated(t)
	prefix := redistest.Prefix(t)
	b := NewRedis(pair.Primary, RedisOptions{Prefix: prefix, Replication: replication.Waiter{Replicas: 1, Timeout: time.Minute}})
	ctx := context.Background()
	rec := newRecord("lag1", time.Now(), "workspaces/a")
	if !pair.Lagging(t, 300*time.Millisecond, func() error { return b.Create(ctx, rec) }) {
		t.Fatal("Create answered before the replica had the operation")
	}
	if n, err := pair.Replica.Exists(ctx, b.opKey("lag1")).Result(); err != nil || n != 1 {
		t.Fatalf("the replica lacks the operation: %d, %v", n, err)
	}
	if !pair.Lagging(t, 300*time.Millisecond, func() error { _, err := b.SetIntent(ctx, "lag1", 1, time.Now()); return err }) {
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
	b := NewRedis(pair.Primary, RedisOptions{Prefix: redistest.Prefix(t),
		Replication: replication.Waiter{Replicas: 1, Timeout: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}})
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
