package apikeys

import (
	"context"
	"encoding/base64"
	"strings"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// IdentifyStoredKey finds the Instantly id of the API key cred.APIKey is,
// from the workspace's key list (GET /api-keys, which needs the key to hold
// api_keys:read). It returns "" when no single listed key matches; an
// error only when the list cannot be read. See MatchKey for how a key is
// recognised.
func IdentifyStoredKey(ctx context.Context, c *instantly.Client, cred instantly.Credential) (string, error) {
	var keys []instantly.APIKey
	for k, err := range c.AllAPIKeys(ctx, cred, instantly.ListParams{Limit: 100}) {
		if err != nil {
			return "", err
		}
		keys = append(keys, k)
	}
	return MatchKey(cred.APIKey, keys), nil
}

// MatchKey returns the id of the listed key whose secret is secret, or ""
// when none, or more than one, can be told apart. Instantly's key list has
// no field meant for this: its key field is the secret's masked form (the
// simulator shows the first and last four characters; what Instantly
// itself shows there is undocumented, so nothing may rely on one form).
// A listed key is the one when, in this order:
//
//  1. its key field is the secret itself (a list that does not mask);
//  2. the secret is Instantly's key format, base64("<key id>:<random>"),
//     and names the listed key's id, and its key field does not contradict
//     the secret (empty, or a mask of it);
//  3. it is the only listed key whose key field is a mask of the secret
//     (same length; every character either '*' or the secret's own).
func MatchKey(secret string, keys []instantly.APIKey) string {
	if secret == "" {
		return ""
	}
	for _, k := range keys {
		if k.Key == secret {
			return k.ID
		}
	}
	if id := embeddedKeyID(secret); id != "" {
		for _, k := range keys {
			if k.ID == id && (k.Key == "" || masks(k.Key, secret)) {
				return k.ID
			}
		}
	}
	found := ""
	for _, k := range keys {
		if masks(k.Key, secret) {
			if found != "" {
				return "" // two candidates: cannot tell
			}
			found = k.ID
		}
	}
	return found
}

// embeddedKeyID is the key id in an Instantly-format secret,
// base64("<key id>:<random>"), or "".
func embeddedKeyID(secret string) string {
	raw, err := base64.StdEncoding.DecodeString(secret)
	if err != nil {
		return ""
	}
	id, rest, ok := strings.Cut(string(raw), ":")
	if !ok || rest == "" || len(id) < 8 || len(id) > 64 {
		return ""
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return ""
		}
	}
	return id
}

// masks reports whether masked is a mask of secret: as long, with at least
// one '*' and at least four of the secret's own characters, every other
// character the secret's.
func masks(masked, secret string) bool {
	if len(masked) != len(secret) || masked == secret {
		return false
	}
	stars, shown := 0, 0
	for i := 0; i < len(masked); i++ {
		switch masked[i] {
		case '*':
			stars++
		case secret[i]:
			shown++
		default:
			return false
		}
	}
	return stars > 0 && shown >= 4
}
