package config

import (
	"io"
	"strings"
	"testing"
	"time"
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

func TestInvalid(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--instantly-url", "ftp://x"}, nil, "--instantly-url"},
		{[]string{"--redis-url", "http://user:hunter2@x"}, nil, "--redis-url"},
		{[]string{"--log-level", "loud"}, nil, "--log-level"},
		{[]string{"--log-format", "xml"}, nil, "--log-format"},
		{nil, map[string]string{"AGENCY_SHUTDOWN_TIMEOUT": "soon"}, "AGENCY_SHUTDOWN_TIMEOUT"},
		{nil, map[string]string{"AGENCY_BOOTSTRAP_TOKEN": "short"}, "AGENCY_BOOTSTRAP_TOKEN"},
		{[]string{"extra"}, nil, "unexpected argument"},
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
