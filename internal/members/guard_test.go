package members

import (
	"context"
	"errors"
	"iter"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/store"
)

// fakeUpstream is one workspace's members, with a latency per call and a
// log of calls shared with tracedLocker.
type fakeUpstream struct {
	latency time.Duration
	mu      sync.Mutex
	members []instantly.WorkspaceMember
	log     *[]string
}

func (f *fakeUpstream) record(ev string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	*f.log = append(*f.log, ev)
}

func (f *fakeUpstream) AllWorkspaceMembers(ctx context.Context, _ instantly.Credential, _ instantly.ListWorkspaceMembersParams, _ ...instantly.PageOption) iter.Seq2[instantly.WorkspaceMember, error] {
	return func(yield func(instantly.WorkspaceMember, error) bool) {
		f.record("list")
		time.Sleep(f.latency)
		f.mu.Lock()
		all := slices.Clone(f.members)
		f.mu.Unlock()
		for _, m := range all {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func (f *fakeUpstream) UpdateWorkspaceMember(_ context.Context, _ instantly.Credential, id string, req instantly.UpdateWorkspaceMemberRequest) (*instantly.WorkspaceMember, error) {
	f.record("update " + id)
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].ID == id {
			f.members[i].Role = *req.Role
			m := f.members[i]
			return &m, nil
		}
	}
	return nil, &instantly.Error{StatusCode: 404}
}

func (f *fakeUpstream) DeleteWorkspaceMember(_ context.Context, _ instantly.Credential, id string) (*instantly.WorkspaceMember, error) {
	f.record("delete " + id)
	time.Sleep(f.latency)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.members {
		if f.members[i].ID == id {
			m := f.members[i]
			f.members = slices.Delete(f.members, i, i+1)
			return &m, nil
		}
	}
	return nil, &instantly.Error{StatusCode: 404}
}

func (f *fakeUpstream) acceptedAdmins() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.members {
		if m.Role == instantly.RoleAdmin && m.Accepted {
			n++
		}
	}
	return n
}

// tracedLocker logs Lock, Check and Unlock into the same log, and can make
// Lock or Check fail.
type tracedLocker struct {
	Locker
	up               *fakeUpstream
	lockErr, lostErr error
}

func (l *tracedLocker) Lock(ctx context.Context, ws string) (Lease, error) {
	l.up.record("lock " + ws)
	if l.lockErr != nil {
		return nil, l.lockErr
	}
	s, err := l.Locker.Lock(ctx, ws)
	if err != nil {
		return nil, err
	}
	return &tracedLease{Lease: s, l: l}, nil
}

type tracedLease struct {
	Lease
	l *tracedLocker
}

func (s *tracedLease) Check(ctx context.Context) error {
	s.l.up.record("check")
	if s.l.lostErr != nil {
		return s.l.lostErr
	}
	return s.Lease.Check(ctx)
}

func (s *tracedLease) Unlock(ctx context.Context) error {
	s.l.up.record("unlock")
	return s.Lease.Unlock(ctx)
}

func newWorld() (*fakeUpstream, *tracedLocker) {
	up := &fakeUpstream{log: new([]string), members: []instantly.WorkspaceMember{
		member("o", "owner@x.test", instantly.RoleOwner, true),
		member("a1", "Admin1@x.test", instantly.RoleAdmin, true),
		member("a2", "admin2@x.test", instantly.RoleAdmin, true),
		member("p", "pending@x.test", instantly.RoleAdmin, false),
		member("e", "editor@x.test", instantly.RoleEditor, true),
	}}
	return up, &tracedLocker{Locker: NewMemoryLocker(), up: up}
}

var acme = &store.Workspace{Name: "workspaces/acme", InstantlyWorkspaceID: "inst-1"}

// TestGuardSteps: lock, read after acquiring, rule, check, write, unlock —
// in that order, under the Instantly workspace id.
func TestGuardSteps(t *testing.T) {
	up, l := newWorld()
	g := NewGuard(l, up)
	res, err := g.Apply(t.Context(), Request{Workspace: acme, Member: "admin1@x.test", Change: Removal()})
	if err != nil || res.Outcome != Removed || res.Member.ID != "a1" {
		t.Fatalf("Apply = %+v, %v", res, err)
	}
	if want := "lock inst-1,list,check,delete a1,unlock"; strings.Join(*up.log, ",") != want {
		t.Fatalf("steps %v, want %s", *up.log, want)
	}

	*up.log = nil
	res, err = g.Apply(t.Context(), Request{Workspace: acme, Member: "a2", Change: SetRole(instantly.RoleView)})
	st, _ := status.FromError(err)
	if st.Code() != codes.FailedPrecondition || res.Member == nil || res.Member.ID != "a2" {
		t.Fatalf("demoting the last admin: %+v, %v", res, err)
	}
	if want := "lock inst-1,list,unlock"; strings.Join(*up.log, ",") != want {
		t.Fatalf("steps of a refusal %v, want %s", *up.log, want)
	}

	*up.log = nil
	res, err = g.Apply(t.Context(), Request{Workspace: acme, Member: "e", Change: SetRole(instantly.RoleView)})
	if err != nil || res.Outcome != Updated || res.Member.Role != instantly.RoleView {
		t.Fatalf("demoting an editor: %+v, %v", res, err)
	}
	if want := "lock inst-1,list,check,update e,unlock"; strings.Join(*up.log, ",") != want {
		t.Fatalf("steps %v, want %s", *up.log, want)
	}

	// Nothing to do: no check, no write.
	for _, req := range []Request{
		{Workspace: acme, Member: "nobody@x.test", Change: Removal()},
		{Workspace: acme, Member: "", Change: Removal()},
		{Workspace: acme, Member: "a2", Change: SetRole(instantly.RoleAdmin)},
	} {
		*up.log = nil
		res, err := g.Apply(t.Context(), req)
		want := NoSuchMember
		if req.Member == "a2" {
			want = Unchanged
		}
		if err != nil || res.Outcome != want {
			t.Fatalf("%+v: %+v, %v", req, res, err)
		}
		if got := strings.Join(*up.log, ","); got != "lock inst-1,list,unlock" {
			t.Fatalf("%+v: steps %s", req, got)
		}
	}

	// A workspace without a known Instantly id locks under its name.
	*up.log = nil
	if _, err := g.Apply(t.Context(), Request{Workspace: &store.Workspace{Name: "workspaces/x"}, Member: "e", Change: SetRole(instantly.RoleEditor)}); err != nil {
		t.Fatal(err)
	}
	if (*up.log)[0] != "lock workspaces/x" {
		t.Fatalf("steps %v", *up.log)
	}
}

// TestGuardFailsClosed: a lock that cannot be taken, or a lease lost before
// the write, means no write.
func TestGuardFailsClosed(t *testing.T) {
	up, l := newWorld()
	g := NewGuard(l, up)
	l.lockErr = unavailable("inst-1", errors.New("redis down"))
	_, err := g.Apply(t.Context(), Request{Workspace: acme, Member: "admin1@x.test", Change: Removal()})
	if !errors.Is(err, ErrUnavailable) || status.Code(err) != codes.Unavailable {
		t.Fatalf("lock store down: %v", err)
	}
	if got := strings.Join(*up.log, ","); got != "lock inst-1" {
		t.Fatalf("steps %s: something was read or written without the lock", got)
	}

	*up.log = nil
	l.lockErr, l.lostErr = nil, lost("inst-1", "stolen")
	res, err := g.Apply(t.Context(), Request{Workspace: acme, Member: "admin1@x.test", Change: Removal()})
	if !errors.Is(err, ErrLockLost) || status.Code(err) != codes.Aborted || res.Member == nil {
		t.Fatalf("lost lease: %+v, %v", res, err)
	}
	if got := strings.Join(*up.log, ","); got != "lock inst-1,list,check,unlock" {
		t.Fatalf("steps %s: written after a failed Check", got)
	}
	if up.acceptedAdmins() != 2 {
		t.Fatal("a member was removed")
	}
}

// TestGuardDryRun: the rule applies to a fresh read; no lock, no write.
func TestGuardDryRun(t *testing.T) {
	up, l := newWorld()
	l.lockErr = errors.New("a dry run must not lock")
	g := NewGuard(l, up)
	res, err := g.Apply(t.Context(), Request{Workspace: acme, Member: "a1", Change: Removal(), DryRun: true})
	if err != nil || res.Outcome != Removed || res.Member.ID != "a1" {
		t.Fatalf("dry run: %+v, %v", res, err)
	}
	res, err = g.Apply(t.Context(), Request{Workspace: acme, Member: "o", Change: Removal(), DryRun: true})
	if status.Code(err) != codes.FailedPrecondition || res.Member.ID != "o" {
		t.Fatalf("dry run on the owner: %+v, %v", res, err)
	}
	res, err = g.Apply(t.Context(), Request{Workspace: acme, Member: "a1", Change: SetRole(instantly.RoleView), DryRun: true})
	if err != nil || res.Outcome != Updated {
		t.Fatalf("dry run demotion: %+v, %v", res, err)
	}
	if got := strings.Join(*up.log, ","); got != "list,list,list" {
		t.Fatalf("steps %s", got)
	}
}

// TestGuardRace: two concurrent removals of the two admins through one
// Locker: exactly one is refused, and an admin remains. Without the lock
// (Locker that never waits) both would read two admins and both delete.
func TestGuardRace(t *testing.T) {
	for trial := range 20 {
		up, l := newWorld()
		up.latency = 2 * time.Millisecond
		g := NewGuard(l.Locker, up)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, who := range []string{"a1", "a2"} {
			wg.Go(func() {
				<-start
				_, errs[i] = g.Apply(t.Context(), Request{Workspace: acme, Member: who, Change: Removal()})
			})
		}
		close(start)
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch status.Code(err) {
			case codes.OK:
			case codes.FailedPrecondition:
				refused++
			default:
				t.Fatalf("trial %d: %v", trial, err)
			}
		}
		if refused != 1 || up.acceptedAdmins() != 1 {
			t.Fatalf("trial %d: %d refused, %d admins left; want 1 and 1", trial, refused, up.acceptedAdmins())
		}
	}
}

// goneUpstream deletes the member behind the guard's back on the first
// DELETE and answers 404: what a DELETE retried after a 5xx that had in
// fact taken effect sees.
type goneUpstream struct{ *fakeUpstream }

func (g goneUpstream) DeleteWorkspaceMember(ctx context.Context, cred instantly.Credential, id string) (*instantly.WorkspaceMember, error) {
	if _, err := g.fakeUpstream.DeleteWorkspaceMember(ctx, cred, id); err != nil {
		return nil, err
	}
	return nil, &instantly.Error{StatusCode: 404}
}

// TestGuardDeleteAlreadyGone: a removal whose DELETE answers 404 after
// the member was found is done (Removed), not a failure.
func TestGuardDeleteAlreadyGone(t *testing.T) {
	up, l := newWorld()
	g := NewGuard(l, goneUpstream{up})
	res, err := g.Apply(context.Background(), Request{Workspace: acme, Member: "editor@x.test", Change: Removal()})
	if err != nil || res.Outcome != Removed || res.Member == nil || res.Member.Email != "editor@x.test" {
		t.Fatalf("Apply = %+v, %v; want Removed", res, err)
	}
}
