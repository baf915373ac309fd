package instantly_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
)

// specPath is the spec the simulator embeds: the contract both sides are held to.
const specPath = "../sim/spec/openapi-v2-subset.json"

// spec holds the contract validators, built once per test binary (~0.3 s each).
// Requests are checked in strict mode (undeclared query parameters and body
// properties fail, even where the schema would allow them); responses are
// not, since audit_metadata and campaign variables are free-form by design.
type spec struct {
	requests  validator.Validator
	responses validator.Validator
	raw       map[string]any
	templates []string // path templates, e.g. /api/v2/custom-tags/{id}
	mu        sync.Mutex
}

var loadSpec = sync.OnceValues(func() (*spec, error) {
	data, err := os.ReadFile(specPath)
	if err != nil {
		return nil, err
	}
	build := func(opts ...config.Option) (validator.Validator, error) {
		doc, err := libopenapi.NewDocument(data)
		if err != nil {
			return nil, err
		}
		v, errs := validator.NewValidator(doc, append([]config.Option{config.WithFormatAssertions()}, opts...)...)
		if len(errs) > 0 {
			return nil, fmt.Errorf("validator: %v", errs)
		}
		return v, nil
	}
	s := &spec{}
	if s.requests, err = build(config.WithStrictMode(), config.WithStrictIgnoredHeadersExtra("x-as-workspace")); err != nil {
		return nil, err
	}
	if s.responses, err = build(); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &s.raw); err != nil {
		return nil, err
	}
	for p := range s.raw["paths"].(map[string]any) {
		s.templates = append(s.templates, p)
	}
	return s, nil
})

func mustSpec(t testing.TB) *spec {
	t.Helper()
	s, err := loadSpec()
	if err != nil {
		t.Fatalf("load spec: %v", err)
	}
	return s
}

// template maps a request path to its spec template; literal segments beat
// parameters, as in the simulator's router.
func (s *spec) template(path string) string {
	segs := strings.Split(path, "/")
	best, bestLit := "", -1
	for _, tpl := range s.templates {
		ts := strings.Split(tpl, "/")
		if len(ts) != len(segs) {
			continue
		}
		lit, ok := 0, true
		for i, seg := range ts {
			if strings.HasPrefix(seg, "{") {
				continue
			}
			if seg != segs[i] {
				ok = false
				break
			}
			lit++
		}
		if ok && lit > bestLit {
			best, bestLit = tpl, lit
		}
	}
	return best
}

// documented reports whether the spec documents status for the operation.
func (s *spec) documented(method, tpl string, status int) bool {
	op, _ := s.raw["paths"].(map[string]any)[tpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	resp, _ := op["responses"].(map[string]any)
	_, ok := resp[fmt.Sprint(status)]
	return ok
}

func (s *spec) validateRequest(r *http.Request) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, errs := s.requests.ValidateHttpRequestSync(r)
	return messages(errs)
}

func (s *spec) validateResponse(r *http.Request, resp *http.Response) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, errs := s.responses.ValidateHttpResponse(r, resp)
	return messages(errs)
}

func messages[E error](errs []E) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

// exchange is one recorded request and its answer.
type exchange struct {
	Method, Path, Template, Query string
	ReqHeader                     http.Header
	ReqBody                       []byte
	Status                        int
	RespHeader                    http.Header
	RespBody                      []byte
}

// contract is an http.RoundTripper that validates every request the client
// sends and every response it receives against the spec, records them, and
// reports violations when the test ends.
type contract struct {
	t    testing.TB
	spec *spec
	next http.RoundTripper

	mu         sync.Mutex
	log        []exchange
	violations []string
}

func newContract(t testing.TB, next http.RoundTripper) *contract {
	c := &contract{t: t, spec: mustSpec(t), next: next}
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.violations {
			t.Errorf("contract: %s", v)
		}
	})
	return c
}

func (c *contract) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	tpl := c.spec.template(req.URL.Path)
	ex := exchange{Method: req.Method, Path: req.URL.Path, Template: tpl, Query: req.URL.RawQuery,
		ReqHeader: req.Header.Clone(), ReqBody: reqBody}
	var problems []string
	if tpl == "" {
		problems = append(problems, "path not in the spec")
	} else {
		problems = append(problems, c.spec.validateRequest(cloneRequest(req, reqBody))...)
	}
	if len(reqBody) == 0 && req.Header.Get("Content-Type") != "" {
		problems = append(problems, "Content-Type sent without a body")
	}

	resp, err := c.next.RoundTrip(req)
	if err != nil {
		c.record(ex, problems)
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err != nil {
		c.record(ex, problems)
		return resp, nil
	}
	ex.Status, ex.RespHeader, ex.RespBody = resp.StatusCode, resp.Header.Clone(), respBody
	if tpl != "" {
		problems = append(problems, c.checkResponse(ex)...)
	}
	c.record(ex, problems)
	return resp, nil
}

// checkResponse validates a documented status against the spec; for the
// statuses the spec leaves out (403, 5xx) it checks Instantly's error shape.
func (c *contract) checkResponse(ex exchange) []string {
	if c.spec.documented(ex.Method, ex.Template, ex.Status) {
		if ex.Method == http.MethodGet && ex.Template == "/api/v2/accounts" && ex.Status == http.StatusOK {
			return c.checkAccountsPage(ex)
		}
		return c.spec.validateResponse(cloneRequestOf(ex), responseOf(ex))
	}
	var body map[string]any
	if err := json.Unmarshal(ex.RespBody, &body); err != nil {
		return []string{fmt.Sprintf("undocumented status %d with a non-JSON body", ex.Status)}
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"error", "message", "statusCode"}) || body["statusCode"] != float64(ex.Status) {
		return []string{fmt.Sprintf("undocumented status %d: body is not Instantly's error shape: %s", ex.Status, ex.RespBody)}
	}
	return nil
}

// checkAccountsPage works around a defect in the spec. GET /accounts
// documents its items as allOf[Account, {tags}], but Account has
// additionalProperties: false, so under JSON Schema no item may carry the
// "tags" that include_tags=true exists to populate. The check validates each
// item without "tags" against the spec, and "tags" itself against the shape
// the spec's second allOf branch gives it.
func (c *contract) checkAccountsPage(ex exchange) []string {
	var page map[string]any
	if err := json.Unmarshal(ex.RespBody, &page); err != nil {
		return []string{"accounts page is not JSON: " + err.Error()}
	}
	var problems []string
	items, _ := page["items"].([]any)
	for i, it := range items {
		item, _ := it.(map[string]any)
		tags, has := item["tags"]
		if !has {
			continue
		}
		delete(item, "tags")
		if tags == nil {
			continue
		}
		list, ok := tags.([]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("items[%d].tags is neither null nor an array", i))
			continue
		}
		for j, tg := range list {
			tag, ok := tg.(map[string]any)
			if !ok {
				problems = append(problems, fmt.Sprintf("items[%d].tags[%d] is not an object", i, j))
				continue
			}
			for k, v := range tag {
				_, isString := v.(string)
				switch {
				case k == "id" || k == "label":
					if !isString {
						problems = append(problems, fmt.Sprintf("items[%d].tags[%d].%s is not a string", i, j, k))
					}
				case k == "description":
					if v != nil && !isString {
						problems = append(problems, fmt.Sprintf("items[%d].tags[%d].description is not a string or null", i, j))
					}
				}
			}
		}
	}
	stripped, _ := json.Marshal(page)
	ex.RespBody = stripped
	return append(problems, c.spec.validateResponse(cloneRequestOf(ex), responseOf(ex))...)
}

func (c *contract) record(ex exchange, problems []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, ex)
	for _, p := range problems {
		c.violations = append(c.violations, fmt.Sprintf("%s %s?%s → %d: %s", ex.Method, ex.Path, ex.Query, ex.Status, p))
	}
}

// exchanges returns what was recorded so far.
func (c *contract) exchanges() []exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// count returns how many requests matched method and path template.
func (c *contract) count(method, tpl string) int {
	n := 0
	for _, ex := range c.exchanges() {
		if ex.Method == method && ex.Template == tpl {
			n++
		}
	}
	return n
}

func cloneRequest(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body = io.NopCloser(bytes.NewReader(body))
	if body == nil {
		r.Body = http.NoBody
	}
	return r
}

func cloneRequestOf(ex exchange) *http.Request {
	r, _ := http.NewRequest(ex.Method, "http://sim"+ex.Path+"?"+ex.Query, bytes.NewReader(ex.ReqBody))
	r.Header = ex.ReqHeader.Clone()
	return r
}

func responseOf(ex exchange) *http.Response {
	return &http.Response{
		StatusCode: ex.Status,
		Header:     ex.RespHeader.Clone(),
		Body:       io.NopCloser(bytes.NewReader(ex.RespBody)),
		Request:    cloneRequestOf(ex),
	}
}
