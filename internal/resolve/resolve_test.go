package resolve_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/labels"
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

// failingOpener opens nothing, as a keyring without the key a credential
// was sealed with.
type failingOpener struct{}

func (failingOpener) Open([]byte, []byte) ([]byte, error) { return nil, errors.New("no such key") }

// TestUnopenableAdminCredential: a sub workspace whose admin workspace's
// credential cannot be opened fails FAILED_PRECONDITION, naming the admin
// workspace only to a caller who may see it.
func TestUnopenableAdminCredential(t *testing.T) {
	ctx := context.Background()
	st := memory.New().Workspaces()
	for _, w := range []*store.Workspace{
		{Name: "workspaces/agency", InstantlyWorkspaceID: "inst-agency", SealedCredential: "k", Labels: map[string]string{"client": "agency"}},
		{Name: "workspaces/sub", InstantlyWorkspaceID: "inst-sub", AdminWorkspace: "workspaces/agency", Labels: map[string]string{"client": "a"}},
	} {
		if err := st.Create(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	pages, err := pagetoken.NewCodec([]byte("a test master key"))
	if err != nil {
		t.Fatal(err)
	}
	r := resolve.NewResolver(authz.Scoped(st), st, failingOpener{}, pages)
	for _, c := range []struct {
		scope      string
		namesAdmin bool
	}{{"", true}, {"client=a", false}} {
		p := &auth.Principal{ID: "tokens/t", Role: auth.RoleManager}
		if c.scope != "" {
			p.Scope = labels.MustParse(c.scope)
		}
		_, err := r.Resolve(auth.WithPrincipal(ctx, p), "workspaces/sub")
		if status.Code(err) != codes.FailedPrecondition {
			t.Fatalf("scope %q: %v, want FailedPrecondition", c.scope, err)
		}
		if got := strings.Contains(err.Error(), "workspaces/agency"); got != c.namesAdmin {
			t.Errorf("scope %q: names the admin workspace %v, want %v: %v", c.scope, got, c.namesAdmin, err)
		}
	}
}
