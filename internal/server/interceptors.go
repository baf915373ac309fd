package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/idempotency"
)

// The interceptor order is part of the design (see README): recovery →
// request id → logging → deadline → metrics → authn → authz → audit
// (outcome) → validation → request_id (idempotency) → audit (started) →
// error mapping → handler. Recovery is outermost so a panic anywhere
// becomes Internal; logging sees the mapped error with its cause; authn
// runs before validation so unauthenticated callers learn nothing about
// the API. The outcome event wraps validation so refused calls are
// audited too; request_id runs after validation (a malformed id is refused
// first) and before the started event, so a replay, which does nothing,
// appends no event; the started event is the last step before the handler:
// nothing reaches Instantly unless it was appended.

const requestIDHeader = "x-request-id"

// publicMethod reports methods that need no token: health and reflection,
// so probes and grpcurl work without credentials.
func publicMethod(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

type callInfoKey struct{}

// callInfo is filled in as a call passes the interceptors, for the log line.
type callInfo struct {
	requestID string
	principal string
	// replay: answered from a stored request_id outcome.
	replay bool
}

func callInfoFrom(ctx context.Context) *callInfo {
	ci, _ := ctx.Value(callInfoKey{}).(*callInfo)
	return ci
}

// RequestID returns the call's request id ("" outside a call).
func RequestID(ctx context.Context) string {
	if ci := callInfoFrom(ctx); ci != nil {
		return ci.requestID
	}
	return ""
}

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID takes the caller's x-request-id when it is well formed, else
// makes one, and echoes it in the response headers.
func requestID(ctx context.Context) (context.Context, *callInfo) {
	id := ""
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestIDHeader); len(v) > 0 && requestIDPattern.MatchString(v[0]) {
			id = v[0]
		}
	}
	if id == "" {
		var b [12]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestIDHeader, id))
	ci := &callInfo{requestID: id}
	return context.WithValue(ctx, callInfoKey{}, ci), ci
}

type interceptors struct {
	logger        *slog.Logger
	authn         *auth.Authenticator
	authz         *authz.Authorizer
	audit         *auditor
	idempotency   *idempotency.Interceptor
	validator     protovalidate.Validator
	metrics       *grpcprom.ServerMetrics
	gatewaySecret string
	// requestTimeout bounds calls that come without a deadline (REST calls
	// never carry one), except fan-outs, which have their own.
	requestTimeout time.Duration
}

func (ic *interceptors) unary() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(ic.recovered)),
		ic.unaryLog,
		ic.unaryDeadline,
		ic.metrics.UnaryServerInterceptor(),
		ic.unaryAuth,
		ic.audit.unary,
		ic.unaryValidate,
		ic.idempotency.Unary,
		ic.audit.unaryStarted,
		unaryMapErrors,
	}
}

func (ic *interceptors) stream() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(ic.recovered)),
		ic.streamLog,
		ic.metrics.StreamServerInterceptor(),
		ic.streamAuth,
	}
}

func (ic *interceptors) recovered(ctx context.Context, p any) error {
	ic.logger.ErrorContext(ctx, "panic in handler", "request_id", RequestID(ctx), "panic", p, "stack", string(debug.Stack()))
	return apierr.New(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "internal error")
}

// fanoutMethods prefixes the fan-out RPCs, which have their own deadline.
var fanoutMethods = "/" + agencyv1.FanoutService_ServiceDesc.ServiceName + "/"

func (ic *interceptors) unaryDeadline(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, ok := ctx.Deadline(); !ok && ic.requestTimeout > 0 && !strings.HasPrefix(info.FullMethod, fanoutMethods) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, ic.requestTimeout)
		defer cancel()
	}
	return handler(ctx, req)
}

func (ic *interceptors) unaryLog(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, ci := requestID(ctx)
	start := time.Now()
	resp, err := handler(ctx, req)
	ic.logCall(ctx, info.FullMethod, ci, start, err)
	return resp, err
}

func (ic *interceptors) streamLog(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, ci := requestID(ss.Context())
	start := time.Now()
	err := handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	ic.logCall(ctx, info.FullMethod, ci, start, err)
	return err
}

// logCall writes one line per call. Error text comes from our own error
// types, which never hold a secret; the cause is logged only for server
// faults, where operators need it.
func (ic *interceptors) logCall(ctx context.Context, method string, ci *callInfo, start time.Time, err error) {
	code := status.Code(err)
	level := slog.LevelInfo
	switch {
	case publicMethod(method):
		level = slog.LevelDebug
	case code == codes.Internal || code == codes.Unknown || code == codes.DataLoss:
		level = slog.LevelError
	case code == codes.Unavailable || code == codes.DeadlineExceeded:
		level = slog.LevelWarn
	}
	attrs := []any{"request_id", ci.requestID, "method", method, "code", code.String(),
		"duration_ms", float64(time.Since(start).Microseconds()) / 1000}
	if ci.principal != "" {
		attrs = append(attrs, "principal", ci.principal)
	}
	if ci.replay {
		attrs = append(attrs, "replay", true)
	}
	if err != nil {
		var ae *apierr.Error
		if errors.As(err, &ae) {
			attrs = append(attrs, "reason", apierr.ReasonString(ae.Reason))
		}
		if level >= slog.LevelWarn {
			attrs = append(attrs, "error", err.Error())
		} else {
			attrs = append(attrs, "error", status.Convert(err).Message())
		}
	}
	ic.logger.Log(ctx, level, "rpc", attrs...)
}

// authenticate establishes the principal, then applies the method's
// access rule (deny by default).
func (ic *interceptors) authenticate(ctx context.Context, method string) (context.Context, error) {
	if publicMethod(method) {
		return ctx, nil
	}
	p, err := ic.authn.Authenticate(ctx, ic.caller(ctx))
	if err != nil {
		return nil, apierr.FromError(err) // e.g. the token store is down: never a raw error
	}
	if ci := callInfoFrom(ctx); ci != nil {
		ci.principal = p.ID
	}
	ctx = auth.WithPrincipal(ctx, p)
	if err := ic.authz.Authorize(ctx, method); err != nil {
		return nil, err
	}
	return ctx, nil
}

// Metadata the gateway adds to calls it forwards, authenticated by a
// per-process secret so that no client can claim another address or
// certificate.
const (
	mdGatewaySecret = "x-agency-gateway"
	mdClientIP      = "x-agency-client-ip"
	mdClientCert    = "x-agency-client-cert"
)

// caller derives the source address and certificate identity of a call,
// trusting the gateway's metadata only with the right secret.
func (ic *interceptors) caller(ctx context.Context) auth.Caller {
	var c auth.Caller
	if p, ok := peer.FromContext(ctx); ok {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			c.Source = host
		}
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
			c.CertIdentity = certIdentity(ti.State.VerifiedChains[0][0])
		}
	}
	md, _ := metadata.FromIncomingContext(ctx)
	// Believed only from trusted proxies (auth.Authenticator.ClientAddr);
	// the gateway forwards the REST request's, its peer appended.
	c.ForwardedFor = md.Get("x-forwarded-for")
	if v := md.Get(mdGatewaySecret); len(v) == 1 && subtle.ConstantTimeCompare([]byte(v[0]), []byte(ic.gatewaySecret)) == 1 {
		if ip := md.Get(mdClientIP); len(ip) == 1 {
			c.Source = ip[0]
		}
		if cert := md.Get(mdClientCert); len(cert) == 1 {
			c.CertIdentity = cert[0]
		}
	}
	return c
}

func (ic *interceptors) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := ic.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (ic *interceptors) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := ic.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
}

// unaryValidate applies the proto's buf.validate rules and reports every
// violation as a google.rpc.BadRequest field violation (one error format for
// all bad input, whoever detects it).
func (ic *interceptors) unaryValidate(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if m, ok := req.(proto.Message); ok {
		if err := ic.validator.Validate(m); err != nil {
			return nil, validationError(err)
		}
	}
	return handler(ctx, req)
}

func validationError(err error) error {
	var verr *protovalidate.ValidationError
	if !errors.As(err, &verr) {
		return apierr.Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "request validation failed", err)
	}
	vs := make([]apierr.Violation, 0, len(verr.Violations))
	for _, v := range verr.Violations {
		vs = append(vs, apierr.Violation{
			Field:       violationField(v),
			Description: violationText(v),
		})
	}
	return apierr.InvalidArgument(vs...)
}

// violationField is the path of the field a violation is about. A message
// rule (a cross-field CEL rule) has no field of its own: one about a single
// field says which in its id, "{field path}-{rule}" (a field path has no
// '-'), relative to the message; one without (e.g. a message oneof rule)
// is about the message, i.e. the field that holds it ("selector").
func violationField(v *protovalidate.Violation) string {
	field := protovalidate.FieldPathString(v.Proto.GetField())
	if v.FieldDescriptor != nil || len(v.Proto.GetRule().GetElements()) > 0 {
		return field // a field's rule, or a standard rule (it has a rule path)
	}
	sub, _, ok := strings.Cut(v.Proto.GetRuleId(), "-")
	switch {
	case !ok || sub == "":
		return field
	case field == "":
		return sub
	}
	return field + "." + sub
}

// violationText is protovalidate's message, except where it shows users
// the rule's machinery: a regular expression becomes the expected form
// with an example, enum numbers become the values' names.
func violationText(v *protovalidate.Violation) string {
	switch rule := v.RuleDescriptor; {
	case rule == nil:
	case rule.FullName() == "buf.validate.StringRules.pattern":
		if d, ok := apierr.PatternDescription(v.RuleValue.String()); ok {
			return d
		}
	case rule.FullName() == "buf.validate.EnumRules.in" && v.FieldDescriptor != nil && v.FieldDescriptor.Enum() != nil:
		l := v.RuleValue.List()
		allowed := make([]int32, 0, l.Len())
		for i := range l.Len() {
			allowed = append(allowed, int32(l.Get(i).Int()))
		}
		return "must be one of " + apierr.EnumNames(v.FieldDescriptor.Enum(), allowed)
	case rule.FullName() == "buf.validate.EnumRules.defined_only" && v.FieldDescriptor != nil && v.FieldDescriptor.Enum() != nil:
		return "must be one of " + apierr.EnumNames(v.FieldDescriptor.Enum(), nil)
	}
	return v.Proto.GetMessage()
}

// unaryMapErrors is the one place where domain errors become API errors.
func unaryMapErrors(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		return nil, apierr.FromError(err)
	}
	return resp, nil
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
