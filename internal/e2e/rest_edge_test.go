package e2e

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// fieldDescription is the BadRequest description of field ("" if absent).
func fieldDescription(st *status.Status, field string) string {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return v.GetDescription()
				}
			}
		}
	}
	return ""
}

// TestRESTInvalidUTF8: bytes that are not UTF-8 in a path or query value
// are the caller's mistake (400 naming the field), not an internal error.
func TestRESTInvalidUTF8(t *testing.T) {
	e := startEnv(t, memoryBackend)
	r := e.rest(testToken)
	for _, tc := range []struct{ method, path, body, field string }{
		{http.MethodGet, "/v1/workspaces/%ff", "", "name"},
		{http.MethodGet, "/v1/workspaces?filter=%ff", "", "filter"},
		{http.MethodGet, "/v1/workspaces?pageToken=%ff", "", "page_token"},
		{http.MethodGet, "/v1/workspaces?page_token=ok%c3%28", "", "page_token"},
		{http.MethodGet, "/v1/workspaces/acme/members/%fe%ff", "", "name"},
		{http.MethodPost, "/v1/workspaces?workspaceId=%ff", `{"displayName":"x","apiKey":"abcdefgh1"}`, "workspace_id"},
		{http.MethodPost, "/v1/workspaces", "{\"displayName\":\"a\xffb\",\"apiKey\":\"abcdefgh1\"}", "workspace.display_name"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			_, err := r.raw(context.Background(), tc.method, tc.path, body, nil)
			st := wantCode(t, err, codes.InvalidArgument)
			wantReason(t, st, "INVALID_ARGUMENT")
			wantField(t, st, tc.field)
			if d := fieldDescription(st, tc.field); !strings.Contains(d, "UTF-8") {
				t.Fatalf("description %q does not say what is wrong", d)
			}
		})
	}
}

// TestRESTBodyNearLimit: a body just under --max-request-bytes whose
// protobuf form is a little larger (the path's name and the derived update
// mask are added) used to exceed gRPC's receive limit and answer 429, a
// retryable code for a request that can never pass. Every body is either
// processed or refused with 400.
func TestRESTBodyNearLimit(t *testing.T) {
	e := startEnv(t, memoryBackend)
	r := e.rest(testToken)
	const limit = 1 << 20
	patch := func(n int) []byte {
		head, tail := `{"displayName":"`, `"}`
		return []byte(head + strings.Repeat("x", n-len(head)-len(tail)) + tail)
	}
	// Each person {"role":-1} is 11 bytes of JSON and 13 of protobuf (a
	// negative enum is a 10-byte varint): the message outgrows any fixed
	// headroom, and the gateway must refuse it itself.
	onboard := func(n int) []byte {
		head, tail, person := `{"selector":{"all":true},"people":[`, `]}`, `{"role":-1}`
		var b strings.Builder
		b.WriteString(head)
		for b.Len()+len(tail)+len(person)+1 <= n {
			if b.Len() > len(head) {
				b.WriteByte(',')
			}
			b.WriteString(person)
		}
		b.WriteString(strings.Repeat(" ", n-b.Len()-len(tail)))
		b.WriteString(tail)
		return []byte(b.String())
	}
	for _, tc := range []struct {
		name, method, path string
		body               []byte
		field              string
	}{
		{"patch 1048567", http.MethodPatch, "/v1/workspaces/acme", patch(1_048_567), "workspace.display_name"},
		{"patch 1048572", http.MethodPatch, "/v1/workspaces/acme", patch(1_048_572), "workspace.display_name"},
		{"patch at the limit", http.MethodPatch, "/v1/workspaces/acme", patch(limit), "workspace.display_name"},
		{"patch over the limit", http.MethodPatch, "/v1/workspaces/acme", patch(limit + 1), "body"},
		{"onboard, protobuf larger than JSON", http.MethodPost, "/v1/fanout:onboardMembers", onboard(limit - 9), "body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.body) > limit+1 || (tc.name != "patch over the limit" && len(tc.body) > limit) {
				t.Fatalf("test body of %d bytes", len(tc.body))
			}
			_, err := r.raw(context.Background(), tc.method, tc.path, tc.body, nil)
			st := wantCode(t, err, codes.InvalidArgument)
			wantReason(t, st, "INVALID_ARGUMENT")
			wantField(t, st, tc.field)
		})
	}
}

// TestRESTWrongMethod: a route that exists under other methods answers 405
// with Allow, not 501.
func TestRESTWrongMethod(t *testing.T) {
	e := startEnv(t, memoryBackend)
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPut, "/v1/workspaces", "GET, POST"},
		{http.MethodDelete, "/v1/fanout:inviteMember", "POST"},
		{http.MethodPost, "/v1/workspaces/acme", "DELETE, GET, PATCH"},
		{http.MethodPut, "/v1/tokens", "GET, POST"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			resp, err := e.rest(testToken).raw(context.Background(), tc.method, tc.path, []byte(`{}`), nil)
			if resp == nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("HTTP %d (%v), want 405", resp.StatusCode, err)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Fatalf("Allow %q, want %q", got, tc.allow)
			}
			he, ok := err.(*httpStatusError)
			if !ok || !strings.Contains(he.st.Message(), tc.method) {
				t.Fatalf("body %v does not say which method was refused", err)
			}
		})
	}
	// A path no method serves stays 404.
	resp, _ := e.rest(testToken).raw(context.Background(), http.MethodGet, "/v1/nothing-here", nil, nil)
	if resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: %v", resp)
	}
}

// TestRESTErrorText: what a REST user reads names the field by its proto
// path, as validation does, and says what is expected.
func TestRESTErrorText(t *testing.T) {
	e := startEnv(t, memoryBackend)
	r := e.rest(testToken)
	for _, tc := range []struct {
		name, method, path, body, field string
		says                            []string
	}{
		{"map of the wrong type", http.MethodPost, "/v1/workspaces", `{"displayName":"x","apiKey":"abcdefgh1","labels":5}`,
			"workspace.labels", []string{"object"}},
		{"map value of the wrong type", http.MethodPost, "/v1/workspaces", `{"displayName":"x","apiKey":"abcdefgh1","labels":{"team":5}}`,
			`workspace.labels["team"]`, []string{"string"}},
		{"scalar of the wrong type", http.MethodPost, "/v1/workspaces", `{"displayName":5}`, "workspace.display_name", []string{"string"}},
		{"snake_case input", http.MethodPost, "/v1/workspaces", `{"display_name":true}`, "workspace.display_name", []string{"string"}},
		{"unknown nested field", http.MethodPost, "/v1/workspaces", `{"displayName":"x","bogus":1}`, "workspace.bogus", []string{"unknown"}},
		{"bad enum", http.MethodPost, "/v1/workspaces/acme/members:invite", `{"email":"a@b.co","role":"BOSS"}`,
			"role", []string{"MEMBER_ROLE_ADMIN", "MEMBER_ROLE_EDITOR", "MEMBER_ROLE_VIEW"}},
		{"enum outside the allowed ones", http.MethodPost, "/v1/workspaces/acme/members:invite", `{"email":"a@b.co","role":"MEMBER_ROLE_OWNER"}`,
			"role", []string{"MEMBER_ROLE_ADMIN", "MEMBER_ROLE_EDITOR", "MEMBER_ROLE_VIEW"}},
		{"bad integer in the query", http.MethodGet, "/v1/operations/x/results?pageSize=abc", "", "page_size", []string{"integer"}},
		{"bad boolean in the query", http.MethodGet, "/v1/operations/x/results?failedOnly=maybe", "", "failed_only", []string{"true"}},
		{"list of the wrong type", http.MethodPost, "/v1/fanout:ensureTag", `{"selector":{"names":"workspaces/a"},"label":"x"}`,
			"selector.names", []string{"array"}},
		{"malformed JSON", http.MethodPost, "/v1/workspaces", `{"displayName":`, "body", []string{"JSON"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			_, err := r.raw(context.Background(), tc.method, tc.path, body, nil)
			st := wantCode(t, err, codes.InvalidArgument)
			wantField(t, st, tc.field)
			d := fieldDescription(st, tc.field)
			for _, s := range tc.says {
				if !strings.Contains(d, s) {
					t.Fatalf("description %q does not say %q", d, s)
				}
			}
			for _, leak := range []string{"proto:", "strconv", "syntax error", "(line "} {
				if strings.Contains(st.Message(), leak) {
					t.Fatalf("library error text leaked: %q", st.Message())
				}
			}
		})
	}
}

// TestSelectorNameText: a fan-out name without the workspaces/ prefix is
// told what is expected, with an example, not a regular expression.
func TestSelectorNameText(t *testing.T) {
	e := startEnv(t, memoryBackend)
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			err := inv.Invoke(context.Background(), "agency.v1.FanoutService/EnsureTagEverywhere",
				&agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{Names: []string{"acme"}}, Label: "x"}, &agencyv1.FanoutResponse{})
			st := wantCode(t, err, codes.InvalidArgument)
			wantField(t, st, "selector.names[0]")
			d := fieldDescription(st, "selector.names[0]")
			if !strings.Contains(d, `e.g. "workspaces/`) || strings.ContainsAny(d, "^$") || strings.Contains(d, "[a-z") || strings.Contains(d, "regex") {
				t.Fatalf("description %q: want the expected form with an example, no regex", d)
			}
			if !slices.Contains(fieldViolations(st), "selector.names[0]") {
				t.Fatal("field missing")
			}
		})
	}
}
