// Package fanout runs one operation across many workspaces: a bounded pool
// (a per-call limit, and a process-wide limit per workspace so concurrent
// calls do not pile onto one workspace), the context checked before every
// item, one result per workspace whatever happens, and a safety margin
// before the caller's deadline so unfinished workspaces are reported as not
// attempted or timed out instead of the whole call failing.
package fanout

import (
	"context"
	"fmt"
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

// Options tunes an Engine; zero values take the defaults.
type Options struct {
	// Concurrency is the most workspaces one call works on at once
	// (default 16).
	Concurrency int
	// PerWorkspace is the most items in flight for one workspace across all
	// calls of this process (default 2).
	PerWorkspace int
	// Margin is kept before the caller's deadline to collect and return
	// results: 10 % of the time left, clamped to [MinMargin, MaxMargin].
	MinMargin, MaxMargin time.Duration
}

// Engine runs fan-outs. It is safe for concurrent use.
type Engine struct {
	opts Options
	mu   sync.Mutex
	ws   map[string]*wsSlot
}

type wsSlot struct {
	sem  chan struct{}
	refs int
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.PerWorkspace <= 0 {
		opts.PerWorkspace = 2
	}
	if opts.MinMargin <= 0 {
		opts.MinMargin = 50 * time.Millisecond
	}
	if opts.MaxMargin <= 0 {
		opts.MaxMargin = 2 * time.Second
	}
	return &Engine{opts: opts, ws: map[string]*wsSlot{}}
}

// slot returns the workspace's process-wide semaphore; release with unref.
func (e *Engine) slot(ws string) *wsSlot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.ws[ws]
	if !ok {
		s = &wsSlot{sem: make(chan struct{}, e.opts.PerWorkspace)}
		e.ws[ws] = s
	}
	s.refs++
	return s
}

func (e *Engine) unref(ws string, s *wsSlot) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if s.refs--; s.refs == 0 {
		delete(e.ws, ws)
	}
}

// Func does the work for one workspace.
type Func[T any] func(ctx context.Context, workspace string) (T, Outcome, error)

// Run calls fn once per workspace and returns one result per workspace, in
// the order given. It returns when every started item has finished; no
// goroutine outlives it.
func Run[T any](ctx context.Context, e *Engine, workspaces []string, fn Func[T]) []Result[T] {
	results := make([]Result[T], len(workspaces))
	for i, w := range workspaces {
		results[i] = Result[T]{Workspace: w, Outcome: NotAttempted, Err: ErrNotAttempted}
	}
	runCtx, cancel := e.withMargin(ctx)
	defer cancel()
	sem := make(chan struct{}, e.opts.Concurrency)
	var wg sync.WaitGroup
launch:
	for i, w := range workspaces {
		select {
		case <-runCtx.Done():
			break launch
		case sem <- struct{}{}:
		}
		if runCtx.Err() != nil {
			<-sem
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			results[i] = one(runCtx, e, w, fn)
		})
	}
	wg.Wait()
	return results
}

// ErrNotAttempted is the error of a workspace that was never started.
var ErrNotAttempted = fmt.Errorf("fanout: not attempted before the deadline")

// one runs fn for one workspace under its per-workspace slot. A panic in
// fn fails that workspace only.
func one[T any](ctx context.Context, e *Engine, ws string, fn Func[T]) (res Result[T]) {
	res = Result[T]{Workspace: ws, Outcome: NotAttempted, Err: ErrNotAttempted}
	s := e.slot(ws)
	defer e.unref(ws, s)
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return res
	}
	defer func() { <-s.sem }()
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
