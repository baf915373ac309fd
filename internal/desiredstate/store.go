package desiredstate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

// Sentinel errors; stores wrap them with %w. They wrap the registry's, so
// the API edge maps them like any store's (NOT_FOUND, UNAVAILABLE).
var (
	// ErrNotFound: no such plan (or it expired).
	ErrNotFound = fmt.Errorf("desiredstate: %w", store.ErrNotFound)
	// ErrUnavailable: the store (Redis) failed.
	ErrUnavailable = fmt.Errorf("desiredstate: %w", store.ErrUnavailable)
)

// PlanRecord is a stored plan.
type PlanRecord struct {
	ID           string    `json:"id"`
	Creator      string    `json:"creator"`
	CreatorRole  string    `json:"creator_role"`
	CreatorScope string    `json:"creator_scope,omitempty"`
	CreateTime   time.Time `json:"create_time"`
	// Source is the file's text, parsed again to replan or reconcile.
	Source []byte `json:"source"`
	// Plan is the rendered plan with every workspace (agencyv1.Plan in
	// proto wire format), opaque here.
	Plan []byte `json:"plan"`
	// ApplyOperation names the operation that applied it; set by
	// ClaimApply, empty until then.
	ApplyOperation string `json:"-"`
}

// Applied is the last applied file: what drift is measured against.
type Applied struct {
	Plan         string    `json:"plan"`      // "plans/{id}"
	Operation    string    `json:"operation"` // "operations/{id}"
	Source       []byte    `json:"source"`
	Creator      string    `json:"creator"`
	CreatorScope string    `json:"creator_scope,omitempty"`
	ApplyTime    time.Time `json:"apply_time"`
}

// DriftReport is what the last reconcile found.
type DriftReport struct {
	Plan      string       `json:"plan"`
	ApplyTime time.Time    `json:"apply_time"`
	CheckTime time.Time    `json:"check_time"`
	Items     []DriftItem  `json:"items,omitempty"`
	Errors    []DriftError `json:"errors,omitempty"`
}

// DriftItem is one change a plan of the applied file would make now.
type DriftItem struct {
	Workspace string    `json:"workspace"`
	Change    Change    `json:"change"`
	FirstSeen time.Time `json:"first_seen"`
}

// DriftError is a workspace the reconcile could not read.
type DriftError struct {
	Workspace string `json:"workspace"`
	Code      int32  `json:"code"`
	Message   string `json:"message"`
}

// Store keeps plans, the last applied file, drift reports and the removal
// reservations of running applies. Every method is safe for concurrent use
// by many replicas.
type Store interface {
	// SavePlan stores a new plan, kept for ttl.
	SavePlan(ctx context.Context, p *PlanRecord, ttl time.Duration) error
	// GetPlan returns a plan (with ApplyOperation) or ErrNotFound.
	GetPlan(ctx context.Context, id string) (*PlanRecord, error)
	// ClaimApply records that operation op applies the plan, unless another
	// did first: it returns "" when the claim is ours, else the operation
	// that holds it. A successful claim keeps the plan for keep from now
	// (the apply's workers read it).
	ClaimApply(ctx context.Context, id, op string, keep time.Duration) (string, error)
	// ReleaseApply gives back op's claim (its operation could not be
	// created).
	ReleaseApply(ctx context.Context, id, op string) error

	// SetApplied records the last applied file.
	SetApplied(ctx context.Context, a *Applied) error
	// LastApplied returns it, or nil when nothing was applied.
	LastApplied(ctx context.Context) (*Applied, error)
	// SaveDrift replaces the drift report.
	SaveDrift(ctx context.Context, r *DriftReport) error
	// Drift returns the drift report, or nil before the first reconcile.
	Drift(ctx context.Context) (*DriftReport, error)

	// ReserveRemovals sets how many removals workspace makes in apply op,
	// unless that would take the apply's total above limit: it reports
	// whether it did. Re-reserving a workspace replaces its own count
	// (a re-run of its item), so a crash never counts twice.
	ReserveRemovals(ctx context.Context, op, workspace string, n, limit int, ttl time.Duration) (bool, error)
}

// Memory is the Store of the embedded backend: one process, forgotten on
// exit.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	plans   map[string]*memPlan
	applied *Applied
	drift   *DriftReport
	removal map[string]*reservation // by operation
}

// reservation is one apply's removals per workspace, kept for its TTL.
type reservation struct {
	expires time.Time
	counts  map[string]int
}

type memPlan struct {
	rec     PlanRecord
	expires time.Time
}

// NewMemory returns an empty Memory; now defaults to time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, plans: map[string]*memPlan{}, removal: map[string]*reservation{}}
}

var _ Store = (*Memory)(nil)

// gc drops expired plans and reservations; the caller holds mu.
func (m *Memory) gc() {
	now := m.now()
	for id, p := range m.plans {
		if now.After(p.expires) {
			delete(m.plans, id)
		}
	}
	for op, r := range m.removal {
		if now.After(r.expires) {
			delete(m.removal, op)
		}
	}
}

// SavePlan implements Store.
func (m *Memory) SavePlan(_ context.Context, p *PlanRecord, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gc()
	c := *p
	m.plans[p.ID] = &memPlan{rec: c, expires: m.now().Add(ttl)}
	return nil
}

// GetPlan implements Store.
func (m *Memory) GetPlan(_ context.Context, id string) (*PlanRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.plans[id]
	if !ok || m.now().After(p.expires) {
		return nil, ErrNotFound
	}
	c := p.rec
	return &c, nil
}

// ClaimApply implements Store.
func (m *Memory) ClaimApply(_ context.Context, id, op string, keep time.Duration) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.plans[id]
	if !ok || m.now().After(p.expires) {
		return "", ErrNotFound
	}
	if p.rec.ApplyOperation != "" {
		return p.rec.ApplyOperation, nil
	}
	p.rec.ApplyOperation = op
	p.expires = later(p.expires, m.now().Add(keep))
	return "", nil
}

// ReleaseApply implements Store.
func (m *Memory) ReleaseApply(_ context.Context, id, op string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.plans[id]; ok && p.rec.ApplyOperation == op {
		p.rec.ApplyOperation = ""
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// SetApplied implements Store.
func (m *Memory) SetApplied(_ context.Context, a *Applied) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *a
	m.applied = &c
	return nil
}

// LastApplied implements Store.
func (m *Memory) LastApplied(context.Context) (*Applied, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.applied == nil {
		return nil, nil
	}
	c := *m.applied
	return &c, nil
}

// SaveDrift implements Store.
func (m *Memory) SaveDrift(_ context.Context, r *DriftReport) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *r
	m.drift = &c
	return nil
}

// Drift implements Store.
func (m *Memory) Drift(context.Context) (*DriftReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.drift == nil {
		return nil, nil
	}
	c := *m.drift
	return &c, nil
}

// ReserveRemovals implements Store.
func (m *Memory) ReserveRemovals(_ context.Context, op, workspace string, n, limit int, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gc()
	r := m.removal[op]
	if r == nil {
		r = &reservation{counts: map[string]int{}}
		m.removal[op] = r
	}
	others := 0
	for w, k := range r.counts {
		if w != workspace {
			others += k
		}
	}
	if others+n > limit {
		return false, nil
	}
	r.counts[workspace] = n
	r.expires = m.now().Add(ttl)
	return true, nil
}

// Leader decides which replica reconciles: one at a time.
type Leader interface {
	// Lead takes or keeps the leadership for ttl and reports whether this
	// replica holds it.
	Lead(ctx context.Context, ttl time.Duration) (bool, error)
	// Resign gives it up (on shutdown), if held.
	Resign(ctx context.Context) error
}

// Alone is the Leader of the embedded backend: the only replica leads.
type Alone struct{}

// Lead implements Leader.
func (Alone) Lead(context.Context, time.Duration) (bool, error) { return true, nil }

// Resign implements Leader.
func (Alone) Resign(context.Context) error { return nil }
