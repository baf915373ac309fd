package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/service/workspaces"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPanicBecomesInternal: a panicking handler answers INTERNAL with a
// plain message (no panic text), is logged with its stack, and the server
// keeps serving.
func TestPanicBecomesInternal(t *testing.T) {
	st := memory.New()
	const token = "server-test-token-0123456789"
	if err := st.Tokens().Create(context.Background(), &store.Token{ID: "t", Hash: auth.HashToken(token), Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(auth.Options{Tokens: st.Tokens()})
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuf{}
	// A service with no store panics on its first store call.
	svc := workspaces.New(workspaces.Deps{})
	srv, err := New(Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.NewJSONHandler(logs, nil)),
		Store: st, Auth: authn, Services: []Service{{Desc: &agencyv1.WorkspaceService_ServiceDesc, Impl: svc}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := agencyv1.NewWorkspaceServiceClient(conn)
	callCtx, callCancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 5*time.Second)
	defer callCancel()
	for range 2 {
		_, err := c.GetWorkspace(callCtx, &agencyv1.GetWorkspaceRequest{Name: "workspaces/x"})
		if status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
			t.Fatalf("got %v, want INTERNAL with a plain message", err)
		}
	}
	if !strings.Contains(logs.String(), "panic in handler") || !strings.Contains(logs.String(), "goroutine") {
		t.Fatalf("panic not logged with its stack: %s", logs.String())
	}
	h, err := healthpb.NewHealthClient(conn).Check(callCtx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("server unhealthy after a panic: %v %v", h, err)
	}
}
