package instantly_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestWorkspaceRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	ws := must[*instantly.Workspace](t)(e.client.GetCurrentWorkspace(ctx, e.cred))
	if ws.ID != e.wsID || ws.Name != "Acme" {
		t.Fatalf("workspace = %+v", ws)
	}
	ws = must[*instantly.Workspace](t)(e.client.UpdateCurrentWorkspace(ctx, e.cred, instantly.UpdateCurrentWorkspaceRequest{
		Name: ptr("Acme 2"), OrgLogoURL: ptr("https://acme.example/logo.png")}))
	if ws.Name != "Acme 2" || ws.OrgLogoURL == nil || *ws.OrgLogoURL != "https://acme.example/logo.png" {
		t.Fatalf("updated = %+v", ws)
	}
	ws = must[*instantly.Workspace](t)(e.client.UpdateCurrentWorkspace(ctx, e.cred, instantly.UpdateCurrentWorkspaceRequest{ClearOrgLogoURL: true}))
	if ws.OrgLogoURL != nil {
		t.Fatalf("logo not cleared: %q", *ws.OrgLogoURL)
	}
}

func TestWorkspaceMembersRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	created := must[*instantly.WorkspaceMember](t)(e.client.CreateWorkspaceMember(ctx, e.cred, instantly.CreateWorkspaceMemberRequest{
		Email:       "ana@client.example",
		Role:        instantly.RoleEditor,
		Permissions: []string{instantly.PermissionCampaignsView, instantly.PermissionUniboxAll},
		Nickname:    ptr("Ana"),
	}))
	if created.ID == "" || created.Email != "ana@client.example" || created.Role != instantly.RoleEditor || created.Accepted {
		t.Fatalf("created = %+v", created)
	}
	if !slices.Equal(created.Permissions, []string{"campaigns.view", "unibox.all"}) || created.Nickname == nil || *created.Nickname != "Ana" {
		t.Fatalf("created permissions/nickname = %v %v", created.Permissions, created.Nickname)
	}

	got := must[*instantly.WorkspaceMember](t)(e.client.GetWorkspaceMember(ctx, e.cred, created.ID))
	if got.ID != created.ID || got.Email != created.Email {
		t.Fatalf("get = %+v", got)
	}

	pending := must[*instantly.Page[instantly.WorkspaceMember]](t)(e.client.ListWorkspaceMembers(ctx, e.cred,
		instantly.ListWorkspaceMembersParams{Limit: 10, Accepted: ptr(false)}))
	if len(pending.Items) != 1 || pending.Items[0].ID != created.ID {
		t.Fatalf("pending = %+v", pending.Items)
	}
	found := must[*instantly.Page[instantly.WorkspaceMember]](t)(e.client.ListWorkspaceMembers(ctx, e.cred,
		instantly.ListWorkspaceMembersParams{Search: "ANA@client"}))
	if len(found.Items) != 1 {
		t.Fatalf("search = %+v", found.Items)
	}
	all, err := instantly.Collect(e.client.AllWorkspaceMembers(ctx, e.cred, instantly.ListWorkspaceMembersParams{}))
	if err != nil || len(all) != 2 { // the owner and Ana
		t.Fatalf("all = %v, %v", all, err)
	}

	role := instantly.RoleView
	upd := must[*instantly.WorkspaceMember](t)(e.client.UpdateWorkspaceMember(ctx, e.cred, created.ID,
		instantly.UpdateWorkspaceMemberRequest{Role: &role, Nickname: ptr("Ana B.")}))
	if upd.Role != instantly.RoleView || upd.Nickname == nil || *upd.Nickname != "Ana B." {
		t.Fatalf("updated = %+v", upd)
	}
	upd = must[*instantly.WorkspaceMember](t)(e.client.UpdateWorkspaceMember(ctx, e.cred, created.ID,
		instantly.UpdateWorkspaceMemberRequest{ClearNickname: true}))
	if upd.Nickname != nil {
		t.Fatalf("nickname not cleared: %q", *upd.Nickname)
	}

	del := must[*instantly.WorkspaceMember](t)(e.client.DeleteWorkspaceMember(ctx, e.cred, created.ID))
	if del.ID != created.ID {
		t.Fatalf("deleted = %+v", del)
	}
	_, err = e.client.GetWorkspaceMember(ctx, e.cred, created.ID)
	if apiStatus(err) != http.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
	if _, err := e.client.GetWorkspaceMember(ctx, e.cred, ""); err == nil {
		t.Fatal("empty id accepted")
	}
}

func TestWorkspaceGroupMembersRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	subID, subKey := e.sim.CreateWorkspace("Client Co")
	subCred := instantly.Credential{APIKey: subKey}

	admin := must[*instantly.WorkspaceGroupAdmin](t)(e.client.GetWorkspaceGroupAdmin(ctx, subCred))
	if admin.HasAdminWorkspace || admin.WorkspaceGroupMemberID != nil {
		t.Fatalf("admin before invitation = %+v", admin)
	}

	gm := must[*instantly.WorkspaceGroupMember](t)(e.client.CreateWorkspaceGroupMember(ctx, e.cred,
		instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: subID}))
	if gm.Status != instantly.GroupMemberPending || gm.AdminWorkspaceID != e.wsID || gm.SubWorkspaceID != subID {
		t.Fatalf("group member = %+v", gm)
	}
	got := must[*instantly.WorkspaceGroupMember](t)(e.client.GetWorkspaceGroupMember(ctx, e.cred, gm.ID))
	if got.ID != gm.ID {
		t.Fatalf("get = %+v", got)
	}
	list, err := instantly.Collect(e.client.AllWorkspaceGroupMembers(ctx, e.cred, instantly.ListParams{}))
	if err != nil || len(list) != 1 || list[0].ID != gm.ID {
		t.Fatalf("list = %+v, %v", list, err)
	}

	// The sub workspace's owner accepts; the admin key then acts on it.
	if err := e.sim.AcceptGroupMember(gm.ID); err != nil {
		t.Fatal(err)
	}
	admin = must[*instantly.WorkspaceGroupAdmin](t)(e.client.GetWorkspaceGroupAdmin(ctx, subCred))
	if !admin.HasAdminWorkspace || admin.WorkspaceGroupMemberID == nil || *admin.WorkspaceGroupMemberID != gm.ID {
		t.Fatalf("admin after acceptance = %+v", admin)
	}
	asSub := instantly.Credential{APIKey: e.key, AsWorkspace: subID}
	ws := must[*instantly.Workspace](t)(e.client.GetCurrentWorkspace(ctx, asSub))
	if ws.ID != subID {
		t.Fatalf("x-as-workspace acted on %s, want %s", ws.ID, subID)
	}

	// A sub workspace cannot become an admin: hierarchy conflict, not retried.
	thirdID, _ := e.sim.CreateWorkspace("Third")
	_, err = e.client.CreateWorkspaceGroupMember(ctx, subCred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: thirdID})
	if apiStatus(err) != http.StatusConflict {
		t.Fatalf("sub as admin: %v", err)
	}

	del := must[*instantly.WorkspaceGroupMember](t)(e.client.DeleteWorkspaceGroupMember(ctx, e.cred, gm.ID))
	if del.ID != gm.ID {
		t.Fatalf("deleted = %+v", del)
	}
	if _, err := e.client.GetWorkspaceGroupMember(ctx, e.cred, gm.ID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestCustomTagsRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	tag := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{
		Label: "VIP", Description: ptr("top clients")}))
	if tag.ID == "" || tag.Label != "VIP" || tag.Description == nil || *tag.Description != "top clients" || tag.OrganizationID != e.wsID {
		t.Fatalf("created = %+v", tag)
	}
	other := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "Cold"}))

	got := must[*instantly.CustomTag](t)(e.client.GetCustomTag(ctx, e.cred, tag.ID))
	if got.ID != tag.ID {
		t.Fatalf("get = %+v", got)
	}
	page := must[*instantly.Page[instantly.CustomTag]](t)(e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Search: "vi"}))
	if len(page.Items) != 1 || page.Items[0].ID != tag.ID {
		t.Fatalf("search = %+v", page.Items)
	}
	page = must[*instantly.Page[instantly.CustomTag]](t)(e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{TagIDs: []string{tag.ID, other.ID}}))
	if len(page.Items) != 2 {
		t.Fatalf("by tag ids = %+v", page.Items)
	}

	upd := must[*instantly.CustomTag](t)(e.client.UpdateCustomTag(ctx, e.cred, tag.ID, instantly.UpdateCustomTagRequest{Label: ptr("VIP+")}))
	if upd.Label != "VIP+" || upd.Description == nil {
		t.Fatalf("updated = %+v", upd)
	}
	upd = must[*instantly.CustomTag](t)(e.client.UpdateCustomTag(ctx, e.cred, tag.ID, instantly.UpdateCustomTagRequest{ClearDescription: true}))
	if upd.Description != nil {
		t.Fatalf("description not cleared: %q", *upd.Description)
	}

	// Tag a campaign id and an account email, then read the mappings back.
	campaignID, account := seedCampaign(t, e), seedAccount(t, e)
	if err := e.client.ToggleTagResource(ctx, e.cred, instantly.ToggleTagResourceRequest{
		TagIDs: []string{tag.ID}, ResourceType: instantly.ResourceTypeCampaign, Assign: true, ResourceIDs: []string{campaignID},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ToggleTagResource(ctx, e.cred, instantly.ToggleTagResourceRequest{
		TagIDs: []string{tag.ID, other.ID}, ResourceType: instantly.ResourceTypeAccount, Assign: true, ResourceIDs: []string{account},
	}); err != nil {
		t.Fatal(err)
	}
	maps, err := instantly.Collect(e.client.AllCustomTagMappings(ctx, e.cred, instantly.ListCustomTagMappingsParams{}))
	if err != nil || len(maps) != 3 {
		t.Fatalf("mappings = %+v, %v", maps, err)
	}
	byRes := must[*instantly.Page[instantly.CustomTagMapping]](t)(e.client.ListCustomTagMappings(ctx, e.cred,
		instantly.ListCustomTagMappingsParams{ResourceIDs: []string{campaignID}}))
	if len(byRes.Items) != 1 || byRes.Items[0].ResourceType != instantly.ResourceTypeCampaign || byRes.Items[0].TagID != tag.ID {
		t.Fatalf("mappings of the campaign = %+v", byRes.Items)
	}
	onAccount := must[*instantly.Page[instantly.CustomTag]](t)(e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{ResourceIDs: []string{account}}))
	if len(onAccount.Items) != 2 {
		t.Fatalf("tags on the account = %+v", onAccount.Items)
	}
	// Unassign everything from all accounts but none excluded, with the filter's object shape.
	if err := e.client.ToggleTagResource(ctx, e.cred, instantly.ToggleTagResourceRequest{
		TagIDs: []string{other.ID}, ResourceType: instantly.ResourceTypeAccount, Assign: false, SelectedAll: ptr(true),
		Filter: &instantly.ToggleResourceFilter{TagIDs: []string{other.ID}},
	}); err != nil {
		t.Fatal(err)
	}
	maps, err = instantly.Collect(e.client.AllCustomTagMappings(ctx, e.cred, instantly.ListCustomTagMappingsParams{ResourceIDs: []string{account}}))
	if err != nil || len(maps) != 1 || maps[0].TagID != tag.ID {
		t.Fatalf("mappings after unassign = %+v, %v", maps, err)
	}

	del := must[*instantly.CustomTag](t)(e.client.DeleteCustomTag(ctx, e.cred, other.ID))
	if del.ID != other.ID {
		t.Fatalf("deleted = %+v", del)
	}
	if _, err := e.client.GetCustomTag(ctx, e.cred, other.ID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestCampaignsAndAccountsFilters(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	tagA := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "A"}))
	tagB := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "B"}))
	var campaigns, accounts []string
	for range 3 {
		campaigns = append(campaigns, seedCampaign(t, e))
		accounts = append(accounts, seedAccount(t, e))
	}
	toggle := func(rt instantly.ResourceType, tags []string, ids ...string) {
		t.Helper()
		if err := e.client.ToggleTagResource(ctx, e.cred, instantly.ToggleTagResourceRequest{TagIDs: tags, ResourceType: rt, Assign: true, ResourceIDs: ids}); err != nil {
			t.Fatal(err)
		}
	}
	toggle(instantly.ResourceTypeCampaign, []string{tagA.ID}, campaigns[0])
	toggle(instantly.ResourceTypeCampaign, []string{tagB.ID}, campaigns[1])
	toggle(instantly.ResourceTypeAccount, []string{tagA.ID, tagB.ID}, accounts[0])
	toggle(instantly.ResourceTypeAccount, []string{tagA.ID}, accounts[1])

	all, err := instantly.Collect(e.client.AllCampaigns(ctx, e.cred, instantly.ListCampaignsParams{}))
	if err != nil || len(all) != 3 {
		t.Fatalf("campaigns = %d, %v", len(all), err)
	}
	anyTag := must[*instantly.Page[instantly.Campaign]](t)(e.client.ListCampaigns(ctx, e.cred, instantly.ListCampaignsParams{TagIDs: []string{tagA.ID, tagB.ID}}))
	if ids := campaignIDs(anyTag.Items); !sameSet(ids, campaigns[:2]) {
		t.Fatalf("campaigns with A or B = %v, want %v", ids, campaigns[:2])
	}

	accs, err := instantly.Collect(e.client.AllAccounts(ctx, e.cred, instantly.ListAccountsParams{}))
	if err != nil || len(accs) != 3 {
		t.Fatalf("accounts = %d, %v", len(accs), err)
	}
	anyA := must[*instantly.Page[instantly.Account]](t)(e.client.ListAccounts(ctx, e.cred, instantly.ListAccountsParams{TagIDs: []string{tagA.ID}}))
	if emails := accountEmails(anyA.Items); !sameSet(emails, accounts[:2]) {
		t.Fatalf("accounts with A = %v", emails)
	}
	both := must[*instantly.Page[instantly.Account]](t)(e.client.ListAccounts(ctx, e.cred, instantly.ListAccountsParams{TagIDsAll: []string{tagA.ID, tagB.ID}}))
	if emails := accountEmails(both.Items); !sameSet(emails, accounts[:1]) {
		t.Fatalf("accounts with A and B = %v", emails)
	}
}

func TestAPIKeysRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	k := must[*instantly.APIKey](t)(e.client.CreateAPIKey(ctx, e.cred, instantly.CreateAPIKeyRequest{
		Name: "agencyplane-readonly", Scopes: []string{"workspace_members:read", "custom_tags:all"}}))
	if k.ID == "" || k.Key == "" || k.Name != "agencyplane-readonly" || !slices.Equal(k.Scopes, []string{"workspace_members:read", "custom_tags:all"}) {
		t.Fatalf("created = %v", k)
	}
	if strings.Contains(fmt.Sprint(k), k.Key) || strings.Contains(fmt.Sprintf("%+v %#v", k, k), k.Key) {
		t.Fatal("APIKey formats its secret")
	}
	limited := instantly.Credential{APIKey: k.Key}
	if _, err := e.client.ListWorkspaceMembers(ctx, limited, instantly.ListWorkspaceMembersParams{}); err != nil {
		t.Fatalf("new key cannot read members: %v", err)
	}
	_, err := e.client.ListAPIKeys(ctx, limited, instantly.ListParams{})
	if apiStatus(err) != http.StatusForbidden {
		t.Fatalf("scoped key listing keys: %v", err)
	}
	noSecret(t, err, k.Key, e.key)

	keys, err := instantly.Collect(e.client.AllAPIKeys(ctx, e.cred, instantly.ListParams{}))
	if err != nil || len(keys) != 2 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	del := must[*instantly.APIKey](t)(e.client.DeleteAPIKey(ctx, e.cred, k.ID))
	if del.ID != k.ID {
		t.Fatalf("deleted = %v", del)
	}
	_, err = e.client.ListWorkspaceMembers(ctx, limited, instantly.ListWorkspaceMembersParams{})
	if apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("revoked key: %v", err)
	}
	noSecret(t, err, k.Key, e.key)
}

func TestAuditLogs(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	k := must[*instantly.APIKey](t)(e.client.CreateAPIKey(ctx, e.cred, instantly.CreateAPIKeyRequest{Name: "tmp", Scopes: []string{"all:read"}}))
	must[*instantly.APIKey](t)(e.client.DeleteAPIKey(ctx, e.cred, k.ID))

	logs, err := instantly.Collect(e.client.AllAuditLogs(ctx, e.cred, instantly.ListAuditLogsParams{}))
	if err != nil {
		t.Fatal(err)
	}
	types := map[instantly.AuditActivityType]bool{}
	for _, l := range logs {
		types[l.ActivityType] = true
		if l.OrganizationID != e.wsID {
			t.Errorf("log of another workspace: %+v", l)
		}
	}
	if !types[instantly.ActivityAPIKeyCreated] || !types[instantly.ActivityAPIKeyDeleted] {
		t.Fatalf("activity types = %v", types)
	}
	created := int(instantly.ActivityAPIKeyCreated)
	only := must[*instantly.Page[instantly.AuditLog]](t)(e.client.ListAuditLogs(ctx, e.cred, instantly.ListAuditLogsParams{
		Limit: 1000, ActivityType: &created, StartDate: "2000-01-01T00:00:00.000Z", EndDate: "2999-01-01T00:00:00.000Z"}))
	for _, l := range only.Items {
		if l.ActivityType != instantly.ActivityAPIKeyCreated {
			t.Fatalf("filtered by activity type, got %v", l.ActivityType)
		}
	}
	if len(only.Items) == 0 || instantly.ActivityAPIKeyCreated.String() != "API key created" {
		t.Fatalf("filtered = %+v", only.Items)
	}
}

func TestChangeWorkspaceOwner(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	m := must[*instantly.WorkspaceMember](t)(e.client.CreateWorkspaceMember(ctx, e.cred, instantly.CreateWorkspaceMemberRequest{
		Email: "new-owner@client.example", Role: instantly.RoleAdmin}))
	if err := e.sim.AcceptMember(e.wsID, m.ID); err != nil {
		t.Fatal(err)
	}
	sec, err := e.sim.OwnerTransferSecret(e.wsID)
	if err != nil {
		t.Fatal(err)
	}
	req := instantly.ChangeOwnerRequest{Email: m.Email, Sec: sec}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", req, req, req), sec) {
		t.Fatal("ChangeOwnerRequest formats its secret")
	}
	ws := must[*instantly.Workspace](t)(e.client.ChangeWorkspaceOwner(ctx, e.cred, req))
	if ws.Owner != m.UserID {
		t.Fatalf("owner = %s, want %s", ws.Owner, m.UserID)
	}
	// The secret is spent: a repeat is refused, and the refusal is not retried.
	e.hits.reset()
	_, err = e.client.ChangeWorkspaceOwner(ctx, e.cred, req)
	if err == nil || apiStatus(err) >= 500 {
		t.Fatalf("reused secret: %v", err)
	}
	if n := e.hits.get("POST /api/v2/workspaces/current/change-owner"); n != 1 {
		t.Fatalf("refused change-owner sent %d times", n)
	}
	noSecret(t, err, sec, e.key)
}

func campaignIDs(cs []instantly.Campaign) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func accountEmails(as []instantly.Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Email)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}
