package memory

import (
	"context"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

func TestAuditRetention(t *testing.T) {
	now := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	s := NewWithOptions(Options{AuditRetention: time.Hour, Now: func() time.Time { return now }})
	ctx := context.Background()
	if err := s.Audit().Append(ctx, &store.AuditEvent{Time: now, Method: "/old"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if err := s.Audit().Append(ctx, &store.AuditEvent{Time: now, Method: "/new"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Audit().List(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(got) != 1 || got[0].Method != "/new" {
		t.Fatalf("after retention: %v %v", got, err)
	}
}

func TestAuditMaxEvents(t *testing.T) {
	s := NewWithOptions(Options{AuditMaxEvents: 3})
	ctx := context.Background()
	for _, m := range []string{"/1", "/2", "/3", "/4", "/5"} {
		if err := s.Audit().Append(ctx, &store.AuditEvent{Time: time.Now(), Method: m}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Audit().List(ctx, store.AuditQuery{Limit: 10})
	if err != nil || len(got) != 3 || got[0].Method != "/5" || got[2].Method != "/3" {
		t.Fatalf("after the size bound: %v %v", got, err)
	}
}
