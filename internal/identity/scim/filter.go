package scim

import (
	"regexp"
	"strings"
)

// filter is the one filter form identity providers send: `attr eq "v"`.
type filter struct {
	attr  string // lower-cased; "" = no filter
	value string
}

var filterRE = regexp.MustCompile(`(?i)^\s*([A-Za-z][A-Za-z0-9_.:]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$`)

func parseFilter(s string, allowed ...string) (filter, error) {
	if strings.TrimSpace(s) == "" {
		return filter{}, nil
	}
	m := filterRE.FindStringSubmatch(s)
	if m == nil {
		return filter{}, badRequest("invalidFilter", `only "<attribute> eq \"<value>\"" filters are supported`)
	}
	for _, a := range allowed {
		if strings.EqualFold(a, m[1]) {
			return filter{attr: strings.ToLower(a), value: strings.ReplaceAll(strings.ReplaceAll(m[2], `\"`, `"`), `\\`, `\`)}, nil
		}
	}
	return filter{}, badRequest("invalidFilter", "cannot filter on %q", m[1])
}

func (f filter) matchUser(u *User) bool {
	switch f.attr {
	case "":
		return true
	case "username":
		return strings.EqualFold(u.UserName, f.value)
	case "externalid":
		return u.ExternalID == f.value
	case "id":
		return u.ID == f.value
	case "displayname":
		return strings.EqualFold(u.DisplayName, f.value)
	case "emails.value", "emails":
		for _, e := range u.Emails {
			if strings.EqualFold(e.Value, f.value) {
				return true
			}
		}
	}
	return false
}

func (f filter) matchGroup(g *Group) bool {
	switch f.attr {
	case "":
		return true
	case "displayname":
		return strings.EqualFold(g.DisplayName, f.value)
	case "externalid":
		return g.ExternalID == f.value
	case "id":
		return g.ID == f.value
	}
	return false
}
