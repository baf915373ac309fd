// Command agencyd is the agency control plane for Instantly workspaces: a
// gRPC server with a REST gateway, holding client workspaces' credentials.
// `agencyd healthcheck` probes a running agencyd's /readyz (for container
// health checks).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/agencyplane/agencyplane/internal/app"
	"github.com/agencyplane/agencyplane/internal/config"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	if err := run(); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "agencyd:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.Load(os.Args[1:], os.Getenv, os.Stderr)
	if err != nil {
		return err
	}
	logger := app.NewLogger(cfg, os.Stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, logger, os.Stderr)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
