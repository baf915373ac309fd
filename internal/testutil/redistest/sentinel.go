package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// masterName is the name StartSentinel's sentinels monitor.
const masterName = "mymaster"

const (
	// sentinelSetupTimeout bounds StartSentinel: spawning five processes, the
	// first full sync and the sentinels finding each other (hello messages go
	// out every 2 s).
	sentinelSetupTimeout = 20 * time.Second
	// failoverTimeout bounds Failover: promotion (INFO every 1 s during a
	// failover), every sentinel learning the new primary (hello, 2 s) and the
	// old primary resyncing as a replica.
	failoverTimeout = 20 * time.Second
	// pollInterval is how often setup and Failover re-check a condition.
	pollInterval = 50 * time.Millisecond
	// syncChannel is published to on a primary before WAIT: PUBLISH is
	// replicated but stores nothing, so syncing leaves no key behind.
	syncChannel = "__redistest__:sync"
)

// errSentinelNotFound is what tests show when no binary can run a sentinel.
var errSentinelNotFound = errors.New("redis-sentinel not found: install it (apt-get install redis-sentinel) to run the Sentinel tests")

// Sentinel is a Redis Sentinel deployment for one test: a primary, one
// replica and three sentinels (quorum 2, down-after 1 s), each on a free
// loopback port with its own temporary directory, and all killed when the
// test ends (or, on Linux, when the test binary dies). Nothing is persisted.
type Sentinel struct {
	// MasterName is the monitored master's name, "mymaster".
	MasterName string
	// Addrs are the three sentinels, "127.0.0.1:port".
	Addrs []string
	// URL reaches the deployment through its sentinels in go-redis's failover
	// URL form, which --redis-url accepts:
	// redis://127.0.0.1:S1/0?master_name=mymaster&addr=127.0.0.1:S2&addr=127.0.0.1:S3
	URL string

	mu sync.Mutex // serializes Failover
}

// sentinelCommand returns how to run a sentinel: redis-sentinel, else
// redis-server --sentinel (the same program; Debian packages the
// redis-sentinel name separately).
func sentinelCommand() (bin string, mode []string, err error) {
	if bin, err := exec.LookPath("redis-sentinel"); err == nil {
		return bin, nil, nil
	}
	if bin, err := exec.LookPath("redis-server"); err == nil {
		return bin, []string{"--sentinel"}, nil
	}
	return "", nil, errSentinelNotFound
}

// StartSentinel starts a Sentinel deployment and returns once the replica is
// in sync and every sentinel knows the primary, the replica and the other
// two sentinels. Without a sentinel binary the test is skipped, except with
// CI=true, where it fails: CI must not pass by skipping.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	bin, mode, err := sentinelCommand()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err.Error() + " (skipped outside CI; with CI=true this fails)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), sentinelSetupTimeout)
	defer cancel()

	startNode := func(config ...string) *process {
		dir := t.TempDir() // registered before the process, so removed after it stops
		// Either node may be the primary. A full sync would otherwise wait
		// 5 s for more replicas to share it.
		config = append(ServerOptions{}.config(), append([]string{"--repl-diskless-sync-delay", "0"}, config...)...)
		proc, err := spawn(ctx, dir, 0, config)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proc.stop)
		return proc
	}
	// The sentinels find the replica in the primary's INFO and each other
	// through hello messages, so start them last, with the pair in sync.
	primary := startNode()
	startNode("--replicaof", "127.0.0.1", strconv.Itoa(primary.port))
	if err := waitReplicated(ctx, primary.addr); err != nil {
		t.Fatalf("redistest: replica of %s never synced: %v", primary.addr, err)
	}

	s := &Sentinel{MasterName: masterName}
	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf") // sentinels rewrite their config: one each
		proc, err := spawnWith(ctx, bin, dir, 0, func(port int) ([]string, error) {
			text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %q\n", port, dir) +
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2\n", masterName, primary.port) +
				"sentinel down-after-milliseconds " + masterName + " 1000\n" +
				"sentinel failover-timeout " + masterName + " 3000\n" +
				"sentinel parallel-syncs " + masterName + " 1\n"
			if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
				return nil, fmt.Errorf("redistest: writing sentinel config: %w", err)
			}
			return append([]string{conf}, mode...), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proc.stop)
		s.Addrs = append(s.Addrs, proc.addr)
	}
	if err := s.waitSentinelsReady(ctx, primary.addr); err != nil {
		t.Fatalf("redistest: sentinels not ready: %v", err)
	}
	q := "master_name=" + masterName
	for _, a := range s.Addrs[1:] {
		q += "&addr=" + a
	}
	s.URL = "redis://" + s.Addrs[0] + "/0?" + q
	return s
}

// FailoverOptions returns fresh options for a go-redis failover client of
// this deployment, set up like agencyd's (no CLIENT SETINFO, context
// deadlines honoured).
func (s *Sentinel) FailoverOptions() *redis.FailoverOptions {
	return &redis.FailoverOptions{
		MasterName:            s.MasterName,
		SentinelAddrs:         slices.Clone(s.Addrs),
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
	}
}

// NewClient returns a go-redis failover client of this deployment that
// answered PING, closed when the test ends. It follows Failover on its own.
func (s *Sentinel) NewClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewFailoverClient(s.FailoverOptions())
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: PING through sentinels %v: %v", s.Addrs, err)
	}
	return c
}

// PrimaryAddr returns the primary's address as every sentinel reports it, or
// an error while they disagree (a failover is still spreading).
func (s *Sentinel) PrimaryAddr() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	return s.agreedPrimary(ctx)
}

// Failover makes the replica the primary (SENTINEL FAILOVER) and returns once
// every sentinel reports the new primary, it accepts writes, and the old
// primary has resynced as its replica, so Failover can be called again.
//
// Before it starts, Failover waits until the replica has every write the
// primary had acknowledged, so nothing acknowledged before the call is lost.
// Writes acknowledged while it runs may be lost, as in production: the old
// primary keeps taking writes until the switch (about a second here) and
// drops them when it resyncs as a replica. A write that WAIT confirmed on the
// replica survives. Failover is safe to call from any goroutine, e.g. while a
// test writes.
func (s *Sentinel) Failover() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()

	old, err := s.agreedPrimary(ctx)
	if err != nil {
		return fmt.Errorf("redistest: failover: %w", err)
	}
	if err := waitReplicated(ctx, old); err != nil {
		return fmt.Errorf("redistest: failover: replica of %s never caught up: %w", old, err)
	}
	if err := s.startFailover(ctx); err != nil {
		return fmt.Errorf("redistest: failover: %w", err)
	}
	var primary string
	err = poll(ctx, func() error {
		addr, err := s.agreedPrimary(ctx)
		if err == nil && addr == old {
			err = fmt.Errorf("sentinels still report %s", old)
		}
		primary = addr
		return err
	})
	if err != nil {
		return fmt.Errorf("redistest: failover: %w", err)
	}
	// Sentinel would demote the old primary itself, but only some 10 s later
	// (+convert-to-slave waits for a fresh INFO); doing it now is the same
	// command, and it stops stale clients from writing to the old primary.
	if err := replicaOf(ctx, old, primary); err != nil {
		return fmt.Errorf("redistest: failover: demoting %s: %w", old, err)
	}
	if err := waitWritable(ctx, primary); err != nil {
		return fmt.Errorf("redistest: failover: new primary %s: %w", primary, err)
	}
	if err := waitReplicated(ctx, primary); err != nil {
		return fmt.Errorf("redistest: failover: %s never resynced from %s: %w", old, primary, err)
	}
	return nil
}

// startFailover asks the sentinels, in turn, to fail over. A sentinel may
// briefly refuse (no fresh replica info yet, or a failover still finishing).
func (s *Sentinel) startFailover(ctx context.Context) error {
	i := 0
	return poll(ctx, func() error {
		addr := s.Addrs[i%len(s.Addrs)]
		i++
		return withSentinel(addr, func(c *redis.SentinelClient) error {
			return c.Failover(ctx, s.MasterName).Err()
		})
	})
}

// agreedPrimary returns the primary every sentinel reports, or an error if
// they disagree (a failover is still spreading) or one does not answer.
func (s *Sentinel) agreedPrimary(ctx context.Context) (string, error) {
	var agreed string
	for _, a := range s.Addrs {
		var addr string
		err := withSentinel(a, func(c *redis.SentinelClient) error {
			hp, err := c.GetMasterAddrByName(ctx, s.MasterName).Result()
			if err != nil {
				return err
			}
			if len(hp) != 2 {
				return fmt.Errorf("unexpected reply %q", hp)
			}
			addr = net.JoinHostPort(hp[0], hp[1])
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("sentinel %s: %w", a, err)
		}
		if agreed != "" && addr != agreed {
			return "", fmt.Errorf("sentinels disagree on the primary: %s and %s", agreed, addr)
		}
		agreed = addr
	}
	return agreed, nil
}

// waitSentinelsReady waits until every sentinel reports primary, knows a
// healthy replica with its link up, and knows the other sentinels (which a
// failover after killing the primary needs, to reach quorum).
func (s *Sentinel) waitSentinelsReady(ctx context.Context, primary string) error {
	return poll(ctx, func() error {
		got, err := s.agreedPrimary(ctx)
		if err != nil {
			return err
		}
		if got != primary {
			return fmt.Errorf("sentinels report primary %s, want %s", got, primary)
		}
		for _, a := range s.Addrs {
			err := withSentinel(a, func(c *redis.SentinelClient) error {
				replicas, err := c.Replicas(ctx, s.MasterName).Result()
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(replicas, func(r map[string]string) bool {
					return r["flags"] == "slave" && r["master-link-status"] == "ok"
				}) {
					return fmt.Errorf("no healthy replica yet: %v", replicas)
				}
				peers, err := c.Sentinels(ctx, s.MasterName).Result()
				if err != nil {
					return err
				}
				if len(peers) < len(s.Addrs)-1 {
					return fmt.Errorf("knows %d other sentinels, want %d", len(peers), len(s.Addrs)-1)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", a, err)
			}
		}
		return nil
	})
}

// withSentinel runs fn with a short-lived client of one sentinel.
func withSentinel(addr string, fn func(*redis.SentinelClient) error) error {
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	return fn(c)
}

// withNode runs fn with a short-lived client of one redis-server.
func withNode(addr string, fn func(*redis.Client) error) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	return fn(c)
}

// waitReplicated waits until a replica of primary has acknowledged
// everything the primary had acknowledged when it was called: a PUBLISH
// lands in the replication stream after all of it (and stores nothing), and
// WAIT on the same connection returns once a replica has acknowledged that
// far. One pipeline keeps both on one connection.
func waitReplicated(ctx context.Context, primary string) error {
	return withNode(primary, func(c *redis.Client) error {
		return poll(ctx, func() error {
			var wait *redis.Cmd
			_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Publish(ctx, syncChannel, "")
				wait = p.Do(ctx, "WAIT", 1, 500) // replicas, ms (well within ReadTimeout)
				return nil
			})
			if err != nil {
				return fmt.Errorf("PUBLISH+WAIT: %w", err)
			}
			if n, err := wait.Int64(); err != nil || n < 1 {
				return errors.New("WAIT: no replica acknowledged")
			}
			return nil
		})
	})
}

// waitWritable waits until addr says it is a primary and takes a write
// (PUBLISH, which a replica refuses as well).
func waitWritable(ctx context.Context, addr string) error {
	return withNode(addr, func(c *redis.Client) error {
		return poll(ctx, func() error {
			role, err := c.Do(ctx, "ROLE").Slice()
			if err != nil {
				return fmt.Errorf("ROLE: %w", err)
			}
			if len(role) == 0 || role[0] != "master" {
				return fmt.Errorf("role is %v", role)
			}
			return c.Publish(ctx, syncChannel, "").Err()
		})
	})
}

// replicaOf makes the redis-server at addr a replica of primary.
func replicaOf(ctx context.Context, addr, primary string) error {
	host, port, err := net.SplitHostPort(primary)
	if err != nil {
		return fmt.Errorf("primary address %q: %w", primary, err)
	}
	return withNode(addr, func(c *redis.Client) error {
		return c.ReplicaOf(ctx, host, port).Err()
	})
}

// poll calls fn until it succeeds or ctx ends, returning fn's last error.
func poll(ctx context.Context, fn func() error) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}
