// Package workspaces implements agency.v1.WorkspaceService: the registry of
// client workspaces and their sealed Instantly credentials. Handlers are
// thin: validate what protovalidate cannot, call upstream and the store,
// map to proto.
package workspaces

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Upstream is the part of the Instantly client this service needs.
type Upstream interface {
	GetCurrentWorkspace(ctx context.Context, cred instantly.Credential) (*instantly.Workspace, error)
}

// Sealer seals credentials at rest (vault.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
	NeedsReseal(sealed []byte) bool
}

// Deps are the service's collaborators.
type Deps struct {
	Store    store.Workspaces
	Vault    Sealer
	Upstream Upstream
	Logger   *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service implements agencyv1.WorkspaceServiceServer.
type Service struct {
	agencyv1.UnimplementedWorkspaceServiceServer
	d Deps
}

// New returns the service.
func New(d Deps) *Service {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{d: d}
}

const (
	defaultPageSize = 50
	namePrefix      = "workspaces/"
)

var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// CreateWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) CreateWorkspace(ctx context.Context, req *agencyv1.CreateWorkspaceRequest) (*agencyv1.Workspace, error) {
	in := req.GetWorkspace()
	var vs []apierr.Violation
	if strings.TrimSpace(in.GetDisplayName()) == "" {
		vs = append(vs, apierr.Violation{Field: "workspace.display_name", Description: "is required"})
	}
	if in.GetApiKey() == "" {
		vs = append(vs, apierr.Violation{Field: "workspace.api_key", Description: "is required"})
	}
	vs = append(vs, labelViolations("workspace.", in.GetLabels())...)
	if len(vs) > 0 {
		return nil, apierr.InvalidArgument(vs...)
	}

	key := in.GetApiKey()
	upstream, err := s.checkKey(ctx, key, "workspace.api_key")
	if err != nil {
		return nil, err
	}
	id := req.GetWorkspaceId()
	if id == "" {
		id = strings.ToLower(upstream.ID)
		if !idPattern.MatchString(id) {
			return nil, apierr.Field("workspace_id", "is required: the Instantly workspace id %q is not a valid resource id", upstream.ID)
		}
	}
	name := namePrefix + id
	now := s.d.Now().UTC()
	rec := &store.Workspace{
		Name:                   name,
		DisplayName:            strings.TrimSpace(in.GetDisplayName()),
		Labels:                 in.GetLabels(),
		InstantlyWorkspaceID:   upstream.ID,
		InstantlyWorkspaceName: upstream.Name,
		CredentialFingerprint:  vault.Fingerprint(key),
		State:                  store.StateActive,
		LastVerifyTime:         now,
		CreateTime:             now,
		UpdateTime:             now,
	}
	if rec.SealedCredential, err = s.seal(key, name); err != nil {
		return nil, err
	}
	switch err := s.d.Store.Create(ctx, rec); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, apierr.Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("workspace %q already exists", name), err)
	case errors.Is(err, store.ErrDuplicateInstantlyWorkspace):
		return nil, apierr.Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("Instantly workspace %s is already registered", upstream.ID), err).
			WithMetadata("instantly_workspace_id", upstream.ID)
	case err != nil:
		return nil, err
	}
	s.d.Logger.InfoContext(ctx, "workspace registered", "workspace", name, "instantly_workspace_id", upstream.ID,
		"credential_fingerprint", rec.CredentialFingerprint)
	return toProto(rec), nil
}

// GetWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) GetWorkspace(ctx context.Context, req *agencyv1.GetWorkspaceRequest) (*agencyv1.Workspace, error) {
	rec, err := s.d.Store.Get(ctx, req.GetName())
	if err != nil {
		return nil, notFound(err, req.GetName())
	}
	return toProto(rec), nil
}

// ListWorkspaces implements agencyv1.WorkspaceServiceServer.
func (s *Service) ListWorkspaces(ctx context.Context, req *agencyv1.ListWorkspacesRequest) (*agencyv1.ListWorkspacesResponse, error) {
	sel, err := labels.Parse(req.GetFilter())
	if err != nil {
		return nil, apierr.Field("filter", "%s", err.Error())
	}
	size := int(req.GetPageSize())
	if size == 0 {
		size = defaultPageSize
	}
	filterHash := pagetoken.Hash("workspaces", sel.String())
	var after string
	if req.GetPageToken() != "" {
		tok, err := pagetoken.Decode(req.GetPageToken(), filterHash)
		if err != nil {
			return nil, apierr.Field("page_token", "is not a token from a previous call with this filter")
		}
		after = tok.After
	}
	q := store.ListQuery{After: after, Limit: size + 1}
	if !sel.Empty() {
		q.Match = sel.Matches
	}
	recs, err := s.d.Store.List(ctx, q)
	if err != nil {
		return nil, err
	}
	resp := &agencyv1.ListWorkspacesResponse{}
	if len(recs) > size {
		recs = recs[:size]
		resp.NextPageToken = pagetoken.Encode(pagetoken.Token{After: recs[size-1].Name, FilterHash: filterHash})
	}
	for _, r := range recs {
		resp.Workspaces = append(resp.Workspaces, toProto(r))
	}
	return resp, nil
}

// UpdateWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) UpdateWorkspace(ctx context.Context, req *agencyv1.UpdateWorkspaceRequest) (*agencyv1.Workspace, error) {
	in := req.GetWorkspace()
	var vs []apierr.Violation
	if !validName(in.GetName()) {
		vs = append(vs, apierr.Violation{Field: "workspace.name", Description: `must be "workspaces/{workspace}"`})
	}
	if in.ApiKey != nil {
		vs = append(vs, apierr.Violation{Field: "workspace.api_key", Description: "cannot be updated; use RotateWorkspaceCredential"})
	}
	paths := req.GetUpdateMask().GetPaths()
	if len(paths) == 0 {
		vs = append(vs, apierr.Violation{Field: "update_mask", Description: `is required: name the fields to change ("display_name", "labels")`})
	}
	var setName, setLabels bool
	for _, p := range paths {
		switch p {
		case "display_name":
			setName = true
			if strings.TrimSpace(in.GetDisplayName()) == "" {
				vs = append(vs, apierr.Violation{Field: "workspace.display_name", Description: "must not be empty"})
			}
		case "labels":
			setLabels = true
			vs = append(vs, labelViolations("workspace.", in.GetLabels())...)
		default:
			vs = append(vs, apierr.Violation{Field: "update_mask", Description: fmt.Sprintf("path %q cannot be updated (allowed: display_name, labels)", p)})
		}
	}
	if len(vs) > 0 {
		return nil, apierr.InvalidArgument(vs...)
	}
	rec, err := s.d.Store.Update(ctx, in.GetName(), func(w *store.Workspace) error {
		if setName {
			w.DisplayName = strings.TrimSpace(in.GetDisplayName())
		}
		if setLabels {
			w.Labels = in.GetLabels()
		}
		w.UpdateTime = s.d.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, notFound(err, in.GetName())
	}
	return toProto(rec), nil
}

// DeleteWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) DeleteWorkspace(ctx context.Context, req *agencyv1.DeleteWorkspaceRequest) (*emptypb.Empty, error) {
	if err := s.d.Store.Delete(ctx, req.GetName()); err != nil {
		return nil, notFound(err, req.GetName())
	}
	s.d.Logger.InfoContext(ctx, "workspace deleted", "workspace", req.GetName())
	return &emptypb.Empty{}, nil
}

// RotateWorkspaceCredential implements agencyv1.WorkspaceServiceServer.
func (s *Service) RotateWorkspaceCredential(ctx context.Context, req *agencyv1.RotateWorkspaceCredentialRequest) (*agencyv1.Workspace, error) {
	name := req.GetName()
	cur, err := s.d.Store.Get(ctx, name)
	if err != nil {
		return nil, notFound(err, name)
	}
	upstream, err := s.checkKey(ctx, req.GetApiKey(), "api_key")
	if err != nil {
		return nil, err
	}
	if upstream.ID != cur.InstantlyWorkspaceID {
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_WORKSPACE_MISMATCH,
			fmt.Sprintf("the new key belongs to Instantly workspace %s, not %s", upstream.ID, cur.InstantlyWorkspaceID)).
			WithMetadata("instantly_workspace_id", cur.InstantlyWorkspaceID)
	}
	sealed, err := s.seal(req.GetApiKey(), name)
	if err != nil {
		return nil, err
	}
	now := s.d.Now().UTC()
	rec, err := s.d.Store.Update(ctx, name, func(w *store.Workspace) error {
		w.SealedCredential = sealed
		w.CredentialFingerprint = vault.Fingerprint(req.GetApiKey())
		w.InstantlyWorkspaceName = upstream.Name
		w.State, w.StateMessage = store.StateActive, ""
		w.LastVerifyTime, w.UpdateTime = now, now
		return nil
	})
	if err != nil {
		return nil, notFound(err, name)
	}
	s.d.Logger.InfoContext(ctx, "workspace credential rotated", "workspace", name, "credential_fingerprint", rec.CredentialFingerprint)
	return toProto(rec), nil
}

// VerifyWorkspace implements agencyv1.WorkspaceServiceServer. It also
// re-seals a credential sealed under an older master key.
func (s *Service) VerifyWorkspace(ctx context.Context, req *agencyv1.VerifyWorkspaceRequest) (*agencyv1.Workspace, error) {
	name := req.GetName()
	cur, err := s.d.Store.Get(ctx, name)
	if err != nil {
		return nil, notFound(err, name)
	}
	key, err := s.open(cur)
	if err != nil {
		return nil, err
	}
	state, msg, upstreamName := s.verify(ctx, key, cur.InstantlyWorkspaceID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var resealed string
	if s.d.Vault.NeedsReseal([]byte(cur.SealedCredential)) {
		if resealed, err = s.seal(key, name); err != nil {
			return nil, err
		}
	}
	now := s.d.Now().UTC()
	rec, err := s.d.Store.Update(ctx, name, func(w *store.Workspace) error {
		w.State, w.StateMessage = state, msg
		if upstreamName != "" {
			w.InstantlyWorkspaceName = upstreamName
		}
		// A rotation may have raced this verification; only re-seal the
		// credential that was verified.
		if resealed != "" && w.SealedCredential == cur.SealedCredential {
			w.SealedCredential = resealed
		}
		w.LastVerifyTime, w.UpdateTime = now, now
		return nil
	})
	if err != nil {
		return nil, notFound(err, name)
	}
	s.d.Logger.InfoContext(ctx, "workspace verified", "workspace", name, "state", string(state))
	return toProto(rec), nil
}

// verify classifies the stored key's current standing with Instantly.
func (s *Service) verify(ctx context.Context, key, wantID string) (store.State, string, string) {
	got, err := s.d.Upstream.GetCurrentWorkspace(ctx, instantly.Credential{APIKey: key})
	var upstream *instantly.Error
	switch {
	case err == nil && got.ID != wantID:
		return store.StateWorkspaceMismatch, fmt.Sprintf("the key now belongs to Instantly workspace %s", got.ID), ""
	case err == nil:
		return store.StateActive, "", got.Name
	case errors.As(err, &upstream) && (upstream.StatusCode == http.StatusUnauthorized || upstream.StatusCode == http.StatusForbidden):
		return store.StateCredentialInvalid, upstream.Error(), ""
	case errors.As(err, &upstream):
		return store.StateUpstreamUnavailable, upstream.Error(), ""
	default:
		return store.StateUpstreamUnavailable, "Instantly could not be reached", ""
	}
}

// checkKey asks Instantly which workspace a key belongs to. A key Instantly
// refuses is bad input, reported against field.
func (s *Service) checkKey(ctx context.Context, key, field string) (*instantly.Workspace, error) {
	ws, err := s.d.Upstream.GetCurrentWorkspace(ctx, instantly.Credential{APIKey: key})
	var upstream *instantly.Error
	switch {
	case err == nil:
		return ws, nil
	case errors.As(err, &upstream) && upstream.StatusCode == http.StatusUnauthorized:
		e := apierr.InvalidArgument(apierr.Violation{Field: field, Description: "Instantly refused this key (401): " + upstream.Message})
		e.Reason = agencyv1.ErrorReason_ERROR_REASON_CREDENTIAL_INVALID
		return nil, e.WithMetadata("upstream_status", "401")
	case errors.As(err, &upstream) && upstream.StatusCode == http.StatusForbidden:
		e := apierr.InvalidArgument(apierr.Violation{Field: field, Description: "this key lacks the workspaces:read scope that registration needs"})
		e.Reason = agencyv1.ErrorReason_ERROR_REASON_SCOPE_DENIED
		return nil, e.WithMetadata("upstream_status", "403")
	default:
		return nil, err
	}
}

func (s *Service) seal(key, name string) (string, error) {
	sealed, err := s.d.Vault.Seal([]byte(key), []byte(name))
	if err != nil {
		return "", fmt.Errorf("seal credential: %w", err)
	}
	return string(sealed), nil
}

func (s *Service) open(rec *store.Workspace) (string, error) {
	key, err := s.d.Vault.Open([]byte(rec.SealedCredential), []byte(rec.Name))
	if err != nil {
		return "", apierr.Wrap(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_INTERNAL,
			"the stored credential cannot be opened with the configured master keys; rotate the credential", err)
	}
	return string(key), nil
}

func validName(name string) bool {
	id, ok := strings.CutPrefix(name, namePrefix)
	return ok && idPattern.MatchString(id)
}

// notFound names the workspace in a NotFound error; other errors pass.
func notFound(err error, name string) error {
	if errors.Is(err, store.ErrNotFound) {
		e := apierr.NotFound("workspace", name)
		return e
	}
	return err
}

func labelViolations(prefix string, l map[string]string) []apierr.Violation {
	var vs []apierr.Violation
	for _, fe := range labels.Violations(l) {
		vs = append(vs, apierr.Violation{Field: prefix + fe.Field, Description: fe.Description})
	}
	return vs
}
