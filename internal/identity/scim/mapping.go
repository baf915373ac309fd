package scim

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/labels"
)

// GroupRule gives the members of one SCIM group (by displayName) a role in
// the workspaces a label selector picks.
type GroupRule struct {
	Group    string `yaml:"group"`
	Selector string `yaml:"selector"`
	Role     string `yaml:"role"`

	role agencyv1.MemberRole
}

// Mapping is the --scim-mapping file.
type Mapping struct {
	Groups []GroupRule `yaml:"groups"`
}

var memberRoles = map[string]agencyv1.MemberRole{
	"admin": agencyv1.MemberRole_MEMBER_ROLE_ADMIN, "editor": agencyv1.MemberRole_MEMBER_ROLE_EDITOR,
	"view": agencyv1.MemberRole_MEMBER_ROLE_VIEW, "viewer": agencyv1.MemberRole_MEMBER_ROLE_VIEW,
}

// LoadMapping reads a mapping file.
func LoadMapping(path string) (*Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scim mapping: %w", err)
	}
	return ParseMapping(data)
}

// ParseMapping reads and checks a mapping: each group once, a non-empty
// selector, an Instantly role (admin, editor, view).
func ParseMapping(data []byte) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("scim mapping: %w", err)
	}
	if len(m.Groups) == 0 {
		return nil, errors.New("scim mapping: no groups")
	}
	seen := map[string]bool{}
	for i := range m.Groups {
		g := &m.Groups[i]
		if strings.TrimSpace(g.Group) == "" || seen[strings.ToLower(g.Group)] {
			return nil, fmt.Errorf("scim mapping: groups[%d]: a group name, each once", i)
		}
		seen[strings.ToLower(g.Group)] = true
		if strings.TrimSpace(g.Selector) == "" {
			return nil, fmt.Errorf("scim mapping: group %q: a selector is required (e.g. team=sdr-west)", g.Group)
		}
		if _, err := labels.Parse(g.Selector); err != nil {
			return nil, fmt.Errorf("scim mapping: group %q: selector: %w", g.Group, err)
		}
		r, ok := memberRoles[strings.ToLower(g.Role)]
		if !ok {
			return nil, fmt.Errorf("scim mapping: group %q: role %q is not admin, editor or view", g.Group, g.Role)
		}
		g.role = r
	}
	return &m, nil
}

// rule returns the rule of a group by displayName (case-insensitive).
func (m *Mapping) rule(group string) (*GroupRule, bool) {
	if m == nil {
		return nil, false
	}
	for i := range m.Groups {
		if strings.EqualFold(m.Groups[i].Group, group) {
			return &m.Groups[i], true
		}
	}
	return nil, false
}
