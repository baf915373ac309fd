package sim_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestConcurrentUse runs readers, writers and admin calls together; run it with -race.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 1000, RPM: 100000})
	wsA, keyA := e.sim.CreateWorkspace("A")
	wsB, keyB := e.sim.CreateWorkspace("B")

	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	for w := range workers {
		key, wsID := keyA, wsA
		if w%2 == 1 {
			key, wsID = keyB, wsB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if err := step(e, w, i, wsID, key); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	stats := e.sim.Stats()
	total := stats[wsA].Requests + stats[wsB].Requests
	if want := int64(workers * perWorker * 3 / 4); total != want || stats[wsA].Admitted+stats[wsB].Admitted != want {
		t.Errorf("counted %d requests (%+v), want %d all admitted", total, stats, want)
	}
	if got := e.get(currentPath, keyA); got.status != http.StatusOK {
		t.Errorf("after the storm: %d", got.status)
	}
}

// step is one of four actions; three of them are API requests that the stats must count.
func step(e *env, w, i int, wsID, key string) error {
	var got reply
	var err error
	switch i % 4 {
	case 0:
		got, err = e.try(req{method: http.MethodPatch, path: currentPath, key: key, body: fmt.Sprintf(`{"name":"w%d-%d"}`, w, i)})
	case 1:
		k, kerr := e.sim.CreateAPIKey(wsID, "temp", []string{"workspaces:read"})
		if kerr != nil {
			return kerr
		}
		got, err = e.try(req{method: http.MethodGet, path: currentPath, key: k.Key})
		if rerr := e.sim.RevokeAPIKey(wsID, k.ID); rerr != nil {
			return rerr
		}
	case 2:
		got, err = e.try(req{method: http.MethodGet, path: "/_sim/workspaces/" + wsID})
		e.sim.Stats()
	default:
		got, err = e.try(req{method: http.MethodGet, path: currentPath, key: key})
	}
	if err == nil && got.status != http.StatusOK {
		err = fmt.Errorf("step %d: status %d: %s", i%4, got.status, got.body)
	}
	return err
}
