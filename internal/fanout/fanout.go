// Package fanout runs one operation across many workspaces: a bounded pool
// (a per-call limit; a per-workspace limit across calls that follows the
// workspace's rate budget and measured upstream latency, so each workspace
// runs at its budget whatever the latency; and a process-wide cap), the
// context checked before every item, one result per workspace whatever
// happens, and a safety margin before the caller's deadline so unfinished
// workspaces are reported as not attempted or timed out instead of the whole
// call failing.
package fanout

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Outcome is what happened in one workspace.
type Outcome int

// Outcomes.
const (
	NotAttempted Outcome = iota // never started (deadline or cancellation first)
	Created
	Updated
	Deleted
	AlreadyDone // the workspace was already in the wanted state
	Skipped     // nothing to do by design (e.g. dry run, not a member)
	Read        // a read succeeded
	Failed
	TimedOut // started, cut by the deadline
)

func (o Outcome) String() string {
	return [...]string{"NOT_ATTEMPTED", "CREATED", "UPDATED", "DELETED", "ALREADY_DONE", "SKIPPED", "READ", "FAILED", "TIMED_OUT"}[o]
}

// Succeeded reports outcomes that count as success.
func (o Outcome) Succeeded() bool { return o == Created || o == Updated || o == Deleted || o == Read }

// Result is one workspace's result.
type Result[T any] struct {
	Workspace string
	Outcome   Outcome
	Err       error
	Value     T
	Duration  time.Duration
}

// Options tunes an Engine; zero values take the defaults (SetDefaults).
type Options struct {
	// Concurrency is the most items one Run works on at once (default 32).
	// RunOptions.Unbounded lifts it for one Run; Do never has it.
	Concurrency int
	// PerWorkspace caps the items in flight for one workspace across all
	// calls of this process (default 256).
	PerWorkspace int
	// Limit, when set, is a workspace's current in-flight limit (in
	// agencyd: its budget × measured latency, ratelimit.LatencyTracker),
	// clamped to [1, PerWorkspace]. It is read whenever an item of the
	// workspace starts or finishes, so a change applies to the items that
	// start after it; items already running are never interrupted. It must
	// be cheap and must not call the Engine. Nil means PerWorkspace.
	Limit func(workspace string) int
	// MaxInflight caps the items in flight across every call of this
	// process (default 2000).
	MaxInflight int
	// Margin is kept before the caller's deadline to collect and return
	// results: 10 % of the time left, clamped to [MinMargin, MaxMargin].
	MinMargin, MaxMargin time.Duration
	// Metrics, when set, counts every item's outcome, labelled with the
	// method Method names from the item's context (nil: "unknown"). It
	// must return a bounded set of names (RPC names, not ids).
	Metrics *Metrics
	Method  func(ctx context.Context) string
}

// Engine runs fan-outs. It is safe for concurrent use.
type Engine struct {
	opts Options

	mu     sync.Mutex // guards ws and every sem
	ws     map[string]*wsSlot
	global sem // MaxInflight
}

// sem is a FIFO semaphore whose limit is passed at every acquire and
// release, so a limit that changes takes effect for the next items to
// start (a channel's capacity cannot change). Guarded by Engine.mu.
type sem struct {
	inflight int
	waiters  []chan struct{} // closed when granted, in arrival order
}

// grant starts queued waiters while the limit allows.
func (s *sem) grant(limit int) {
	for len(s.waiters) > 0 && s.inflight < limit {
		s.inflight++
		close(s.waiters[0])
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
	}
}

// wsSlot is one workspace's semaphore; refs counts the items holding or
// waiting for it, so an idle workspace is forgotten.
type wsSlot struct {
	sem
	refs int
}

// SetDefaults gives every unset (zero or negative) field its default: the
// one place the engine's defaults live (agencyd's flags take theirs from
// here).
func (o *Options) SetDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.PerWorkspace <= 0 {
		o.PerWorkspace = 256
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = 2000
	}
	if o.MinMargin <= 0 {
		o.MinMargin = 50 * time.Millisecond
	}
	if o.MaxMargin <= 0 {
		o.MaxMargin = 2 * time.Second
	}
}

// New returns an Engine; unset options take their defaults (SetDefaults).
func New(opts Options) *Engine {
	opts.SetDefaults()
	return &Engine{opts: opts, ws: map[string]*wsSlot{}}
}

// limit is ws's current per-workspace limit.
func (e *Engine) limit(ws string) int {
	if e.opts.Limit == nil {
		return e.opts.PerWorkspace
	}
	return min(max(e.opts.Limit(ws), 1), e.opts.PerWorkspace)
}

// acquire takes one unit of s under limit, waiting in line, or returns
// ctx's error. The caller holds e.mu; acquire returns with it held.
func (e *Engine) acquire(ctx context.Context, s *sem, limit int) error {
	s.grant(limit) // a raised limit also starts those already waiting
	if len(s.waiters) == 0 && s.inflight < limit {
		s.inflight++
		return nil
	}
	ch := make(chan struct{})
	s.waiters = append(s.waiters, ch)
	e.mu.Unlock()
	select {
	case <-ch:
		e.mu.Lock()
		return nil
	case <-ctx.Done():
	}
	e.mu.Lock()
	select {
	case <-ch:
		return nil // granted meanwhile: the caller sees ctx and releases it
	default:
	}
	if i := slices.Index(s.waiters, ch); i >= 0 {
		s.waiters = slices.Delete(s.waiters, i, i+1)
	}
	return ctx.Err()
}

// enter waits for a unit of ws's semaphore and then of the process-wide
// one; leave gives both back. Workspace first: an item of a busy workspace
// must not hold a process-wide unit while it waits for its own.
func (e *Engine) enter(ctx context.Context, ws string) (*wsSlot, error) {
	limit := e.limit(ws) // outside e.mu: Limit may take its own locks
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.ws[ws]
	if !ok {
		s = &wsSlot{}
		e.ws[ws] = s
	}
	s.refs++
	if err := e.acquire(ctx, &s.sem, limit); err != nil {
		e.unref(ws, s)
		return nil, err
	}
	if err := e.acquire(ctx, &e.global, e.opts.MaxInflight); err != nil {
		s.inflight--
		s.grant(limit)
		e.unref(ws, s)
		return nil, err
	}
	return s, nil
}

func (e *Engine) leave(ws string, s *wsSlot) {
	limit := e.limit(ws)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.global.inflight--
	e.global.grant(e.opts.MaxInflight)
	s.inflight--
	s.grant(limit)
	e.unref(ws, s)
}

// unref forgets an idle workspace; the caller holds e.mu.
func (e *Engine) unref(ws string, s *wsSlot) {
	if s.refs--; s.refs == 0 {
		delete(e.ws, ws)
	}
}

// Func does the work for one workspace.
type Func[T any] func(ctx context.Context, workspace string) (T, Outcome, error)

// RunOptions tunes one Run.
type RunOptions struct {
	// Unbounded lifts Options.Concurrency for this Run: its items are held
	// only by their workspace's limit and MaxInflight, i.e. by the rate
	// budgets. For durable operations, whose many items (possibly several
	// of one workspace) should go as fast as the budgets allow. Such a Run
	// starts a goroutine per item up front (items waiting for a slot cost
	// only their stack); a caller with very many items should feed them to
	// Do from a pool of its own instead.
	Unbounded bool
}

// Run calls fn once per workspace and returns one result per workspace, in
// the order given, at most Options.Concurrency at once. It returns when
// every started item has finished; no goroutine outlives it.
func Run[T any](ctx context.Context, e *Engine, workspaces []string, fn Func[T]) []Result[T] {
	return RunWith(ctx, e, workspaces, RunOptions{}, fn)
}

// RunWith is Run with options. A workspace may be listed more than once:
// each entry is one item with its own result.
func RunWith[T any](ctx context.Context, e *Engine, workspaces []string, opts RunOptions, fn Func[T]) []Result[T] {
	results := make([]Result[T], len(workspaces))
	for i, w := range workspaces {
		results[i] = Result[T]{Workspace: w, Outcome: NotAttempted, Err: ErrNotAttempted}
	}
	runCtx, cancel := e.withMargin(ctx)
	defer cancel()
	bound := e.opts.Concurrency
	if opts.Unbounded {
		bound = len(workspaces)
	}
	callSem := make(chan struct{}, max(bound, 1))
	var wg sync.WaitGroup
	launched := 0
launch:
	for i, w := range workspaces {
		select {
		case <-runCtx.Done():
			break launch
		case callSem <- struct{}{}:
		}
		if runCtx.Err() != nil {
			<-callSem
			break
		}
		launched++
		wg.Go(func() {
			defer func() { <-callSem }()
			results[i] = one(runCtx, e, w, fn)
		})
	}
	wg.Wait()
	for range workspaces[launched:] {
		e.observe(ctx, NotAttempted)
	}
	return results
}

// Do runs fn for one item of workspace under the workspace's limit and
// MaxInflight, with no per-call bound and no deadline margin: for callers
// that schedule items themselves, such as durable operations running many
// items of one workspace concurrently. It blocks until the item may start;
// if ctx ends first the result is NotAttempted. A panic in fn fails the
// item.
func Do[T any](ctx context.Context, e *Engine, workspace string, fn Func[T]) Result[T] {
	return one(ctx, e, workspace, fn)
}

// ErrNotAttempted is the error of a workspace that was never started. It
// wraps context.DeadlineExceeded, so it maps to DEADLINE_EXCEEDED like any
// deadline, never to the INTERNAL of an unknown error.
var ErrNotAttempted = fmt.Errorf("fanout: not attempted before the deadline: %w", context.DeadlineExceeded)

// one runs fn for one workspace under its per-workspace and process-wide
// slots. A panic in fn fails that workspace only.
func one[T any](ctx context.Context, e *Engine, ws string, fn Func[T]) (res Result[T]) {
	defer func() { e.observe(ctx, res.Outcome) }() // runs last: after the recover below
	res = Result[T]{Workspace: ws, Outcome: NotAttempted, Err: ErrNotAttempted}
	s, err := e.enter(ctx, ws)
	if err != nil {
		return res
	}
	defer e.leave(ws, s)
	if ctx.Err() != nil {
		return res
	}
	start := time.Now()
	defer func() {
		res.Duration = time.Since(start)
		if p := recover(); p != nil {
			res.Outcome, res.Err = Failed, fmt.Errorf("fanout: panic in %s: %v", ws, p)
		}
	}()
	v, outcome, err := fn(ctx, ws)
	res.Value, res.Outcome, res.Err = v, outcome, err
	switch {
	case err != nil && ctx.Err() != nil:
		res.Outcome = TimedOut
	case err != nil && outcome != Skipped:
		// Skipped may carry an explanation; any other error is a failure.
		res.Outcome = Failed
	}
	return res
}

// withMargin keeps a slice of the caller's deadline for reporting.
func (e *Engine) withMargin(ctx context.Context) (context.Context, context.CancelFunc) {
	dl, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	margin := min(max(time.Until(dl)/10, e.opts.MinMargin), e.opts.MaxMargin)
	return context.WithDeadline(ctx, dl.Add(-margin))
}
