// Package auth authenticates control-plane callers: bearer tokens (stored
// only as SHA-256 hashes, looked up by hash) or, with mTLS, a client
// certificate whose identity the configuration maps to a role and scope.
// Repeated failures from one source are throttled.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/store"
)

// TokenPrefix marks control-plane tokens, so secret scanners can find leaked ones.
const TokenPrefix = "agp_"

// Roles, from the access matrix.
const (
	RoleAdmin   = "admin"
	RoleManager = "manager"
	RoleSDR     = "sdr"
	RoleViewer  = "viewer"
)

// RoleRank orders roles by power (0 = unknown).
func RoleRank(r string) int {
	switch r {
	case RoleAdmin:
		return 4
	case RoleManager:
		return 3
	case RoleSDR:
		return 2
	case RoleViewer:
		return 1
	}
	return 0
}

// Principal is an authenticated caller.
type Principal struct {
	// ID names the caller in logs and audit events ("tokens/{id}" or
	// "cert:{identity}"); never a secret.
	ID string
	// Role is the caller's control-plane role.
	Role string
	// Scope selects the workspaces the caller may see; empty = all.
	Scope labels.Selector
	// ExpireTime is when the caller's credential expires (zero = never).
	ExpireTime time.Time
}

// System returns the principal of the control plane's own background work:
// admin, unscoped.
func System() *Principal { return &Principal{ID: "system", Role: RoleAdmin} }

// GenerateToken returns a new random token.
func GenerateToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken is the stored form of a token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CertIdentity is the role and scope configured for a client certificate.
type CertIdentity struct {
	Role  string `json:"role"`
	Scope string `json:"scope"`
}

// Options configures an Authenticator.
type Options struct {
	Tokens store.Tokens
	// Certs maps a client certificate identity (its CN, or a DNS/URI SAN) to
	// a role and scope; nil without mTLS.
	Certs map[string]CertIdentity
	// Failures throttles failed attempts per source.
	Failures *FailureLimiter
	Now      func() time.Time
}

// Authenticator checks bearer tokens and client certificates.
type Authenticator struct {
	opts Options
}

// NewAuthenticator validates the certificate map and returns an Authenticator.
func NewAuthenticator(opts Options) (*Authenticator, error) {
	if opts.Tokens == nil {
		return nil, errors.New("auth: a token store is required")
	}
	for id, c := range opts.Certs {
		if RoleRank(c.Role) == 0 {
			return nil, fmt.Errorf("auth: certificate identity %q: unknown role %q", id, c.Role)
		}
		if _, err := labels.Parse(c.Scope); err != nil {
			return nil, fmt.Errorf("auth: certificate identity %q: scope: %w", id, err)
		}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Failures == nil {
		opts.Failures = NewFailureLimiter(FailureLimits{})
	}
	return &Authenticator{opts: opts}, nil
}

// Caller is what the transport knows about who is calling.
type Caller struct {
	// Source is the client's address (IP), for throttling failures.
	Source string
	// CertIdentity is the verified client certificate's identity, if any.
	CertIdentity string
}

// Authenticate returns the principal of the call: the bearer token's when
// one is presented, else the client certificate's. Secrets never appear in
// the returned error.
func (a *Authenticator) Authenticate(ctx context.Context, c Caller) (*Principal, error) {
	if !a.opts.Failures.Allow(c.Source) {
		return nil, apierr.New(codes.ResourceExhausted, agencyv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
			"too many failed authentication attempts from this source; retry later")
	}
	p, err := a.authenticate(ctx, c)
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) && ae.Reason == agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED {
			a.opts.Failures.Fail(c.Source)
		}
		return nil, err
	}
	return p, nil
}

func (a *Authenticator) authenticate(ctx context.Context, c Caller) (*Principal, error) {
	token, present, err := bearer(ctx)
	if err != nil {
		return nil, err
	}
	if !present {
		if c.CertIdentity != "" {
			return a.certPrincipal(c.CertIdentity)
		}
		return nil, unauthenticated(`missing "authorization: Bearer <token>"`)
	}
	t, err := a.opts.Tokens.GetByHash(ctx, HashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return nil, unauthenticated("invalid token")
	}
	if err != nil {
		return nil, err
	}
	if !t.Active(a.opts.Now()) {
		return nil, unauthenticated("token revoked or expired")
	}
	scope, err := labels.Parse(t.Scope)
	if err != nil {
		return nil, fmt.Errorf("token %s has an unparsable scope: %w", t.ID, err)
	}
	return &Principal{ID: "tokens/" + t.ID, Role: t.Role, Scope: scope, ExpireTime: t.ExpireTime}, nil
}

func (a *Authenticator) certPrincipal(identity string) (*Principal, error) {
	ci, ok := a.opts.Certs[identity]
	if !ok {
		return nil, apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			"the client certificate is valid but not mapped to a role")
	}
	scope, _ := labels.Parse(ci.Scope) // validated in NewAuthenticator
	return &Principal{ID: "cert:" + identity, Role: ci.Role, Scope: scope}, nil
}

func bearer(ctx context.Context) (token string, present bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", true, unauthenticated(`authorization must be "Bearer <token>"`)
	}
	return strings.TrimSpace(token), true, nil
}

func unauthenticated(msg string) *apierr.Error {
	return apierr.New(codes.Unauthenticated, agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, msg)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the authenticated caller, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok
}
