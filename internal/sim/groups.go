package sim

import (
	"net/http"
	"slices"
	"time"
)

// asWorkspaceHeader lets a key of an admin workspace act on one of its accepted sub workspaces.
const asWorkspaceHeader = "x-as-workspace"

// Workspace group member statuses.
const (
	GroupPending  = "pending"
	GroupAccepted = "accepted"
	GroupRejected = "rejected"
)

// WorkspaceGroupMember is the spec's WorkspaceGroupMember object: one admin workspace's link
// to one sub workspace.
type WorkspaceGroupMember struct {
	ID                 string  `json:"id"`
	AdminWorkspaceID   string  `json:"admin_workspace_id"`
	SubWorkspaceID     string  `json:"sub_workspace_id"`
	Status             string  `json:"status"`
	TimestampCreated   string  `json:"timestamp_created"`
	TimestampUpdated   string  `json:"timestamp_updated"`
	SubWorkspaceName   *string `json:"sub_workspace_name"`
	AdminWorkspaceName *string `json:"admin_workspace_name"`
}

// GroupAdmin answers GET /api/v2/workspace-group-members/admin.
type GroupAdmin struct {
	WorkspaceName          string `json:"workspace_name"` // "Undefined" without an admin workspace
	HasAdminWorkspace      bool   `json:"has_admin_workspace"`
	WorkspaceGroupMemberID string `json:"workspace_group_member_id,omitempty"`
}

// groupLink is a stored WorkspaceGroupMember; it lives in the Server, not in either
// workspace, because the hierarchy rules span workspaces. Guarded by Server.groupMu.
type groupLink struct {
	id, status       string
	created, updated string
	admin, sub       *workspace
}

// active links (pending or accepted) define the hierarchy; rejected ones are history.
func (l *groupLink) active() bool { return l.status != GroupRejected }

// public reads both workspaces' names, so it takes their locks: call it under groupMu only
// (groupMu is always taken before any workspace's lock), never under a workspace's lock.
func (l *groupLink) public() WorkspaceGroupMember {
	adminName, subName := l.admin.snapshot().Name, l.sub.snapshot().Name
	return WorkspaceGroupMember{
		ID:                 l.id,
		AdminWorkspaceID:   l.admin.id,
		SubWorkspaceID:     l.sub.id,
		Status:             l.status,
		TimestampCreated:   l.created,
		TimestampUpdated:   l.updated,
		SubWorkspaceName:   &subName,
		AdminWorkspaceName: &adminName,
	}
}

// actAs resolves x-as-workspace: only a key of an admin workspace may act on one of its own
// accepted sub workspaces. Anything else is 403, like a scope the key lacks.
func (s *Server) actAs(admin *workspace, subID string) (*workspace, error) {
	s.groupMu.RLock()
	defer s.groupMu.RUnlock()
	for _, l := range s.groups {
		if l.admin == admin && l.sub.id == subID && l.status == GroupAccepted {
			return l.sub, nil
		}
	}
	return nil, newError(http.StatusForbidden, "The API key's workspace cannot act as workspace "+subID)
}

// GET /api/v2/workspace-group-members lists the links of the workspace as admin, any status.
func (s *Server) listGroupMembers(c *call) (any, error) {
	s.groupMu.RLock()
	defer s.groupMu.RUnlock()
	var mine []*groupLink
	for _, l := range s.groups {
		if l.admin == c.ws {
			mine = append(mine, l)
		}
	}
	res := page(mine, nil, func(l *groupLink) string { return l.id }, c.str("starting_after"), false, c.limit())
	out := List[WorkspaceGroupMember]{Items: make([]WorkspaceGroupMember, len(res.Items)), NextStartingAfter: res.NextStartingAfter}
	for i, l := range res.Items {
		out.Items[i] = l.public()
	}
	return out, nil
}

// POST /api/v2/workspace-group-members invites a sub workspace; 409 when the link would break
// the hierarchy (a workspace is never both admin and sub, a sub has one admin).
func (s *Server) createGroupMember(c *call) (any, error) {
	subID := c.body.(map[string]any)["sub_workspace_id"].(string)
	sub := s.workspace(subID)
	if sub == nil {
		return nil, errNotFound()
	}
	out, err := s.inviteGroupMember(c.ws, sub, c.now, c)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// inviteGroupMember links sub to admin; c, the API request doing it (nil from the Go API), is
// told of a duplicate: an active link between the same two workspaces.
func (s *Server) inviteGroupMember(admin, sub *workspace, now time.Time, c *call) (WorkspaceGroupMember, error) {
	conflict := func(msg string) (WorkspaceGroupMember, error) {
		return WorkspaceGroupMember{}, newError(http.StatusConflict, msg)
	}
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	if admin == sub {
		return conflict("A workspace cannot be its own sub workspace")
	}
	for _, l := range s.groups {
		switch {
		case !l.active():
		case l.sub == sub:
			if l.admin == admin && c != nil {
				c.countDuplicate()
			}
			return conflict("The sub workspace already has an active parent or invitation")
		case l.admin == sub:
			return conflict("The sub workspace is the admin workspace of a workspace group")
		case l.sub == admin:
			return conflict("A sub workspace cannot invite workspaces to a workspace group")
		}
	}
	ts := timestamp(now)
	l := &groupLink{id: s.newID(), status: GroupPending, created: ts, updated: ts, admin: admin, sub: sub}
	s.groups = append(s.groups, l)
	s.log.Info("workspace group member invited", "admin_workspace_id", admin.id, "sub_workspace_id", sub.id, "id", l.id)
	return l.public(), nil
}

// GET /api/v2/workspace-group-members/admin describes the workspace's admin workspace, if it
// has accepted one.
func (s *Server) getGroupAdmin(c *call) (any, error) {
	s.groupMu.RLock()
	defer s.groupMu.RUnlock()
	for _, l := range s.groups {
		if l.sub == c.ws && l.status == GroupAccepted {
			return GroupAdmin{WorkspaceName: l.admin.snapshot().Name, HasAdminWorkspace: true, WorkspaceGroupMemberID: l.id}, nil
		}
	}
	return GroupAdmin{WorkspaceName: "Undefined"}, nil
}

// GET /api/v2/workspace-group-members/{id}: visible to its admin and its sub workspace.
func (s *Server) getGroupMember(c *call) (any, error) {
	s.groupMu.RLock()
	defer s.groupMu.RUnlock()
	i := s.groupIndex(c.r.PathValue("id"), c.ws)
	if i < 0 {
		return nil, errNotFound()
	}
	return s.groups[i].public(), nil
}

// DELETE /api/v2/workspace-group-members/{id}: the admin removes a sub, or the sub leaves.
func (s *Server) deleteGroupMember(c *call) (any, error) {
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	i := s.groupIndex(c.r.PathValue("id"), c.ws)
	if i < 0 {
		return nil, errNotFound()
	}
	out := s.groups[i].public()
	s.groups = slices.Delete(s.groups, i, i+1)
	return out, nil
}

// groupIndex finds a link by id that ws takes part in (any ws when nil); it needs groupMu.
func (s *Server) groupIndex(id string, ws *workspace) int {
	return slices.IndexFunc(s.groups, func(l *groupLink) bool {
		return l.id == id && (ws == nil || l.admin == ws || l.sub == ws)
	})
}

// groupMembersOf lists the links a workspace takes part in, as admin or sub.
func (s *Server) groupMembersOf(ws *workspace) []WorkspaceGroupMember {
	s.groupMu.RLock()
	defer s.groupMu.RUnlock()
	out := []WorkspaceGroupMember{}
	for _, l := range s.groups {
		if l.admin == ws || l.sub == ws {
			out = append(out, l.public())
		}
	}
	return out
}

// InviteGroupMember invites subWorkspaceID into adminWorkspaceID's workspace group, as
// POST /api/v2/workspace-group-members does. Errors match ErrNotFound or ErrConflict.
func (s *Server) InviteGroupMember(adminWorkspaceID, subWorkspaceID string) (WorkspaceGroupMember, error) {
	admin, sub := s.workspace(adminWorkspaceID), s.workspace(subWorkspaceID)
	if admin == nil || sub == nil {
		return WorkspaceGroupMember{}, errNotFound()
	}
	return s.inviteGroupMember(admin, sub, s.now(), nil)
}

// AcceptGroupMember is the sub workspace's owner accepting a pending invitation.
// Errors match ErrNotFound, or ErrConflict when the invitation is not pending.
func (s *Server) AcceptGroupMember(id string) error {
	_, err := s.answerGroupInvitation(id, GroupAccepted)
	return err
}

// RejectGroupMember is the sub workspace's owner rejecting a pending invitation.
func (s *Server) RejectGroupMember(id string) error {
	_, err := s.answerGroupInvitation(id, GroupRejected)
	return err
}

func (s *Server) answerGroupInvitation(id, status string) (WorkspaceGroupMember, error) {
	s.groupMu.Lock()
	defer s.groupMu.Unlock()
	i := s.groupIndex(id, nil)
	if i < 0 {
		return WorkspaceGroupMember{}, errNotFound()
	}
	l := s.groups[i]
	if l.status != GroupPending {
		return WorkspaceGroupMember{}, newError(http.StatusConflict, "The invitation is "+l.status+", not pending")
	}
	l.status, l.updated = status, timestamp(s.now())
	s.log.Info("workspace group invitation answered", "id", id, "status", status)
	return l.public(), nil
}
