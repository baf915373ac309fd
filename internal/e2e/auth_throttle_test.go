package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// failureBurst is how many failed authentications an address (or a
// credential) gets before it is throttled (internal/auth's default).
const failureBurst = 10

// listWith lists workspaces with token over one transport; the REST call
// may carry an X-Forwarded-For header.
func listWith(e *env, transport, token, xff string) (*http.Response, error) {
	ctx := context.Background()
	if transport == "grpc" {
		if xff != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", xff)
		}
		return nil, grpcInvoker{conn: e.conn, token: token}.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
	}
	r := e.rest(token)
	if xff != "" {
		r.client = &http.Client{Transport: headerTransport{"X-Forwarded-For": xff}}
	}
	return r.raw(ctx, http.MethodGet, "/v1/workspaces", nil, &agencyv1.ListWorkspacesResponse{})
}

// headerTransport adds headers to every request.
type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// wantThrottled asserts a throttled answer: RESOURCE_EXHAUSTED with a
// RetryInfo, and over REST HTTP 429 with a Retry-After of whole seconds.
func wantThrottled(t *testing.T, resp *http.Response, err error) {
	t.Helper()
	st := wantCode(t, err, codes.ResourceExhausted)
	wantReason(t, st, "RATE_LIMITED")
	var ri *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			ri = r
		}
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() <= 0 {
		t.Fatalf("throttled without a RetryInfo: %v", st.Details())
	}
	if resp != nil {
		ra, perr := strconv.Atoi(resp.Header.Get("Retry-After"))
		if perr != nil || ra < 1 {
			t.Fatalf("Retry-After %q, want whole seconds ≥ 1", resp.Header.Get("Retry-After"))
		}
	}
}

// failUntilThrottled presents bad tokens until the answer is throttled, and
// asserts that exactly the burst was refused as UNAUTHENTICATED first (one
// more is tolerated: the bucket refills one every 6 s on the real clock).
func failUntilThrottled(t *testing.T, e *env, transport string, badToken func(i int) string, xff func(i int) string) {
	t.Helper()
	for i := range failureBurst + 2 {
		x := ""
		if xff != nil {
			x = xff(i)
		}
		resp, err := listWith(e, transport, badToken(i), x)
		if status.Code(err) == codes.ResourceExhausted {
			if i < failureBurst {
				t.Fatalf("throttled after %d failures, want %d", i, failureBurst)
			}
			wantThrottled(t, resp, err)
			return
		}
		wantCode(t, err, codes.Unauthenticated)
	}
	t.Fatalf("%d failures, never throttled", failureBurst+2)
}

// TestThrottleNeverRefusesValidCredential: once an address is throttled
// for failed authentications, its bad tokens answer 429 with RetryInfo and
// Retry-After, but a valid token from that same address still works.
func TestThrottleNeverRefusesValidCredential(t *testing.T) {
	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			e := startEnv(t, memoryBackend)
			failUntilThrottled(t, e, transport, func(i int) string { return fmt.Sprintf("agp_not-a-token-%04d", i) }, nil)
			for range 3 {
				if _, err := listWith(e, transport, testToken, ""); err != nil {
					t.Fatalf("a valid token from a throttled address: %v", err)
				}
			}
			// And the address stays throttled for bad tokens.
			resp, err := listWith(e, transport, "agp_still-not-a-token", "")
			wantThrottled(t, resp, err)
		})
	}
}

// TestThrottleSharedAcrossReplicas: failures are counted in Redis, so an
// address that failed on one replica is throttled on the other, and a valid
// token still works on both.
func TestThrottleSharedAcrossReplicas(t *testing.T) {
	reps := startReplicas(t, sim.Config{}, 2)
	for i := range failureBurst {
		_, err := listWith(reps[i%2], "grpc", fmt.Sprintf("agp_bad-token-%04d", i), "")
		wantCode(t, err, codes.Unauthenticated)
	}
	for _, e := range reps {
		for _, transport := range []string{"grpc", "rest"} {
			resp, err := listWith(e, transport, "agp_one-more-bad-token", "")
			wantThrottled(t, resp, err)
			if _, err := listWith(e, transport, testToken, ""); err != nil {
				t.Fatalf("a valid token from the throttled address: %v", err)
			}
		}
	}
}

// TestThrottleTrustedProxies: behind a trusted proxy (--trusted-proxies),
// X-Forwarded-For names the client, so clients behind one load balancer are
// throttled apart, and one bad credential is throttled across addresses;
// without it, X-Forwarded-For changes nothing.
func TestThrottleTrustedProxies(t *testing.T) {
	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			e := startEnvWith(t, "", 0, func(c *config.Config) { c.TrustedProxies = "127.0.0.0/8, ::1" })
			// Many clients, one bad attempt each: nobody is throttled.
			for i := range 2 * failureBurst {
				_, err := listWith(e, transport, fmt.Sprintf("agp_client-%d-typo", i), fmt.Sprintf("203.0.113.%d", i))
				wantCode(t, err, codes.Unauthenticated)
			}
			// One client failing is throttled; its neighbours are not, and
			// its valid token still works. A forged left-hand entry does
			// not move it to another bucket.
			failUntilThrottled(t, e, transport, func(i int) string { return fmt.Sprintf("agp_guess-%d", i) },
				func(i int) string { return fmt.Sprintf("198.51.100.%d, 203.0.113.200", i) })
			_, err := listWith(e, transport, "agp_next-guess", "203.0.113.200")
			wantCode(t, err, codes.ResourceExhausted)
			_, err = listWith(e, transport, "agp_next-guess", "203.0.113.201")
			wantCode(t, err, codes.Unauthenticated)
			if _, err := listWith(e, transport, testToken, "203.0.113.200"); err != nil {
				t.Fatalf("valid token from the throttled client: %v", err)
			}
			// One bad credential from many addresses is throttled too.
			failUntilThrottled(t, e, transport, func(int) string { return "agp_leaked-and-revoked" },
				func(i int) string { return fmt.Sprintf("192.0.2.%d", i) })
		})
	}
	t.Run("untrusted", func(t *testing.T) {
		e := startEnv(t, memoryBackend)
		failUntilThrottled(t, e, "rest", func(i int) string { return fmt.Sprintf("agp_guess-%d", i) },
			func(i int) string { return fmt.Sprintf("203.0.113.%d", i) })
	})
}

// TestThrottleTrustedProxiesFlag: --trusted-proxies (or
// AGENCY_TRUSTED_PROXIES) takes CIDRs and bare addresses; anything else
// stops startup.
func TestThrottleTrustedProxiesFlag(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "AGENCY_TRUSTED_PROXIES" {
				return v
			}
			return ""
		}
	}
	c, err := config.Load(nil, env("10.0.0.0/8, 192.0.2.7 ,fd00::/8"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.TrustedProxyPrefixes()
	if err != nil || fmt.Sprint(got) != "[10.0.0.0/8 192.0.2.7/32 fd00::/8]" {
		t.Fatalf("prefixes %v %v", got, err)
	}
	if c, err := config.Load([]string{"--trusted-proxies", "10.1.2.3/8"}, env("nonsense"), io.Discard); err != nil || c.TrustedProxies != "10.1.2.3/8" {
		t.Fatalf("the flag wins over the environment: %v %v", c, err)
	}
	for _, bad := range []string{"nonsense", "10.0.0.0/33", "10.0.0.0/8,,x"} {
		if _, err := config.Load([]string{"--trusted-proxies", bad}, env(""), io.Discard); err == nil || !strings.Contains(err.Error(), "--trusted-proxies") {
			t.Errorf("%q: %v, want an error naming --trusted-proxies", bad, err)
		}
	}
}
