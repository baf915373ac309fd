package members

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
)

func member(id, email string, role instantly.MemberRole, accepted bool) instantly.WorkspaceMember {
	return instantly.WorkspaceMember{ID: id, Email: email, Role: role, Accepted: accepted}
}

func TestCheckChange(t *testing.T) {
	owner := member("o", "owner@x.test", instantly.RoleOwner, true)
	boss := member("a1", "boss@x.test", instantly.RoleAdmin, true)
	deputy := member("a2", "deputy@x.test", instantly.RoleAdmin, true)
	pendingAdmin := member("p", "pending@x.test", instantly.RoleAdmin, false)
	editor := member("e", "editor@x.test", instantly.RoleEditor, true)

	cases := []struct {
		name   string
		all    []instantly.WorkspaceMember
		target instantly.WorkspaceMember
		change Change
		guard  string // "" = allowed, else the refusal's guard metadata
	}{
		{"remove owner", []instantly.WorkspaceMember{owner, boss, deputy}, owner, Removal(), "owner"},
		{"demote owner", []instantly.WorkspaceMember{owner, boss}, owner, SetRole(instantly.RoleAdmin), "owner"},
		{"owner to owner is no change", []instantly.WorkspaceMember{owner}, owner, SetRole(instantly.RoleOwner), ""},
		{"remove last accepted admin", []instantly.WorkspaceMember{owner, boss, editor}, boss, Removal(), "last_admin"},
		{"demote last accepted admin", []instantly.WorkspaceMember{owner, boss, editor}, boss, SetRole(instantly.RoleView), "last_admin"},
		{"demote last admin to editor", []instantly.WorkspaceMember{boss}, boss, SetRole(instantly.RoleEditor), "last_admin"},
		{"a pending admin is not another admin", []instantly.WorkspaceMember{owner, boss, pendingAdmin}, boss, Removal(), "last_admin"},
		{"withdraw a pending admin invitation", []instantly.WorkspaceMember{owner, boss, pendingAdmin}, pendingAdmin, Removal(), ""},
		{"withdraw the only admin invitation", []instantly.WorkspaceMember{owner, pendingAdmin}, pendingAdmin, Removal(), ""},
		{"demote a pending admin", []instantly.WorkspaceMember{owner, pendingAdmin}, pendingAdmin, SetRole(instantly.RoleView), ""},
		{"remove one of two admins", []instantly.WorkspaceMember{owner, boss, deputy}, boss, Removal(), ""},
		{"demote one of two admins", []instantly.WorkspaceMember{owner, boss, deputy}, deputy, SetRole(instantly.RoleView), ""},
		{"last admin to admin is no change", []instantly.WorkspaceMember{owner, boss}, boss, SetRole(instantly.RoleAdmin), ""},
		{"remove an editor with no admin left", []instantly.WorkspaceMember{owner, editor}, editor, Removal(), ""},
		{"promote an editor", []instantly.WorkspaceMember{owner, boss, editor}, editor, SetRole(instantly.RoleAdmin), ""},
		// The target is matched by id: an admin with the same id is the target itself.
		{"the target does not count as another admin", []instantly.WorkspaceMember{owner, boss, boss}, boss, Removal(), "last_admin"},
		{"target missing from the list", []instantly.WorkspaceMember{owner}, boss, Removal(), "last_admin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := tc.target
			err := CheckChange(tc.all, &target, tc.change)
			if tc.guard == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			st, ok := status.FromError(err)
			if !ok || st.Code() != codes.FailedPrecondition {
				t.Fatalf("got %v, want FAILED_PRECONDITION", err)
			}
			e := apierr.FromError(err)
			if apierr.ReasonString(e.Reason) != "CONFLICT" || e.Metadata["guard"] != tc.guard {
				t.Fatalf("reason %v metadata %v, want CONFLICT guard=%s", e.Reason, e.Metadata, tc.guard)
			}
		})
	}
	if err := CheckChange(nil, nil, Removal()); err == nil {
		t.Fatal("nil target accepted")
	}
}
