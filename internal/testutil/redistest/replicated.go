//go:build unix

package redistest

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Replicated is a primary with one replica and no sentinels, for tests of
// what has reached the replica when a call returns. Pause stops the
// replica's process (SIGSTOP): it stays connected, so the primary's writes
// queue up on the link unacknowledged, as on a replica that lags. Resume
// lets it catch up.
type Replicated struct {
	// Primary and Replica are clients of each node, closed when the test ends.
	Primary, Replica *redis.Client
	replica          *process
}

// StartReplicated starts the pair and returns once the replica is in sync.
func StartReplicated(t testing.TB) *Replicated {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sentinelSetupTimeout)
	defer cancel()
	start := func(config ...string) *process {
		dir := t.TempDir()
		config = append(ServerOptions{}.config(), append([]string{"--repl-diskless-sync-delay", "0"}, config...)...)
		proc, err := spawn(ctx, dir, 0, config)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(proc.stop) // SIGKILL ends a stopped process too
		return proc
	}
	primary := start()
	replica := start("--replicaof", "127.0.0.1", strconv.Itoa(primary.port))
	if err := waitReplicated(ctx, primary.addr); err != nil {
		t.Fatalf("redistest: replica of %s never synced: %v", primary.addr, err)
	}
	return &Replicated{
		Primary: newClient(t, &redis.Options{Addr: primary.addr}),
		Replica: newClient(t, &redis.Options{Addr: replica.addr}),
		replica: replica,
	}
}

// Pause stops the replica's process until Resume.
func (r *Replicated) Pause() error { return r.replica.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues the replica's process.
func (r *Replicated) Resume() error { return r.replica.cmd.Process.Signal(syscall.SIGCONT) }

// Lagging runs write while the replica is stopped, resumes the replica
// after lag, and reports whether write returned only after that: true for
// a write that waits for the replica (WAIT), false for one that does not.
// write's error fails the test.
func (r *Replicated) Lagging(t testing.TB, lag time.Duration, write func() error) (waited bool) {
	t.Helper()
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	var resumed atomic.Bool
	done := make(chan error, 1)
	go func() {
		time.Sleep(lag)
		resumed.Store(true)
		done <- r.Resume()
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
