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
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/fieldmask"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/service/groupmembers"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Sealer seals credentials at rest (vault.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	NeedsReseal(sealed []byte) bool
}

// Deps are the service's collaborators.
type Deps struct {
	Store    store.Workspaces
	Vault    Sealer
	Upstream *instantly.Client
	Resolver *resolve.Resolver
	// Raw is the unscoped registry, to tell "not registered" (or deleted)
	// from "registered outside the caller's scope" during discovery and
	// when naming admin workspaces.
	Raw    store.Workspaces
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// PageTokens signs ListWorkspaces' page tokens.
	PageTokens *pagetoken.Codec
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
	// A non-blank display_name, and api_key vs admin_workspace and
	// sub_workspace_id: the request's protovalidate rules (CEL), checked
	// before this runs.
	if vs := labelViolations("workspace.", in.GetLabels()); len(vs) > 0 {
		return nil, apierr.InvalidArgument(vs...)
	}
	if in.GetAdminWorkspace() != "" {
		return s.createSub(ctx, req.GetWorkspaceId(), in.GetAdminWorkspace(), req.GetSubWorkspaceId(), in.GetDisplayName(), in.GetLabels())
	}

	key := in.GetApiKey()
	got, err := s.checkKey(ctx, instantly.Credential{APIKey: key}, "workspace.api_key")
	if err != nil {
		return nil, err
	}
	id := req.GetWorkspaceId()
	if id == "" {
		id = strings.ToLower(got.ID)
		if !idPattern.MatchString(id) {
			return nil, apierr.Field("workspace_id", "is required: the Instantly workspace id %q is not a valid resource id", got.ID)
		}
	}
	name := namePrefix + id
	now := s.d.Now().UTC()
	rec := &store.Workspace{
		Name:                   name,
		DisplayName:            strings.TrimSpace(in.GetDisplayName()),
		Labels:                 in.GetLabels(),
		InstantlyWorkspaceID:   got.ID,
		InstantlyWorkspaceName: got.Name,
		CredentialFingerprint:  vault.Fingerprint(key),
		CredentialKeyID:        s.storedKeyID(ctx, key, got.ID),
		State:                  store.StateActive,
		LastVerifyTime:         now,
		CreateTime:             now,
		UpdateTime:             now,
	}
	if rec.SealedCredential, err = s.seal(key, name); err != nil {
		return nil, err
	}
	return s.create(ctx, rec)
}

// storedKeyID is the Instantly id of key (the credential being stored),
// identified in the workspace's key list (apikeys.IdentifyStoredKey), so
// AuditApiKeys marks it and RevokeApiKey refuses it; "" when the list
// cannot be read (the key lacks api_keys:read) or no listed key can be
// told to be it. It never fails the call.
func (s *Service) storedKeyID(ctx context.Context, key, instantlyID string) string {
	id, err := apikeys.IdentifyStoredKey(ctx, s.d.Upstream, instantly.Credential{APIKey: key, Budget: []string{instantlyID}})
	switch {
	case err != nil:
		s.d.Logger.InfoContext(ctx, "cannot identify the stored credential among the workspace's API keys", "instantly_workspace_id", instantlyID, "error", err.Error())
	case id == "":
		s.d.Logger.InfoContext(ctx, "no single API key of the workspace matches the stored credential", "instantly_workspace_id", instantlyID)
	}
	return id
}

// create stores a new record, naming what collided.
func (s *Service) create(ctx context.Context, rec *store.Workspace) (*agencyv1.Workspace, error) {
	name := rec.Name
	switch err := s.d.Store.Create(ctx, rec); {
	case errors.Is(err, store.ErrAlreadyExists):
		return nil, apierr.Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("workspace %q already exists", name), err)
	case errors.Is(err, store.ErrDuplicateInstantlyWorkspace):
		return nil, apierr.Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("Instantly workspace %s is already registered", rec.InstantlyWorkspaceID), err).
			WithMetadata("instantly_workspace_id", rec.InstantlyWorkspaceID)
	case err != nil:
		return nil, err
	}
	s.d.Logger.InfoContext(ctx, "workspace registered", "workspace", name, "instantly_workspace_id", rec.InstantlyWorkspaceID,
		"credential_fingerprint", rec.CredentialFingerprint, "admin_workspace", rec.AdminWorkspace)
	return s.view(ctx, rec, nil)
}

// createSub registers a sub workspace acting through its admin workspace's
// key, after checking that the key reaches it (x-as-workspace). The sub
// workspace's Instantly id passes the caller's scope first: one registered
// outside it answers as an id the admin workspace's key cannot reach
// (subRefused), without asking Instantly.
func (s *Service) createSub(ctx context.Context, id, adminName, subID, displayName string, lbls map[string]string) (*agencyv1.Workspace, error) {
	admin, err := s.d.Resolver.Get(ctx, adminName)
	if err != nil {
		return nil, err
	}
	if admin.AdminWorkspace != "" {
		return nil, apierr.Field("workspace.admin_workspace", "%s is itself a sub workspace", adminName)
	}
	if err := authz.CheckLabels(ctx, lbls); err != nil {
		return nil, err
	}
	if _, err := s.d.Resolver.InstantlyWorkspace(ctx, subID, lbls); errors.Is(err, store.ErrNotFound) {
		return nil, subRefused()
	} else if err != nil {
		return nil, err
	}
	cred, err := s.d.Resolver.Credential(ctx, admin)
	if err != nil {
		return nil, err
	}
	cred.AsWorkspace = subID
	got, err := s.checkKey(ctx, cred, "sub_workspace_id")
	if err != nil {
		return nil, err
	}
	if id == "" {
		id = strings.ToLower(got.ID)
	}
	now := s.d.Now().UTC()
	return s.create(ctx, &store.Workspace{
		Name:                   namePrefix + id,
		DisplayName:            strings.TrimSpace(displayName),
		Labels:                 lbls,
		InstantlyWorkspaceID:   got.ID,
		InstantlyWorkspaceName: got.Name,
		AdminWorkspace:         adminName,
		CredentialFingerprint:  admin.CredentialFingerprint,
		State:                  store.StateActive,
		LastVerifyTime:         now,
		CreateTime:             now,
		UpdateTime:             now,
	})
}

// GetWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) GetWorkspace(ctx context.Context, req *agencyv1.GetWorkspaceRequest) (*agencyv1.Workspace, error) {
	rec, err := s.d.Store.Get(ctx, req.GetName())
	if err != nil {
		return nil, notFound(err, req.GetName())
	}
	return s.view(ctx, rec, nil)
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
		tok, err := s.d.PageTokens.Decode(req.GetPageToken(), filterHash)
		if err != nil {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
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
		resp.NextPageToken = s.d.PageTokens.Encode(pagetoken.Token{After: recs[size-1].Name, FilterHash: filterHash})
	}
	seen := map[string]bool{}
	for _, r := range recs {
		w, err := s.view(ctx, r, seen)
		if err != nil {
			return nil, err
		}
		resp.Workspaces = append(resp.Workspaces, w)
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
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
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
	return s.view(ctx, rec, nil)
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
	cur, err := s.d.Resolver.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if cur.AdminWorkspace != "" {
		admin := "its admin workspace"
		if visible, err := s.visible(ctx, cur.AdminWorkspace, nil); err != nil {
			return nil, err
		} else if visible {
			admin = cur.AdminWorkspace
		}
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT,
			fmt.Sprintf("%s acts through %s's key; rotate that workspace's credential", name, admin))
	}
	got, err := s.checkKey(ctx, instantly.Credential{APIKey: req.GetApiKey()}, "api_key")
	if err != nil {
		return nil, err
	}
	if got.ID != cur.InstantlyWorkspaceID {
		return nil, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_WORKSPACE_MISMATCH,
			fmt.Sprintf("the new key belongs to Instantly workspace %s, not %s", got.ID, cur.InstantlyWorkspaceID)).
			WithMetadata("instantly_workspace_id", cur.InstantlyWorkspaceID)
	}
	sealed, err := s.seal(req.GetApiKey(), name)
	if err != nil {
		return nil, err
	}
	keyID := s.storedKeyID(ctx, req.GetApiKey(), got.ID)
	now := s.d.Now().UTC()
	rec, err := s.d.Store.Update(ctx, name, func(w *store.Workspace) error {
		w.SealedCredential = sealed
		w.CredentialFingerprint = vault.Fingerprint(req.GetApiKey())
		w.CredentialKeyID = keyID // "" when Instantly's key list cannot tell
		w.InstantlyWorkspaceName = got.Name
		w.State, w.StateMessage = store.StateActive, ""
		w.LastVerifyTime, w.UpdateTime = now, now
		return nil
	})
	if err != nil {
		return nil, notFound(err, name)
	}
	s.d.Logger.InfoContext(ctx, "workspace credential rotated", "workspace", name, "credential_fingerprint", rec.CredentialFingerprint)
	return s.view(ctx, rec, nil)
}

// VerifyWorkspace implements agencyv1.WorkspaceServiceServer. It also
// re-seals a credential sealed under an older master key.
func (s *Service) VerifyWorkspace(ctx context.Context, req *agencyv1.VerifyWorkspaceRequest) (*agencyv1.Workspace, error) {
	name := req.GetName()
	t, err := s.d.Resolver.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	cur := t.Workspace
	state, msg, upstreamName := s.verify(ctx, t.Cred, cur.InstantlyWorkspaceID)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// A credential registered before its key id was recorded is
	// identified now.
	var keyID string
	if state == store.StateActive && cur.AdminWorkspace == "" && cur.CredentialKeyID == "" {
		keyID = s.storedKeyID(ctx, t.Cred.APIKey, cur.InstantlyWorkspaceID)
	}
	var resealed string
	if cur.AdminWorkspace == "" && s.d.Vault.NeedsReseal([]byte(cur.SealedCredential)) {
		if resealed, err = s.seal(t.Cred.APIKey, name); err != nil {
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
		if keyID != "" && w.SealedCredential == cur.SealedCredential {
			w.CredentialKeyID = keyID
		}
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
	return s.view(ctx, rec, nil)
}

// TransferOwnership implements agencyv1.WorkspaceServiceServer.
func (s *Service) TransferOwnership(ctx context.Context, req *agencyv1.TransferOwnershipRequest) (*agencyv1.Workspace, error) {
	t, err := s.d.Resolver.Resolve(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if _, err := s.d.Upstream.ChangeWorkspaceOwner(ctx, t.Cred, instantly.ChangeOwnerRequest{Email: req.GetEmail(), Sec: req.GetSec()}); err != nil {
		return nil, err
	}
	s.d.Logger.InfoContext(ctx, "workspace ownership transferred", "workspace", req.GetName())
	return s.view(ctx, t.Workspace, nil)
}

// RenameInstantlyWorkspace implements agencyv1.WorkspaceServiceServer.
func (s *Service) RenameInstantlyWorkspace(ctx context.Context, req *agencyv1.RenameInstantlyWorkspaceRequest) (*agencyv1.Workspace, error) {
	newName := strings.TrimSpace(req.GetInstantlyWorkspaceName())
	t, err := s.d.Resolver.Resolve(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	got, err := s.d.Upstream.UpdateCurrentWorkspace(ctx, t.Cred, instantly.UpdateCurrentWorkspaceRequest{Name: &newName})
	if err != nil {
		return nil, err
	}
	rec, err := s.d.Store.Update(ctx, req.GetName(), func(w *store.Workspace) error {
		w.InstantlyWorkspaceName = got.Name
		w.UpdateTime = s.d.Now().UTC()
		return nil
	})
	if err != nil {
		return nil, notFound(err, req.GetName())
	}
	return s.view(ctx, rec, nil)
}

// DiscoverSubWorkspaces implements agencyv1.WorkspaceServiceServer.
func (s *Service) DiscoverSubWorkspaces(ctx context.Context, req *agencyv1.DiscoverSubWorkspacesRequest) (*agencyv1.DiscoverSubWorkspacesResponse, error) {
	if vs := labelViolations("", req.GetLabels()); len(vs) > 0 {
		return nil, apierr.InvalidArgument(vs...)
	}
	t, err := s.d.Resolver.Resolve(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if t.Workspace.AdminWorkspace != "" {
		return nil, apierr.Field("name", "%s is a sub workspace, not an admin workspace", req.GetName())
	}
	out := &agencyv1.DiscoverSubWorkspacesResponse{}
	for gm, err := range s.d.Upstream.AllWorkspaceGroupMembers(ctx, t.Cred, instantly.ListParams{Limit: 100}) {
		if err != nil {
			return nil, err
		}
		d := &agencyv1.DiscoveredSubWorkspace{InstantlyWorkspaceId: gm.SubWorkspaceID, Status: groupmembers.StatusFromUpstream(gm.Status)}
		if gm.SubWorkspaceName != nil {
			d.InstantlyWorkspaceName = *gm.SubWorkspaceName
		}
		reg, err := s.d.Raw.GetByInstantlyID(ctx, gm.SubWorkspaceID)
		switch {
		case err == nil:
			// Registered; named only when the caller may see it.
			if _, serr := s.d.Store.Get(ctx, reg.Name); serr == nil {
				d.RegisteredWorkspace = reg.Name
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		case req.GetRegister() && gm.Status == instantly.GroupMemberAccepted:
			display := d.GetInstantlyWorkspaceName()
			if display == "" {
				display = gm.SubWorkspaceID
			}
			w, err := s.createSub(ctx, "", req.GetName(), gm.SubWorkspaceID, display, req.GetLabels())
			if err != nil {
				return nil, err
			}
			d.RegisteredWorkspace, d.RegisteredNow = w.GetName(), true
			d.InstantlyWorkspaceName = w.GetInstantlyWorkspaceName()
		}
		out.SubWorkspaces = append(out.SubWorkspaces, d)
	}
	return out, nil
}

// verify classifies the stored credential's current standing with Instantly.
func (s *Service) verify(ctx context.Context, cred instantly.Credential, wantID string) (store.State, string, string) {
	got, err := s.d.Upstream.GetCurrentWorkspace(ctx, cred)
	var upstreamErr *instantly.Error
	switch {
	case err == nil && got.ID != wantID:
		return store.StateWorkspaceMismatch, fmt.Sprintf("the key now belongs to Instantly workspace %s", got.ID), ""
	case err == nil:
		return store.StateActive, "", got.Name
	case errors.As(err, &upstreamErr) && (upstreamErr.StatusCode == http.StatusUnauthorized || upstreamErr.StatusCode == http.StatusForbidden):
		return store.StateCredentialInvalid, upstreamErr.Error(), ""
	case errors.As(err, &upstreamErr):
		return store.StateUpstreamUnavailable, upstreamErr.Error(), ""
	default:
		return store.StateUpstreamUnavailable, "Instantly could not be reached", ""
	}
}

// checkKey asks Instantly which workspace a credential acts on. One that
// Instantly refuses is bad input, reported against field; but an admin
// workspace's stored key (cred.AsWorkspace set) refused outright (401) is
// that stored credential's fault, mapped as for any call through it.
func (s *Service) checkKey(ctx context.Context, cred instantly.Credential, field string) (*instantly.Workspace, error) {
	ws, err := s.d.Upstream.GetCurrentWorkspace(ctx, cred)
	var upstreamErr *instantly.Error
	switch {
	case err == nil:
		return ws, nil
	case errors.As(err, &upstreamErr) && upstreamErr.StatusCode == http.StatusUnauthorized && cred.AsWorkspace == "":
		e := apierr.InvalidArgument(apierr.Violation{Field: field, Description: "Instantly refused this key (401): " + upstreamErr.Message})
		e.Reason = agencyv1.ErrorReason_ERROR_REASON_CREDENTIAL_INVALID
		return nil, e.WithMetadata("upstream_status", "401")
	case errors.As(err, &upstreamErr) && upstreamErr.StatusCode == http.StatusForbidden && cred.AsWorkspace != "":
		return nil, subRefused()
	case errors.As(err, &upstreamErr) && upstreamErr.StatusCode == http.StatusForbidden:
		e := apierr.InvalidArgument(apierr.Violation{Field: field, Description: "this key lacks the workspaces:read scope that registration needs"})
		e.Reason = agencyv1.ErrorReason_ERROR_REASON_SCOPE_DENIED
		return nil, e.WithMetadata("upstream_status", "403")
	default:
		return nil, err
	}
}

// subRefused is the answer to a sub_workspace_id that cannot be registered
// through the admin workspace: Instantly refused the admin workspace's key
// on it, or it is registered outside the caller's scope. One answer for
// both (no upstream_status), so it never tells them apart.
func subRefused() error {
	e := apierr.InvalidArgument(apierr.Violation{Field: "sub_workspace_id",
		Description: "cannot be registered through this admin workspace: not an accepted sub workspace its key may act on (or the key lacks workspaces:read)"})
	e.Reason = agencyv1.ErrorReason_ERROR_REASON_SCOPE_DENIED
	return e
}

// view renders rec for the caller. A workspace outside the caller's scope
// is never named, not even as another's admin workspace: admin_workspace
// is then empty. seen, when not nil, remembers answers within one call.
func (s *Service) view(ctx context.Context, rec *store.Workspace, seen map[string]bool) (*agencyv1.Workspace, error) {
	out := toProto(rec)
	if rec.AdminWorkspace == "" {
		return out, nil
	}
	visible, err := s.visible(ctx, rec.AdminWorkspace, seen)
	if err != nil {
		return nil, err
	}
	if !visible {
		out.AdminWorkspace = ""
	}
	return out, nil
}

// visible reports whether the caller may be told the workspace name:
// false only when it is registered outside the caller's scope (a deleted
// one names nothing, and calls through it fail naming it anyway).
func (s *Service) visible(ctx context.Context, name string, seen map[string]bool) (bool, error) {
	if v, ok := seen[name]; ok {
		return v, nil
	}
	v := true
	switch _, err := s.d.Store.Get(ctx, name); {
	case errors.Is(err, store.ErrNotFound):
		// Out of scope, or deleted: only a registered one is hidden.
		_, rerr := s.d.Raw.Get(ctx, name)
		if rerr != nil && !errors.Is(rerr, store.ErrNotFound) {
			return false, rerr
		}
		v = rerr != nil
	case err != nil:
		return false, err
	}
	if seen != nil {
		seen[name] = v
	}
	return v, nil
}

func (s *Service) seal(key, name string) (string, error) {
	sealed, err := s.d.Vault.Seal([]byte(key), []byte(name))
	if err != nil {
		return "", fmt.Errorf("seal credential: %w", err)
	}
	return string(sealed), nil
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
