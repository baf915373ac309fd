package instantly

import (
	"context"
	"iter"
	"net/http"
)

// GroupMemberStatus is where a sub workspace's invitation stands.
type GroupMemberStatus string

// A sub workspace joins only once its owner accepts.
const (
	GroupMemberPending  GroupMemberStatus = "pending"
	GroupMemberAccepted GroupMemberStatus = "accepted"
	GroupMemberRejected GroupMemberStatus = "rejected"
)

// WorkspaceGroupMember is the spec's WorkspaceGroupMember: the link between
// an admin workspace and one sub workspace.
type WorkspaceGroupMember struct {
	ID                 string            `json:"id"`
	AdminWorkspaceID   string            `json:"admin_workspace_id"`
	SubWorkspaceID     string            `json:"sub_workspace_id"`
	Status             GroupMemberStatus `json:"status"`
	TimestampCreated   string            `json:"timestamp_created"`
	TimestampUpdated   string            `json:"timestamp_updated"`
	SubWorkspaceName   *string           `json:"sub_workspace_name,omitempty"`
	AdminWorkspaceName *string           `json:"admin_workspace_name,omitempty"`
}

// WorkspaceGroupAdmin answers GET /workspace-group-members/admin (an inline
// schema in the spec). WorkspaceName is "Undefined" when there is no admin
// workspace; WorkspaceGroupMemberID is absent (nil) then.
type WorkspaceGroupAdmin struct {
	WorkspaceName          string  `json:"workspace_name"`
	HasAdminWorkspace      bool    `json:"has_admin_workspace"`
	WorkspaceGroupMemberID *string `json:"workspace_group_member_id,omitempty"`
}

// ListWorkspaceGroupMembers returns one page of the admin workspace's sub
// workspaces (GET /workspace-group-members, scope workspace_group_members:read).
func (c *Client) ListWorkspaceGroupMembers(ctx context.Context, cred Credential, p ListParams) (*Page[WorkspaceGroupMember], error) {
	return call[Page[WorkspaceGroupMember]](ctx, c, cred, request{method: http.MethodGet, path: "/workspace-group-members", query: listQuery(p.Limit, p.StartingAfter)})
}

// AllWorkspaceGroupMembers walks every group member, from p.StartingAfter.
func (c *Client) AllWorkspaceGroupMembers(ctx context.Context, cred Credential, p ListParams, opts ...PageOption) iter.Seq2[WorkspaceGroupMember, error] {
	p.Limit = walkLimit(p.Limit, 100)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[WorkspaceGroupMember], error) {
		p.StartingAfter = cursor
		return c.ListWorkspaceGroupMembers(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}

// GetWorkspaceGroupMember returns one link
// (GET /workspace-group-members/{id}, scope workspace_group_members:read).
func (c *Client) GetWorkspaceGroupMember(ctx context.Context, cred Credential, id string) (*WorkspaceGroupMember, error) {
	path, err := pathf("/workspace-group-members/%s", id)
	if err != nil {
		return nil, err
	}
	return call[WorkspaceGroupMember](ctx, c, cred, request{method: http.MethodGet, path: path})
}

// CreateWorkspaceGroupMemberRequest is the body of POST /workspace-group-members.
type CreateWorkspaceGroupMemberRequest struct {
	SubWorkspaceID string `json:"sub_workspace_id"`
}

// CreateWorkspaceGroupMember invites a sub workspace into the credential's
// admin workspace; the link stays pending until the sub workspace's owner
// accepts. 409 on a hierarchy conflict (a workspace is never both admin and
// sub) (POST /workspace-group-members, scope workspace_group_members:create).
func (c *Client) CreateWorkspaceGroupMember(ctx context.Context, cred Credential, req CreateWorkspaceGroupMemberRequest) (*WorkspaceGroupMember, error) {
	return call[WorkspaceGroupMember](ctx, c, cred, request{method: http.MethodPost, path: "/workspace-group-members", body: req, atMostOnce: true})
}

// DeleteWorkspaceGroupMember removes a link and returns it; a sub workspace
// leaves its admin this way too
// (DELETE /workspace-group-members/{id}, scope workspace_group_members:delete).
func (c *Client) DeleteWorkspaceGroupMember(ctx context.Context, cred Credential, id string) (*WorkspaceGroupMember, error) {
	path, err := pathf("/workspace-group-members/%s", id)
	if err != nil {
		return nil, err
	}
	return call[WorkspaceGroupMember](ctx, c, cred, request{method: http.MethodDelete, path: path})
}

// GetWorkspaceGroupAdmin says whether the credential's workspace belongs to
// an admin workspace (GET /workspace-group-members/admin; no scope documented).
func (c *Client) GetWorkspaceGroupAdmin(ctx context.Context, cred Credential) (*WorkspaceGroupAdmin, error) {
	return call[WorkspaceGroupAdmin](ctx, c, cred, request{method: http.MethodGet, path: "/workspace-group-members/admin"})
}
