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
	"net"
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
	// Budget names the rate budgets a request with this credential spends
	// (Instantly workspace ids: the target, and the admin workspace when
	// acting through x-as-workspace). Empty: not budgeted (e.g. checking a
	// key before its workspace is known).
	Budget []string
}

// Budget is the shared rate budget the client waits on before every
// attempt (ratelimit.Gate).
type Budget interface {
	// Acquire blocks until every bucket admits one request, or fails
	// (closed) when the budget cannot be checked.
	Acquire(ctx context.Context, buckets []string) error
	// Throttled reports that upstream answered 429 anyway.
	Throttled(buckets []string, retryAfter time.Duration)
	// Succeeded reports an answer that was not a 429 and its latency: from
	// sending the request (after Acquire) to the answer, so the limiter's
	// wait is not in it. It sizes the per-workspace concurrency.
	Succeeded(buckets []string, latency time.Duration)
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

// MaxIdleConnsPerHost is how many idle connections to Instantly the
// default client keeps for reuse.
const MaxIdleConnsPerHost = 1024

// Options configures a Client. Zero values take the defaults.
type Options struct {
	// BaseURL of the API, without /api/v2. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default: a client with a 30s timeout,
	// which bounds each attempt (a timed-out attempt may be retried), whose
	// transport keeps up to MaxIdleConnsPerHost connections to Instantly.
	HTTPClient *http.Client
	// UserAgent sent with every request (Instantly refuses some bare clients).
	UserAgent string
	// MaxAttempts per call, including the first. Default 5.
	MaxAttempts int
	// BaseBackoff is the first retry's backoff ceiling. Default 100ms.
	BaseBackoff time.Duration
	// MaxBackoff caps any single jittered wait. Default 5s.
	MaxBackoff time.Duration
	// MaxRetryAfter is the longest server-requested Retry-After the client
	// will sit out; a longer one ends the call with the *Error (RetryAfter
	// set) so the caller can reschedule. Default 60s.
	MaxRetryAfter time.Duration
	// Budget, when set, is waited on before every attempt of a credential
	// that names budgets.
	Budget Budget
	// Logger for retry decisions (never logs a key). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock latencies reported to Budget are measured with.
	// Default time.Now.
	Now func() time.Time
	// Metrics, when set, counts every attempt's answer, 429s and retries
	// (NewMetrics).
	Metrics *Metrics
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
		// Every request goes to one host, many at once (a workspace's
		// in-flight limit times the workspaces): keep their connections,
		// instead of Go's default 2 idle per host and a new (TLS)
		// connection for every other request.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = MaxIdleConnsPerHost
		tr.MaxIdleConns = MaxIdleConnsPerHost
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
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
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
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

// Retryable reports whether the same request may succeed later. Whether it
// is actually repeated also depends on the request (see the package doc).
func (e *Error) Retryable() bool {
	switch e.StatusCode {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// ErrUnreachable wraps transport failures (connection refused, timeouts,
// unreadable or undecodable responses) once retries are exhausted.
var ErrUnreachable = errors.New("instantly: unreachable")

// request is one call's shape.
type request struct {
	method string
	path   string // under /api/v2, path parameters already escaped (see pathf)
	query  url.Values
	body   any
	// atMostOnce requests are never repeated once they may have reached
	// Instantly (5xx, timeouts): only 429s and failures to connect are
	// retried. Set for POST /api-keys, whose repeat would mint a second key.
	atMostOnce bool
}

// transportError is a failure with no usable answer from Instantly. It
// unwraps to ErrUnreachable so callers see one category.
type transportError struct {
	err error
	// notSent: the request never left (dial, DNS), so repeating is safe for
	// any request.
	notSent bool
	// final: the server answered 2xx but the body could not be decoded;
	// it has acted, so the call is not repeated.
	final bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

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
		err := c.attempt(ctx, cred, req, body, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil && lastErr != nil {
			// The deadline cut a retry short: keep what went wrong before it.
			return fmt.Errorf("%w (after: %w)", err, lastErr)
		}
		lastErr = err
		_, hasDeadline := ctx.Deadline()
		wait, retry := c.retryDecision(req, err, attempt, hasDeadline)
		if !retry {
			return lastErr
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return lastErr // the wait would outlive the caller's deadline
		}
		c.logger.DebugContext(ctx, "instantly retry", "method", req.method, "path", req.path,
			"attempt", attempt, "wait", wait, "error", err.Error())
		c.opts.Metrics.retry(req.method, req.path, retryReason(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (after: %w)", context.Cause(ctx), lastErr)
		case <-t.C:
		}
	}
}

// retryReason names why a failed attempt is repeated, for metrics.
func retryReason(err error) string {
	var apiErr *Error
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
		return retryThrottled
	case errors.As(err, &apiErr):
		return retryServerError
	}
	return retryTransport
}

// maxThrottledAttempts bounds 429 retries even under a long deadline.
const maxThrottledAttempts = 50

// attempt waits for the rate budget, sends once, and tells the budget how
// upstream answered.
func (c *Client) attempt(ctx context.Context, cred Credential, req request, body []byte, out any) error {
	if c.opts.Budget != nil && len(cred.Budget) > 0 {
		if err := c.opts.Budget.Acquire(ctx, cred.Budget); err != nil {
			return fmt.Errorf("instantly: rate budget: %w", err)
		}
	}
	sent := c.opts.Now()
	err := c.once(ctx, cred, req, body, out)
	if c.opts.Budget != nil && len(cred.Budget) > 0 {
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests {
			c.opts.Budget.Throttled(cred.Budget, apiErr.RetryAfter)
		} else if err == nil || errors.As(err, &apiErr) {
			c.opts.Budget.Succeeded(cred.Budget, c.opts.Now().Sub(sent))
		}
	}
	return err
}

// retryDecision says whether to retry after attempt failed with err, and how
// long to wait: Retry-After when the server sent one, else full jitter over
// an exponentially growing ceiling. The rules are in the package doc.
func (c *Client) retryDecision(req request, err error, attempt int, hasDeadline bool) (time.Duration, bool) {
	var apiErr *Error
	// A 429 is retried for as long as the caller's deadline allows: the
	// budget frees up with time. Everything else stops at MaxAttempts.
	throttled := errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests
	if attempt >= c.opts.MaxAttempts && !(throttled && hasDeadline && attempt < maxThrottledAttempts) {
		return 0, false
	}
	var te *transportError
	switch {
	case errors.As(err, &apiErr):
		switch {
		case apiErr.StatusCode == http.StatusTooManyRequests:
		case apiErr.Retryable() && !req.atMostOnce:
		default:
			return 0, false
		}
		if apiErr.RetryAfter > 0 {
			if apiErr.RetryAfter > c.opts.MaxRetryAfter {
				return 0, false
			}
			return apiErr.RetryAfter, true
		}
	case errors.As(err, &te):
		if te.final || (req.atMostOnce && !te.notSent) {
			return 0, false
		}
	default:
		return 0, false // context ended, or a bug building the request
	}
	ceiling := min(c.opts.BaseBackoff, c.opts.MaxBackoff)
	for range attempt - 1 {
		ceiling = min(ceiling*2, c.opts.MaxBackoff)
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), true
}

// once sends a single attempt.
func (c *Client) once(ctx context.Context, cred Credential, req request, body []byte, out any) error {
	u := *c.base
	u.RawPath = strings.TrimRight(c.base.EscapedPath(), "/") + "/api/v2" + req.path
	p, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return fmt.Errorf("instantly: bad path %q: %w", req.path, err)
	}
	u.Path = p
	u.RawQuery = req.query.Encode() // "" for none
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
	sent := time.Now()
	resp, err := c.hc.Do(hreq)
	if err != nil {
		c.opts.Metrics.observe(req.method, req.path, cred.Budget, 0, 0)
		if ctx.Err() != nil {
			return fmt.Errorf("instantly %s %s: %w", req.method, req.path, context.Cause(ctx))
		}
		err = scrubURLError(err)
		return &transportError{
			err:     fmt.Errorf("%w: %s %s: %w", ErrUnreachable, req.method, req.path, err),
			notSent: neverSent(err),
		}
	}
	defer resp.Body.Close()
	c.opts.Metrics.observe(req.method, req.path, cred.Budget, resp.StatusCode, time.Since(sent))
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("instantly %s %s: %w", req.method, req.path, context.Cause(ctx))
		}
		return &transportError{err: fmt.Errorf("%w: read %s %s: %w", ErrUnreachable, req.method, req.path, err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, data, cred)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return &transportError{
			err:   fmt.Errorf("%w: decode %s %s response: %w", ErrUnreachable, req.method, req.path, err),
			final: true,
		}
	}
	return nil
}

// neverSent reports whether a transport error happened before any byte of
// the request could reach the server.
func neverSent(err error) bool {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return true
	}
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
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

func decodeError(resp *http.Response, data []byte, cred Credential) *Error {
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
	if cred.APIKey != "" {
		// An upstream that echoes the bad key must not put it in our errors.
		e.Phrase = strings.ReplaceAll(e.Phrase, cred.APIKey, "<redacted>")
		e.Message = strings.ReplaceAll(e.Message, cred.APIKey, "<redacted>")
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil {
			e.RetryAfter = time.Duration(max(secs, 0)) * time.Second
		} else if t, err := http.ParseTime(ra); err == nil {
			e.RetryAfter = max(time.Until(t), 0)
		}
	}
	return e
}

// pathf builds a request path from a format whose %s verbs are path
// parameters, escaping each; an empty one is refused rather than sent as a
// request for the collection.
func pathf(format string, ids ...string) (string, error) {
	args := make([]any, len(ids))
	for i, id := range ids {
		if id == "" {
			return "", errors.New("instantly: empty id")
		}
		args[i] = url.PathEscape(id)
	}
	return fmt.Sprintf(format, args...), nil
}

// call runs req and returns the decoded body; the common tail of every method.
func call[T any](ctx context.Context, c *Client, cred Credential, req request) (*T, error) {
	var out T
	if err := c.do(ctx, cred, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
