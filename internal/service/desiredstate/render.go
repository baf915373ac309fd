package desiredstate

import (
	"fmt"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/service/members"
)

func kindToProto(k ds.ChangeKind) agencyv1.ChangeKind {
	switch k {
	case ds.Invite:
		return agencyv1.ChangeKind_CHANGE_KIND_INVITE
	case ds.Role:
		return agencyv1.ChangeKind_CHANGE_KIND_ROLE
	case ds.Remove:
		return agencyv1.ChangeKind_CHANGE_KIND_REMOVE
	case ds.Tag:
		return agencyv1.ChangeKind_CHANGE_KIND_TAG
	}
	return agencyv1.ChangeKind_CHANGE_KIND_UNSPECIFIED
}

func kindFromProto(k agencyv1.ChangeKind) ds.ChangeKind {
	for _, d := range ds.Kinds() {
		if kindToProto(d) == k {
			return d
		}
	}
	return ""
}

func reasonToProto(r ds.KeptReason) agencyv1.KeptReason {
	switch r {
	case ds.KeptOwner:
		return agencyv1.KeptReason_KEPT_REASON_OWNER
	case ds.KeptUnmanaged:
		return agencyv1.KeptReason_KEPT_REASON_UNMANAGED
	case ds.KeptLastAdmin:
		return agencyv1.KeptReason_KEPT_REASON_LAST_ADMIN
	case ds.KeptPending:
		return agencyv1.KeptReason_KEPT_REASON_PENDING_INVITATION
	case ds.KeptProvisioned:
		return agencyv1.KeptReason_KEPT_REASON_IDENTITY_PROVIDER
	}
	return agencyv1.KeptReason_KEPT_REASON_UNSPECIFIED
}

func changeToProto(c ds.Change) *agencyv1.Change {
	return &agencyv1.Change{
		Kind:        kindToProto(c.Kind),
		Email:       c.Email,
		Role:        members.RoleFromUpstream(c.Role),
		CurrentRole: members.RoleFromUpstream(c.CurrentRole),
		Pending:     c.Pending,
		Label:       c.Label,
		Line:        int32(c.Line),
	}
}

// changeFromProto is the inverse of changeToProto (member ids are not in
// the proto: the guard finds members by email).
func changeFromProto(c *agencyv1.Change) ds.Change {
	return ds.Change{Kind: kindFromProto(c.GetKind()), Email: c.GetEmail(), Role: members.RoleToUpstream(c.GetRole()),
		CurrentRole: members.RoleToUpstream(c.GetCurrentRole()), Pending: c.GetPending(), Label: c.GetLabel(), Line: int(c.GetLine())}
}

// workspacePlan renders one planned workspace.
func workspacePlan(p planned) *agencyv1.WorkspacePlan {
	wp := &agencyv1.WorkspacePlan{Workspace: p.ws.Name, MembersManaged: p.want.Members, TagsManaged: len(p.want.Tags) > 0}
	if p.err != nil {
		wp.Status = apierr.FromError(p.err).GRPCStatus().Proto()
		return wp
	}
	wp.Fingerprint = ds.Fingerprint(p.obs)
	wp.ObservedMembers, wp.ObservedTags = int32(len(p.obs.Members)), int32(len(p.obs.Tags))
	for _, c := range p.diff.Changes {
		wp.Changes = append(wp.Changes, changeToProto(c))
	}
	for _, k := range p.diff.Kept {
		wp.Kept = append(wp.Kept, &agencyv1.KeptMember{Email: k.Email, Role: members.RoleFromUpstream(k.Role),
			Reason: reasonToProto(k.Reason), Detail: k.Detail})
	}
	return wp
}

// summarize counts a plan's workspaces.
func summarize(wps []*agencyv1.WorkspacePlan) *agencyv1.PlanSummary {
	s := &agencyv1.PlanSummary{Workspaces: int32(len(wps))}
	for _, w := range wps {
		if w.GetStatus() != nil {
			s.FailedWorkspaces++
			continue
		}
		if len(w.GetChanges()) > 0 {
			s.ChangedWorkspaces++
		}
		s.Kept += int32(len(w.GetKept()))
		for _, c := range w.GetChanges() {
			switch c.GetKind() {
			case agencyv1.ChangeKind_CHANGE_KIND_INVITE:
				s.Invites++
			case agencyv1.ChangeKind_CHANGE_KIND_ROLE:
				s.RoleChanges++
			case agencyv1.ChangeKind_CHANGE_KIND_REMOVE:
				s.Removals++
			case agencyv1.ChangeKind_CHANGE_KIND_TAG:
				s.TagCreations++
			}
		}
	}
	return s
}

// removalsOf counts the planned removals per workspace.
func removalsOf(wps []*agencyv1.WorkspacePlan) map[string]int {
	out := map[string]int{}
	for _, w := range wps {
		for _, c := range w.GetChanges() {
			if c.GetKind() == agencyv1.ChangeKind_CHANGE_KIND_REMOVE {
				out[w.GetWorkspace()]++
			}
		}
	}
	return out
}

// describe is a change in words, for messages.
func describe(c ds.Change) string {
	switch c.Kind {
	case ds.Invite:
		return fmt.Sprintf("invite %s as %s", c.Email, c.Role)
	case ds.Role:
		return fmt.Sprintf("make %s %s (now %s)", c.Email, c.Role, c.CurrentRole)
	case ds.Remove:
		return "remove " + c.Email
	case ds.Tag:
		return fmt.Sprintf("create tag %q", c.Label)
	}
	return string(c.Kind)
}
