package operations

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// Executor does the items of one entry: for each item still without a
// result (Job.Start, or Job.Pending) it does the work and records the result
// (Job.Record). It must check Job.Cancelled between items and stop early
// when its context ends; items it leaves are handed to another worker.
type Executor interface {
	Run(ctx context.Context, job *Job)
}

// ExecutorFunc adapts a function to Executor.
type ExecutorFunc func(ctx context.Context, job *Job)

// Run implements Executor.
func (f ExecutorFunc) Run(ctx context.Context, job *Job) { f(ctx, job) }

// Sealer seals results that hold a secret (vault.Keyring).
type Sealer interface {
	Seal(plaintext, aad []byte) ([]byte, error)
	Open(sealed, aad []byte) ([]byte, error)
}

// Options tunes a Manager; zero values take the defaults.
type Options struct {
	// Consumer names this replica in the queue (default: random).
	Consumer string
	// MaxEntries bounds the entries this replica works on at once
	// (default 256); the items inside are bounded by the fan-out engine.
	MaxEntries int
	// MaxAttempts: an entry delivered more often (its workers kept
	// dying) has its remaining items failed instead of looping (default 5).
	MaxAttempts int64
	// ClaimTimeout must match the backend's: heartbeats go out at a third
	// of it (default 30s).
	ClaimTimeout time.Duration
	// ShutdownTimeout bounds how long Run finishes held entries after its
	// context ends before handing the rest back (default 10s).
	ShutdownTimeout time.Duration
	// OnEnd, when set, is called once per operation, by the worker whose
	// result ended it (e.g. to append the audit event of its outcome).
	OnEnd func(ctx context.Context, rec *Record, st *Status)
	// Metrics, when set, counts operations created and ended and the
	// entries this replica works on (NewMetrics).
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Manager creates operations and, in Run, works on every replica's queue.
type Manager struct {
	backend Backend
	sealer  Sealer
	opts    Options

	mu    sync.Mutex
	kinds map[string]Executor
	recs  map[string]*Record // immutable records by id, for workers
}

// NewManager returns a Manager over backend. sealer may be nil only when
// no executor records secrets.
func NewManager(backend Backend, sealer Sealer, opts Options) *Manager {
	if opts.Consumer == "" {
		opts.Consumer = "agencyd-" + NewID()[:8]
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 256
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.ClaimTimeout <= 0 {
		opts.ClaimTimeout = DefaultClaimTimeout
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Manager{backend: backend, sealer: sealer, opts: opts, kinds: map[string]Executor{}, recs: map[string]*Record{}}
}

// Backend returns the manager's backend.
func (m *Manager) Backend() Backend { return m.backend }

// Register sets the executor of operations started by method.
func (m *Manager) Register(method string, ex Executor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kinds[method] = ex
}

func (m *Manager) executor(method string) Executor {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kinds[method]
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns a random operation id (26 characters of [a-z2-7]).
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// Name is the resource name of an operation id.
func Name(id string) string { return "operations/" + id }

// ParseName returns the id of "operations/{id}", or false.
func ParseName(name string) (string, bool) {
	id, ok := strings.CutPrefix(name, "operations/")
	if !ok || len(id) != 26 {
		return "", false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", false
		}
	}
	return id, true
}

// Create stores a new operation (ID and CreateTime are set when empty) and
// queues its work.
func (m *Manager) Create(ctx context.Context, rec *Record) error {
	if rec.ID == "" {
		rec.ID = NewID()
	}
	if rec.CreateTime.IsZero() {
		// Milliseconds: the list order's resolution in every backend.
		rec.CreateTime = m.opts.Now().UTC().Truncate(time.Millisecond)
	}
	rec.Total = 0
	for i := range rec.Entries {
		rec.Entries[i].Offset = rec.Total
		rec.Total += rec.Entries[i].Len()
	}
	if err := m.backend.Create(ctx, rec); err != nil {
		return err
	}
	m.opts.Metrics.onCreate(rec.Method)
	return nil
}

// Wait returns the operation once it has ended or timeout has passed
// (whichever is first), polling its state.
func (m *Manager) Wait(ctx context.Context, id string, timeout time.Duration) (*Record, *Status, error) {
	deadline := time.Now().Add(timeout)
	delay := 50 * time.Millisecond
	for {
		rec, st, err := m.backend.Get(ctx, id)
		if err != nil || !st.EndTime.IsZero() || !time.Now().Before(deadline) {
			return rec, st, err
		}
		t := time.NewTimer(min(delay, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return rec, st, nil
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// aad binds a sealed result to its operation and item.
func aad(id string, index int64) []byte { return fmt.Appendf(nil, "operations/%s#%d", id, index) }

// encode serializes a result, sealing it when it holds a secret.
func (m *Manager) encode(id string, index int64, r *agencyv1.WorkspaceResult) ([]byte, error) {
	data, err := proto.Marshal(r)
	if err != nil {
		return nil, err
	}
	if r.GetCreatedApiKey().GetSecret() == "" {
		return append([]byte{'p'}, data...), nil
	}
	if m.sealer == nil {
		return nil, errors.New("operations: a result holds a secret and no sealer is configured")
	}
	sealed, err := m.sealer.Seal(data, aad(id, index))
	if err != nil {
		return nil, err
	}
	return append([]byte{'s'}, sealed...), nil
}

// Decode opens a stored result.
func (m *Manager) Decode(id string, index int64, data []byte) (*agencyv1.WorkspaceResult, error) {
	if len(data) == 0 {
		return nil, errors.New("operations: empty result")
	}
	body := data[1:]
	if data[0] == 's' {
		if m.sealer == nil {
			return nil, errors.New("operations: sealed result and no sealer")
		}
		var err error
		if body, err = m.sealer.Open(body, aad(id, index)); err != nil {
			return nil, fmt.Errorf("operations: opening result %d: %w", index, err)
		}
	}
	r := &agencyv1.WorkspaceResult{}
	if err := proto.Unmarshal(body, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Failed reports the outcomes that count as failed items.
func Failed(o agencyv1.FanoutOutcome) bool {
	switch o {
	case agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_TIMED_OUT,
		agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED:
		return true
	}
	return false
}

// record stores one item's result (first write wins).
func (m *Manager) record(ctx context.Context, rec *Record, entry int, index int64, r *agencyv1.WorkspaceResult) error {
	data, err := m.encode(rec.ID, index, r)
	if err != nil {
		return err
	}
	_, ended, err := m.backend.Record(ctx, rec.ID, ItemResult{Index: index, Entry: entry, Outcome: outcomeName(r.GetOutcome()),
		Failed: Failed(r.GetOutcome()), Data: data})
	if ended && (m.opts.OnEnd != nil || m.opts.Metrics != nil) {
		if _, st, gerr := m.backend.Get(ctx, rec.ID); gerr == nil {
			m.opts.Metrics.onEnd(rec.Method, st)
			if m.opts.OnEnd != nil {
				m.opts.OnEnd(ctx, rec, st)
			}
		}
	}
	return err
}

func outcomeName(o agencyv1.FanoutOutcome) string {
	return strings.TrimPrefix(o.String(), "FANOUT_OUTCOME_")
}

// Run works on the queue until ctx ends, then stops taking work, lets held
// entries finish for up to ShutdownTimeout, and hands back what is left.
func (m *Manager) Run(ctx context.Context) error {
	w := &worker{m: m, held: map[string]bool{}, slots: make(chan struct{}, m.opts.MaxEntries)}
	// Jobs outlive ctx by the shutdown timeout.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeats(jobCtx)
	}()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1 + cap(w.slots) - len(w.slots)
		ds, err := m.backend.Take(ctx, m.opts.Consumer, min(free, 64))
		<-w.slots
		if err != nil {
			if ctx.Err() == nil {
				m.opts.Logger.Warn("operations: taking work failed; retrying", "error", err.Error())
				sleep(ctx, backoff)
				backoff = min(backoff*2, 5*time.Second)
			}
			continue
		}
		backoff = 50 * time.Millisecond
		for _, d := range ds {
			w.slots <- struct{}{}
			w.hold(d.ID, true)
			w.wg.Go(func() {
				defer func() { <-w.slots }()
				w.process(jobCtx, ctx, d)
			})
		}
	}
	// Draining: finish held entries within the shutdown timeout.
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(m.opts.ShutdownTimeout):
		cancelJobs()
		<-done
	}
	cancelJobs()
	<-hbDone
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

type worker struct {
	m     *Manager
	wg    sync.WaitGroup
	slots chan struct{}
	mu    sync.Mutex
	held  map[string]bool
}

func (w *worker) hold(id string, on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if on {
		w.held[id] = true
	} else {
		delete(w.held, id)
	}
}

// heartbeats keeps held entries from being claimed by other replicas.
func (w *worker) heartbeats(ctx context.Context) {
	t := time.NewTicker(w.m.opts.ClaimTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		ids := make([]string, 0, len(w.held))
		for id := range w.held {
			ids = append(ids, id)
		}
		w.mu.Unlock()
		if err := w.m.backend.Heartbeat(ctx, w.m.opts.Consumer, ids); err != nil && ctx.Err() == nil {
			w.m.opts.Logger.Warn("operations: heartbeat failed", "error", err.Error())
		}
	}
}

// record returns the operation's record, cached (records never change).
func (m *Manager) recordOf(ctx context.Context, id string) (*Record, error) {
	m.mu.Lock()
	rec, ok := m.recs[id]
	m.mu.Unlock()
	if ok {
		return rec, nil
	}
	rec, _, err := m.backend.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if len(m.recs) > 1024 {
		clear(m.recs)
	}
	m.recs[id] = rec
	m.mu.Unlock()
	return rec, nil
}

// process runs one delivered entry. jobCtx bounds the work; runCtx ending
// means shutdown: what is left is handed back rather than failed.
func (w *worker) process(jobCtx, runCtx context.Context, d Delivery) {
	m := w.m
	defer w.hold(d.ID, false)
	m.opts.Metrics.entry(1)
	defer m.opts.Metrics.entry(-1)
	log := m.opts.Logger.With("operation", Name(d.Op), "entry", d.Entry, "attempt", d.Attempt)
	rec, err := m.recordOf(jobCtx, d.Op)
	if errors.Is(err, ErrNotFound) {
		_ = m.backend.Ack(jobCtx, []string{d.ID}) // deleted or expired
		return
	}
	if err != nil || d.Entry < 0 || d.Entry >= len(rec.Entries) {
		log.Warn("operations: cannot load the operation; leaving the entry to be claimed again", "error", fmt.Sprint(err))
		return
	}
	job := &Job{m: m, Rec: rec, Entry: rec.Entries[d.Entry], EntryIndex: d.Entry, Attempt: d.Attempt}
	pending, err := job.loadPending(jobCtx)
	if err != nil {
		log.Warn("operations: cannot read results; leaving the entry to be claimed again", "error", err.Error())
		return
	}
	if len(pending) > 0 {
		ex := m.executor(rec.Method)
		switch {
		case ex == nil:
			job.FailAll(jobCtx, codes.Unimplemented, "no executor for "+rec.Method+" on this replica")
		case d.Attempt > m.opts.MaxAttempts:
			job.FailAll(jobCtx, codes.Aborted, fmt.Sprintf("abandoned after %d attempts (workers kept stopping)", d.Attempt-1))
		default:
			_ = m.backend.Running(jobCtx, rec.ID, d.Entry, int64(len(pending)))
			if p := runSafely(context.WithValue(jobCtx, methodKey{}, rec.Method), ex, job); p != nil {
				log.Error("operations: executor panicked; the entry's remaining items fail", "panic", fmt.Sprint(p))
				job.FailAll(jobCtx, codes.Internal, "internal error")
			}
		}
	}
	left, err := job.loadPending(context.WithoutCancel(jobCtx))
	switch {
	case err != nil:
		log.Warn("operations: cannot confirm results; leaving the entry to be claimed again", "error", err.Error())
		return
	case len(left) > 0 && (runCtx.Err() != nil || jobCtx.Err() != nil):
		// Shutting down: another replica takes it over now.
		ctx := context.WithoutCancel(jobCtx)
		_ = m.backend.Running(ctx, rec.ID, d.Entry, 0)
		if err := m.backend.Release(ctx, m.opts.Consumer, []string{d.ID}); err != nil {
			log.Warn("operations: handing back an entry failed; it will be claimed after the claim timeout", "error", err.Error())
		}
		return
	case len(left) > 0:
		job.FailAll(jobCtx, codes.Internal, "the item ended without a result")
	}
	ctx := context.WithoutCancel(jobCtx)
	_ = m.backend.Running(ctx, rec.ID, d.Entry, 0)
	if err := m.backend.Ack(ctx, []string{d.ID}); err != nil {
		log.Warn("operations: acknowledging an entry failed; it may run again (harmless)", "error", err.Error())
	}
}

// runSafely runs the executor, turning a panic into a value: one bad entry
// must not take the replica (and every entry it holds) down.
func runSafely(ctx context.Context, ex Executor, job *Job) (p any) {
	defer func() { p = recover() }()
	ex.Run(ctx, job)
	return nil
}

// Job is one entry being worked on.
type Job struct {
	m          *Manager
	Rec        *Record
	Entry      Entry
	EntryIndex int
	Attempt    int64

	mu         sync.Mutex
	pending    []int64
	cancelSeen time.Time
	cancelled  bool
}

// Item is one item of a job: its index and, for operations over people,
// the person's index in the request.
type Item struct {
	Index  int64
	Person int32 // -1 for operations with one item per workspace
}

func (j *Job) item(index int64) Item {
	k := index - j.Entry.Offset
	if len(j.Entry.People) == 0 {
		return Item{Index: index, Person: -1}
	}
	return Item{Index: index, Person: j.Entry.People[k]}
}

func (j *Job) loadPending(ctx context.Context) ([]int64, error) {
	all := make([]int64, j.Entry.Len())
	for i := range all {
		all[i] = j.Entry.Offset + int64(i)
	}
	have, err := j.m.backend.Results(ctx, j.Rec.ID, all)
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, i := range all {
		if _, ok := have[i]; !ok {
			out = append(out, i)
		}
	}
	j.mu.Lock()
	j.pending = out
	j.mu.Unlock()
	return out, nil
}

// Pending returns the items of the entry that have no result yet (those an
// earlier, interrupted attempt finished are left out).
func (j *Job) Pending() []Item {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Item, len(j.pending))
	for i, x := range j.pending {
		out[i] = j.item(x)
	}
	return out
}

// Start is how an executor begins: the items to do (Pending), or none
// when the operation was cancelled, its pending items then recorded
// NOT_ATTEMPTED.
func (j *Job) Start(ctx context.Context) []Item {
	pending := j.Pending()
	if len(pending) > 0 && j.Cancelled(ctx) {
		j.CancelRest(ctx)
		return nil
	}
	return pending
}

// Record stores an item's result (first write wins). The workspace and
// the operation's dry-run flag are filled in.
func (j *Job) Record(ctx context.Context, it Item, r *agencyv1.WorkspaceResult) error {
	r.Workspace, r.DryRun = j.Entry.Workspace, j.Rec.DryRun
	return j.m.record(context.WithoutCancel(ctx), j.Rec, j.EntryIndex, it.Index, r)
}

// Cancelled reports whether CancelOperation was called (checked at most
// every 250 ms).
func (j *Job) Cancelled(ctx context.Context) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cancelled || time.Since(j.cancelSeen) < 250*time.Millisecond {
		return j.cancelled
	}
	j.cancelSeen = time.Now()
	if c, err := j.m.backend.CancelRequested(ctx, j.Rec.ID); err == nil && c {
		j.cancelled = true
	}
	return j.cancelled
}

// SetIntent records that the item's write may reach upstream from now on,
// and returns when that was first recorded (an earlier attempt's time, if
// there was one).
func (j *Job) SetIntent(ctx context.Context, it Item) (time.Time, error) {
	return j.m.backend.SetIntent(ctx, j.Rec.ID, it.Index, j.m.opts.Now().UTC())
}

// Intent returns when an attempt first recorded the item's intent, or zero.
func (j *Job) Intent(ctx context.Context, it Item) (time.Time, error) {
	return j.m.backend.Intent(ctx, j.Rec.ID, it.Index)
}

// CancelledBeforeStart is the message of an item a cancel stopped before
// it started, whichever executor records it.
const CancelledBeforeStart = "the operation was cancelled before this item started"

// CancelRest records every item without a result as NOT_ATTEMPTED
// (cancelled); call it when Cancelled reports true.
func (j *Job) CancelRest(ctx context.Context) {
	for _, it := range j.Pending() {
		_ = j.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED,
			Status: status.New(codes.Canceled, CancelledBeforeStart).Proto()})
	}
}

// FailAll records every pending item as failed with code and message.
func (j *Job) FailAll(ctx context.Context, code codes.Code, msg string) {
	for _, it := range j.Pending() {
		_ = j.Record(ctx, it, &agencyv1.WorkspaceResult{Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED,
			Status: status.New(code, msg).Proto()})
	}
}
