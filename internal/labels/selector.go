package labels

import (
	"fmt"
	"slices"
	"strings"
)

const (
	// MaxSelectorLength bounds the parser's input in bytes.
	MaxSelectorLength = 1024
	// MaxRequirements bounds the number of comma-separated requirements.
	MaxRequirements = 64
)

// Operator is the comparison a Requirement performs.
type Operator int

// Operators, in the order requirements on the same key are sorted in the
// canonical form.
const (
	Exists       Operator = iota + 1 // key
	DoesNotExist                     // !key
	Equals                           // key=value, key==value, key in (value)
	NotEquals                        // key!=value, key notin (value)
	In                               // key in (a,b)
	NotIn                            // key notin (a,b)
)

func (o Operator) String() string {
	switch o {
	case Exists:
		return "exists"
	case DoesNotExist:
		return "!"
	case Equals:
		return "="
	case NotEquals:
		return "!="
	case In:
		return "in"
	case NotIn:
		return "notin"
	}
	return fmt.Sprintf("Operator(%d)", int(o))
}

// Requirement is one term of a selector. Values is empty for Exists and
// DoesNotExist, has exactly one element for Equals and NotEquals, and two or
// more sorted, distinct elements for In and NotIn.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
}

// Matches follows Kubernetes semantics: the negative operators (!=, notin)
// also match workspaces that lack the key entirely.
func (r Requirement) Matches(labels map[string]string) bool {
	v, ok := labels[r.Key]
	switch r.Operator {
	case Exists:
		return ok
	case DoesNotExist:
		return !ok
	case Equals, In:
		return ok && slices.Contains(r.Values, v)
	case NotEquals, NotIn:
		return !ok || !slices.Contains(r.Values, v)
	}
	return false
}

func (r Requirement) String() string {
	switch r.Operator {
	case Exists:
		return r.Key
	case DoesNotExist:
		return "!" + r.Key
	case Equals:
		return r.Key + "=" + formatValue(r.Values[0])
	case NotEquals:
		return r.Key + "!=" + formatValue(r.Values[0])
	case In, NotIn:
		vs := make([]string, len(r.Values))
		for i, v := range r.Values {
			vs[i] = formatValue(v)
		}
		// No space before "(": the canonical form must never be longer than
		// the shortest input that produces it, or a selector at the length
		// limit would fail to re-parse from its own String().
		return r.Key + " " + r.Operator.String() + "(" + strings.Join(vs, ",") + ")"
	}
	return r.Key + " " + r.Operator.String()
}

// formatValue spells the empty value as "" so it survives a round trip.
func formatValue(v string) string {
	if v == "" {
		return `""`
	}
	return v
}

func compareRequirements(a, b Requirement) int {
	if c := strings.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	if a.Operator != b.Operator {
		return int(a.Operator) - int(b.Operator)
	}
	return slices.Compare(a.Values, b.Values)
}

// Selector is an AND of requirements. The zero value has no requirements and
// matches every label set. Selectors are immutable and safe to share.
type Selector struct {
	reqs []Requirement // canonical: normalised, sorted, deduplicated
}

// Everything returns the selector that matches every label set.
func Everything() Selector { return Selector{} }

// newSelector canonicalises reqs so that String is a pure function of the
// selector's meaning for the common spellings (==/=, single-value in, order,
// duplicates). It takes ownership of reqs.
func newSelector(reqs []Requirement) Selector {
	for i := range reqs {
		r := &reqs[i]
		if r.Operator == In || r.Operator == NotIn || r.Operator == Equals || r.Operator == NotEquals {
			vs := slices.Clone(r.Values)
			slices.Sort(vs)
			r.Values = slices.Compact(vs)
			if len(r.Values) == 1 {
				switch r.Operator {
				case In:
					r.Operator = Equals
				case NotIn:
					r.Operator = NotEquals
				}
			}
		} else {
			r.Values = nil
		}
	}
	slices.SortFunc(reqs, compareRequirements)
	reqs = slices.CompactFunc(reqs, func(a, b Requirement) bool { return compareRequirements(a, b) == 0 })
	if len(reqs) == 0 {
		return Selector{}
	}
	return Selector{reqs: reqs}
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s.reqs {
		if !r.Matches(labels) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no requirements (matches everything).
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// String returns the canonical form: requirements sorted by key then operator,
// set values sorted and deduplicated, "==" spelled "=", single-value sets
// spelled as "=" / "!=". Equivalent spellings therefore print identically,
// which lets callers hash the result. The empty selector prints as "".
func (s Selector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// Requirements returns a copy of the canonical requirements.
func (s Selector) Requirements() []Requirement {
	out := make([]Requirement, len(s.reqs))
	for i, r := range s.reqs {
		out[i] = Requirement{Key: r.Key, Operator: r.Operator, Values: slices.Clone(r.Values)}
	}
	return out
}

// NarrowerOrEqual reports whether s holds every requirement of outer, so
// it selects no workspace that outer does not (selectors are ANDs).
func (s Selector) NarrowerOrEqual(outer Selector) bool {
	have := map[string]bool{}
	for _, r := range s.Requirements() {
		have[r.String()] = true
	}
	for _, r := range outer.Requirements() {
		if !have[r.String()] {
			return false
		}
	}
	return true
}

// And returns a selector matching label sets that match both s and other,
// e.g. a caller's permitted scope intersected with a request's filter. The
// result may exceed MaxRequirements or MaxSelectorLength; those limits only
// guard untrusted input to Parse.
func (s Selector) And(other Selector) Selector {
	reqs := make([]Requirement, 0, len(s.reqs)+len(other.reqs))
	reqs = append(reqs, s.Requirements()...)
	reqs = append(reqs, other.Requirements()...)
	return newSelector(reqs)
}

// SyntaxError reports where and why Parse rejected a selector.
type SyntaxError struct {
	// Pos is the 0-based byte offset in the input where the problem was found.
	Pos int
	Msg string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("label selector: position %d: %s", e.Pos, e.Msg)
}

// Parse parses a label selector: a comma-separated AND of requirements
//
//	key=value  key==value  key!=value  key in (a,b)  key notin (a,b)  key  !key
//
// with optional whitespace around tokens. The empty value is written "".
// An empty (or all-whitespace) string yields the selector that matches
// everything. Errors are *SyntaxError.
func Parse(s string) (Selector, error) {
	if len(s) > MaxSelectorLength {
		return Selector{}, &SyntaxError{Pos: MaxSelectorLength, Msg: fmt.Sprintf("selector is longer than %d bytes", MaxSelectorLength)}
	}
	p := &parser{s: s}
	p.skipSpace()
	if p.eof() {
		return Selector{}, nil
	}
	var reqs []Requirement
	for {
		p.skipSpace()
		switch {
		case p.eof():
			// Only reachable right after a comma.
			return Selector{}, p.errAt(p.lastComma, "trailing comma")
		case p.peek() == ',':
			return Selector{}, p.errf("empty requirement")
		case len(reqs) == MaxRequirements:
			return Selector{}, p.errf("more than %d requirements", MaxRequirements)
		}
		r, err := p.requirement()
		if err != nil {
			return Selector{}, err
		}
		reqs = append(reqs, r)
		p.skipSpace()
		if p.eof() {
			break
		}
		if p.peek() != ',' {
			return Selector{}, p.errf("expected \",\" or end of selector, found %q", p.rest())
		}
		p.lastComma = p.pos
		p.pos++
	}
	return newSelector(reqs), nil
}

// MustParse is Parse for selectors known at compile time; it panics on error.
func MustParse(s string) Selector {
	sel, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

type parser struct {
	s         string
	pos       int
	lastComma int
}

func (p *parser) eof() bool  { return p.pos >= len(p.s) }
func (p *parser) peek() byte { return p.s[p.pos] }

func (p *parser) skipSpace() {
	for !p.eof() {
		switch p.peek() {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// rest returns a short excerpt of the unparsed input for error messages.
func (p *parser) rest() string {
	r := p.s[p.pos:]
	if len(r) > 10 {
		r = r[:10] + "..."
	}
	return r
}

func (p *parser) errAt(pos int, format string, args ...any) *SyntaxError {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) errf(format string, args ...any) *SyntaxError {
	return p.errAt(p.pos, format, args...)
}

// word reads a maximal run of key/value characters.
func (p *parser) word() string {
	start := p.pos
	for !p.eof() && isNameChar(p.peek()) {
		p.pos++
	}
	return p.s[start:p.pos]
}

func (p *parser) key(after string) (string, error) {
	p.skipSpace()
	start := p.pos
	if p.eof() {
		if after == "" {
			return "", p.errf("expected key")
		}
		return "", p.errf("expected key after %q", after)
	}
	k := p.word()
	if k == "" {
		if after == "" {
			return "", p.errf("expected key, found %q", p.rest())
		}
		return "", p.errf("expected key after %q, found %q", after, p.rest())
	}
	if desc := keyProblem(k); desc != "" {
		return "", p.errAt(start, "invalid key %q: %s", k, desc)
	}
	return k, nil
}

func (p *parser) value(after string) (string, error) {
	p.skipSpace()
	start := p.pos
	if p.eof() || p.peek() == ',' || p.peek() == ')' {
		return "", p.errf("expected value after %q", after)
	}
	if p.peek() == '"' {
		if !strings.HasPrefix(p.s[p.pos:], `""`) {
			return "", p.errf(`quoted values are not supported except "" for the empty value`)
		}
		p.pos += 2
		if !p.eof() && (isNameChar(p.peek()) || p.peek() == '"') {
			return "", p.errf(`unexpected %q after ""`, p.rest())
		}
		return "", nil
	}
	v := p.word()
	if v == "" {
		return "", p.errf("expected value after %q, found %q", after, p.rest())
	}
	if desc := valueProblem(v); desc != "" {
		return "", p.errAt(start, "invalid value %q: %s", v, desc)
	}
	return v, nil
}

func isOpChar(c byte) bool { return c == '=' || c == '!' || c == '<' || c == '>' || c == '~' }

func (p *parser) requirement() (Requirement, error) {
	if p.peek() == '!' {
		p.pos++
		k, err := p.key("!")
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: DoesNotExist}, nil
	}
	k, err := p.key("")
	if err != nil {
		return Requirement{}, err
	}
	p.skipSpace()
	if p.eof() || p.peek() == ',' {
		return Requirement{Key: k, Operator: Exists}, nil
	}
	opStart := p.pos
	switch c := p.peek(); {
	case isOpChar(c):
		for !p.eof() && isOpChar(p.peek()) {
			p.pos++
		}
		op := p.s[opStart:p.pos]
		var o Operator
		switch op {
		case "=", "==":
			o = Equals
		case "!=":
			o = NotEquals
		default:
			return Requirement{}, p.errAt(opStart, "unknown operator %q", op)
		}
		v, err := p.value(op)
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: o, Values: []string{v}}, nil
	case isNameChar(c):
		op := p.word()
		var o Operator
		switch op {
		case "in":
			o = In
		case "notin":
			o = NotIn
		default:
			return Requirement{}, p.errAt(opStart, "unknown operator %q", op)
		}
		vs, err := p.set(op)
		if err != nil {
			return Requirement{}, err
		}
		return Requirement{Key: k, Operator: o, Values: vs}, nil
	default:
		return Requirement{}, p.errf("expected operator after key %q, found %q", k, p.rest())
	}
}

// set parses "(v1, v2, ...)" after an in/notin operator.
func (p *parser) set(op string) ([]string, error) {
	p.skipSpace()
	if p.eof() || p.peek() != '(' {
		return nil, p.errf("expected \"(\" after %q", op)
	}
	open := p.pos
	p.pos++
	p.skipSpace()
	if !p.eof() && p.peek() == ')' {
		return nil, p.errf("empty value list after %q", op)
	}
	var vs []string
	after := "("
	for {
		p.skipSpace()
		if p.eof() {
			return nil, p.errAt(open, "unclosed \"(\"")
		}
		v, err := p.value(after)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		p.skipSpace()
		if p.eof() {
			return nil, p.errAt(open, "unclosed \"(\"")
		}
		switch p.peek() {
		case ')':
			p.pos++
			return vs, nil
		case ',':
			p.pos++
			after = ","
		default:
			return nil, p.errf("expected \",\" or \")\", found %q", p.rest())
		}
	}
}
