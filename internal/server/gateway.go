package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	// Every error-detail type must be linked in for the gateway to render
	// it; an unresolvable Any turns a clean 4xx into a 500.
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
)

// newGatewayMux returns the REST mux. Options are set on purpose: unknown
// JSON fields are an error (a misspelt field must not be silently dropped),
// zero values are emitted so clients see every field, and a POST with a form
// body is never taken for a GET (path-length fallback), so a wrong method is
// always 405.
func newGatewayMux(gatewaySecret string) *runtime.ServeMux {
	g := &gateway{}
	g.mux = runtime.NewServeMux(
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
		runtime.WithDisablePathLengthFallback(),
		runtime.WithMiddlewares(g.probed),
		runtime.WithRoutingErrorHandler(g.routingError),
		runtime.WithErrorHandler(func(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
			err = g.publicError(ctx, r, err)
			setRetryAfter(w, err)
			runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
		}),
	)
	return g.mux
}

// gateway holds what the REST mux's hooks share.
type gateway struct {
	mux *runtime.ServeMux
}

// publicError rewrites errors the gateway raises itself (body, query and
// path decoding, routing) into our InvalidArgument form: the field by its
// proto path and what is expected there, never a library's error text.
// Errors from our gRPC server already carry ErrorInfo and pass unchanged.
func (g *gateway) publicError(ctx context.Context, r *http.Request, err error) error {
	var hse *runtime.HTTPStatusError
	if errors.As(err, &hse) {
		var mse runtime.MalformedSequenceError
		if errors.As(hse.Err, &mse) {
			return apierr.Field("path", "has a malformed percent-escape")
		}
		return &runtime.HTTPStatusError{HTTPStatus: hse.HTTPStatus, Err: g.publicError(ctx, r, hse.Err)}
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	st, ok := status.FromError(err)
	if ok && len(st.Details()) > 0 {
		return err // from our gRPC server, already in its public form
	}
	rb, _ := r.Body.(*requestBody)
	if rb != nil && rb.tooLarge != nil {
		return apierr.Field("body", "exceeds the %d-byte limit", rb.tooLarge.Limit)
	}
	if !ok || st.Code() != codes.InvalidArgument {
		// The gateway's own failures (e.g. dialling our gRPC port during
		// shutdown) must not show transport details.
		return apierr.New(st.Code(), agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, publicMessage(st.Code()))
	}
	if rb != nil && len(rb.data) > 0 {
		if v, found := bodyViolation(ctx, rb.data); found {
			return apierr.InvalidArgument(v)
		}
	}
	if v, found := queryViolation(ctx, r); found {
		return apierr.InvalidArgument(v)
	}
	return apierr.Field("body", "is not valid for this request")
}

// method is the descriptor of the RPC the request was routed to.
func method(ctx context.Context) protoreflect.MethodDescriptor {
	name, ok := runtime.RPCMethod(ctx) // "/pkg.Service/Method"
	if !ok {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(name, "/"), "/", ".")))
	if err != nil {
		return nil
	}
	md, _ := d.(protoreflect.MethodDescriptor)
	return md
}

// bodyField is the request field the route's body fills ("*" for the whole
// request, the default), from the method's google.api.http rule.
func bodyField(md protoreflect.MethodDescriptor) string {
	rule, _ := proto.GetExtension(md.Options(), annotations.E_Http).(*annotations.HttpRule)
	if b := rule.GetBody(); b != "" {
		return b
	}
	return "*"
}

// queryViolation finds the query parameter the gateway could not parse by
// parsing each one alone into the method's request type (the gateway's
// parser stays the judge), and describes the field it names.
func queryViolation(ctx context.Context, r *http.Request) (apierr.Violation, bool) {
	md := method(ctx)
	if md == nil {
		return apierr.Violation{}, false
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apierr.Violation{Field: "query", Description: "is not a valid query string"}, true
	}
	keys := slices.Sorted(maps.Keys(q))
	for _, k := range keys {
		if (&runtime.DefaultQueryParser{}).Parse(dynamicpb.NewMessage(md.Input()), url.Values{k: q[k]}, &utilities.DoubleArray{}) == nil {
			continue
		}
		return apierr.QueryViolation(md.Input(), k, len(q[k])), true
	}
	return apierr.Violation{}, false
}

// probeKey marks the requests routingError sends through the mux to learn
// which methods a path has.
type probeKey struct{}

// probed is the mux's middleware: a probe that reached a handler learns
// that its method exists and goes no further.
func (g *gateway) probed(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if found, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*found = true
			return
		}
		next(w, r, params)
	}
}

// routingError answers a path served under other methods with 405 and
// Allow (grpc-gateway's default is 501 without Allow).
func (g *gateway) routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if _, ok := r.Context().Value(probeKey{}).(*bool); ok {
		return // a probe that matched nothing
	}
	if httpStatus != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, httpStatus)
		return
	}
	allowed := g.allowed(r)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	err := apierr.New(codes.Unimplemented, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED,
		fmt.Sprintf("method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))).
		WithMetadata("allowed_methods", strings.Join(allowed, ","))
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: http.StatusMethodNotAllowed, Err: err})
}

// allowed lists the methods the mux serves r's path under, by routing a
// copy of r under each method: the mux is the only place that knows.
func (g *gateway) allowed(r *http.Request) []string {
	var out []string
	for _, meth := range []string{http.MethodDelete, http.MethodGet, http.MethodPatch, http.MethodPost, http.MethodPut} {
		if meth == r.Method {
			continue
		}
		found := false
		probe := r.Clone(context.WithValue(r.Context(), probeKey{}, &found))
		probe.Method = meth
		g.mux.ServeHTTP(discardResponse{header: http.Header{}}, probe)
		if found {
			out = append(out, meth)
		}
	}
	return out
}

// discardResponse swallows what a probe might write.
type discardResponse struct{ header http.Header }

func (d discardResponse) Header() http.Header         { return d.header }
func (d discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (d discardResponse) WriteHeader(int)             {}

// requestBody is a REST request's body, capped at --max-request-bytes. It
// keeps what was read, so the error handler can find the field a refused
// body got wrong (the generated code flattens decoding errors into text),
// and whether the cap was hit (a typed *http.MaxBytesError, whoever read).
type requestBody struct {
	io.ReadCloser
	data     []byte
	tooLarge *http.MaxBytesError
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.data = append(b.data, p[:n]...)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		b.tooLarge = mbe
	}
	return n, err
}

// bodyViolation finds what is wrong with a body the gateway refused, for
// the route's body field (the whole request for "*"), relative to the
// request (workspace.display_name); found is false when the body decodes,
// so the fault lies elsewhere.
func bodyViolation(ctx context.Context, data []byte) (apierr.Violation, bool) {
	md := method(ctx)
	if md == nil {
		return apierr.Violation{}, false
	}
	target, prefix := md.Input(), ""
	if f := bodyField(md); f != "*" {
		fd := md.Input().Fields().ByName(protoreflect.Name(f))
		if fd == nil || fd.Message() == nil || fd.IsList() || fd.IsMap() {
			return apierr.Violation{}, false
		}
		target, prefix = fd.Message(), f+"."
	}
	// The gateway decodes the first JSON value and ignores what follows.
	var first json.RawMessage
	if json.NewDecoder(bytes.NewReader(data)).Decode(&first) == nil && protojson.Unmarshal(first, dynamicpb.NewMessage(target)) == nil {
		return apierr.Violation{}, false
	}
	v := apierr.JSONViolation(target, data)
	if v.Field != "body" {
		v.Field = prefix + v.Field
	}
	return v, true
}

// requestFaults gives the gateway's own calls the caller's error for the
// two ways a request built from REST input fails before our server reads
// it: a string that is not UTF-8 (protobuf refuses to marshal it; it came
// from the path or query) and a message above the server's receive limit
// (a body whose protobuf form outgrows its JSON). grpc-go reports both as
// bare statuses (Internal, ResourceExhausted) without our ErrorInfo; the
// cause is confirmed on the message itself, not read from their text.
func requestFaults(limit int) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil {
			return nil
		}
		st, ok := status.FromError(err)
		m, isMsg := req.(proto.Message)
		if !ok || len(st.Details()) > 0 || !isMsg {
			return err // our server's answers carry ErrorInfo
		}
		switch st.Code() {
		case codes.Internal:
			if field, found := invalidUTF8(m.ProtoReflect(), ""); found {
				return apierr.Field(field, "is not valid UTF-8")
			}
		case codes.ResourceExhausted:
			if size := proto.Size(m); size > limit {
				return apierr.Field("body", "is too large: %d bytes once encoded as protobuf (with the path and query), above the %d-byte message limit", size, limit)
			}
		}
		return err
	}
}

// invalidUTF8 finds a string field of m that is not UTF-8, by its proto
// path (name, labels["k"], names[2]).
func invalidUTF8(m protoreflect.Message, path string) (string, bool) {
	var field string
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := string(fd.Name())
		if path != "" {
			p = path + "." + p
		}
		field, found = invalidValue(fd, v, p)
		return !found
	})
	return field, found
}

func invalidValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) (string, bool) {
	switch {
	case fd.IsMap():
		var field string
		found := false
		v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
			p := path + "[" + strconv.Quote(k.String()) + "]"
			if fd.MapKey().Kind() == protoreflect.StringKind && !utf8.ValidString(k.String()) {
				field, found = path, true
			} else {
				field, found = invalidValue(fd.MapValue(), mv, p)
			}
			return !found
		})
		return field, found
	case fd.IsList():
		l := v.List()
		for i := range l.Len() {
			if field, found := invalidScalar(fd, l.Get(i), path+"["+strconv.Itoa(i)+"]"); found {
				return field, true
			}
		}
		return "", false
	}
	return invalidScalar(fd, v, path)
}

func invalidScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value, path string) (string, bool) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return path, !utf8.ValidString(v.String())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return invalidUTF8(v.Message(), path)
	}
	return "", false
}

// setRetryAfter gives a REST error that carries a google.rpc.RetryInfo the
// same delay as a Retry-After header, in whole seconds rounded up.
func setRetryAfter(w http.ResponseWriter, err error) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds())), 10))
			return
		}
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

// httpError writes a plain JSON error for the non-gateway HTTP endpoints.
func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	fmt.Fprintf(w, "{\"code\":%d,\"message\":%q}\n", code, msg)
}
