package main

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
)

func runHealthcheck(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := healthcheck(args, func(k string) string { return env[k] }, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestHealthcheckAnswers(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)

	if code, out, errOut := runHealthcheck(t, map[string]string{"AGENCY_HTTP_ADDR": addr}); code != 0 || !strings.Contains(out, "ready") {
		t.Fatalf("ready server: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The server's listen address 0.0.0.0:port is probed on loopback.
	if code, _, errOut := runHealthcheck(t, map[string]string{"AGENCY_HTTP_ADDR": "0.0.0.0:" + port}); code != 0 {
		t.Fatalf("wildcard address: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runHealthcheck(t, nil, "--http-addr", ":"+port); code != 0 {
		t.Fatalf("--http-addr :port: exit %d, stderr %q", code, errOut)
	}
	status = http.StatusServiceUnavailable
	if code, _, errOut := runHealthcheck(t, map[string]string{"AGENCY_HTTP_ADDR": addr}); code != 1 || !strings.Contains(errOut, "HTTP 503") {
		t.Fatalf("not ready: exit %d, stderr %q", code, errOut)
	}
	srv.Close()
	if code, _, _ := runHealthcheck(t, map[string]string{"AGENCY_HTTP_ADDR": addr}); code != 1 {
		t.Fatalf("no server: exit %d, want 1", code)
	}
	if code, _, _ := runHealthcheck(t, nil, "--http-addr", "nonsense"); code != 2 {
		t.Fatalf("bad address: exit %d, want 2", code)
	}
}

// The real binary's subcommand, as the container's HEALTHCHECK runs it,
// against a real agencyd: 0 while it serves, 1 once it is gone.
func TestHealthcheckSubcommand(t *testing.T) {
	bin := buildAgencyd(t)
	p := start(t, bin, "AGENCY_BOOTSTRAP_TOKEN=", "AGENCY_MASTER_KEY=")
	check := func() (int, string) {
		cmd := exec.Command(bin, "healthcheck")
		cmd.Env = []string{"AGENCY_HTTP_ADDR=" + p.httpAddr}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := check(); code != 0 || !strings.Contains(out, `"ready"`) {
		t.Fatalf("healthcheck of a running agencyd: exit %d: %s", code, out)
	}
	p.stop(t)
	if code, out := check(); code != 1 {
		t.Fatalf("healthcheck of a stopped agencyd: exit %d: %s", code, out)
	}
}
