package sim_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

const currentPath = "/api/v2/workspaces/current"

func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
}

// env is one simulator behind a real HTTP server.
type env struct {
	t     *testing.T
	sim   *sim.Server
	srv   *httptest.Server
	clock *fakeclock.Clock
}

func newEnv(t *testing.T, cfg sim.Config) *env {
	t.Helper()
	e := &env{t: t, clock: newFakeClock()}
	if cfg.Now == nil {
		cfg.Now = e.clock.Now
	}
	e.sim = sim.New(cfg)
	e.srv = httptest.NewServer(e.sim)
	t.Cleanup(e.srv.Close)
	return e
}

type reply struct {
	status int
	body   []byte
}

// req describes one request; with neither key nor authorization no Authorization is sent.
type req struct {
	method, path, key, body string
	authorization           string // a raw Authorization header; overrides key
	contentType             string // defaults to application/json when body is set
	as                      string // x-as-workspace header
}

func (e *env) do(r req) reply {
	e.t.Helper()
	got, err := e.try(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// try is do for goroutines other than the test's, which must not call t.Fatal.
func (e *env) try(r req) (reply, error) {
	var body io.Reader
	if r.body != "" {
		body = bytes.NewBufferString(r.body)
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, body)
	if err != nil {
		return reply{}, err
	}
	switch {
	case r.authorization != "":
		hr.Header.Set("Authorization", r.authorization)
	case r.key != "":
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	if r.as != "" {
		hr.Header.Set("x-as-workspace", r.as)
	}
	switch {
	case r.contentType != "":
		hr.Header.Set("Content-Type", r.contentType)
	case r.body != "":
		hr.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.srv.Client().Do(hr)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, body: data}, err
}

func (e *env) get(path, key string) reply {
	e.t.Helper()
	return e.do(req{method: http.MethodGet, path: path, key: key})
}

func (e *env) patch(path, key, body string) reply {
	e.t.Helper()
	return e.do(req{method: http.MethodPatch, path: path, key: key, body: body})
}

// getN sends n GETs of the current workspace and counts answers by status.
func (e *env) getN(n int, key string) map[int]int {
	e.t.Helper()
	counts := map[int]int{}
	for range n {
		counts[e.get(currentPath, key).status]++
	}
	return counts
}

func (e *env) stats(wsID string) sim.WorkspaceStats {
	e.t.Helper()
	st, ok := e.sim.Stats()[wsID]
	if !ok {
		e.t.Fatalf("no stats for workspace %s", wsID)
	}
	return st
}

// wantError checks Instantly's error body: exactly statusCode, error and message.
func wantError(t *testing.T, got reply, status int, message string) {
	t.Helper()
	if got.status != status {
		t.Fatalf("status %d, want %d; body %s", got.status, status, got.body)
	}
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatalf("error body is not JSON: %s", got.body)
	}
	if len(body) != 3 || body["statusCode"] != float64(status) || body["error"] != http.StatusText(status) {
		t.Fatalf("error body %s, want statusCode %d, error %q and message only", got.body, status, http.StatusText(status))
	}
	if msg, _ := body["message"].(string); message != "" && msg != message {
		t.Fatalf("message %q, want %q", msg, message)
	} else if msg == "" {
		t.Fatalf("empty message in %s", got.body)
	}
}

func decode[T any](t *testing.T, r reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
	return v
}

func mustKey(t *testing.T, s *sim.Server, wsID string, scopes ...string) sim.APIKey {
	t.Helper()
	k, err := s.CreateAPIKey(wsID, "test key", scopes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// call sends an API request that must succeed and checks its body against the response schema
// the spec documents for pattern (the route's path template).
func (e *env) call(method, pattern, path, key, body string) reply {
	e.t.Helper()
	return e.callAs(req{method: method, path: path, key: key, body: body}, pattern)
}

func (e *env) callAs(r req, pattern string) reply {
	e.t.Helper()
	got := e.do(r)
	if got.status != http.StatusOK {
		e.t.Fatalf("%s %s: status %d, want 200; body %s", r.method, r.path, got.status, got.body)
	}
	if msg := sim.CheckResponse(r.method, pattern, http.StatusOK, got.body); msg != "" {
		e.t.Fatalf("%s %s: response breaks the spec: %s\n%s", r.method, r.path, msg, got.body)
	}
	return got
}

// wantSpecError is wantError plus, where the spec documents that status for the operation,
// a check of the body against its schema.
func wantSpecError(t *testing.T, method, pattern string, got reply, status int, message string) {
	t.Helper()
	wantError(t, got, status, message)
	if msg := sim.CheckResponse(method, pattern, status, got.body); msg != "" && msg != "no schema in the spec" {
		t.Fatalf("%d body breaks the spec: %s\n%s", status, msg, got.body)
	}
}

// list is the body of every list endpoint.
type list[T any] struct {
	Items             []T    `json:"items"`
	NextStartingAfter string `json:"next_starting_after"`
}

// walk pages through a list endpoint with limit, checking each page against the spec, and
// returns every item's cursor field in order plus the number of pages. It checks that every
// non-empty page carries the cursor of its last item and that the walk ends on an empty page.
func (e *env) walk(pattern, path, key string, limit int, cursorOf func(map[string]any) string) (cursors []string, pages int) {
	e.t.Helper()
	after := ""
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	for pages = 1; pages < 1000; pages++ {
		p := fmt.Sprintf("%s%slimit=%d", path, sep, limit)
		if after != "" {
			p += "&starting_after=" + url.QueryEscape(after)
		}
		pg := decode[list[map[string]any]](e.t, e.call(http.MethodGet, pattern, p, key, ""))
		if len(pg.Items) > limit {
			e.t.Fatalf("%s: %d items, limit %d", p, len(pg.Items), limit)
		}
		if len(pg.Items) == 0 {
			if pg.NextStartingAfter != "" {
				e.t.Errorf("%s: empty page with cursor %q", p, pg.NextStartingAfter)
			}
			return cursors, pages
		}
		for _, it := range pg.Items {
			cursors = append(cursors, cursorOf(it))
		}
		if want := cursorOf(pg.Items[len(pg.Items)-1]); pg.NextStartingAfter != want {
			e.t.Fatalf("%s: next_starting_after %q, want the last item's %q", p, pg.NextStartingAfter, want)
		}
		after = pg.NextStartingAfter
	}
	e.t.Fatalf("%s: no end after 1000 pages", path)
	return nil, 0
}

func field(name string) func(map[string]any) string {
	return func(m map[string]any) string { s, _ := m[name].(string); return s }
}

// seed creates a workspace with n campaigns and n accounts.
func (e *env) seed(name string, n int) (wsID, key string, campaigns []sim.Campaign, accounts []sim.Account) {
	e.t.Helper()
	wsID, key = e.sim.CreateWorkspace(name)
	for i := range n {
		c, err := e.sim.AddCampaign(wsID, fmt.Sprintf("Campaign %d", i))
		if err != nil {
			e.t.Fatal(err)
		}
		campaigns = append(campaigns, c)
		a, err := e.sim.AddAccount(wsID, fmt.Sprintf("sender%d@acme.test", i))
		if err != nil {
			e.t.Fatal(err)
		}
		accounts = append(accounts, a)
	}
	return wsID, key, campaigns, accounts
}
