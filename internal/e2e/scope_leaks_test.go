package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// leakFixture is a deployment with two clients: "a" (the scoped caller's)
// and "b" (outside its scope), and Instantly workspace groups that cross
// the boundary.
//
//   - a1, a2, a3: client=a, registered with their own keys; b2 is an
//     accepted sub workspace of a1 in Instantly (but registered as client=b).
//   - b1, b2, b3: client=b, registered with their own keys.
//   - s1: client=a, a sub workspace registered through admin workspace b3.
//   - u: an Instantly workspace nobody registered; v: the same, an accepted
//     sub workspace of a1.
type leakFixture struct {
	e      *env
	ids    map[string]string // Instantly ids by short name
	scoped string            // an admin token scoped to client=a
}

// randomUUID names no Instantly workspace at all.
const randomUUID = "0190c2a4-dead-7000-8000-00000000beef"

func newLeakFixture(t *testing.T) *leakFixture {
	t.Helper()
	e := startEnv(t, memoryBackend)
	f := &leakFixture{e: e, ids: map[string]string{}}
	ctx := context.Background()
	admin := e.grpc(testToken)
	keys := map[string]string{}
	for _, n := range []string{"a1", "a2", "a3", "b1", "b2", "b3", "s1", "u", "v"} {
		f.ids[n], keys[n] = e.sim.CreateWorkspaceWithOwner(n, "owner-"+n+"@agency.test")
	}
	link := func(adminWS, sub string) {
		gm, err := e.sim.InviteGroupMember(f.ids[adminWS], f.ids[sub])
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.AcceptGroupMember(gm.ID); err != nil {
			t.Fatal(err)
		}
	}
	link("a1", "b2")
	link("a1", "v")
	link("b3", "s1")
	for _, n := range []string{"a1", "a2", "a3", "b1", "b2", "b3"} {
		key := keys[n]
		if _, err := admin.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: n,
			Workspace: &agencyv1.Workspace{DisplayName: n, ApiKey: &key, Labels: map[string]string{"client": n[:1]}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "s1", SubWorkspaceId: f.ids["s1"],
		Workspace: &agencyv1.Workspace{DisplayName: "s1", AdminWorkspace: "workspaces/b3", Labels: map[string]string{"client": "a"}}}); err != nil {
		t.Fatal(err)
	}
	var tok agencyv1.CreateTokenResponse
	if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(ctx, "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, WorkspaceScope: "client=a"}}, &tok); err != nil {
		t.Fatal(err)
	}
	f.scoped = tok.GetSecret()
	return f
}

// eachTransport runs fn over gRPC and over REST, each on a fresh fixture
// (the calls change Instantly's groups).
func eachTransport(t *testing.T, fn func(t *testing.T, f *leakFixture, inv invoker)) {
	for _, transport := range []string{"grpc", "rest"} {
		t.Run(transport, func(t *testing.T) {
			f := newLeakFixture(t)
			fn(t, f, f.e.invoker(f.scoped, transport))
		})
	}
}

// invoker is the env's invoker for one transport.
func (e *env) invoker(token, transport string) invoker {
	for _, i := range e.invokers(token) {
		if i.Transport() == transport {
			return i
		}
	}
	panic("no transport " + transport)
}

// answer is everything a caller learns from a refusal, with the id it sent
// replaced by "<id>", so two refusals for two ids can be compared.
func answer(t *testing.T, err error, id string) string {
	t.Helper()
	if err == nil {
		return "success"
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a status: %v", err)
	}
	var b strings.Builder
	b.WriteString(st.Code().String() + " " + st.Message())
	if he, ok := err.(*httpStatusError); ok {
		fmt.Fprintf(&b, " HTTP %d", he.httpCode)
	}
	for _, d := range st.Details() {
		m, ok := d.(proto.Message)
		if !ok {
			t.Fatalf("detail %T is not a message", d)
		}
		j, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, " %T%s", d, j)
	}
	return strings.ReplaceAll(b.String(), id, "<id>")
}

// mentions reports whether s names the fixture's workspace n, by registry
// name or as a quoted (Instantly) name.
func mentions(s, n string) bool {
	return strings.Contains(s, "workspaces/"+n) || strings.Contains(s, `"`+n+`"`) || strings.Contains(s, `\"`+n+`\"`)
}

// TestScopeRawInstantlyIDs: a raw Instantly id is checked against the
// caller's scope like a registry name. A scoped caller cannot invite an
// out-of-scope workspace into its group by its Instantly id, and the refusal
// is the same as for an id that names nothing (no existence oracle).
func TestScopeRawInstantlyIDs(t *testing.T) {
	eachTransport(t, func(t *testing.T, f *leakFixture, inv invoker) {
		ctx := context.Background()
		invite := func(id string) (*agencyv1.GroupMember, error) {
			var gm agencyv1.GroupMember
			err := inv.Invoke(ctx, "agency.v1.GroupMemberService/InviteGroupMember", &agencyv1.InviteGroupMemberRequest{
				Parent: "workspaces/a2", SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: id}}, &gm)
			return &gm, err
		}
		gm, err := invite(f.ids["b1"])
		if err == nil {
			t.Fatalf("a client=a caller invited b1 into a2's group: %v", gm)
		}
		st := wantCode(t, err, codes.NotFound)
		wantReason(t, st, "NOT_FOUND")
		if mentions(err.Error(), "b1") {
			t.Fatalf("the refusal names b1: %v", err)
		}
		state, serr := f.e.sim.WorkspaceState(f.ids["b1"])
		if serr != nil {
			t.Fatal(serr)
		}
		if len(state.GroupMembers) != 0 {
			t.Fatalf("b1 was invited anyway: %v", state.GroupMembers)
		}
		outOfScope := answer(t, err, f.ids["b1"])
		// An id that names nothing, and an Instantly workspace nobody
		// registered (outside every label scope), answer exactly the same.
		_, err = invite(randomUUID)
		if got := answer(t, err, randomUUID); got != outOfScope {
			t.Fatalf("random id answers\n  %s\nout-of-scope id answers\n  %s", got, outOfScope)
		}
		_, err = invite(f.ids["u"])
		if got := answer(t, err, f.ids["u"]); got != outOfScope {
			t.Fatalf("unregistered id answers\n  %s\nout-of-scope id answers\n  %s", got, outOfScope)
		}
		// The registry name of the out-of-scope workspace answers as a
		// missing one, as before.
		var gm2 agencyv1.GroupMember
		err = inv.Invoke(ctx, "agency.v1.GroupMemberService/InviteGroupMember", &agencyv1.InviteGroupMemberRequest{
			Parent: "workspaces/a2", SubWorkspace: &agencyv1.InviteGroupMemberRequest_Workspace{Workspace: "workspaces/b1"}}, &gm2)
		wantCode(t, err, codes.NotFound)

		// An in-scope workspace's raw id works, and is named.
		gm, err = invite(f.ids["a3"])
		if err != nil || gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING || gm.GetRegisteredWorkspace() != "workspaces/a3" {
			t.Fatalf("inviting in-scope a3 by id: %v %v", gm, err)
		}

		// The unscoped admin may still invite any Instantly workspace by id,
		// registered or not, and an id that names nothing answers the same
		// as above.
		admin := f.e.invoker(testToken, inv.Transport())
		inviteAsAdmin := func(id string) error {
			return admin.Invoke(ctx, "agency.v1.GroupMemberService/InviteGroupMember", &agencyv1.InviteGroupMemberRequest{
				Parent: "workspaces/a1", SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: id}}, &agencyv1.GroupMember{})
		}
		if err := inviteAsAdmin(f.ids["u"]); err != nil {
			t.Fatalf("unscoped invite of an unregistered workspace by id: %v", err)
		}
		if got := answer(t, inviteAsAdmin(randomUUID), randomUUID); got != outOfScope {
			t.Fatalf("for the unscoped admin a random id answers\n  %s\nwant the same as\n  %s", got, outOfScope)
		}
	})
}

// TestScopeNamesInResponses: nothing a scoped caller reads names a workspace
// outside its scope, and registering an out-of-scope workspace's Instantly
// id through an in-scope admin workspace answers as for an id that names
// nothing.
func TestScopeNamesInResponses(t *testing.T) {
	eachTransport(t, func(t *testing.T, f *leakFixture, inv invoker) {
		ctx := context.Background()
		// s1 is in scope; its admin workspace b3 is not.
		var w agencyv1.Workspace
		if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/s1"}, &w); err != nil {
			t.Fatal(err)
		}
		if mentions(mustJSONString(&w), "b3") {
			t.Fatalf("GetWorkspace s1 names b3: %v", &w)
		}
		var list agencyv1.ListWorkspacesResponse
		if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.GetWorkspaces()) != 4 {
			t.Fatalf("scoped list: %v", list.GetWorkspaces())
		}
		for _, lw := range list.GetWorkspaces() {
			if j := mustJSONString(lw); strings.Contains(j, "workspaces/b") {
				t.Fatalf("ListWorkspaces names a client=b workspace: %s", j)
			}
		}
		for _, call := range []struct {
			method string
			req    proto.Message
		}{
			{"agency.v1.WorkspaceService/VerifyWorkspace", &agencyv1.VerifyWorkspaceRequest{Name: "workspaces/s1"}},
			{"agency.v1.WorkspaceService/UpdateWorkspace", &agencyv1.UpdateWorkspaceRequest{Workspace: &agencyv1.Workspace{Name: "workspaces/s1", DisplayName: "s one"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}},
			{"agency.v1.WorkspaceService/RotateWorkspaceCredential", &agencyv1.RotateWorkspaceCredentialRequest{Name: "workspaces/s1", ApiKey: "some-key-0000000"}},
		} {
			var out agencyv1.Workspace
			err := inv.Invoke(ctx, call.method, call.req, &out)
			if mentions(mustJSONString(&out), "b3") || (err != nil && mentions(err.Error(), "b3")) {
				t.Fatalf("%s on s1 names b3: %v %v", call.method, &out, err)
			}
		}

		// Group listings and discovery name only visible registrations.
		var gms agencyv1.ListGroupMembersResponse
		if err := inv.Invoke(ctx, "agency.v1.GroupMemberService/ListGroupMembers", &agencyv1.ListGroupMembersRequest{Parent: "workspaces/a1"}, &gms); err != nil {
			t.Fatal(err)
		}
		for _, g := range gms.GetGroupMembers() {
			if g.GetRegisteredWorkspace() != "" {
				t.Fatalf("group member of a1 names registered %s", g.GetRegisteredWorkspace())
			}
		}
		var disc agencyv1.DiscoverSubWorkspacesResponse
		if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/DiscoverSubWorkspaces", &agencyv1.DiscoverSubWorkspacesRequest{Name: "workspaces/a1"}, &disc); err != nil {
			t.Fatal(err)
		}
		for _, d := range disc.GetSubWorkspaces() {
			if d.GetRegisteredWorkspace() != "" {
				t.Fatalf("discovery on a1 names registered %s", d.GetRegisteredWorkspace())
			}
		}

		// Registering b2 (an accepted sub workspace of a1 in Instantly,
		// registered outside the scope) through a1 answers exactly as an id
		// that names nothing.
		register := func(id string) error {
			var out agencyv1.Workspace
			return inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "sneaky", SubWorkspaceId: id,
				Workspace: &agencyv1.Workspace{DisplayName: "sneaky", AdminWorkspace: "workspaces/a1", Labels: map[string]string{"client": "a"}}}, &out)
		}
		outOfScope := answer(t, register(f.ids["b2"]), f.ids["b2"])
		if missing := answer(t, register(randomUUID), randomUUID); missing != outOfScope {
			t.Fatalf("registering a random id answers\n  %s\nregistering out-of-scope b2 answers\n  %s", missing, outOfScope)
		}
		if mentions(outOfScope, "b2") {
			t.Fatalf("the refusal names b2: %s", outOfScope)
		}
		// An unregistered sub workspace of a1 registers into the scope (and
		// not out of it: that is PERMISSION_DENIED, as any out-of-scope
		// label).
		var reg agencyv1.Workspace
		wantCode(t, inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "v", SubWorkspaceId: f.ids["v"],
			Workspace: &agencyv1.Workspace{DisplayName: "v", AdminWorkspace: "workspaces/a1", Labels: map[string]string{"client": "b"}}}, &reg), codes.PermissionDenied)
		if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "v", SubWorkspaceId: f.ids["v"],
			Workspace: &agencyv1.Workspace{DisplayName: "v", AdminWorkspace: "workspaces/a1", Labels: map[string]string{"client": "a"}}}, &reg); err != nil {
			t.Fatalf("registering in-scope v through a1: %v", err)
		}
		if reg.GetAdminWorkspace() != "workspaces/a1" {
			t.Fatalf("v's admin workspace a1 is visible, yet: %q", reg.GetAdminWorkspace())
		}
		// The unscoped admin still sees s1's admin workspace.
		var full agencyv1.Workspace
		if err := f.e.invoker(testToken, inv.Transport()).Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/s1"}, &full); err != nil || full.GetAdminWorkspace() != "workspaces/b3" {
			t.Fatalf("unscoped GetWorkspace s1: %v %v", &full, err)
		}
	})
}
