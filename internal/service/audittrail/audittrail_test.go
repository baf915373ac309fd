package audittrail

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/ratelimit/limittest"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

// trailStart is when the stored trail begins: within the store's audit
// retention (90 days before the real clock), so nothing is dropped.
var trailStart = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)

func newTestService(t *testing.T, o servicetest.Options) (*Service, *servicetest.Env) {
	t.Helper()
	e := servicetest.New(t, o)
	return New(e.Store.Audit(), e.Scoped, e.Resolver, e.Client, e.Pages, e.Engine), e
}

const (
	invite = "/agency.v1.MemberService/InviteMember"
	create = "/agency.v1.TagService/CreateTag"
)

// trail appends events to the store, a minute apart from trailStart, and
// returns their names in the order given.
func trail(t *testing.T, e *servicetest.Env, events ...*store.AuditEvent) []string {
	t.Helper()
	names := make([]string, len(events))
	for i, ev := range events {
		ev.Time = trailStart.Add(time.Duration(i) * time.Minute)
		if err := e.Store.Audit().Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
		names[i] = "auditEvents/" + ev.ID
	}
	return names
}

func eventNames(resp *agencyv1.ListEventsResponse) []string {
	var out []string
	for _, ev := range resp.GetEvents() {
		out = append(out, ev.GetName())
	}
	return out
}

// TestListEvents: filters combine, a scoped caller sees only events whose
// every workspace is in its scope (never agency-wide ones), newest first.
func TestListEvents(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	a := e.Register(t, "a", map[string]string{"client": "a"})
	b := e.Register(t, "b", map[string]string{"client": "b"})
	n := trail(t, e,
		&store.AuditEvent{Principal: "tokens/x", Role: auth.RoleAdmin, Method: invite, Workspaces: []string{a.Name}, Code: "OK", Succeeded: 1},
		&store.AuditEvent{Principal: "tokens/y", Role: auth.RoleManager, Method: create, Workspaces: []string{b.Name}, Code: "OK"},
		&store.AuditEvent{Principal: "tokens/x", Role: auth.RoleAdmin, Method: invite, Workspaces: []string{a.Name, b.Name}, Code: "OK"},
		&store.AuditEvent{Principal: "tokens/x", Role: auth.RoleAdmin, Method: create, Code: "OK"},
		&store.AuditEvent{Principal: "oidc:idp#1", PrincipalEmail: "ann@agency.io", Role: auth.RoleSDR, Method: invite, RequestID: "r5",
			Workspaces: []string{a.Name}, Code: "InvalidArgument", Failed: 1, AlreadyDone: 2},
	)
	scopedA := servicetest.As(auth.RoleAdmin, "client=a")
	cases := []struct {
		name string
		ctx  context.Context
		req  *agencyv1.ListEventsRequest
		want []string
	}{
		{"everything", servicetest.Admin(), &agencyv1.ListEventsRequest{}, []string{n[4], n[3], n[2], n[1], n[0]}},
		{"principal", servicetest.Admin(), &agencyv1.ListEventsRequest{Principal: "tokens/x"}, []string{n[3], n[2], n[0]}},
		{"method", servicetest.Admin(), &agencyv1.ListEventsRequest{Method: create}, []string{n[3], n[1]}},
		{"workspace", servicetest.Admin(), &agencyv1.ListEventsRequest{Workspace: b.Name}, []string{n[2], n[1]}},
		{"since", servicetest.Admin(), &agencyv1.ListEventsRequest{StartTime: timestamppb.New(trailStart.Add(3 * time.Minute))}, []string{n[4], n[3]}},
		{"combined", servicetest.Admin(), &agencyv1.ListEventsRequest{Principal: "tokens/x", Method: invite, Workspace: a.Name}, []string{n[2], n[0]}},
		{"scoped", scopedA, &agencyv1.ListEventsRequest{}, []string{n[4], n[0]}},
		{"scoped, other workspace", scopedA, &agencyv1.ListEventsRequest{Workspace: b.Name}, nil},
		{"no scope at all", servicetest.As(auth.RoleViewer, "client=none"), &agencyv1.ListEventsRequest{}, nil},
		{"no principal fails closed", context.Background(), &agencyv1.ListEventsRequest{}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListEvents(tc.ctx, tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := eventNames(resp); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}

	resp, err := s.ListEvents(scopedA, &agencyv1.ListEventsRequest{PageSize: 1})
	if err != nil || len(resp.GetEvents()) != 1 {
		t.Fatalf("%v %v", resp, err)
	}
	got, want := resp.GetEvents()[0], &agencyv1.AuditEvent{Name: n[4], Time: timestamppb.New(trailStart.Add(4 * time.Minute)), Principal: "oidc:idp#1",
		PrincipalEmail: "ann@agency.io", Role: agencyv1.Role_ROLE_SDR, Method: invite, RequestId: "r5", Workspaces: []string{a.Name},
		Code: "InvalidArgument", Failed: 1, AlreadyDone: 2}
	if got.String() != want.String() {
		t.Fatalf("event %v, want %v", got, want)
	}
}

// TestListEventsPages: pages cover the trail once each, and a page token
// serves only the filters it was issued for.
func TestListEventsPages(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	var evs []*store.AuditEvent
	for i := range 5 {
		evs = append(evs, &store.AuditEvent{Principal: fmt.Sprintf("tokens/%d", i%2), Method: invite, Code: "OK"})
	}
	n := trail(t, e, evs...)
	got := servicetest.Walk(t, 3, func(tok string) ([]string, string, error) {
		resp, err := s.ListEvents(servicetest.Admin(), &agencyv1.ListEventsRequest{PageSize: 2, PageToken: tok})
		return eventNames(resp), resp.GetNextPageToken(), err
	})
	if want := []string{n[4], n[3], n[2], n[1], n[0]}; !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
	got = servicetest.Walk(t, 2, func(tok string) ([]string, string, error) {
		resp, err := s.ListEvents(servicetest.Admin(), &agencyv1.ListEventsRequest{PageSize: 2, PageToken: tok, Principal: "tokens/0"})
		return eventNames(resp), resp.GetNextPageToken(), err
	})
	if want := []string{n[4], n[2], n[0]}; !slices.Equal(got, want) {
		t.Fatalf("filtered pages %v, want %v", got, want)
	}

	first, err := s.ListEvents(servicetest.Admin(), &agencyv1.ListEventsRequest{PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("%v %v", first, err)
	}
	tok := first.GetNextPageToken()
	for _, req := range []*agencyv1.ListEventsRequest{
		{PageToken: tok, Principal: "tokens/0"},
		{PageToken: tok, Method: create},
		{PageToken: tok, Workspace: "workspaces/a"},
		{PageToken: tok, StartTime: timestamppb.New(trailStart)},
		{PageToken: "garbage"},
	} {
		_, err := s.ListEvents(servicetest.Admin(), req)
		servicetest.WantErr(t, err, codes.InvalidArgument, "page_token", "")
	}
}

// auditAt writes an Instantly audit-log entry into iid at time at.
func auditAt(t *testing.T, e *servicetest.Env, clock *fakeclock.Clock, iid string, at time.Time, activity int) string {
	t.Helper()
	clock.Advance(at.Sub(clock.Now())) // never backwards: entries are written in time order
	entry, err := e.Sim.AddAuditLog(iid, sim.AuditEntry{ActivityType: activity})
	if err != nil {
		t.Fatal(err)
	}
	return entry.ID
}

type merged struct{ ws, id string }

func mergedOf(resp *agencyv1.ListInstantlyAuditLogsResponse) []merged {
	var out []merged
	for _, l := range resp.GetEntries() {
		out = append(out, merged{l.GetWorkspace(), l.GetEntry().GetId()})
	}
	return out
}

// TestListInstantlyAuditLogs: the selected workspaces' entries are merged
// newest first (ties by workspace), cut at page_size, with the caller's
// scope and the filters applied.
func TestListInstantlyAuditLogs(t *testing.T) {
	clock := limittest.NewClock()
	base := clock.Now()
	s, e := newTestService(t, servicetest.Options{Sim: sim.Config{Now: clock.Now}})
	a1 := e.Register(t, "a1", map[string]string{"client": "a"})
	a2 := e.Register(t, "a2", map[string]string{"client": "a"})
	b := e.Register(t, "b", map[string]string{"client": "b"})
	minute := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	x0 := auditAt(t, e, clock, a1.InstantlyID, minute(0), 1)
	y1 := auditAt(t, e, clock, a2.InstantlyID, minute(1), 2)
	x2 := auditAt(t, e, clock, a1.InstantlyID, minute(2), 2)
	b3 := auditAt(t, e, clock, b.InstantlyID, minute(3), 1)
	y4 := auditAt(t, e, clock, a2.InstantlyID, minute(4), 1)
	x4 := auditAt(t, e, clock, a1.InstantlyID, minute(4), 1) // a tie with y4
	scopedA := servicetest.As(auth.RoleViewer, "client=a")

	cases := []struct {
		name string
		ctx  context.Context
		req  *agencyv1.ListInstantlyAuditLogsRequest
		want []merged
	}{
		{"all", servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{},
			[]merged{{a1.Name, x4}, {a2.Name, y4}, {b.Name, b3}, {a1.Name, x2}, {a2.Name, y1}, {a1.Name, x0}}},
		{"filter", servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{Filter: "client=a"},
			[]merged{{a1.Name, x4}, {a2.Name, y4}, {a1.Name, x2}, {a2.Name, y1}, {a1.Name, x0}}},
		{"scope", scopedA, &agencyv1.ListInstantlyAuditLogsRequest{},
			[]merged{{a1.Name, x4}, {a2.Name, y4}, {a1.Name, x2}, {a2.Name, y1}, {a1.Name, x0}}},
		{"scope and filter", scopedA, &agencyv1.ListInstantlyAuditLogsRequest{Filter: "client=b"}, nil},
		{"page size", servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{PageSize: 3},
			[]merged{{a1.Name, x4}, {a2.Name, y4}, {b.Name, b3}}},
		{"activity type", servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{ActivityType: 2}, []merged{{a1.Name, x2}, {a2.Name, y1}}},
		{"window", servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{StartTime: timestamppb.New(minute(1)), EndTime: timestamppb.New(minute(3))},
			[]merged{{b.Name, b3}, {a1.Name, x2}, {a2.Name, y1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListInstantlyAuditLogs(tc.ctx, tc.req)
			if err != nil || len(resp.GetErrors()) != 0 {
				t.Fatalf("%v %v", resp.GetErrors(), err)
			}
			if got := mergedOf(resp); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	_, err := s.ListInstantlyAuditLogs(servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{Filter: "client in (a"})
	servicetest.WantErr(t, err, codes.InvalidArgument, "filter", "")
}

// TestListInstantlyAuditLogsErrors: a workspace that cannot be read is an
// error entry with its mapped status and never fails the call; the others
// are still read.
func TestListInstantlyAuditLogsErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  float64
		revoke bool
		code   codes.Code
		reason string
		failed []string
	}{
		{"revoked key", 0, true, codes.FailedPrecondition, "CREDENTIAL_INVALID", []string{"workspaces/bad"}},
		{"Instantly down", 1, false, codes.Unavailable, "UPSTREAM_UNAVAILABLE", []string{"workspaces/bad", "workspaces/good", "workspaces/zz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e := newTestService(t, servicetest.Options{Sim: sim.Config{FaultRate: tc.fault}})
			// One entry in each workspace.
			for _, id := range []string{"good", "bad", "zz"} {
				w := e.Register(t, id, nil)
				if _, err := e.Sim.AddAuditLog(w.InstantlyID, sim.AuditEntry{ActivityType: 1}); err != nil {
					t.Fatal(err)
				}
				if tc.revoke && id == "bad" {
					e.RevokeKeys(t, w.InstantlyID)
				}
			}
			resp, err := s.ListInstantlyAuditLogs(servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			var failed []string
			for _, we := range resp.GetErrors() {
				failed = append(failed, we.GetWorkspace())
				st := status.FromProto(we.GetStatus())
				if st.Code() != tc.code || we.GetCode() != tc.code.String() || we.GetMessage() != st.Message() || reasonOf(st) != tc.reason {
					t.Fatalf("%s: %v (status %v)", we.GetWorkspace(), we, st)
				}
			}
			if !slices.Equal(failed, tc.failed) {
				t.Fatalf("failed %v, want %v (sorted)", failed, tc.failed)
			}
			for _, l := range resp.GetEntries() {
				if slices.Contains(failed, l.GetWorkspace()) {
					t.Fatalf("an entry of %s, which failed", l.GetWorkspace())
				}
			}
			if wantEntries := 3 - len(tc.failed); len(resp.GetEntries()) != wantEntries {
				t.Fatalf("%d entries, want %d", len(resp.GetEntries()), wantEntries)
			}
		})
	}
}

// reasonOf reads the ErrorInfo reason back from a google.rpc.Status, as
// a client of the response does.
func reasonOf(st *status.Status) string {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason()
		}
	}
	return ""
}

// TestListInstantlyAuditLogsTooMany: a filter selecting more than
// MaxWorkspaces is refused on filter, never cut silently.
func TestListInstantlyAuditLogsTooMany(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	for i := range MaxWorkspaces + 1 {
		if err := e.Store.Workspaces().Create(context.Background(), &store.Workspace{Name: fmt.Sprintf("workspaces/w%d", i),
			Labels: map[string]string{"bulk": "yes"}, InstantlyWorkspaceID: fmt.Sprintf("iid-%d", i), State: store.StateActive}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.ListInstantlyAuditLogs(servicetest.Admin(), &agencyv1.ListInstantlyAuditLogsRequest{Filter: "bulk=yes"})
	st := servicetest.WantErr(t, err, codes.InvalidArgument, "filter", "")
	if !strings.Contains(st.Message(), fmt.Sprint(MaxWorkspaces)) {
		t.Fatalf("message %q does not say the limit", st.Message())
	}
}

// TestWorkspaceError: workspaces the deadline reached first are
// DEADLINE_EXCEEDED; a failed one keeps its own status.
func TestWorkspaceError(t *testing.T) {
	for _, tc := range []struct {
		outcome fanout.Outcome
		err     error
		code    codes.Code
		msg     string
	}{
		{fanout.NotAttempted, fanout.ErrNotAttempted, codes.DeadlineExceeded, "not attempted"},
		{fanout.TimedOut, errors.New("cut"), codes.DeadlineExceeded, "cut by the deadline"},
		{fanout.Failed, nil, codes.DeadlineExceeded, "cut by the deadline"},
		{fanout.Failed, apierr.NotFound("workspace", "workspaces/w"), codes.NotFound, "workspaces/w"},
	} {
		we := workspaceError(fanout.Result[[]*agencyv1.WorkspaceAuditLog]{Workspace: "workspaces/w", Outcome: tc.outcome, Err: tc.err})
		st := status.FromProto(we.GetStatus())
		if we.GetWorkspace() != "workspaces/w" || st.Code() != tc.code || we.GetCode() != tc.code.String() || !strings.Contains(we.GetMessage(), tc.msg) {
			t.Fatalf("%v/%v: %v", tc.outcome, tc.err, we)
		}
	}
}
