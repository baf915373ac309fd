package idempotency

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MemoryStore is the embedded backend's Store: one process, forgotten on
// exit, like the rest of the embedded backend.
type MemoryStore struct {
	now func() time.Time

	mu        sync.Mutex
	records   map[string]memoryEntry
	lastSweep time.Time
}

type memoryEntry struct {
	rec     Record
	expires time.Time
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty store; now is its clock (nil = time.Now).
func NewMemoryStore(now func() time.Time) *MemoryStore {
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{now: now, records: map[string]memoryEntry{}}
}

// sweepEvery bounds how often Claim walks the map to drop expired records,
// so memory stays bounded by the records of the last TTL.
const sweepEvery = time.Minute

// get returns the live entry under key; the caller holds mu.
func (m *MemoryStore) get(key string, now time.Time) (memoryEntry, bool) {
	e, ok := m.records[key]
	if ok && !now.Before(e.expires) {
		delete(m.records, key)
		return memoryEntry{}, false
	}
	return e, ok
}

// Claim implements Store.
func (m *MemoryStore) Claim(ctx context.Context, key string, pending *Record, ttl time.Duration) (*Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("claim: %w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.Sub(m.lastSweep) >= sweepEvery {
		for k, e := range m.records {
			if !now.Before(e.expires) {
				delete(m.records, k)
			}
		}
		m.lastSweep = now
	}
	if e, ok := m.get(key, now); ok {
		rec := e.rec
		return &rec, nil
	}
	m.records[key] = memoryEntry{rec: *pending, expires: now.Add(ttl)}
	return nil, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(ctx context.Context, key string, pending, done *Record, ttl time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("complete: %w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if e, ok := m.get(key, now); !ok || e.rec != *pending {
		return false, nil
	}
	m.records[key] = memoryEntry{rec: *done, expires: now.Add(ttl)}
	return true, nil
}

// Release implements Store.
func (m *MemoryStore) Release(ctx context.Context, key string, pending *Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("release: %w: %w", ErrUnavailable, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.get(key, m.now()); ok && e.rec == *pending {
		delete(m.records, key)
	}
	return nil
}
