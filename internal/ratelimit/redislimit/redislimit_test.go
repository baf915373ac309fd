package redislimit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/limittest"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// inlineClient returns a client like c that honours context deadlines, so
// the limiter calls it inline rather than on a helper goroutine.
func inlineClient(t testing.TB, c *redis.Client) *redis.Client {
	ic := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Password: c.Options().Password, DB: c.Options().DB,
		DisableIdentity: true, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = ic.Close() })
	return ic
}

// factory gives each test a fresh key prefix; every limiter gets its own
// client, as separate replicas would. With a fake clock the script is told the
// time instead of reading Redis TIME, so the same Lua runs the exact tests.
func factory(opts Options, inline bool) limittest.Factory {
	return func(t *testing.T, clock func() time.Time) limittest.NewLimiter {
		prefix := redistest.Prefix(t)
		return func(ls ratelimit.Limits) ratelimit.Limiter {
			o := opts
			o.Prefix = prefix
			o.clock = clock
			o.Timeout = time.Second // -race on a busy machine; the timeout has its own tests
			c := redistest.Start(t)
			if inline {
				c = inlineClient(t, c)
			}
			l, err := New(c, ls, o)
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			return l
		}
	}
}

func TestConformance(t *testing.T) {
	limittest.Run(t, factory(Options{}, false))
}

// Without the denial cache every call reaches the script, so the suite checks
// the Lua alone (the cache only ever answers "denied" for less time). The
// clients honour deadlines, covering the inline call path too.
func TestConformanceNoDenyCacheInline(t *testing.T) {
	limittest.Run(t, factory(Options{DisableDenyCache: true}, true), "SlidingWindowBound") // 10k calls; once is enough
}

func testLimits() ratelimit.Limits {
	return ratelimit.Limits{
		PerSecond: ratelimit.Limit{Rate: 10, Period: time.Second, Burst: 1}, // T = 100ms
		PerMinute: ratelimit.Limit{Rate: 30, Period: time.Minute, Burst: 5}, // T = 2307693µs
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestKeysAndExpiry(t *testing.T) {
	c := redistest.Start(t)
	p := redistest.Prefix(t)
	l, err := New(c, testLimits(), Options{Prefix: p, DisableDenyCache: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	r, err := l.Allow(ctx, []string{"ws1"}, 1)
	if err != nil || !r.Allowed {
		t.Fatalf("Allow = %+v, %v", r, err)
	}
	key := Key(p, "ws1")
	if key != p+"rl:{ws1}" {
		t.Fatalf("key = %q", key)
	}
	if got, want := redistest.Keys(t, c, p), []string{key}; !slices.Equal(got, want) {
		t.Fatalf("keys = %q, want %q", got, want)
	}
	// The stored TATs (per second, per minute) are the admission time plus
	// each window's T, to the µs: no precision is lost in Lua's number
	// formatting.
	at := r.At.UnixMicro()
	if got, want := c.Get(ctx, key).Val(), fmt.Sprintf("%d:%d", at+100_000, at+2_307_693); got != want {
		t.Fatalf("GET %s = %q, want %q", key, got, want)
	}
	pttl := func(key string) time.Duration {
		d, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	// TTL = the longer window's T rounded up to ms, plus the 2ms slack:
	// the key lives until every window is idle again.
	if d := pttl(key); d <= 2*time.Second || d > 2310*time.Millisecond {
		t.Fatalf("PTTL %s = %v, want about 2.310s", key, d)
	}

	// A denial touches nothing: the value stays, and the TTL is not extended.
	val, ttl := c.Get(ctx, key).Val(), pttl(key)
	if r, err := l.Allow(ctx, []string{"ws1"}, 1); err != nil || r.Allowed {
		t.Fatalf("second Allow = %+v, %v; want denied", r, err)
	}
	if got := c.Get(ctx, key).Val(); got != val {
		t.Fatalf("denial changed %s from %s to %s", key, val, got)
	}
	if d := pttl(key); d > ttl {
		t.Fatalf("denial extended %s's TTL from %v to %v", key, ttl, d)
	}

	// An idle bucket disappears by itself once every window is idle.
	short, err := New(c, ratelimit.Limits{PerSecond: ratelimit.Limit{Rate: 10, Period: time.Second}, PerMinute: ratelimit.Limit{Rate: 600, Period: time.Minute}},
		Options{Prefix: p, DisableDenyCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := short.Allow(ctx, []string{"ws2"}, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow = %+v, %v", r, err)
	}
	if d := pttl(Key(p, "ws2")); d <= 50*time.Millisecond || d > 102*time.Millisecond {
		t.Fatalf("PTTL = %v, want just under 102ms", d)
	}
	time.Sleep(150 * time.Millisecond)
	if got, want := redistest.Keys(t, c, p), []string{key}; !slices.Equal(got, want) {
		t.Fatalf("keys after 150ms = %q, want %q", got, want)
	}
}

func TestScriptFlushFallsBackToEval(t *testing.T) {
	srv := redistest.StartServer(t) // SCRIPT FLUSH on a private server only
	l, err := New(srv.Client, testLimits(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	for _, b := range []string{"a", "b"} {
		if err := srv.Client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if r, err := l.Allow(ctx, []string{b}, 1); err != nil || !r.Allowed {
			t.Fatalf("Allow after SCRIPT FLUSH = %+v, %v", r, err)
		}
	}
}

func errorCount(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "agencyplane_ratelimit_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "kind" && m.GetCounter().GetValue() > 0 {
					out[lp.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}

func TestRedisDownFailsClosedFast(t *testing.T) {
	srv := redistest.StartServer(t)
	reg := prometheus.NewRegistry()
	m, err := ratelimit.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	rl, err := New(srv.Client, testLimits(), Options{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l := ratelimit.Instrument(rl, m)
	ctx := ctxT(t)
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow while up = %+v, %v", r, err)
	}

	srv.Stop()
	start := time.Now()
	r, err := l.Allow(ctx, []string{"b"}, 1)
	elapsed := time.Since(start)
	if !errors.Is(err, ratelimit.ErrUnavailable) || r.Allowed {
		t.Fatalf("Allow with Redis down = %+v, %v; want ErrUnavailable", r, err)
	}
	if elapsed > 300*time.Millisecond {
		t.Fatalf("Allow with Redis down took %v; want within the 100ms timeout", elapsed)
	}
	t.Logf("Redis down: %v after %v", err, elapsed)
	if got := errorCount(t, reg); got["unavailable"]+got["timeout"] != 1 {
		t.Fatalf("error metric = %v, want one unavailable or timeout", got)
	}

	// Wait fails closed too, and gives up before a deadline it cannot meet.
	wctx, cancel := context.WithTimeout(ctx, 250*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, err = ratelimit.Wait(wctx, l, []string{"b"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("Wait with Redis down: %v; want DeadlineExceeded and ErrUnavailable", err)
	}
	if el := time.Since(start); el > 400*time.Millisecond {
		t.Fatalf("Wait with Redis down took %v, past its 250ms deadline", el)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := l.Allow(ctx, []string{"c"}, 1)
		if err == nil && r.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Allow after restart = %+v, %v", r, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blackHole accepts connections and never answers: a stalled Redis.
func blackHole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestStalledRedisTimesOut(t *testing.T) {
	addr := blackHole(t)
	for _, ctxTimeouts := range []bool{false, true} {
		t.Run("ContextTimeoutEnabled="+strconv.FormatBool(ctxTimeouts), func(t *testing.T) {
			c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true, ContextTimeoutEnabled: ctxTimeouts})
			t.Cleanup(func() { _ = c.Close() })
			l, err := New(c, testLimits(), Options{Timeout: 50 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				start := time.Now()
				_, err := l.Allow(t.Context(), []string{"a"}, 1)
				elapsed := time.Since(start)
				if !errors.Is(err, ratelimit.ErrTimeout) || !errors.Is(err, ratelimit.ErrUnavailable) {
					t.Fatalf("err = %v, want ErrTimeout", err)
				}
				if elapsed > 250*time.Millisecond {
					t.Fatalf("Allow took %v with a 50ms timeout", elapsed)
				}
			}
		})
	}
}

func TestCallerCancellationIsNotAnOutage(t *testing.T) {
	addr := blackHole(t)
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	l, err := New(c, testLimits(), Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(30*time.Millisecond, cancel)
	_, err = l.Allow(ctx, []string{"a"}, 1)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("err = %v, want the caller's Canceled, not ErrUnavailable", err)
	}
}

func TestParseReplyRejectsMalformed(t *testing.T) {
	good := []any{int64(1), int64(0), int64(0), int64(100000), int64(1764158400000000)}
	if r, err := parseReply(good); err != nil || !r.Allowed || r.ResetAfter != 100*time.Millisecond {
		t.Fatalf("parseReply(good) = %+v, %v", r, err)
	}
	for name, v := range map[string]any{
		"nil":           nil,
		"string":        "OK",
		"short":         good[:4],
		"long":          append(slices.Clone(good), int64(0)),
		"string elem":   []any{"1", int64(0), int64(0), int64(0), int64(0)},
		"nil elem":      []any{int64(1), nil, int64(0), int64(0), int64(0)},
		"negative":      []any{int64(0), int64(0), int64(-5), int64(0), int64(0)},
		"allowed flag2": []any{int64(2), int64(0), int64(0), int64(0), int64(0)},
	} {
		if _, err := parseReply(v); !errors.Is(err, ratelimit.ErrUnavailable) {
			t.Errorf("%s: err = %v, want ErrUnavailable", name, err)
		}
	}
}

func TestDenyCacheAnswersLocally(t *testing.T) {
	c := redistest.Start(t)
	p := redistest.Prefix(t)
	clock := limittest.NewClock()
	l, err := New(c, testLimits(), Options{Prefix: p, clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow = %+v, %v", r, err)
	}
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || r.Allowed || r.RetryAfter != 100*time.Millisecond {
		t.Fatalf("Allow = %+v, %v; want denied for 100ms", r, err)
	}
	// Remove the state behind the cache's back: a cached denial does not ask.
	if err := c.Del(ctx, Key(p, "a")).Err(); err != nil {
		t.Fatal(err)
	}
	clock.Advance(40 * time.Millisecond)
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || r.Allowed || r.RetryAfter != 60*time.Millisecond {
		t.Fatalf("cached Allow = %+v, %v; want denied for 60ms more", r, err)
	}
	// Other bucket sets are not covered by the entry.
	if r, err := l.Allow(ctx, []string{"a", "b"}, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow([a b]) = %+v, %v; want allowed (state was deleted)", r, err)
	}
	clock.Advance(60 * time.Millisecond)
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || r.Allowed {
		t.Fatalf("Allow after the cached denial = %+v, %v; want Redis' denial (charged by [a b])", r, err)
	}
}

// TestDenyCacheIsBounded: the denial cache holds at most maxDenials entries;
// when full it first drops the denials that have ended (at exactly their
// end), and while all are still live it caches no more.
func TestDenyCacheIsBounded(t *testing.T) {
	c := &denyCache{entries: map[string]denial{}}
	t0 := time.Unix(1_764_158_400, 0)
	res := ratelimit.Result{RetryAfter: time.Second, ResetAfter: time.Second}
	for i := range maxDenials {
		c.store("set"+strconv.Itoa(i), 1, t0, res)
	}
	c.store("new", 1, t0, res)
	if n := len(c.entries); n != maxDenials {
		t.Fatalf("%d entries, want the bound %d", n, maxDenials)
	}
	if _, ok := c.lookup("new", 1, t0); ok {
		t.Fatal("a denial was cached past the bound")
	}
	later := t0.Add(res.RetryAfter) // every cached denial ends now
	c.store("later", 1, later, res)
	if n := len(c.entries); n != 1 {
		t.Fatalf("%d entries, want 1: ended denials make room", n)
	}
	if r, ok := c.lookup("later", 1, later); !ok || r.RetryAfter != time.Second {
		t.Fatalf("lookup = %+v, %v; want the new denial", r, ok)
	}
}

func TestNewValidates(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	if _, err := New(nil, testLimits(), Options{}); err == nil {
		t.Error("nil client accepted")
	}
	if _, err := New(c, ratelimit.Limits{}, Options{}); err == nil {
		t.Error("zero limits accepted")
	}
	if _, err := New(c, testLimits(), Options{Timeout: -1}); err == nil {
		t.Error("negative timeout accepted")
	}
}

// BenchmarkAllow measures the limiter on the client production builds
// (internal/app: ContextTimeoutEnabled, so calls run inline) beside a raw
// GET on the same client, the floor of one round trip: compare
// OneBucketAdmitted with RawGET (README: ≤ 1.5×). OneBucketAdmittedGoroutine
// is the path of clients that ignore context deadlines.
func BenchmarkAllow(b *testing.B) {
	c := redistest.Start(b)
	p := redistest.Prefix(b)
	ls := ratelimit.InstantlyLimits(0)
	ic := inlineClient(b, c) // as production's
	newL := func(opts Options) *Limiter {
		opts.Prefix = p
		l, err := New(ic, ls, opts)
		if err != nil {
			b.Fatal(err)
		}
		if !l.inline {
			b.Fatal("the production-like client does not run inline")
		}
		return l
	}
	// Many buckets so most calls are admitted, as in a fan-out.
	buckets := make([]string, 100_000)
	for i := range buckets {
		buckets[i] = "ws" + strconv.Itoa(i)
	}
	run := func(b *testing.B, l *Limiter, pick func(i int) []string) {
		allowed := 0
		for i := 0; b.Loop(); i++ {
			r, err := l.Allow(b.Context(), pick(i), 1)
			if err != nil {
				b.Fatal(err)
			}
			if r.Allowed {
				allowed++
			}
		}
		b.ReportMetric(float64(allowed)/float64(b.N), "allowed/op")
	}
	// A value the size of a bucket's TATs.
	if err := ic.Set(b.Context(), p+"raw-get", "1764432000012500:1764432000012500", 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("RawGET", func(b *testing.B) {
		key := p + "raw-get"
		for b.Loop() {
			if err := ic.Get(b.Context(), key).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("OneBucketAdmitted", func(b *testing.B) {
		run(b, newL(Options{}), func(i int) []string { return []string{buckets[i%len(buckets)]} })
	})
	// The two in alternating blocks, so the ratio holds on a machine whose
	// load changes during the run: x_raw_GET is the fastest block of
	// admitted calls over the fastest block of GETs (README: the limiter's
	// cost in raw GETs). Run it with -benchtime of at least 20000x.
	b.Run("AdmittedVersusRawGET", func(b *testing.B) {
		const block = 500
		l := newL(Options{})
		key := p + "raw-get"
		best := [2]time.Duration{time.Hour, time.Hour} // GET, Allow
		start := time.Now()
		for i := 0; b.Loop(); i++ {
			kind := (i / block) % 2
			if kind == 0 {
				if err := ic.Get(b.Context(), key).Err(); err != nil {
					b.Fatal(err)
				}
			} else if _, err := l.Allow(b.Context(), []string{buckets[(i+2*len(buckets)/3)%len(buckets)]}, 1); err != nil {
				b.Fatal(err)
			}
			if (i+1)%block == 0 {
				best[kind] = min(best[kind], time.Since(start)/block)
				start = time.Now()
			}
		}
		if best[1] < time.Hour {
			b.ReportMetric(float64(best[1])/float64(best[0]), "x_raw_GET")
		}
	})
	b.Run("OneBucketAdmittedGoroutine", func(b *testing.B) {
		l, err := New(c, ls, Options{Prefix: p})
		if err != nil {
			b.Fatal(err)
		}
		run(b, l, func(i int) []string { return []string{buckets[(i+len(buckets)/3)%len(buckets)]} })
	})
	b.Run("TwoBucketsAdmitted", func(b *testing.B) {
		run(b, newL(Options{}), func(i int) []string {
			return []string{buckets[i%len(buckets)], buckets[(i+len(buckets)/2)%len(buckets)]}
		})
	})
	b.Run("HotBucketDenied", func(b *testing.B) {
		run(b, newL(Options{DisableDenyCache: true}), func(int) []string { return []string{"hot"} })
	})
	b.Run("HotBucketDeniedCached", func(b *testing.B) {
		run(b, newL(Options{}), func(int) []string { return []string{"hot2"} })
	})
	b.Run("Parallel", func(b *testing.B) {
		l := newL(Options{})
		var mu sync.Mutex
		next := 0
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			i := next * 7919
			next++
			mu.Unlock()
			for pb.Next() {
				if _, err := l.Allow(b.Context(), []string{buckets[i%len(buckets)]}, 1); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
