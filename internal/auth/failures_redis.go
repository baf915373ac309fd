package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisFailureOptions configures RedisFailures.
type RedisFailureOptions struct {
	// Prefix of every key (the deployment's --redis-prefix).
	Prefix string
	Limits FailureLimits
	// Timeout bounds one call (default 250ms).
	Timeout time.Duration
}

// RedisFailures is the FailureCounter replicas share: one GCRA bucket per
// key, <prefix>{authfail}:<key>, holding its theoretical arrival time in
// Unix milliseconds and expiring once the bucket has refilled. One script
// decides all of a call's keys at once (they share the {authfail} hash
// tag). The clock is the caller's, so replicas' clocks must agree to well
// within Limits.Every (seconds); tests drive it with a fake clock.
type RedisFailures struct {
	rdb     redis.UniversalClient
	prefix  string
	limits  FailureLimits
	timeout time.Duration
}

// NewRedisFailures returns a FailureCounter on Redis.
func NewRedisFailures(rdb redis.UniversalClient, o RedisFailureOptions) *RedisFailures {
	if o.Timeout <= 0 {
		o.Timeout = 250 * time.Millisecond
	}
	return &RedisFailures{rdb: rdb, prefix: o.Prefix + "{authfail}:", limits: o.Limits.withDefaults(), timeout: o.Timeout}
}

// failScript: KEYS are the buckets; ARGV now (ms), interval (ms), tolerance
// (ms), TTL slack (ms). Returns 0 when the failure was recorded on every
// key, else the wait in ms (nothing recorded).
var failScript = redis.NewScript(`
local now, every, tol, slack = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local tats, wait = {}, 0
for i, k in ipairs(KEYS) do
  local tat = tonumber(redis.call('GET', k) or 0) or 0
  if tat < now then tat = now end
  tats[i] = tat
  if tat - tol > now and tat - tol - now > wait then wait = tat - tol - now end
end
if wait > 0 then return wait end
for i, k in ipairs(KEYS) do
  local tat = tats[i] + every
  redis.call('SET', k, tat, 'PX', tat - now + slack)
end
return 0
`)

// Fail implements FailureCounter.
func (r *RedisFailures) Fail(ctx context.Context, now time.Time, keys []string) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	res, err := failScript.Run(ctx, r.rdb, full, now.UnixMilli(), r.limits.Every.Milliseconds(),
		r.limits.tolerance().Milliseconds(), time.Second.Milliseconds()).Result()
	if err != nil && strings.Contains(err.Error(), "NOSCRIPT") && !strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// Some managed Redis prefix the error; Script.Run falls back only
		// on a leading NOSCRIPT.
		res, err = failScript.Eval(ctx, r.rdb, full, now.UnixMilli(), r.limits.Every.Milliseconds(),
			r.limits.tolerance().Milliseconds(), time.Second.Milliseconds()).Result()
	}
	if err != nil {
		return 0, fmt.Errorf("auth: count failed authentication: %w", err)
	}
	ms, ok := res.(int64)
	if !ok {
		return 0, errors.New("auth: count failed authentication: unexpected reply")
	}
	return time.Duration(ms) * time.Millisecond, nil
}
