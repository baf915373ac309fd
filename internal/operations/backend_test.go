package operations

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// backends returns a fresh instance of every backend, claim timeout short.
func backends(t *testing.T, claim time.Duration) map[string]func() Backend {
	return map[string]func() Backend{
		"memory": func() Backend { return NewMemory(MemoryOptions{ClaimTimeout: claim}) },
		"redis": func() Backend {
			return NewRedis(redistest.Start(t), RedisOptions{Prefix: redistest.Prefix(t), ClaimTimeout: claim, Block: 100 * time.Millisecond})
		},
	}
}

// forEach runs the suite case against every backend.
func forEach(t *testing.T, claim time.Duration, fn func(t *testing.T, b Backend)) {
	for name, mk := range backends(t, claim) {
		t.Run(name, func(t *testing.T) { fn(t, mk()) })
	}
}

func newRecord(id string, created time.Time, workspaces ...string) *Record {
	rec := &Record{ID: id, Method: "/agency.v1.FanoutService/OnboardMembers", Request: []byte{1, 2, 3},
		Creator: "tokens/t1", CreatorRole: "admin", CreateTime: created}
	for _, w := range workspaces {
		rec.Entries = append(rec.Entries, Entry{Workspace: w, People: []int32{0, 1}, Offset: rec.Total})
		rec.Total += 2
	}
	return rec
}

func takeAll(t *testing.T, b Backend, consumer string, n int) []Delivery {
	t.Helper()
	ctx := context.Background()
	var out []Delivery
	deadline := time.Now().Add(5 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		ds, err := b.Take(ctx, consumer, n-len(out))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ds...)
	}
	if len(out) != n {
		t.Fatalf("took %d tasks, want %d", len(out), n)
	}
	return out
}

func TestBackendCreateGetRecord(t *testing.T) {
	forEach(t, time.Minute, func(t *testing.T, b Backend) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		rec := newRecord("op1", now, "workspaces/a", "workspaces/b")
		if err := b.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		got, st, err := b.Get(ctx, "op1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Total != 4 || len(got.Entries) != 2 || got.Entries[1].Offset != 2 || !slices.Equal(got.Request, []byte{1, 2, 3}) || got.Creator != "tokens/t1" {
			t.Fatalf("record = %+v", got)
		}
		if st.Done != 0 || st.Failed != 0 || !st.EndTime.IsZero() || st.CancelRequested {
			t.Fatalf("status = %+v", st)
		}
		if _, _, err := b.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get(nope) = %v, want ErrNotFound", err)
		}
		if err := b.Running(ctx, "op1", 0, 2); err != nil {
			t.Fatal(err)
		}
		if _, st, _ = b.Get(ctx, "op1"); st.Running != 2 {
			t.Fatalf("running = %d, want 2", st.Running)
		}
		// First write wins; a second write of the same item counts nothing.
		for i, r := range []ItemResult{
			{Index: 0, Entry: 0, Outcome: "CREATED", Data: []byte("a0")},
			{Index: 0, Entry: 0, Outcome: "FAILED", Failed: true, Data: []byte("again")},
			{Index: 1, Entry: 0, Outcome: "FAILED", Failed: true, Data: []byte("a1")},
			{Index: 3, Entry: 1, Outcome: "ALREADY_DONE", Data: []byte("b1")},
		} {
			ok, ended, err := b.Record(ctx, "op1", r)
			if err != nil || ended {
				t.Fatal(err, ended)
			}
			if ok != (i != 1) {
				t.Fatalf("record %d stored = %v", i, ok)
			}
		}
		_, st, _ = b.Get(ctx, "op1")
		if st.Done != 2 || st.Failed != 1 || st.Outcomes["CREATED"] != 1 || st.Outcomes["FAILED"] != 1 || st.Outcomes["ALREADY_DONE"] != 1 || st.Running != 0 {
			t.Fatalf("status = %+v", st)
		}
		if !st.EndTime.IsZero() {
			t.Fatal("ended with an item missing")
		}
		res, err := b.Results(ctx, "op1", []int64{0, 1, 2, 3})
		if err != nil {
			t.Fatal(err)
		}
		if string(res[0]) != "a0" || string(res[1]) != "a1" || res[2] != nil || string(res[3]) != "b1" {
			t.Fatalf("results = %v", res)
		}
		if err := b.Delete(ctx, "op1"); !errors.Is(err, ErrRunning) {
			t.Fatalf("Delete(running) = %v, want ErrRunning", err)
		}
		if ok, ended, err := b.Record(ctx, "op1", ItemResult{Index: 2, Entry: 1, Outcome: "CREATED", Data: []byte("b0")}); !ok || !ended || err != nil {
			t.Fatal(ok, ended, err)
		}
		_, st, _ = b.Get(ctx, "op1")
		if st.EndTime.IsZero() || !st.Finished(4) {
			t.Fatalf("not ended after the last item: %+v", st)
		}
		if err := b.Cancel(ctx, "op1"); !errors.Is(err, ErrFinished) {
			t.Fatalf("Cancel(finished) = %v, want ErrFinished", err)
		}
		if err := b.Delete(ctx, "op1"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Get(ctx, "op1"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after delete = %v", err)
		}
		if _, _, err := b.Record(ctx, "op1", ItemResult{Index: 0}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Record after delete = %v", err)
		}
	})
}

func TestBackendFailedItemsAndIntents(t *testing.T) {
	forEach(t, time.Minute, func(t *testing.T, b Backend) {
		ctx := context.Background()
		rec := newRecord("op2", time.Now(), "workspaces/a", "workspaces/b", "workspaces/c")
		if err := b.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		for _, i := range []int64{5, 1, 3} {
			if _, _, err := b.Record(ctx, "op2", ItemResult{Index: i, Entry: int(i / 2), Outcome: "FAILED", Failed: true}); err != nil {
				t.Fatal(err)
			}
		}
		page, total, err := b.FailedItems(ctx, "op2", -1, 2)
		if err != nil || total != 3 || !slices.Equal(page, []int64{1, 3}) {
			t.Fatalf("page 1 = %v %d %v", page, total, err)
		}
		page, _, _ = b.FailedItems(ctx, "op2", 3, 2)
		if !slices.Equal(page, []int64{5}) {
			t.Fatalf("page 2 = %v", page)
		}
		if at, err := b.Intent(ctx, "op2", 4); err != nil || !at.IsZero() {
			t.Fatalf("intent before = %v %v", at, err)
		}
		first := time.Now().UTC().Truncate(time.Microsecond)
		if at, err := b.SetIntent(ctx, "op2", 4, first); err != nil || !at.Equal(first) {
			t.Fatalf("SetIntent = %v %v", at, err)
		}
		if at, err := b.SetIntent(ctx, "op2", 4, first.Add(time.Hour)); err != nil || !at.Equal(first) {
			t.Fatalf("second SetIntent = %v, want the first %v (%v)", at, first, err)
		}
		if at, _ := b.Intent(ctx, "op2", 4); !at.Equal(first) {
			t.Fatalf("Intent = %v", at)
		}
		if c, err := b.CancelRequested(ctx, "op2"); err != nil || c {
			t.Fatalf("CancelRequested before Cancel = %v, %v", c, err)
		}
		if err := b.Cancel(ctx, "op2"); err != nil {
			t.Fatal(err)
		}
		if c, err := b.CancelRequested(ctx, "op2"); err != nil || !c {
			t.Fatalf("CancelRequested after Cancel = %v, %v", c, err)
		}
		if _, st, _ := b.Get(ctx, "op2"); !st.CancelRequested {
			t.Fatal("cancel not recorded")
		}
	})
}

func TestBackendList(t *testing.T) {
	forEach(t, time.Minute, func(t *testing.T, b Backend) {
		ctx := context.Background()
		base := time.Now().Add(-time.Hour)
		for i := range 7 {
			rec := newRecord(fmt.Sprintf("list%d", i), base.Add(time.Duration(i)*time.Second)) // no items: ended, so deletable
			rec.Creator = []string{"tokens/a", "tokens/b"}[i%2]
			if err := b.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		// Two created in the same millisecond: the id breaks the tie.
		for _, id := range []string{"list7a", "list7b"} {
			rec := newRecord(id, base.Add(7*time.Second))
			rec.Creator = "tokens/a"
			if err := b.Create(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
		walk := func(match func(*Record) bool, onPage func([]*Record)) []string {
			var ids []string
			var after *Cursor
			for {
				page, err := b.List(ctx, ListQuery{After: after, Limit: 2, Match: match})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range page {
					ids = append(ids, r.ID)
				}
				if len(page) < 2 {
					return ids
				}
				after = CursorOf(page[len(page)-1])
				onPage(page)
			}
		}
		ids := walk(func(r *Record) bool { return r.Creator == "tokens/a" }, func([]*Record) {})
		if want := []string{"list7b", "list7a", "list6", "list4", "list2", "list0"}; !slices.Equal(ids, want) {
			t.Fatalf("ids = %v, want %v", ids, want)
		}
		// A client deleting each page as it lists it still sees every
		// operation: the cursor outlives its operation.
		ids = walk(nil, func(page []*Record) {
			for _, r := range page {
				if err := b.Delete(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
		})
		if want := []string{"list7b", "list7a", "list6", "list5", "list4", "list3", "list2", "list1", "list0"}; !slices.Equal(ids, want) {
			t.Fatalf("deleting while listing: ids = %v, want %v", ids, want)
		}
	})
}

func TestBackendQueue(t *testing.T) {
	forEach(t, 300*time.Millisecond, func(t *testing.T, b Backend) {
		ctx := context.Background()
		if err := b.Create(ctx, newRecord("q1", time.Now(), "workspaces/a", "workspaces/b", "workspaces/c")); err != nil {
			t.Fatal(err)
		}
		got := takeAll(t, b, "c1", 3)
		var entries []int
		for _, d := range got {
			if d.Op != "q1" || d.Attempt != 1 {
				t.Fatalf("delivery %+v", d)
			}
			entries = append(entries, d.Entry)
		}
		slices.Sort(entries)
		if !slices.Equal(entries, []int{0, 1, 2}) {
			t.Fatalf("entries = %v", entries)
		}
		// Nothing new for another consumer while c1 holds them.
		if ds, err := b.Take(ctx, "c2", 10); err != nil || len(ds) != 0 {
			t.Fatalf("c2 took %v (%v)", ds, err)
		}
		if err := b.Ack(ctx, []string{got[0].ID}); err != nil {
			t.Fatal(err)
		}
		// c1 keeps got[1] alive with heartbeats; got[2] goes idle and is
		// claimed by c2 with its attempt counted.
		stop := time.Now().Add(700 * time.Millisecond)
		for time.Now().Before(stop) {
			if err := b.Heartbeat(ctx, "c1", []string{got[1].ID}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		claimed := takeAll(t, b, "c2", 1)
		if claimed[0].ID != got[2].ID || claimed[0].Attempt < 2 {
			t.Fatalf("claimed %+v, want %s attempt ≥ 2", claimed[0], got[2].ID)
		}
		// Release hands a task back at once.
		if err := b.Release(ctx, "c1", []string{got[1].ID}); err != nil {
			t.Fatal(err)
		}
		again := takeAll(t, b, "c3", 1)
		if again[0].Op != "q1" || again[0].Entry != got[1].Entry {
			t.Fatalf("released task came back as %+v, want entry %d", again[0], got[1].Entry)
		}
		if err := b.Ack(ctx, []string{claimed[0].ID, again[0].ID}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
		if ds, err := b.Take(ctx, "c4", 10); err != nil || len(ds) != 0 {
			t.Fatalf("after every ack, took %v (%v)", ds, err)
		}
	})
}

// TestBackendConcurrentRecord: many writers of the same items count each
// once.
func TestBackendConcurrentRecord(t *testing.T) {
	forEach(t, time.Minute, func(t *testing.T, b Backend) {
		ctx := context.Background()
		rec := newRecord("cc", time.Now(), "workspaces/a", "workspaces/b", "workspaces/c", "workspaces/d", "workspaces/e")
		if err := b.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ends := 0
		for w := range 4 {
			wg.Go(func() {
				for i := range rec.Total {
					_, ended, err := b.Record(ctx, "cc", ItemResult{Index: i, Entry: int(i / 2), Outcome: "CREATED", Data: []byte{byte(w)}})
					if err != nil {
						t.Error(err)
					}
					if ended {
						mu.Lock()
						ends++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if ends != 1 {
			t.Fatalf("%d records ended the operation, want exactly 1", ends)
		}
		_, st, _ := b.Get(ctx, "cc")
		if st.Done != rec.Total || st.Outcomes["CREATED"] != rec.Total || st.EndTime.IsZero() {
			t.Fatalf("status = %+v, want %d done and ended", st, rec.Total)
		}
	})
}

// TestRetention: an ended operation is kept for the retention, then gone
// (memory on its clock; Redis by the keys' TTL, set when it ends).
func TestRetention(t *testing.T) {
	ctx := context.Background()
	t.Run("memory", func(t *testing.T) {
		now := time.Now()
		m := NewMemory(MemoryOptions{Retention: time.Hour, Now: func() time.Time { return now }})
		if err := m.Create(ctx, newRecord("old", now, "workspaces/a")); err != nil {
			t.Fatal(err)
		}
		for i := range int64(2) {
			if _, _, err := m.Record(ctx, "old", ItemResult{Index: i, Outcome: "CREATED"}); err != nil {
				t.Fatal(err)
			}
		}
		now = now.Add(59 * time.Minute)
		if _, _, err := m.Get(ctx, "old"); err != nil {
			t.Fatalf("within retention: %v", err)
		}
		now = now.Add(2 * time.Minute)
		if _, _, err := m.Get(ctx, "old"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("after retention: %v, want ErrNotFound", err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		rdb := redistest.Start(t)
		prefix := redistest.Prefix(t)
		r := NewRedis(rdb, RedisOptions{Prefix: prefix, Retention: time.Hour})
		if err := r.Create(ctx, newRecord("old", time.Now(), "workspaces/a")); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, r.opKey("old")).Val(); ttl < time.Hour || ttl > 2*time.Hour {
			t.Fatalf("TTL while running = %v, want up to twice the retention", ttl)
		}
		for i := range int64(2) {
			if _, _, err := r.Record(ctx, "old", ItemResult{Index: i, Outcome: "CREATED", Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []string{r.opKey("old"), r.opKey("old") + ":results"} {
			if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 59*time.Minute || ttl > time.Hour {
				t.Fatalf("TTL of %s after the end = %v, want the retention", k, ttl)
			}
		}
	})
}
