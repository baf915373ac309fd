// Command agencybench runs the fan-out benchmark (make bench): Redis, the
// Instantly simulator with many workspaces and scaled-down limits, several
// agencyd replicas sharing that Redis, and a fan-out workload spread across
// them; then the same workload as a sequential script and as unbounded
// parallel calls. It prints one line per way, each ending with
// "efficiency=<ratio> upstream_429=<count>".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "agencybench:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg bench.Config
	flag.IntVar(&cfg.Workspaces, "workspaces", 200, "client workspaces in the simulator")
	flag.IntVar(&cfg.Replicas, "replicas", 3, "agencyd replicas sharing one Redis")
	flag.IntVar(&cfg.RPS, "rps", 10, "simulator limit per workspace per second (aggregate = rps × workspaces)")
	flag.IntVar(&cfg.RPM, "rpm", 600, "simulator limit per workspace per minute")
	flag.Float64Var(&cfg.Headroom, "headroom", 0.8, "share of each budget agencyd may use")
	flag.IntVar(&cfg.FanOuts, "fanouts", 40, "EnsureTagEverywhere calls, each over every workspace (2 upstream calls per workspace)")
	flag.IntVar(&cfg.Parallel, "parallel", 9, "fan-out calls in flight at once, spread across replicas")
	flag.DurationVar(&cfg.Latency, "latency", 0, "latency the simulator adds to every request (e.g. 150ms, Instantly's order)")
	flag.StringVar(&cfg.RedisURL, "redis-url", os.Getenv("REDIS_URL"), "Redis to share; empty starts a redis-server on a free port")
	baselines := flag.Bool("baselines", true, "also run the sequential and unbounded baselines")
	onboard := flag.Bool("onboard", false, "run the onboarding benchmark instead: one OnboardMembers of --people into --workspaces at Instantly's limits (--rps/--rpm default to 100/6000 there) with --latency (default 150ms)")
	people := flag.Int("people", 10, "people of the onboarding benchmark")
	runs := flag.Int("runs", 1, "repeat the onboarding benchmark this many times (a fresh world each)")
	plan := flag.Bool("plan", false, "run the desired-state planning benchmark instead: one CreatePlan of --people (default 20) declared people over --workspaces (default 300) at Instantly's limits with --latency (default 150ms)")
	scimOffboard := flag.Bool("scim-offboard", false, "run the SCIM offboarding benchmark instead: one person, put into --workspaces (default 300) by a mapped SCIM group, deactivated through SCIM, at Instantly's limits with --latency (default 150ms)")
	flag.Parse()
	cfg.Baselines = *baselines
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.RedisURL == "" {
		url, stopRedis, err := startRedis(ctx)
		if err != nil {
			return err
		}
		defer stopRedis()
		cfg.RedisURL = url
	}
	if *plan {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		pc := bench.PlanConfig{Workspaces: cfg.Workspaces, People: *people, Replicas: 1, Latency: cfg.Latency, Headroom: cfg.Headroom, RedisURL: cfg.RedisURL}
		if !set["workspaces"] {
			pc.Workspaces = 300
		}
		if !set["people"] {
			pc.People = 20
		}
		if !set["latency"] {
			pc.Latency = 150 * time.Millisecond
		}
		if set["replicas"] {
			pc.Replicas = cfg.Replicas
		}
		for range *runs {
			r, err := bench.RunPlan(ctx, pc)
			if err != nil {
				return err
			}
			fmt.Println(r)
		}
		return nil
	}
	if *scimOffboard {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		sc := bench.SCIMOffboardConfig{Workspaces: cfg.Workspaces, Replicas: cfg.Replicas, Latency: cfg.Latency, Headroom: cfg.Headroom, RedisURL: cfg.RedisURL}
		if !set["workspaces"] {
			sc.Workspaces = 300
		}
		if !set["latency"] {
			sc.Latency = 150 * time.Millisecond
		}
		if set["rps"] {
			sc.RPS = cfg.RPS
		}
		if set["rpm"] {
			sc.RPM = cfg.RPM
		}
		for range *runs {
			r, err := bench.RunSCIMOffboard(ctx, sc)
			fmt.Println(r)
			if err != nil {
				return err
			}
		}
		return nil
	}
	if *onboard {
		oc := bench.OnboardConfig{Workspaces: cfg.Workspaces, People: *people, Replicas: cfg.Replicas, Latency: cfg.Latency,
			Headroom: cfg.Headroom, RedisURL: cfg.RedisURL}
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if set["rps"] {
			oc.RPS = cfg.RPS
		}
		if set["rpm"] {
			oc.RPM = cfg.RPM
		}
		if !set["workspaces"] {
			oc.Workspaces = 100
		}
		for range *runs {
			r, err := bench.RunOnboard(ctx, oc)
			if err != nil {
				return err
			}
			fmt.Println(r)
		}
		return nil
	}
	fmt.Printf("workspaces=%d replicas=%d limits=%d/s,%d/min per workspace (aggregate %d/s) headroom=%.2f fanouts=%d\n",
		cfg.Workspaces, cfg.Replicas, cfg.RPS, cfg.RPM, cfg.RPS*cfg.Workspaces, cfg.Headroom, cfg.FanOuts)
	reports, err := bench.Run(ctx, cfg)
	for _, r := range reports {
		fmt.Println(r)
		for _, l := range r.FailureLines() {
			fmt.Println(l)
		}
	}
	return err
}

// startRedis runs a throwaway redis-server on a free loopback port.
func startRedis(ctx context.Context) (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, errors.New("redis-server not found: install it (apt-get install redis-server) or pass --redis-url")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "agencybench-redis")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	opts, _ := redis.ParseURL(url)
	c := redis.NewClient(opts)
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c.Ping(ctx).Err() == nil {
			return url, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, errors.New("redis-server did not answer within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
