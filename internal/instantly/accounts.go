package instantly

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// AccountStatus is Account.status (also the status filter of GET /accounts).
// No status is 0, so 0 means "no filter".
type AccountStatus int

// Account statuses.
const (
	AccountActive          AccountStatus = 1
	AccountPaused          AccountStatus = 2
	AccountMaintenance     AccountStatus = 3 // paused for maintenance, resumes by itself
	AccountConnectionError AccountStatus = -1
	AccountSoftBounceError AccountStatus = -2
	AccountSendingError    AccountStatus = -3
)

// ProviderCode is Account.provider_code. No provider is 0.
type ProviderCode int

// Email providers.
const (
	ProviderCustomIMAP     ProviderCode = 1
	ProviderGoogle         ProviderCode = 2
	ProviderMicrosoft      ProviderCode = 3
	ProviderAWS            ProviderCode = 4
	ProviderAirMail        ProviderCode = 8
	ProviderAirmailInstant ProviderCode = 11
)

// WarmupStatus is Account.warmup_status.
type WarmupStatus int

// Warmup statuses.
const (
	WarmupPaused              WarmupStatus = 0
	WarmupActive              WarmupStatus = 1
	WarmupBanned              WarmupStatus = -1
	WarmupSpamFolderUnknown   WarmupStatus = -2
	WarmupPermanentSuspension WarmupStatus = -3
)

// Account is the spec's Account, as GET /accounts lists it (with Tags when
// include_tags is set). Accounts have no id: the email is the key, including
// as a resource id for tags.
type Account struct {
	Email                   string                `json:"email"`
	TimestampCreated        string                `json:"timestamp_created"`
	TimestampUpdated        string                `json:"timestamp_updated"`
	FirstName               string                `json:"first_name"`
	LastName                string                `json:"last_name"`
	Warmup                  *AccountWarmup        `json:"warmup,omitempty"`
	AddedBy                 *string               `json:"added_by,omitempty"`
	DailyLimit              *float64              `json:"daily_limit,omitempty"`
	DailyLimitMax           *float64              `json:"daily_limit_max,omitempty"`
	WarmupLimitMax          *float64              `json:"warmup_limit_max,omitempty"`
	ModifiedBy              *string               `json:"modified_by,omitempty"`
	TrackingDomainName      *string               `json:"tracking_domain_name,omitempty"`
	TrackingDomainStatus    *string               `json:"tracking_domain_status,omitempty"`
	Status                  AccountStatus         `json:"status,omitempty"`
	EnableSlowRamp          *bool                 `json:"enable_slow_ramp,omitempty"`
	InboxPlacementTestLimit *float64              `json:"inbox_placement_test_limit,omitempty"`
	Organization            string                `json:"organization"`
	WarmupStatus            WarmupStatus          `json:"warmup_status"`
	StatusMessage           *AccountStatusMessage `json:"status_message,omitempty"`
	TimestampWarmupStart    *string               `json:"timestamp_warmup_start,omitempty"`
	ProviderCode            ProviderCode          `json:"provider_code"`
	SetupPending            bool                  `json:"setup_pending"`
	IsManagedAccount        bool                  `json:"is_managed_account"`
	StatWarmupScore         *float64              `json:"stat_warmup_score,omitempty"`
	SendingGap              *float64              `json:"sending_gap,omitempty"` // optional, not nullable
	Signature               *string               `json:"signature,omitempty"`
	ReplyTo                 *string               `json:"reply_to,omitempty"`
	AutofixFailed           *bool                 `json:"autofix_failed,omitempty"`
	// Tags is added by the list response, populated with include_tags.
	Tags []AccountTag `json:"tags,omitempty"`
}

// AccountWarmup is Account.warmup.
type AccountWarmup struct {
	Limit            *float64               `json:"limit,omitempty"`
	Advanced         *AccountWarmupAdvanced `json:"advanced,omitempty"`
	WarmupCustomFtag string                 `json:"warmup_custom_ftag,omitempty"`
	// Increment is the slow-ramp daily increment: "disabled" or "0".."4".
	Increment string   `json:"increment,omitempty"`
	ReplyRate *float64 `json:"reply_rate,omitempty"`
}

// AccountWarmupAdvanced is Account.warmup.advanced.
type AccountWarmupAdvanced struct {
	WarmCTD       *bool    `json:"warm_ctd,omitempty"`
	OpenRate      *float64 `json:"open_rate,omitempty"`
	ImportantRate *float64 `json:"important_rate,omitempty"`
	ReadEmulation *bool    `json:"read_emulation,omitempty"`
	SpamSaveRate  *float64 `json:"spam_save_rate,omitempty"`
	WeekdayOnly   *bool    `json:"weekday_only,omitempty"`
}

// AccountStatusMessage is Account.status_message, the last SMTP/IMAP error.
// The spec allows further properties; they are dropped.
type AccountStatusMessage struct {
	Code         string   `json:"code,omitempty"`
	Command      string   `json:"command,omitempty"`
	Response     string   `json:"response,omitempty"`
	EMessage     string   `json:"e_message,omitempty"`
	ResponseCode *float64 `json:"responseCode,omitempty"`
}

// AccountTag is one of Account.tags.
type AccountTag struct {
	ID          string  `json:"id,omitempty"`
	Label       string  `json:"label,omitempty"`
	Description *string `json:"description,omitempty"`
}

// AccountSortBy orders GET /accounts.
type AccountSortBy string

// Sort keys.
const (
	AccountSortTimestampCreated AccountSortBy = "timestamp_created"
	AccountSortEmail            AccountSortBy = "email"
	AccountSortWarmupScore      AccountSortBy = "stat_warmup_score"
	AccountSortStatus           AccountSortBy = "status"
)

// SortOrder is asc or desc.
type SortOrder string

// Sort orders.
const (
	SortAsc  SortOrder = "asc"
	SortDesc SortOrder = "desc"
)

// ListAccountsParams filters GET /accounts.
type ListAccountsParams struct {
	Limit         int
	StartingAfter string
	Search        string
	Status        AccountStatus // 0: any
	ProviderCode  ProviderCode  // 0: any
	TagIDs        []string      // accounts with any of these tags
	TagIDsAll     []string      // accounts with all of these tags
	IncludeTags   bool          // populate Account.Tags
	Filter        AccountFilter
	SortBy        AccountSortBy
	SortOrder     SortOrder
	// Skip is an offset, which the spec offers beside the cursor.
	Skip int
}

func (p ListAccountsParams) query() url.Values {
	q := listQuery(p.Limit, p.StartingAfter)
	setString(q, "search", p.Search)
	setInt(q, "status", int(p.Status))
	setInt(q, "provider_code", int(p.ProviderCode))
	setList(q, "tag_ids", p.TagIDs)
	setList(q, "tag_ids_all", p.TagIDsAll)
	if p.IncludeTags {
		q.Set("include_tags", "true")
	}
	setString(q, "filter", string(p.Filter))
	setString(q, "sort_by", string(p.SortBy))
	setString(q, "sort_order", string(p.SortOrder))
	setInt(q, "skip", p.Skip)
	return q
}

// ListAccounts returns one page of email accounts (GET /accounts, scope accounts:read).
func (c *Client) ListAccounts(ctx context.Context, cred Credential, p ListAccountsParams) (*Page[Account], error) {
	return call[Page[Account]](ctx, c, cred, request{method: http.MethodGet, path: "/accounts", query: p.query()})
}

// AllAccounts walks every account matching p, from p.StartingAfter.
func (c *Client) AllAccounts(ctx context.Context, cred Credential, p ListAccountsParams, opts ...PageOption) iter.Seq2[Account, error] {
	p.Limit = walkLimit(p.Limit, 100)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[Account], error) {
		p.StartingAfter = cursor
		return c.ListAccounts(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}
