package server

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
)

// flakyAudit is an audit trail whose appends fail on demand.
type flakyAudit struct {
	store.Audit
	fail atomic.Bool
}

func (f *flakyAudit) Append(ctx context.Context, e *store.AuditEvent) error {
	if f.fail.Load() {
		return fmt.Errorf("append audit event: %w", store.ErrUnavailable)
	}
	return f.Audit.Append(ctx, e)
}

type flakyAuditStore struct {
	store.Store
	audit *flakyAudit
}

func (s flakyAuditStore) Audit() store.Audit { return s.audit }

// countingTags counts the CreateTag calls that reach the handler.
type countingTags struct {
	agencyv1.UnimplementedTagServiceServer
	calls atomic.Int32
}

func (s *countingTags) CreateTag(_ context.Context, req *agencyv1.CreateTagRequest) (*agencyv1.Tag, error) {
	n := s.calls.Add(1)
	return &agencyv1.Tag{Name: fmt.Sprintf("%s/tags/t%d", req.GetParent(), n), Label: req.GetTag().GetLabel()}, nil
}

type auditFixture struct {
	audit *flakyAudit
	tags  *countingTags
	c     agencyv1.TagServiceClient
	ctx   context.Context
}

func newAuditFixture(t *testing.T) *auditFixture {
	t.Helper()
	mem := memory.New()
	const token = "audit-test-token-0123456789"
	if err := mem.Tokens().Create(context.Background(), &store.Token{ID: "t", Hash: auth.HashToken(token), Role: auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.NewAuthenticator(auth.Options{Tokens: mem.Tokens()})
	if err != nil {
		t.Fatal(err)
	}
	f := &auditFixture{audit: &flakyAudit{Audit: mem.Audit()}, tags: &countingTags{}}
	srv, err := New(Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler),
		Store: flakyAuditStore{Store: mem, audit: f.audit}, Auth: authn,
		Services: []Service{{Desc: &agencyv1.TagService_ServiceDesc, Impl: f.tags}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	f.c = agencyv1.NewTagServiceClient(conn)
	callCtx, callCancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token), 10*time.Second)
	t.Cleanup(callCancel)
	f.ctx = callCtx
	return f
}

// events returns the trail oldest first.
func (f *auditFixture) events(t *testing.T) []*store.AuditEvent {
	t.Helper()
	evs, err := f.audit.List(context.Background(), store.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(evs)
	return evs
}

func phases(evs []*store.AuditEvent) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Phase+":"+e.Code)
	}
	return out
}

// TestAuditBeforeEffect: a call that reaches its handler leaves a started
// event, then its outcome; refused calls leave only their outcome; a
// request_id replay leaves nothing.
func TestAuditBeforeEffect(t *testing.T) {
	f := newAuditFixture(t)
	const rid = "6f9b7a0e-3c1d-4e2f-8a9b-0c1d2e3f4a5b"
	req := &agencyv1.CreateTagRequest{Parent: "workspaces/w", Tag: &agencyv1.Tag{Label: "x"}, RequestId: rid}
	first, err := f.c.CreateTag(f.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	evs := f.events(t)
	if got := phases(evs); !slices.Equal(got, []string{"started:", "finished:OK"}) {
		t.Fatalf("events %v, want started then finished", got)
	}
	for _, e := range evs {
		if e.Principal != "tokens/t" || e.Role != auth.RoleAdmin || e.Method != "/agency.v1.TagService/CreateTag" || e.RequestID == "" ||
			!slices.Equal(e.Workspaces, []string{"workspaces/w"}) {
			t.Fatalf("event %+v", e)
		}
	}
	if evs[0].RequestID != evs[1].RequestID {
		t.Fatal("the two events of one call carry different request ids")
	}

	// A replay does nothing and appends nothing.
	again, err := f.c.CreateTag(f.ctx, req)
	if err != nil || again.GetName() != first.GetName() || f.tags.calls.Load() != 1 {
		t.Fatalf("replay %v %v, %d calls", again, err, f.tags.calls.Load())
	}
	if n := len(f.events(t)); n != 2 {
		t.Fatalf("a replay appended %d events", n-2)
	}

	// Refused by validation (a request_id that is no UUID is caught there,
	// before request_id handling): the outcome only.
	bad := &agencyv1.CreateTagRequest{Parent: "workspaces/w", Tag: &agencyv1.Tag{Label: "x"}, RequestId: "not-a-uuid"}
	_, err = f.c.CreateTag(f.ctx, bad)
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !violates(st, "request_id") {
		t.Fatalf("bad request_id: %v", err)
	}
	evs = f.events(t)
	if got := phases(evs[2:]); !slices.Equal(got, []string{"finished:InvalidArgument"}) {
		t.Fatalf("refused call left %v", got)
	}

	// The same id for another request: refused, audited, nothing run.
	_, err = f.c.CreateTag(f.ctx, &agencyv1.CreateTagRequest{Parent: "workspaces/w", Tag: &agencyv1.Tag{Label: "y"}, RequestId: rid})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || !violates(st, "request_id") || f.tags.calls.Load() != 1 {
		t.Fatalf("reused id: %v, %d calls", err, f.tags.calls.Load())
	}
}

// TestAuditUnavailableFailsClosed: when the started event cannot be
// appended, the call is UNAVAILABLE and its handler never runs.
func TestAuditUnavailableFailsClosed(t *testing.T) {
	f := newAuditFixture(t)
	f.audit.fail.Store(true)
	_, err := f.c.CreateTag(f.ctx, &agencyv1.CreateTagRequest{Parent: "workspaces/w", Tag: &agencyv1.Tag{Label: "x"}})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || reason(st) != "STORE_UNAVAILABLE" {
		t.Fatalf("audit down: %v, want UNAVAILABLE/STORE_UNAVAILABLE", err)
	}
	if f.tags.calls.Load() != 0 {
		t.Fatal("the handler ran without a started event")
	}
	// With request_id the claim is given back: once the trail is back, the
	// retry runs.
	const rid = "0c6a3a55-6a9b-4f8e-9d0c-1b2a3c4d5e6f"
	req := &agencyv1.CreateTagRequest{Parent: "workspaces/w", Tag: &agencyv1.Tag{Label: "x"}, RequestId: rid}
	if _, err := f.c.CreateTag(f.ctx, req); status.Code(err) != codes.Unavailable {
		t.Fatalf("with request_id: %v", err)
	}
	f.audit.fail.Store(false)
	if _, err := f.c.CreateTag(f.ctx, req); err != nil || f.tags.calls.Load() != 1 {
		t.Fatalf("retry after recovery: %v, %d calls", err, f.tags.calls.Load())
	}
	if got := phases(f.events(t)); !slices.Equal(got, []string{"started:", "finished:OK"}) {
		t.Fatalf("events %v", got)
	}
}

// TestFanoutOutcomeIsCompact: a fan-out's outcome lists only the workspaces
// that changed or failed; an operation's event carries its name.
func TestFanoutOutcomeIsCompact(t *testing.T) {
	a := &auditor{}
	e := &store.AuditEvent{Workspaces: []string{"workspaces/a"}}
	a.outcome(e, &agencyv1.FanoutResponse{
		Results: []*agencyv1.WorkspaceResult{
			{Workspace: "workspaces/a", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE},
			{Workspace: "workspaces/b", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED},
			{Workspace: "workspaces/c", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED},
			{Workspace: "workspaces/d", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_SKIPPED},
		},
		Summary: &agencyv1.FanoutSummary{Succeeded: 1, Failed: 1, AlreadyDone: 1},
	}, nil)
	if !slices.Equal(e.Workspaces, []string{"workspaces/b", "workspaces/c"}) || e.Succeeded != 1 || e.Failed != 1 || e.AlreadyDone != 1 {
		t.Fatalf("fan-out event %+v", e)
	}
	dry := &store.AuditEvent{}
	a.outcome(dry, &agencyv1.FanoutResponse{DryRun: true, Results: []*agencyv1.WorkspaceResult{
		{Workspace: "workspaces/b", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED},
	}}, nil)
	if len(dry.Workspaces) != 0 {
		t.Fatalf("a dry run changed %v", dry.Workspaces)
	}
	op := &store.AuditEvent{Workspaces: []string{"workspaces/a"}}
	a.outcome(op, &agencyv1.FanoutResponse{Operation: &longrunningpb.Operation{Name: "operations/o1"}}, nil)
	if op.Operation != "operations/o1" || !slices.Equal(op.Workspaces, []string{"workspaces/a"}) {
		t.Fatalf("operation event %+v", op)
	}
	lro := &store.AuditEvent{}
	a.outcome(lro, &longrunningpb.Operation{Name: "operations/o2"}, nil)
	if lro.Operation != "operations/o2" {
		t.Fatalf("operation event %+v", lro)
	}
}

func violates(st *status.Status, field string) bool {
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

func reason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}
