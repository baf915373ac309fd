package desiredstate

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/agencyplane/agencyplane/internal/instantly"
)

// Want is what the file asks of one workspace.
type Want struct {
	// Members: some access entry selects the workspace, so its members are
	// managed (undeclared ones are removed). A workspace selected only by
	// tags keeps its members as they are.
	Members bool
	// People by lower-cased email.
	People map[string]Grant
	// Tags the workspace must carry, deduplicated (trimmed, ignoring case).
	Tags []WantTag
	// Unmanaged patterns: members matching them are never touched.
	Unmanaged []Pattern
	// Provisioned are the members (lower-cased emails) the identity
	// provider's mapping gave this workspace: they count as declared, so an
	// undeclared one is kept rather than removed.
	Provisioned map[string]bool
}

// Grant is a declared person's role in one workspace and the line of the
// access entry that gives it.
type Grant struct {
	Role instantly.MemberRole
	Line int
}

// WantTag is a declared tag label and the line of its tags entry.
type WantTag struct {
	Label string
	Line  int
}

// Conflict is two access entries giving one person two roles in one
// workspace: only the registry's labels reveal it.
type Conflict struct {
	Email     string
	Workspace string
	A, B      Access
}

func (c Conflict) String() string {
	return fmt.Sprintf("lines %d and %d give %s two roles (%s and %s) in %s", c.A.Line, c.B.Line, c.Email, c.A.Role, c.B.Role, c.Workspace)
}

// Selects reports whether any entry of the file selects a workspace with
// these labels (such a workspace is read by a plan).
func (d *Doc) Selects(lbls map[string]string) bool {
	for _, p := range d.People {
		for _, a := range p.Access {
			if a.Selector.Matches(lbls) {
				return true
			}
		}
	}
	for _, t := range d.Tags {
		if t.Selector.Matches(lbls) {
			return true
		}
	}
	return false
}

// For resolves what the file asks of the workspace named workspace, with
// these labels, and the conflicts it holds there.
func (d *Doc) For(workspace string, lbls map[string]string) (Want, []Conflict) {
	w := Want{People: map[string]Grant{}, Unmanaged: d.Unmanaged}
	var conflicts []Conflict
	for _, p := range d.People {
		var first *Access
		for i := range p.Access {
			a := &p.Access[i]
			if !a.Selector.Matches(lbls) {
				continue
			}
			w.Members = true
			switch {
			case first == nil:
				first = a
				w.People[p.Email] = Grant{Role: a.Role, Line: a.Line}
			case a.Role != first.Role:
				conflicts = append(conflicts, Conflict{Email: p.Email, Workspace: workspace, A: *first, B: *a})
			}
		}
	}
	seen := map[string]bool{}
	for _, t := range d.Tags {
		if !t.Selector.Matches(lbls) {
			continue
		}
		for _, l := range t.Labels {
			if k := normalizeLabel(l); !seen[k] {
				seen[k] = true
				w.Tags = append(w.Tags, WantTag{Label: l, Line: t.Line})
			}
		}
	}
	return w, conflicts
}

// normalizeLabel is how Instantly compares tag labels: trimmed; we also
// ignore case, as EnsureTagEverywhere does.
func normalizeLabel(l string) string { return strings.ToLower(strings.TrimSpace(l)) }

// Observed is what a plan read of one workspace.
type Observed struct {
	// MembersRead: Members holds every member and pending invitation.
	MembersRead bool
	Members     []instantly.WorkspaceMember
	// TagsRead: Tags holds every tag.
	TagsRead bool
	Tags     []instantly.CustomTag
}

// ChangeKind is what a change does.
type ChangeKind string

// Change kinds; also the values of the drift metric's kind label.
const (
	Invite ChangeKind = "invite"
	Role   ChangeKind = "role"
	Remove ChangeKind = "remove"
	Tag    ChangeKind = "tag"
)

// Kinds returns every change kind, in the order an apply makes them.
func Kinds() []ChangeKind { return []ChangeKind{Tag, Invite, Role, Remove} }

// Change is one change in one workspace.
type Change struct {
	Kind        ChangeKind           `json:"kind"`
	Email       string               `json:"email,omitempty"` // lower case
	MemberID    string               `json:"member_id,omitempty"`
	Role        instantly.MemberRole `json:"role,omitempty"`         // Invite, Role: the role to give
	CurrentRole instantly.MemberRole `json:"current_role,omitempty"` // Role, Remove
	Pending     bool                 `json:"pending,omitempty"`      // Role, Remove: the invitation is not accepted
	Label       string               `json:"label,omitempty"`        // Tag
	Line        int                  `json:"line,omitempty"`         // the asking line (0 for removals)
}

// Key identifies a change across plans of one workspace (drift's "since
// when", replan's "was it planned"): its kind, subject and target role.
func (c Change) Key() string {
	if c.Kind == Tag {
		return string(c.Kind) + "|" + normalizeLabel(c.Label)
	}
	return string(c.Kind) + "|" + c.Email + "|" + string(c.Role)
}

// KeptReason is why a member is left alone.
type KeptReason string

// Reasons.
const (
	KeptOwner     KeptReason = "owner"
	KeptUnmanaged KeptReason = "unmanaged"
	KeptLastAdmin KeptReason = "last_admin"
	KeptPending   KeptReason = "pending_invitation"
	// KeptProvisioned: given by the identity provider (SCIM), which owns it.
	KeptProvisioned KeptReason = "identity_provider"
)

// Kept is a member left alone.
type Kept struct {
	Email  string
	Role   instantly.MemberRole // "" for a declared person who is absent
	Reason KeptReason
	Detail string
}

// Diff is one workspace's changes, in the order an apply makes them (tags,
// invites, role changes with promotions to admin first, removals), and the
// members left alone.
type Diff struct {
	Changes []Change
	Kept    []Kept
}

// Count returns how many changes are of kind k.
func (d Diff) Count(k ChangeKind) int {
	n := 0
	for _, c := range d.Changes {
		if c.Kind == k {
			n++
		}
	}
	return n
}

// Compute is the diff of one workspace: a pure function of what the file
// asks (w) and what was observed (o), so it is tested without a network.
//
//   - A declared person absent is invited; present (accepted or pending:
//     a pending invitation counts as present) with another role gets the
//     declared role.
//   - An undeclared member or pending invitation is removed, in a workspace
//     whose members the file manages.
//   - The owner is never changed or removed; members matching an unmanaged
//     pattern are never touched (nor invited, if declared).
//   - Removals and demotions never leave the workspace without an accepted
//     admin when it had one (the same rule internal/members applies at the
//     write): the first such member by email is kept.
//   - A declared tag the workspace lacks is created; other tags stay.
func Compute(w Want, o Observed) Diff {
	var d Diff
	if w.Members && o.MembersRead {
		d = diffMembers(w, o.Members)
	}
	if o.TagsRead {
		have := map[string]bool{}
		for _, t := range o.Tags {
			have[normalizeLabel(t.Label)] = true
		}
		var tags []Change
		for _, t := range w.Tags {
			if !have[normalizeLabel(t.Label)] {
				tags = append(tags, Change{Kind: Tag, Label: t.Label, Line: t.Line})
			}
		}
		d.Changes = append(tags, d.Changes...)
	}
	return d
}

func diffMembers(w Want, observed []instantly.WorkspaceMember) Diff {
	members := slices.Clone(observed)
	slices.SortFunc(members, func(a, b instantly.WorkspaceMember) int {
		return cmp.Or(cmp.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email)), cmp.Compare(a.ID, b.ID))
	})
	unmanaged := func(email string) (Pattern, bool) {
		for _, p := range w.Unmanaged {
			if p.Matches(email) {
				return p, true
			}
		}
		return Pattern{}, false
	}
	var d Diff
	var invites, roles, removals []Change
	present := map[string]bool{}
	for _, m := range members {
		email := strings.ToLower(m.Email)
		present[email] = true
		grant, declared := w.People[email]
		if m.Role == instantly.RoleOwner {
			detail := "not declared; the owner is never removed"
			if declared {
				detail = fmt.Sprintf("declared %s (line %d); the owner's role never changes", grant.Role, grant.Line)
			}
			d.Kept = append(d.Kept, Kept{Email: email, Role: m.Role, Reason: KeptOwner, Detail: detail})
			continue
		}
		if p, ok := unmanaged(email); ok {
			d.Kept = append(d.Kept, Kept{Email: email, Role: m.Role, Reason: KeptUnmanaged, Detail: fmt.Sprintf("matches %q (line %d)", p.Glob, p.Line)})
			continue
		}
		switch {
		case declared && m.Role == grant.Role:
			if !m.Accepted {
				d.Kept = append(d.Kept, Kept{Email: email, Role: m.Role, Reason: KeptPending,
					Detail: "invited and not accepted yet: counts as present"})
			}
		case declared:
			roles = append(roles, Change{Kind: Role, Email: email, MemberID: m.ID, Role: grant.Role, CurrentRole: m.Role, Pending: !m.Accepted, Line: grant.Line})
		case w.Provisioned[email]:
			d.Kept = append(d.Kept, Kept{Email: email, Role: m.Role, Reason: KeptProvisioned,
				Detail: "given by the identity provider's mapping: counts as declared"})
		default:
			removals = append(removals, Change{Kind: Remove, Email: email, MemberID: m.ID, CurrentRole: m.Role, Pending: !m.Accepted})
		}
	}
	declared := make([]string, 0, len(w.People))
	for email := range w.People {
		declared = append(declared, email)
	}
	slices.Sort(declared)
	for _, email := range declared {
		if present[email] {
			continue
		}
		grant := w.People[email]
		if p, ok := unmanaged(email); ok {
			d.Kept = append(d.Kept, Kept{Email: email, Reason: KeptUnmanaged,
				Detail: fmt.Sprintf("declared (line %d) but matches %q (line %d): not invited", grant.Line, p.Glob, p.Line)})
			continue
		}
		invites = append(invites, Change{Kind: Invite, Email: email, Role: grant.Role, Line: grant.Line})
	}
	roles, removals, kept := keepLastAdmin(members, roles, removals)
	d.Kept = append(d.Kept, kept...)
	// Promotions to admin first, so a demotion or removal later in the same
	// apply finds the new admin in place.
	slices.SortStableFunc(roles, func(a, b Change) int {
		return cmp.Compare(rank(a.Role != instantly.RoleAdmin), rank(b.Role != instantly.RoleAdmin))
	})
	d.Changes = slices.Concat(invites, roles, removals)
	slices.SortStableFunc(d.Kept, func(a, b Kept) int { return cmp.Compare(a.Email, b.Email) })
	return d
}

func rank(b bool) int {
	if b {
		return 1
	}
	return 0
}

// keepLastAdmin drops the first removal or demotion (by email) of an
// accepted admin when the changes would leave no accepted admin, as the
// member guard would refuse it anyway; pending invitations are nobody's
// admin.
func keepLastAdmin(members []instantly.WorkspaceMember, roles, removals []Change) ([]Change, []Change, []Kept) {
	losing := map[string]bool{} // member ids of accepted admins removed or demoted
	gaining := false
	for _, c := range roles {
		if !c.Pending && c.CurrentRole == instantly.RoleAdmin && c.Role != instantly.RoleAdmin {
			losing[c.MemberID] = true
		}
		if !c.Pending && c.Role == instantly.RoleAdmin {
			gaining = true
		}
	}
	for _, c := range removals {
		if !c.Pending && c.CurrentRole == instantly.RoleAdmin {
			losing[c.MemberID] = true
		}
	}
	admins := 0
	for _, m := range members {
		if m.Accepted && m.Role == instantly.RoleAdmin {
			admins++
		}
	}
	if admins == 0 || gaining || len(losing) < admins {
		return roles, removals, nil
	}
	// Every accepted admin goes: keep the first one by email.
	var keep *Change
	for _, list := range [][]Change{roles, removals} {
		for i := range list {
			if c := &list[i]; losing[c.MemberID] && (keep == nil || c.Email < keep.Email) {
				keep = c
			}
		}
	}
	k := *keep
	detail := "not removed: the workspace would have no accepted admin left"
	if k.Kind == Role {
		detail = fmt.Sprintf("not made %s: the workspace would have no accepted admin left", k.Role)
	}
	drop := func(list []Change) []Change {
		return slices.DeleteFunc(list, func(c Change) bool { return c.MemberID == k.MemberID && c.Kind == k.Kind })
	}
	return drop(roles), drop(removals), []Kept{{Email: k.Email, Role: k.CurrentRole, Reason: KeptLastAdmin, Detail: detail}}
}

// Fingerprint hashes what the diff depends on in what was observed:
// every member's id, email, role and acceptance, and every tag's id and
// label. A plan is bound to it; an apply compares it with a fresh read.
func Fingerprint(o Observed) string {
	h := sha256.New()
	if o.MembersRead {
		ms := slices.Clone(o.Members)
		slices.SortFunc(ms, func(a, b instantly.WorkspaceMember) int { return cmp.Compare(a.ID, b.ID) })
		h.Write([]byte("members\n"))
		for _, m := range ms {
			fmt.Fprintf(h, "%s\t%s\t%s\t%s\n", m.ID, strings.ToLower(m.Email), m.Role, strconv.FormatBool(m.Accepted))
		}
	}
	if o.TagsRead {
		ts := slices.Clone(o.Tags)
		slices.SortFunc(ts, func(a, b instantly.CustomTag) int { return cmp.Compare(a.ID, b.ID) })
		h.Write([]byte("tags\n"))
		for _, t := range ts {
			fmt.Fprintf(h, "%s\t%s\n", t.ID, normalizeLabel(t.Label))
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// Violation is a removal limit a plan exceeds.
type Violation struct {
	Limit     string // "max_removals_per_workspace" or "max_removals_total"
	Workspace string // for the per-workspace limit
	Count     int
	Max       int
}

func (v Violation) String() string {
	if v.Workspace != "" {
		return fmt.Sprintf("%s: %s would lose %d members, the limit is %d", v.Limit, v.Workspace, v.Count, v.Max)
	}
	return fmt.Sprintf("%s: the plan removes %d members in all, the limit is %d", v.Limit, v.Count, v.Max)
}

// Check returns the limits that removals (per workspace name) exceed, the
// per-workspace ones in name order, then the total.
func (l Limits) Check(removals map[string]int) []Violation {
	var out []Violation
	total := 0
	names := make([]string, 0, len(removals))
	for name, n := range removals {
		total += n
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if n := removals[name]; n > l.MaxRemovalsPerWorkspace {
			out = append(out, Violation{Limit: "max_removals_per_workspace", Workspace: name, Count: n, Max: l.MaxRemovalsPerWorkspace})
		}
	}
	if total > l.MaxRemovalsTotal {
		out = append(out, Violation{Limit: "max_removals_total", Count: total, Max: l.MaxRemovalsTotal})
	}
	return out
}
