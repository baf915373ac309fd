package scim

import (
	"encoding/json"
	"testing"
)

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping([]byte("groups:\n  - group: sdr-west\n    selector: team=sdr-west\n    role: editor\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := m.rule("SDR-West"); !ok || r.Selector != "team=sdr-west" {
		t.Fatalf("rule %+v %v", r, ok)
	}
	if _, ok := m.rule("other"); ok {
		t.Fatal("unmapped group matched")
	}
	for _, bad := range []string{
		"", "groups: []",
		"groups:\n  - group: a\n    selector: team=a\n    role: owner\n",
		"groups:\n  - group: a\n    role: editor\n",
		"groups:\n  - group: a\n    selector: \"team in (\"\n    role: editor\n",
		"groups:\n  - group: a\n    selector: team=a\n    role: editor\n  - group: A\n    selector: team=b\n    role: view\n",
		"groups:\n  - group: a\n    selector: team=a\n    role: editor\n    extra: 1\n",
	} {
		if _, err := ParseMapping([]byte(bad)); err == nil {
			t.Errorf("mapping %q accepted", bad)
		}
	}
}

func TestBool(t *testing.T) {
	for in, want := range map[string]bool{`true`: true, `false`: false, `"True"`: true, `"False"`: false, `"TRUE"`: true, `null`: false} {
		var b Bool
		if err := json.Unmarshal([]byte(in), &b); err != nil || bool(b) != want {
			t.Errorf("%s: %v %v", in, b, err)
		}
	}
	var b Bool
	if err := json.Unmarshal([]byte(`"yes"`), &b); err == nil {
		t.Error(`"yes" accepted`)
	}
}
