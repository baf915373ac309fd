package authz

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Scoped returns a view of the workspace store limited to the caller's
// workspace scope (the principal in each call's context). A workspace
// outside the scope does not exist for the caller: NOT_FOUND, never
// PERMISSION_DENIED, which would confirm it exists. A context without a
// principal sees nothing.
func Scoped(inner store.Workspaces) store.Workspaces { return scoped{inner} }

type scoped struct{ inner store.Workspaces }

func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, errors.New("authz: no principal in context")
	}
	return p, nil
}

// visible fails with ErrNotFound for a workspace outside the scope.
func visible(ctx context.Context, w *store.Workspace) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !p.Scope.Matches(w.Labels) {
		return fmt.Errorf("%s is outside the caller's scope: %w", w.Name, store.ErrNotFound)
	}
	return nil
}

func outOfScope(labels string) error {
	return apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
		"the workspace's labels would be outside your workspace scope "+labels)
}

func (s scoped) Create(ctx context.Context, w *store.Workspace) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !p.Scope.Matches(w.Labels) {
		return outOfScope(p.Scope.String())
	}
	return s.inner.Create(ctx, w)
}

func (s scoped) Get(ctx context.Context, name string) (*store.Workspace, error) {
	w, err := s.inner.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := visible(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

func (s scoped) GetByInstantlyID(ctx context.Context, id string) (*store.Workspace, error) {
	w, err := s.inner.GetByInstantlyID(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := visible(ctx, w); err != nil {
		return nil, err
	}
	return w, nil
}

func (s scoped) List(ctx context.Context, q store.ListQuery) ([]*store.Workspace, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	match := q.Match
	q.Match = func(l map[string]string) bool {
		return p.Scope.Matches(l) && (match == nil || match(l))
	}
	return s.inner.List(ctx, q)
}

func (s scoped) Update(ctx context.Context, name string, fn func(*store.Workspace) error) (*store.Workspace, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	return s.inner.Update(ctx, name, func(w *store.Workspace) error {
		if !p.Scope.Matches(w.Labels) {
			return fmt.Errorf("%s is outside the caller's scope: %w", w.Name, store.ErrNotFound)
		}
		if err := fn(w); err != nil {
			return err
		}
		if !p.Scope.Matches(w.Labels) {
			return outOfScope(p.Scope.String())
		}
		return nil
	})
}

func (s scoped) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	return s.inner.Delete(ctx, name)
}
