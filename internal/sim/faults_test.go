package sim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestFaultInjection(t *testing.T) {
	run := func() (statuses []int, e *env, wsID string, lastName string) {
		e = newEnv(t, sim.Config{FaultRate: 0.3, Seed: 42})
		wsID, key := e.sim.CreateWorkspace("Acme")
		for i := range 60 {
			name := fmt.Sprintf("name-%d", i)
			got := e.patch(currentPath, key, `{"name":"`+name+`"}`)
			statuses = append(statuses, got.status)
			switch got.status {
			case http.StatusOK:
				lastName = name
			case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable:
				wantError(t, got, got.status, "")
			default:
				t.Fatalf("unexpected status %d: %s", got.status, got.body)
			}
		}
		return statuses, e, wsID, lastName
	}
	statuses, e, wsID, lastName := run()

	faults := 0
	for _, st := range statuses {
		if st != http.StatusOK {
			faults++
		}
	}
	if faults < 5 || faults > 35 {
		t.Errorf("%d faults in 60 requests at rate 0.3", faults)
	}
	for _, want := range []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable} {
		if !slices.Contains(statuses, want) {
			t.Errorf("no %d among %v", want, statuses)
		}
	}
	st := e.stats(wsID)
	if st.Faults != int64(faults) || st.Admitted != int64(60-faults) || st.Requests != 60 {
		t.Errorf("stats %+v, want %d faults of 60", st, faults)
	}
	// A faulted PATCH changed nothing: the name is that of the last PATCH that succeeded.
	state, err := e.sim.WorkspaceState(wsID)
	if err != nil {
		t.Fatal(err)
	}
	if state.Workspace.Name != lastName {
		t.Errorf("name %q, want %q", state.Workspace.Name, lastName)
	}
	// The same seed gives the same sequence.
	again, _, _, _ := run()
	if !slices.Equal(statuses, again) {
		t.Errorf("seed 42 is not reproducible:\n%v\n%v", statuses, again)
	}
}

func TestFaultRateOneFailsEverything(t *testing.T) {
	e := newEnv(t, sim.Config{FaultRate: 1})
	wsID, key := e.sim.CreateWorkspace("Acme")
	for range 10 {
		if got := e.patch(currentPath, key, `{"name":"changed"}`); got.status < 500 {
			t.Fatalf("status %d, want 5xx", got.status)
		}
	}
	state, _ := e.sim.WorkspaceState(wsID)
	if state.Workspace.Name != "Acme" {
		t.Errorf("name %q: a faulted request touched state", state.Workspace.Name)
	}
	if st := e.stats(wsID); st.Faults != 10 || st.Admitted != 0 {
		t.Errorf("stats %+v", st)
	}
	// The admin API is never faulted.
	if got := e.get("/_sim/workspaces/"+wsID, ""); got.status != http.StatusOK {
		t.Errorf("admin GET: %d", got.status)
	}
}

func TestLatency(t *testing.T) {
	const latency = 80 * time.Millisecond
	e := newEnv(t, sim.Config{Latency: latency})
	_, key := e.sim.CreateWorkspace("Acme")
	start := time.Now()
	if got := e.get(currentPath, key); got.status != http.StatusOK {
		t.Fatalf("status %d", got.status)
	}
	if took := time.Since(start); took < latency {
		t.Errorf("answered in %v, want at least %v", took, latency)
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	s := sim.New(sim.Config{Latency: time.Hour})
	wsID, key := s.CreateWorkspace("Acme")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodGet, currentPath, nil)
	r.Header.Set("Authorization", "Bearer "+key)

	done := make(chan struct{})
	go func() {
		s.ServeHTTP(httptest.NewRecorder(), r)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeHTTP kept sleeping after the request was cancelled")
	}
	if st := s.Stats()[wsID]; st.Requests != 0 {
		t.Errorf("a cancelled request was counted: %+v", st)
	}
}
