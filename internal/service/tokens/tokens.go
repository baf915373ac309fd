// Package tokens implements agency.v1.TokenService: control-plane tokens
// with a role and a workspace scope, shown once, stored as hashes.
package tokens

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Service implements agencyv1.TokenServiceServer.
type Service struct {
	agencyv1.UnimplementedTokenServiceServer
	store store.Tokens
	pages *pagetoken.Codec
	now   func() time.Time
}

// New returns the service; pages signs its page tokens.
func New(s store.Tokens, pages *pagetoken.Codec) *Service {
	return &Service{store: s, pages: pages, now: time.Now}
}

// NewID returns a token id that sorts by creation time.
func NewID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%012x-%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

// CreateToken implements agencyv1.TokenServiceServer.
func (s *Service) CreateToken(ctx context.Context, req *agencyv1.CreateTokenRequest) (*agencyv1.CreateTokenResponse, error) {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errors.New("tokens: no principal")
	}
	in := req.GetToken()
	now := s.now().UTC()
	scope, err := labels.Parse(in.GetWorkspaceScope())
	if err != nil {
		return nil, apierr.Field("token.workspace_scope", "%s", err.Error())
	}
	role := roleString(in.GetRole())
	var expire time.Time
	if in.ExpireTime != nil {
		expire = in.GetExpireTime().AsTime().UTC()
		if !expire.After(now) {
			return nil, apierr.Field("token.expire_time", "must be in the future")
		}
	}
	if err := notMorePowerful(caller, role, scope, expire); err != nil {
		return nil, err
	}
	secret, err := auth.GenerateToken()
	if err != nil {
		return nil, err
	}
	t := &store.Token{
		ID: NewID(now), Hash: auth.HashToken(secret), Role: role, Scope: scope.String(),
		Description: in.GetDescription(), Creator: caller.ID, CreatorEmail: s.creatorEmail(ctx, caller),
		CreateTime: now, ExpireTime: expire,
	}
	if err := s.store.Create(ctx, t); err != nil {
		return nil, err
	}
	return &agencyv1.CreateTokenResponse{Token: ToProto(t), Secret: secret}, nil
}

// visible reports whether the caller may see (and revoke) t: a scoped caller
// sees only tokens whose scope is at least as narrow as its own, never the
// agency-wide ones.
func visible(caller *auth.Principal, t *store.Token) bool {
	scope, err := labels.Parse(t.Scope)
	return err == nil && scope.NarrowerOrEqual(caller.Scope)
}

// notMorePowerful refuses a token that could do what its creator cannot: a
// higher role, a wider workspace scope, or a longer life.
func notMorePowerful(caller *auth.Principal, role string, scope labels.Selector, expire time.Time) error {
	deny := func(msg string) error {
		return apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED, msg)
	}
	if role == auth.RoleProvisioner && (caller.Role != auth.RoleAdmin || !caller.Scope.Empty() || !scope.Empty()) {
		return deny("a provisioner token is created by an unscoped admin, without a workspace_scope")
	}
	if auth.RoleRank(role) > auth.RoleRank(caller.Role) {
		return deny("a token cannot create a token with a higher role than its own")
	}
	if !scope.NarrowerOrEqual(caller.Scope) {
		return deny(fmt.Sprintf("the new token's workspace_scope must include every requirement of your own scope (%s)", caller.Scope.String()))
	}
	if !caller.ExpireTime.IsZero() && (expire.IsZero() || expire.After(caller.ExpireTime)) {
		return deny("the new token must expire no later than your own token")
	}
	return nil
}

// GetToken implements agencyv1.TokenServiceServer.
func (s *Service) GetToken(ctx context.Context, req *agencyv1.GetTokenRequest) (*agencyv1.Token, error) {
	t, err := s.get(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return ToProto(t), nil
}

// ListTokens implements agencyv1.TokenServiceServer.
func (s *Service) ListTokens(ctx context.Context, req *agencyv1.ListTokensRequest) (*agencyv1.ListTokensResponse, error) {
	size := int(req.GetPageSize())
	if size == 0 {
		size = 100
	}
	hash := pagetoken.Hash("tokens", fmt.Sprint(req.GetShowInactive()))
	var after string
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err != nil {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
		after = tok.After
	}
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errors.New("tokens: no principal")
	}
	now := s.now()
	out := &agencyv1.ListTokensResponse{}
	for {
		batch, err := s.store.List(ctx, after, size+1-len(out.Tokens))
		if err != nil {
			return nil, err
		}
		for _, t := range batch {
			after = t.ID
			if (req.GetShowInactive() || t.Active(now)) && visible(caller, t) {
				out.Tokens = append(out.Tokens, ToProto(t))
			}
		}
		if len(out.Tokens) > size {
			out.Tokens = out.Tokens[:size]
			out.NextPageToken = s.pages.Encode(pagetoken.Token{After: out.Tokens[size-1].GetName()[len("tokens/"):], FilterHash: hash})
			return out, nil
		}
		if len(batch) == 0 {
			return out, nil
		}
	}
}

// RevokeToken implements agencyv1.TokenServiceServer.
func (s *Service) RevokeToken(ctx context.Context, req *agencyv1.RevokeTokenRequest) (*agencyv1.Token, error) {
	if _, err := s.get(ctx, req.GetName()); err != nil {
		return nil, err // also hides tokens the caller may not see
	}
	id := req.GetName()[len("tokens/"):]
	now := s.now().UTC()
	t, err := s.store.Update(ctx, id, func(t *store.Token) error {
		if t.RevokeTime.IsZero() {
			t.RevokeTime = now
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.NotFound("token", req.GetName())
	}
	if err != nil {
		return nil, err
	}
	return ToProto(t), nil
}

func (s *Service) get(ctx context.Context, name string) (*store.Token, error) {
	caller, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errors.New("tokens: no principal")
	}
	t, err := s.store.Get(ctx, name[len("tokens/"):])
	if errors.Is(err, store.ErrNotFound) || (err == nil && !visible(caller, t)) {
		return nil, apierr.NotFound("token", name)
	}
	return t, err
}

func roleString(r agencyv1.Role) string {
	switch r {
	case agencyv1.Role_ROLE_ADMIN:
		return auth.RoleAdmin
	case agencyv1.Role_ROLE_MANAGER:
		return auth.RoleManager
	case agencyv1.Role_ROLE_SDR:
		return auth.RoleSDR
	case agencyv1.Role_ROLE_VIEWER:
		return auth.RoleViewer
	case agencyv1.Role_ROLE_PROVISIONER:
		return auth.RoleProvisioner
	}
	return ""
}

// RoleToProto maps a role name to the enum.
func RoleToProto(r string) agencyv1.Role {
	switch r {
	case auth.RoleAdmin:
		return agencyv1.Role_ROLE_ADMIN
	case auth.RoleManager:
		return agencyv1.Role_ROLE_MANAGER
	case auth.RoleSDR:
		return agencyv1.Role_ROLE_SDR
	case auth.RoleViewer:
		return agencyv1.Role_ROLE_VIEWER
	case auth.RoleProvisioner:
		return agencyv1.Role_ROLE_PROVISIONER
	}
	return agencyv1.Role_ROLE_UNSPECIFIED
}

// ToProto renders a token; the hash stays in the store.
func ToProto(t *store.Token) *agencyv1.Token {
	out := &agencyv1.Token{
		Name: "tokens/" + t.ID, Role: RoleToProto(t.Role), WorkspaceScope: t.Scope, Description: t.Description,
		Creator: t.Creator, CreateTime: timestamppb.New(t.CreateTime),
	}
	if !t.ExpireTime.IsZero() {
		out.ExpireTime = timestamppb.New(t.ExpireTime)
	}
	if !t.RevokeTime.IsZero() {
		out.RevokeTime = timestamppb.New(t.RevokeTime)
	}
	return out
}

// creatorEmail is the person behind a caller: an OIDC caller's email, or
// for a control-plane token the person who created that token, so that
// deactivating the person revokes every token down the chain.
func (s *Service) creatorEmail(ctx context.Context, caller *auth.Principal) string {
	if caller.Email != "" {
		return strings.ToLower(caller.Email)
	}
	id, ok := strings.CutPrefix(caller.ID, "tokens/")
	if !ok {
		return ""
	}
	parent, err := s.store.Get(ctx, id)
	if err != nil {
		return ""
	}
	return parent.CreatorEmail
}
