package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

func backends(t *testing.T, fn func(t *testing.T, e *env)) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) { fn(t, startEnv(t, b)) })
	}
}

// TestWorkspaceLifecycle walks every WorkspaceService RPC, on both backends,
// over both transports.
func TestWorkspaceLifecycle(t *testing.T) {
	backends(t, func(t *testing.T, e *env) {
		transports(t, e, func(t *testing.T, a api) {
			ctx := context.Background()
			tag := strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
			instID, key := e.newInstantlyWorkspace("Acme " + tag)

			// Create with the default id: the Instantly workspace id.
			created, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{
				DisplayName: "  Acme  ", Labels: map[string]string{"client": "acme", "team": "west"}, ApiKey: &key,
			}})
			if err != nil {
				t.Fatal(err)
			}
			name := "workspaces/" + instID
			if created.GetName() != name || created.GetDisplayName() != "Acme" || created.GetInstantlyWorkspaceId() != instID ||
				created.GetInstantlyWorkspaceName() != "Acme "+tag || created.GetState() != agencyv1.Workspace_STATE_ACTIVE ||
				!strings.HasPrefix(created.GetCredentialFingerprint(), "sha256:") || created.ApiKey != nil ||
				created.GetCreateTime() == nil || created.GetLastVerifyTime() == nil {
				t.Fatalf("created: %v", created)
			}

			// Create with a chosen id.
			inst2, key2 := e.newInstantlyWorkspace("Beta " + tag)
			beta, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "beta", Workspace: &agencyv1.Workspace{
				DisplayName: "Beta", Labels: map[string]string{"client": "beta"}, ApiKey: &key2,
			}})
			if err != nil {
				t.Fatal(err)
			}
			if beta.GetName() != "workspaces/beta" || beta.GetInstantlyWorkspaceId() != inst2 {
				t.Fatalf("beta: %v", beta)
			}

			got, err := a.Get(ctx, name)
			if err != nil || got.GetDisplayName() != "Acme" || got.GetLabels()["team"] != "west" {
				t.Fatalf("get: %v %v", got, err)
			}

			// List: filter and paging.
			list, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{Filter: "client=acme,team!=internal"})
			if err != nil || len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetName() != name {
				t.Fatalf("filtered list: %v %v", list, err)
			}
			page1, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1})
			if err != nil || len(page1.GetWorkspaces()) != 1 || page1.GetNextPageToken() == "" {
				t.Fatalf("page 1: %v %v", page1, err)
			}
			page2, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1, PageToken: page1.GetNextPageToken()})
			if err != nil || len(page2.GetWorkspaces()) != 1 || page2.GetNextPageToken() != "" ||
				page2.GetWorkspaces()[0].GetName() == page1.GetWorkspaces()[0].GetName() {
				t.Fatalf("page 2: %v %v", page2, err)
			}
			// A token is bound to its filter.
			_, err = a.List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1, PageToken: page1.GetNextPageToken(), Filter: "client=acme"})
			wantField(t, wantCode(t, err, codes.InvalidArgument), "page_token")

			// Update display name and labels.
			upd, err := a.Update(ctx, &agencyv1.Workspace{Name: name, DisplayName: "Acme Corp", Labels: map[string]string{"client": "acme", "tier": "gold"}}, "display_name", "labels")
			if err != nil || upd.GetDisplayName() != "Acme Corp" || upd.GetLabels()["tier"] != "gold" || upd.GetLabels()["team"] != "" {
				t.Fatalf("update: %v %v", upd, err)
			}
			// Only the masked field changes.
			upd, err = a.Update(ctx, &agencyv1.Workspace{Name: name, DisplayName: "Renamed"}, "display_name")
			if err != nil || upd.GetDisplayName() != "Renamed" || upd.GetLabels()["tier"] != "gold" {
				t.Fatalf("update name only: %v %v", upd, err)
			}

			// Rotate to a second key of the same Instantly workspace.
			newKey, err := e.sim.CreateAPIKey(instID, "rotated", []string{"all:all"})
			if err != nil {
				t.Fatal(err)
			}
			rot, err := a.Rotate(ctx, name, newKey.Key)
			if err != nil || rot.GetCredentialFingerprint() == created.GetCredentialFingerprint() {
				t.Fatalf("rotate: %v %v", rot, err)
			}
			// A key of another workspace is refused and changes nothing.
			_, err = a.Rotate(ctx, name, key2)
			wantReason(t, wantCode(t, err, codes.FailedPrecondition), "WORKSPACE_MISMATCH")
			// A key Instantly refuses is bad input.
			_, err = a.Rotate(ctx, name, "not-a-real-key-000")
			st := wantCode(t, err, codes.InvalidArgument)
			wantReason(t, st, "CREDENTIAL_INVALID")
			wantField(t, st, "api_key")

			// Verify: active, then refused after the key is revoked upstream.
			ver, err := a.Verify(ctx, name)
			if err != nil || ver.GetState() != agencyv1.Workspace_STATE_ACTIVE || ver.GetCredentialFingerprint() != rot.GetCredentialFingerprint() {
				t.Fatalf("verify: %v %v", ver, err)
			}
			if err := e.sim.RevokeAPIKey(instID, newKey.ID); err != nil {
				t.Fatal(err)
			}
			ver, err = a.Verify(ctx, name)
			if err != nil || ver.GetState() != agencyv1.Workspace_STATE_CREDENTIAL_INVALID || ver.GetStateMessage() == "" ||
				!ver.GetLastVerifyTime().AsTime().After(created.GetLastVerifyTime().AsTime()) {
				t.Fatalf("verify after revoke: %v %v", ver, err)
			}

			// Delete, then everything about it is NotFound.
			if err := a.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
			_, err = a.Get(ctx, name)
			wantReason(t, wantCode(t, err, codes.NotFound), "NOT_FOUND")
			wantCode(t, a.Delete(ctx, name), codes.NotFound)
			_, err = a.Verify(ctx, name)
			wantCode(t, err, codes.NotFound)
			_, err = a.Update(ctx, &agencyv1.Workspace{Name: name, DisplayName: "x"}, "display_name")
			wantCode(t, err, codes.NotFound)
			if err := a.Delete(ctx, "workspaces/beta"); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// TestCreateRefusals: a key Instantly refuses and duplicates are refused
// before anything is stored.
func TestCreateRefusals(t *testing.T) {
	e := startEnv(t, memoryBackend)
	transports(t, e, func(t *testing.T, a api) {
		ctx := context.Background()
		bad := "definitely-not-a-key"
		_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &bad}})
		st := wantCode(t, err, codes.InvalidArgument)
		wantReason(t, st, "CREDENTIAL_INVALID")
		wantField(t, st, "workspace.api_key")

		// A key without workspaces:read cannot register.
		id, _ := e.newInstantlyWorkspace("scoped")
		narrow, err := e.sim.CreateAPIKey(id, "narrow", []string{"campaigns:read"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &narrow.Key}})
		wantReason(t, wantCode(t, err, codes.InvalidArgument), "SCOPE_DENIED")

		instID, key := e.newInstantlyWorkspace("dup")
		w := &agencyv1.Workspace{DisplayName: "Dup", ApiKey: &key}
		if _, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: w}); err != nil {
			t.Fatal(err)
		}
		// The same Instantly workspace under another id, even with another key.
		other, err := e.sim.CreateAPIKey(instID, "second", []string{"all:all"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = a.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "dup-again", Workspace: &agencyv1.Workspace{DisplayName: "Dup", ApiKey: &other.Key}})
		wantReason(t, wantCode(t, err, codes.AlreadyExists), "ALREADY_EXISTS")
		// A taken id.
		_, key3 := e.newInstantlyWorkspace("third")
		_, err = a.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: strings.ToLower(instID), Workspace: &agencyv1.Workspace{DisplayName: "T", ApiKey: &key3}})
		wantCode(t, err, codes.AlreadyExists)
		if _, err := a.Get(ctx, "workspaces/dup-again"); codeOf(err) != codes.NotFound {
			t.Fatalf("refused create stored something: %v", err)
		}
		if err := a.Delete(ctx, "workspaces/"+instID); err != nil {
			t.Fatal(err)
		}
	})
}

// TestBadInput: every class of bad input is InvalidArgument naming the
// field, over both transports, and reaches Instantly not at all.
func TestBadInput(t *testing.T) {
	e := startEnv(t, memoryBackend)
	key := "a-plausible-key-123"
	long := strings.Repeat("x", 201)
	cases := []struct {
		name  string
		call  func(ctx context.Context, a api) error
		field string
	}{
		{"create without workspace", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{})
			return err
		}, "workspace|workspace.display_name"}, // REST with no body gets an empty workspace
		{"empty display name", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{ApiKey: &key}})
			return err
		}, "workspace.display_name"},
		{"whitespace display name", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "   ", ApiKey: &key}})
			return err
		}, "workspace.display_name"},
		{"oversized display name", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: long, ApiKey: &key}})
			return err
		}, "workspace.display_name"},
		{"missing api key", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X"}})
			return err
		}, "workspace.api_key"},
		{"api key with an admin workspace", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{SubWorkspaceId: "0b7d3f4e-8c1a-4a57-9a0e-3c2f1d5e6a7b",
				Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key, AdminWorkspace: "workspaces/admin"}})
			return err
		}, "workspace.api_key"},
		{"admin workspace without sub workspace id", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", AdminWorkspace: "workspaces/admin"}})
			return err
		}, "sub_workspace_id"},
		{"sub workspace id without admin workspace", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{SubWorkspaceId: "0b7d3f4e-8c1a-4a57-9a0e-3c2f1d5e6a7b",
				Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key}})
			return err
		}, "sub_workspace_id"},
		{"api key with spaces", func(ctx context.Context, a api) error {
			k := "has spaces in it"
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &k}})
			return err
		}, "workspace.api_key"},
		{"bad workspace id", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "Bad_ID", Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key}})
			return err
		}, "workspace_id"},
		{"bad label key", func(ctx context.Context, a api) error {
			_, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "X", ApiKey: &key, Labels: map[string]string{"Bad Key": "v"}}})
			return err
		}, `workspace.labels["Bad Key"]`},
		{"bad label selector", func(ctx context.Context, a api) error {
			_, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{Filter: "client=acme,,team"})
			return err
		}, "filter"},
		{"bad page token", func(ctx context.Context, a api) error {
			_, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{PageToken: "not-a-token"})
			return err
		}, "page_token"},
		{"negative page size", func(ctx context.Context, a api) error {
			_, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: -1})
			return err
		}, "page_size"},
		{"page size too large", func(ctx context.Context, a api) error {
			_, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{PageSize: 1001})
			return err
		}, "page_size"},
		{"bad name", func(ctx context.Context, a api) error {
			_, err := a.Get(ctx, "workspaces/Not_Valid")
			return err
		}, "name"},
		{"unknown update path", func(ctx context.Context, a api) error {
			_, err := a.Update(ctx, &agencyv1.Workspace{Name: "workspaces/x", InstantlyWorkspaceId: "y"}, "instantly_workspace_id")
			return err
		}, "update_mask"},
		{"api key in update", func(ctx context.Context, a api) error {
			_, err := a.Update(ctx, &agencyv1.Workspace{Name: "workspaces/x", DisplayName: "y", ApiKey: &key}, "display_name")
			return err
		}, "workspace.api_key"},
		{"empty display name in update", func(ctx context.Context, a api) error {
			_, err := a.Update(ctx, &agencyv1.Workspace{Name: "workspaces/x"}, "display_name")
			return err
		}, "workspace.display_name"},
		{"rotate with empty key", func(ctx context.Context, a api) error {
			_, err := a.Rotate(ctx, "workspaces/x", "")
			return err
		}, "api_key"},
	}
	transports(t, e, func(t *testing.T, a api) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := totalUpstreamRequests(e)
				st := wantCode(t, tc.call(context.Background(), a), codes.InvalidArgument)
				wantReason(t, st, "INVALID_ARGUMENT")
				wantField(t, st, tc.field)
				if after := totalUpstreamRequests(e); after != before {
					t.Fatalf("bad input reached Instantly (%d requests)", after-before)
				}
			})
		}
	})
}

func totalUpstreamRequests(e *env) int {
	n := 0
	for _, s := range e.sim.Stats() {
		n += int(s.Requests)
	}
	return n
}

// TestRESTBodyErrors covers what only REST clients can send: malformed
// JSON, unknown fields, wrong types, oversized bodies and bad query values.
func TestRESTBodyErrors(t *testing.T) {
	e := startEnv(t, memoryBackend)
	r := e.rest(testToken)
	ctx := context.Background()
	cases := []struct {
		name, method, path, body, field string
	}{
		{"malformed JSON", http.MethodPost, "/v1/workspaces", `{"displayName":`, "body"},
		{"unknown field", http.MethodPost, "/v1/workspaces", `{"displayName":"x","apiKey":"abcdefgh1","bogus":1}`, "workspace.bogus"},
		{"wrong type", http.MethodPost, "/v1/workspaces", `{"displayName":5}`, "workspace.display_name"},
		{"oversized body", http.MethodPost, "/v1/workspaces", `{"displayName":"` + strings.Repeat("x", 2<<20) + `"}`, "body"},
		{"bad page size", http.MethodGet, "/v1/workspaces?pageSize=abc", "", "page_size"},
		{"unknown field in patch", http.MethodPatch, "/v1/workspaces/acme", `{"nope":true}`, "workspace.nope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			_, err := r.raw(ctx, tc.method, tc.path, body, nil)
			st := wantCode(t, err, codes.InvalidArgument)
			wantReason(t, st, "INVALID_ARGUMENT")
			wantField(t, st, tc.field)
			if strings.Contains(st.Message(), "proto:") || strings.Contains(st.Message(), "strconv") {
				t.Fatalf("Go error text leaked: %q", st.Message())
			}
		})
	}
}

// TestAuthentication: every RPC needs the token; health does not.
func TestAuthentication(t *testing.T) {
	ctx := context.Background()
	for _, tok := range []string{"", "wrong-token-000000000"} {
		// A fresh server per token: failed attempts from one source are
		// throttled after a few (tested in internal/auth).
		e := startEnv(t, memoryBackend)
		for name, a := range map[string]api{"grpc": e.grpc(tok), "rest": e.rest(tok)} {
			t.Run(fmt.Sprintf("%s/%q", name, tok), func(t *testing.T) {
				_, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{})
				wantReason(t, wantCode(t, err, codes.Unauthenticated), "UNAUTHENTICATED")
				_, err = a.Get(ctx, "workspaces/x")
				wantCode(t, err, codes.Unauthenticated)
				// Authentication comes before validation: nothing about the
				// request is revealed.
				_, err = a.Get(ctx, "workspaces/Bad_Name")
				wantCode(t, err, codes.Unauthenticated)
			})
		}
		if strings.Contains(e.logs.String(), "wrong-token-000000000") {
			t.Fatal("a presented token reached the logs")
		}
	}
}
