package instantly

import (
	"context"
	"encoding/json"
	"iter"
	"net/http"
	"net/url"
)

// MemberRole is a workspace member's role (WorkspaceMember.role).
type MemberRole string

// Roles. Owner cannot be given through the API (only change-owner moves it);
// Client is the white-label agency role, listed but "not available in the API".
const (
	RoleOwner  MemberRole = "owner"
	RoleAdmin  MemberRole = "admin"
	RoleEditor MemberRole = "editor"
	RoleView   MemberRole = "view"
	RoleClient MemberRole = "client"
)

// MemberPermission is one of the fine-grained app permissions a member may
// be restricted to; the constants and ValidPermission are generated from the
// spec (enums_gen.go). It is an alias, not a defined type, so permission
// lists stay plain []string for callers that pass them through.
type MemberPermission = string

// WorkspaceMember is the spec's WorkspaceMember. Permissions is nullable in
// the spec; nil stands for null (a pointer to a slice would add nothing).
type WorkspaceMember struct {
	ID               string               `json:"id"`
	Email            string               `json:"email"`
	UserID           string               `json:"user_id"`
	UserEmail        *string              `json:"user_email,omitempty"`
	Nickname         *string              `json:"nickname,omitempty"`
	Name             *WorkspaceMemberName `json:"name,omitempty"`
	Role             MemberRole           `json:"role"`
	TimestampCreated string               `json:"timestamp_created"`
	WorkspaceID      string               `json:"workspace_id"`
	Accepted         bool                 `json:"accepted"`
	IssuerID         *string              `json:"issuer_id,omitempty"`
	Permissions      []string             `json:"permissions,omitempty"`
}

// WorkspaceMemberName is WorkspaceMember.name.
type WorkspaceMemberName struct {
	First string `json:"first,omitempty"`
	Last  string `json:"last,omitempty"`
}

// ListWorkspaceMembersParams filters GET /workspace-members.
type ListWorkspaceMembersParams struct {
	Limit         int
	StartingAfter string
	Accepted      *bool  // nil: both accepted and pending invitations
	Search        string // name or email
}

func (p ListWorkspaceMembersParams) query() url.Values {
	q := listQuery(p.Limit, p.StartingAfter)
	setBool(q, "accepted", p.Accepted)
	setString(q, "search", p.Search)
	return q
}

// ListWorkspaceMembers returns one page of members
// (GET /workspace-members, scope workspace_members:read).
func (c *Client) ListWorkspaceMembers(ctx context.Context, cred Credential, p ListWorkspaceMembersParams) (*Page[WorkspaceMember], error) {
	return call[Page[WorkspaceMember]](ctx, c, cred, request{method: http.MethodGet, path: "/workspace-members", query: p.query()})
}

// AllWorkspaceMembers walks every member matching p, from p.StartingAfter.
func (c *Client) AllWorkspaceMembers(ctx context.Context, cred Credential, p ListWorkspaceMembersParams, opts ...PageOption) iter.Seq2[WorkspaceMember, error] {
	p.Limit = walkLimit(p.Limit, 100)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[WorkspaceMember], error) {
		p.StartingAfter = cursor
		return c.ListWorkspaceMembers(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}

// GetWorkspaceMember returns one member
// (GET /workspace-members/{id}, scope workspace_members:read).
func (c *Client) GetWorkspaceMember(ctx context.Context, cred Credential, id string) (*WorkspaceMember, error) {
	path, err := pathf("/workspace-members/%s", id)
	if err != nil {
		return nil, err
	}
	return call[WorkspaceMember](ctx, c, cred, request{method: http.MethodGet, path: path})
}

// CreateWorkspaceMemberRequest is the body of POST /workspace-members.
type CreateWorkspaceMemberRequest struct {
	Email       string     `json:"email"`
	Role        MemberRole `json:"role"`
	Permissions []string   `json:"permissions,omitempty"` // MemberPermission values
	Nickname    *string    `json:"nickname,omitempty"`
	UserEmail   *string    `json:"user_email,omitempty"`
}

// CreateWorkspaceMember invites a member; Accepted stays false until the
// invitee accepts (POST /workspace-members, scope workspace_members:create).
// Whether inviting an existing member errors or duplicates is undocumented:
// list first.
func (c *Client) CreateWorkspaceMember(ctx context.Context, cred Credential, req CreateWorkspaceMemberRequest) (*WorkspaceMember, error) {
	return call[WorkspaceMember](ctx, c, cred, request{method: http.MethodPost, path: "/workspace-members", body: req, atMostOnce: true})
}

// UpdateWorkspaceMemberRequest is the body of PATCH /workspace-members/{id}:
// at least one field. ClearNickname sends "nickname": null (Nickname must
// then be nil), which a nil pointer alone cannot express.
type UpdateWorkspaceMemberRequest struct {
	Role          *MemberRole
	Nickname      *string
	ClearNickname bool
}

// MarshalJSON omits unset fields and writes null for a cleared nickname.
func (r UpdateWorkspaceMemberRequest) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if r.Role != nil {
		m["role"] = *r.Role
	}
	if r.Nickname != nil {
		m["nickname"] = *r.Nickname
	} else if r.ClearNickname {
		m["nickname"] = nil
	}
	return json.Marshal(m)
}

// UpdateWorkspaceMember changes a member's role or nickname
// (PATCH /workspace-members/{id}, scope workspace_members:update).
func (c *Client) UpdateWorkspaceMember(ctx context.Context, cred Credential, id string, req UpdateWorkspaceMemberRequest) (*WorkspaceMember, error) {
	path, err := pathf("/workspace-members/%s", id)
	if err != nil {
		return nil, err
	}
	return call[WorkspaceMember](ctx, c, cred, request{method: http.MethodPatch, path: path, body: req})
}

// DeleteWorkspaceMember removes a member and returns it
// (DELETE /workspace-members/{id}, scope workspace_members:delete).
func (c *Client) DeleteWorkspaceMember(ctx context.Context, cred Credential, id string) (*WorkspaceMember, error) {
	path, err := pathf("/workspace-members/%s", id)
	if err != nil {
		return nil, err
	}
	return call[WorkspaceMember](ctx, c, cred, request{method: http.MethodDelete, path: path})
}
