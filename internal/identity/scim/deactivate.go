package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/agencyplane/agencyplane/internal/store"
)

// kindDeactivated records, by lower-cased email, a person the identity
// provider deactivated or deleted: their OIDC principal is refused and the
// control-plane tokens they created are revoked until they are active again.
const kindDeactivated = "Deactivated"

type deactivatedDoc struct {
	Email  string    `json:"email"`
	UserID string    `json:"user_id"`
	Time   time.Time `json:"time"`
}

// Deactivated returns the check the authenticator makes of an OIDC
// caller's email claim: whether SCIM has deactivated or deleted that person.
func Deactivated(st Store) func(ctx context.Context, email string) (bool, error) {
	return func(ctx context.Context, email string) (bool, error) {
		email = strings.ToLower(strings.TrimSpace(email))
		if email == "" {
			return false, nil
		}
		_, err := st.Get(ctx, kindDeactivated, email)
		if errors.Is(err, errNotFound) {
			return false, nil
		}
		return err == nil, err
	}
}

// accountState applies a user's active state to the person's control-plane
// access: inactive (or deleted) records the email as deactivated and revokes
// every token that person created; active lifts the record (revoked tokens
// stay revoked). Level-triggered: every write of the user applies it again.
func (h *Handler) accountState(ctx context.Context, u *User, deleted bool) error {
	email := u.Email()
	if email == "" {
		return nil
	}
	if !deleted && bool(u.Active) {
		err := h.opts.Store.Delete(ctx, kindDeactivated, email)
		if errors.Is(err, errNotFound) {
			err = nil
		}
		return err
	}
	doc, _ := json.Marshal(&deactivatedDoc{Email: email, UserID: u.ID, Time: h.opts.Now().UTC()})
	if err := h.opts.Store.Create(ctx, kindDeactivated, email, email, doc); err != nil && !errors.Is(err, errTaken) {
		return fmt.Errorf("scim: recording %s as deactivated: %w", email, err)
	}
	return h.revokeTokens(ctx, email)
}

// revokeTokens revokes every active control-plane token whose creator was
// the person with that email.
func (h *Handler) revokeTokens(ctx context.Context, email string) error {
	if h.opts.Tokens == nil {
		return nil
	}
	now := h.opts.Now().UTC()
	var revoked []string
	after := ""
	for {
		page, err := h.opts.Tokens.List(ctx, after, 500)
		if err != nil {
			return fmt.Errorf("scim: listing tokens: %w", err)
		}
		for _, t := range page {
			if t.CreatorEmail == "" || !strings.EqualFold(t.CreatorEmail, email) || !t.RevokeTime.IsZero() {
				continue
			}
			_, err := h.opts.Tokens.Update(ctx, t.ID, func(t *store.Token) error {
				if t.RevokeTime.IsZero() {
					t.RevokeTime = now
				}
				return nil
			})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("scim: revoking token %s: %w", t.ID, err)
			}
			revoked = append(revoked, t.ID)
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(revoked) > 0 {
		h.opts.Logger.InfoContext(ctx, "scim: revoked the deactivated person's tokens",
			"email", email, "tokens", revoked, "request_id", requestID(ctx))
	}
	return nil
}

// applyAccountState runs accountState for a write; a failure answers 503 so
// the identity provider retries.
func (h *Handler) applyAccountState(w http.ResponseWriter, r *http.Request, u *User, deleted bool) bool {
	if err := h.accountState(r.Context(), u, deleted); err != nil {
		h.opts.Logger.ErrorContext(r.Context(), "scim: applying the user's active state failed; the identity provider's retry resumes it",
			"request_id", requestID(r.Context()), "error", err.Error())
		writeError(w, &scimError{Status: http.StatusServiceUnavailable, Detail: "saved, but applying the user's active state failed; retry the request"})
		return false
	}
	return true
}
