// Package instantly is a typed client for Instantly's API v2: one method per
// endpoint, Instantly's error bodies decoded into *Error, and retries with
// exponential backoff and full jitter for throttling and transient faults,
// bounded by the caller's deadline.
package instantly

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is Instantly's production API.
const DefaultBaseURL = "https://api.instantly.ai"

// maxResponseBytes caps how much of a response body is read, so a broken
// upstream cannot exhaust memory.
const maxResponseBytes = 8 << 20

// Credential is what authenticates one request: a workspace's own API key,
// or an admin workspace's key acting on a sub workspace (AsWorkspace).
type Credential struct {
	APIKey      string
	AsWorkspace string
}

// String keeps the key out of any log or error that formats a Credential.
func (c Credential) String() string {
	if c.AsWorkspace != "" {
		return "Credential{APIKey: <redacted>, AsWorkspace: " + c.AsWorkspace + "}"
	}
	return "Credential{APIKey: <redacted>}"
}

// GoString is String for %#v.
func (c Credential) GoString() string { return c.String() }

// LogValue keeps the key out of slog output.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Options configures a Client. Zero values take the defaults.
type Options struct {
	// BaseURL of the API, without /api/v2. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client with a 30s timeout.
	HTTPClient *http.Client
	// UserAgent sent with every request (Instantly refuses some bare clients).
	UserAgent string
	// MaxAttempts per call, including the first. Default 5.
	MaxAttempts int
	// BaseBackoff is the first retry's backoff ceiling. Default 100ms.
	BaseBackoff time.Duration
	// MaxBackoff caps any single wait. Default 5s.
	MaxBackoff time.Duration
	// Logger for retry decisions (never logs a key). Default slog.Default().
	Logger *slog.Logger
}

// Client calls Instantly. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	hc     *http.Client
	ua     string
	opts   Options
	logger *slog.Logger
}

// New returns a Client.
func New(opts Options) (*Client, error) {
	if opts.BaseURL == "" {
		opts.BaseURL = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(opts.BaseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("instantly: base URL %q must be http(s)://host[:port]", opts.BaseURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "agencyplane/1 (+https://github.com/agencyplane/agencyplane)"
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 5
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 100 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Client{base: base, hc: opts.HTTPClient, ua: opts.UserAgent, opts: opts, logger: opts.Logger}, nil
}

// Error is an error answer from Instantly: its status and its body
// {"statusCode", "error", "message"}.
type Error struct {
	StatusCode int
	Phrase     string
	Message    string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.Phrase
	}
	return fmt.Sprintf("instantly: HTTP %d: %s", e.StatusCode, msg)
}

// Retryable reports whether the same request may succeed later.
func (e *Error) Retryable() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// ErrUnreachable wraps transport failures (connection refused, timeouts,
// unreadable responses) once retries are exhausted.
var ErrUnreachable = errors.New("instantly: unreachable")

// request is one call's shape.
type request struct {
	method string
	path   string // under /api/v2
	query  url.Values
	body   any
	// idempotent requests are retried on 5xx and transport errors too; others
	// only on 429, which Instantly answers before doing anything.
	idempotent bool
}

// do sends req with retries and decodes a 2xx JSON body into out.
func (c *Client) do(ctx context.Context, cred Credential, req request, out any) error {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = json.Marshal(req.body); err != nil {
			return fmt.Errorf("instantly: encode %s %s: %w", req.method, req.path, err)
		}
	}
	var lastErr error
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, cred, req, body, out)
		if err == nil {
			return nil
		}
		lastErr = err
		wait, retry := c.retryDecision(req, err, attempt)
		if !retry {
			return lastErr
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return lastErr // the wait would outlive the caller's deadline
		}
		c.logger.DebugContext(ctx, "instantly retry", "method", req.method, "path", req.path,
			"attempt", attempt, "wait", wait, "error", err.Error())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return lastErr
		case <-t.C:
		}
	}
}

// retryDecision says whether to retry after attempt failed with err, and how
// long to wait: Retry-After when the server sent one, else full jitter over
// an exponentially growing ceiling.
func (c *Client) retryDecision(req request, err error, attempt int) (time.Duration, bool) {
	if attempt >= c.opts.MaxAttempts {
		return 0, false
	}
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr):
		if !apiErr.Retryable() || (apiErr.StatusCode != http.StatusTooManyRequests && !req.idempotent) {
			return 0, false
		}
		if apiErr.RetryAfter > 0 {
			return min(apiErr.RetryAfter, c.opts.MaxBackoff), true
		}
	case errors.Is(err, ErrUnreachable):
		if !req.idempotent {
			return 0, false
		}
	default:
		return 0, false
	}
	ceiling := c.opts.BaseBackoff << min(attempt-1, 16)
	if ceiling > c.opts.MaxBackoff || ceiling <= 0 {
		ceiling = c.opts.MaxBackoff
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), true
}

// once sends a single attempt.
func (c *Client) once(ctx context.Context, cred Credential, req request, body []byte, out any) error {
	u := *c.base
	u.Path += "/api/v2" + req.path
	if len(req.query) > 0 {
		u.RawQuery = req.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	hreq, err := http.NewRequestWithContext(ctx, req.method, u.String(), rd)
	if err != nil {
		return fmt.Errorf("instantly: build request: %w", err)
	}
	hreq.Header.Set("Authorization", "Bearer "+cred.APIKey)
	hreq.Header.Set("Accept", "application/json")
	hreq.Header.Set("User-Agent", c.ua)
	if body != nil {
		// Only with a body: Instantly rejects an empty JSON body.
		hreq.Header.Set("Content-Type", "application/json")
	}
	if cred.AsWorkspace != "" {
		hreq.Header.Set("x-as-workspace", cred.AsWorkspace)
	}
	resp, err := c.hc.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("instantly %s %s: %w", req.method, req.path, context.Cause(ctx))
		}
		return fmt.Errorf("%w: %s %s: %w", ErrUnreachable, req.method, req.path, scrubURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("instantly %s %s: %w", req.method, req.path, context.Cause(ctx))
		}
		return fmt.Errorf("%w: read %s %s: %w", ErrUnreachable, req.method, req.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%w: decode %s %s response: %w", ErrUnreachable, req.method, req.path, err)
	}
	return nil
}

// scrubURLError drops the URL from transport errors: it is harmless today,
// but query strings may one day carry something worth keeping out of logs.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func decodeError(resp *http.Response, data []byte) *Error {
	e := &Error{StatusCode: resp.StatusCode, Phrase: http.StatusText(resp.StatusCode)}
	var body struct {
		StatusCode int    `json:"statusCode"`
		Error      string `json:"error"`
		Message    string `json:"message"`
	}
	if json.Unmarshal(data, &body) == nil {
		if body.Error != "" {
			e.Phrase = body.Error
		}
		e.Message = body.Message
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}
