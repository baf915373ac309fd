// Package apierr is the control plane's error model: a typed error carrying a
// standard gRPC code, an ErrorInfo reason from agency.v1.ErrorReason, and the
// details clients need (BadRequest, RetryInfo, ResourceInfo). FromError maps
// every other error (store, upstream, context) once, at the API edge.
package apierr

import (
	"fmt"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// Domain is the ErrorInfo domain of every error this service returns.
const Domain = "agencyplane.dev"

// Error is an API error. Msg is public; the wrapped cause is for logs only.
type Error struct {
	Code       codes.Code
	Reason     agencyv1.ErrorReason
	Msg        string
	Metadata   map[string]string
	Violations []*errdetails.BadRequest_FieldViolation
	RetryAfter time.Duration
	Resource   *errdetails.ResourceInfo
	cause      error
}

// Error includes the cause, for logs. Clients only ever see Msg.
func (e *Error) Error() string {
	if e.cause != nil {
		return e.Msg + ": " + e.cause.Error()
	}
	return e.Msg
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.cause }

// ReasonString is the ErrorInfo reason for r: its enum name without the
// ERROR_REASON_ prefix.
func ReasonString(r agencyv1.ErrorReason) string {
	return strings.TrimPrefix(r.String(), "ERROR_REASON_")
}

// GRPCStatus renders the error with its details; grpc-go and grpc-gateway
// both use it.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(e.Code, e.Msg)
	info := &errdetails.ErrorInfo{Reason: ReasonString(e.Reason), Domain: Domain, Metadata: e.Metadata}
	details := []protoadapt.MessageV1{info}
	if len(e.Violations) > 0 {
		details = append(details, &errdetails.BadRequest{FieldViolations: e.Violations})
	}
	if e.RetryAfter > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(e.RetryAfter)})
	}
	if e.Resource != nil {
		details = append(details, e.Resource)
	}
	withDetails, err := st.WithDetails(details...)
	if err != nil {
		return st
	}
	return withDetails
}

// New returns an error with a code, reason and public message.
func New(code codes.Code, reason agencyv1.ErrorReason, msg string) *Error {
	return &Error{Code: code, Reason: reason, Msg: msg}
}

// Wrap is New keeping cause for logs and errors.Is.
func Wrap(code codes.Code, reason agencyv1.ErrorReason, msg string, cause error) *Error {
	return &Error{Code: code, Reason: reason, Msg: msg, cause: cause}
}

// WithMetadata adds ErrorInfo metadata and returns e.
func (e *Error) WithMetadata(kv ...string) *Error {
	if e.Metadata == nil {
		e.Metadata = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Metadata[kv[i]] = kv[i+1]
	}
	return e
}

// Violation is one bad field.
type Violation struct {
	Field       string
	Description string
}

// InvalidArgument reports bad input, naming each offending field.
func InvalidArgument(vs ...Violation) *Error {
	e := &Error{Code: codes.InvalidArgument, Reason: agencyv1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT}
	parts := make([]string, 0, len(vs))
	for _, v := range vs {
		e.Violations = append(e.Violations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		parts = append(parts, v.Field+": "+v.Description)
	}
	e.Msg = "invalid request: " + strings.Join(parts, "; ")
	return e
}

// Field is InvalidArgument for a single field.
func Field(field, format string, args ...any) *Error {
	return InvalidArgument(Violation{Field: field, Description: fmt.Sprintf(format, args...)})
}

// PageSize is a request's page_size: def when 0, an error naming page_size
// outside 0..max. The proto's rules refuse such sizes at the edge; this
// keeps handlers from slicing with them when called without it.
func PageSize(size int32, def, max int) (int, error) {
	switch {
	case size < 0 || int(size) > max:
		return 0, Field("page_size", "must be between 0 and %d", max)
	case size == 0:
		return def, nil
	}
	return int(size), nil
}

// NotFound reports a missing resource, with ResourceInfo.
func NotFound(resourceType, name string) *Error {
	e := New(codes.NotFound, agencyv1.ErrorReason_ERROR_REASON_NOT_FOUND, fmt.Sprintf("%s %q not found", resourceType, name))
	e.Resource = &errdetails.ResourceInfo{ResourceType: resourceType, ResourceName: name}
	return e
}
