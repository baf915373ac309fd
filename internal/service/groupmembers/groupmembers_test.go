package groupmembers

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// group is an admin workspace and three candidate subs: one registered in
// the caller's scope, one registered outside it, one never registered.
type group struct {
	e                *servicetest.Env
	svc              *Service
	admin, in, out   servicetest.Workspace
	unregisteredIID  string
	unregisteredName string
}

func newGroup(t *testing.T, cfg sim.Config) *group {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{Sim: cfg})
	g := &group{
		e:     e,
		svc:   New(e.Resolver, e.Client, e.Scoped),
		admin: e.Register(t, "hq", map[string]string{"client": "a"}),
		in:    e.Register(t, "in", map[string]string{"client": "a"}),
		out:   e.Register(t, "out", map[string]string{"client": "b"}),
	}
	g.unregisteredName = "loose"
	g.unregisteredIID, _ = e.Sim.CreateWorkspace(g.unregisteredName)
	return g
}

// caller is a manager who sees client=a only.
func caller() context.Context { return servicetest.As(auth.RoleManager, "client=a") }

// byName and byID ask to invite a sub by registry name or Instantly id.
func byName(name string) *agencyv1.InviteGroupMemberRequest {
	return &agencyv1.InviteGroupMemberRequest{SubWorkspace: &agencyv1.InviteGroupMemberRequest_Workspace{Workspace: name}}
}

func byID(id string) *agencyv1.InviteGroupMemberRequest {
	return &agencyv1.InviteGroupMemberRequest{SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: id}}
}

// links is how many group links Instantly workspace iid takes part in.
func (g *group) links(t *testing.T, iid string) int {
	t.Helper()
	return len(g.e.State(t, iid).GroupMembers)
}

// TestInviteGroupMember: a sub named by registry name or by Instantly id
// is linked (pending) under the admin; a sub the caller may not name is
// NOT_FOUND exactly like an id Instantly does not know, and nothing is
// linked.
func TestInviteGroupMember(t *testing.T) {
	g := newGroup(t, sim.Config{})
	cases := []struct {
		what       string
		ctx        context.Context
		req        *agencyv1.InviteGroupMemberRequest
		sub        string // Instantly id linked on success
		registered string
		code       codes.Code
	}{
		{what: "registered name in scope", ctx: caller(), req: byName(g.in.Name), sub: g.in.InstantlyID, registered: g.in.Name},
		{what: "registered name out of scope", ctx: caller(), req: byName(g.out.Name), code: codes.NotFound},
		{what: "Instantly id of a workspace out of scope", ctx: caller(), req: byID(g.out.InstantlyID), code: codes.NotFound},
		{what: "unregistered id, scoped caller", ctx: caller(), req: byID(g.unregisteredIID), code: codes.NotFound},
		{what: "unregistered id, unscoped caller", ctx: servicetest.Admin(), req: byID(g.unregisteredIID), sub: g.unregisteredIID},
		{what: "id Instantly does not know", ctx: servicetest.Admin(), req: byID("00000000-0000-4000-8000-000000000000"), code: codes.NotFound},
		{what: "already linked", ctx: caller(), req: byName(g.in.Name), code: codes.Aborted},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			c.req.Parent = g.admin.Name
			before := g.links(t, g.admin.InstantlyID)
			gm, err := g.svc.InviteGroupMember(c.ctx, c.req)
			if c.code != codes.OK {
				e := servicetest.WantCode(t, err, c.code)
				if c.code == codes.NotFound && c.req.GetInstantlyWorkspaceId() != "" &&
					(e.Resource.GetResourceType() != "Instantly workspace" || e.Resource.GetResourceName() != c.req.GetInstantlyWorkspaceId()) {
					t.Fatalf("resource %v: an id the caller may not use must answer as an unknown id", e.Resource)
				}
				if after := g.links(t, g.admin.InstantlyID); after != before {
					t.Fatalf("links %d → %d", before, after)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if gm.GetSubWorkspaceId() != c.sub || gm.GetAdminWorkspaceId() != g.admin.InstantlyID ||
				gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING || gm.GetRegisteredWorkspace() != c.registered ||
				gm.GetName() != g.admin.Name+"/groupMembers/"+gm.GetId() || gm.GetAdminWorkspaceName() != "hq" {
				t.Fatalf("answer %v", gm)
			}
			if got := g.e.State(t, c.sub).GroupMembers; len(got) != 1 || got[0].ID != gm.GetId() || got[0].AdminWorkspaceID != g.admin.InstantlyID {
				t.Fatalf("upstream links of the sub: %+v", got)
			}
		})
	}
	req := byName(g.in.Name)
	req.Parent = g.out.Name // the admin itself out of scope
	_, err := g.svc.InviteGroupMember(caller(), req)
	servicetest.WantCode(t, err, codes.NotFound)
}

// TestListGroupMembers: every link is listed once across small pages; a
// sub's registry name is shown only when the caller may see it.
func TestListGroupMembers(t *testing.T) {
	g := newGroup(t, sim.Config{})
	for _, sub := range []string{g.in.InstantlyID, g.out.InstantlyID, g.unregisteredIID} {
		if _, err := g.e.Sim.InviteGroupMember(g.admin.InstantlyID, sub); err != nil {
			t.Fatal(err)
		}
	}
	registered := map[string]string{} // sub Instantly id → registered_workspace
	pages := servicetest.WalkPages(t, 3, func(token string) (string, error) {
		resp, err := g.svc.ListGroupMembers(caller(), &agencyv1.ListGroupMembersRequest{Parent: g.admin.Name, PageSize: 2, PageToken: token})
		for _, gm := range resp.GetGroupMembers() {
			if _, dup := registered[gm.GetSubWorkspaceId()]; dup {
				t.Fatalf("%s listed twice", gm.GetSubWorkspaceId())
			}
			registered[gm.GetSubWorkspaceId()] = gm.GetRegisteredWorkspace()
		}
		return resp.GetNextPageToken(), err
	})
	if pages != 2 {
		t.Fatalf("%d pages, want 2", pages)
	}
	want := map[string]string{g.in.InstantlyID: g.in.Name, g.out.InstantlyID: "", g.unregisteredIID: ""}
	if len(registered) != len(want) {
		t.Fatalf("listed %v", registered)
	}
	for sub, name := range want {
		if registered[sub] != name {
			t.Errorf("sub %s shown as %q, want %q", sub, registered[sub], name)
		}
	}

	// The token belongs to this listing; the admin out of scope is NOT_FOUND.
	first, err := g.svc.ListGroupMembers(caller(), &agencyv1.ListGroupMembersRequest{Parent: g.admin.Name, PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.svc.ListGroupMembers(caller(), &agencyv1.ListGroupMembersRequest{Parent: g.in.Name, PageSize: 1, PageToken: first.GetNextPageToken()})
	servicetest.WantField(t, err, "page_token")
	_, err = g.svc.ListGroupMembers(caller(), &agencyv1.ListGroupMembersRequest{Parent: g.out.Name})
	servicetest.WantCode(t, err, codes.NotFound)
}

// TestRemoveGroupMember: the link goes upstream; an unknown link is
// NOT_FOUND naming our resource; a malformed name is the name's fault.
func TestRemoveGroupMember(t *testing.T) {
	g := newGroup(t, sim.Config{})
	link, err := g.e.Sim.InviteGroupMember(g.admin.InstantlyID, g.in.InstantlyID)
	if err != nil {
		t.Fatal(err)
	}
	name := g.admin.Name + "/groupMembers/" + link.ID
	gm, err := g.svc.RemoveGroupMember(caller(), &agencyv1.RemoveGroupMemberRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if gm.GetName() != name || gm.GetRegisteredWorkspace() != g.in.Name || g.links(t, g.admin.InstantlyID) != 0 {
		t.Fatalf("answer %v; admin links %d", gm, g.links(t, g.admin.InstantlyID))
	}
	_, err = g.svc.RemoveGroupMember(caller(), &agencyv1.RemoveGroupMemberRequest{Name: name})
	if e := servicetest.WantCode(t, err, codes.NotFound); e.Resource.GetResourceName() != name {
		t.Fatalf("resource %v, want %s", e.Resource, name)
	}
	_, err = g.svc.RemoveGroupMember(caller(), &agencyv1.RemoveGroupMemberRequest{Name: g.admin.Name + "/members/" + link.ID})
	servicetest.WantField(t, err, "name")
	// A link of a workspace out of scope is out of reach, and stays.
	outLink, err := g.e.Sim.InviteGroupMember(g.out.InstantlyID, g.unregisteredIID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.svc.RemoveGroupMember(caller(), &agencyv1.RemoveGroupMemberRequest{Name: g.out.Name + "/groupMembers/" + outLink.ID})
	servicetest.WantCode(t, err, codes.NotFound)
	if g.links(t, g.out.InstantlyID) != 1 {
		t.Fatal("out-of-scope link removed")
	}
}

// TestGetGroupAdmin: a sub reports its admin once it accepted, not before.
func TestGetGroupAdmin(t *testing.T) {
	g := newGroup(t, sim.Config{})
	link, err := g.e.Sim.InviteGroupMember(g.admin.InstantlyID, g.in.InstantlyID)
	if err != nil {
		t.Fatal(err)
	}
	get := func() *agencyv1.GroupAdmin {
		t.Helper()
		a, err := g.svc.GetGroupAdmin(caller(), &agencyv1.GetGroupAdminRequest{Name: g.in.Name})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := get(); a.GetHasAdminWorkspace() || a.GetGroupMemberId() != "" {
		t.Fatalf("pending: %v", a)
	}
	if err := g.e.Sim.AcceptGroupMember(link.ID); err != nil {
		t.Fatal(err)
	}
	if a := get(); !a.GetHasAdminWorkspace() || a.GetGroupMemberId() != link.ID || a.GetInstantlyWorkspaceName() != "hq" {
		t.Fatalf("accepted: %v", a)
	}
	_, err = g.svc.GetGroupAdmin(caller(), &agencyv1.GetGroupAdminRequest{Name: g.out.Name})
	servicetest.WantCode(t, err, codes.NotFound)
}

// TestGroupUpstreamFailures: the admin's failing Instantly reaches the
// caller with the documented codes, for reads and writes alike.
func TestGroupUpstreamFailures(t *testing.T) {
	build := func(t *testing.T, cfg sim.Config) (*group, *servicetest.Env, string) {
		g := newGroup(t, cfg)
		return g, g.e, g.admin.InstantlyID
	}
	servicetest.EachUpstreamFailure(t, build, func(g *group) map[string]error {
		invite := byID(g.in.InstantlyID)
		invite.Parent = g.admin.Name
		_, inviteErr := g.svc.InviteGroupMember(caller(), invite)
		_, listErr := g.svc.ListGroupMembers(caller(), &agencyv1.ListGroupMembersRequest{Parent: g.admin.Name})
		_, adminErr := g.svc.GetGroupAdmin(caller(), &agencyv1.GetGroupAdminRequest{Name: g.admin.Name})
		return map[string]error{"invite": inviteErr, "list": listErr, "admin": adminErr}
	})
}
