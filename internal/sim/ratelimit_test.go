package sim_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestRateLimitPerSecond(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")

	if got := e.getN(100, key); got[http.StatusOK] != 100 {
		t.Fatalf("first 100 in one instant: %v, want all 200", got)
	}
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "Rate limit exceeded")

	e.clock.Advance(999 * time.Millisecond)
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "Rate limit exceeded")

	// The window is (t-1s, t]: requests exactly one second old no longer count.
	e.clock.Advance(time.Millisecond)
	if got := e.getN(100, key); got[http.StatusOK] != 100 {
		t.Fatalf("after the second passed: %v, want 100 × 200", got)
	}
	want := sim.WorkspaceStats{Requests: 202, Admitted: 200, RateLimited: 2, MaxAdmitted1s: 100, MaxAdmitted60s: 200}
	if st := e.stats(wsID); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestRateLimitRejectionsConsumeNoBudget(t *testing.T) {
	e := newEnv(t, sim.Config{})
	_, key := e.sim.CreateWorkspace("Acme")

	e.getN(50, key)
	e.clock.Advance(500 * time.Millisecond)
	if got := e.getN(70, key); got[http.StatusOK] != 50 || got[http.StatusTooManyRequests] != 20 {
		t.Fatalf("at 0.5 s: %v, want 50 × 200 and 20 × 429", got)
	}
	// At 1.0 s only the 50 admitted at 0.5 s are in the window; the 20 rejections are not.
	e.clock.Advance(500 * time.Millisecond)
	if got := e.getN(51, key); got[http.StatusOK] != 50 || got[http.StatusTooManyRequests] != 1 {
		t.Fatalf("at 1.0 s: %v, want 50 × 200 and 1 × 429", got)
	}
}

// With 100/s and 6000/min the minute limit can never bind under sliding windows (60 disjoint
// seconds of at most 100 each), so it is tested with a lower RPM.
func TestRateLimitPerMinute(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 100, RPM: 600})
	wsID, key := e.sim.CreateWorkspace("Acme")

	for sec := range 12 { // 50 a second, well under 100: 600 by t = 11 s
		if got := e.getN(50, key); got[http.StatusOK] != 50 {
			t.Fatalf("second %d: %v, want 50 × 200", sec, got)
		}
		e.clock.Advance(time.Second)
	}
	// t = 12 s: this second is empty, yet the minute is full.
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "Rate limit exceeded")

	e.clock.Advance(47 * time.Second) // t = 59 s: everything is still inside (t-60s, t]
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "Rate limit exceeded")

	e.clock.Advance(time.Second) // t = 60 s: the 50 from t = 0 left the window
	if got := e.getN(51, key); got[http.StatusOK] != 50 || got[http.StatusTooManyRequests] != 1 {
		t.Fatalf("at 60 s: %v, want 50 × 200 and 1 × 429", got)
	}
	st := e.stats(wsID)
	if st.MaxAdmitted60s != 600 || st.MaxAdmitted1s != 50 || st.RateLimited != 3 {
		t.Errorf("stats %+v, want max 60 s 600, max 1 s 50, 3 rate limited", st)
	}
}

// A full minute at exactly the default limits: 6000 admitted, nothing rejected.
func TestRateLimitDefaultsFullMinute(t *testing.T) {
	if testing.Short() {
		t.Skip("6000 requests")
	}
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	for range 6000 {
		if got := e.get(currentPath, key); got.status != http.StatusOK {
			t.Fatalf("status %d at %v", got.status, e.clock.Now())
		}
		e.clock.Advance(10 * time.Millisecond)
	}
	e.clock.Advance(-10 * time.Millisecond) // the instant of the last admission: its second is full
	wantError(t, e.get(currentPath, key), http.StatusTooManyRequests, "Rate limit exceeded")
	want := sim.WorkspaceStats{Requests: 6001, Admitted: 6000, RateLimited: 1, MaxAdmitted1s: 100, MaxAdmitted60s: 6000}
	if st := e.stats(wsID); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestRateLimitIsPerWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 10})
	wsA, keyA := e.sim.CreateWorkspace("A")
	secondKeyA := mustKey(t, e.sim, wsA, "workspaces:read").Key
	_, keyB := e.sim.CreateWorkspace("B")

	e.getN(6, keyA)
	if got := e.getN(5, secondKeyA); got[http.StatusOK] != 4 || got[http.StatusTooManyRequests] != 1 {
		t.Errorf("second key of A: %v, want the 4 left of A's budget, then 429", got)
	}
	if got := e.getN(10, keyB); got[http.StatusOK] != 10 {
		t.Errorf("workspace B: %v, want its own full budget", got)
	}
	// Unauthenticated traffic spends nobody's budget.
	for range 20 {
		e.get(currentPath, "not-a-key")
	}
	e.clock.Advance(time.Second)
	if got := e.getN(10, keyA); got[http.StatusOK] != 10 {
		t.Errorf("A after a second: %v, want 10 × 200", got)
	}
}
