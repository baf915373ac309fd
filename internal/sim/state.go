package sim

import (
	"strings"
	"sync"
	"time"
)

// workspace is everything the simulator knows about one Instantly workspace. Its slices are
// in id order, which is creation order (ids are time-ordered and issued under mu), so lists
// are paginated by comparing ids. Elements are values: a handler copies what it returns, and
// replaces rather than mutates shared slices (Permissions, Scopes) so copies stay valid.
type workspace struct {
	id    string
	meter *meter // rate-limit log and statistics; its own lock

	mu        sync.RWMutex // guards everything below
	info      Workspace
	sec       string    // current change-owner secret, rotated on every ownership change
	keys      []*apiKey // creation order, as Instantly lists them
	members   []WorkspaceMember
	tags      []CustomTag
	mappings  []CustomTagMapping
	campaigns []Campaign
	accounts  []Account // creation order; listed by (timestamp_created, email)
	audit     []AuditLog
}

// WorkspaceSummary is one row of the admin workspace list.
type WorkspaceSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// WorkspaceState is the whole of one workspace, for tests and demos. API key secrets are never
// included: only their hashes are kept. ChangeOwnerSec is the secret that
// POST /api/v2/workspaces/current/change-owner needs, which Instantly hands out of band.
type WorkspaceState struct {
	Workspace         Workspace              `json:"workspace"`
	ChangeOwnerSec    string                 `json:"change_owner_sec"`
	APIKeys           []APIKey               `json:"api_keys"`
	Members           []WorkspaceMember      `json:"members"`
	GroupMembers      []WorkspaceGroupMember `json:"group_members"` // links where it is admin or sub
	CustomTags        []CustomTag            `json:"custom_tags"`
	CustomTagMappings []CustomTagMapping     `json:"custom_tag_mappings"`
	Campaigns         []Campaign             `json:"campaigns"`
	Accounts          []Account              `json:"accounts"`
	AuditLogs         []AuditLog             `json:"audit_logs"` // oldest first
}

// CreateWorkspace adds a workspace with one all:all API key and returns its id and key secret.
// Its owner is owner+<first 8 characters of the id>@example.com, an accepted member.
func (s *Server) CreateWorkspace(name string) (id, apiKey string) {
	return s.CreateWorkspaceWithOwner(name, "")
}

// CreateWorkspaceWithOwner is CreateWorkspace with the owner's email ("" for the default). The
// same email owning or joining several workspaces is one user, with one user id.
func (s *Server) CreateWorkspaceWithOwner(name, ownerEmail string) (id, apiKey string) {
	ws, key := s.createWorkspace(name, ownerEmail)
	return ws.id, key.Key
}

// createWorkspace returns the new workspace and its first key, secret included.
func (s *Server) createWorkspace(name, ownerEmail string) (*workspace, APIKey) {
	now := s.now()
	id := newUUID()
	if ownerEmail == "" {
		ownerEmail = "owner+" + id[:8] + "@example.com"
	}
	ownerEmail = normalizeEmail(ownerEmail)
	owner := s.userID(ownerEmail)
	ws := &workspace{
		id:    id,
		meter: newMeter(id, s.cfg.RPS, s.cfg.RPM),
		sec:   newSec(),
	}
	ws.info = newWorkspaceInfo(ws.id, name, owner, now)
	ws.members = []WorkspaceMember{{
		ID:               s.newID(),
		Email:            ownerEmail,
		UserID:           owner,
		Role:             RoleOwner,
		TimestampCreated: timestamp(now),
		WorkspaceID:      ws.id,
		Accepted:         true,
	}}
	key, secret := newAPIKey(ws, s.newID(), "Default", []string{"all:all"}, now)
	ws.keys = append(ws.keys, key)

	s.mu.Lock()
	s.workspaces[ws.id] = ws
	s.order = append(s.order, ws)
	s.keys[key.hash] = key
	s.mu.Unlock()

	s.log.Info("workspace created", "workspace_id", ws.id, "name", name, "owner_email", ownerEmail)
	return ws, key.public(secret)
}

// Workspaces lists every workspace in creation order.
func (s *Server) Workspaces() []WorkspaceSummary {
	all := s.allWorkspaces()
	out := make([]WorkspaceSummary, 0, len(all))
	for _, ws := range all {
		out = append(out, WorkspaceSummary{ID: ws.id, Name: ws.snapshot().Name})
	}
	return out
}

// WorkspaceState returns a copy of one workspace's state, or an error matching ErrNotFound.
func (s *Server) WorkspaceState(id string) (WorkspaceState, error) {
	ws := s.workspace(id)
	if ws == nil {
		return WorkspaceState{}, errNotFound()
	}
	groups := s.groupMembersOf(ws) // before ws.mu: groupMu comes first
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	st := WorkspaceState{
		Workspace:         ws.info,
		ChangeOwnerSec:    ws.sec,
		APIKeys:           make([]APIKey, 0, len(ws.keys)),
		Members:           append([]WorkspaceMember{}, ws.members...),
		GroupMembers:      groups,
		CustomTags:        append([]CustomTag{}, ws.tags...),
		CustomTagMappings: append([]CustomTagMapping{}, ws.mappings...),
		Campaigns:         append([]Campaign{}, ws.campaigns...),
		Accounts:          append([]Account{}, ws.accounts...),
		AuditLogs:         append([]AuditLog{}, ws.audit...),
	}
	for _, k := range ws.keys {
		st.APIKeys = append(st.APIKeys, k.public(""))
	}
	return st, nil
}

// OwnerTransferSecret returns the secret ("sec") that change-owner currently accepts for a
// workspace. It changes after every successful ownership change.
func (s *Server) OwnerTransferSecret(workspaceID string) (string, error) {
	ws := s.workspace(workspaceID)
	if ws == nil {
		return "", errNotFound()
	}
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return ws.sec, nil
}

func (s *Server) workspace(id string) *workspace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.workspaces[id]
}

func (s *Server) allWorkspaces() []*workspace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*workspace(nil), s.order...)
}

// userID returns the user id of an email, creating the user on first sight. It takes s.mu, so
// callers must not hold any workspace's lock.
func (s *Server) userID(email string) string {
	email = normalizeEmail(email)
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.users[email]
	if !ok {
		id = newUUID()
		s.users[email] = id
	}
	return id
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// newID issues the next time-ordered id. Call it under the lock of the collection the id goes
// into, so that collection stays in id order.
func (s *Server) newID() string { return s.ids.next(s.now()) }

// normalizeEmail is how emails are stored and compared: trimmed and lower case.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
