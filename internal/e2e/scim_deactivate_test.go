package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/identity/oidc/oidctest"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestSCIMDeactivationRevokesAccess: a person signs in with OIDC and
// creates a control-plane token (which creates another); SCIM deactivating
// them revokes both and refuses their OIDC tokens; reactivation lets OIDC in
// again (the tokens stay revoked); deleting a user refuses them too. Other
// people's tokens are untouched.
func TestSCIMDeactivationRevokesAccess(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) { testSCIMDeactivationRevokesAccess(t, b) })
	}
}

func testSCIMDeactivationRevokesAccess(t *testing.T, b backend) {
	op := oidctest.Start(t)
	mapping := filepath.Join(t.TempDir(), "oidc-mapping.yaml")
	if err := os.WriteFile(mapping, []byte(oidcMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	redisURL := ""
	if b == redisBackend {
		redisURL = "redis://" + redistest.Start(t).Options().Addr + "/0"
	}
	e := startEnvWith(t, redisURL, 0, func(c *config.Config) {
		c.OIDCIssuers, c.OIDCAudience, c.OIDCMapping = []string{op.Issuer}, oidcAudience, mapping
	})
	ctx := context.Background()
	var prov agencyv1.CreateTokenResponse
	if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(ctx, "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, Description: "entra"}}, &prov); err != nil {
		t.Fatal(err)
	}
	s := &scimEnv{e: e, token: prov.GetSecret()}

	// ada@agency.example and bob@agency.example are unscoped admins by OIDC.
	ada := func() string { return oidcToken(t, op, "ada", "agency-admins") }
	bob := oidcToken(t, op, "bob", "agency-admins")
	mint := func(token string, role agencyv1.Role, ttl time.Duration) string {
		t.Helper()
		var out agencyv1.CreateTokenResponse
		if err := (grpcInvoker{conn: e.conn, token: token}).Invoke(ctx, "agency.v1.TokenService/CreateToken",
			&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: role, Description: "minted",
				ExpireTime: timestamppb.New(time.Now().Add(ttl))}}, &out); err != nil {
			t.Fatal(err)
		}
		return out.GetSecret()
	}
	call := func(token string) error {
		return (grpcInvoker{conn: e.conn, token: token}).Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces",
			&agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
	}
	adaToken := mint(ada(), agencyv1.Role_ROLE_ADMIN, 30*time.Minute)
	adaChild := mint(adaToken, agencyv1.Role_ROLE_VIEWER, 20*time.Minute) // created by ada's token: ada's too
	bobToken := mint(bob, agencyv1.Role_ROLE_VIEWER, 30*time.Minute)
	for _, tok := range []string{ada(), adaToken, adaChild, bobToken} {
		if err := call(tok); err != nil {
			t.Fatalf("before deactivation: %v", err)
		}
	}

	u := s.do(t, "POST", "/Users", scimUser("Ada@agency.example"), 201)
	id := u["id"].(string)
	bobUser := s.do(t, "POST", "/Users", scimUser("bob@agency.example"), 201)
	if err := call(ada()); err != nil {
		t.Fatalf("an active user is refused: %v", err)
	}

	// Entra's deactivation: capitalised op, active as a string.
	s.do(t, "PATCH", "/Users/"+id, scimPatch(map[string]any{"op": "Replace", "path": "active", "value": "False"}), 200)
	for name, tok := range map[string]string{"ada's token": adaToken, "the token ada's token made": adaChild, "a fresh OIDC token": ada()} {
		if err := call(tok); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("after deactivation, %s: %v, want UNAUTHENTICATED", name, err)
		}
	}
	if err := call(bobToken); err != nil {
		t.Fatalf("another person's token was revoked: %v", err)
	}
	// The same PATCH again (the identity provider retries): still off.
	s.do(t, "PATCH", "/Users/"+id, scimPatch(map[string]any{"op": "Replace", "path": "active", "value": "False"}), 200)

	// Reactivation lets OIDC in again; revoked tokens stay revoked.
	s.do(t, "PATCH", "/Users/"+id, scimPatch(map[string]any{"op": "replace", "value": map[string]any{"active": true}}), 200)
	if err := call(ada()); err != nil {
		t.Fatalf("after reactivation, OIDC: %v", err)
	}
	if err := call(adaToken); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after reactivation, the revoked token: %v, want UNAUTHENTICATED", err)
	}

	// Deleting a user refuses them as well.
	s.do(t, "DELETE", "/Users/"+bobUser["id"].(string), nil, 204)
	if err := call(bobToken); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after deletion, bob's token: %v, want UNAUTHENTICATED", err)
	}
	if err := call(oidcToken(t, op, "bob", "agency-admins")); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("after deletion, bob's OIDC token: %v, want UNAUTHENTICATED", err)
	}
}
