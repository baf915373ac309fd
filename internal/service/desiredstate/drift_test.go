package desiredstate

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
)

// fakeLeader answers Lead as told and records what it was asked.
type fakeLeader struct {
	mu       sync.Mutex
	lead     bool
	err      error
	ttls     []time.Duration
	resigned int
}

func (l *fakeLeader) set(lead bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lead, l.err = lead, err
}

func (l *fakeLeader) Lead(_ context.Context, ttl time.Duration) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ttls = append(l.ttls, ttl)
	return l.lead, l.err
}

func (l *fakeLeader) Resign(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resigned++
	return nil
}

func removals(s *Service) float64 {
	return testutil.ToFloat64(s.drift.WithLabelValues(string(ds.Remove)))
}

// TestRound: only the leader reconciles, with a lease of three intervals;
// unknown leadership reconciles nothing and says so; every replica loads
// the stored report into its metric, so they agree.
func TestRound(t *testing.T) {
	leader := &fakeLeader{}
	var logs syncbuf.Buffer
	var deps *Deps
	w := newWorld(t, Options{ReconcileInterval: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(d *Deps) { d.Leader = leader; deps = d })
	ctx := context.Background()
	w.apply(t, w.plan(t, planner(), agencyFile))
	w.add(t, "a1", "drifter@agency.test", sim.RoleEditor, true)

	w.svc.round(ctx) // not the leader
	if r, _ := w.svc.store.Drift(ctx); r != nil || removals(w.svc) != 0 {
		t.Fatalf("a follower reconciled: %+v, metric %v", r, removals(w.svc))
	}
	leader.set(false, errors.New("redis down"))
	w.svc.round(ctx)
	if r, _ := w.svc.store.Drift(ctx); r != nil || !strings.Contains(logs.String(), "leadership unknown") {
		t.Fatalf("unknown leadership: report %+v, logs %q", r, logs.String())
	}
	leader.set(true, nil)
	w.svc.round(ctx)
	if r, _ := w.svc.store.Drift(ctx); r == nil || len(r.Items) != 1 || removals(w.svc) != 1 {
		t.Fatalf("the leader's round: report %+v, metric %v", r, removals(w.svc))
	}
	if want := 3 * time.Minute; leader.ttls[len(leader.ttls)-1] != want {
		t.Fatalf("lease %v, want %v", leader.ttls, want)
	}

	// Another replica, not leading, on the same store: its metric follows.
	other := *deps
	other.Leader = &fakeLeader{}
	follower, err := New(other, Options{ReconcileInterval: time.Minute, Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	follower.round(ctx)
	if removals(follower) != 1 {
		t.Fatalf("the follower's metric %v, want the stored report's 1", removals(follower))
	}
}

// TestRun: reconciling off returns at once; on, it resigns when it stops.
func TestRun(t *testing.T) {
	for _, every := range []time.Duration{0, time.Hour} {
		leader := &fakeLeader{}
		w := buildWorld(t, Options{ReconcileInterval: every}, func(d *Deps) { d.Leader = leader })
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.svc.Run(ctx) }()
		if every == 0 {
			<-done // returns without being cancelled
		}
		cancel()
		<-done
		if want := min(int(every), 1); leader.resigned != want {
			t.Fatalf("interval %v: resigned %d times, want %d", every, leader.resigned, want)
		}
	}
}
