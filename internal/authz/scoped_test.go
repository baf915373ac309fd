package authz

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/store/storetest"
)

func TestScopedView(t *testing.T) {
	raw := memory.New().Workspaces()
	west, east := storetest.Workspace("west"), storetest.Workspace("east")
	west.Labels["team"], east.Labels["team"] = "west", "east"
	for _, w := range []*store.Workspace{west, east} {
		if err := raw.Create(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	s := Scoped(raw)
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{ID: "tokens/t", Role: auth.RoleAdmin, Scope: labels.MustParse("team=west")})

	if _, err := s.Get(ctx, "workspaces/west"); err != nil {
		t.Fatalf("in scope: %v", err)
	}
	if _, err := s.Get(ctx, "workspaces/east"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("out of scope must be not found: %v", err)
	}
	if _, err := s.GetByInstantlyID(ctx, "inst-east"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("out of scope by Instantly id: %v", err)
	}
	list, err := s.List(ctx, store.ListQuery{Limit: 10})
	if err != nil || len(list) != 1 || list[0].Name != "workspaces/west" {
		t.Fatalf("list: %v %v", list, err)
	}
	if err := s.Delete(ctx, "workspaces/east"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete out of scope: %v", err)
	}
	if _, err := s.Update(ctx, "workspaces/east", func(*store.Workspace) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update out of scope: %v", err)
	}
	// Relabelling out of the scope, or creating outside it, is refused.
	_, err = s.Update(ctx, "workspaces/west", func(w *store.Workspace) error { w.Labels["team"] = "east"; return nil })
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("relabel out of scope: %v", err)
	}
	nw := storetest.Workspace("north")
	if err := s.Create(ctx, nw); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("create out of scope: %v", err)
	}
	// No principal: nothing is visible.
	if _, err := s.Get(context.Background(), "workspaces/west"); err == nil {
		t.Fatal("a context without a principal saw a workspace")
	}
	if w, _ := raw.Get(context.Background(), "workspaces/east"); w == nil {
		t.Fatal("east was deleted through the scoped view")
	}
}

func TestAuthorizeDeniesByDefault(t *testing.T) {
	a := NewAuthorizer()
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{ID: "tokens/t", Role: auth.RoleAdmin})
	if err := a.Authorize(ctx, "/agency.v1.Unknown/Method"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a method without a rule: %v", err)
	}
	if err := a.Authorize(context.Background(), "/agency.v1.WorkspaceService/GetWorkspace"); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no principal: %v", err)
	}
	viewer := auth.WithPrincipal(context.Background(), &auth.Principal{ID: "tokens/v", Role: auth.RoleViewer})
	if err := a.Authorize(viewer, "/agency.v1.MemberService/ListMembers"); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("viewer listing members: %v", err)
	}
	if err := a.Authorize(viewer, "/agency.v1.TagService/ListTags"); err != nil {
		t.Fatalf("viewer listing tags: %v", err)
	}
}
