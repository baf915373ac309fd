package instantly_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/sim"
)

func TestAllWalksEveryItemOnceAndStopsOnEmptyPage(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	const n = 21 // three full pages of 7: the last full page still carries a cursor
	want := map[string]bool{}
	for i := range n {
		tag := must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: fmt.Sprintf("tag-%02d", i)}))
		want[tag.ID] = true
	}
	e.hits.reset()
	seen := map[string]int{}
	for tag, err := range e.client.AllCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Limit: 7}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[tag.ID]++
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("tag %s seen %d times", id, seen[id])
		}
	}
	if len(seen) != n {
		t.Errorf("saw %d tags, want %d", len(seen), n)
	}
	pages := e.contract.count(http.MethodGet, "/api/v2/custom-tags")
	if got := e.hits.get("GET /api/v2/custom-tags"); got != 4 {
		t.Errorf("requests = %d, want 4 (three full pages and the empty one); contract saw %d", got, pages)
	}
	// The last request followed a cursor and got nothing back.
	exs := e.contract.exchanges()
	last := exs[len(exs)-1]
	var body instantly.Page[instantly.CustomTag]
	if err := json.Unmarshal(last.RespBody, &body); err != nil || len(body.Items) != 0 {
		t.Errorf("last page = %s", last.RespBody)
	}
}

func TestAllStartsAfterCursorAndStopsEarly(t *testing.T) {
	e := newEnv(t, sim.Config{})
	ctx := ctxT(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, must[*instantly.CustomTag](t)(e.client.CreateCustomTag(ctx, e.cred, instantly.CreateCustomTagRequest{Label: fmt.Sprint("t", i)})).ID)
	}
	got, err := instantly.Collect(e.client.AllCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Limit: 2, StartingAfter: ids[1]}))
	if err != nil || len(got) != 3 || got[0].ID != ids[2] {
		t.Fatalf("after %s: %v, %v", ids[1], got, err)
	}
	e.hits.reset()
	for range e.client.AllCustomTags(ctx, e.cred, instantly.ListCustomTagsParams{Limit: 2}) {
		break // the consumer stops: no further page is fetched
	}
	if n := e.hits.get("GET /api/v2/custom-tags"); n != 1 {
		t.Fatalf("requests after break = %d", n)
	}
}

// fakePages serves GET /api/v2/custom-tags with next(cursor) deciding the
// page, counting requests.
func fakePages(t *testing.T, next func(cursor string) instantly.Page[instantly.CustomTag]) (*instantly.Client, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(next(r.URL.Query().Get("starting_after")))
	}))
	t.Cleanup(srv.Close)
	return newClient(t, srv.URL, srv.Client().Transport, fastRetries), &n
}

func tagPage(id, next string) instantly.Page[instantly.CustomTag] {
	return instantly.Page[instantly.CustomTag]{Items: []instantly.CustomTag{{ID: id, Label: id}}, NextStartingAfter: next}
}

func TestAllGuardsAgainstCursorThatDoesNotAdvance(t *testing.T) {
	// Always the same cursor: a broken upstream that would loop forever.
	c, n := fakePages(t, func(string) instantly.Page[instantly.CustomTag] { return tagPage("x", "same") })
	got, err := instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}))
	if !errors.Is(err, instantly.ErrCursorNotAdvancing) {
		t.Fatalf("err = %v", err)
	}
	if len(got) != 2 || n.Load() != 2 {
		t.Fatalf("items %d, requests %d; want 2 and 2", len(got), n.Load())
	}

	// A cycle a → b → a is caught too.
	c, n = fakePages(t, func(cur string) instantly.Page[instantly.CustomTag] {
		if cur == "a" {
			return tagPage("1", "b")
		}
		return tagPage("2", "a")
	})
	_, err = instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}))
	if !errors.Is(err, instantly.ErrCursorNotAdvancing) || n.Load() != 3 {
		t.Fatalf("cycle: err = %v after %d requests", err, n.Load())
	}
}

func TestAllCapsPages(t *testing.T) {
	// An endless, always-advancing upstream.
	c, n := fakePages(t, func(cur string) instantly.Page[instantly.CustomTag] {
		i, _ := strconv.Atoi(cur)
		return tagPage(cur, strconv.Itoa(i+1))
	})
	got, err := instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}, instantly.MaxPages(5)))
	if !errors.Is(err, instantly.ErrTooManyPages) || len(got) != 5 || n.Load() != 5 {
		t.Fatalf("err = %v, items %d, requests %d", err, len(got), n.Load())
	}

	// Exactly MaxPages pages then an empty one is not an error.
	c, _ = fakePages(t, func(cur string) instantly.Page[instantly.CustomTag] {
		i, _ := strconv.Atoi(cur)
		if i >= 3 {
			return instantly.Page[instantly.CustomTag]{Items: []instantly.CustomTag{}, NextStartingAfter: "ignored"}
		}
		return tagPage(cur, strconv.Itoa(i+1))
	})
	got, err = instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}, instantly.MaxPages(4)))
	if err != nil || len(got) != 3 {
		t.Fatalf("under the cap: %d items, %v", len(got), err)
	}
}

func TestAllYieldsFetchErrorOnce(t *testing.T) {
	boom := errors.New("boom")
	calls := 0
	seq := instantly.All(context.Background(), func(context.Context, string) (*instantly.Page[int], error) {
		calls++
		if calls == 2 {
			return nil, boom
		}
		return &instantly.Page[int]{Items: []int{calls}, NextStartingAfter: strconv.Itoa(calls)}, nil
	})
	var items []int
	var errs []error
	for v, err := range seq {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		items = append(items, v)
	}
	if len(items) != 1 || len(errs) != 1 || !errors.Is(errs[0], boom) || calls != 2 {
		t.Fatalf("items %v, errs %v, calls %d", items, errs, calls)
	}
}

func TestWalksUseLargestPageByDefault(t *testing.T) {
	var limits []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limits = append(limits, r.URL.Path+"?limit="+r.URL.Query().Get("limit"))
		_, _ = w.Write([]byte(`{"items":[]}`))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, srv.Client().Transport)
	ctx, cred := ctxT(t), instantly.Credential{APIKey: "k"}
	_, _ = instantly.Collect(c.AllAuditLogs(ctx, cred, instantly.ListAuditLogsParams{}))
	_, _ = instantly.Collect(c.AllAccounts(ctx, cred, instantly.ListAccountsParams{}))
	_, _ = instantly.Collect(c.AllAccounts(ctx, cred, instantly.ListAccountsParams{Limit: 5}))
	want := []string{"/api/v2/audit-logs?limit=1000", "/api/v2/accounts?limit=100", "/api/v2/accounts?limit=5"}
	if fmt.Sprint(limits) != fmt.Sprint(want) {
		t.Fatalf("limits = %v, want %v", limits, want)
	}
}

// TestAllWalkEdges: MaxPages(0) keeps the default cap (not zero pages), a
// walk started after a cursor that upstream hands back again stops at
// once, and the error says where it stopped.
func TestAllWalkEdges(t *testing.T) {
	c, _ := fakePages(t, func(cur string) instantly.Page[instantly.CustomTag] {
		if cur == "1" {
			return instantly.Page[instantly.CustomTag]{Items: []instantly.CustomTag{}}
		}
		return tagPage("0", "1")
	})
	got, err := instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}, instantly.MaxPages(0)))
	if err != nil || len(got) != 1 {
		t.Fatalf("MaxPages(0): %d items, %v", len(got), err)
	}

	c, n := fakePages(t, func(string) instantly.Page[instantly.CustomTag] { return tagPage("x", "start") })
	got, err = instantly.Collect(c.AllCustomTags(ctxT(t), instantly.Credential{APIKey: "k"}, instantly.ListCustomTagsParams{}, instantly.StartingAfter("start")))
	var invalid *instantly.InvalidAnswerError
	if !errors.As(err, &invalid) || !errors.Is(err, instantly.ErrCursorNotAdvancing) || len(got) != 1 || n.Load() != 1 {
		t.Fatalf("cursor handed back: %d items, %d requests, %v", len(got), n.Load(), err)
	}
	if want := instantly.ErrCursorNotAdvancing.Error() + " (" + invalid.Detail + ")"; invalid.Detail != "after 1 pages" || err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	if got := (&instantly.InvalidAnswerError{Kind: instantly.ErrNotApplied, Message: "no"}).Error(); got != instantly.ErrNotApplied.Error()+": no" {
		t.Fatalf("without a detail: %q", got)
	}
}
