package bench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// TestThreeReplicasNeverExceedTheLimits runs a small benchmark: three
// agencyd replicas sharing one real Redis fan out over the same workspaces
// at once; the simulator, counting admitted requests per sliding window,
// must never see either window exceeded, nor answer a single 429, and every
// operation must succeed. (Speed is measured by `make bench`, not here.)
func TestThreeReplicasNeverExceedTheLimits(t *testing.T) {
	rdb := redistest.Start(t)
	reports, err := Run(context.Background(), Config{
		Workspaces: 12, Replicas: 3, RPS: 10, RPM: 600, Headroom: 0.5, FanOuts: 6, Parallel: 6,
		RedisURL: "redis://" + rdb.Options().Addr + "/0",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := reports[0]
	t.Log(r)
	if r.Upstream429 != 0 || r.Failed != 0 {
		t.Fatalf("429s or failures: %v", r)
	}
	// The limiter keeps half the budget on its own clock (the -race CI
	// machine may delay a request by hundreds of ms); measured at the
	// simulator, jitter may shift requests, but never past the limit.
	if r.MaxWindow1s > 10 || r.MaxWindow60s > 600 {
		t.Fatalf("a window was exceeded: %v", r)
	}
	if want := int64(12 * 6 * 2); r.Calls != want {
		t.Fatalf("%d upstream calls, want %d (read + create per workspace and fan-out)", r.Calls, want)
	}
}

// TestOnboardBenchmark runs a small onboarding benchmark: every item
// succeeds, with no 429 and no duplicate write, and the report's bound is
// the larger of the calls at the budget and three round trips.
func TestOnboardBenchmark(t *testing.T) {
	rdb := redistest.Start(t)
	r, err := RunOnboard(context.Background(), OnboardConfig{Workspaces: 8, People: 4, Replicas: 2, Latency: 20 * time.Millisecond,
		RedisURL: "redis://" + rdb.Options().Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Items != 32 || r.Failed != 0 || r.Upstream429 != 0 || r.Duplicates != 0 {
		t.Fatalf("report %v", r)
	}
	// 5 calls at 80/s = 62.5 ms > 3 × 20 ms.
	if r.Bound != 62500*time.Microsecond || r.Ratio <= 0 {
		t.Fatalf("bound %v, ratio %v", r.Bound, r.Ratio)
	}
	if !strings.HasPrefix(r.String(), "onboard: items=32 measured=") {
		t.Fatalf("line %q", r.String())
	}
}
