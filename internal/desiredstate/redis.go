package desiredstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys (<prefix> = --redis-prefix): <prefix>{plan:<id>} (a plan, JSON, with
// its TTL) and <prefix>{plan:<id>}:apply (the operation applying it),
// sharing a hash tag because ClaimApply touches both;
// <prefix>desiredstate:applied (the last applied file),
// <prefix>desiredstate:drift (the last drift report),
// <prefix>desiredstate:leader (the reconciling replica's token, with a TTL)
// and <prefix>{removals:<op>} (an apply's removals per workspace).

// The scripts are immutable: a Script only holds its source and SHA1.
var (
	// claimScript: KEYS plan, apply; ARGV op, keep ms. Returns "" when
	// claimed, the holder otherwise, false when the plan is gone.
	claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local cur = redis.call('GET', KEYS[2])
if cur then return cur end
local keep = tonumber(ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < keep then redis.call('PEXPIRE', KEYS[1], keep) else keep = ttl end
redis.call('SET', KEYS[2], ARGV[1], 'PX', keep)
return ''`)
	// releaseScript deletes the claim if it is op's.
	releaseApplyScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	// reserveScript: KEYS hash; ARGV workspace, n, limit, ttl ms.
	reserveScript = redis.NewScript(`
local all = redis.call('HGETALL', KEYS[1])
local others = 0
for i = 1, #all, 2 do
  if all[i] ~= ARGV[1] then others = others + tonumber(all[i+1]) end
end
if others + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1`)
	// leadScript: KEYS leader; ARGV token, ttl ms. Renews our lease or
	// takes a free one.
	leadScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0`)
	resignScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
)

// opTimeout bounds one Redis call.
const opTimeout = 2 * time.Second

// Redis is the Store on Redis, shared by every replica.
type Redis struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on rdb under prefix.
func NewRedis(rdb redis.UniversalClient, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix}
}

func (r *Redis) planKey(id string) string  { return r.prefix + "{plan:" + id + "}" }
func (r *Redis) applyKey(id string) string { return r.prefix + "{plan:" + id + "}:apply" }
func (r *Redis) key(name string) string    { return r.prefix + "desiredstate:" + name }

func (r *Redis) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("desiredstate: redis %s: %w: %w", op, ErrUnavailable, err)
}

// SavePlan implements Store.
func (r *Redis) SavePlan(ctx context.Context, p *PlanRecord, ttl time.Duration) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return r.wrap("save plan", r.rdb.Set(ctx, r.planKey(p.ID), data, ttl).Err())
}

// GetPlan implements Store.
func (r *Redis) GetPlan(ctx context.Context, id string) (*PlanRecord, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	vals, err := r.rdb.MGet(ctx, r.planKey(id), r.applyKey(id)).Result()
	if err != nil {
		return nil, r.wrap("get plan", err)
	}
	data, ok := vals[0].(string)
	if !ok {
		return nil, ErrNotFound
	}
	p := &PlanRecord{}
	if err := json.Unmarshal([]byte(data), p); err != nil {
		return nil, fmt.Errorf("desiredstate: stored plan %s: %w", id, err)
	}
	p.ApplyOperation, _ = vals[1].(string)
	return p, nil
}

// ClaimApply implements Store.
func (r *Redis) ClaimApply(ctx context.Context, id, op string, keep time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	res, err := claimScript.Run(ctx, r.rdb, []string{r.planKey(id), r.applyKey(id)}, op, keep.Milliseconds()).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", r.wrap("claim plan", err)
	}
	holder, _ := res.(string)
	return holder, nil
}

// ReleaseApply implements Store.
func (r *Redis) ReleaseApply(ctx context.Context, id, op string) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return r.wrap("release plan", releaseApplyScript.Run(ctx, r.rdb, []string{r.applyKey(id)}, op).Err())
}

func (r *Redis) setJSON(ctx context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return r.wrap("set "+key, r.rdb.Set(ctx, key, data, 0).Err())
}

// getJSON reads key into v and reports whether it existed.
func (r *Redis) getJSON(ctx context.Context, key string, v any) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	data, err := r.rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, r.wrap("get "+key, err)
	}
	return true, json.Unmarshal(data, v)
}

// SetApplied implements Store.
func (r *Redis) SetApplied(ctx context.Context, a *Applied) error {
	return r.setJSON(ctx, r.key("applied"), a)
}

// LastApplied implements Store.
func (r *Redis) LastApplied(ctx context.Context) (*Applied, error) {
	a := &Applied{}
	ok, err := r.getJSON(ctx, r.key("applied"), a)
	if !ok || err != nil {
		return nil, err
	}
	return a, nil
}

// SaveDrift implements Store.
func (r *Redis) SaveDrift(ctx context.Context, d *DriftReport) error {
	return r.setJSON(ctx, r.key("drift"), d)
}

// Drift implements Store.
func (r *Redis) Drift(ctx context.Context) (*DriftReport, error) {
	d := &DriftReport{}
	ok, err := r.getJSON(ctx, r.key("drift"), d)
	if !ok || err != nil {
		return nil, err
	}
	return d, nil
}

// ReserveRemovals implements Store.
func (r *Redis) ReserveRemovals(ctx context.Context, op, workspace string, n, limit int, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	ok, err := reserveScript.Run(ctx, r.rdb, []string{r.prefix + "{removals:" + op + "}"}, workspace, n, limit, ttl.Milliseconds()).Int()
	if err != nil {
		return false, r.wrap("reserve removals", err)
	}
	return ok == 1, nil
}

// RedisLeader is the Leader on Redis: a key holding this replica's random
// token, taken with SET NX PX and renewed by compare-and-PEXPIRE at every
// reconcile, so a crashed leader is replaced within its TTL.
type RedisLeader struct {
	rdb   redis.UniversalClient
	key   string
	token string
}

// NewRedisLeader returns a Leader on rdb under prefix.
func NewRedisLeader(rdb redis.UniversalClient, prefix string) *RedisLeader {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &RedisLeader{rdb: rdb, key: prefix + "desiredstate:leader", token: hex.EncodeToString(b[:])}
}

// Lead implements Leader.
func (l *RedisLeader) Lead(ctx context.Context, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	n, err := leadScript.Run(ctx, l.rdb, []string{l.key}, l.token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("desiredstate: leadership: %w: %w", ErrUnavailable, err)
	}
	return n == 1, nil
}

// Resign implements Leader.
func (l *RedisLeader) Resign(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return resignScript.Run(ctx, l.rdb, []string{l.key}, l.token).Err()
}
