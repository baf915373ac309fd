package desiredstate

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/pb33f/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schema compiles the published JSON Schema of the file.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("../../schemas/agency.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://agencyplane.dev/schemas/agency.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON turns a YAML file into the JSON value the schema sees.
func asJSON(t *testing.T, src string) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemaAcceptsTheExample: the published schema accepts
// examples/agency.yaml, which the parser accepts too.
func TestSchemaAcceptsTheExample(t *testing.T) {
	src, err := os.ReadFile("../../examples/agency.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := schema(t).Validate(asJSON(t, string(src))); err != nil {
		t.Fatalf("the schema refuses examples/agency.yaml: %v", err)
	}
}

// TestSchemaRejectsWhatTheParserRejects: files the parser refuses for a
// reason a schema can express are refused by the schema too, so editors
// flag them before agencyctl does.
func TestSchemaRejectsWhatTheParserRejects(t *testing.T) {
	s := schema(t)
	bad := map[string]string{
		"no version":      "people: []\n",
		"wrong version":   "version: 2\n",
		"unknown key":     "version: 1\npeeple: []\n",
		"bad email":       "version: 1\npeople:\n  - email: not-an-email\n    access: [{selector: a=b, role: view}]\n",
		"bad role":        "version: 1\npeople:\n  - email: a@x.io\n    access: [{selector: a=b, role: manager}]\n",
		"owner role":      "version: 1\npeople:\n  - email: a@x.io\n    access: [{selector: a=b, role: owner}]\n",
		"no access":       "version: 1\npeople:\n  - email: a@x.io\n",
		"empty access":    "version: 1\npeople:\n  - email: a@x.io\n    access: []\n",
		"unknown access":  "version: 1\npeople:\n  - email: a@x.io\n    access: [{selector: a=b, role: view, rol: x}]\n",
		"blank label":     "version: 1\ntags:\n  - selector: a=b\n    labels: [\"  \"]\n",
		"no labels":       "version: 1\ntags:\n  - selector: a=b\n",
		"negative limit":  "version: 1\nlimits: {max_removals_total: -1}\n",
		"string limit":    "version: 1\nlimits: {max_removals_per_workspace: two}\n",
		"unknown limit":   "version: 1\nlimits: {max_removals: 3}\n",
		"selector number": "version: 1\ntags:\n  - selector: 5\n    labels: [x]\n",
	}
	for name, src := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(src)); err == nil {
				t.Fatal("the parser accepts it")
			}
			if err := s.Validate(asJSON(t, src)); err == nil {
				t.Fatal("the schema accepts it")
			}
		})
	}
	good := "version: 1\npeople:\n  - email: a@x.io\n    access: [{selector: \"\", role: admin}]\ntags: [{selector: team, labels: [warm]}]\nunmanaged: [\"*@c.io\"]\nlimits: {max_removals_per_workspace: 0, max_removals_total: 0}\n"
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(asJSON(t, good)); err != nil {
		t.Fatalf("the schema refuses a good file: %v", err)
	}
}
