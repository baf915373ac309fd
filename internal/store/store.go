// Package store defines the control plane's durable state and the contracts
// every backend (embedded memory, Redis) satisfies. The storetest package
// holds the conformance suite each backend runs.
package store

import (
	"context"
	"errors"
	"maps"
	"time"
)

// Sentinel errors. Backends wrap them with %w; the API edge maps them to
// gRPC codes once.
var (
	// ErrNotFound: the named record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrAlreadyExists: a record with that name exists.
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrDuplicateInstantlyWorkspace: another registry entry already holds
	// the same Instantly workspace.
	ErrDuplicateInstantlyWorkspace = errors.New("store: instantly workspace already registered")
	// ErrConflict: optimistic concurrency gave up after repeated concurrent
	// changes to the same record.
	ErrConflict = errors.New("store: concurrent modification")
	// ErrUnavailable: the backend could not be reached or failed. The wrapped
	// cause is for logs only.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrImmutable: an update tried to change a field that identifies the record.
	ErrImmutable = errors.New("store: immutable field changed")
)

// State is the outcome of a workspace's last credential verification.
type State string

// Workspace states.
const (
	StateActive              State = "ACTIVE"
	StateCredentialInvalid   State = "CREDENTIAL_INVALID"
	StateWorkspaceMismatch   State = "WORKSPACE_MISMATCH"
	StateUpstreamUnavailable State = "UPSTREAM_UNAVAILABLE"
)

// Workspace is one registry entry. SealedCredential is the vault's sealed
// form of the Instantly key; the plaintext never reaches a store.
type Workspace struct {
	Name                   string            `json:"name"`
	DisplayName            string            `json:"display_name"`
	Labels                 map[string]string `json:"labels,omitempty"`
	InstantlyWorkspaceID   string            `json:"instantly_workspace_id"`
	InstantlyWorkspaceName string            `json:"instantly_workspace_name"`
	SealedCredential       string            `json:"sealed_credential"`
	CredentialFingerprint  string            `json:"credential_fingerprint"`
	State                  State             `json:"state"`
	StateMessage           string            `json:"state_message,omitempty"`
	LastVerifyTime         time.Time         `json:"last_verify_time"`
	CreateTime             time.Time         `json:"create_time"`
	UpdateTime             time.Time         `json:"update_time"`
}

// Clone returns a deep copy, so callers never share maps with a backend.
func (w *Workspace) Clone() *Workspace {
	c := *w
	c.Labels = maps.Clone(w.Labels)
	return &c
}

// ListQuery selects a page of workspaces in ascending name order.
type ListQuery struct {
	// After excludes names <= After (the cursor of the previous page).
	After string
	// Limit is the maximum number of matches to return; must be > 0.
	Limit int
	// Match, when set, keeps only workspaces whose labels it accepts.
	Match func(labels map[string]string) bool
}

// Workspaces is the workspace registry.
type Workspaces interface {
	// Create stores a new workspace. It fails with ErrAlreadyExists when the
	// name is taken and ErrDuplicateInstantlyWorkspace when another entry
	// holds the same InstantlyWorkspaceID; both checks and the write are atomic.
	Create(ctx context.Context, w *Workspace) error
	// Get returns the named workspace or ErrNotFound.
	Get(ctx context.Context, name string) (*Workspace, error)
	// List returns up to q.Limit matching workspaces with names after q.After.
	List(ctx context.Context, q ListQuery) ([]*Workspace, error)
	// Update applies fn to the current record and stores the result
	// atomically (fn may run more than once under contention). An error from
	// fn aborts the update and is returned as is. Changing Name or
	// InstantlyWorkspaceID fails with ErrImmutable.
	Update(ctx context.Context, name string, fn func(*Workspace) error) (*Workspace, error)
	// Delete removes the named workspace or fails with ErrNotFound.
	Delete(ctx context.Context, name string) error
}

// Store is one backend's whole state.
type Store interface {
	Workspaces() Workspaces
	Meta() Meta
	// Ping reports whether the backend can serve requests (readiness).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Meta holds small singletons of the deployment.
type Meta interface {
	// EnsureBootstrapTokenHash stores candidate as the bootstrap admin
	// token's hash unless one is already stored, and returns the stored hash
	// and whether candidate became it. Replicas racing at first start agree
	// on one token.
	EnsureBootstrapTokenHash(ctx context.Context, candidate string) (stored string, created bool, err error)
}
