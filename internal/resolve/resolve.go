// Package resolve gives the per-workspace services what they share: turning
// a registered workspace's name into the Instantly credential that acts on
// it (its own key, or its admin workspace's key with x-as-workspace), and
// wrapping Instantly's cursors in our page tokens.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Opener opens sealed credentials (vault.Keyring).
type Opener interface {
	Open(sealed, aad []byte) ([]byte, error)
}

// Resolver finds the credential for a registered workspace.
type Resolver struct {
	store store.Workspaces // scoped to the caller
	raw   store.Workspaces // unscoped: an admin workspace's key may act for a caller who cannot see it
	vault Opener
	pages *pagetoken.Codec

	// budgets remembers, per workspace name, the rate budgets its last
	// resolved credential spends: the fan-out engine knows workspaces by
	// name, the latency tracker by budget. One entry per registered
	// workspace in use; a workspace found missing is dropped.
	mu      sync.Mutex
	budgets map[string][]string
}

// NewResolver returns a Resolver: scoped is the caller-scoped view used to
// find target workspaces, raw the unscoped store used only to open an admin
// workspace's credential for its sub workspaces and to apply the scope to
// raw Instantly ids; pages signs the page tokens of NewPage.
func NewResolver(scoped, raw store.Workspaces, v Opener, pages *pagetoken.Codec) *Resolver {
	return &Resolver{store: scoped, raw: raw, vault: v, pages: pages, budgets: map[string][]string{}}
}

// BudgetsOf returns the rate budgets (Instantly workspace ids) the named
// workspace's requests spent when its credential was last resolved, or nil
// before then. The slice is shared: do not modify it.
func (r *Resolver) BudgetsOf(name string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.budgets[name]
}

func (r *Resolver) remember(name string, budget []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if budget == nil {
		delete(r.budgets, name)
		return
	}
	if !slices.Equal(r.budgets[name], budget) {
		r.budgets[name] = slices.Clone(budget)
	}
}

// Target is a registered workspace and the credential that acts on it.
type Target struct {
	Workspace *store.Workspace
	Cred      instantly.Credential
}

// Resolve loads the named workspace and opens its credential. A workspace
// that does not exist is NOT_FOUND naming it.
func (r *Resolver) Resolve(ctx context.Context, name string) (*Target, error) {
	ws, err := r.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	cred, err := r.Credential(ctx, ws)
	if err != nil {
		return nil, err
	}
	return &Target{Workspace: ws, Cred: cred}, nil
}

// ResolveChild resolves "workspaces/{w}/{collection}/{id}" to its
// workspace's target and the child's id.
func (r *Resolver) ResolveChild(ctx context.Context, name, collection string) (*Target, string, error) {
	parent, id, err := ChildName(name, collection)
	if err != nil {
		return nil, "", err
	}
	t, err := r.Resolve(ctx, parent)
	if err != nil {
		return nil, "", err
	}
	return t, id, nil
}

// Get loads the named workspace.
func (r *Resolver) Get(ctx context.Context, name string) (*store.Workspace, error) {
	ws, err := r.store.Get(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		r.remember(name, nil)
		return nil, apierr.NotFound("workspace", name)
	}
	return ws, err
}

// InstantlyWorkspace applies the caller's scope to a raw Instantly
// workspace id (authz.InstantlyID, with the labels an unregistered one
// would have): the registered workspace, nil for an unregistered one the
// caller may name, or an error wrapping store.ErrNotFound that the caller
// must answer exactly as it answers an id that names nothing.
func (r *Resolver) InstantlyWorkspace(ctx context.Context, id string, unregistered map[string]string) (*store.Workspace, error) {
	return authz.InstantlyID(ctx, r.raw, id, unregistered)
}

// InstantlyNotFound is the answer to an Instantly workspace id the caller
// may not use, whether it names nothing or a workspace outside its scope.
func InstantlyNotFound(id string) *apierr.Error { return apierr.NotFound("Instantly workspace", id) }

// Credential opens the key that acts on ws.
func (r *Resolver) Credential(ctx context.Context, ws *store.Workspace) (instantly.Credential, error) {
	cred, err := r.credential(ctx, ws)
	if err == nil {
		r.remember(ws.Name, cred.Budget)
	}
	return cred, err
}

func (r *Resolver) credential(ctx context.Context, ws *store.Workspace) (instantly.Credential, error) {
	if ws.AdminWorkspace == "" {
		key, err := r.open(ws)
		return instantly.Credential{APIKey: key, Budget: []string{ws.InstantlyWorkspaceID}}, err
	}
	admin, err := r.raw.Get(ctx, ws.AdminWorkspace)
	if errors.Is(err, store.ErrNotFound) {
		return instantly.Credential{}, apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CREDENTIAL_INVALID,
			fmt.Sprintf("%s acts through admin workspace %s, which is no longer registered", ws.Name, ws.AdminWorkspace))
	}
	if err != nil {
		return instantly.Credential{}, err
	}
	key, err := r.vault.Open([]byte(admin.SealedCredential), []byte(admin.Name))
	if err != nil {
		what := admin.Name
		if _, verr := r.store.Get(ctx, admin.Name); verr != nil {
			what = ws.Name + "'s admin workspace" // hidden from this caller: not named
		}
		return instantly.Credential{}, unopenable(what, err)
	}
	// Whose budget x-as-workspace traffic spends is undocumented: spend both.
	return instantly.Credential{APIKey: string(key), AsWorkspace: ws.InstantlyWorkspaceID,
		Budget: []string{ws.InstantlyWorkspaceID, admin.InstantlyWorkspaceID}}, nil
}

func (r *Resolver) open(ws *store.Workspace) (string, error) {
	key, err := r.vault.Open([]byte(ws.SealedCredential), []byte(ws.Name))
	if err != nil {
		return "", unopenable(ws.Name, err)
	}
	return string(key), nil
}

func unopenable(what string, err error) error {
	return apierr.Wrap(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_INTERNAL,
		"the stored credential of "+what+" cannot be opened with the configured master keys; rotate the credential", err)
}

// Page is one upstream page request derived from our page_size/page_token.
type Page struct {
	Limit         int
	StartingAfter string
	hash          string
	pages         *pagetoken.Codec
}

// NewPage validates page_token against the filters it was issued for
// (everything that changes the result set goes into parts).
func (r *Resolver) NewPage(pageSize int32, defaultSize int, pageToken string, parts ...string) (Page, error) {
	p := Page{Limit: int(pageSize), hash: pagetoken.Hash(parts...), pages: r.pages}
	if p.Limit == 0 {
		p.Limit = defaultSize
	}
	if pageToken != "" {
		tok, err := r.pages.Decode(pageToken, p.hash)
		if err != nil {
			return Page{}, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
		p.StartingAfter = tok.After
	}
	return p, nil
}

// Next returns the next page token: empty when the page came back short
// (Instantly may still send a cursor on its last page).
func (p Page) Next(items int, cursor string) string {
	if items < p.Limit || cursor == "" {
		return ""
	}
	return p.pages.Encode(pagetoken.Token{After: cursor, FilterHash: p.hash})
}

// ChildName splits "workspaces/{w}/{collection}/{id}" into the workspace
// name and id.
func ChildName(name, collection string) (workspace, id string, err error) {
	parts := strings.Split(name, "/")
	if len(parts) != 4 || parts[0] != "workspaces" || parts[2] != collection || parts[3] == "" {
		return "", "", apierr.Field("name", "must be workspaces/{workspace}/%s/{id}", collection)
	}
	return parts[0] + "/" + parts[1], parts[3], nil
}

// Timestamp parses Instantly's RFC 3339 timestamps; unparsable ones are
// left unset rather than failing a read.
func Timestamp(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	return timestamppb.New(t)
}

// HTTPStatus is the status of an Instantly error answer inside err, or 0.
func HTTPStatus(err error) int {
	var u *instantly.Error
	if errors.As(err, &u) {
		return u.StatusCode
	}
	return 0
}

// NotFound names our resource when Instantly answered 404; other errors
// pass unchanged.
func NotFound(err error, kind, name string) error {
	if HTTPStatus(err) == 404 {
		return apierr.NotFound(kind, name)
	}
	return err
}
