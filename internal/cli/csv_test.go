package cli

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

func TestParsePeopleCSV(t *testing.T) {
	data := "\xef\xbb\xbf Email , ROLE,permissions\n" +
		"ana@agency.example,Editor,\n" +
		"\"bo@agency.example\",view,\"campaigns.view; campaigns.edit\"\n" +
		",,\n" + // a spreadsheet's empty row
		"cy@agency.example,ADMIN,\n"
	people, problems := parsePeopleCSV([]byte(data))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(people) != 3 || people[0].role != agencyv1.MemberRole_MEMBER_ROLE_EDITOR || people[1].line != 3 ||
		strings.Join(people[1].permissions, ",") != "campaigns.view,campaigns.edit" || people[2].role != agencyv1.MemberRole_MEMBER_ROLE_ADMIN || people[2].line != 5 {
		t.Errorf("people: %+v", people)
	}
}

func TestParsePeopleCSVProblems(t *testing.T) {
	for _, tc := range []struct {
		data string
		want []string
	}{
		{"", []string{"line 1: the file is empty"}},
		{"email\na@b.io\n", []string{`line 1: missing column "role"`}},
		{"email,role,role\n", []string{`line 1: column "role" appears twice`}},
		{"email,role\n", []string{"line 1: no rows after the header"}},
		{"email,role\na@b.io,admin,extra\n", []string{"line 2: wrong number of cells"}},
		{"email,role\n\"a@b.io,admin\n", []string{"line 2:"}},
		{"email,role\na b@c.io,admin\n,view\n", []string{`line 2: email "a b@c.io"`, "line 3: email is empty"}},
		{"email,role\na@b.io,\nc@d.io,client\n", []string{"line 2: role is empty", "line 3: role client"}},
		{"email,role,permissions\na@b.io,view,x.y;x.y\n", []string{`line 2: permission "x.y" is not`}},
		{"email,role,permissions\na@b.io,view,campaigns.view;campaigns.view\n", []string{`line 2: permission "campaigns.view" appears twice`}},
	} {
		_, problems := parsePeopleCSV([]byte(tc.data))
		var got []string
		for _, p := range problems {
			got = append(got, "line "+strconv.Itoa(p.Line)+": "+p.Msg)
		}
		joined := strings.Join(got, "\n")
		for _, w := range tc.want {
			if !strings.Contains(joined, w) {
				t.Errorf("%q: want %q in\n%s", tc.data, w, joined)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: %d problems, want %d:\n%s", tc.data, len(got), len(tc.want), joined)
		}
	}
}

func TestParseImportCSV(t *testing.T) {
	data := "workspace_id,display_name,api_key,labels\n" +
		"acme,Acme Inc,key-aaaaaaaa,team=sdr-west; client=acme\n" +
		"beta,,key-bbbbbbbb,\n"
	rows, problems := parseImportCSV([]byte(data))
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(rows) != 2 || rows[0].labels["client"] != "acme" || rows[1].displayName != "beta" || len(rows[1].labels) != 0 {
		t.Errorf("rows: %+v", rows)
	}
	bad := "workspace_id,api_key,labels\n" +
		"Acme,key-aaaaaaaa,\n" +
		"beta,short,\n" +
		"gamma,key-cccccccc,team\n" +
		"delta,key-cccccccc,\n" +
		"eps,key-eeeeeeee,team=a;team=b\n" +
		"zeta,key-ffffffff,-bad=x\n"
	_, problems = parseImportCSV([]byte(bad))
	want := []string{"workspace_id \"Acme\"", "api_key must be 8-512", "labels: \"team\" is not key=value", "api_key is the same as line 4's", "key \"team\" appears twice", "labels: labels[\"-bad\"]"}
	if len(problems) != len(want) {
		t.Fatalf("problems: %+v", problems)
	}
	for i, w := range want {
		if !strings.Contains(problems[i].Msg, w) || problems[i].Line != i+2 {
			t.Errorf("problem %d: %+v, want line %d %q", i, problems[i], i+2, w)
		}
		if strings.Contains(problems[i].Msg, "key-") {
			t.Errorf("a message echoes an API key: %q", problems[i].Msg)
		}
	}
}

func TestOnboardRequestID(t *testing.T) {
	a := onboardRequestID([]byte("email,role\na@b.io,view\n"), "selector:team=x", 0, 1)
	if a != onboardRequestID([]byte("email,role\na@b.io,view\n"), "selector:team=x", 0, 1) {
		t.Error("not deterministic")
	}
	for _, other := range []string{
		onboardRequestID([]byte("email,role\na@b.io,edit\n"), "selector:team=x", 0, 1),
		onboardRequestID([]byte("email,role\na@b.io,view\n"), "selector:team=y", 0, 1),
		onboardRequestID([]byte("email,role\na@b.io,view\n"), "selector:team=x", 0, 2),
	} {
		if other == a {
			t.Error("different inputs, same request id")
		}
	}
	if a[14] != '5' {
		t.Errorf("%s is not a version 5 UUID", a)
	}
}

func TestOffboardTargets(t *testing.T) {
	m := func(email string, role agencyv1.MemberRole, accepted bool) *agencyv1.Member {
		return &agencyv1.Member{Email: email, Role: role, Accepted: accepted}
	}
	const (
		owner  = agencyv1.MemberRole_MEMBER_ROLE_OWNER
		admin  = agencyv1.MemberRole_MEMBER_ROLE_ADMIN
		editor = agencyv1.MemberRole_MEMBER_ROLE_EDITOR
	)
	ws := func(name string, members ...*agencyv1.Member) *agencyv1.WorkspaceResult {
		return &agencyv1.WorkspaceResult{Workspace: "workspaces/" + name, Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ,
			Payload: &agencyv1.WorkspaceResult_Members{Members: &agencyv1.MemberList{Members: members}}}
	}
	results := []*agencyv1.WorkspaceResult{
		ws("owns", m("x@a.io", owner, true)),
		ws("last-admin", m("o@a.io", owner, true), m("X@a.io", admin, true), m("p@a.io", admin, false)),
		ws("two-admins", m("x@a.io", admin, true), m("q@a.io", admin, true)),
		ws("pending-admin", m("x@a.io", admin, false)),
		ws("editor", m("x@a.io", editor, true)),
		ws("absent", m("y@a.io", editor, true)),
	}
	got := map[string]string{}
	for _, tg := range offboardTargets("x@a.io", results) {
		got[shortName(tg.workspace)] = tg.refused
	}
	if len(got) != 5 || got["owns"] == "" || got["last-admin"] == "" || got["two-admins"] != "" || got["pending-admin"] != "" || got["editor"] != "" {
		t.Errorf("targets: %v", got)
	}
}

func TestMakePlan(t *testing.T) {
	people := []person{{email: "a@x.io", role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, {email: "B@x.io", role: agencyv1.MemberRole_MEMBER_ROLE_ADMIN}}
	results := []*agencyv1.WorkspaceResult{
		{Workspace: "workspaces/one", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ,
			Payload: &agencyv1.WorkspaceResult_Members{Members: &agencyv1.MemberList{Members: []*agencyv1.Member{{Email: "b@x.io"}}}}},
		{Workspace: "workspaces/two", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ},
		{Workspace: "workspaces/three", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, Status: status.New(codes.FailedPrecondition, "key revoked").Proto()},
	}
	p := makePlan(people, results, "-l team=x")
	if p.Items != 6 || p.Invites != 3 || p.AlreadyThere != 1 || len(p.Unreadable) != 1 || p.Operations != 1 {
		t.Errorf("plan: %+v", p)
	}
}

func TestStatusText(t *testing.T) {
	info, _ := anypb.New(&errdetails.ErrorInfo{Reason: "CREDENTIAL_INVALID", Domain: "agencyplane.dev"})
	br, _ := anypb.New(&errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "workspace.display_name", Description: "must not be blank"}}})
	st := status.New(codes.InvalidArgument, "the key was refused\nby Instantly").Proto()
	st.Details = append(st.Details, info, br)
	got := statusText(st)
	want := "invalid argument: the key was refused by Instantly [CREDENTIAL_INVALID]; workspace.display_name: must not be blank"
	if got != want {
		t.Errorf("statusText = %q, want %q", got, want)
	}
	if r := reasonText(st); r != "CREDENTIAL_INVALID: the key was refused by Instantly" {
		t.Errorf("reasonText = %q", r)
	}
	if !isConnectionFailure(status.Error(codes.Unavailable, "connection refused")) || isConnectionFailure(status.ErrorProto(st)) || !isConnectionFailure(errors.New("x")) {
		t.Error("isConnectionFailure")
	}
}

func TestRenderTable(t *testing.T) {
	got := renderTable([]string{"name", "state"}, [][]string{{"acme", "active"}, {"a-much-longer-name", ""}}, false)
	want := "NAME                 STATE\nacme                 active\na-much-longer-name\n"
	if got != want {
		t.Errorf("table:\n%q\nwant\n%q", got, want)
	}
}
