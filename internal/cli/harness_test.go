package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/app"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// update rewrites testdata/*.golden from what the binary prints now.
var update = flag.Bool("update", false, "rewrite the golden files")

// agencyctlBin is the real binary, built once for the whole package.
var agencyctlBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "agencyctl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agencyctlBin = filepath.Join(dir, "agencyctl")
	build := exec.Command("go", "build", "-o", agencyctlBin, "github.com/agencyplane/agencyplane/cmd/agencyctl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/agencyctl: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const adminToken = "cli-test-admin-token-0123456789"

// env is one agencyd (embedded backend, in-process through internal/app,
// as cmd/agencyd assembles it) and the simulator it talks to.
type env struct {
	t     *testing.T
	sim   *sim.Server
	addr  string   // agencyd's gRPC address
	http  string   // agencyd's HTTP address (host:port)
	dir   string   // HOME and the config file of agencyctl
	extra []string // more environment variables for the binary
}

// startEnv starts the simulator and agencyd; agencydArgs are more agencyd
// flags (e.g. "--reconcile-interval", "1s").
func startEnv(t *testing.T, simCfg sim.Config, agencydArgs ...string) *env {
	t.Helper()
	s := sim.New(simCfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(append([]string{
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--instantly-url", hs.URL, "--shutdown-timeout", "5s",
	}, agencydArgs...), func(k string) string {
		switch k {
		case "AGENCY_BOOTSTRAP_TOKEN":
			return adminToken
		case "AGENCY_MASTER_KEY":
			return base64.StdEncoding.EncodeToString(key)
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	a, err := app.New(context.Background(), cfg, logger, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agencyd: %v", err)
		}
	})
	waitHealthy(t, "http://"+a.Server.HTTPAddr())
	return &env{t: t, sim: s, addr: a.Server.GRPCAddr(), http: a.Server.HTTPAddr(), dir: t.TempDir()}
}

func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("agencyd did not become healthy")
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\n--- stdout\n%s--- stderr\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// environ is the binary's environment: agencyd's address and the admin
// token from the environment, a private HOME and config file.
func (e *env) environ() []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + e.dir,
		"XDG_CONFIG_HOME=" + filepath.Join(e.dir, ".config"),
		"AGENCY_ADDR=" + e.addr,
		"AGENCY_TOKEN=" + adminToken,
		"AGENCYCTL_CONFIG=" + filepath.Join(e.dir, "config.yaml"),
	}, e.extra...)
}

// run runs agencyctl with args and stdin; stdout and stderr are pipes, so
// the binary sees no terminal.
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	return runBin(e.t, e.environ(), stdin, args...)
}

func runBin(t *testing.T, environ []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, agencyctlBin, args...)
	cmd.Env = environ
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run agencyctl %v: %v", args, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// mustRun runs and wants exit code want.
func (e *env) mustRun(want int, stdin string, args ...string) result {
	e.t.Helper()
	r := e.run(stdin, args...)
	if r.code != want {
		e.t.Fatalf("agencyctl %s: want exit %d, got %s", strings.Join(args, " "), want, r)
	}
	return r
}

// writeFile writes a file in the env's directory and returns its path.
func (e *env) writeFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// simWorkspace is one simulator workspace as the import CSV names it.
type simWorkspace struct {
	id, name, key, team string
}

// newWorkspaces creates simulator workspaces "<prefix>-<i>" (with an owner
// "owner-<name>@client.test") in team.
func (e *env) newWorkspaces(prefix, team string, n int) []simWorkspace {
	var out []simWorkspace
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s-%d", prefix, i)
		id, key := e.sim.CreateWorkspaceWithOwner(name, "owner-"+name+"@client.test")
		out = append(out, simWorkspace{id: id, name: name, key: key, team: team})
	}
	return out
}

// importCSV is the `workspaces import` file of ws.
func importCSV(ws []simWorkspace) string {
	var b strings.Builder
	b.WriteString("workspace_id,display_name,api_key,labels\n")
	for _, w := range ws {
		fmt.Fprintf(&b, "%s,%s,%s,team=%s;client=%s\n", w.name, strings.ToUpper(w.name[:1])+w.name[1:], w.key, w.team, w.name)
	}
	return b.String()
}

// register imports ws into agencyd through the binary.
func (e *env) register(ws []simWorkspace) {
	e.t.Helper()
	e.mustRun(0, "", "workspaces", "import", "--csv", e.writeFile("ws-"+ws[0].name+".csv", importCSV(ws)))
}

// requests is how many API requests the simulator has seen since its last
// reset, over every workspace.
func (e *env) requests() int64 {
	var n int64
	for _, s := range e.sim.Stats() {
		n += s.Requests
	}
	return n
}

var (
	opNameRE = regexp.MustCompile(`operations/[a-z0-9]+`)
	tsRE     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	uuidRE   = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	fpRE     = regexp.MustCompile(`sha256:[0-9a-f]{16}`)
)

// normalize replaces what changes between runs (operation names, times,
// ids, fingerprints) with placeholders of the same width, so tables stay
// aligned in golden files.
func normalize(s string) string {
	pad := func(re *regexp.Regexp, word string) {
		s = re.ReplaceAllStringFunc(s, func(m string) string {
			if len(m) <= len(word) {
				return word
			}
			return word + strings.Repeat("_", len(m)-len(word))
		})
	}
	pad(opNameRE, "operations/OP")
	pad(tsRE, "TIME")
	pad(uuidRE, "UUID")
	pad(fpRE, "sha256:FP")
	return s
}

// golden compares got with testdata/<name>.golden (or rewrites it with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	got = normalize(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (run with -update to accept):\n--- want\n%s--- got\n%s", path, want, got)
	}
}
