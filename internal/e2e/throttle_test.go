package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestUpstream429IsAbsorbed: when Instantly answers 429 anyway (here its real
// limit is far below what agencyd was told, as when other tools spend the
// budget), the workspace slows down and the calls are retried within their
// deadline: every workspace ends READ, none FAILED.
func TestUpstream429IsAbsorbed(t *testing.T) {
	var skew atomic.Int64 // how far the simulator's clock is ahead of real time
	simNow := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	e := startEnvSim(t, sim.Config{RPS: 3, RPM: 1000, Now: simNow}, "", 0, func(c *config.Config) { c.RateRPS, c.RateHeadroom = 100, 1 })
	ctx := context.Background()
	admin := grpcInvoker{conn: e.conn, token: testToken}
	var names []string
	for i := range 3 {
		_, key := e.sim.CreateWorkspace(fmt.Sprintf("busy%d", i))
		name := fmt.Sprintf("busy%d", i)
		if err := admin.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key}}, &agencyv1.Workspace{}); err != nil {
			t.Fatal(err)
		}
		names = append(names, "workspaces/"+name)
	}
	skew.Add(int64(1100 * time.Millisecond)) // registration spent the simulator's second: start a new one
	e.sim.ResetStats()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var resp agencyv1.FanoutResponse
			if err := admin.Invoke(cctx, "agency.v1.FanoutService/AuditApiKeys", &agencyv1.AuditApiKeysRequest{Selector: &agencyv1.WorkspaceSelector{Names: names}}, &resp); err != nil {
				t.Error(err)
				return
			}
			for _, r := range resp.GetResults() {
				if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ {
					t.Errorf("%s: %v %v", r.GetWorkspace(), r.GetOutcome(), r.GetStatus())
				}
			}
		})
	}
	wg.Wait()
	var throttled int64
	for _, s := range e.sim.Stats() {
		throttled += s.RateLimited
	}
	if throttled == 0 {
		t.Fatal("the simulator never answered 429: the test did not exercise the retry path")
	}
}
