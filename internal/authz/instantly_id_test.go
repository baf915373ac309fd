package authz

import (
	"context"
	"errors"
	"testing"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
)

// TestInstantlyID: a raw Instantly id passes the caller's scope like a
// registry name; registered-outside and unregistered-outside fail alike.
func TestInstantlyID(t *testing.T) {
	raw := memory.New().Workspaces()
	west, east := storetest.Workspace("west"), storetest.Workspace("east")
	west.Labels["team"], east.Labels["team"] = "west", "east"
	for _, w := range []*store.Workspace{west, east} {
		if err := raw.Create(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	as := func(scope string) context.Context {
		return auth.WithPrincipal(context.Background(), &auth.Principal{ID: "tokens/t", Role: auth.RoleAdmin, Scope: labels.MustParse(scope)})
	}
	cases := []struct {
		name, scope, id string
		unregistered    map[string]string
		want            string // registry name, "" for an admitted unregistered id, "hidden"
	}{
		{"in scope", "team=west", west.InstantlyWorkspaceID, nil, "workspaces/west"},
		{"out of scope", "team=west", east.InstantlyWorkspaceID, nil, "hidden"},
		{"unregistered, only named", "team=west", "inst-nobody", nil, "hidden"},
		{"unregistered, registered into the scope", "team=west", "inst-nobody", map[string]string{"team": "west"}, ""},
		{"unregistered, registered out of the scope", "team=west", "inst-nobody", map[string]string{"team": "east"}, "hidden"},
		{"out of scope, whatever the new labels", "team=west", east.InstantlyWorkspaceID, map[string]string{"team": "west"}, "hidden"},
		{"unscoped: registered", "", east.InstantlyWorkspaceID, nil, "workspaces/east"},
		{"unscoped: unregistered", "", "inst-nobody", nil, ""},
		{"negative scope admits the unlabelled", "team!=east", "inst-nobody", nil, ""},
		{"negative scope: out of scope", "team!=east", east.InstantlyWorkspaceID, nil, "hidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, err := InstantlyID(as(tc.scope), raw, tc.id, tc.unregistered)
			switch {
			case tc.want == "hidden":
				if !errors.Is(err, store.ErrNotFound) || w != nil {
					t.Fatalf("got %v, %v; want hidden (ErrNotFound)", w, err)
				}
			case err != nil:
				t.Fatal(err)
			case tc.want == "" && w != nil, tc.want != "" && (w == nil || w.Name != tc.want):
				t.Fatalf("got %v, want %q", w, tc.want)
			}
		})
	}
	if _, err := InstantlyID(context.Background(), raw, west.InstantlyWorkspaceID, nil); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no principal: %v", err)
	}
}
