// Package members implements agency.v1.MemberService over Instantly's
// workspace-members endpoints.
package members

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/resolve"
)

// Service implements agencyv1.MemberServiceServer.
type Service struct {
	agencyv1.UnimplementedMemberServiceServer
	resolver *resolve.Resolver
	client   *instantly.Client
	guard    *memberguard.Guard
}

// New returns the service; role changes and removals take the workspace's
// member lock from l.
func New(r *resolve.Resolver, c *instantly.Client, l memberguard.Locker) *Service {
	return &Service{resolver: r, client: c, guard: memberguard.NewGuard(l, c)}
}

const defaultPageSize = 50

// ListMembers implements agencyv1.MemberServiceServer.
func (s *Service) ListMembers(ctx context.Context, req *agencyv1.ListMembersRequest) (*agencyv1.ListMembersResponse, error) {
	accepted := "any"
	if req.Accepted != nil {
		accepted = fmt.Sprint(req.GetAccepted())
	}
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), "members", req.GetParent(), accepted, req.GetSearch())
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListWorkspaceMembers(ctx, t.Cred, instantly.ListWorkspaceMembersParams{
		Limit: page.Limit, StartingAfter: page.StartingAfter, Accepted: req.Accepted, Search: req.GetSearch(),
	})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListMembersResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for i := range res.Items {
		out.Members = append(out.Members, ToProto(req.GetParent(), &res.Items[i]))
	}
	return out, nil
}

// GetMember implements agencyv1.MemberServiceServer.
func (s *Service) GetMember(ctx context.Context, req *agencyv1.GetMemberRequest) (*agencyv1.Member, error) {
	t, m, err := s.lookup(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return ToProto(t.Workspace.Name, m), nil
}

// InviteMember implements agencyv1.MemberServiceServer.
func (s *Service) InviteMember(ctx context.Context, req *agencyv1.InviteMemberRequest) (*agencyv1.Member, error) {
	if bad := invalidPermissions(req.GetPermissions()); bad != "" {
		return nil, apierr.Field("permissions", "%q is not an Instantly permission", bad)
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	existing, err := FindByEmail(ctx, s.client, t.Cred, req.GetEmail())
	if err != nil {
		return nil, err
	}
	if existing != nil {
		name := req.GetParent() + "/members/" + existing.ID
		return nil, apierr.New(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("%s is already a member (or invited) with role %s", req.GetEmail(), existing.Role)).
			WithMetadata("member", name, "role", string(existing.Role), "accepted", fmt.Sprint(existing.Accepted))
	}
	body := instantly.CreateWorkspaceMemberRequest{Email: req.GetEmail(), Role: RoleToUpstream(req.GetRole()), Permissions: req.GetPermissions()}
	if n := req.GetNickname(); n != "" {
		body.Nickname = &n
	}
	m, err := s.client.CreateWorkspaceMember(ctx, t.Cred, body)
	if err != nil {
		return nil, err
	}
	return ToProto(req.GetParent(), m), nil
}

// UpdateMemberRole implements agencyv1.MemberServiceServer. The owner's role
// never changes and the last accepted admin is never demoted
// (FAILED_PRECONDITION), under the workspace's member lock.
func (s *Service) UpdateMemberRole(ctx context.Context, req *agencyv1.UpdateMemberRoleRequest) (*agencyv1.Member, error) {
	return s.guarded(ctx, req.GetName(), memberguard.SetRole(RoleToUpstream(req.GetRole())))
}

// RemoveMember implements agencyv1.MemberServiceServer. The owner and the
// last accepted admin are never removed (FAILED_PRECONDITION), under the
// workspace's member lock.
func (s *Service) RemoveMember(ctx context.Context, req *agencyv1.RemoveMemberRequest) (*agencyv1.Member, error) {
	return s.guarded(ctx, req.GetName(), memberguard.Removal())
}

// guarded makes change to the member "workspaces/{w}/members/{id or email}".
func (s *Service) guarded(ctx context.Context, name string, change memberguard.Change) (*agencyv1.Member, error) {
	t, id, err := s.resolver.ResolveChild(ctx, name, "members")
	if err != nil {
		return nil, err
	}
	res, err := s.guard.Apply(ctx, memberguard.Request{Workspace: t.Workspace, Cred: t.Cred, Member: id, Change: change})
	if err != nil {
		return nil, err
	}
	if res.Outcome == memberguard.NoSuchMember {
		return nil, apierr.NotFound("member", name)
	}
	return ToProto(t.Workspace.Name, res.Member), nil
}

// lookup resolves "workspaces/{w}/members/{id or email}" to the member.
func (s *Service) lookup(ctx context.Context, name string) (*resolve.Target, *instantly.WorkspaceMember, error) {
	t, id, err := s.resolver.ResolveChild(ctx, name, "members")
	if err != nil {
		return nil, nil, err
	}
	var m *instantly.WorkspaceMember
	if strings.Contains(id, "@") {
		m, err = FindByEmail(ctx, s.client, t.Cred, id)
	} else {
		m, err = s.client.GetWorkspaceMember(ctx, t.Cred, id)
	}
	if err != nil {
		return nil, nil, resolve.NotFound(err, "member", name)
	}
	if m == nil {
		return nil, nil, apierr.NotFound("member", name)
	}
	return t, m, nil
}

// FindByEmail reads the member (or pending invitation) with that email, or
// nil. Instantly's search is a substring match, so the exact address is
// picked out of the results.
func FindByEmail(ctx context.Context, c *instantly.Client, cred instantly.Credential, email string) (*instantly.WorkspaceMember, error) {
	for m, err := range c.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{Limit: 100, Search: email}) {
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(m.Email, email) {
			return &m, nil
		}
	}
	return nil, nil
}

// RoleToUpstream maps our enum to Instantly's role string.
func RoleToUpstream(r agencyv1.MemberRole) instantly.MemberRole {
	switch r {
	case agencyv1.MemberRole_MEMBER_ROLE_OWNER:
		return instantly.RoleOwner
	case agencyv1.MemberRole_MEMBER_ROLE_ADMIN:
		return instantly.RoleAdmin
	case agencyv1.MemberRole_MEMBER_ROLE_EDITOR:
		return instantly.RoleEditor
	case agencyv1.MemberRole_MEMBER_ROLE_VIEW:
		return instantly.RoleView
	case agencyv1.MemberRole_MEMBER_ROLE_CLIENT:
		return instantly.RoleClient
	}
	return ""
}

// RoleFromUpstream maps Instantly's role string to our enum.
func RoleFromUpstream(r instantly.MemberRole) agencyv1.MemberRole {
	switch r {
	case instantly.RoleOwner:
		return agencyv1.MemberRole_MEMBER_ROLE_OWNER
	case instantly.RoleAdmin:
		return agencyv1.MemberRole_MEMBER_ROLE_ADMIN
	case instantly.RoleEditor:
		return agencyv1.MemberRole_MEMBER_ROLE_EDITOR
	case instantly.RoleView:
		return agencyv1.MemberRole_MEMBER_ROLE_VIEW
	case instantly.RoleClient:
		return agencyv1.MemberRole_MEMBER_ROLE_CLIENT
	}
	return agencyv1.MemberRole_MEMBER_ROLE_UNSPECIFIED
}

// ToProto renders a member of the workspace parent.
func ToProto(parent string, m *instantly.WorkspaceMember) *agencyv1.Member {
	out := &agencyv1.Member{
		Name:        parent + "/members/" + m.ID,
		Id:          m.ID,
		Email:       m.Email,
		UserId:      m.UserID,
		Role:        RoleFromUpstream(m.Role),
		Accepted:    m.Accepted,
		Permissions: m.Permissions,
		CreateTime:  resolve.Timestamp(m.TimestampCreated),
	}
	if m.Nickname != nil {
		out.Nickname = *m.Nickname
	}
	if m.Name != nil {
		out.DisplayName = strings.TrimSpace(m.Name.First + " " + m.Name.Last)
	}
	return out
}

// invalidPermissions returns the first permission not in Instantly's enum.
func invalidPermissions(perms []string) string {
	for _, p := range perms {
		if !instantly.ValidPermission(p) {
			return p
		}
	}
	return ""
}
