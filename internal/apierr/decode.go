package apierr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// JSONViolation finds what is wrong with a JSON body that protojson refused
// for messages of md: the offending field by its proto path relative to md
// (display_name, labels["team"], people[3].role), or "body" when the JSON
// itself is malformed, and what is expected there.
//
// protojson's errors carry no field and their wording is not an API, so the
// body is walked instead: each value is tried alone against its field with
// protojson (which stays the judge of what is valid) and the first one
// refused is described from its descriptor.
func JSONViolation(md protoreflect.MessageDescriptor, data []byte) Violation {
	raw, ok := firstValue(data)
	if !ok {
		return Violation{Field: "body", Description: "is not valid JSON"}
	}
	if v, found := messageViolation(md, raw, ""); found {
		if v.Field == "" {
			v.Field = "body"
		}
		return v
	}
	return Violation{Field: "body", Description: "is not valid JSON for this request"}
}

// firstValue is the first JSON value of data, as the gateway's stream
// decoder reads it (anything after it is ignored there too).
func firstValue(data []byte) (json.RawMessage, bool) {
	var raw json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&raw); err != nil {
		return nil, false
	}
	return raw, true
}

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// messageViolation checks raw as a message of type md at path.
func messageViolation(md protoreflect.MessageDescriptor, raw json.RawMessage, path string) (Violation, bool) {
	if wellKnown(md) {
		if protojson.Unmarshal(raw, dynamicpb.NewMessage(md)) != nil {
			return Violation{Field: path, Description: "must be " + describeMessage(md)}, true
		}
		return Violation{}, false
	}
	keys, vals, ok := object(raw)
	if !ok {
		return Violation{Field: path, Description: "must be a JSON object"}, true
	}
	seen := map[protoreflect.FullName]string{}
	for i, k := range keys {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByTextName(k)
		}
		if fd == nil {
			return Violation{Field: join(path, k), Description: "unknown field"}, true
		}
		fpath := join(path, string(fd.Name()))
		if _, dup := seen[fd.FullName()]; dup {
			return Violation{Field: fpath, Description: "is set more than once"}, true
		}
		seen[fd.FullName()] = k
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && !isNull(vals[i]) {
			if other, set := seen[od.FullName()]; set {
				return Violation{Field: fpath, Description: fmt.Sprintf("cannot be set together with %s (only one of them may be)", join(path, other))}, true
			}
			seen[od.FullName()] = string(fd.Name())
		}
		if v, found := fieldViolation(fd, vals[i], fpath); found {
			return v, true
		}
	}
	return Violation{}, false
}

// object splits a JSON object into its keys and values, in order.
func object(raw json.RawMessage) ([]string, []json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil, false
	}
	var keys []string
	var vals []json.RawMessage
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, false
		}
		k, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, false
		}
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals, true
}

// fieldViolation checks raw as the value of fd (a whole list or map).
func fieldViolation(fd protoreflect.FieldDescriptor, raw json.RawMessage, path string) (Violation, bool) {
	if isNull(raw) {
		return Violation{}, false // null is "unset" for every field
	}
	switch {
	case fd.IsMap():
		keys, vals, ok := object(raw)
		if !ok {
			return Violation{Field: path, Description: "must be " + describeField(fd)}, true
		}
		for i, k := range keys {
			epath := path + "[" + strconv.Quote(k) + "]"
			if !probe(fd, mapEntry(k, zeroJSON(fd.MapValue()))) {
				return Violation{Field: epath, Description: "is not a valid key: keys must be " + describeKind(fd.MapKey())}, true
			}
			if v, found := valueViolation(fd.MapValue(), vals[i], epath, func(v json.RawMessage) bool { return probe(fd, mapEntry(k, v)) }); found {
				return v, true
			}
		}
		return Violation{}, false
	case fd.IsList():
		var elems []json.RawMessage
		if json.Unmarshal(raw, &elems) != nil {
			return Violation{Field: path, Description: "must be " + describeField(fd)}, true
		}
		for i, e := range elems {
			epath := path + "[" + strconv.Itoa(i) + "]"
			if v, found := valueViolation(fd, e, epath, func(v json.RawMessage) bool { return probe(fd, listOf(v)) }); found {
				return v, true
			}
		}
		return Violation{}, false
	}
	return valueViolation(fd, raw, path, func(v json.RawMessage) bool { return probe(fd, v) })
}

// valueViolation checks one singular value of fd's type; accepted tries it
// in its place (a field, a list element, a map value).
func valueViolation(fd protoreflect.FieldDescriptor, raw json.RawMessage, path string, accepted func(json.RawMessage) bool) (Violation, bool) {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		if isNull(raw) && !fd.IsList() && !fd.IsMap() {
			return Violation{}, false
		}
		return messageViolation(fd.Message(), raw, path)
	}
	if accepted(raw) {
		return Violation{}, false
	}
	if (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.BytesKind) && !utf8.Valid(raw) {
		return Violation{Field: path, Description: "is not valid UTF-8"}, true
	}
	return Violation{Field: path, Description: "must be " + describeKind(fd)}, true
}

// probe reports whether protojson accepts value as fd's JSON value in a
// message of fd's containing type.
func probe(fd protoreflect.FieldDescriptor, value []byte) bool {
	var b bytes.Buffer
	b.WriteString(`{"`)
	b.WriteString(fd.JSONName())
	b.WriteString(`":`)
	b.Write(value)
	b.WriteByte('}')
	return protojson.Unmarshal(b.Bytes(), dynamicpb.NewMessage(fd.ContainingMessage())) == nil
}

func listOf(v json.RawMessage) []byte { return append(append([]byte{'['}, v...), ']') }

func mapEntry(k string, v []byte) []byte {
	key, _ := json.Marshal(k)
	return append(append(append(append([]byte{'{'}, key...), ':'), v...), '}')
}

// zeroJSON is a JSON value protojson accepts for any field of fd's kind.
func zeroJSON(fd protoreflect.FieldDescriptor) []byte {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return []byte("null")
	case protoreflect.StringKind, protoreflect.BytesKind:
		return []byte(`""`)
	case protoreflect.BoolKind:
		return []byte("false")
	}
	return []byte("0") // numbers and enums
}

// wellKnown reports messages with a special JSON form (protojson's list).
func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile() != nil && md.ParentFile().Package() == "google.protobuf"
}

// describeField says what a whole field holds, for "must be …".
func describeField(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return "a JSON object of " + plural(describeKind(fd.MapKey())) + " to " + plural(describeKind(fd.MapValue()))
	case fd.IsList():
		return "a JSON array of " + plural(describeKind(fd))
	}
	return describeKind(fd)
}

// plural turns "a string" into "strings" and "an integer (…)" into
// "integers (…)", for describing containers.
func plural(s string) string {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "a "), "an ")
	word, rest, _ := strings.Cut(s, " ")
	if rest != "" {
		rest = " " + rest
	}
	return word + "s" + rest
}

// describeKind says what one value of fd's type looks like in JSON.
func describeKind(fd protoreflect.FieldDescriptor) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return "a string"
	case protoreflect.BytesKind:
		return "a string (base64-encoded bytes)"
	case protoreflect.BoolKind:
		return "a boolean (true or false)"
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return "an integer (32-bit)"
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return "an integer (32-bit, not negative)"
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return "an integer (64-bit, as a number or a decimal string)"
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return "an integer (64-bit, not negative, as a number or a decimal string)"
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return "a number"
	case protoreflect.EnumKind:
		return "one of " + EnumNames(fd.Enum(), nil)
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return describeMessage(fd.Message())
	}
	return "a valid value"
}

// describeMessage says what a message looks like in JSON.
func describeMessage(md protoreflect.MessageDescriptor) string {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return `an RFC 3339 timestamp, e.g. "2026-01-02T15:04:05Z"`
	case "google.protobuf.Duration":
		return `a duration in seconds, e.g. "30s" or "1.5s"`
	case "google.protobuf.FieldMask":
		return `a comma-separated list of field paths, e.g. "displayName,labels"`
	case "google.protobuf.Struct":
		return "a JSON object"
	case "google.protobuf.ListValue":
		return "a JSON array"
	case "google.protobuf.Value":
		return "a JSON value"
	case "google.protobuf.Empty":
		return "an empty object {}"
	case "google.protobuf.Any":
		return `a JSON object with "@type"`
	}
	if wellKnown(md) && md.Fields().Len() == 1 { // the wrappers: their one value
		return describeKind(md.Fields().Get(0))
	}
	return "a JSON object"
}

// EnumNames lists the names of ed's values, or only of those whose numbers
// are in only (when given), leaving out an UNSPECIFIED zero value, which no
// request means to send.
func EnumNames(ed protoreflect.EnumDescriptor, only []int32) string {
	var names []string
	vals := ed.Values()
	for i := range vals.Len() {
		v := vals.Get(i)
		if only != nil && !containsInt32(only, int32(v.Number())) {
			continue
		}
		if v.Number() == 0 && strings.HasSuffix(string(v.Name()), "_UNSPECIFIED") {
			continue
		}
		names = append(names, string(v.Name()))
	}
	if len(names) == 0 {
		return "the enum's values"
	}
	return strings.Join(names, ", ")
}

func containsInt32(s []int32, n int32) bool {
	for _, x := range s {
		if x == n {
			return true
		}
	}
	return false
}

// PatternDescription says in words what a buf.validate string.pattern
// expects, for users who should not have to read a regular expression:
// "\S" is "must not be blank"; a resource-name pattern such as
// ^workspaces/[a-z0-9]…$ becomes its form with an example. ok is false for
// patterns it cannot put in words.
func PatternDescription(pattern string) (string, bool) {
	if pattern == `\S` {
		return "must not be blank", true
	}
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil || re.Op != syntax.OpConcat {
		return "", false
	}
	// The literal parts and what stands between them: a resource name is
	// collection literals ("workspaces/", "/members/") around ids.
	var form, example strings.Builder
	prev := ""
	for _, sub := range re.Sub {
		switch sub.Op {
		case syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine:
		case syntax.OpLiteral:
			prev = string(sub.Rune)
			form.WriteString(prev)
			example.WriteString(prev)
		default:
			id, ex, ok := segment(prev)
			if !ok {
				return "", false
			}
			if strings.HasSuffix(form.String(), "}") {
				continue // one id already stands for this segment
			}
			form.WriteString("{" + id + "}")
			example.WriteString(ex)
		}
	}
	if !strings.HasPrefix(form.String(), "workspaces/") {
		return "", false
	}
	return fmt.Sprintf("must be a name of the form %q, e.g. %q", form.String(), example.String()), true
}

// segment names the id after a collection literal, with an example.
func segment(literal string) (id, example string, ok bool) {
	switch {
	case strings.HasSuffix(literal, "workspaces/"):
		return "workspace", "acme", true
	case strings.HasSuffix(literal, "members/") && !strings.HasSuffix(literal, "groupMembers/"):
		return "member id or email", "ana@agency.com", true
	case strings.HasSuffix(literal, "groupMembers/"):
		return "group member id", "0b5a2c1e", true
	case strings.HasSuffix(literal, "tags/"):
		return "tag id", "0b5a2c1e", true
	case strings.HasSuffix(literal, "apiKeys/"):
		return "api key id", "0b5a2c1e", true
	}
	return "", "", false
}

// QueryViolation describes a query parameter the gateway refused: key as
// given (JSON or proto names, dotted for nested fields, "labels[k]" for a
// map entry), turned into the field's proto path. n is how many values the
// key had.
func QueryViolation(md protoreflect.MessageDescriptor, key string, n int) Violation {
	name, entry, isEntry := strings.Cut(key, "[")
	var path []string
	var fd protoreflect.FieldDescriptor
	for i, part := range strings.Split(name, ".") {
		if md == nil {
			return Violation{Field: key, Description: "does not name a field"}
		}
		fd = md.Fields().ByJSONName(part)
		if fd == nil {
			fd = md.Fields().ByTextName(part)
		}
		if fd == nil {
			return Violation{Field: key, Description: "does not name a field"}
		}
		path = append(path, string(fd.Name()))
		md = nil
		if i < strings.Count(name, ".") && fd.Message() != nil && !fd.IsList() && !fd.IsMap() {
			md = fd.Message()
		}
	}
	field := strings.Join(path, ".")
	switch {
	case isEntry && fd.IsMap():
		return Violation{Field: field + "[" + strconv.Quote(strings.TrimSuffix(entry, "]")) + "]", Description: "must be " + describeKind(fd.MapValue())}
	case fd.IsMap():
		return Violation{Field: field, Description: `is a map: give each entry as ` + field + `[key]=value`}
	case !fd.IsList() && n > 1:
		return Violation{Field: field, Description: "is given more than once"}
	case fd.Kind() == protoreflect.MessageKind && !wellKnown(fd.Message()):
		return Violation{Field: field, Description: "is a message: give its fields as " + field + ".<field>"}
	}
	return Violation{Field: field, Description: "must be " + describeKind(fd)}
}
