// Package memory is the embedded, in-process backend: the default for
// `make run` and single-replica trials. It behaves like the Redis backend but
// forgets everything when the process exits.
package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

// Store is the in-memory backend.
type Store struct {
	ws     *workspaces
	tokens *tokens
	audit  *audit
}

// Options tunes the memory backend.
type Options struct {
	// AuditRetention drops audit events older than this; default 90 days.
	AuditRetention time.Duration
	// AuditMaxEvents keeps at most this many audit events, the newest; 0
	// bounds them by age only.
	AuditMaxEvents int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// New returns an empty in-memory store.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty in-memory store.
func NewWithOptions(opts Options) *Store {
	if opts.AuditRetention <= 0 {
		opts.AuditRetention = 90 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{ws: &workspaces{byName: map[string]*store.Workspace{}, byInstantly: map[string]string{}},
		tokens: &tokens{byID: map[string]*store.Token{}, byHash: map[string]string{}},
		audit:  &audit{retention: opts.AuditRetention, maxEvents: opts.AuditMaxEvents, now: opts.Now}}
}

// Workspaces implements store.Store.
func (s *Store) Workspaces() store.Workspaces { return s.ws }

// Tokens implements store.Store.
func (s *Store) Tokens() store.Tokens { return s.tokens }

// Audit implements store.Store.
func (s *Store) Audit() store.Audit { return s.audit }

// Ping implements store.Store; memory is always ready.
func (s *Store) Ping(context.Context) error { return nil }

// Close implements store.Store.
func (s *Store) Close() error { return nil }

type workspaces struct {
	mu          sync.RWMutex
	byName      map[string]*store.Workspace
	byInstantly map[string]string
}

func (m *workspaces) Create(ctx context.Context, w *store.Workspace) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byName[w.Name]; ok {
		return fmt.Errorf("create %s: %w", w.Name, store.ErrAlreadyExists)
	}
	if _, ok := m.byInstantly[w.InstantlyWorkspaceID]; ok {
		return fmt.Errorf("create %s: %w", w.Name, store.ErrDuplicateInstantlyWorkspace)
	}
	m.byName[w.Name] = w.Clone()
	m.byInstantly[w.InstantlyWorkspaceID] = w.Name
	return nil
}

func (m *workspaces) Get(ctx context.Context, name string) (*store.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	w, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", name, store.ErrNotFound)
	}
	return w.Clone(), nil
}

func (m *workspaces) GetByInstantlyID(ctx context.Context, id string) (*store.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	name, ok := m.byInstantly[id]
	if !ok {
		return nil, fmt.Errorf("get instantly %s: %w", id, store.ErrNotFound)
	}
	return m.byName[name].Clone(), nil
}

func (m *workspaces) List(ctx context.Context, q store.ListQuery) ([]*store.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	names := make([]string, 0, len(m.byName))
	for n := range m.byName {
		if n > q.After {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var out []*store.Workspace
	for _, n := range names {
		if len(out) >= q.Limit {
			break
		}
		w := m.byName[n]
		if q.Match == nil || q.Match(w.Labels) {
			out = append(out, w.Clone())
		}
	}
	return out, nil
}

func (m *workspaces) Update(ctx context.Context, name string, fn func(*store.Workspace) error) (*store.Workspace, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("update %s: %w", name, store.ErrNotFound)
	}
	next := cur.Clone()
	if err := fn(next); err != nil {
		return nil, err
	}
	if next.Name != cur.Name || next.InstantlyWorkspaceID != cur.InstantlyWorkspaceID {
		return nil, fmt.Errorf("update %s: %w", name, store.ErrImmutable)
	}
	m.byName[name] = next.Clone()
	return next, nil
}

func (m *workspaces) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	w, ok := m.byName[name]
	if !ok {
		return fmt.Errorf("delete %s: %w", name, store.ErrNotFound)
	}
	delete(m.byName, name)
	delete(m.byInstantly, w.InstantlyWorkspaceID)
	return nil
}
