package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testCLI is a cli with its own environment and config file, as after
// the global flags were parsed.
func testCLI(t *testing.T, env map[string]string) (*cli, *bytes.Buffer) {
	t.Helper()
	var errb bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["AGENCYCTL_CONFIG"]; !ok {
		env["AGENCYCTL_CONFIG"] = filepath.Join(t.TempDir(), "config.yaml")
	}
	c := newCLI(Env{Streams: Streams{In: strings.NewReader(""), Out: &bytes.Buffer{}, Err: &errb}, Getenv: func(k string) string { return env[k] }})
	c.out = newPrinter(c.env, "")
	return c, &errb
}

func TestEndpointPrecedence(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte("file-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := saveConfig(cfgPath, &configFile{CurrentContext: "a", Contexts: map[string]*contextEntry{
		"a": {Addr: "127.0.0.1:7001", Token: "context-token-0123456789"},
		"b": {Addr: "https://agencyd.example", TokenFile: tokFile},
	}}); err != nil {
		t.Fatal(err)
	}

	c, errb := testCLI(t, map[string]string{"AGENCYCTL_CONFIG": cfgPath})
	ep, err := c.resolveEndpoint()
	if err != nil || ep.addr != "127.0.0.1:7001" || ep.token != "context-token-0123456789" || ep.tls || errb.Len() != 0 {
		t.Fatalf("context a: %+v %v %q", ep, err, errb)
	}

	c, _ = testCLI(t, map[string]string{"AGENCYCTL_CONFIG": cfgPath, "AGENCY_ADDR": "localhost:7002", "AGENCY_TOKEN": "env-token-0123456789"})
	if ep, err = c.resolveEndpoint(); err != nil || ep.addr != "localhost:7002" || ep.token != "env-token-0123456789" {
		t.Fatalf("environment: %+v %v", ep, err)
	}

	c, _ = testCLI(t, map[string]string{"AGENCYCTL_CONFIG": cfgPath, "AGENCY_ADDR": "localhost:7002", "AGENCY_TOKEN": "env-token-0123456789"})
	c.addr, c.tokenFile = "127.0.0.1:7003", tokFile
	if ep, err = c.resolveEndpoint(); err != nil || ep.addr != "127.0.0.1:7003" || ep.token != "file-token-0123456789" {
		t.Fatalf("flags: %+v %v", ep, err)
	}

	// https:// turns TLS on and defaults the port; no plaintext warning.
	c, errb = testCLI(t, map[string]string{"AGENCYCTL_CONFIG": cfgPath, "AGENCY_CONTEXT": "b"})
	if ep, err = c.resolveEndpoint(); err != nil || ep.addr != "agencyd.example:443" || !ep.tls || ep.token != "file-token-0123456789" || errb.Len() != 0 {
		t.Fatalf("context b: %+v %v %q", ep, err, errb)
	}

	// Plaintext to a non-loopback address warns, without the token.
	c, errb = testCLI(t, map[string]string{"AGENCY_ADDR": "10.1.2.3:9090", "AGENCY_TOKEN": "env-token-0123456789"})
	if _, err = c.resolveEndpoint(); err != nil || !strings.Contains(errb.String(), "warning: plaintext connection to 10.1.2.3:9090") || strings.Contains(errb.String(), "env-token") {
		t.Fatalf("plaintext warning: %v %q", err, errb)
	}

	// Bad settings are usage errors.
	for _, env := range []map[string]string{
		{"AGENCY_ADDR": "no-port"},
		{"AGENCY_CONTEXT": "missing"},
	} {
		c, _ = testCLI(t, env)
		if _, err := c.resolveEndpoint(); err == nil || err.(*exitError).code != exitUsage {
			t.Errorf("%v: %v", env, err)
		}
	}
	c, _ = testCLI(t, nil)
	c.tokenFile = filepath.Join(dir, "absent")
	if _, err := c.resolveEndpoint(); err == nil || strings.Contains(err.Error(), "token-0123") {
		t.Errorf("absent token file: %v", err)
	}
}

func TestScrub(t *testing.T) {
	c, _ := testCLI(t, nil)
	c.token = "secret-token-value"
	if got := c.scrub("refused secret-token-value!"); got != "refused [token]!" {
		t.Errorf("scrub = %q", got)
	}
}

func TestProgressShowsFailures(t *testing.T) {
	c, errb := testCLI(t, nil)
	if c.newProgress(10, "onboarding") != nil {
		t.Fatal("a progress bar without a terminal")
	}
	c.out.ttyOut, c.out.ttyErr = true, true // as on a terminal
	p := c.newProgress(10, "onboarding")
	p.update(10, 4, 1)
	p.finish(false)
	if out := errb.String(); !strings.Contains(out, "onboarding (1 failed)") || !strings.Contains(out, "(4/10, ") {
		t.Errorf("progress: %q", out)
	}
}

func TestHTTPBase(t *testing.T) {
	for _, tc := range []struct {
		addr, flag, env, ctx string
		tls                  bool
		want                 string
	}{
		{addr: "127.0.0.1:9090", want: "http://127.0.0.1:8080"},
		{addr: "agencyd.example:443", tls: true, want: "https://agencyd.example:8080"},
		{addr: "127.0.0.1:9090", ctx: "10.0.0.1:8081", want: "http://10.0.0.1:8081"},
		{addr: "127.0.0.1:9090", env: "127.0.0.1:18080", ctx: "10.0.0.1:8081", want: "http://127.0.0.1:18080"},
		{addr: "127.0.0.1:9090", flag: "https://api.example", env: "127.0.0.1:18080", want: "https://api.example:443"},
		{addr: "h:9090", tls: true, flag: "h:8443", want: "https://h:8443"},
		{addr: "h:9090", tls: true, flag: "http://h:8080/", want: "http://h:8080"},
	} {
		got, err := httpBase(&endpoint{addr: tc.addr, tls: tc.tls}, &contextEntry{HTTPAddr: tc.ctx}, tc.flag, tc.env)
		if err != nil || got != tc.want {
			t.Errorf("%+v: got %q, %v", tc, got, err)
		}
	}
	if _, err := httpBase(&endpoint{addr: "h:1"}, &contextEntry{}, "http://h:8080/v1", ""); err == nil {
		t.Error("a path in --http-addr was accepted")
	}
}
