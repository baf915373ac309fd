package instantly

import (
	"context"
	"net/http"
)

// Workspace is Instantly's Workspace schema.
type Workspace struct {
	ID                      string         `json:"id"`
	TimestampCreated        string         `json:"timestamp_created"`
	TimestampUpdated        string         `json:"timestamp_updated"`
	ScheduledForRemovalAt   *string        `json:"scheduled_for_removal_at,omitempty"`
	Owner                   string         `json:"owner"`
	Name                    string         `json:"name"`
	PlanID                  *string        `json:"plan_id,omitempty"`
	PlanIDBundle            *string        `json:"plan_id_bundle,omitempty"`
	AddUnsubToBlock         *bool          `json:"add_unsub_to_block,omitempty"`
	DefaultOpportunityValue *float64       `json:"default_opportunity_value,omitempty"`
	PlanIDLeadfinder        *string        `json:"plan_id_leadfinder,omitempty"`
	PlanIDVerification      map[string]any `json:"plan_id_verification,omitempty"`
	OrgLogoURL              *string        `json:"org_logo_url,omitempty"`
	OrgClientDomain         *string        `json:"org_client_domain,omitempty"`
	PlanIDCRM               *string        `json:"plan_id_crm,omitempty"`
	PlanIDWebsiteVisitor    *string        `json:"plan_id_website_visitor,omitempty"`
	PlanIDInboxPlacement    *string        `json:"plan_id_inbox_placement,omitempty"`
}

// GetCurrentWorkspace returns the workspace the credential acts on
// (GET /workspaces/current, scope workspaces:read).
func (c *Client) GetCurrentWorkspace(ctx context.Context, cred Credential) (*Workspace, error) {
	var out Workspace
	err := c.do(ctx, cred, request{method: http.MethodGet, path: "/workspaces/current", idempotent: true}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdateCurrentWorkspaceRequest is the body of PATCH /workspaces/current.
type UpdateCurrentWorkspaceRequest struct {
	Name       *string `json:"name,omitempty"`
	OrgLogoURL *string `json:"org_logo_url,omitempty"`
}

// UpdateCurrentWorkspace renames the workspace or changes its logo
// (PATCH /workspaces/current, scope workspaces:update).
func (c *Client) UpdateCurrentWorkspace(ctx context.Context, cred Credential, body UpdateCurrentWorkspaceRequest) (*Workspace, error) {
	var out Workspace
	err := c.do(ctx, cred, request{method: http.MethodPatch, path: "/workspaces/current", body: body, idempotent: true}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}
