package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestStatsMaxWindows(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	idleID, _ := e.sim.CreateWorkspace("Idle")

	e.getN(30, key) // t = 0
	e.clock.Advance(500 * time.Millisecond)
	e.getN(40, key) // t = 0.5 s: window (−0.5, 0.5] holds 70
	e.clock.Advance(700 * time.Millisecond)
	e.getN(50, key) // t = 1.2 s: window (0.2, 1.2] holds 90, the busiest second
	e.clock.Advance(59 * time.Second)
	e.getN(10, key) // t = 60.2 s: window (0.2 s, 60.2 s] holds 60; the busiest minute stays 120

	want := sim.WorkspaceStats{Requests: 130, Admitted: 130, MaxAdmitted1s: 90, MaxAdmitted60s: 120}
	if st := e.stats(wsID); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}

	// The HTTP view is the same, keyed by workspace id, idle workspaces included.
	all := decode[map[string]sim.WorkspaceStats](t, e.get("/_sim/stats", ""))
	if all[wsID] != want || all[idleID] != (sim.WorkspaceStats{}) || len(all) != 2 {
		t.Errorf("GET /_sim/stats = %+v", all)
	}
	raw := decode[map[string]map[string]any](t, e.get("/_sim/stats", ""))
	for _, field := range []string{"requests", "admitted", "rate_limited", "faults", "max_admitted_1s", "max_admitted_60s"} {
		if _, ok := raw[wsID][field]; !ok {
			t.Errorf("GET /_sim/stats lacks %q: %v", field, raw[wsID])
		}
	}
}

func TestStatsReset(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 10})
	wsID, key := e.sim.CreateWorkspace("Acme")
	e.getN(12, key)

	if got := e.do(req{method: http.MethodPost, path: "/_sim/stats/reset"}); got.status != http.StatusNoContent {
		t.Fatalf("reset: %d %s", got.status, got.body)
	}
	if st := e.stats(wsID); st != (sim.WorkspaceStats{}) {
		t.Fatalf("after reset: %+v", st)
	}
	// The spent budget stays spent, but max windows count only what came after the reset.
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "")
	e.clock.Advance(500 * time.Millisecond)
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "")
	e.clock.Advance(500 * time.Millisecond)
	e.getN(3, key)
	want := sim.WorkspaceStats{Requests: 5, Admitted: 3, RateLimited: 2, MaxAdmitted1s: 3, MaxAdmitted60s: 3}
	if st := e.stats(wsID); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}

	e.sim.ResetStats()
	if st := e.stats(wsID); st != (sim.WorkspaceStats{}) {
		t.Errorf("after Go reset: %+v", st)
	}
}
