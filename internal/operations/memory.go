package operations

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Memory is the embedded backend: operations live in this process and are
// lost when it exits (the README says so); otherwise it behaves like Redis,
// claim timeout and retention included, and passes the same suite.
type Memory struct {
	claimTimeout time.Duration
	retention    time.Duration
	now          func() time.Time

	mu     sync.Mutex
	ops    map[string]*memOp
	queue  []Delivery             // not yet delivered, FIFO
	held   map[string]*memPending // delivered, not acknowledged
	seq    int64
	notify chan struct{} // closed and replaced when tasks arrive
}

type memOp struct {
	rec     *Record
	status  Status
	results map[int64][]byte
	failed  []int64 // sorted
	running map[int]int64
	intents map[int64]time.Time
}

type memPending struct {
	d        Delivery
	consumer string
	seen     time.Time
}

// MemoryOptions tunes the embedded backend; zero values take the defaults.
type MemoryOptions struct {
	ClaimTimeout time.Duration // default 30s
	Retention    time.Duration // default 7 days
	Now          func() time.Time
}

// NewMemory returns an empty embedded backend.
func NewMemory(opts MemoryOptions) *Memory {
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = DefaultClaimTimeout
	}
	if opts.Retention <= 0 {
		opts.Retention = DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{claimTimeout: opts.ClaimTimeout, retention: opts.Retention, now: opts.Now,
		ops: map[string]*memOp{}, held: map[string]*memPending{}, notify: make(chan struct{})}
}

// Defaults shared by the backends.
const (
	DefaultClaimTimeout = 30 * time.Second
	DefaultRetention    = 7 * 24 * time.Hour
)

func (m *Memory) op(id string) (*memOp, error) {
	o, ok := m.ops[id]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if end := o.status.EndTime; !end.IsZero() && m.now().Sub(end) > m.retention {
		delete(m.ops, id)
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return o, nil
}

// Create implements Backend.
func (m *Memory) Create(_ context.Context, rec *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.ops[rec.ID]; ok {
		return fmt.Errorf("operations: id %s already used", rec.ID)
	}
	c := *rec
	c.Entries = slices.Clone(rec.Entries)
	o := &memOp{rec: &c, status: Status{Outcomes: map[string]int64{}, UpdateTime: rec.CreateTime},
		results: map[int64][]byte{}, running: map[int]int64{}, intents: map[int64]time.Time{}}
	if rec.Total == 0 {
		o.status.EndTime = rec.CreateTime
	}
	m.ops[rec.ID] = o
	for i := range rec.Entries {
		m.seq++
		m.queue = append(m.queue, Delivery{Task: Task{Op: rec.ID, Entry: i}, ID: strconv.FormatInt(m.seq, 10)})
	}
	m.wake()
	return nil
}

func (m *Memory) wake() {
	close(m.notify)
	m.notify = make(chan struct{})
}

// Get implements Backend.
func (m *Memory) Get(_ context.Context, id string) (*Record, *Status, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return nil, nil, err
	}
	st := o.status
	st.Outcomes = maps.Clone(o.status.Outcomes)
	for _, n := range o.running {
		st.Running += n
	}
	return o.rec, &st, nil
}

// List implements Backend.
func (m *Memory) List(_ context.Context, q ListQuery) ([]*Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []*Record
	for id := range m.ops {
		if o, err := m.op(id); err == nil {
			all = append(all, o.rec)
		}
	}
	slices.SortFunc(all, newestFirst)
	var after *Record
	if q.After != nil {
		after = &Record{ID: q.After.ID, CreateTime: q.After.CreateTime}
	}
	var out []*Record
	for _, r := range all {
		if after != nil && newestFirst(after, r) >= 0 {
			continue // at or before the cursor
		}
		if q.Match == nil || q.Match(r) {
			out = append(out, r)
			if len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

// newestFirst orders records by creation time, then id, descending.
func newestFirst(a, b *Record) int {
	if c := b.CreateTime.Compare(a.CreateTime); c != 0 {
		return c
	}
	switch {
	case a.ID > b.ID:
		return -1
	case a.ID < b.ID:
		return 1
	}
	return 0
}

// Cancel implements Backend.
func (m *Memory) Cancel(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return err
	}
	if !o.status.EndTime.IsZero() {
		return ErrFinished
	}
	o.status.CancelRequested = true
	o.status.UpdateTime = m.now()
	return nil
}

// CancelRequested implements Backend.
func (m *Memory) CancelRequested(_ context.Context, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return false, err
	}
	return o.status.CancelRequested, nil
}

// Delete implements Backend.
func (m *Memory) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return err
	}
	if o.status.EndTime.IsZero() {
		return ErrRunning
	}
	delete(m.ops, id)
	return nil
}

// Record implements Backend.
func (m *Memory) Record(_ context.Context, id string, r ItemResult) (stored, ended bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return false, false, err
	}
	if _, ok := o.results[r.Index]; ok {
		return false, false, nil
	}
	o.results[r.Index] = slices.Clone(r.Data)
	if r.Failed {
		o.status.Failed++
		i, _ := slices.BinarySearch(o.failed, r.Index)
		o.failed = slices.Insert(o.failed, i, r.Index)
	} else {
		o.status.Done++
	}
	o.status.Outcomes[r.Outcome]++
	if n, ok := o.running[r.Entry]; ok && n > 0 {
		o.running[r.Entry] = n - 1
	}
	o.status.UpdateTime = m.now()
	if o.status.Finished(o.rec.Total) && o.status.EndTime.IsZero() {
		o.status.EndTime = o.status.UpdateTime
		clear(o.running)
		return true, true, nil
	}
	return true, false, nil
}

// Results implements Backend.
func (m *Memory) Results(_ context.Context, id string, indices []int64) (map[int64][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return nil, err
	}
	out := make(map[int64][]byte, len(indices))
	for _, i := range indices {
		if d, ok := o.results[i]; ok {
			out[i] = slices.Clone(d)
		}
	}
	return out, nil
}

// FailedItems implements Backend.
func (m *Memory) FailedItems(_ context.Context, id string, after int64, limit int) ([]int64, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return nil, 0, err
	}
	i, found := slices.BinarySearch(o.failed, after)
	if found {
		i++
	}
	end := min(len(o.failed), i+limit)
	return slices.Clone(o.failed[i:end]), int64(len(o.failed)), nil
}

// Running implements Backend.
func (m *Memory) Running(_ context.Context, id string, entry int, items int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return err
	}
	if items <= 0 {
		delete(o.running, entry)
	} else {
		o.running[entry] = items
	}
	return nil
}

// RunningEntries implements Backend.
func (m *Memory) RunningEntries(_ context.Context, id string) (map[int]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return nil, err
	}
	out := make(map[int]bool, len(o.running))
	for e := range o.running {
		out[e] = true
	}
	return out, nil
}

// SetIntent implements Backend.
func (m *Memory) SetIntent(_ context.Context, id string, index int64, at time.Time) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return time.Time{}, err
	}
	if t, ok := o.intents[index]; ok {
		return t, nil
	}
	o.intents[index] = at
	return at, nil
}

// Intent implements Backend.
func (m *Memory) Intent(_ context.Context, id string, index int64) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, err := m.op(id)
	if err != nil {
		return time.Time{}, err
	}
	return o.intents[index], nil
}

// Take implements Backend.
func (m *Memory) Take(ctx context.Context, consumer string, limit int) ([]Delivery, error) {
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		out := m.takeLocked(consumer, limit)
		wait := m.notify
		m.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, nil
		case <-wait:
		}
	}
}

func (m *Memory) takeLocked(consumer string, limit int) []Delivery {
	now := m.now()
	var out []Delivery
	ids := slices.Sorted(maps.Keys(m.held))
	for _, id := range ids {
		if len(out) == limit {
			return out
		}
		p := m.held[id]
		if now.Sub(p.seen) > m.claimTimeout {
			p.consumer, p.seen = consumer, now
			p.d.Attempt++
			out = append(out, p.d)
		}
	}
	for len(out) < limit && len(m.queue) > 0 {
		d := m.queue[0]
		m.queue = m.queue[1:]
		d.Attempt = 1
		m.held[d.ID] = &memPending{d: d, consumer: consumer, seen: now}
		out = append(out, d)
	}
	return out
}

// Heartbeat implements Backend.
func (m *Memory) Heartbeat(_ context.Context, consumer string, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if p, ok := m.held[id]; ok && p.consumer == consumer {
			p.seen = m.now()
		}
	}
	return nil
}

// Ack implements Backend.
func (m *Memory) Ack(_ context.Context, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		delete(m.held, id)
	}
	return nil
}

// Release implements Backend.
func (m *Memory) Release(_ context.Context, consumer string, ids []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if p, ok := m.held[id]; ok && p.consumer == consumer {
			delete(m.held, id)
			m.seq++
			m.queue = append(m.queue, Delivery{Task: p.d.Task, ID: strconv.FormatInt(m.seq, 10)})
		}
	}
	m.wake()
	return nil
}
