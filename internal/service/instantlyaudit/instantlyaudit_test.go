package instantlyaudit

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/ratelimit/limittest"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// base is where a fresh fake clock stands.
var base = limittest.NewClock().Now()

// seeded registers workspaces/w and writes n audit entries into it, one a
// minute from base, alternating two activity types; it returns their ids,
// newest first (the order Instantly lists them).
func seeded(t *testing.T, o servicetest.Options, n int) (*Service, *servicetest.Env, servicetest.Workspace, []string) {
	t.Helper()
	clock := limittest.NewClock()
	o.Sim.Now = clock.Now
	e := servicetest.New(t, o)
	w := e.Register(t, "w", map[string]string{"client": "a"})
	ids := make([]string, n)
	for i := range n {
		if i > 0 {
			clock.Advance(time.Minute)
		}
		user := "user-" + string(rune('a'+i))
		entry, err := e.Sim.AddAuditLog(w.InstantlyID, sim.AuditEntry{ActivityType: 1 + i%2, UserName: &user})
		if err != nil {
			t.Fatal(err)
		}
		ids[n-1-i] = entry.ID
	}
	return New(e.Resolver, e.Client), e, w, ids
}

func idsOf(logs []*agencyv1.AuditLog) []string {
	out := make([]string, len(logs))
	for i, l := range logs {
		out[i] = l.GetId()
	}
	return out
}

// TestListAuditLogsPages: pages of page_size walk Instantly's log newest
// first, each entry once; a short page ends the walk.
func TestListAuditLogsPages(t *testing.T) {
	s, _, w, want := seeded(t, servicetest.Options{}, 5)
	// 5 entries in pages of 2: 3 pages, the last one short and final.
	got := servicetest.Walk(t, 3, func(tok string) ([]string, string, error) {
		resp, err := s.ListAuditLogs(servicetest.Admin(), &agencyv1.ListAuditLogsRequest{Parent: w.Name, PageSize: 2, PageToken: tok})
		return idsOf(resp.GetAuditLogs()), resp.GetNextPageToken(), err
	})
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}
}

// TestListAuditLogsFilters: activity type, search and the time window
// reach Instantly; the time window is [start_time, end_time].
func TestListAuditLogsFilters(t *testing.T) {
	s, _, w, all := seeded(t, servicetest.Options{}, 5) // all[4] is the oldest, at base
	cases := []struct {
		name string
		req  *agencyv1.ListAuditLogsRequest
		want []string
	}{
		{"activity type", &agencyv1.ListAuditLogsRequest{ActivityType: 2}, []string{all[1], all[3]}},
		{"search", &agencyv1.ListAuditLogsRequest{Search: "user-c"}, []string{all[2]}},
		{"window", &agencyv1.ListAuditLogsRequest{StartTime: timestamppb.New(base.Add(time.Minute)), EndTime: timestamppb.New(base.Add(3 * time.Minute))},
			[]string{all[1], all[2], all[3]}},
		{"since", &agencyv1.ListAuditLogsRequest{StartTime: timestamppb.New(base.Add(4 * time.Minute))}, []string{all[0]}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Parent = w.Name
			resp, err := s.ListAuditLogs(servicetest.Admin(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := idsOf(resp.GetAuditLogs()); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestListAuditLogsRefused: bad input names its field, a page token only
// serves the request it was issued for, out of scope is NOT_FOUND before
// Instantly is asked, and Instantly's refusals keep their meaning.
func TestListAuditLogsRefused(t *testing.T) {
	s, e, w, _ := seeded(t, servicetest.Options{}, 3)
	other := e.Register(t, "other", map[string]string{"client": "b"})
	first, err := s.ListAuditLogs(servicetest.Admin(), &agencyv1.ListAuditLogsRequest{Parent: w.Name, PageSize: 1})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("%v %v", first, err)
	}
	tok := first.GetNextPageToken()
	at := timestamppb.New(base)
	cases := []struct {
		name  string
		req   *agencyv1.ListAuditLogsRequest
		code  codes.Code
		field string
	}{
		{"end before start", &agencyv1.ListAuditLogsRequest{Parent: w.Name, StartTime: timestamppb.New(base.Add(time.Second)), EndTime: at}, codes.InvalidArgument, "end_time"},
		{"empty window", &agencyv1.ListAuditLogsRequest{Parent: w.Name, StartTime: at, EndTime: at}, codes.InvalidArgument, "end_time"},
		{"token for another search", &agencyv1.ListAuditLogsRequest{Parent: w.Name, PageSize: 1, PageToken: tok, Search: "x"}, codes.InvalidArgument, "page_token"},
		{"token for another activity type", &agencyv1.ListAuditLogsRequest{Parent: w.Name, PageSize: 1, PageToken: tok, ActivityType: 1}, codes.InvalidArgument, "page_token"},
		{"token for another window", &agencyv1.ListAuditLogsRequest{Parent: w.Name, PageSize: 1, PageToken: tok, EndTime: at}, codes.InvalidArgument, "page_token"},
		{"token for another workspace", &agencyv1.ListAuditLogsRequest{Parent: other.Name, PageSize: 1, PageToken: tok}, codes.InvalidArgument, "page_token"},
		{"missing workspace", &agencyv1.ListAuditLogsRequest{Parent: "workspaces/nope"}, codes.NotFound, ""},
	}
	for _, tc := range cases {
		_, err := s.ListAuditLogs(servicetest.Admin(), tc.req)
		servicetest.WantErr(t, err, tc.code, tc.field, "")
	}

	// Out of scope: NOT_FOUND naming it, and Instantly is never asked.
	before := e.Requests(other.InstantlyID)
	_, err = s.ListAuditLogs(servicetest.As(auth.RoleViewer, "client=a"), &agencyv1.ListAuditLogsRequest{Parent: other.Name})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	if e.Requests(other.InstantlyID) != before {
		t.Fatal("an out-of-scope read reached Instantly")
	}

	e.RevokeKeys(t, w.InstantlyID)
	_, err = s.ListAuditLogs(servicetest.Admin(), &agencyv1.ListAuditLogsRequest{Parent: w.Name})
	servicetest.WantErr(t, err, codes.FailedPrecondition, "", "CREDENTIAL_INVALID")
}

// TestListAuditLogsUpstreamDown: Instantly failing is UNAVAILABLE.
func TestListAuditLogsUpstreamDown(t *testing.T) {
	s, _, w, _ := seeded(t, servicetest.Options{Sim: sim.Config{FaultRate: 1}}, 1)
	_, err := s.ListAuditLogs(servicetest.Admin(), &agencyv1.ListAuditLogsRequest{Parent: w.Name})
	servicetest.WantErr(t, err, codes.Unavailable, "", "UPSTREAM_UNAVAILABLE")
}

// TestToProto: every field of an entry is carried; absent optional ones
// are zero, and an unparsable timestamp is left unset, not an error.
func TestToProto(t *testing.T) {
	str := func(s string) *string { return &s }
	n := 7.0
	full := &instantly.AuditLog{ID: "id1", Timestamp: base.Add(250 * time.Millisecond).Format("2006-01-02T15:04:05.000Z"), ActivityType: instantly.ActivityUserLogin,
		FromAPI: true, IPAddress: "10.0.0.1", UserID: str("u"), UserName: str("Ann"), APIKeyID: str("k"), UserAgent: str("ua"),
		CampaignID: str("c"), AffectedCount: &n, AuditMetadata: map[string]any{"lead": "x@y.io"}}
	got := ToProto(full)
	if got.GetId() != "id1" || !got.GetTime().AsTime().Equal(base.Add(250*time.Millisecond)) || got.GetActivityType() != 1 ||
		got.GetActivity() != instantly.ActivityUserLogin.String() || !got.GetFromApi() || got.GetIpAddress() != "10.0.0.1" ||
		got.GetUserId() != "u" || got.GetUserName() != "Ann" || got.GetApiKeyId() != "k" || got.GetUserAgent() != "ua" ||
		got.GetCampaignId() != "c" || got.GetAffectedCount() != 7 || got.GetMetadata().GetFields()["lead"].GetStringValue() != "x@y.io" {
		t.Fatalf("full entry: %v", got)
	}
	bare := ToProto(&instantly.AuditLog{ID: "id2", Timestamp: "yesterday"})
	if bare.GetTime() != nil || bare.GetUserName() != "" || bare.GetAffectedCount() != 0 || bare.GetMetadata() != nil {
		t.Fatalf("bare entry: %v", bare)
	}
}
