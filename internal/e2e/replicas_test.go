package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// startReplicas starts n agencyd instances as replicas of one deployment:
// one Redis under one key prefix, one master key, and one simulator
// (configured by simCfg) that every replica talks to. Each env's sim is that
// shared simulator.
func startReplicas(t *testing.T, simCfg sim.Config, n int) []*env {
	t.Helper()
	redisURL := "redis://" + redistest.Start(t).Options().Addr + "/0"
	var shared config.Config
	first := startEnvSim(t, simCfg, redisURL, 0, func(c *config.Config) { shared = *c })
	out := []*env{first}
	for range n - 1 {
		e := startEnvSim(t, sim.Config{}, redisURL, 0, func(c *config.Config) {
			c.RedisPrefix, c.MasterKey, c.InstantlyURL = shared.RedisPrefix, shared.MasterKey, shared.InstantlyURL
		})
		e.sim, e.prefix = first.sim, first.prefix // its own simulator is never called
		out = append(out, e)
	}
	return out
}

func authCtx(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testToken)
}

// acceptedAdmins lists the emails of a simulated workspace's accepted admins.
func acceptedAdmins(t *testing.T, s *sim.Server, id string) []string {
	t.Helper()
	st, err := s.WorkspaceState(id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range st.Members {
		if m.Role == sim.RoleAdmin && m.Accepted {
			out = append(out, m.Email)
		}
	}
	return out
}

// TestReplicasLastAdminGuard: two replicas on one Redis each remove (or
// demote) one of a workspace's two accepted admins at the same moment,
// through every path that can; the per-workspace member lock makes one of
// them read the other's result, so the workspace always keeps an admin and
// exactly one call is refused with FAILED_PRECONDITION.
func TestReplicasLastAdminGuard(t *testing.T) {
	reps := startReplicas(t, sim.Config{Latency: 25 * time.Millisecond}, 2)
	simSrv := reps[0].sim
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	id, key := simSrv.CreateWorkspaceWithOwner("Race", "owner@client.test")
	const ws = "workspaces/race"
	if _, err := agencyv1.NewWorkspaceServiceClient(reps[0].conn).CreateWorkspace(authCtx(ctx), &agencyv1.CreateWorkspaceRequest{
		WorkspaceId: "race", Workspace: &agencyv1.Workspace{DisplayName: "Race", ApiKey: &key}}); err != nil {
		t.Fatal(err)
	}
	fresh := 0
	// topUp invites and accepts fresh admins until the workspace has two
	// accepted ones, through the simulator's Go API.
	topUp := func() []string {
		t.Helper()
		for len(acceptedAdmins(t, simSrv, id)) < 2 {
			fresh++
			m, err := simSrv.InviteMember(id, fmt.Sprintf("admin%d@agency.test", fresh), sim.RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			if err := simSrv.AcceptMember(id, m.ID); err != nil {
				t.Fatal(err)
			}
		}
		admins := acceptedAdmins(t, simSrv, id)
		if len(admins) != 2 {
			t.Fatalf("accepted admins %v, want two", admins)
		}
		return admins
	}

	// Each path answers the gRPC code of its one change.
	type path func(ctx context.Context, e *env, email string) codes.Code
	fanoutCode := func(resp *agencyv1.FanoutResponse, err error, done agencyv1.FanoutOutcome) codes.Code {
		if err != nil {
			return status.Code(err)
		}
		if len(resp.GetResults()) != 1 {
			return codes.Internal
		}
		r := resp.GetResults()[0]
		if c := codes.Code(r.GetStatus().GetCode()); c != codes.OK || r.GetOutcome() == done {
			return c
		}
		return codes.Unknown // succeeded without doing the change
	}
	sel := &agencyv1.WorkspaceSelector{Names: []string{ws}}
	paths := []struct {
		name string
		call path
	}{
		{"RemoveMemberEverywhere", func(ctx context.Context, e *env, email string) codes.Code {
			resp, err := agencyv1.NewFanoutServiceClient(e.conn).RemoveMemberEverywhere(authCtx(ctx), &agencyv1.RemoveMemberEverywhereRequest{Selector: sel, Email: email})
			return fanoutCode(resp, err, agencyv1.FanoutOutcome_FANOUT_OUTCOME_DELETED)
		}},
		{"RemoveMember", func(ctx context.Context, e *env, email string) codes.Code {
			_, err := agencyv1.NewMemberServiceClient(e.conn).RemoveMember(authCtx(ctx), &agencyv1.RemoveMemberRequest{Name: ws + "/members/" + email})
			return status.Code(err)
		}},
		{"UpdateMemberRole", func(ctx context.Context, e *env, email string) codes.Code {
			_, err := agencyv1.NewMemberServiceClient(e.conn).UpdateMemberRole(authCtx(ctx), &agencyv1.UpdateMemberRoleRequest{Name: ws + "/members/" + email, Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW})
			return status.Code(err)
		}},
		{"UpdateMemberRoleEverywhere", func(ctx context.Context, e *env, email string) codes.Code {
			resp, err := agencyv1.NewFanoutServiceClient(e.conn).UpdateMemberRoleEverywhere(authCtx(ctx), &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: sel, Email: email, Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR})
			return fanoutCode(resp, err, agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED)
		}},
	}
	const trials = 50
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			trialCount := trials
			if p.name == "UpdateMemberRoleEverywhere" {
				trialCount = 15 // the fan-out removal already covers this path's plumbing
			}
			noAdmin, bad := 0, 0
			for trial := range trialCount {
				admins := topUp()
				start := make(chan struct{})
				got := make([]codes.Code, 2)
				var wg sync.WaitGroup
				for i := range 2 {
					wg.Go(func() {
						cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
						defer cancel()
						<-start
						got[i] = p.call(cctx, reps[i], admins[i]) // replica i changes admin i
					})
				}
				close(start)
				wg.Wait()
				left := acceptedAdmins(t, simSrv, id)
				if len(left) == 0 {
					noAdmin++
				}
				refused, ok := 0, 0
				for _, c := range got {
					switch c {
					case codes.FailedPrecondition:
						refused++
					case codes.OK:
						ok++
					}
				}
				if refused != 1 || ok != 1 || len(left) != 1 {
					bad++
					t.Logf("trial %d: codes %v, accepted admins left %v", trial, got, left)
				}
			}
			if noAdmin > 0 || bad > 0 {
				t.Fatalf("%d of %d trials left the workspace with no accepted admin; %d did not end with exactly one change made and one refused", noAdmin, trialCount, bad)
			}
		})
	}
}
