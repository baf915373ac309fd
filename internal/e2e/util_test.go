package e2e

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func urlEscape(s string) string { return url.QueryEscape(s) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// jsonName is the proto JSON name of a snake_case field.
func jsonName(p string) string {
	parts := strings.Split(p, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// wantCode asserts err's gRPC code and, over REST, its HTTP status.
func wantCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %v", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("not a status error: %v", err)
	}
	if st.Code() != code {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, code)
	}
	if he, ok := err.(*httpStatusError); ok {
		if want := httpStatus(code); he.httpCode != want {
			t.Fatalf("HTTP %d, want %d for %v", he.httpCode, want, code)
		}
	}
	return st
}

func httpStatus(c codes.Code) int {
	switch c {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return 400
	case codes.Unauthenticated:
		return 401
	case codes.PermissionDenied:
		return 403
	case codes.NotFound:
		return 404
	case codes.AlreadyExists, codes.Aborted:
		return 409
	case codes.ResourceExhausted:
		return 429
	case codes.Unavailable:
		return 503
	}
	return 500
}

func errorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei
		}
	}
	return nil
}

func wantReason(t *testing.T, st *status.Status, reason string) {
	t.Helper()
	ei := errorInfo(st)
	if ei == nil || ei.GetReason() != reason || ei.GetDomain() != "agencyplane.dev" {
		t.Fatalf("ErrorInfo %v, want reason %s (details %v)", ei, reason, st.Details())
	}
}

func fieldViolations(st *status.Status) []string {
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// wantField asserts a BadRequest violation for field ("a|b": either).
func wantField(t *testing.T, st *status.Status, field string) {
	t.Helper()
	for _, f := range fieldViolations(st) {
		for _, want := range strings.Split(field, "|") {
			if f == want {
				return
			}
		}
	}
	t.Fatalf("BadRequest fields %v, want %q (message %q)", fieldViolations(st), field, st.Message())
}

func codeOf(err error) codes.Code { return status.Code(err) }
