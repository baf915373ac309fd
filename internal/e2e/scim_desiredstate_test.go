package e2e

import (
	"context"
	"testing"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
)

// TestSCIMMembersCountAsDeclared: a person the SCIM mapping gave a
// workspace is not planned for removal by an access-as-code file that
// does not name them; they are kept, with the identity provider as the
// reason. A hand-invited member there still is planned for removal.
func TestSCIMMembersCountAsDeclared(t *testing.T) {
	s := startSCIMEnv(t, 0)
	const dana, stray = "dana@agency.test", "stray@agency.test"
	danaID := s.do(t, "POST", "/Users", scimUser(dana), 201)["id"].(string)
	gid := s.do(t, "POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "sdr-west", "members": []any{}}, 201)["id"].(string)
	s.do(t, "PATCH", "/Groups/"+gid, scimPatch(map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": danaID}}}), 204)
	s.want(t, dana, map[string]bool{"west-1": true, "west-2": true})
	if _, err := s.e.sim.InviteMember(s.ids["west-1"], stray, "view"); err != nil {
		t.Fatal(err)
	}
	file := `version: 1
people:
  - email: ana@agency.test
    access:
      - selector: "team=sdr-west"
        role: editor
unmanaged:
  - "owner-*@agency.test"
`
	plan := &agencyv1.Plan{}
	if err := (grpcInvoker{conn: s.e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.DesiredStateService/CreatePlan",
		&agencyv1.CreatePlanRequest{DesiredState: file, View: agencyv1.PlanView_PLAN_VIEW_FULL}, plan); err != nil {
		t.Fatal(err)
	}
	var removals []string
	kept := map[string]agencyv1.KeptReason{}
	for _, ws := range plan.GetWorkspaces() {
		for _, c := range ws.GetChanges() {
			if c.GetKind() == agencyv1.ChangeKind_CHANGE_KIND_REMOVE {
				removals = append(removals, ws.GetWorkspace()+" "+c.GetEmail())
			}
		}
		for _, k := range ws.GetKept() {
			kept[ws.GetWorkspace()+" "+k.GetEmail()] = k.GetReason()
		}
	}
	if len(removals) != 1 || removals[0] != "workspaces/west-1 "+stray {
		t.Fatalf("removals %v, want only the hand-invited %s in west-1", removals, stray)
	}
	for _, ws := range []string{"workspaces/west-1", "workspaces/west-2"} {
		if kept[ws+" "+dana] != agencyv1.KeptReason_KEPT_REASON_IDENTITY_PROVIDER {
			t.Fatalf("%s in %s kept as %v, want IDENTITY_PROVIDER (all kept: %v)", dana, ws, kept[ws+" "+dana], kept)
		}
	}
}
