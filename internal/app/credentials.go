package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// credentialCheck finds stored credentials that the configured master keys
// cannot open: a deployment started with another master key than the one
// its credentials were sealed with would otherwise serve on, every call to
// those workspaces failing. At start it opens every stored credential once
// and logs one error line with the count; while any stays unreadable
// agencyd reports not ready (/readyz, gRPC health) but keeps serving, so an
// operator can rotate or delete those workspaces (or restart with the right
// keys). Readiness re-checks only the workspaces found unreadable.
type credentialCheck struct {
	ws     store.Workspaces
	kr     *vault.Keyring
	logger *slog.Logger

	mu  sync.Mutex
	bad map[string]bool // workspace names whose credential did not open
}

func newCredentialCheck(ws store.Workspaces, kr *vault.Keyring, logger *slog.Logger) *credentialCheck {
	return &credentialCheck{ws: ws, kr: kr, logger: logger, bad: map[string]bool{}}
}

// scan opens every stored credential and logs what cannot be opened.
func (c *credentialCheck) scan(ctx context.Context) error {
	var total int
	unknown := map[string]bool{} // key ids of blobs no configured key has
	var bad []string
	q := store.ListQuery{Limit: 500}
	for {
		page, err := c.ws.List(ctx, q)
		if err != nil {
			return fmt.Errorf("checking stored credentials: %w", err)
		}
		for _, w := range page {
			if w.SealedCredential == "" {
				continue // acts through its admin workspace's key
			}
			total++
			if err := c.open(w); err != nil {
				bad = append(bad, w.Name)
				if id, ok := sealedKeyID(w.SealedCredential); ok && errors.Is(err, vault.ErrUnknownKey) {
					unknown[id] = true
				}
			}
		}
		if len(page) < q.Limit {
			break
		}
		q.After = page[len(page)-1].Name
	}
	c.mu.Lock()
	for _, n := range bad {
		c.bad[n] = true
	}
	c.mu.Unlock()
	if len(bad) == 0 {
		c.logger.Info("stored credentials open with the configured master keys", "credentials", total)
		return nil
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range unknown {
			if !yield(id) {
				return
			}
		}
	})
	c.logger.Error(fmt.Sprintf("%d of %d stored credentials cannot be opened with the configured master keys: agencyd reports not ready until they are rotated or deleted, or it runs with the master key they were sealed with (AGENCY_MASTER_KEY or --master-key-file, newest first)", len(bad), total),
		"unreadable", len(bad), "credentials", total, "configured_key_ids", strings.Join(c.kr.KeyIDs(), ","),
		"missing_key_ids", strings.Join(ids, ","), "workspaces", strings.Join(firstN(bad, 20), ","))
	return nil
}

func (c *credentialCheck) open(w *store.Workspace) error {
	_, err := c.kr.Open([]byte(w.SealedCredential), []byte(w.Name))
	return err
}

// Ready re-checks the workspaces found unreadable: one that was deleted,
// or whose credential was rotated (sealed anew with the current key), no
// longer counts.
func (c *credentialCheck) Ready(ctx context.Context) error {
	c.mu.Lock()
	names := make([]string, 0, len(c.bad))
	for n := range c.bad {
		names = append(names, n)
	}
	c.mu.Unlock()
	if len(names) == 0 {
		return nil
	}
	var still int
	for _, n := range names {
		w, err := c.ws.Get(ctx, n)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return fmt.Errorf("checking stored credentials: %w", err)
		case w.SealedCredential != "" && c.open(w) != nil:
			still++
			continue
		}
		c.mu.Lock()
		delete(c.bad, n)
		c.mu.Unlock()
	}
	if still == 0 {
		c.logger.Info("every stored credential opens with the configured master keys again")
		return nil
	}
	return fmt.Errorf("%d stored credentials cannot be opened with the configured master keys", still)
}

// sealedKeyID is the master-key id a sealed blob names ("v1.<id>.<payload>").
func sealedKeyID(sealed string) (string, bool) {
	parts := strings.SplitN(sealed, ".", 3)
	if len(parts) != 3 {
		return "", false
	}
	return parts[1], true
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}
