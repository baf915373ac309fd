package idempotency_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/idempotency"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/vault"
)

const (
	createKey = "/agency.v1.ApiKeyService/CreateApiKey"
	rid       = "0b7c3f52-8d3a-4c4e-9f0e-5a1d2c3b4a59"
)

func keyring(t *testing.T) *vault.Keyring {
	t.Helper()
	k, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := vault.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

type fixture struct {
	ic      *idempotency.Interceptor
	calls   atomic.Int32
	replays atomic.Int32
	// handle is the handler's behaviour; default: a new key with a fresh secret.
	handle func(ctx context.Context, req any) (any, error)
}

func newFixture(t *testing.T, s idempotency.Store, refresh func(context.Context, proto.Message) (proto.Message, error)) *fixture {
	t.Helper()
	f := &fixture{}
	ic, err := idempotency.New(idempotency.Options{
		Store: s, Keyring: keyring(t), Refresh: refresh,
		Mutating: func(m string) bool { return m != "/agency.v1.ApiKeyService/ListApiKeys" },
		OnReplay: func(context.Context) { f.replays.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	f.ic = ic
	return f
}

func (f *fixture) call(principal, method string, req proto.Message) (any, error) {
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{ID: principal, Role: auth.RoleAdmin})
	return f.ic.Unary(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		n := f.calls.Add(1)
		if f.handle != nil {
			return f.handle(ctx, req)
		}
		return &agencyv1.CreateApiKeyResponse{
			ApiKey: &agencyv1.ApiKey{Name: "workspaces/w/apiKeys/k" + string(rune('0'+n)), DisplayName: req.(*agencyv1.CreateApiKeyRequest).GetDisplayName()},
			Secret: "secret-" + principal + "-" + string(rune('0'+n)),
		}, nil
	})
}

func createReq(name string) *agencyv1.CreateApiKeyRequest {
	return &agencyv1.CreateApiKeyRequest{Parent: "workspaces/w", DisplayName: name, Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR, RequestId: rid}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, s idempotency.Store)) {
	for name, newStore := range backends() {
		t.Run(name, func(t *testing.T) { fn(t, newStore(t)) })
	}
}

func TestReplayReturnsFirstAnswer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s idempotency.Store) {
		f := newFixture(t, s, nil)
		first, err := f.call("tokens/a", createKey, createReq("k"))
		if err != nil {
			t.Fatal(err)
		}
		again, err := f.call("tokens/a", createKey, createReq("k"))
		if err != nil {
			t.Fatal(err)
		}
		if f.calls.Load() != 1 || f.replays.Load() != 1 {
			t.Fatalf("handler ran %d times, %d replays; want 1 and 1", f.calls.Load(), f.replays.Load())
		}
		if !proto.Equal(first.(proto.Message), again.(proto.Message)) {
			t.Fatalf("replay %v, want %v", again, first)
		}
		if _, ok := again.(*agencyv1.CreateApiKeyResponse); !ok {
			t.Fatalf("replay is %T, want the handler's response type", again)
		}
		// The request_id's case does not make it another id.
		req := createReq("k")
		req.RequestId = strings.ToUpper(rid)
		if _, err := f.call("tokens/a", createKey, req); err != nil || f.calls.Load() != 1 {
			t.Fatalf("upper-case id: %v, %d calls", err, f.calls.Load())
		}
	})
}

func TestDifferentRequestSameIDIsInvalid(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s idempotency.Store) {
		f := newFixture(t, s, nil)
		if _, err := f.call("tokens/a", createKey, createReq("k")); err != nil {
			t.Fatal(err)
		}
		for name, call := range map[string]func() (any, error){
			"other body": func() (any, error) { return f.call("tokens/a", createKey, createReq("other")) },
			"other method": func() (any, error) {
				return f.call("tokens/a", "/agency.v1.ApiKeyService/RevokeApiKey", createReq("k"))
			},
		} {
			_, err := call()
			st := status.Convert(err)
			if st.Code() != codes.InvalidArgument || !hasField(st, "request_id") || !strings.Contains(st.Message(), "already used for a different request") {
				t.Fatalf("%s: %v, want INVALID_ARGUMENT on request_id", name, err)
			}
		}
		if f.calls.Load() != 1 {
			t.Fatalf("handler ran %d times", f.calls.Load())
		}
	})
}

func TestConcurrentDuplicateIsAborted(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s idempotency.Store) {
		f := newFixture(t, s, nil)
		entered, release := make(chan struct{}), make(chan struct{})
		f.handle = func(context.Context, any) (any, error) {
			close(entered)
			<-release
			return &agencyv1.CreateApiKeyResponse{Secret: "s"}, nil
		}
		var wg sync.WaitGroup
		var firstErr error
		wg.Go(func() { _, firstErr = f.call("tokens/a", createKey, createReq("k")) })
		<-entered
		_, err := f.call("tokens/a", createKey, createReq("k"))
		st := status.Convert(err)
		if st.Code() != codes.Aborted {
			t.Fatalf("duplicate in flight: %v, want ABORTED", err)
		}
		var info *errdetails.ErrorInfo
		var retry *errdetails.RetryInfo
		for _, d := range st.Details() {
			switch d := d.(type) {
			case *errdetails.ErrorInfo:
				info = d
			case *errdetails.RetryInfo:
				retry = d
			}
		}
		if info.GetReason() != "CONCURRENT_MODIFICATION" || info.GetDomain() != apierr.Domain || retry.GetRetryDelay().AsDuration() <= 0 {
			t.Fatalf("details %v %v", info, retry)
		}
		// A different request under the same id is refused as such even
		// while the first is in flight.
		if _, err := f.call("tokens/a", createKey, createReq("other")); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("different request in flight: %v", err)
		}
		close(release)
		wg.Wait()
		if firstErr != nil {
			t.Fatal(firstErr)
		}
		if _, err := f.call("tokens/a", createKey, createReq("k")); err != nil || f.calls.Load() != 1 {
			t.Fatalf("after the first ended: %v, %d calls", err, f.calls.Load())
		}
	})
}

func TestErrorIsNotStored(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s idempotency.Store) {
		f := newFixture(t, s, nil)
		fail := apierr.New(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE, "upstream down")
		f.handle = func(context.Context, any) (any, error) { return nil, fail }
		if _, err := f.call("tokens/a", createKey, createReq("k")); !errors.Is(err, fail) {
			t.Fatalf("first: %v", err)
		}
		f.handle = nil
		if _, err := f.call("tokens/a", createKey, createReq("k")); err != nil {
			t.Fatal(err)
		}
		if f.calls.Load() != 2 || f.replays.Load() != 0 {
			t.Fatalf("%d calls, %d replays: a failure must not be replayed", f.calls.Load(), f.replays.Load())
		}
	})
}

// TestAnswerReleasedToItsCallerOnly: another principal reusing the id runs
// its own call and never sees the first caller's secret.
func TestAnswerReleasedToItsCallerOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, s idempotency.Store) {
		f := newFixture(t, s, nil)
		a, err := f.call("tokens/a", createKey, createReq("k"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.call("tokens/b", createKey, createReq("k"))
		if err != nil {
			t.Fatal(err)
		}
		if f.calls.Load() != 2 || a.(*agencyv1.CreateApiKeyResponse).GetSecret() == b.(*agencyv1.CreateApiKeyResponse).GetSecret() {
			t.Fatalf("%d calls; secrets %q %q", f.calls.Load(), a.(*agencyv1.CreateApiKeyResponse).GetSecret(), b.(*agencyv1.CreateApiKeyResponse).GetSecret())
		}
		again, err := f.call("tokens/b", createKey, createReq("k"))
		if err != nil || !proto.Equal(again.(proto.Message), b.(proto.Message)) {
			t.Fatalf("b's replay: %v %v", again, err)
		}
	})
}

func TestWithoutRequestIDOrReadsRunEveryTime(t *testing.T) {
	f := newFixture(t, idempotency.NewMemoryStore(nil), nil)
	req := createReq("k")
	req.RequestId = ""
	for range 2 {
		if _, err := f.call("tokens/a", createKey, req); err != nil {
			t.Fatal(err)
		}
		if _, err := f.call("tokens/a", "/agency.v1.ApiKeyService/ListApiKeys", createReq("k")); err != nil {
			t.Fatal(err)
		}
	}
	if f.calls.Load() != 4 {
		t.Fatalf("%d calls, want 4", f.calls.Load())
	}
}

// TestSealedInRedis: nothing agencyd stores for a request_id shows the
// answer or its secret, in any common encoding.
func TestSealedInRedis(t *testing.T) {
	rdb := redistest.Start(t)
	prefix := redistest.Prefix(t)
	s, err := idempotency.NewRedisStore(rdb, idempotency.RedisOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, nil)
	resp, err := f.call("tokens/a", createKey, createReq("k"))
	if err != nil {
		t.Fatal(err)
	}
	secret := resp.(*agencyv1.CreateApiKeyResponse).GetSecret()
	plain, err := proto.Marshal(resp.(proto.Message))
	if err != nil {
		t.Fatal(err)
	}
	keys := redistest.Keys(t, rdb, prefix)
	if len(keys) != 1 {
		t.Fatalf("keys %v", keys)
	}
	var dump strings.Builder
	for _, k := range keys {
		dump.WriteString(k + "\n" + rdb.Get(context.Background(), k).Val() + "\n")
	}
	for _, form := range []string{secret, string(plain), base64.StdEncoding.EncodeToString(plain), base64.RawURLEncoding.EncodeToString(plain),
		base64.StdEncoding.EncodeToString([]byte(secret)), "workspaces/w/apiKeys/k1", "tokens/a"} {
		if strings.Contains(dump.String(), form) {
			t.Fatalf("Redis holds %q in clear:\n%s", form, dump.String())
		}
	}
	// And the sealed answer still replays.
	again, err := f.call("tokens/a", createKey, createReq("k"))
	if err != nil || again.(*agencyv1.CreateApiKeyResponse).GetSecret() != secret {
		t.Fatalf("replay: %v %v", again, err)
	}
}

// TestRedisDownFailsClosed: without the store nothing runs.
func TestRedisDownFailsClosed(t *testing.T) {
	srv := redistest.StartServer(t)
	s, err := idempotency.NewRedisStore(srv.Client, idempotency.RedisOptions{Prefix: "down:"})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, nil)
	srv.Stop()
	start := time.Now()
	_, err = f.call("tokens/a", createKey, createReq("k"))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || f.calls.Load() != 0 {
		t.Fatalf("Redis down: %v, %d calls; want UNAVAILABLE and nothing run", err, f.calls.Load())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
	if strings.Contains(st.Message(), "dial") || strings.Contains(st.Message(), "refused") {
		t.Fatalf("message leaks the cause: %q", st.Message())
	}
}

// TestOperationRefreshed: a stored operation is handed to Refresh.
func TestOperationRefreshed(t *testing.T) {
	var refreshed atomic.Int32
	f := newFixture(t, idempotency.NewMemoryStore(nil), func(_ context.Context, m proto.Message) (proto.Message, error) {
		refreshed.Add(1)
		r := proto.Clone(m).(*agencyv1.FanoutResponse)
		r.Operation.Done = true
		return r, nil
	})
	f.handle = func(context.Context, any) (any, error) {
		return &agencyv1.FanoutResponse{Operation: &longrunningpb.Operation{Name: "operations/op1"}}, nil
	}
	req := &agencyv1.InviteMemberEverywhereRequest{Email: "a@b.co", RequestId: rid}
	const method = "/agency.v1.FanoutService/InviteMemberEverywhere"
	first, err := f.call("tokens/a", method, req)
	if err != nil || first.(*agencyv1.FanoutResponse).GetOperation().GetDone() {
		t.Fatal(first, err)
	}
	again, err := f.call("tokens/a", method, req)
	if err != nil {
		t.Fatal(err)
	}
	op := again.(*agencyv1.FanoutResponse).GetOperation()
	if op.GetName() != "operations/op1" || !op.GetDone() || refreshed.Load() != 1 || f.calls.Load() != 1 {
		t.Fatalf("replay %v, %d refreshes, %d calls", again, refreshed.Load(), f.calls.Load())
	}
	if !idempotency.HoldsOperation(&longrunningpb.Operation{}) || idempotency.HoldsOperation(&agencyv1.FanoutResponse{}) {
		t.Fatal("HoldsOperation")
	}
}

func TestFingerprint(t *testing.T) {
	a, _ := idempotency.Fingerprint(createKey, createReq("k"))
	noID := createReq("k")
	noID.RequestId = ""
	b, _ := idempotency.Fingerprint(createKey, noID)
	c, _ := idempotency.Fingerprint(createKey, createReq("other"))
	d, _ := idempotency.Fingerprint("/agency.v1.ApiKeyService/RevokeApiKey", createReq("k"))
	if a != b || a == c || a == d || len(a) != 64 {
		t.Fatalf("fingerprints %s %s %s %s", a, b, c, d)
	}
	if idempotency.RequestID(createReq("k")) != rid || idempotency.RequestID(&agencyv1.ApiKey{}) != "" {
		t.Fatal("RequestID")
	}
}

func hasField(st *status.Status, field string) bool {
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return true
				}
			}
		}
	}
	return false
}

// TestPanicReleasesClaim: a handler that panics leaves no claim behind.
func TestPanicReleasesClaim(t *testing.T) {
	f := newFixture(t, idempotency.NewMemoryStore(nil), nil)
	f.handle = func(context.Context, any) (any, error) { panic("boom") }
	func() {
		defer func() { _ = recover() }()
		_, _ = f.call("tokens/a", createKey, createReq("k"))
	}()
	f.handle = nil
	if _, err := f.call("tokens/a", createKey, createReq("k")); err != nil || f.calls.Load() != 2 {
		t.Fatalf("after a panic: %v, %d calls", err, f.calls.Load())
	}
}
