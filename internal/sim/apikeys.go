package sim

import (
	"crypto/sha256"
	"net/http"
	"time"
)

// APIKey is the spec's APIKey object. Key holds the secret only in the answer to its creation;
// everywhere else it is empty and omitted.
type APIKey struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Scopes           []string `json:"scopes"`
	Key              string   `json:"key,omitempty"`
	OrganizationID   string   `json:"organization_id"` // Instantly calls a workspace an organization
	TimestampCreated string   `json:"timestamp_created"`
	TimestampUpdated string   `json:"timestamp_updated"`
}

// apiKey is a stored key: its public fields and the hash of its secret, never the secret.
type apiKey struct {
	APIKey
	ws   *workspace
	hash [32]byte
}

// newAPIKey returns the key to store and its secret, which the caller shows exactly once.
func newAPIKey(ws *workspace, name string, scopes []string, now time.Time) (*apiKey, string) {
	id := newUUID()
	secret := newSecret(id)
	ts := timestamp(now)
	return &apiKey{
		APIKey: APIKey{
			ID:               id,
			Name:             name,
			Scopes:           append([]string{}, scopes...),
			OrganizationID:   ws.id,
			TimestampCreated: ts,
			TimestampUpdated: ts,
		},
		ws:   ws,
		hash: sha256.Sum256([]byte(secret)),
	}, secret
}

// public copies the key for output; secret is set only in the answer to its creation.
func (k *apiKey) public(secret string) APIKey {
	out := k.APIKey
	out.Scopes = append([]string{}, k.Scopes...)
	out.Key = secret
	return out
}

// CreateAPIKey adds a key to a workspace. Scopes must be values of the spec's scope enum; the
// returned APIKey carries the secret in Key. Errors match ErrNotFound or ErrInvalid.
func (s *Server) CreateAPIKey(workspaceID, name string, scopes []string) (APIKey, error) {
	list := make([]any, len(scopes))
	for i, sc := range scopes {
		list[i] = sc
	}
	body := map[string]any{"name": name, "scopes": list}
	if msg := s.valid.check(s.spec.requestSchema(http.MethodPost, "/api/v2/api-keys"), body, "body"); msg != "" {
		return APIKey{}, errBadRequest(msg)
	}
	return s.createAPIKey(workspaceID, name, scopes)
}

func (s *Server) createAPIKey(workspaceID, name string, scopes []string) (APIKey, error) {
	ws := s.workspace(workspaceID)
	if ws == nil {
		return APIKey{}, errNotFound()
	}
	key, secret := newAPIKey(ws, name, scopes, s.now())

	s.mu.Lock()
	ws.mu.Lock()
	ws.keys = append(ws.keys, key)
	s.keys[key.hash] = key
	ws.mu.Unlock()
	s.mu.Unlock()

	s.log.Info("api key created", "workspace_id", ws.id, "api_key_id", key.ID, "scopes", scopes)
	return key.public(secret), nil
}

// RevokeAPIKey deletes a key; requests using it are answered 401 from then on.
func (s *Server) RevokeAPIKey(workspaceID, keyID string) error {
	_, err := s.revokeAPIKey(workspaceID, keyID)
	return err
}

func (s *Server) revokeAPIKey(workspaceID, keyID string) (APIKey, error) {
	ws := s.workspace(workspaceID)
	if ws == nil {
		return APIKey{}, errNotFound()
	}
	// Lock order is always Server then workspace.
	s.mu.Lock()
	defer s.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i, k := range ws.keys {
		if k.ID == keyID {
			ws.keys = append(ws.keys[:i:i], ws.keys[i+1:]...)
			delete(s.keys, k.hash)
			s.log.Info("api key revoked", "workspace_id", ws.id, "api_key_id", keyID)
			return k.public(""), nil
		}
	}
	return APIKey{}, errNotFound()
}
