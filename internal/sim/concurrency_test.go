package sim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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

// TestConcurrentEndpoints mixes every kind of write and read, across an admin workspace and
// its subs (x-as-workspace spends two budgets, locking two meters), with admin calls; run it
// with -race. Afterwards, invariants must hold: one mapping per pair, unique labels, one owner.
func TestConcurrentEndpoints(t *testing.T) {
	e := newEnv(t, sim.Config{RPS: 100000, RPM: 1000000})
	agency, agencyKey, _, _ := e.seed("Agency", 3)
	var subs []string
	for i := range 3 {
		sub, _, _, _ := e.seed(fmt.Sprintf("Client %d", i), 3)
		inv, err := e.sim.InviteGroupMember(agency, sub)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}

	const workers, perWorker = 8, 30
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := subs[w%len(subs)]
			for i := range perWorker {
				if err := mixedStep(e, agency, agencyKey, target, w, i); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()

	for _, id := range append([]string{agency}, subs...) {
		st, err := e.sim.WorkspaceState(id)
		if err != nil {
			t.Fatal(err)
		}
		labels := map[string]bool{}
		for _, tg := range st.CustomTags {
			if labels[strings.ToLower(tg.Label)] {
				t.Errorf("%s: duplicate label %q", id, tg.Label)
			}
			labels[strings.ToLower(tg.Label)] = true
		}
		pairs := map[string]bool{}
		for _, m := range st.CustomTagMappings {
			k := m.TagID + "/" + m.ResourceID
			if pairs[k] {
				t.Errorf("%s: duplicate mapping %s", id, k)
			}
			pairs[k] = true
		}
		owners := 0
		for _, m := range st.Members {
			if m.Role == "owner" {
				owners++
			}
		}
		if owners != 1 {
			t.Errorf("%s: %d owners", id, owners)
		}
		for i := 1; i < len(st.AuditLogs); i++ {
			if st.AuditLogs[i].ID <= st.AuditLogs[i-1].ID {
				t.Errorf("%s: audit log out of id order", id)
			}
		}
	}
	stats := e.sim.Stats()
	var subRequests int64
	for _, sub := range subs {
		subRequests += stats[sub].Requests
	}
	if stats[agency].Requests != subRequests {
		t.Errorf("agency counted %d requests, its subs %d: every request went through x-as-workspace", stats[agency].Requests, subRequests)
	}
}

func mixedStep(e *env, agency, key, sub string, w, i int) error {
	as := func(method, path, body string) (reply, error) {
		return e.try(req{method: method, path: path, key: key, as: sub, body: body})
	}
	var got reply
	var err error
	switch i % 6 {
	case 0: // contended labels: some creations must be 409
		got, err = as(http.MethodPost, tagsPath, fmt.Sprintf(`{"label":"Tag %d"}`, i%4))
		if err == nil && got.status == http.StatusConflict {
			got.status = http.StatusOK
		}
	case 1:
		got, err = as(http.MethodGet, tagsPath+"?limit=100", "")
		if err == nil && got.status == http.StatusOK {
			tags := list[sim.CustomTag]{}
			if jerr := json.Unmarshal(got.body, &tags); jerr != nil {
				return jerr
			}
			st, serr := e.sim.WorkspaceState(sub)
			if serr != nil || len(tags.Items) == 0 {
				return serr
			}
			got, err = as(http.MethodPost, togglePath, fmt.Sprintf(`{"tag_ids":["%s"],"resource_type":2,"assign":%t,"resource_ids":["%s"]}`,
				tags.Items[0].ID, w%2 == 0, st.Campaigns[i%len(st.Campaigns)].ID))
		}
	case 2:
		got, err = as(http.MethodPost, membersPath, fmt.Sprintf(`{"email":"w%d-%d@acme.test","role":"view"}`, w, i))
	case 3:
		got, err = as(http.MethodPost, keysPath, `{"name":"tmp","scopes":["all:read"]}`)
		if err == nil && got.status == http.StatusOK {
			var k sim.APIKey
			if jerr := json.Unmarshal(got.body, &k); jerr != nil {
				return jerr
			}
			got, err = as(http.MethodDelete, keysPath+"/"+k.ID, "")
		}
	case 4:
		got, err = as(http.MethodGet, accountsPath+"?include_tags=true", "")
		e.sim.Stats()
	default:
		got, err = as(http.MethodGet, auditPath, "")
		if _, serr := e.sim.WorkspaceState(agency); serr != nil {
			return serr
		}
	}
	if err == nil && got.status != http.StatusOK {
		err = fmt.Errorf("worker %d step %d: status %d: %s", w, i, got.status, got.body)
	}
	return err
}
