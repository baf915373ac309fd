package fanoutsvc

import (
	"context"
	"strings"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/access"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/service/members"
)

func memberResult(t target, m *instantly.WorkspaceMember) *agencyv1.WorkspaceResult {
	return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_Member{Member: members.ToProto(t.name, m)}}
}

// InviteMemberEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) InviteMemberEverywhere(ctx context.Context, req *agencyv1.InviteMemberEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	for _, p := range req.GetPermissions() {
		if !instantly.ValidPermission(p) {
			return nil, apierr.Field("permissions", "%q is not an Instantly permission", p)
		}
	}
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_InviteMemberEverywhere_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), s.inviteOp(req))
}

// inviteOp is InviteMemberEverywhere in one workspace.
func (s *Service) inviteOp(req *agencyv1.InviteMemberEverywhereRequest) op {
	role := members.RoleToUpstream(req.GetRole())
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		existing, err := members.FindByEmail(ctx, s.client, cred, req.GetEmail())
		if err != nil {
			return nil, fanout.Failed, err
		}
		if existing != nil {
			// Present (or invited) already: with that role, or pending, the
			// invite is done; with another role it is not ours to change here.
			if existing.Role == role || !existing.Accepted {
				return memberResult(t, existing), fanout.AlreadyDone, nil
			}
			return memberResult(t, existing), fanout.Skipped,
				precondition("%s is already a member with role %s; use UpdateMemberRoleEverywhere", req.GetEmail(), existing.Role)
		}
		if req.GetDryRun() {
			return nil, fanout.Created, nil
		}
		m, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceMember, error) {
			return s.client.CreateWorkspaceMember(ctx, cred, instantly.CreateWorkspaceMemberRequest{Email: req.GetEmail(), Role: role, Permissions: req.GetPermissions()})
		}, func(ctx context.Context) (*instantly.WorkspaceMember, bool, error) {
			m, err := members.FindByEmail(ctx, s.client, cred, req.GetEmail())
			return m, m != nil, err
		})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return memberResult(t, m), fanout.Created, nil
	}
}

// UpdateMemberRoleEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) UpdateMemberRoleEverywhere(ctx context.Context, req *agencyv1.UpdateMemberRoleEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_UpdateMemberRoleEverywhere_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), s.updateRoleOp(req))
}

// updateRoleOp is UpdateMemberRoleEverywhere in one workspace, through the
// member guard.
func (s *Service) updateRoleOp(req *agencyv1.UpdateMemberRoleEverywhereRequest) op {
	change := memberguard.SetRole(members.RoleToUpstream(req.GetRole()))
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		return s.guarded(ctx, t, cred, req.GetEmail(), change, req.GetDryRun())
	}
}

// RemoveMemberEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) RemoveMemberEverywhere(ctx context.Context, req *agencyv1.RemoveMemberEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_RemoveMemberEverywhere_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), s.removeOp(req))
}

// removeOp is RemoveMemberEverywhere in one workspace, through the member
// guard.
func (s *Service) removeOp(req *agencyv1.RemoveMemberEverywhereRequest) op {
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		return s.guarded(ctx, t, cred, req.GetEmail(), memberguard.Removal(), req.GetDryRun())
	}
}

// guarded makes one workspace's change through the member guard (the
// owner/last-admin rule under the workspace's member lock; a dry run reads
// and applies the rule only) and maps its answer to a fan-out result.
func (s *Service) guarded(ctx context.Context, t target, cred instantly.Credential, email string, change memberguard.Change, dryRun bool) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
	res, err := s.guard.Apply(ctx, memberguard.Request{Workspace: t.ws, Cred: cred, Member: email, Change: change, DryRun: dryRun})
	var wr *agencyv1.WorkspaceResult
	if res.Member != nil {
		wr = memberResult(t, res.Member)
	}
	switch {
	case err != nil:
		return wr, fanout.Failed, err
	case res.Outcome == memberguard.NoSuchMember:
		return nil, fanout.Skipped, nil
	case res.Outcome == memberguard.Unchanged:
		return wr, fanout.AlreadyDone, nil
	case res.Outcome == memberguard.Removed:
		return wr, fanout.Deleted, nil
	}
	return wr, fanout.Updated, nil
}

// membersAnd reads every member of the workspace and picks out email.
func (s *Service) membersAnd(ctx context.Context, cred instantly.Credential, email string) ([]instantly.WorkspaceMember, *instantly.WorkspaceMember, error) {
	all, err := instantly.Collect(s.client.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{}))
	if err != nil {
		return nil, nil, err
	}
	for i := range all {
		if email != "" && strings.EqualFold(all[i].Email, email) {
			return all, &all[i], nil
		}
	}
	return all, nil, nil
}

// ListAccess implements agencyv1.FanoutServiceServer.
func (s *Service) ListAccess(ctx context.Context, req *agencyv1.ListAccessRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_ListAccess_FullMethodName, req, req.GetSelector(), false, "")
	}
	resp, err := s.run(ctx, req.GetSelector(), false, s.accessOp(req))
	if err != nil {
		return nil, err
	}
	resp.AccessMatrix = access.Matrix(resp.GetResults())
	return resp, nil
}

// accessOp is ListAccess in one workspace.
func (s *Service) accessOp(req *agencyv1.ListAccessRequest) op {
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		all, m, err := s.membersAnd(ctx, cred, req.GetEmail())
		if err != nil {
			return nil, fanout.Failed, err
		}
		if req.GetEmail() != "" {
			if m == nil {
				return nil, fanout.Skipped, nil
			}
			return memberResult(t, m), fanout.Read, nil
		}
		list := &agencyv1.MemberList{}
		for i := range all {
			list.Members = append(list.Members, members.ToProto(t.name, &all[i]))
		}
		return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_Members{Members: list}}, fanout.Read, nil
	}
}

// ListPendingInvitations implements agencyv1.FanoutServiceServer.
func (s *Service) ListPendingInvitations(ctx context.Context, req *agencyv1.ListPendingInvitationsRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_ListPendingInvitations_FullMethodName, req, req.GetSelector(), false, "")
	}
	return s.run(ctx, req.GetSelector(), false, s.pendingOp())
}

// pendingOp is ListPendingInvitations in one workspace.
func (s *Service) pendingOp() op {
	pending := false
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		list := &agencyv1.MemberList{}
		for m, err := range s.client.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{Accepted: &pending}) {
			if err != nil {
				return nil, fanout.Failed, err
			}
			if !m.Accepted {
				list.Members = append(list.Members, members.ToProto(t.name, &m))
			}
		}
		return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_Members{Members: list}}, fanout.Read, nil
	}
}
