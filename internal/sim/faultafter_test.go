package sim_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// dropped stands for "no answer" among statuses.
const dropped = -1

// outcome sends r and reduces the result to a status, or dropped when the connection was
// closed without an answer; any other transport error fails the test.
func (e *env) outcome(r req) int {
	e.t.Helper()
	got, err := e.try(r)
	switch {
	case err == nil:
		if got.status >= 500 {
			wantError(e.t, got, got.status, "Simulated upstream failure")
		}
		return got.status
	case errors.Is(err, io.EOF):
		return dropped
	default:
		e.t.Fatalf("%s %s: %v, want an answer or EOF", r.method, r.path, err)
		return 0
	}
}

func TestFaultAfterAppliesTheWriteThenFails(t *testing.T) {
	e := newEnv(t, sim.Config{FaultAfterRate: 1, Seed: 3})
	wsID, key := e.sim.CreateWorkspace("Acme")
	const n = 24
	var outcomes []int
	for i := range n {
		outcomes = append(outcomes, e.outcome(req{method: http.MethodPost, path: membersPath, key: key,
			body: fmt.Sprintf(`{"email":"user%d@acme.test","role":"view"}`, i)}))
	}
	for _, want := range []int{dropped, 500, 502, 503, 504} {
		if !slices.Contains(outcomes, want) {
			t.Errorf("no %d among %v", want, outcomes)
		}
	}
	for _, o := range outcomes {
		if o != dropped && o < 500 {
			t.Fatalf("a write answered %d at FaultAfterRate 1: %v", o, outcomes)
		}
	}

	// Every member was created although no create was answered; reads are never hit.
	members := decode[list[sim.WorkspaceMember]](t, e.call(http.MethodGet, membersPath, membersPath+"?limit=100", key, ""))
	if len(members.Items) != n+1 {
		t.Fatalf("%d members after %d faulted creates, want them all plus the owner", len(members.Items), n)
	}
	for i, m := range members.Items[1:] {
		if want := fmt.Sprintf("user%d@acme.test", i); m.Email != want {
			t.Errorf("member %d is %s, want %s", i, m.Email, want)
		}
	}

	// A write that fails is answered as it is: only a committed write is ambiguous.
	wantError(t, e.do(req{method: http.MethodPost, path: membersPath, key: key, body: `{"email":"user0@acme.test","role":"view"}`}),
		http.StatusConflict, "A workspace member with this email already exists")

	// The faulted writes were admitted (they spent budget) and count as faults after the write.
	want := sim.WorkspaceStats{Requests: n + 2, Admitted: n + 2, Faults: n, FaultsAfter: n, DuplicateCreates: 1, MaxAdmitted1s: n + 2, MaxAdmitted60s: n + 2}
	if st := e.stats(wsID); st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	raw := decode[map[string]map[string]any](t, e.get("/_sim/stats", ""))
	if raw[wsID]["faults_after"] != float64(n) || raw[wsID]["faults"] != float64(n) {
		t.Errorf("GET /_sim/stats = %v", raw[wsID])
	}
	// The admin API is never faulted.
	if got := e.do(req{method: http.MethodPost, path: "/_sim/workspaces", body: `{"name":"B"}`}); got.status != http.StatusCreated {
		t.Errorf("admin POST: %d %s", got.status, got.body)
	}
}

// A dropped connection is what a Go client sees when an upstream times out: an error
// wrapping io.EOF, no response, and the request not retried (POST is not idempotent).
func TestFaultAfterDropIsEOF(t *testing.T) {
	e := newEnv(t, sim.Config{FaultAfterRate: 1, Seed: 3})
	wsID, key := e.sim.CreateWorkspace("Acme")
	for i := range 40 {
		r, _ := http.NewRequest(http.MethodDelete, e.srv.URL+keysPath+"/"+mustKey(t, e.sim, wsID, "all:all").ID, nil)
		r.Header.Set("Authorization", "Bearer "+key)
		resp, err := e.srv.Client().Do(r)
		if err == nil {
			resp.Body.Close()
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatalf("request %d: %v, want EOF", i, err)
		}
		if s := e.stats(wsID); s.Requests != int64(i+1) {
			t.Fatalf("the dropped request was retried: %+v after %d requests", s, i+1)
		}
		// The key was deleted all the same.
		if keys := st(t, e, wsID).APIKeys; len(keys) != 1 {
			t.Fatalf("%d keys left, want the caller's alone", len(keys))
		}
		return
	}
	t.Fatal("no dropped connection in 40 faulted writes")
}

func TestFaultAfterIsReproducible(t *testing.T) {
	run := func(cfg sim.Config) (outcomes []int, stats sim.WorkspaceStats) {
		e := newEnv(t, cfg)
		wsID, key := e.sim.CreateWorkspace("Acme")
		for i := range 60 {
			outcomes = append(outcomes, e.outcome(req{method: http.MethodPatch, path: currentPath, key: key,
				body: fmt.Sprintf(`{"name":"name-%d"}`, i)}))
		}
		// Without faults before the write, every PATCH was applied, answered or not.
		if got := st(t, e, wsID).Workspace.Name; cfg.FaultRate == 0 && got != "name-59" {
			t.Errorf("name %q, want name-59: every PATCH was applied", got)
		}
		return outcomes, e.stats(wsID)
	}
	outcomes, stats := run(sim.Config{FaultAfterRate: 0.5, Seed: 7})
	faults := 0
	for _, o := range outcomes {
		if o != http.StatusOK {
			faults++
		}
	}
	if faults < 15 || faults > 45 || !slices.Contains(outcomes, dropped) || !slices.Contains(outcomes, http.StatusOK) {
		t.Errorf("%d faults in 60 writes at rate 0.5: %v", faults, outcomes)
	}
	if stats.FaultsAfter != int64(faults) || stats.Faults != int64(faults) || stats.Admitted != 60 {
		t.Errorf("stats %+v, want %d faults after the write", stats, faults)
	}
	if again, _ := run(sim.Config{FaultAfterRate: 0.5, Seed: 7}); !slices.Equal(outcomes, again) {
		t.Errorf("seed 7 is not reproducible:\n%v\n%v", outcomes, again)
	}
	if other, _ := run(sim.Config{FaultAfterRate: 0.5, Seed: 8}); slices.Equal(outcomes, other) {
		t.Errorf("seeds 7 and 8 gave the same faults: %v", outcomes)
	}

	// Enabling faults after the write leaves the faults before it where they were.
	before, _ := run(sim.Config{FaultRate: 0.3, Seed: 42})
	both, _ := run(sim.Config{FaultRate: 0.3, FaultAfterRate: 0.5, Seed: 42})
	for i := range before {
		if before[i] != http.StatusOK && both[i] != before[i] {
			t.Fatalf("request %d: %d with faults after, %d without:\n%v\n%v", i, both[i], before[i], before, both)
		}
	}
}

func TestFaultAfterConcurrentWrites(t *testing.T) {
	e := newEnv(t, sim.Config{FaultAfterRate: 0.5, Seed: 1})
	wsID, key := e.sim.CreateWorkspace("Acme")
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			got, err := e.try(req{method: http.MethodPost, path: tagsPath, key: key, body: fmt.Sprintf(`{"label":"tag-%d"}`, i)})
			switch {
			case err != nil && !errors.Is(err, io.EOF):
				errs <- err
			case err == nil && got.status != http.StatusOK && got.status < 500:
				errs <- fmt.Errorf("status %d: %s", got.status, got.body)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if tags := st(t, e, wsID).CustomTags; len(tags) != n {
		t.Errorf("%d tags, want all %d applied", len(tags), n)
	}
	if s := e.stats(wsID); s.Admitted != n || s.FaultsAfter != s.Faults || s.Faults == 0 {
		t.Errorf("stats %+v", s)
	}
}
