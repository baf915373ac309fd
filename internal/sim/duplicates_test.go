package sim_test

import (
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestDuplicateCreates(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	otherID, otherKey := e.sim.CreateWorkspace("Other")
	dups := func(id string) int64 {
		t.Helper()
		return e.stats(id).DuplicateCreates
	}
	post := func(path, key, body string, status int) {
		t.Helper()
		if got := e.do(req{method: http.MethodPost, path: path, key: key, body: body}); got.status != status {
			t.Fatalf("POST %s %s: %d, want %d; %s", path, body, got.status, status, got.body)
		}
	}

	// Members: the same email in any case, or the owner's.
	post(membersPath, key, `{"email":"ann@acme.test","role":"view"}`, http.StatusOK)
	post(membersPath, key, `{"email":"bob@acme.test","role":"view"}`, http.StatusOK)
	if n := dups(wsID); n != 0 {
		t.Fatalf("%d duplicates after first creates", n)
	}
	post(membersPath, key, `{"email":"ANN@Acme.test","role":"editor"}`, http.StatusConflict)
	post(membersPath, key, `{"email":"`+st(t, e, wsID).Members[0].Email+`","role":"admin"}`, http.StatusConflict)
	if n := dups(wsID); n != 2 {
		t.Fatalf("%d duplicates after 2 duplicate members", n)
	}
	// Another workspace may invite the same email: not a duplicate.
	post(membersPath, otherKey, `{"email":"ann@acme.test","role":"view"}`, http.StatusOK)

	// Tags: labels compare trimmed, ignoring case.
	post(tagsPath, key, `{"label":"Cold"}`, http.StatusOK)
	post(tagsPath, key, `{"label":"Warm"}`, http.StatusOK)
	post(tagsPath, key, `{"label":" cOLD "}`, http.StatusConflict)
	if n := dups(wsID); n != 3 {
		t.Fatalf("%d duplicates after a duplicate tag", n)
	}

	// Keys: a live key's name makes a second key, and counts.
	post(keysPath, key, `{"name":"sync","scopes":["all:read"]}`, http.StatusOK)
	post(keysPath, key, `{"name":"Sync","scopes":["all:read"]}`, http.StatusOK) // names are case-sensitive
	post(keysPath, key, `{"name":"sync","scopes":["all:read"]}`, http.StatusOK)
	post(keysPath, key, `{"name":"Default","scopes":["all:read"]}`, http.StatusOK) // the workspace's first key
	if n := dups(wsID); n != 5 {
		t.Fatalf("%d duplicates after 2 duplicate key names", n)
	}
	named := 0
	for _, k := range st(t, e, wsID).APIKeys {
		if k.Name == "sync" {
			named++
		}
	}
	if named != 2 {
		t.Errorf("%d keys named sync, want 2: a duplicate name still creates a key", named)
	}
	// A revoked key's name is free again.
	gone, err := e.sim.CreateAPIKey(wsID, "rotated", []string{"all:read"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sim.RevokeAPIKey(wsID, gone.ID); err != nil {
		t.Fatal(err)
	}
	post(keysPath, key, `{"name":"rotated","scopes":["all:read"]}`, http.StatusOK)

	// Group members: inviting a sub already linked to this admin, pending or accepted.
	subID, _ := e.sim.CreateWorkspace("Client")
	rivalID, rivalKey := e.sim.CreateWorkspace("Rival")
	post(groupPath, key, `{"sub_workspace_id":"`+subID+`"}`, http.StatusOK)
	post(groupPath, key, `{"sub_workspace_id":"`+subID+`"}`, http.StatusConflict)
	// Another admin's invitation conflicts, but is not a duplicate of anything it created.
	post(groupPath, rivalKey, `{"sub_workspace_id":"`+subID+`"}`, http.StatusConflict)
	if n := dups(wsID); n != 6 {
		t.Fatalf("%d duplicates after a duplicate group invitation", n)
	}

	// The Go API seeds; it is not API traffic.
	if _, err := e.sim.InviteMember(wsID, "ann@acme.test", "view"); err == nil {
		t.Fatal("InviteMember of a member succeeded")
	}
	mustKey(t, e.sim, wsID, "all:read")
	mustKey(t, e.sim, wsID, "all:read")
	if n := dups(wsID); n != 6 {
		t.Errorf("%d duplicates after Go-API creates, want 6", n)
	}
	for _, id := range []string{otherID, subID, rivalID} {
		if n := dups(id); n != 0 {
			t.Errorf("workspace %s: %d duplicates, want 0", id, n)
		}
	}

	raw := decode[map[string]map[string]any](t, e.get("/_sim/stats", ""))
	if raw[wsID]["duplicate_creates"] != float64(6) || raw[otherID]["duplicate_creates"] != float64(0) {
		t.Errorf("GET /_sim/stats: %v", raw)
	}
	if got := e.do(req{method: http.MethodPost, path: "/_sim/stats/reset"}); got.status != http.StatusNoContent {
		t.Fatalf("reset: %d", got.status)
	}
	if n := dups(wsID); n != 0 {
		t.Errorf("%d duplicates after reset", n)
	}
	post(tagsPath, key, `{"label":"warm"}`, http.StatusConflict)
	if n := dups(wsID); n != 1 {
		t.Errorf("%d duplicates after reset and one more, want 1", n)
	}
}

// Acting as a sub workspace, a duplicate is the sub's: it exists in the sub's state.
func TestDuplicateCreatesAsSubWorkspace(t *testing.T) {
	e := newEnv(t, sim.Config{})
	agency, agencyKey := e.sim.CreateWorkspace("Agency")
	sub, _ := e.sim.CreateWorkspace("Client")
	inv, _ := e.sim.InviteGroupMember(agency, sub)
	if err := e.sim.AcceptGroupMember(inv.ID); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.do(req{method: http.MethodPost, path: tagsPath, key: agencyKey, as: sub, body: `{"label":"Cold"}`})
	}
	if a, s := e.stats(agency).DuplicateCreates, e.stats(sub).DuplicateCreates; a != 0 || s != 1 {
		t.Errorf("duplicates: agency %d, sub %d; want 0 and 1", a, s)
	}
}

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// Clients recovering from a crash look a key up by name and creation time: the list must
// carry both, and the times must follow creation.
func TestAPIKeysListNameAndCreationTime(t *testing.T) {
	e := newEnv(t, sim.Config{})
	wsID, key := e.sim.CreateWorkspace("Acme")
	var created []sim.APIKey
	for i, step := range []time.Duration{time.Minute, 1500 * time.Microsecond, time.Millisecond, 2 * time.Second} {
		e.clock.Advance(step)
		k := decode[sim.APIKey](t, e.call(http.MethodPost, keysPath, keysPath, key, `{"name":"sync","scopes":["all:read"]}`))
		if want := e.clock.Now().UTC().Truncate(time.Millisecond); mustParse(t, k.TimestampCreated) != want {
			t.Errorf("key %d created at %s, want %s", i, k.TimestampCreated, want)
		}
		created = append(created, k)
	}
	listed := decode[list[map[string]any]](t, e.call(http.MethodGet, keysPath, keysPath, key, "")).Items
	if len(listed) != len(created)+1 {
		t.Fatalf("%d keys listed, want %d", len(listed), len(created)+1)
	}
	prev := time.Time{}
	for i, k := range listed {
		ts, _ := k["timestamp_created"].(string)
		if !isoMillis.MatchString(ts) {
			t.Errorf("key %d: timestamp_created %q is not an ISO time with milliseconds", i, ts)
		}
		at := mustParse(t, ts)
		if i > 0 {
			c := created[i-1]
			if k["id"] != c.ID || k["name"] != "sync" || ts != c.TimestampCreated {
				t.Errorf("listed %v, want id %s, name sync, created %s", k, c.ID, c.TimestampCreated)
			}
			if !at.After(prev) {
				t.Errorf("key %d created %s, not after %s", i, at, prev)
			}
		}
		prev = at
	}

	// DELETE revokes: the key leaves the list and its secret is refused.
	e.call(http.MethodDelete, keyPattern, keysPath+"/"+created[1].ID, key, "")
	for _, k := range st(t, e, wsID).APIKeys {
		if k.ID == created[1].ID {
			t.Error("a deleted key is still stored")
		}
	}
	if l := decode[list[sim.APIKey]](t, e.get(keysPath, key)).Items; len(l) != len(created) {
		t.Errorf("%d keys listed after a deletion, want %d", len(l), len(created))
	}
	wantError(t, e.get(currentPath, created[1].Key), http.StatusUnauthorized, "Invalid API key")
	e.call(http.MethodGet, currentPath, currentPath, created[0].Key, "")
}

// On the real clock creation times never go backwards along the list.
func TestAPIKeysCreationTimesOnTheRealClock(t *testing.T) {
	e := newEnv(t, sim.Config{Now: time.Now})
	_, key := e.sim.CreateWorkspace("Acme")
	start := time.Now().Add(-time.Millisecond)
	for range 5 {
		e.call(http.MethodPost, keysPath, keysPath, key, `{"name":"sync","scopes":["all:read"]}`)
		time.Sleep(2 * time.Millisecond)
	}
	listed := decode[list[sim.APIKey]](t, e.get(keysPath, key)).Items
	prev := start
	for _, k := range listed[1:] {
		at := mustParse(t, k.TimestampCreated)
		if !at.After(prev) || at.After(time.Now()) {
			t.Errorf("key created at %s, after %s and before now expected", at, prev)
		}
		prev = at
	}
}

func mustParse(t *testing.T, ts string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		t.Fatalf("timestamp %q: %v", ts, err)
	}
	return at
}
