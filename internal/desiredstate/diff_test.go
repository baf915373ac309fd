package desiredstate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// m is an observed member: "email role [pending]".
func m(spec string) instantly.WorkspaceMember {
	f := strings.Fields(spec)
	return instantly.WorkspaceMember{ID: "id-" + f[0], Email: f[0], Role: instantly.MemberRole(f[1]), Accepted: len(f) < 3}
}

func members(specs ...string) []instantly.WorkspaceMember {
	out := make([]instantly.WorkspaceMember, len(specs))
	for i, s := range specs {
		out[i] = m(s)
	}
	return out
}

func tags(labels ...string) []instantly.CustomTag {
	out := make([]instantly.CustomTag, len(labels))
	for i, l := range labels {
		out[i] = instantly.CustomTag{ID: fmt.Sprint("tag-", i), Label: l}
	}
	return out
}

// people builds Want.People from "email role" pairs.
func people(specs ...string) map[string]Grant {
	out := map[string]Grant{}
	for i, s := range specs {
		f := strings.Fields(s)
		out[f[0]] = Grant{Role: instantly.MemberRole(f[1]), Line: 10 + i}
	}
	return out
}

// render is a diff in one line per change or kept member, for comparison.
func render(d Diff) []string {
	var out []string
	for _, c := range d.Changes {
		switch c.Kind {
		case Invite:
			out = append(out, fmt.Sprintf("+ %s %s", c.Email, c.Role))
		case Role:
			out = append(out, fmt.Sprintf("~ %s %s->%s", c.Email, c.CurrentRole, c.Role))
		case Remove:
			out = append(out, fmt.Sprintf("- %s", c.Email))
		case Tag:
			out = append(out, fmt.Sprintf("+tag %s", c.Label))
		}
	}
	for _, k := range d.Kept {
		out = append(out, fmt.Sprintf("= %s %s", k.Email, k.Reason))
	}
	return out
}

func TestCompute(t *testing.T) {
	owner := "owner@c.io owner"
	cases := []struct {
		name string
		want Want
		obs  Observed
		diff []string
	}{
		{
			name: "invites the absent, leaves the owner",
			want: Want{Members: true, People: people("ana@a.io editor", "bo@a.io view")},
			obs:  Observed{MembersRead: true, Members: members(owner)},
			diff: []string{"+ ana@a.io editor", "+ bo@a.io view", "= owner@c.io owner"},
		},
		{
			name: "a member the identity provider gave counts as declared; others are removed",
			want: Want{Members: true, People: people("ana@a.io editor"), Provisioned: map[string]bool{"idp@a.io": true}},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor", "idp@a.io view", "hand@a.io view")},
			diff: []string{"- hand@a.io", "= idp@a.io identity_provider", "= owner@c.io owner"},
		},
		{
			name: "the file's role wins over the identity provider's for a declared person",
			want: Want{Members: true, People: people("idp@a.io admin"), Provisioned: map[string]bool{"idp@a.io": true}},
			obs:  Observed{MembersRead: true, Members: members(owner, "idp@a.io view")},
			diff: []string{"~ idp@a.io view->admin", "= owner@c.io owner"},
		},
		{
			name: "converged: nothing to do",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor")},
			diff: []string{"= owner@c.io owner"},
		},
		{
			name: "a pending invitation counts as present",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor pending")},
			diff: []string{"= ana@a.io pending_invitation", "= owner@c.io owner"},
		},
		{
			name: "a pending invitation with another role is changed, not re-invited",
			want: Want{Members: true, People: people("ana@a.io admin")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io view pending")},
			diff: []string{"~ ana@a.io view->admin", "= owner@c.io owner"},
		},
		{
			name: "role changes, promotions first",
			want: Want{Members: true, People: people("zed@a.io admin", "ana@a.io view")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io admin", "zed@a.io editor")},
			diff: []string{"~ zed@a.io editor->admin", "~ ana@a.io admin->view", "= owner@c.io owner"},
		},
		{
			name: "undeclared members and invitations are removed",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor", "old@a.io view", "ghost@a.io editor pending")},
			diff: []string{"- ghost@a.io", "- old@a.io", "= owner@c.io owner"},
		},
		{
			name: "emails compare ignoring case",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "Ana@A.io editor")},
			diff: []string{"= owner@c.io owner"},
		},
		{
			name: "the owner is never changed, even when declared",
			want: Want{Members: true, People: people("owner@c.io view")},
			obs:  Observed{MembersRead: true, Members: members(owner)},
			diff: []string{"= owner@c.io owner"},
		},
		{
			name: "unmanaged members are never touched, nor invited",
			want: Want{Members: true, People: people("x@client.com view", "ana@a.io editor"),
				Unmanaged: []Pattern{{Glob: "*@client.com", Line: 3}}},
			obs:  Observed{MembersRead: true, Members: members(owner, "jo@client.com admin", "ana@a.io editor")},
			diff: []string{"= jo@client.com unmanaged", "= owner@c.io owner", "= x@client.com unmanaged"},
		},
		{
			name: "the last accepted admin is kept",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor", "boss@a.io admin")},
			diff: []string{"= boss@a.io last_admin", "= owner@c.io owner"},
		},
		{
			name: "of two admins leaving, the first by email stays",
			want: Want{Members: true, People: people("ana@a.io editor")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor", "zz@a.io admin", "aa@a.io admin")},
			diff: []string{"- zz@a.io", "= aa@a.io last_admin", "= owner@c.io owner"},
		},
		{
			name: "the last admin is not demoted",
			want: Want{Members: true, People: people("boss@a.io view")},
			obs:  Observed{MembersRead: true, Members: members(owner, "boss@a.io admin")},
			diff: []string{"= boss@a.io last_admin", "= owner@c.io owner"},
		},
		{
			name: "an admin may go when another is promoted",
			want: Want{Members: true, People: people("ana@a.io admin")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io editor", "boss@a.io admin")},
			diff: []string{"~ ana@a.io editor->admin", "- boss@a.io", "= owner@c.io owner"},
		},
		{
			name: "an invited admin is nobody's admin yet",
			want: Want{Members: true, People: people("new@a.io admin")},
			obs:  Observed{MembersRead: true, Members: members(owner, "boss@a.io admin")},
			diff: []string{"+ new@a.io admin", "= boss@a.io last_admin", "= owner@c.io owner"},
		},
		{
			name: "a pending admin invitation may be withdrawn",
			want: Want{Members: true, People: people("ana@a.io admin")},
			obs:  Observed{MembersRead: true, Members: members(owner, "ana@a.io admin", "maybe@a.io admin pending")},
			diff: []string{"- maybe@a.io", "= owner@c.io owner"},
		},
		{
			name: "members of a workspace only tags select are left as they are",
			want: Want{Tags: []WantTag{{Label: "warm", Line: 4}}},
			obs:  Observed{TagsRead: true, Tags: tags("cold")},
			diff: []string{"+tag warm"},
		},
		{
			name: "tags compare trimmed, ignoring case; others stay",
			want: Want{Tags: []WantTag{{Label: "Q3 push"}, {Label: "warm"}}},
			obs:  Observed{TagsRead: true, Tags: tags(" q3 PUSH ", "other")},
			diff: []string{"+tag warm"},
		},
		{
			name: "tags first, then members",
			want: Want{Members: true, People: people("ana@a.io view"), Tags: []WantTag{{Label: "warm"}}},
			obs:  Observed{MembersRead: true, Members: members(owner), TagsRead: true},
			diff: []string{"+tag warm", "+ ana@a.io view", "= owner@c.io owner"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := render(Compute(c.want, c.obs))
			if !slices.Equal(got, c.diff) {
				t.Fatalf("diff\n got  %q\n want %q", got, c.diff)
			}
		})
	}
}

// TestComputeIsPure: the same input gives the same diff whatever the
// order members were read in, and the input is not modified.
func TestComputeIsPure(t *testing.T) {
	want := Want{Members: true, People: people("ana@a.io editor", "bo@a.io admin")}
	a := members("owner@c.io owner", "zed@a.io view", "bo@a.io editor", "x@a.io admin")
	b := slices.Clone(a)
	slices.Reverse(b)
	before := slices.Clone(b)
	da, db := Compute(want, Observed{MembersRead: true, Members: a}), Compute(want, Observed{MembersRead: true, Members: b})
	if !slices.Equal(render(da), render(db)) {
		t.Fatalf("order matters: %q vs %q", render(da), render(db))
	}
	if !slices.EqualFunc(b, before, func(x, y instantly.WorkspaceMember) bool { return x.ID == y.ID }) {
		t.Fatal("Compute reordered its input")
	}
	if Fingerprint(Observed{MembersRead: true, Members: a}) != Fingerprint(Observed{MembersRead: true, Members: b}) {
		t.Fatal("the fingerprint depends on read order")
	}
}

func TestFingerprint(t *testing.T) {
	base := Observed{MembersRead: true, Members: members("owner@c.io owner", "ana@a.io editor"), TagsRead: true, Tags: tags("warm")}
	fp := Fingerprint(base)
	mutations := map[string]func(o *Observed){
		"role":     func(o *Observed) { o.Members[1].Role = instantly.RoleView },
		"accepted": func(o *Observed) { o.Members[1].Accepted = false },
		"member":   func(o *Observed) { o.Members = append(o.Members, m("new@a.io view")) },
		"removed":  func(o *Observed) { o.Members = o.Members[:1] },
		"tag":      func(o *Observed) { o.Tags = append(o.Tags, instantly.CustomTag{ID: "t9", Label: "x"}) },
		"relabel":  func(o *Observed) { o.Tags[0].Label = "cold" },
		"no tags":  func(o *Observed) { o.TagsRead = false },
	}
	for name, mutate := range mutations {
		o := Observed{MembersRead: true, Members: slices.Clone(base.Members), TagsRead: true, Tags: slices.Clone(base.Tags)}
		mutate(&o)
		if Fingerprint(o) == fp {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	// What the diff does not depend on does not change it.
	o := Observed{MembersRead: true, Members: slices.Clone(base.Members), TagsRead: true, Tags: slices.Clone(base.Tags)}
	nick := "Ana"
	o.Members[1].Nickname = &nick
	o.Members[1].Email = "ANA@a.io"
	if Fingerprint(o) != fp {
		t.Error("nickname or email case changed the fingerprint")
	}
}

func TestForAndConflicts(t *testing.T) {
	doc, err := Parse([]byte(`version: 1
people:
  - email: ana@a.io
    access:
      - selector: "team=west"
        role: editor
      - selector: "client=acme"
        role: view
      - selector: "tier=gold"
        role: editor
tags:
  - selector: "team=west"
    labels: ["warm", "Q3"]
  - selector: "client=acme"
    labels: ["WARM", "acme"]
`))
	if err != nil {
		t.Fatal(err)
	}
	w, c := doc.For("workspaces/w1", map[string]string{"team": "west", "tier": "gold"})
	if len(c) != 0 || !w.Members || w.People["ana@a.io"] != (Grant{Role: instantly.RoleEditor, Line: 5}) {
		t.Fatalf("want %+v conflicts %v", w, c)
	}
	_, c = doc.For("workspaces/w2", map[string]string{"team": "west", "client": "acme"})
	if len(c) != 1 || c[0].A.Line != 5 || c[0].B.Line != 7 || !strings.Contains(c[0].String(), "lines 5 and 7 give ana@a.io two roles (editor and view) in workspaces/w2") {
		t.Fatalf("conflicts %v", c)
	}
	w, _ = doc.For("workspaces/w3", map[string]string{"client": "acme", "team": "west"})
	var labels []string
	for _, t := range w.Tags {
		labels = append(labels, t.Label)
	}
	if !slices.Equal(labels, []string{"warm", "Q3", "acme"}) {
		t.Fatalf("tags %q", labels)
	}
	w, _ = doc.For("workspaces/w4", map[string]string{"team": "east"})
	if w.Members || len(w.Tags) != 0 || doc.Selects(map[string]string{"team": "east"}) {
		t.Fatalf("east is not selected: %+v", w)
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxRemovalsPerWorkspace: 2, MaxRemovalsTotal: 4}
	if v := l.Check(map[string]int{"workspaces/a": 2, "workspaces/b": 2}); len(v) != 0 {
		t.Fatalf("within limits: %v", v)
	}
	v := l.Check(map[string]int{"workspaces/a": 3, "workspaces/b": 2})
	if len(v) != 2 || v[0].Limit != "max_removals_per_workspace" || v[0].Workspace != "workspaces/a" || v[1].Limit != "max_removals_total" || v[1].Count != 5 {
		t.Fatalf("violations %+v", v)
	}
	if v := (Limits{}).Check(map[string]int{"workspaces/a": 1}); len(v) != 2 {
		t.Fatalf("zero limits allow no removal: %+v", v)
	}
}
