package apierr

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

func TestJSONViolation(t *testing.T) {
	ws := (&agencyv1.Workspace{}).ProtoReflect().Descriptor()
	invite := (&agencyv1.InviteMemberRequest{}).ProtoReflect().Descriptor()
	ensure := (&agencyv1.EnsureTagEverywhereRequest{}).ProtoReflect().Descriptor()
	logs := (&agencyv1.ListAuditLogsRequest{}).ProtoReflect().Descriptor()
	group := (&agencyv1.InviteGroupMemberRequest{}).ProtoReflect().Descriptor()
	onboard := (&agencyv1.OnboardMembersRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		md          protoreflect.MessageDescriptor
		body, field string
		says        []string
	}{
		{ws, `{"displayName":`, "body", []string{"not valid JSON"}},
		{ws, `[1]`, "body", []string{"JSON object"}},
		{ws, `"x"`, "body", []string{"JSON object"}},
		{ws, `{"displayName":5}`, "display_name", []string{"a string"}},
		{ws, `{"display_name":{}}`, "display_name", []string{"a string"}},
		{ws, "{\"displayName\":\"a\xffb\"}", "display_name", []string{"UTF-8"}},
		{ws, `{"labels":5}`, "labels", []string{"JSON object of strings to strings"}},
		{ws, `{"labels":["a"]}`, "labels", []string{"JSON object"}},
		{ws, `{"labels":{"team":"a","tier":true}}`, `labels["tier"]`, []string{"a string"}},
		{ws, `{"displayName":"x","bogus":1}`, "bogus", []string{"unknown field"}},
		{ws, `{"displayName":"a","display_name":"b"}`, "display_name", []string{"more than once"}},
		{invite, `{"email":"a@b.co","role":"BOSS"}`, "role", []string{"MEMBER_ROLE_ADMIN", "MEMBER_ROLE_OWNER", "MEMBER_ROLE_VIEW"}},
		{invite, `{"role":1.5}`, "role", []string{"one of"}},
		{ensure, `{"selector":{"names":"workspaces/a"}}`, "selector.names", []string{"JSON array of strings"}},
		{ensure, `{"selector":{"names":["workspaces/a",7]}}`, "selector.names[1]", []string{"a string"}},
		{ensure, `{"selector":{"all":"yes"}}`, "selector.all", []string{"true or false"}},
		{ensure, `{"selector":5}`, "selector", []string{"JSON object"}},
		{logs, `{"pageSize":"many"}`, "page_size", []string{"integer"}},
		{logs, `{"pageSize":4294967296}`, "page_size", []string{"32-bit"}},
		{logs, `{"startTime":"yesterday"}`, "start_time", []string{"RFC 3339"}},
		{group, `{"workspace":"workspaces/a","instantlyWorkspaceId":"x"}`, "instantly_workspace_id", []string{"workspace", "only one"}},
		{onboard, `{"people":[{"email":"a@b.co"},{"role":{}}]}`, "people[1].role", []string{"one of"}},
	} {
		v := JSONViolation(tc.md, []byte(tc.body))
		if v.Field != tc.field {
			t.Errorf("%s %s: field %q (%s), want %q", tc.md.Name(), tc.body, v.Field, v.Description, tc.field)
			continue
		}
		for _, s := range tc.says {
			if !strings.Contains(v.Description, s) {
				t.Errorf("%s %s: %q does not say %q", tc.md.Name(), tc.body, v.Description, s)
			}
		}
	}
	// An UNSPECIFIED zero value is never offered.
	if v := JSONViolation(invite, []byte(`{"role":"BOSS"}`)); strings.Contains(v.Description, "UNSPECIFIED") {
		t.Errorf("lists the unspecified value: %q", v.Description)
	}
}

func TestQueryViolation(t *testing.T) {
	logs := (&agencyv1.ListAuditLogsRequest{}).ProtoReflect().Descriptor()
	results := (&agencyv1.ListOperationResultsRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct {
		md        protoreflect.MessageDescriptor
		key       string
		n         int
		field, is string
	}{
		{logs, "pageSize", 1, "page_size", "integer"},
		{logs, "page_size", 2, "page_size", "more than once"},
		{logs, "startTime", 1, "start_time", "RFC 3339"},
		{logs, "nope.x", 1, "nope.x", "does not name"},
		{results, "failedOnly", 1, "failed_only", "true or false"},
	} {
		v := QueryViolation(tc.md, tc.key, tc.n)
		if v.Field != tc.field || !strings.Contains(v.Description, tc.is) {
			t.Errorf("%s: %+v, want %s saying %q", tc.key, v, tc.field, tc.is)
		}
	}
}

func TestPatternDescription(t *testing.T) {
	for _, tc := range []struct{ pattern, form, example string }{
		{`^workspaces/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`, `"workspaces/{workspace}"`, `"workspaces/acme"`},
		{`^workspaces/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/members/[^/\s]{1,320}$`, `"workspaces/{workspace}/members/{member id or email}"`, `"workspaces/acme/members/ana@agency.com"`},
		{`^workspaces/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/tags/[A-Za-z0-9-]{1,64}$`, `"workspaces/{workspace}/tags/{tag id}"`, `"workspaces/acme/tags/0b5a2c1e"`},
		{`^workspaces/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/apiKeys/[A-Za-z0-9-]{1,64}$`, `"workspaces/{workspace}/apiKeys/{api key id}"`, `"workspaces/acme/apiKeys/0b5a2c1e"`},
		{`^workspaces/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/groupMembers/[A-Za-z0-9-]{1,64}$`, `"workspaces/{workspace}/groupMembers/{group member id}"`, `"workspaces/acme/groupMembers/0b5a2c1e"`},
	} {
		d, ok := PatternDescription(tc.pattern)
		if !ok || !strings.Contains(d, tc.form) || !strings.Contains(d, "e.g. "+tc.example) {
			t.Errorf("%s: %q (%v), want %s e.g. %s", tc.pattern, d, ok, tc.form, tc.example)
		}
	}
	if d, ok := PatternDescription(`\S`); !ok || d != "must not be blank" {
		t.Errorf(`\S: %q`, d)
	}
	for _, p := range []string{`^[a-z]+$`, `^operations/[a-z]+$`, `(`} {
		if d, ok := PatternDescription(p); ok {
			t.Errorf("%s: described as %q; want the validator's own text", p, d)
		}
	}
}

func TestEnumNames(t *testing.T) {
	ed := agencyv1.MemberRole(0).Descriptor()
	if got := EnumNames(ed, []int32{2, 3, 4}); got != "MEMBER_ROLE_ADMIN, MEMBER_ROLE_EDITOR, MEMBER_ROLE_VIEW" {
		t.Fatalf("EnumNames in: %q", got)
	}
	if got := EnumNames(ed, nil); strings.Contains(got, "UNSPECIFIED") || !strings.Contains(got, "MEMBER_ROLE_CLIENT") {
		t.Fatalf("EnumNames all: %q", got)
	}
}
