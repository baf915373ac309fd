package sim

import (
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"strings"
	"time"
)

// Audit-log activity types the simulator writes itself (the spec's AuditLog.activity_type).
const (
	ActivityAPIKeyCreated = 37
	ActivityAPIKeyDeleted = 38
)

// AuditLog is the spec's AuditLog object.
type AuditLog struct {
	ID             string         `json:"id"`
	Timestamp      string         `json:"timestamp"`
	OrganizationID string         `json:"organization_id"`
	ActivityType   int            `json:"activity_type"`
	UserAgent      *string        `json:"user_agent"`
	UserID         *string        `json:"user_id"`
	IPAddress      string         `json:"ip_address"`
	FromAPI        bool           `json:"from_api"`
	APIKeyID       *string        `json:"api_key_id"`
	AffectedCount  *float64       `json:"affected_count"`
	CampaignID     *string        `json:"campaign_id"`
	AuditMetadata  map[string]any `json:"audit_metadata,omitempty"`
	UserName       *string        `json:"user_name"`
}

func auditID(a AuditLog) string { return a.ID }

// appendAudit records an API action on a key: api_key_id is the key that made the request
// (under x-as-workspace, the admin workspace's key), the metadata names the key acted on. It
// needs ws.mu.
func (ws *workspace) appendAudit(id string, c *call, activity int, subject *apiKey) {
	caller := c.key.ID
	entry := AuditLog{
		ID:             id,
		Timestamp:      timestamp(c.now),
		OrganizationID: ws.id,
		ActivityType:   activity,
		IPAddress:      clientIP(c.r),
		FromAPI:        true,
		APIKeyID:       &caller,
		AuditMetadata:  map[string]any{"api_key_id": subject.ID, "api_key_name": subject.Name},
	}
	if ua := c.r.UserAgent(); ua != "" {
		entry.UserAgent = &ua
	}
	ws.audit = append(ws.audit, entry)
}

func clientIP(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// GET /api/v2/audit-logs: newest first, cursor is the id. activity_type filters exactly;
// search matches user name, user agent, IP address or metadata; start_date and end_date
// (ISO timestamps, or dates: end_date then covers its whole day) bound the timestamp.
func (s *Server) listAuditLogs(c *call) (any, error) {
	activity, byActivity := c.number("activity_type")
	search := c.str("search")
	from, err := parseDateParam("start_date", c.str("start_date"), false)
	if err != nil {
		return nil, err
	}
	to, err := parseDateParam("end_date", c.str("end_date"), true)
	if err != nil {
		return nil, err
	}
	keep := func(a AuditLog) bool {
		t, _ := time.Parse(time.RFC3339Nano, a.Timestamp)
		return (!byActivity || float64(a.ActivityType) == activity) &&
			(from.IsZero() || !t.Before(from)) && (to.IsZero() || !t.After(to)) &&
			(search == "" || a.matches(search))
	}
	c.ws.mu.RLock()
	newest := make([]AuditLog, len(c.ws.audit))
	for i, a := range c.ws.audit {
		newest[len(newest)-1-i] = a
	}
	c.ws.mu.RUnlock()
	return page(newest, keep, auditID, c.str("starting_after"), true, c.limit()), nil
}

func (a AuditLog) matches(search string) bool {
	for _, p := range []*string{a.UserName, a.UserAgent, &a.IPAddress} {
		if p != nil && containsFold(*p, search) {
			return true
		}
	}
	meta, _ := json.Marshal(a.AuditMetadata)
	return containsFold(string(meta), search)
}

// parseDateParam reads an RFC 3339 timestamp or a YYYY-MM-DD date ("" gives the zero time).
// A date as an upper bound means the end of that day.
func parseDateParam(name, v string, upper bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, errBadRequest("querystring/" + name + ` must match format "date-time"`)
	}
	if upper {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

// AuditEntry describes an activity for AddAuditLog; id, timestamp and organization are set by
// the simulator.
type AuditEntry struct {
	ActivityType  int            `json:"activity_type"`
	UserID        *string        `json:"user_id"`
	UserName      *string        `json:"user_name"`
	UserAgent     *string        `json:"user_agent"`
	IPAddress     string         `json:"ip_address"`
	FromAPI       bool           `json:"from_api"`
	APIKeyID      *string        `json:"api_key_id"`
	AffectedCount *float64       `json:"affected_count"`
	CampaignID    *string        `json:"campaign_id"`
	AuditMetadata map[string]any `json:"audit_metadata"`
}

// AddAuditLog appends an activity to a workspace's audit log at the current time, as if it
// happened in the app (a login, a campaign launch…). The activity type must be one of the
// spec's; errors match ErrNotFound or ErrInvalid.
func (s *Server) AddAuditLog(workspaceID string, e AuditEntry) (AuditLog, error) {
	enum := dig(s.spec.doc, "components", "schemas", "AuditLog", "properties", "activity_type")
	if msg := s.valid.check(enum, float64(e.ActivityType), "body/activity_type"); msg != "" {
		return AuditLog{}, errBadRequest(msg)
	}
	ws := s.workspace(workspaceID)
	if ws == nil {
		return AuditLog{}, errNotFound()
	}
	if e.IPAddress == "" {
		e.IPAddress = "127.0.0.1"
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	entry := AuditLog{
		ID:             s.newID(),
		Timestamp:      timestamp(s.now()),
		OrganizationID: ws.id,
		ActivityType:   e.ActivityType,
		UserAgent:      e.UserAgent,
		UserID:         e.UserID,
		IPAddress:      e.IPAddress,
		FromAPI:        e.FromAPI,
		APIKeyID:       e.APIKeyID,
		AffectedCount:  e.AffectedCount,
		CampaignID:     e.CampaignID,
		AuditMetadata:  maps.Clone(e.AuditMetadata),
		UserName:       e.UserName,
	}
	ws.audit = append(ws.audit, entry)
	return entry, nil
}
