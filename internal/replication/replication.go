// Package replication makes the Redis writes a failover must not lose wait
// until replicas have them. Redis replicates asynchronously: a primary that
// dies right after answering may take the write with it, and Sentinel then
// promotes a replica without it. WAIT closes that window for the writes
// that matter, at the cost of a round trip to a replica.
package replication

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Waiter is how chosen writes wait; the zero value waits for nothing.
type Waiter struct {
	// Replicas is how many replicas must acknowledge (0: none).
	Replicas int
	// Timeout bounds the wait (default 1s). Past it the write stands and
	// Logger warns: a replica that is down must not stop the service.
	Timeout time.Duration
	Logger  *slog.Logger
}

// Budget is how long Do may wait beyond the write itself: callers add it
// to the deadline of their Redis call.
func (w Waiter) Budget() time.Duration {
	if w.Replicas <= 0 {
		return 0
	}
	return w.timeout()
}

func (w Waiter) timeout() time.Duration {
	if w.Timeout <= 0 {
		return time.Second
	}
	return w.Timeout
}

// Do runs write and then waits for the replicas to acknowledge it. WAIT
// covers the writes of its own connection (and everything replicated
// before them), so write runs on one connection taken for the purpose.
// Clients other than *redis.Client (a single server or Sentinel, as agencyd
// builds them) are not waited on. write's error is returned as is; a short
// or failed wait is only logged, since the write is on the primary.
func (w Waiter) Do(ctx context.Context, rdb redis.UniversalClient, what string, write func(redis.Cmdable) error) error {
	c, ok := rdb.(*redis.Client)
	if w.Replicas <= 0 || !ok {
		return write(rdb)
	}
	conn := c.Conn()
	defer conn.Close()
	if err := write(conn); err != nil {
		return err
	}
	n, err := conn.Wait(ctx, w.Replicas, w.timeout()).Result()
	if w.Logger == nil {
		return nil
	}
	switch {
	case err != nil:
		w.Logger.WarnContext(ctx, "redis WAIT failed: a failover now could lose this write", "write", what, "error", err)
	case n < int64(w.Replicas):
		w.Logger.WarnContext(ctx, "redis replicas did not acknowledge a write in time: a failover now could lose it",
			"write", what, "acknowledged", n, "wanted", w.Replicas, "timeout", w.timeout())
	}
	return nil
}
