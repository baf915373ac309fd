package bench

import (
	"context"
	"testing"

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
