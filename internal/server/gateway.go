package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	// Every error-detail type must be linked in for the gateway to render
	// it; an unresolvable Any turns a clean 4xx into a 500.
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/service/masks"
)

// newGatewayMux returns the REST mux. Options are set on purpose: unknown
// JSON fields are an error (a misspelt field must not be silently dropped),
// zero values are emitted so clients see every field.
func newGatewayMux(maxBody int64, gatewaySecret string) *runtime.ServeMux {
	return runtime.NewServeMux(
		// Who is calling, for authentication and throttling, vouched for by
		// the per-process secret.
		runtime.WithMetadata(func(_ context.Context, r *http.Request) metadata.MD {
			md := metadata.Pairs(mdGatewaySecret, gatewaySecret)
			if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
				md.Set(mdClientIP, host)
			}
			if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
				md.Set(mdClientCert, certIdentity(r.TLS.VerifiedChains[0][0]))
			}
			return md
		}),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{
			Marshaler: &runtime.JSONPb{
				MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
				UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
			},
		}),
		runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
			if strings.EqualFold(key, requestIDHeader) {
				return requestIDHeader, true
			}
			// Clients may not forge the gateway's own metadata.
			if strings.HasPrefix(strings.ToLower(strings.TrimPrefix(strings.ToLower(key), "grpc-metadata-")), "x-agency-") {
				return "", false
			}
			return runtime.DefaultHeaderMatcher(key)
		}),
		runtime.WithOutgoingHeaderMatcher(func(key string) (string, bool) {
			if key == requestIDHeader {
				return "X-Request-Id", true
			}
			return "", false
		}),
		runtime.WithErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, sanitizeGatewayError(err, maxBody))
		}),
	)
}

var (
	unknownFieldRE = regexp.MustCompile(`unknown field "([^"]+)"`)
	badValueRE     = regexp.MustCompile(`invalid value for \S+ (?:field|type) ([A-Za-z0-9_.]+)`)
	queryFieldRE   = regexp.MustCompile(`(?:parsing field|parameter:?) "?([A-Za-z0-9_.\[\]]+)"?`)
)

// sanitizeGatewayError rewrites errors the gateway raises itself (body and
// parameter decoding) into our InvalidArgument form: a field name and a
// plain description instead of a Go error string. Errors from our gRPC
// server already carry ErrorInfo and pass unchanged.
func sanitizeGatewayError(err error, maxBody int64) error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	st, ok := status.FromError(err)
	if ok && len(st.Details()) > 0 {
		return err // from our gRPC server, already in its public form
	}
	if !ok || st.Code() != codes.InvalidArgument {
		// The gateway's own failures (e.g. dialling our gRPC port during
		// shutdown) must not show transport details.
		return apierr.New(st.Code(), agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, publicMessage(st.Code()))
	}
	msg := st.Message()
	var mbe *http.MaxBytesError
	switch m := (struct{ unknown, bad, query []string }{unknownFieldRE.FindStringSubmatch(msg), badValueRE.FindStringSubmatch(msg), queryFieldRE.FindStringSubmatch(msg)}); {
	case errors.As(err, &mbe) || strings.Contains(msg, "request body too large"):
		return apierr.Field("body", "exceeds the %d-byte limit", maxBody)
	case m.unknown != nil:
		return apierr.Field(protoFieldName(m.unknown[1]), "unknown field")
	case m.bad != nil:
		return apierr.Field(protoFieldName(m.bad[1]), "invalid value for the field's type")
	case m.query != nil:
		return apierr.Field(protoFieldName(m.query[1]), "invalid value for the field's type")
	default:
		return apierr.Field("body", "is not valid JSON for this request")
	}
}

// publicMessage is a plain message for a gateway-side failure.
func publicMessage(c codes.Code) string {
	switch c {
	case codes.NotFound:
		return "not found"
	case codes.Unimplemented:
		return "method not allowed"
	case codes.Unavailable:
		return "service unavailable; retry"
	case codes.Canceled:
		return "request canceled"
	case codes.DeadlineExceeded:
		return "deadline exceeded"
	}
	return "internal error"
}

// protoFieldName turns a JSON name (displayName) into the proto field name
// (display_name) that every other violation uses.
func protoFieldName(s string) string { return masks.Paths([]string{s})[0] }

// httpError writes a plain JSON error for the non-gateway HTTP endpoints.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", code, msg)
}
