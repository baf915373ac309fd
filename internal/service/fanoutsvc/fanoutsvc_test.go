package fanoutsvc

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
)

// fleet is four workspaces of client a (the caller's scope; a1 and a3 are
// gold, a2 and a4 silver) and one of client b outside it.
type fleet struct {
	e   *servicetest.Env
	svc *Service
	ws  map[string]servicetest.Workspace // by id: a1…a4, b1
}

func newFleet(t *testing.T, cfg sim.Config, opts Options) *fleet {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{Sim: cfg})
	f := &fleet{e: e, svc: New(e.Scoped, e.Resolver, e.Client, e.Engine, e.Locker, opts), ws: map[string]servicetest.Workspace{}}
	for id, lbls := range map[string]map[string]string{
		"a1": {"client": "a", "tier": "gold"}, "a2": {"client": "a", "tier": "silver"},
		"a3": {"client": "a", "tier": "gold"}, "a4": {"client": "a", "tier": "silver"},
		"b1": {"client": "b", "tier": "gold"},
	} {
		f.ws[id] = e.Register(t, id, lbls)
	}
	return f
}

// caller is a manager who sees client=a only.
func caller() context.Context { return servicetest.As(auth.RoleManager, "client=a") }

// iid is the Instantly id of workspace id.
func (f *fleet) iid(id string) string { return f.ws[id].InstantlyID }

// names selects workspaces by registry name ("workspaces/" + id).
func names(ids ...string) *agencyv1.WorkspaceSelector {
	sel := &agencyv1.WorkspaceSelector{}
	for _, id := range ids {
		sel.Names = append(sel.Names, "workspaces/"+id)
	}
	return sel
}

var all = &agencyv1.WorkspaceSelector{All: true}

// outcomes renders a response as workspace id → OUTCOME, with "/Code" when
// the result carries a status.
func outcomes(t *testing.T, resp *agencyv1.FanoutResponse, err error) map[string]string {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range resp.GetResults() {
		o := strings.TrimPrefix(r.GetOutcome().String(), "FANOUT_OUTCOME_")
		if r.GetStatus() != nil {
			o += "/" + codes.Code(r.GetStatus().GetCode()).String()
		}
		out[strings.TrimPrefix(r.GetWorkspace(), "workspaces/")] = o
	}
	return out
}

func wantOutcomes(t *testing.T, resp *agencyv1.FanoutResponse, err error, want map[string]string) {
	t.Helper()
	if got := outcomes(t, resp, err); !maps.Equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
}

// tagLabels lists the labels of Instantly workspace id's tags.
func (f *fleet) tagLabels(t *testing.T, id string) []string {
	t.Helper()
	var out []string
	for _, tag := range f.e.State(t, f.iid(id)).CustomTags {
		out = append(out, tag.Label)
	}
	return out
}

// noTags fails t if any workspace of the fleet has a tag: a refused call
// wrote nothing.
func (f *fleet) noTags(t *testing.T) {
	t.Helper()
	for id := range f.ws {
		if got := f.tagLabels(t, id); len(got) != 0 {
			t.Fatalf("%s got tags %v", id, got)
		}
	}
}

// TestSelection: names are looked up through the caller's scope (a name
// outside it fails exactly like a name that does not exist, and is never
// written to); label selectors and all see only the scope; results come
// sorted by workspace.
func TestSelection(t *testing.T) {
	cases := []struct {
		what string
		sel  *agencyv1.WorkspaceSelector
		want map[string]string
	}{
		{"names", names("a2", "b1", "zz", "a1"), map[string]string{"a1": "CREATED", "a2": "CREATED", "b1": "FAILED/NotFound", "zz": "FAILED/NotFound"}},
		{"label selector", &agencyv1.WorkspaceSelector{LabelSelector: "tier=gold"}, map[string]string{"a1": "CREATED", "a3": "CREATED"}},
		{"all", all, map[string]string{"a1": "CREATED", "a2": "CREATED", "a3": "CREATED", "a4": "CREATED"}},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			f := newFleet(t, sim.Config{}, Options{})
			resp, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: c.sel, Label: "Q3"})
			wantOutcomes(t, resp, err, c.want)
			var order []string
			for _, r := range resp.GetResults() {
				order = append(order, r.GetWorkspace())
			}
			if !slices.IsSorted(order) {
				t.Fatalf("results in order %v", order)
			}
			if s := resp.GetSummary(); int(s.GetTotal()) != len(c.want) || s.GetSucceeded()+s.GetFailed() != s.GetTotal() || s.GetDuration() == nil {
				t.Fatalf("summary %v", s)
			}
			if got := f.tagLabels(t, "b1"); len(got) != 0 {
				t.Fatalf("out-of-scope b1 got tags %v", got)
			}
			if c.want["b1"] != "" {
				// Out of scope reads exactly as missing: only the name differs.
				msg := map[string]string{}
				for _, r := range resp.GetResults() {
					msg[r.GetWorkspace()] = r.GetStatus().GetMessage()
				}
				if strings.ReplaceAll(msg["workspaces/b1"], "b1", "zz") != msg["workspaces/zz"] || resultOf(resp, "workspaces/b1").GetPayload() != nil {
					t.Fatalf("b1 %q vs missing %q", msg["workspaces/b1"], msg["workspaces/zz"])
				}
			}
		})
	}
}

// resultOf is the result of workspace name.
func resultOf(resp *agencyv1.FanoutResponse, name string) *agencyv1.WorkspaceResult {
	for _, r := range resp.GetResults() {
		if r.GetWorkspace() == name {
			return r
		}
	}
	return nil
}

// TestSelectionRefused: a bad label selector, or a label selector or all
// selecting more than MaxWorkspaces, fails the call before any workspace
// is touched; explicit names are not bounded by it.
func TestSelectionRefused(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{MaxWorkspaces: 3})
	for _, c := range []struct {
		what  string
		sel   *agencyv1.WorkspaceSelector
		field string
	}{
		{"bad label selector", &agencyv1.WorkspaceSelector{LabelSelector: "tier in (gold"}, "selector.label_selector"},
		{"all over the limit", all, "selector"},
		{"label selector over the limit", &agencyv1.WorkspaceSelector{LabelSelector: "client=a"}, "selector"},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: c.sel, Label: "Q3"})
			servicetest.WantField(t, err, c.field)
			f.noTags(t)
		})
	}
	// Exactly the limit passes; the unscoped admin's all (5) does not.
	resp, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{LabelSelector: "tier=gold"}, Label: "Q3"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "CREATED", "a3": "CREATED"})
	resp, err = f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: names("a1", "a2", "a3", "a4"), Label: "Q3"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "ALREADY_DONE", "a2": "CREATED", "a3": "ALREADY_DONE", "a4": "CREATED"})
	f3 := newFleet(t, sim.Config{}, Options{MaxWorkspaces: 4})
	if _, err := f3.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3"}); err != nil {
		t.Fatalf("4 in scope with a limit of 4: %v", err)
	}
	_, err = f3.svc.EnsureTagEverywhere(servicetest.Admin(), &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3"})
	servicetest.WantField(t, err, "selector")
}

// TestDefaultTimeout: a call without a deadline gets DefaultTimeout (here
// spent before the selection is read: nothing is written); a caller's own
// deadline is kept instead.
func TestDefaultTimeout(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{DefaultTimeout: time.Nanosecond})
	_, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3"})
	servicetest.WantCode(t, err, codes.DeadlineExceeded)
	f.noTags(t)
	ctx, cancel := context.WithTimeout(caller(), time.Minute)
	defer cancel()
	resp, err := f.svc.EnsureTagEverywhere(ctx, &agencyv1.EnsureTagEverywhereRequest{Selector: names("a1"), Label: "Q3"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "CREATED"})
}

// TestDeadlineReportsEveryWorkspace: when the caller's deadline ends the
// call, the workspace in flight is TIMED_OUT (counted failed), those never
// started are NOT_ATTEMPTED, and every one is reported. One at a time
// against a slow Instantly makes the split certain.
func TestDeadlineReportsEveryWorkspace(t *testing.T) {
	e := servicetest.New(t, servicetest.Options{Sim: sim.Config{Latency: time.Minute}})
	for _, id := range []string{"a1", "a2", "a3"} {
		e.Register(t, id, map[string]string{"client": "a"})
	}
	svc := New(e.Scoped, e.Resolver, e.Client, fanout.New(fanout.Options{Concurrency: 1, MinMargin: time.Millisecond}), e.Locker, Options{})
	ctx, cancel := context.WithTimeout(caller(), 300*time.Millisecond)
	defer cancel()
	resp, err := svc.EnsureTagEverywhere(ctx, &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "TIMED_OUT/DeadlineExceeded", "a2": "NOT_ATTEMPTED/DeadlineExceeded", "a3": "NOT_ATTEMPTED/DeadlineExceeded"})
	if s := resp.GetSummary(); s.GetTotal() != 3 || s.GetFailed() != 1 || s.GetNotAttempted() != 2 {
		t.Fatalf("summary %v", s)
	}
}

// TestUpstreamFailuresPerWorkspace: one workspace's revoked key fails that
// workspace alone (FAILED_PRECONDITION, CREDENTIAL_INVALID); an Instantly
// that keeps failing fails each workspace UNAVAILABLE, not the call.
func TestUpstreamFailuresPerWorkspace(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	f.e.RevokeKeys(t, f.iid("a2"))
	// a3's stored key no longer opens (sealed for another workspace).
	a1, err := f.e.Store.Workspaces().Get(context.Background(), "workspaces/a1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.e.Store.Workspaces().Update(context.Background(), "workspaces/a3", func(w *store.Workspace) error {
		w.SealedCredential = a1.SealedCredential
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := f.svc.EnsureTagEverywhere(caller(), &agencyv1.EnsureTagEverywhereRequest{Selector: all, Label: "Q3"})
	wantOutcomes(t, resp, err, map[string]string{"a1": "CREATED", "a2": "FAILED/FailedPrecondition", "a3": "FAILED/FailedPrecondition", "a4": "CREATED"})
	if reason := servicetest.StatusReason(resultOf(resp, "workspaces/a2").GetStatus()); reason != "CREDENTIAL_INVALID" {
		t.Fatalf("reason %q", reason)
	}
	if s := resp.GetSummary(); s.GetSucceeded() != 2 || s.GetFailed() != 2 {
		t.Fatalf("summary %v", s)
	}

	down := newFleet(t, sim.Config{FaultRate: 1}, Options{})
	resp, err = down.svc.ListAccess(caller(), &agencyv1.ListAccessRequest{Selector: names("a1", "a2")})
	wantOutcomes(t, resp, err, map[string]string{"a1": "FAILED/Unavailable", "a2": "FAILED/Unavailable"})
}
