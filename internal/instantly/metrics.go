package instantly

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the client's Prometheus metrics. Every label is bounded: an
// endpoint is the route template ("GET /api/v2/workspace-members/{id}"),
// never a path with an id in it; per-workspace series exist only when
// MetricsOptions.MaxWorkspaces enables them, for that many workspaces.
type Metrics struct {
	requests  *prometheus.CounterVec   // endpoint, code_class
	duration  *prometheus.HistogramVec // endpoint
	throttled *prometheus.CounterVec   // endpoint
	retries   *prometheus.CounterVec   // endpoint, reason

	workspaces *prometheus.CounterVec // workspace, code_class; nil when off
	maxWS      int
	mu         sync.Mutex
	seen       map[string]bool // workspaces with their own series
}

// MetricsOptions tunes NewMetrics.
type MetricsOptions struct {
	// MaxWorkspaces > 0 adds agencyplane_upstream_workspace_requests_total
	// {workspace, code_class} (workspace: the Instantly workspace id whose
	// budget the request spends) for the first MaxWorkspaces workspaces
	// seen; requests of any other workspace count under workspace="_other".
	// 0 adds nothing: hundreds of workspaces times classes is a cardinality
	// an operator opts into.
	MaxWorkspaces int
}

// Code classes of agencyplane_upstream_requests_total: the answer's status
// class, or "error" when no answer came (connection refused, reset, timed
// out, cancelled).
const (
	classError = "error"
	otherWS    = "_other"
)

// Retry reasons of agencyplane_upstream_retries_total.
const (
	retryThrottled   = "throttled"    // 429
	retryServerError = "server_error" // 500, 502, 503, 504
	retryTransport   = "transport"    // no answer (connection, timeout)
)

// NewMetrics creates the metrics and registers them on reg (never the
// global registry; nil registers nothing).
func NewMetrics(reg prometheus.Registerer, opts MetricsOptions) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "upstream", Name: "requests_total",
			Help: "Requests sent to Instantly (every attempt, retries included), by endpoint (route template) and answer status class (2xx, 4xx, 5xx, or error when no answer came).",
		}, []string{"endpoint", "code_class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "agencyplane", Subsystem: "upstream", Name: "request_duration_seconds",
			Help:    "Time from sending a request to Instantly to its answer's headers (the rate limiter's wait is not in it), by endpoint.",
			Buckets: []float64{.01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "upstream", Name: "throttled_total",
			Help: "429 answers from Instantly (someone spent the workspace's budget), by endpoint.",
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "upstream", Name: "retries_total",
			Help: "Requests to Instantly repeated after a failed attempt, by endpoint and reason (throttled, server_error, transport).",
		}, []string{"endpoint", "reason"}),
	}
	collectors := []prometheus.Collector{m.requests, m.duration, m.throttled, m.retries}
	if opts.MaxWorkspaces > 0 {
		m.maxWS = opts.MaxWorkspaces
		m.seen = map[string]bool{}
		m.workspaces = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "upstream", Name: "workspace_requests_total",
			Help: "Requests sent to Instantly by workspace (Instantly workspace id; the first --metrics-per-workspace workspaces, the rest as _other) and answer status class.",
		}, []string{"workspace", "code_class"})
		collectors = append(collectors, m.workspaces)
	}
	if reg != nil {
		for _, c := range collectors {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// observe records one attempt's answer: status 0 means none came.
func (m *Metrics) observe(method, path string, budget []string, status int, took time.Duration) {
	if m == nil {
		return
	}
	ep := Endpoint(method, path)
	class := classError
	if status > 0 {
		class = strconv.Itoa(status/100) + "xx"
		m.duration.WithLabelValues(ep).Observe(took.Seconds())
	}
	m.requests.WithLabelValues(ep, class).Inc()
	if status == http.StatusTooManyRequests {
		m.throttled.WithLabelValues(ep).Inc()
	}
	if m.workspaces != nil && len(budget) > 0 {
		m.workspaces.WithLabelValues(m.workspaceLabel(budget[0]), class).Inc()
	}
}

// workspaceLabel is ws while the cap allows it its own series, else _other.
func (m *Metrics) workspaceLabel(ws string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[ws] {
		return ws
	}
	if len(m.seen) < m.maxWS {
		m.seen[ws] = true
		return ws
	}
	return otherWS
}

func (m *Metrics) retry(method, path, reason string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(Endpoint(method, path), reason).Inc()
}

// routes are the path templates under /api/v2 the client calls (those of
// Instantly's spec): a concrete path is labelled with the template it
// matches, so an id never becomes a label value. Literal segments win over
// {id} (…/admin before …/{id}).
var routes = [][]string{
	{"accounts"},
	{"api-keys"},
	{"api-keys", "{id}"},
	{"audit-logs"},
	{"campaigns"},
	{"custom-tag-mappings"},
	{"custom-tags"},
	{"custom-tags", "toggle-resource"},
	{"custom-tags", "{id}"},
	{"workspace-group-members"},
	{"workspace-group-members", "admin"},
	{"workspace-group-members", "{id}"},
	{"workspace-members"},
	{"workspace-members", "{id}"},
	{"workspaces", "current"},
	{"workspaces", "current", "change-owner"},
}

// Endpoint is the metrics label of a request: its method and the route
// template its path (under /api/v2, escaped) matches, e.g.
// "DELETE /api/v2/api-keys/{id}"; a path no route matches is
// "<METHOD> other", so the label set stays bounded whatever is called.
func Endpoint(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, r := range routes {
		if matchRoute(r, segs) {
			return method + " /api/v2/" + strings.Join(r, "/")
		}
	}
	return method + " other"
}

func matchRoute(route, segs []string) bool {
	if len(route) != len(segs) {
		return false
	}
	for i, s := range route {
		if s != segs[i] && s != "{id}" {
			return false
		}
	}
	return true
}
