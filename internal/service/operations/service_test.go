package operations

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/service/fanoutsvc"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// world is workspaces a0..a{n-1} (client=a) and b (client=b), a fan-out
// service that starts real operations on an in-memory Manager, and the
// service under test. Workers run only after start, so an operation stays
// pending (running, not ended) until then.
type world struct {
	e   *servicetest.Env
	m   *ops.Manager
	svc *Service
	fan *fanoutsvc.Service
	a   []servicetest.Workspace
	b   servicetest.Workspace
}

func newWorld(t *testing.T, n int) *world {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{})
	w := &world{e: e, m: e.NewManager(t), b: e.Register(t, "b", map[string]string{"client": "b"})}
	for i := range n {
		w.a = append(w.a, e.Register(t, fmt.Sprintf("a%d", i), map[string]string{"client": "a"}))
	}
	w.fan = fanoutsvc.New(e.Scoped, e.Resolver, e.Client, e.Engine, e.Locker, fanoutsvc.Options{})
	w.fan.EnableOperations(fanoutsvc.OperationOptions{Manager: w.m, Raw: e.Raw})
	w.svc = New(w.m, 5*time.Second, e.Pages)
	return w
}

// start runs the workers until the test ends.
func (w *world) start(t *testing.T) { servicetest.Start(t, w.m) }

// as is a caller with its own id.
func as(id, role, scope string) context.Context {
	p := &auth.Principal{ID: id, Role: role}
	if scope != "" {
		p.Scope = labels.MustParse(scope)
	}
	return auth.WithPrincipal(context.Background(), p)
}

// creator is an admin of client=a (members write); it starts the
// operations.
func creator() context.Context { return as("tokens/creator", auth.RoleAdmin, "client=a") }

// onboard starts OnboardMembers of people into the named workspaces (every
// a workspace when none are named).
func (w *world) onboard(t *testing.T, ctx context.Context, names []string, emails ...string) *longrunningpb.Operation {
	t.Helper()
	sel := &agencyv1.WorkspaceSelector{Names: names}
	if len(names) == 0 {
		sel = &agencyv1.WorkspaceSelector{LabelSelector: "client=a"}
	}
	req := &agencyv1.OnboardMembersRequest{Selector: sel}
	for _, e := range emails {
		req.People = append(req.People, &agencyv1.Person{Email: e, Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR})
	}
	op, err := w.fan.OnboardMembers(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return op
}

// wait waits for the operation to end.
func (w *world) wait(t *testing.T, ctx context.Context, name string) *longrunningpb.Operation {
	t.Helper()
	op, err := w.svc.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(4 * time.Second)})
	if err != nil || !op.GetDone() {
		t.Fatalf("wait %s: %v, done %v", name, err, op.GetDone())
	}
	return op
}

func metadata(t *testing.T, op *longrunningpb.Operation) *agencyv1.OperationMetadata {
	t.Helper()
	md := &agencyv1.OperationMetadata{}
	if err := op.GetMetadata().UnmarshalTo(md); err != nil {
		t.Fatal(err)
	}
	return md
}

// results walks ListOperationResults in pages of size.
func (w *world) results(t *testing.T, ctx context.Context, name string, size int32, failedOnly bool) []*agencyv1.OperationResult {
	t.Helper()
	return servicetest.Walk(t, 100, func(tok string) ([]*agencyv1.OperationResult, string, error) {
		resp, err := w.svc.ListOperationResults(ctx, &agencyv1.ListOperationResultsRequest{Name: name, PageSize: size, PageToken: tok, FailedOnly: failedOnly})
		return resp.GetResults(), resp.GetNextPageToken(), err
	})
}

// rekey gives ws a new working key, as rotating its credential would.
func (w *world) rekey(t *testing.T, ws servicetest.Workspace) {
	t.Helper()
	k, err := w.e.Sim.CreateAPIKey(ws.InstantlyID, "rotated", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := w.e.Keyring.Seal([]byte(k.Key), []byte(ws.Name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.e.Store.Workspaces().Update(context.Background(), ws.Name, func(x *store.Workspace) error {
		x.SealedCredential, x.CredentialFingerprint = string(sealed), vault.Fingerprint(k.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func second[T any](_ T, err error) error { return err }

// TestVisibilityThroughEveryCall: the creator and admins whose scope
// covers the creator's reach an operation through every call; anyone else
// gets NOT_FOUND from each, and changes nothing.
func TestVisibilityThroughEveryCall(t *testing.T) {
	w := newWorld(t, 1)
	op := w.onboard(t, creator(), nil, "x@agency.test") // pending: no workers
	name := op.GetName()
	calls := map[string]func(context.Context) error{
		"get": func(ctx context.Context) error {
			return second(w.svc.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: name}))
		},
		"wait": func(ctx context.Context) error {
			return second(w.svc.WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(0)}))
		},
		"results": func(ctx context.Context) error {
			return second(w.svc.ListOperationResults(ctx, &agencyv1.ListOperationResultsRequest{Name: name}))
		},
		"cancel": func(ctx context.Context) error {
			return second(w.svc.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: name}))
		},
		"delete": func(ctx context.Context) error {
			return second(w.svc.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: name}))
		},
		"retry": func(ctx context.Context) error {
			return second(w.svc.RetryOperation(ctx, &agencyv1.RetryOperationRequest{Name: name}))
		},
	}
	for _, c := range []struct {
		who     string
		ctx     context.Context
		visible bool
	}{
		{"creator", creator(), true},
		{"unscoped admin", as("tokens/root", auth.RoleAdmin, ""), true},
		{"admin of the same scope", as("tokens/adm", auth.RoleAdmin, "client=a"), true},
		{"admin of a narrower scope", as("tokens/adm", auth.RoleAdmin, "client=a,tier=gold"), false},
		{"admin of another scope", as("tokens/adm", auth.RoleAdmin, "client=b"), false},
		{"unscoped manager", as("tokens/other", auth.RoleManager, ""), false},
		{"no principal", context.Background(), false},
	} {
		t.Run(c.who, func(t *testing.T) {
			listed, err := w.svc.ListOperations(c.ctx, &longrunningpb.ListOperationsRequest{})
			if c.ctx == context.Background() {
				servicetest.WantCode(t, err, codes.NotFound)
			} else if err != nil || (len(listed.GetOperations()) == 1) != c.visible {
				t.Fatalf("listed %v, %v; visible %v", listed.GetOperations(), err, c.visible)
			}
			if c.visible {
				for _, what := range []string{"get", "wait", "results"} { // the calls that change nothing
					if err := calls[what](c.ctx); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
				}
				return
			}
			for what, call := range calls {
				t.Run(what, func(t *testing.T) { servicetest.WantCode(t, call(c.ctx), codes.NotFound) })
			}
		})
	}
	// Nobody who could not see it cancelled, deleted or retried it.
	got, err := w.svc.GetOperation(creator(), &longrunningpb.GetOperationRequest{Name: name})
	if err != nil || metadata(t, got).GetCancelRequested() {
		t.Fatalf("after the invisible callers: %v, %v", got, err)
	}
	if all, _ := w.m.Backend().List(context.Background(), ops.ListQuery{Limit: 10}); len(all) != 1 {
		t.Fatalf("%d operations stored, want 1 (no retry)", len(all))
	}
}

// TestListOperations: pages walk the caller's visible operations once
// each, newest first; an admin covering everyone sees them all; a token
// only continues the listing it came from.
func TestListOperations(t *testing.T) {
	w := newWorld(t, 1)
	other := as("tokens/other", auth.RoleAdmin, "") // wider than the creator: the creator does not see its operations
	mine := map[string]bool{}
	for i := range 5 {
		mine[w.onboard(t, creator(), nil, fmt.Sprintf("p%d@agency.test", i)).GetName()] = true
		if i%2 == 0 {
			w.onboard(t, other, nil, "o@agency.test")
		}
	}
	list := func(ctx context.Context, size int32) []*longrunningpb.Operation {
		return servicetest.Walk(t, 10, func(tok string) ([]*longrunningpb.Operation, string, error) {
			resp, err := w.svc.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: "operations", PageSize: size, PageToken: tok})
			return resp.GetOperations(), resp.GetNextPageToken(), err
		})
	}
	for _, c := range []struct {
		who  string
		ctx  context.Context
		size int32
		want int
	}{
		{"creator in pages of 2", creator(), 2, 5},
		{"creator in pages of 5", creator(), 5, 5},
		{"creator, default page", creator(), 0, 5},
		{"admin in pages of 3", servicetest.Admin(), 3, 8},
	} {
		t.Run(c.who, func(t *testing.T) {
			got := list(c.ctx, c.size)
			seen := map[string]bool{}
			for i, op := range got {
				md := metadata(t, op)
				if seen[op.GetName()] || (c.want == 5 && !mine[op.GetName()]) {
					t.Fatalf("%s listed twice or not the caller's", op.GetName())
				}
				seen[op.GetName()] = true
				if i > 0 && metadata(t, got[i-1]).GetCreateTime().AsTime().Before(md.GetCreateTime().AsTime()) {
					t.Fatal("not newest first")
				}
			}
			if len(got) != c.want {
				t.Fatalf("listed %d operations, want %d", len(got), c.want)
			}
		})
	}
	// The default page (50) holds them all.
	if all, err := w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{}); err != nil || len(all.GetOperations()) != 5 || all.GetNextPageToken() != "" {
		t.Fatalf("default page: %d operations, token %q, %v", len(all.GetOperations()), all.GetNextPageToken(), err)
	}
	first, err := w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: 2})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v, token %q", err, first.GetNextPageToken())
	}
	// The token continues after the page's last operation.
	next, err := w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: 2, PageToken: first.GetNextPageToken()})
	if err != nil || len(next.GetOperations()) != 2 || slices.ContainsFunc(next.GetOperations(), func(op *longrunningpb.Operation) bool {
		return op.GetName() == first.GetOperations()[0].GetName() || op.GetName() == first.GetOperations()[1].GetName()
	}) {
		t.Fatalf("second page %v, %v", next.GetOperations(), err)
	}
}

// TestBadRequests: bad list parameters and wait timeouts name their field;
// a malformed or unknown operation name is NOT_FOUND like an invisible one
// (the README: "as for a name that does not exist (or is malformed)").
func TestBadRequests(t *testing.T) {
	w := newWorld(t, 1)
	op := w.onboard(t, creator(), nil, "x@agency.test")
	w.onboard(t, creator(), nil, "y@agency.test")
	ops2, err := w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: 1})
	if err != nil || ops2.GetNextPageToken() == "" {
		t.Fatalf("%v, token %q", err, ops2.GetNextPageToken())
	}
	opsTok := ops2.GetNextPageToken()
	other := w.onboard(t, creator(), nil, "a@agency.test", "b@agency.test")
	resTok := w.resultsToken(t, other.GetName(), false)
	for _, c := range []struct {
		name  string
		err   error
		field string
	}{
		{"list: another collection", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{Name: "operations/x"})), "name"},
		{"list: filter", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{Filter: "done=true"})), "filter"},
		{"list: negative page size", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: -1})), "page_size"},
		{"list: page size over 1000", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: 1001})), "page_size"},
		{"list: forged token", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageToken: opsTok[:len(opsTok)-2] + "xx"})), "page_token"},
		{"list: a results token", second(w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageToken: resTok})), "page_token"},
		{"wait: negative timeout", second(w.svc.WaitOperation(creator(), &longrunningpb.WaitOperationRequest{Name: op.GetName(), Timeout: durationpb.New(-time.Second)})), "timeout"},
		{"wait: invalid timeout", second(w.svc.WaitOperation(creator(), &longrunningpb.WaitOperationRequest{Name: op.GetName(), Timeout: &durationpb.Duration{Seconds: 1, Nanos: -1}})), "timeout"},
		{"results: another operation's token", second(w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: op.GetName(), PageToken: resTok})), "page_token"},
		{"results: failed_only changed", second(w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: other.GetName(), PageToken: resTok, FailedOnly: true})), "page_token"},
		{"results: an operations token", second(w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: other.GetName(), PageToken: opsTok})), "page_token"},
	} {
		t.Run(c.name, func(t *testing.T) { servicetest.WantField(t, c.err, c.field) })
	}
	for _, name := range []string{"", "operations/nope", "operations/" + strings.Repeat("A", 26), "operations/" + strings.Repeat("a", 26), "ops/" + op.GetName()[len("operations/"):]} {
		t.Run("name "+name, func(t *testing.T) {
			servicetest.WantCode(t, second(w.svc.GetOperation(creator(), &longrunningpb.GetOperationRequest{Name: name})), codes.NotFound)
			servicetest.WantCode(t, second(w.svc.RetryOperation(creator(), &agencyv1.RetryOperationRequest{Name: name})), codes.NotFound)
			servicetest.WantCode(t, second(w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: name})), codes.NotFound)
		})
	}
}

// resultsToken is the first next_page_token of name's results, in pages of 1.
func (w *world) resultsToken(t *testing.T, name string, failedOnly bool) string {
	t.Helper()
	resp, err := w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: name, PageSize: 1, FailedOnly: failedOnly})
	if err != nil || resp.GetNextPageToken() == "" {
		t.Fatalf("results page: %v, token %q", err, resp.GetNextPageToken())
	}
	return resp.GetNextPageToken()
}

// TestWaitOperation: a wait returns the current state after the caller's
// timeout, capped by the service's maximum and by the call's deadline, and
// at once when the operation ends.
func TestWaitOperation(t *testing.T) {
	w := newWorld(t, 1)
	op := w.onboard(t, creator(), nil, "x@agency.test") // pending until start
	const short = 600 * time.Millisecond
	for _, c := range []struct {
		name     string
		maxWait  time.Duration // the service's
		deadline time.Duration // of the call, when not 0
		timeout  *durationpb.Duration
		min, max time.Duration
	}{
		{"short timeout", short, 0, durationpb.New(50 * time.Millisecond), 50 * time.Millisecond, 500 * time.Millisecond},
		{"no timeout: the service's maximum", short, 0, nil, short, 3 * time.Second},
		{"a long timeout is capped", short, 0, durationpb.New(time.Hour), short, 3 * time.Second},
		// A tenth of the time left is kept to answer in.
		{"before the call's deadline", time.Minute, time.Second, durationpb.New(time.Hour), 500 * time.Millisecond, time.Second},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := creator()
			if c.deadline > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.deadline)
				defer cancel()
			}
			start := time.Now()
			got, err := New(w.m, c.maxWait, w.e.Pages).WaitOperation(ctx, &longrunningpb.WaitOperationRequest{Name: op.GetName(), Timeout: c.timeout})
			if took := time.Since(start); err != nil || got.GetDone() || took < c.min || took > c.max {
				t.Fatalf("wait: %v, done %v after %v; want a running operation after %v..%v", err, got.GetDone(), took, c.min, c.max)
			}
			// The answer leaves the caller room to receive it.
			if ctx.Err() != nil {
				t.Fatal("answered only at the caller's deadline")
			}
		})
	}
	w.start(t)
	start := time.Now()
	done := w.wait(t, creator(), op.GetName())
	resp := &agencyv1.OperationResponse{}
	if err := done.GetResponse().UnmarshalTo(resp); err != nil || time.Since(start) > 2*time.Second {
		t.Fatalf("ended operation: %v %v after %v", done, err, time.Since(start))
	}
}

// TestCancelAndDelete: a running operation cannot be deleted; cancelled,
// its unstarted items end NOT_ATTEMPTED and it ends CANCELLED, after which
// it cannot be cancelled again but can be deleted, and is then gone.
func TestCancelAndDelete(t *testing.T) {
	w := newWorld(t, 2)
	name := w.onboard(t, creator(), nil, "x@agency.test", "y@agency.test").GetName() // pending: no workers yet
	cancelOp := func(ctx context.Context) error {
		return second(w.svc.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: name}))
	}
	deleteOp := func(ctx context.Context) error {
		return second(w.svc.DeleteOperation(ctx, &longrunningpb.DeleteOperationRequest{Name: name}))
	}
	servicetest.WantErr(t, deleteOp(creator()), codes.FailedPrecondition, "", "CONFLICT")
	// An admin who sees the operation may cancel it.
	if err := cancelOp(servicetest.Admin()); err != nil {
		t.Fatal(err)
	}
	got, err := w.svc.GetOperation(creator(), &longrunningpb.GetOperationRequest{Name: name})
	if err != nil || !metadata(t, got).GetCancelRequested() || got.GetDone() {
		t.Fatalf("after cancel: %v, %v", got, err)
	}
	w.start(t)
	if done := w.wait(t, creator(), name); done.GetError().GetCode() != int32(codes.Canceled) {
		t.Fatalf("a cancelled operation ended %v", done.GetResult())
	}
	for _, r := range w.results(t, creator(), name, 0, false) {
		if r.GetState() != agencyv1.ItemState_ITEM_STATE_DONE || r.GetResult().GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED {
			t.Fatalf("item %v", r)
		}
	}
	if w.e.MemberByEmail(t, w.a[0].InstantlyID, "x@agency.test") != nil {
		t.Fatal("a cancelled operation invited someone")
	}
	servicetest.WantErr(t, cancelOp(creator()), codes.FailedPrecondition, "", "CONFLICT")
	if err := deleteOp(creator()); err != nil {
		t.Fatal(err)
	}
	servicetest.WantCode(t, second(w.svc.GetOperation(creator(), &longrunningpb.GetOperationRequest{Name: name})), codes.NotFound)
	servicetest.WantCode(t, deleteOp(creator()), codes.NotFound)
	servicetest.WantCode(t, cancelOp(creator()), codes.NotFound)
}

// failingWorld is three a workspaces, a[bad] with its key revoked, and an
// operation onboarding two people into them (or into names), not started:
// a[bad]'s two items will fail, the others succeed.
func failingWorld(t *testing.T, bad int, names ...string) (*world, string, []string) {
	t.Helper()
	w := newWorld(t, 3)
	w.e.RevokeKeys(t, w.a[bad].InstantlyID)
	emails := []string{"p0@agency.test", "p1@agency.test"}
	name := w.onboard(t, creator(), names, emails...).GetName()
	return w, name, emails
}

// TestListOperationResults: every item in item order (workspaces by name,
// then people in request order) whatever the page size, PENDING before a
// worker takes it, then its result; failed_only pages through the failed
// items alone.
func TestListOperationResults(t *testing.T) {
	w, name, emails := failingWorld(t, 1)
	check := func(t *testing.T, got []*agencyv1.OperationResult, indices []int64, state agencyv1.ItemState) {
		t.Helper()
		if len(got) != len(indices) {
			t.Fatalf("%d results, want %d", len(got), len(indices))
		}
		for n, r := range got {
			i := indices[n]
			res := r.GetResult()
			want := agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED
			if state == agencyv1.ItemState_ITEM_STATE_PENDING || i/2 == 1 {
				want = agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED
				if state == agencyv1.ItemState_ITEM_STATE_DONE {
					want = agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED
				}
			}
			if r.GetIndex() != i || r.GetState() != state || res.GetWorkspace() != w.a[i/2].Name || res.GetEmail() != emails[i%2] || res.GetOutcome() != want {
				t.Fatalf("result %d: %v; want item %d of %s for %s, %v", n, r, i, w.a[i/2].Name, emails[i%2], want)
			}
		}
	}
	all := []int64{0, 1, 2, 3, 4, 5}
	check(t, w.results(t, creator(), name, 4, false), all, agencyv1.ItemState_ITEM_STATE_PENDING)
	w.start(t)
	w.wait(t, creator(), name)
	for _, size := range []int32{1, 4, 6, 0} {
		t.Run(fmt.Sprintf("pages of %d", size), func(t *testing.T) {
			check(t, w.results(t, creator(), name, size, false), all, agencyv1.ItemState_ITEM_STATE_DONE)
			failed := w.results(t, creator(), name, size, true)
			check(t, failed, []int64{2, 3}, agencyv1.ItemState_ITEM_STATE_DONE)
			if code := codes.Code(failed[0].GetResult().GetStatus().GetCode()); code != codes.FailedPrecondition {
				t.Fatalf("a revoked key's item failed %v", code)
			}
		})
	}
	resp, err := w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: name, PageSize: 1, FailedOnly: true})
	if err != nil || resp.GetTotalSize() != 6 {
		t.Fatalf("total_size %d, %v", resp.GetTotalSize(), err)
	}
	// The default page (100) holds them all.
	if resp, err := w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: name}); err != nil ||
		len(resp.GetResults()) != 6 || resp.GetNextPageToken() != "" {
		t.Fatalf("default page: %d results, token %q, %v", len(resp.GetResults()), resp.GetNextPageToken(), err)
	}
	for _, size := range []int32{-1, 1001} {
		_, err := w.svc.ListOperationResults(creator(), &agencyv1.ListOperationResultsRequest{Name: name, PageSize: size})
		servicetest.WantField(t, err, "page_size")
	}
}

// TestRetryOperation: a retry is a new operation of the failed items only
// (a workspace missing from the creator's scope stays missing); once the
// cause is fixed they succeed, and the items that had succeeded are not
// run again. A running operation cannot be retried.
func TestRetryOperation(t *testing.T) {
	// a0 fails: its items are the first, indices 0 and 1.
	w, name, emails := failingWorld(t, 0, "workspaces/a0", "workspaces/a1", "workspaces/a2", "workspaces/b")
	servicetest.WantErr(t, second(w.svc.RetryOperation(creator(), &agencyv1.RetryOperationRequest{Name: name})), codes.FailedPrecondition, "", "CONFLICT")
	w.start(t)
	w.wait(t, creator(), name)
	w.rekey(t, w.a[0])
	before := w.e.Requests(w.a[1].InstantlyID) + w.e.Requests(w.a[2].InstantlyID)
	retry, err := w.svc.RetryOperation(creator(), &agencyv1.RetryOperationRequest{Name: name, RequestId: "5f0c7a52-4bd5-4b1e-9a56-3d4a6b0a3e21"})
	if err != nil {
		t.Fatal(err)
	}
	if md := metadata(t, retry); md.GetRetryOf() != name || md.GetTotalItems() != 4 || md.GetWorkspaces() != 2 || md.GetCreator() != "tokens/creator" {
		t.Fatalf("retry metadata %v", md)
	}
	w.wait(t, creator(), retry.GetName())
	got := w.results(t, creator(), retry.GetName(), 0, false)
	var outcomes []string
	for _, r := range got {
		outcomes = append(outcomes, r.GetResult().GetWorkspace()+" "+r.GetResult().GetEmail()+" "+r.GetResult().GetOutcome().String())
	}
	want := []string{
		w.a[0].Name + " " + emails[0] + " FANOUT_OUTCOME_CREATED", w.a[0].Name + " " + emails[1] + " FANOUT_OUTCOME_CREATED",
		w.b.Name + " " + emails[0] + " FANOUT_OUTCOME_FAILED", w.b.Name + " " + emails[1] + " FANOUT_OUTCOME_FAILED",
	}
	if !slices.Equal(outcomes, want) {
		t.Fatalf("retry results %q, want %q", outcomes, want)
	}
	if after := w.e.Requests(w.a[1].InstantlyID) + w.e.Requests(w.a[2].InstantlyID); after != before {
		t.Fatal("the retry reached workspaces whose items had succeeded")
	}
	if w.e.MemberByEmail(t, w.b.InstantlyID, emails[0]) != nil {
		t.Fatal("the retry reached a workspace outside the creator's scope")
	}
	if rec, _, err := w.m.Backend().Get(context.Background(), retry.GetName()[len("operations/"):]); err != nil || rec.RequestID != "5f0c7a52-4bd5-4b1e-9a56-3d4a6b0a3e21" {
		t.Fatalf("retry record %+v, %v", rec, err)
	}
}

// TestRetryPermission: a retry runs the operation's method again, so it
// needs that method's permission, whoever may see the operation; an
// operation without failures retries into an empty, ended one.
func TestRetryPermission(t *testing.T) {
	w := newWorld(t, 1)
	ctx := context.Background()
	create := func(method, creatorID, role string) string {
		rec := &ops.Record{Method: method, Creator: creatorID, CreatorRole: role}
		if err := w.m.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return ops.Name(rec.ID)
	}
	onboard := agencyv1.FanoutService_OnboardMembers_FullMethodName
	for _, c := range []struct {
		name   string
		caller context.Context
		op     string
		code   codes.Code
	}{
		{"a viewer", as("tokens/v", auth.RoleViewer, ""), create(onboard, "tokens/v", auth.RoleViewer), codes.PermissionDenied},
		{"a method without a rule", as("tokens/m", auth.RoleAdmin, ""), create("/agency.v1.Nope/Nothing", "tokens/m", auth.RoleAdmin), codes.PermissionDenied},
		{"a manager may not onboard", as("tokens/m", auth.RoleManager, ""), create(onboard, "tokens/m", auth.RoleManager), codes.PermissionDenied},
		{"nothing failed", as("tokens/m", auth.RoleManager, ""), create(agencyv1.FanoutService_EnsureTagEverywhere_FullMethodName, "tokens/m", auth.RoleManager), codes.OK},
	} {
		t.Run(c.name, func(t *testing.T) {
			retry, err := w.svc.RetryOperation(c.caller, &agencyv1.RetryOperationRequest{Name: c.op})
			servicetest.WantCode(t, err, c.code)
			if c.code == codes.OK && (!retry.GetDone() || metadata(t, retry).GetTotalItems() != 0) {
				t.Fatalf("retry of nothing: %v", retry)
			}
		})
	}
}

// TestCreatedKeySecretToCreatorOnly: a created key's secret is in its
// result for the operation's creator only; an admin who sees the
// operation sees the key without it.
func TestCreatedKeySecretToCreatorOnly(t *testing.T) {
	w := newWorld(t, 1)
	w.start(t)
	resp, err := w.fan.CreateApiKeyEverywhere(creator(), &agencyv1.CreateApiKeyEverywhereRequest{
		Selector: &agencyv1.WorkspaceSelector{LabelSelector: "client=a"}, DisplayName: "sdr", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR, LongRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	name := resp.GetOperation().GetName()
	w.wait(t, creator(), name)
	for _, c := range []struct {
		who    string
		ctx    context.Context
		secret bool
	}{{"creator", creator(), true}, {"admin", servicetest.Admin(), false}} {
		t.Run(c.who, func(t *testing.T) {
			got := w.results(t, c.ctx, name, 0, false)
			k := got[0].GetResult().GetCreatedApiKey()
			if len(got) != 1 || k.GetApiKey().GetId() == "" || (k.GetSecret() != "") != c.secret {
				t.Fatalf("results %v; want the secret: %v", got, c.secret)
			}
		})
	}
}

// TestRetryEveryFailedItem: failed items are read in pages of 1,000; a
// retry takes all of them, past the first page.
func TestRetryEveryFailedItem(t *testing.T) {
	w := newWorld(t, 2)
	for _, ws := range w.a {
		w.e.RevokeKeys(t, ws.InstantlyID)
	}
	emails := make([]string, 501)
	for i := range emails {
		emails[i] = fmt.Sprintf("p%d@agency.test", i)
	}
	w.start(t)
	name := w.onboard(t, creator(), nil, emails...).GetName()
	w.wait(t, creator(), name)
	retry, err := w.svc.RetryOperation(creator(), &agencyv1.RetryOperationRequest{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	if md := metadata(t, retry); md.GetTotalItems() != 1002 || md.GetWorkspaces() != 2 {
		t.Fatalf("retry of 1,002 failed items: %d items in %d workspaces", md.GetTotalItems(), md.GetWorkspaces())
	}
}

// TestListOperationsAfterDeletingThePage: a client that deletes every
// operation it lists (a clean-up loop) deletes each page's last one, which
// the next page's token continues after; the listing must still reach
// every operation rather than end early.
func TestListOperationsAfterDeletingThePage(t *testing.T) {
	w := newWorld(t, 1)
	for range 5 {
		// Nothing to do: ended at once, so it may be deleted.
		if err := w.m.Create(context.Background(), &ops.Record{Method: agencyv1.FanoutService_OnboardMembers_FullMethodName,
			Creator: "tokens/creator", CreatorRole: auth.RoleAdmin, CreatorScope: "client=a"}); err != nil {
			t.Fatal(err)
		}
	}
	deleted := servicetest.Walk(t, 10, func(tok string) ([]*longrunningpb.Operation, string, error) {
		resp, err := w.svc.ListOperations(creator(), &longrunningpb.ListOperationsRequest{PageSize: 2, PageToken: tok})
		for _, op := range resp.GetOperations() {
			if _, err := w.svc.DeleteOperation(creator(), &longrunningpb.DeleteOperationRequest{Name: op.GetName()}); err != nil {
				t.Fatal(err)
			}
		}
		return resp.GetOperations(), resp.GetNextPageToken(), err
	})
	if len(deleted) != 5 {
		t.Fatalf("the listing reached %d of 5 operations", len(deleted))
	}
}

// TestRefresh: a replayed request_id answers the operation it started as
// it is now (inside a FanoutResponse too, without changing the stored
// answer); an operation since deleted, and any other answer, replay as
// stored.
func TestRefresh(t *testing.T) {
	w := newWorld(t, 1)
	stored := w.onboard(t, creator(), nil, "x@agency.test") // the answer as first given: not done
	deleted := w.onboard(t, creator(), nil, "y@agency.test")
	w.start(t)
	w.wait(t, creator(), stored.GetName())
	w.wait(t, creator(), deleted.GetName())
	if _, err := w.svc.DeleteOperation(creator(), &longrunningpb.DeleteOperationRequest{Name: deleted.GetName()}); err != nil {
		t.Fatal(err)
	}
	fanout := &agencyv1.FanoutResponse{Operation: stored, DryRun: true}
	other := &agencyv1.FanoutResponse{Summary: &agencyv1.FanoutSummary{Total: 3}}
	for _, c := range []struct {
		name string
		in   proto.Message
		done bool // the answer names the operation, now done
	}{
		{"operation", stored, true},
		{"fan-out response", fanout, true},
		{"deleted operation", deleted, false},
		{"malformed name", &longrunningpb.Operation{Name: "operations/nope"}, false},
		{"unary fan-out", other, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := proto.Clone(c.in)
			got, err := w.svc.Refresh(creator(), c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(c.in, before) {
				t.Fatal("the stored answer changed")
			}
			op, _ := got.(*longrunningpb.Operation)
			if f, ok := got.(*agencyv1.FanoutResponse); ok {
				op = f.GetOperation()
				if !f.GetDryRun() && f.GetSummary() == nil {
					t.Fatalf("the fan-out response lost its fields: %v", f)
				}
			}
			if c.done != op.GetDone() || (!c.done && !proto.Equal(got, c.in)) {
				t.Fatalf("refreshed %v", got)
			}
		})
	}
}

// TestRunningItems: the items of an entry a worker holds are RUNNING in
// the results and the metadata until their results are recorded.
func TestRunningItems(t *testing.T) {
	w := newWorld(t, 2)
	const method = "/agency.v1.Test/Block"
	started, release := make(chan int, 2), make(chan struct{})
	w.m.Register(method, ops.ExecutorFunc(func(ctx context.Context, job *ops.Job) {
		started <- job.EntryIndex
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
		for _, it := range job.Pending() {
			_ = job.Record(ctx, it, &agencyv1.WorkspaceResult{Workspace: job.Entry.Workspace, Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED})
		}
	}))
	rec := &ops.Record{Method: method, Creator: "tokens/creator", CreatorRole: auth.RoleAdmin, CreatorScope: "client=a",
		Entries: []ops.Entry{{Workspace: w.a[0].Name}, {Workspace: w.a[1].Name}}}
	if err := w.m.Create(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	name := ops.Name(rec.ID)
	w.start(t)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the workers did not take the entries")
		}
	}
	wantStates := func(state agencyv1.ItemState) {
		t.Helper()
		for _, r := range w.results(t, creator(), name, 0, false) {
			if r.GetState() != state {
				t.Fatalf("item %v, want %v", r, state)
			}
		}
	}
	wantStates(agencyv1.ItemState_ITEM_STATE_RUNNING)
	got, err := w.svc.GetOperation(creator(), &longrunningpb.GetOperationRequest{Name: name})
	if md := metadata(t, got); err != nil || md.GetRunningItems() != 2 || md.GetPendingItems() != 0 || got.GetDone() {
		t.Fatalf("while running: %v, %v", md, err)
	}
	close(release)
	w.wait(t, creator(), name)
	wantStates(agencyv1.ItemState_ITEM_STATE_DONE)
}
