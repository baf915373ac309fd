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
}

// apiRoutes is Instantly's API as far as the simulator serves it. Scopes are those the spec's
// descriptions require (a test checks every row against the embedded spec).
func apiRoutes() []route {
	return []route{
		{method: http.MethodGet, pattern: "/api/v2/workspaces/current", scope: "workspaces:read", handle: (*Server).getCurrentWorkspace},
		{method: http.MethodPatch, pattern: "/api/v2/workspaces/current", scope: "workspaces:update", handle: (*Server).patchCurrentWorkspace},
	}
}
