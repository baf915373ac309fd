package sim

import "net/http"

// adminRoutes is the simulator's own API, for tests and demos: no auth, no limits, no faults.
func adminRoutes() []route {
	return []route{
		{method: http.MethodGet, pattern: "/_sim/health", handle: (*Server).adminHealth},
		{method: http.MethodGet, pattern: "/_sim/stats", handle: (*Server).adminStats},
		{method: http.MethodPost, pattern: "/_sim/stats/reset", handle: (*Server).adminResetStats, status: http.StatusNoContent},
		{method: http.MethodGet, pattern: "/_sim/workspaces", handle: (*Server).adminListWorkspaces},
		{method: http.MethodPost, pattern: "/_sim/workspaces", handle: (*Server).adminCreateWorkspace, status: http.StatusCreated,
			bodySchema: `{"type": "object", "properties": {"name": {"type": "string", "minLength": 1}},
				"required": ["name"], "additionalProperties": false}`},
		{method: http.MethodGet, pattern: "/_sim/workspaces/{id}", handle: (*Server).adminGetWorkspace},
		// Same body as Instantly's POST /api/v2/api-keys, so scopes are checked against its enum.
		{method: http.MethodPost, pattern: "/_sim/workspaces/{id}/api-keys", handle: (*Server).adminCreateAPIKey, status: http.StatusCreated,
			bodyFrom: "POST /api/v2/api-keys"},
		{method: http.MethodDelete, pattern: "/_sim/workspaces/{id}/api-keys/{key_id}", handle: (*Server).adminRevokeAPIKey},
	}
}

// CreatedWorkspace answers POST /_sim/workspaces.
type CreatedWorkspace struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	APIKey   string `json:"api_key"` // secret of the workspace's first key, scope all:all
	APIKeyID string `json:"api_key_id"`
}

func (s *Server) adminHealth(*call) (any, error) {
	return map[string]string{"status": "ok"}, nil
}

func (s *Server) adminStats(*call) (any, error) { return s.Stats(), nil }

func (s *Server) adminResetStats(*call) (any, error) {
	s.ResetStats()
	return nil, nil
}

func (s *Server) adminListWorkspaces(*call) (any, error) {
	return map[string]any{"items": s.Workspaces()}, nil
}

func (s *Server) adminCreateWorkspace(c *call) (any, error) {
	name := c.body.(map[string]any)["name"].(string) // the schema guarantees it
	ws, key := s.createWorkspace(name)
	return CreatedWorkspace{ID: ws.id, Name: name, APIKey: key.Key, APIKeyID: key.ID}, nil
}

func (s *Server) adminGetWorkspace(c *call) (any, error) {
	return s.WorkspaceState(c.r.PathValue("id"))
}

func (s *Server) adminCreateAPIKey(c *call) (any, error) {
	body := c.body.(map[string]any) // name and scopes, validated against the spec
	var scopes []string
	for _, sc := range body["scopes"].([]any) {
		scopes = append(scopes, sc.(string))
	}
	return s.createAPIKey(c.r.PathValue("id"), body["name"].(string), scopes)
}

func (s *Server) adminRevokeAPIKey(c *call) (any, error) {
	return s.revokeAPIKey(c.r.PathValue("id"), c.r.PathValue("key_id"))
}
