package sim

import (
	"net/http"
	"slices"
)

// Workspace member roles. Owner is only ever assigned at workspace creation and by
// change-owner; client is the white-label role the API does not offer.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleEditor = "editor"
	RoleView   = "view"
	RoleClient = "client"
)

// WorkspaceMember is the spec's WorkspaceMember object.
type WorkspaceMember struct {
	ID               string   `json:"id"`
	Email            string   `json:"email"`
	UserID           string   `json:"user_id"`
	UserEmail        *string  `json:"user_email"`
	Nickname         *string  `json:"nickname"`
	Role             string   `json:"role"`
	TimestampCreated string   `json:"timestamp_created"`
	WorkspaceID      string   `json:"workspace_id"`
	Accepted         bool     `json:"accepted"`
	IssuerID         *string  `json:"issuer_id"`
	Permissions      []string `json:"permissions"` // null when the member has no restrictions
}

// errRoleNotAllowed is the answer to creating an owner or client member, or promoting one to
// owner: the schema's enum lists both, the API refuses them; Instantly's own message is
// unknown, so it is worded as the enum violation it is in effect.
func errRoleNotAllowed() error {
	return errBadRequest("body/role must be equal to one of the allowed values")
}

func errDuplicateMember() error {
	return newError(http.StatusConflict, "A workspace member with this email already exists")
}

// GET /api/v2/workspace-members: id order; accepted filters on the invitation state, search
// matches email, user email or nickname, ignoring case.
func (s *Server) listMembers(c *call) (any, error) {
	accepted, byAccepted := c.flag("accepted")
	search := c.str("search")
	keep := func(m WorkspaceMember) bool {
		if byAccepted && m.Accepted != accepted {
			return false
		}
		return search == "" || containsFold(m.Email, search) ||
			(m.UserEmail != nil && containsFold(*m.UserEmail, search)) ||
			(m.Nickname != nil && containsFold(*m.Nickname, search))
	}
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	return page(c.ws.members, keep, memberID, c.str("starting_after"), false, c.limit()), nil
}

func memberID(m WorkspaceMember) string { return m.ID }

// POST /api/v2/workspace-members: an invitation, accepted: false until the invitee accepts
// (POST /_sim/workspaces/{id}/members/{member_id}/accept). Inviting an email that is already
// a member is 409.
func (s *Server) createMember(c *call) (any, error) {
	body := c.body.(map[string]any)
	role := body["role"].(string)
	if role == RoleOwner || role == RoleClient {
		return nil, errRoleNotAllowed()
	}
	email := normalizeEmail(body["email"].(string))
	m := WorkspaceMember{
		Email:            email,
		UserID:           s.userID(email), // before the workspace lock: it takes s.mu
		Role:             role,
		TimestampCreated: timestamp(c.now),
		WorkspaceID:      c.ws.id,
		Nickname:         optString(body, "nickname"),
		UserEmail:        optString(body, "user_email"),
		Permissions:      optStrings(body, "permissions"),
	}
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.memberIndexByEmail(email) >= 0 {
		c.countDuplicate()
		return nil, errDuplicateMember()
	}
	owner := ws.info.Owner // API keys act for the owner
	m.IssuerID = &owner
	m.ID = s.newID()
	ws.members = append(ws.members, m)
	return m, nil
}

func (s *Server) getMember(c *call) (any, error) {
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	i := c.ws.memberIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	return c.ws.members[i], nil
}

// PATCH /api/v2/workspace-members/{id}: role and/or nickname. Nobody becomes owner this way
// and the owner's role does not change (only change-owner moves ownership).
func (s *Server) patchMember(c *call) (any, error) {
	body := c.body.(map[string]any)
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := ws.memberIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	m := ws.members[i]
	if role, ok := body["role"].(string); ok {
		switch {
		case role == RoleOwner || role == RoleClient:
			return nil, errRoleNotAllowed()
		case m.Role == RoleOwner && role != RoleOwner:
			return nil, errBadRequest("The role of the workspace owner cannot be changed")
		}
		m.Role = role
	}
	if _, ok := body["nickname"]; ok {
		m.Nickname = optString(body, "nickname")
	}
	ws.members[i] = m
	return m, nil
}

// DELETE /api/v2/workspace-members/{id} answers the deleted member; the owner stays.
func (s *Server) deleteMember(c *call) (any, error) {
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := ws.memberIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	m := ws.members[i]
	if m.Role == RoleOwner {
		return nil, errBadRequest("The workspace owner cannot be removed")
	}
	ws.members = slices.Delete(ws.members, i, i+1)
	return m, nil
}

// memberIndex and memberIndexByEmail need ws.mu.
func (ws *workspace) memberIndex(id string) int {
	return slices.IndexFunc(ws.members, func(m WorkspaceMember) bool { return m.ID == id })
}

func (ws *workspace) memberIndexByEmail(email string) int {
	return slices.IndexFunc(ws.members, func(m WorkspaceMember) bool { return m.Email == email })
}

// InviteMember invites email to a workspace with a role (admin, editor or view), as
// POST /api/v2/workspace-members does; the member is not accepted yet.
func (s *Server) InviteMember(workspaceID, email, role string) (WorkspaceMember, error) {
	body := map[string]any{"email": email, "role": role}
	if msg := s.valid.check(s.spec.requestSchema(http.MethodPost, "/api/v2/workspace-members"), body, "body"); msg != "" {
		return WorkspaceMember{}, errBadRequest(msg)
	}
	ws := s.workspace(workspaceID)
	if ws == nil {
		return WorkspaceMember{}, errNotFound()
	}
	out, err := s.createMember(&call{now: s.now(), ws: ws, body: body})
	if err != nil {
		return WorkspaceMember{}, err
	}
	return out.(WorkspaceMember), nil
}

// AcceptMember accepts a member's invitation, as the invitee would in the app. Accepting an
// accepted member changes nothing. Errors match ErrNotFound.
func (s *Server) AcceptMember(workspaceID, memberID string) error {
	_, err := s.acceptMember(workspaceID, memberID)
	return err
}

func (s *Server) acceptMember(workspaceID, memberID string) (WorkspaceMember, error) {
	ws := s.workspace(workspaceID)
	if ws == nil {
		return WorkspaceMember{}, errNotFound()
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := ws.memberIndex(memberID)
	if i < 0 {
		return WorkspaceMember{}, errNotFound()
	}
	ws.members[i].Accepted = true
	return ws.members[i], nil
}

// optString reads an optional string-or-null property of a validated body.
func optString(body map[string]any, name string) *string {
	if v, ok := body[name].(string); ok {
		return &v
	}
	return nil
}

// optStrings reads an optional array-of-strings-or-null property of a validated body.
func optStrings(body map[string]any, name string) []string {
	list, ok := body[name].([]any)
	if !ok {
		return nil
	}
	out := make([]string, len(list))
	for i, v := range list {
		out[i], _ = v.(string)
	}
	return out
}
