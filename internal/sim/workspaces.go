package sim

import (
	"net/http"
	"time"
)

// Workspace is the spec's Workspace object. Nullable fields are pointers so they encode as
// null, as Instantly sends them, rather than disappearing.
type Workspace struct {
	ID                      string             `json:"id"`
	TimestampCreated        string             `json:"timestamp_created"`
	TimestampUpdated        string             `json:"timestamp_updated"`
	ScheduledForRemovalAt   *string            `json:"scheduled_for_removal_at"`
	Owner                   string             `json:"owner"`
	Name                    string             `json:"name"`
	PlanID                  *string            `json:"plan_id"`
	PlanIDBundle            *string            `json:"plan_id_bundle"`
	AddUnsubToBlock         *bool              `json:"add_unsub_to_block"`
	DefaultOpportunityValue *float64           `json:"default_opportunity_value"`
	PlanIDLeadfinder        *string            `json:"plan_id_leadfinder"`
	PlanIDVerification      PlanIDVerification `json:"plan_id_verification"`
	OrgLogoURL              *string            `json:"org_logo_url"`
	OrgClientDomain         *string            `json:"org_client_domain"`
	PlanIDCRM               *string            `json:"plan_id_crm"`
	PlanIDWebsiteVisitor    *string            `json:"plan_id_website_visitor"`
	PlanIDInboxPlacement    *string            `json:"plan_id_inbox_placement"`
}

// PlanIDVerification is the spec's non-nullable plan_id_verification object; a workspace with
// no verification plan sends it empty.
type PlanIDVerification struct {
	Quantity         *float64 `json:"quantity,omitempty"`
	ProductID        string   `json:"product_id,omitempty"`
	TimestampUpdated string   `json:"timestamp_updated,omitempty"`
}

// newWorkspaceInfo describes a fresh workspace on the outreach plan the API requires, with
// none of the add-on plans. owner is the owner's user id.
func newWorkspaceInfo(id, name, owner string, now time.Time) Workspace {
	ts := timestamp(now)
	plan := "pid_hg_v1"
	unsubToBlock := false
	opportunityValue := 0.0
	return Workspace{
		ID:                      id,
		TimestampCreated:        ts,
		TimestampUpdated:        ts,
		Owner:                   owner,
		Name:                    name,
		PlanID:                  &plan,
		AddUnsubToBlock:         &unsubToBlock,
		DefaultOpportunityValue: &opportunityValue,
	}
}

func (w *workspace) snapshot() Workspace {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.info
}

// GET /api/v2/workspaces/current
func (s *Server) getCurrentWorkspace(c *call) (any, error) {
	return c.ws.snapshot(), nil
}

// PATCH /api/v2/workspaces/current. The schema has already checked the body: an object with
// at least one of name (string) and org_logo_url (string or null).
func (s *Server) patchCurrentWorkspace(c *call) (any, error) {
	body := c.body.(map[string]any)
	c.ws.mu.Lock()
	defer c.ws.mu.Unlock()
	if name, ok := body["name"].(string); ok {
		c.ws.info.Name = name
	}
	if logo, ok := body["org_logo_url"]; ok {
		// A new pointer, never a write through the old one: snapshots share pointees.
		c.ws.info.OrgLogoURL = nil
		if url, isString := logo.(string); isString {
			c.ws.info.OrgLogoURL = &url
		}
	}
	c.ws.info.TimestampUpdated = timestamp(c.now)
	return c.ws.info, nil
}

// POST /api/v2/workspaces/current/change-owner. The new owner must already be an accepted
// member; sec is the secret Instantly hands out of band (OwnerTransferSecret in the
// simulator). The old owner stays a member with role admin, and sec is rotated.
func (s *Server) changeOwner(c *call) (any, error) {
	body := c.body.(map[string]any) // email (format email) and sec, both strings
	email := normalizeEmail(body["email"].(string))
	sec := body["sec"].(string)
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if sec != ws.sec {
		return nil, newError(http.StatusForbidden, "Invalid sec")
	}
	next := -1
	for i, m := range ws.members {
		if m.Email == email && m.Accepted {
			next = i
		}
	}
	if next < 0 {
		return nil, errBadRequest("The new owner must be an accepted member of the workspace")
	}
	if ws.members[next].Role == RoleOwner {
		return nil, errBadRequest("This member is already the owner of the workspace")
	}
	for i := range ws.members {
		if ws.members[i].Role == RoleOwner {
			ws.members[i].Role = RoleAdmin
		}
	}
	ws.members[next].Role = RoleOwner
	ws.info.Owner = ws.members[next].UserID
	ws.info.TimestampUpdated = timestamp(c.now)
	ws.sec = newSec()
	s.log.Info("workspace owner changed", "workspace_id", ws.id, "owner", ws.info.Owner)
	return ws.info, nil
}
