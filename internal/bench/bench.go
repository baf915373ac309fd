// Package bench measures the control plane against the physical limit: the
// simulator's per-workspace rate limits. It starts Redis, the simulator
// with many workspaces and scaled-down limits, and several agencyd replicas
// sharing that Redis, runs fan-outs spread across the replicas, and
// compares the measured time with the time the limits make unavoidable.
// The same workload also runs the two ways agencies do it today: a
// sequential script, and unbounded parallel calls with no limiter.
package bench

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/app"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Config is one benchmark run.
type Config struct {
	Workspaces int     // client workspaces (default 200)
	Replicas   int     // agencyd replicas sharing Redis (default 3)
	RPS, RPM   int     // the simulator's per-workspace limits (default 10, 600)
	Headroom   float64 // share of the budget agencyd may use (default 0.8)
	FanOuts    int     // EnsureTagEverywhere calls, each over every workspace (default 40)
	Parallel   int     // fan-out calls in flight at once (default 3 × replicas)
	RedisURL   string  // required
	Baselines  bool    // also run the sequential and unbounded baselines
	Logger     *slog.Logger

	// Latency is what the simulator adds to every request (default 0):
	// the per-workspace concurrency follows it.
	Latency time.Duration
}

func (c *Config) defaults() {
	if c.Workspaces <= 0 {
		c.Workspaces = 200
	}
	if c.Replicas <= 0 {
		c.Replicas = 3
	}
	if c.RPS <= 0 {
		c.RPS = 10
	}
	if c.RPM <= 0 {
		c.RPM = 600
	}
	if c.Headroom <= 0 {
		c.Headroom = 0.8
	}
	if c.FanOuts <= 0 {
		c.FanOuts = 40
	}
	if c.Parallel <= 0 {
		c.Parallel = 3 * c.Replicas
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Report is one way of doing the workload.
type Report struct {
	Name        string
	Ops         int64         // workspace × label operations attempted
	Calls       int64         // upstream requests issued
	Measured    time.Duration // wall time
	Ideal       time.Duration // unavoidable under the limits at the headroom
	Efficiency  float64       // Ideal / Measured
	Upstream429 int64
	Failed      int64 // operations that did not succeed (dropped, for the baselines)
	// The most requests any workspace admitted in a sliding 1 s / 60 s window.
	MaxWindow1s, MaxWindow60s int
	// Failures counts agencyd's failed workspace results by outcome, code,
	// reason and message, so a failed run says why.
	Failures map[string]int
}

// String is the report line. Efficiency is only meaningful when every
// operation succeeded (the baselines drop most of theirs), so the baselines
// report what they lost instead.
func (r Report) String() string {
	head := fmt.Sprintf("%s: ops=%d failed=%d calls=%d measured=%.2fs max_1s=%d max_60s=%d",
		r.Name, r.Ops, r.Failed, r.Calls, r.Measured.Seconds(), r.MaxWindow1s, r.MaxWindow60s)
	if r.Failed > 0 {
		return fmt.Sprintf("%s dropped=%.0f%% upstream_429=%d", head, 100*float64(r.Failed)/float64(max(r.Ops, 1)), r.Upstream429)
	}
	return fmt.Sprintf("%s ideal=%.2fs efficiency=%.3f upstream_429=%d", head, r.Ideal.Seconds(), r.Efficiency, r.Upstream429)
}

// FailureLines lists Failures, most frequent first.
func (r Report) FailureLines() []string {
	keys := slices.SortedFunc(maps.Keys(r.Failures), func(a, b string) int { return cmp.Or(r.Failures[b]-r.Failures[a], strings.Compare(a, b)) })
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("  %d× %s", r.Failures[k], k))
	}
	return out
}

const token = "bench-admin-token-0123456789"

type world struct {
	cfg      Config
	sim      *sim.Server
	simURL   string
	keys     map[string]string // instantly id → key
	ids      []string
	replicas []*grpc.ClientConn
	// args are extra agencyd flags for every replica; httpAddrs their
	// HTTP listeners, in replica order.
	args      []string
	httpAddrs []string
}

// Run runs the benchmark and returns its reports: agencyd first, then the
// baselines when asked.
func Run(ctx context.Context, cfg Config) ([]Report, error) {
	cfg.defaults()
	if cfg.RedisURL == "" {
		return nil, errors.New("bench: a Redis URL is required")
	}
	w := &world{cfg: cfg, keys: map[string]string{}}
	stopSim, err := w.serveSim(sim.Config{RPS: cfg.RPS, RPM: cfg.RPM, Latency: cfg.Latency})
	if err != nil {
		return nil, err
	}
	defer stopSim()
	for i := range cfg.Workspaces {
		id, key := w.sim.CreateWorkspace(fmt.Sprintf("client-%03d", i))
		w.keys[id], w.ids = key, append(w.ids, id)
	}
	stop, err := w.startReplicas(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	if err := w.register(ctx); err != nil {
		return nil, err
	}
	reports := []Report{}
	r, err := w.agencyd(ctx)
	if err != nil {
		return nil, err
	}
	reports = append(reports, r)
	if cfg.Baselines {
		// Let the minute windows drain a little between phases; the
		// baselines measure how lossy they are, not their speed alone.
		time.Sleep(time.Second)
		reports = append(reports, w.sequential(ctx))
		time.Sleep(time.Second)
		reports = append(reports, w.unbounded(ctx))
	}
	return reports, nil
}

// serveSim serves a simulator configured so on a loopback port (w.sim,
// w.simURL) until the returned function is called.
func (w *world) serveSim(cfg sim.Config) (func(), error) {
	w.sim = sim.New(cfg)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: w.sim, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	w.simURL = "http://" + lis.Addr().String()
	return func() { _ = hs.Close() }, nil
}

// startReplicas starts cfg.Replicas agencyd assemblies on one Redis.
func (w *world) startReplicas(ctx context.Context) (func(), error) {
	key, err := vault.GenerateKey()
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	stop := func() {
		for _, c := range w.replicas {
			_ = c.Close()
		}
		cancel()
		wg.Wait()
	}
	prefix := fmt.Sprintf("bench:%d:", time.Now().UnixNano())
	for range w.cfg.Replicas {
		env := map[string]string{"AGENCY_BOOTSTRAP_TOKEN": token, "AGENCY_MASTER_KEY": base64.StdEncoding.EncodeToString(key)}
		c, err := config.Load(append([]string{"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--instantly-url", w.simURL,
			"--redis-url", w.cfg.RedisURL, "--redis-prefix", prefix,
			"--instantly-rps", strconv.Itoa(w.cfg.RPS), "--instantly-rpm", strconv.Itoa(w.cfg.RPM),
			"--rate-headroom", strconv.FormatFloat(w.cfg.Headroom, 'f', -1, 64),
			"--fanout-concurrency", "256", "--log-level", "error"}, w.args...),
			func(k string) string { return env[k] }, io.Discard)
		if err != nil {
			stop()
			return nil, err
		}
		a, err := app.New(ctx, c, w.cfg.Logger, io.Discard)
		if err != nil {
			stop()
			return nil, err
		}
		wg.Go(func() { _ = a.Run(runCtx) })
		w.httpAddrs = append(w.httpAddrs, a.Server.HTTPAddr())
		conn, err := grpc.NewClient(a.Server.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			stop()
			return nil, err
		}
		w.replicas = append(w.replicas, conn)
	}
	return stop, nil
}

func authed(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

func (w *world) register(ctx context.Context) error {
	ws := agencyv1.NewWorkspaceServiceClient(w.replicas[0])
	for i, id := range w.ids {
		key := w.keys[id]
		if _, err := ws.CreateWorkspace(authed(ctx), &agencyv1.CreateWorkspaceRequest{WorkspaceId: fmt.Sprintf("client-%03d", i),
			Workspace: &agencyv1.Workspace{DisplayName: id, ApiKey: &key, Labels: map[string]string{"bench": "yes"}}}); err != nil {
			return fmt.Errorf("register %s: %w", id, err)
		}
	}
	return nil
}

// agencyd runs cfg.FanOuts EnsureTagEverywhere calls over every workspace,
// spread round-robin across the replicas, cfg.Parallel at a time.
func (w *world) agencyd(ctx context.Context) (Report, error) {
	w.sim.ResetStats()
	var failed atomic.Int64
	var firstErr error
	var mu sync.Mutex
	reasons := map[string]int{}
	sem := make(chan struct{}, w.cfg.Parallel)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range w.cfg.FanOuts {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := agencyv1.NewFanoutServiceClient(w.replicas[i%len(w.replicas)])
			cctx, cancel := context.WithTimeout(authed(ctx), 5*time.Minute)
			defer cancel()
			resp, err := c.EnsureTagEverywhere(cctx, &agencyv1.EnsureTagEverywhereRequest{
				Selector: &agencyv1.WorkspaceSelector{LabelSelector: "bench=yes"}, Label: fmt.Sprintf("bench-%03d", i)})
			if err != nil {
				mu.Lock()
				firstErr = cmpErr(firstErr, err)
				mu.Unlock()
				failed.Add(int64(w.cfg.Workspaces))
				return
			}
			failed.Add(int64(resp.GetSummary().GetTotal() - resp.GetSummary().GetSucceeded() - resp.GetSummary().GetAlreadyDone()))
			mu.Lock()
			for _, res := range resp.GetResults() {
				if o := res.GetOutcome(); o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED ||
					o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_TIMED_OUT {
					reasons[failureKey(res)]++
				}
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	r := w.report("agencyd", time.Since(start), failed.Load())
	r.Failures = reasons
	if firstErr != nil {
		return r, fmt.Errorf("bench: a fan-out failed: %w", firstErr)
	}
	return r, nil
}

// failureKey names why a workspace failed: outcome, code, reason, message.
func failureKey(res *agencyv1.WorkspaceResult) string {
	key := strings.TrimPrefix(res.GetOutcome().String(), "FANOUT_OUTCOME_")
	if st := res.GetStatus(); st != nil {
		key += " " + codes.Code(st.GetCode()).String()
		for _, d := range st.GetDetails() {
			var info errdetails.ErrorInfo
			if d.MessageIs(&info) && d.UnmarshalTo(&info) == nil {
				key += "/" + info.GetReason()
			}
		}
		key += ": " + st.GetMessage()
	}
	return key
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// workload is the same upstream work done by hand: per workspace and label,
// look the tag up, then create it.
func (w *world) op(ctx context.Context, c *instantly.Client, id, label string) error {
	cred := instantly.Credential{APIKey: w.keys[id]}
	if _, err := c.ListCustomTags(ctx, cred, instantly.ListCustomTagsParams{Search: label}); err != nil {
		return err
	}
	_, err := c.CreateCustomTag(ctx, cred, instantly.CreateCustomTagRequest{Label: label})
	return err
}

// sequential is the seed script: one call after another, no limiter, and a
// failure is logged and dropped.
func (w *world) sequential(ctx context.Context) Report {
	w.sim.ResetStats()
	c, _ := instantly.New(instantly.Options{BaseURL: w.simURL, MaxAttempts: 1, Logger: slog.New(slog.DiscardHandler)})
	var failed int64
	start := time.Now()
	for _, id := range w.ids {
		for i := range w.cfg.FanOuts {
			if err := w.op(ctx, c, id, fmt.Sprintf("seq-%03d", i)); err != nil {
				failed++
			}
		}
	}
	return w.report("sequential", time.Since(start), failed)
}

// unbounded fires every operation at once with no limiter.
func (w *world) unbounded(ctx context.Context) Report {
	w.sim.ResetStats()
	tr := &http.Transport{MaxConnsPerHost: 512, MaxIdleConnsPerHost: 512}
	defer tr.CloseIdleConnections()
	c, _ := instantly.New(instantly.Options{BaseURL: w.simURL, MaxAttempts: 1, HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute},
		Logger: slog.New(slog.DiscardHandler)})
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, id := range w.ids {
		for i := range w.cfg.FanOuts {
			wg.Go(func() {
				if err := w.op(ctx, c, id, fmt.Sprintf("par-%03d", i)); err != nil {
					failed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	return w.report("unbounded", time.Since(start), failed.Load())
}

// report reads the simulator's counters. The unavoidable time of a
// workspace that admitted n requests is (n-1) emission intervals of the
// tighter window at the headroom (the first request goes at once); the run's
// ideal is the largest over workspaces.
func (w *world) report(name string, measured time.Duration, failed int64) Report {
	r := Report{Name: name, Ops: int64(w.cfg.Workspaces * w.cfg.FanOuts), Measured: measured, Failed: failed}
	// The limiter's own emission intervals: what agencyd spends, exactly.
	limits := ratelimit.Scaled(w.cfg.RPS, w.cfg.RPM, w.cfg.Headroom)
	perSec, _ := limits.PerSecond.GCRA()
	perMin, _ := limits.PerMinute.GCRA()
	interval := max(perSec, perMin)
	for _, s := range w.sim.Stats() {
		r.Calls += s.Requests
		r.Upstream429 += s.RateLimited
		r.MaxWindow1s = max(r.MaxWindow1s, s.MaxAdmitted1s)
		r.MaxWindow60s = max(r.MaxWindow60s, s.MaxAdmitted60s)
		if s.Admitted > 1 {
			r.Ideal = max(r.Ideal, time.Duration(s.Admitted-1)*interval)
		}
	}
	if measured > 0 {
		r.Efficiency = r.Ideal.Seconds() / measured.Seconds()
	}
	return r
}
