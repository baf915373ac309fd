package members

import (
	"context"
	"errors"
	"iter"
	"net/http"
	"strings"

	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Upstream is the part of the Instantly client a Guard uses;
// *instantly.Client implements it.
type Upstream interface {
	AllWorkspaceMembers(ctx context.Context, cred instantly.Credential, p instantly.ListWorkspaceMembersParams, opts ...instantly.PageOption) iter.Seq2[instantly.WorkspaceMember, error]
	UpdateWorkspaceMember(ctx context.Context, cred instantly.Credential, id string, req instantly.UpdateWorkspaceMemberRequest) (*instantly.WorkspaceMember, error)
	DeleteWorkspaceMember(ctx context.Context, cred instantly.Credential, id string) (*instantly.WorkspaceMember, error)
}

var _ Upstream = (*instantly.Client)(nil)

// Guard makes guarded member changes: every path that removes a member or
// changes a role goes through Apply. Invitations need no lock (they add,
// and an invitation is nobody's admin yet).
type Guard struct {
	locker Locker
	client Upstream
}

// NewGuard returns a Guard taking locks from l and talking to c.
func NewGuard(l Locker, c Upstream) *Guard {
	return &Guard{locker: l, client: c}
}

// Request is one guarded change in one workspace.
type Request struct {
	Workspace *store.Workspace     // the registered workspace; LockName names its lock
	Cred      instantly.Credential // its credential
	Member    string               // the member's Instantly id, or email (anything with an '@', matched ignoring case)
	Change    Change
	// DryRun applies the rule to a fresh read and reports what would happen,
	// without taking the lock or writing.
	DryRun bool
}

// Outcome is what Apply did.
type Outcome int

// Outcomes.
const (
	// NoSuchMember: nobody in the workspace matched Request.Member; nothing
	// was done.
	NoSuchMember Outcome = iota + 1
	// Unchanged: the member already has the role; nothing was written.
	Unchanged
	// Removed: the member was removed (or, on a dry run, would be).
	Removed
	// Updated: the member's role was changed (or, on a dry run, would be).
	Updated
)

// Result is Apply's answer. Member is the member as Instantly answered the
// write, or as read when nothing was written (a refusal, a no-op, a dry
// run); nil for NoSuchMember.
type Result struct {
	Outcome Outcome
	Member  *instantly.WorkspaceMember
}

// LockName is the name the lock of ws's members is taken under: its
// Instantly workspace id (one upstream tenant, whatever it is registered
// as), or its name when that is unknown.
func LockName(ws *store.Workspace) string {
	if ws.InstantlyWorkspaceID != "" {
		return ws.InstantlyWorkspaceID
	}
	return ws.Name
}

// Apply makes one guarded change: lock the workspace's members, read every
// member fresh (after acquiring), find the target, apply CheckChange, check
// the lease, write, unlock. A refusal is CheckChange's FAILED_PRECONDITION
// with the target in the Result; lock failures are ABORTED (busy, lost) or
// UNAVAILABLE (lock store down), and nothing is written after any error.
func (g *Guard) Apply(ctx context.Context, req Request) (Result, error) {
	if req.Workspace == nil {
		return Result{}, errors.New("members: Apply without a workspace")
	}
	if req.DryRun {
		return g.decide(ctx, req)
	}
	lease, err := g.locker.Lock(ctx, LockName(req.Workspace))
	if err != nil {
		return Result{}, err
	}
	// A lease lost by the time of Unlock was checked before the write; an
	// Unlock error changes nothing about the outcome.
	defer func() { _ = lease.Unlock(ctx) }()
	res, err := g.decide(ctx, req)
	if err != nil || res.Outcome == NoSuchMember || res.Outcome == Unchanged {
		return res, err
	}
	if err := lease.Check(ctx); err != nil {
		return Result{Member: res.Member}, err
	}
	target := res.Member
	if req.Change.Remove {
		removed, err := g.client.DeleteWorkspaceMember(ctx, req.Cred, target.ID)
		var apiErr *instantly.Error
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			// Gone by the time of the write: a retried DELETE whose first
			// attempt took effect (the client repeats DELETEs on 5xx).
			return Result{Outcome: Removed, Member: target}, nil
		}
		if err != nil {
			return Result{Member: target}, err
		}
		return Result{Outcome: Removed, Member: removed}, nil
	}
	role := req.Change.Role
	updated, err := g.client.UpdateWorkspaceMember(ctx, req.Cred, target.ID, instantly.UpdateWorkspaceMemberRequest{Role: &role})
	if err != nil {
		return Result{Member: target}, err
	}
	return Result{Outcome: Updated, Member: updated}, nil
}

// decide reads every member, finds the target and applies the rule.
func (g *Guard) decide(ctx context.Context, req Request) (Result, error) {
	all, err := instantly.Collect(g.client.AllWorkspaceMembers(ctx, req.Cred, instantly.ListWorkspaceMembersParams{}))
	if err != nil {
		return Result{}, err
	}
	target := find(all, req.Member)
	switch {
	case target == nil:
		return Result{Outcome: NoSuchMember}, nil
	case req.Change.Noop(target):
		return Result{Outcome: Unchanged, Member: target}, nil
	}
	if err := CheckChange(all, target, req.Change); err != nil {
		return Result{Member: target}, err
	}
	if req.Change.Remove {
		return Result{Outcome: Removed, Member: target}, nil
	}
	return Result{Outcome: Updated, Member: target}, nil
}

// find picks the member named by an id or an email out of all.
func find(all []instantly.WorkspaceMember, member string) *instantly.WorkspaceMember {
	if member == "" {
		return nil
	}
	byEmail := strings.Contains(member, "@")
	for i := range all {
		if byEmail && strings.EqualFold(all[i].Email, member) || !byEmail && all[i].ID == member {
			return &all[i]
		}
	}
	return nil
}
