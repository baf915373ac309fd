package members

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// fast are test timings: short polling pauses so contention tests are quick.
var fast = RedisOptions{MinWait: time.Millisecond, MaxWait: 20 * time.Millisecond}

// lockBackend is one Locker implementation as the conformance suite sees it.
type lockBackend struct {
	// replica returns a Locker on the backend, as one more replica would
	// have it: on Redis a new Locker on a new client, on memory the
	// process's one Locker. opts apply on Redis only.
	replica func(t *testing.T, opts RedisOptions) Locker
	// steal makes workspace's current holder lose its lease, as when its
	// lease expired while it was paused.
	steal func(t *testing.T, workspace string)
	// held reports whether anyone holds workspace's lock.
	held func(t *testing.T, workspace string) bool
}

func memoryBackend(*testing.T) lockBackend {
	l := NewMemoryLocker()
	return lockBackend{
		replica: func(*testing.T, RedisOptions) Locker { return l },
		steal: func(t *testing.T, ws string) {
			l.mu.Lock()
			s := l.held[ws]
			l.mu.Unlock()
			if s == nil || !l.drop(s) {
				t.Fatalf("steal: nobody holds %s", ws)
			}
		},
		held: func(_ *testing.T, ws string) bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.held[ws] != nil
		},
	}
}

func redisBackend(t *testing.T) lockBackend {
	prefix := redistest.Prefix(t)
	admin := redistest.Start(t)
	return lockBackend{
		replica: func(t *testing.T, opts RedisOptions) Locker {
			opts.Prefix = prefix
			l, err := NewRedisLocker(redistest.Start(t), opts) // its own client: its own replica
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
		steal: func(t *testing.T, ws string) {
			if n, err := admin.Del(context.Background(), LockKey(prefix, ws)).Result(); err != nil || n != 1 {
				t.Fatalf("steal: DEL = %d, %v", n, err)
			}
		},
		held: func(t *testing.T, ws string) bool {
			n, err := admin.Exists(context.Background(), LockKey(prefix, ws)).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	}
}

func TestLockerConformance(t *testing.T) {
	for name, setup := range map[string]func(*testing.T) lockBackend{"memory": memoryBackend, "redis": redisBackend} {
		t.Run(name, func(t *testing.T) {
			t.Run("MutualExclusion", func(t *testing.T) { testMutualExclusion(t, setup(t)) })
			t.Run("WorkspacesAreIndependent", func(t *testing.T) { testIndependent(t, setup(t)) })
			t.Run("UnlockHandsOver", func(t *testing.T) { testHandOver(t, setup(t)) })
			t.Run("CheckFailsWhenLost", func(t *testing.T) { testCheckLost(t, setup(t)) })
			t.Run("UnlockSparesOthers", func(t *testing.T) { testUnlockSparesOthers(t, setup(t)) })
			t.Run("CancelWhileWaiting", func(t *testing.T) { testCancelWhileWaiting(t, setup(t)) })
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustLock(t *testing.T, ctx context.Context, l Locker, ws string) Lease {
	t.Helper()
	s, err := l.Lock(ctx, ws)
	if err != nil {
		t.Fatalf("Lock(%s): %v", ws, err)
	}
	return s
}

// wantLockErr asserts err is sentinel with gRPC code.
func wantLockErr(t *testing.T, err, sentinel error, code codes.Code) {
	t.Helper()
	if !errors.Is(err, sentinel) || status.Code(err) != code {
		t.Fatalf("got %v (code %v), want %v with %v", err, status.Code(err), sentinel, code)
	}
}

// testMutualExclusion: goroutines of two replicas take turns on one
// workspace; never two inside at once.
func testMutualExclusion(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	replicas := []Locker{b.replica(t, fast), b.replica(t, fast)}
	const goroutines, rounds = 6, 12
	var inside, maxInside, entries atomic.Int32
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := replicas[g%len(replicas)]
			for range rounds {
				s, err := l.Lock(ctx, "ws")
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				n := inside.Add(1)
				for m := maxInside.Load(); n > m && !maxInside.CompareAndSwap(m, n); m = maxInside.Load() {
				}
				entries.Add(1)
				if err := s.Check(ctx); err != nil {
					t.Errorf("Check while held: %v", err)
				}
				time.Sleep(time.Millisecond)
				inside.Add(-1)
				if err := s.Unlock(ctx); err != nil {
					t.Errorf("Unlock: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if maxInside.Load() != 1 || entries.Load() != goroutines*rounds {
		t.Fatalf("at most %d holders at once over %d entries; want 1 over %d", maxInside.Load(), entries.Load(), goroutines*rounds)
	}
	if b.held(t, "ws") {
		t.Fatal("lock still held after every Unlock")
	}
}

func testIndependent(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	a, c := b.replica(t, fast), b.replica(t, fast)
	s1 := mustLock(t, ctx, a, "one")
	defer s1.Unlock(ctx)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	s2 := mustLock(t, short, c, "two")
	defer s2.Unlock(ctx)
	if err := s1.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

// testHandOver: a waiter gets the lock once the holder unlocks, even with
// a cancelled context, and a second Unlock is harmless.
func testHandOver(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	a, c := b.replica(t, fast), b.replica(t, fast)
	s := mustLock(t, ctx, a, "ws")
	got := make(chan Lease, 1)
	go func() {
		s2, err := c.Lock(ctx, "ws")
		if err != nil {
			t.Errorf("waiter: %v", err)
		}
		got <- s2
	}()
	select {
	case <-got:
		t.Fatal("the waiter got a held lock")
	case <-time.After(100 * time.Millisecond):
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Unlock(cancelled); err != nil {
		t.Fatalf("Unlock with a cancelled context: %v", err)
	}
	if err := s.Unlock(ctx); err != nil {
		t.Fatalf("second Unlock: %v", err)
	}
	select {
	case s2 := <-got:
		if s2 == nil {
			return
		}
		if err := s2.Check(ctx); err != nil {
			t.Fatalf("waiter's Check: %v", err)
		}
		_ = s2.Unlock(ctx)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter did not get the lock after Unlock")
	}
}

func testCheckLost(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	s := mustLock(t, ctx, b.replica(t, fast), "ws")
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
	b.steal(t, "ws")
	wantLockErr(t, s.Check(ctx), ErrLockLost, codes.Aborted)
	wantLockErr(t, s.Unlock(ctx), ErrLockLost, codes.Aborted)
}

// testUnlockSparesOthers: a holder whose lease was lost (and taken by
// another replica) neither deletes nor disturbs the new holder's lock.
func testUnlockSparesOthers(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	a, c := b.replica(t, fast), b.replica(t, fast)
	old := mustLock(t, ctx, a, "ws")
	b.steal(t, "ws")
	cur := mustLock(t, ctx, c, "ws")
	wantLockErr(t, old.Unlock(ctx), ErrLockLost, codes.Aborted)
	if !b.held(t, "ws") {
		t.Fatal("the old holder's Unlock released the new holder's lock")
	}
	if err := cur.Check(ctx); err != nil {
		t.Fatalf("new holder's Check after the old Unlock: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := a.Lock(short, "ws"); err == nil {
		t.Fatal("locked a held lock")
	}
	if err := cur.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if b.held(t, "ws") {
		t.Fatal("still held after the holder's Unlock")
	}
}

func testCancelWhileWaiting(t *testing.T, b lockBackend) {
	ctx := ctxT(t)
	a, c := b.replica(t, RedisOptions{}), b.replica(t, RedisOptions{}) // default (slower) polling
	s := mustLock(t, ctx, a, "ws")
	defer s.Unlock(ctx)

	wctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Lock(wctx, "ws")
	if d := time.Since(start); d > 400*time.Millisecond {
		t.Fatalf("Lock returned %v after the cancel, want promptly", d-50*time.Millisecond)
	}
	wantLockErr(t, err, ErrBusy, codes.Aborted)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("%v does not keep the context's error", err)
	}

	dctx, cancel2 := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel2()
	_, err = c.Lock(dctx, "ws")
	wantLockErr(t, err, ErrBusy, codes.Aborted)

	// A context that already ended takes nothing, even when the lock is free.
	done, cancel3 := context.WithCancel(ctx)
	cancel3()
	_, err = c.Lock(done, "free")
	wantLockErr(t, err, ErrBusy, codes.Aborted)
	if b.held(t, "free") {
		t.Fatal("a cancelled Lock took the lock")
	}
}

// TestRedisRenewal: a held lease outlives its TTL many times over; the key
// carries a TTL no longer than the configured one.
func TestRedisRenewal(t *testing.T) {
	ctx := ctxT(t)
	b := redisBackend(t)
	opts := fast
	opts.TTL = 500 * time.Millisecond
	a, c := b.replica(t, opts), b.replica(t, opts)
	s := mustLock(t, ctx, a, "ws")
	time.Sleep(4 * opts.TTL)
	if err := s.Check(ctx); err != nil {
		t.Fatalf("Check after 4 TTLs while held: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Lock(short, "ws"); !errors.Is(err, ErrBusy) {
		t.Fatalf("another replica's Lock after 4 TTLs: %v, want ErrBusy", err)
	}
	if err := s.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if b.held(t, "ws") {
		t.Fatal("held after Unlock")
	}
}

// TestRedisPausedHolder: a holder whose renewals stopped (paused, GC,
// partition) fails Check once less than the margin is left, and after the
// expiry another replica takes the lock and keeps it.
func TestRedisPausedHolder(t *testing.T) {
	ctx := ctxT(t)
	b := redisBackend(t)
	paused := fast
	paused.TTL, paused.Margin, paused.noRenew = 200*time.Millisecond, 80*time.Millisecond, true
	a := b.replica(t, paused)
	s := mustLock(t, ctx, a, "ws")
	if err := s.Check(ctx); err != nil {
		t.Fatalf("fresh lease: %v", err)
	}
	time.Sleep(140 * time.Millisecond) // 60 ms left at most: below the margin (or already gone)
	wantLockErr(t, s.Check(ctx), ErrLockLost, codes.Aborted)

	other := b.replica(t, fast)
	cur := mustLock(t, ctx, other, "ws") // waits out the expiry
	wantLockErr(t, s.Check(ctx), ErrLockLost, codes.Aborted)
	wantLockErr(t, s.Unlock(ctx), ErrLockLost, codes.Aborted)
	if err := cur.Check(ctx); err != nil {
		t.Fatalf("new holder: %v", err)
	}
	_ = cur.Unlock(ctx)
}

// TestRedisKey: the lease is LockKey(prefix, workspace), with the TTL.
func TestRedisKey(t *testing.T) {
	ctx := ctxT(t)
	c := redistest.Start(t)
	prefix := redistest.Prefix(t)
	l, err := NewRedisLocker(c, RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	s := mustLock(t, ctx, l, "3f1c")
	key := prefix + "lock:members:{3f1c}"
	if LockKey(prefix, "3f1c") != key {
		t.Fatalf("LockKey = %q", LockKey(prefix, "3f1c"))
	}
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl <= 0 || ttl > DefaultTTL {
		t.Fatalf("PTTL %s = %v, %v; want (0, %v]", key, ttl, err, DefaultTTL)
	}
	if err := s.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, key).Val(); n != 0 {
		t.Fatal("key left after Unlock")
	}
}

// TestRedisDown: with Redis gone, Lock and Check fail (UNAVAILABLE), so the
// guarded write is never made; Lock does not wait for the ctx to end.
func TestRedisDown(t *testing.T) {
	ctx := ctxT(t)
	srv := redistest.StartServer(t)
	l, err := NewRedisLocker(srv.Client, RedisOptions{Prefix: redistest.Prefix(t), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s := mustLock(t, ctx, l, "ws")
	srv.Stop()
	wantLockErr(t, s.Check(ctx), ErrUnavailable, codes.Unavailable)
	start := time.Now()
	_, err = l.Lock(ctx, "other")
	wantLockErr(t, err, ErrUnavailable, codes.Unavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Lock with Redis down took %v", d)
	}
	wantLockErr(t, s.Unlock(ctx), ErrUnavailable, codes.Unavailable)

	// Never reachable at all.
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DisableIdentity: true, MaxRetries: -1})
	defer dead.Close()
	l2, err := NewRedisLocker(dead, RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = l2.Lock(ctx, "ws")
	wantLockErr(t, err, ErrUnavailable, codes.Unavailable)
}

func TestRedisOptions(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	for _, opts := range []RedisOptions{
		{TTL: time.Second, Margin: 600 * time.Millisecond},
		{TTL: time.Millisecond},
		{MinWait: time.Second, MaxWait: time.Millisecond},
		{Timeout: -1},
	} {
		if _, err := NewRedisLocker(c, opts); err == nil {
			t.Errorf("%+v accepted", opts)
		}
	}
	if _, err := NewRedisLocker(nil, RedisOptions{}); err == nil {
		t.Error("nil client accepted")
	}
}
