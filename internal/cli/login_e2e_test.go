package cli_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/identity/oidc/oidctest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// deviceFlow is a small device authorization server (RFC 8628) whose
// tokens are ID tokens of the test OpenID Provider: the first poll is
// pending, the second gets the tokens; refreshes count.
type deviceFlow struct {
	url       string
	polls     atomic.Int64
	refreshes atomic.Int64
}

const loginClientID = "agencyctl-test"

func startDeviceFlow(t *testing.T, op *oidctest.Provider, email string) *deviceFlow {
	d := &deviceFlow{}
	idToken := func() string {
		return op.Sign(t, op.Claims("user-1", loginClientID, time.Hour, map[string]any{"email": email}))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": d.url, "device_authorization_endpoint": d.url + "/device", "token_endpoint": d.url + "/token"})
	})
	mux.HandleFunc("POST /device", func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("client_id") != loginClientID {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"device_code": "dev-code", "user_code": "WDJB-MJHT",
			"verification_uri": d.url + "/activate", "expires_in": 60, "interval": 1})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.FormValue("grant_type") {
		case "urn:ietf:params:oauth:grant-type:device_code":
			if d.polls.Add(1) == 1 {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"authorization_pending"}`))
				return
			}
		case "refresh_token":
			if r.FormValue("refresh_token") != "refresh-1" {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
				return
			}
			d.refreshes.Add(1)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "opaque-access", "token_type": "Bearer",
			"expires_in": 3600, "refresh_token": "refresh-1", "id_token": idToken()})
	})
	hs := httptest.NewUnstartedServer(mux)
	d.url = "http://" + hs.Listener.Addr().String() // before the handlers run
	hs.Start()
	t.Cleanup(hs.Close)
	return d
}

func TestLoginDeviceFlow(t *testing.T) {
	op := oidctest.Start(t)
	mapping := filepath.Join(t.TempDir(), "oidc.yaml")
	if err := os.WriteFile(mapping, []byte("- match: {email: \"ops@agency.test\"}\n  role: admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, sim.Config{}, "--oidc-issuer", op.Issuer, "--oidc-audience", loginClientID, "--oidc-mapping", mapping)
	flow := startDeviceFlow(t, op, "ops@agency.test")
	// No AGENCY_TOKEN: only the login gives one.
	var environ []string
	for _, kv := range e.environ() {
		if !strings.HasPrefix(kv, "AGENCY_TOKEN=") {
			environ = append(environ, kv)
		}
	}
	run := func(want int, args ...string) result {
		t.Helper()
		r := runBin(t, environ, "", args...)
		if r.code != want {
			t.Fatalf("agencyctl %s: want exit %d, got %s", strings.Join(args, " "), want, r)
		}
		return r
	}

	run(1, "workspaces", "list")
	run(2, "login", "--issuer", flow.url)
	in := run(0, "login", "--issuer", flow.url, "--client-id", loginClientID)
	if !strings.Contains(in.stderr, "WDJB-MJHT") || !strings.Contains(in.stderr, flow.url+"/activate") ||
		!strings.Contains(in.stdout, "Logged in at "+flow.url+" as ops@agency.test") || flow.polls.Load() != 2 {
		t.Errorf("login: %s (%d polls)", in, flow.polls.Load())
	}
	cache := filepath.Join(e.dir, "login.json")
	fi, err := os.Stat(cache)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login cache: %v %v", err, fi)
	}
	run(0, "workspaces", "list")

	// An expired ID token is refreshed with the refresh token, once.
	var l map[string]any
	b, _ := os.ReadFile(cache)
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	l["id_token"] = op.Sign(t, op.Claims("user-1", loginClientID, -time.Hour, map[string]any{"email": "ops@agency.test"}))
	b, _ = json.Marshal(l)
	if err := os.WriteFile(cache, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(0, "workspaces", "list")
	run(0, "workspaces", "list")
	if n := flow.refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if b, _ := os.ReadFile(cache); strings.Contains(string(b), l["id_token"].(string)) {
		t.Error("the refreshed token was not cached")
	}

	// A refresh the provider refuses: one line, no token in it.
	l["id_token"], l["refresh_token"] = op.Sign(t, op.Claims("user-1", loginClientID, -time.Hour, nil)), "revoked"
	b, _ = json.Marshal(l)
	if err := os.WriteFile(cache, b, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := run(1, "workspaces", "list")
	if !strings.Contains(bad.stderr, "invalid_grant") || !strings.Contains(bad.stderr, "agencyctl login again") {
		t.Errorf("refused refresh: %s", bad)
	}

	run(0, "logout")
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Errorf("logout left %s: %v", cache, err)
	}
	run(1, "workspaces", "list")
}
