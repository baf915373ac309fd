package auth

import (
	"context"
	"sync"
	"time"
)

// DefaultMaxFailureKeys bounds a MemoryFailures.
const DefaultMaxFailureKeys = 100_000

// MemoryFailures is the FailureCounter of the embedded backend: one
// process's buckets, bounded in size.
type MemoryFailures struct {
	limits  FailureLimits
	maxKeys int

	mu   sync.Mutex
	tats map[string]time.Time
}

// NewMemoryFailures returns an in-process FailureCounter holding at most
// maxKeys keys (0 = DefaultMaxFailureKeys). When full, keys whose buckets
// have refilled are dropped first, then arbitrary ones: an attacker who
// spreads failures over that many addresses can only make buckets forget.
func NewMemoryFailures(l FailureLimits, maxKeys int) *MemoryFailures {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxFailureKeys
	}
	return &MemoryFailures{limits: l.withDefaults(), maxKeys: maxKeys, tats: map[string]time.Time{}}
}

// Fail implements FailureCounter.
func (m *MemoryFailures) Fail(_ context.Context, now time.Time, keys []string) (time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next := make([]time.Time, len(keys))
	var wait time.Duration
	for i, k := range keys {
		tat, w := gcra(now, m.tats[k], m.limits)
		next[i] = tat
		wait = max(wait, w)
	}
	if wait > 0 {
		return wait, nil
	}
	for i, k := range keys {
		if _, ok := m.tats[k]; !ok && len(m.tats) >= m.maxKeys {
			m.evict(now)
		}
		m.tats[k] = next[i]
	}
	return 0, nil
}

// evict makes room for one key: every refilled bucket goes, else one
// arbitrary bucket.
func (m *MemoryFailures) evict(now time.Time) {
	for k, tat := range m.tats {
		if !tat.After(now) {
			delete(m.tats, k)
		}
	}
	for k := range m.tats {
		if len(m.tats) < m.maxKeys {
			return
		}
		delete(m.tats, k)
	}
}
