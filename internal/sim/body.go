package sim

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
)

// maxBodyBytes is Fastify's default bodyLimit.
const maxBodyBytes = 1 << 20

// readBody decodes a JSON request body the way Fastify does: nil when there is none (Fastify
// validates a missing body as null), 415 for a body that is not declared JSON, 400 for an
// empty body declared JSON (the README's "no Content-Type with an empty body") or bad JSON.
func readBody(r *http.Request) (any, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, errBadRequest("Request body could not be read")
	}
	if len(raw) > maxBodyBytes {
		return nil, newError(http.StatusRequestEntityTooLarge, "Request body is too large")
	}
	ct := r.Header.Get("Content-Type")
	isJSON := isJSONMediaType(ct)
	switch {
	case len(raw) == 0 && isJSON:
		return nil, errBadRequest("Body cannot be empty when content-type is set to 'application/json'")
	case len(raw) == 0:
		return nil, nil
	case !isJSON:
		return nil, newError(http.StatusUnsupportedMediaType, "Unsupported Media Type: "+ct)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, errBadRequest("Body is not valid JSON but content-type is set to 'application/json'")
	}
	return v, nil
}

func isJSONMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}
