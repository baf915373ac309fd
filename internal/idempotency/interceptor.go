package idempotency

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Options configure the interceptor.
type Options struct {
	// Store keeps the records (required).
	Store Store
	// Keyring seals stored answers (required).
	Keyring *vault.Keyring
	// Mutating reports the methods that change anything (required); only
	// they are deduplicated.
	Mutating func(fullMethod string) bool
	// Refresh, when set, is given a replayed answer that is an operation (a
	// google.longrunning.Operation, or a response whose "operation" field
	// holds one) and returns what to answer instead: the operation's
	// current state. Nil answers the operation as stored.
	Refresh func(ctx context.Context, stored proto.Message) (proto.Message, error)
	// OnReplay, when set, is called when a call is answered from the store
	// (its handler does not run), e.g. so the audit trail records no effect.
	OnReplay func(ctx context.Context)
	// TTL is how long an answer is kept (default DefaultTTL).
	TTL time.Duration
	// PendingTTL is how long a claim of a call without a deadline blocks
	// its repeats if the replica dies mid-call (default DefaultPendingTTL).
	// Calls with a deadline hold their claim until it passes, plus a margin.
	PendingTTL time.Duration
	// Logger records answers that could not be stored (default: discard).
	Logger *slog.Logger
}

// Interceptor deduplicates mutating calls by their request_id.
type Interceptor struct {
	opts Options
}

// New returns the interceptor.
func New(opts Options) (*Interceptor, error) {
	if opts.Store == nil || opts.Keyring == nil || opts.Mutating == nil {
		return nil, errors.New("idempotency: Store, Keyring and Mutating are required")
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.PendingTTL <= 0 {
		opts.PendingTTL = DefaultPendingTTL
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Interceptor{opts: opts}, nil
}

// requestIDField is the message's singular string field "request_id", if any.
func requestIDField(md protoreflect.MessageDescriptor) protoreflect.FieldDescriptor {
	fd := md.Fields().ByName("request_id")
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
		return nil
	}
	return fd
}

// RequestID returns m's request_id ("" when it has none).
func RequestID(m proto.Message) string {
	r := m.ProtoReflect()
	if fd := requestIDField(r.Descriptor()); fd != nil {
		return r.Get(fd).String()
	}
	return ""
}

// Fingerprint identifies a request independently of its request_id: the
// hex SHA-256 of the full method and the deterministic encoding of the
// request with request_id cleared.
func Fingerprint(method string, m proto.Message) (string, error) {
	c := proto.Clone(m)
	if fd := requestIDField(c.ProtoReflect().Descriptor()); fd != nil {
		c.ProtoReflect().Clear(fd)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("idempotency: fingerprint: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// HoldsOperation reports whether m is a google.longrunning.Operation or has
// one set in a field named "operation" (FanoutResponse with long_running).
func HoldsOperation(m proto.Message) bool {
	const op = "google.longrunning.Operation"
	r := m.ProtoReflect()
	if r.Descriptor().FullName() == op {
		return true
	}
	fd := r.Descriptor().Fields().ByName("operation")
	return fd != nil && fd.Message() != nil && fd.Message().FullName() == op && !fd.IsList() && r.Has(fd)
}

// claimMargin keeps a claim past its call's deadline, for the handler's
// own wind-down after the deadline fires.
const claimMargin = 5 * time.Second

// retryInFlight is the RetryInfo of a repeat that arrives while the first
// call is still running.
const retryInFlight = time.Second

// Unary is the gRPC unary interceptor. It must run after authentication
// (keys are the caller's) and validation (request_id is a UUID), right
// before the handler.
func (ic *Interceptor) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	m, ok := req.(proto.Message)
	if !ok || !ic.opts.Mutating(info.FullMethod) {
		return handler(ctx, req)
	}
	rid := RequestID(m)
	p, authed := auth.FromContext(ctx)
	if rid == "" || !authed {
		return handler(ctx, req)
	}
	fp, err := Fingerprint(info.FullMethod, m)
	if err != nil {
		return nil, apierr.Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", err)
	}
	claim, err := newClaim()
	if err != nil {
		return nil, apierr.Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", err)
	}
	key := Key(p.ID, rid)
	pending := &Record{Fingerprint: fp, Claim: claim}
	prev, err := ic.opts.Store.Claim(ctx, key, pending, ic.pendingTTL(ctx))
	if err != nil {
		if ctx.Err() != nil {
			return nil, apierr.FromError(ctx.Err())
		}
		return nil, unavailable(err)
	}
	if prev != nil {
		return ic.replay(ctx, key, rid, fp, prev)
	}

	// The outcome is recorded even when the caller has gone: a retry must
	// find it.
	sctx := context.WithoutCancel(ctx)
	ended := false
	defer func() {
		// A panicking handler (recovered further out) must not leave its
		// repeats ABORTED until the claim expires. Not recovering keeps
		// the panic's stack for the recovery log.
		if !ended {
			ic.release(sctx, info.FullMethod, key, pending)
		}
	}()
	resp, herr := handler(ctx, req)
	ended = true
	if herr != nil {
		// Nothing is stored for a failure: a retry runs again, which
		// read-before-write makes safe.
		ic.release(sctx, info.FullMethod, key, pending)
		return nil, herr
	}
	if err := ic.store(sctx, key, pending, resp); err != nil {
		// The effect happened: answer it. A retry will run again.
		ic.opts.Logger.WarnContext(ctx, "request_id answer not stored", "method", info.FullMethod, "error", err.Error())
		ic.release(sctx, info.FullMethod, key, pending)
	}
	return resp, nil
}

func (ic *Interceptor) pendingTTL(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return ic.opts.PendingTTL
	}
	return min(max(time.Until(dl)+claimMargin, claimMargin), ic.opts.TTL)
}

// store replaces the claim with the sealed answer.
func (ic *Interceptor) store(ctx context.Context, key string, pending *Record, resp any) error {
	m, ok := resp.(proto.Message)
	if !ok {
		return fmt.Errorf("idempotency: answer %T is not a proto message", resp)
	}
	sealed, err := seal(ic.opts.Keyring, key, m)
	if err != nil {
		return err
	}
	done := &Record{Fingerprint: pending.Fingerprint, Response: sealed}
	ok, err = ic.opts.Store.Complete(ctx, key, pending, done, ic.opts.TTL)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("idempotency: claim expired before the call ended")
	}
	return nil
}

func (ic *Interceptor) release(ctx context.Context, method, key string, pending *Record) {
	if err := ic.opts.Store.Release(ctx, key, pending); err != nil {
		// The claim expires on its own; until then repeats are ABORTED.
		ic.opts.Logger.WarnContext(ctx, "request_id claim not released", "method", method, "error", err.Error())
	}
}

// replay answers a repeat from the record found under its key.
func (ic *Interceptor) replay(ctx context.Context, key, rid, fp string, prev *Record) (any, error) {
	if prev.Fingerprint != fp {
		return nil, apierr.Field("request_id", "was already used for a different request")
	}
	if prev.Pending() {
		e := apierr.New(codes.Aborted, agencyv1.ErrorReason_ERROR_REASON_CONCURRENT_MODIFICATION,
			"a call with this request_id is in progress; retry later").WithMetadata("request_id", rid)
		e.RetryAfter = retryInFlight
		return nil, e
	}
	msg, err := open(ic.opts.Keyring, key, prev.Response)
	if err != nil {
		return nil, apierr.Wrap(codes.Internal, agencyv1.ErrorReason_ERROR_REASON_INTERNAL, "the stored answer of this request_id cannot be read", err)
	}
	if ic.opts.Refresh != nil && HoldsOperation(msg) {
		if msg, err = ic.opts.Refresh(ctx, msg); err != nil {
			return nil, apierr.FromError(err)
		}
	}
	if ic.opts.OnReplay != nil {
		ic.opts.OnReplay(ctx)
	}
	return msg, nil
}

func unavailable(err error) error {
	return apierr.Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE,
		"request_id store unavailable; nothing was done", err)
}

func newClaim() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idempotency: claim token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// seal encodes m as an Any (its type travels with it) and seals it with
// the key name as AAD.
func seal(kr *vault.Keyring, key string, m proto.Message) (string, error) {
	a, err := anypb.New(m)
	if err != nil {
		return "", fmt.Errorf("idempotency: encode answer: %w", err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
	if err != nil {
		return "", fmt.Errorf("idempotency: encode answer: %w", err)
	}
	sealed, err := kr.Seal(b, []byte(key))
	if err != nil {
		return "", fmt.Errorf("idempotency: seal answer: %w", err)
	}
	return string(sealed), nil
}

// open reverses seal into a new message of the stored type.
func open(kr *vault.Keyring, key, sealed string) (proto.Message, error) {
	b, err := kr.Open([]byte(sealed), []byte(key))
	if err != nil {
		return nil, fmt.Errorf("idempotency: open answer: %w", err)
	}
	var a anypb.Any
	if err := proto.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("idempotency: decode answer: %w", err)
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("idempotency: decode answer: %w", err)
	}
	return m, nil
}
