package operations

import (
	"context"
	"path"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operations' Prometheus metrics, counted by the replica
// that did the work: operations created and ended (by method and end
// state), and the entries this replica is working on. Labels are bounded:
// the method is the short RPC name, the state one of succeeded, failed
// (some item failed), cancelled.
type Metrics struct {
	created *prometheus.CounterVec // method
	ended   *prometheus.CounterVec // method, state
	entries prometheus.Gauge
}

// End states of agencyplane_operations_ended_total.
const (
	stateSucceeded = "succeeded"
	stateFailed    = "failed"
	stateCancelled = "cancelled"
)

// NewMetrics creates the metrics and registers them on reg (never the
// global registry; nil registers nothing).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "operations", Name: "created_total",
			Help: "Durable operations created on this replica, by method.",
		}, []string{"method"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "agencyplane", Subsystem: "operations", Name: "ended_total",
			Help: "Durable operations whose last item this replica recorded, by method and state (succeeded, failed: some item failed, cancelled).",
		}, []string{"method", "state"}),
		entries: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "agencyplane", Subsystem: "operations", Name: "entries_in_progress",
			Help: "Queue entries (one workspace's items of an operation) this replica is working on.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.created, m.ended, m.entries} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *Metrics) onCreate(method string) {
	if m != nil {
		m.created.WithLabelValues(path.Base(method)).Inc()
	}
}

func (m *Metrics) onEnd(method string, st *Status) {
	if m == nil {
		return
	}
	state := stateSucceeded
	switch {
	case st.CancelRequested:
		state = stateCancelled
	case st.Failed > 0:
		state = stateFailed
	}
	m.ended.WithLabelValues(path.Base(method), state).Inc()
}

func (m *Metrics) entry(delta float64) {
	if m != nil {
		m.entries.Add(delta)
	}
}

type methodKey struct{}

// MethodOf is the RPC that started the operation whose item ctx belongs to
// ("/agency.v1.FanoutService/OnboardMembers"), or "" outside an executor.
func MethodOf(ctx context.Context) string {
	m, _ := ctx.Value(methodKey{}).(string)
	return m
}
