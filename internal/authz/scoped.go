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

// CheckLabels refuses (PERMISSION_DENIED) labels that would put a workspace
// outside the caller's scope: a scoped caller cannot register or relabel a
// workspace out of its own reach.
func CheckLabels(ctx context.Context, labels map[string]string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !p.Scope.Matches(labels) {
		return outOfScope(p.Scope.String())
	}
	return nil
}

// InstantlyID applies the caller's scope to a raw Instantly workspace id,
// the one rule for every request that names a workspace by its Instantly
// id rather than by its registry name. raw is the unscoped registry.
//
// A registered workspace is judged by its labels, like any registry name;
// an unregistered one by unregistered, the labels it would have: none when
// it is only named (so a caller scoped to client=a may not name it, while
// an unscoped caller may), the new labels when it is being registered. It
// returns the registered workspace (nil for an unregistered one the caller
// may name), or an error wrapping store.ErrNotFound. Registered outside the
// scope and unregistered outside it fail alike, so the answer built on it
// must also be the one for an id that names nothing: the caller must not
// learn which it was.
func InstantlyID(ctx context.Context, raw store.Workspaces, id string, unregistered map[string]string) (*store.Workspace, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	w, err := raw.GetByInstantlyID(ctx, id)
	switch {
	case err == nil && p.Scope.Matches(w.Labels):
		return w, nil
	case err == nil:
		return nil, fmt.Errorf("Instantly workspace %s is %s, outside the caller's scope: %w", id, w.Name, store.ErrNotFound)
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	case p.Scope.Matches(unregistered):
		return nil, nil
	}
	return nil, fmt.Errorf("Instantly workspace %s is not registered and would be outside the caller's scope: %w", id, store.ErrNotFound)
}

func (s scoped) Create(ctx context.Context, w *store.Workspace) error {
	if err := CheckLabels(ctx, w.Labels); err != nil {
		return err
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
