// Package oidc authenticates control-plane callers that present an OpenID
// Connect ID token (a JWT) from one of the configured issuers, and maps
// its claims to a role and a workspace scope (first matching rule wins,
// deny when none matches).
//
// Discovery and the claim checks (iss, aud, the issuer's algorithms) are
// go-oidc's; the signature is checked against the issuer's JWKS, fetched
// at most once per refresh interval (see keySet); exp and nbf are checked
// here with at most 60 s of clock skew. An issuer that cannot be reached
// fails closed for its own tokens only.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
)

// MaxSkew is the most clock skew allowed on exp and nbf.
const MaxSkew = 60 * time.Second

// Options configures a Verifier.
type Options struct {
	// Issuers are the trusted issuer URLs, exactly as their tokens'
	// iss claim (https, or http on a loopback address).
	Issuers []string
	// Audience must be in every token's aud claim.
	Audience string
	// Mapping turns claims into a role and scope.
	Mapping Mapping
	// HTTPClient fetches discovery documents and key sets (default: a
	// client with a 10 s timeout).
	HTTPClient *http.Client
	Now        func() time.Time
	// Skew is the clock skew allowed on exp and nbf (0 = MaxSkew; at
	// most MaxSkew).
	Skew time.Duration
	// RefreshInterval is the least time between two fetches of an
	// issuer's key set, and between two discovery attempts of an issuer
	// that could not be reached (0 = 1 minute).
	RefreshInterval time.Duration
	// KeysMaxAge is how long a key set is used before it is fetched again
	// (0 = 1 hour).
	KeysMaxAge time.Duration
}

// Verifier verifies ID tokens; it implements auth.JWTVerifier.
type Verifier struct {
	opts    Options
	issuers map[string]*issuer
}

var _ auth.JWTVerifier = (*Verifier)(nil)

// New checks the options. Issuers are discovered on their first token, so
// an issuer that is down at start does not stop the server.
func New(opts Options) (*Verifier, error) {
	if len(opts.Issuers) == 0 {
		return nil, errors.New("oidc: no issuer")
	}
	if opts.Audience == "" {
		return nil, errors.New("oidc: an audience is required")
	}
	if len(opts.Mapping) == 0 {
		return nil, errors.New("oidc: a mapping is required")
	}
	if opts.Skew == 0 {
		opts.Skew = MaxSkew
	}
	if opts.Skew < 0 || opts.Skew > MaxSkew {
		return nil, fmt.Errorf("oidc: clock skew must be in (0, %s]", MaxSkew)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = time.Minute
	}
	if opts.KeysMaxAge <= 0 {
		opts.KeysMaxAge = time.Hour
	}
	v := &Verifier{opts: opts, issuers: map[string]*issuer{}}
	for _, iss := range opts.Issuers {
		if err := ValidateIssuer(iss); err != nil {
			return nil, err
		}
		v.issuers[iss] = &issuer{url: iss, v: v, disc: make(chan struct{}, 1)}
	}
	return v, nil
}

// ValidateIssuer checks an issuer URL: https, or http on a loopback host
// (tests and local providers).
func ValidateIssuer(iss string) error {
	u, err := url.Parse(iss)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("oidc: issuer %q is not an http(s) URL without query", iss)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
	default:
		return fmt.Errorf("oidc: issuer %q must be https (http only on a loopback address)", iss)
	}
	return nil
}

// issuer is one trusted provider, discovered on first use.
type issuer struct {
	url  string
	v    *Verifier
	disc chan struct{} // one discovery at a time

	verifier  *gooidc.IDTokenVerifier // nil until discovered
	keys      *keySet
	attempted time.Time
	err       error
}

// discover returns the issuer's verifier and key set, running discovery
// when it has not succeeded yet and the last attempt is at least a refresh
// interval old.
func (is *issuer) discover(ctx context.Context) (*gooidc.IDTokenVerifier, *keySet, error) {
	select {
	case is.disc <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	defer func() { <-is.disc }()
	if is.verifier != nil {
		return is.verifier, is.keys, nil
	}
	now := is.v.opts.Now()
	if !is.attempted.IsZero() && now.Sub(is.attempted) < is.v.opts.RefreshInterval {
		return nil, nil, is.err
	}
	is.attempted = now
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	provider, err := gooidc.NewProvider(gooidc.ClientContext(dctx, is.v.opts.HTTPClient), is.url)
	if err != nil {
		is.err = fmt.Errorf("discovery of %s: %w", is.url, err)
		return nil, nil, is.err
	}
	var meta struct {
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil || meta.JWKSURI == "" {
		is.err = fmt.Errorf("discovery of %s: no jwks_uri", is.url)
		return nil, nil, is.err
	}
	// The issuer's algorithms, asymmetric ones only: "none" and HS*
	// advertised by a provider are never accepted.
	var algs []string
	for _, a := range meta.Algs {
		if slices.Contains(signingAlgs, jose.SignatureAlgorithm(a)) {
			algs = append(algs, a)
		}
	}
	if len(algs) == 0 {
		algs = []string{gooidc.RS256}
	}
	is.keys = newKeySet(meta.JWKSURI, is.v.opts.HTTPClient, is.v.opts.Now, is.v.opts.RefreshInterval, is.v.opts.KeysMaxAge)
	is.verifier = gooidc.NewVerifier(is.url, is.keys, &gooidc.Config{
		ClientID:             is.v.opts.Audience,
		SupportedSigningAlgs: algs,
		// exp and nbf are checked in VerifyJWT with a bounded skew: go-oidc
		// allows none on exp and five minutes on nbf.
		SkipExpiryCheck: true,
		Now:             is.v.opts.Now,
	})
	is.err = nil
	return is.verifier, is.keys, nil
}

// VerifyJWT authenticates an ID token. Errors are UNAUTHENTICATED for a
// token that is not valid, UNAVAILABLE when its issuer cannot be reached
// (its tokens fail closed), PERMISSION_DENIED when no mapping rule
// matches. Neither errors nor the credential name hold the token.
func (v *Verifier) VerifyJWT(ctx context.Context, token string) (*auth.Principal, string, error) {
	credential := "jwt:" + auth.HashToken(token)[:32]
	jws, err := jose.ParseSigned(token, signingAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		// alg "none", HS256 and friends end here.
		return nil, credential, unauthenticated("invalid token: not a JWT signed with an asymmetric algorithm", err)
	}
	var unverified struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, credential, unauthenticated("invalid token: unreadable claims", err)
	}
	// Failures count against the issuer and subject the token claims, so
	// fresh tokens of one (forged) identity are throttled together.
	credential = "jwt:" + auth.HashToken(unverified.Iss + "#" + unverified.Sub)[:32]
	is, ok := v.issuers[unverified.Iss]
	if !ok {
		return nil, credential, unauthenticated("invalid token: its issuer is not trusted", nil)
	}
	verifier, keys, err := is.discover(ctx)
	if err != nil {
		return nil, credential, unavailable(err)
	}
	if err := keys.ensure(ctx, jws.Signatures[0].Header.KeyID); err != nil {
		if errors.Is(err, errUnknownKey) {
			return nil, credential, unauthenticated("invalid token: unknown signing key", err)
		}
		return nil, credential, unavailable(fmt.Errorf("key set of %s: %w", is.url, err))
	}
	idt, err := verifier.Verify(ctx, token)
	if err != nil {
		return nil, credential, unauthenticated("invalid token", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, credential, unauthenticated("invalid token: unreadable claims", err)
	}
	now := v.opts.Now()
	if idt.Expiry.IsZero() || !now.Before(idt.Expiry.Add(v.opts.Skew)) {
		return nil, credential, unauthenticated("invalid token: expired", nil)
	}
	if nbf, ok := claims["nbf"].(float64); ok && now.Add(v.opts.Skew).Before(time.Unix(int64(nbf), 0)) {
		return nil, credential, unauthenticated("invalid token: not valid yet", nil)
	}
	if idt.Subject == "" {
		return nil, credential, unauthenticated("invalid token: no subject", nil)
	}
	rule, ok := v.opts.Mapping.Resolve(claims)
	if !ok {
		return nil, "", apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			"the identity is valid but no mapping rule gives it a role")
	}
	email, _ := claims["email"].(string)
	return &auth.Principal{
		ID:         PrincipalID(idt.Issuer, idt.Subject),
		Role:       rule.Role,
		Scope:      rule.scope,
		ExpireTime: idt.Expiry,
		Email:      email,
	}, "", nil
}

// PrincipalID names an OIDC caller: "oidc:<issuer>#<sub>".
func PrincipalID(issuer, subject string) string {
	return "oidc:" + strings.TrimSuffix(issuer, "#") + "#" + subject
}

func unauthenticated(msg string, cause error) *apierr.Error {
	return apierr.Wrap(codes.Unauthenticated, agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, msg, cause)
}

func unavailable(cause error) *apierr.Error {
	return apierr.Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE,
		"the token's identity provider cannot be reached; retry later", cause)
}
