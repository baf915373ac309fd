package desiredstate

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// storeSuite is what every Store must do, run against memory and Redis.
func storeSuite(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	t.Run("plans", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.GetPlan(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing plan: %v", err)
		}
		rec := &PlanRecord{ID: "p1", Creator: "tokens/a", CreatorScope: "team=west", CreateTime: time.Now().UTC().Truncate(time.Millisecond),
			Source: []byte("version: 1\n"), Plan: []byte{1, 2, 3}}
		if err := s.SavePlan(ctx, rec, time.Hour); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetPlan(ctx, "p1")
		if err != nil || got.Creator != "tokens/a" || string(got.Source) != "version: 1\n" || string(got.Plan) != "\x01\x02\x03" ||
			!got.CreateTime.Equal(rec.CreateTime) || got.ApplyOperation != "" {
			t.Fatalf("got %+v, %v", got, err)
		}
		if _, err := s.ClaimApply(ctx, "nope", "operations/x", time.Hour); !errors.Is(err, ErrNotFound) {
			t.Fatalf("claim of a missing plan: %v", err)
		}
		if h, err := s.ClaimApply(ctx, "p1", "operations/a", time.Hour); err != nil || h != "" {
			t.Fatalf("first claim: %q, %v", h, err)
		}
		if h, err := s.ClaimApply(ctx, "p1", "operations/b", time.Hour); err != nil || h != "operations/a" {
			t.Fatalf("second claim: %q, %v", h, err)
		}
		if got, _ := s.GetPlan(ctx, "p1"); got.ApplyOperation != "operations/a" {
			t.Fatalf("apply operation %q", got.ApplyOperation)
		}
		_ = s.ReleaseApply(ctx, "p1", "operations/b") // not its claim: nothing
		if got, _ := s.GetPlan(ctx, "p1"); got.ApplyOperation != "operations/a" {
			t.Fatal("released another's claim")
		}
		if err := s.ReleaseApply(ctx, "p1", "operations/a"); err != nil {
			t.Fatal(err)
		}
		if h, err := s.ClaimApply(ctx, "p1", "operations/c", time.Hour); err != nil || h != "" {
			t.Fatalf("claim after release: %q, %v", h, err)
		}
	})
	t.Run("one claim wins", func(t *testing.T) {
		s := newStore(t)
		if err := s.SavePlan(ctx, &PlanRecord{ID: "p2"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 16 {
			wg.Go(func() {
				h, err := s.ClaimApply(ctx, "p2", "operations/"+string(rune('a'+i)), time.Hour)
				if err == nil && h == "" {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Fatalf("%d claims won", won)
		}
	})
	t.Run("applied and drift", func(t *testing.T) {
		s := newStore(t)
		if a, err := s.LastApplied(ctx); a != nil || err != nil {
			t.Fatalf("nothing applied yet: %v %v", a, err)
		}
		if d, err := s.Drift(ctx); d != nil || err != nil {
			t.Fatalf("no drift yet: %v %v", d, err)
		}
		a := &Applied{Plan: "plans/p", Operation: "operations/o", Source: []byte("version: 1\n"), CreatorScope: "team=west"}
		if err := s.SetApplied(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, err := s.LastApplied(ctx); err != nil || got.Plan != "plans/p" || string(got.Source) != "version: 1\n" {
			t.Fatalf("applied %+v %v", got, err)
		}
		r := &DriftReport{Plan: "plans/p", Items: []DriftItem{{Workspace: "workspaces/w", Change: Change{Kind: Invite, Email: "a@x.io", Role: "view"}}}}
		if err := s.SaveDrift(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Drift(ctx); err != nil || len(got.Items) != 1 || got.Items[0].Change.Key() != "invite|a@x.io|view" {
			t.Fatalf("drift %+v %v", got, err)
		}
	})
	t.Run("removal reservations", func(t *testing.T) {
		s := newStore(t)
		res := func(ws string, n int) bool {
			ok, err := s.ReserveRemovals(ctx, "op", ws, n, 5, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !res("a", 3) || !res("b", 2) {
			t.Fatal("within the limit")
		}
		if res("c", 1) {
			t.Fatal("above the limit")
		}
		if !res("a", 3) {
			t.Fatal("a re-run replaces its own count")
		}
		if !res("a", 1) || !res("c", 2) {
			t.Fatal("a smaller count frees room")
		}
		if ok, _ := s.ReserveRemovals(ctx, "other-op", "a", 5, 5, time.Hour); !ok {
			t.Fatal("operations do not share reservations")
		}
	})
}

func TestMemoryStore(t *testing.T) {
	storeSuite(t, func(*testing.T) Store { return NewMemory(nil) })
}

func TestMemoryStoreExpiry(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := NewMemory(clock)
	ctx := context.Background()
	_ = s.SavePlan(ctx, &PlanRecord{ID: "p"}, time.Hour)
	now = now.Add(59 * time.Minute)
	if _, err := s.ClaimApply(ctx, "p", "operations/o", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour) // kept for its operation
	if _, err := s.GetPlan(ctx, "p"); err != nil {
		t.Fatalf("a claimed plan is kept: %v", err)
	}
	now = now.Add(24 * time.Hour)
	if _, err := s.GetPlan(ctx, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired: %v", err)
	}
}

func TestRedisStore(t *testing.T) {
	storeSuite(t, func(t *testing.T) Store { return NewRedis(redistest.Start(t), redistest.Prefix(t)) })
}

func TestRedisStoreExpiry(t *testing.T) {
	rdb := redistest.Start(t)
	s := NewRedis(rdb, redistest.Prefix(t))
	ctx := context.Background()
	_ = s.SavePlan(ctx, &PlanRecord{ID: "p"}, time.Minute)
	if _, err := s.ClaimApply(ctx, "p", "operations/o", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, s.planKey("p")).Val(); ttl < 59*time.Minute {
		t.Fatalf("a claimed plan is kept for its operation: ttl %v", ttl)
	}
	if ttl := rdb.PTTL(ctx, s.applyKey("p")).Val(); ttl < 59*time.Minute {
		t.Fatalf("and so is its claim: ttl %v", ttl)
	}
}

func TestLeaders(t *testing.T) {
	ctx := context.Background()
	if ok, _ := (Alone{}).Lead(ctx, time.Second); !ok {
		t.Fatal("alone leads")
	}
	rdb := redistest.Start(t)
	prefix := redistest.Prefix(t)
	a, b := NewRedisLeader(rdb, prefix), NewRedisLeader(rdb, prefix)
	if ok, err := a.Lead(ctx, time.Minute); !ok || err != nil {
		t.Fatalf("a: %v %v", ok, err)
	}
	if ok, _ := b.Lead(ctx, time.Minute); ok {
		t.Fatal("two leaders")
	}
	if ok, _ := a.Lead(ctx, time.Minute); !ok {
		t.Fatal("a renews")
	}
	if err := a.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Lead(ctx, 50*time.Millisecond); !ok {
		t.Fatal("b takes over after a resigns")
	}
	time.Sleep(120 * time.Millisecond)
	if ok, _ := a.Lead(ctx, time.Minute); !ok {
		t.Fatal("a takes over once b's lease lapsed (b crashed)")
	}
}
