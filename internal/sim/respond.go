package sim

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// response is what every handler path produces; writing happens in one place.
type response struct {
	status int
	body   any  // nil writes no body
	drop   bool // close the connection without answering; status and body are ignored
}

func writeResponse(w http.ResponseWriter, res response) {
	if res.drop {
		dropConnection(w)
		return
	}
	if res.body == nil {
		w.WriteHeader(res.status)
		return
	}
	data, err := marshal(res.body)
	if err != nil {
		res = errorResponse(err)
		data, _ = marshal(res.body)
	}
	// Fastify's default for JSON replies.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_, _ = w.Write(data)
}

// marshal encodes like JSON.stringify: "&", "<" and ">" stay as they are (accounts' cursors
// are "timestamp&email"), where encoding/json would escape them as \u0026 and so on.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
