package sim

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
)

// authenticate resolves "Authorization: Bearer <key>" to a live key. It only reads state, so
// failed attempts count against no workspace.
func (s *Server) authenticate(r *http.Request) (*apiKey, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, errUnauthorized("Missing Authorization header")
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, errUnauthorized("Invalid authorization header")
	}
	if k := s.lookupKey(token); k != nil {
		return k, nil
	}
	// Revoked keys are deleted, as in Instantly, so they read exactly like unknown ones.
	return nil, errUnauthorized("Invalid API key")
}

// lookupKey finds a key by the hash of its secret; only hashes are kept, never secrets.
func (s *Server) lookupKey(secret string) *apiKey {
	h := sha256.Sum256([]byte(secret))
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys[h]
}

// scopeAllows reports whether granted scopes allow an operation needing required
// ("resource:action"): X:a is satisfied by X:a, X:all, all:a or all:all. An empty required
// scope means Instantly documents none, so any valid key passes.
func scopeAllows(granted []string, required string) bool {
	if required == "" {
		return true
	}
	res, act, ok := strings.Cut(required, ":")
	if !ok {
		return false
	}
	for _, g := range granted {
		switch g {
		case required, res + ":all", "all:" + act, "all:all":
			return true
		}
	}
	return false
}

func errMissingScope(required string) *apiError {
	res, act, _ := strings.Cut(required, ":")
	return newError(http.StatusForbidden, fmt.Sprintf(
		"API key does not have the required scope: one of %s, %s:all, all:%s, all:all", required, res, act))
}
