package app

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// newRedisClient builds the client --redis-url names. A redis:// or
// rediss:// URL with a master_name parameter is a Sentinel deployment, in
// go-redis's failover URL form (redis.ParseFailoverURL):
//
//	redis://[user:pass@]sentinel1:26379[/db]?master_name=mymaster&addr=sentinel2:26379&addr=sentinel3:26379
//
// The userinfo authenticates to the sentinels; the username and password
// parameters authenticate to the Redis servers. Any other URL is one server
// (redis.ParseURL). Both kinds are *redis.Client underneath, so the rate
// limiter runs its calls inline either way.
//
// addr describes the target for logs and errors, without credentials. No
// error quotes the URL: it may hold a password.
func newRedisClient(rawURL string) (rdb redis.UniversalClient, addr string, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", errors.New("--redis-url is not a valid Redis URL") // url.Parse's error quotes it
	}
	if !u.Query().Has("master_name") {
		opts, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, "", invalidRedisURL(err, u)
		}
		opts.DisableIdentity = true       // CLIENT SETINFO needs Redis 7.2; older servers log noise
		opts.ContextTimeoutEnabled = true // per-call timeouts (rate limiter, store) bound the socket too
		opts.DialerRetries = dialerRetries
		return redis.NewClient(opts), opts.Addr, nil
	}
	opts, err := redis.ParseFailoverURL(rawURL)
	if err != nil {
		return nil, "", invalidRedisURL(err, u)
	}
	switch {
	case opts.MasterName == "":
		return nil, "", errors.New("--redis-url: master_name must not be empty")
	case opts.ReplicaOnly || opts.RouteByLatency || opts.RouteRandomly:
		// agencyd writes on every path; NewFailoverClient also panics on the
		// routing options, which need a cluster-style client.
		return nil, "", errors.New("--redis-url: replica_only, route_by_latency and route_randomly are not supported (agencyd writes through the primary)")
	}
	opts.DisableIdentity = true // on sentinels and servers alike
	opts.ContextTimeoutEnabled = true
	opts.DialerRetries = dialerRetries
	addr = fmt.Sprintf("master %s via sentinels %s", opts.MasterName, strings.Join(opts.SentinelAddrs, ","))
	return redis.NewFailoverClient(opts), addr, nil
}

// dialerRetries replaces go-redis's 5 dials 100 ms apart per new
// connection (1 = one dial): with Redis refusing connections they would
// spend a call's whole round-trip budget, where our callers fail closed at
// once and retry on their own terms (the limiter, operations): the
// README's Redis-down bound. go-redis still retries the command itself
// (MaxRetries), which is what carries calls over a Redis restart.
const dialerRetries = 1

// redisDB is the database number rdb selects, for logs.
func redisDB(rdb redis.UniversalClient) int {
	if c, ok := rdb.(*redis.Client); ok { // what newRedisClient builds, Sentinel or not
		return c.Options().DB
	}
	return 0
}

// invalidRedisURL reports go-redis's reason for refusing the URL with every
// password in it blanked out. The reason is copied, not wrapped: a wrapped
// error would print the unredacted text.
func invalidRedisURL(err error, u *url.URL) error {
	msg := err.Error()
	secrets := u.Query()["password"]
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return fmt.Errorf("--redis-url is not a valid Redis URL: %s", msg)
}
