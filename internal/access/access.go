// Package access pivots per-workspace member lists into who has access
// where: the ListAccess matrix, built by the server for a unary call and by
// agencyctl from a long-running call's results.
package access

import (
	"cmp"
	"slices"
	"strings"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// Matrix turns results carrying a member or a member list into one entry
// per person (emails compared without case, shown lower case), sorted by
// email, each with the workspaces in the order of results.
func Matrix(results []*agencyv1.WorkspaceResult) []*agencyv1.PersonAccess {
	people := map[string]*agencyv1.PersonAccess{}
	add := func(ws string, m *agencyv1.Member) {
		email := strings.ToLower(m.GetEmail())
		p, ok := people[email]
		if !ok {
			p = &agencyv1.PersonAccess{Email: email}
			people[email] = p
		}
		p.Workspaces = append(p.Workspaces, &agencyv1.WorkspaceRole{Workspace: ws, Role: m.GetRole(), Accepted: m.GetAccepted()})
	}
	for _, r := range results {
		if m := r.GetMember(); m != nil {
			add(r.GetWorkspace(), m)
		}
		for _, m := range r.GetMembers().GetMembers() {
			add(r.GetWorkspace(), m)
		}
	}
	out := make([]*agencyv1.PersonAccess, 0, len(people))
	for _, p := range people {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *agencyv1.PersonAccess) int { return cmp.Compare(a.GetEmail(), b.GetEmail()) })
	return out
}
