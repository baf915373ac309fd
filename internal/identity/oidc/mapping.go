package oidc

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
)

// Rule maps the callers whose claims match to a role and a workspace scope.
type Rule struct {
	// Match names claims and the value each must have: a string claim
	// equals it, a list claim contains it, a boolean or number claim
	// prints as it. Every entry must hold; an empty match matches anyone.
	Match map[string]string `yaml:"match"`
	// Role is a control-plane role (admin, manager, sdr, viewer; the
	// provisioner role belongs to SCIM tokens only).
	Role string `yaml:"role"`
	// Scope is a label selector of the workspaces the caller may see;
	// empty = all.
	Scope string `yaml:"scope"`

	scope labels.Selector
}

// Mapping is an ordered list of rules: the first that matches wins, and a
// caller no rule matches is denied.
type Mapping []Rule

// LoadMapping reads a mapping from a YAML file.
func LoadMapping(path string) (Mapping, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("oidc mapping: %w", err)
	}
	return ParseMapping(data)
}

// ParseMapping reads a mapping from YAML (a list of rules) and checks
// every role and scope.
func ParseMapping(data []byte) (Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("oidc mapping: %w", err)
	}
	if len(m) == 0 {
		return nil, errors.New("oidc mapping: no rules (every caller would be denied)")
	}
	for i := range m {
		r := &m[i]
		if auth.RoleRank(r.Role) == 0 || r.Role == auth.RoleProvisioner {
			return nil, fmt.Errorf("oidc mapping: rule %d: unknown role %q", i+1, r.Role)
		}
		s, err := labels.Parse(r.Scope)
		if err != nil {
			return nil, fmt.Errorf("oidc mapping: rule %d: scope: %w", i+1, err)
		}
		r.scope = s
	}
	return m, nil
}

// Resolve returns the first rule the claims match.
func (m Mapping) Resolve(claims map[string]any) (*Rule, bool) {
	for i := range m {
		if m[i].matches(claims) {
			return &m[i], true
		}
	}
	return nil, false
}

func (r *Rule) matches(claims map[string]any) bool {
	for name, want := range r.Match {
		if !claimHas(claims[name], want) {
			return false
		}
	}
	return true
}

// claimHas reports whether a claim's value is, or (a list) contains, want.
func claimHas(v any, want string) bool {
	switch v := v.(type) {
	case string:
		return v == want
	case bool:
		return strconv.FormatBool(v) == want
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) == want
	case []any:
		return slices.ContainsFunc(v, func(e any) bool {
			_, isList := e.([]any)
			return !isList && claimHas(e, want)
		})
	}
	return false
}
