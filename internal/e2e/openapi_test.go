package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane"
	"github.com/agencyplane/agencyplane/gen/openapiv3/agencyclient"
)

// openAPIDoc is the part of the served document these tests read.
type openAPIDoc struct {
	OpenAPI string                                `json:"openapi"`
	Paths   map[string]map[string]json.RawMessage `json:"paths"`
}

func fetchOpenAPI(t *testing.T, e *env) (openAPIDoc, []byte) {
	t.Helper()
	resp, err := http.Get(e.httpBase + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /openapi.json: HTTP %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc openAPIDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc, data
}

// The served document is the generated OpenAPI 3.1 one, with real paths.
func TestOpenAPIDocumentServed(t *testing.T) {
	e := startEnv(t, memoryBackend)
	doc, data := fetchOpenAPI(t, e)
	if !bytes.Equal(data, agencyplane.OpenAPI) {
		t.Fatal("/openapi.json is not the embedded document")
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q, want 3.1.0", doc.OpenAPI)
	}
	for _, want := range []string{
		"/v1/workspaces/{workspace}", "/v1/workspaces/{workspace}/members/{member}",
		"/v1/workspaces/{workspace}/tags/{tag}", "/v1/operations/{operation}", "/v1/operations/{operation}/results",
	} {
		if _, ok := doc.Paths[want]; !ok {
			t.Errorf("path %s missing", want)
		}
	}
	generic := regexp.MustCompile(`\{(name|parent)(_\d+)?\}|\*\*|\{[a-z]+\.[a-z]+\}`)
	for p := range doc.Paths {
		if generic.MatchString(p) {
			t.Errorf("path %s is not a real path", p)
		}
	}
}

// Every documented operation is routed: a call without credentials reaches
// the gRPC interceptors (they set X-Request-Id) and is refused there, never
// answered by the gateway's router; a made-up path is not.
func TestOpenAPIEveryOperationIsRouted(t *testing.T) {
	e := startEnv(t, memoryBackend)
	doc, _ := fetchOpenAPI(t, e)
	param := regexp.MustCompile(`\{[^}]+\}`)
	call := func(method, path string) *http.Response {
		t.Helper()
		var body io.Reader
		if method != http.MethodGet && method != http.MethodDelete {
			body = strings.NewReader("{}")
		}
		req, err := http.NewRequest(method, e.httpBase+path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	n := 0
	for path, item := range doc.Paths {
		for method := range item {
			method = strings.ToUpper(method)
			if !slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, method) {
				continue
			}
			n++
			concrete := param.ReplaceAllString(path, "probe")
			resp := call(method, concrete)
			if resp.Header.Get("X-Request-Id") == "" || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusTooManyRequests) {
				t.Errorf("%s %s: HTTP %d, X-Request-Id %q: want a 401 (or throttled 429) from the interceptors",
					method, concrete, resp.StatusCode, resp.Header.Get("X-Request-Id"))
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d operations in the document", n)
	}
	if resp := call(http.MethodGet, "/v1/notDocumented/probe"); resp.Header.Get("X-Request-Id") != "" {
		t.Fatal("an unknown path reached the interceptors: the check above proves nothing")
	}
}

// A client generated from the document by oapi-codegen (make generate)
// drives the running server: registration, reads, a patch, members, tags, a
// durable operation, and typed error answers.
func TestOpenAPIGeneratedClient(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bearer := func(token string) agencyclient.RequestEditorFn {
		return func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+token)
			return nil
		}
	}
	c, err := agencyclient.NewClientWithResponses(e.httpBase, agencyclient.WithRequestEditorFn(bearer(testToken)))
	if err != nil {
		t.Fatal(err)
	}
	_, key := e.newInstantlyWorkspace("Acme")

	created, err := c.WorkspaceServiceCreateWorkspaceWithResponse(ctx, &agencyclient.WorkspaceServiceCreateWorkspaceParams{WorkspaceId: new("acme")},
		agencyclient.AgencyV1Workspace{DisplayName: "Acme", ApiKey: new(key), Labels: &map[string]string{"client": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.JSON200 == nil || deref(created.JSON200.Name) != "workspaces/acme" || deref(created.JSON200.CredentialFingerprint) == "" {
		t.Fatalf("CreateWorkspace: HTTP %d %s", created.StatusCode(), created.Body)
	}

	got, err := c.WorkspaceServiceGetWorkspaceWithResponse(ctx, "acme")
	if err != nil || got.JSON200 == nil || got.JSON200.DisplayName != "Acme" {
		t.Fatalf("GetWorkspace: %v %s", err, got.Body)
	}
	list, err := c.WorkspaceServiceListWorkspacesWithResponse(ctx, &agencyclient.WorkspaceServiceListWorkspacesParams{Filter: new("client=acme")})
	if err != nil || list.JSON200 == nil || list.JSON200.Workspaces == nil || len(*list.JSON200.Workspaces) != 1 {
		t.Fatalf("ListWorkspaces: %v %s", err, list.Body)
	}
	patched, err := c.WorkspaceServiceUpdateWorkspaceWithResponse(ctx, "acme", nil,
		agencyclient.WorkspaceServiceUpdateWorkspaceJSONRequestBody{DisplayName: "Acme", Labels: &map[string]string{"client": "acme", "tier": "gold"}})
	if err != nil || patched.JSON200 == nil || (*patched.JSON200.Labels)["tier"] != "gold" {
		t.Fatalf("UpdateWorkspace: %v %s", err, patched.Body)
	}

	invited, err := c.MemberServiceInviteMemberWithResponse(ctx, "acme", agencyclient.MemberServiceInviteMemberJSONRequestBody{
		Email: "ana@agency.example", Role: agencyclient.AgencyV1MemberRole("MEMBER_ROLE_EDITOR")})
	if err != nil || invited.JSON200 == nil || deref(invited.JSON200.Email) != "ana@agency.example" {
		t.Fatalf("InviteMember: %v %s", err, invited.Body)
	}
	member, err := c.MemberServiceGetMemberWithResponse(ctx, "acme", "ana@agency.example")
	if err != nil || member.JSON200 == nil || deref(member.JSON200.Accepted) {
		t.Fatalf("GetMember: %v %s", err, member.Body)
	}
	tag, err := c.TagServiceCreateTagWithResponse(ctx, "acme", nil, agencyclient.TagServiceCreateTagJSONRequestBody{Label: "vip"})
	if err != nil || tag.JSON200 == nil || !strings.HasPrefix(deref(tag.JSON200.Name), "workspaces/acme/tags/") {
		t.Fatalf("CreateTag: %v %s", err, tag.Body)
	}

	// A durable operation, followed through google.longrunning's routes.
	op, err := c.FanoutServiceOnboardMembersWithResponse(ctx, agencyclient.FanoutServiceOnboardMembersJSONRequestBody{
		Selector: agencyclient.AgencyV1WorkspaceSelector{All: new(true)},
		People:   []agencyclient.AgencyV1Person{{Email: "bo@agency.example", Role: new(agencyclient.AgencyV1MemberRole("MEMBER_ROLE_VIEW"))}},
	})
	if err != nil || op.JSON200 == nil || !strings.HasPrefix(deref(op.JSON200.Name), "operations/") {
		t.Fatalf("OnboardMembers: %v %s", err, op.Body)
	}
	id := strings.TrimPrefix(deref(op.JSON200.Name), "operations/")
	waited, err := c.OperationsWaitOperationWithResponse(ctx, id, agencyclient.OperationsWaitOperationJSONRequestBody{Timeout: new("20s")})
	if err != nil || waited.JSON200 == nil || !deref(waited.JSON200.Done) {
		t.Fatalf("WaitOperation: %v %s", err, waited.Body)
	}
	results, err := c.OperationServiceListOperationResultsWithResponse(ctx, id, nil)
	if err != nil || results.JSON200 == nil || results.JSON200.Results == nil || len(*results.JSON200.Results) != 1 {
		t.Fatalf("ListOperationResults: %v %s", err, results.Body)
	}

	// Errors decode into the documented google.rpc.Status answers.
	missing, err := c.WorkspaceServiceGetWorkspaceWithResponse(ctx, "nope")
	if err != nil || missing.JSON404 == nil || deref(missing.JSON404.Code) != 5 || missing.JSON404.Details == nil || len(*missing.JSON404.Details) == 0 {
		t.Fatalf("GetWorkspace of a missing workspace: %v HTTP %d %s", err, missing.StatusCode(), missing.Body)
	}
	bad, err := c.WorkspaceServiceListWorkspacesWithResponse(ctx, &agencyclient.WorkspaceServiceListWorkspacesParams{Filter: new("=bad")})
	if err != nil || bad.JSON400 == nil || deref(bad.JSON400.Code) != 3 {
		t.Fatalf("ListWorkspaces with a bad filter: %v HTTP %d %s", err, bad.StatusCode(), bad.Body)
	}
	anon, err := agencyclient.NewClientWithResponses(e.httpBase)
	if err != nil {
		t.Fatal(err)
	}
	refused, err := anon.WorkspaceServiceGetWorkspaceWithResponse(ctx, "acme")
	if err != nil || refused.JSON401 == nil || deref(refused.JSON401.Code) != 16 {
		t.Fatalf("GetWorkspace without a token: %v HTTP %d %s", err, refused.StatusCode(), refused.Body)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
