package fanout

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts fan-out items, unary calls' and durable operations' alike,
// by method and outcome. Both labels are bounded: the method is an RPC name
// (Options.Method), the outcome one of the Outcome values.
type Metrics struct {
	items *prometheus.CounterVec // method, outcome
}

// NewMetrics creates the metrics and registers them on reg (never the
// global registry; nil registers nothing).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{items: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "agencyplane", Subsystem: "fanout", Name: "items_total",
		Help: "Fan-out items (one workspace, or one person in one workspace) that ended, by method and outcome.",
	}, []string{"method", "outcome"})}
	if reg != nil {
		if err := reg.Register(m.items); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// observe counts one item's outcome.
func (e *Engine) observe(ctx context.Context, o Outcome) {
	if e.opts.Metrics == nil {
		return
	}
	method := "unknown"
	if e.opts.Method != nil {
		if m := e.opts.Method(ctx); m != "" {
			method = m
		}
	}
	e.opts.Metrics.items.WithLabelValues(method, o.String()).Inc()
}
