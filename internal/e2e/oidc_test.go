package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/identity/oidc/oidctest"
)

const oidcAudience = "agencyplane-e2e"

// oidcMapping gives each role-named group its role, scoped to team=west,
// and one unscoped group "agency-admins".
const oidcMapping = `
- match: {groups: "agency-admins", hd: "agency.example"}
  role: admin
- match: {groups: "admin"}
  role: admin
  scope: "team=west"
- match: {groups: "manager"}
  role: manager
  scope: "team=west"
- match: {groups: "sdr"}
  role: sdr
  scope: "team=west"
- match: {groups: "viewer"}
  role: viewer
  scope: "team=west"
`

// startOIDCEnv starts an OpenID Provider and agencyd trusting it, with the
// matrix fixture's two workspaces (team=west in scope, team=east out).
func startOIDCEnv(t *testing.T) (*matrixFixture, *oidctest.Provider) {
	t.Helper()
	op := oidctest.Start(t)
	mapping := filepath.Join(t.TempDir(), "oidc-mapping.yaml")
	if err := os.WriteFile(mapping, []byte(oidcMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnvWith(t, "", 0, func(c *config.Config) {
		c.OIDCIssuers, c.OIDCAudience, c.OIDCMapping = []string{op.Issuer}, oidcAudience, mapping
	})
	f := &matrixFixture{e: e}
	admin := e.grpc(testToken)
	for _, team := range []string{"west", "east"} {
		_, key := e.sim.CreateWorkspaceWithOwner("team "+team, "owner-"+team+"@agency.test")
		w, err := admin.Create(context.Background(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: "team-" + team,
			Workspace: &agencyv1.Workspace{DisplayName: team, ApiKey: &key, Labels: map[string]string{"team": team}}})
		if err != nil {
			t.Fatal(err)
		}
		if team == "west" {
			f.in, f.inOwner = w.GetName(), "owner-west@agency.test"
		} else {
			f.out, f.outOwner = w.GetName(), "owner-east@agency.test"
		}
	}
	return f, op
}

func oidcToken(t *testing.T, op *oidctest.Provider, sub string, groups ...string) string {
	return op.Sign(t, op.Claims(sub, oidcAudience, time.Hour, map[string]any{
		"groups": groups, "email": sub + "@agency.example", "hd": "agency.example"}))
}

// TestOIDCAccessMatrix runs the access matrix for OIDC principals: every
// RPC × every role (from the mapping, scoped to team=west) × in scope and
// out of scope, over gRPC and REST, exactly as for control-plane tokens.
func TestOIDCAccessMatrix(t *testing.T) {
	methods := make([]string, 0, len(expectedMatrix))
	for m := range expectedMatrix {
		if m != "TokenService/CreateToken" { // needs an expiry: TestOIDCCallers
			methods = append(methods, m)
		}
	}
	slices.Sort(methods)
	slices.SortStableFunc(methods, func(a, b string) int {
		rank := func(m string) int {
			if m == "WorkspaceService/DeleteWorkspace" {
				return 1
			}
			return 0
		}
		return rank(a) - rank(b)
	})
	for _, role := range []string{"admin", "manager", "sdr", "viewer"} {
		t.Run(role, func(t *testing.T) {
			f, op := startOIDCEnv(t)
			token := oidcToken(t, op, "person-"+role, role)
			for _, inv := range f.e.invokers(token) {
				t.Run(inv.Transport(), func(t *testing.T) {
					for _, where := range []string{"out", "in"} {
						for _, m := range methods {
							t.Run(where+"/"+m, func(t *testing.T) { f.check(t, inv, role, m, where) })
						}
					}
				})
			}
			if strings.Contains(f.e.logs.String(), token) {
				t.Fatal("an OIDC token appears in the server logs")
			}
		})
	}
}

// TestOIDCCallers: the cases the issue names, end to end.
func TestOIDCCallers(t *testing.T) {
	f, op := startOIDCEnv(t)
	ctx := context.Background()
	manager := oidcToken(t, op, "mia", "manager")
	scopedAdmin := oidcToken(t, op, "ada", "admin")

	t.Run("a manager is denied a members write", func(t *testing.T) {
		for _, inv := range f.e.invokers(manager) {
			err := inv.Invoke(ctx, "agency.v1.MemberService/InviteMember",
				&agencyv1.InviteMemberRequest{Parent: f.in, Email: "new@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{})
			wantReason(t, wantCode(t, err, codes.PermissionDenied), "PERMISSION_DENIED")
			var list agencyv1.ListMembersResponse
			if err := inv.Invoke(ctx, "agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: f.in}, &list); err != nil {
				t.Fatalf("%s: a manager cannot list members: %v", inv.Transport(), err)
			}
		}
	})
	t.Run("an admin with a scope sees only its scope", func(t *testing.T) {
		for _, inv := range f.e.invokers(scopedAdmin) {
			var list agencyv1.ListWorkspacesResponse
			if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &list); err != nil {
				t.Fatal(err)
			}
			if len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetName() != f.in {
				t.Fatalf("%s: scoped admin lists %v", inv.Transport(), list.GetWorkspaces())
			}
			err := inv.Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: f.out}, &agencyv1.Workspace{})
			wantCode(t, err, codes.NotFound)
		}
	})
	t.Run("the audit trail names oidc:<issuer>#<sub> with the email", func(t *testing.T) {
		_, err := f.e.grpc(scopedAdmin).Update(ctx, &agencyv1.Workspace{Name: f.in, Labels: map[string]string{"team": "west", "tier": "gold"}}, "labels")
		if err != nil {
			t.Fatal(err)
		}
		var events agencyv1.ListEventsResponse
		if err := (grpcInvoker{conn: f.e.conn, token: testToken}).Invoke(ctx, "agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{}, &events); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range events.GetEvents() {
			if strings.Contains(mustJSONString(e), scopedAdmin) || strings.Contains(mustJSONString(e), strings.Split(scopedAdmin, ".")[2]) {
				t.Fatalf("the token is in an audit event: %v", e)
			}
			if strings.HasSuffix(e.GetMethod(), "/UpdateWorkspace") {
				found = true
				if e.GetPrincipal() != "oidc:"+op.Issuer+"#ada" || e.GetPrincipalEmail() != "ada@agency.example" || e.GetRole() != agencyv1.Role_ROLE_ADMIN {
					t.Fatalf("audit event %v", e)
				}
			}
		}
		if !found {
			t.Fatal("no audit event for the OIDC caller's update")
		}
	})
	t.Run("tokens minted by an OIDC caller expire no later than its ID token", func(t *testing.T) {
		inv := grpcInvoker{conn: f.e.conn, token: scopedAdmin}
		err := inv.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=west"}}, &agencyv1.CreateTokenResponse{})
		wantCode(t, err, codes.PermissionDenied)
		var created agencyv1.CreateTokenResponse
		if err := inv.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=west",
			ExpireTime: timestamppb.New(time.Now().Add(10 * time.Minute))}}, &created); err != nil {
			t.Fatal(err)
		}
		if created.GetToken().GetCreator() != "" && created.GetToken().GetCreator() != "oidc:"+op.Issuer+"#ada" {
			t.Fatalf("creator %q", created.GetToken().GetCreator())
		}
	})
	t.Run("refused tokens", func(t *testing.T) {
		expired := op.Sign(t, op.Claims("ada", oidcAudience, -5*time.Minute, map[string]any{"groups": []string{"admin"}}))
		wrongAud := op.Sign(t, op.Claims("ada", "another-app", time.Hour, map[string]any{"groups": []string{"admin"}}))
		unmapped := oidcToken(t, op, "zed", "contractors")
		none := oidctest.Unsigned(t, "key-1", op.Claims("ada", oidcAudience, time.Hour, map[string]any{"groups": []string{"agency-admins"}, "hd": "agency.example"}))
		for _, tc := range []struct {
			token string
			code  codes.Code
		}{{expired, codes.Unauthenticated}, {wrongAud, codes.Unauthenticated}, {none, codes.Unauthenticated}, {unmapped, codes.PermissionDenied}} {
			for _, inv := range f.e.invokers(tc.token) {
				err := inv.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
				st := wantCode(t, err, tc.code)
				if strings.Contains(st.Message(), tc.token) {
					t.Fatal("the token is echoed in the error")
				}
			}
		}
	})
	t.Run("the provider goes away: its tokens fail closed, control-plane tokens still work", func(t *testing.T) {
		// A fresh agencyd that has not discovered the provider yet.
		f2, op2 := startOIDCEnv(t)
		tok := oidcToken(t, op2, "ada", "admin")
		op2.Stop()
		err := grpcInvoker{conn: f2.e.conn, token: tok}.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("token of an unreachable issuer: %v, want UNAVAILABLE", err)
		}
		if err := (grpcInvoker{conn: f2.e.conn, token: testToken}).Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{}); err != nil {
			t.Fatal(err)
		}
	})
}
