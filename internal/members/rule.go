// Package members holds what every path that changes a workspace's members
// shares: the owner/last-admin rule (CheckChange), the per-workspace lock
// (Locker: Redis across replicas, or in memory for the embedded backend),
// and Guard, which runs one guarded change from lock to write so no path can
// forget a step.
//
// A Redis lock cannot fence Instantly: the upstream never sees a token. So
// the critical section is short, the lease is renewed while held, members
// are read fresh after the lock is acquired, and the lease is checked again
// right before the write.
package members

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
)

// Change is what a caller wants done to one member: remove them, or give
// them Role.
type Change struct {
	Remove bool
	Role   instantly.MemberRole // the new role when Remove is false
}

// Removal is the change that removes a member (or withdraws an invitation).
func Removal() Change { return Change{Remove: true} }

// SetRole is the change that gives a member role r.
func SetRole(r instantly.MemberRole) Change { return Change{Role: r} }

// Noop reports whether c leaves m as it is (a role m already has).
func (c Change) Noop(m *instantly.WorkspaceMember) bool {
	return !c.Remove && m != nil && c.Role == m.Role
}

// verb describes c for messages.
func (c Change) verb(email string) string {
	if c.Remove {
		return "remove " + email
	}
	return fmt.Sprintf("make %s %s", email, c.Role)
}

// CheckChange is the owner/last-admin rule, the one every path applies to
// all (every member and pending invitation of one workspace, read fresh),
// the target member and the change. It returns nil, or FAILED_PRECONDITION
// (reason CONFLICT) when target owns the workspace (ownership moves only by
// TransferOwnership) or is the workspace's last accepted admin and the
// change removes or demotes them. A pending invitation is nobody's admin
// yet: withdrawing or changing it is always allowed, and it does not count
// as another admin. A change to the role target already has is no change.
func CheckChange(all []instantly.WorkspaceMember, target *instantly.WorkspaceMember, c Change) error {
	if target == nil {
		return errors.New("members: CheckChange without a target member")
	}
	if c.Noop(target) {
		return nil
	}
	switch {
	case target.Role == instantly.RoleOwner:
		return refused("owner", fmt.Sprintf("cannot %s: they own the workspace; use TransferOwnership first", c.verb(target.Email)))
	case target.Role == instantly.RoleAdmin && target.Accepted && !otherAcceptedAdmin(all, target):
		return refused("last_admin", fmt.Sprintf("cannot %s: they are the workspace's last accepted admin; make another member admin first", c.verb(target.Email)))
	}
	return nil
}

// otherAcceptedAdmin reports whether someone other than m is an accepted admin.
func otherAcceptedAdmin(all []instantly.WorkspaceMember, m *instantly.WorkspaceMember) bool {
	for i := range all {
		o := &all[i]
		if o.ID != m.ID && o.Role == instantly.RoleAdmin && o.Accepted {
			return true
		}
	}
	return false
}

func refused(guard, msg string) error {
	return apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, msg).WithMetadata("guard", guard)
}
