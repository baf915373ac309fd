package sim

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Campaign is the spec's Campaign object with every required field and the common optional
// ones. The simulator only lists campaigns (seed them with AddCampaign); they exist to be
// tagged and filtered.
type Campaign struct {
	ID               string           `json:"id"`
	Name             string           `json:"name"`
	Status           int              `json:"status"` // 0 draft, 1 active, 2 paused, 3 completed…
	CampaignSchedule CampaignSchedule `json:"campaign_schedule"`
	TimestampCreated string           `json:"timestamp_created"`
	TimestampUpdated string           `json:"timestamp_updated"`
	PLValue          *float64         `json:"pl_value"`
	IsEvergreen      *bool            `json:"is_evergreen"`
	EmailGap         *float64         `json:"email_gap"`
	RandomWaitMax    *float64         `json:"random_wait_max"`
	TextOnly         *bool            `json:"text_only"`
	EmailList        []string         `json:"email_list"`
	DailyLimit       *float64         `json:"daily_limit"`
	StopOnReply      *bool            `json:"stop_on_reply"`
	EmailTagList     []string         `json:"email_tag_list"`
	LinkTracking     *bool            `json:"link_tracking"`
	OpenTracking     bool             `json:"open_tracking"`
	Organization     *string          `json:"organization"`
	OwnedBy          *string          `json:"owned_by"`
	AISDRID          *string          `json:"ai_sdr_id"`
}

// CampaignSchedule is the spec's campaign_schedule.
type CampaignSchedule struct {
	Schedules []Schedule `json:"schedules"`
	StartDate *string    `json:"start_date"`
	EndDate   *string    `json:"end_date"`
}

// Schedule is one sending window of a campaign.
type Schedule struct {
	Name     string          `json:"name"`
	Timing   ScheduleTiming  `json:"timing"`
	Days     map[string]bool `json:"days"` // "0" (Sunday) … "6"
	Timezone string          `json:"timezone"`
}

// ScheduleTiming is a schedule's daily window, "HH:MM" to "HH:MM".
type ScheduleTiming struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Account is the spec's Account object with every required field and the common optional
// ones. Accounts have no id: the email is the key, and the resource id of their tag mappings.
type Account struct {
	Email                string   `json:"email"`
	TimestampCreated     string   `json:"timestamp_created"`
	TimestampUpdated     string   `json:"timestamp_updated"`
	FirstName            string   `json:"first_name"`
	LastName             string   `json:"last_name"`
	Organization         string   `json:"organization"`
	Status               int      `json:"status"`        // 1 active, 2 paused, negative: errors
	WarmupStatus         int      `json:"warmup_status"` // 0 paused, 1 active, negative: problems
	ProviderCode         int      `json:"provider_code"` // 1 IMAP/SMTP, 2 Google, 3 Microsoft…
	SetupPending         bool     `json:"setup_pending"`
	IsManagedAccount     bool     `json:"is_managed_account"`
	AddedBy              *string  `json:"added_by"`
	DailyLimit           *float64 `json:"daily_limit"`
	TrackingDomainName   *string  `json:"tracking_domain_name"`
	TrackingDomainStatus *string  `json:"tracking_domain_status"`
	StatWarmupScore      *float64 `json:"stat_warmup_score"`
	TimestampWarmupStart *string  `json:"timestamp_warmup_start"`
}

// TagRef is a tag as GET /api/v2/accounts?include_tags=true embeds it.
type TagRef struct {
	ID          string  `json:"id"`
	Label       string  `json:"label"`
	Description *string `json:"description"`
}

// accountItem is one account of a list, with its tags when include_tags is true.
type accountItem struct {
	Account
	Tags *[]TagRef `json:"tags,omitempty"`
}

func campaignID(c Campaign) string { return c.ID }

// accountCursor is an account's place in the listing order, Instantly's
// "timestamp_created&email" cursor. Timestamps have a fixed width, so comparing cursors as
// strings compares (timestamp_created, email).
func accountCursor(a Account) string { return a.TimestampCreated + "&" + a.Email }

// GET /api/v2/campaigns: id order; search matches the name; tag_ids keeps campaigns with any of
// the tags; status and exclude_status compare the status; ai_sales_agent_id matches ai_sdr_id.
func (s *Server) listCampaigns(c *call) (any, error) {
	search := c.str("search")
	anyTag := c.list("tag_ids")
	agent, byAgent := c.query["ai_sales_agent_id"].(string)
	status, byStatus := c.number("status")
	excluded, byExcluded := c.number("exclude_status")
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	tags := c.ws.tagsByResource()
	keep := func(cp Campaign) bool {
		return (search == "" || containsFold(cp.Name, search)) &&
			(len(anyTag) == 0 || hasAny(tags[mappingResource(ResourceCampaign, cp.ID)], anyTag)) &&
			(!byAgent || (cp.AISDRID != nil && *cp.AISDRID == agent)) &&
			(!byStatus || float64(cp.Status) == status) &&
			(!byExcluded || float64(cp.Status) != excluded)
	}
	return page(c.ws.campaigns, keep, campaignID, c.str("starting_after"), false, c.limit()), nil
}

// GET /api/v2/accounts: ordered by (timestamp_created, email) with the cursor
// "timestamp_created&email" (a bare timestamp, the legacy cursor, lists accounts created
// after it). Filters: search (email or name), status, provider_code, filter (account-status
// filters), tag_ids (any), tag_ids_all (all). include_tags=true embeds each account's tags.
// With sort_by the list is sorted by that column (sort_order, default desc) and paginated by
// skip alone, without a cursor.
func (s *Server) listAccounts(c *call) (any, error) {
	after, err := parseAccountCursor(c.str("starting_after"))
	if err != nil {
		return nil, err
	}
	sel := selection{search: c.str("search"), status: c.str("filter"), tagAny: c.list("tag_ids"), tagAll: c.list("tag_ids_all")}
	status, byStatus := c.number("status")
	provider, byProvider := c.number("provider_code")
	includeTags, _ := c.flag("include_tags")
	sortBy := c.str("sort_by")
	skip := 0
	if v, ok := c.number("skip"); ok {
		skip = int(v)
	}

	ws := c.ws
	ws.mu.RLock()
	defer ws.mu.RUnlock()
	tags := ws.tagsByResource()
	var items []Account
	for _, a := range ws.accounts {
		if (!byStatus || float64(a.Status) == status) && (!byProvider || float64(a.ProviderCode) == provider) &&
			sel.matchesAccount(a, tags[mappingResource(ResourceAccount, a.Email)]) {
			items = append(items, a)
		}
	}
	if sortBy == "" {
		slices.SortFunc(items, func(a, b Account) int { return strings.Compare(accountCursor(a), accountCursor(b)) })
		if after != "" {
			items = slices.DeleteFunc(items, func(a Account) bool { return accountCursor(a) <= after })
		}
	} else {
		desc := c.str("sort_order") != "asc"
		slices.SortStableFunc(items, func(a, b Account) int {
			r := compareAccounts(a, b, sortBy)
			if desc {
				r = -r
			}
			return cmp.Or(r, strings.Compare(a.Email, b.Email))
		})
	}
	items = items[min(skip, len(items)):]
	items = items[:min(c.limit(), len(items))]

	out := List[accountItem]{Items: make([]accountItem, len(items))}
	for i, a := range items {
		out.Items[i] = accountItem{Account: a}
		if includeTags {
			out.Items[i].Tags = ws.tagRefs(tags[mappingResource(ResourceAccount, a.Email)])
		}
	}
	if n := len(items); n > 0 && sortBy == "" {
		out.NextStartingAfter = accountCursor(items[n-1])
	}
	return out, nil
}

// parseAccountCursor normalizes "timestamp&email" or a bare ISO timestamp to a string that
// compares against accountCursor values.
func parseAccountCursor(cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	ts, email, withEmail := strings.Cut(cursor, "&")
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return "", errBadRequest("querystring/starting_after must be a timestamp_created&email cursor")
	}
	if !withEmail {
		// Past every account created at that instant: "&" < "'".
		return timestamp(t) + "'", nil
	}
	return timestamp(t) + "&" + normalizeEmail(email), nil
}

func compareAccounts(a, b Account, column string) int {
	switch column {
	case "email":
		return strings.Compare(a.Email, b.Email)
	case "status":
		return cmp.Compare(a.Status, b.Status)
	case "stat_warmup_score":
		score := func(a Account) float64 {
			if a.StatWarmupScore == nil {
				return -1
			}
			return *a.StatWarmupScore
		}
		return cmp.Compare(score(a), score(b))
	}
	return strings.Compare(a.TimestampCreated, b.TimestampCreated)
}

// tagRefs lists a resource's tags in tag order; it needs ws.mu.
func (ws *workspace) tagRefs(ids map[string]bool) *[]TagRef {
	out := []TagRef{}
	for _, t := range ws.tags {
		if ids[t.ID] {
			out = append(out, TagRef{ID: t.ID, Label: t.Label, Description: t.Description})
		}
	}
	return &out
}

// selection is the "selected_all" filter of toggle-resource, also used by GET /accounts.
type selection struct {
	status         string // ACC_FILTER_* (accounts only)
	tagID          string // one tag, or "no-tag" for untagged resources (which the spec's oneOf rejects today)
	tagAny, tagAll []string
	search         string
}

func selectionFrom(body map[string]any) selection {
	var sel selection
	switch f := body["filter"].(type) {
	case string:
		sel.status = f
	case map[string]any:
		sel.status, _ = f["filter"].(string)
		sel.tagID, _ = f["tag_id"].(string)
		sel.tagAny = optStrings(f, "tag_ids")
		sel.tagAll = optStrings(f, "tag_ids_all")
		sel.search, _ = f["search"].(string)
	}
	if search, ok := body["search"].(string); ok {
		sel.search = search
	}
	return sel
}

func (sel selection) matchesTags(tags map[string]bool) bool {
	switch {
	case sel.tagID == "no-tag" && len(tags) > 0:
		return false
	case sel.tagID != "" && sel.tagID != "no-tag" && !tags[sel.tagID]:
		return false
	case len(sel.tagAny) > 0 && !hasAny(tags, sel.tagAny):
		return false
	}
	for _, id := range sel.tagAll {
		if !tags[id] {
			return false
		}
	}
	return true
}

func (sel selection) matchesAccount(a Account, tags map[string]bool) bool {
	return sel.matchesTags(tags) && accountFilter(sel.status, a) &&
		(sel.search == "" || containsFold(a.Email, sel.search) || containsFold(a.FirstName+" "+a.LastName, sel.search))
}

func (sel selection) matchesCampaign(cp Campaign, tags map[string]bool) bool {
	return sel.matchesTags(tags) && (sel.search == "" || containsFold(cp.Name, sel.search))
}

// accountFilter applies one of the app's account filters. Pre-warmed accounts are not
// simulated, so ACC_FILTER_PW_ACCOUNTS matches none.
func accountFilter(filter string, a Account) bool {
	switch filter {
	case "":
		return true
	case "ACC_FILTER_PAUSED":
		return a.Status == 2
	case "ACC_FILTER_ERROR":
		return a.Status < 0
	case "ACC_FILTER_NO_CTD":
		return a.TrackingDomainName == nil
	case "ACC_FILTER_DFY":
		return a.IsManagedAccount
	case "ACC_FILTER_DFY_SETUP_PENDING":
		return a.IsManagedAccount && a.SetupPending
	case "ACC_FILTER_W_ACTIVE":
		return a.WarmupStatus == 1
	case "ACC_FILTER_W_PAUSED":
		return a.WarmupStatus == 0
	case "ACC_FILTER_W_ERROR":
		return a.WarmupStatus < 0
	}
	return false
}

// resourcesMatching lists the ids of every resource of a type that the selection matches; it
// needs ws.mu.
func (ws *workspace) resourcesMatching(resourceType int, sel selection) []string {
	tags := ws.tagsByResource()
	var out []string
	if resourceType == ResourceAccount {
		for _, a := range ws.accounts {
			if sel.matchesAccount(a, tags[mappingResource(ResourceAccount, a.Email)]) {
				out = append(out, a.Email)
			}
		}
		return out
	}
	for _, cp := range ws.campaigns {
		if sel.matchesCampaign(cp, tags[mappingResource(ResourceCampaign, cp.ID)]) {
			out = append(out, cp.ID)
		}
	}
	return out
}

// resourceExists needs ws.mu; id is normalized (resourceKey).
func (ws *workspace) resourceExists(resourceType int, id string) bool {
	if resourceType == ResourceAccount {
		return slices.ContainsFunc(ws.accounts, func(a Account) bool { return a.Email == id })
	}
	return slices.ContainsFunc(ws.campaigns, func(cp Campaign) bool { return cp.ID == id })
}

func hasAny(set map[string]bool, ids []string) bool {
	return slices.ContainsFunc(ids, func(id string) bool { return set[id] })
}

// CampaignSeed describes a campaign for AddCampaign's admin-API twin; zero Status is draft.
type CampaignSeed struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
}

// AddCampaign adds a draft campaign to a workspace, as if created in the app.
// Errors match ErrNotFound or ErrInvalid (empty name).
func (s *Server) AddCampaign(workspaceID, name string) (Campaign, error) {
	return s.addCampaign(workspaceID, CampaignSeed{Name: name})
}

func (s *Server) addCampaign(workspaceID string, seed CampaignSeed) (Campaign, error) {
	if seed.Name == "" {
		return Campaign{}, errBadRequest("body/name must NOT have fewer than 1 characters")
	}
	ws := s.workspace(workspaceID)
	if ws == nil {
		return Campaign{}, errNotFound()
	}
	now := s.now()
	ts := timestamp(now)
	f, t := false, true
	gap, wait, limit := 10.0, 10.0, 50.0
	ws.mu.Lock()
	defer ws.mu.Unlock()
	org, owner := ws.id, ws.info.Owner
	cp := Campaign{
		ID:     s.newID(),
		Name:   seed.Name,
		Status: seed.Status,
		CampaignSchedule: CampaignSchedule{Schedules: []Schedule{{
			Name:     "New schedule",
			Timing:   ScheduleTiming{From: "09:00", To: "17:00"},
			Days:     map[string]bool{"1": true, "2": true, "3": true, "4": true, "5": true},
			Timezone: "America/Chicago",
		}}},
		TimestampCreated: ts,
		TimestampUpdated: ts,
		IsEvergreen:      &f,
		EmailGap:         &gap,
		RandomWaitMax:    &wait,
		TextOnly:         &f,
		EmailList:        []string{},
		DailyLimit:       &limit,
		StopOnReply:      &t,
		EmailTagList:     []string{},
		LinkTracking:     &f,
		OpenTracking:     false,
		Organization:     &org,
		OwnedBy:          &owner,
	}
	ws.campaigns = append(ws.campaigns, cp)
	return cp, nil
}

// AccountSeed describes an account for the admin API; zero values give an active Google
// account with paused warmup and the local part of the email as first name.
type AccountSeed struct {
	Email              string   `json:"email"`
	FirstName          string   `json:"first_name"`
	LastName           string   `json:"last_name"`
	Status             int      `json:"status"`
	WarmupStatus       int      `json:"warmup_status"`
	ProviderCode       int      `json:"provider_code"`
	SetupPending       bool     `json:"setup_pending"`
	IsManagedAccount   bool     `json:"is_managed_account"`
	TrackingDomainName *string  `json:"tracking_domain_name"`
	StatWarmupScore    *float64 `json:"stat_warmup_score"`
}

// AddAccount adds an email account to a workspace, as if connected in the app. The email is
// the account's key: adding it twice to one workspace is an error matching ErrConflict.
func (s *Server) AddAccount(workspaceID, email string) (Account, error) {
	if !emailRE.MatchString(strings.TrimSpace(email)) {
		return Account{}, errBadRequest(`body/email must match format "email"`)
	}
	return s.addAccount(workspaceID, AccountSeed{Email: email})
}

func (s *Server) addAccount(workspaceID string, seed AccountSeed) (Account, error) {
	ws := s.workspace(workspaceID)
	if ws == nil {
		return Account{}, errNotFound()
	}
	email := normalizeEmail(seed.Email)
	first := seed.FirstName
	if first == "" {
		first, _, _ = strings.Cut(email, "@")
	}
	status := cmp.Or(seed.Status, 1)
	provider := cmp.Or(seed.ProviderCode, 2)
	ts := timestamp(s.now())
	limit := 30.0
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if slices.ContainsFunc(ws.accounts, func(a Account) bool { return a.Email == email }) {
		return Account{}, newError(http.StatusConflict, "An account with this email already exists")
	}
	owner := ws.info.Owner
	a := Account{
		Email:              email,
		TimestampCreated:   ts,
		TimestampUpdated:   ts,
		FirstName:          first,
		LastName:           seed.LastName,
		Organization:       ws.id,
		Status:             status,
		WarmupStatus:       seed.WarmupStatus,
		ProviderCode:       provider,
		SetupPending:       seed.SetupPending,
		IsManagedAccount:   seed.IsManagedAccount,
		AddedBy:            &owner,
		DailyLimit:         &limit,
		TrackingDomainName: seed.TrackingDomainName,
		StatWarmupScore:    seed.StatWarmupScore,
	}
	ws.accounts = append(ws.accounts, a)
	return a, nil
}
