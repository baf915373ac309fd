package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/redis/go-redis/v9"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// OnboardConfig is one onboarding run: one OnboardMembers operation of
// People people into Workspaces workspaces, on Replicas replicas sharing
// Redis, against the simulator at Instantly's real limits with Latency.
type OnboardConfig struct {
	Workspaces int           // default 100
	People     int           // default 10
	Replicas   int           // default 3
	Latency    time.Duration // default 150ms
	RPS, RPM   int           // default 100, 6000 (Instantly's)
	Headroom   float64       // default 0.8
	RedisURL   string        // required
}

func (c *OnboardConfig) defaults() {
	if c.Workspaces <= 0 {
		c.Workspaces = 100
	}
	if c.People <= 0 {
		c.People = 10
	}
	if c.Replicas <= 0 {
		c.Replicas = 3
	}
	if c.Latency <= 0 {
		c.Latency = 150 * time.Millisecond
	}
	if c.RPS <= 0 {
		c.RPS = ratelimit.InstantlyPerSecond
	}
	if c.RPM <= 0 {
		c.RPM = ratelimit.InstantlyPerMinute
	}
	if c.Headroom <= 0 {
		c.Headroom = ratelimit.DefaultHeadroom
	}
}

// OnboardReport is the run's line.
type OnboardReport struct {
	Items       int64
	Measured    time.Duration // OnboardMembers called → operation done
	Bound       time.Duration // what the limits and one chain of round trips make unavoidable
	Ratio       float64       // Measured / Bound: 1 is perfect
	Upstream429 int64
	Duplicates  int64 // creates that hit something already there
	Failed      int64 // items that failed
	// CPU is the CPU time of this process (replicas and simulator) and of
	// Redis, ÷ (wall time × cores), during the run: near 1, the machine
	// binds, not the design.
	CPU float64
}

func (r OnboardReport) String() string {
	return fmt.Sprintf("onboard: items=%d measured=%.2fs bound=%.2fs ratio=%.2f upstream_429=%d duplicates=%d failed=%d cpu=%.2f",
		r.Items, r.Measured.Seconds(), r.Bound.Seconds(), r.Ratio, r.Upstream429, r.Duplicates, r.Failed, r.CPU)
}

// RunOnboard runs the onboarding benchmark. The bound is the larger of a
// workspace's upstream calls (one read of its members, one invite per
// person) at the budget's rate, and three round trips (the chain the
// upstream makes unavoidable: read, write, and the read that confirms).
func RunOnboard(ctx context.Context, cfg OnboardConfig) (OnboardReport, error) {
	cfg.defaults()
	if cfg.RedisURL == "" {
		return OnboardReport{}, errors.New("bench: a Redis URL is required")
	}
	w := &world{cfg: Config{Workspaces: cfg.Workspaces, Replicas: cfg.Replicas, RPS: cfg.RPS, RPM: cfg.RPM, Headroom: cfg.Headroom,
		RedisURL: cfg.RedisURL, Latency: cfg.Latency}, keys: map[string]string{}}
	w.cfg.defaults()
	stopSim, err := w.serveSim(sim.Config{RPS: cfg.RPS, RPM: cfg.RPM, Latency: cfg.Latency})
	if err != nil {
		return OnboardReport{}, err
	}
	defer stopSim()
	for i := range cfg.Workspaces {
		id, key := w.sim.CreateWorkspace(fmt.Sprintf("client-%03d", i))
		w.keys[id], w.ids = key, append(w.ids, id)
	}
	stop, err := w.startReplicas(ctx)
	if err != nil {
		return OnboardReport{}, err
	}
	defer stop()
	if err := w.registerParallel(ctx, 32); err != nil {
		return OnboardReport{}, err
	}
	req := &agencyv1.OnboardMembersRequest{Selector: &agencyv1.WorkspaceSelector{LabelSelector: "bench=yes"}}
	for i := range cfg.People {
		req.People = append(req.People, &agencyv1.Person{Email: fmt.Sprintf("sdr%03d@agency.example", i), Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR})
	}
	w.sim.ResetStats()
	redisCPU := redisCPUReader(cfg.RedisURL)
	cpu0 := cpuTime() + redisCPU(ctx)
	start := time.Now()
	op, err := agencyv1.NewFanoutServiceClient(w.replicas[0]).OnboardMembers(authed(ctx), req)
	if err != nil {
		return OnboardReport{}, err
	}
	ops := longrunningpb.NewOperationsClient(w.replicas[len(w.replicas)-1])
	for !op.GetDone() {
		time.Sleep(10 * time.Millisecond)
		if op, err = ops.GetOperation(authed(ctx), &longrunningpb.GetOperationRequest{Name: op.GetName()}); err != nil {
			return OnboardReport{}, err
		}
	}
	measured := time.Since(start)
	cpu := cpuTime() + redisCPU(ctx) - cpu0
	resp := &agencyv1.OperationResponse{}
	if err := op.GetResponse().UnmarshalTo(resp); err != nil {
		return OnboardReport{}, fmt.Errorf("bench: operation ended without a response: %v", op.GetError())
	}
	limits := ratelimit.Scaled(cfg.RPS, cfg.RPM, cfg.Headroom)
	calls := float64(cfg.People + 1) // one read, one invite per person
	bound := max(time.Duration(calls/limits.Sustained()*float64(time.Second)), 3*cfg.Latency)
	r := OnboardReport{Items: int64(cfg.Workspaces * cfg.People), Measured: measured, Bound: bound,
		Ratio: measured.Seconds() / bound.Seconds(), Failed: resp.GetFailedTotal(),
		CPU: cpu.Seconds() / (measured.Seconds() * float64(runtime.NumCPU()))}
	for _, s := range w.sim.Stats() {
		r.Upstream429 += s.RateLimited
		r.Duplicates += s.DuplicateCreates
	}
	return r, nil
}

// registerParallel registers every workspace, n at a time (each
// registration verifies its key upstream, so one at a time would take
// workspaces × latency).
func (w *world) registerParallel(ctx context.Context, n int) error {
	ws := agencyv1.NewWorkspaceServiceClient(w.replicas[0])
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i, id := range w.ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			key := w.keys[id]
			_, err := ws.CreateWorkspace(authed(ctx), &agencyv1.CreateWorkspaceRequest{WorkspaceId: fmt.Sprintf("client-%03d", i),
				Workspace: &agencyv1.Workspace{DisplayName: id, ApiKey: &key, Labels: map[string]string{"bench": "yes"}}})
			if err != nil {
				mu.Lock()
				first = cmpErr(first, fmt.Errorf("register %s: %w", id, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// cpuTime is the process's user + system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPUReader returns a function reading Redis's CPU time (INFO cpu);
// zero when it cannot.
func redisCPUReader(url string) func(context.Context) time.Duration {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return func(context.Context) time.Duration { return 0 }
	}
	return func(ctx context.Context) time.Duration {
		c := redis.NewClient(opts)
		defer c.Close()
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			return 0
		}
		var total float64
		for _, line := range strings.Split(info, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
			if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
				f, _ := strconv.ParseFloat(v, 64)
				total += f
			}
		}
		return time.Duration(total * float64(time.Second))
	}
}
