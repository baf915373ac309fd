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
