package instantly

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"
)

// Page is one page of a list endpoint: {"items": [...], "next_starting_after": "..."}.
// NextStartingAfter is the cursor to pass as starting_after for the next
// page; a last page may still carry one, so only an empty Items ends a walk.
type Page[T any] struct {
	Items             []T    `json:"items"`
	NextStartingAfter string `json:"next_starting_after,omitempty"`
}

// ListParams are the pagination parameters every list endpoint takes.
// Limit 0 leaves the page size to Instantly.
type ListParams struct {
	Limit         int
	StartingAfter string
}

// DefaultMaxPages bounds a walk by All unless MaxPages says otherwise:
// 1000 pages of 100 is far beyond any workspace this project manages.
const DefaultMaxPages = 1000

// Errors ending a walk because the upstream misbehaves. Both come inside
// an *InvalidAnswerError.
var (
	// ErrTooManyPages: the walk reached its page cap with pages still coming.
	ErrTooManyPages = errors.New("instantly: pagination exceeded the page cap")
	// ErrCursorNotAdvancing: a next_starting_after was seen before, so
	// following it would loop.
	ErrCursorNotAdvancing = errors.New("instantly: pagination cursor did not advance")
)

// ErrInvalidAnswer: Instantly answered 2xx with something that cannot be
// right (a cursor that does not advance, success false). The fault is
// upstream's, not ours, and a later try may pass. Every
// *InvalidAnswerError matches it.
var ErrInvalidAnswer = errors.New("instantly: invalid answer")

// InvalidAnswerError is an ErrInvalidAnswer: what was wrong (Kind, which
// errors.Is also matches), where, and Instantly's own message when its
// answer had one. It holds no credential and no cursor (a cursor may be an
// email).
type InvalidAnswerError struct {
	// Kind is ErrCursorNotAdvancing, ErrTooManyPages or ErrNotApplied.
	Kind error
	// Detail says where: "after 3 pages", "POST /custom-tags/toggle-resource".
	Detail string
	// Message is Instantly's message, if any.
	Message string
}

func (e *InvalidAnswerError) Error() string {
	s := e.Kind.Error()
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap lets errors.Is match both the kind and ErrInvalidAnswer.
func (e *InvalidAnswerError) Unwrap() []error { return []error{e.Kind, ErrInvalidAnswer} }

// PageOption tunes All.
type PageOption func(*pageConfig)

type pageConfig struct {
	maxPages int
	start    string
}

// MaxPages caps how many pages All fetches; n <= 0 means DefaultMaxPages.
func MaxPages(n int) PageOption {
	return func(c *pageConfig) {
		if n > 0 {
			c.maxPages = n
		}
	}
}

// StartingAfter starts the walk after cursor instead of at the beginning.
func StartingAfter(cursor string) PageOption {
	return func(c *pageConfig) { c.start = cursor }
}

// All walks a cursor-paginated list, yielding every item once. It follows
// next_starting_after and stops on an empty page or a page without cursor.
// A fetch error, a cursor seen before (ErrCursorNotAdvancing) or more than
// MaxPages pages (ErrTooManyPages) is yielded once, with a zero T, and ends
// the walk: a misbehaving upstream cannot make it loop forever.
func All[T any](ctx context.Context, fetch func(ctx context.Context, startingAfter string) (*Page[T], error), opts ...PageOption) iter.Seq2[T, error] {
	cfg := pageConfig{maxPages: DefaultMaxPages}
	for _, o := range opts {
		o(&cfg)
	}
	return func(yield func(T, error) bool) {
		var zero T
		cursor := cfg.start
		seen := make(map[string]struct{})
		if cursor != "" {
			seen[cursor] = struct{}{}
		}
		for pages := 0; ; pages++ {
			if pages == cfg.maxPages {
				yield(zero, &InvalidAnswerError{Kind: ErrTooManyPages, Detail: fmt.Sprintf("%d pages", cfg.maxPages)})
				return
			}
			page, err := fetch(ctx, cursor)
			if err != nil {
				yield(zero, err)
				return
			}
			if page == nil || len(page.Items) == 0 {
				return
			}
			for _, item := range page.Items {
				if !yield(item, nil) {
					return
				}
			}
			next := page.NextStartingAfter
			if next == "" {
				return
			}
			// The cursor itself stays out of the error: it may be an email.
			if _, dup := seen[next]; dup {
				yield(zero, &InvalidAnswerError{Kind: ErrCursorNotAdvancing, Detail: fmt.Sprintf("after %d pages", pages+1)})
				return
			}
			seen[next] = struct{}{}
			cursor = next
		}
	}
}

// Collect gathers a walk into a slice, stopping at the first error (the items
// read before it are returned with it).
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for item, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, item)
	}
	return out, nil
}

// walkLimit is the page size convenience walks use when the caller set
// none: the largest allowed, to spend as little of the shared rate budget as
// possible.
func walkLimit(limit, largest int) int {
	if limit <= 0 {
		return largest
	}
	return limit
}

// Query encoding, as the spec declares the parameters: every list filter is a
// plain string (arrays comma-joined, not repeated), booleans are true/false.
func setString(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func setInt(q url.Values, name string, v int) {
	if v != 0 {
		q.Set(name, strconv.Itoa(v))
	}
}

func setIntPtr[T ~int](q url.Values, name string, v *T) {
	if v != nil {
		q.Set(name, strconv.Itoa(int(*v)))
	}
}

func setBool(q url.Values, name string, v *bool) {
	if v != nil {
		q.Set(name, strconv.FormatBool(*v))
	}
}

func setList(q url.Values, name string, v []string) {
	if len(v) > 0 {
		q.Set(name, strings.Join(v, ","))
	}
}

func listQuery(limit int, startingAfter string) url.Values {
	q := url.Values{}
	setInt(q, "limit", limit)
	setString(q, "starting_after", startingAfter)
	return q
}
