// Package auth authenticates control-plane callers. Tokens are stored only
// as SHA-256 hashes and compared in constant time.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
)

// TokenPrefix marks control-plane tokens, so secret scanners can find leaked ones.
const TokenPrefix = "agp_"

// Principal is an authenticated caller.
type Principal struct {
	// ID names the caller in logs and audit events; never the token.
	ID string
	// Role is the caller's control-plane role.
	Role string
}

// RoleAdmin may do everything.
const RoleAdmin = "admin"

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

// Authenticator checks bearer tokens.
type Authenticator struct {
	bootstrapHash [sha256.Size]byte
}

// NewAuthenticator accepts the bootstrap admin token whose hash (HashToken) is given.
func NewAuthenticator(bootstrapHash string) (*Authenticator, error) {
	raw, err := hex.DecodeString(bootstrapHash)
	if err != nil || len(raw) != sha256.Size {
		return nil, apierr.New(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "bootstrap token hash is malformed")
	}
	a := &Authenticator{}
	copy(a.bootstrapHash[:], raw)
	return a, nil
}

// Authenticate reads "authorization: Bearer <token>" from the incoming
// metadata. The token never appears in the returned error.
func (a *Authenticator) Authenticate(ctx context.Context) (*Principal, error) {
	token, err := bearer(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(sum[:], a.bootstrapHash[:]) == 1 {
		return &Principal{ID: "bootstrap", Role: RoleAdmin}, nil
	}
	return nil, unauthenticated("invalid token")
}

func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", unauthenticated(`missing "authorization: Bearer <token>"`)
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return "", unauthenticated(`authorization must be "Bearer <token>"`)
	}
	return strings.TrimSpace(token), nil
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
