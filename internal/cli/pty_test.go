package cli_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// ptyRun is agencyctl on a pseudo-terminal: stdin, stdout and stderr are
// the terminal, as when a person types the command.
type ptyRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startPTY(t *testing.T, environ []string, args ...string) *ptyRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, agencyctlBin, args...)
	cmd.Env = append(environ, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	p := &ptyRun{t: t, cmd: cmd, tty: tty, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil { // EIO once the child has exited
				return
			}
		}
	}()
	t.Cleanup(func() { tty.Close() })
	return p
}

func (p *ptyRun) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the terminal shows s.
func (p *ptyRun) waitFor(s string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q:\n%q", s, p.output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *ptyRun) write(s string) {
	p.t.Helper()
	if _, err := p.tty.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// wait returns the exit code once the command has ended.
func (p *ptyRun) wait() int {
	p.t.Helper()
	err := p.cmd.Wait()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		p.t.Fatalf("wait: %v", err)
	}
	return ee.ExitCode()
}

var barRE = regexp.MustCompile(`\[[=> ]+\] \(\d+/15, \d+ items/(s|min|hr)\)`)

// TestProgressOnTerminal: on a terminal, onboarding asks for confirmation,
// draws a live progress bar, and Ctrl-C detaches with the command that
// re-attaches; the operation goes on.
func TestProgressOnTerminal(t *testing.T) {
	e := startEnv(t, sim.Config{Latency: 250 * time.Millisecond})
	e.register(e.newWorkspaces("tty", "sdr-tty", 3))

	p := startPTY(t, e.environ(), "onboard", "--csv", examplePeople, "-l", "team=sdr-tty")
	p.waitFor("[y/N]")
	p.write("y\n")
	p.waitFor("following operations/")
	p.waitFor("onboarding")
	p.write("\x03") // Ctrl-C
	if code := p.wait(); code != 130 {
		t.Fatalf("Ctrl-C: exit %d, want 130:\n%q", code, p.output())
	}
	out := p.output()
	if !barRE.MatchString(out) {
		t.Errorf("no progress bar (done/total, rate) on the terminal:\n%q", out)
	}
	m := regexp.MustCompile(`agencyctl ops watch (operations/[a-z0-9]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no re-attach command after Ctrl-C:\n%q", out)
	}

	// Re-attaching follows the same operation to its end.
	w := startPTY(t, e.environ(), "ops", "watch", m[1])
	if code := w.wait(); code != 0 {
		t.Fatalf("ops watch: exit %d:\n%q", code, w.output())
	}
	if !strings.Contains(w.output(), "15 items: 15 succeeded, 0 failed") || !regexp.MustCompile(`\(15/15, \d+ items/`).MatchString(w.output()) {
		t.Errorf("ops watch report:\n%q", w.output())
	}

	// Colour on a terminal, never with NO_COLOR; none without a terminal.
	colored := startPTY(t, e.environ(), "workspaces", "list")
	if colored.wait() != 0 || !strings.Contains(colored.output(), "\x1b[") {
		t.Errorf("no colour on a terminal:\n%q", colored.output())
	}
	plain := startPTY(t, append(e.environ(), "NO_COLOR=1"), "workspaces", "list")
	if plain.wait() != 0 || strings.Contains(plain.output(), "\x1b[") {
		t.Errorf("colour despite NO_COLOR:\n%q", plain.output())
	}
	if r := e.mustRun(0, "", "workspaces", "list"); strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("colour without a terminal:\n%q", r.stdout)
	}
}

// TestNoProgressWithoutTerminal: with pipes, the same onboarding draws
// nothing but the report.
func TestNoProgressWithoutTerminal(t *testing.T) {
	e := startEnv(t, sim.Config{Latency: 50 * time.Millisecond})
	e.register(e.newWorkspaces("pipe", "sdr-pipe", 3))
	r := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-pipe", "--yes")
	all := r.stdout + r.stderr
	if barRE.MatchString(all) || strings.Contains(all, "\r") || strings.Contains(all, "\x1b[") || strings.Contains(all, "items/") {
		t.Errorf("progress drawn without a terminal:\n%q", all)
	}
	if !strings.Contains(r.stdout, "15 items: 15 succeeded, 0 failed") {
		t.Errorf("report: %s", r)
	}
}
