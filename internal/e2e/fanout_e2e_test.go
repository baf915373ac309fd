package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

type fanoutWorld struct {
	e      *env
	ids    map[string]string // registry name → Instantly id
	admin  invoker
	prefix string
}

// newFanoutWorld registers healthy workspaces, one whose key Instantly then
// revokes (401) and one whose key lacks member scopes (403), on a simulator
// that fails 10 % of requests with a 5xx (retried).
func newFanoutWorld(t *testing.T, inv func(*env) invoker) *fanoutWorld {
	e := startEnvSim(t, sim.Config{FaultRate: 0.1, Seed: 7}, "", 0, nil)
	w := &fanoutWorld{e: e, ids: map[string]string{}, admin: inv(e)}
	ctx := context.Background()
	reg := func(name, key, id string) {
		t.Helper()
		if err := w.admin.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": "sdr"}}}, &agencyv1.Workspace{}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		w.ids["workspaces/"+name] = id
	}
	for i := 1; i <= 3; i++ {
		id, key := e.sim.CreateWorkspaceWithOwner(fmt.Sprintf("ok%d", i), fmt.Sprintf("owner%d@client.test", i))
		reg(fmt.Sprintf("ok%d", i), key, id)
	}
	revokedID, revokedKey := e.sim.CreateWorkspace("revoked")
	reg("revoked", revokedKey, revokedID)
	st, _ := e.sim.WorkspaceState(revokedID)
	if err := e.sim.RevokeAPIKey(revokedID, st.APIKeys[0].ID); err != nil {
		t.Fatal(err)
	}
	narrowID, _ := e.sim.CreateWorkspace("narrow")
	narrow, err := e.sim.CreateAPIKey(narrowID, "narrow", []string{"workspaces:read"})
	if err != nil {
		t.Fatal(err)
	}
	reg("narrow", narrow.Key, narrowID)
	return w
}

func outcomes(resp *agencyv1.FanoutResponse) map[string]string {
	out := map[string]string{}
	for _, r := range resp.GetResults() {
		o := r.GetOutcome().String()[len("FANOUT_OUTCOME_"):]
		if r.GetStatus() != nil {
			st := status.FromProto(r.GetStatus())
			o += "/" + st.Code().String()
			if ei := errorInfo(st); ei != nil {
				o += "/" + ei.GetReason()
			}
		}
		out[r.GetWorkspace()] = o
	}
	return out
}

func wantOutcomes(t *testing.T, resp *agencyv1.FanoutResponse, want map[string]string) {
	t.Helper()
	got := outcomes(resp)
	if len(got) != len(want) {
		t.Fatalf("results %v, want %v", got, want)
	}
	for ws, o := range want {
		if got[ws] != o {
			t.Fatalf("%s: %s, want %s (all: %v)", ws, got[ws], o, got)
		}
	}
}

// wantDryRun checks every result's dry_run flag.
func wantDryRun(t *testing.T, results []*agencyv1.WorkspaceResult, want bool) {
	t.Helper()
	for _, r := range results {
		if r.GetDryRun() != want {
			t.Fatalf("%s: dry_run %v, want %v (%v)", r.GetWorkspace(), r.GetDryRun(), want, r)
		}
	}
}

// TestFanoutDryRunOperation: a dry run as an operation marks every item's
// result dry_run (its outcome is what would happen) and writes nothing; a
// real run's results are not marked.
func TestFanoutDryRunOperation(t *testing.T) {
	e := startEnv(t, memoryBackend)
	inv := grpcInvoker{conn: e.conn, token: testToken}
	ids := registerWorkspaces(t, e, inv, "dry", 2)
	sel := &agencyv1.WorkspaceSelector{Names: []string{"workspaces/dry-0", "workspaces/dry-1", "workspaces/missing"}}
	run := func(dry bool) []*agencyv1.WorkspaceResult {
		t.Helper()
		op := &longrunningpb.Operation{}
		if err := inv.Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers",
			&agencyv1.OnboardMembersRequest{Selector: sel, People: people("ana@agency.test", "bo@agency.test"), DryRun: dry}, op); err != nil {
			t.Fatal(err)
		}
		waitOperation(t, inv, op.GetName(), time.Minute)
		var out []*agencyv1.WorkspaceResult
		for _, r := range allResults(t, inv, op.GetName(), false) {
			out = append(out, r.GetResult())
		}
		if len(out) != 6 {
			t.Fatalf("%d results, want 6: %v", len(out), out)
		}
		for _, r := range out {
			want := agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED
			if r.GetWorkspace() == "workspaces/missing" {
				want = agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED
			}
			if r.GetOutcome() != want {
				t.Fatalf("dry run %v: %v", dry, r)
			}
		}
		return out
	}
	wantDryRun(t, run(true), true)
	for name, id := range ids {
		if st, _ := e.sim.WorkspaceState(id); len(st.Members) != 1 {
			t.Fatalf("a dry run wrote in %s: %d members", name, len(st.Members))
		}
	}
	wantDryRun(t, run(false), false)
}

// TestFanoutPartialFailures: one result per workspace, each with its own
// error; retries are ALREADY_DONE; dry runs write nothing; over both
// transports.
func TestFanoutPartialFailures(t *testing.T) {
	for _, pick := range []func(*env) invoker{
		func(e *env) invoker { return grpcInvoker{conn: e.conn, token: testToken} },
		func(e *env) invoker { return restInvoker{api: e.rest(testToken)} },
	} {
		probe := pick(startEnv(t, memoryBackend))
		t.Run(probe.Transport(), func(t *testing.T) {
			w := newFanoutWorld(t, pick)
			ctx := context.Background()
			sel := &agencyv1.WorkspaceSelector{LabelSelector: "team=sdr"}
			call := func(method string, req proto.Message) *agencyv1.FanoutResponse {
				t.Helper()
				var resp agencyv1.FanoutResponse
				if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/"+method, req, &resp); err != nil {
					t.Fatalf("%s: %v", method, err)
				}
				return &resp
			}
			_ = call
			var resp agencyv1.FanoutResponse
			invite := &agencyv1.InviteMemberEverywhereRequest{Selector: sel, Email: "new.sdr@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR}
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/InviteMemberEverywhere", invite, &resp); err != nil {
				t.Fatal(err)
			}
			failedRevoked := "FAILED/FailedPrecondition/CREDENTIAL_INVALID"
			failedNarrow := "FAILED/PermissionDenied/SCOPE_DENIED"
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "CREATED", "workspaces/ok2": "CREATED", "workspaces/ok3": "CREATED",
				"workspaces/revoked": failedRevoked, "workspaces/narrow": failedNarrow})
			wantDryRun(t, resp.GetResults(), false)
			if s := resp.GetSummary(); s.GetTotal() != 5 || s.GetSucceeded() != 3 || s.GetFailed() != 2 {
				t.Fatalf("summary %v", s)
			}
			// Retrying the same call does nothing twice.
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/InviteMemberEverywhere", invite, &resp); err != nil {
				t.Fatal(err)
			}
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "ALREADY_DONE", "workspaces/ok2": "ALREADY_DONE", "workspaces/ok3": "ALREADY_DONE",
				"workspaces/revoked": failedRevoked, "workspaces/narrow": failedNarrow})
			for _, ws := range []string{"workspaces/ok1", "workspaces/ok2", "workspaces/ok3"} {
				st, _ := w.e.sim.WorkspaceState(w.ids[ws])
				if len(st.Members) != 2 {
					t.Fatalf("%s has %d members after two invites", ws, len(st.Members))
				}
			}
			// Dry run: outcomes of what would happen, nothing written.
			dry := &agencyv1.InviteMemberEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{Names: []string{"workspaces/ok1", "workspaces/missing"}},
				Email: "maybe@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW, DryRun: true}
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/InviteMemberEverywhere", dry, &resp); err != nil {
				t.Fatal(err)
			}
			if !resp.GetDryRun() {
				t.Fatal("dry_run not echoed")
			}
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "CREATED", "workspaces/missing": "FAILED/NotFound/NOT_FOUND"})
			wantDryRun(t, resp.GetResults(), true)
			if st, _ := w.e.sim.WorkspaceState(w.ids["workspaces/ok1"]); len(st.Members) != 2 {
				t.Fatal("a dry run wrote")
			}
			// Who has access where.
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/ListAccess", &agencyv1.ListAccessRequest{Selector: sel, Email: "new.sdr@agency.test"}, &resp); err != nil {
				t.Fatal(err)
			}
			if len(resp.GetAccessMatrix()) != 1 || len(resp.GetAccessMatrix()[0].GetWorkspaces()) != 3 {
				t.Fatalf("access matrix %v", resp.GetAccessMatrix())
			}
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/ListPendingInvitations", &agencyv1.ListPendingInvitationsRequest{Selector: sel}, &resp); err != nil {
				t.Fatal(err)
			}
			// Every workspace answers: the invited ones with their one
			// pending invitation, the others with their own failure.
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "READ", "workspaces/ok2": "READ", "workspaces/ok3": "READ",
				"workspaces/revoked": failedRevoked, "workspaces/narrow": failedNarrow})
			for _, r := range resp.GetResults() {
				if r.GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ && len(r.GetMembers().GetMembers()) != 1 {
					t.Fatalf("pending in %s: %v", r.GetWorkspace(), r)
				}
			}
			// Tags everywhere: created, then reused.
			ensure := &agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{Names: []string{"workspaces/ok1", "workspaces/ok2"}}, Label: "SDR-West"}
			for _, want := range []string{"CREATED", "ALREADY_DONE"} {
				if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/EnsureTagEverywhere", ensure, &resp); err != nil {
					t.Fatal(err)
				}
				wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": want, "workspaces/ok2": want})
			}
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/DeleteTagEverywhere", &agencyv1.DeleteTagEverywhereRequest{Selector: ensure.GetSelector(), Label: " sdr-west "}, &resp); err != nil {
				t.Fatal(err)
			}
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "DELETED", "workspaces/ok2": "DELETED"})
			// The key audit flags every workspace's original all:all key.
			if err := w.admin.Invoke(ctx, "agency.v1.FanoutService/AuditApiKeys", &agencyv1.AuditApiKeysRequest{Selector: &agencyv1.WorkspaceSelector{All: true}}, &resp); err != nil {
				t.Fatal(err)
			}
			wantOutcomes(t, &resp, map[string]string{"workspaces/ok1": "READ", "workspaces/ok2": "READ", "workspaces/ok3": "READ",
				"workspaces/revoked": failedRevoked, "workspaces/narrow": failedNarrow})
			for _, r := range resp.GetResults() {
				if r.GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ && r.GetApiKeys().GetOverPrivileged() != 1 {
					t.Fatalf("%s key audit: %v", r.GetWorkspace(), r.GetApiKeys())
				}
			}
			var faults int
			for _, s := range w.e.sim.Stats() {
				faults += int(s.Faults)
			}
			if faults == 0 {
				t.Fatal("the simulator injected no 5xx: the retry path was not exercised")
			}
		})
	}
}
