package sim

import (
	"encoding/json"
	"net/http"
)

// adminRoutes is the simulator's own API, for tests and demos: no auth, no limits, no faults.
// Each mirrors a Go method of Server.
func adminRoutes() []route {
	const get, post, del = http.MethodGet, http.MethodPost, http.MethodDelete
	return []route{
		{method: get, pattern: "/_sim/health", handle: (*Server).adminHealth},
		{method: get, pattern: "/_sim/stats", handle: (*Server).adminStats},
		{method: post, pattern: "/_sim/stats/reset", handle: (*Server).adminResetStats, status: http.StatusNoContent},
		{method: get, pattern: "/_sim/workspaces", handle: (*Server).adminListWorkspaces},
		{method: post, pattern: "/_sim/workspaces", handle: (*Server).adminCreateWorkspace, status: http.StatusCreated,
			bodySchema: `{"type": "object", "properties": {"name": {"type": "string", "minLength": 1},
				"owner_email": {"type": "string", "format": "email"}},
				"required": ["name"], "additionalProperties": false}`},
		{method: get, pattern: "/_sim/workspaces/{id}", handle: (*Server).adminGetWorkspace},
		{method: get, pattern: "/_sim/workspaces/{id}/change-owner-sec", handle: (*Server).adminChangeOwnerSec},
		// Same body as Instantly's POST /api/v2/api-keys, so scopes are checked against its enum.
		{method: post, pattern: "/_sim/workspaces/{id}/api-keys", handle: (*Server).adminCreateAPIKey, status: http.StatusCreated,
			bodyFrom: "POST /api/v2/api-keys"},
		{method: del, pattern: "/_sim/workspaces/{id}/api-keys/{key_id}", handle: (*Server).adminRevokeAPIKey},
		{method: post, pattern: "/_sim/workspaces/{id}/members/{member_id}/accept", handle: (*Server).adminAcceptMember},
		{method: post, pattern: "/_sim/group-members/{id}/accept", handle: (*Server).adminAcceptGroupMember},
		{method: post, pattern: "/_sim/group-members/{id}/reject", handle: (*Server).adminRejectGroupMember},
		{method: post, pattern: "/_sim/workspaces/{id}/campaigns", handle: (*Server).adminAddCampaign, status: http.StatusCreated,
			bodySchema: `{"type": "object", "properties": {"name": {"type": "string", "minLength": 1},
				"status": {"$ref": "#/components/schemas/Campaign/properties/status"}},
				"required": ["name"], "additionalProperties": false}`},
		{method: post, pattern: "/_sim/workspaces/{id}/accounts", handle: (*Server).adminAddAccount, status: http.StatusCreated,
			bodySchema: `{"type": "object", "properties": {
				"email": {"type": "string", "format": "email"},
				"first_name": {"type": "string"}, "last_name": {"type": "string"},
				"status": {"$ref": "#/components/schemas/Account/properties/status"},
				"warmup_status": {"$ref": "#/components/schemas/Account/properties/warmup_status"},
				"provider_code": {"$ref": "#/components/schemas/Account/properties/provider_code"},
				"setup_pending": {"type": "boolean"}, "is_managed_account": {"type": "boolean"},
				"tracking_domain_name": {"type": ["string", "null"]},
				"stat_warmup_score": {"type": ["number", "null"]}},
				"required": ["email"], "additionalProperties": false}`},
		{method: post, pattern: "/_sim/workspaces/{id}/audit-logs", handle: (*Server).adminAddAuditLog, status: http.StatusCreated,
			bodySchema: `{"type": "object", "properties": {
				"activity_type": {"$ref": "#/components/schemas/AuditLog/properties/activity_type"},
				"user_id": {"type": ["string", "null"]}, "user_name": {"type": ["string", "null"]},
				"user_agent": {"type": ["string", "null"]}, "ip_address": {"type": "string"},
				"from_api": {"type": "boolean"}, "api_key_id": {"type": ["string", "null"]},
				"affected_count": {"type": ["number", "null"]}, "campaign_id": {"type": ["string", "null"]},
				"audit_metadata": {"type": "object"}},
				"required": ["activity_type"], "additionalProperties": false}`},
	}
}

// CreatedWorkspace answers POST /_sim/workspaces.
type CreatedWorkspace struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	APIKey      string `json:"api_key"` // secret of the workspace's first key, scope all:all
	APIKeyID    string `json:"api_key_id"`
	OwnerEmail  string `json:"owner_email"`
	OwnerUserID string `json:"owner_user_id"`
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
	body := c.body.(map[string]any)
	name := body["name"].(string) // the schema guarantees it
	email, _ := body["owner_email"].(string)
	ws, key := s.createWorkspace(name, email)
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	return CreatedWorkspace{ID: ws.id, Name: name, APIKey: key.Key, APIKeyID: key.ID,
		OwnerEmail: ws.members[0].Email, OwnerUserID: ws.info.Owner}, nil
}

func (s *Server) adminGetWorkspace(c *call) (any, error) {
	return s.WorkspaceState(c.r.PathValue("id"))
}

func (s *Server) adminChangeOwnerSec(c *call) (any, error) {
	sec, err := s.OwnerTransferSecret(c.r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return map[string]string{"sec": sec}, nil
}

func (s *Server) adminCreateAPIKey(c *call) (any, error) {
	body := c.body.(map[string]any) // name and scopes, validated against the spec
	return s.createAPIKey(c.r.PathValue("id"), body["name"].(string), optStrings(body, "scopes"))
}

func (s *Server) adminRevokeAPIKey(c *call) (any, error) {
	return s.revokeAPIKey(c.r.PathValue("id"), c.r.PathValue("key_id"))
}

func (s *Server) adminAcceptMember(c *call) (any, error) {
	return s.acceptMember(c.r.PathValue("id"), c.r.PathValue("member_id"))
}

func (s *Server) adminAcceptGroupMember(c *call) (any, error) {
	return s.answerGroupInvitation(c.r.PathValue("id"), GroupAccepted)
}

func (s *Server) adminRejectGroupMember(c *call) (any, error) {
	return s.answerGroupInvitation(c.r.PathValue("id"), GroupRejected)
}

func (s *Server) adminAddCampaign(c *call) (any, error) {
	var seed CampaignSeed
	if err := remarshal(c.body, &seed); err != nil {
		return nil, err
	}
	return s.addCampaign(c.r.PathValue("id"), seed)
}

func (s *Server) adminAddAccount(c *call) (any, error) {
	var seed AccountSeed
	if err := remarshal(c.body, &seed); err != nil {
		return nil, err
	}
	return s.addAccount(c.r.PathValue("id"), seed)
}

func (s *Server) adminAddAuditLog(c *call) (any, error) {
	var e AuditEntry
	if err := remarshal(c.body, &e); err != nil {
		return nil, err
	}
	return s.AddAuditLog(c.r.PathValue("id"), e)
}

// remarshal copies a schema-valid body into a typed seed.
func remarshal(body any, into any) error {
	data, err := json.Marshal(body)
	if err == nil {
		err = json.Unmarshal(data, into)
	}
	if err != nil {
		return errBadRequest(err.Error())
	}
	return nil
}
