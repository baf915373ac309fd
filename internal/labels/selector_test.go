package labels

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseCanonical(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"", ""},
		{"   \t\n", ""},
		{"env=prod", "env=prod"},
		{"env==prod", "env=prod"},
		{" env = prod ", "env=prod"},
		{"env!=prod", "env!=prod"},
		{"env != prod", "env!=prod"},
		{"env", "env"},
		{"!env", "!env"},
		{"! env", "!env"},
		{"env in (b,a)", "env in(a,b)"},
		{"env in(b , a , b)", "env in(a,b)"},
		{"env notin ( z, y )", "env notin(y,z)"},
		{"env in (prod)", "env=prod"},
		{"env notin (prod)", "env!=prod"},
		{"env in (prod,prod)", "env=prod"},
		{`env=""`, `env=""`},
		{`env in ("", a)`, `env in("",a)`},
		{`env notin ("")`, `env!=""`},
		{"tier=web,env=prod", "env=prod,tier=web"},
		{"env=prod,env=prod", "env=prod"},
		{"env==prod,env=prod", "env=prod"},
		{"b,!a,a=1", "!a,a=1,b"},
		{"a!=1,a=1,a,!a,a in(1,2),a notin(1,2)", "a,!a,a=1,a!=1,a in(1,2),a notin(1,2)"},
		{"in in (in, notin)", "in in(in,notin)"},
		{"notin=in", "notin=in"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			sel, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got := sel.String(); got != tt.want {
				t.Fatalf("Parse(%q).String() = %q, want %q", tt.in, got, tt.want)
			}
			if sel.Empty() != (tt.want == "") {
				t.Errorf("Empty() = %v", sel.Empty())
			}
			again, err := Parse(sel.String())
			if err != nil || again.String() != tt.want {
				t.Errorf("re-parse of %q = %q, %v", sel.String(), again.String(), err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	long := "a=" + strings.Repeat("b", MaxSelectorLength-1)
	var tooMany []string
	for i := range MaxRequirements + 1 {
		tooMany = append(tooMany, fmt.Sprintf("k%d", i))
	}
	tooManyStr := strings.Join(tooMany, ",")

	tests := []struct {
		in      string
		pos     int
		msgPart string
	}{
		{"a=b,,c=d", 4, "empty requirement"},
		{",a=b", 0, "empty requirement"},
		{"a=b,", 3, "trailing comma"},
		{"a=b, ", 3, "trailing comma"},
		{"region=", 7, `expected value after "="`},
		{"region==", 8, `expected value after "=="`},
		{"a!=", 3, `expected value after "!="`},
		{"a=,b", 2, `expected value after "="`},
		{"a=b c", 4, `expected "," or end of selector`},
		{"a=b=c", 3, `expected "," or end of selector`},
		{"Env=prod", 0, `invalid key "Env"`},
		{"-a=b", 0, `invalid key "-a"`},
		{"a=-b", 2, `invalid value "-b"`},
		{"a=b-", 2, `invalid value "b-"`},
		{"a=" + strings.Repeat("x", 64), 2, "invalid value"},
		{"a=b@c", 3, `expected "," or end of selector`},
		{"a@b", 1, `expected operator after key "a"`},
		{"@", 0, "expected key"},
		{"!", 1, `expected key after "!"`},
		{"!=a", 1, `expected key after "!"`},
		{"!a=b", 2, `expected "," or end of selector`},
		{"a>1", 1, `unknown operator ">"`},
		{"a>=1", 1, `unknown operator ">="`},
		{"a===1", 1, `unknown operator "==="`},
		{"a=!1", 1, `unknown operator "=!"`},
		{"a b", 2, `unknown operator "b"`},
		{"a IN (b)", 2, `unknown operator "IN"`},
		{"a in b", 5, `expected "(" after "in"`},
		{"a in", 4, `expected "(" after "in"`},
		{"a in ()", 6, "empty value list"},
		{"a notin ( )", 10, "empty value list"},
		{"a in (b", 5, `unclosed "("`},
		{"a in (b,", 5, `unclosed "("`},
		{"a in (", 5, `unclosed "("`},
		{"a in (b,)", 8, `expected value after ","`},
		{"a in (,b)", 6, `expected value after "("`},
		{"a in (b c)", 8, `expected "," or ")"`},
		{"a in (b-)", 6, `invalid value "b-"`},
		{`a="x"`, 2, "quoted values are not supported"},
		{`a=""x`, 4, `unexpected "x" after ""`},
		{`a="""`, 4, `unexpected`},
		{long, MaxSelectorLength, "longer than 1024 bytes"},
		{tooManyStr, strings.LastIndex(tooManyStr, ",") + 1, "more than 64 requirements"},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			sel, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, sel.String())
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not *SyntaxError", err)
			}
			if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.msgPart) {
				t.Errorf("Parse(%q) error = %q (pos %d), want pos %d and message containing %q", tt.in, err, se.Pos, tt.pos, tt.msgPart)
			}
			if want := fmt.Sprintf("label selector: position %d: %s", se.Pos, se.Msg); err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
		})
	}
}

func TestParseLimitsBoundary(t *testing.T) {
	exact := "a=" + strings.Repeat("b", 60) + strings.Repeat(" ", MaxSelectorLength-62)
	if len(exact) != MaxSelectorLength {
		t.Fatalf("test bug: len %d", len(exact))
	}
	if _, err := Parse(exact); err != nil {
		t.Errorf("selector of exactly %d bytes: %v", MaxSelectorLength, err)
	}
	var reqs []string
	for i := range MaxRequirements {
		reqs = append(reqs, fmt.Sprintf("k%d", i))
	}
	sel, err := Parse(strings.Join(reqs, ","))
	if err != nil {
		t.Fatalf("%d requirements: %v", MaxRequirements, err)
	}
	if n := len(sel.Requirements()); n != MaxRequirements {
		t.Errorf("got %d requirements", n)
	}
}

func TestMatches(t *testing.T) {
	prod := map[string]string{"env": "prod", "tier": "web", "blank": ""}
	dev := map[string]string{"env": "dev"}
	none := map[string]string{}
	tests := []struct {
		sel                   string
		prod, dev, none, nilm bool
	}{
		{"", true, true, true, true},
		{"env", true, true, false, false},
		{"!env", false, false, true, true},
		{"env=prod", true, false, false, false},
		{"env==dev", false, true, false, false},
		{"env!=prod", false, true, true, true},
		{"env in (prod,dev)", true, true, false, false},
		{"env in (staging,qa)", false, false, false, false},
		{"env notin (prod,qa)", false, true, true, true},
		{"env=prod,tier=web", true, false, false, false},
		{"env=prod,tier=db", false, false, false, false},
		{"env,!tier", false, true, false, false},
		{`blank=""`, true, false, false, false},
		{`blank`, true, false, false, false},
		{`blank!=""`, false, true, true, true},
		{`env in ("", dev)`, false, true, false, false},
		{"env=Prod", false, false, false, false}, // values are case-sensitive
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel := MustParse(tt.sel)
			for _, c := range []struct {
				name   string
				labels map[string]string
				want   bool
			}{{"prod", prod, tt.prod}, {"dev", dev, tt.dev}, {"none", none, tt.none}, {"nil", nil, tt.nilm}} {
				if got := sel.Matches(c.labels); got != c.want {
					t.Errorf("%q.Matches(%s) = %v, want %v", sel, c.name, got, c.want)
				}
			}
		})
	}
}

func TestEquivalentSpellingsPrintTheSame(t *testing.T) {
	groups := [][]string{
		{"env=prod,tier=web", "tier=web,env=prod", " tier == web , env = prod ", "env in (prod),tier in (web,web)", "env=prod,tier=web,env==prod"},
		{"a in (x,y,z)", "a in (z,y,x)", "a in (x,x,y,z,y)", "a in(z , x , y)"},
		{"a!=x", "a notin (x)", "a notin (x, x)"},
	}
	for _, g := range groups {
		want := MustParse(g[0]).String()
		for _, s := range g[1:] {
			if got := MustParse(s).String(); got != want {
				t.Errorf("Parse(%q).String() = %q, want %q (same as %q)", s, got, want, g[0])
			}
		}
	}
	if MustParse("a=x").String() == MustParse("a!=x").String() {
		t.Error("different selectors print the same")
	}
}

func TestAnd(t *testing.T) {
	tests := []struct {
		a, b, want string
	}{
		{"", "", ""},
		{"env=prod", "", "env=prod"},
		{"", "env=prod", "env=prod"},
		{"tier=web", "env=prod", "env=prod,tier=web"},
		{"env=prod", "env=prod", "env=prod"},
		{"env in (a,b)", "env in (b,a)", "env in(a,b)"},
		{"env=a", "env=b", "env=a,env=b"}, // unsatisfiable but still an AND
	}
	for _, tt := range tests {
		t.Run(tt.a+"&"+tt.b, func(t *testing.T) {
			a, b := MustParse(tt.a), MustParse(tt.b)
			got := a.And(b)
			if got.String() != tt.want {
				t.Fatalf("And = %q, want %q", got.String(), tt.want)
			}
			if got.Empty() != (tt.want == "") {
				t.Errorf("Empty() = %v", got.Empty())
			}
			if rev := b.And(a).String(); rev != tt.want {
				t.Errorf("And is not commutative: %q vs %q", rev, tt.want)
			}
			// Operands must be unchanged.
			if a.String() != MustParse(tt.a).String() || b.String() != MustParse(tt.b).String() {
				t.Error("And mutated an operand")
			}
		})
	}
}

func TestAndSemantics(t *testing.T) {
	scope := MustParse("client in (acme,globex)")
	filter := MustParse("env=prod")
	both := scope.And(filter)
	cases := []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"client": "acme", "env": "prod"}, true},
		{map[string]string{"client": "globex", "env": "prod"}, true},
		{map[string]string{"client": "initech", "env": "prod"}, false},
		{map[string]string{"client": "acme", "env": "dev"}, false},
		{map[string]string{"env": "prod"}, false},
	}
	for _, c := range cases {
		if got := both.Matches(c.labels); got != c.want {
			t.Errorf("Matches(%v) = %v, want %v", c.labels, got, c.want)
		}
		if want := scope.Matches(c.labels) && filter.Matches(c.labels); both.Matches(c.labels) != want {
			t.Errorf("And disagrees with conjunction for %v", c.labels)
		}
	}
}

func TestZeroSelectorAndEverything(t *testing.T) {
	var zero Selector
	for _, s := range []Selector{zero, Everything(), MustParse("")} {
		if !s.Empty() || s.String() != "" || !s.Matches(nil) || !s.Matches(map[string]string{"a": "b"}) {
			t.Errorf("selector %#v should be empty and match everything", s)
		}
	}
}

func TestRequirementsIsACopy(t *testing.T) {
	sel := MustParse("a in (x,y)")
	rs := sel.Requirements()
	if len(rs) != 1 || rs[0].Key != "a" || rs[0].Operator != In || strings.Join(rs[0].Values, ",") != "x,y" {
		t.Fatalf("Requirements() = %+v", rs)
	}
	rs[0].Values[0] = "zzz"
	rs[0].Key = "b"
	if sel.String() != "a in(x,y)" {
		t.Errorf("mutating Requirements() changed the selector: %q", sel)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("a in (")
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "env=prod", "env==prod,tier!=web", "a in (x,y)", "a notin (x)", "!a,b",
		`a=""`, `a in ("",b)`, "a=b,,c=d", "a in ()", "a in (b", "a>b", "a=b,",
		" a = b , c in ( d , e ) ", "in in (in)", "A=b", "a=b c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sel, err := Parse(s)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) error %T is not *SyntaxError", s, err)
			}
			if se.Pos < 0 || se.Pos > len(s) && se.Pos != MaxSelectorLength {
				t.Fatalf("Parse(%q) error position %d out of range", s, se.Pos)
			}
			return
		}
		canon := sel.String()
		if len(canon) > len(s) {
			t.Fatalf("canonical form %q is longer than input %q", canon, s)
		}
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) ok but Parse(String()=%q) failed: %v", s, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("String not stable: %q -> %q -> %q", s, canon, again.String())
		}
		if sel.Empty() != (canon == "") {
			t.Fatalf("Empty() = %v for %q", sel.Empty(), canon)
		}
		for _, r := range sel.Requirements() {
			if ValidateKey(r.Key) != nil {
				t.Fatalf("parsed invalid key %q from %q", r.Key, s)
			}
			for _, v := range r.Values {
				if ValidateValue(v) != nil {
					t.Fatalf("parsed invalid value %q from %q", v, s)
				}
			}
		}
	})
}

func TestNarrowerOrEqual(t *testing.T) {
	for _, tc := range []struct {
		inner, outer string
		want         bool
	}{
		{"", "", true},
		{"team=a", "", true},
		{"", "team=a", false},
		{"team=a,client=b", "team=a", true},
		{"team=a", "team=a,client=b", false},
		{"team=b", "team=a", false},
		{"team in (a,b)", "team in (b,a)", true},
	} {
		if got := MustParse(tc.inner).NarrowerOrEqual(MustParse(tc.outer)); got != tc.want {
			t.Errorf("%q.NarrowerOrEqual(%q) = %v, want %v", tc.inner, tc.outer, got, tc.want)
		}
	}
}

// TestErrorExcerpt: error messages quote up to 10 characters of what was
// not parsed, marking only a longer rest as cut.
func TestErrorExcerpt(t *testing.T) {
	for s, want := range map[string]string{"0123456789": "0123456789", "0123456789x": "0123456789...", "": ""} {
		if got := (&parser{s: s}).rest(); got != want {
			t.Errorf("rest of %q = %q, want %q", s, got, want)
		}
	}
}
