package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/store"
)

// ReleasePath is where an admin releases the removals the hourly cap
// paused (POST, a control-plane admin token without a scope).
const ReleasePath = "/v1/scim:releaseRemovals"

// Paused returns how many removals (workspaces × people) wait for release.
func (h *Handler) Paused(ctx context.Context) (int, error) {
	docs, err := h.opts.Store.List(ctx, kindPaused)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, d := range docs {
		var p pausedDoc
		if json.Unmarshal(d, &p) == nil {
			n += len(p.Workspaces)
		}
	}
	return n, nil
}

// ReleaseHandler serves ReleasePath: every paused removal starts now, as
// its own operation, whatever the cap; the answer names the operations.
// GET answers what is paused.
func (h *Handler) ReleaseHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			authError(w, err)
			return
		}
		if p.Role != auth.RoleAdmin || !p.Scope.Empty() {
			writeError(w, &scimError{Status: http.StatusForbidden, Detail: "releasing paused removals needs an admin without a workspace scope"})
			return
		}
		ctx := auth.WithPrincipal(r.Context(), p)
		if r.Method == http.MethodGet {
			n, err := h.Paused(ctx)
			if err != nil {
				h.fail(w, r, err)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"paused": n})
			return
		}
		if r.Method != http.MethodPost {
			writeError(w, &scimError{Status: http.StatusMethodNotAllowed, Detail: "GET or POST"})
			return
		}
		if !h.provisioning() {
			writeError(w, &scimError{Status: http.StatusNotFound, Detail: "SCIM provisioning is not configured (--scim-mapping)"})
			return
		}
		released, err := h.release(ctx)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"released": released})
	})
}

func (h *Handler) release(ctx context.Context) (int, error) {
	docs, err := h.opts.Store.List(ctx, kindPaused)
	if err != nil {
		return 0, err
	}
	reqID := newID()
	released := 0
	for _, d := range docs {
		var p pausedDoc
		if err := json.Unmarshal(d, &p); err != nil {
			continue
		}
		// Delete first: a paused removal is started once even when two
		// admins release at the same time.
		if err := h.opts.Store.Delete(ctx, kindPaused, p.ID); err != nil {
			if errors.Is(err, errNotFound) {
				continue
			}
			return released, err
		}
		if err := h.startRemoval(ctx, p.Email, p.Workspaces, reqID); err != nil {
			return released, err
		}
		released += len(p.Workspaces)
	}
	h.audit(ctx, "scim/ReleaseRemovals", reqID, nil, store.AuditPhaseFinished, "OK", "")
	return released, nil
}
