package operations

import (
	"testing"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	ops "github.com/agencyplane/agencyplane/internal/operations"
)

// TestVisible: the creator sees its operation; an admin sees it when its
// scope covers the creator's; nobody else does.
func TestVisible(t *testing.T) {
	rec := &ops.Record{Creator: "tokens/a", CreatorScope: "team=west"}
	for _, tc := range []struct {
		name string
		p    auth.Principal
		want bool
	}{
		{"creator", auth.Principal{ID: "tokens/a", Role: auth.RoleViewer, Scope: labels.MustParse("team=west")}, true},
		{"unscoped admin", auth.Principal{ID: "tokens/b", Role: auth.RoleAdmin}, true},
		{"admin of the same scope", auth.Principal{ID: "tokens/b", Role: auth.RoleAdmin, Scope: labels.MustParse("team=west")}, true},
		{"admin of a narrower scope", auth.Principal{ID: "tokens/b", Role: auth.RoleAdmin, Scope: labels.MustParse("team=west,tier=gold")}, false},
		{"admin of another scope", auth.Principal{ID: "tokens/b", Role: auth.RoleAdmin, Scope: labels.MustParse("team=east")}, false},
		{"manager, not the creator", auth.Principal{ID: "tokens/c", Role: auth.RoleManager}, false},
	} {
		if got := Visible(&tc.p, rec); got != tc.want {
			t.Errorf("%s: Visible = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestEntryOf: item indices map to the entry holding them, across entries
// of different sizes.
func TestEntryOf(t *testing.T) {
	rec := &ops.Record{Entries: []ops.Entry{
		{Workspace: "workspaces/a", People: []int32{0, 1, 2}, Offset: 0},
		{Workspace: "workspaces/b", Offset: 3},
		{Workspace: "workspaces/c", People: []int32{1, 2}, Offset: 4},
	}}
	for i, want := range []string{"workspaces/a", "workspaces/a", "workspaces/a", "workspaces/b", "workspaces/c", "workspaces/c"} {
		if e, n := entryOf(rec, int64(i)); e.Workspace != want || n < 0 {
			t.Errorf("item %d: entry %d %q, want %q", i, n, e.Workspace, want)
		}
	}
	if _, n := entryOf(rec, 6); n != -1 {
		t.Errorf("item past the end: entry %d, want -1", n)
	}
}
