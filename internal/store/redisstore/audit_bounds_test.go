package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/redisstore"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestAuditMaxEvents: the stream is bounded by size as well as age: XTRIM
// MAXLEN ~ keeps about AuditMaxEvents (whole stream nodes of up to 100
// entries go at once, so a little more), newest kept.
func TestAuditMaxEvents(t *testing.T) {
	c := redistest.Start(t)
	p := redistest.Prefix(t)
	s := redisstore.New(c, redisstore.Options{Prefix: p, AuditMaxEvents: 150})
	ctx := context.Background()
	for i := range 1000 {
		if err := s.Audit().Append(ctx, &store.AuditEvent{Time: time.Now(), Method: fmt.Sprintf("/m%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := c.XLen(ctx, p+"audit").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n < 150 || n > 250 {
		t.Fatalf("XLEN = %d, want about 150 (at most one stream node more)", n)
	}
	got, err := s.Audit().List(ctx, store.AuditQuery{Limit: 1})
	if err != nil || len(got) != 1 || got[0].Method != "/m999" {
		t.Fatalf("newest event: %v %v", got, err)
	}
}

// TestAuditEventCost measures what an event costs in Redis (MEMORY USAGE of
// the stream over its length) for the README: a unary call's pair of events
// and a fan-out's compact outcome (only the workspaces that changed or
// failed).
func TestAuditEventCost(t *testing.T) {
	c := redistest.Start(t)
	ctx := context.Background()
	names := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("workspaces/client-%03d", i)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ev   func(i int) *store.AuditEvent
		max  int64
	}{
		{"unary call (started + finished)", func(i int) *store.AuditEvent {
			e := &store.AuditEvent{Time: time.Now(), Principal: "tokens/3f2a9c1b", Role: "admin", Method: "/agency.v1.TagService/CreateTag",
				RequestID: fmt.Sprintf("%024x", i), Workspaces: []string{"workspaces/client-042"}}
			if i%2 == 1 {
				e.Phase, e.Code, e.Succeeded = store.AuditPhaseFinished, "OK", 1
			} else {
				e.Phase = store.AuditPhaseStarted
			}
			return e
		}, 400},
		{"fan-out outcome, 10 changed of 200", func(i int) *store.AuditEvent {
			return &store.AuditEvent{Time: time.Now(), Principal: "tokens/3f2a9c1b", Role: "admin", Method: "/agency.v1.FanoutService/EnsureTagEverywhere",
				RequestID: fmt.Sprintf("%024x", i), Phase: store.AuditPhaseFinished, Workspaces: names(10), Code: "OK", Succeeded: 10, AlreadyDone: 190}
		}, 800},
	} {
		p := redistest.Prefix(t) + fmt.Sprint(len(tc.name)) + ":"
		s := redisstore.New(c, redisstore.Options{Prefix: p})
		const n = 2000
		for i := range n {
			if err := s.Audit().Append(ctx, tc.ev(i)); err != nil {
				t.Fatal(err)
			}
		}
		bytes, err := c.MemoryUsage(ctx, p+"audit", 0).Result()
		if err != nil {
			t.Fatal(err)
		}
		per := bytes / n
		t.Logf("%s: %d bytes per event (MEMORY USAGE %d for %d events)", tc.name, per, bytes, n)
		if per > tc.max {
			t.Errorf("%s: %d bytes per event, README says at most %d", tc.name, per, tc.max)
		}
	}
}
