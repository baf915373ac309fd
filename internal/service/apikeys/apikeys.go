// Package apikeys implements agency.v1.ApiKeyService: scoped Instantly keys
// from the access-matrix presets, listing with over-privilege flags, and
// revocation that never cuts the control plane's own credential by mistake
// (the stored credential's key id is recorded when it is created here, and
// identified in Instantly's key list when it was handed over; see
// IdentifyStoredKey).
package apikeys

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Sealer seals a new stored credential.
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
}

// Service implements agencyv1.ApiKeyServiceServer.
type Service struct {
	agencyv1.UnimplementedApiKeyServiceServer
	resolver *resolve.Resolver
	client   *instantly.Client
	store    store.Workspaces
	vault    Sealer
	logger   *slog.Logger
	now      func() time.Time
}

// New returns the service.
func New(r *resolve.Resolver, c *instantly.Client, ws store.Workspaces, v Sealer, logger *slog.Logger) *Service {
	return &Service{resolver: r, client: c, store: ws, vault: v, logger: logger, now: time.Now}
}

const defaultPageSize = 50

// PresetScopes are the access matrix's Instantly key scopes per preset.
func PresetScopes(p agencyv1.ApiKeyPreset) []string {
	switch p {
	case agencyv1.ApiKeyPreset_API_KEY_PRESET_MANAGER:
		return []string{"campaigns:create", "campaigns:read", "campaigns:update", "leads:create", "leads:read", "leads:update",
			"accounts:read", "webhooks:create", "webhooks:read", "api_keys:read", "workspace_members:read"}
	case agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR:
		return []string{"campaigns:read", "campaigns:update", "leads:create", "leads:read", "accounts:read"}
	case agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER:
		return []string{"campaigns:read", "leads:read", "accounts:read"}
	}
	return nil
}

// OverPrivileged flags keys whose scopes reach everything (the seed's audit).
func OverPrivileged(scopes []string) bool {
	return slices.Contains(scopes, "all:all") || slices.Contains(scopes, "all:update")
}

// ListApiKeys implements agencyv1.ApiKeyServiceServer.
func (s *Service) ListApiKeys(ctx context.Context, req *agencyv1.ListApiKeysRequest) (*agencyv1.ListApiKeysResponse, error) {
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), "api-keys", req.GetParent())
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListAPIKeys(ctx, t.Cred, instantly.ListParams{Limit: page.Limit, StartingAfter: page.StartingAfter})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListApiKeysResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for i := range res.Items {
		out.ApiKeys = append(out.ApiKeys, ToProto(t.Workspace, &res.Items[i]))
	}
	return out, nil
}

// CreateApiKey implements agencyv1.ApiKeyServiceServer.
func (s *Service) CreateApiKey(ctx context.Context, req *agencyv1.CreateApiKeyRequest) (*agencyv1.CreateApiKeyResponse, error) {
	scopes, err := RequestedScopes(req.GetScopes(), req.GetPreset())
	if err != nil {
		return nil, err
	}
	if req.GetStoreAsCredential() && !instantly.ScopeAllows(scopes, "workspaces:read") {
		return nil, apierr.Field("store_as_credential", "the key's scopes must include workspaces:read for the control plane to verify it")
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	if req.GetStoreAsCredential() && t.Workspace.AdminWorkspace != "" {
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			t.Workspace.Name+" acts through its admin workspace's key; store_as_credential is not available")
	}
	key, err := s.client.CreateAPIKey(ctx, t.Cred, instantly.CreateAPIKeyRequest{Name: strings.TrimSpace(req.GetDisplayName()), Scopes: scopes})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.CreateApiKeyResponse{ApiKey: ToProto(t.Workspace, key), Secret: key.Key}
	if !req.GetStoreAsCredential() {
		return out, nil
	}
	if err := s.storeCredential(ctx, t.Workspace.Name, key); err != nil {
		// The key exists upstream; hand its secret back rather than lose it.
		s.logger.WarnContext(ctx, "new API key created but not stored as the credential; its secret was returned",
			"workspace", t.Workspace.Name, "api_key_id", key.ID, "error", err.Error())
		return out, nil
	}
	out.Secret = ""
	out.ApiKey.IsStoredCredential = true
	return out, nil
}

// storeCredential seals the new key as the workspace's credential.
func (s *Service) storeCredential(ctx context.Context, name string, key *instantly.APIKey) error {
	sealed, err := s.vault.Seal([]byte(key.Key), []byte(name))
	if err != nil {
		return err
	}
	_, err = s.store.Update(ctx, name, func(w *store.Workspace) error {
		w.SealedCredential = string(sealed)
		w.CredentialFingerprint = vault.Fingerprint(key.Key)
		w.CredentialKeyID = key.ID
		w.UpdateTime = s.now().UTC()
		return nil
	})
	return err
}

// RevokeApiKey implements agencyv1.ApiKeyServiceServer.
func (s *Service) RevokeApiKey(ctx context.Context, req *agencyv1.RevokeApiKeyRequest) (*agencyv1.ApiKey, error) {
	t, id, err := s.resolver.ResolveChild(ctx, req.GetName(), "apiKeys")
	if err != nil {
		return nil, err
	}
	parent := t.Workspace.Name
	stored := t.Workspace.CredentialKeyID
	if stored == "" && t.Workspace.AdminWorkspace == "" {
		// A credential registered by hand before its key id was recorded:
		// find out now, so it is never revoked by mistake.
		var apiErr *instantly.Error
		switch stored, err = s.identify(ctx, t.Workspace, t.Cred); {
		case err == nil || req.GetForce():
		case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusForbidden:
			return nil, apierr.Wrap(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT,
				"cannot tell whether this key is the control plane's stored credential for "+parent+
					" (its key may not list API keys: api_keys:read); set force to revoke it anyway", err)
		default:
			return nil, err
		}
	}
	if stored == id && !req.GetForce() {
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT,
			"this key is the control plane's stored credential for "+parent+
				"; rotate the credential first, or set force to revoke it anyway (the control plane then loses access to the workspace)").
			WithMetadata("api_key_id", id)
	}
	key, err := s.client.DeleteAPIKey(ctx, t.Cred, id)
	if err != nil {
		return nil, resolve.NotFound(err, "API key", req.GetName())
	}
	if stored == id {
		s.storedRevoked(ctx, t.Workspace, id)
	}
	return ToProto(t.Workspace, key), nil
}

// identify finds which key of the workspace is its stored credential and
// records the id (unless the credential changed meanwhile); "" when no
// listed key can be told to be it.
func (s *Service) identify(ctx context.Context, ws *store.Workspace, cred instantly.Credential) (string, error) {
	id, err := IdentifyStoredKey(ctx, s.client, cred)
	if err != nil || id == "" {
		return "", err
	}
	_, err = s.store.Update(ctx, ws.Name, func(w *store.Workspace) error {
		if w.SealedCredential == ws.SealedCredential {
			w.CredentialKeyID = id
		}
		return nil
	})
	if err != nil {
		s.logger.WarnContext(ctx, "could not record the stored credential's API key id", "workspace", ws.Name, "error", err.Error())
	}
	return id, nil
}

// storedRevoked records that the stored credential was revoked (with
// force): the workspace cannot be reached until its credential is rotated.
func (s *Service) storedRevoked(ctx context.Context, ws *store.Workspace, id string) {
	s.logger.WarnContext(ctx, "the workspace's stored credential was revoked (force): rotate its credential", "workspace", ws.Name, "api_key_id", id)
	_, err := s.store.Update(ctx, ws.Name, func(w *store.Workspace) error {
		if w.SealedCredential == ws.SealedCredential {
			w.State = store.StateCredentialInvalid
			w.StateMessage = "the stored credential (API key " + id + ") was revoked through RevokeApiKey with force; rotate the credential"
			w.UpdateTime = s.now().UTC()
		}
		return nil
	})
	if err != nil {
		s.logger.WarnContext(ctx, "could not record the revoked credential's state", "workspace", ws.Name, "error", err.Error())
	}
}

// RequestedScopes checks explicit scopes against Instantly's enum, or
// expands a preset; exactly one of the two must be given.
func RequestedScopes(scopes []string, preset agencyv1.ApiKeyPreset) ([]string, error) {
	switch {
	case len(scopes) > 0 && preset != agencyv1.ApiKeyPreset_API_KEY_PRESET_UNSPECIFIED:
		return nil, apierr.Field("preset", "give either scopes or a preset, not both")
	case preset != agencyv1.ApiKeyPreset_API_KEY_PRESET_UNSPECIFIED:
		return PresetScopes(preset), nil
	case len(scopes) == 0:
		return nil, apierr.Field("scopes", "give scopes or a preset")
	}
	for i, sc := range scopes {
		if !instantly.ValidScope(sc) {
			return nil, apierr.Field(fmt.Sprintf("scopes[%d]", i), "%q is not an Instantly scope", sc)
		}
	}
	return scopes, nil
}

// ToProto renders a key; the secret never goes in the ApiKey message.
func ToProto(ws *store.Workspace, k *instantly.APIKey) *agencyv1.ApiKey {
	return &agencyv1.ApiKey{
		Name:               ws.Name + "/apiKeys/" + k.ID,
		Id:                 k.ID,
		DisplayName:        k.Name,
		Scopes:             k.Scopes,
		OverPrivileged:     OverPrivileged(k.Scopes),
		IsStoredCredential: ws.CredentialKeyID != "" && ws.CredentialKeyID == k.ID,
		CreateTime:         resolve.Timestamp(k.TimestampCreated),
	}
}
