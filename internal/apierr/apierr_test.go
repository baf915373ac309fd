package apierr

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/store"
)

func TestFromErrorMapping(t *testing.T) {
	cases := []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{context.Canceled, codes.Canceled, "UNSPECIFIED"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), codes.DeadlineExceeded, "UNSPECIFIED"},
		{fmt.Errorf("get: %w", store.ErrNotFound), codes.NotFound, "NOT_FOUND"},
		{store.ErrAlreadyExists, codes.AlreadyExists, "ALREADY_EXISTS"},
		{store.ErrDuplicateInstantlyWorkspace, codes.AlreadyExists, "ALREADY_EXISTS"},
		{store.ErrConflict, codes.Aborted, "CONCURRENT_MODIFICATION"},
		{fmt.Errorf("redis get: %w: dial tcp 10.0.0.1:6379: refused", store.ErrUnavailable), codes.Unavailable, "STORE_UNAVAILABLE"},
		{fmt.Errorf("%w: GET /x: timeout", instantly.ErrUnreachable), codes.Unavailable, "UPSTREAM_UNAVAILABLE"},
		{&instantly.Error{StatusCode: 400, Message: "body must have required property 'email'"}, codes.InvalidArgument, "UPSTREAM_REJECTED"},
		{&instantly.Error{StatusCode: 401}, codes.FailedPrecondition, "CREDENTIAL_INVALID"},
		{&instantly.Error{StatusCode: 402}, codes.FailedPrecondition, "PLAN_REQUIRED"},
		{&instantly.Error{StatusCode: 403}, codes.PermissionDenied, "SCOPE_DENIED"},
		{&instantly.Error{StatusCode: 404}, codes.NotFound, "NOT_FOUND"},
		{&instantly.Error{StatusCode: 409}, codes.Aborted, "CONFLICT"},
		{&instantly.Error{StatusCode: 429}, codes.ResourceExhausted, "RATE_LIMITED"},
		{&instantly.Error{StatusCode: 503}, codes.Unavailable, "UPSTREAM_UNAVAILABLE"},
		{errors.New("boom: secret internals"), codes.Internal, "INTERNAL"},
		// The limiter gave up at the deadline while Redis was down: the
		// cause that matters is the store, not the clock.
		{fmt.Errorf("wait: %w (last try: %w)", context.DeadlineExceeded, ratelimit.ErrUnavailable), codes.Unavailable, "STORE_UNAVAILABLE"},
		// The store's own round-trip timeout (go-redis reports it as the
		// context's deadline) is the store being unavailable, not the
		// caller's deadline.
		{fmt.Errorf("redis get: %w: %w", store.ErrUnavailable, context.DeadlineExceeded), codes.Unavailable, "STORE_UNAVAILABLE"},
	}
	for _, tc := range cases {
		e := FromError(tc.err)
		st := e.GRPCStatus()
		if st.Code() != tc.code {
			t.Errorf("%v: code %v, want %v", tc.err, st.Code(), tc.code)
		}
		var info *errdetails.ErrorInfo
		for _, d := range st.Details() {
			if v, ok := d.(*errdetails.ErrorInfo); ok {
				info = v
			}
		}
		if info == nil || info.GetReason() != tc.reason || info.GetDomain() != Domain {
			t.Errorf("%v: ErrorInfo %v, want reason %s", tc.err, info, tc.reason)
		}
		if !errors.Is(e, tc.err) && !errors.Is(e, errors.Unwrap(tc.err)) && !errors.Is(e, ratelimit.ErrUnavailable) {
			t.Errorf("%v: cause not kept for logs", tc.err)
		}
	}
	// Internal causes never reach the client's message.
	if msg := FromError(errors.New("boom: secret internals")).GRPCStatus().Message(); msg != "internal error" {
		t.Fatalf("internal message %q", msg)
	}
	if msg := FromError(fmt.Errorf("%w: dial tcp 10.0.0.1:6379", store.ErrUnavailable)).GRPCStatus().Message(); msg != "state store unavailable" {
		t.Fatalf("store message %q", msg)
	}
}

func TestDetails(t *testing.T) {
	e := InvalidArgument(Violation{"a.b", "is required"}, Violation{"c", "too long"})
	st := status.Convert(e)
	var br *errdetails.BadRequest
	for _, d := range st.Details() {
		if v, ok := d.(*errdetails.BadRequest); ok {
			br = v
		}
	}
	if st.Code() != codes.InvalidArgument || br == nil || len(br.GetFieldViolations()) != 2 || br.GetFieldViolations()[0].GetField() != "a.b" {
		t.Fatalf("bad request details: %v %v", st, st.Details())
	}
	throttled := FromUpstream(&instantly.Error{StatusCode: 429, RetryAfter: 3 * time.Second})
	var ri *errdetails.RetryInfo
	for _, d := range throttled.GRPCStatus().Details() {
		if v, ok := d.(*errdetails.RetryInfo); ok {
			ri = v
		}
	}
	if ri == nil || ri.GetRetryDelay().AsDuration() != 3*time.Second {
		t.Fatalf("RetryInfo %v", ri)
	}
	nf := NotFound("workspace", "workspaces/x").GRPCStatus()
	var res *errdetails.ResourceInfo
	for _, d := range nf.Details() {
		if v, ok := d.(*errdetails.ResourceInfo); ok {
			res = v
		}
	}
	if res == nil || res.GetResourceName() != "workspaces/x" {
		t.Fatalf("ResourceInfo %v", nf.Details())
	}
}

func TestPageSize(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int
		bad  bool
	}{{0, 50, false}, {1, 1, false}, {1000, 1000, false}, {-1, 0, true}, {1001, 0, true}, {-1 << 31, 0, true}} {
		got, err := PageSize(c.in, 50, 1000)
		if c.bad {
			var e *Error
			if !errors.As(err, &e) || e.Code != codes.InvalidArgument || len(e.Violations) != 1 || e.Violations[0].Field != "page_size" {
				t.Errorf("PageSize(%d) = %d, %v; want INVALID_ARGUMENT on page_size", c.in, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("PageSize(%d) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
