package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/identity/oidc"
	"github.com/agencyplane/agencyplane/internal/identity/oidc/oidctest"
)

const audience = "agencyplane-test"

const mappingYAML = `
- match: {groups: "agency-admins"}
  role: admin
- match: {groups: "sdr-west", hd: "agency.example"}
  role: manager
  scope: "team=sdr-west"
`

func newVerifier(t *testing.T, opts oidc.Options) *oidc.Verifier {
	t.Helper()
	m, err := oidc.ParseMapping([]byte(mappingYAML))
	if err != nil {
		t.Fatal(err)
	}
	opts.Audience, opts.Mapping = audience, m
	v, err := oidc.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func admin(extra map[string]any) map[string]any {
	c := map[string]any{"groups": []string{"everyone", "agency-admins"}, "email": "ada@agency.example"}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func wantRefused(t *testing.T, v *oidc.Verifier, token string, code codes.Code) {
	t.Helper()
	p, cred, err := v.VerifyJWT(context.Background(), token)
	if err == nil {
		t.Fatalf("accepted as %+v, want %v", p, code)
	}
	if got := status.Code(err); got != code {
		t.Fatalf("code %v (%v), want %v", got, err, code)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("not an apierr: %T", err)
	}
	if strings.Contains(err.Error(), token) || strings.Contains(cred, token) || strings.Contains(status.Convert(err).Message(), token) {
		t.Fatal("the token appears in the error or credential")
	}
}

func TestVerifyTokens(t *testing.T) {
	op := oidctest.Start(t)
	v := newVerifier(t, oidc.Options{Issuers: []string{op.Issuer}})
	ctx := context.Background()

	t.Run("valid", func(t *testing.T) {
		p, _, err := v.VerifyJWT(ctx, op.Sign(t, op.Claims("user-1", audience, time.Hour, admin(nil))))
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != "oidc:"+op.Issuer+"#user-1" || p.Role != auth.RoleAdmin || p.Email != "ada@agency.example" || !p.Scope.Empty() {
			t.Fatalf("principal %+v", p)
		}
		if p.ExpireTime.IsZero() {
			t.Fatal("no expire time")
		}
	})
	t.Run("audience in a list", func(t *testing.T) {
		c := op.Claims("user-1", "", time.Hour, admin(nil))
		c["aud"] = []string{"other", audience}
		if _, _, err := v.VerifyJWT(ctx, op.Sign(t, c)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("mapping with scope", func(t *testing.T) {
		p, _, err := v.VerifyJWT(ctx, op.Sign(t, op.Claims("user-2", audience, time.Hour,
			map[string]any{"groups": []string{"sdr-west"}, "hd": "agency.example"})))
		if err != nil {
			t.Fatal(err)
		}
		if p.Role != auth.RoleManager || p.Scope.String() != "team=sdr-west" {
			t.Fatalf("principal %+v scope %q", p, p.Scope.String())
		}
	})
	t.Run("no rule matches", func(t *testing.T) {
		wantRefused(t, v, op.Sign(t, op.Claims("user-3", audience, time.Hour,
			map[string]any{"groups": []string{"sdr-west"}, "hd": "elsewhere.example"})), codes.PermissionDenied)
	})
	t.Run("expired", func(t *testing.T) {
		wantRefused(t, v, op.Sign(t, op.Claims("user-1", audience, -2*time.Minute, admin(nil))), codes.Unauthenticated)
	})
	t.Run("expired within the skew", func(t *testing.T) {
		if _, _, err := v.VerifyJWT(ctx, op.Sign(t, op.Claims("user-1", audience, -30*time.Second, admin(nil)))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("no exp", func(t *testing.T) {
		c := op.Claims("user-1", audience, time.Hour, admin(nil))
		delete(c, "exp")
		wantRefused(t, v, op.Sign(t, c), codes.Unauthenticated)
	})
	t.Run("not valid yet", func(t *testing.T) {
		wantRefused(t, v, op.Sign(t, op.Claims("user-1", audience, time.Hour, admin(map[string]any{"nbf": time.Now().Add(2 * time.Minute).Unix()}))), codes.Unauthenticated)
	})
	t.Run("nbf within the skew", func(t *testing.T) {
		if _, _, err := v.VerifyJWT(ctx, op.Sign(t, op.Claims("user-1", audience, time.Hour, admin(map[string]any{"nbf": time.Now().Add(30 * time.Second).Unix()})))); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		wantRefused(t, v, op.Sign(t, op.Claims("user-1", "someone-else", time.Hour, admin(nil))), codes.Unauthenticated)
	})
	t.Run("wrong issuer", func(t *testing.T) {
		c := op.Claims("user-1", audience, time.Hour, admin(nil))
		c["iss"] = "https://evil.example"
		wantRefused(t, v, op.Sign(t, c), codes.Unauthenticated)
	})
	t.Run("another trusted issuer's name on this provider's token", func(t *testing.T) {
		other := oidctest.Start(t)
		v2 := newVerifier(t, oidc.Options{Issuers: []string{op.Issuer, other.Issuer}})
		// Signed by op, claiming to come from other: other's keys refuse it.
		c := op.Claims("user-1", audience, time.Hour, admin(nil))
		c["iss"] = other.Issuer
		wantRefused(t, v2, op.Sign(t, c), codes.Unauthenticated)
	})
	t.Run("alg none", func(t *testing.T) {
		wantRefused(t, v, oidctest.Unsigned(t, "key-1", op.Claims("user-1", audience, time.Hour, admin(nil))), codes.Unauthenticated)
		wantRefused(t, v, oidctest.Unsigned(t, "", op.Claims("user-1", audience, time.Hour, admin(nil))), codes.Unauthenticated)
	})
	t.Run("HMAC with the public key", func(t *testing.T) {
		var jwk jose.JSONWebKey
		raw := op.PublicKeyJSON(t)
		if err := jwk.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKIXPublicKey(jwk.Key)
		if err != nil {
			t.Fatal(err)
		}
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		claims := op.Claims("user-1", audience, time.Hour, admin(nil))
		for _, secret := range [][]byte{pemKey, der, raw} {
			for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
				wantRefused(t, v, oidctest.SignWith(t, jose.SigningKey{Algorithm: alg, Key: secret}, jwk.KeyID, claims), codes.Unauthenticated)
			}
		}
	})
	t.Run("HMAC and none advertised by the provider", func(t *testing.T) {
		loose := oidctest.Start(t)
		loose.Advertise("none", "HS256", "RS256")
		lv := newVerifier(t, oidc.Options{Issuers: []string{loose.Issuer}})
		claims := loose.Claims("user-1", audience, time.Hour, admin(nil))
		if _, _, err := lv.VerifyJWT(ctx, loose.Sign(t, claims)); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, lv, oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: loose.PublicKeyJSON(t)}, "key-1", claims), codes.Unauthenticated)
		wantRefused(t, lv, oidctest.Unsigned(t, "key-1", claims), codes.Unauthenticated)
	})
	t.Run("garbage", func(t *testing.T) {
		wantRefused(t, v, "aaaa.bbbb.cccc", codes.Unauthenticated)
	})
}

func TestKeyRotationRefreshesAtMostOncePerInterval(t *testing.T) {
	op := oidctest.Start(t)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	v := newVerifier(t, oidc.Options{Issuers: []string{op.Issuer}, Now: clock, RefreshInterval: time.Minute})
	ctx := context.Background()
	claims := func() map[string]any {
		c := admin(nil)
		c["iss"], c["sub"], c["aud"], c["exp"] = op.Issuer, "user-1", audience, clock().Add(time.Hour).Unix()
		return c
	}
	if _, _, err := v.VerifyJWT(ctx, op.Sign(t, claims())); err != nil {
		t.Fatal(err)
	}
	if n := op.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches after the first token, want 1", n)
	}
	// Made-up kids: no fetch within the interval, whatever their number.
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		forged := oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: stranger}, fmt.Sprintf("made-up-%d", i), claims())
		wantRefused(t, v, forged, codes.Unauthenticated)
	}
	// A known kid with a bad signature does not fetch either.
	wantRefused(t, v, oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: stranger}, "key-1", claims()), codes.Unauthenticated)
	if n := op.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches after made-up kids, want 1", n)
	}
	// The provider rotates its key: the new kid is unknown. Within the
	// interval it is refused without a fetch; after it, one fetch and the
	// token is accepted.
	op.Rotate(t)
	rotated := op.Sign(t, claims())
	wantRefused(t, v, rotated, codes.Unauthenticated)
	if n := op.JWKSFetches(); n != 1 {
		t.Fatalf("%d JWKS fetches within the interval, want 1", n)
	}
	advance(61 * time.Second)
	rotated = op.Sign(t, claims())
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			if _, _, err := v.VerifyJWT(ctx, rotated); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := op.JWKSFetches(); n != 2 {
		t.Fatalf("%d JWKS fetches after the rotation, want 2", n)
	}
}

func TestUnreachableIssuerFailsClosedForItsTokensOnly(t *testing.T) {
	up, down := oidctest.Start(t), oidctest.Start(t)
	downToken := down.Sign(t, down.Claims("user-9", audience, time.Hour, admin(nil)))
	down.Stop()
	v := newVerifier(t, oidc.Options{Issuers: []string{down.Issuer, up.Issuer}})
	wantRefused(t, v, downToken, codes.Unavailable)
	if _, _, err := v.VerifyJWT(context.Background(), up.Sign(t, up.Claims("user-1", audience, time.Hour, admin(nil)))); err != nil {
		t.Fatal(err)
	}
	// Still refused (and not retried within the interval).
	wantRefused(t, v, downToken, codes.Unavailable)
}

func TestAuthenticatorRoutesJWTs(t *testing.T) {
	if !auth.LooksLikeJWT("eyJh.eyJi.c2ln") || !auth.LooksLikeJWT("eyJh.eyJi.") {
		t.Fatal("JWT shapes not recognised")
	}
	for _, tok := range []string{"agp_abcDEF012-_", "e2e-admin-token-0123456789", "a.b", "a.b.c.d", ".b.c", "a b.c.d", "a+b.c.d"} {
		if auth.LooksLikeJWT(tok) {
			t.Fatalf("%q taken for a JWT", tok)
		}
	}
}

func TestParseMapping(t *testing.T) {
	for _, bad := range []string{"", "[]", "- role: root\n", "- role: admin\n  scope: \"team=\u00e9\"\n", "- role: admin\n  matches: {a: b}\n", "- role: provisioner\n"} {
		if _, err := oidc.ParseMapping([]byte(bad)); err == nil {
			t.Errorf("mapping %q accepted", bad)
		}
	}
	m, err := oidc.ParseMapping([]byte(mappingYAML + "- match: {email_verified: \"true\"}\n  role: viewer\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		claims map[string]any
		role   string
	}{
		{map[string]any{"groups": []any{"x", "agency-admins"}}, "admin"},
		{map[string]any{"groups": "agency-admins"}, "admin"},
		{map[string]any{"groups": []any{"sdr-west"}, "hd": "agency.example"}, "manager"},
		{map[string]any{"groups": []any{"sdr-west"}, "hd": "agency.example", "email_verified": true}, "manager"},
		{map[string]any{"groups": []any{"sdr-west"}, "email_verified": true}, "viewer"},
		{map[string]any{"groups": []any{[]any{"agency-admins"}}}, ""},
		{map[string]any{}, ""},
	} {
		r, ok := m.Resolve(tc.claims)
		got := ""
		if ok {
			got = r.Role
		}
		if got != tc.role {
			t.Errorf("claims %v: role %q, want %q", tc.claims, got, tc.role)
		}
	}
}

// TestGoOIDCRemoteKeySetIsNotRateLimited records why the verifier uses its
// own key set: go-oidc's RemoteKeySet fetches the JWKS again for every
// token whose kid it does not know (it only coalesces concurrent fetches):
// five made-up kids a little apart cost (about) five fetches.
func TestGoOIDCRemoteKeySetIsNotRateLimited(t *testing.T) {
	op := oidctest.Start(t)
	ks := gooidc.NewRemoteKeySet(context.Background(), op.Issuer+"/keys")
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		tok := oidctest.SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: stranger}, fmt.Sprintf("made-up-%d", i), op.Claims("x", audience, time.Hour, nil))
		if _, err := ks.VerifySignature(context.Background(), tok); err == nil {
			t.Fatal("a stranger's signature verified")
		}
		// Let its fetch goroutine finish (a caller arriving while it ends
		// shares its result).
		time.Sleep(20 * time.Millisecond)
	}
	if n := op.JWKSFetches(); n < 4 {
		t.Fatalf("go-oidc fetched the JWKS %d times for 5 unknown kids; if it now rate-limits, the own key set can go", n)
	}
}
