package sim

import (
	_ "embed"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// specJSON is /work/shared/instantly/openapi-v2-subset.json, unchanged: Instantly's published
// OpenAPI 3.1 document cut to the paths this project uses. Request bodies are validated against
// it so the simulator can never drift from the real schemas; refresh it by copying a newer cut.
//
//go:embed spec/openapi-v2-subset.json
var specJSON []byte

// apiSpec is the decoded document. It is never modified after loading, so one copy is shared
// by every Server.
type apiSpec struct {
	doc map[string]any
}

// loadSpec decodes the embedded document once per process: it is ~360 KB and immutable.
var loadSpec = sync.OnceValues(func() (*apiSpec, error) {
	var doc map[string]any
	if err := json.Unmarshal(specJSON, &doc); err != nil {
		return nil, err
	}
	return &apiSpec{doc: doc}, nil
})

func mustSpec() *apiSpec {
	spec, err := loadSpec()
	if err != nil {
		panic("sim: embedded OpenAPI document: " + err.Error())
	}
	return spec
}

// operation returns the spec's operation for a method and a path template such as
// "/api/v2/custom-tags/{id}".
func (a *apiSpec) operation(method, path string) map[string]any {
	paths, _ := a.doc["paths"].(map[string]any)
	item, _ := paths[path].(map[string]any)
	op, _ := item[strings.ToLower(method)].(map[string]any)
	return op
}

// requestSchema is the operation's JSON request body schema, or nil when it takes no body.
func (a *apiSpec) requestSchema(method, path string) schema {
	return dig(a.operation(method, path), "requestBody", "content", "application/json", "schema")
}

// responseSchema is the JSON schema of one documented response.
func (a *apiSpec) responseSchema(method, path string, status int) schema {
	return dig(a.operation(method, path), "responses", strconv.Itoa(status), "content", "application/json", "schema")
}

var scopesSentence = regexp.MustCompile("Requires one of the following scopes: `([a-z_]+:[a-z]+)`")

// documentedScope is the first scope the operation's description names ("" when none).
func (a *apiSpec) documentedScope(method, path string) string {
	desc, _ := a.operation(method, path)["description"].(string)
	if m := scopesSentence.FindStringSubmatch(desc); m != nil {
		return m[1]
	}
	return ""
}

func dig(node map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		if node == nil {
			return nil
		}
		node, _ = node[k].(map[string]any)
	}
	return node
}
