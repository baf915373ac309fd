package sim

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"time"
)

// APIKey is the spec's APIKey object. Key holds the secret only in the answer to its creation.
// Instantly's lists and deletions answer a masked key (the spec requires the field; whether
// the real value is masked is undocumented); the simulator's admin API omits it.
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
	mask string // what lists show in place of the secret
}

// newAPIKey returns the key to store and its secret, which the caller shows exactly once.
func newAPIKey(ws *workspace, id, name string, scopes []string, now time.Time) (*apiKey, string) {
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
		mask: maskSecret(secret),
	}, secret
}

// maskSecret keeps the first and last four characters, like most dashboards.
func maskSecret(secret string) string {
	if len(secret) < 12 {
		return "********"
	}
	return secret[:4] + strings.Repeat("*", len(secret)-8) + secret[len(secret)-4:]
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
	k, _ := s.addAPIKey(ws, name, scopes, s.now(), nil)
	return k, nil
}

// addAPIKey stores a new key; with audit (the key and request that create it through the API)
// it also appends the "API key created" audit-log entry, in the same critical section. It
// reports whether a live key of the workspace already had that name: Instantly allows it and
// so does the simulator, but it is usually a retried create.
func (s *Server) addAPIKey(ws *workspace, name string, scopes []string, now time.Time, audit *call) (APIKey, bool) {
	s.mu.Lock()
	ws.mu.Lock()
	dup := slices.ContainsFunc(ws.keys, func(k *apiKey) bool { return k.Name == name })
	key, secret := newAPIKey(ws, s.newID(), name, scopes, now)
	ws.keys = append(ws.keys, key)
	s.keys[key.hash] = key
	if audit != nil {
		ws.appendAudit(s.newID(), audit, ActivityAPIKeyCreated, key)
	}
	ws.mu.Unlock()
	s.mu.Unlock()

	s.log.Info("api key created", "workspace_id", ws.id, "api_key_id", key.ID, "scopes", scopes)
	return key.public(secret), dup
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
	k, err := s.removeAPIKey(ws, keyID, nil)
	if err != nil {
		return APIKey{}, err
	}
	return k.public(""), nil
}

// removeAPIKey deletes a key; with audit it also appends the "API key deleted" entry.
func (s *Server) removeAPIKey(ws *workspace, keyID string, audit *call) (*apiKey, error) {
	// Lock order is always Server then workspace.
	s.mu.Lock()
	defer s.mu.Unlock()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for i, k := range ws.keys {
		if k.ID == keyID {
			ws.keys = append(ws.keys[:i:i], ws.keys[i+1:]...)
			delete(s.keys, k.hash)
			if audit != nil {
				ws.appendAudit(s.newID(), audit, ActivityAPIKeyDeleted, k)
			}
			s.log.Info("api key revoked", "workspace_id", ws.id, "api_key_id", keyID)
			return k, nil
		}
	}
	return nil, errNotFound()
}

func keyID(k *apiKey) string { return k.ID }

// GET /api/v2/api-keys lists keys in id (creation) order, secrets masked.
func (s *Server) listAPIKeys(c *call) (any, error) {
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	res := page(c.ws.keys, nil, keyID, c.str("starting_after"), false, c.limit())
	out := List[APIKey]{Items: make([]APIKey, len(res.Items)), NextStartingAfter: res.NextStartingAfter}
	for i, k := range res.Items {
		out.Items[i] = k.public(k.mask)
	}
	return out, nil
}

// POST /api/v2/api-keys answers the key with its secret, the only time it is shown. A name a
// live key already has makes a second key with that name, and counts as a duplicate create.
func (s *Server) postAPIKey(c *call) (any, error) {
	body := c.body.(map[string]any) // name and scopes, validated against the spec
	k, dup := s.addAPIKey(c.ws, body["name"].(string), optStrings(body, "scopes"), c.now, c)
	if dup {
		c.countDuplicate()
	}
	return k, nil
}

// DELETE /api/v2/api-keys/{id} answers the deleted key, masked. A key may delete itself: the
// request succeeds and the key is refused from then on.
func (s *Server) deleteAPIKey(c *call) (any, error) {
	k, err := s.removeAPIKey(c.ws, c.r.PathValue("id"), c)
	if err != nil {
		return nil, err
	}
	return k.public(k.mask), nil
}
