package instantly

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// CampaignStatus is Campaign.status (also the status filters of GET /campaigns).
type CampaignStatus int

// Campaign statuses. Draft is 0, so filters take a *CampaignStatus.
const (
	CampaignAccountSuspended    CampaignStatus = -99
	CampaignAccountsUnhealthy   CampaignStatus = -1
	CampaignBounceProtect       CampaignStatus = -2
	CampaignDraft               CampaignStatus = 0
	CampaignActive              CampaignStatus = 1
	CampaignPaused              CampaignStatus = 2
	CampaignCompleted           CampaignStatus = 3
	CampaignRunningSubsequences CampaignStatus = 4
)

// CampaignNotSendingStatus is Campaign.not_sending_status: why an active
// campaign is not sending right now.
type CampaignNotSendingStatus int

// Not-sending reasons.
const (
	NotSendingOutsideSchedule      CampaignNotSendingStatus = 1
	NotSendingWaitingForLead       CampaignNotSendingStatus = 2
	NotSendingDailyLimitReached    CampaignNotSendingStatus = 3
	NotSendingAccountsLimitReached CampaignNotSendingStatus = 4
	NotSendingError                CampaignNotSendingStatus = 99
)

// Campaign is the spec's Campaign. Nullable fields are pointers; nullable
// objects that are free-form are maps (nil is null).
type Campaign struct {
	ID                            string                         `json:"id"`
	Name                          string                         `json:"name"`
	PLValue                       *float64                       `json:"pl_value,omitempty"`
	Status                        CampaignStatus                 `json:"status"`
	IsEvergreen                   *bool                          `json:"is_evergreen,omitempty"`
	CampaignSchedule              CampaignSchedule               `json:"campaign_schedule"`
	Sequences                     []CampaignSequence             `json:"sequences,omitempty"`
	TimestampCreated              string                         `json:"timestamp_created"`
	TimestampUpdated              string                         `json:"timestamp_updated"`
	EmailGap                      *float64                       `json:"email_gap,omitempty"`
	RandomWaitMax                 *float64                       `json:"random_wait_max,omitempty"`
	TextOnly                      *bool                          `json:"text_only,omitempty"`
	FirstEmailTextOnly            *bool                          `json:"first_email_text_only,omitempty"`
	EmailList                     []string                       `json:"email_list,omitempty"`
	DailyLimit                    *float64                       `json:"daily_limit,omitempty"`
	StopOnReply                   *bool                          `json:"stop_on_reply,omitempty"`
	EmailTagList                  []string                       `json:"email_tag_list,omitempty"`
	LinkTracking                  *bool                          `json:"link_tracking,omitempty"`
	OpenTracking                  *bool                          `json:"open_tracking,omitempty"` // optional, not nullable
	StopOnAutoReply               *bool                          `json:"stop_on_auto_reply,omitempty"`
	DailyMaxLeads                 *int                           `json:"daily_max_leads,omitempty"`
	PrioritizeNewLeads            *bool                          `json:"prioritize_new_leads,omitempty"`
	AutoVariantSelect             *AutoVariantSelect             `json:"auto_variant_select,omitempty"`
	MatchLeadESP                  *bool                          `json:"match_lead_esp,omitempty"`
	NotSendingStatus              *CampaignNotSendingStatus      `json:"not_sending_status,omitempty"`
	StopForCompany                *bool                          `json:"stop_for_company,omitempty"`
	CoreVariables                 map[string]any                 `json:"core_variables,omitempty"`
	CustomVariables               map[string]any                 `json:"custom_variables,omitempty"`
	InsertUnsubscribeHeader       *bool                          `json:"insert_unsubscribe_header,omitempty"`
	AllowRiskyContacts            *bool                          `json:"allow_risky_contacts,omitempty"`
	DisableBounceProtect          *bool                          `json:"disable_bounce_protect,omitempty"`
	LimitEmailsPerCompanyOverride *LimitEmailsPerCompanyOverride `json:"limit_emails_per_company_override,omitempty"`
	CCList                        []string                       `json:"cc_list,omitempty"`
	BCCList                       []string                       `json:"bcc_list,omitempty"`
	Organization                  *string                        `json:"organization,omitempty"`
	OwnedBy                       *string                        `json:"owned_by,omitempty"`
	AISDRID                       *string                        `json:"ai_sdr_id,omitempty"`
	ProviderRoutingRules          []ProviderRoutingRule          `json:"provider_routing_rules,omitempty"`
}

// CampaignSchedule is Campaign.campaign_schedule. Dates are YYYY-MM-DD.
type CampaignSchedule struct {
	StartDate *string                 `json:"start_date,omitempty"`
	EndDate   *string                 `json:"end_date,omitempty"`
	Schedules []CampaignScheduleEntry `json:"schedules"`
}

// CampaignScheduleEntry is one sending window. Timezone is one of the spec's
// 102 zone names (not copied here: Instantly validates it).
type CampaignScheduleEntry struct {
	Name     string         `json:"name"`
	Timing   CampaignTiming `json:"timing"`
	Days     CampaignDays   `json:"days"`
	Timezone string         `json:"timezone"`
}

// CampaignTiming is a daily window, "HH:MM" to "HH:MM".
type CampaignTiming struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// CampaignDays says which weekdays send, keyed "0" to "6" in the spec. The
// spec does not say which day "0" is; JavaScript's getDay (0 = Sunday) is the
// likely convention, so the fields are named by it.
type CampaignDays struct {
	Sunday    *bool `json:"0,omitempty"`
	Monday    *bool `json:"1,omitempty"`
	Tuesday   *bool `json:"2,omitempty"`
	Wednesday *bool `json:"3,omitempty"`
	Thursday  *bool `json:"4,omitempty"`
	Friday    *bool `json:"5,omitempty"`
	Saturday  *bool `json:"6,omitempty"`
}

// CampaignSequence is one element of Campaign.sequences (only the first is used).
type CampaignSequence struct {
	Steps []CampaignStep `json:"steps"`
}

// DelayUnit is the unit of a step's delay.
type DelayUnit string

// Delay units; Instantly defaults to days.
const (
	DelayMinutes DelayUnit = "minutes"
	DelayHours   DelayUnit = "hours"
	DelayDays    DelayUnit = "days"
)

// CampaignStep is one email of a sequence. Type is always "email".
type CampaignStep struct {
	Type         string            `json:"type"`
	Delay        float64           `json:"delay"`
	DelayUnit    DelayUnit         `json:"delay_unit,omitempty"`
	PreDelay     *float64          `json:"pre_delay,omitempty"`
	PreDelayUnit DelayUnit         `json:"pre_delay_unit,omitempty"`
	Variants     []CampaignVariant `json:"variants"`
}

// CampaignVariant is one A/B variant of a step.
type CampaignVariant struct {
	Subject   string `json:"subject"`
	Body      string `json:"body"`
	VDisabled *bool  `json:"v_disabled,omitempty"`
}

// AutoVariantSelect is Campaign.auto_variant_select.
type AutoVariantSelect struct {
	Trigger string `json:"trigger"` // reply_rate, click_rate or open_rate
}

// LimitEmailsPerCompanyOverride is Campaign.limit_emails_per_company_override.
type LimitEmailsPerCompanyOverride struct {
	Mode       string   `json:"mode"` // custom or disabled
	DailyLimit *float64 `json:"daily_limit,omitempty"`
	Scope      string   `json:"scope,omitempty"` // per_campaign or across_workspace
}

// ProviderRoutingRule is one of Campaign.provider_routing_rules.
type ProviderRoutingRule struct {
	Action       string   `json:"action,omitempty"`        // send or do_not_send
	RecipientESP []string `json:"recipient_esp,omitempty"` // all, google, outlook, other
	SenderESP    []string `json:"sender_esp,omitempty"`
}

// ListCampaignsParams filters GET /campaigns.
type ListCampaignsParams struct {
	Limit          int
	StartingAfter  string
	Search         string   // campaign name
	TagIDs         []string // campaigns with any of these tags
	AISalesAgentID string
	Status         *CampaignStatus
	ExcludeStatus  *CampaignStatus
}

func (p ListCampaignsParams) query() url.Values {
	q := listQuery(p.Limit, p.StartingAfter)
	setString(q, "search", p.Search)
	setList(q, "tag_ids", p.TagIDs)
	setString(q, "ai_sales_agent_id", p.AISalesAgentID)
	setIntPtr(q, "status", p.Status)
	setIntPtr(q, "exclude_status", p.ExcludeStatus)
	return q
}

// ListCampaigns returns one page of campaigns (GET /campaigns, scope campaigns:read).
func (c *Client) ListCampaigns(ctx context.Context, cred Credential, p ListCampaignsParams) (*Page[Campaign], error) {
	return call[Page[Campaign]](ctx, c, cred, request{method: http.MethodGet, path: "/campaigns", query: p.query()})
}

// AllCampaigns walks every campaign matching p, from p.StartingAfter.
func (c *Client) AllCampaigns(ctx context.Context, cred Credential, p ListCampaignsParams, opts ...PageOption) iter.Seq2[Campaign, error] {
	p.Limit = walkLimit(p.Limit, 100)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[Campaign], error) {
		p.StartingAfter = cursor
		return c.ListCampaigns(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}
