// Command instantly-sim serves the Instantly API v2 simulator (internal/sim) over HTTP, for
// demos, benchmarks and integration tests of anything that talks to Instantly.
//
// Every flag can also be set with an environment variable INSTANTLY_SIM_<FLAG> (for example
// INSTANTLY_SIM_FAULT_RATE=0.05); a flag given on the command line wins.
//
// --fault-rate fails requests before they do anything; --fault-after-rate applies a share of
// the successful writes and then answers 5xx or drops the connection, so the client cannot
// tell whether its write happened. Both are reproducible with --seed.
//
// With --workspaces N it creates N demo workspaces at start, each with a few campaigns and
// email accounts to tag, and prints one "id name key" line per workspace on stdout; logs go to
// stderr as JSON. The simulator's admin API (/_sim/, see internal/sim) seeds anything else:
// members, workspace groups, more campaigns and accounts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "instantly-sim:", err)
		os.Exit(1)
	}
}

type options struct {
	addr       string
	rps, rpm   int
	latency    time.Duration
	faultRate  float64
	faultAfter float64
	seed       int64
	workspaces int
	logLevel   slog.Level
}

var errUsage = errors.New("usage")

// parseOptions reads flags, then INSTANTLY_SIM_* variables for the flags not given.
func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("instantly-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8089", "listen address")
	fs.IntVar(&o.rps, "rps", sim.DefaultRPS, "admitted requests per workspace in any sliding second")
	fs.IntVar(&o.rpm, "rpm", sim.DefaultRPM, "admitted requests per workspace in any sliding minute")
	fs.DurationVar(&o.latency, "latency", 0, "added before handling each API request, e.g. 20ms")
	fs.Float64Var(&o.faultRate, "fault-rate", 0, "share of API requests answered with a random 500/502/503 before anything is done (0..1)")
	fs.Float64Var(&o.faultAfter, "fault-after-rate", 0, "share of successful API writes (POST/PATCH/DELETE) that are applied, then answered\n"+
		"a random 500/502/503/504 or dropped without an answer, half each: an ambiguous failure (0..1)")
	fs.Int64Var(&o.seed, "seed", 0, "seed of the fault RNGs, for reproducible runs")
	fs.IntVar(&o.workspaces, "workspaces", 0, "demo workspaces to create at start, printed as \"id name key\" lines")
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "debug logs every request")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: instantly-sim [flags]\nEach flag falls back to INSTANTLY_SIM_<FLAG> (upper case, - as _).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, errUsage
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if err := applyEnv(fs, getenv); err != nil {
		return o, err
	}
	return o, o.validate()
}

func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v := getenv(name); v != "" && !given[f.Name] {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", name, v, err))
			}
		}
	})
	return errors.Join(errs...)
}

func envName(flagName string) string {
	return "INSTANTLY_SIM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (o options) validate() error {
	switch {
	case o.rps < 0 || o.rpm < 0:
		return errors.New("--rps and --rpm must not be negative (0 means Instantly's default)")
	case o.latency < 0:
		return errors.New("--latency must not be negative")
	case !(o.faultRate >= 0 && o.faultRate <= 1): // also refuses NaN
		return errors.New("--fault-rate must be between 0 and 1")
	case !(o.faultAfter >= 0 && o.faultAfter <= 1):
		return errors.New("--fault-after-rate must be between 0 and 1")
	case o.workspaces < 0:
		return errors.New("--workspaces must not be negative")
	}
	return nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: o.logLevel}))
	s := sim.New(sim.Config{
		RPS: o.rps, RPM: o.rpm, Latency: o.latency, FaultRate: o.faultRate, FaultAfterRate: o.faultAfter,
		Seed: o.seed, Logger: logger,
	})
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	for i := 1; i <= o.workspaces; i++ {
		name := fmt.Sprintf("demo-%d", i)
		id, key := s.CreateWorkspace(name)
		if err := seedDemo(s, id, i); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s %s %s\n", id, name, key)
	}
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	logger.Info("listening", "addr", ln.Addr().String(), "rps", o.rps, "rpm", o.rpm,
		"latency", o.latency, "fault_rate", o.faultRate, "fault_after_rate", o.faultAfter, "seed", o.seed)
	return serve(ctx, srv, ln, logger)
}

// demoResources is how many campaigns and accounts each demo workspace gets.
const demoResources = 3

func seedDemo(s *sim.Server, wsID string, n int) error {
	for j := 1; j <= demoResources; j++ {
		if _, err := s.AddCampaign(wsID, fmt.Sprintf("demo-%d campaign %d", n, j)); err != nil {
			return err
		}
		if _, err := s.AddAccount(wsID, fmt.Sprintf("sender%d@demo-%d.example.com", j, n)); err != nil {
			return err
		}
	}
	return nil
}

// serve runs srv until ctx ends, then lets in-flight requests finish.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, logger *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	logger.Info("stopped")
	return nil
}
