package sim

import (
	"net/http"
	"time"
)

// route is one row of a route table: adding an endpoint is one row plus one handler.
type route struct {
	method  string
	pattern string // path template; {name} matches one segment, read with r.PathValue(name)
	scope   string // "resource:action" the key needs; "" where Instantly documents none
	handle  func(*Server, *call) (any, error)
	status  int // success status; 0 means 200, Instantly's answer even to creations

	// Request bodies are validated against the spec operation named by bodyFrom
	// ("POST /api/v2/api-keys"), by default the route's own; bodySchema (inline JSON Schema)
	// overrides it for the admin API, which has no spec.
	bodyFrom   string
	bodySchema string
}

// call is what a handler gets: the request, the moment it was admitted and what it acts on.
type call struct {
	r    *http.Request
	now  time.Time
	ws   *workspace // the workspace acted on; nil on admin routes
	key  *apiKey    // the caller's key; nil on admin routes
	body any        // the decoded, schema-valid JSON body; nil when there is none
	// query holds the route's known query parameters, coerced and validated against the
	// spec; read them with limit, str, number, flag and list.
	query map[string]any
}

// apiRoutes is Instantly's API as far as the simulator serves it. Scopes are those the spec's
// descriptions require (a test checks every row against the embedded spec); the two
// operations documenting none need only a valid key.
func apiRoutes() []route {
	const (
		get, post, patch, del = http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete
		v2                    = "/api/v2"
	)
	return []route{
		{method: get, pattern: v2 + "/workspaces/current", scope: "workspaces:read", handle: (*Server).getCurrentWorkspace},
		{method: patch, pattern: v2 + "/workspaces/current", scope: "workspaces:update", handle: (*Server).patchCurrentWorkspace},
		{method: post, pattern: v2 + "/workspaces/current/change-owner", scope: "workspaces:update", handle: (*Server).changeOwner},

		{method: get, pattern: v2 + "/workspace-members", scope: "workspace_members:read", handle: (*Server).listMembers},
		{method: post, pattern: v2 + "/workspace-members", scope: "workspace_members:create", handle: (*Server).createMember},
		{method: get, pattern: v2 + "/workspace-members/{id}", scope: "workspace_members:read", handle: (*Server).getMember},
		{method: patch, pattern: v2 + "/workspace-members/{id}", scope: "workspace_members:update", handle: (*Server).patchMember},
		{method: del, pattern: v2 + "/workspace-members/{id}", scope: "workspace_members:delete", handle: (*Server).deleteMember},

		{method: get, pattern: v2 + "/workspace-group-members", scope: "workspace_group_members:read", handle: (*Server).listGroupMembers},
		{method: post, pattern: v2 + "/workspace-group-members", scope: "workspace_group_members:create", handle: (*Server).createGroupMember},
		{method: get, pattern: v2 + "/workspace-group-members/admin", scope: "", handle: (*Server).getGroupAdmin},
		{method: get, pattern: v2 + "/workspace-group-members/{id}", scope: "workspace_group_members:read", handle: (*Server).getGroupMember},
		{method: del, pattern: v2 + "/workspace-group-members/{id}", scope: "workspace_group_members:delete", handle: (*Server).deleteGroupMember},

		{method: get, pattern: v2 + "/custom-tags", scope: "custom_tags:read", handle: (*Server).listTags},
		{method: post, pattern: v2 + "/custom-tags", scope: "custom_tags:create", handle: (*Server).createTag},
		{method: post, pattern: v2 + "/custom-tags/toggle-resource", scope: "", handle: (*Server).toggleTagResource},
		{method: get, pattern: v2 + "/custom-tags/{id}", scope: "custom_tags:read", handle: (*Server).getTag},
		{method: patch, pattern: v2 + "/custom-tags/{id}", scope: "custom_tags:update", handle: (*Server).patchTag},
		{method: del, pattern: v2 + "/custom-tags/{id}", scope: "custom_tags:delete", handle: (*Server).deleteTag},
		{method: get, pattern: v2 + "/custom-tag-mappings", scope: "custom_tag_mappings:read", handle: (*Server).listTagMappings},

		{method: get, pattern: v2 + "/campaigns", scope: "campaigns:read", handle: (*Server).listCampaigns},
		{method: get, pattern: v2 + "/accounts", scope: "accounts:read", handle: (*Server).listAccounts},

		{method: get, pattern: v2 + "/api-keys", scope: "api_keys:read", handle: (*Server).listAPIKeys},
		{method: post, pattern: v2 + "/api-keys", scope: "api_keys:create", handle: (*Server).postAPIKey},
		{method: del, pattern: v2 + "/api-keys/{id}", scope: "api_keys:delete", handle: (*Server).deleteAPIKey},

		{method: get, pattern: v2 + "/audit-logs", scope: "audit_logs:read", handle: (*Server).listAuditLogs},
	}
}
