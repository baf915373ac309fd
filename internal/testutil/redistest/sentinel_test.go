package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestStartSentinelFailover(t *testing.T) {
	var procs []string
	t.Run("deployment", func(t *testing.T) {
		s := StartSentinel(t)
		if len(s.Addrs) != 3 || s.MasterName != "mymaster" {
			t.Fatalf("sentinels %v, master name %q", s.Addrs, s.MasterName)
		}
		// The URL is go-redis's failover form: the same deployment.
		fo, err := redis.ParseFailoverURL(s.URL)
		if err != nil {
			t.Fatalf("ParseFailoverURL(%q): %v", s.URL, err)
		}
		if fo.MasterName != s.MasterName || !slices.Equal(fo.SentinelAddrs, s.Addrs) || fo.DB != 0 {
			t.Fatalf("URL %q parses to master %q, sentinels %v, db %d", s.URL, fo.MasterName, fo.SentinelAddrs, fo.DB)
		}

		c := s.NewClient(t)
		if err := c.Set(ctx(t), "before", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := c.Wait(ctx(t), 1, 2*time.Second).Result(); err != nil || n != 1 {
			t.Fatalf("WAIT = %d, %v; want the replica to acknowledge", n, err)
		}
		old, err := s.PrimaryAddr()
		if err != nil {
			t.Fatal(err)
		}
		replica := otherNode(t, old)
		procs = append(append(procs, s.Addrs...), old, replica)

		start := time.Now()
		if err := s.Failover(); err != nil {
			t.Fatal(err)
		}
		t.Logf("failover took %v", time.Since(start))
		primary, err := s.PrimaryAddr()
		if err != nil || primary != replica {
			t.Fatalf("primary after Failover = %q, %v; want the replica %s", primary, err, replica)
		}
		assertRole(t, primary, "master")
		assertRole(t, old, "slave")

		// The same client follows the failover, for reads and writes.
		if got, err := c.Get(ctx(t), "before").Result(); err != nil || got != "1" {
			t.Fatalf("GET after failover = %q, %v", got, err)
		}
		if err := c.Set(ctx(t), "after", "2", 0).Err(); err != nil {
			t.Fatalf("SET after failover: %v", err)
		}
		direct := redis.NewClient(&redis.Options{Addr: primary, DisableIdentity: true})
		defer direct.Close()
		if got, err := direct.MGet(ctx(t), "before", "after").Result(); err != nil || fmt.Sprint(got) != "[1 2]" {
			t.Fatalf("new primary holds %v, %v; want [1 2]", got, err)
		}

		// And back: the old primary resynced, so it can be promoted again.
		if err := s.Failover(); err != nil {
			t.Fatalf("second Failover: %v", err)
		}
		if primary, err := s.PrimaryAddr(); err != nil || primary != old {
			t.Fatalf("primary after second Failover = %q, %v; want %s", primary, err, old)
		}
		if got, err := c.MGet(ctx(t), "before", "after").Result(); err != nil || fmt.Sprint(got) != "[1 2]" {
			t.Fatalf("after failing back: %v, %v; want [1 2]", got, err)
		}
	})
	for _, a := range procs {
		if err := ping(ctx(t), a); err == nil {
			t.Errorf("%s still answers after the test ended", a)
		}
	}
}

// otherNode returns the redis-server that is not primary, as the sentinels
// know it.
func otherNode(t *testing.T, primary string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: primary, DisableIdentity: true})
	defer c.Close()
	info, err := c.Info(ctx(t), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	// slave0:ip=127.0.0.1,port=NNNN,state=online,offset=…,lag=…
	for line := range strings.Lines(info) {
		if !strings.HasPrefix(line, "slave0:") {
			continue
		}
		var ip, port string
		for f := range strings.SplitSeq(strings.TrimSpace(strings.TrimPrefix(line, "slave0:")), ",") {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "ip":
				ip = v
			case "port":
				port = v
			}
		}
		return ip + ":" + port
	}
	t.Fatalf("primary %s has no replica:\n%s", primary, info)
	return ""
}

func assertRole(t *testing.T, addr, want string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	role, err := c.Do(ctx(t), "ROLE").Slice()
	if err != nil || len(role) == 0 || role[0] != want {
		t.Fatalf("ROLE of %s = %v, %v; want %s", addr, role, err, want)
	}
}

// TestSentinelFailoverUnderWrites fails over while a client writes: every
// write acknowledged before Failover was called survives, and the writer
// keeps going on the new primary.
func TestSentinelFailoverUnderWrites(t *testing.T) {
	s := StartSentinel(t)
	c := s.NewClient(t)

	var (
		mu    sync.Mutex
		acked []string
		fails atomic.Int64
		stop  = make(chan struct{})
		done  = make(chan struct{})
	)
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := fmt.Sprintf("w%05d", i)
			if err := c.Set(wctx, k, i, 0).Err(); err != nil {
				fails.Add(1) // expected while the primary changes
				time.Sleep(10 * time.Millisecond)
				continue
			}
			mu.Lock()
			acked = append(acked, k)
			mu.Unlock()
		}
	}()
	waitAcked := func(n int) []string {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			got := slices.Clone(acked)
			mu.Unlock()
			if len(got) >= n {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d writes acknowledged", len(got))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	before := waitAcked(50)
	if err := s.Failover(); err != nil {
		t.Fatal(err)
	}
	after := len(waitAcked(len(before) + 1)) // any write after Failover returned…
	waitAcked(after + 50)                    // …and many more: the writer recovered
	close(stop)
	<-done
	t.Logf("%d writes acknowledged before the failover, %d failed during it", len(before), fails.Load())

	primary, err := s.PrimaryAddr()
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: primary, DisableIdentity: true})
	defer direct.Close()
	vals, err := direct.MGet(ctx(t), before...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v == nil {
			t.Errorf("%s was acknowledged before Failover and is lost", before[i])
		}
	}
}

func TestStartSentinelWithoutBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	t.Setenv("CI", "")
	f := runFake(t, func(tb testing.TB) { StartSentinel(tb) })
	if f.fatal != "" || !strings.Contains(f.skip, "redis-sentinel not found") || !strings.Contains(f.skip, "CI=true") {
		t.Fatalf("outside CI: fatal %q, skip %q; want a skip naming the missing binary", f.fatal, f.skip)
	}

	t.Setenv("CI", "true")
	f = runFake(t, func(tb testing.TB) { StartSentinel(tb) })
	if f.skip != "" || !strings.Contains(f.fatal, "redis-sentinel not found") {
		t.Fatalf("on CI: fatal %q, skip %q; want a failure, never a skip", f.fatal, f.skip)
	}
}

func TestPollReturnsLastError(t *testing.T) {
	c, cancel := context.WithTimeout(t.Context(), 120*time.Millisecond)
	defer cancel()
	calls := 0
	err := poll(c, func() error { calls++; return fmt.Errorf("attempt %d", calls) })
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("attempt %d", calls)) || calls < 2 {
		t.Fatalf("poll = %v after %d calls", err, calls)
	}
	if !errors.Is(err, c.Err()) {
		t.Fatalf("poll error %v does not wrap the context's", err)
	}
}
