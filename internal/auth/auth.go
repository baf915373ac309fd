// Package auth authenticates control-plane callers: bearer tokens (stored
// only as SHA-256 hashes, looked up by hash) or, with mTLS, a client
// certificate whose identity the configuration maps to a role and scope.
// Repeated failures are throttled per client address and per presented
// credential, never a valid credential.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
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
	// RoleProvisioner may call SCIM (/scim/v2) and nothing else.
	RoleProvisioner = "provisioner"
)

// RoleRank orders roles by power (0 = unknown).
func RoleRank(r string) int {
	switch r {
	case RoleAdmin, RoleProvisioner: // a provisioner is minted by admins only
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
	// Email is an OIDC caller's email claim, recorded beside ID.
	Email string
}

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
	// Failures counts failed attempts per client address and per presented
	// credential (default: in memory, default limits).
	Failures FailureCounter
	// TrustedProxies are the proxies whose X-Forwarded-For is believed
	// when they are the caller's immediate peer.
	TrustedProxies []netip.Prefix
	// JWT verifies bearer tokens shaped like a JWT (OIDC); nil without
	// OIDC, when such tokens are looked up like any other.
	JWT JWTVerifier
	// Deactivated reports whether the identity provider deactivated the
	// person with that email (SCIM); such an OIDC caller is refused. Nil:
	// no check.
	Deactivated func(ctx context.Context, email string) (bool, error)
	Now         func() time.Time
}

// JWTVerifier authenticates a JWT bearer token. On failure it also names
// the presented credential for throttling (never the token itself).
type JWTVerifier interface {
	VerifyJWT(ctx context.Context, token string) (p *Principal, credential string, err error)
}

// LooksLikeJWT reports whether a bearer token has a JWS compact shape:
// three dot-separated base64url parts. Control-plane tokens never do.
func LooksLikeJWT(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		if strings.Trim(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
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
		opts.Failures = NewMemoryFailures(FailureLimits{}, 0)
	}
	return &Authenticator{opts: opts}, nil
}

// Caller is what the transport knows about who is calling.
type Caller struct {
	// Source is the immediate peer's address (IP); for REST, the address
	// that connected to the gateway.
	Source string
	// ForwardedFor holds the call's X-Forwarded-For values, as received;
	// believed only hop by hop from a trusted proxy (see ClientAddr).
	ForwardedFor []string
	// CertIdentity is the verified client certificate's identity, if any.
	CertIdentity string
}

// Authenticate returns the principal of the call: the bearer token's when
// one is presented, else the client certificate's. Secrets never appear in
// the returned error.
//
// A valid credential is never refused for earlier failures. A failed
// attempt counts against the client's address and the presented
// credential; once either is over its limit, failures answer
// RESOURCE_EXHAUSTED with a RetryInfo instead of UNAUTHENTICATED.
func (a *Authenticator) Authenticate(ctx context.Context, c Caller) (*Principal, error) {
	p, credential, err := a.authenticate(ctx, c)
	var ae *apierr.Error
	if err == nil || !errors.As(err, &ae) || ae.Reason != agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED {
		return p, err
	}
	keys := []string{"addr:" + addrKey(a.ClientAddr(c))}
	if credential != "" {
		keys = append(keys, "cred:"+credential)
	}
	wait, ferr := a.opts.Failures.Fail(ctx, a.opts.Now(), keys)
	if ferr != nil || wait <= 0 {
		// Counting failed (the store is down): the attempt is refused
		// anyway, so fail open on throttling only.
		return nil, err
	}
	e := apierr.Wrap(codes.ResourceExhausted, agencyv1.ErrorReason_ERROR_REASON_RATE_LIMITED,
		"too many failed authentication attempts; retry later", err)
	e.RetryAfter = wait
	return nil, e
}

// authenticate checks the call's credential. On failure it also names the
// presented credential for throttling ("" when none was presented or it
// cannot be told apart): the token's id when the token is known (revoked or
// expired), else a digest of the presented token; for a JWT, what its
// JWTVerifier names.
func (a *Authenticator) authenticate(ctx context.Context, c Caller) (*Principal, string, error) {
	token, present, err := bearer(ctx)
	if err != nil {
		return nil, "", err
	}
	if !present {
		if c.CertIdentity != "" {
			p, err := a.certPrincipal(c.CertIdentity)
			return p, "", err
		}
		return nil, "", unauthenticated(`missing "authorization: Bearer <token>"`)
	}
	if a.opts.JWT != nil && LooksLikeJWT(token) {
		p, credential, err := a.opts.JWT.VerifyJWT(ctx, token)
		if err != nil || p == nil || p.Email == "" || a.opts.Deactivated == nil {
			return p, credential, err
		}
		off, err := a.opts.Deactivated(ctx, p.Email)
		if err != nil {
			return nil, "", fmt.Errorf("checking whether %s is deactivated: %w", p.ID, err)
		}
		if off {
			return nil, credential, unauthenticated("identity deactivated by the identity provider")
		}
		return p, credential, nil
	}
	hash := HashToken(token)
	t, err := a.opts.Tokens.GetByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "presented:" + hash[:32], unauthenticated("invalid token")
	}
	if err != nil {
		return nil, "", err
	}
	if !t.Active(a.opts.Now()) {
		return nil, "token:" + t.ID, unauthenticated("token revoked or expired")
	}
	scope, err := labels.Parse(t.Scope)
	if err != nil {
		return nil, "", fmt.Errorf("token %s has an unparsable scope: %w", t.ID, err)
	}
	return &Principal{ID: "tokens/" + t.ID, Role: t.Role, Scope: scope, ExpireTime: t.ExpireTime}, "", nil
}

// ClientAddr is the address failures are counted against: the caller's
// Source, unless that is a trusted proxy; then X-Forwarded-For is walked
// from its right end (the hop the proxy added), past every trusted proxy,
// to the first address that is not one. Entries left of that were written
// by the client and are never believed. Without trusted proxies,
// X-Forwarded-For is ignored.
func (a *Authenticator) ClientAddr(c Caller) string {
	addr, err := parseAddr(c.Source)
	if err != nil {
		return c.Source
	}
	var hops []string
	for _, v := range c.ForwardedFor {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0 && a.trusted(addr); i-- {
		next, err := parseAddr(hops[i])
		if err != nil {
			break // a proxy we trust wrote nonsense: stop at that proxy
		}
		addr = next
	}
	return addr.String()
}

func (a *Authenticator) trusted(addr netip.Addr) bool {
	for _, p := range a.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// parseAddr reads an address as X-Forwarded-For writes it: "ip",
// "ip:port" or "[ipv6]:port".
func parseAddr(s string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	return a.Unmap(), err
}

// addrKey is the throttling key of an address: an IPv6 client is counted
// by its /64, which one subscriber usually holds whole.
func addrKey(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Is4() {
		return s
	}
	p, _ := a.Prefix(64)
	return p.String()
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
