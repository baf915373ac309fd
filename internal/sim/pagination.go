package sim

import "strings"

// List is the body of every Instantly list endpoint. NextStartingAfter is the cursor of the
// last item of the page, present on every non-empty page including the last one: clients stop
// when a page has no items, exactly as they must with Instantly.
type List[T any] struct {
	Items             []T    `json:"items"`
	NextStartingAfter string `json:"next_starting_after,omitempty"`
}

// page lists items (already in listing order) that pass keep and come after the cursor, up to
// limit. key is an item's cursor; with desc the listing order is descending, so "after" means
// smaller. Comparing cursors, rather than looking the cursor item up, is what a database does:
// a deleted item's cursor still works, and an unknown cursor is compared like any other.
func page[T any](items []T, keep func(T) bool, key func(T) string, after string, desc bool, limit int) List[T] {
	out := List[T]{Items: []T{}}
	for _, it := range items {
		if len(out.Items) == limit {
			break
		}
		if after != "" {
			if c := strings.Compare(key(it), after); (!desc && c <= 0) || (desc && c >= 0) {
				continue
			}
		}
		if keep == nil || keep(it) {
			out.Items = append(out.Items, it)
		}
	}
	if n := len(out.Items); n > 0 {
		out.NextStartingAfter = key(out.Items[n-1])
	}
	return out
}

// containsFold reports whether s contains substr, ignoring case: Instantly's search filters.
func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}

func setOf(items []string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, it := range items {
		m[it] = true
	}
	return m
}
