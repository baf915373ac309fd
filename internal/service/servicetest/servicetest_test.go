package servicetest

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/instantly"
)

// TestRegisteredWorkspaceResolves: a registered workspace's sealed key
// opens and reaches its simulator twin; the caller's scope applies.
func TestRegisteredWorkspaceResolves(t *testing.T) {
	e := New(t, Options{})
	a := e.Register(t, "a", map[string]string{"client": "a"})
	e.Register(t, "b", map[string]string{"client": "b"})

	target, err := e.Resolver.Resolve(Admin(), a.Name)
	if err != nil {
		t.Fatal(err)
	}
	if target.Cred.APIKey != a.APIKey {
		t.Fatal("the opened key is not the workspace's")
	}
	if _, err := e.Client.ListAPIKeys(Admin(), target.Cred, instantly.ListParams{Limit: 1}); err != nil {
		t.Fatalf("simulator refused the stored key: %v", err)
	}
	if _, err := e.Resolver.Resolve(As(auth.RoleViewer, "client=b"), a.Name); status.Code(err) != codes.NotFound {
		t.Fatalf("out of scope: %v, want NotFound", err)
	}
}
