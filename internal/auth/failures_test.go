package auth

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// counters runs fn against both FailureCounters with the same limits.
func counters(t *testing.T, l FailureLimits, fn func(t *testing.T, c FailureCounter)) {
	t.Run("memory", func(t *testing.T) { fn(t, NewMemoryFailures(l, 0)) })
	t.Run("redis", func(t *testing.T) {
		fn(t, NewRedisFailures(redistest.Start(t), RedisFailureOptions{Prefix: redistest.Prefix(t), Limits: l}))
	})
}

// TestFailureCounter: the GCRA bucket of both backends, on a fake clock:
// a burst, then one per interval; a refused failure costs nothing; several
// keys are charged all or none.
func TestFailureCounter(t *testing.T) {
	l := FailureLimits{Burst: 3, Every: 10 * time.Second}
	counters(t, l, func(t *testing.T, c FailureCounter) {
		ctx := context.Background()
		now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
		fail := func(keys ...string) time.Duration {
			t.Helper()
			w, err := c.Fail(ctx, now, keys)
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		for i := range 3 {
			if w := fail("a"); w != 0 {
				t.Fatalf("failure %d throttled (%v) within the burst", i+1, w)
			}
		}
		if w := fail("a"); w != 10*time.Second {
			t.Fatalf("4th failure: wait %v, want 10s", w)
		}
		// Refused failures cost nothing: the wait does not grow.
		now = now.Add(4 * time.Second)
		if w := fail("a"); w != 6*time.Second {
			t.Fatalf("refused again 4s later: wait %v, want 6s", w)
		}
		now = now.Add(6 * time.Second)
		if w := fail("a"); w != 0 {
			t.Fatalf("after one interval: wait %v, want one more admitted", w)
		}
		if w := fail("a"); w != 10*time.Second {
			t.Fatalf("and only one: wait %v", w)
		}
		// Keys are independent ...
		if w := fail("b"); w != 0 {
			t.Fatalf("another key throttled: %v", w)
		}
		// ... but a call is all or none: "a" refuses, so "b" is not charged.
		for range 5 {
			if w := fail("b", "a"); w == 0 {
				t.Fatal("a call naming a throttled key was admitted")
			}
		}
		if w := fail("b"); w != 0 {
			t.Fatalf("b was charged by refused calls: %v", w)
		}
		if w := fail("b"); w != 0 {
			t.Fatalf("b's burst: %v", w)
		}
		if w := fail("b"); w == 0 {
			t.Fatal("b's 4th failure admitted")
		}
		// A full refill after idling Burst intervals.
		now = now.Add(30 * time.Second)
		for range 3 {
			if w := fail("a", "b"); w != 0 {
				t.Fatalf("after refilling: %v", w)
			}
		}
	})
}

// TestRedisFailuresShared: two replicas' counters on one Redis share the
// buckets, and the keys expire once refilled.
func TestRedisFailuresShared(t *testing.T) {
	rdb := redistest.Start(t)
	prefix := redistest.Prefix(t)
	l := FailureLimits{Burst: 2, Every: time.Second}
	r1 := NewRedisFailures(rdb, RedisFailureOptions{Prefix: prefix, Limits: l})
	r2 := NewRedisFailures(rdb, RedisFailureOptions{Prefix: prefix, Limits: l})
	ctx := context.Background()
	now := time.Now()
	for _, r := range []*RedisFailures{r1, r2} {
		if w, err := r.Fail(ctx, now, []string{"addr:10.0.0.1"}); err != nil || w != 0 {
			t.Fatalf("%v %v", w, err)
		}
	}
	if w, err := r1.Fail(ctx, now, []string{"addr:10.0.0.1"}); err != nil || w != time.Second {
		t.Fatalf("third failure across replicas: %v %v, want a 1s wait", w, err)
	}
	keys := redistest.Keys(t, rdb, prefix)
	if len(keys) != 1 || keys[0] != prefix+"{authfail}:addr:10.0.0.1" {
		t.Fatalf("keys %v", keys)
	}
	ttl := rdb.PTTL(ctx, keys[0]).Val()
	if ttl <= time.Second || ttl > 3*time.Second {
		t.Fatalf("TTL %v: want the refill time (2s) plus slack", ttl)
	}
}

func TestRedisFailuresUnavailable(t *testing.T) {
	rdb := redistest.Start(t)
	r := NewRedisFailures(rdb, RedisFailureOptions{Prefix: redistest.Prefix(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Fail(ctx, time.Now(), []string{"x"}); err == nil {
		t.Fatal("no error from a canceled call")
	}
}

func TestMemoryFailuresBounded(t *testing.T) {
	m := NewMemoryFailures(FailureLimits{Burst: 1, Every: time.Minute}, 10)
	now := time.Now()
	for i := range 100 {
		if w, _ := m.Fail(context.Background(), now, []string{fmt.Sprint(i)}); w != 0 {
			t.Fatalf("key %d: %v", i, w)
		}
	}
	if len(m.tats) > 10 {
		t.Fatalf("%d keys held, want at most 10", len(m.tats))
	}
	// Refilled buckets go first.
	now = now.Add(time.Hour)
	if w, _ := m.Fail(context.Background(), now, []string{"new"}); w != 0 || len(m.tats) != 1 {
		t.Fatalf("after refill: %v, %d keys", w, len(m.tats))
	}
}

// throttleFixture is an Authenticator on a fake clock with a burst of 3
// failures, then one per minute.
type throttleFixture struct {
	a     *Authenticator
	ts    store.Tokens
	now   time.Time
	valid string
}

func newThrottleFixture(t *testing.T, trusted ...string) *throttleFixture {
	t.Helper()
	f := &throttleFixture{ts: memory.New().Tokens(), now: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	var prefixes []netip.Prefix
	for _, p := range trusted {
		prefixes = append(prefixes, netip.MustParsePrefix(p))
	}
	var err error
	f.a, err = NewAuthenticator(Options{Tokens: f.ts, Now: func() time.Time { return f.now },
		Certs:          map[string]CertIdentity{"svc.agency": {Role: RoleManager}},
		Failures:       NewMemoryFailures(FailureLimits{Burst: 3, Every: time.Minute}, 0),
		TrustedProxies: prefixes})
	if err != nil {
		t.Fatal(err)
	}
	if f.valid, err = GenerateToken(); err != nil {
		t.Fatal(err)
	}
	if err := f.ts.Create(context.Background(), &store.Token{ID: "good", Hash: HashToken(f.valid), Role: RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *throttleFixture) try(token, source string, xff ...string) error {
	ctx := ctxWith()
	if token != "" {
		ctx = ctxWith("Bearer " + token)
	}
	_, err := f.a.Authenticate(ctx, Caller{Source: source, ForwardedFor: xff})
	return err
}

// wantRetry asserts RESOURCE_EXHAUSTED with a RetryInfo of d.
func wantRetry(t *testing.T, err error, d time.Duration) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("%v, want ResourceExhausted", err)
	}
	for _, det := range st.Details() {
		if ri, ok := det.(*errdetails.RetryInfo); ok {
			if got := ri.GetRetryDelay().AsDuration(); got != d {
				t.Fatalf("RetryInfo %v, want %v", got, d)
			}
			return
		}
	}
	t.Fatalf("no RetryInfo in %v", st.Details())
}

func wantCodeOf(t *testing.T, err error, c codes.Code) {
	t.Helper()
	if status.Code(err) != c {
		t.Fatalf("%v, want %v", err, c)
	}
}

// TestValidCredentialNeverThrottled: an address throttled for failures
// still authenticates a valid token or certificate at once, however hard the
// attacker beside it keeps trying.
func TestValidCredentialNeverThrottled(t *testing.T) {
	f := newThrottleFixture(t)
	for i := range 3 {
		wantCodeOf(t, f.try(fmt.Sprintf("agp_bad%d", i), "10.0.0.9"), codes.Unauthenticated)
	}
	wantRetry(t, f.try("agp_bad-again", "10.0.0.9"), time.Minute)
	for range 20 {
		if err := f.try(f.valid, "10.0.0.9"); err != nil {
			t.Fatalf("valid token from a throttled address: %v", err)
		}
		wantCodeOf(t, f.try("agp_attacker", "10.0.0.9"), codes.ResourceExhausted)
		if _, err := f.a.Authenticate(ctxWith(), Caller{Source: "10.0.0.9", CertIdentity: "svc.agency"}); err != nil {
			t.Fatalf("valid certificate from a throttled address: %v", err)
		}
	}
	// Missing credentials count as failures of the address.
	wantCodeOf(t, f.try("", "10.0.0.9"), codes.ResourceExhausted)
	// Another address is not throttled; the throttled one refills one
	// failure per interval.
	wantCodeOf(t, f.try("agp_bad", "10.0.0.10"), codes.Unauthenticated)
	f.now = f.now.Add(30 * time.Second)
	wantRetry(t, f.try("agp_bad", "10.0.0.9"), 30*time.Second)
	f.now = f.now.Add(30 * time.Second)
	wantCodeOf(t, f.try("agp_bad", "10.0.0.9"), codes.Unauthenticated)
	wantCodeOf(t, f.try("agp_bad", "10.0.0.9"), codes.ResourceExhausted)
	// Errors other than bad credentials are not failures: an unmapped
	// certificate is PERMISSION_DENIED whatever the count.
	if _, err := f.a.Authenticate(ctxWith(), Caller{Source: "10.0.0.11", CertIdentity: "nobody"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unmapped certificate: %v", err)
	}
}

// TestFailuresThrottledPerCredential: one credential failing from many
// addresses is throttled too: a revoked or expired token by its id, an
// unknown token by its digest.
func TestFailuresThrottledPerCredential(t *testing.T) {
	f := newThrottleFixture(t)
	revoked, _ := GenerateToken()
	if err := f.ts.Create(context.Background(), &store.Token{ID: "old", Hash: HashToken(revoked), Role: RoleAdmin, RevokeTime: f.now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		wantCodeOf(t, f.try(revoked, fmt.Sprintf("10.1.0.%d", i)), codes.Unauthenticated)
		wantCodeOf(t, f.try("agp_same-wrong-token", fmt.Sprintf("10.2.0.%d", i)), codes.Unauthenticated)
	}
	wantRetry(t, f.try(revoked, "10.1.0.200"), time.Minute)
	wantRetry(t, f.try("agp_same-wrong-token", "10.2.0.200"), time.Minute)
	// A fresh address with a different bad token is not throttled.
	wantCodeOf(t, f.try("agp_another-wrong-token", "10.3.0.1"), codes.Unauthenticated)
	// The valid token works from those addresses.
	if err := f.try(f.valid, "10.1.0.200"); err != nil {
		t.Fatal(err)
	}
}

// TestIPv6CountedByPrefix: addresses of one /64 share a bucket.
func TestIPv6CountedByPrefix(t *testing.T) {
	f := newThrottleFixture(t)
	for i := range 3 {
		wantCodeOf(t, f.try(fmt.Sprintf("agp_bad%d", i), fmt.Sprintf("2001:db8:1:2::%x", i+1)), codes.Unauthenticated)
	}
	wantCodeOf(t, f.try("agp_bad", "2001:db8:1:2:ffff::1"), codes.ResourceExhausted)
	wantCodeOf(t, f.try("agp_bad", "2001:db8:1:3::1"), codes.Unauthenticated)
}

// TestClientAddr: X-Forwarded-For is believed only from trusted proxies,
// hop by hop from its right end.
func TestClientAddr(t *testing.T) {
	trusted := newThrottleFixture(t, "10.0.0.0/8", "fd00::/8")
	untrusted := newThrottleFixture(t)
	cases := []struct {
		name     string
		a        *Authenticator
		source   string
		xff      []string
		wantAddr string
	}{
		{"no proxies configured", untrusted.a, "10.0.0.1", []string{"203.0.113.7"}, "10.0.0.1"},
		{"direct client", trusted.a, "198.51.100.1", []string{"203.0.113.7"}, "198.51.100.1"},
		{"one trusted proxy", trusted.a, "10.0.0.1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"client forges a left entry", trusted.a, "10.0.0.1", []string{"1.2.3.4, 203.0.113.7"}, "203.0.113.7"},
		{"two trusted proxies", trusted.a, "10.0.0.1", []string{"1.2.3.4, 203.0.113.7, 10.9.9.9"}, "203.0.113.7"},
		{"several header values", trusted.a, "10.0.0.1", []string{"1.2.3.4", "203.0.113.7"}, "203.0.113.7"},
		{"gateway appends the peer", trusted.a, "10.0.0.1", []string{"203.0.113.7, 10.0.0.1"}, "203.0.113.7"},
		{"ports and brackets", trusted.a, "fd00::1", []string{"[2001:db8::5]:443"}, "2001:db8::5"},
		{"garbage from the proxy", trusted.a, "10.0.0.1", []string{"203.0.113.7, nonsense"}, "10.0.0.1"},
		{"all trusted", trusted.a, "10.0.0.1", []string{"10.0.0.2"}, "10.0.0.2"},
		{"no header", trusted.a, "10.0.0.1", nil, "10.0.0.1"},
		{"mapped v4", trusted.a, "::ffff:10.0.0.1", []string{"203.0.113.7"}, "203.0.113.7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.ClientAddr(Caller{Source: tc.source, ForwardedFor: tc.xff}); got != tc.wantAddr {
				t.Fatalf("ClientAddr = %q, want %q", got, tc.wantAddr)
			}
		})
	}
	// Through a trusted proxy, clients are counted apart.
	for i := range 3 {
		wantCodeOf(t, trusted.try(fmt.Sprintf("agp_bad%d", i), "10.0.0.1", "203.0.113.7"), codes.Unauthenticated)
	}
	wantCodeOf(t, trusted.try("agp_bad", "10.0.0.1", "203.0.113.7"), codes.ResourceExhausted)
	wantCodeOf(t, trusted.try("agp_bad-other", "10.0.0.1", "203.0.113.8"), codes.Unauthenticated)
}
