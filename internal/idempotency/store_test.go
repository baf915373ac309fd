package idempotency_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/idempotency"
	"github.com/agencyplane/agencyplane/internal/replication"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// backends are the Store implementations every store and interceptor test
// runs against.
func backends() map[string]func(t *testing.T) idempotency.Store {
	return map[string]func(t *testing.T) idempotency.Store{
		"memory": func(*testing.T) idempotency.Store { return idempotency.NewMemoryStore(nil) },
		"redis": func(t *testing.T) idempotency.Store {
			s, err := idempotency.NewRedisStore(redistest.Start(t), idempotency.RedisOptions{Prefix: redistest.Prefix(t)})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
}

func TestStore(t *testing.T) {
	for name, newStore := range backends() {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			t.Run("ClaimCompleteReplay", func(t *testing.T) {
				s := newStore(t)
				key := idempotency.Key("tokens/a", "11111111-1111-4111-8111-111111111111")
				pending := &idempotency.Record{Fingerprint: "fp", Claim: "c1"}
				if prev, err := s.Claim(ctx, key, pending, time.Minute); err != nil || prev != nil {
					t.Fatalf("first claim: %v %v", prev, err)
				}
				prev, err := s.Claim(ctx, key, &idempotency.Record{Fingerprint: "fp", Claim: "c2"}, time.Minute)
				if err != nil || prev == nil || *prev != *pending || !prev.Pending() {
					t.Fatalf("second claim sees %+v %v, want the first claim", prev, err)
				}
				done := &idempotency.Record{Fingerprint: "fp", Response: "v1.sealed"}
				if ok, err := s.Complete(ctx, key, &idempotency.Record{Fingerprint: "fp", Claim: "c2"}, done, time.Minute); err != nil || ok {
					t.Fatalf("complete with another claim: %v %v", ok, err)
				}
				if ok, err := s.Complete(ctx, key, pending, done, time.Minute); err != nil || !ok {
					t.Fatalf("complete: %v %v", ok, err)
				}
				prev, err = s.Claim(ctx, key, &idempotency.Record{Fingerprint: "fp", Claim: "c3"}, time.Minute)
				if err != nil || prev == nil || *prev != *done || prev.Pending() {
					t.Fatalf("claim after completion sees %+v %v, want the answer", prev, err)
				}
				// A completed record is not released by its old claim.
				if err := s.Release(ctx, key, pending); err != nil {
					t.Fatal(err)
				}
				if prev, _ := s.Claim(ctx, key, pending, time.Minute); prev == nil || *prev != *done {
					t.Fatalf("answer released by a stale claim: %+v", prev)
				}
			})
			t.Run("ReleaseOnlyOwnClaim", func(t *testing.T) {
				s := newStore(t)
				key := idempotency.Key("tokens/a", "r")
				pending := &idempotency.Record{Fingerprint: "fp", Claim: "c1"}
				if _, err := s.Claim(ctx, key, pending, time.Minute); err != nil {
					t.Fatal(err)
				}
				if err := s.Release(ctx, key, &idempotency.Record{Fingerprint: "fp", Claim: "other"}); err != nil {
					t.Fatal(err)
				}
				if prev, _ := s.Claim(ctx, key, pending, time.Minute); prev == nil {
					t.Fatal("another claim released ours")
				}
				if err := s.Release(ctx, key, pending); err != nil {
					t.Fatal(err)
				}
				if prev, err := s.Claim(ctx, key, pending, time.Minute); err != nil || prev != nil {
					t.Fatalf("claim after release: %v %v", prev, err)
				}
			})
			t.Run("Expiry", func(t *testing.T) {
				s := newStore(t)
				key := idempotency.Key("tokens/a", "e")
				pending := &idempotency.Record{Fingerprint: "fp", Claim: "c1"}
				if _, err := s.Claim(ctx, key, pending, 50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
				time.Sleep(120 * time.Millisecond)
				// The claim is gone: completing it stores nothing.
				if ok, err := s.Complete(ctx, key, pending, &idempotency.Record{Fingerprint: "fp", Response: "x"}, time.Minute); err != nil || ok {
					t.Fatalf("complete after expiry: %v %v", ok, err)
				}
				if prev, err := s.Claim(ctx, key, pending, time.Minute); err != nil || prev != nil {
					t.Fatalf("claim after expiry: %v %v", prev, err)
				}
			})
		})
	}
}

func TestKeyScopedByPrincipal(t *testing.T) {
	a, b := idempotency.Key("tokens/a", "R"), idempotency.Key("tokens/b", "r")
	if a == b || !strings.HasPrefix(a, "idem:{") || !strings.HasSuffix(a, "}:r") {
		t.Fatalf("keys %q %q", a, b)
	}
	if strings.Contains(a, "tokens/a") {
		t.Fatalf("key %q holds the principal in clear", a)
	}
}

// TestRedisKeyAndTTL: the documented key shape, and answers kept 24 h.
func TestRedisKeyAndTTL(t *testing.T) {
	rdb := redistest.Start(t)
	prefix := redistest.Prefix(t)
	s, err := idempotency.NewRedisStore(rdb, idempotency.RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := idempotency.Key("tokens/a", "r")
	pending := &idempotency.Record{Fingerprint: "fp", Claim: "c"}
	if _, err := s.Claim(ctx, key, pending, time.Minute); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Complete(ctx, key, pending, &idempotency.Record{Fingerprint: "fp", Response: "v1.x"}, idempotency.DefaultTTL); err != nil || !ok {
		t.Fatal(ok, err)
	}
	keys := redistest.Keys(t, rdb, prefix)
	if len(keys) != 1 || keys[0] != prefix+key {
		t.Fatalf("keys %v, want [%s]", keys, prefix+key)
	}
	if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl < 23*time.Hour || ttl > 24*time.Hour {
		t.Fatalf("TTL %v, want 24h", ttl)
	}
}

// TestRedisCompleteWaitsForReplica: with Replication set, a stored answer
// is on the replica when Complete returns, so a failover cannot turn a
// finished request back into a pending claim.
func TestRedisCompleteWaitsForReplica(t *testing.T) {
	pair := redistest.StartReplicated(t)
	prefix := redistest.Prefix(t)
	s, err := idempotency.NewRedisStore(pair.Primary, idempotency.RedisOptions{Prefix: prefix,
		Replication: replication.Waiter{Replicas: 1, Timeout: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	key := idempotency.Key("tokens/a", "r")
	pending := &idempotency.Record{Fingerprint: "fp", Claim: "c"}
	if _, err := s.Claim(ctx, key, pending, time.Minute); err != nil {
		t.Fatal(err)
	}
	if !pair.Lagging(t, 300*time.Millisecond, func() error {
		ok, err := s.Complete(ctx, key, pending, &idempotency.Record{Fingerprint: "fp", Response: "v1.x"}, time.Hour)
		if err == nil && !ok {
			err = errors.New("Complete found no claim")
		}
		return err
	}) {
		t.Fatal("Complete answered before the replica had the answer")
	}
	if v, err := pair.Replica.Get(ctx, prefix+key).Result(); err != nil || !strings.HasPrefix(v, "d fp ") {
		t.Fatalf("the replica holds %q, %v", v, err)
	}
}

// TestRedisDown: a dead Redis fails fast with ErrUnavailable.
func TestRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := idempotency.NewRedisStore(srv.Client, idempotency.RedisOptions{Prefix: "down:", Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err = s.Claim(context.Background(), "k", &idempotency.Record{Fingerprint: "f", Claim: "c"}, time.Minute)
	if !errors.Is(err, idempotency.ErrUnavailable) {
		t.Fatalf("claim with Redis down: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("claim took %v with Redis down", d)
	}
}
