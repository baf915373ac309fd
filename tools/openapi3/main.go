// Command openapi3 turns the Swagger 2.0 documents protoc-gen-openapiv2
// writes into the one OpenAPI 3.1 document agencyd serves at /openapi.json.
// `make generate` runs it after buf generate:
//
//	go -C tools run ./openapi3 -o ../gen/openapiv3/agency.openapi.json \
//	    ../gen/openapiv2/agency.swagger.json ../gen/openapiv2/google/longrunning/operations.swagger.json
//
// Why not protoc-gen-openapiv3: grpc-gateway's OpenAPI 3.1 generator (alpha
// in v2.33) writes one document per proto file that its own merge tool
// refuses for this API (google.rpc.Status is rendered two ways), names
// expanded path parameters {name}, {name_1} (so PATCH
// /v1/workspaces/{workspace.name} and GET /v1/workspaces/{name} are the same
// path twice, a lint error), and cannot declare 4xx responses. The stable
// protoc-gen-openapiv2 with expand_slashed_path_patterns gives real paths
// (/v1/workspaces/{workspace}/members/{member}); kin-openapi's maintained
// converters take it to 3.0 (openapi2conv) and then to the 3.1 forms
// (openapi3conv). This command only merges the inputs and finishes the
// document:
//
//   - every operation documents the 4xx (and 503/504) answers the gateway
//     gives, as references to shared components.responses carrying a
//     google.rpc.Status;
//   - the RPC's comment is the operation's description, its first sentence
//     the summary;
//   - the bearer token is an HTTP bearer scheme (Swagger 2.0 has none);
//   - the server is the agencyd that serves the document ("/").
//
// The output is deterministic (sorted keys, two-space indent), so the
// generated-code drift check covers it.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3conv"
)

func main() {
	out := flag.String("o", "", "output file (OpenAPI 3.1 JSON)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: openapi3 -o OUT.json IN.swagger.json [MORE.swagger.json ...]")
		os.Exit(2)
	}
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "openapi3:", err)
		os.Exit(1)
	}
}

func run(out string, inputs []string) error {
	var docs []*openapi2.T
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			return err
		}
		var d openapi2.T
		if err := json.Unmarshal(data, &d); err != nil {
			return fmt.Errorf("%s: %w", in, err)
		}
		docs = append(docs, &d)
	}
	for _, d := range docs {
		fixPathTemplates(d)
	}
	merged, err := merge(docs)
	if err != nil {
		return err
	}
	doc, err := convert(merged)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, append(data, '\n'), 0o644)
}

// merge adds the paths, definitions and tags of every later document to
// the first one, whose info and security stand. A path or a definition
// that two documents define differently is an error, not a silent pick.
func merge(docs []*openapi2.T) (*openapi2.T, error) {
	first := docs[0]
	for _, d := range docs[1:] {
		for p, item := range d.Paths {
			if _, dup := first.Paths[p]; dup {
				return nil, fmt.Errorf("path %s is defined twice", p)
			}
			first.Paths[p] = item
		}
		for name, def := range d.Definitions {
			if have, ok := first.Definitions[name]; ok {
				if !sameJSON(have, def) {
					return nil, fmt.Errorf("definition %s differs between inputs", name)
				}
				continue
			}
			first.Definitions[name] = def
		}
		for _, t := range d.Tags {
			if !slices.ContainsFunc(first.Tags, func(h *openapi3.Tag) bool { return h.Name == t.Name }) {
				first.Tags = append(first.Tags, t)
			}
		}
	}
	return first, nil
}

// fixPathTemplates makes the paths protoc-gen-openapiv2 leaves as they are
// valid OpenAPI templates: a "**" segment (google.longrunning's
// {name=operations/**}) becomes one parameter named after the collection
// before it ({operation}), which takes over the path parameter the segment
// was bound to; a path parameter whose variable has a fixed value
// ({name=operations}) and so appears nowhere in the path is dropped.
func fixPathTemplates(d *openapi2.T) {
	for path, item := range d.Paths {
		segs := strings.Split(path, "/")
		wildcard := ""
		for i, s := range segs {
			rest, verb, _ := strings.Cut(s, ":")
			if rest != "**" || i == 0 {
				continue
			}
			wildcard = strings.TrimSuffix(segs[i-1], "s")
			segs[i] = "{" + wildcard + "}"
			if verb != "" {
				segs[i] += ":" + verb
			}
		}
		fixed := strings.Join(segs, "/")
		for _, op := range item.Operations() {
			var params openapi2.Parameters
			for _, p := range op.Parameters {
				if p.In == "path" && !strings.Contains(fixed, "{"+p.Name+"}") {
					if wildcard == "" {
						continue
					}
					p.Name = wildcard
				}
				params = append(params, p)
			}
			op.Parameters = params
		}
		if fixed != path {
			delete(d.Paths, path)
			d.Paths[fixed] = item
		}
	}
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// errorResponses are the answers every operation may give besides its
// success, as grpc-gateway maps gRPC codes to HTTP; "409" only for
// methods that change something.
var errorResponses = []struct{ code, name, description string }{
	{"400", "BadRequest", "INVALID_ARGUMENT (a google.rpc.BadRequest detail names each bad field by its proto path), FAILED_PRECONDITION or OUT_OF_RANGE."},
	{"401", "Unauthenticated", "UNAUTHENTICATED: no bearer token or client certificate, or an unknown, expired or revoked token."},
	{"403", "PermissionDenied", "PERMISSION_DENIED: the caller's role lacks the permission, or Instantly refused the workspace's key (reason SCOPE_DENIED)."},
	{"404", "NotFound", "NOT_FOUND: the resource does not exist, or its workspace is outside the caller's scope (a google.rpc.ResourceInfo detail names it)."},
	{"409", "Conflict", "ALREADY_EXISTS, or ABORTED (a concurrent call with the same request_id is still running: CONCURRENT_MODIFICATION, with a RetryInfo)."},
	{"429", "TooManyRequests", "RESOURCE_EXHAUSTED: a rate budget is spent or authentication failures are throttled; a google.rpc.RetryInfo detail says when to retry."},
	{"503", "Unavailable", "UNAVAILABLE: the state store or Instantly cannot be reached (reasons STORE_UNAVAILABLE, UPSTREAM_UNAVAILABLE); safe to retry."},
	{"504", "DeadlineExceeded", "DEADLINE_EXCEEDED: the call did not finish within its deadline."},
}

const statusSchema = "#/components/schemas/google.rpc.Status"

func convert(d2 *openapi2.T) (*openapi3.T, error) {
	doc, err := openapi2conv.ToV3(d2)
	if err != nil {
		return nil, fmt.Errorf("to OpenAPI 3.0: %w", err)
	}
	ctx := context.Background()
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("converted OpenAPI 3.0 document: %w", err)
	}
	openapi3conv.Upgrade(doc)
	// Upgrade writes the newest 3.x version it knows; its rewrites (type
	// arrays for nullable, numeric exclusive bounds, examples) are the 3.1
	// forms, and 3.2 adds nothing this document uses.
	doc.OpenAPI = "3.1.0"

	if doc.Components.Schemas[strings.TrimPrefix(statusSchema, "#/components/schemas/")] == nil {
		return nil, errors.New("no google.rpc.Status schema in the input")
	}
	if doc.Components.Responses == nil {
		doc.Components.Responses = openapi3.ResponseBodies{}
	}
	for _, r := range errorResponses {
		desc := r.description
		doc.Components.Responses[r.name] = &openapi3.ResponseRef{Value: &openapi3.Response{
			Description: &desc,
			Content:     openapi3.NewContentWithJSONSchemaRef(&openapi3.SchemaRef{Ref: statusSchema}),
		}}
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for _, r := range errorResponses {
				if r.code == "409" && method == "GET" {
					continue
				}
				if op.Responses.Value(r.code) == nil {
					op.Responses.Set(r.code, &openapi3.ResponseRef{Ref: "#/components/responses/" + r.name})
				}
			}
			if def := op.Responses.Default(); def != nil && def.Value != nil {
				desc := "Any other error (INTERNAL, UNKNOWN, CANCELLED, …), as a google.rpc.Status."
				def.Value.Description = &desc
			}
			// An RPC without a comment has no description: the linters
			// (make openapi-lint) fail on it, not generation.
			describe(op)
			describePathParams(path, op)
		}
	}

	for name, s := range doc.Components.SecuritySchemes {
		v := s.Value
		if v != nil && v.Type == "apiKey" && v.In == "header" && strings.EqualFold(v.Name, "Authorization") {
			doc.Components.SecuritySchemes[name] = &openapi3.SecuritySchemeRef{Value: &openapi3.SecurityScheme{
				Type: "http", Scheme: "bearer", Description: v.Description,
			}}
		}
	}
	slices.SortFunc(doc.Tags, func(a, b *openapi3.Tag) int { return strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)) })
	if err := pruneSchemas(doc); err != nil {
		return nil, err
	}
	doc.Servers = openapi3.Servers{{URL: "/", Description: "The agencyd that serves this document (REST port)."}}

	loader := openapi3.NewLoader()
	data, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	check, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("reload: %w", err)
	}
	if err := check.Validate(ctx); err != nil {
		return nil, fmt.Errorf("OpenAPI 3.1 document: %w", err)
	}
	return doc, nil
}

var schemaRefRE = regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`)

// pruneSchemas drops component schemas nothing refers to (the generator
// emits every message of the files, e.g. google.protobuf.NullValue).
func pruneSchemas(doc *openapi3.T) error {
	schemas := doc.Components.Schemas
	doc.Components.Schemas = nil
	root, err := json.Marshal(doc)
	doc.Components.Schemas = schemas
	if err != nil {
		return err
	}
	used := map[string]bool{}
	var visit func(data []byte) error
	visit = func(data []byte) error {
		for _, m := range schemaRefRE.FindAllSubmatch(data, -1) {
			name := string(m[1])
			if used[name] {
				continue
			}
			used[name] = true
			s, ok := schemas[name]
			if !ok {
				return fmt.Errorf("reference to a missing schema %s", name)
			}
			sub, err := json.Marshal(s)
			if err != nil {
				return err
			}
			if err := visit(sub); err != nil {
				return err
			}
		}
		return nil
	}
	if err := visit(root); err != nil {
		return err
	}
	for name := range schemas {
		if !used[name] {
			delete(schemas, name)
		}
	}
	return nil
}

// describe makes the RPC's whole comment the description and its first
// sentence the summary. protoc-gen-openapiv2 puts a comment's first
// paragraph in summary and the rest in description.
func describe(op *openapi3.Operation) {
	text := strings.TrimSpace(op.Summary)
	if op.Description != "" {
		text = strings.TrimSpace(text + "\n\n" + op.Description)
	}
	if text == "" {
		return
	}
	op.Description = text
	op.Summary = firstSentence(text)
}

// describePathParams describes each undescribed path parameter as its
// place in the resource name: {member} in
// /v1/workspaces/{workspace}/members/{member}:updateRole is "The {member}
// of the resource name workspaces/{workspace}/members/{member}."
func describePathParams(path string, op *openapi3.Operation) {
	name, _, _ := strings.Cut(strings.TrimPrefix(path, "/v1/"), ":")
	for _, p := range op.Parameters {
		v := p.Value
		if v == nil || v.In != "path" || v.Description != "" {
			continue
		}
		resource := name
		if i := strings.Index(name, "{"+v.Name+"}"); i >= 0 {
			resource = name[:i+len(v.Name)+2]
		}
		v.Description = fmt.Sprintf("The `{%s}` of the resource name `%s`.", v.Name, resource)
	}
}

// firstSentence is text up to the first ". " (or newline after a period),
// without line breaks.
func firstSentence(text string) string {
	flat := strings.Join(strings.Fields(text), " ")
	if i := strings.Index(flat, ". "); i >= 0 {
		return flat[:i+1]
	}
	return flat
}
