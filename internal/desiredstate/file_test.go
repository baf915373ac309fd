package desiredstate

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

func TestParseExample(t *testing.T) {
	src, err := os.ReadFile("../../examples/agency.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := Parse(src)
	if err != nil {
		t.Fatalf("examples/agency.yaml: %v", err)
	}
	if len(doc.People) != 4 || doc.People[1].Email != "ana.lopez@agency.example" || len(doc.People[1].Access) != 2 {
		t.Fatalf("people: %+v", doc.People)
	}
	if a := doc.People[1].Access[0]; a.Role != instantly.RoleEditor || a.Raw != "team=sdr-west" || a.Line != 22 {
		t.Fatalf("ana's first access: %+v", a)
	}
	if len(doc.Tags) != 2 || doc.Tags[0].Labels[0] != "Q3 push" {
		t.Fatalf("tags: %+v", doc.Tags)
	}
	if len(doc.Unmanaged) != 2 || !doc.Unmanaged[0].Matches("Jo@Client-Acme.com") || doc.Unmanaged[0].Matches("jo@agency.example") {
		t.Fatalf("unmanaged: %+v", doc.Unmanaged)
	}
	if doc.Limits != (Limits{MaxRemovalsPerWorkspace: 2, MaxRemovalsTotal: 20}) {
		t.Fatalf("limits: %+v", doc.Limits)
	}
	if !strings.HasPrefix(doc.SHA256, "sha256:") {
		t.Fatalf("hash %q", doc.SHA256)
	}
}

func TestParseDefaults(t *testing.T) {
	doc, err := Parse([]byte("version: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Limits != (Limits{MaxRemovalsPerWorkspace: DefaultMaxRemovalsPerWorkspace, MaxRemovalsTotal: DefaultMaxRemovalsTotal}) {
		t.Fatalf("limits %+v", doc.Limits)
	}
}

// TestParseErrors: every problem is reported with its line and path.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name string
		src  string
		want []string // "line N: path: fragment", each must appear
	}{
		{"empty", "", []string{"line 1: the file is empty"}},
		{"syntax", "version: 1\npeople: [\n", []string{"not valid YAML"}},
		{"not a mapping", "- a\n", []string{"line 1: must be a mapping"}},
		{"no version", "people: []\n", []string{"line 1: version: is required"}},
		{"wrong version", "version: 2\n", []string{"line 1: version: must be 1"}},
		{"unknown key", "version: 1\npeeple: []\n", []string{`line 2: peeple: unknown key "peeple"`}},
		{"duplicate key", "version: 1\ntags: []\ntags: []\n", []string{`line 3: tags: key "tags" given twice (first on line 2)`}},
		{"bad email", "version: 1\npeople:\n  - email: not-an-email\n    access: [{selector: a=b, role: view}]\n",
			[]string{`line 3: people[0].email: "not-an-email" is not an email address`}},
		{"display name email", "version: 1\npeople:\n  - email: Ana <ana@agency.example>\n    access: [{selector: a=b, role: view}]\n",
			[]string{"line 3: people[0].email:"}},
		{"no dot in domain", "version: 1\npeople:\n  - email: ana@localhost\n    access: [{selector: a=b, role: view}]\n",
			[]string{"line 3: people[0].email:", "no dot"}},
		{"person twice", "version: 1\npeople:\n  - email: a@x.io\n    access: [{selector: a=b, role: view}]\n  - email: A@X.io\n    access: [{selector: a=c, role: view}]\n",
			[]string{"line 5: people[1].email: a@x.io is declared twice (first on line 3)"}},
		{"bad role", "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - selector: a=b\n        role: manager\n",
			[]string{`line 6: people[0].access[0].role: "manager" is not a role`}},
		{"owner role", "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - selector: a=b\n        role: owner\n",
			[]string{`line 6: people[0].access[0].role: "owner" cannot be declared`}},
		{"numeric role", "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - {selector: a=b, role: 1}\n",
			[]string{`line 5: people[0].access[0].role: must be a string`}},
		{"bad selector", "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - selector: \"team in (a\"\n        role: view\n",
			[]string{`line 5: people[0].access[0].selector: "team in (a" is not a label selector`}},
		{"missing access", "version: 1\npeople:\n  - email: a@x.io\n",
			[]string{"line 3: people[0].access: is required"}},
		{"empty access", "version: 1\npeople:\n  - email: a@x.io\n    access: []\n",
			[]string{"line 4: people[0].access: must list at least one access entry"}},
		{"unknown access key", "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - selector: a=b\n        role: view\n        rol: view\n",
			[]string{`line 7: people[0].access[0].rol: unknown key "rol"`}},
		{"blank tag", "version: 1\ntags:\n  - selector: a=b\n    labels: [\"  \"]\n", []string{"line 4: tags[0].labels[0]: must not be blank"}},
		{"bad glob", "version: 1\nunmanaged: [\"[a-\"]\n", []string{`line 2: unmanaged[0]: "[a-" is not a valid pattern`}},
		{"negative limit", "version: 1\nlimits:\n  max_removals_total: -1\n", []string{"line 3: limits.max_removals_total: must be between 0 and 1000000"}},
		{"string limit", "version: 1\nlimits:\n  max_removals_per_workspace: two\n", []string{"line 3: limits.max_removals_per_workspace: must be a whole number"}},
		{"several at once", "version: 1\npeople:\n  - email: bad\n    access:\n      - {selector: a=b, role: boss}\n",
			[]string{"line 3: people[0].email:", "line 5: people[0].access[0].role:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.src))
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want a ParseError, got %v", err)
			}
			msg := err.Error()
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Parse([]byte("version: 1\npeople:\n  - email: a@x.io\n   access: x\n"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Problems[0].Line == 0 {
		t.Fatalf("want a line: %v", err)
	}
}

func TestValidEmail(t *testing.T) {
	for in, want := range map[string]string{"Ana@Agency.Example": "ana@agency.example", " a.b+c@x.io ": "a.b+c@x.io"} {
		if got, err := ValidEmail(in); err != nil || got != want {
			t.Errorf("ValidEmail(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "a", "a@", "@x.io", "a@x", "a b@x.io", "<a@x.io>", "a@x.io.", strings.Repeat("a", 320) + "@x.io"} {
		if _, err := ValidEmail(bad); err == nil {
			t.Errorf("ValidEmail(%q) accepted", bad)
		}
	}
}
