package e2e

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
)

// TestTokenLifecycle: tokens are shown once, work until revoked or expired,
// and cannot mint more power than their own; over both transports.
func TestTokenLifecycle(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	for _, admin := range e.invokers(testToken) {
		t.Run(admin.Transport(), func(t *testing.T) {
			with := func(tok string) invoker {
				for _, i := range e.invokers(tok) {
					if i.Transport() == admin.Transport() {
						return i
					}
				}
				return nil
			}
			create := func(inv invoker, tok *agencyv1.Token) (*agencyv1.CreateTokenResponse, error) {
				var out agencyv1.CreateTokenResponse
				return &out, inv.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: tok}, &out)
			}
			// A scoped admin.
			west, err := create(admin, &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, WorkspaceScope: "team=west", Description: "west lead",
				ExpireTime: timestamppb.New(time.Now().Add(time.Hour))})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(west.GetSecret(), "agp_") || west.GetToken().GetCreator() != "tokens/bootstrap" {
				t.Fatalf("created: %v", west.GetToken())
			}
			// Get never shows the secret (there is no field for it) and the
			// list shows the token.
			var got agencyv1.Token
			if err := admin.Invoke(ctx, "agency.v1.TokenService/GetToken", &agencyv1.GetTokenRequest{Name: west.GetToken().GetName()}, &got); err != nil || got.GetWorkspaceScope() != "team=west" {
				t.Fatalf("get: %v %v", &got, err)
			}
			var list agencyv1.ListTokensResponse
			if err := admin.Invoke(ctx, "agency.v1.TokenService/ListTokens", &agencyv1.ListTokensRequest{}, &list); err != nil || len(list.GetTokens()) < 2 {
				t.Fatalf("list: %v %v", list.GetTokens(), err)
			}
			w := with(west.GetSecret())
			// No more power than its own: wider scope, longer life, higher role.
			for _, tok := range []*agencyv1.Token{
				{Role: agencyv1.Role_ROLE_VIEWER},
				{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=east"},
				{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=west"},
				{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=west", ExpireTime: timestamppb.New(time.Now().Add(48 * time.Hour))},
			} {
				_, err := create(w, tok)
				wantReason(t, wantCode(t, err, codes.PermissionDenied), "PERMISSION_DENIED")
			}
			// A scoped admin does not see, nor revoke, wider tokens.
			wantCode(t, w.Invoke(ctx, "agency.v1.TokenService/GetToken", &agencyv1.GetTokenRequest{Name: "tokens/bootstrap"}, &got), codes.NotFound)
			wantCode(t, w.Invoke(ctx, "agency.v1.TokenService/RevokeToken", &agencyv1.RevokeTokenRequest{Name: "tokens/bootstrap"}, &got), codes.NotFound)
			var scopedList agencyv1.ListTokensResponse
			if err := w.Invoke(ctx, "agency.v1.TokenService/ListTokens", &agencyv1.ListTokensRequest{}, &scopedList); err != nil {
				t.Fatal(err)
			}
			for _, tok := range scopedList.GetTokens() {
				if !strings.Contains(tok.GetWorkspaceScope(), "team=west") {
					t.Fatalf("scoped admin lists %s (scope %q)", tok.GetName(), tok.GetWorkspaceScope())
				}
			}
			narrower, err := create(w, &agencyv1.Token{Role: agencyv1.Role_ROLE_SDR, WorkspaceScope: "team=west,tier=gold", ExpireTime: timestamppb.New(time.Now().Add(30 * time.Minute))})
			if err != nil {
				t.Fatalf("a narrower token: %v", err)
			}
			// Bad input.
			_, err = create(admin, &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team in (west"})
			wantField(t, wantCode(t, err, codes.InvalidArgument), "token.workspace_scope")
			_, err = create(admin, &agencyv1.Token{})
			wantField(t, wantCode(t, err, codes.InvalidArgument), "token.role")
			_, err = create(admin, &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(time.Now().Add(-time.Minute))})
			wantField(t, wantCode(t, err, codes.InvalidArgument), "token.expire_time")

			// Revoked: refused at once.
			n := with(narrower.GetSecret())
			if err := n.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{}); err != nil {
				t.Fatalf("narrower token before revocation: %v", err)
			}
			var revoked agencyv1.Token
			if err := admin.Invoke(ctx, "agency.v1.TokenService/RevokeToken", &agencyv1.RevokeTokenRequest{Name: narrower.GetToken().GetName()}, &revoked); err != nil || revoked.GetRevokeTime() == nil {
				t.Fatalf("revoke: %v %v", &revoked, err)
			}
			err = n.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
			wantCode(t, err, codes.Unauthenticated)
			if err := admin.Invoke(ctx, "agency.v1.TokenService/ListTokens", &agencyv1.ListTokensRequest{}, &list); err != nil {
				t.Fatal(err)
			}
			for _, tok := range list.GetTokens() {
				if tok.GetName() == narrower.GetToken().GetName() {
					t.Fatal("a revoked token is listed as active")
				}
			}
			wantCode(t, admin.Invoke(ctx, "agency.v1.TokenService/RevokeToken", &agencyv1.RevokeTokenRequest{Name: "tokens/nope"}, &revoked), codes.NotFound)
		})
	}
}

// TestExpiredToken: a token past its expiry is refused, by the injected
// clock (no real time passes).
func TestExpiredToken(t *testing.T) {
	var skew atomic.Int64 // how far the clock is ahead of real time
	e := startEnvWith(t, "", 0, func(c *config.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	})
	ctx := context.Background()
	var out agencyv1.CreateTokenResponse
	admin := grpcInvoker{conn: e.conn, token: testToken}
	if err := admin.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{
		Role: agencyv1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(time.Now().Add(time.Hour))}}, &out); err != nil {
		t.Fatal(err)
	}
	short := grpcInvoker{conn: e.conn, token: out.GetSecret()}
	if err := short.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{}); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	skew.Store(int64(time.Hour + time.Minute))
	err := short.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
	wantCode(t, err, codes.Unauthenticated)
}

// TestAuditTrail: every mutating call that runs leaves a started event
// (empty code) before its effect and its outcome after it, both naming the
// caller (never a secret), the method, the request id and the workspace; a
// refused call leaves its outcome only; reads leave none; only admins read
// the trail.
func TestAuditTrail(t *testing.T) {
	e := startEnv(t, redisBackend)
	ctx := context.Background()
	admin := grpcInvoker{conn: e.conn, token: testToken}
	_, key := e.sim.CreateWorkspace("audited")
	must := func(method string, req, resp proto.Message) {
		t.Helper()
		if err := admin.Invoke(ctx, method, req, resp); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}
	must("agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "audited", Workspace: &agencyv1.Workspace{DisplayName: "A", ApiKey: &key}}, &agencyv1.Workspace{})
	must("agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/audited"}, &agencyv1.Workspace{})
	must("agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: "workspaces/audited", Tag: &agencyv1.Tag{Label: "x"}}, &agencyv1.Tag{})
	var secretResp agencyv1.CreateApiKeyResponse
	must("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: "workspaces/audited", DisplayName: "k", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR}, &secretResp)
	// A failed mutation is recorded too.
	_ = admin.Invoke(ctx, "agency.v1.MemberService/InviteMember", &agencyv1.InviteMemberRequest{Parent: "workspaces/audited", Email: "bad", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{})

	var events agencyv1.ListEventsResponse
	must("agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{Workspace: "workspaces/audited"}, &events)
	var methods []string
	for _, ev := range events.GetEvents() {
		methods = append(methods, ev.GetMethod()+":"+ev.GetCode())
		if ev.GetPrincipal() != "tokens/bootstrap" || ev.GetRole() != agencyv1.Role_ROLE_ADMIN || ev.GetRequestId() == "" || ev.GetTime() == nil {
			t.Fatalf("event %v", ev)
		}
	}
	want := "/agency.v1.MemberService/InviteMember:InvalidArgument," +
		"/agency.v1.ApiKeyService/CreateApiKey:OK,/agency.v1.ApiKeyService/CreateApiKey:," +
		"/agency.v1.TagService/CreateTag:OK,/agency.v1.TagService/CreateTag:," +
		"/agency.v1.WorkspaceService/CreateWorkspace:OK,/agency.v1.WorkspaceService/CreateWorkspace:"
	if strings.Join(methods, ",") != want {
		t.Fatalf("events %v\nwant %s", methods, want)
	}
	assertNoSecrets(t, "audit events", mustJSONString(&events), []string{key, secretResp.GetSecret(), testToken})
	// A scoped admin sees no event about workspaces outside its scope.
	var scoped agencyv1.CreateTokenResponse
	must("agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, WorkspaceScope: "client=nobody"}}, &scoped)
	var hidden agencyv1.ListEventsResponse
	if err := (grpcInvoker{conn: e.conn, token: scoped.GetSecret()}).Invoke(ctx, "agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{}, &hidden); err != nil {
		t.Fatal(err)
	}
	if len(hidden.GetEvents()) != 0 {
		t.Fatalf("scoped admin sees %d events outside its scope", len(hidden.GetEvents()))
	}
	// Paging and filters.
	var page agencyv1.ListEventsResponse
	must("agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{PageSize: 1, Method: "/agency.v1.TagService/CreateTag"}, &page)
	if len(page.GetEvents()) != 1 || page.GetEvents()[0].GetMethod() != "/agency.v1.TagService/CreateTag" {
		t.Fatalf("filtered page: %v", page.GetEvents())
	}
}

func mustJSONString(m proto.Message) string { return string(mustJSON(m)) }
