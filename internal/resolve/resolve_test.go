package resolve_test

import (
	"context"
	"slices"
	"testing"

	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
)

// plainOpener "opens" a credential by returning it as stored.
type plainOpener struct{}

func (plainOpener) Open(sealed, _ []byte) ([]byte, error) { return sealed, nil }

// TestBudgetsOf: once a workspace's credential is resolved, its name maps
// to the budgets its requests spend (the fan-out engine's name to the
// latency tracker's buckets): its own, or its own and its admin's; a
// workspace found missing is forgotten.
func TestBudgetsOf(t *testing.T) {
	ctx := context.Background()
	st := memory.New().Workspaces()
	for _, w := range []*store.Workspace{
		{Name: "workspaces/agency", InstantlyWorkspaceID: "inst-agency", SealedCredential: "k"},
		{Name: "workspaces/acme", InstantlyWorkspaceID: "inst-acme", SealedCredential: "k"},
		{Name: "workspaces/sub", InstantlyWorkspaceID: "inst-sub", AdminWorkspace: "workspaces/agency"},
	} {
		if err := st.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	pages, err := pagetoken.NewCodec([]byte("a test master key"))
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewResolver(st, st, plainOpener{}, pages)
	if b := r.BudgetsOf("workspaces/acme"); b != nil {
		t.Fatalf("before resolving: %v", b)
	}
	for name, want := range map[string][]string{
		"workspaces/acme": {"inst-acme"},
		"workspaces/sub":  {"inst-sub", "inst-agency"},
	} {
		if _, err := r.Resolve(ctx, name); err != nil {
			t.Fatal(err)
		}
		if got := r.BudgetsOf(name); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", name, got, want)
		}
	}
	if err := st.Delete(ctx, "workspaces/acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, "workspaces/acme"); err == nil {
		t.Fatal("resolved a deleted workspace")
	}
	if b := r.BudgetsOf("workspaces/acme"); b != nil {
		t.Fatalf("a deleted workspace is remembered: %v", b)
	}
}
