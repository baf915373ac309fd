package instantly_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// env is one simulator served over HTTP, a workspace in it and a client whose
// every exchange goes through the contract check.
type env struct {
	sim      *sim.Server
	srv      *httptest.Server
	client   *instantly.Client
	contract *contract
	hits     *hits
	wsID     string
	key      string
	cred     instantly.Credential
	seq      int
}

// fastRetries keeps retry tests quick: waits of at most a few milliseconds.
func fastRetries(o *instantly.Options) {
	o.BaseBackoff = time.Millisecond
	o.MaxBackoff = 5 * time.Millisecond
}

func newEnv(t *testing.T, cfg sim.Config, opts ...func(*instantly.Options)) *env {
	t.Helper()
	s := sim.New(cfg)
	h := &hits{n: map[string]int{}}
	srv := httptest.NewServer(h.wrap(s))
	t.Cleanup(srv.Close)
	e := &env{sim: s, srv: srv, hits: h}
	e.contract = newContract(t, srv.Client().Transport)
	e.client = newClient(t, srv.URL, e.contract, append([]func(*instantly.Options){fastRetries}, opts...)...)
	e.wsID, e.key = s.CreateWorkspace("Acme")
	e.cred = instantly.Credential{APIKey: e.key}
	return e
}

func newClient(t *testing.T, baseURL string, rt http.RoundTripper, opts ...func(*instantly.Options)) *instantly.Client {
	t.Helper()
	o := instantly.Options{BaseURL: baseURL, HTTPClient: &http.Client{Transport: rt, Timeout: 10 * time.Second}}
	for _, f := range opts {
		f(&o)
	}
	c, err := instantly.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hits counts requests as the server sees them, by "METHOD /path".
type hits struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *hits) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.n[r.Method+" "+r.URL.Path]++
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (h *hits) get(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n[key]
}

func (h *hits) total(prefix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for k, v := range h.n {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (h *hits) reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.n)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiStatus returns the HTTP status of an *instantly.Error, or 0.
func apiStatus(err error) int {
	var e *instantly.Error
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// noSecret fails if err's text contains any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error text contains a secret: %q", err.Error())
		}
	}
}

func ptr[T any](v T) *T { return &v }

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// seedCampaign adds a campaign through the simulator's Go API (Instantly's
// API subset here cannot create campaigns) and returns its id.
func seedCampaign(t *testing.T, e *env) string {
	t.Helper()
	c, err := e.sim.AddCampaign(e.wsID, "Campaign "+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}

// seedAccount adds an email account and returns its email, its key.
func seedAccount(t *testing.T, e *env) string {
	t.Helper()
	e.seq++
	a, err := e.sim.AddAccount(e.wsID, fmt.Sprintf("sender%d@acme.example", e.seq))
	if err != nil {
		t.Fatal(err)
	}
	return a.Email
}

func newHTTPServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
