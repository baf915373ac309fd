package bulk

import (
	"context"
	"strings"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
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
	role := members.RoleToUpstream(req.GetRole())
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
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
		m, err := s.client.CreateWorkspaceMember(ctx, cred, instantly.CreateWorkspaceMemberRequest{Email: req.GetEmail(), Role: role, Permissions: req.GetPermissions()})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return memberResult(t, m), fanout.Created, nil
	})
}

// UpdateMemberRoleEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) UpdateMemberRoleEverywhere(ctx context.Context, req *agencyv1.UpdateMemberRoleEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	role := members.RoleToUpstream(req.GetRole())
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		defer s.lockMembers(t.name)()
		all, m, err := s.membersAnd(ctx, cred, req.GetEmail())
		switch {
		case err != nil:
			return nil, fanout.Failed, err
		case m == nil:
			return nil, fanout.Skipped, nil
		case m.Role == role:
			return memberResult(t, m), fanout.AlreadyDone, nil
		case m.Role == instantly.RoleOwner:
			return memberResult(t, m), fanout.Failed, precondition("%s owns %s; use TransferOwnership", m.Email, t.name)
		case m.Role == instantly.RoleAdmin && m.Accepted && lastAdmin(all, m):
			return memberResult(t, m), fanout.Failed, precondition("%s is the last admin of %s", m.Email, t.name)
		case req.GetDryRun():
			return memberResult(t, m), fanout.Updated, nil
		}
		updated, err := s.client.UpdateWorkspaceMember(ctx, cred, m.ID, instantly.UpdateWorkspaceMemberRequest{Role: &role})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return memberResult(t, updated), fanout.Updated, nil
	})
}

// RemoveMemberEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) RemoveMemberEverywhere(ctx context.Context, req *agencyv1.RemoveMemberEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		defer s.lockMembers(t.name)()
		all, m, err := s.membersAnd(ctx, cred, req.GetEmail())
		switch {
		case err != nil:
			return nil, fanout.Failed, err
		case m == nil:
			return nil, fanout.Skipped, nil
		case m.Role == instantly.RoleOwner:
			return memberResult(t, m), fanout.Failed, precondition("%s owns %s and cannot be removed", m.Email, t.name)
		case m.Role == instantly.RoleAdmin && m.Accepted && lastAdmin(all, m):
			return memberResult(t, m), fanout.Failed, precondition("%s is the last admin of %s", m.Email, t.name)
		case req.GetDryRun():
			return memberResult(t, m), fanout.Deleted, nil
		}
		removed, err := s.client.DeleteWorkspaceMember(ctx, cred, m.ID)
		if err != nil {
			return nil, fanout.Failed, err
		}
		return memberResult(t, removed), fanout.Deleted, nil
	})
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

// lastAdmin reports whether m is the only accepted admin of the workspace.
func lastAdmin(all []instantly.WorkspaceMember, m *instantly.WorkspaceMember) bool {
	for _, o := range all {
		if o.ID != m.ID && o.Role == instantly.RoleAdmin && o.Accepted {
			return false
		}
	}
	return true
}

// ListAccess implements agencyv1.FanoutServiceServer.
func (s *Service) ListAccess(ctx context.Context, req *agencyv1.ListAccessRequest) (*agencyv1.FanoutResponse, error) {
	resp, err := s.run(ctx, req.GetSelector(), false, func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
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
	})
	if err != nil {
		return nil, err
	}
	resp.AccessMatrix = accessMatrix(resp.GetResults())
	return resp, nil
}

// accessMatrix pivots per-workspace members into people × workspaces.
func accessMatrix(results []*agencyv1.WorkspaceResult) []*agencyv1.PersonAccess {
	people := map[string]*agencyv1.PersonAccess{}
	add := func(ws string, m *agencyv1.Member) {
		email := strings.ToLower(m.GetEmail())
		p, ok := people[email]
		if !ok {
			p = &agencyv1.PersonAccess{Email: email}
			people[email] = p
		}
		p.Workspaces = append(p.Workspaces, &agencyv1.WorkspaceRole{Workspace: ws, Role: m.GetRole(), Accepted: m.GetAccepted()})
	}
	for _, r := range results {
		if m := r.GetMember(); m != nil {
			add(r.GetWorkspace(), m)
		}
		for _, m := range r.GetMembers().GetMembers() {
			add(r.GetWorkspace(), m)
		}
	}
	out := make([]*agencyv1.PersonAccess, 0, len(people))
	for _, p := range people {
		out = append(out, p)
	}
	slicesSortByEmail(out)
	return out
}

// ListPendingInvitations implements agencyv1.FanoutServiceServer.
func (s *Service) ListPendingInvitations(ctx context.Context, req *agencyv1.ListPendingInvitationsRequest) (*agencyv1.FanoutResponse, error) {
	pending := false
	return s.run(ctx, req.GetSelector(), false, func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
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
	})
}
