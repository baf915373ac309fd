// Package servicetest is the fixture of the service packages' own tests:
// the parts a service runs on in production (the in-memory store behind the
// caller-scoped view, a keyring, signed page tokens, the fan-out engine, the
// member locker) and the Instantly simulator speaking real HTTP, with helpers
// to register workspaces and to act as a caller of a given role and scope.
//
// It deliberately builds no service: a service's internal tests import it,
// so it must not import them.
package servicetest

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Env is one test's control plane without its servers.
type Env struct {
	Sim   *sim.Server
	Store *memory.Store
	// Scoped is the store as services see it: through the caller's scope.
	Scoped   store.Workspaces
	Keyring  *vault.Keyring
	Pages    *pagetoken.Codec
	Client   *instantly.Client
	Resolver *resolve.Resolver // scoped to the caller, as every service uses it
	Raw      *resolve.Resolver // unscoped, as operation workers use it
	Engine   *fanout.Engine
	Locker   *members.MemoryLocker
}

// Options tune New; the zero value is a fast simulator with no faults.
type Options struct {
	Sim sim.Config
}

// New starts the simulator on a random port and wires the parts; everything
// stops when the test ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	s := sim.New(o.Sim)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	master := make([]byte, 32)
	for i := range master {
		master[i] = byte(i + 1)
	}
	kr, err := vault.NewKeyring(master)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := pagetoken.NewCodec(master)
	if err != nil {
		t.Fatal(err)
	}
	// Few, fast retries: a test that meets a fault should not sit out
	// production backoffs.
	client, err := instantly.New(instantly.Options{BaseURL: hs.URL, MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	scoped := authz.Scoped(st.Workspaces())
	return &Env{
		Sim: s, Store: st, Scoped: scoped, Keyring: kr, Pages: pages, Client: client,
		Resolver: resolve.NewResolver(scoped, st.Workspaces(), kr, pages),
		Raw:      resolve.NewResolver(st.Workspaces(), st.Workspaces(), kr, pages),
		Engine:   fanout.New(fanout.Options{}),
		Locker:   members.NewMemoryLocker(),
	}
}

// Workspace is a registered workspace and its Instantly twin.
type Workspace struct {
	Name        string // "workspaces/{id}"
	InstantlyID string
	APIKey      string
}

// Register creates an Instantly workspace in the simulator and registers it
// as workspaces/{id} with the given labels, its key sealed as the
// workspaces service seals it.
func (e *Env) Register(t testing.TB, id string, lbls map[string]string) Workspace {
	t.Helper()
	iid, key := e.Sim.CreateWorkspace(id)
	name := "workspaces/" + id
	sealed, err := e.Keyring.Seal([]byte(key), []byte(name))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	w := &store.Workspace{
		Name: name, DisplayName: id, Labels: lbls, InstantlyWorkspaceID: iid, InstantlyWorkspaceName: id,
		SealedCredential: string(sealed), CredentialFingerprint: vault.Fingerprint(key),
		State: store.StateActive, LastVerifyTime: now, CreateTime: now, UpdateTime: now,
	}
	if err := e.Store.Workspaces().Create(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	return Workspace{Name: name, InstantlyID: iid, APIKey: key}
}

// As returns a context whose caller has role and sees the workspaces
// selector matches ("" sees all).
func As(role, selector string) context.Context {
	p := &auth.Principal{ID: "tokens/test-" + role, Role: role}
	if selector != "" {
		p.Scope = labels.MustParse(selector)
	}
	return auth.WithPrincipal(context.Background(), p)
}

// Admin is As(auth.RoleAdmin, "").
func Admin() context.Context { return As(auth.RoleAdmin, "") }
