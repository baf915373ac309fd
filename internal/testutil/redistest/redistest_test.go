package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) { Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestStartWriteRead(t *testing.T) {
	c := Start(t)
	p := Prefix(t)
	if err := c.Set(ctx(t), p+"b", "2", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := c.HSet(ctx(t), p+"a", "f", "v").Err(); err != nil {
		t.Fatalf("HSET: %v", err)
	}
	got, err := c.Get(ctx(t), p+"b").Result()
	if err != nil || got != "2" {
		t.Fatalf("GET = %q, %v", got, err)
	}
	if keys := Keys(t, c, p); strings.Join(keys, ",") != p+"a,"+p+"b" {
		t.Fatalf("Keys = %q", keys)
	}
}

func TestStartIsShared(t *testing.T) {
	a, b := Start(t), Start(t)
	if a == b {
		t.Fatal("Start returned the same client twice")
	}
	if a.Options().Addr != b.Options().Addr {
		t.Fatalf("clients point at %s and %s, want one shared server", a.Options().Addr, b.Options().Addr)
	}
	p := Prefix(t)
	if err := a.Set(ctx(t), p+"k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx(t), p+"k").Result(); err != nil || got != "v" {
		t.Fatalf("second client GET = %q, %v", got, err)
	}
}

func TestSharedServerConfig(t *testing.T) {
	if os.Getenv("REDIS_URL") != "" {
		t.Skip("configuration is only ours to check when we started the server")
	}
	c := Start(t)
	want := map[string]string{"save": "", "appendonly": "no", "bind": "127.0.0.1"}
	for param, v := range want {
		got, err := c.ConfigGet(ctx(t), param).Result()
		if err != nil {
			t.Fatalf("CONFIG GET %s: %v", param, err)
		}
		if got[param] != v {
			t.Errorf("%s = %q, want %q", param, got[param], v)
		}
	}
	dir, err := c.ConfigGet(ctx(t), "dir").Result()
	if err != nil || !strings.Contains(dir["dir"], "redistest-") {
		t.Errorf("dir = %q, %v; want our temp dir", dir["dir"], err)
	}
}

func TestClientClosedAtCleanup(t *testing.T) {
	var c *redis.Client
	t.Run("inner", func(t *testing.T) { c = Start(t) })
	if err := c.Ping(ctx(t)).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Fatalf("Ping after the test ended: %v, want redis.ErrClosed", err)
	}
}

func TestPrefix(t *testing.T) {
	shape := regexp.MustCompile(`^test:[A-Za-z0-9_.-]+:[0-9a-f]{8}:$`)
	tests := []struct {
		sub      string
		wantName string
	}{
		{"plain", "TestPrefix_plain"},
		{"with space", "TestPrefix_with_space"},
		{"glob*?[x]", "TestPrefix_glob___x_"},
		{"colon:sep", "TestPrefix_colon_sep"},
		{"dots.and-dash_ok", "TestPrefix_dots.and-dash_ok"},
		{"ünï", "TestPrefix___n__"}, // multi-byte runes become one "_" per byte
	}
	for _, tt := range tests {
		t.Run(tt.sub, func(t *testing.T) {
			p := Prefix(t)
			if !shape.MatchString(p) {
				t.Fatalf("Prefix = %q, does not match %s", p, shape)
			}
			if got := strings.Split(p, ":")[1]; got != tt.wantName {
				t.Errorf("name part = %q, want %q", got, tt.wantName)
			}
			if Prefix(t) == p {
				t.Error("two prefixes in one test are equal")
			}
		})
	}
	t.Run(strings.Repeat("x", 300), func(t *testing.T) {
		if p := Prefix(t); len(p) > len("test:")+100+len(":12345678:") {
			t.Errorf("prefix of long name is %d bytes", len(p))
		}
	})
}

func TestKeysMatchesLiterally(t *testing.T) {
	c := Start(t)
	base := Prefix(t)
	glob := base + `a*[b]?\`
	writes := []string{glob + "1", glob + "2", base + "aX[b]?\\1", base + "ab?\\1", base + "other"}
	for _, k := range writes {
		if err := c.Set(ctx(t), k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{glob, []string{glob + "1", glob + "2"}},
		{base, []string{base + "a*[b]?\\1", base + "a*[b]?\\2", base + "aX[b]?\\1", base + "ab?\\1", base + "other"}},
		{base + "none", nil},
	}
	for _, tt := range tests {
		got := Keys(t, c, tt.prefix)
		if fmt.Sprint(got) != fmt.Sprint(sortedCopy(tt.want)) {
			t.Errorf("Keys(%q) = %q, want %q", tt.prefix, got, tt.want)
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestKeysManyKeys(t *testing.T) {
	c := Start(t)
	p := Prefix(t)
	const n = 2500 // more than one SCAN page
	pipe := c.Pipeline()
	for i := range n {
		pipe.Set(ctx(t), fmt.Sprintf("%s%05d", p, i), i, 0)
	}
	if _, err := pipe.Exec(ctx(t)); err != nil {
		t.Fatal(err)
	}
	keys := Keys(t, c, p)
	if len(keys) != n || keys[0] != p+"00000" || keys[n-1] != fmt.Sprintf("%s%05d", p, n-1) {
		t.Fatalf("Keys returned %d keys, first %q", len(keys), keys[0])
	}
}

func TestStartServerStopRestart(t *testing.T) {
	s := StartServer(t)
	if s.Client.Options().Addr != s.Addr || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr %q, client addr %q", s.Addr, s.Client.Options().Addr)
	}
	if err := s.Client.Set(ctx(t), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Client.Get(ctx(t), "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET = %q, %v", got, err)
	}

	s.Stop()
	s.Stop() // idempotent
	if err := ping(ctx(t), s.Addr); err == nil {
		t.Fatal("server still answers after Stop")
	}
	if err := s.Client.Get(ctx(t), "k").Err(); err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Stop = %v, want a connection error", err)
	}

	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	// Same address, fresh (non-persistent) data; the old client reconnects.
	var err error
	for range 50 {
		if err = s.Client.Get(ctx(t), "k").Err(); errors.Is(err, redis.Nil) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after Restart = %v, want redis.Nil (empty server)", err)
	}
	if err := s.Restart(); err != nil { // restart while running
		t.Fatalf("second Restart: %v", err)
	}
}

func TestStartServerAOFKillRestartKeepsData(t *testing.T) {
	s := StartServerWith(t, ServerOptions{AOF: true})
	for param, want := range map[string]string{"appendonly": "yes", "appendfsync": "always", "save": ""} {
		got, err := s.Client.ConfigGet(ctx(t), param).Result()
		if err != nil || got[param] != want {
			t.Fatalf("CONFIG GET %s = %v, %v; want %q", param, got, err, want)
		}
	}
	const n = 200
	pipe := s.Client.Pipeline()
	for i := range n {
		pipe.Set(ctx(t), fmt.Sprintf("k%03d", i), i, 0)
	}
	if _, err := pipe.Exec(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Client.HSet(ctx(t), "h", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}

	s.Kill()
	if err := ping(ctx(t), s.Addr); err == nil {
		t.Fatal("server still answers after Kill")
	}
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	reconnected(t, s.Client)
	if got, err := s.Client.DBSize(ctx(t)).Result(); err != nil || got != n+1 {
		t.Fatalf("DBSIZE after Kill+Restart = %d, %v; want %d", got, err, n+1)
	}
	if got, err := s.Client.Get(ctx(t), fmt.Sprintf("k%03d", n-1)).Result(); err != nil || got != strconv.Itoa(n-1) {
		t.Fatalf("GET last key = %q, %v", got, err)
	}
	if got, err := s.Client.HGet(ctx(t), "h", "f").Result(); err != nil || got != "v" {
		t.Fatalf("HGET = %q, %v", got, err)
	}
	// Twice: the restarted server appends to the same AOF.
	if err := s.Client.Set(ctx(t), "after", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := s.Restart(); err != nil {
		t.Fatalf("second Restart: %v", err)
	}
	reconnected(t, s.Client)
	if got, err := s.Client.DBSize(ctx(t)).Result(); err != nil || got != n+2 {
		t.Fatalf("DBSIZE after second restart = %d, %v; want %d", got, err, n+2)
	}
}

// reconnected waits until c, whose pooled connections died with the server,
// answers again.
func reconnected(t *testing.T, c *redis.Client) {
	t.Helper()
	var err error
	for range 100 {
		if err = c.Ping(ctx(t)).Err(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("client did not reconnect: %v", err)
}

// TestStartServerAOFKillMidWrite kills the server while a client is writing:
// every increment Redis acknowledged must be there after the restart (the
// one in flight may or may not be).
func TestStartServerAOFKillMidWrite(t *testing.T) {
	s := StartServerWith(t, ServerOptions{AOF: true})
	// No retries: a retried INCR after a lost reply would count twice.
	c := redis.NewClient(&redis.Options{Addr: s.Addr, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()

	var acked atomic.Int64
	done := make(chan error, 1)
	go func() {
		for {
			v, err := c.Incr(context.Background(), "counter").Result()
			if err != nil {
				done <- err
				return
			}
			acked.Store(v)
		}
	}()
	for acked.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	s.Kill()
	if err := <-done; err == nil {
		t.Fatal("writer did not fail when the server was killed")
	}
	last := acked.Load()
	if err := s.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	reconnected(t, s.Client)
	got, err := s.Client.Get(ctx(t), "counter").Int64()
	if err != nil {
		t.Fatal(err)
	}
	if got != last && got != last+1 {
		t.Fatalf("counter after crash = %d, last acknowledged %d: lost acknowledged writes", got, last)
	}
}

func TestStartServerIsPrivate(t *testing.T) {
	a, b := StartServer(t), StartServer(t)
	if a.Addr == b.Addr {
		t.Fatal("two servers share an address")
	}
	if os.Getenv("REDIS_URL") == "" && a.Addr == Start(t).Options().Addr {
		t.Fatal("StartServer returned the shared server")
	}
	if err := a.Client.Set(ctx(t), "only-a", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.Client.Get(ctx(t), "only-a").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("key leaked between servers: %v", err)
	}
}

func TestStartServerStoppedAtCleanup(t *testing.T) {
	var addr string
	t.Run("inner", func(t *testing.T) { addr = StartServer(t).Addr })
	if err := ping(ctx(t), addr); err == nil {
		t.Fatal("server still running after its test ended")
	}
}

func TestStartUsesREDIS_URL(t *testing.T) {
	s := StartServer(t)
	t.Setenv("REDIS_URL", "redis://"+s.Addr+"/3")
	c := Start(t)
	if c.Options().Addr != s.Addr || c.Options().DB != 3 {
		t.Fatalf("client options %s db %d, want %s db 3", c.Options().Addr, c.Options().DB, s.Addr)
	}
	if err := c.Set(ctx(t), "via-url", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	db3 := redis.NewClient(&redis.Options{Addr: s.Addr, DB: 3})
	defer db3.Close()
	if got, err := db3.Get(ctx(t), "via-url").Result(); err != nil || got != "1" {
		t.Fatalf("value not written to REDIS_URL's db: %q, %v", got, err)
	}
}

// fakeTB records Fatal and Skip calls so failure paths can be tested.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	fatal    string
	skip     string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Fatal(fmt.Sprintf(format, args...)) }
func (f *fakeTB) Skip(args ...any) {
	f.mu.Lock()
	f.skip = fmt.Sprint(args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// run calls fn with a fake TB on its own goroutine (Fatal exits it), runs the
// recorded cleanups and returns the Fatal message, if any.
func run(t *testing.T, fn func(tb testing.TB)) string { return runFake(t, fn).fatal }

// runFake is run returning the fake, for its Skip message too.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	return f
}

func TestRedisServerNotFound(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	const want = "redis-server not found: install it (apt-get install redis-server) or set REDIS_URL"
	if _, err := spawn(ctx(t), t.TempDir(), 0, nil); err == nil || err.Error() != want {
		t.Fatalf("spawn error = %v, want %q", err, want)
	}
	if got := run(t, func(tb testing.TB) { StartServer(tb) }); got != want {
		t.Fatalf("StartServer fatal = %q, want %q", got, want)
	}
}

func TestBadREDIS_URLIsNotEchoed(t *testing.T) {
	const url = "rediss://user:hunter2@[bad-host"
	t.Setenv("REDIS_URL", url)
	got := run(t, func(tb testing.TB) { Start(tb) })
	if !strings.Contains(got, "REDIS_URL is not a valid redis URL") {
		t.Fatalf("fatal = %q", got)
	}
	if strings.Contains(got, "hunter2") {
		t.Fatalf("fatal message leaks the password: %q", got)
	}
}

func TestStartRequiresMain(t *testing.T) {
	shared.mainCalled.Store(false)
	defer shared.mainCalled.Store(true)
	if got := run(t, func(tb testing.TB) { Start(tb) }); !strings.Contains(got, "redistest.Main(m)") {
		t.Fatalf("fatal = %q, want a hint to call redistest.Main", got)
	}
}

func TestSanitizeAndEscape(t *testing.T) {
	tests := []struct{ in, sanitized, escaped string }{
		{"abc", "abc", "abc"},
		{"a b:c", "a_b_c", "a b:c"},
		{"*?[]\\", "_____", `\*\?\[\]\\`},
		{"Test/sub-1.x", "Test_sub-1.x", "Test/sub-1.x"},
	}
	for _, tt := range tests {
		if got := sanitize(tt.in); got != tt.sanitized {
			t.Errorf("sanitize(%q) = %q, want %q", tt.in, got, tt.sanitized)
		}
		if got := escapeGlob(tt.in); got != tt.escaped {
			t.Errorf("escapeGlob(%q) = %q, want %q", tt.in, got, tt.escaped)
		}
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 8}
	for _, s := range []string{"hello ", "world", "!"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if got := b.String(); got != "o world!" {
		t.Fatalf("tail = %q", got)
	}
}
