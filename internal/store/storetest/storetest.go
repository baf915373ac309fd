// Package storetest is the conformance suite every store backend passes, so
// the embedded and Redis backends cannot drift apart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

// Factory returns a fresh, empty store for one test.
type Factory func(t *testing.T) store.Store

// RunAll runs every conformance test against the backend.
func RunAll(t *testing.T, newStore Factory) {
	t.Run("Workspaces", func(t *testing.T) { RunWorkspaces(t, newStore) })
	t.Run("Tokens", func(t *testing.T) { RunTokens(t, newStore) })
	t.Run("Audit", func(t *testing.T) { RunAudit(t, newStore) })
}

// RunWorkspaces runs the workspace-registry conformance tests.
func RunWorkspaces(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ws store.Workspaces)
	}{
		{"CreateGetRoundTrip", testCreateGet},
		{"CreateDuplicateName", testCreateDuplicateName},
		{"CreateDuplicateInstantlyWorkspace", testCreateDuplicateInstantly},
		{"GetMissing", testGetMissing},
		{"GetByInstantlyID", testGetByInstantlyID},
		{"ListOrderPagingAndMatch", testList},
		{"ListSkipsManyNonMatching", testListSparse},
		{"Update", testUpdate},
		{"UpdateErrors", testUpdateErrors},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"Delete", testDelete},
		{"CanceledContext", testCanceled},
		{"ReturnedRecordsAreCopies", testCopies},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			tc.fn(t, s.Workspaces())
		})
	}
}

// Workspace returns a valid record for tests; the time is truncated so it
// survives any backend's encoding.
func Workspace(id string) *store.Workspace {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return &store.Workspace{
		Name:                   "workspaces/" + id,
		DisplayName:            "Client " + id,
		Labels:                 map[string]string{"client": id},
		InstantlyWorkspaceID:   "inst-" + id,
		InstantlyWorkspaceName: "Instantly " + id,
		SealedCredential:       "v1.deadbeef.c2VhbGVk",
		CredentialFingerprint:  "sha256:0123456789abcdef",
		State:                  store.StateActive,
		LastVerifyTime:         now,
		CreateTime:             now,
		UpdateTime:             now,
	}
}

func mustCreate(t *testing.T, ws store.Workspaces, w *store.Workspace) {
	t.Helper()
	if err := ws.Create(context.Background(), w); err != nil {
		t.Fatalf("Create(%s): %v", w.Name, err)
	}
}

// equal compares every field of the records, so a field a backend drops
// (including one added later) fails the suite: times by instant, labels
// with nil and empty alike.
func equal(t *testing.T, got, want *store.Workspace) {
	t.Helper()
	g, w := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i := range g.NumField() {
		name := g.Type().Field(i).Name
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		same := reflect.DeepEqual(gf, wf)
		switch gv := gf.(type) {
		case time.Time:
			same = gv.Equal(wf.(time.Time))
		case map[string]string:
			wv := wf.(map[string]string)
			same = len(gv) == len(wv) && (len(gv) == 0 || reflect.DeepEqual(gv, wv))
		}
		if !same {
			t.Fatalf("record differs in %s: got %v, want %v\n got %+v\nwant %+v", name, gf, wf, got, want)
		}
	}
}

func testCreateGet(t *testing.T, ws store.Workspaces) {
	w := Workspace("acme")
	w.StateMessage = "ok"
	w.CredentialKeyID = "key-1"
	w.AdminWorkspace = "workspaces/agency"
	mustCreate(t, ws, w)
	got, err := ws.Get(context.Background(), w.Name)
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, w)
}

func testCreateDuplicateName(t *testing.T, ws store.Workspaces) {
	mustCreate(t, ws, Workspace("acme"))
	dup := Workspace("acme")
	dup.InstantlyWorkspaceID = "another"
	if err := ws.Create(context.Background(), dup); !errors.Is(err, store.ErrAlreadyExists) {
		t.Fatalf("duplicate name: got %v, want ErrAlreadyExists", err)
	}
	// The refused create must not have claimed the other Instantly id.
	other := Workspace("other")
	other.InstantlyWorkspaceID = "another"
	mustCreate(t, ws, other)
}

func testCreateDuplicateInstantly(t *testing.T, ws store.Workspaces) {
	mustCreate(t, ws, Workspace("acme"))
	dup := Workspace("acme-again")
	dup.InstantlyWorkspaceID = "inst-acme"
	if err := ws.Create(context.Background(), dup); !errors.Is(err, store.ErrDuplicateInstantlyWorkspace) {
		t.Fatalf("duplicate instantly id: got %v, want ErrDuplicateInstantlyWorkspace", err)
	}
	if _, err := ws.Get(context.Background(), dup.Name); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused create left a record: %v", err)
	}
}

func testGetMissing(t *testing.T, ws store.Workspaces) {
	if _, err := ws.Get(context.Background(), "workspaces/nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("got %v, want ErrNotFound", err)
	}
}

func testGetByInstantlyID(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	w := Workspace("acme")
	w.AdminWorkspace = "workspaces/agency"
	w.CredentialKeyID = "key-1"
	mustCreate(t, ws, w)
	got, err := ws.GetByInstantlyID(ctx, "inst-acme")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, w)
	if got.AdminWorkspace != "workspaces/agency" || got.CredentialKeyID != "key-1" {
		t.Fatalf("admin/credential key id not kept: %+v", got)
	}
	if _, err := ws.GetByInstantlyID(ctx, "inst-missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if err := ws.Delete(ctx, w.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.GetByInstantlyID(ctx, "inst-acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func names(list []*store.Workspace) []string {
	out := make([]string, len(list))
	for i, w := range list {
		out[i] = w.Name
	}
	return out
}

func testList(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	for _, id := range []string{"c", "a", "e", "b", "d"} {
		w := Workspace(id)
		if id == "b" || id == "d" {
			w.Labels["team"] = "west"
		}
		mustCreate(t, ws, w)
	}
	all, err := ws.List(ctx, store.ListQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(all)); got != "[workspaces/a workspaces/b workspaces/c workspaces/d workspaces/e]" {
		t.Fatalf("List order: %s", got)
	}
	page, err := ws.List(ctx, store.ListQuery{Limit: 2, After: "workspaces/b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(page)); got != "[workspaces/c workspaces/d]" {
		t.Fatalf("List page after b: %s", got)
	}
	west := func(l map[string]string) bool { return l["team"] == "west" }
	filtered, err := ws.List(ctx, store.ListQuery{Limit: 10, Match: west})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(filtered)); got != "[workspaces/b workspaces/d]" {
		t.Fatalf("List filtered: %s", got)
	}
	one, err := ws.List(ctx, store.ListQuery{Limit: 1, Match: west, After: "workspaces/b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(names(one)); got != "[workspaces/d]" {
		t.Fatalf("List filtered after b: %s", got)
	}
	none, err := ws.List(ctx, store.ListQuery{Limit: 10, After: "workspaces/e"})
	if err != nil || len(none) != 0 {
		t.Fatalf("List after last: %v %v", names(none), err)
	}
}

// testListSparse makes the backend read past many non-matching records, more
// than any single internal batch, to fill one page.
func testListSparse(t *testing.T, ws store.Workspaces) {
	const n = 600
	for i := range n {
		w := Workspace(fmt.Sprintf("w%04d", i))
		if i%199 == 0 {
			w.Labels["rare"] = "yes"
		}
		mustCreate(t, ws, w)
	}
	rare := func(l map[string]string) bool { return l["rare"] == "yes" }
	got, err := ws.List(context.Background(), store.ListQuery{Limit: 10, Match: rare})
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(names(got)); s != "[workspaces/w0000 workspaces/w0199 workspaces/w0398 workspaces/w0597]" {
		t.Fatalf("sparse list: %s", s)
	}
}

func testUpdate(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	mustCreate(t, ws, Workspace("acme"))
	later := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	got, err := ws.Update(ctx, "workspaces/acme", func(w *store.Workspace) error {
		w.DisplayName = "Acme Corp"
		w.Labels = map[string]string{"tier": "gold"}
		w.State = store.StateCredentialInvalid
		w.UpdateTime = later
		w.CredentialKeyID = "key-2"
		w.AdminWorkspace = "workspaces/agency"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "Acme Corp" || got.Labels["tier"] != "gold" || got.State != store.StateCredentialInvalid ||
		got.CredentialKeyID != "key-2" || got.AdminWorkspace != "workspaces/agency" {
		t.Fatalf("Update returned %+v", got)
	}
	reread, err := ws.Get(ctx, "workspaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, reread, got)
}

func testUpdateErrors(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	mustCreate(t, ws, Workspace("acme"))
	if _, err := ws.Update(ctx, "workspaces/missing", func(*store.Workspace) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	sentinel := errors.New("caller refuses")
	if _, err := ws.Update(ctx, "workspaces/acme", func(w *store.Workspace) error {
		w.DisplayName = "changed"
		return sentinel
	}); !errors.Is(err, sentinel) {
		t.Fatalf("fn error: %v", err)
	}
	if _, err := ws.Update(ctx, "workspaces/acme", func(w *store.Workspace) error {
		w.InstantlyWorkspaceID = "other"
		return nil
	}); !errors.Is(err, store.ErrImmutable) {
		t.Fatalf("immutable: %v", err)
	}
	got, err := ws.Get(ctx, "workspaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	equal(t, got, Workspace("acme"))
}

func testConcurrentUpdates(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	mustCreate(t, ws, Workspace("acme"))
	const workers, each = 6, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for range workers {
		wg.Go(func() {
			for range each {
				_, err := ws.Update(ctx, "workspaces/acme", func(w *store.Workspace) error {
					n, _ := strconv.Atoi(w.Labels["n"])
					w.Labels["n"] = strconv.Itoa(n + 1)
					return nil
				})
				if errors.Is(err, store.ErrConflict) {
					continue // allowed under contention; it changed nothing
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				applied++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	got, err := ws.Get(ctx, "workspaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["n"] != strconv.Itoa(applied) || applied == 0 {
		t.Fatalf("counter %s after %d successful updates", got.Labels["n"], applied)
	}
}

func testDelete(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	mustCreate(t, ws, Workspace("acme"))
	mustCreate(t, ws, Workspace("beta"))
	if err := ws.Delete(ctx, "workspaces/acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Get(ctx, "workspaces/acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := ws.Delete(ctx, "workspaces/acme"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	list, err := ws.List(ctx, store.ListQuery{Limit: 10})
	if err != nil || fmt.Sprint(names(list)) != "[workspaces/beta]" {
		t.Fatalf("list after delete: %v %v", names(list), err)
	}
	// The Instantly workspace can be registered again, under any name.
	again := Workspace("acme-2")
	again.InstantlyWorkspaceID = "inst-acme"
	mustCreate(t, ws, again)
}

func testCanceled(t *testing.T, ws store.Workspaces) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := ws.Create(ctx, Workspace("acme")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with canceled ctx: %v", err)
	}
	if _, err := ws.Get(ctx, "workspaces/acme"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with canceled ctx: %v", err)
	}
}

func testCopies(t *testing.T, ws store.Workspaces) {
	ctx := context.Background()
	w := Workspace("acme")
	mustCreate(t, ws, w)
	w.Labels["client"] = "mutated-after-create"
	got, err := ws.Get(ctx, "workspaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	got.Labels["client"] = "mutated-after-get"
	again, err := ws.Get(ctx, "workspaces/acme")
	if err != nil {
		t.Fatal(err)
	}
	if again.Labels["client"] != "acme" {
		t.Fatalf("store shares maps with callers: %v", again.Labels)
	}
}

// RunTokens runs the token-store conformance tests.
func RunTokens(t *testing.T, newStore Factory) {
	ctx := context.Background()
	tok := func(id, hash string) *store.Token {
		return &store.Token{ID: id, Hash: hash, Role: "admin", Scope: "team=west", Description: "d", Creator: "tokens/bootstrap",
			CreateTime: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}
	}
	t.Run("CreateGetByIDAndHash", func(t *testing.T) {
		ts := newStore(t).Tokens()
		if err := ts.Create(ctx, tok("a1", "h1")); err != nil {
			t.Fatal(err)
		}
		got, err := ts.Get(ctx, "a1")
		if err != nil || got.Hash != "h1" || got.Scope != "team=west" || !got.CreateTime.Equal(tok("", "").CreateTime) || !got.ExpireTime.IsZero() {
			t.Fatalf("get: %+v %v", got, err)
		}
		byHash, err := ts.GetByHash(ctx, "h1")
		if err != nil || byHash.ID != "a1" {
			t.Fatalf("by hash: %+v %v", byHash, err)
		}
		if _, err := ts.GetByHash(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing hash: %v", err)
		}
		if _, err := ts.Get(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing id: %v", err)
		}
		if err := ts.Create(ctx, tok("a1", "h2")); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("duplicate id: %v", err)
		}
		if err := ts.Create(ctx, tok("a2", "h1")); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("duplicate hash: %v", err)
		}
	})
	t.Run("ListPages", func(t *testing.T) {
		ts := newStore(t).Tokens()
		for _, id := range []string{"c", "a", "b"} {
			if err := ts.Create(ctx, tok(id, "h"+id)); err != nil {
				t.Fatal(err)
			}
		}
		p1, err := ts.List(ctx, "", 2)
		if err != nil || len(p1) != 2 || p1[0].ID != "a" || p1[1].ID != "b" {
			t.Fatalf("page 1: %v %v", p1, err)
		}
		p2, err := ts.List(ctx, "b", 2)
		if err != nil || len(p2) != 1 || p2[0].ID != "c" {
			t.Fatalf("page 2: %v %v", p2, err)
		}
	})
	t.Run("UpdateRevokeAndRehash", func(t *testing.T) {
		ts := newStore(t).Tokens()
		if err := ts.Create(ctx, tok("a", "h1")); err != nil {
			t.Fatal(err)
		}
		if err := ts.Create(ctx, tok("b", "h2")); err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
		got, err := ts.Update(ctx, "a", func(x *store.Token) error { x.RevokeTime = now; return nil })
		if err != nil || got.Active(now) || got.RevokeTime.IsZero() {
			t.Fatalf("revoke: %+v %v", got, err)
		}
		if _, err := ts.Update(ctx, "a", func(x *store.Token) error { x.Hash = "h2"; return nil }); !errors.Is(err, store.ErrAlreadyExists) {
			t.Fatalf("rehash onto a taken hash: %v", err)
		}
		if _, err := ts.Update(ctx, "a", func(x *store.Token) error { x.Hash = "h3"; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := ts.GetByHash(ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("old hash still indexed: %v", err)
		}
		if x, err := ts.GetByHash(ctx, "h3"); err != nil || x.ID != "a" || x.RevokeTime.IsZero() {
			t.Fatalf("new hash: %+v %v", x, err)
		}
		if _, err := ts.Update(ctx, "a", func(x *store.Token) error { x.ID = "z"; return nil }); !errors.Is(err, store.ErrImmutable) {
			t.Fatalf("id change: %v", err)
		}
		if _, err := ts.Update(ctx, "missing", func(*store.Token) error { return nil }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
	})
}

// RunAudit runs the audit-trail conformance tests.
func RunAudit(t *testing.T, newStore Factory) {
	ctx := context.Background()
	t.Run("AppendListNewestFirstPagedAndFiltered", func(t *testing.T) {
		a := newStore(t).Audit()
		for i := range 5 {
			e := &store.AuditEvent{Time: time.Now(), Principal: fmt.Sprintf("tokens/p%d", i%2), Method: "/m", Workspaces: []string{"workspaces/w"}, Code: "OK", Succeeded: 1}
			if err := a.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
			if e.ID == "" {
				t.Fatal("Append assigned no id")
			}
		}
		all, err := a.List(ctx, store.AuditQuery{Limit: 10})
		if err != nil || len(all) != 5 {
			t.Fatalf("list: %d %v", len(all), err)
		}
		for i := 1; i < len(all); i++ {
			if !store.AuditIDBefore(all[i].ID, all[i-1].ID) {
				t.Fatalf("not newest first: %s then %s", all[i-1].ID, all[i].ID)
			}
		}
		page, err := a.List(ctx, store.AuditQuery{Limit: 2, Before: all[1].ID})
		if err != nil || len(page) != 2 || page[0].ID != all[2].ID || page[1].ID != all[3].ID {
			t.Fatalf("page before %s: %v %v", all[1].ID, page, err)
		}
		p1, err := a.List(ctx, store.AuditQuery{Limit: 10, Match: func(e *store.AuditEvent) bool { return e.Principal == "tokens/p1" }})
		if err != nil || len(p1) != 2 || p1[0].Workspaces[0] != "workspaces/w" {
			t.Fatalf("filtered: %v %v", p1, err)
		}
	})
	t.Run("EveryFieldRoundTrips", func(t *testing.T) {
		a := newStore(t).Audit()
		at := time.Now().UTC().Truncate(time.Millisecond)
		started := &store.AuditEvent{Time: at, Principal: "tokens/p", Role: "admin", Method: "/agency.v1.FanoutService/OnboardMembers",
			RequestID: "r1", Phase: store.AuditPhaseStarted, Workspaces: []string{"workspaces/a", "workspaces/b"}}
		finished := &store.AuditEvent{Time: at.Add(time.Millisecond), Principal: "tokens/p", Role: "admin", Method: started.Method,
			RequestID: "r1", Phase: store.AuditPhaseFinished, Workspaces: []string{"workspaces/b"}, Code: "OK",
			Succeeded: 3, Failed: 2, AlreadyDone: 1, Operation: "operations/op1"}
		for _, e := range []*store.AuditEvent{started, finished} {
			if err := a.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		got, err := a.List(ctx, store.AuditQuery{Limit: 10})
		if err != nil || len(got) != 2 {
			t.Fatalf("list: %v %v", got, err)
		}
		// Newest first: the outcome, then the started event.
		for i, want := range []*store.AuditEvent{finished, started} {
			g := got[i]
			g.Time = g.Time.UTC()
			if !reflect.DeepEqual(g, want) {
				t.Fatalf("event %d:\n got %+v\nwant %+v", i, g, want)
			}
		}
	})
}
