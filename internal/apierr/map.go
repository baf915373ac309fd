package apierr

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/store"
)

// FromError maps any error to an *Error with a public message. It is called
// once, at the API edge; the original error stays reachable through Unwrap
// for logs. Errors that already carry a gRPC status keep it.
func FromError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var upstream *instantly.Error
	var invalid *instantly.InvalidAnswerError
	switch {
	case errors.Is(err, ratelimit.ErrUnavailable):
		// Checked before the context errors it may wrap. Fail closed:
		// without the shared budget nothing is sent upstream.
		return Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE, "rate-limit store unavailable; nothing was sent to Instantly", err)
	case errors.Is(err, store.ErrUnavailable):
		// Also before the context errors: a store wraps ErrUnavailable
		// only when its own round-trip timeout (which go-redis reports as
		// the context's deadline) or Redis failed, never the caller's end.
		return Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE, "state store unavailable", err)
	case errors.Is(err, context.Canceled):
		return Wrap(codes.Canceled, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "request canceled", err)
	case errors.Is(err, context.DeadlineExceeded):
		return Wrap(codes.DeadlineExceeded, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "deadline exceeded", err)
	case errors.As(err, &upstream):
		return FromUpstream(upstream)
	case errors.As(err, &invalid):
		// Instantly's fault, not ours (so not INTERNAL), and a later try may
		// pass. There is no UPSTREAM_INVALID reason in the proto: the
		// metadata tells this apart from an unreachable Instantly.
		return Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE,
			"Instantly gave an invalid answer: "+strings.TrimPrefix(invalid.Error(), "instantly: "), err).
			WithMetadata("upstream_answer", "invalid")
	case errors.Is(err, instantly.ErrUnreachable):
		return Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE, "Instantly could not be reached", err)
	case errors.Is(err, store.ErrNotFound):
		return Wrap(codes.NotFound, agencyv1.ErrorReason_ERROR_REASON_NOT_FOUND, "not found", err)
	case errors.Is(err, store.ErrAlreadyExists):
		return Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS, "already exists", err)
	case errors.Is(err, store.ErrDuplicateInstantlyWorkspace):
		return Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS, "this Instantly workspace is already registered", err)
	case errors.Is(err, store.ErrConflict):
		return Wrap(codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_CONCURRENT_MODIFICATION, "concurrent modification; retry", err)
	case errors.Is(err, operations.ErrUnavailable):
		return Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE, "operation store unavailable", err)
	}
	if st, ok := status.FromError(err); ok {
		return Wrap(st.Code(), agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, st.Message(), err)
	}
	return Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", err)
}

// FromUpstream maps an Instantly error answer, keeping Instantly's message
// for the operator (it never contains a key).
func FromUpstream(u *instantly.Error) *Error {
	code, reason := codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE
	switch u.StatusCode {
	case http.StatusBadRequest:
		code, reason = codes.InvalidArgument, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_REJECTED
	case http.StatusUnauthorized:
		code, reason = codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CREDENTIAL_INVALID
	case http.StatusPaymentRequired:
		code, reason = codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_PLAN_REQUIRED
	case http.StatusForbidden:
		code, reason = codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_SCOPE_DENIED
	case http.StatusNotFound:
		code, reason = codes.NotFound, agencyv1.ErrorReason_ERROR_REASON_NOT_FOUND
	case http.StatusConflict:
		code, reason = codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_CONFLICT
	case http.StatusTooManyRequests:
		code, reason = codes.ResourceExhausted, agencyv1.ErrorReason_ERROR_REASON_RATE_LIMITED
	}
	msg := "Instantly: " + u.Phrase
	if u.Message != "" {
		msg += ": " + u.Message
	}
	e := Wrap(code, reason, msg, u).WithMetadata("upstream_status", strconv.Itoa(u.StatusCode))
	if u.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = u.RetryAfter
	}
	return e
}

// Transient reports errors worth another try later: the upstream or a
// store unavailable, throttled, a concurrent modification, a timeout.
func Transient(err error) bool {
	switch FromError(err).GRPCStatus().Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted, codes.DeadlineExceeded:
		return true
	}
	return false
}
