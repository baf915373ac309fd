package sim_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestPaginationEveryList walks every list endpoint at several page sizes: each item comes
// exactly once and in order, every non-empty page (the last one too) carries its last item's
// cursor, and the page after the last is empty.
func TestPaginationEveryList(t *testing.T) {
	const n = 23
	e := newEnv(t, sim.Config{RPS: 100000, RPM: 1000000})
	wsID, key := e.sim.CreateWorkspace("Agency")
	tag := decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, `{"label":"tag 0"}`))
	var campaignIDs []string
	for i := range n {
		if i > 0 {
			e.call(http.MethodPost, tagsPath, tagsPath, key, fmt.Sprintf(`{"label":"tag %d"}`, i))
		}
		if i < n-1 {
			e.call(http.MethodPost, membersPath, membersPath, key, fmt.Sprintf(`{"email":"m%02d@acme.test","role":"view"}`, i))
			mustKey(t, e.sim, wsID, "all:read")
		}
		c, _ := e.sim.AddCampaign(wsID, fmt.Sprintf("c%d", i))
		campaignIDs = append(campaignIDs, c.ID)
		// Accounts in groups of three per instant, added in reverse email order.
		if _, err := e.sim.AddAccount(wsID, fmt.Sprintf("a%02d@acme.test", 99-i)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sim.AddAuditLog(wsID, sim.AuditEntry{ActivityType: 1}); err != nil {
			t.Fatal(err)
		}
		sub, _ := e.sim.CreateWorkspace(fmt.Sprintf("client %d", i))
		e.call(http.MethodPost, groupPath, groupPath, key, `{"sub_workspace_id":"`+sub+`"}`)
		if i%3 == 2 {
			e.clock.Advance(time.Second)
		}
	}
	ids := `["` + campaignIDs[0]
	for _, id := range campaignIDs[1:] {
		ids += `","` + id
	}
	e.call(http.MethodPost, togglePath, togglePath, key, `{"tag_ids":["`+tag.ID+`"],"resource_type":2,"assign":true,"resource_ids":`+ids+`"]}`)

	accountCursor := func(m map[string]any) string { return m["timestamp_created"].(string) + "&" + m["email"].(string) }
	lists := []struct {
		path     string
		cursorOf func(map[string]any) string
		maxLimit int
		desc     bool
	}{
		{membersPath, field("id"), 100, false},
		{groupPath, field("id"), 100, false},
		{tagsPath, field("id"), 100, false},
		{mappingsPath, field("id"), 100, false},
		{campaignsPath, field("id"), 100, false},
		{accountsPath, accountCursor, 100, false},
		{keysPath, field("id"), 100, false},
		{auditPath, field("id"), 1000, true},
	}
	for _, l := range lists {
		t.Run(l.path, func(t *testing.T) {
			e.t = t
			all, pages := e.walk(l.path, l.path, key, l.maxLimit, l.cursorOf)
			if len(all) != n || pages != 2 {
				t.Fatalf("limit %d: %d items in %d pages, want %d in 1 page plus an empty one", l.maxLimit, len(all), pages, n)
			}
			want := slices.Clone(all)
			slices.Sort(want)
			if l.desc {
				slices.Reverse(want)
			}
			if !slices.Equal(all, want) {
				t.Errorf("not in cursor order: %v", all)
			}
			for _, limit := range []int{1, 2, 7, n, n + 1} {
				got, pages := e.walk(l.path, l.path, key, limit, l.cursorOf)
				if !slices.Equal(got, all) {
					t.Errorf("limit %d: %v, want %v", limit, got, all)
				}
				if want := (n+limit-1)/limit + 1; pages != want {
					t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
				}
			}
			// Without limit, pages have 10 items.
			if got := decode[list[map[string]any]](t, e.get(l.path, key)); len(got.Items) != 10 {
				t.Errorf("default page size %d, want 10", len(got.Items))
			}
			for _, bad := range []string{"0", fmt.Sprint(l.maxLimit + 1), "x", ""} {
				wantSpecError(t, http.MethodGet, l.path, e.get(l.path+"?limit="+bad, key), http.StatusBadRequest, "")
			}
		})
	}
	e.t = t
}

// TestPaginationSurvivesDeletion deletes each page's last item (the cursor) before asking for
// the next page, as a tool cleaning up page by page would.
func TestPaginationSurvivesDeletion(t *testing.T) {
	e := newEnv(t, sim.Config{})
	_, key := e.sim.CreateWorkspace("Acme")
	var want []string
	for i := range 9 {
		want = append(want, decode[sim.CustomTag](t, e.call(http.MethodPost, tagsPath, tagsPath, key, fmt.Sprintf(`{"label":"t%d"}`, i))).ID)
	}
	var seen []string
	after := ""
	for range 10 {
		path := tagsPath + "?limit=2"
		if after != "" {
			path += "&starting_after=" + after
		}
		pg := decode[list[sim.CustomTag]](t, e.call(http.MethodGet, tagsPath, path, key, ""))
		if len(pg.Items) == 0 {
			break
		}
		for _, tg := range pg.Items {
			seen = append(seen, tg.ID)
		}
		after = pg.NextStartingAfter
		e.call(http.MethodDelete, tagPattern, tagsPath+"/"+after, key, "")
	}
	if !slices.Equal(seen, want) {
		t.Errorf("walk while deleting: %v, want %v", seen, want)
	}
	// An unknown cursor is compared like any other: one before every id lists everything.
	if got := decode[list[sim.CustomTag]](t, e.get(tagsPath+"?starting_after=0", key)); len(got.Items) != 4 {
		t.Errorf("after cursor \"0\": %d items, want the 4 left", len(got.Items))
	}
	if got := decode[list[sim.CustomTag]](t, e.get(tagsPath+"?starting_after=zzz", key)); len(got.Items) != 0 {
		t.Errorf("after cursor \"zzz\": %d items, want none", len(got.Items))
	}
}
