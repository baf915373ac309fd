package sim

import (
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// schema is a JSON Schema node exactly as decoded from the OpenAPI document.
type schema = map[string]any

// validator checks decoded JSON against the subset of JSON Schema that Instantly's spec uses,
// reporting the first failure the way Fastify formats AJV errors (allErrors off), e.g.
// "body/name must be string". Keywords are checked in AJV's order: type, then type-independent
// keywords (enum, const, oneOf…), then the keywords of the value's type.
type validator struct {
	root     map[string]any // resolves "#/…" $refs
	patterns sync.Map       // pattern source → *regexp.Regexp
}

// schemaError is one AJV error: where (a JSON pointer under dataVar) and what.
type schemaError struct {
	path string
	msg  string
}

func (e *schemaError) message(dataVar string) string { return dataVar + e.path + " " + e.msg }

// check validates data and returns Fastify's 400 message, or "" when valid. An absent body is
// passed as nil, as Fastify validates a missing body as null.
func (v *validator) check(s schema, data any, dataVar string) string {
	if s == nil {
		return ""
	}
	if e := v.validate(s, data, ""); e != nil {
		return e.message(dataVar)
	}
	return ""
}

func (v *validator) validate(s schema, data any, path string) *schemaError {
	if ref, ok := s["$ref"].(string); ok {
		return v.validate(v.resolve(ref), data, path)
	}
	if t, ok := s["type"]; ok && !typeMatches(t, data) {
		return &schemaError{path, "must be " + typeNames(t)}
	}
	if e := v.untyped(s, data, path); e != nil {
		return e
	}
	switch d := data.(type) {
	case string:
		return v.stringKeywords(s, d, path)
	case float64:
		return numberKeywords(s, d, path)
	case []any:
		return v.arrayKeywords(s, d, path)
	case map[string]any:
		return v.objectKeywords(s, d, path)
	}
	return nil
}

func (v *validator) resolve(ref string) schema {
	node := any(v.root)
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, _ := node.(map[string]any)
		node = m[unescapePointer(part)]
	}
	s, _ := node.(map[string]any)
	if s == nil {
		panic("sim: unresolvable $ref " + ref) // the embedded spec is fixed; a test covers every route
	}
	return s
}

func (v *validator) untyped(s schema, data any, path string) *schemaError {
	if c, ok := s["const"]; ok && !reflect.DeepEqual(c, data) {
		return &schemaError{path, "must be equal to constant"}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return reflect.DeepEqual(e, data) }) {
		return &schemaError{path, "must be equal to one of the allowed values"}
	}
	if subs, ok := s["anyOf"].([]any); ok && v.countValid(subs, data, path) == 0 {
		return &schemaError{path, "must match a schema in anyOf"}
	}
	if subs, ok := s["oneOf"].([]any); ok && v.countValid(subs, data, path) != 1 {
		return &schemaError{path, "must match exactly one schema in oneOf"}
	}
	if subs, ok := s["allOf"].([]any); ok {
		for _, sub := range subs {
			if e := v.validate(asSchema(sub), data, path); e != nil {
				return e
			}
		}
	}
	return nil
}

func (v *validator) countValid(subs []any, data any, path string) int {
	n := 0
	for _, sub := range subs {
		if v.validate(asSchema(sub), data, path) == nil {
			n++
		}
	}
	return n
}

func (v *validator) stringKeywords(s schema, d string, path string) *schemaError {
	n := utf8.RuneCountInString(d) // AJV counts code points, not UTF-16 units or bytes
	if max, ok := intKeyword(s, "maxLength"); ok && n > max {
		return &schemaError{path, fmt.Sprintf("must NOT have more than %d characters", max)}
	}
	if min, ok := intKeyword(s, "minLength"); ok && n < min {
		return &schemaError{path, fmt.Sprintf("must NOT have fewer than %d characters", min)}
	}
	if p, ok := s["pattern"].(string); ok && !v.regexp(p).MatchString(d) {
		return &schemaError{path, `must match pattern "` + p + `"`}
	}
	if f, ok := s["format"].(string); ok && !formatMatches(f, d) {
		return &schemaError{path, `must match format "` + f + `"`}
	}
	return nil
}

func numberKeywords(s schema, d float64, path string) *schemaError {
	if max, ok := s["maximum"].(float64); ok && d > max {
		return &schemaError{path, "must be <= " + jsNumber(max)}
	}
	if min, ok := s["minimum"].(float64); ok && d < min {
		return &schemaError{path, "must be >= " + jsNumber(min)}
	}
	return nil
}

func (v *validator) arrayKeywords(s schema, d []any, path string) *schemaError {
	if max, ok := intKeyword(s, "maxItems"); ok && len(d) > max {
		return &schemaError{path, fmt.Sprintf("must NOT have more than %d items", max)}
	}
	if min, ok := intKeyword(s, "minItems"); ok && len(d) < min {
		return &schemaError{path, fmt.Sprintf("must NOT have fewer than %d items", min)}
	}
	if items, ok := s["items"].(map[string]any); ok {
		for i, item := range d {
			if e := v.validate(items, item, path+"/"+strconv.Itoa(i)); e != nil {
				return e
			}
		}
	}
	return nil
}

func (v *validator) objectKeywords(s schema, d map[string]any, path string) *schemaError {
	if max, ok := intKeyword(s, "maxProperties"); ok && len(d) > max {
		return &schemaError{path, fmt.Sprintf("must NOT have more than %d properties", max)}
	}
	if min, ok := intKeyword(s, "minProperties"); ok && len(d) < min {
		return &schemaError{path, fmt.Sprintf("must NOT have fewer than %d properties", min)}
	}
	if req, ok := s["required"].([]any); ok {
		for _, name := range req {
			if _, present := d[name.(string)]; !present {
				return &schemaError{path, fmt.Sprintf("must have required property '%s'", name)}
			}
		}
	}
	props, _ := s["properties"].(map[string]any)
	if e := v.additional(s, props, d, path); e != nil {
		return e
	}
	// Go maps lose the schema's property order; sorted keys keep the first error deterministic.
	for _, name := range sortedKeys(props) {
		if val, present := d[name]; present {
			if e := v.validate(asSchema(props[name]), val, path+"/"+escapePointer(name)); e != nil {
				return e
			}
		}
	}
	return nil
}

func (v *validator) additional(s schema, props, d map[string]any, path string) *schemaError {
	ap, ok := s["additionalProperties"]
	if !ok {
		return nil
	}
	for _, name := range sortedKeys(d) {
		if _, known := props[name]; known {
			continue
		}
		switch ap := ap.(type) {
		case bool:
			if !ap {
				return &schemaError{path, "must NOT have additional properties"}
			}
		case map[string]any:
			if e := v.validate(ap, d[name], path+"/"+escapePointer(name)); e != nil {
				return e
			}
		}
	}
	return nil
}

func (v *validator) regexp(p string) *regexp.Regexp {
	if re, ok := v.patterns.Load(p); ok {
		return re.(*regexp.Regexp)
	}
	re := regexp.MustCompile(p) // patterns come from the fixed embedded spec
	v.patterns.Store(p, re)
	return re
}

func typeMatches(t any, data any) bool {
	switch t := t.(type) {
	case string:
		return isType(t, data)
	case []any:
		return slices.ContainsFunc(t, func(one any) bool { s, _ := one.(string); return isType(s, data) })
	}
	return true
}

func isType(t string, data any) bool {
	switch t {
	case "null":
		return data == nil
	case "boolean":
		_, ok := data.(bool)
		return ok
	case "string":
		_, ok := data.(string)
		return ok
	case "number":
		_, ok := data.(float64)
		return ok
	case "integer":
		f, ok := data.(float64)
		return ok && f == float64(int64(f))
	case "array":
		_, ok := data.([]any)
		return ok
	case "object":
		_, ok := data.(map[string]any)
		return ok
	}
	return false
}

// typeNames renders a type keyword as AJV does: "string" or "string,null".
func typeNames(t any) string {
	if list, ok := t.([]any); ok {
		names := make([]string, len(list))
		for i, n := range list {
			names[i], _ = n.(string)
		}
		return strings.Join(names, ",")
	}
	s, _ := t.(string)
	return s
}

// emailRE is ajv-formats' "email".
var emailRE = regexp.MustCompile("(?i)^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")

var uuidRE = regexp.MustCompile(`(?i)^(?:urn:uuid:)?[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$`)

// formatMatches knows the formats Instantly's spec uses; unknown formats pass, so a new format
// in a future spec never rejects valid traffic.
func formatMatches(format, s string) bool {
	switch format {
	case "email":
		return emailRE.MatchString(s)
	case "uuid":
		return uuidRE.MatchString(s)
	case "date-time":
		_, err := time.Parse(time.RFC3339Nano, s)
		return err == nil
	case "uri":
		u, err := url.Parse(s)
		return err == nil && u.Scheme != ""
	}
	return true
}

// asSchema treats anything but an object (e.g. a boolean schema) as "accept all".
func asSchema(node any) schema {
	s, _ := node.(map[string]any)
	return s
}

func intKeyword(s schema, name string) (int, bool) {
	f, ok := s[name].(float64)
	return int(f), ok
}

// jsNumber prints a number as JavaScript would (10, not 10.000000).
func jsNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func escapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

func unescapePointer(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}
