package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// readyTimeout bounds how long a fresh redis-server (or sentinel) may take
// to answer PING.
const readyTimeout = 5 * time.Second

// errNotFound carries the exact message tests should show when neither a
// redis-server binary nor REDIS_URL is available.
var errNotFound = errors.New("redis-server not found: install it (apt-get install redis-server) or set REDIS_URL")

// process is one running redis-server or redis-sentinel.
type process struct {
	addr     string
	port     int
	cmd      *exec.Cmd
	out      *tailBuffer
	done     chan struct{} // closed once the process has exited and been reaped
	stopOnce sync.Once
}

// spawn starts redis-server on a loopback port with dir as its working and
// data directory and config as further directives ("--appendonly", "yes"),
// and waits until it answers PING. port 0 picks a free port; a fixed port is
// used by Server.Restart to come back on the same address.
func spawn(ctx context.Context, dir string, port int, config []string) (*process, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNotFound
	}
	return spawnWith(ctx, bin, dir, port, func(p int) ([]string, error) {
		return append([]string{"--bind", "127.0.0.1", "--port", strconv.Itoa(p), "--dir", dir}, config...), nil
	})
}

// spawnWith starts bin with the arguments args returns for the chosen port
// (it may write a config file) and waits until the process answers PING.
func spawnWith(ctx context.Context, bin, dir string, port int, args func(port int) ([]string, error)) (*process, error) {
	// Picking a free port and then binding it is racy with other processes,
	// so retry a few times when the server dies during startup.
	const attempts = 3
	var lastErr error
	for range attempts {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		argv, err := args(p)
		if err != nil {
			return nil, err
		}
		proc, exited, err := launch(ctx, bin, argv, dir, p)
		if err == nil {
			return proc, nil
		}
		lastErr = err
		if !exited || port != 0 {
			break
		}
	}
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts one process listening on port. exited reports whether a
// failure was the process dying on its own (worth retrying on another port).
func launch(ctx context.Context, bin string, args []string, dir string, port int) (proc *process, exited bool, err error) {
	name := filepath.Base(bin)
	p := &process{
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		port: port,
		out:  &tailBuffer{max: 64 << 10},
		done: make(chan struct{}),
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	setParentDeathSignal(p.cmd)

	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the forking *thread* exits, not the process,
		// so pin this goroutine to its thread until the child is reaped.
		runtime.LockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = p.cmd.Wait() // a killed server exits non-zero; that is expected
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, false, fmt.Errorf("redistest: starting %s: %w", name, err)
	}

	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ping(ctx, p.addr); err == nil {
			return p, false, nil
		}
		select {
		case <-p.done:
			return nil, true, fmt.Errorf("redistest: %s on %s exited during startup; output:\n%s", name, p.addr, p.out)
		case <-ctx.Done():
			p.stop()
			return nil, false, fmt.Errorf("redistest: %s on %s did not answer PING within %s: %w; output:\n%s", name, p.addr, readyTimeout, ctx.Err(), p.out)
		case <-tick.C:
		}
	}
}

// ping speaks raw RESP so readiness does not depend on client retry logic.
func ping(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: 250 * time.Millisecond}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(250 * time.Millisecond)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return fmt.Errorf("write PING: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read PING reply: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("unexpected PING reply %q", line)
	}
	return nil
}

// stop kills the process (SIGKILL: tests use it to simulate a crash; with
// AOF every acknowledged write is already on disk) and waits until it has
// been reaped. Idempotent.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		_ = p.cmd.Process.Kill() // fails only if already exited
		<-p.done
	})
}

// tailBuffer keeps the last max bytes of the server's output for error
// messages; the server writes to it from exec's copying goroutine.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
