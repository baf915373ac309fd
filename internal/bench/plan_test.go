package bench

import (
	"context"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestPlanReadsEachWorkspaceOnce: the plan of 300 workspaces × 20 declared
// people reads each workspace's members once and its tags once: each list
// is one page plus the empty page that ends the walk, so four requests per
// workspace, none refused. (Its speed at 150 ms is measured by
// `make bench-plan`, not here.)
func TestPlanReadsEachWorkspaceOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("300 workspaces")
	}
	rdb := redistest.Start(t)
	r, err := RunPlan(context.Background(), PlanConfig{Workspaces: 300, People: 20, Latency: time.Millisecond,
		RedisURL: "redis://" + rdb.Options().Addr + "/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	// Each workspace holds half the people (a quarter with the declared
	// role): 10 invites, 5 role changes and a tag each.
	if r.Workspaces != 300 || r.MinRequests != 4 || r.MaxRequests != 4 || r.Upstream429 != 0 || r.Changes != 300*16 {
		t.Fatalf("report %v", r)
	}
}
