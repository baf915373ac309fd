package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/replication"
)

// RedisStore keeps records in Redis, shared by every replica: one string
// per key, "<prefix>idem:{<principal hash>}:<request_id>", holding
// "p <fingerprint> <claim>" while pending and "d <fingerprint> <sealed
// answer>" when done, with a PX expiry. Each script touches one key, so it
// also runs on Redis Cluster.
type RedisStore struct {
	client      redis.UniversalClient
	prefix      string
	timeout     time.Duration
	replication replication.Waiter

	claim, complete, release *redis.Script
}

var _ Store = (*RedisStore)(nil)

// RedisOptions configure a RedisStore.
type RedisOptions struct {
	// Prefix is prepended to every key.
	Prefix string
	// Timeout bounds each Redis call (default DefaultTimeout), so a stalled
	// Redis fails a call quickly instead of hanging it.
	Timeout time.Duration
	// Replication makes Complete wait for replicas: a stored answer lost
	// in a failover would leave its claim pending, and a retry would
	// start the request's effect a second time once the claim expired.
	Replication replication.Waiter
}

// NewRedisStore returns a Store on client.
func NewRedisStore(client redis.UniversalClient, opts RedisOptions) (*RedisStore, error) {
	if client == nil {
		return nil, errors.New("idempotency: nil Redis client")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	return &RedisStore{
		client: client, prefix: opts.Prefix, timeout: opts.Timeout, replication: opts.Replication,
		// GET then SET, atomically: SET NX GET would need Redis 7.
		claim: redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`),
		complete: redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`),
		release: redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`),
	}, nil
}

func encode(r *Record) string {
	if r.Pending() {
		return "p " + r.Fingerprint + " " + r.Claim
	}
	return "d " + r.Fingerprint + " " + r.Response
}

func decode(s string) (*Record, error) {
	parts := strings.SplitN(s, " ", 3)
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: malformed record", ErrUnavailable)
	}
	switch parts[0] {
	case "p":
		return &Record{Fingerprint: parts[1], Claim: parts[2]}, nil
	case "d":
		return &Record{Fingerprint: parts[1], Response: parts[2]}, nil
	}
	return nil, fmt.Errorf("%w: malformed record", ErrUnavailable)
}

func (s *RedisStore) unavailable(op string, err error) error {
	return fmt.Errorf("idempotency: %s: %w: %w", op, ErrUnavailable, err)
}

// Claim implements Store.
func (s *RedisStore) Claim(ctx context.Context, key string, pending *Record, ttl time.Duration) (*Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := s.claim.Run(ctx, s.client, []string{s.prefix + key}, encode(pending), max(ttl.Milliseconds(), 1)).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, s.unavailable("claim", err)
	}
	return decode(v)
}

// Complete implements Store.
func (s *RedisStore) Complete(ctx context.Context, key string, pending, done *Record, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout+s.replication.Budget())
	defer cancel()
	var n int
	err := s.replication.Do(ctx, s.client, "request_id answer", func(c redis.Cmdable) (err error) {
		n, err = s.complete.Run(ctx, c, []string{s.prefix + key}, encode(pending), encode(done), max(ttl.Milliseconds(), 1)).Int()
		return err
	})
	if err != nil {
		return false, s.unavailable("complete", err)
	}
	return n == 1, nil
}

// Release implements Store.
func (s *RedisStore) Release(ctx context.Context, key string, pending *Record) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.release.Run(ctx, s.client, []string{s.prefix + key}, encode(pending)).Err(); err != nil {
		return s.unavailable("release", err)
	}
	return nil
}
