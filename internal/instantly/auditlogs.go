package instantly

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// AuditActivityType is AuditLog.activity_type; the constants are generated
// from the spec (enums_gen.go).
type AuditActivityType int

// AuditLog is the spec's AuditLog.
type AuditLog struct {
	ID             string            `json:"id"`
	Timestamp      string            `json:"timestamp"`
	OrganizationID string            `json:"organization_id"`
	ActivityType   AuditActivityType `json:"activity_type"`
	UserAgent      *string           `json:"user_agent,omitempty"`
	UserID         *string           `json:"user_id,omitempty"`
	IPAddress      string            `json:"ip_address"`
	FromAPI        bool              `json:"from_api"`
	APIKeyID       *string           `json:"api_key_id,omitempty"`
	AffectedCount  *float64          `json:"affected_count,omitempty"`
	CampaignID     *string           `json:"campaign_id,omitempty"`
	WebhookID      *string           `json:"webhook_id,omitempty"`
	SubsequenceID  *string           `json:"subsequence_id,omitempty"`
	ListID         *string           `json:"list_id,omitempty"`
	AuditMetadata  map[string]any    `json:"audit_metadata,omitempty"`
	UserName       *string           `json:"user_name,omitempty"`
}

// ListAuditLogsParams filters GET /audit-logs. Limit may be up to 1000 here.
// The dates are ISO 8601 strings as Instantly prints them
// ("2026-01-01T00:00:00.000Z"), passed through unchanged.
type ListAuditLogsParams struct {
	Limit         int
	StartingAfter string
	// ActivityType is a plain number in the spec's query (no enum there);
	// the AuditActivityType constants give the known values.
	ActivityType *int
	Search       string
	StartDate    string
	EndDate      string
}

func (p ListAuditLogsParams) query() url.Values {
	q := listQuery(p.Limit, p.StartingAfter)
	setIntPtr(q, "activity_type", p.ActivityType)
	setString(q, "search", p.Search)
	setString(q, "start_date", p.StartDate)
	setString(q, "end_date", p.EndDate)
	return q
}

// ListAuditLogs returns one page of audit records (GET /audit-logs, scope audit_logs:read).
func (c *Client) ListAuditLogs(ctx context.Context, cred Credential, p ListAuditLogsParams) (*Page[AuditLog], error) {
	return call[Page[AuditLog]](ctx, c, cred, request{method: http.MethodGet, path: "/audit-logs", query: p.query()})
}

// AllAuditLogs walks every record matching p, from p.StartingAfter, 1000 a page by default.
func (c *Client) AllAuditLogs(ctx context.Context, cred Credential, p ListAuditLogsParams, opts ...PageOption) iter.Seq2[AuditLog, error] {
	p.Limit = walkLimit(p.Limit, 1000)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[AuditLog], error) {
		p.StartingAfter = cursor
		return c.ListAuditLogs(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}
