package sim

import (
	"sync"
	"time"
)

// workspace is everything the simulator knows about one Instantly workspace.
type workspace struct {
	id    string
	meter *meter // rate-limit log and statistics; its own lock

	mu   sync.RWMutex // guards everything below
	info Workspace
	keys []*apiKey // creation order, as Instantly lists them
	// Later, all under mu: members, group members (admin/sub links), custom tags and their
	// mappings, campaigns, accounts, audit log.
}

// WorkspaceSummary is one row of the admin workspace list.
type WorkspaceSummary struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// WorkspaceState is the whole of one workspace, for tests and demos. Secrets are never
// included: only their hashes are kept.
type WorkspaceState struct {
	Workspace Workspace `json:"workspace"`
	APIKeys   []APIKey  `json:"api_keys"`
}

// CreateWorkspace adds a workspace with one all:all API key and returns its id and key secret.
func (s *Server) CreateWorkspace(name string) (id, apiKey string) {
	ws, key := s.createWorkspace(name)
	return ws.id, key.Key
}

// createWorkspace returns the new workspace and its first key, secret included.
func (s *Server) createWorkspace(name string) (*workspace, APIKey) {
	now := s.now()
	ws := &workspace{
		id:    newUUID(),
		meter: newMeter(s.cfg.RPS, s.cfg.RPM),
	}
	ws.info = newWorkspaceInfo(ws.id, name, now)
	key, secret := newAPIKey(ws, "Default", []string{"all:all"}, now)
	ws.keys = append(ws.keys, key)

	s.mu.Lock()
	s.workspaces[ws.id] = ws
	s.order = append(s.order, ws)
	s.keys[key.hash] = key
	s.mu.Unlock()

	s.log.Info("workspace created", "workspace_id", ws.id, "name", name)
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
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	st := WorkspaceState{Workspace: ws.info, APIKeys: make([]APIKey, 0, len(ws.keys))}
	for _, k := range ws.keys {
		st.APIKeys = append(st.APIKeys, k.public(""))
	}
	return st, nil
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

func (s *Server) now() time.Time { return s.cfg.Now() }
