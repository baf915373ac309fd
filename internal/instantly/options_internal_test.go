package instantly

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestNewDefaults: options left zero get the documented defaults; options
// set are kept.
func TestNewDefaults(t *testing.T) {
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.MaxAttempts != 5 || o.BaseBackoff != 100*time.Millisecond || o.MaxBackoff != 5*time.Second || o.MaxRetryAfter != time.Minute ||
		c.base.String() != DefaultBaseURL || o.Now == nil || o.Logger == nil || c.ua == "" {
		t.Fatalf("defaults: %+v, base %s", o, c.base)
	}
	if c.hc.Timeout != 30*time.Second {
		t.Fatalf("attempt timeout %v, want 30s", c.hc.Timeout)
	}
	if tr, ok := c.hc.Transport.(*http.Transport); !ok || tr.MaxIdleConnsPerHost != MaxIdleConnsPerHost || tr.MaxIdleConns != MaxIdleConnsPerHost {
		t.Fatalf("transport keeps too few idle connections: %#v", c.hc.Transport)
	}

	set := Options{BaseURL: "http://127.0.0.1:1/", MaxAttempts: 1, BaseBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		MaxRetryAfter: 3 * time.Millisecond, UserAgent: "test", HTTPClient: &http.Client{}}
	c, err = New(set)
	if err != nil {
		t.Fatal(err)
	}
	o = c.opts
	if o.MaxAttempts != 1 || o.BaseBackoff != time.Millisecond || o.MaxBackoff != 2*time.Millisecond || o.MaxRetryAfter != 3*time.Millisecond ||
		c.ua != "test" || c.hc != set.HTTPClient || c.base.String() != "http://127.0.0.1:1" {
		t.Fatalf("set options changed: %+v, base %s", o, c.base)
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "http://", "http://a b"} {
		if _, err := New(Options{BaseURL: bad}); err == nil {
			t.Errorf("base URL %q accepted", bad)
		}
	}
}

// TestCredentialString: formatting a credential never shows its key, and
// shows which workspace it acts as.
func TestCredentialString(t *testing.T) {
	for _, c := range []Credential{{APIKey: "secret-key"}, {APIKey: "secret-key", AsWorkspace: "ws-1"}} {
		s := c.String()
		if strings.Contains(s, "secret-key") || !strings.Contains(s, "<redacted>") || strings.Contains(s, "AsWorkspace") != (c.AsWorkspace != "") ||
			!strings.Contains(s, c.AsWorkspace) {
			t.Errorf("%q", s)
		}
	}
}

// TestDecodeError: Instantly's error body gives the phrase and message
// (the HTTP status text when it has none); Retry-After is read in seconds
// or as a date, a negative or unreadable one as none.
func TestDecodeError(t *testing.T) {
	for _, c := range []struct {
		name, body, retryAfter string
		phrase, msg, text      string
		wait                   time.Duration
	}{
		{"full body", `{"statusCode":429,"error":"Slow Down","message":"budget spent"}`, "2", "Slow Down", "budget spent", "instantly: HTTP 429: budget spent", 2 * time.Second},
		{"no message", `{"error":"Slow Down"}`, "", "Slow Down", "", "instantly: HTTP 429: Slow Down", 0},
		{"not JSON", `<html>`, "-5", "Too Many Requests", "", "instantly: HTTP 429: Too Many Requests", 0},
		{"unreadable Retry-After", `{}`, "soon", "Too Many Requests", "", "instantly: HTTP 429: Too Many Requests", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := &http.Response{StatusCode: 429, Header: http.Header{}}
			if c.retryAfter != "" {
				resp.Header.Set("Retry-After", c.retryAfter)
			}
			e := decodeError(resp, []byte(c.body), Credential{})
			if e.Phrase != c.phrase || e.Message != c.msg || e.Error() != c.text || e.RetryAfter != c.wait {
				t.Fatalf("%+v (%q)", e, e.Error())
			}
		})
	}
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)}}}
	if e := decodeError(resp, nil, Credential{}); e.RetryAfter < 59*time.Minute || e.RetryAfter > time.Hour {
		t.Fatalf("Retry-After as a date: %v", e.RetryAfter)
	}
}

// TestAny2xxIsSuccess: every 2xx status is an answer to decode, not an
// error, up to the last of the class.
func TestAny2xxIsSuccess(t *testing.T) {
	for _, code := range []int{200, 201, 299} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = w.Write([]byte(`{"id":"ws-1","name":"Acme"}`))
		}))
		c, err := New(Options{BaseURL: srv.URL, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		ws, err := c.GetCurrentWorkspace(t.Context(), Credential{APIKey: "k"})
		srv.Close()
		if err != nil || ws.ID != "ws-1" {
			t.Fatalf("HTTP %d: %v, %v", code, ws, err)
		}
	}
	for _, code := range []int{300, 304} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }))
		c, err := New(Options{BaseURL: srv.URL, MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.GetCurrentWorkspace(t.Context(), Credential{APIKey: "k"})
		srv.Close()
		if err == nil {
			t.Fatalf("HTTP %d accepted", code)
		}
	}
}
