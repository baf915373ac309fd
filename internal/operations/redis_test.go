package operations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

// BenchmarkRedisList lists a page for a caller who sees none of 1,000
// operations of 300 workspaces each (every one is scanned), and for one
// who sees them all (one page of 50 is read).
func BenchmarkRedisList(b *testing.B) {
	rdb := redistest.Start(b)
	r := NewRedis(rdb, RedisOptions{Prefix: redistest.Prefix(b)})
	ctx := context.Background()
	wss := make([]string, 300)
	for i := range wss {
		wss[i] = fmt.Sprintf("workspaces/client-%03d", i)
	}
	start := time.Now().Add(-time.Hour)
	for i := range 1000 {
		rec := newRecord(fmt.Sprintf("bench%04d", i), start.Add(time.Duration(i)*time.Millisecond), wss...)
		rec.Request = make([]byte, 200)
		if err := r.Create(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct {
		name string
		see  bool
	}{{"SeesNone", false}, {"SeesAll", true}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				recs, err := r.List(ctx, ListQuery{Limit: 51, Match: func(*Record) bool { return c.see }})
				if err != nil || (c.see && len(recs) != 51) || (!c.see && len(recs) != 0) {
					b.Fatalf("%d records, %v", len(recs), err)
				}
			}
		})
	}
}

// TestRedisListReadsHeadsFirst: List matches on records' heads (without
// request and entries), reads whole records only for the matches, still
// lists records written before heads existed, and forgets expired ones.
func TestRedisListReadsHeadsFirst(t *testing.T) {
	rdb := redistest.Start(t)
	r := NewRedis(rdb, RedisOptions{Prefix: redistest.Prefix(t)})
	ctx := context.Background()
	now := time.Now()
	for i, id := range []string{"old", "legacy", "gone", "new"} {
		if err := r.Create(ctx, newRecord(id, now.Add(time.Duration(i)*time.Millisecond), "workspaces/a", "workspaces/b")); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.HDel(ctx, r.opKey("legacy"), "head").Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, r.opKey("gone")).Err(); err != nil {
		t.Fatal(err)
	}
	var whole []string
	recs, err := r.List(ctx, ListQuery{Limit: 10, Match: func(rec *Record) bool {
		if rec.Entries != nil || rec.Request != nil {
			whole = append(whole, rec.ID)
		}
		return rec.ID != "old"
	}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rec := range recs {
		ids = append(ids, rec.ID)
		if len(rec.Entries) != 2 || len(rec.Request) == 0 || rec.Creator != "tokens/t1" {
			t.Errorf("%s listed incomplete: %+v", rec.ID, rec)
		}
	}
	if !slices.Equal(ids, []string{"new", "legacy"}) {
		t.Fatalf("listed %v, want [new legacy]", ids)
	}
	if !slices.Equal(whole, []string{"legacy"}) {
		t.Fatalf("matched on whole records %v, want only the one without a head", whole)
	}
	if n, _ := rdb.ZScore(ctx, r.indexKey(), "gone").Result(); n != 0 {
		t.Fatal("the expired operation is still in the index")
	}
}

// TestRedisListKeepsIndexOnErrors: an operation Redis cannot read (here a
// key of the wrong type) fails the listing as unavailable; it is not taken
// for expired and dropped from the index.
func TestRedisListKeepsIndexOnErrors(t *testing.T) {
	rdb := redistest.Start(t)
	r := NewRedis(rdb, RedisOptions{Prefix: redistest.Prefix(t)})
	ctx := context.Background()
	if err := r.Create(ctx, newRecord("odd", time.Now(), "workspaces/a")); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, r.opKey("odd")).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Set(ctx, r.opKey("odd"), "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.List(ctx, ListQuery{Limit: 10}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("List = %v, want ErrUnavailable", err)
	}
	if _, err := rdb.ZScore(ctx, r.indexKey(), "odd").Result(); err != nil {
		t.Fatalf("the operation left the index: %v", err)
	}
}
