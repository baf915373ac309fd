package sim

import "encoding/json"

// CheckResponse validates a JSON body against the response schema Instantly documents for
// method, path and status, returning the first violation or "".
func CheckResponse(method, path string, status int, body []byte) string {
	spec := mustSpec()
	return checkJSON(spec, spec.responseSchema(method, path, status), body)
}

// CheckComponent validates a JSON body against #/components/schemas/<name>.
func CheckComponent(name string, body []byte) string {
	spec := mustSpec()
	return checkJSON(spec, dig(spec.doc, "components", "schemas", name), body)
}

func checkJSON(spec *apiSpec, s schema, body []byte) string {
	if s == nil {
		return "no schema in the spec"
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err.Error()
	}
	return (&validator{root: spec.doc}).check(s, v, "response")
}
