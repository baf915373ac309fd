package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// clientOptions returns what newRedisClient built; both kinds are *redis.Client.
func clientOptions(t *testing.T, rdb redis.UniversalClient) *redis.Options {
	t.Helper()
	c, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("client is %T, want *redis.Client", rdb)
	}
	t.Cleanup(func() { _ = c.Close() })
	o := c.Options()
	// The rate limiter runs calls inline only on a *redis.Client with
	// ContextTimeoutEnabled; both kinds of URL must qualify.
	if !o.ContextTimeoutEnabled || !o.DisableIdentity {
		t.Errorf("ContextTimeoutEnabled %v, DisableIdentity %v; want both", o.ContextTimeoutEnabled, o.DisableIdentity)
	}
	return o
}

func TestNewRedisClientSingleServer(t *testing.T) {
	rdb, addr, err := newRedisClient("redis://:hunter2@127.0.0.1:6390/2")
	if err != nil {
		t.Fatal(err)
	}
	o := clientOptions(t, rdb)
	if o.Addr != "127.0.0.1:6390" || o.DB != 2 || o.Password != "hunter2" || addr != "127.0.0.1:6390" {
		t.Fatalf("addr %q, options %s db %d", addr, o.Addr, o.DB)
	}
}

func TestNewRedisClientSentinel(t *testing.T) {
	rdb, addr, err := newRedisClient("redis://:sentinel-pw@127.0.0.1:26379/1?master_name=mymaster&addr=127.0.0.1:26380&addr=127.0.0.1:26381&password=hunter2")
	if err != nil {
		t.Fatal(err)
	}
	o := clientOptions(t, rdb)
	if o.Addr != "FailoverClient" || o.DB != 1 || o.Password != "hunter2" {
		t.Fatalf("options %s db %d: want a failover client of db 1 with the master's password", o.Addr, o.DB)
	}
	if redisDB(rdb) != 1 {
		t.Errorf("redisDB = %d", redisDB(rdb))
	}
	const want = "master mymaster via sentinels 127.0.0.1:26379,127.0.0.1:26380,127.0.0.1:26381"
	if addr != want {
		t.Fatalf("addr = %q, want %q", addr, want)
	}
}

func TestNewRedisClientInvalid(t *testing.T) {
	cases := []struct{ url, want string }{
		{"redis://user:hunter2@[bad", "not a valid Redis URL"},
		{"http://user:hunter2@h:1", "invalid URL scheme"},
		{"redis://:hunter2@h:1/x", "invalid database number"},
		{"redis://:hunter2@h:1/0?bogus=1", "unexpected option: bogus"},
		{"redis://:hunter2@h:1/0?master_name=m&max_retries=hunter2", "max_retries"},
		{"redis://h:1/0?master_name=m&password=hunter2&pool_size=hunter2", "pool_size"},
		{"unix://:hunter2@/tmp/redis.sock?master_name=m", "invalid URL scheme"},
		{"redis://:hunter2@h:1/0?master_name=", "master_name must not be empty"},
		{"redis://:hunter2@h:1/0?master_name=m&replica_only=true", "not supported"},
		{"redis://:hunter2@h:1/0?master_name=m&route_randomly=true", "not supported"},
		{"redis://:hunter2@h:1/0?master_name=m&route_by_latency=true", "not supported"},
	}
	for _, tc := range cases {
		rdb, _, err := newRedisClient(tc.url)
		if err == nil {
			_ = rdb.Close()
			t.Errorf("%s: no error", tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %q, want mention of %q", err, tc.want)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the password: %q", err)
		}
	}
}

func TestOpenStoreSentinelUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close() // nothing listens there now
	cfg := &config.Config{RedisURL: "redis://:hunter2@" + dead + "/0?master_name=mymaster", RedisPrefix: "x:", AuditRetention: time.Hour}
	start := time.Now()
	_, _, err = openStore(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "via sentinels "+dead+" is not reachable") {
		t.Fatalf("openStore = %v, want the sentinels named as unreachable", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("failing took %v", d)
	}
}

// TestOpenStoreSentinel runs the Redis pieces agencyd builds from a Sentinel
// --redis-url (store and rate limiter) across a failover. The limiter's
// script is not in the new primary's cache, so this covers the NOSCRIPT
// fallback too.
func TestOpenStoreSentinel(t *testing.T) {
	s := redistest.StartSentinel(t)
	cfg := &config.Config{RedisURL: s.URL, RedisPrefix: redistest.Prefix(t), AuditRetention: time.Hour,
		RateRPS: 100, RateRPM: 6000, RateHeadroom: 0.8}
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	st, rdb, err := openStore(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clientOptions(t, rdb)
	limiter, err := newLimiter(cfg, rdb, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Workspaces().Create(ctx, storetest.Workspace("acme")); err != nil {
		t.Fatal(err)
	}
	if res, err := limiter.Allow(ctx, []string{"acme"}, 1); err != nil || !res.Allowed {
		t.Fatalf("Allow before failover = %+v, %v", res, err)
	}

	if err := s.Failover(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Workspaces().Get(ctx, "workspaces/acme"); err != nil {
		t.Fatalf("Get after failover: %v", err)
	}
	if err := st.Workspaces().Create(ctx, storetest.Workspace("beta")); err != nil {
		t.Fatalf("Create after failover: %v", err)
	}
	if err := st.Workspaces().Create(ctx, storetest.Workspace("acme")); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("Create of a workspace written before the failover = %v, want ErrAlreadyExists", err)
	}
	if res, err := limiter.Allow(ctx, []string{"acme"}, 1); err != nil || !res.Allowed {
		t.Fatalf("Allow after failover = %+v, %v", res, err)
	}
}
