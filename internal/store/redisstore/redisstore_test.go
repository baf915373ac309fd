package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/redisstore"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

func TestMain(m *testing.M) { redistest.Main(m) }

func TestConformance(t *testing.T) {
	storetest.RunAll(t, func(t *testing.T) store.Store {
		return redisstore.New(redistest.Start(t), redisstore.Options{Prefix: redistest.Prefix(t)})
	})
}

// TestRedisDown checks that a dead Redis fails fast with ErrUnavailable, not
// a hang and not a raw Redis error.
func TestRedisDown(t *testing.T) {
	srv := redistest.StartServer(t)
	s := redisstore.New(srv.Client, redisstore.Options{Prefix: "down:", OpTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	if err := s.Workspaces().Create(ctx, storetest.Workspace("acme")); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	_, err := s.Workspaces().Get(ctx, "workspaces/acme")
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := s.Workspaces().Update(ctx, "workspaces/acme", func(*store.Workspace) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Update with Redis down: %v, want ErrUnavailable", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping with Redis down: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("failing took %v", d)
	}
}
