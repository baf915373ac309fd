package fanoutsvc

import (
	"context"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/service/groupmembers"
)

// InviteSubWorkspacesToGroup implements agencyv1.FanoutServiceServer.
func (s *Service) InviteSubWorkspacesToGroup(ctx context.Context, req *agencyv1.InviteSubWorkspacesToGroupRequest) (*agencyv1.FanoutResponse, error) {
	admin, err := s.resolver.Resolve(ctx, req.GetAdminWorkspace())
	if err != nil {
		return nil, err
	}
	if req.GetLongRunning() {
		// The admin workspace was resolved in the caller's scope above;
		// workers read its group links per workspace.
		return s.startFanout(ctx, agencyv1.FanoutService_InviteSubWorkspacesToGroup_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	// Read before write: the group's current links, once for the whole call.
	links := map[string]*instantly.WorkspaceGroupMember{}
	for gm, err := range s.client.AllWorkspaceGroupMembers(ctx, admin.Cred, instantly.ListParams{}) {
		if err != nil {
			return nil, err
		}
		links[gm.SubWorkspaceID] = &gm
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), func(ctx context.Context, t target, _ instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		sub := t.ws.InstantlyWorkspaceID
		if sub == admin.Workspace.InstantlyWorkspaceID {
			return nil, fanout.Failed, apierr.Field("selector", "%s is the admin workspace itself", t.name)
		}
		if gm, ok := links[sub]; ok && gm.Status != instantly.GroupMemberRejected {
			return groupResult(req.GetAdminWorkspace(), gm), fanout.AlreadyDone, nil
		}
		if req.GetDryRun() {
			return nil, fanout.Created, nil
		}
		gm, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceGroupMember, error) {
			return s.client.CreateWorkspaceGroupMember(ctx, admin.Cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: sub})
		}, func(ctx context.Context) (*instantly.WorkspaceGroupMember, bool, error) {
			for gm, err := range s.client.AllWorkspaceGroupMembers(ctx, admin.Cred, instantly.ListParams{}) {
				if err != nil || (gm.SubWorkspaceID == sub && gm.Status != instantly.GroupMemberRejected) {
					return &gm, err == nil, err
				}
			}
			return nil, false, nil
		})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return groupResult(req.GetAdminWorkspace(), gm), fanout.Created, nil
	})
}

func groupResult(admin string, gm *instantly.WorkspaceGroupMember) *agencyv1.WorkspaceResult {
	return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_GroupMember{GroupMember: groupmembers.ToProto(admin, gm)}}
}
