package desiredstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"buf.build/go/protovalidate"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
)

// pagedFile tags every workspace with a client label: a workspace already
// tagged "paged" has nothing to change, so changed_only has something to
// leave out.
const pagedFile = `version: 1
tags:
  - selector: "client"
    labels: ["paged"]
`

// pagedWorld is the world with four more workspaces of client a (a10 and
// a11 sort between a1 and a2, so name order is byte order) and one more
// of client b; a2 and a10 already carry the tag pagedFile asks for.
func pagedWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, Options{ReconcileInterval: time.Minute})
	for id, client := range map[string]string{"a4": "a", "a5": "a", "a10": "a", "a11": "a", "b2": "b"} {
		w.ws[id] = w.e.Register(t, id, map[string]string{"client": client})
	}
	w.tag(t, "a2", "paged")
	w.tag(t, "a10", "paged")
	return w
}

// planPage is one page of ListPlanWorkspaces as Walk wants it.
func (w *world) planPage(ctx context.Context, req *agencyv1.ListPlanWorkspacesRequest, onPage func(*agencyv1.ListPlanWorkspacesResponse)) func(string) ([]*agencyv1.WorkspacePlan, string, error) {
	return func(token string) ([]*agencyv1.WorkspacePlan, string, error) {
		r := proto.Clone(req).(*agencyv1.ListPlanWorkspacesRequest)
		r.PageToken = token
		resp, err := w.svc.ListPlanWorkspaces(ctx, r)
		if err == nil && onPage != nil {
			onPage(resp)
		}
		return resp.GetWorkspaces(), resp.GetNextPageToken(), err
	}
}

// workspaceNames lists the workspaces of plan pages, in order.
func workspaceNames(wps []*agencyv1.WorkspacePlan) []string {
	var out []string
	for _, wp := range wps {
		out = append(out, wp.GetWorkspace())
	}
	return out
}

// prefixed is ids as workspace names.
func prefixed(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "workspaces/" + id
	}
	return out
}

// firstPlanToken is the next_page_token of req's first page, which must
// have one.
func (w *world) firstPlanToken(t *testing.T, ctx context.Context, req *agencyv1.ListPlanWorkspacesRequest) string {
	t.Helper()
	resp, err := w.svc.ListPlanWorkspaces(ctx, req)
	if err != nil || resp.GetNextPageToken() == "" {
		t.Fatalf("first page of %v: %v (%v), want a next page", req, resp, err)
	}
	return resp.GetNextPageToken()
}

// tampered is token with one character changed (still base64url, so it
// is the signature that refuses it).
func tampered(token string) string {
	b := []byte(token)
	i := len(b) / 2
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// TestListPlanWorkspacesPages: walking a plan's workspaces with any page
// size returns each exactly once, in name order, as the full plan holds
// them; every page but the last is full and the last has no
// next_page_token; total_size counts every match on every page;
// changed_only leaves out the workspaces with nothing to do. The pages are
// the plan's, whoever reads them: an admin of client a only ever sees
// client a's workspaces (client b's are not in the plan), an unscoped
// admin the same pages, an admin of client b none (NOT_FOUND, even with a
// valid token); an unscoped admin's plan, which holds client b's
// workspaces, is NOT_FOUND to the admin of client a, token or not.
func TestListPlanWorkspacesPages(t *testing.T) {
	w := pagedWorld(t)
	p := w.plan(t, planner(), pagedFile)
	all := prefixed("a1", "a10", "a11", "a2", "a3", "a4", "a5")
	if got := workspaceNames(p.GetWorkspaces()); !slices.Equal(got, all) {
		t.Fatalf("the plan's workspaces %v, want %v", got, all)
	}
	changed := prefixed("a1", "a11", "a3", "a4", "a5")
	root := who("root", auth.RoleAdmin, "")

	for _, caller := range []struct {
		what string
		ctx  context.Context
	}{{"creator", planner()}, {"unscoped admin", root}} {
		for _, changedOnly := range []bool{false, true} {
			want := all
			if changedOnly {
				want = changed
			}
			for _, size := range []int{1, 2, 3, len(want) - 1, len(want), len(want) + 1} {
				t.Run(fmt.Sprintf("%s/changed_only=%v/size=%d", caller.what, changedOnly, size), func(t *testing.T) {
					var sizes []int
					req := &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: int32(size), ChangedOnly: changedOnly}
					got := servicetest.Walk(t, len(want)+1, w.planPage(caller.ctx, req, func(r *agencyv1.ListPlanWorkspacesResponse) {
						sizes = append(sizes, len(r.GetWorkspaces()))
						if r.GetTotalSize() != int32(len(want)) {
							t.Errorf("total_size %d, want %d", r.GetTotalSize(), len(want))
						}
					}))
					if names := workspaceNames(got); !slices.Equal(names, want) {
						t.Fatalf("walked %v, want %v", names, want)
					}
					for i, wp := range got {
						if !proto.Equal(wp, wsPlan(p, wp.GetWorkspace()[len("workspaces/"):])) {
							t.Errorf("item %d: %v differs from the plan's", i, wp)
						}
					}
					// Full pages but the last: a short page must end the walk.
					for i, n := range sizes {
						if last := i == len(sizes)-1; (!last && n != size) || n == 0 || n > size {
							t.Fatalf("page sizes %v for page_size %d", sizes, size)
						}
					}
					if wantPages := (len(want) + size - 1) / size; len(sizes) != wantPages {
						t.Fatalf("%d pages, want %d", len(sizes), wantPages)
					}
				})
			}
		}
	}

	t.Run("out of scope", func(t *testing.T) {
		req := &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 2}
		token := w.firstPlanToken(t, planner(), req)
		other := who("other", auth.RoleAdmin, "client=b")
		for _, tok := range []string{"", token} {
			_, err := w.svc.ListPlanWorkspaces(other, &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 2, PageToken: tok})
			servicetest.WantCode(t, err, codes.NotFound)
		}

		// Root's plan holds b1 and b2; root pages through them, the admin
		// of client a reaches none of its pages.
		rp := w.plan(t, root, pagedFile)
		rootAll := append(slices.Clone(all), prefixed("b1", "b2")...)
		rreq := &agencyv1.ListPlanWorkspacesRequest{Parent: rp.GetName(), PageSize: 2}
		if got := workspaceNames(servicetest.Walk(t, 10, w.planPage(root, rreq, nil))); !slices.Equal(got, rootAll) {
			t.Fatalf("root walked %v, want %v", got, rootAll)
		}
		rtoken := w.firstPlanToken(t, root, rreq)
		for _, tok := range []string{"", rtoken} {
			_, err := w.svc.ListPlanWorkspaces(planner(), &agencyv1.ListPlanWorkspacesRequest{Parent: rp.GetName(), PageSize: 2, PageToken: tok})
			servicetest.WantCode(t, err, codes.NotFound)
		}
	})
}

// storedPlan stores a plan of the named workspaces (sorted, as CreatePlan
// stores them) made by the unscoped admin "root", without reading
// anything: the page size tests need more workspaces than are worth
// registering.
func (w *world) storedPlan(t *testing.T, names []string) string {
	t.Helper()
	id := ops.NewID()
	plan := &agencyv1.Plan{Name: planName(id)}
	for _, n := range names {
		plan.Workspaces = append(plan.Workspaces, &agencyv1.WorkspacePlan{Workspace: n, Fingerprint: "sha256:" + n})
	}
	data, err := proto.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	rec := &ds.PlanRecord{ID: id, Creator: "tokens/root", CreatorRole: auth.RoleAdmin, CreateTime: w.clock.Now(),
		Source: []byte(pagedFile), Plan: data}
	if err := w.svc.store.SavePlan(context.Background(), rec, ttl); err != nil {
		t.Fatal(err)
	}
	return planName(id)
}

// pageSizes walks pages of list and returns each page's length; items
// are checked against want.
func pageSizes[T any](t *testing.T, want []string, key func(T) string, list func(string) ([]T, string, error)) []int {
	t.Helper()
	var sizes []int
	got := servicetest.Walk(t, len(want)+1, func(token string) ([]T, string, error) {
		items, next, err := list(token)
		sizes = append(sizes, len(items))
		return items, next, err
	})
	keys := make([]string, len(got))
	for i, it := range got {
		keys[i] = key(it)
	}
	if !slices.Equal(keys, want) {
		t.Fatalf("walked %d items, want %d in order (first differing at %d)", len(keys), len(want), firstDiff(keys, want))
	}
	return sizes
}

// firstDiff is the first index where a and b differ, to keep a failed
// walk of a thousand items readable.
func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestListPlanWorkspacesPageSize: page_size 0 pages by the documented 100,
// 1000 (the maximum) by 1000; the request's rules refuse a negative
// page_size and one above 1000 as INVALID_ARGUMENT on page_size (the
// server's validation interceptor applies them before the handler runs).
func TestListPlanWorkspacesPageSize(t *testing.T) {
	w := buildWorld(t, Options{})
	var names []string
	for i := range 1001 {
		names = append(names, fmt.Sprintf("workspaces/w%04d", i))
	}
	parent := w.storedPlan(t, names)
	root := who("root", auth.RoleAdmin, "")
	for _, c := range []struct {
		size int32
		want []int
	}{
		{0, []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 1}},
		{1000, []int{1000, 1}},
	} {
		req := &agencyv1.ListPlanWorkspacesRequest{Parent: parent, PageSize: c.size}
		sizes := pageSizes(t, names, (*agencyv1.WorkspacePlan).GetWorkspace, w.planPage(root, req, nil))
		if !slices.Equal(sizes, c.want) {
			t.Errorf("page_size %d: pages of %v, want %v", c.size, sizes, c.want)
		}
	}
	wantPageSizeRule(t, func(n int32) proto.Message {
		return &agencyv1.ListPlanWorkspacesRequest{Parent: parent, PageSize: n}
	})
	for _, n := range []int32{-1, 1001} { // the handler refuses them too
		_, err := w.svc.ListPlanWorkspaces(root, &agencyv1.ListPlanWorkspacesRequest{Parent: parent, PageSize: n})
		servicetest.WantField(t, err, "page_size")
	}
}

// wantPageSizeRule checks the request's buf.validate rules as the server's
// interceptor applies them: 0 and 1000 pass, -1 and 1001 are refused on
// page_size (the field the interceptor's violation names).
func wantPageSizeRule(t *testing.T, req func(int32) proto.Message) {
	t.Helper()
	v, err := protovalidate.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int32{0, 1, 1000} {
		if err := v.Validate(req(n)); err != nil {
			t.Errorf("page_size %d refused: %v", n, err)
		}
	}
	for _, n := range []int32{-1, 1001, -1 << 31, 1<<31 - 1} {
		err := v.Validate(req(n))
		var verr *protovalidate.ValidationError
		if !errors.As(err, &verr) {
			t.Errorf("page_size %d: %v, want a validation error", n, err)
			continue
		}
		var fields []string
		for _, vi := range verr.Violations {
			fields = append(fields, protovalidate.FieldPathString(vi.Proto.GetField()))
		}
		if !slices.Equal(fields, []string{"page_size"}) {
			t.Errorf("page_size %d: violations on %v, want page_size", n, fields)
		}
	}
}

// TestListPlanWorkspacesPageTokenRefused: a page token only continues the
// listing it came from: with changed_only flipped, on another plan (even
// of the same file by the same caller), from GetDrift, altered by one
// character or forged from garbage it is INVALID_ARGUMENT on page_token;
// the same token again gives the same page.
func TestListPlanWorkspacesPageTokenRefused(t *testing.T) {
	w := pagedWorld(t)
	p := w.plan(t, planner(), pagedFile)
	p2 := w.plan(t, planner(), pagedFile)
	req := &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 2}
	token := w.firstPlanToken(t, planner(), req)
	changedToken := w.firstPlanToken(t, planner(), &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 2, ChangedOnly: true})

	if err := w.svc.store.SaveDrift(context.Background(), driftReport(p.GetName(), w.clock.Now(), map[string]int{"a1": 3})); err != nil {
		t.Fatal(err)
	}
	d, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1})
	if err != nil || d.GetNextPageToken() == "" {
		t.Fatalf("drift: %v (%v)", d, err)
	}

	for _, c := range []struct {
		what        string
		parent      string
		changedOnly bool
		token       string
	}{
		{"changed_only flipped", p.GetName(), true, token},
		{"changed_only unflipped", p.GetName(), false, changedToken},
		{"another plan", p2.GetName(), false, token},
		{"from GetDrift", p.GetName(), false, d.GetNextPageToken()},
		{"tampered", p.GetName(), false, tampered(token)},
		{"garbage", p.GetName(), false, "not-a-token"},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := w.svc.ListPlanWorkspaces(planner(), &agencyv1.ListPlanWorkspacesRequest{Parent: c.parent, PageSize: 2, ChangedOnly: c.changedOnly, PageToken: c.token})
			servicetest.WantField(t, err, "page_token")
		})
	}

	// A token is a position, not a cursor that moves: reused, the same page.
	req.PageToken = token
	first, err1 := w.svc.ListPlanWorkspaces(planner(), req)
	again, err2 := w.svc.ListPlanWorkspaces(planner(), req)
	if err1 != nil || err2 != nil || !proto.Equal(first, again) || !slices.Equal(workspaceNames(first.GetWorkspaces()), prefixed("a11", "a2")) {
		t.Fatalf("the second page twice: %v (%v), %v (%v)", first, err1, again, err2)
	}
}

// driftKinds cycles the items of driftReport through every kind, so the
// summary has each to count.
var driftKinds = []ds.ChangeKind{ds.Invite, ds.Role, ds.Remove, ds.Tag}

// driftReport is a report of plan with n[id] items on workspace id, by
// workspace (a1, a2, a3, b1) then change, as Reconcile writes it, each
// told apart by its email, and one read error on each of a2 and b1.
func driftReport(plan string, at time.Time, n map[string]int) *ds.DriftReport {
	r := &ds.DriftReport{Plan: plan, ApplyTime: at.Add(-time.Hour), CheckTime: at}
	for _, id := range []string{"a1", "a2", "a3", "b1"} {
		for i := range n[id] {
			r.Items = append(r.Items, ds.DriftItem{Workspace: "workspaces/" + id,
				Change:    ds.Change{Kind: driftKinds[i%len(driftKinds)], Email: fmt.Sprintf("%s-%04d@drift.test", id, i), Label: fmt.Sprint(i)},
				FirstSeen: at.Add(-time.Duration(i) * time.Second)})
		}
	}
	for _, id := range []string{"a2", "b1"} {
		r.Errors = append(r.Errors, ds.DriftError{Workspace: "workspaces/" + id, Code: int32(codes.Unavailable), Message: id + " is down"})
	}
	return r
}

// driftKey tells a page's items apart (and shows their workspace).
func driftKey(it *agencyv1.DriftItem) string {
	return it.GetWorkspace() + " " + it.GetChange().GetEmail() + " " + it.GetFirstSeenTime().AsTime().UTC().Format(time.RFC3339)
}

// wantDrift is what a caller seeing the ids should walk of r: its items on
// those workspaces, in the report's order, and the summary of them all.
func wantDrift(r *ds.DriftReport, ids ...string) ([]string, *agencyv1.DriftSummary) {
	in := map[string]bool{}
	for _, id := range ids {
		in["workspaces/"+id] = true
	}
	var keys []string
	s := &agencyv1.DriftSummary{}
	for _, it := range r.Items {
		if !in[it.Workspace] {
			continue
		}
		keys = append(keys, it.Workspace+" "+it.Change.Email+" "+it.FirstSeen.UTC().Format(time.RFC3339))
		switch it.Change.Kind {
		case ds.Invite:
			s.Invites++
		case ds.Role:
			s.RoleChanges++
		case ds.Remove:
			s.Removals++
		case ds.Tag:
			s.TagCreations++
		}
	}
	return keys, s
}

// driftPages walks GetDrift with page_size size as ctx, checking on every
// page what does not depend on it (the plan, the check time, the summary
// of every item in scope) and that read errors, in scope only, come on the
// first page alone; it returns the page lengths.
func (w *world) driftPages(t *testing.T, ctx context.Context, r *ds.DriftReport, size int32, ids ...string) []int {
	t.Helper()
	want, summary := wantDrift(r, ids...)
	var wantErrs []string
	for _, e := range r.Errors {
		if slices.Contains(ids, e.Workspace[len("workspaces/"):]) {
			wantErrs = append(wantErrs, e.Workspace)
		}
	}
	page := 0
	return pageSizes(t, want, driftKey, func(token string) ([]*agencyv1.DriftItem, string, error) {
		d, err := w.svc.GetDrift(ctx, &agencyv1.GetDriftRequest{PageSize: size, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		page++
		if d.GetPlan() != r.Plan || !d.GetCheckTime().AsTime().Equal(r.CheckTime) || !proto.Equal(d.GetSummary(), summary) {
			t.Fatalf("page %d: plan %q, check time %v, summary %v; want %q, %v, %v", page, d.GetPlan(), d.GetCheckTime().AsTime(), d.GetSummary(), r.Plan, r.CheckTime, summary)
		}
		var errs []string
		for _, e := range d.GetErrors() {
			errs = append(errs, e.GetWorkspace())
		}
		if page > 1 {
			if len(errs) != 0 {
				t.Fatalf("page %d repeats the read errors %v", page, errs)
			}
		} else if !slices.Equal(errs, wantErrs) {
			t.Fatalf("first page's read errors %v, want %v", errs, wantErrs)
		}
		return d.GetItems(), d.GetNextPageToken(), nil
	})
}

// TestGetDriftPages: walking the drift with any page size returns every
// item in the caller's scope exactly once, in the report's order (by
// workspace then change), every page but the last full and the last
// without a next_page_token; every page carries the summary of all of
// them, the first alone the read errors. Scope holds on every page: the
// admin of client a never sees b1's items or error, the admin of client b
// sees nothing else, an unscoped admin sees all.
func TestGetDriftPages(t *testing.T) {
	w := buildWorld(t, Options{ReconcileInterval: time.Minute})
	r := driftReport("plans/x", w.clock.Now(), map[string]int{"a1": 3, "a2": 2, "a3": 1, "b1": 2})
	if err := w.svc.store.SaveDrift(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		ctx  context.Context
		ids  []string
	}{
		{"client a", planner(), []string{"a1", "a2", "a3"}},
		{"client b", who("other", auth.RoleAdmin, "client=b"), []string{"b1"}},
		{"a manager of client a", who("mgr", auth.RoleManager, "client=a"), []string{"a1", "a2", "a3"}},
		{"unscoped", who("root", auth.RoleAdmin, ""), []string{"a1", "a2", "a3", "b1"}},
	} {
		want, _ := wantDrift(r, c.ids...)
		for _, size := range []int{1, 2, 4, len(want), len(want) + 1} {
			t.Run(fmt.Sprintf("%s/size=%d", c.what, size), func(t *testing.T) {
				sizes := w.driftPages(t, c.ctx, r, int32(size), c.ids...)
				for i, n := range sizes {
					if last := i == len(sizes)-1; (!last && n != size) || n == 0 || n > size {
						t.Fatalf("page sizes %v for page_size %d", sizes, size)
					}
				}
			})
		}
	}
}

// TestGetDriftPageSize: page_size 0 pages by the documented 500, 1000 (the
// maximum) by 1000; the request's rules refuse a negative page_size and
// one above 1000 as INVALID_ARGUMENT on page_size.
func TestGetDriftPageSize(t *testing.T) {
	w := buildWorld(t, Options{ReconcileInterval: time.Minute})
	r := driftReport("plans/x", w.clock.Now(), map[string]int{"a1": 400, "a2": 350, "a3": 1, "b1": 300})
	if err := w.svc.store.SaveDrift(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	root := who("root", auth.RoleAdmin, "")
	all := []string{"a1", "a2", "a3", "b1"}
	for _, c := range []struct {
		what string
		ctx  context.Context
		ids  []string
		size int32
		want []int
	}{
		{"default, unscoped", root, all, 0, []int{500, 500, 51}},
		{"default, client a", planner(), []string{"a1", "a2", "a3"}, 0, []int{500, 251}},
		{"maximum, unscoped", root, all, 1000, []int{1000, 51}},
	} {
		t.Run(c.what, func(t *testing.T) {
			if sizes := w.driftPages(t, c.ctx, r, c.size, c.ids...); !slices.Equal(sizes, c.want) {
				t.Errorf("pages of %v, want %v", sizes, c.want)
			}
		})
	}
	wantPageSizeRule(t, func(n int32) proto.Message { return &agencyv1.GetDriftRequest{PageSize: n} })
	for _, n := range []int32{-1, 1001} { // the handler refuses them too
		_, err := w.svc.GetDrift(root, &agencyv1.GetDriftRequest{PageSize: n})
		servicetest.WantField(t, err, "page_size")
	}
}

// TestGetDriftPageTokenRefused: GetDrift takes only its own tokens: one
// from ListPlanWorkspaces, one altered by one character, garbage, or one
// signed with a position that is not an item's (not a number, before the
// first) is INVALID_ARGUMENT on page_token.
func TestGetDriftPageTokenRefused(t *testing.T) {
	w := pagedWorld(t)
	p := w.plan(t, planner(), pagedFile)
	r := driftReport(p.GetName(), w.clock.Now(), map[string]int{"a1": 3})
	if err := w.svc.store.SaveDrift(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	d, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1})
	if err != nil || d.GetNextPageToken() == "" {
		t.Fatalf("drift: %v (%v)", d, err)
	}
	planToken := w.firstPlanToken(t, planner(), &agencyv1.ListPlanWorkspacesRequest{Parent: p.GetName(), PageSize: 2})
	hash := pagetoken.Hash("drift", r.Plan, strconv.FormatInt(r.CheckTime.UnixNano(), 10))
	for _, c := range []struct{ what, token string }{
		{"from ListPlanWorkspaces", planToken},
		{"tampered", tampered(d.GetNextPageToken())},
		{"garbage", "not-a-token"},
		{"not a position", w.e.Pages.Encode(pagetoken.Token{After: "x", FilterHash: hash})},
		{"before the first item", w.e.Pages.Encode(pagetoken.Token{After: "-2", FilterHash: hash})},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1, PageToken: c.token})
			servicetest.WantField(t, err, "page_token")
		})
	}
	// The signed position -1 is "before the first item": the first page.
	first, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1,
		PageToken: w.e.Pages.Encode(pagetoken.Token{After: "-1", FilterHash: hash})})
	if err != nil || len(first.GetItems()) != 1 || first.GetItems()[0].GetChange().GetEmail() != "a1-0000@drift.test" {
		t.Fatalf("from -1: %v (%v)", first, err)
	}
}

// TestGetDriftPageTokenBoundToReport: a drift page token continues the
// report it was issued for; once a reconcile has replaced that report
// (the same plan checked again, or the drift of another applied plan) it
// is INVALID_ARGUMENT on page_token, as a plan's token is on another plan,
// rather than a position in a list it was never a position in (items
// skipped or repeated without the caller knowing). Without any report, a
// token is refused too.
func TestGetDriftPageTokenBoundToReport(t *testing.T) {
	w := buildWorld(t, Options{ReconcileInterval: time.Minute})
	ctx := context.Background()
	_, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageToken: w.e.Pages.Encode(pagetoken.Token{After: "0", FilterHash: pagetoken.Hash("drift")})})
	servicetest.WantField(t, err, "page_token")
	token := func() string {
		d, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1})
		if err != nil || d.GetNextPageToken() == "" {
			t.Fatalf("drift: %v (%v)", d, err)
		}
		return d.GetNextPageToken()
	}
	for _, next := range []string{"plans/one", "plans/two"} {
		if err := w.svc.store.SaveDrift(ctx, driftReport("plans/one", w.clock.Now(), map[string]int{"a1": 3})); err != nil {
			t.Fatal(err)
		}
		tok := token()
		if _, err := w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1, PageToken: tok}); err != nil {
			t.Fatalf("the token on its own report: %v", err)
		}
		w.clock.Advance(time.Minute)
		if err := w.svc.store.SaveDrift(ctx, driftReport(next, w.clock.Now(), map[string]int{"a2": 3})); err != nil {
			t.Fatal(err)
		}
		_, err = w.svc.GetDrift(planner(), &agencyv1.GetDriftRequest{PageSize: 1, PageToken: tok})
		servicetest.WantField(t, err, "page_token")
	}
}
