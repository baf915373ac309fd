package desiredstate

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/instantly"
	ops "github.com/agencyplane/agencyplane/internal/operations"
)

func TestPlanNames(t *testing.T) {
	id := ops.NewID()
	if got, ok := parsePlanName(planName(id)); !ok || got != id {
		t.Fatalf("round trip: %q %v", got, ok)
	}
	for _, bad := range []string{"", "plans/", "plans/x", "operations/" + id, "plans/" + id + "/x", "plans/" + id[:25] + "A"} {
		if _, ok := parsePlanName(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestChangeRoundTrip(t *testing.T) {
	for _, c := range []ds.Change{
		{Kind: ds.Invite, Email: "a@x.io", Role: instantly.RoleEditor, Line: 4},
		{Kind: ds.Role, Email: "a@x.io", Role: instantly.RoleAdmin, CurrentRole: instantly.RoleView, Pending: true, Line: 7},
		{Kind: ds.Remove, Email: "a@x.io", CurrentRole: instantly.RoleAdmin},
		{Kind: ds.Tag, Label: "Q3 push", Line: 9},
	} {
		if got := changeFromProto(changeToProto(c)); got != c {
			t.Errorf("%+v came back %+v", c, got)
		}
	}
}

// TestOutcome: a workspace's result lists every planned change with what
// became of it; one failure fails the workspace with its status.
func TestOutcome(t *testing.T) {
	s := &Service{}
	invite := ds.Change{Kind: ds.Invite, Email: "a@x.io", Role: instantly.RoleView}
	remove := ds.Change{Kind: ds.Remove, Email: "b@x.io", CurrentRole: instantly.RoleEditor}
	extra := ds.Change{Kind: ds.Remove, Email: "c@x.io", CurrentRole: instantly.RoleView}
	wp := &agencyv1.WorkspacePlan{Workspace: "workspaces/w", Changes: []*agencyv1.Change{changeToProto(invite), changeToProto(remove)}}
	state := func(c ds.Change, st agencyv1.ChangeState, code codes.Code) *agencyv1.Change {
		pc := changeToProto(c)
		pc.State = st
		if code != codes.OK {
			pc.Status = status.New(code, "refused").Proto()
		}
		return pc
	}
	planned := []ds.Change{invite, remove}

	r := s.outcome(wp, planned, planned, []*agencyv1.Change{state(invite, agencyv1.ChangeState_CHANGE_STATE_APPLIED, codes.OK),
		state(remove, agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, codes.OK)}, false)
	if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED || len(r.GetDesiredState().GetChanges()) != 2 {
		t.Fatalf("applied: %v", r)
	}
	r = s.outcome(wp, planned, planned, []*agencyv1.Change{state(invite, agencyv1.ChangeState_CHANGE_STATE_APPLIED, codes.OK),
		state(remove, agencyv1.ChangeState_CHANGE_STATE_FAILED, codes.FailedPrecondition)}, false)
	if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || codes.Code(r.GetStatus().GetCode()) != codes.FailedPrecondition || r.GetNote() == "" {
		t.Fatalf("failed: %v", r)
	}
	// After an interrupted attempt, a planned change no longer needed was
	// made by it; a replanned change is listed after the planned ones.
	r = s.outcome(wp, planned, []ds.Change{remove, extra}, []*agencyv1.Change{state(remove, agencyv1.ChangeState_CHANGE_STATE_APPLIED, codes.OK),
		state(extra, agencyv1.ChangeState_CHANGE_STATE_APPLIED, codes.OK)}, true)
	got := r.GetDesiredState().GetChanges()
	if len(got) != 3 || got[0].GetState() != agencyv1.ChangeState_CHANGE_STATE_APPLIED || got[2].GetEmail() != "c@x.io" {
		t.Fatalf("re-run: %v", got)
	}
	// Nothing left to do and nothing written: already done.
	r = s.outcome(wp, planned, nil, nil, false)
	if r.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE || r.GetDesiredState().GetChanges()[0].GetState() != agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE {
		t.Fatalf("nothing to do: %v", r)
	}
}

func TestSummarize(t *testing.T) {
	wps := []*agencyv1.WorkspacePlan{
		{Workspace: "workspaces/a", Changes: []*agencyv1.Change{changeToProto(ds.Change{Kind: ds.Invite}), changeToProto(ds.Change{Kind: ds.Remove}),
			changeToProto(ds.Change{Kind: ds.Tag})}, Kept: []*agencyv1.KeptMember{{}}},
		{Workspace: "workspaces/b", Changes: []*agencyv1.Change{changeToProto(ds.Change{Kind: ds.Role}), changeToProto(ds.Change{Kind: ds.Remove})}},
		{Workspace: "workspaces/c"},
		{Workspace: "workspaces/d", Status: status.New(codes.Unavailable, "down").Proto()},
	}
	s := summarize(wps)
	if s.GetWorkspaces() != 4 || s.GetChangedWorkspaces() != 2 || s.GetFailedWorkspaces() != 1 || s.GetInvites() != 1 ||
		s.GetRoleChanges() != 1 || s.GetRemovals() != 2 || s.GetTagCreations() != 1 || s.GetKept() != 1 {
		t.Fatalf("summary %v", s)
	}
	if r := removalsOf(wps); r["workspaces/a"] != 1 || r["workspaces/b"] != 1 || len(r) != 2 {
		t.Fatalf("removals %v", r)
	}
}
