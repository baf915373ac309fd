package sim

import (
	"encoding/json"
	"net/http"
)

// response is what every handler path produces; writing happens in one place.
type response struct {
	status int
	body   any // nil writes no body
}

func writeResponse(w http.ResponseWriter, res response) {
	if res.body == nil {
		w.WriteHeader(res.status)
		return
	}
	data, err := json.Marshal(res.body)
	if err != nil {
		res = errorResponse(err)
		data, _ = json.Marshal(res.body)
	}
	// Fastify's default for JSON replies.
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_, _ = w.Write(data)
}
