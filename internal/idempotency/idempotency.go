// Package idempotency makes mutating calls safe to retry (AIP-155): a call
// that carries a request_id is executed once per caller and id; a repeat
// with the same id gets the first answer back and does nothing again, and
// the same id with a different request is INVALID_ARGUMENT.
//
// A key is claimed with a pending record before the handler runs (so two
// concurrent copies of one call cannot both execute), replaced by the
// sealed answer when the call succeeds (kept TTL, 24 h by default), and
// deleted when it fails, so a retry runs again. Answers are stored as a
// google.protobuf.Any sealed with the vault keyring (AAD = the key name):
// some hold secrets (a created API key, a created token) and must never sit
// in Redis in plain text nor be opened under another caller's key.
package idempotency

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultTTL        = 24 * time.Hour
	DefaultPendingTTL = 10 * time.Minute
	DefaultTimeout    = 500 * time.Millisecond
)

// ErrUnavailable: the store could not be reached or failed. Callers fail
// closed: nothing is executed without a claim.
var ErrUnavailable = errors.New("idempotency: store unavailable")

// Record is what a Store keeps under one key: the request's fingerprint and
// either the claim of the call in flight or its sealed answer.
type Record struct {
	// Fingerprint is the hex SHA-256 of the method and the request without
	// its request_id.
	Fingerprint string
	// Claim is the random token of the call in flight; empty once the
	// answer is stored.
	Claim string
	// Response is the answer, sealed by the vault (ASCII); empty while
	// pending.
	Response string
}

// Pending reports whether the call that claimed the key is still in flight
// (or died before its claim expired).
func (r *Record) Pending() bool { return r.Claim != "" }

// Store keeps records with a time to live. Implementations must be safe for
// concurrent use; errors wrap ErrUnavailable.
type Store interface {
	// Claim stores pending under key for ttl unless the key holds a record;
	// then it returns that record and stores nothing. A nil record means
	// the caller holds the claim.
	Claim(ctx context.Context, key string, pending *Record, ttl time.Duration) (*Record, error)
	// Complete replaces pending (matched by its claim) with done for ttl.
	// It reports false, storing nothing, when the key no longer holds that
	// claim (it expired and someone else claimed the key).
	Complete(ctx context.Context, key string, pending, done *Record, ttl time.Duration) (bool, error)
	// Release deletes the key if it still holds pending's claim.
	Release(ctx context.Context, key string, pending *Record) error
}

// Key is the name of principal's record for requestID, without a backend's
// prefix. The principal is hashed so keys have one shape whatever the
// caller's id; its hash is the Redis Cluster hash tag. It is also the AAD
// of the sealed answer, so an answer cannot be opened under another key.
func Key(principal, requestID string) string {
	sum := sha256.Sum256([]byte(principal))
	return "idem:{" + hex.EncodeToString(sum[:16]) + "}:" + strings.ToLower(requestID)
}
