package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestDesiredStateLongRunningPlan: on both backends, CreatePlan with
// long_running returns at once the plan's name and the operation reading
// the workspaces (the same id); each item's result is its workspace's plan;
// once the operation has ended, GetPlan returns the same plan as the unary
// CreatePlan of the same file (changes, kept members, fingerprints, summary;
// a workspace whose key was revoked is unreadable in both, and a FAILED item)
// and it applies; a second plan is then empty.
func TestDesiredStateLongRunningPlan(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			w := newDSWorld(t, b, 24, 0)
			ctx := context.Background()
			// One workspace cannot be read: its key was revoked.
			const broken = 5
			for _, k := range w.state(broken).APIKeys {
				if err := w.e.sim.RevokeAPIKey(w.ids[w.names[broken]], k.ID); err != nil {
					t.Fatal(err)
				}
			}
			unary := w.plan(w.inv, agencyFile)

			started := &agencyv1.Plan{}
			if err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/CreatePlan",
				&agencyv1.CreatePlanRequest{DesiredState: agencyFile, View: agencyv1.PlanView_PLAN_VIEW_FULL, LongRunning: true}, started); err != nil {
				t.Fatalf("CreatePlan(long_running): %v", err)
			}
			op := started.GetCreateOperation()
			id, _ := strings.CutPrefix(started.GetName(), "plans/")
			if op.GetName() != "operations/"+id || len(started.GetWorkspaces()) != 0 || started.GetSummary() != nil {
				t.Fatalf("long-running CreatePlan answered %v", started)
			}
			if md := opMetadata(t, op); md.GetMethod() != "agency.v1.DesiredStateService/CreatePlan" || md.GetTotalItems() != int64(w.n) {
				t.Fatalf("metadata %v, want CreatePlan over %d workspaces", md, w.n)
			}
			done := waitOperation(t, w.inv, op.GetName(), time.Minute)
			if resp := opResponse(t, done); resp.GetFailedTotal() != 1 || resp.GetSummary().GetSucceeded() != int32(w.n-1) ||
				len(resp.GetFailed()) != 1 || resp.GetFailed()[0].GetWorkspace() != w.names[broken] {
				t.Fatalf("operation response %v", resp)
			}

			byName := map[string]*agencyv1.WorkspacePlan{}
			for _, wp := range unary.GetWorkspaces() {
				byName[wp.GetWorkspace()] = wp
			}
			results := allResults(t, w.inv, op.GetName(), false)
			if len(results) != w.n {
				t.Fatalf("%d results, want %d", len(results), w.n)
			}
			for _, r := range results {
				res := r.GetResult()
				if res.GetWorkspace() == w.names[broken] {
					if res.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || res.GetStatus() == nil ||
						res.GetDesiredState().GetStatus().GetCode() != res.GetStatus().GetCode() {
						t.Fatalf("%s (revoked key): %v", res.GetWorkspace(), res)
					}
				} else if res.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ {
					t.Fatalf("%s: outcome %v (%v)", res.GetWorkspace(), res.GetOutcome(), res.GetStatus())
				}
				if !proto.Equal(res.GetDesiredState(), byName[res.GetWorkspace()]) {
					t.Fatalf("%s: item result\n%v\nunary plan\n%v", res.GetWorkspace(), res.GetDesiredState(), byName[res.GetWorkspace()])
				}
			}

			got := &agencyv1.Plan{}
			if err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan",
				&agencyv1.GetPlanRequest{Name: started.GetName(), View: agencyv1.PlanView_PLAN_VIEW_FULL}, got); err != nil {
				t.Fatalf("GetPlan: %v", err)
			}
			if got.GetName() != started.GetName() || got.GetFingerprint() != unary.GetFingerprint() ||
				!proto.Equal(got.GetSummary(), unary.GetSummary()) || !slices.Equal(got.GetLimitViolations(), unary.GetLimitViolations()) ||
				len(got.GetWorkspaces()) != len(unary.GetWorkspaces()) {
				t.Fatalf("long-running plan\n%v\nunary plan\n%v", got, unary)
			}
			for i, wp := range got.GetWorkspaces() {
				if !proto.Equal(wp, unary.GetWorkspaces()[i]) {
					t.Fatalf("%s differs:\n%v\nvs\n%v", wp.GetWorkspace(), wp, unary.GetWorkspaces()[i])
				}
			}
			if got.GetSummary().GetChangedWorkspaces() == 0 || got.GetSummary().GetFailedWorkspaces() != 1 ||
				got.GetWorkspaces()[broken].GetStatus() == nil {
				t.Fatalf("the test's file should plan changes, and %s be unreadable: %v", w.names[broken], got.GetSummary())
			}

			// A name that is no plan and no CreatePlan operation stays
			// NOT_FOUND.
			err := w.inv.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan",
				&agencyv1.GetPlanRequest{Name: "plans/" + strings.Repeat("0", len(id))}, &agencyv1.Plan{})
			if status.Code(err) != codes.NotFound {
				t.Fatalf("GetPlan of an unknown plan: %v, want NOT_FOUND", err)
			}

			for ws, r := range w.applyAndWait(started.GetName(), false) {
				if r.GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED {
					t.Fatalf("%s: apply failed: %v %s", ws, r.GetStatus(), r.GetNote())
				}
			}
			if again := w.plan(w.inv, agencyFile); again.GetSummary().GetChangedWorkspaces() != 0 || again.GetSummary().GetFailedWorkspaces() != 1 {
				t.Fatalf("a plan after applying the long-running plan still has changes: %v", again.GetSummary())
			}
		})
	}
}

// TestDesiredStateLongRunningPlanReplicas: a long-running plan started on
// one replica is refused as incomplete (FAILED_PRECONDITION, plan: reading)
// by another while its workspaces are being read, then followed and read
// there, and it equals the unary plan of the same file.
func TestDesiredStateLongRunningPlanReplicas(t *testing.T) {
	reps := startReplicas(t, sim.Config{Latency: 200 * time.Millisecond}, 2)
	ctx := context.Background()
	for i := range 6 {
		_, key := reps[0].sim.CreateWorkspace(fmt.Sprintf("Client %d", i))
		if _, err := reps[0].grpc(testToken).Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: fmt.Sprintf("lr-%d", i),
			Workspace: &agencyv1.Workspace{DisplayName: fmt.Sprintf("Client %d", i), ApiKey: &key, Labels: map[string]string{"team": "smb"}}}); err != nil {
			t.Fatal(err)
		}
	}
	first := grpcInvoker{conn: reps[0].conn, token: testToken}
	second := grpcInvoker{conn: reps[1].conn, token: testToken}
	const file = "version: 1\npeople:\n  - email: ana@agency.example\n    access:\n      - selector: \"team=smb\"\n        role: editor\n"
	started := &agencyv1.Plan{}
	if err := first.Invoke(ctx, "agency.v1.DesiredStateService/CreatePlan",
		&agencyv1.CreatePlanRequest{DesiredState: file, LongRunning: true}, started); err != nil {
		t.Fatal(err)
	}
	err := second.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan", &agencyv1.GetPlanRequest{Name: started.GetName()}, &agencyv1.Plan{})
	wantRefused(t, err, codes.FailedPrecondition, "plan", "reading")
	waitOperation(t, second, started.GetCreateOperation().GetName(), time.Minute)
	got := &agencyv1.Plan{}
	if err := second.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan",
		&agencyv1.GetPlanRequest{Name: started.GetName(), View: agencyv1.PlanView_PLAN_VIEW_FULL}, got); err != nil {
		t.Fatal(err)
	}
	unary := &agencyv1.Plan{}
	if err := first.Invoke(ctx, "agency.v1.DesiredStateService/CreatePlan",
		&agencyv1.CreatePlanRequest{DesiredState: file, View: agencyv1.PlanView_PLAN_VIEW_FULL}, unary); err != nil {
		t.Fatal(err)
	}
	if len(got.GetWorkspaces()) != 6 || got.GetSummary().GetInvites() != 6 || got.GetFingerprint() != unary.GetFingerprint() ||
		!proto.Equal(got.GetSummary(), unary.GetSummary()) {
		t.Fatalf("long-running plan read on the other replica\n%v\nunary plan\n%v", got, unary)
	}
	again := &agencyv1.Plan{}
	if err := first.Invoke(ctx, "agency.v1.DesiredStateService/GetPlan", &agencyv1.GetPlanRequest{Name: started.GetName()}, again); err != nil ||
		again.GetFingerprint() != got.GetFingerprint() || !again.GetCreateTime().AsTime().Equal(got.GetCreateTime().AsTime()) {
		t.Fatalf("the first replica reads %v (%v)", again, err)
	}
}
