package scim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// patchOp is one PATCH operation, its op lower-cased (Entra sends
// "Replace", "Add").
type patchOp struct {
	op    string
	path  string
	value json.RawMessage
	// members: the refs of a members add/replace/remove.
	members []Ref
}

var memberFilterRE = regexp.MustCompile(`(?i)^members\[\s*value\s+eq\s+"([^"]*)"\s*\]$`)

func patchInput(r *http.Request) ([]patchOp, error) {
	var body struct {
		Schemas    []string `json:"schemas"`
		Operations []struct {
			Op    string          `json:"op"`
			Path  string          `json:"path"`
			Value json.RawMessage `json:"value"`
		} `json:"Operations"`
	}
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if len(body.Operations) == 0 {
		return nil, badRequest("invalidValue", "no Operations")
	}
	var ops []patchOp
	for _, o := range body.Operations {
		op := patchOp{op: strings.ToLower(strings.TrimSpace(o.Op)), path: strings.TrimSpace(o.Path), value: o.Value}
		switch op.op {
		case "add", "replace", "remove":
		default:
			return nil, badRequest("invalidSyntax", "op %q is not add, replace or remove", o.Op)
		}
		if op.op != "remove" && op.path == "" && !isObject(op.value) {
			return nil, badRequest("invalidValue", "an operation without a path needs an object value")
		}
		if op.op != "remove" && len(op.value) == 0 {
			return nil, badRequest("invalidValue", "%s needs a value", op.op)
		}
		if strings.EqualFold(op.path, "members") && len(op.value) > 0 && string(op.value) != "null" {
			if err := json.Unmarshal(op.value, &op.members); err != nil {
				return nil, badRequest("invalidValue", "members must be a list of {\"value\": id}")
			}
		}
		if op.path == "" && isObject(op.value) {
			// {"members": [...]} inside a path-less value becomes its own op.
			var obj map[string]json.RawMessage
			_ = json.Unmarshal(op.value, &obj)
			for k, v := range obj {
				if strings.EqualFold(k, "members") {
					m := patchOp{op: op.op, path: "members", value: v}
					if err := json.Unmarshal(v, &m.members); err != nil {
						return nil, badRequest("invalidValue", "members must be a list of {\"value\": id}")
					}
					ops = append(ops, m)
				}
			}
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func isObject(v json.RawMessage) bool {
	s := strings.TrimSpace(string(v))
	return strings.HasPrefix(s, "{")
}

func applyUserOp(u *User, op patchOp) error {
	if op.path == "" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(op.value, &obj); err != nil {
			return badRequest("invalidValue", "value must be an object")
		}
		for k, v := range obj {
			if err := setUserAttr(u, k, v); err != nil {
				return err
			}
		}
		return nil
	}
	if op.op == "remove" {
		return setUserAttr(u, op.path, json.RawMessage("null"))
	}
	return setUserAttr(u, op.path, op.value)
}

var workEmailRE = regexp.MustCompile(`(?i)^emails\[\s*type\s+eq\s+"([^"]*)"\s*\]\.value$`)

// setUserAttr sets (null: clears) one attribute. Attributes agencyd does
// not keep (title, the enterprise extension, …) are accepted and dropped.
func setUserAttr(u *User, path string, v json.RawMessage) error {
	null := string(v) == "null"
	str := func(dst *string) error {
		if null {
			*dst = ""
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return badRequest("invalidValue", "%s must be a string", path)
		}
		return nil
	}
	name := func() *Name {
		if u.Name == nil {
			u.Name = &Name{}
		}
		return u.Name
	}
	switch p := strings.ToLower(path); {
	case p == "active":
		if null {
			return badRequest("mutability", "active cannot be removed")
		}
		if err := json.Unmarshal(v, &u.Active); err != nil {
			return badRequest("invalidValue", "active must be a boolean")
		}
	case p == "username":
		if null {
			return badRequest("mutability", "userName is required")
		}
		if err := str(&u.UserName); err != nil {
			return err
		}
		if strings.TrimSpace(u.UserName) == "" {
			return badRequest("invalidValue", "userName is required")
		}
	case p == "displayname":
		return str(&u.DisplayName)
	case p == "externalid":
		return str(&u.ExternalID)
	case p == "name.givenname":
		return str(&name().GivenName)
	case p == "name.familyname":
		return str(&name().FamilyName)
	case p == "name.formatted":
		return str(&name().Formatted)
	case p == "name":
		if null {
			u.Name = nil
			return nil
		}
		var n Name
		if err := json.Unmarshal(v, &n); err != nil {
			return badRequest("invalidValue", "name must be an object")
		}
		u.Name = &n
	case p == "emails":
		if null {
			u.Emails = nil
			return nil
		}
		var es []Email
		if err := json.Unmarshal(v, &es); err != nil {
			return badRequest("invalidValue", "emails must be a list")
		}
		u.Emails = es
	case workEmailRE.MatchString(path):
		typ := workEmailRE.FindStringSubmatch(path)[1]
		var val string
		if err := str(&val); err != nil {
			return err
		}
		for i := range u.Emails {
			if strings.EqualFold(u.Emails[i].Type, typ) {
				if null {
					u.Emails = append(u.Emails[:i], u.Emails[i+1:]...)
				} else {
					u.Emails[i].Value = val
				}
				return nil
			}
		}
		if !null {
			u.Emails = append(u.Emails, Email{Value: val, Type: typ, Primary: Bool(len(u.Emails) == 0)})
		}
	}
	return nil
}

func applyGroupOp(g *Group, op patchOp) error {
	if m := memberFilterRE.FindStringSubmatch(op.path); m != nil {
		if op.op != "remove" {
			return badRequest("invalidPath", "only remove takes a members filter")
		}
		g.Members = removeMember(g.Members, m[1])
		return nil
	}
	switch strings.ToLower(op.path) {
	case "members":
		switch op.op {
		case "add":
			for _, m := range op.members {
				if !hasMember(g, m.Value) {
					g.Members = append(g.Members, m)
				}
			}
		case "replace":
			g.Members = append([]Ref{}, op.members...)
		case "remove":
			if op.members == nil {
				g.Members = []Ref{}
			}
			for _, m := range op.members {
				g.Members = removeMember(g.Members, m.Value)
			}
		}
	case "displayname":
		if op.op == "remove" {
			return badRequest("mutability", "displayName is required")
		}
		var s string
		if err := json.Unmarshal(op.value, &s); err != nil || strings.TrimSpace(s) == "" {
			return badRequest("invalidValue", "displayName must be a non-empty string")
		}
		g.DisplayName = s
	case "externalid":
		g.ExternalID = ""
		if op.op != "remove" {
			if err := json.Unmarshal(op.value, &g.ExternalID); err != nil {
				return badRequest("invalidValue", "externalId must be a string")
			}
		}
	case "":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(op.value, &obj); err != nil {
			return badRequest("invalidValue", "value must be an object")
		}
		for k, v := range obj {
			switch strings.ToLower(k) {
			case "displayname", "externalid":
				if err := applyGroupOp(g, patchOp{op: op.op, path: k, value: v}); err != nil {
					return err
				}
			}
			// members: split into its own op by patchInput; id and others
			// are read-only or not kept.
		}
	default:
		return badRequest("invalidPath", "unsupported path %q", op.path)
	}
	return nil
}
