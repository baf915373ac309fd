// Package desiredstate is access as code: the agency's file (agency.yaml,
// version 1) declaring who belongs in which workspaces with which role and
// which tags each workspace carries; its parser, with line-numbered errors;
// the pure diff of (desired, observed) per workspace, peribolos-style
// (pending invitations count as present, the owner and the last admin are
// never touched, unmanaged members are left alone); the removal limits; and
// the stores of plans, of the last applied file and of drift reports.
package desiredstate

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
)

// Version is the only file version understood.
const Version = 1

// Defaults of the removal limits when the file sets none: a safety net
// (peribolos refuses large removal deltas too), not a policy.
const (
	DefaultMaxRemovalsPerWorkspace = 10
	DefaultMaxRemovalsTotal        = 100
)

// Bounds of one file, so a plan stays a reasonable size.
const (
	MaxPeople    = 10_000
	MaxAccess    = 100 // access entries of one person
	MaxTagRules  = 1_000
	MaxLabels    = 100 // labels of one tags entry
	MaxUnmanaged = 1_000
	maxEmailLen  = 320
	maxLabelLen  = 200
	maxProblems  = 50
)

// Doc is a parsed, valid file.
type Doc struct {
	People    []Person
	Tags      []TagRule
	Unmanaged []Pattern
	Limits    Limits
	// SHA256 is "sha256:" + hex of the file's text.
	SHA256 string
}

// Person is one entry of people.
type Person struct {
	Email  string // lower case
	Line   int
	Access []Access
}

// Access is one access entry of a person: a role in every workspace the
// selector selects.
type Access struct {
	Selector labels.Selector
	Raw      string // the selector as written
	Role     instantly.MemberRole
	Line     int
}

// TagRule is one entry of tags: labels every selected workspace carries.
type TagRule struct {
	Selector labels.Selector
	Raw      string
	Labels   []string // trimmed
	Line     int
}

// Pattern is one unmanaged glob (path.Match syntax, matched against the
// lower-cased email).
type Pattern struct {
	Glob string
	Line int
}

// Matches reports whether email matches the pattern.
func (p Pattern) Matches(email string) bool {
	ok, _ := path.Match(p.Glob, strings.ToLower(email))
	return ok
}

// Limits are the removal limits.
type Limits struct {
	MaxRemovalsPerWorkspace int
	MaxRemovalsTotal        int
}

// Problem is one thing wrong with a file.
type Problem struct {
	Line int    // 1-based; 0 when unknown
	Path string // e.g. people[0].access[1].role
	Msg  string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", p.Line)
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ParseError lists every problem found (up to 50).
type ParseError struct {
	Problems []Problem
}

func (e *ParseError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid desired state: " + strings.Join(parts, "; ")
}

// ErrInvalid is matched (errors.Is) by every *ParseError.
var ErrInvalid = errors.New("desiredstate: invalid file")

// Is lets errors.Is(err, ErrInvalid) match.
func (e *ParseError) Is(target error) bool { return target == ErrInvalid }

// Parse reads and validates a file. Every problem found is reported with
// its line, not only the first.
func Parse(src []byte) (*Doc, error) {
	p := &parser{}
	var root yaml.Node
	if err := yaml.Unmarshal(src, &root); err != nil {
		return nil, &ParseError{Problems: []Problem{syntaxProblem(err)}}
	}
	sum := sha256.Sum256(src)
	doc := &Doc{SHA256: "sha256:" + hex.EncodeToString(sum[:]),
		Limits: Limits{MaxRemovalsPerWorkspace: DefaultMaxRemovalsPerWorkspace, MaxRemovalsTotal: DefaultMaxRemovalsTotal}}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, &ParseError{Problems: []Problem{{Line: 1, Msg: "the file is empty; it needs at least \"version: 1\""}}}
	}
	p.top(resolve(root.Content[0]), doc)
	if len(p.problems) > 0 {
		return nil, &ParseError{Problems: p.problems}
	}
	return doc, nil
}

var yamlLineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// syntaxProblem turns a YAML syntax error ("yaml: line 3: …") into a
// problem with its line.
func syntaxProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return Problem{Line: line, Msg: "not valid YAML: " + m[2]}
	}
	return Problem{Msg: "not valid YAML: " + msg}
}

type parser struct {
	problems []Problem
}

func (p *parser) add(n *yaml.Node, path, format string, args ...any) {
	if len(p.problems) >= maxProblems {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	p.problems = append(p.problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// field is one key of a mapping.
type field struct {
	key   *yaml.Node
	value *yaml.Node
}

// mapping returns a mapping's fields by key, reporting unknown, duplicate
// and missing required keys.
func (p *parser) mapping(n *yaml.Node, path string, known []string, required ...string) map[string]field {
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping with keys %s, not %s", strings.Join(known, ", "), kindName(n))
		return nil
	}
	out := map[string]field{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		name := k.Value
		switch {
		case k.Kind != yaml.ScalarNode:
			p.add(k, path, "keys must be strings")
		case !slices.Contains(known, name):
			p.add(k, join(path, name), "unknown key %q (known: %s)", name, strings.Join(known, ", "))
		case out[name].key != nil:
			p.add(k, join(path, name), "key %q given twice (first on line %d)", name, out[name].key.Line)
		default:
			out[name] = field{key: k, value: v}
		}
	}
	for _, r := range required {
		if _, ok := out[r]; !ok {
			p.add(n, join(path, r), "is required")
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// str returns a string scalar (YAML strings, and plain scalars such as
// numbers are refused so that "role: 1" is not read as a role).
func (p *parser) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		p.add(n, path, "must be a string, not %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

// nonNegInt returns a non-negative integer scalar.
func (p *parser) nonNegInt(n *yaml.Node, path string) (int, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.add(n, path, "must be a whole number, not %s", kindName(n))
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 || v > 1_000_000 {
		p.add(n, path, "must be between 0 and 1000000")
		return 0, false
	}
	return v, true
}

// seq returns a list's items (at most limit).
func (p *parser) seq(n *yaml.Node, path string, limit int) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		p.add(n, path, "must be a list, not %s", kindName(n))
		return nil
	}
	if len(n.Content) > limit {
		p.add(n, path, "has %d entries; at most %d", len(n.Content), limit)
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = resolve(c)
	}
	return out
}

func (p *parser) top(n *yaml.Node, doc *Doc) {
	f := p.mapping(n, "", []string{"version", "people", "tags", "unmanaged", "limits"}, "version")
	if f == nil {
		return
	}
	if v, ok := f["version"]; ok {
		if v.value.Kind != yaml.ScalarNode || v.value.Tag != "!!int" || v.value.Value != strconv.Itoa(Version) {
			p.add(v.value, "version", "must be %d (the only version there is), not %s", Version, kindName(v.value))
		}
	}
	if v, ok := f["people"]; ok {
		p.people(v.value, doc)
	}
	if v, ok := f["tags"]; ok {
		p.tags(v.value, doc)
	}
	if v, ok := f["unmanaged"]; ok {
		for i, item := range p.seq(v.value, "unmanaged", MaxUnmanaged) {
			at := fmt.Sprintf("unmanaged[%d]", i)
			s, ok := p.str(item, at)
			if !ok {
				continue
			}
			glob := strings.ToLower(strings.TrimSpace(s))
			if _, err := path.Match(glob, ""); err != nil || glob == "" {
				p.add(item, at, "%q is not a valid pattern (e.g. \"*@client.com\")", s)
				continue
			}
			doc.Unmanaged = append(doc.Unmanaged, Pattern{Glob: glob, Line: item.Line})
		}
	}
	if v, ok := f["limits"]; ok {
		lf := p.mapping(v.value, "limits", []string{"max_removals_per_workspace", "max_removals_total"})
		if x, ok := lf["max_removals_per_workspace"]; ok {
			if n, ok := p.nonNegInt(x.value, "limits.max_removals_per_workspace"); ok {
				doc.Limits.MaxRemovalsPerWorkspace = n
			}
		}
		if x, ok := lf["max_removals_total"]; ok {
			if n, ok := p.nonNegInt(x.value, "limits.max_removals_total"); ok {
				doc.Limits.MaxRemovalsTotal = n
			}
		}
	}
}

func (p *parser) people(n *yaml.Node, doc *Doc) {
	seen := map[string]int{}
	for i, item := range p.seq(n, "people", MaxPeople) {
		at := fmt.Sprintf("people[%d]", i)
		f := p.mapping(item, at, []string{"email", "access"}, "email", "access")
		if f == nil {
			continue
		}
		person := Person{Line: item.Line}
		if e, ok := f["email"]; ok {
			if s, ok := p.str(e.value, at+".email"); ok {
				email, err := ValidEmail(s)
				switch {
				case err != nil:
					p.add(e.value, at+".email", "%v", err)
				case seen[email] > 0:
					p.add(e.value, at+".email", "%s is declared twice (first on line %d); give one entry several access entries instead", email, seen[email])
				default:
					seen[email] = e.value.Line
					person.Email = email
				}
			}
		}
		if a, ok := f["access"]; ok {
			items := p.seq(a.value, at+".access", MaxAccess)
			if a.value.Kind == yaml.SequenceNode && len(items) == 0 {
				p.add(a.value, at+".access", "must list at least one access entry")
			}
			for j, it := range items {
				aat := fmt.Sprintf("%s.access[%d]", at, j)
				af := p.mapping(it, aat, []string{"selector", "role"}, "selector", "role")
				if af == nil {
					continue
				}
				acc := Access{Line: it.Line}
				if s, ok := af["selector"]; ok {
					acc.Raw, acc.Selector, _ = p.selector(s.value, aat+".selector")
				}
				if r, ok := af["role"]; ok {
					if s, ok := p.str(r.value, aat+".role"); ok {
						role, err := ParseRole(s)
						if err != nil {
							p.add(r.value, aat+".role", "%v", err)
						}
						acc.Role = role
					}
				}
				person.Access = append(person.Access, acc)
			}
		}
		doc.People = append(doc.People, person)
	}
}

func (p *parser) tags(n *yaml.Node, doc *Doc) {
	for i, item := range p.seq(n, "tags", MaxTagRules) {
		at := fmt.Sprintf("tags[%d]", i)
		f := p.mapping(item, at, []string{"selector", "labels"}, "selector", "labels")
		if f == nil {
			continue
		}
		rule := TagRule{Line: item.Line}
		if s, ok := f["selector"]; ok {
			rule.Raw, rule.Selector, _ = p.selector(s.value, at+".selector")
		}
		if l, ok := f["labels"]; ok {
			items := p.seq(l.value, at+".labels", MaxLabels)
			if l.value.Kind == yaml.SequenceNode && len(items) == 0 {
				p.add(l.value, at+".labels", "must list at least one label")
			}
			for j, it := range items {
				lat := fmt.Sprintf("%s.labels[%d]", at, j)
				s, ok := p.str(it, lat)
				if !ok {
					continue
				}
				label := strings.TrimSpace(s)
				switch {
				case label == "":
					p.add(it, lat, "must not be blank")
				case len(label) > maxLabelLen:
					p.add(it, lat, "is longer than %d characters", maxLabelLen)
				default:
					rule.Labels = append(rule.Labels, label)
				}
			}
		}
		doc.Tags = append(doc.Tags, rule)
	}
}

// selector parses a label selector; "" selects every workspace.
func (p *parser) selector(n *yaml.Node, at string) (string, labels.Selector, bool) {
	s, ok := p.str(n, at)
	if !ok {
		return "", labels.Selector{}, false
	}
	sel, err := labels.Parse(s)
	if err != nil {
		p.add(n, at, "%q is not a label selector: %v", s, err)
		return "", labels.Selector{}, false
	}
	return s, sel, true
}

// ValidEmail returns the lower-cased address, or why it is not one: a bare
// address (no display name), at most 320 characters, a dot in the domain.
func ValidEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > maxEmailLen {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	_, domain, _ := strings.Cut(s, "@")
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Errorf("%q is not an email address (its domain has no dot)", s)
	}
	return strings.ToLower(s), nil
}

// ParseRole reads a declared role: admin, editor or view. The owner moves
// only by TransferOwnership and Instantly's API offers no client role.
func ParseRole(s string) (instantly.MemberRole, error) {
	switch r := instantly.MemberRole(strings.ToLower(strings.TrimSpace(s))); r {
	case instantly.RoleAdmin, instantly.RoleEditor, instantly.RoleView:
		return r, nil
	case instantly.RoleOwner:
		return "", errors.New(`"owner" cannot be declared (ownership moves only with TransferOwnership); use admin, editor or view`)
	}
	return "", fmt.Errorf("%q is not a role; use admin, editor or view", s)
}
