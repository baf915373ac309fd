// Package oidctest runs a minimal OpenID Provider for tests on a random
// port: real discovery (/.well-known/openid-configuration), a real JWKS
// over HTTP, and ID tokens signed with go-jose, with key rotation and a
// count of JWKS fetches.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Provider is a running OpenID Provider.
type Provider struct {
	// Issuer is the provider's issuer URL (its base URL).
	Issuer string

	srv         *httptest.Server
	jwksFetches atomic.Int64
	algs        atomic.Pointer[[]string]

	mu   sync.Mutex
	key  *rsa.PrivateKey
	kid  string
	keys int
}

// Start runs a provider until the test ends.
func Start(t testing.TB) *Provider {
	t.Helper()
	p := &Provider{}
	p.Rotate(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                p.Issuer,
			"authorization_endpoint":                p.Issuer + "/authorize",
			"token_endpoint":                        p.Issuer + "/token",
			"jwks_uri":                              p.Issuer + "/keys",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": p.advertised(),
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		p.jwksFetches.Add(1)
		p.mu.Lock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: "RS256", Use: "sig"}}}
		p.mu.Unlock()
		writeJSON(w, set)
	})
	p.srv = httptest.NewServer(mux)
	p.Issuer = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Advertise sets the algorithms the discovery document lists (default
// RS256), e.g. to check that a provider listing "none" or HS256 does not
// make them acceptable.
func (p *Provider) Advertise(algs ...string) { p.algs.Store(&algs) }

func (p *Provider) advertised() []string {
	if a := p.algs.Load(); a != nil {
		return *a
	}
	return []string{"RS256"}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Stop makes the provider unreachable.
func (p *Provider) Stop() { p.srv.Close() }

// JWKSFetches counts the requests for the key set so far.
func (p *Provider) JWKSFetches() int64 { return p.jwksFetches.Load() }

// Rotate replaces the signing key by a new one with a new kid; the JWKS
// serves only the new key from now on.
func (p *Provider) Rotate(t testing.TB) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys++
	p.key, p.kid = key, fmt.Sprintf("key-%d", p.keys)
}

// PublicKeyJSON is the current key's JWK as the JWKS serves it.
func (p *Provider) PublicKeyJSON(t testing.TB) []byte {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	b, err := json.Marshal(jose.JSONWebKey{Key: &p.key.PublicKey, KeyID: p.kid, Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Claims are an ID token's standard claims plus any others.
func (p *Provider) Claims(sub, aud string, ttl time.Duration, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": p.Issuer, "sub": sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// Sign signs claims with the current key (RS256, its kid in the header).
func (p *Provider) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	p.mu.Lock()
	key, kid := p.key, p.kid
	p.mu.Unlock()
	return SignWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: key}, kid, claims)
}

// SignWith signs claims with any key and algorithm.
func SignWith(t testing.TB, sk jose.SigningKey, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Unsigned is claims as an alg "none" token (go-jose will not make one).
func Unsigned(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	header, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": kid})
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc(header) + "." + enc(payload) + "."
}
