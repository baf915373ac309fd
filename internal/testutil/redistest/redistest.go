// Package redistest gives tests a real Redis.
//
// Start returns a client to a redis-server shared by all tests in the
// package's test binary (or to $REDIS_URL when set). Because tests share one
// database, each test must namespace its keys with Prefix. A package that
// calls Start MUST stop the shared server from TestMain:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
//
// Start fails the test if Main was not called, so a forgotten TestMain cannot
// leak a server process.
//
// StartServer starts a private server for one test, which the test may Stop
// (and Restart) to exercise fault handling; it needs no TestMain.
// StartServerWith(t, ServerOptions{AOF: true}) makes that server durable, so a
// test can Kill it mid-operation and check that nothing acknowledged is lost.
// StartSentinel starts a Sentinel deployment (primary, replica, three
// sentinels) whose Failover a test can trigger.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// shared is the one lazily started server per test binary. It is this
// package's only mutable package-level state, and unavoidably so: tests in a
// binary can only share a process through it, and Main must find it to stop it.
var shared sharedServer

type sharedServer struct {
	mainCalled atomic.Bool

	once sync.Once
	dir  string
	proc *process
	err  error
}

// addr starts the shared server on first use.
func (s *sharedServer) addr() (string, error) {
	s.once.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-*")
		if err != nil {
			s.err = fmt.Errorf("redistest: creating server directory: %w", err)
			return
		}
		s.dir = dir
		// Background, not a test's context: the server outlives the test that
		// happened to start it.
		s.proc, s.err = spawn(context.Background(), dir, 0, ServerOptions{}.config())
	})
	if s.err != nil {
		return "", s.err
	}
	return s.proc.addr, nil
}

// shutdown stops the shared server if it was started. It runs after m.Run,
// when no test can still be calling addr.
func (s *sharedServer) shutdown() {
	if s.proc != nil {
		s.proc.stop()
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// Main runs the package's tests and then stops the shared server. Call it
// from TestMain in every package that uses Start. It does not return.
func Main(m *testing.M) { MainThen(m, nil) }

// MainThen is Main with a suite-wide check that runs after the tests (with
// their exit code) and may turn a pass into a failure.
func MainThen(m *testing.M, after func(code int) int) {
	shared.mainCalled.Store(true)
	code := m.Run()
	if after != nil {
		code = after(code)
	}
	shared.shutdown()
	os.Exit(code)
}

// Start returns a client for the shared server, or for $REDIS_URL when set.
// The client is closed when the test ends. Nothing is flushed: tests share the
// database (possibly a developer's), so use Prefix for every key.
func Start(t testing.TB) *redis.Client {
	t.Helper()
	if !shared.mainCalled.Load() {
		t.Fatal("redistest: call redistest.Main(m) from TestMain in this package before using Start")
	}
	var opts *redis.Options
	if url := os.Getenv("REDIS_URL"); url != "" {
		o, err := redis.ParseURL(url)
		if err != nil {
			// The URL may hold a password, so do not echo it.
			t.Fatalf("redistest: REDIS_URL is not a valid redis URL: %v", redactURLError(err, url))
		}
		opts = o
	} else {
		addr, err := shared.addr()
		if err != nil {
			t.Fatal(err)
		}
		opts = &redis.Options{Addr: addr}
	}
	return newClient(t, opts)
}

func newClient(t testing.TB, opts *redis.Options) *redis.Client {
	t.Helper()
	opts.DisableIdentity = true // CLIENT SETINFO needs Redis 7.2; skip the noise
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: PING %s: %v", opts.Addr, err)
	}
	return c
}

func redactURLError(err error, url string) string {
	return strings.ReplaceAll(err.Error(), url, "<REDIS_URL>")
}

// Prefix returns a key prefix unique to this test and run, of the form
// "test:<sanitized test name>:<8 random hex>:". The name part keeps keys
// readable in redis-cli; the random part keeps reruns and -count=N apart.
func Prefix(t testing.TB) string {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("redistest: random prefix: %v", err)
	}
	return "test:" + sanitize(t.Name()) + ":" + hex.EncodeToString(b[:]) + ":"
}

// sanitize keeps names free of ':' (our separator) and of glob
// metacharacters, so a prefix can go straight into SCAN MATCH.
func sanitize(name string) string {
	const maxLen = 100
	var sb strings.Builder
	for i := 0; i < len(name) && sb.Len() < maxLen; i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
			sb.WriteByte(c)
		default:
			sb.WriteByte('_')
		}
	}
	return sb.String()
}

// escapeGlob quotes Redis glob metacharacters so prefix matches literally.
func escapeGlob(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
	return sb.String()
}

// Keys returns, sorted, every key starting with prefix (via SCAN, so it is
// safe on a shared server). It may be called from t.Cleanup.
func Keys(t testing.TB, c *redis.Client, prefix string) []string {
	t.Helper()
	// Not t.Context(): that is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, escapeGlob(prefix)+"*", 1000).Iterator()
	for iter.Next(ctx) {
		if k := iter.Val(); strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("redistest: SCAN %q: %v", prefix, err)
	}
	slices.Sort(keys)
	// SCAN may return a key more than once if the keyspace is rehashed.
	return slices.Compact(keys)
}

// Server is a private redis-server for one test. Kill (or Stop) ends it
// abruptly to simulate a crash; Restart brings it back on the same Addr and
// data directory so clients can reconnect: empty, or with ServerOptions.AOF
// holding every write the old process acknowledged. All are safe to call from
// any goroutine.
type Server struct {
	// Addr is "127.0.0.1:port"; it does not change across Restart.
	Addr string
	// Client is connected to Addr and closed when the test ends. It keeps
	// working across Stop/Restart the way production clients would.
	Client *redis.Client

	dir    string
	port   int
	config []string

	mu   sync.Mutex
	proc *process // nil while stopped
}

// ServerOptions configure StartServerWith.
type ServerOptions struct {
	// AOF turns on the append-only file with appendfsync always: Redis writes
	// and fsyncs every write before replying, so everything acknowledged
	// survives Kill and comes back with Restart. Without it the server keeps
	// nothing on disk.
	AOF bool
}

// config is the server's command-line configuration beyond address and dir.
func (o ServerOptions) config() []string {
	if o.AOF {
		return []string{"--save", "", "--appendonly", "yes", "--appendfsync", "always"}
	}
	return []string{"--save", "", "--appendonly", "no"}
}

// StartServer starts a dedicated, non-persistent redis-server that is stopped
// when the test ends. It ignores REDIS_URL because the test needs a process it
// can kill.
func StartServer(t testing.TB) *Server {
	t.Helper()
	return StartServerWith(t, ServerOptions{})
}

// StartServerWith is StartServer with options, e.g. AOF persistence.
func StartServerWith(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	dir := t.TempDir() // registered first so it is removed after the server stops
	config := opts.config()
	proc, err := spawn(context.Background(), dir, 0, config)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: proc.addr, dir: dir, port: proc.port, config: config, proc: proc}
	t.Cleanup(s.Stop)
	s.Client = newClient(t, &redis.Options{Addr: s.Addr})
	return s
}

// Stop kills the server (SIGKILL) and waits for it to exit. Without AOF the
// data is lost. Stopping a stopped server is a no-op.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// Kill is Stop, named for what durability tests mean: a crash (SIGKILL, no
// shutdown save) at whatever point the server was, keeping its data directory
// for Restart.
func (s *Server) Kill() { s.Stop() }

// Restart stops the server if it is running and starts it again on the same
// address and data directory: empty, or with AOF, with every write the old
// process acknowledged.
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
	proc, err := spawn(context.Background(), s.dir, s.port, s.config)
	if err != nil {
		return fmt.Errorf("redistest: restarting %s: %w", s.Addr, err)
	}
	s.proc = proc
	return nil
}
