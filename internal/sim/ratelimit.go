package sim

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Instantly's documented per-workspace limits.
const (
	DefaultRPS = 100
	DefaultRPM = 6000
)

// meter is one workspace's rate-limit log and statistics. It has its own lock so limiting never
// waits for a handler holding the workspace state.
type meter struct {
	id       string // the workspace's id: meters are always locked in id order
	mu       sync.Mutex
	rps, rpm int
	log      ring // admitted request times, oldest first
	stats    WorkspaceStats
}

func newMeter(id string, rps, rpm int) *meter {
	return &meter{id: id, rps: rps, rpm: rpm, log: ring{max: max(rps, rpm)}}
}

// admitAll decides one request at now that counts against every given workspace
// (x-as-workspace traffic spends the budgets of both the sub and the admin workspace). Windows
// are half-open, (t-1s, t] and (t-60s, t], so "at most RPS in any sliding second" holds for
// every window. The request is admitted only if every window of every meter has room, and
// then it is logged in all of them; rejections consume no budget. Either way it counts as one
// request in each meter's statistics.
func admitAll(now time.Time, meters ...*meter) bool {
	ms := slices.Clone(meters)
	slices.SortFunc(ms, func(a, b *meter) int { return strings.Compare(a.id, b.id) })
	ms = slices.CompactFunc(ms, func(a, b *meter) bool { return a == b })
	for _, m := range ms {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	at := make([]int64, len(ms))
	ok := true
	for i, m := range ms {
		at[i] = m.clamp(now.UnixNano())
		ok = ok && m.hasRoom(at[i])
	}
	for i, m := range ms {
		m.stats.Requests++
		if !ok {
			m.stats.RateLimited++
			continue
		}
		m.record(at[i])
	}
	return ok
}

// clamp keeps the log sorted when the clock steps back.
func (m *meter) clamp(t int64) int64 {
	if last, ok := m.log.last(); ok && t < last {
		return last
	}
	return t
}

func (m *meter) hasRoom(t int64) bool {
	return m.log.countAfter(t-int64(time.Second)) < m.rps && m.log.countAfter(t-int64(time.Minute)) < m.rpm
}

func (m *meter) record(t int64) {
	m.log.push(t)
	m.stats.Admitted++
	// Every window's count peaks at one of its admissions, so checking the windows ending
	// here finds the maximum over all windows. The newest Admitted entries are those since
	// the last stats reset; older ones still spend budget but are not counted here.
	sinceReset := int(m.stats.Admitted)
	m.stats.MaxAdmitted1s = max(m.stats.MaxAdmitted1s, min(sinceReset, m.log.countAfter(t-int64(time.Second))))
	m.stats.MaxAdmitted60s = max(m.stats.MaxAdmitted60s, min(sinceReset, m.log.countAfter(t-int64(time.Minute))))
}

// ring keeps the newest max timestamps, ascending. It grows on demand, so idle workspaces
// cost nothing, up to max(RPS, RPM) entries, enough to answer both windows exactly.
type ring struct {
	buf  []int64
	head int // index of the oldest entry once full; 0 while growing
	max  int
}

func (r *ring) push(t int64) {
	if len(r.buf) < r.max {
		r.buf = append(r.buf, t)
		return
	}
	r.buf[r.head] = t
	r.head = (r.head + 1) % len(r.buf)
}

func (r *ring) at(i int) int64 { return r.buf[(r.head+i)%len(r.buf)] }

func (r *ring) last() (int64, bool) {
	if len(r.buf) == 0 {
		return 0, false
	}
	return r.at(len(r.buf) - 1), true
}

// countAfter returns how many kept timestamps are later than x.
func (r *ring) countAfter(x int64) int {
	n := len(r.buf)
	return n - sort.Search(n, func(i int) bool { return r.at(i) > x })
}
