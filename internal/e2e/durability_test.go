package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// The durability tests need real processes and a few hundred workspaces;
// -short skips them.
func skipShort(t *testing.T) {
	if testing.Short() {
		t.Skip("process cluster test; skipped with -short")
	}
}

// clusterFlags keep replicas small enough that the work spreads over all of
// them, and reclaim quick.
var clusterFlags = []string{"--claim-timeout", "2s", "--max-inflight", "40", "--shutdown-timeout", "5s"}

// onboard starts an OnboardMembers operation through replica i.
func (c *cluster) onboard(i int, team string, emails ...string) string {
	c.t.Helper()
	op := &longrunningpb.Operation{}
	if err := c.admin(i).Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers", &agencyv1.OnboardMembersRequest{
		Selector: &agencyv1.WorkspaceSelector{LabelSelector: "team=" + team}, People: people(emails...)}, op); err != nil {
		c.t.Fatal(err)
	}
	return op.GetName()
}

// progress returns the operation's metadata through replica i.
func (c *cluster) progress(i int, name string) *agencyv1.OperationMetadata {
	c.t.Helper()
	op := &longrunningpb.Operation{}
	if err := c.admin(i).Invoke(context.Background(), "google.longrunning.Operations/GetOperation", &longrunningpb.GetOperationRequest{Name: name}, op); err != nil {
		c.t.Fatal(err)
	}
	return opMetadata(c.t, op)
}

// waitProgress waits until at least n items are finished.
func (c *cluster) waitProgress(i int, name string, n int64) {
	c.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		md := c.progress(i, name)
		if md.GetDoneItems()+md.GetFailedItems() >= n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("operation stuck at %v", md)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkMembers asserts that every workspace holds each email exactly once
// and that the simulator saw no duplicate create anywhere.
func (c *cluster) checkMembers(ids map[string]string, emails []string) {
	c.t.Helper()
	for name, id := range ids {
		st, err := c.sim.WorkspaceState(id)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, email := range emails {
			n := 0
			for _, m := range st.Members {
				if strings.EqualFold(m.Email, email) {
					n++
				}
			}
			if n != 1 {
				c.t.Errorf("%s holds %s %d times, want once", name, email, n)
			}
		}
	}
	for id, s := range c.sim.Stats() {
		if s.DuplicateCreates != 0 {
			c.t.Errorf("workspace %s: %d duplicate creates", id, s.DuplicateCreates)
		}
	}
}

// checkResults asserts the results account for every workspace × email
// exactly once, and returns them.
func (c *cluster) checkResults(i int, name string, ids map[string]string, emails []string) []*agencyv1.OperationResult {
	c.t.Helper()
	inv := c.admin(i)
	results := allResults(c.t, inv, name, false)
	if want := len(ids) * len(emails); len(results) != want {
		c.t.Fatalf("%d results, want %d", len(results), want)
	}
	seen := map[string]bool{}
	for i, r := range results {
		key := r.GetResult().GetWorkspace() + "|" + r.GetResult().GetEmail()
		if r.GetIndex() != int64(i) || r.GetState() != agencyv1.ItemState_ITEM_STATE_DONE || seen[key] || ids[r.GetResult().GetWorkspace()] == "" {
			c.t.Fatalf("result %d = %v (seen before: %v)", i, r, seen[key])
		}
		seen[key] = true
	}
	return results
}

// TestKillReplicaMidOnboarding: SIGKILL of one replica, and separately of
// two of three, in the middle of onboarding 5 people into 300 workspaces.
// The operation completes through the survivors; every workspace ends with
// exactly the intended members, no create is duplicated, and the results
// hold every item exactly once.
func TestKillReplicaMidOnboarding(t *testing.T) {
	skipShort(t)
	for _, kills := range []int{1, 2} {
		t.Run(fmt.Sprintf("kill%d", kills), func(t *testing.T) {
			c := newCluster(t, sim.Config{Latency: 30 * time.Millisecond}, 3, clusterFlags...)
			ids := c.register("k", 300)
			emails := []string{"a@agency.test", "b@agency.test", "c@agency.test", "d@agency.test", "e@agency.test"}
			name := c.onboard(0, "k", emails...)
			c.waitProgress(0, name, 100)
			for v := 1; v <= kills; v++ {
				c.waitHolding(c.replicas[v], 10*time.Second)
				c.replicas[v].kill()
			}
			op := waitOperation(t, c.admin(0), name, 2*time.Minute)
			resp := opResponse(t, op)
			if resp.GetFailedTotal() != 0 || resp.GetSummary().GetSucceeded()+resp.GetSummary().GetAlreadyDone() != 1500 {
				t.Fatalf("response %v", resp)
			}
			for _, r := range c.checkResults(0, name, ids, emails) {
				// Re-run items find the invite their first attempt sent:
				// CREATED (their intent was recorded), never a second write.
				if r.GetResult().GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED {
					t.Fatalf("result %v, want CREATED", r)
				}
			}
			c.checkMembers(ids, emails)
		})
	}
}

// TestOnboardingUnderFaults: 10 % of upstream requests fail before the
// write and 5 % after it (applied, then 5xx or a dropped connection), a
// replica dies, and two workspaces have permanent errors (a revoked key, a
// key without member scopes). Everything else completes with no
// duplicate; the permanent failures are reported per item, and after the
// fix RetryOperation re-runs only those.
func TestOnboardingUnderFaults(t *testing.T) {
	skipShort(t)
	c := newCluster(t, sim.Config{Latency: 20 * time.Millisecond, FaultRate: 0.1, FaultAfterRate: 0.05, Seed: 11}, 3, clusterFlags...)
	ids := c.register("f", 120)
	// Two broken workspaces in the same selection.
	revokedID, revokedKey := c.sim.CreateWorkspaceWithOwner("f-revoked", "owner-rev@client.test")
	narrowID, _ := c.sim.CreateWorkspaceWithOwner("f-narrow", "owner-nar@client.test")
	narrow, err := c.sim.CreateAPIKey(narrowID, "narrow", []string{"workspaces:read"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct{ name, key string }{{"f-revoked", revokedKey}, {"f-narrow", narrow.Key}} {
		if err := c.admin(0).Invoke(context.Background(), "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: w.name,
			Workspace: &agencyv1.Workspace{DisplayName: w.name, ApiKey: &w.key, Labels: map[string]string{"team": "f"}}}, &agencyv1.Workspace{}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ := c.sim.WorkspaceState(revokedID)
	if err := c.sim.RevokeAPIKey(revokedID, st.APIKeys[0].ID); err != nil {
		t.Fatal(err)
	}
	emails := []string{"a@agency.test", "b@agency.test", "c@agency.test"}
	name := c.onboard(0, "f", emails...)
	c.waitProgress(0, name, 60)
	c.waitHolding(c.replicas[2], 10*time.Second)
	c.replicas[2].kill()
	op := waitOperation(t, c.admin(1), name, 2*time.Minute)
	resp := opResponse(t, op)
	if resp.GetFailedTotal() != 6 {
		t.Fatalf("failed %d items, want 6 (two broken workspaces × 3): %v", resp.GetFailedTotal(), resp.GetFailed())
	}
	for _, f := range resp.GetFailed() {
		code := status.FromProto(f.GetStatus()).Code()
		switch f.GetWorkspace() {
		case "workspaces/f-revoked":
			if code != codes.FailedPrecondition {
				t.Fatalf("revoked: %v", f)
			}
		case "workspaces/f-narrow":
			if code != codes.PermissionDenied {
				t.Fatalf("narrow: %v", f)
			}
		default:
			t.Fatalf("unexpected failure %v", f)
		}
	}
	c.checkMembers(ids, emails)

	// Fix both, then retry: only the six failed items run again.
	fresh, err := c.sim.CreateAPIKey(revokedID, "fresh", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.admin(0).Invoke(context.Background(), "agency.v1.WorkspaceService/RotateWorkspaceCredential",
		&agencyv1.RotateWorkspaceCredentialRequest{Name: "workspaces/f-revoked", ApiKey: fresh.Key}, &agencyv1.Workspace{}); err != nil {
		t.Fatal(err)
	}
	wide, err := c.sim.CreateAPIKey(narrowID, "wide", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.admin(0).Invoke(context.Background(), "agency.v1.WorkspaceService/RotateWorkspaceCredential",
		&agencyv1.RotateWorkspaceCredentialRequest{Name: "workspaces/f-narrow", ApiKey: wide.Key}, &agencyv1.Workspace{}); err != nil {
		t.Fatal(err)
	}
	before := c.sim.Stats()
	retry := &longrunningpb.Operation{}
	if err := c.admin(1).Invoke(context.Background(), "agency.v1.OperationService/RetryOperation", &agencyv1.RetryOperationRequest{Name: name}, retry); err != nil {
		t.Fatal(err)
	}
	if md := opMetadata(t, retry); md.GetTotalItems() != 6 || md.GetRetryOf() != name || md.GetWorkspaces() != 2 {
		t.Fatalf("retry metadata %v", md)
	}
	retry = waitOperation(t, c.admin(0), retry.GetName(), time.Minute)
	if r := opResponse(t, retry); r.GetFailedTotal() != 0 || r.GetSummary().GetSucceeded() != 6 {
		t.Fatalf("retry response %v", r)
	}
	after := c.sim.Stats()
	for name, id := range ids {
		if after[id].Requests != before[id].Requests {
			t.Fatalf("retry touched %s, which had succeeded", name)
		}
	}
	c.checkMembers(map[string]string{"workspaces/f-revoked": revokedID, "workspaces/f-narrow": narrowID}, emails)
}

// TestCreateApiKeyOperationKill: CreateApiKeyEverywhere as an operation
// with a replica killed mid-way: afterwards every workspace holds exactly
// one live key of that name, and every secret reached the results.
func TestCreateApiKeyOperationKill(t *testing.T) {
	skipShort(t)
	c := newCluster(t, sim.Config{Latency: 40 * time.Millisecond, FaultAfterRate: 0.05, Seed: 5}, 3, clusterFlags...)
	ids := c.register("key", 150)
	resp := &agencyv1.FanoutResponse{}
	if err := c.admin(0).Invoke(context.Background(), "agency.v1.FanoutService/CreateApiKeyEverywhere", &agencyv1.CreateApiKeyEverywhereRequest{
		Selector: &agencyv1.WorkspaceSelector{LabelSelector: "team=key"}, DisplayName: "reporting", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER,
		LongRunning: true}, resp); err != nil {
		t.Fatal(err)
	}
	name := resp.GetOperation().GetName()
	if name == "" || len(resp.GetResults()) != 0 {
		t.Fatalf("long_running response %v", resp)
	}
	c.waitProgress(0, name, 20)
	c.waitHolding(c.replicas[1], 10*time.Second)
	c.replicas[1].kill()
	op := waitOperation(t, c.admin(0), name, 2*time.Minute)
	if r := opResponse(t, op); r.GetFailedTotal() != 0 {
		t.Fatalf("failures: %v", r.GetFailed())
	}
	secrets := map[string]string{}
	for _, r := range allResults(t, c.admin(0), name, false) {
		k := r.GetResult().GetCreatedApiKey()
		if r.GetResult().GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED || k.GetSecret() == "" {
			t.Fatalf("result %v, want CREATED with its secret", r)
		}
		secrets[r.GetResult().GetWorkspace()] = k.GetSecret()
	}
	for ws, id := range ids {
		st, err := c.sim.WorkspaceState(id)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, k := range st.APIKeys { // revoked keys are deleted
			if k.Name == "reporting" {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("%s has %d live keys named reporting, want 1", ws, live)
		}
		// The secret in the result is a live key (a viewer key may not read
		// its workspace, but it authenticates: 403, not 401).
		req, _ := http.NewRequest(http.MethodGet, c.simURL+"/api/v2/accounts", nil)
		req.Header.Set("Authorization", "Bearer "+secrets[ws])
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s (%s): the result's secret does not open it: %d %s", ws, id, res.StatusCode, body)
		}
	}
}

// TestRestartEverythingMidOnboarding: every replica and Redis (AOF) are
// killed mid-operation and started again; no operation state is lost and
// the operation completes with every member written once.
func TestRestartEverythingMidOnboarding(t *testing.T) {
	skipShort(t)
	c := newCluster(t, sim.Config{Latency: 30 * time.Millisecond}, 2, clusterFlags...)
	ids := c.register("r", 150)
	emails := []string{"a@agency.test", "b@agency.test", "c@agency.test"}
	name := c.onboard(0, "r", emails...)
	c.waitProgress(0, name, 100)
	before := c.progress(0, name)
	for _, r := range c.replicas {
		r.kill()
	}
	c.redis.Kill()
	if err := c.redis.Restart(); err != nil {
		t.Fatal(err)
	}
	c.replicas = nil
	c.start()
	c.start()
	after := c.progress(0, name)
	if after.GetDoneItems() < before.GetDoneItems() || after.GetTotalItems() != 450 {
		t.Fatalf("state lost across the restart: before %v, after %v", before, after)
	}
	op := waitOperation(t, c.admin(1), name, 2*time.Minute)
	if r := opResponse(t, op); r.GetFailedTotal() != 0 {
		t.Fatalf("failures: %v", r.GetFailed())
	}
	c.checkResults(0, name, ids, emails)
	c.checkMembers(ids, emails)
}

// TestSentinelFailoverMidOnboarding: a primary failover in the middle of
// an operation; it completes, every member written once.
func TestSentinelFailoverMidOnboarding(t *testing.T) {
	skipShort(t)
	c := newSentinelCluster(t, sim.Config{Latency: 30 * time.Millisecond}, 2, clusterFlags...)
	ids := c.register("s", 100)
	emails := []string{"a@agency.test", "b@agency.test", "c@agency.test"}
	name := c.onboard(0, "s", emails...)
	c.waitProgress(0, name, 60)
	if err := c.sentinel.Failover(); err != nil {
		t.Fatal(err)
	}
	op := waitOperation(t, c.admin(1), name, 2*time.Minute)
	if r := opResponse(t, op); r.GetFailedTotal() != 0 {
		t.Fatalf("failures: %v", r.GetFailed())
	}
	c.checkResults(0, name, ids, emails)
	c.checkMembers(ids, emails)
}

// TestSIGTERMHandsBackWork: a replica told to stop stops taking work,
// finishes or hands back what it holds, and exits within the shutdown
// timeout; the claim timeout is long here, so the operation can only
// complete in time if the work was handed back rather than reclaimed.
func TestSIGTERMHandsBackWork(t *testing.T) {
	skipShort(t)
	c := newCluster(t, sim.Config{Latency: 50 * time.Millisecond}, 2, "--claim-timeout", "10m", "--max-inflight", "40", "--shutdown-timeout", "1s")
	ids := c.register("t", 120)
	emails := []string{"a@agency.test", "b@agency.test", "c@agency.test", "d@agency.test"}
	name := c.onboard(0, "t", emails...)
	c.waitProgress(0, name, 40)
	c.waitHolding(c.replicas[1], 10*time.Second)
	start := time.Now()
	c.replicas[1].terminate(t, 10*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("exit took %v with --shutdown-timeout 1s", d)
	}
	if n := c.pendingOf(c.replicas[1]); n != 0 {
		t.Fatalf("the stopped replica still holds %d entries", n)
	}
	op := waitOperation(t, c.admin(0), name, time.Minute)
	if r := opResponse(t, op); r.GetFailedTotal() != 0 {
		t.Fatalf("failures: %v", r.GetFailed())
	}
	c.checkResults(0, name, ids, emails)
	c.checkMembers(ids, emails)
}
