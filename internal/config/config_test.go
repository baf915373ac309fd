package config

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/service/fanoutsvc"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:9090" || c.HTTPAddr != "127.0.0.1:8080" || c.InstantlyURL != "https://api.instantly.ai" || c.RedisURL != "" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestEnvFillsUnsetFlagsAndFlagsWin(t *testing.T) {
	c, err := Load([]string{"--grpc-addr", "127.0.0.1:1"}, env(map[string]string{
		"AGENCY_GRPC_ADDR":        "127.0.0.1:2",
		"AGENCY_HTTP_ADDR":        "127.0.0.1:3",
		"AGENCY_SHUTDOWN_TIMEOUT": "3s",
		"AGENCY_REDIS_URL":        "redis://127.0.0.1:6379/0",
		"AGENCY_MASTER_KEY":       "k",
		"AGENCY_BOOTSTRAP_TOKEN":  "0123456789abcdef",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:1" || c.HTTPAddr != "127.0.0.1:3" || c.ShutdownTimeout != 3*time.Second ||
		c.RedisURL != "redis://127.0.0.1:6379/0" || c.MasterKey != "k" || c.BootstrapToken != "0123456789abcdef" {
		t.Fatalf("got %+v", c)
	}
}

func TestRedisURLForms(t *testing.T) {
	for _, u := range []string{
		"redis://127.0.0.1:6379/0",
		"rediss://user:pw@redis.internal:6380/2",
		"unix:///run/redis.sock?db=1",
		"redis://s1:26379/0?master_name=mymaster&addr=s2:26379&addr=s3:26379",
		"rediss://sentinel-user:pw@s1:26379/0?master_name=mymaster&addr=s2:26379&password=master-pw",
	} {
		if _, err := Load([]string{"--redis-url", u}, env(nil), io.Discard); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestInvalid(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--instantly-url", "ftp://x"}, nil, "--instantly-url"},
		{[]string{"--redis-url", "http://user:hunter2@x"}, nil, "--redis-url"},
		{[]string{"--redis-url", "unix://:hunter2@/run/redis.sock?master_name=mymaster"}, nil, "Sentinel URL"},
		{[]string{"--redis-url", "redis://:hunter2@s1:26379/0?master_name=&addr=s2:26379"}, nil, "Sentinel URL"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{nil, map[string]string{"AGENCY_SHUTDOWN_TIMEOUT": "soon"}, "AGENCY_SHUTDOWN_TIMEOUT"},
		{nil, map[string]string{"AGENCY_BOOTSTRAP_TOKEN": "short"}, "AGENCY_BOOTSTRAP_TOKEN"},
		{[]string{"extra"}, nil, "unexpected argument"},
		{[]string{"--redis-wait-replicas", "-2"}, nil, "--redis-wait-replicas"},
		{[]string{"--redis-wait-timeout", "0s"}, nil, "--redis-wait-timeout"},
	}
	for _, tc := range cases {
		_, err := Load(tc.args, env(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: err %v, want mention of %s", tc.args, tc.env, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error leaks the Redis password: %v", err)
		}
	}
}

// TestWaitReplicas: by default writes wait for one replica through
// Sentinel, none on a single server or the embedded backend; the flag wins.
func TestWaitReplicas(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"--redis-url", "redis://127.0.0.1:6379/0"}, 0},
		{[]string{"--redis-url", "redis://s1:26379/0?master_name=mymaster&addr=s2:26379"}, 1},
		{[]string{"--redis-url", "redis://s1:26379/0?master_name=mymaster", "--redis-wait-replicas", "0"}, 0},
		{[]string{"--redis-url", "redis://127.0.0.1:6379/0", "--redis-wait-replicas", "2"}, 2},
	}
	for _, tc := range cases {
		c, err := Load(tc.args, env(nil), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.WaitReplicas(); got != tc.want {
			t.Errorf("%v: WaitReplicas() = %d, want %d", tc.args, got, tc.want)
		}
		if c.RedisWaitTimeout != time.Second {
			t.Errorf("--redis-wait-timeout default %v", c.RedisWaitTimeout)
		}
	}
}

// TestMaxInflight: --max-inflight (AGENCY_MAX_INFLIGHT) caps the items in
// flight per replica, 2000 by default; --fanout-per-workspace is now the
// cap of the dynamic per-workspace limit, 256 by default.
func TestMaxInflight(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxInflight != 2000 || c.FanoutPerWorkspace != 256 {
		t.Fatalf("defaults: max-inflight %d, fanout-per-workspace %d", c.MaxInflight, c.FanoutPerWorkspace)
	}
	c, err = Load(nil, env(map[string]string{"AGENCY_MAX_INFLIGHT": "300"}), io.Discard)
	if err != nil || c.MaxInflight != 300 {
		t.Fatalf("from the environment: %v %v", c, err)
	}
	for _, args := range [][]string{{"--max-inflight", "0"}, {"--max-inflight", "1000001"}} {
		if _, err := Load(args, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--max-inflight") {
			t.Errorf("%v: err %v", args, err)
		}
	}
}

// TestDefaultsAreThePackages: a flag of a package's setting defaults to the
// package's own default (its Options.SetDefaults), so agencyd and a package
// used without flags (tests, tools) agree.
func TestDefaultsAreThePackages(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var e fanout.Options
	e.SetDefaults()
	if c.FanoutConcurrency != e.Concurrency || c.FanoutPerWorkspace != e.PerWorkspace || c.MaxInflight != e.MaxInflight {
		t.Fatalf("fan-out flags %d/%d/%d, engine defaults %d/%d/%d",
			c.FanoutConcurrency, c.FanoutPerWorkspace, c.MaxInflight, e.Concurrency, e.PerWorkspace, e.MaxInflight)
	}
	var b fanoutsvc.Options
	b.SetDefaults()
	if c.FanoutTimeout != b.DefaultTimeout {
		t.Fatalf("--fanout-timeout %v, FanoutService default %v", c.FanoutTimeout, b.DefaultTimeout)
	}
}
