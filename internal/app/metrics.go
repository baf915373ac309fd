package app

import (
	"context"
	"path"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/operations"
)

// metrics are the domain metrics agencyd exports beside the gRPC server's
// and the rate limiter's: upstream requests, fan-out items, operations.
// See deploy/grafana/agencyplane.json for a dashboard of them.
type metrics struct {
	upstream   *instantly.Metrics
	fanout     *fanout.Metrics
	operations *operations.Metrics
}

func newMetrics(cfg *config.Config, reg prometheus.Registerer) (*metrics, error) {
	up, err := instantly.NewMetrics(reg, instantly.MetricsOptions{MaxWorkspaces: cfg.MetricsPerWorkspace})
	if err != nil {
		return nil, err
	}
	fo, err := fanout.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	ops, err := operations.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &metrics{upstream: up, fanout: fo, operations: ops}, nil
}

// itemMethod names the RPC a fan-out item belongs to, for its metric
// label: the unary call being served, or the one that started the
// operation the item is part of.
func itemMethod(ctx context.Context) string {
	if m, ok := grpc.Method(ctx); ok {
		return path.Base(m)
	}
	if m := operations.MethodOf(ctx); m != "" {
		return path.Base(m)
	}
	return "other"
}
