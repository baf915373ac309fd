package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// seedEnv is one transport's view for the seed-document steps.
type seedEnv struct {
	t   *testing.T
	e   *env
	inv invoker
	tag string // keeps the two transports' workspaces apart
}

func (s *seedEnv) call(method string, req, resp proto.Message) error {
	s.t.Helper()
	return s.inv.Invoke(context.Background(), method, req, resp)
}

func (s *seedEnv) must(method string, req, resp proto.Message) {
	s.t.Helper()
	if err := s.call(method, req, resp); err != nil {
		s.t.Fatalf("%s over %s: %v", method, s.inv.Transport(), err)
	}
}

// register creates a simulator workspace and registers it; it returns the
// registry name and the Instantly id.
func (s *seedEnv) register(label string) (string, string) {
	s.t.Helper()
	id, key := s.e.sim.CreateWorkspaceWithOwner(label+" "+s.tag, fmt.Sprintf("owner-%s-%s@agency.test", label, s.tag))
	var w agencyv1.Workspace
	s.must("agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{
		WorkspaceId: label + "-" + s.tag,
		Workspace:   &agencyv1.Workspace{DisplayName: label, ApiKey: &key, Labels: map[string]string{"client": label}},
	}, &w)
	return w.GetName(), id
}

// TestSeedSteps runs every step of the seed document through agencyd, over
// gRPC and over REST, against the simulator.
func TestSeedSteps(t *testing.T) {
	e := startEnv(t, memoryBackend)
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			s := &seedEnv{t: t, e: e, inv: inv, tag: inv.Transport()}
			t.Run("Members", s.members)
			t.Run("ScopedKeysAndAudit", s.apiKeys)
			t.Run("GroupMembers", s.groups)
			t.Run("Tags", s.tags)
			t.Run("OwnershipTransfer", s.ownership)
		})
	}
}

func (s *seedEnv) members(t *testing.T) {
	s.t = t
	ws, instID := s.register("members")
	var list agencyv1.ListMembersResponse
	s.must("agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: ws}, &list)
	if len(list.GetMembers()) != 1 || list.GetMembers()[0].GetRole() != agencyv1.MemberRole_MEMBER_ROLE_OWNER {
		t.Fatalf("initial members: %v", list.GetMembers())
	}
	var m agencyv1.Member
	s.must("agency.v1.MemberService/InviteMember", &agencyv1.InviteMemberRequest{Parent: ws, Email: "sdr@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR}, &m)
	if m.GetAccepted() || m.GetRole() != agencyv1.MemberRole_MEMBER_ROLE_EDITOR || !strings.HasPrefix(m.GetName(), ws+"/members/") {
		t.Fatalf("invited: %v", &m)
	}
	// Read-before-write: a second invite is ALREADY_EXISTS naming the member.
	err := s.call("agency.v1.MemberService/InviteMember", &agencyv1.InviteMemberRequest{Parent: ws, Email: "SDR@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{})
	st := wantCode(t, err, codes.AlreadyExists)
	if ei := errorInfo(st); ei.GetMetadata()["member"] != m.GetName() {
		t.Fatalf("ErrorInfo %v", ei)
	}
	// Bad input never reaches Instantly.
	for _, bad := range []*agencyv1.InviteMemberRequest{
		{Parent: ws, Email: "not-an-email", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW},
		{Parent: ws, Email: "a@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_OWNER},
		{Parent: ws, Email: "a@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_CLIENT},
		{Parent: ws, Email: "a@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW, Permissions: []string{"root.everything"}},
	} {
		before := totalUpstreamRequests(s.e)
		st := wantCode(t, s.call("agency.v1.MemberService/InviteMember", bad, &agencyv1.Member{}), codes.InvalidArgument)
		if len(fieldViolations(st)) == 0 || totalUpstreamRequests(s.e) != before {
			t.Fatalf("bad invite %v: %v (upstream calls %d)", bad, st, totalUpstreamRequests(s.e)-before)
		}
	}
	if err := s.e.sim.AcceptMember(instID, m.GetId()); err != nil {
		t.Fatal(err)
	}
	accepted := true
	s.must("agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: ws, Accepted: &accepted}, &list)
	if len(list.GetMembers()) != 2 {
		t.Fatalf("accepted members: %v", list.GetMembers())
	}
	var got agencyv1.Member
	s.must("agency.v1.MemberService/GetMember", &agencyv1.GetMemberRequest{Name: ws + "/members/sdr@agency.test"}, &got)
	if got.GetId() != m.GetId() || !got.GetAccepted() {
		t.Fatalf("get by email: %v", &got)
	}
	s.must("agency.v1.MemberService/UpdateMemberRole", &agencyv1.UpdateMemberRoleRequest{Name: m.GetName(), Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &got)
	if got.GetRole() != agencyv1.MemberRole_MEMBER_ROLE_VIEW {
		t.Fatalf("role: %v", &got)
	}
	owner := list.GetMembers()[0]
	if owner.GetRole() != agencyv1.MemberRole_MEMBER_ROLE_OWNER {
		owner = list.GetMembers()[1]
	}
	wantCode(t, s.call("agency.v1.MemberService/RemoveMember", &agencyv1.RemoveMemberRequest{Name: owner.GetName()}, &agencyv1.Member{}), codes.FailedPrecondition)
	s.must("agency.v1.MemberService/RemoveMember", &agencyv1.RemoveMemberRequest{Name: m.GetName()}, &got)
	wantCode(t, s.call("agency.v1.MemberService/GetMember", &agencyv1.GetMemberRequest{Name: m.GetName()}, &got), codes.NotFound)
	wantCode(t, s.call("agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: ws, PageSize: 101}, &list), codes.InvalidArgument)
}

func (s *seedEnv) apiKeys(t *testing.T) {
	s.t = t
	ws, _ := s.register("keys")
	var sdr agencyv1.CreateApiKeyResponse
	s.must("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "SDR — Campaign Management", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR}, &sdr)
	if sdr.GetSecret() == "" || sdr.GetApiKey().GetOverPrivileged() || !slices.Contains(sdr.GetApiKey().GetScopes(), "campaigns:update") {
		t.Fatalf("sdr key: %v", sdr.GetApiKey())
	}
	var analytics agencyv1.CreateApiKeyResponse
	s.must("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "Marketing — Analytics", Scopes: []string{"campaigns:read", "accounts:read"}}, &analytics)
	st := wantCode(t, s.call("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "x", Scopes: []string{"campaigns:fly"}}, &analytics), codes.InvalidArgument)
	wantField(t, st, "scopes[0]")
	wantCode(t, s.call("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "x", Scopes: []string{"leads:read"}, Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER}, &analytics), codes.InvalidArgument)

	// The over-privileged audit: the workspace's original all:all key is flagged.
	var keys agencyv1.ListApiKeysResponse
	s.must("agency.v1.ApiKeyService/ListApiKeys", &agencyv1.ListApiKeysRequest{Parent: ws}, &keys)
	flagged := 0
	for _, k := range keys.GetApiKeys() {
		if k.GetOverPrivileged() {
			flagged++
		}
	}
	if len(keys.GetApiKeys()) < 3 || flagged != 1 {
		t.Fatalf("keys %v, %d flagged", keys.GetApiKeys(), flagged)
	}
	var revoked agencyv1.ApiKey
	s.must("agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: sdr.GetApiKey().GetName()}, &revoked)
	wantCode(t, s.call("agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: sdr.GetApiKey().GetName()}, &revoked), codes.NotFound)

	// Instantly's audit log recorded the key creations and the deletion.
	var logs agencyv1.ListAuditLogsResponse
	s.must("agency.v1.AuditLogService/ListAuditLogs", &agencyv1.ListAuditLogsRequest{Parent: ws}, &logs)
	types := map[int32]int{}
	for _, l := range logs.GetAuditLogs() {
		types[l.GetActivityType()]++
	}
	if types[37] != 2 || types[38] != 1 {
		t.Fatalf("audit activity types %v", types)
	}
	s.must("agency.v1.AuditLogService/ListAuditLogs", &agencyv1.ListAuditLogsRequest{Parent: ws, ActivityType: 38}, &logs)
	if len(logs.GetAuditLogs()) != 1 || logs.GetAuditLogs()[0].GetActivity() == "" {
		t.Fatalf("filtered audit: %v", logs.GetAuditLogs())
	}
	// The same entries through the cross-workspace view, newest first.
	var merged agencyv1.ListInstantlyAuditLogsResponse
	s.must("agency.v1.AuditService/ListInstantlyAuditLogs", &agencyv1.ListInstantlyAuditLogsRequest{Filter: "client=keys"}, &merged)
	if len(merged.GetEntries()) < 3 || len(merged.GetErrors()) != 0 {
		t.Fatalf("merged audit: %d entries, errors %v", len(merged.GetEntries()), merged.GetErrors())
	}
	for i, e := range merged.GetEntries() {
		if e.GetWorkspace() != ws && !strings.HasPrefix(e.GetWorkspace(), "workspaces/keys-") {
			t.Fatalf("entry from %s", e.GetWorkspace())
		}
		if i > 0 && e.GetEntry().GetTime().AsTime().After(merged.GetEntries()[i-1].GetEntry().GetTime().AsTime()) {
			t.Fatal("merged entries are not newest first")
		}
	}

	// A key created as the stored credential: its secret stays sealed in
	// the control plane, and it cannot be revoked through it.
	var stored agencyv1.CreateApiKeyResponse
	s.must("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "control plane", Scopes: []string{"all:all"}, StoreAsCredential: true}, &stored)
	if stored.GetSecret() != "" || !stored.GetApiKey().GetIsStoredCredential() {
		t.Fatalf("stored credential: %v (secret returned: %v)", stored.GetApiKey(), stored.GetSecret() != "")
	}
	var w agencyv1.Workspace
	s.must("agency.v1.WorkspaceService/VerifyWorkspace", &agencyv1.VerifyWorkspaceRequest{Name: ws}, &w)
	if w.GetState() != agencyv1.Workspace_STATE_ACTIVE {
		t.Fatalf("verify with the new stored key: %v", &w)
	}
	wantCode(t, s.call("agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: stored.GetApiKey().GetName()}, &revoked), codes.FailedPrecondition)
	// A stored credential must be able to verify itself.
	wantField(t, wantCode(t, s.call("agency.v1.ApiKeyService/CreateApiKey", &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "x", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR, StoreAsCredential: true}, &stored), codes.InvalidArgument), "store_as_credential")
}

func (s *seedEnv) groups(t *testing.T) {
	s.t = t
	admin, _ := s.register("agency")
	subID, _ := s.e.sim.CreateWorkspaceWithOwner("client sub "+s.tag, "sub-"+s.tag+"@client.test")
	var gm agencyv1.GroupMember
	s.must("agency.v1.GroupMemberService/InviteGroupMember", &agencyv1.InviteGroupMemberRequest{Parent: admin, SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: subID}}, &gm)
	if gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING || gm.GetSubWorkspaceId() != subID {
		t.Fatalf("invited: %v", &gm)
	}
	// The same sub again is a hierarchy conflict upstream.
	st := wantCode(t, s.call("agency.v1.GroupMemberService/InviteGroupMember", &agencyv1.InviteGroupMemberRequest{Parent: admin, SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: subID}}, &gm), codes.Aborted)
	wantReason(t, st, "CONFLICT")
	if err := s.e.sim.AcceptGroupMember(gm.GetId()); err != nil {
		t.Fatal(err)
	}
	var list agencyv1.ListGroupMembersResponse
	s.must("agency.v1.GroupMemberService/ListGroupMembers", &agencyv1.ListGroupMembersRequest{Parent: admin}, &list)
	if len(list.GetGroupMembers()) != 1 || list.GetGroupMembers()[0].GetStatus() != agencyv1.GroupMember_STATUS_ACCEPTED {
		t.Fatalf("group: %v", list.GetGroupMembers())
	}
	// Register the sub through the admin's key, then work on it.
	var found agencyv1.DiscoverSubWorkspacesResponse
	s.must("agency.v1.WorkspaceService/DiscoverSubWorkspaces", &agencyv1.DiscoverSubWorkspacesRequest{Name: admin, Register: true, Labels: map[string]string{"client": "sub"}}, &found)
	if len(found.GetSubWorkspaces()) != 1 || !found.GetSubWorkspaces()[0].GetRegisteredNow() {
		t.Fatalf("discover: %v", found.GetSubWorkspaces())
	}
	sub := found.GetSubWorkspaces()[0].GetRegisteredWorkspace()
	var w agencyv1.Workspace
	s.must("agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: sub}, &w)
	if w.GetAdminWorkspace() != admin || w.GetInstantlyWorkspaceId() != subID {
		t.Fatalf("sub registry entry: %v", &w)
	}
	var members agencyv1.ListMembersResponse
	s.must("agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: sub}, &members)
	if len(members.GetMembers()) != 1 || members.GetMembers()[0].GetEmail() != "sub-"+s.tag+"@client.test" {
		t.Fatalf("sub members via x-as-workspace: %v", members.GetMembers())
	}
	s.must("agency.v1.WorkspaceService/DiscoverSubWorkspaces", &agencyv1.DiscoverSubWorkspacesRequest{Name: admin, Register: true}, &found)
	if found.GetSubWorkspaces()[0].GetRegisteredNow() || found.GetSubWorkspaces()[0].GetRegisteredWorkspace() != sub {
		t.Fatalf("second discovery re-registered: %v", found.GetSubWorkspaces())
	}
	var ga agencyv1.GroupAdmin
	s.must("agency.v1.GroupMemberService/GetGroupAdmin", &agencyv1.GetGroupAdminRequest{Name: sub}, &ga)
	if !ga.GetHasAdminWorkspace() || ga.GetGroupMemberId() != gm.GetId() {
		t.Fatalf("group admin: %v", &ga)
	}
	s.must("agency.v1.GroupMemberService/RemoveGroupMember", &agencyv1.RemoveGroupMemberRequest{Name: admin + "/groupMembers/" + gm.GetId()}, &gm)
	// The admin key no longer reaches the sub.
	wantCode(t, s.call("agency.v1.MemberService/ListMembers", &agencyv1.ListMembersRequest{Parent: sub}, &members), codes.PermissionDenied)
}

func (s *seedEnv) tags(t *testing.T) {
	s.t = t
	ws, instID := s.register("tags")
	var west agencyv1.Tag
	s.must("agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: ws, Tag: &agencyv1.Tag{Label: "SDR-West", Description: "Resources owned by SDR-West"}}, &west)
	wantCode(t, s.call("agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: ws, Tag: &agencyv1.Tag{Label: "  SDR-West "}}, &agencyv1.Tag{}), codes.AlreadyExists)
	wantField(t, wantCode(t, s.call("agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: ws, Tag: &agencyv1.Tag{Label: "   "}}, &agencyv1.Tag{}), codes.InvalidArgument), "tag.label")
	var east agencyv1.Tag
	s.must("agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: ws, Tag: &agencyv1.Tag{Label: "SDR-East"}}, &east)

	c1, _ := s.e.sim.AddCampaign(instID, "West outbound")
	c2, _ := s.e.sim.AddCampaign(instID, "East outbound")
	a1, _ := s.e.sim.AddAccount(instID, "west@sender.test")
	_, _ = s.e.sim.AddAccount(instID, "east@sender.test")
	s.must("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{west.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{c1.ID}}, &emptypb.Empty{})
	s.must("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{west.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{c1.ID}}, &emptypb.Empty{})
	s.must("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{west.GetName(), east.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT, ResourceIds: []string{a1.Email}}, &emptypb.Empty{})
	// Ids of the wrong kind, and tags of another workspace, are refused up front.
	wantField(t, wantCode(t, s.call("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{west.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{"west@sender.test"}}, &emptypb.Empty{}), codes.InvalidArgument), "resource_ids[0]")
	wantField(t, wantCode(t, s.call("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{west.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT, ResourceIds: []string{c2.ID}}, &emptypb.Empty{}), codes.InvalidArgument), "resource_ids[0]")
	wantField(t, wantCode(t, s.call("agency.v1.TagService/AssignTags", &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{"workspaces/other/tags/x"}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT, ResourceIds: []string{a1.Email}}, &emptypb.Empty{}), codes.InvalidArgument), "tags[0]")

	var campaigns agencyv1.ListCampaignsResponse
	s.must("agency.v1.TagService/ListCampaigns", &agencyv1.ListCampaignsRequest{Parent: ws, Tags: []string{west.GetName()}}, &campaigns)
	if len(campaigns.GetCampaigns()) != 1 || campaigns.GetCampaigns()[0].GetId() != c1.ID {
		t.Fatalf("campaigns by tag: %v", campaigns.GetCampaigns())
	}
	var accounts agencyv1.ListAccountsResponse
	s.must("agency.v1.TagService/ListAccounts", &agencyv1.ListAccountsRequest{Parent: ws, Tags: []string{west.GetName(), east.GetName()}, MatchAllTags: true}, &accounts)
	if len(accounts.GetAccounts()) != 1 || accounts.GetAccounts()[0].GetEmail() != a1.Email {
		t.Fatalf("accounts by all tags: %v", accounts.GetAccounts())
	}
	var mappings agencyv1.ListTagMappingsResponse
	s.must("agency.v1.TagService/ListTagMappings", &agencyv1.ListTagMappingsRequest{Parent: ws}, &mappings)
	if len(mappings.GetTagMappings()) != 3 {
		t.Fatalf("mappings (assigning twice keeps one): %v", mappings.GetTagMappings())
	}
	s.must("agency.v1.TagService/UnassignTags", &agencyv1.UnassignTagsRequest{Parent: ws, Tags: []string{west.GetName()}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{c1.ID}}, &emptypb.Empty{})
	s.must("agency.v1.TagService/ListCampaigns", &agencyv1.ListCampaignsRequest{Parent: ws, Tags: []string{west.GetName()}}, &campaigns)
	if len(campaigns.GetCampaigns()) != 0 {
		t.Fatalf("after unassign: %v", campaigns.GetCampaigns())
	}
	var upd agencyv1.Tag
	s.must("agency.v1.TagService/UpdateTag", &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: west.GetName(), Label: "SDR-West-2"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label"}}}, &upd)
	if upd.GetLabel() != "SDR-West-2" || upd.GetDescription() != "Resources owned by SDR-West" {
		t.Fatalf("updated: %v", &upd)
	}
	var tagsList agencyv1.ListTagsResponse
	s.must("agency.v1.TagService/ListTags", &agencyv1.ListTagsRequest{Parent: ws, PageSize: 1}, &tagsList)
	if len(tagsList.GetTags()) != 1 || tagsList.GetNextPageToken() == "" {
		t.Fatalf("tags page 1: %v", &tagsList)
	}
	s.must("agency.v1.TagService/ListTags", &agencyv1.ListTagsRequest{Parent: ws, PageSize: 1, PageToken: tagsList.GetNextPageToken()}, &tagsList)
	if len(tagsList.GetTags()) != 1 {
		t.Fatalf("tags page 2: %v", &tagsList)
	}
	s.must("agency.v1.TagService/DeleteTag", &agencyv1.DeleteTagRequest{Name: west.GetName()}, &upd)
	wantCode(t, s.call("agency.v1.TagService/GetTag", &agencyv1.GetTagRequest{Name: west.GetName()}, &upd), codes.NotFound)
}

func (s *seedEnv) ownership(t *testing.T) {
	s.t = t
	ws, instID := s.register("owner")
	m, err := s.e.sim.InviteMember(instID, "new-owner-"+s.tag+"@agency.test", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.e.sim.AcceptMember(instID, m.ID); err != nil {
		t.Fatal(err)
	}
	sec, err := s.e.sim.OwnerTransferSecret(instID)
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.call("agency.v1.WorkspaceService/TransferOwnership", &agencyv1.TransferOwnershipRequest{Name: ws, Email: m.Email, Sec: "wrong"}, &agencyv1.Workspace{}), codes.PermissionDenied)
	s.must("agency.v1.WorkspaceService/TransferOwnership", &agencyv1.TransferOwnershipRequest{Name: ws, Email: m.Email, Sec: sec}, &agencyv1.Workspace{})
	var got agencyv1.Member
	s.must("agency.v1.MemberService/GetMember", &agencyv1.GetMemberRequest{Name: ws + "/members/" + m.Email}, &got)
	if got.GetRole() != agencyv1.MemberRole_MEMBER_ROLE_OWNER {
		t.Fatalf("new owner: %v", &got)
	}
	var w agencyv1.Workspace
	s.must("agency.v1.WorkspaceService/RenameInstantlyWorkspace", &agencyv1.RenameInstantlyWorkspaceRequest{Name: ws, InstantlyWorkspaceName: "Renamed " + s.tag}, &w)
	if w.GetInstantlyWorkspaceName() != "Renamed "+s.tag {
		t.Fatalf("renamed: %v", &w)
	}
	if strings.Contains(s.e.logs.String(), sec) {
		t.Fatal("the transfer secret reached the logs")
	}
}
