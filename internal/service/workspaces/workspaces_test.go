package workspaces

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// newTestService wires the service as internal/app does, over the fixture.
func newTestService(t *testing.T, o servicetest.Options) (*Service, *servicetest.Env) {
	t.Helper()
	e := servicetest.New(t, o)
	return New(Deps{
		Store: e.Scoped, Raw: e.Store.Workspaces(), Vault: e.Keyring, Upstream: e.Client,
		Resolver: e.Resolver, PageTokens: e.Pages, Logger: slog.New(slog.DiscardHandler),
	}), e
}

// stored reads a record past the caller's scope, as the test's ground truth.
func stored(t *testing.T, e *servicetest.Env, name string) *store.Workspace {
	t.Helper()
	w, err := e.Store.Workspaces().Get(context.Background(), name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

func storedCount(t *testing.T, e *servicetest.Env) int {
	t.Helper()
	all, err := e.Store.Workspaces().List(context.Background(), store.ListQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// subOf makes a simulator workspace a sub workspace of adminIID, accepted
// or left pending.
func subOf(t *testing.T, e *servicetest.Env, adminIID, name string, accept bool) string {
	t.Helper()
	iid, _ := e.Sim.CreateWorkspace(name)
	gm, err := e.Sim.InviteGroupMember(adminIID, iid)
	if err != nil {
		t.Fatal(err)
	}
	if accept {
		if err := e.Sim.AcceptGroupMember(gm.ID); err != nil {
			t.Fatal(err)
		}
	}
	return iid
}

// withSub registers workspaces/adm (client=hq) and, through it,
// workspaces/sub (client=a): a sub workspace whose admin workspace a
// caller scoped to client=a cannot see.
func withSub(t *testing.T) (*Service, servicetest.Workspace) {
	t.Helper()
	s, e := newTestService(t, servicetest.Options{})
	admin := e.Register(t, "adm", map[string]string{"client": "hq"})
	subIID := subOf(t, e, admin.InstantlyID, "Sub", true)
	if _, err := s.CreateWorkspace(servicetest.Admin(), createSubReq("sub", admin.Name, subIID, map[string]string{"client": "a"})); err != nil {
		t.Fatal(err)
	}
	return s, admin
}

// group is workspaces/adm (client=a) and three sub workspaces of its group
// in Instantly: accepted, pending, and hidden: accepted but registered by
// an unscoped admin as workspaces/hidden (client=b).
type group struct {
	s                         *Service
	e                         *servicetest.Env
	admin                     servicetest.Workspace
	accepted, pending, hidden string
}

func newGroup(t *testing.T) group {
	t.Helper()
	s, e := newTestService(t, servicetest.Options{})
	g := group{s: s, e: e, admin: e.Register(t, "adm", map[string]string{"client": "a"})}
	g.accepted = subOf(t, e, g.admin.InstantlyID, "Accepted", true)
	g.pending = subOf(t, e, g.admin.InstantlyID, "Pending", false)
	g.hidden = subOf(t, e, g.admin.InstantlyID, "Hidden", true)
	if _, err := s.CreateWorkspace(servicetest.Admin(), createSubReq("hidden", g.admin.Name, g.hidden, map[string]string{"client": "b"})); err != nil {
		t.Fatal(err)
	}
	return g
}

// orAdmin is ctx, or an unscoped admin's when a table leaves it nil.
func orAdmin(ctx context.Context) context.Context {
	if ctx == nil {
		return servicetest.Admin()
	}
	return ctx
}

func createSubReq(id, admin, subIID string, lbls map[string]string) *agencyv1.CreateWorkspaceRequest {
	return &agencyv1.CreateWorkspaceRequest{WorkspaceId: id, SubWorkspaceId: subIID,
		Workspace: &agencyv1.Workspace{DisplayName: id, AdminWorkspace: admin, Labels: lbls}}
}

// TestCreateWorkspace: the key is sealed for its name (never returned), the
// id defaults to the lower-cased Instantly id, and the stored key's
// Instantly id is recorded so RevokeApiKey can refuse it.
func TestCreateWorkspace(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	iid, key := e.Sim.CreateWorkspace("Acme Inc")
	got, err := s.CreateWorkspace(servicetest.Admin(), &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{
		DisplayName: "  Acme  ", Labels: map[string]string{"client": "acme"}, ApiKey: &key}})
	if err != nil {
		t.Fatal(err)
	}
	name := "workspaces/" + strings.ToLower(iid)
	if got.GetName() != name || got.GetDisplayName() != "Acme" || got.GetInstantlyWorkspaceId() != iid ||
		got.GetInstantlyWorkspaceName() != "Acme Inc" || got.GetState() != agencyv1.Workspace_STATE_ACTIVE ||
		got.GetCredentialFingerprint() != vault.Fingerprint(key) || got.ApiKey != nil || got.GetAdminWorkspace() != "" {
		t.Fatalf("created %v", got)
	}
	rec := stored(t, e, name)
	if strings.Contains(rec.SealedCredential, key) {
		t.Fatal("the key is stored in clear")
	}
	// Sealed with the name as associated data: it opens only as this workspace.
	if opened, err := e.Keyring.Open([]byte(rec.SealedCredential), []byte(name)); err != nil || string(opened) != key {
		t.Fatalf("sealed credential opens to %q, %v", opened, err)
	}
	if _, err := e.Keyring.Open([]byte(rec.SealedCredential), []byte("workspaces/other")); err == nil {
		t.Fatal("sealed credential opens under another name")
	}
	simState, err := e.Sim.WorkspaceState(iid)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CredentialKeyID == "" || rec.CredentialKeyID != simState.APIKeys[0].ID {
		t.Fatalf("stored key id %q, want %q", rec.CredentialKeyID, simState.APIKeys[0].ID)
	}

	// A key that cannot list keys still registers, without a key id.
	iid2, _ := e.Sim.CreateWorkspace("Beta")
	narrow, err := e.Sim.CreateAPIKey(iid2, "narrow", []string{"workspaces:read"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateWorkspace(servicetest.Admin(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: "beta",
		Workspace: &agencyv1.Workspace{DisplayName: "Beta", ApiKey: &narrow.Key}}); err != nil {
		t.Fatal(err)
	}
	if id := stored(t, e, "workspaces/beta").CredentialKeyID; id != "" {
		t.Fatalf("key id %q from a key that cannot list keys", id)
	}
}

// TestCreateWorkspaceRefused: every refusal names what is wrong and stores
// nothing; bad labels are refused before Instantly is asked.
func TestCreateWorkspaceRefused(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	taken := e.Register(t, "taken", map[string]string{"client": "a"})
	cases := []struct {
		name   string
		ctx    context.Context
		id     string
		labels map[string]string
		key    func(iid string) string
		code   codes.Code
		field  string
		reason string
	}{
		{name: "bad label", labels: map[string]string{"Bad Key!": "x"}, code: codes.InvalidArgument, field: `workspace.labels["Bad Key!"]`},
		{name: "refused key", key: func(string) string { return "not-a-real-key-000" }, code: codes.InvalidArgument,
			field: "workspace.api_key", reason: "CREDENTIAL_INVALID"},
		{name: "no workspaces:read", key: func(iid string) string {
			k, err := e.Sim.CreateAPIKey(iid, "narrow", []string{"campaigns:read"})
			if err != nil {
				t.Fatal(err)
			}
			return k.Key
		}, code: codes.InvalidArgument, field: "workspace.api_key", reason: "SCOPE_DENIED"},
		{name: "Instantly workspace already registered", id: "again", key: func(string) string {
			k, err := e.Sim.CreateAPIKey(taken.InstantlyID, "second", []string{"all:all"})
			if err != nil {
				t.Fatal(err)
			}
			return k.Key
		}, code: codes.AlreadyExists, reason: "ALREADY_EXISTS"},
		{name: "id taken", id: "taken", code: codes.AlreadyExists, reason: "ALREADY_EXISTS"},
		{name: "labels outside the caller's scope", ctx: servicetest.As(auth.RoleAdmin, "client=a"),
			labels: map[string]string{"client": "b"}, code: codes.PermissionDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			iid, key := e.Sim.CreateWorkspace(tc.name)
			if tc.key != nil {
				key = tc.key(iid)
			}
			ctx := orAdmin(tc.ctx)
			before, reqs := storedCount(t, e), e.Requests(iid)
			_, err := s.CreateWorkspace(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: tc.id,
				Workspace: &agencyv1.Workspace{DisplayName: "X", Labels: tc.labels, ApiKey: &key}})
			servicetest.WantErr(t, err, tc.code, tc.field, tc.reason)
			if n := storedCount(t, e); n != before {
				t.Fatalf("a refused create stored something: %d workspaces, had %d", n, before)
			}
			if tc.field == `workspace.labels["Bad Key!"]` && e.Requests(iid) != reqs {
				t.Fatal("bad labels reached Instantly")
			}
		})
	}
}

// TestCreateWorkspaceUpstreamDown: Instantly failing is UNAVAILABLE, not a
// verdict on the key, and stores nothing.
func TestCreateWorkspaceUpstreamDown(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{Sim: sim.Config{FaultRate: 1}})
	_, key := e.Sim.CreateWorkspace("down")
	_, err := s.CreateWorkspace(servicetest.Admin(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: "down",
		Workspace: &agencyv1.Workspace{DisplayName: "Down", ApiKey: &key}})
	servicetest.WantErr(t, err, codes.Unavailable, "", "UPSTREAM_UNAVAILABLE")
	if n := storedCount(t, e); n != 0 {
		t.Fatalf("%d workspaces stored", n)
	}
}

// TestCreateSubWorkspace: a sub workspace registers through its admin
// workspace's key only when Instantly lets that key act on it, and a sub
// workspace registered outside the caller's scope gets the same answer as
// one the key cannot reach, without asking Instantly.
func TestCreateSubWorkspace(t *testing.T) {
	g := newGroup(t)
	s, e, admin, accepted, pending, hiddenSub := g.s, g.e, g.admin, g.accepted, g.pending, g.hidden
	other := e.Register(t, "other", map[string]string{"client": "b"})
	scopedA := servicetest.As(auth.RoleAdmin, "client=a")

	got, err := s.CreateWorkspace(scopedA, createSubReq("", admin.Name, accepted, map[string]string{"client": "a"}))
	if err != nil {
		t.Fatal(err)
	}
	name := "workspaces/" + strings.ToLower(accepted)
	rec := stored(t, e, name)
	if got.GetName() != name || got.GetAdminWorkspace() != admin.Name || got.GetInstantlyWorkspaceName() != "Accepted" ||
		rec.AdminWorkspace != admin.Name || rec.SealedCredential != "" || rec.CredentialFingerprint != vault.Fingerprint(admin.APIKey) {
		t.Fatalf("sub workspace %v stored as %+v", got, rec)
	}
	cases := []struct {
		name  string
		ctx   context.Context
		req   *agencyv1.CreateWorkspaceRequest
		code  codes.Code
		field string
	}{
		{"pending invitation", scopedA, createSubReq("p", admin.Name, pending, map[string]string{"client": "a"}), codes.InvalidArgument, "sub_workspace_id"},
		{"admin is a sub workspace", servicetest.Admin(), createSubReq("x", name, pending, nil), codes.InvalidArgument, "workspace.admin_workspace"},
		{"admin out of scope", scopedA, createSubReq("x", other.Name, pending, map[string]string{"client": "a"}), codes.NotFound, ""},
		{"labels out of scope", scopedA, createSubReq("x", admin.Name, pending, map[string]string{"client": "b"}), codes.PermissionDenied, ""},
		{"sub registered out of scope", scopedA, createSubReq("x", admin.Name, hiddenSub, map[string]string{"client": "a"}), codes.InvalidArgument, "sub_workspace_id"},
		{"sub registered in scope", servicetest.Admin(), createSubReq("x", admin.Name, accepted, nil), codes.AlreadyExists, ""},
	}
	answers := map[string]*status.Status{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, reqs := storedCount(t, e), e.Requests(admin.InstantlyID)
			_, err := s.CreateWorkspace(tc.ctx, tc.req)
			st := servicetest.WantErr(t, err, tc.code, tc.field, "")
			answers[tc.name] = st
			if n := storedCount(t, e); n != before {
				t.Fatalf("refused, yet %d workspaces stored (had %d)", n, before)
			}
			// Out of scope is answered without asking Instantly, and as
			// a key refusal would be: nothing tells the cases apart.
			if tc.name == "sub registered out of scope" {
				if e.Requests(admin.InstantlyID) != reqs {
					t.Fatal("asked Instantly about a sub workspace outside the caller's scope")
				}
				if strings.Contains(st.Message(), "hidden") || servicetest.ReasonOf(err) != "SCOPE_DENIED" {
					t.Fatalf("the refusal tells out of scope apart: %v", st)
				}
			}
		})
	}
	// Byte for byte the answer Instantly's refusal gets (no upstream_status).
	if a, b := answers["pending invitation"], answers["sub registered out of scope"]; !proto.Equal(a.Proto(), b.Proto()) {
		t.Fatalf("out of scope answers %v, a refused key %v", b.Proto(), a.Proto())
	}
}

// TestCreateSubWorkspaceAdminKeyRefused: when Instantly refuses the admin
// workspace's stored key, the fault is that stored credential
// (FAILED_PRECONDITION / CREDENTIAL_INVALID, as for any call through it),
// not bad input on sub_workspace_id, which no other id would fix.
func TestCreateSubWorkspaceAdminKeyRefused(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	admin := e.Register(t, "adm", nil)
	sub := subOf(t, e, admin.InstantlyID, "Sub", true)
	e.RevokeKeys(t, admin.InstantlyID)
	_, err := s.CreateWorkspace(servicetest.Admin(), createSubReq("sub", admin.Name, sub, nil))
	servicetest.WantErr(t, err, codes.FailedPrecondition, "", "CREDENTIAL_INVALID")
	if fs := servicetest.ViolatedFields(err); len(fs) != 0 {
		t.Fatalf("blames the request's fields %v for the stored credential", fs)
	}
	if n := storedCount(t, e); n != 1 {
		t.Fatalf("%d workspaces stored, want only the admin workspace", n)
	}
}

// TestGetWorkspaceScope: a workspace out of scope is NOT_FOUND naming what
// was asked, and a visible sub workspace never names an admin workspace
// the caller cannot see (a deleted one is still named).
func TestGetWorkspaceScope(t *testing.T) {
	s, admin := withSub(t)
	scopedA := servicetest.As(auth.RoleViewer, "client=a")

	_, err := s.GetWorkspace(scopedA, &agencyv1.GetWorkspaceRequest{Name: admin.Name})
	st := servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	if !strings.Contains(st.Message(), admin.Name) {
		t.Fatalf("NotFound does not name the workspace: %v", st)
	}
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{{servicetest.Admin(), admin.Name}, {scopedA, ""}} {
		got, err := s.GetWorkspace(tc.ctx, &agencyv1.GetWorkspaceRequest{Name: "workspaces/sub"})
		if err != nil || got.GetAdminWorkspace() != tc.want {
			t.Fatalf("get: admin_workspace %q (%v), want %q", got.GetAdminWorkspace(), err, tc.want)
		}
		list, err := s.ListWorkspaces(tc.ctx, &agencyv1.ListWorkspacesRequest{Filter: "client=a"})
		if err != nil || len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetAdminWorkspace() != tc.want {
			t.Fatalf("list: %v (%v), want admin_workspace %q", list, err, tc.want)
		}
	}
	if _, err := s.DeleteWorkspace(servicetest.Admin(), &agencyv1.DeleteWorkspaceRequest{Name: admin.Name}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetWorkspace(scopedA, &agencyv1.GetWorkspaceRequest{Name: "workspaces/sub"}); err != nil || got.GetAdminWorkspace() != admin.Name {
		t.Fatalf("deleted admin workspace: %q (%v), want it named", got.GetAdminWorkspace(), err)
	}
}

// TestListWorkspaces: pages cover every visible workspace exactly once,
// page tokens are bound to their filter, and the caller's scope applies.
func TestListWorkspaces(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	var wantA []string
	for _, id := range []string{"a1", "a2", "a3", "a4", "a5"} {
		wantA = append(wantA, e.Register(t, id, map[string]string{"client": "a"}).Name)
	}
	e.Register(t, "b1", map[string]string{"client": "b"})
	scopedA := servicetest.As(auth.RoleViewer, "client=a")

	for _, tc := range []struct {
		name   string
		ctx    context.Context
		filter string
	}{{"scoped caller", scopedA, ""}, {"filter", servicetest.Admin(), "client=a"}} {
		t.Run(tc.name, func(t *testing.T) {
			// 5 workspaces in pages of 2: 3 pages.
			got := servicetest.Walk(t, 3, func(tok string) ([]string, string, error) {
				resp, err := s.ListWorkspaces(tc.ctx, &agencyv1.ListWorkspacesRequest{PageSize: 2, Filter: tc.filter, PageToken: tok})
				var names []string
				for _, w := range resp.GetWorkspaces() {
					names = append(names, w.GetName())
				}
				return names, resp.GetNextPageToken(), err
			})
			if !slices.Equal(got, wantA) {
				t.Fatalf("listed %v, want %v", got, wantA)
			}
		})
	}

	first, err := s.ListWorkspaces(servicetest.Admin(), &agencyv1.ListWorkspacesRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	for _, tc := range []struct {
		name string
		req  *agencyv1.ListWorkspacesRequest
	}{
		{"token of another filter", &agencyv1.ListWorkspacesRequest{PageToken: first.GetNextPageToken(), Filter: "client=a"}},
		{"forged token", &agencyv1.ListWorkspacesRequest{PageToken: first.GetNextPageToken() + "x"}},
	} {
		_, err := s.ListWorkspaces(servicetest.Admin(), tc.req)
		servicetest.WantErr(t, err, codes.InvalidArgument, "page_token", "")
	}
	_, err = s.ListWorkspaces(servicetest.Admin(), &agencyv1.ListWorkspacesRequest{Filter: "client in (a"})
	servicetest.WantErr(t, err, codes.InvalidArgument, "filter", "")
}

// TestUpdateWorkspace: only the masked fields change, every bad field is
// named at once, and the caller's scope holds both before and after.
func TestUpdateWorkspace(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	w := e.Register(t, "w", map[string]string{"client": "a", "tier": "gold"})
	e.Register(t, "other", map[string]string{"client": "b"})
	key := "some-key-123"
	upd := func(ws *agencyv1.Workspace, paths ...string) *agencyv1.UpdateWorkspaceRequest {
		return &agencyv1.UpdateWorkspaceRequest{Workspace: ws, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
	}

	got, err := s.UpdateWorkspace(servicetest.Admin(), upd(&agencyv1.Workspace{Name: w.Name, DisplayName: " Renamed ", Labels: map[string]string{"client": "z"}}, "display_name"))
	if err != nil || got.GetDisplayName() != "Renamed" || got.GetLabels()["client"] != "a" || stored(t, e, w.Name).Labels["tier"] != "gold" {
		t.Fatalf("display_name only: %v %v", got, err)
	}
	got, err = s.UpdateWorkspace(servicetest.Admin(), upd(&agencyv1.Workspace{Name: w.Name, Labels: map[string]string{"client": "a"}}, "labels"))
	if err != nil || got.GetDisplayName() != "Renamed" || len(stored(t, e, w.Name).Labels) != 1 {
		t.Fatalf("labels replaced: %v %v", got, err)
	}

	scopedA := servicetest.As(auth.RoleAdmin, "client=a")
	cases := []struct {
		name   string
		ctx    context.Context
		req    *agencyv1.UpdateWorkspaceRequest
		code   codes.Code
		fields []string
	}{
		{"bad name", nil, upd(&agencyv1.Workspace{Name: "w", DisplayName: "x"}, "display_name"), codes.InvalidArgument, []string{"workspace.name"}},
		{"api_key", nil, upd(&agencyv1.Workspace{Name: w.Name, ApiKey: &key}, "display_name"), codes.InvalidArgument, []string{"workspace.api_key", "workspace.display_name"}},
		{"no mask", nil, upd(&agencyv1.Workspace{Name: w.Name, DisplayName: "x"}), codes.InvalidArgument, []string{"update_mask"}},
		{"unknown path", nil, upd(&agencyv1.Workspace{Name: w.Name, DisplayName: "x"}, "display_name", "state"), codes.InvalidArgument, []string{"update_mask"}},
		{"blank display_name", nil, upd(&agencyv1.Workspace{Name: w.Name, DisplayName: " \t"}, "display_name"), codes.InvalidArgument, []string{"workspace.display_name"}},
		{"bad label", nil, upd(&agencyv1.Workspace{Name: w.Name, Labels: map[string]string{"-x": "y"}}, "labels"), codes.InvalidArgument, []string{`workspace.labels["-x"]`}},
		{"out of scope", scopedA, upd(&agencyv1.Workspace{Name: "workspaces/other", DisplayName: "x"}, "display_name"), codes.NotFound, nil},
		{"relabel out of scope", scopedA, upd(&agencyv1.Workspace{Name: w.Name, Labels: map[string]string{"client": "b"}}, "labels"), codes.PermissionDenied, nil},
		{"missing", nil, upd(&agencyv1.Workspace{Name: "workspaces/nope", DisplayName: "x"}, "display_name"), codes.NotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := orAdmin(tc.ctx)
			before := *stored(t, e, w.Name)
			_, err := s.UpdateWorkspace(ctx, tc.req)
			servicetest.WantErr(t, err, tc.code, "", "")
			if fs := servicetest.ViolatedFields(err); !slices.Equal(fs, tc.fields) {
				t.Fatalf("violations %v, want %v", fs, tc.fields)
			}
			after := stored(t, e, w.Name)
			if after.DisplayName != before.DisplayName || !after.UpdateTime.Equal(before.UpdateTime) || after.Labels["client"] != before.Labels["client"] {
				t.Fatalf("a refused update changed %+v to %+v", before, after)
			}
		})
	}
}

// TestDeleteWorkspace: out of scope is NOT_FOUND and keeps the workspace.
func TestDeleteWorkspace(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	a := e.Register(t, "a", map[string]string{"client": "a"})
	b := e.Register(t, "b", map[string]string{"client": "b"})
	scopedA := servicetest.As(auth.RoleAdmin, "client=a")

	_, err := s.DeleteWorkspace(scopedA, &agencyv1.DeleteWorkspaceRequest{Name: b.Name})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	stored(t, e, b.Name)
	if _, err := s.DeleteWorkspace(scopedA, &agencyv1.DeleteWorkspaceRequest{Name: a.Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Workspaces().Get(context.Background(), a.Name); err == nil {
		t.Fatal("deleted workspace still stored")
	}
	_, err = s.DeleteWorkspace(scopedA, &agencyv1.DeleteWorkspaceRequest{Name: a.Name})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
}
