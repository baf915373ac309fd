package ratelimit

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the limiter's Prometheus metrics. Labels are bounded enums,
// never a bucket or workspace: hundreds of workspaces times outcomes would be
// unbounded cardinality, and per-workspace views belong in logs.
type Metrics struct {
	decisions *prometheus.CounterVec   // outcome: allowed, denied
	errors    *prometheus.CounterVec   // kind: timeout, unavailable, invalid, canceled, other
	wait      *prometheus.HistogramVec // outcome: allowed, deadline, canceled, error
}

// NewMetrics creates the metrics and registers them on reg (never the global
// registry; nil registers nothing, for tests).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "ratelimit", Name: "decisions_total",
			Help: "Rate-limit decisions the backend made, by outcome.",
		}, []string{"outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "ratelimit", Name: "errors_total",
			Help: "Allow calls that failed (and so were not allowed: fail closed), by kind.",
		}, []string{"kind"}),
		wait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "agencyplane", Subsystem: "ratelimit", Name: "wait_seconds",
			Help:    "Time Wait blocked before a request was allowed or it gave up, by outcome.",
			Buckets: []float64{0, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"outcome"}),
	}
	// Touch every label value so each series exists (at 0) from the start.
	for _, o := range []string{"allowed", "denied"} {
		m.decisions.WithLabelValues(o)
	}
	for _, k := range []string{"timeout", "unavailable", "invalid", "canceled", "other"} {
		m.errors.WithLabelValues(k)
	}
	for _, o := range []string{"allowed", "deadline", "canceled", "error"} {
		m.wait.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.decisions, m.errors, m.wait} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// Instrument returns l counting its decisions and errors in m; Wait on the
// returned limiter also records its waits.
func Instrument(l Limiter, m *Metrics) Limiter {
	return &instrumented{l: l, m: m}
}

type instrumented struct {
	l Limiter
	m *Metrics
}

func (i *instrumented) Allow(ctx context.Context, buckets []string, n int) (Result, error) {
	res, err := i.l.Allow(ctx, buckets, n)
	switch {
	case err != nil:
		i.m.errors.WithLabelValues(errorKind(err)).Inc()
	case res.Allowed:
		i.m.decisions.WithLabelValues("allowed").Inc()
	default:
		i.m.decisions.WithLabelValues("denied").Inc()
	}
	return res, err
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

func (m *Metrics) observeWait(d time.Duration, err error) {
	outcome := "error"
	switch {
	case err == nil:
		outcome = "allowed"
	case errors.Is(err, context.DeadlineExceeded):
		outcome = "deadline"
	case errors.Is(err, context.Canceled):
		outcome = "canceled"
	}
	m.wait.WithLabelValues(outcome).Observe(d.Seconds())
}
