package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
)

func ctxWith(v ...string) context.Context {
	md := metadata.MD{}
	for _, s := range v {
		md.Append("authorization", s)
	}
	return metadata.NewIncomingContext(context.Background(), md)
}

func newAuth(t *testing.T, now *time.Time, burst int) (*Authenticator, store.Tokens) {
	t.Helper()
	ts := memory.New().Tokens()
	a, err := NewAuthenticator(Options{Tokens: ts, Now: func() time.Time { return *now },
		Certs:    map[string]CertIdentity{"svc.agency": {Role: RoleManager, Scope: "team=west"}},
		Failures: NewMemoryFailures(FailureLimits{Burst: burst, Every: time.Hour}, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return a, ts
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	a, ts := newAuth(t, &now, 100)
	tok, err := GenerateToken()
	if err != nil || !strings.HasPrefix(tok, TokenPrefix) || len(tok) < 40 {
		t.Fatalf("token %q %v", tok, err)
	}
	ctx := context.Background()
	if err := ts.Create(ctx, &store.Token{ID: "t1", Hash: HashToken(tok), Role: RoleSDR, Scope: "team=west", ExpireTime: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(ctxWith("Bearer "+tok), Caller{Source: "10.0.0.1"})
	if err != nil || p.Role != RoleSDR || p.ID != "tokens/t1" || !p.Scope.Matches(map[string]string{"team": "west"}) || p.Scope.Matches(map[string]string{"team": "east"}) {
		t.Fatalf("valid token: %+v %v", p, err)
	}
	if _, err := a.Authenticate(ctxWith("bearer "+tok), Caller{}); err != nil {
		t.Fatalf("scheme is case-insensitive: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := a.Authenticate(ctxWith("Bearer "+tok), Caller{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("expired token: %v", err)
	}
	now = now.Add(-2 * time.Hour)
	if _, err := ts.Update(ctx, "t1", func(x *store.Token) error { x.RevokeTime = now; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctxWith("Bearer "+tok), Caller{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("revoked token: %v", err)
	}
	for _, bad := range [][]string{nil, {""}, {"Basic " + tok}, {"Bearer "}, {tok}, {"Bearer " + tok + "x"}} {
		_, err := a.Authenticate(ctxWith(bad...), Caller{})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("%q: %v, want Unauthenticated", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), tok) {
			t.Errorf("error echoes the token: %v", err)
		}
	}
}

func TestCertificates(t *testing.T) {
	now := time.Now()
	a, _ := newAuth(t, &now, 100)
	p, err := a.Authenticate(ctxWith(), Caller{CertIdentity: "svc.agency"})
	if err != nil || p.Role != RoleManager || p.ID != "cert:svc.agency" || !p.Scope.Matches(map[string]string{"team": "west"}) {
		t.Fatalf("mapped cert: %+v %v", p, err)
	}
	if _, err := a.Authenticate(ctxWith(), Caller{CertIdentity: "unknown"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("unmapped cert: %v", err)
	}
	if _, err := NewAuthenticator(Options{Tokens: memory.New().Tokens(), Certs: map[string]CertIdentity{"x": {Role: "root"}}}); err == nil {
		t.Fatal("unknown role accepted")
	}
}

type fakeJWT struct{ email string }

func (f fakeJWT) VerifyJWT(context.Context, string) (*Principal, string, error) {
	return &Principal{ID: "oidc:https://idp#" + f.email, Role: RoleAdmin, Email: f.email}, "", nil
}

// TestDeactivatedOIDCCaller: a verified OIDC caller whose email the
// identity provider deactivated is refused; a failing check fails closed.
func TestDeactivatedOIDCCaller(t *testing.T) {
	now := time.Now()
	off := map[string]bool{"gone@agency.example": true}
	var checkErr error
	a, err := NewAuthenticator(Options{Tokens: memory.New().Tokens(), Now: func() time.Time { return now },
		JWT:         fakeJWT{email: "gone@agency.example"},
		Deactivated: func(_ context.Context, email string) (bool, error) { return off[email], checkErr }})
	if err != nil {
		t.Fatal(err)
	}
	jwt := "Bearer aGVhZA.Ym9keQ.c2ln"
	if _, err := a.Authenticate(ctxWith(jwt), Caller{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("deactivated: %v, want Unauthenticated", err)
	}
	off = map[string]bool{}
	if p, err := a.Authenticate(ctxWith(jwt), Caller{}); err != nil || p.Email != "gone@agency.example" {
		t.Fatalf("reactivated: %+v %v", p, err)
	}
	checkErr = errors.New("store down")
	if _, err := a.Authenticate(ctxWith(jwt), Caller{}); err == nil {
		t.Fatal("a failing check lets the caller in")
	}
}
