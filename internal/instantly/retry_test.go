package instantly_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestRetriesInjected5xxUntilSuccess(t *testing.T) {
	e := newEnv(t, sim.Config{FaultRate: 0.4, Seed: 7}, func(o *instantly.Options) { o.MaxAttempts = 10 })
	ctx := ctxT(t)
	const calls = 30
	for i := range calls {
		// GETs, a PATCH and a DELETE: all retried on 5xx.
		if _, err := e.client.GetCurrentWorkspace(ctx, e.cred); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// A create is not repeated blindly: CreateOnce looks before trying again.
	finds := 0
	tag := must[*instantly.CustomTag](t)(instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.CustomTag, error) {
		return e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "retried"})
	}, func(ctx context.Context) (*instantly.CustomTag, bool, error) {
		finds++
		page, err := e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{})
		if err != nil || len(page.Items) == 0 {
			return nil, false, err
		}
		return &page.Items[0], true, nil
	}))
	must[*instantly.CustomTag](t)(e.client.UpdateCustomTag(ctx, e.cred, tag.ID, instantly.UpdateCustomTagRequest{Label: ptr("retried 2")}))
	must[*instantly.CustomTag](t)(e.client.DeleteCustomTag(ctx, e.cred, tag.ID))

	st := e.sim.Stats()[e.wsID]
	if st.Faults == 0 {
		t.Fatal("no faults injected: the test proves nothing")
	}
	// Every fault was followed by another attempt: admitted = the calls made.
	if st.Admitted != int64(calls+3+finds) || st.Requests != st.Admitted+st.Faults {
		t.Fatalf("stats = %+v, want %d admitted", st, calls+3+finds)
	}
}

// TestCreateOnceUnderAmbiguousFaults: an upstream that commits and then
// fails to answer (5xx or a dropped connection) gets each create once.
func TestCreateOnceUnderAmbiguousFaults(t *testing.T) {
	e := newEnv(t, sim.Config{FaultAfterRate: 0.5, Seed: 3}, func(o *instantly.Options) { o.MaxAttempts = 5 })
	ctx := ctxT(t)
	for i := range 20 {
		label := fmt.Sprintf("tag-%d", i)
		got, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.CustomTag, error) {
			return e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: label})
		}, func(ctx context.Context) (*instantly.CustomTag, bool, error) {
			for tag, err := range e.client.AllCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Search: label}) {
				if err != nil || tag.Label == label {
					return &tag, err == nil, err
				}
			}
			return nil, false, nil
		})
		if err != nil || got.Label != label {
			t.Fatalf("create %d: %v %v", i, got, err)
		}
	}
	st := e.sim.Stats()[e.wsID]
	if st.FaultsAfter == 0 {
		t.Fatal("no ambiguous faults injected: the test proves nothing")
	}
	if st.DuplicateCreates != 0 {
		t.Fatalf("duplicate creates = %d, want 0", st.DuplicateCreates)
	}
}

func TestRetriesRateLimitWithinDeadline(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 10}, func(o *instantly.Options) {
		o.MaxAttempts = 50
		o.BaseBackoff = 20 * time.Millisecond
		o.MaxBackoff = 400 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if _, err := e.client.ListCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.sim.Stats()[e.wsID]
	if st.RateLimited == 0 || st.Admitted != 20 {
		t.Fatalf("stats = %+v: want 429s, then all 20 admitted", st)
	}
	if st.MaxAdmitted1s > 10 {
		t.Fatalf("more than RPS admitted in a second: %+v", st)
	}
}

func TestRateLimitedPOSTIsRetriedEvenForAPIKeys(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 1}, func(o *instantly.Options) {
		o.MaxAttempts = 50
		o.BaseBackoff = 50 * time.Millisecond
		o.MaxBackoff = 300 * time.Millisecond
	})
	ctx := ctxT(t)
	must[*instantly.Workspace](t)(e.client.GetCurrentWorkspace(ctx, e.cred)) // spends this second's budget
	k := must[*instantly.APIKey](t)(e.client.CreateAPIKey(ctx, e.cred, instantly.CreateAPIKeyRequest{Name: "after 429", Scopes: []string{"all:read"}}))
	if k.Key == "" {
		t.Fatal("no secret")
	}
	if n := e.hits.get("POST /api/v2/api-keys"); n < 2 {
		t.Fatalf("POST /api-keys sent %d times; want a 429 then a retry", n)
	}
	st, err := e.sim.WorkspaceState(e.wsID) // not the API: its budget is spent
	if err != nil || len(st.APIKeys) != 2 {
		t.Fatalf("keys = %d (%v), want 2: a 429 must not have created one", len(st.APIKeys), err)
	}
}

func TestCreateAPIKeyIsNotRetriedOn5xx(t *testing.T) {
	e := newEnv(t, sim.Config{FaultRate: 1}, func(o *instantly.Options) { o.MaxAttempts = 5 })
	ctx := ctxT(t)
	_, err := e.client.CreateAPIKey(ctx, e.cred, instantly.CreateAPIKeyRequest{Name: "once", Scopes: []string{"all:read"}})
	if s := apiStatus(err); s < 500 {
		t.Fatalf("err = %v", err)
	}
	if n := e.hits.get("POST /api/v2/api-keys"); n != 1 {
		t.Fatalf("POST /api-keys sent %d times on 5xx, want 1", n)
	}
	// Neither is any other create, and the error says it is ambiguous.
	_, err = e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "x"})
	if apiStatus(err) < 500 || !instantly.Ambiguous(err) {
		t.Fatalf("err = %v", err)
	}
	if n := e.hits.get("POST /api/v2/custom-tags"); n != 1 {
		t.Fatalf("POST /custom-tags sent %d times on 5xx, want 1", n)
	}
}

func TestClientErrorsAreNeverRepeated(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	scoped := must[*instantly.APIKey](t)(e.client.CreateAPIKey(ctx, e.cred, instantly.CreateAPIKeyRequest{Name: "ro", Scopes: []string{"custom_tags:read"}}))
	must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: "dup"}))
	bare := newClient(t, e.srv.URL, e.srv.Client().Transport, fastRetries)
	cases := []struct {
		name   string
		status int
		key    string
		call   func() error
	}{
		{"401 bad key", 401, "POST /api/v2/custom-tags", func() error {
			_, err := e.client.CreateCustomTag(ctx, instantly.Credential{APIKey: "not-a-key"}, instantly.CreateCustomTagRequest{Label: "a"})
			return err
		}},
		{"403 scope", 403, "POST /api/v2/workspace-members", func() error {
			_, err := e.client.CreateWorkspaceMember(ctx, instantly.Credential{APIKey: scoped.Key}, instantly.CreateWorkspaceMemberRequest{Email: "a@b.example", Role: instantly.RoleView})
			return err
		}},
		{"404 missing", 404, "DELETE /api/v2/workspace-members/00000000-0000-4000-8000-000000000000", func() error {
			_, err := e.client.DeleteWorkspaceMember(ctx, e.cred, "00000000-0000-4000-8000-000000000000")
			return err
		}},
		{"409 duplicate label", 409, "POST /api/v2/custom-tags", func() error {
			_, err := e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: " DUP "})
			return err
		}},
		{"400 bad body", 400, "POST /api/v2/workspace-members", func() error {
			// Deliberately off-contract, so sent around the contract check.
			_, err := bare.CreateWorkspaceMember(ctx, e.cred, instantly.CreateWorkspaceMemberRequest{Email: "a@b.example", Role: "superuser"})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.hits.reset()
			err := tc.call()
			if apiStatus(err) != tc.status {
				t.Fatalf("err = %v, want HTTP %d", err, tc.status)
			}
			if n := e.hits.get(tc.key); n != 1 {
				t.Fatalf("%s seen %d times upstream, want 1", tc.key, n)
			}
			noSecret(t, err, e.key, scoped.Key, "not-a-key")
		})
	}
}

func TestDeadlineEndsRetriesWithLastError(t *testing.T) {
	e := newEnv(t, sim.Config{FaultRate: 1}, func(o *instantly.Options) {
		o.MaxAttempts = 1000
		o.BaseBackoff = 20 * time.Millisecond
		o.MaxBackoff = 100 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.client.GetCurrentWorkspace(ctx, e.cred)
	elapsed := time.Since(start)
	if s := apiStatus(err); s < 500 {
		t.Fatalf("err = %v, want the last 5xx", err)
	}
	if elapsed > time.Second {
		t.Fatalf("retried for %v past a 300ms deadline", elapsed)
	}
	if n := e.hits.get("GET /api/v2/workspaces/current"); n < 2 {
		t.Fatalf("only %d attempts before the deadline", n)
	}
	noSecret(t, err, e.key)
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var n atomic.Int64
	var times []time.Time
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"statusCode":429,"error":"Too Many Requests","message":"Rate limit exceeded"}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"w","name":"W","owner":"o","timestamp_created":"t","timestamp_updated":"t"}`))
	}))
	defer srv.Close()
	// Jittered waits would be at most 5ms: a 1s gap can only be Retry-After.
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries)
	ws, err := c.GetCurrentWorkspace(ctxT(t), instantly.Credential{APIKey: "k"})
	if err != nil || ws.ID != "w" {
		t.Fatalf("ws = %v, err = %v", ws, err)
	}
	if gap := times[1].Sub(times[0]); gap < 950*time.Millisecond {
		t.Fatalf("retried after %v, Retry-After said 1s", gap)
	}

	// A Retry-After beyond the deadline (or MaxRetryAfter) is not sat out:
	// the 429 comes back at once, carrying it.
	n.Store(0)
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.GetCurrentWorkspace(ctx, instantly.Credential{APIKey: "k"})
	var apiErr *instantly.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.RetryAfter != time.Second || time.Since(start) > 200*time.Millisecond {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	n.Store(0)
	c = newClient(t, srv.URL, srv.Client().Transport, fastRetries, func(o *instantly.Options) { o.MaxRetryAfter = 500 * time.Millisecond })
	if _, err = c.GetCurrentWorkspace(ctxT(t), instantly.Credential{APIKey: "k"}); apiStatus(err) != 429 || n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, n.Load())
	}
}

func TestTransportTimeouts(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			select { // the first attempt hangs past the client's timeout
			case <-time.After(500 * time.Millisecond):
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"t","label":"L","organization_id":"o","timestamp_created":"t","timestamp_updated":"t"}`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, nil, fastRetries, func(o *instantly.Options) {
		o.HTTPClient = &http.Client{Transport: srv.Client().Transport, Timeout: 100 * time.Millisecond}
	})
	cred := instantly.Credential{APIKey: "secret-key"}
	// A GET that timed out is repeated.
	tag, err := c.GetCustomTag(ctxT(t), cred, "t")
	if err != nil || tag.ID != "t" || n.Load() != 2 {
		t.Fatalf("tag = %v, err = %v, requests = %d; want a retry after the timeout", tag, err, n.Load())
	}

	// A create that timed out may have happened: not repeated, and Ambiguous.
	n.Store(0)
	_, err = c.CreateCustomTag(ctxT(t), cred, instantly.CreateCustomTagRequest{Label: "L"})
	if !errors.Is(err, instantly.ErrUnreachable) || !instantly.Ambiguous(err) || n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, n.Load())
	}

	// POST /api-keys that timed out may have minted a key: not repeated.
	n.Store(0)
	_, err = c.CreateAPIKey(ctxT(t), cred, instantly.CreateAPIKeyRequest{Name: "k", Scopes: []string{"all:all"}})
	if !errors.Is(err, instantly.ErrUnreachable) || n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, n.Load())
	}
	noSecret(t, err, cred.APIKey)
}

func TestConnectionRefusedIsRetriedEvenForAPIKeys(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every dial is refused
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	c := newClient(t, "http://"+addr, tr, fastRetries, func(o *instantly.Options) { o.MaxAttempts = 3 })
	cred := instantly.Credential{APIKey: "secret-key"}
	_, err = c.CreateAPIKey(ctxT(t), cred, instantly.CreateAPIKeyRequest{Name: "k", Scopes: []string{"all:all"}})
	if !errors.Is(err, instantly.ErrUnreachable) || dials.Load() != 3 {
		t.Fatalf("err = %v after %d dials, want 3", err, dials.Load())
	}
	noSecret(t, err, cred.APIKey)
}

func TestUndecodableSuccessIsNotRetried(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		_, _ = w.Write([]byte(`{"id": 42`))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries)
	_, err := c.CreateCustomTag(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.CreateCustomTagRequest{Label: "x"})
	if !errors.Is(err, instantly.ErrUnreachable) || n.Load() != 1 {
		t.Fatalf("err = %v after %d requests", err, n.Load())
	}
}

func TestKeyEchoedByUpstreamIsRedacted(t *testing.T) {
	const key = "c2VjcmV0LWtleS0xMjM0NTY3ODkw"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintf(w, `{"statusCode":401,"error":"Unauthorized","message":"Invalid API key %s"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries)
	cred := instantly.Credential{APIKey: key, AsWorkspace: "sub"}
	_, err := c.GetCurrentWorkspace(ctxT(t), cred)
	if apiStatus(err) != 401 || !strings.Contains(err.Error(), "<redacted>") {
		t.Fatalf("err = %v", err)
	}
	noSecret(t, err, key)
	if s := fmt.Sprintf("%v %+v %#v %s", cred, cred, cred, cred); strings.Contains(s, key) {
		t.Fatalf("Credential formats its key: %s", s)
	}
}

// TestCanceledRetryKeepsTheEarlierError: a call canceled while its retry
// is in flight reports what went wrong before (the 503), not only the
// cancellation.
func TestCanceledRetryKeepsTheEarlierError(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"statusCode":503,"error":"Service Unavailable","message":"down for a moment"}`))
			return
		}
		cancel() // the caller gives up while the retry is in flight
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, srv.Client().Transport, fastRetries)
	_, err := c.GetCurrentWorkspace(ctx, instantly.Credential{APIKey: "key"})
	if s := apiStatus(err); s != http.StatusServiceUnavailable || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want the 503 and the cancellation", err)
	}
}
