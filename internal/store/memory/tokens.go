package memory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

type tokens struct {
	mu     sync.RWMutex
	byID   map[string]*store.Token
	byHash map[string]string
}

func cloneToken(t *store.Token) *store.Token { c := *t; return &c }

func (m *tokens) Create(ctx context.Context, t *store.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.byID[t.ID]; ok {
		return fmt.Errorf("create token %s: %w", t.ID, store.ErrAlreadyExists)
	}
	if _, ok := m.byHash[t.Hash]; ok {
		return fmt.Errorf("create token %s: %w", t.ID, store.ErrAlreadyExists)
	}
	m.byID[t.ID] = cloneToken(t)
	m.byHash[t.Hash] = t.ID
	return nil
}

func (m *tokens) Get(ctx context.Context, id string) (*store.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	t, ok := m.byID[id]
	if !ok {
		return nil, fmt.Errorf("get token %s: %w", id, store.ErrNotFound)
	}
	return cloneToken(t), nil
}

func (m *tokens) GetByHash(ctx context.Context, hash string) (*store.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	id, ok := m.byHash[hash]
	if !ok {
		return nil, fmt.Errorf("get token by hash: %w", store.ErrNotFound)
	}
	return cloneToken(m.byID[id]), nil
}

func (m *tokens) List(ctx context.Context, after string, limit int) ([]*store.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	ids := make([]string, 0, len(m.byID))
	for id := range m.byID {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var out []*store.Token
	for _, id := range ids {
		if len(out) == limit {
			break
		}
		out = append(out, cloneToken(m.byID[id]))
	}
	return out, nil
}

func (m *tokens) Update(ctx context.Context, id string, fn func(*store.Token) error) (*store.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.byID[id]
	if !ok {
		return nil, fmt.Errorf("update token %s: %w", id, store.ErrNotFound)
	}
	next := cloneToken(cur)
	if err := fn(next); err != nil {
		return nil, err
	}
	if next.ID != cur.ID {
		return nil, fmt.Errorf("update token %s: %w", id, store.ErrImmutable)
	}
	if next.Hash != cur.Hash {
		if _, taken := m.byHash[next.Hash]; taken {
			return nil, fmt.Errorf("update token %s: %w", id, store.ErrAlreadyExists)
		}
		delete(m.byHash, cur.Hash)
		m.byHash[next.Hash] = id
	}
	m.byID[id] = cloneToken(next)
	return next, nil
}

type audit struct {
	mu        sync.Mutex
	retention time.Duration
	maxEvents int // 0: no size bound
	now       func() time.Time
	events    []*store.AuditEvent // oldest first
	lastMS    int64
	seq       int64
}

func cloneEvent(e *store.AuditEvent) *store.AuditEvent {
	c := *e
	c.Workspaces = slices.Clone(e.Workspaces)
	return &c
}

// Append assigns stream-like ids ("<unix ms>-<seq>", as Redis does) so both
// backends page the same way.
func (a *audit) Append(ctx context.Context, e *store.AuditEvent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	ms := now.UnixMilli()
	if ms <= a.lastMS {
		ms = a.lastMS
		a.seq++
	} else {
		a.seq = 0
	}
	a.lastMS = ms
	e.ID = strconv.FormatInt(ms, 10) + "-" + strconv.FormatInt(a.seq, 10)
	a.events = append(a.events, cloneEvent(e))
	// Retention: drop the expired head.
	cut := now.Add(-a.retention)
	i := 0
	for i < len(a.events) && a.events[i].Time.Before(cut) {
		i++
	}
	if a.maxEvents > 0 && len(a.events)-i > a.maxEvents {
		i = len(a.events) - a.maxEvents
	}
	// Reslicing leaves the dropped head in the backing array only until
	// append outgrows it and copies the live part.
	a.events = a.events[i:]
	return nil
}

func (a *audit) List(ctx context.Context, q store.AuditQuery) ([]*store.AuditEvent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*store.AuditEvent
	for i := len(a.events) - 1; i >= 0 && len(out) < q.Limit; i-- {
		e := a.events[i]
		if q.Before != "" && !store.AuditIDBefore(e.ID, q.Before) {
			continue
		}
		if !q.Since.IsZero() && e.Time.Before(q.Since) {
			break
		}
		if q.Match == nil || q.Match(e) {
			out = append(out, cloneEvent(e))
		}
	}
	return out, nil
}
