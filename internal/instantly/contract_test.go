package instantly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// operations is the README's endpoint table: every operation the client
// implements, and so every one the contract test must see answered 2xx.
func operations() []string {
	return []string{
		"GET /api/v2/workspaces/current",
		"PATCH /api/v2/workspaces/current",
		"POST /api/v2/workspaces/current/change-owner",
		"GET /api/v2/workspace-members",
		"POST /api/v2/workspace-members",
		"GET /api/v2/workspace-members/{id}",
		"PATCH /api/v2/workspace-members/{id}",
		"DELETE /api/v2/workspace-members/{id}",
		"GET /api/v2/workspace-group-members",
		"POST /api/v2/workspace-group-members",
		"GET /api/v2/workspace-group-members/admin",
		"GET /api/v2/workspace-group-members/{id}",
		"DELETE /api/v2/workspace-group-members/{id}",
		"GET /api/v2/custom-tags",
		"POST /api/v2/custom-tags",
		"GET /api/v2/custom-tags/{id}",
		"PATCH /api/v2/custom-tags/{id}",
		"DELETE /api/v2/custom-tags/{id}",
		"POST /api/v2/custom-tags/toggle-resource",
		"GET /api/v2/custom-tag-mappings",
		"GET /api/v2/campaigns",
		"GET /api/v2/accounts",
		"GET /api/v2/api-keys",
		"POST /api/v2/api-keys",
		"DELETE /api/v2/api-keys/{id}",
		"GET /api/v2/audit-logs",
	}
}

// TestContractEveryEndpoint drives every operation through the client with
// every request and response checked against the spec (the contract
// transport fails the test on any violation), including each operation's
// documented error answers that can be provoked without breaking the request
// contract: 401, 404, 409, 429.
func TestContractEveryEndpoint(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	c, cred := e.client, e.cred
	subID, _ := e.sim.CreateWorkspace("Sub")

	// Workspaces.
	must[*instantly.Workspace](t)(c.GetCurrentWorkspace(ctx, cred))
	must[*instantly.Workspace](t)(c.UpdateCurrentWorkspace(ctx, cred, instantly.UpdateCurrentWorkspaceRequest{Name: ptr("Renamed"), ClearOrgLogoURL: true}))

	// Members, with every optional field.
	m := must[*instantly.WorkspaceMember](t)(c.CreateWorkspaceMember(ctx, cred, instantly.CreateWorkspaceMemberRequest{
		Email: "m@client.example", Role: instantly.RoleAdmin, Permissions: instantly.MemberPermissions(),
		Nickname: ptr("M"), UserEmail: ptr("m.user@client.example")}))
	must[*instantly.Page[instantly.WorkspaceMember]](t)(c.ListWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{
		Limit: 1, StartingAfter: "", Accepted: ptr(true), Search: "client"}))
	for _, err := range c.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must[*instantly.WorkspaceMember](t)(c.GetWorkspaceMember(ctx, cred, m.ID))
	role := instantly.RoleEditor
	must[*instantly.WorkspaceMember](t)(c.UpdateWorkspaceMember(ctx, cred, m.ID, instantly.UpdateWorkspaceMemberRequest{Role: &role, ClearNickname: true}))
	if err := e.sim.AcceptMember(e.wsID, m.ID); err != nil {
		t.Fatal(err)
	}
	sec, _ := e.sim.OwnerTransferSecret(e.wsID)
	must[*instantly.Workspace](t)(c.ChangeWorkspaceOwner(ctx, cred, instantly.ChangeOwnerRequest{Email: m.Email, Sec: sec}))
	other := must[*instantly.WorkspaceMember](t)(c.CreateWorkspaceMember(ctx, cred, instantly.CreateWorkspaceMemberRequest{Email: "o@client.example", Role: instantly.RoleView}))
	must[*instantly.WorkspaceMember](t)(c.DeleteWorkspaceMember(ctx, cred, other.ID))

	// Workspace groups, and the admin key acting on the sub workspace.
	gm := must[*instantly.WorkspaceGroupMember](t)(c.CreateWorkspaceGroupMember(ctx, cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: subID}))
	_, err := c.CreateWorkspaceGroupMember(ctx, cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: e.wsID})
	if apiStatus(err) != http.StatusConflict {
		t.Fatalf("self as sub: %v", err)
	}
	must[*instantly.Page[instantly.WorkspaceGroupMember]](t)(c.ListWorkspaceGroupMembers(ctx, cred, instantly.ListParams{Limit: 10}))
	must[*instantly.WorkspaceGroupMember](t)(c.GetWorkspaceGroupMember(ctx, cred, gm.ID))
	if err := e.sim.AcceptGroupMember(gm.ID); err != nil {
		t.Fatal(err)
	}
	asSub := instantly.Credential{APIKey: e.key, AsWorkspace: subID}
	must[*instantly.WorkspaceGroupAdmin](t)(c.GetWorkspaceGroupAdmin(ctx, asSub))
	must[*instantly.WorkspaceGroupAdmin](t)(c.GetWorkspaceGroupAdmin(ctx, cred))
	must[*instantly.Workspace](t)(c.GetCurrentWorkspace(ctx, asSub))
	must[*instantly.WorkspaceGroupMember](t)(c.DeleteWorkspaceGroupMember(ctx, cred, gm.ID))

	// Tags on campaigns and accounts, both filter shapes of toggle-resource.
	campaign, account := seedCampaign(t, e), seedAccount(t, e)
	tag := must[*instantly.CustomTag](t)(c.CreateCustomTag(ctx, cred, instantly.CreateCustomTagRequest{Label: "T", Description: ptr("d")}))
	if _, err := c.CreateCustomTag(ctx, cred, instantly.CreateCustomTagRequest{Label: "t "}); apiStatus(err) != http.StatusConflict {
		t.Fatalf("duplicate label: %v", err)
	}
	must[*instantly.Page[instantly.CustomTag]](t)(c.ListCustomTags(ctx, cred, instantly.ListCustomTagsParams{
		Limit: 5, Search: "T", ResourceIDs: []string{campaign, account}, TagIDs: []string{tag.ID, "x"}}))
	must[*instantly.CustomTag](t)(c.GetCustomTag(ctx, cred, tag.ID))
	must[*instantly.CustomTag](t)(c.UpdateCustomTag(ctx, cred, tag.ID, instantly.UpdateCustomTagRequest{Label: ptr("T2"), ClearDescription: true}))
	for _, req := range []instantly.ToggleTagResourceRequest{
		{TagIDs: []string{tag.ID}, ResourceType: instantly.ResourceTypeCampaign, Assign: true, ResourceIDs: []string{campaign}},
		{TagIDs: []string{tag.ID}, ResourceType: instantly.ResourceTypeAccount, Assign: true, SelectedAll: ptr(true),
			ExcludedResourceIDs: []string{"nobody@acme.example"}, Filter: &instantly.ToggleResourceFilter{Status: instantly.AccountFilterPaused}, Search: "acme"},
		{TagIDs: []string{tag.ID}, ResourceType: instantly.ResourceTypeAccount, Assign: true, SelectedAll: ptr(true),
			Filter: &instantly.ToggleResourceFilter{TagID: tag.ID, TagIDs: []string{tag.ID}, TagIDsAll: []string{tag.ID}, Status: instantly.AccountFilterWarmupActive, Search: "acme"}},
		{TagIDs: []string{tag.ID}, ResourceType: instantly.ResourceTypeAccount, Assign: true, ResourceIDs: []string{account}},
	} {
		if err := c.ToggleTagResource(ctx, cred, req); err != nil {
			t.Fatal(err)
		}
	}
	must[*instantly.Page[instantly.CustomTagMapping]](t)(c.ListCustomTagMappings(ctx, cred, instantly.ListCustomTagMappingsParams{Limit: 3, ResourceIDs: []string{campaign, account}}))
	draft := instantly.CampaignDraft
	must[*instantly.Page[instantly.Campaign]](t)(c.ListCampaigns(ctx, cred, instantly.ListCampaignsParams{
		Limit: 10, Search: "Campaign", TagIDs: []string{tag.ID}, AISalesAgentID: "00000000-0000-4000-8000-000000000000", Status: &draft}))
	must[*instantly.Page[instantly.Campaign]](t)(c.ListCampaigns(ctx, cred, instantly.ListCampaignsParams{ExcludeStatus: ptr(instantly.CampaignActive)}))
	must[*instantly.Page[instantly.Account]](t)(c.ListAccounts(ctx, cred, instantly.ListAccountsParams{
		Limit: 10, Search: "acme", Status: instantly.AccountActive, ProviderCode: instantly.ProviderGoogle,
		TagIDs: []string{tag.ID}, TagIDsAll: []string{tag.ID}, IncludeTags: true, SortBy: instantly.AccountSortEmail, SortOrder: instantly.SortDesc}))
	must[*instantly.Page[instantly.Account]](t)(c.ListAccounts(ctx, cred, instantly.ListAccountsParams{Filter: instantly.AccountFilterWarmupPaused, Skip: 1}))
	for _, err := range c.AllAccounts(ctx, cred, instantly.ListAccountsParams{Limit: 1}) { // timestamp&email cursors
		if err != nil {
			t.Fatal(err)
		}
	}
	must[*instantly.CustomTag](t)(c.DeleteCustomTag(ctx, cred, tag.ID))

	// API keys and the audit log they leave.
	k := must[*instantly.APIKey](t)(c.CreateAPIKey(ctx, cred, instantly.CreateAPIKeyRequest{Name: "all scopes", Scopes: instantly.Scopes()}))
	must[*instantly.Page[instantly.APIKey]](t)(c.ListAPIKeys(ctx, cred, instantly.ListParams{Limit: 100}))
	must[*instantly.APIKey](t)(c.DeleteAPIKey(ctx, cred, k.ID))
	at := int(instantly.ActivityAPIKeyDeleted)
	must[*instantly.Page[instantly.AuditLog]](t)(c.ListAuditLogs(ctx, cred, instantly.ListAuditLogsParams{
		Limit: 1000, ActivityType: &at, Search: "all", StartDate: "2000-01-01T00:00:00.000Z", EndDate: time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000Z")}))
	must[*instantly.Page[instantly.AuditLog]](t)(c.ListAuditLogs(ctx, cred, instantly.ListAuditLogsParams{}))

	// Documented error answers, each validated against its operation's schema.
	if _, err := c.GetCustomTag(ctx, cred, tag.ID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("deleted tag: %v", err)
	}
	if _, err := c.DeleteAPIKey(ctx, cred, k.ID); apiStatus(err) != http.StatusNotFound {
		t.Fatalf("deleted key: %v", err)
	}
	if _, err := c.ListAuditLogs(ctx, instantly.Credential{APIKey: "revoked"}, instantly.ListAuditLogsParams{}); apiStatus(err) != http.StatusUnauthorized {
		t.Fatalf("bad key: %v", err)
	}
	provoke429(t)

	// Every operation was answered 2xx, and nothing was sent off the table.
	seen := map[string]bool{}
	statuses := map[int]bool{}
	for _, ex := range e.contract.exchanges() {
		op := ex.Method + " " + ex.Template
		if !slices.Contains(operations(), op) {
			t.Errorf("unexpected operation %s", op)
		}
		if ex.Status >= 200 && ex.Status < 300 {
			seen[op] = true
		}
		statuses[ex.Status] = true
	}
	for _, op := range operations() {
		if !seen[op] {
			t.Errorf("operation never answered 2xx: %s", op)
		}
	}
	for _, s := range []int{401, 404, 409} { // 429: provoke429, 400: Test400AnswerMatchesSpec
		if !statuses[s] {
			t.Errorf("no %d answer was checked", s)
		}
	}
}

// provoke429 exhausts a tight per-second budget in a second simulator and
// checks (through its own contract transport) that the 429 matches the spec.
func provoke429(t *testing.T) {
	t.Helper()
	e := newEnv(t, sim.Config{RPS: 1}, func(o *instantly.Options) { o.MaxAttempts = 1 })
	ctx := ctxT(t)
	must[*instantly.Workspace](t)(e.client.GetCurrentWorkspace(ctx, e.cred))
	// No deadline: a 429 is retried past MaxAttempts only while a deadline
	// allows, and here exactly one attempt is wanted.
	if _, err := e.client.ListCampaigns(context.Background(), e.cred, instantly.ListCampaignsParams{}); apiStatus(err) != http.StatusTooManyRequests {
		t.Fatalf("over budget: %v", err)
	}
	if e.contract.count(http.MethodGet, "/api/v2/campaigns") != 1 {
		t.Fatal("429 not recorded")
	}
}

// Test400AnswerMatchesSpec sends an off-contract body around the contract
// check (the request would fail it) and validates Instantly's 400 answer.
func Test400AnswerMatchesSpec(t *testing.T) {
	e := newEnv(t, sim.Config{})
	check := newContract(t, e.srv.Client().Transport)
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api/v2/workspace-members", strings.NewReader(`{"role":"view"}`))
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	ex := exchange{Method: http.MethodPost, Path: "/api/v2/workspace-members", Template: "/api/v2/workspace-members",
		ReqHeader: req.Header, ReqBody: []byte(`{"role":"view"}`), Status: resp.StatusCode, RespHeader: resp.Header, RespBody: body.Bytes()}
	if ex.Status != http.StatusBadRequest {
		t.Fatalf("status %d", ex.Status)
	}
	if errs := check.checkResponse(ex); len(errs) > 0 {
		t.Fatalf("400 answer off contract: %v", errs)
	}
}

// TestContractCheckBites proves the check is not vacuous: a valid recorded
// request and response, each with one JSON field renamed, must be rejected,
// as must an undeclared query parameter and a body sent without its schema's
// required field.
func TestContractCheckBites(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	must[*instantly.WorkspaceMember](t)(e.client.CreateWorkspaceMember(ctx, e.cred, instantly.CreateWorkspaceMemberRequest{Email: "ok@client.example", Role: instantly.RoleView}))
	must[*instantly.Page[instantly.CustomTag]](t)(e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Search: "x"}))
	exs := e.contract.exchanges()
	create, list := exs[0], exs[1]
	s := mustSpec(t)

	// As recorded, both are valid.
	if errs := s.validateRequest(cloneRequestOf(create)); len(errs) > 0 {
		t.Fatalf("recorded request invalid: %v", errs)
	}
	if errs := e.contract.checkResponse(create); len(errs) > 0 {
		t.Fatalf("recorded response invalid: %v", errs)
	}

	renamed := create
	renamed.ReqBody = bytes.Replace(create.ReqBody, []byte(`"email"`), []byte(`"e_mail"`), 1)
	if bytes.Equal(renamed.ReqBody, create.ReqBody) {
		t.Fatal("nothing renamed in the request")
	}
	if errs := s.validateRequest(cloneRequestOf(renamed)); !mentions(errs, "e_mail") {
		t.Fatalf("renamed request field not reported: %v", errs)
	}

	renamed = create
	renamed.RespBody = bytes.Replace(create.RespBody, []byte(`"email"`), []byte(`"e_mail"`), 1)
	if errs := e.contract.checkResponse(renamed); !mentions(errs, "e_mail") {
		t.Fatalf("renamed response field not reported: %v", errs)
	}

	// A list item with a renamed field, a wrongly typed field, a missing cursor type.
	var page map[string]any
	_ = json.Unmarshal(list.RespBody, &page)
	page["items"] = []map[string]any{{"id": "1", "timestamp_created": "2026-01-01T00:00:00.000Z", "timestamp_updated": "2026-01-01T00:00:00.000Z",
		"organization_id": "o", "lable": "x"}}
	page["next_starting_after"] = 7
	bad := list
	bad.RespBody, _ = json.Marshal(page)
	if errs := e.contract.checkResponse(bad); !mentions(errs, "lable") || !mentions(errs, "label") {
		t.Fatalf("bad list item not reported: %v", errs)
	}

	undeclared := list
	undeclared.Query = "search=x&tagIds=a"
	if errs := s.validateRequest(cloneRequestOf(undeclared)); !mentions(errs, "tagIds") {
		t.Fatalf("undeclared query parameter not reported: %v", errs)
	}

	// An undocumented status without Instantly's error shape.
	odd := list
	odd.Status, odd.RespBody = http.StatusTeapot, []byte(`{"oops":true}`)
	if errs := e.contract.checkResponse(odd); len(errs) == 0 {
		t.Fatal("odd error body not reported")
	}
}

func mentions(errs []string, word string) bool {
	return strings.Contains(strings.Join(errs, "\n"), word)
}

// TestRequestsCarryNoEmptyJSONBody checks the DELETE rule on the wire.
func TestRequestsCarryNoEmptyJSONBody(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	tag := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "x"}))
	must[*instantly.CustomTag](t)(e.client.DeleteCustomTag(ctx, e.cred, tag.ID))
	for _, ex := range e.contract.exchanges() {
		ct := ex.ReqHeader.Get("Content-Type")
		switch {
		case ex.Method == http.MethodDelete && (len(ex.ReqBody) != 0 || ct != ""):
			t.Errorf("DELETE sent body %q with Content-Type %q", ex.ReqBody, ct)
		case ex.Method == http.MethodPost && ct != "application/json":
			t.Errorf("POST sent Content-Type %q", ct)
		}
		if ua := ex.ReqHeader.Get("User-Agent"); !strings.Contains(ua, "agencyplane") {
			t.Errorf("User-Agent %q", ua)
		}
	}
}

// TestQueryEncoding pins how list filters go on the wire: as the spec
// declares them, arrays comma-joined in one string, booleans true/false.
func TestQueryEncoding(t *testing.T) {
	var got []string
	srv := newRecorder(t, &got)
	c := newClient(t, srv, http.DefaultTransport)
	ctx, cred := ctxT(t), instantly.Credential{APIKey: "k", AsWorkspace: "sub-1"}
	_, _ = c.ListAccounts(ctx, cred, instantly.ListAccountsParams{TagIDs: []string{"a", "b"}, TagIDsAll: []string{"c"}, IncludeTags: true, Status: instantly.AccountConnectionError})
	_, _ = c.ListWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{Accepted: ptr(false), StartingAfter: "2026-01-01T00:00:00.000Z&jon@doe.com"})
	_, _ = c.ListCampaigns(ctx, cred, instantly.ListCampaignsParams{Status: ptr(instantly.CampaignDraft)})
	_, _ = c.GetCustomTag(ctx, cred, "a/b c")
	want := []string{
		"GET /api/v2/accounts include_tags=true&status=-1&tag_ids=a%2Cb&tag_ids_all=c sub-1",
		"GET /api/v2/workspace-members accepted=false&starting_after=2026-01-01T00%3A00%3A00.000Z%26jon%40doe.com sub-1",
		"GET /api/v2/campaigns status=0 sub-1",
		"GET /api/v2/custom-tags/a%2Fb%20c  sub-1",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func newRecorder(t *testing.T, got *[]string) string {
	srv := newHTTPServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*got = append(*got, fmt.Sprintf("%s %s %s %s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("x-as-workspace")))
		_, _ = w.Write([]byte(`{"items":[]}`))
	}))
	return srv
}

func TestMarshalNullsAndFilterShapes(t *testing.T) {
	cases := []struct {
		v    any
		want string
	}{
		{instantly.UpdateWorkspaceMemberRequest{ClearNickname: true}, `{"nickname":null}`},
		{instantly.UpdateWorkspaceMemberRequest{Role: ptr(instantly.RoleView), Nickname: ptr("n")}, `{"nickname":"n","role":"view"}`},
		{instantly.UpdateCustomTagRequest{Label: ptr("l"), ClearDescription: true}, `{"description":null,"label":"l"}`},
		{instantly.UpdateCurrentWorkspaceRequest{Name: ptr("n")}, `{"name":"n"}`},
		{instantly.ToggleResourceFilter{Status: instantly.AccountFilterError}, `"ACC_FILTER_ERROR"`},
		{instantly.ToggleResourceFilter{Status: instantly.AccountFilterError, TagIDsAll: []string{"t"}}, `{"tag_ids_all":["t"],"filter":"ACC_FILTER_ERROR"}`},
		{instantly.ToggleTagResourceRequest{TagIDs: []string{"t"}, ResourceType: instantly.ResourceTypeAccount}, `{"tag_ids":["t"],"resource_type":1,"assign":false}`},
	}
	for _, tc := range cases {
		got, err := json.Marshal(tc.v)
		if err != nil || string(got) != tc.want {
			t.Errorf("%T: %s, %v; want %s", tc.v, got, err, tc.want)
		}
	}
	for _, in := range []string{`"ACC_FILTER_DFY"`, `{"tag_id":"no-tag","search":"x"}`} {
		var f instantly.ToggleResourceFilter
		if err := json.Unmarshal([]byte(in), &f); err != nil {
			t.Fatal(err)
		}
		out, _ := json.Marshal(f)
		if string(out) != in {
			t.Errorf("round trip %s → %s", in, out)
		}
	}
}
