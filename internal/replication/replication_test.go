package replication_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/replication"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestBudget(t *testing.T) {
	for _, c := range []struct {
		w    replication.Waiter
		want time.Duration
	}{
		{replication.Waiter{}, 0},
		{replication.Waiter{Timeout: time.Minute}, 0},
		{replication.Waiter{Replicas: 1}, time.Second},
		{replication.Waiter{Replicas: 2, Timeout: 5 * time.Second}, 5 * time.Second},
	} {
		if got := c.w.Budget(); got != c.want {
			t.Errorf("%+v.Budget() = %v, want %v", c.w, got, c.want)
		}
	}
}

// TestDo: the write runs once, and waits for the replica only when asked;
// its error comes back as is; a replica that does not answer in time is
// logged, and the write stands.
func TestDo(t *testing.T) {
	pair := redistest.StartReplicated(t)
	ctx := context.Background()
	set := func(w replication.Waiter, key string) func() error {
		return func() error {
			return w.Do(ctx, pair.Primary, "test", func(c redis.Cmdable) error { return c.Incr(ctx, key).Err() })
		}
	}
	if pair.Lagging(t, 200*time.Millisecond, set(replication.Waiter{}, "k0")) {
		t.Error("the zero Waiter waited for the replica")
	}
	if !pair.Lagging(t, 200*time.Millisecond, set(replication.Waiter{Replicas: 1, Timeout: time.Minute}, "k1")) {
		t.Error("Replicas: 1 answered before the replica had the write")
	}
	if n, err := pair.Replica.Get(ctx, "k1").Int(); err != nil || n != 1 {
		t.Errorf("the replica holds k1 = %d, %v; want 1 (written once)", n, err)
	}

	boom := errors.New("boom")
	w := replication.Waiter{Replicas: 1, Timeout: time.Minute}
	if err := w.Do(ctx, pair.Primary, "test", func(redis.Cmdable) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("write error came back as %v", err)
	}

	var logs syncbuf.Buffer
	w = replication.Waiter{Replicas: 2, Timeout: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := set(w, "k2")(); err != nil {
		t.Fatal(err)
	}
	if n, err := pair.Primary.Get(ctx, "k2").Int(); err != nil || n != 1 {
		t.Errorf("k2 = %d, %v after a short wait; want the write to stand", n, err)
	}
	if !strings.Contains(logs.String(), "write=test acknowledged=1 wanted=2") {
		t.Errorf("no warning for one replica of two: %q", logs.String())
	}
	w.Logger = nil // a short wait without a logger is silent, not a panic
	if err := set(w, "k3")(); err != nil {
		t.Fatal(err)
	}
}

// TestDoOtherClients: a client WAIT cannot be pinned on (a cluster or
// ring) writes without waiting.
func TestDoOtherClients(t *testing.T) {
	rdb := redistest.Start(t)
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": rdb.Options().Addr}, DisableIdentity: true})
	t.Cleanup(func() { _ = ring.Close() })
	key := redistest.Prefix(t) + "ring"
	w := replication.Waiter{Replicas: 1, Timeout: time.Minute}
	start := time.Now()
	if err := w.Do(context.Background(), ring, "test", func(c redis.Cmdable) error { return c.Set(context.Background(), key, 1, time.Minute).Err() }); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("waited for replicas on a ring client")
	}
	if v, err := rdb.Get(context.Background(), key).Result(); err != nil || v != "1" {
		t.Fatalf("the write did not happen: %q, %v", v, err)
	}
}
