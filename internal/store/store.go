// Package store defines the control plane's durable state and the contracts
// every backend (embedded memory, Redis) satisfies. The storetest package
// holds the conformance suite each backend runs.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
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
	// CredentialKeyID is the Instantly API-key id of the stored credential,
	// when the control plane created that key (so it is never revoked by
	// mistake); empty when unknown.
	CredentialKeyID string `json:"credential_key_id,omitempty"`
	// AdminWorkspace, when set, names the registered admin workspace whose
	// key acts on this one through x-as-workspace; SealedCredential is empty.
	AdminWorkspace string `json:"admin_workspace,omitempty"`
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
	// GetByInstantlyID returns the workspace registered for an Instantly
	// workspace id, or ErrNotFound.
	GetByInstantlyID(ctx context.Context, instantlyID string) (*Workspace, error)
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
	Tokens() Tokens
	Audit() Audit
	// Ping reports whether the backend can serve requests (readiness).
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// Token is a control-plane bearer token; only its SHA-256 is stored.
type Token struct {
	ID          string    `json:"id"`
	Hash        string    `json:"hash"`
	Role        string    `json:"role"`
	Scope       string    `json:"scope,omitempty"` // canonical label selector; empty = all
	Description string    `json:"description,omitempty"`
	Creator     string    `json:"creator,omitempty"`
	CreateTime  time.Time `json:"create_time"`
	ExpireTime  time.Time `json:"expire_time,omitzero"`
	RevokeTime  time.Time `json:"revoke_time,omitzero"`

	// CreatorEmail is the person behind Creator: an OIDC caller's email
	// claim, or the CreatorEmail of the token that created this one. SCIM
	// deactivating that person revokes the token.
	CreatorEmail string `json:"creator_email,omitempty"`
}

// Active reports whether the token may authenticate at now.
func (t *Token) Active(now time.Time) bool {
	return t.RevokeTime.IsZero() && (t.ExpireTime.IsZero() || now.Before(t.ExpireTime))
}

// Tokens stores control-plane tokens.
type Tokens interface {
	// Create stores a token; ErrAlreadyExists when the id or hash is taken.
	Create(ctx context.Context, t *Token) error
	// Get returns a token by id, or ErrNotFound.
	Get(ctx context.Context, id string) (*Token, error)
	// GetByHash returns the token with that hash, or ErrNotFound.
	GetByHash(ctx context.Context, hash string) (*Token, error)
	// List returns up to limit tokens with ids after the cursor, in id order.
	List(ctx context.Context, after string, limit int) ([]*Token, error)
	// Update applies fn atomically (it may run more than once); changing
	// the ID fails with ErrImmutable, changing the Hash moves the index.
	Update(ctx context.Context, id string, fn func(*Token) error) (*Token, error)
}

// Audit event phases. A mutating call that reaches its handler appends a
// started event before anything is sent upstream, then a finished one.
const (
	AuditPhaseStarted  = "started"
	AuditPhaseFinished = "finished"
)

// AuditEvent is one step of a mutating call on the control plane.
type AuditEvent struct {
	ID        string    `json:"id"` // assigned by Append, increasing with time
	Time      time.Time `json:"time"`
	Principal string    `json:"principal"`
	// PrincipalEmail is an OIDC caller's email claim, beside Principal.
	PrincipalEmail string `json:"principal_email,omitempty"`
	Role           string `json:"role"`
	Method         string `json:"method"`
	RequestID      string `json:"request_id"`
	// Phase is AuditPhaseStarted or AuditPhaseFinished; empty (events
	// written before phases existed) means finished.
	Phase      string   `json:"phase,omitempty"`
	Workspaces []string `json:"workspaces,omitempty"`
	// Code is the gRPC code name of a finished call; empty when started.
	Code        string `json:"code"`
	Succeeded   int    `json:"succeeded"`
	Failed      int    `json:"failed"`
	AlreadyDone int    `json:"already_done"`
	// Operation names the long-running operation ("operations/…") that
	// carries on the call's work, when there is one.
	Operation string `json:"operation,omitempty"`
}

// AuditQuery selects events, newest first.
type AuditQuery struct {
	// Before excludes events with ids >= Before (the previous page's cursor).
	Before string
	// Since excludes events older than this time.
	Since time.Time
	Limit int
	Match func(*AuditEvent) bool
}

// Audit is the append-only control-plane audit trail. Events older than
// the backend's retention are dropped.
type Audit interface {
	Append(ctx context.Context, e *AuditEvent) error
	List(ctx context.Context, q AuditQuery) ([]*AuditEvent, error)
}

// AuditIDBefore orders audit ids ("<ms>-<seq>") numerically.
func AuditIDBefore(a, b string) bool {
	am, as := splitAuditID(a)
	bm, bs := splitAuditID(b)
	return am < bm || (am == bm && as < bs)
}

func splitAuditID(id string) (int64, int64) {
	ms, seq, _ := strings.Cut(id, "-")
	m, _ := strconv.ParseInt(ms, 10, 64)
	s, _ := strconv.ParseInt(seq, 10, 64)
	return m, s
}

// WithAuditLog returns s whose audit trail also writes every event it
// stores to w as one JSON line (the event as stored, id included): a way
// to ship events out for retention beyond the store's bounds (a file a log
// shipper tails, stdout). The store stays the record: a failed write goes
// to onError and does not fail the append. Close closes w too when it is
// an io.Closer.
func WithAuditLog(s Store, w io.Writer, onError func(error)) Store {
	return &auditLogStore{Store: s, audit: &auditLog{Audit: s.Audit(), w: w, onError: onError}}
}

type auditLogStore struct {
	Store
	audit *auditLog
}

func (s *auditLogStore) Audit() Audit { return s.audit }

func (s *auditLogStore) Close() error {
	err := s.Store.Close()
	if c, ok := s.audit.w.(io.Closer); ok {
		err = errors.Join(err, c.Close())
	}
	return err
}

type auditLog struct {
	Audit
	mu      sync.Mutex // one line per Write, never interleaved
	w       io.Writer
	onError func(error)
}

func (a *auditLog) Append(ctx context.Context, e *AuditEvent) error {
	if err := a.Audit.Append(ctx, e); err != nil {
		return err
	}
	line, err := json.Marshal(e)
	if err == nil {
		a.mu.Lock()
		_, err = a.w.Write(append(line, '\n'))
		a.mu.Unlock()
	}
	if err != nil && a.onError != nil {
		a.onError(fmt.Errorf("audit log: event %s: %w", e.ID, err))
	}
	return nil
}
