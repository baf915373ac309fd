package sim

import (
	"net/url"
	"strconv"
	"strings"
)

// defaultLimit is the page size when a list request has no limit. Instantly documents none;
// its examples use 10.
const defaultLimit = 10

// querySchema is an operation's query parameters as one object schema, the way Fastify
// compiles a route's querystring schema; nil when it has none. Unknown parameters are ignored,
// as Fastify does without additionalProperties.
func (a *apiSpec) querySchema(method, path string) schema {
	params, _ := a.operation(method, path)["parameters"].([]any)
	props := map[string]any{}
	for _, p := range params {
		p, _ := p.(map[string]any)
		if in, _ := p["in"].(string); in != "query" {
			continue
		}
		name, _ := p["name"].(string)
		props[name] = asSchema(p["schema"])
	}
	if len(props) == 0 {
		return nil
	}
	return schema{"type": "object", "properties": props}
}

// decodeQuery turns a query string into the object AJV would validate: one value per
// parameter (a repeated parameter becomes an array and fails its type), coerced to the
// parameter's declared type as Fastify's AJV does (coerceTypes: true). Values that cannot be
// coerced stay strings, so validation reports "querystring/limit must be integer".
func decodeQuery(s schema, values url.Values) map[string]any {
	props, _ := s["properties"].(map[string]any)
	out := make(map[string]any, len(values))
	for name, vs := range values {
		ps, known := props[name].(map[string]any)
		if !known {
			continue
		}
		if len(vs) > 1 {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			out[name] = list
			continue
		}
		out[name] = coerce(ps["type"], vs[0])
	}
	return out
}

// coerce follows AJV's coercion rules for a string: numbers only from non-empty numeric
// strings (integers also without a fraction), booleans only from "true" and "false".
func coerce(t any, v string) any {
	var types []string
	switch t := t.(type) {
	case string:
		types = []string{t}
	case []any:
		for _, one := range t {
			if s, ok := one.(string); ok {
				types = append(types, s)
			}
		}
	}
	for _, t := range types {
		if t == "string" {
			return v
		}
	}
	for _, t := range types {
		switch t {
		case "number", "integer":
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil && strings.TrimSpace(v) != "" && (t == "number" || f == float64(int64(f))) {
				return f
			}
		case "boolean":
			switch v {
			case "true":
				return true
			case "false":
				return false
			}
		}
	}
	return v
}

// limit is the validated page size.
func (c *call) limit() int {
	if v, ok := c.query["limit"].(float64); ok {
		return int(v)
	}
	return defaultLimit
}

// str is a validated string parameter, "" when absent.
func (c *call) str(name string) string {
	s, _ := c.query[name].(string)
	return s
}

// number is a validated numeric parameter.
func (c *call) number(name string) (float64, bool) {
	f, ok := c.query[name].(float64)
	return f, ok
}

// flag is a validated boolean parameter.
func (c *call) flag(name string) (value, present bool) {
	b, ok := c.query[name].(bool)
	return b, ok
}

// list splits a comma-separated parameter ("a,b, c") into its non-empty parts.
func (c *call) list(name string) []string {
	return splitList(c.str(name))
}

func splitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
