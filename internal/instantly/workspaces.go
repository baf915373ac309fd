package instantly

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
)

// Workspace is Instantly's Workspace schema.
type Workspace struct {
	ID                      string              `json:"id"`
	TimestampCreated        string              `json:"timestamp_created"`
	TimestampUpdated        string              `json:"timestamp_updated"`
	ScheduledForRemovalAt   *string             `json:"scheduled_for_removal_at,omitempty"`
	Owner                   string              `json:"owner"`
	Name                    string              `json:"name"`
	PlanID                  *string             `json:"plan_id,omitempty"`
	PlanIDBundle            *string             `json:"plan_id_bundle,omitempty"`
	AddUnsubToBlock         *bool               `json:"add_unsub_to_block,omitempty"`
	DefaultOpportunityValue *float64            `json:"default_opportunity_value,omitempty"`
	PlanIDLeadfinder        *string             `json:"plan_id_leadfinder,omitempty"`
	PlanIDVerification      *PlanIDVerification `json:"plan_id_verification,omitempty"`
	OrgLogoURL              *string             `json:"org_logo_url,omitempty"`
	OrgClientDomain         *string             `json:"org_client_domain,omitempty"`
	PlanIDCRM               *string             `json:"plan_id_crm,omitempty"`
	PlanIDWebsiteVisitor    *string             `json:"plan_id_website_visitor,omitempty"`
	PlanIDInboxPlacement    *string             `json:"plan_id_inbox_placement,omitempty"`
}

// PlanIDVerification is Workspace.plan_id_verification (an object, not
// nullable; empty without a verification plan).
type PlanIDVerification struct {
	Quantity         *float64 `json:"quantity,omitempty"`
	ProductID        string   `json:"product_id,omitempty"`
	TimestampUpdated string   `json:"timestamp_updated,omitempty"`
}

// GetCurrentWorkspace returns the workspace the credential acts on
// (GET /workspaces/current, scope workspaces:read).
func (c *Client) GetCurrentWorkspace(ctx context.Context, cred Credential) (*Workspace, error) {
	return call[Workspace](ctx, c, cred, request{method: http.MethodGet, path: "/workspaces/current"})
}

// UpdateCurrentWorkspaceRequest is the body of PATCH /workspaces/current: at
// least one field. ClearOrgLogoURL sends "org_logo_url": null (OrgLogoURL
// must then be nil), which a nil pointer alone cannot express.
type UpdateCurrentWorkspaceRequest struct {
	Name            *string `json:"name,omitempty"`
	OrgLogoURL      *string `json:"org_logo_url,omitempty"`
	ClearOrgLogoURL bool    `json:"-"`
}

// MarshalJSON omits unset fields and writes null for a cleared logo.
func (r UpdateCurrentWorkspaceRequest) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if r.Name != nil {
		m["name"] = *r.Name
	}
	if r.OrgLogoURL != nil {
		m["org_logo_url"] = *r.OrgLogoURL
	} else if r.ClearOrgLogoURL {
		m["org_logo_url"] = nil
	}
	return json.Marshal(m)
}

// UpdateCurrentWorkspace renames the workspace or changes its logo
// (PATCH /workspaces/current, scope workspaces:update).
func (c *Client) UpdateCurrentWorkspace(ctx context.Context, cred Credential, body UpdateCurrentWorkspaceRequest) (*Workspace, error) {
	return call[Workspace](ctx, c, cred, request{method: http.MethodPatch, path: "/workspaces/current", body: body})
}

// ChangeOwnerRequest is the body of POST /workspaces/current/change-owner.
// Sec is a secret token Instantly issues out of band; ChangeOwnerRequest
// formats itself without it.
type ChangeOwnerRequest struct {
	Email string `json:"email"` // the new owner
	Sec   string `json:"sec"`
}

// String describes the request without its token.
func (r ChangeOwnerRequest) String() string {
	return "ChangeOwnerRequest{Email: " + r.Email + ", Sec: <redacted>}"
}

// GoString is String for %#v.
func (r ChangeOwnerRequest) GoString() string { return r.String() }

// LogValue keeps the token out of slog output.
func (r ChangeOwnerRequest) LogValue() slog.Value { return slog.StringValue(r.String()) }

// ChangeWorkspaceOwner hands the workspace to another user, the only way the
// owner role moves (POST /workspaces/current/change-owner, scope
// workspaces:update). It sets state, so a repeat is harmless.
func (c *Client) ChangeWorkspaceOwner(ctx context.Context, cred Credential, req ChangeOwnerRequest) (*Workspace, error) {
	return call[Workspace](ctx, c, cred, request{method: http.MethodPost, path: "/workspaces/current/change-owner", body: req})
}
