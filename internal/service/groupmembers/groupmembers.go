// Package groupmembers implements agency.v1.GroupMemberService over
// Instantly's workspace-group-members endpoints.
package groupmembers

import (
	"context"
	"errors"
	"net/http"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Service implements agencyv1.GroupMemberServiceServer.
type Service struct {
	agencyv1.UnimplementedGroupMemberServiceServer
	resolver *resolve.Resolver
	client   *instantly.Client
	store    store.Workspaces
}

// New returns the service.
func New(r *resolve.Resolver, c *instantly.Client, ws store.Workspaces) *Service {
	return &Service{resolver: r, client: c, store: ws}
}

const defaultPageSize = 50

// ListGroupMembers implements agencyv1.GroupMemberServiceServer.
func (s *Service) ListGroupMembers(ctx context.Context, req *agencyv1.ListGroupMembersRequest) (*agencyv1.ListGroupMembersResponse, error) {
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), "group-members", req.GetParent())
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListWorkspaceGroupMembers(ctx, t.Cred, instantly.ListParams{Limit: page.Limit, StartingAfter: page.StartingAfter})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListGroupMembersResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for i := range res.Items {
		gm, err := s.toProto(ctx, req.GetParent(), &res.Items[i])
		if err != nil {
			return nil, err
		}
		out.GroupMembers = append(out.GroupMembers, gm)
	}
	return out, nil
}

// InviteGroupMember implements agencyv1.GroupMemberServiceServer. A sub
// workspace named by its Instantly id passes the caller's scope like one
// named by its registry name (resolve.Resolver.InstantlyWorkspace); one
// the caller may not name answers exactly as an id Instantly does not know.
func (s *Service) InviteGroupMember(ctx context.Context, req *agencyv1.InviteGroupMemberRequest) (*agencyv1.GroupMember, error) {
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	subID := req.GetInstantlyWorkspaceId()
	if w := req.GetWorkspace(); w != "" {
		sub, err := s.resolver.Get(ctx, w)
		if err != nil {
			return nil, err
		}
		subID = sub.InstantlyWorkspaceID
	} else if _, err := s.resolver.InstantlyWorkspace(ctx, subID, nil); errors.Is(err, store.ErrNotFound) {
		return nil, resolve.InstantlyNotFound(subID)
	} else if err != nil {
		return nil, err
	}
	gm, err := s.client.CreateWorkspaceGroupMember(ctx, t.Cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: subID})
	if err != nil {
		if req.GetWorkspace() == "" && resolve.HTTPStatus(err) == http.StatusNotFound {
			return nil, resolve.InstantlyNotFound(subID)
		}
		return nil, err
	}
	return s.toProto(ctx, req.GetParent(), gm)
}

// RemoveGroupMember implements agencyv1.GroupMemberServiceServer.
func (s *Service) RemoveGroupMember(ctx context.Context, req *agencyv1.RemoveGroupMemberRequest) (*agencyv1.GroupMember, error) {
	t, id, err := s.resolver.ResolveChild(ctx, req.GetName(), "groupMembers")
	if err != nil {
		return nil, err
	}
	parent := t.Workspace.Name
	gm, err := s.client.DeleteWorkspaceGroupMember(ctx, t.Cred, id)
	if err != nil {
		return nil, resolve.NotFound(err, "group member", req.GetName())
	}
	return s.toProto(ctx, parent, gm)
}

// GetGroupAdmin implements agencyv1.GroupMemberServiceServer.
func (s *Service) GetGroupAdmin(ctx context.Context, req *agencyv1.GetGroupAdminRequest) (*agencyv1.GroupAdmin, error) {
	t, err := s.resolver.Resolve(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	a, err := s.client.GetWorkspaceGroupAdmin(ctx, t.Cred)
	if err != nil {
		return nil, err
	}
	out := &agencyv1.GroupAdmin{InstantlyWorkspaceName: a.WorkspaceName, HasAdminWorkspace: a.HasAdminWorkspace}
	if a.WorkspaceGroupMemberID != nil {
		out.GroupMemberId = *a.WorkspaceGroupMemberID
	}
	return out, nil
}

func (s *Service) toProto(ctx context.Context, parent string, g *instantly.WorkspaceGroupMember) (*agencyv1.GroupMember, error) {
	out := ToProto(parent, g)
	reg, err := s.store.GetByInstantlyID(ctx, g.SubWorkspaceID)
	switch {
	case err == nil:
		out.RegisteredWorkspace = reg.Name
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	return out, nil
}

// ToProto renders a group member (without the registry lookup).
func ToProto(parent string, g *instantly.WorkspaceGroupMember) *agencyv1.GroupMember {
	out := &agencyv1.GroupMember{
		Name:             parent + "/groupMembers/" + g.ID,
		Id:               g.ID,
		AdminWorkspaceId: g.AdminWorkspaceID,
		SubWorkspaceId:   g.SubWorkspaceID,
		Status:           StatusFromUpstream(g.Status),
		CreateTime:       resolve.Timestamp(g.TimestampCreated),
		UpdateTime:       resolve.Timestamp(g.TimestampUpdated),
	}
	if g.AdminWorkspaceName != nil {
		out.AdminWorkspaceName = *g.AdminWorkspaceName
	}
	if g.SubWorkspaceName != nil {
		out.SubWorkspaceName = *g.SubWorkspaceName
	}
	return out
}

// StatusFromUpstream maps Instantly's group status.
func StatusFromUpstream(s instantly.GroupMemberStatus) agencyv1.GroupMember_Status {
	switch s {
	case instantly.GroupMemberPending:
		return agencyv1.GroupMember_STATUS_PENDING
	case instantly.GroupMemberAccepted:
		return agencyv1.GroupMember_STATUS_ACCEPTED
	case instantly.GroupMemberRejected:
		return agencyv1.GroupMember_STATUS_REJECTED
	}
	return agencyv1.GroupMember_STATUS_UNSPECIFIED
}
