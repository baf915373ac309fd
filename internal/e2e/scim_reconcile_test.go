package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
)

// TestSCIMNewWorkspaceReconciled: a workspace registered with a group's
// label after a person joined the group gets them within a few
// --scim-reconcile-interval, with nothing created twice; their later
// deactivation removes them from it too.
func TestSCIMNewWorkspaceReconciled(t *testing.T) {
	mapping := filepath.Join(t.TempDir(), "scim.yaml")
	if err := os.WriteFile(mapping, []byte(scimMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnvWith(t, "", 0, func(c *config.Config) {
		c.SCIMMapping, c.SCIMReconcileInterval = mapping, time.Second
	})
	ctx := context.Background()
	s := &scimEnv{e: e, ids: map[string]string{}}
	admin := e.grpc(testToken)
	register := func(name, team string) {
		t.Helper()
		id, key := e.sim.CreateWorkspaceWithOwner(name, "owner-"+name+"@agency.test")
		if _, err := admin.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": team}}}); err != nil {
			t.Fatal(err)
		}
		s.ids[name] = id
	}
	register("west-1", "sdr-west")
	register("east-1", "sdr-east")
	var created agencyv1.CreateTokenResponse
	if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(ctx, "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, Description: "okta"}}, &created); err != nil {
		t.Fatal(err)
	}
	s.token = created.GetSecret()

	const dana = "dana@agency.test"
	danaID := s.do(t, "POST", "/Users", scimUser(dana), 201)["id"].(string)
	s.do(t, "POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "sdr-west",
		"members": []any{map[string]any{"value": danaID}}}, 201)
	s.want(t, dana, map[string]bool{"west-1": true, "east-1": false})

	// Registered after dana joined: west-2 and west-3 match the group,
	// east-2 does not.
	register("west-2", "sdr-west")
	register("east-2", "sdr-east")
	s.want(t, dana, map[string]bool{"west-1": true, "west-2": true, "east-1": false, "east-2": false})
	register("west-3", "sdr-west")
	s.want(t, dana, map[string]bool{"west-1": true, "west-2": true, "west-3": true, "east-2": false})
	if r := s.members(t, "west-3")[dana]; r != "editor" {
		t.Fatalf("dana's role in west-3: %q", r)
	}
	time.Sleep(2500 * time.Millisecond) // more intervals change nothing
	s.noDuplicates(t)

	// The new workspaces are in dana's grant: deactivation removes them too.
	s.do(t, "PATCH", "/Users/"+danaID, scimPatch(map[string]any{"op": "replace", "value": map[string]any{"active": false}}), 200)
	s.want(t, dana, map[string]bool{"west-1": false, "west-2": false, "west-3": false})
	s.want(t, "owner-west-3@agency.test", map[string]bool{"west-3": true})
	s.noDuplicates(t)
}
