package e2e

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// TestFanoutLastAdminGuard: the owner and a workspace's last admin are
// never removed or demoted; with a second admin the removal goes through.
func TestFanoutLastAdminGuard(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			id, key := e.sim.CreateWorkspaceWithOwner("guarded "+inv.Transport(), "owner-"+inv.Transport()+"@client.test")
			name := "workspaces/guarded-" + inv.Transport()
			if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "guarded-" + inv.Transport(),
				Workspace: &agencyv1.Workspace{DisplayName: "g", ApiKey: &key}}, &agencyv1.Workspace{}); err != nil {
				t.Fatal(err)
			}
			boss, _ := e.sim.InviteMember(id, "boss@agency.test", "admin")
			_ = e.sim.AcceptMember(id, boss.ID)
			sel := &agencyv1.WorkspaceSelector{Names: []string{name}}
			var resp agencyv1.FanoutResponse
			remove := func(email string) {
				t.Helper()
				if err := inv.Invoke(ctx, "agency.v1.FanoutService/RemoveMemberEverywhere", &agencyv1.RemoveMemberEverywhereRequest{Selector: sel, Email: email}, &resp); err != nil {
					t.Fatal(err)
				}
			}
			remove("boss@agency.test")
			wantOutcomes(t, &resp, map[string]string{name: "FAILED/FailedPrecondition/CONFLICT"})
			if err := inv.Invoke(ctx, "agency.v1.FanoutService/UpdateMemberRoleEverywhere", &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: sel, Email: "boss@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &resp); err != nil {
				t.Fatal(err)
			}
			wantOutcomes(t, &resp, map[string]string{name: "FAILED/FailedPrecondition/CONFLICT"})
			remove("owner-" + inv.Transport() + "@client.test")
			wantOutcomes(t, &resp, map[string]string{name: "FAILED/FailedPrecondition/CONFLICT"})
			remove("stranger@agency.test")
			wantOutcomes(t, &resp, map[string]string{name: "SKIPPED"})
			// A pending admin invitation is not an admin: withdrawing it is
			// allowed even though boss is the only accepted admin.
			if _, err := e.sim.InviteMember(id, "pending-admin@agency.test", "admin"); err != nil {
				t.Fatal(err)
			}
			remove("pending-admin@agency.test")
			wantOutcomes(t, &resp, map[string]string{name: "DELETED"})
			// A second (accepted) admin lifts the guard.
			deputy, _ := e.sim.InviteMember(id, "deputy@agency.test", "admin")
			_ = e.sim.AcceptMember(id, deputy.ID)
			remove("boss@agency.test")
			wantOutcomes(t, &resp, map[string]string{name: "DELETED"})
			if err := inv.Invoke(ctx, "agency.v1.FanoutService/UpdateMemberRoleEverywhere", &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: sel, Email: "deputy@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_ADMIN}, &resp); err != nil {
				t.Fatal(err)
			}
			wantOutcomes(t, &resp, map[string]string{name: "ALREADY_DONE"})
		})
	}
}

// TestFanoutSelectorErrors: a selector is exactly one of its forms, each
// checked before any upstream call.
func TestFanoutSelectorErrors(t *testing.T) {
	e := startEnv(t, memoryBackend)
	for _, inv := range e.invokers(testToken) {
		for _, tc := range []struct {
			name  string
			sel   *agencyv1.WorkspaceSelector
			field string
		}{
			{"none", &agencyv1.WorkspaceSelector{}, "selector"},
			{"two forms", &agencyv1.WorkspaceSelector{All: true, LabelSelector: "a=b"}, "selector"},
			{"bad label selector", &agencyv1.WorkspaceSelector{LabelSelector: "team in (a"}, "selector.label_selector"},
			{"bad name", &agencyv1.WorkspaceSelector{Names: []string{"workspaces/Bad_Name"}}, "selector.names[0]"},
			{"duplicate names", &agencyv1.WorkspaceSelector{Names: []string{"workspaces/a", "workspaces/a"}}, "selector.names"},
		} {
			t.Run(inv.Transport()+"/"+tc.name, func(t *testing.T) {
				before := totalUpstreamRequests(e)
				err := inv.Invoke(context.Background(), "agency.v1.FanoutService/EnsureTagEverywhere", &agencyv1.EnsureTagEverywhereRequest{Selector: tc.sel, Label: "x"}, &agencyv1.FanoutResponse{})
				wantField(t, wantCode(t, err, codes.InvalidArgument), tc.field)
				if totalUpstreamRequests(e) != before {
					t.Fatal("a bad selector reached Instantly")
				}
			})
		}
	}
}
