package fanoutsvc

import (
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	opsvc "github.com/agencyplane/agencyplane/internal/service/operations"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// sent is one API request a service sent to Instantly.
type sent struct {
	ws   string // the fleet id whose key sent it
	call string // "POST /api/v2/workspace-members"
	name string // whom the body names: its email or sub_workspace_id
	// nextPage marks a list's page after the first.
	nextPage bool
}

// upstream sits between a service and the fleet's simulator: it notes
// every write the service sends and can hold the requests hold matches
// until Release, so a test acts while an item is provably mid-request
// instead of guessing with sleeps.
type upstream struct {
	f       *fleet
	hold    func(sent) bool
	held    chan sent // each held request, as it arrives
	release chan struct{}
	once    sync.Once

	mu     sync.Mutex
	all    []sent // every request
	writes []sent // the non-GET ones
}

// tapped returns a service of f whose Instantly client goes through an
// upstream tap, on engine (f's when nil).
func (f *fleet) tapped(t *testing.T, engine *fanout.Engine, hold func(sent) bool) (*Service, *upstream) {
	t.Helper()
	u := &upstream{f: f, hold: hold, held: make(chan sent, 64), release: make(chan struct{})}
	hs := httptest.NewServer(u)
	t.Cleanup(hs.Close)
	// Runs before hs.Close: a failed test must not leave writes held.
	t.Cleanup(u.Release)
	client, err := instantly.New(instantly.Options{BaseURL: hs.URL, MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if engine == nil {
		engine = f.e.Engine
	}
	return New(f.e.Scoped, f.e.Resolver, client, engine, f.e.Locker, Options{}), u
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	var fields struct {
		Email string `json:"email"`
		Sub   string `json:"sub_workspace_id"`
	}
	_ = json.Unmarshal(body, &fields)
	rq := sent{call: r.Method + " " + r.URL.Path, name: fields.Email + fields.Sub, nextPage: r.URL.Query().Has("starting_after")}
	key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	for id, ws := range u.f.ws {
		if ws.APIKey == key {
			rq.ws = id
		}
	}
	u.mu.Lock()
	u.all = append(u.all, rq)
	if r.Method != http.MethodGet {
		u.writes = append(u.writes, rq)
	}
	u.mu.Unlock()
	if u.hold != nil && u.hold(rq) {
		u.held <- rq
		select {
		case <-u.release:
		case <-r.Context().Done():
			return
		}
	}
	u.f.e.Sim.ServeHTTP(w, r)
}

// Release lets every held request (and every later one) through.
func (u *upstream) Release() { u.once.Do(func() { close(u.release) }) }

// Writes are the writes sent so far, sorted.
func (u *upstream) Writes() []sent {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := slices.Clone(u.writes)
	slices.SortFunc(out, func(a, b sent) int {
		return strings.Compare(a.ws+a.call+a.name, b.ws+b.call+b.name)
	})
	return out
}

// Calls counts the requests sent so far by "ws METHOD path", leaving out
// a list's later pages: one read of a list counts once, however long.
func (u *upstream) Calls() map[string]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[string]int{}
	for _, r := range u.all {
		if !r.nextPage {
			out[r.ws+" "+r.call]++
		}
	}
	return out
}

// waitHeld waits (at most 10 s) until n requests are held.
func (u *upstream) waitHeld(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-u.held:
		case <-time.After(10 * time.Second):
			t.Fatalf("fewer than %d requests were held; writes %v", n, u.Writes())
		}
	}
}

// linkOf is the Instantly link of admin fleet workspace admin to sub, or
// nil; rejected links are history and left out.
func (f *fleet) linkOf(t *testing.T, admin, sub string) *sim.WorkspaceGroupMember {
	t.Helper()
	for _, l := range f.e.State(t, f.iid(admin)).GroupMembers {
		if l.AdminWorkspaceID == f.iid(admin) && l.SubWorkspaceID == f.iid(sub) && l.Status != sim.GroupRejected {
			return &l
		}
	}
	return nil
}

// TestInviteSubWorkspacesToGroupOperation: the long_running form ends with
// one result per selected workspace. Its worker reads the admin
// workspace's links when the item runs, not when the operation was
// stored: a sub linked before (pending) or in between (accepted) is
// ALREADY_DONE with that link and is written to no further; a rejected
// sub is invited anew; the admin itself fails INVALID_ARGUMENT; a
// workspace out of the caller's scope is NOT_FOUND exactly like one that
// does not exist, and Instantly hears nothing about either. An admin
// workspace out of scope refuses the call: no operation is stored.
func TestInviteSubWorkspacesToGroupOperation(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	svc, up := f.tapped(t, nil, nil)
	m := f.e.NewManager(t)
	svc.EnableOperations(OperationOptions{Manager: m, Raw: f.e.Raw})
	pending, err := f.e.Sim.InviteGroupMember(f.iid("a1"), f.iid("a2"))
	if err != nil {
		t.Fatal(err)
	}
	rejected, err := f.e.Sim.InviteGroupMember(f.iid("a1"), f.iid("a4"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Sim.RejectGroupMember(rejected.ID); err != nil {
		t.Fatal(err)
	}

	resp, err := svc.InviteSubWorkspacesToGroup(caller(), &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: "workspaces/a1",
		Selector: names("a1", "a2", "a3", "a4", "b1", "zz"), LongRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOperation() == nil || len(resp.GetResults()) != 0 {
		t.Fatalf("long-running response %v", resp)
	}
	// Linked after the operation was stored, before it runs.
	accepted, err := f.e.Sim.InviteGroupMember(f.iid("a1"), f.iid("a3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.e.Sim.AcceptGroupMember(accepted.ID); err != nil {
		t.Fatal(err)
	}
	servicetest.Start(t, m)
	st, results := servicetest.OperationResults(t, m, resp.GetOperation())

	want := map[string]string{"a1": "FAILED/InvalidArgument", "a2": "ALREADY_DONE", "a3": "ALREADY_DONE", "a4": "CREATED",
		"b1": "FAILED/NotFound", "zz": "FAILED/NotFound"}
	if got := itemOutcomes(t, results, false); len(results) != len(want) || !maps.Equal(got, want) {
		t.Fatalf("%d items %v, want %v", len(results), got, want)
	}
	if st.Done != 3 || st.Failed != 3 || st.Outcomes["ALREADY_DONE"] != 2 || st.Outcomes["CREATED"] != 1 {
		t.Fatalf("status %+v", st)
	}
	// One write in all: a4's invitation, sent as the admin.
	if got, want := up.Writes(), []sent{{ws: "a1", call: "POST /api/v2/workspace-group-members", name: f.iid("a4")}}; !slices.Equal(got, want) {
		t.Fatalf("writes %v, want %v", got, want)
	}
	for id, s := range f.e.Sim.Stats() {
		if s.DuplicateCreates != 0 {
			t.Fatalf("%s: %d duplicate creates", id, s.DuplicateCreates)
		}
	}
	// A read of the links per sub that gets that far (a2, a3, a4) and
	// a4's invite: the admin itself, b1 and zz cost no request.
	if got, want := up.Calls(), map[string]int{"a1 GET /api/v2/workspace-group-members": 3, "a1 POST /api/v2/workspace-group-members": 1}; !maps.Equal(got, want) {
		t.Fatalf("requests %v, want %v", got, want)
	}
	if n := f.e.Requests(f.iid("b1")); n != 0 {
		t.Fatalf("out-of-scope b1 saw %d requests", n)
	}
	if l := f.linkOf(t, "a1", "b1"); l != nil {
		t.Fatalf("out-of-scope b1 was linked: %+v", l)
	}

	byID := map[string]*agencyv1.WorkspaceResult{}
	for _, r := range results {
		byID[strings.TrimPrefix(r.GetWorkspace(), "workspaces/")] = r
	}
	if gm := byID["a2"].GetGroupMember(); gm.GetId() != pending.ID || gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING {
		t.Fatalf("a2 result %v, want the link %s", byID["a2"], pending.ID)
	}
	if gm := byID["a3"].GetGroupMember(); gm.GetId() != accepted.ID || gm.GetStatus() != agencyv1.GroupMember_STATUS_ACCEPTED {
		t.Fatalf("a3 result %v, want the link %s", byID["a3"], accepted.ID)
	}
	made := f.linkOf(t, "a1", "a4")
	if gm := byID["a4"].GetGroupMember(); made == nil || gm.GetId() != made.ID || gm.GetId() == rejected.ID ||
		gm.GetName() != "workspaces/a1/groupMembers/"+made.ID || gm.GetStatus() != agencyv1.GroupMember_STATUS_PENDING {
		t.Fatalf("a4 result %v, link %+v", byID["a4"], made)
	}
	// Out of scope reads exactly as missing: only the name differs.
	if b1, zz := byID["b1"], byID["zz"]; strings.ReplaceAll(b1.GetStatus().GetMessage(), "b1", "zz") != zz.GetStatus().GetMessage() || b1.GetPayload() != nil {
		t.Fatalf("b1 %v vs missing %v", b1, zz)
	}

	for _, admin := range []string{"workspaces/b1", "workspaces/zz"} {
		_, err = svc.InviteSubWorkspacesToGroup(caller(), &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: admin, Selector: names("a4"), LongRunning: true})
		servicetest.WantCode(t, err, codes.NotFound)
	}
	if recs, err := m.Backend().List(t.Context(), ops.ListQuery{Limit: 10}); err != nil || len(recs) != 1 {
		t.Fatalf("operations stored: %v %v", recs, err)
	}
	if n := len(f.e.State(t, f.iid("b1")).GroupMembers); n != 0 {
		t.Fatalf("b1 has %d links", n)
	}
}

// onboardOutcomes renders an onboarding's results, in item order, as
// "id email" → OUTCOME[/Code]: items are workspace-major, so item i is
// person i mod len(emails). An item naming another person fails t.
func onboardOutcomes(t *testing.T, results []*agencyv1.WorkspaceResult, emails []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, r := range results {
		email := emails[i%len(emails)]
		if r.GetEmail() != "" && r.GetEmail() != email {
			t.Fatalf("item %d is %s's, want %s's: %v", i, r.GetEmail(), email, r)
		}
		o := strings.TrimPrefix(r.GetOutcome().String(), "FANOUT_OUTCOME_")
		if r.GetStatus() != nil {
			o += "/" + codes.Code(r.GetStatus().GetCode()).String()
		}
		out[strings.TrimPrefix(r.GetWorkspace(), "workspaces/")+" "+email] = o
	}
	return out
}

// emailCounts is how often each email is a member of fleet workspace id.
func (f *fleet) emailCounts(t *testing.T, id string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, mb := range f.e.State(t, f.iid(id)).Members {
		n[mb.Email]++
	}
	return n
}

// TestOnboardMembersCancelled: CancelOperation while an onboarding runs
// stops it between workspaces. Replicas take one entry at a time here, and
// a1's invitations are held upstream until the cancel is recorded, so a1
// has provably started and a2, a3 provably have not. a1's items keep their
// real results (a present person ALREADY_DONE, the held invites CREATED,
// though a1's job has seen the cancel by the time they are answered);
// every item of a2 and a3 is NOT_ATTEMPTED with CANCELLED and is never
// sent. Each invitation reaches Instantly at most once: nobody is invited
// twice.
func TestOnboardMembersCancelled(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	svc, up := f.tapped(t, nil, func(w sent) bool {
		return w.ws == "a1" && w.call == "POST /api/v2/workspace-members"
	})
	// One entry at a time: a2's and a3's entries start only after a1's.
	m := ops.NewManager(ops.NewMemory(ops.MemoryOptions{}), f.e.Keyring, ops.Options{MaxEntries: 1})
	svc.EnableOperations(OperationOptions{Manager: m, Raw: f.e.Raw})
	servicetest.Start(t, m)
	defer up.Release() // before the manager's cleanup waits for the entry
	operations := opsvc.New(m, 0, f.e.Pages)
	f.e.AddMember(t, f.iid("a1"), "x@agency.test", "view", true)
	emails := []string{"x@agency.test", "y@agency.test", "z@agency.test"}

	op, err := svc.OnboardMembers(caller(), onboardReq(names("a1", "a2", "a3"), emails...))
	if err != nil {
		t.Fatal(err)
	}
	up.waitHeld(t, 2) // a1's y and z are being invited
	if _, err := operations.CancelOperation(caller(), &longrunningpb.CancelOperationRequest{Name: op.GetName()}); err != nil {
		t.Fatal(err)
	}
	// a1's job knows of the cancel when its invites are answered: their
	// results must still be their own.
	time.Sleep(cancelCheckInterval)
	up.Release()
	st, results := servicetest.OperationResults(t, m, op)

	want := map[string]string{"a1 x@agency.test": "ALREADY_DONE", "a1 y@agency.test": "CREATED", "a1 z@agency.test": "CREATED"}
	for _, id := range []string{"a2", "a3"} {
		for _, e := range emails {
			want[id+" "+e] = "NOT_ATTEMPTED/Canceled"
		}
	}
	if got := onboardOutcomes(t, results, emails); len(results) != len(want) || !maps.Equal(got, want) {
		t.Fatalf("%d items %v, want %v", len(results), got, want)
	}
	if !st.CancelRequested || st.Done != 3 || st.Failed != 6 || st.Outcomes["NOT_ATTEMPTED"] != 6 {
		t.Fatalf("status %+v", st)
	}
	want1 := []sent{
		{ws: "a1", call: "POST /api/v2/workspace-members", name: "y@agency.test"},
		{ws: "a1", call: "POST /api/v2/workspace-members", name: "z@agency.test"},
	}
	if got := up.Writes(); !slices.Equal(got, want1) {
		t.Fatalf("writes %v, want %v", got, want1)
	}
	for id, s := range f.e.Sim.Stats() {
		if s.DuplicateCreates != 0 {
			t.Fatalf("%s: %d duplicate creates", id, s.DuplicateCreates)
		}
	}
	for id, wantN := range map[string]int{"a1": 1, "a2": 0, "a3": 0} {
		n := f.emailCounts(t, id)
		for _, e := range emails {
			if n[e] != wantN {
				t.Fatalf("%s: %s is there %d times, want %d", id, e, n[e], wantN)
			}
		}
	}
	// Ended: a second cancel is refused, and nothing more is written.
	_, err = operations.CancelOperation(caller(), &longrunningpb.CancelOperationRequest{Name: op.GetName()})
	servicetest.WantCode(t, err, codes.FailedPrecondition)
	if got := up.Writes(); len(got) != len(want1) {
		t.Fatalf("writes after the end %v", got)
	}
}

// cancelCheckInterval outlasts the interval at which a job rereads
// whether its operation was cancelled (Job.Cancelled: 250 ms), so a check
// after waiting it certainly sees a cancel made before the wait. It is a
// lower bound the code documents, not a guess at scheduling.
const cancelCheckInterval = 300 * time.Millisecond

// TestOnboardMembersCancelledDuringRead: a cancel that arrives after an
// entry started but while it still reads the workspace's members stops
// every one of its people before their invite: each item is NOT_ATTEMPTED
// with CANCELLED and names its person, and nothing is written. The read is
// held upstream until the cancel is recorded and the job's cancel check
// is due again.
func TestOnboardMembersCancelledDuringRead(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	svc, up := f.tapped(t, nil, func(r sent) bool {
		return r.ws == "a1" && r.call == "GET /api/v2/workspace-members"
	})
	m := f.e.NewManager(t)
	svc.EnableOperations(OperationOptions{Manager: m, Raw: f.e.Raw})
	servicetest.Start(t, m)
	defer up.Release()
	emails := []string{"x@agency.test", "y@agency.test"}
	op, err := svc.OnboardMembers(caller(), onboardReq(names("a1"), emails...))
	if err != nil {
		t.Fatal(err)
	}
	up.waitHeld(t, 1)
	if err := m.Backend().Cancel(t.Context(), mustID(t, op)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cancelCheckInterval)
	up.Release()
	_, results := servicetest.OperationResults(t, m, op)
	want := map[string]string{"a1 x@agency.test": "NOT_ATTEMPTED/Canceled", "a1 y@agency.test": "NOT_ATTEMPTED/Canceled"}
	if got := onboardOutcomes(t, results, emails); !maps.Equal(got, want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	for i, r := range results {
		if r.GetEmail() != emails[i] {
			t.Fatalf("item %d names %q, want %q", i, r.GetEmail(), emails[i])
		}
	}
	if got := up.Writes(); len(got) != 0 {
		t.Fatalf("writes %v", got)
	}
	if n := f.emailCounts(t, "a1"); n["x@agency.test"]+n["y@agency.test"] != 0 {
		t.Fatalf("a1 members %v", n)
	}
}

// mustID is the id of an operation a service returned.
func mustID(t *testing.T, op *longrunningpb.Operation) string {
	t.Helper()
	id, ok := ops.ParseName(op.GetName())
	if !ok {
		t.Fatalf("not an operation: %q", op.GetName())
	}
	return id
}

// TestOnboardMembersCancelledWhileQueued: within one workspace, people
// wait for the workspace's in-flight limit (here 1). A cancel made while
// the first invite is in flight must stop the people still waiting for
// their turn: they have not started, so they are NOT_ATTEMPTED with
// CANCELLED and never sent. (Checked before the wait for the slot, as it
// once was, every queued person was still invited after the cancel.)
func TestOnboardMembersCancelledWhileQueued(t *testing.T) {
	f := newFleet(t, sim.Config{}, Options{})
	svc, up := f.tapped(t, fanout.New(fanout.Options{PerWorkspace: 1}), func(r sent) bool {
		return r.ws == "a1" && r.call == "POST /api/v2/workspace-members"
	})
	m := f.e.NewManager(t)
	svc.EnableOperations(OperationOptions{Manager: m, Raw: f.e.Raw})
	servicetest.Start(t, m)
	defer up.Release()
	emails := []string{"x@agency.test", "y@agency.test", "z@agency.test"}
	op, err := svc.OnboardMembers(caller(), onboardReq(names("a1"), emails...))
	if err != nil {
		t.Fatal(err)
	}
	up.waitHeld(t, 1) // one invite in flight, two waiting for the slot
	if err := m.Backend().Cancel(t.Context(), mustID(t, op)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(cancelCheckInterval)
	up.Release()
	_, results := servicetest.OperationResults(t, m, op)
	got := onboardOutcomes(t, results, emails)
	var created, cancelled int
	for _, o := range got {
		switch o {
		case "CREATED":
			created++
		case "NOT_ATTEMPTED/Canceled":
			cancelled++
		}
	}
	if created != 1 || cancelled != 2 {
		t.Fatalf("items %v: want the invite in flight CREATED and the 2 waiting NOT_ATTEMPTED/Canceled", got)
	}
	if w := up.Writes(); len(w) != 1 {
		t.Fatalf("writes after the cancel: %v", w)
	}
}
