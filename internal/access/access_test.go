package access_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/access"
)

func TestMatrix(t *testing.T) {
	admin, view := agencyv1.MemberRole_MEMBER_ROLE_ADMIN, agencyv1.MemberRole_MEMBER_ROLE_VIEW
	results := []*agencyv1.WorkspaceResult{
		{Workspace: "workspaces/b", Payload: &agencyv1.WorkspaceResult_Members{Members: &agencyv1.MemberList{Members: []*agencyv1.Member{
			{Email: "Zed@x.test", Role: view},
			{Email: "ann@x.test", Role: admin, Accepted: true},
		}}}},
		{Workspace: "workspaces/a", Payload: &agencyv1.WorkspaceResult_Member{Member: &agencyv1.Member{Email: "ANN@x.test", Role: view, Accepted: true}}},
		{Workspace: "workspaces/c", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED}, // no payload: nobody
	}
	want := []*agencyv1.PersonAccess{
		{Email: "ann@x.test", Workspaces: []*agencyv1.WorkspaceRole{
			{Workspace: "workspaces/b", Role: admin, Accepted: true},
			{Workspace: "workspaces/a", Role: view, Accepted: true},
		}},
		{Email: "zed@x.test", Workspaces: []*agencyv1.WorkspaceRole{{Workspace: "workspaces/b", Role: view}}},
	}
	got := access.Matrix(results)
	if len(got) != len(want) {
		t.Fatalf("%d people, want %d: %v", len(got), len(want), got)
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("person %d = %v, want %v", i, got[i], want[i])
		}
	}
	if got := access.Matrix(nil); got == nil || len(got) != 0 {
		t.Errorf("Matrix(nil) = %#v, want an empty, non-nil list", got)
	}
}
