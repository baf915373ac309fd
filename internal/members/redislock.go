package members

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of RedisOptions.
const (
	DefaultTTL     = 10 * time.Second
	DefaultTimeout = 500 * time.Millisecond
	DefaultMinWait = 10 * time.Millisecond
	DefaultMaxWait = 250 * time.Millisecond
)

// The scripts are immutable: a Script only holds its source and SHA1. Each
// touches one key, so they also run on Redis Cluster.
var (
	// renewScript extends the lease if the key still holds our token.
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
	// checkScript answers the lease's PTTL if the key holds our token, else -3.
	checkScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PTTL', KEYS[1])
end
return -3`)
	// releaseScript deletes the key only if it holds our token.
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

// RedisOptions configure a RedisLocker.
type RedisOptions struct {
	// Prefix is prepended to every key (deployments sharing a Redis use
	// distinct prefixes).
	Prefix string
	// TTL is the lease's time to live, renewed every TTL/3 while held
	// (default DefaultTTL): how long a crashed or partitioned holder blocks
	// the workspace's member changes.
	TTL time.Duration
	// Margin is the least TTL a lease must have left for Check to pass
	// (default TTL/4), so a holder that paused (GC, a stalled host) and lost
	// its renewals does not write after its lease is gone. Less than TTL/2.
	Margin time.Duration
	// Timeout bounds each Redis call (default DefaultTimeout).
	Timeout time.Duration
	// MinWait and MaxWait bound the jittered, doubling pause between tries
	// while another holder has the lock (defaults DefaultMinWait, DefaultMaxWait).
	MinWait, MaxWait time.Duration

	// noRenew stops renewals; only this package's tests set it, to play a
	// holder that paused.
	noRenew bool
}

// RedisLocker is a Locker shared by every replica on one Redis: a lease is
// the key LockKey(prefix, workspace) holding a random token, set with
// SET NX PX, renewed by compare-token-and-PEXPIRE and released by
// compare-and-delete. Redis errors fail closed: Lock and Check return
// errors wrapping ErrUnavailable, and nothing is written.
type RedisLocker struct {
	client   redis.UniversalClient
	prefix   string
	ttl      time.Duration
	margin   time.Duration
	timeout  time.Duration
	min, max time.Duration
	noRenew  bool
}

var _ Locker = (*RedisLocker)(nil)

// NewRedisLocker returns a Locker on client.
func NewRedisLocker(client redis.UniversalClient, opts RedisOptions) (*RedisLocker, error) {
	if client == nil {
		return nil, errors.New("members: nil Redis client")
	}
	l := &RedisLocker{client: client, prefix: opts.Prefix, ttl: opts.TTL, margin: opts.Margin,
		timeout: opts.Timeout, min: opts.MinWait, max: opts.MaxWait, noRenew: opts.noRenew}
	if l.ttl == 0 {
		l.ttl = DefaultTTL
	}
	if l.margin == 0 {
		l.margin = l.ttl / 4
	}
	if l.timeout == 0 {
		l.timeout = DefaultTimeout
	}
	if l.min == 0 {
		l.min = DefaultMinWait
	}
	if l.max == 0 {
		l.max = max(DefaultMaxWait, l.min)
	}
	switch {
	case l.ttl < 3*time.Millisecond:
		return nil, fmt.Errorf("members: lock TTL %v is too short", l.ttl)
	case l.margin < 0 || l.margin >= l.ttl/2:
		return nil, fmt.Errorf("members: lock margin %v must be in [0, TTL/2)", l.margin)
	case l.timeout < 0 || l.min < 0 || l.max < l.min:
		return nil, fmt.Errorf("members: bad lock timings (timeout %v, waits %v..%v)", l.timeout, l.min, l.max)
	}
	return l, nil
}

// LockKey is the Redis key of workspace's member lock.
func LockKey(prefix, workspace string) string {
	return prefix + "lock:members:{" + workspace + "}"
}

// Lock implements Locker: it tries SET NX, and while another holder has the
// key waits with jittered doubling pauses until ctx ends (ErrBusy, ABORTED).
// A Redis error ends the wait at once (ErrUnavailable, UNAVAILABLE).
func (l *RedisLocker) Lock(ctx context.Context, workspace string) (Lease, error) {
	key := LockKey(l.prefix, workspace)
	token, err := newToken()
	if err != nil {
		return nil, unavailable(workspace, err)
	}
	wait := l.min
	for {
		if err := ctx.Err(); err != nil {
			return nil, busy(workspace, err)
		}
		ok, err := l.acquire(ctx, key, token)
		if err != nil {
			// SET may have reached Redis even though its answer did not
			// reach us: give back what may be ours rather than block the
			// workspace for a whole TTL.
			l.release(ctx, key, token)
			if ctx.Err() != nil {
				return nil, busy(workspace, ctx.Err())
			}
			return nil, unavailable(workspace, err)
		}
		if ok {
			return l.lease(ctx, workspace, key, token), nil
		}
		if !sleep(ctx, jitter(wait)) {
			return nil, busy(workspace, ctx.Err())
		}
		wait = min(2*wait, l.max)
	}
}

func (l *RedisLocker) acquire(ctx context.Context, key, token string) (bool, error) {
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	err := l.client.SetArgs(cctx, key, token, redis.SetArgs{Mode: "NX", TTL: l.ttl}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil):
		return false, nil
	}
	return false, fmt.Errorf("SET NX %s: %w", key, err)
}

// release deletes key if it holds token; it works with a cancelled ctx.
func (l *RedisLocker) release(ctx context.Context, key, token string) (held bool, err error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.timeout)
	defer cancel()
	n, err := run(cctx, l.client, releaseScript, key, token)
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// run runs a one-key script, falling back to EVAL when the error merely
// contains NOSCRIPT (Run only falls back when it starts with it).
func run(ctx context.Context, c redis.UniversalClient, s *redis.Script, key string, args ...any) (int64, error) {
	n, err := s.Run(ctx, c, []string{key}, args...).Int64()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") {
		n, err = s.Eval(ctx, c, []string{key}, args...).Int64()
	}
	if err != nil {
		return 0, fmt.Errorf("lock script on %s: %w", key, err)
	}
	return n, nil
}

// lease starts the renewer of a freshly acquired lease. The renewer stops at
// Unlock, when the lease is found lost, or when ctx (the Lock call's) ends:
// a caller that gave up writes nothing, and its lease then simply expires.
func (l *RedisLocker) lease(ctx context.Context, workspace, key, token string) *redisLease {
	s := &redisLease{l: l, workspace: workspace, key: key, token: token,
		stop: make(chan struct{}), done: make(chan struct{})}
	if l.noRenew {
		close(s.done)
		return s
	}
	go s.renew(ctx)
	return s
}

type redisLease struct {
	l                     *RedisLocker
	workspace, key, token string
	stop, done            chan struct{}
	lost                  atomic.Bool // the renewer found the key taken over or gone

	once      sync.Once
	unlockErr error
}

func (s *redisLease) renew(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.l.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, s.l.timeout)
		n, err := run(cctx, s.l.client, renewScript, s.key, s.token, s.l.ttl.Milliseconds())
		cancel()
		if err == nil && n == 0 {
			s.lost.Store(true)
			return
		}
		// A failed renewal is retried at the next tick; meanwhile Check sees
		// the TTL run down and fails closed.
	}
}

// Check implements Lease: the key still holds our token and has more than
// the margin left.
func (s *redisLease) Check(ctx context.Context) error {
	if s.lost.Load() {
		return lost(s.workspace, "taken over or expired")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("members: checking the lock of %s: %w", s.workspace, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.l.timeout)
	defer cancel()
	pttl, err := run(cctx, s.l.client, checkScript, s.key, s.token)
	switch {
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("members: checking the lock of %s: %w", s.workspace, ctx.Err())
	case err != nil:
		return unavailable(s.workspace, err)
	case pttl == -3:
		s.lost.Store(true)
		return lost(s.workspace, "taken over or expired")
	case pttl <= s.l.margin.Milliseconds():
		// Still ours but about to expire (renewals failing or the holder
		// paused), or without a TTL at all (-1): fail closed.
		return lost(s.workspace, fmt.Sprintf("%d ms left, want more than %v", pttl, s.l.margin))
	}
	return nil
}

// Unlock implements Lease.
func (s *redisLease) Unlock(ctx context.Context) error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		held, err := s.l.release(ctx, s.key, s.token)
		switch {
		case err != nil:
			s.unlockErr = unavailable(s.workspace, err)
		case !held:
			s.unlockErr = lost(s.workspace, "already expired or taken over at unlock")
		}
	})
	return s.unlockErr
}

// newToken returns a random lease token.
func newToken() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("lock token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
