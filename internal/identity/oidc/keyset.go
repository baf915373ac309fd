package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// signingAlgs are the algorithms a token may be signed with: asymmetric
// only (go-oidc's list), so "none" and an HMAC made with a public key are
// refused before any key is looked at.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// errUnknownKey: the token's key is not in the issuer's key set, and the
// set may not be fetched again yet.
var errUnknownKey = errors.New("signing key not in the issuer's key set")

// keySet is an issuer's JWKS. It implements go-oidc's KeySet from its
// cache only; ensure fetches. go-oidc's own RemoteKeySet refetches the JWKS
// on every token whose kid it does not know (and on every bad signature),
// coalescing only concurrent fetches, so a caller sending made-up kids
// would make us fetch once per request. Here a fetch happens at most once
// per minInterval, whatever the tokens say.
type keySet struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration

	fetch chan struct{} // one fetch at a time; a channel so waiting honours ctx

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	fetched   time.Time // last successful fetch
	attempted time.Time // last fetch attempt
}

func newKeySet(url string, client *http.Client, now func() time.Time, minInterval, maxAge time.Duration) *keySet {
	return &keySet{url: url, client: client, now: now, minInterval: minInterval, maxAge: maxAge, fetch: make(chan struct{}, 1)}
}

// ensure makes sure the key kid ("" = any) is known, fetching the set when
// it is not (or the set is older than maxAge) and the last attempt is at
// least minInterval old. A failed fetch with the key unknown is returned
// (the issuer is unreachable); a stale set that cannot be refreshed is
// still used.
func (k *keySet) ensure(ctx context.Context, kid string) error {
	known, fresh := k.lookup(kid)
	if known && fresh {
		return nil
	}
	select {
	case k.fetch <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-k.fetch }()
	// Another caller may have fetched while this one waited.
	if known, fresh = k.lookup(kid); known && fresh {
		return nil
	}
	k.mu.RLock()
	attempted := k.attempted
	k.mu.RUnlock()
	if !attempted.IsZero() && k.now().Sub(attempted) < k.minInterval {
		if known {
			return nil
		}
		return errUnknownKey
	}
	err := k.refresh(ctx)
	known, _ = k.lookup(kid)
	switch {
	case known:
		return nil
	case err != nil:
		return err
	}
	return errUnknownKey
}

// lookup reports whether kid is in the cached set and whether the set is
// younger than maxAge.
func (k *keySet) lookup(kid string) (known, fresh bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	fresh = !k.fetched.IsZero() && k.now().Sub(k.fetched) < k.maxAge
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			return true, fresh
		}
	}
	return false, fresh
}

func (k *keySet) refresh(ctx context.Context) error {
	k.mu.Lock()
	k.attempted = k.now()
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("jwks: HTTP %d", resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return fmt.Errorf("jwks: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		// Only public signing keys: a symmetric or private key in a JWKS
		// is a misconfiguration, never something to verify with.
		if key.Use == "enc" || !key.Valid() || !key.IsPublic() {
			continue
		}
		keys = append(keys, key)
	}
	k.mu.Lock()
	k.keys, k.fetched = keys, k.now()
	k.mu.Unlock()
	return nil
}

// VerifySignature implements go-oidc's KeySet from the cached keys (ensure
// has run first). go-oidc has already refused algorithms outside the
// issuer's asymmetric list; the token is parsed again here with signingAlgs
// so this check does not depend on it.
func (k *keySet) VerifySignature(_ context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, signingAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed jwt: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("a jwt needs exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	k.mu.RLock()
	keys := k.keys
	k.mu.RUnlock()
	for i := range keys {
		if kid == "" || keys[i].KeyID == kid {
			if payload, err := jws.Verify(&keys[i]); err == nil {
				return payload, nil
			}
		}
	}
	return nil, errors.New("signature does not verify with the issuer's keys")
}
