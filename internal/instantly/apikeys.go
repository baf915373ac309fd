package instantly

import (
	"context"
	"fmt"
	"iter"
	"log/slog"
	"net/http"
	"strings"
)

// APIKey is the spec's APIKey. Key is the secret: complete only in the answer
// to CreateAPIKey; what lists return in it is undocumented (never rely on
// it). APIKey formats and logs itself without Key.
type APIKey struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Scopes           []string `json:"scopes"`
	Key              string   `json:"key"`
	OrganizationID   string   `json:"organization_id"`
	TimestampCreated string   `json:"timestamp_created"`
	TimestampUpdated string   `json:"timestamp_updated"`
}

// String describes the key without its secret.
func (k APIKey) String() string {
	return fmt.Sprintf("APIKey{ID: %s, Name: %q, Scopes: [%s], Key: <redacted>, OrganizationID: %s}",
		k.ID, k.Name, strings.Join(k.Scopes, " "), k.OrganizationID)
}

// GoString is String for %#v.
func (k APIKey) GoString() string { return k.String() }

// LogValue keeps the secret out of slog output.
func (k APIKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// ScopeAllows reports whether a key holding granted may perform an operation
// needing required ("resource:action"): X:a is satisfied by X:a, X:all,
// all:a or all:all. An empty required (no scope documented) needs nothing.
func ScopeAllows(granted []string, required string) bool {
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

// ListAPIKeys returns one page of the workspace's keys
// (GET /api-keys, scope api_keys:read).
func (c *Client) ListAPIKeys(ctx context.Context, cred Credential, p ListParams) (*Page[APIKey], error) {
	return call[Page[APIKey]](ctx, c, cred, request{method: http.MethodGet, path: "/api-keys", query: listQuery(p.Limit, p.StartingAfter)})
}

// AllAPIKeys walks every key, from p.StartingAfter.
func (c *Client) AllAPIKeys(ctx context.Context, cred Credential, p ListParams, opts ...PageOption) iter.Seq2[APIKey, error] {
	p.Limit = walkLimit(p.Limit, 100)
	return All(ctx, func(ctx context.Context, cursor string) (*Page[APIKey], error) {
		p.StartingAfter = cursor
		return c.ListAPIKeys(ctx, cred, p)
	}, append([]PageOption{StartingAfter(p.StartingAfter)}, opts...)...)
}

// CreateAPIKeyRequest is the body of POST /api-keys. Scopes are values of the
// spec's enum (Scopes, ValidScope).
type CreateAPIKeyRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
}

// CreateAPIKey mints a key; the answer carries the secret in Key, shown only
// this once (POST /api-keys, scope api_keys:create). It is never repeated
// once it may have reached Instantly: on a 5xx or a timeout the key may
// exist, so list the keys (by Name) and delete strays rather than retrying.
func (c *Client) CreateAPIKey(ctx context.Context, cred Credential, req CreateAPIKeyRequest) (*APIKey, error) {
	return call[APIKey](ctx, c, cred, request{method: http.MethodPost, path: "/api-keys", body: req, atMostOnce: true})
}

// DeleteAPIKey revokes a key and returns it
// (DELETE /api-keys/{id}, scope api_keys:delete).
func (c *Client) DeleteAPIKey(ctx context.Context, cred Credential, id string) (*APIKey, error) {
	path, err := pathf("/api-keys/%s", id)
	if err != nil {
		return nil, err
	}
	return call[APIKey](ctx, c, cred, request{method: http.MethodDelete, path: path})
}
