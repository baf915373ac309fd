package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// buildAgencyd compiles the real binary once per test.
func buildAgencyd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agencyd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd      *exec.Cmd
	httpAddr string
	stderr   *lockedBuilder
	done     chan error
}

// lockedBuilder is written by the stderr reader while the test reads it.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func start(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	p := &proc{httpAddr: freeAddr(t), stderr: &lockedBuilder{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--grpc-addr", freeAddr(t), "--http-addr", p.httpAddr, "--instantly-url", "http://127.0.0.1:1")
	p.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p.cmd.Stderr = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.stderr.WriteString(sc.Text() + "\n")
		}
		close(lines)
	}()
	go func() {
		err := p.cmd.Wait()
		pw.Close()
		<-lines
		p.done <- err
	}()
	t.Cleanup(func() { _ = p.cmd.Process.Kill() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + p.httpAddr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("agencyd did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (p *proc) status(t *testing.T, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.httpAddr+"/v1/workspaces", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stop sends SIGTERM and expects a clean exit.
func (p *proc) stop(t *testing.T) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit within 20s of SIGTERM")
	}
	return p.stderr.String()
}

var tokenRE = regexp.MustCompile(`(agp_[A-Za-z0-9_-]{43})`)

// TestGeneratedBootstrapTokenAndSIGTERM: on the embedded backend a token is
// generated, printed once (outside the JSON log) and works; SIGTERM exits 0.
func TestGeneratedBootstrapTokenAndSIGTERM(t *testing.T) {
	bin := buildAgencyd(t)
	p := start(t, bin, "AGENCY_BOOTSTRAP_TOKEN=", "AGENCY_MASTER_KEY=")
	time.Sleep(100 * time.Millisecond)
	m := tokenRE.FindStringSubmatch(p.stderr.String())
	if m == nil {
		t.Fatalf("no token printed:\n%s", p.stderr.String())
	}
	if got := p.status(t, m[1]); got != http.StatusOK {
		t.Fatalf("printed token refused: %d", got)
	}
	if got := p.status(t, "agp_wrong"); got != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", got)
	}
	out := p.stop(t)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "{") && strings.Contains(line, m[1]) {
			t.Fatalf("token in a log line: %s", line)
		}
	}
	if !strings.Contains(out, "EMBEDDED IN-MEMORY BACKEND") || !strings.Contains(out, "shutting down") {
		t.Fatalf("expected the backend warning and a shutdown line:\n%s", out)
	}
}

// TestBootstrapTokenIsPrintedOncePerDeployment: on Redis, a second start
// (or another replica) accepts the first token and prints none.
func TestBootstrapTokenIsPrintedOncePerDeployment(t *testing.T) {
	bin := buildAgencyd(t)
	rdb := redistest.Start(t)
	env := []string{"AGENCY_BOOTSTRAP_TOKEN=", "AGENCY_MASTER_KEY=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"AGENCY_REDIS_URL=redis://" + rdb.Options().Addr + "/0", "AGENCY_REDIS_PREFIX=" + redistest.Prefix(t)}
	first := start(t, bin, env...)
	time.Sleep(100 * time.Millisecond)
	m := tokenRE.FindStringSubmatch(first.stderr.String())
	if m == nil {
		t.Fatalf("no token printed:\n%s", first.stderr.String())
	}
	first.stop(t)
	second := start(t, bin, env...)
	if got := second.status(t, m[1]); got != http.StatusOK {
		t.Fatalf("first token refused by the second start: %d", got)
	}
	if out := second.stop(t); tokenRE.MatchString(out) {
		t.Fatalf("second start printed a token:\n%s", out)
	}
}

// TestRedisRequiresMasterKey: sealed state must survive restarts, so a
// random key is refused on Redis, with one clear line.
func TestRedisRequiresMasterKey(t *testing.T) {
	bin := buildAgencyd(t)
	cmd := exec.Command(bin, "--redis-url", "redis://"+redistest.Start(t).Options().Addr+"/0")
	cmd.Env = append(os.Environ(), "AGENCY_MASTER_KEY=", "AGENCY_MASTER_KEY_FILE=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "master key is required") {
		t.Fatalf("want a refusal naming the master key, got %v:\n%s", err, out)
	}
}
