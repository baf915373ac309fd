package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// PlanConfig is one desired-state planning run: a file declaring People
// people in every one of Workspaces workspaces (plus one tag), planned once,
// against the simulator at Instantly's limits with Latency.
type PlanConfig struct {
	Workspaces int           // default 300
	People     int           // default 20
	Replicas   int           // default 1 (a plan is one call on one replica)
	Latency    time.Duration // default 150ms
	RPS, RPM   int           // default 100, 6000 (Instantly's)
	Headroom   float64       // default 0.8
	RedisURL   string        // required
}

func (c *PlanConfig) defaults() {
	if c.Workspaces <= 0 {
		c.Workspaces = 300
	}
	if c.People <= 0 {
		c.People = 20
	}
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	if c.Latency < 0 {
		c.Latency = 0
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

// PlanReport is the run's line.
type PlanReport struct {
	Workspaces int
	Changes    int32         // changes in the plan
	Measured   time.Duration // CreatePlan called → answered
	Bound      time.Duration // the larger of the per-workspace calls at the budget and three round trips
	Ratio      float64       // Measured / Bound: 1 is perfect
	// Requests per workspace, as the simulator counted them: the most and
	// the fewest (a list read is its pages plus the empty page ending it).
	MaxRequests, MinRequests int64
	Upstream429              int64
}

func (r PlanReport) String() string {
	return fmt.Sprintf("plan: workspaces=%d changes=%d measured=%.3fs bound=%.3fs ratio=%.2f requests_per_workspace=%d..%d upstream_429=%d",
		r.Workspaces, r.Changes, r.Measured.Seconds(), r.Bound.Seconds(), r.Ratio, r.MinRequests, r.MaxRequests, r.Upstream429)
}

// RunPlan runs the planning benchmark. Every workspace holds its owner,
// half of the declared people (half of those with another role) and one
// tag, so the plan has invites, role changes and a tag creation everywhere
// and both lists it reads have a page. The bound is
// what the issue defines: a workspace's upstream calls (its members and its
// tags, each one page plus the empty page ending the walk) at the budget's
// rate, or three round trips, whichever is longer.
func RunPlan(ctx context.Context, cfg PlanConfig) (PlanReport, error) {
	cfg.defaults()
	if cfg.RedisURL == "" {
		return PlanReport{}, errors.New("bench: a Redis URL is required")
	}
	w := &world{cfg: Config{Workspaces: cfg.Workspaces, Replicas: cfg.Replicas, RPS: cfg.RPS, RPM: cfg.RPM, Headroom: cfg.Headroom,
		RedisURL: cfg.RedisURL, Latency: cfg.Latency}, keys: map[string]string{}}
	w.cfg.defaults()
	stopSim, err := w.serveSim(sim.Config{RPS: cfg.RPS, RPM: cfg.RPM, Latency: cfg.Latency})
	if err != nil {
		return PlanReport{}, err
	}
	defer stopSim()
	emails := make([]string, cfg.People)
	for i := range emails {
		emails[i] = fmt.Sprintf("sdr%03d@agency.example", i)
	}
	for i := range cfg.Workspaces {
		id, key := w.sim.CreateWorkspace(fmt.Sprintf("client-%03d", i))
		w.keys[id], w.ids = key, append(w.ids, id)
		for j, email := range emails {
			role := "view"
			if j%4 == 0 {
				role = "editor"
			}
			if j%2 == 0 { // seeded through the Go API: not counted as requests
				m, err := w.sim.InviteMember(id, email, role)
				if err == nil {
					err = w.sim.AcceptMember(id, m.ID)
				}
				if err != nil {
					return PlanReport{}, err
				}
			}
		}
	}
	stop, err := w.startReplicas(ctx)
	if err != nil {
		return PlanReport{}, err
	}
	defer stop()
	if err := w.registerParallel(ctx, 32); err != nil {
		return PlanReport{}, err
	}
	if err := w.tagEach(ctx, "existing", 32); err != nil {
		return PlanReport{}, err
	}
	var file strings.Builder
	file.WriteString("version: 1\npeople:\n")
	for _, e := range emails {
		fmt.Fprintf(&file, "  - email: %s\n    access: [{selector: \"bench=yes\", role: editor}]\n", e)
	}
	file.WriteString("tags:\n  - selector: \"bench=yes\"\n    labels: [\"benchmarked\"]\n")
	w.sim.ResetStats()
	start := time.Now()
	plan, err := agencyv1.NewDesiredStateServiceClient(w.replicas[0]).CreatePlan(authed(ctx), &agencyv1.CreatePlanRequest{DesiredState: file.String()})
	if err != nil {
		return PlanReport{}, err
	}
	measured := time.Since(start)
	if f := plan.GetSummary().GetFailedWorkspaces(); f > 0 {
		return PlanReport{}, fmt.Errorf("bench: %d workspaces could not be read", f)
	}
	limits := ratelimit.Scaled(cfg.RPS, cfg.RPM, cfg.Headroom)
	const calls = 4 // members and tags: a page and the empty page ending each walk
	bound := max(time.Duration(calls/limits.Sustained()*float64(time.Second)), 3*cfg.Latency)
	s := plan.GetSummary()
	r := PlanReport{Workspaces: int(s.GetWorkspaces()), Changes: s.GetInvites() + s.GetRoleChanges() + s.GetRemovals() + s.GetTagCreations(),
		Measured: measured, Bound: bound, Ratio: measured.Seconds() / bound.Seconds(), MinRequests: -1}
	for _, st := range w.sim.Stats() {
		r.Upstream429 += st.RateLimited
		r.MaxRequests = max(r.MaxRequests, st.Requests)
		if r.MinRequests < 0 || st.Requests < r.MinRequests {
			r.MinRequests = st.Requests
		}
	}
	return r, nil
}

// tagEach creates a tag in every workspace, n at a time, straight through
// the simulator's API.
func (w *world) tagEach(ctx context.Context, label string, n int) error {
	c, err := instantly.New(instantly.Options{BaseURL: w.simURL, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, id := range w.ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := c.CreateCustomTag(ctx, instantly.Credential{APIKey: w.keys[id]}, instantly.CreateCustomTagRequest{Label: label}); err != nil {
				mu.Lock()
				first = cmpErr(first, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}
