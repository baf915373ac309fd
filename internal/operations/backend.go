// Package operations runs durable bulk work (AIP-151 long-running
// operations): an operation is stored with all its items before its creator
// gets an answer, its work goes through a queue that every replica consumes
// (Redis Streams consumer group, or in-process for the embedded backend), a
// crashed replica's work is claimed by another, and every item's result is
// recorded exactly once, first write wins, so a re-run after a crash never
// counts an item twice.
//
// The unit of queued work is an Entry: one workspace of an operation with
// the items (people) to do there, so a worker reads a workspace once for all
// of its items. Items are numbered across entries in order; results are
// stored by item index and paged in that order.
package operations

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors; backends wrap them with %w.
var (
	// ErrNotFound: no such operation (or it expired).
	ErrNotFound = errors.New("operations: not found")
	// ErrUnavailable: the backend could not be reached or failed.
	ErrUnavailable = errors.New("operations: backend unavailable")
	// ErrFinished: the operation has ended (cancel of a finished one).
	ErrFinished = errors.New("operations: operation has finished")
	// ErrRunning: the operation has not ended (delete or retry of a running one).
	ErrRunning = errors.New("operations: operation is still running")
)

// Entry is one workspace of an operation and the items to do there.
type Entry struct {
	// Workspace is the registry name, "workspaces/{id}".
	Workspace string `json:"w"`
	// People are indices into the request's people, one item each; empty
	// for operations with one item per workspace.
	People []int32 `json:"p,omitempty"`
	// Offset is the index of the entry's first item.
	Offset int64 `json:"o"`
	// Missing: the workspace did not exist (or was out of the creator's
	// scope) when the operation was created; its items fail NOT_FOUND.
	Missing bool `json:"m,omitempty"`
}

// Len is the number of items of the entry.
func (e Entry) Len() int64 { return max(int64(len(e.People)), 1) }

// Record is what an operation is, fixed at creation.
type Record struct {
	ID     string `json:"id"`
	Method string `json:"method"` // the RPC that started it, "/agency.v1.FanoutService/OnboardMembers"
	// Request is the starting request in proto wire format (never a
	// secret: fan-out requests hold none).
	Request      []byte    `json:"request"`
	Creator      string    `json:"creator"`
	CreatorRole  string    `json:"creator_role"`
	CreatorScope string    `json:"creator_scope,omitempty"`
	CreateTime   time.Time `json:"create_time"`
	DryRun       bool      `json:"dry_run,omitempty"`
	RetryOf      string    `json:"retry_of,omitempty"`
	RequestID    string    `json:"request_id,omitempty"`
	Entries      []Entry   `json:"entries"`
	Total        int64     `json:"total"`
}

// Status is what changes while an operation runs.
type Status struct {
	Done            int64            // items ended without failing
	Failed          int64            // items that failed
	Running         int64            // items of entries a worker holds, not yet recorded
	Outcomes        map[string]int64 // items per outcome name
	CancelRequested bool
	UpdateTime      time.Time
	EndTime         time.Time // zero while running
}

// Finished reports whether every item has a result.
func (s *Status) Finished(total int64) bool { return s.Done+s.Failed >= total }

// ItemResult is one item's recorded result.
type ItemResult struct {
	Index   int64
	Entry   int
	Outcome string
	Failed  bool
	Data    []byte // the serialized result, sealed by the caller when it holds a secret
}

// Task is one queued entry of an operation.
type Task struct {
	Op    string
	Entry int
}

// Delivery is a Task handed to a consumer; Attempt counts deliveries (1 on
// the first).
type Delivery struct {
	Task
	ID      string
	Attempt int64
}

// ListQuery selects operations, newest first (creation time, then id,
// descending).
type ListQuery struct {
	// After is the previous page's last operation: the list continues
	// after its place in the order, even once it has been deleted or has
	// expired. Nil starts at the newest.
	After *Cursor
	Limit int
	// Match picks the records to return. It may be given the record
	// without Request and Entries (Redis reads those only for matches).
	Match func(*Record) bool
}

// Cursor is a place in the list order: an operation's id and creation
// time.
type Cursor struct {
	ID         string
	CreateTime time.Time
}

// CursorOf is rec's place in the list order.
func CursorOf(rec *Record) *Cursor { return &Cursor{ID: rec.ID, CreateTime: rec.CreateTime} }

// Backend stores operations and queues their work. Every method is safe
// for concurrent use by many replicas.
type Backend interface {
	// Create stores rec and queues one task per entry, all before it
	// returns; on error nothing is queued.
	Create(ctx context.Context, rec *Record) error
	// Get returns the operation or ErrNotFound.
	Get(ctx context.Context, id string) (*Record, *Status, error)
	// List returns operations, newest first.
	List(ctx context.Context, q ListQuery) ([]*Record, error)
	// Cancel flags the operation; ErrFinished once it has ended.
	Cancel(ctx context.Context, id string) error
	// CancelRequested reports whether Cancel was called (cheap: workers
	// ask it between items).
	CancelRequested(ctx context.Context, id string) (bool, error)
	// Delete removes a finished operation; ErrRunning before it ends.
	Delete(ctx context.Context, id string) error

	// Record stores an item's result unless it has one (first write wins)
	// and reports whether it did and whether that result ended the
	// operation (its last item: the end time is set then, exactly once).
	Record(ctx context.Context, id string, r ItemResult) (stored, ended bool, err error)
	// Results returns the stored results of these items (absent: none yet).
	Results(ctx context.Context, id string, indices []int64) (map[int64][]byte, error)
	// FailedItems returns up to limit failed item indices above after, in
	// order, and how many failed in all.
	FailedItems(ctx context.Context, id string, after int64, limit int) ([]int64, int64, error)
	// Running marks an entry as held (items = its items not recorded yet)
	// or, with items 0, released.
	Running(ctx context.Context, id string, entry int, items int64) error
	// RunningEntries reports which entries are held.
	RunningEntries(ctx context.Context, id string) (map[int]bool, error)
	// SetIntent records, once, that a write of the item may have reached
	// upstream, and returns the first recorded time (an item's intent
	// survives its worker, so a re-run knows the write may have happened).
	SetIntent(ctx context.Context, id string, index int64, at time.Time) (time.Time, error)
	// Intent returns the item's intent time, zero when none.
	Intent(ctx context.Context, id string, index int64) (time.Time, error)

	// Take hands the consumer up to max tasks: tasks held by a consumer
	// idle for longer than the claim timeout first, then new ones. It
	// waits a short while (about a second) when there is none.
	Take(ctx context.Context, consumer string, max int) ([]Delivery, error)
	// Heartbeat tells the queue the consumer still works on these
	// deliveries, so they are not claimed by another.
	Heartbeat(ctx context.Context, consumer string, ids []string) error
	// Ack removes finished deliveries from the queue.
	Ack(ctx context.Context, ids []string) error
	// Release hands deliveries back at once (shutdown), to be taken by any
	// consumer.
	Release(ctx context.Context, consumer string, ids []string) error
}
