package tokens

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/store"
)

// clock is a settable now for tokens' expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestService(t *testing.T) (*Service, *servicetest.Env, *clock) {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{})
	s := New(e.Store.Tokens(), e.Pages)
	c := &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
	s.now = c.now
	return s, e, c
}

func caller(role, scope string, expire time.Time) context.Context {
	p := &auth.Principal{ID: "tokens/caller-" + role, Role: role, ExpireTime: expire}
	if scope != "" {
		p.Scope = labels.MustParse(scope)
	}
	return auth.WithPrincipal(context.Background(), p)
}

func storedTokens(t *testing.T, e *servicetest.Env) []*store.Token {
	t.Helper()
	all, err := e.Store.Tokens().List(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// TestCreateToken: the secret is returned once and only its hash stored;
// the scope is stored canonical; the person behind the creator is kept
// down a chain of tokens.
func TestCreateToken(t *testing.T) {
	s, e, c := newTestService(t)
	oidc := auth.WithPrincipal(context.Background(), &auth.Principal{ID: "oidc:https://idp#42", Role: auth.RoleAdmin, Email: "Boss@Agency.IO"})
	expire := c.t.Add(time.Hour)
	resp, err := s.CreateToken(oidc, &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{
		Role: agencyv1.Role_ROLE_MANAGER, WorkspaceScope: "team = west, client in (b, a)", Description: "d", ExpireTime: timestamppb.New(expire)}})
	if err != nil {
		t.Fatal(err)
	}
	tok := resp.GetToken()
	id := strings.TrimPrefix(tok.GetName(), "tokens/")
	rec, err := e.Store.Tokens().Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	wantScope := labels.MustParse("client in (a,b),team=west").String()
	if !strings.HasPrefix(resp.GetSecret(), auth.TokenPrefix) || rec.Hash != auth.HashToken(resp.GetSecret()) || strings.Contains(rec.Hash, resp.GetSecret()) ||
		rec.Role != auth.RoleManager || rec.Scope != wantScope || tok.GetWorkspaceScope() != wantScope ||
		rec.Creator != "oidc:https://idp#42" || rec.CreatorEmail != "boss@agency.io" || !rec.ExpireTime.Equal(expire) ||
		tok.GetRole() != agencyv1.Role_ROLE_MANAGER || !tok.GetCreateTime().AsTime().Equal(c.t) {
		t.Fatalf("token %v stored as %+v", tok, rec)
	}

	// A token made by that token answers to the same person.
	child := auth.WithPrincipal(context.Background(), &auth.Principal{ID: tok.GetName(), Role: auth.RoleManager,
		Scope: labels.MustParse(wantScope), ExpireTime: expire})
	resp2, err := s.CreateToken(child, &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{
		Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: wantScope + ",tier=gold", ExpireTime: timestamppb.New(expire)}})
	if err != nil {
		t.Fatal(err)
	}
	rec2, err := e.Store.Tokens().Get(context.Background(), strings.TrimPrefix(resp2.GetToken().GetName(), "tokens/"))
	if err != nil || rec2.CreatorEmail != "boss@agency.io" || rec2.Creator != tok.GetName() {
		t.Fatalf("child token %+v %v", rec2, err)
	}
}

// TestCreateTokenRefused: a token never outgrows its creator (role, scope,
// life), bad input names its field, and nothing is stored.
func TestCreateTokenRefused(t *testing.T) {
	s, e, c := newTestService(t)
	soon := c.t.Add(time.Hour)
	cases := []struct {
		name  string
		ctx   context.Context
		tok   *agencyv1.Token
		code  codes.Code
		field string
	}{
		{"bad scope", caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "client in (a"}, codes.InvalidArgument, "token.workspace_scope"},
		{"expired", caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(c.t)}, codes.InvalidArgument, "token.expire_time"},
		{"higher role", caller(auth.RoleManager, "", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN}, codes.PermissionDenied, ""},
		{"wider scope", caller(auth.RoleAdmin, "client=a", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=x"}, codes.PermissionDenied, ""},
		{"unscoped from scoped", caller(auth.RoleAdmin, "client=a", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER}, codes.PermissionDenied, ""},
		{"provisioner by a scoped admin", caller(auth.RoleAdmin, "client=a", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER}, codes.PermissionDenied, ""},
		{"scoped provisioner", caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, WorkspaceScope: "client=a"}, codes.PermissionDenied, ""},
		{"provisioner by a provisioner", caller(auth.RoleProvisioner, "", time.Time{}), &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER}, codes.PermissionDenied, ""},
		{"no expiry from an expiring token", caller(auth.RoleAdmin, "", soon), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER}, codes.PermissionDenied, ""},
		{"outlives its creator", caller(auth.RoleAdmin, "", soon), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, ExpireTime: timestamppb.New(soon.Add(time.Second))}, codes.PermissionDenied, ""},
		{"no principal", context.Background(), &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER}, codes.Internal, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.CreateToken(tc.ctx, &agencyv1.CreateTokenRequest{Token: tc.tok})
			st := servicetest.WantErr(t, err, tc.code, tc.field, "")
			// A provisioner refusal says who may create one, whatever else is wrong.
			if tc.tok.GetRole() == agencyv1.Role_ROLE_PROVISIONER && !strings.Contains(st.Message(), "unscoped admin") {
				t.Fatalf("provisioner refusal %q", st.Message())
			}
			if n := len(storedTokens(t, e)); n != 0 {
				t.Fatalf("a refused token was stored (%d)", n)
			}
		})
	}
	// The limits are inclusive: same role, same scope, same expiry pass.
	for _, tok := range []*agencyv1.Token{
		{Role: agencyv1.Role_ROLE_MANAGER, WorkspaceScope: "client=a", ExpireTime: timestamppb.New(soon)},
		{Role: agencyv1.Role_ROLE_SDR, WorkspaceScope: "client=a,team=x", ExpireTime: timestamppb.New(soon.Add(-time.Minute))},
	} {
		if _, err := s.CreateToken(caller(auth.RoleManager, "client=a", soon), &agencyv1.CreateTokenRequest{Token: tok}); err != nil {
			t.Fatalf("%v: %v", tok, err)
		}
	}
	if _, err := s.CreateToken(caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER}}); err != nil {
		t.Fatalf("provisioner by an unscoped admin: %v", err)
	}
}

// mint stores a token through the service as an unscoped admin.
func mint(t *testing.T, s *Service, scope string, expire time.Time) string {
	t.Helper()
	tok := &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: scope}
	if !expire.IsZero() {
		tok.ExpireTime = timestamppb.New(expire)
	}
	resp, err := s.CreateToken(caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.CreateTokenRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetToken().GetName()
}

// listAll pages through ListTokens with page size n.
func listAll(t *testing.T, s *Service, ctx context.Context, n int32, inactive bool) []string {
	t.Helper()
	return servicetest.Walk(t, 20, func(tok string) ([]string, string, error) {
		resp, err := s.ListTokens(ctx, &agencyv1.ListTokensRequest{PageSize: n, ShowInactive: inactive, PageToken: tok})
		if len(resp.GetTokens()) > int(n) {
			t.Fatalf("page of %d, asked %d", len(resp.GetTokens()), n)
		}
		var names []string
		for _, tok := range resp.GetTokens() {
			names = append(names, tok.GetName())
		}
		return names, resp.GetNextPageToken(), err
	})
}

// TestListTokens: pages hold only what the caller may see and, unless
// asked, only active tokens, each once, in id order, however the hidden
// ones fall across store batches.
func TestListTokens(t *testing.T) {
	s, _, c := newTestService(t)
	var all, scopedActive, active []string
	for i, scope := range []string{"", "client=a", "client=a,team=x", "client=b", "client=a", "", "client=a", "client=a,tier=1"} {
		expire := time.Time{}
		if i == 4 {
			expire = c.t.Add(time.Minute) // expires below
		}
		name := mint(t, s, scope, expire)
		all = append(all, name)
		if i != 4 && i != 6 {
			active = append(active, name)
			if strings.Contains(scope, "client=a") {
				scopedActive = append(scopedActive, name)
			}
		}
	}
	if _, err := s.RevokeToken(caller(auth.RoleAdmin, "", time.Time{}), &agencyv1.RevokeTokenRequest{Name: all[6]}); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	slices.Sort(all)
	slices.Sort(active)
	slices.Sort(scopedActive)

	admin, scoped := caller(auth.RoleAdmin, "", time.Time{}), caller(auth.RoleViewer, "client=a", time.Time{})
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		inactive bool
		want     []string
	}{
		{"admin", admin, false, active},
		{"admin, inactive too", admin, true, all},
		{"scoped", scoped, false, scopedActive},
	} {
		for _, n := range []int32{1, 2, 3, 100} {
			if got := listAll(t, s, tc.ctx, n, tc.inactive); !slices.Equal(got, tc.want) {
				t.Fatalf("%s, pages of %d: %v, want %v", tc.name, n, got, tc.want)
			}
		}
	}

	first, err := s.ListTokens(admin, &agencyv1.ListTokensRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("%v %v", first, err)
	}
	for _, req := range []*agencyv1.ListTokensRequest{
		{PageToken: first.GetNextPageToken(), ShowInactive: true}, // issued for other filters
		{PageToken: "garbage"},
	} {
		_, err := s.ListTokens(admin, req)
		servicetest.WantErr(t, err, codes.InvalidArgument, "page_token", "")
	}
}

// TestGetAndRevokeToken: a scoped caller cannot see or revoke a token
// wider than itself (NOT_FOUND, as for a missing one); revoking twice
// keeps the first revoke time.
func TestGetAndRevokeToken(t *testing.T) {
	s, e, c := newTestService(t)
	wide := mint(t, s, "", time.Time{})
	narrow := mint(t, s, "client=a,team=x", time.Time{})
	scoped := caller(auth.RoleAdmin, "client=a", time.Time{})

	for _, name := range []string{wide, "tokens/missing"} {
		_, err := s.GetToken(scoped, &agencyv1.GetTokenRequest{Name: name})
		st := servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
		if !strings.Contains(st.Message(), name) {
			t.Fatalf("NotFound does not name %s: %v", name, st)
		}
		_, err = s.RevokeToken(scoped, &agencyv1.RevokeTokenRequest{Name: name})
		servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	}
	if rec, err := e.Store.Tokens().Get(context.Background(), strings.TrimPrefix(wide, "tokens/")); err != nil || !rec.RevokeTime.IsZero() {
		t.Fatalf("an out-of-scope revoke took effect: %+v %v", rec, err)
	}
	if got, err := s.GetToken(scoped, &agencyv1.GetTokenRequest{Name: narrow}); err != nil || got.GetName() != narrow || got.GetRevokeTime() != nil {
		t.Fatalf("get in scope: %v %v", got, err)
	}

	revoked := c.t
	got, err := s.RevokeToken(scoped, &agencyv1.RevokeTokenRequest{Name: narrow})
	if err != nil || !got.GetRevokeTime().AsTime().Equal(revoked) {
		t.Fatalf("revoke: %v %v", got, err)
	}
	c.t = c.t.Add(time.Hour)
	got, err = s.RevokeToken(scoped, &agencyv1.RevokeTokenRequest{Name: narrow})
	if err != nil || !got.GetRevokeTime().AsTime().Equal(revoked) {
		t.Fatalf("second revoke moved the revoke time: %v %v", got, err)
	}
}
