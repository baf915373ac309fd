package cli

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/access"
)

func (c *cli) fanoutAPI() (agencyv1.FanoutServiceClient, error) {
	conn, err := c.client()
	if err != nil {
		return nil, err
	}
	return agencyv1.NewFanoutServiceClient(conn), nil
}

func (c *cli) membersAPI() (agencyv1.MemberServiceClient, error) {
	conn, err := c.client()
	if err != nil {
		return nil, err
	}
	return agencyv1.NewMemberServiceClient(conn), nil
}

// needsLongRunning reports agencyd's answer to a unary fan-out over more
// than 1,000 workspaces: refused before anything was done, so the same
// call as an operation is safe.
func needsLongRunning(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.InvalidArgument {
		return false
	}
	for _, v := range fieldViolations(st.Proto()) {
		if v.GetField() == "selector" && strings.Contains(v.GetDescription(), "long_running") {
			return true
		}
	}
	return false
}

// fanoutCall is one fan-out RPC, unary or (lr) as an operation.
type fanoutCall func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error)

// runFanoutWrite runs a mutating fan-out and reports it: unary, or as an
// operation followed with progress (--long-running, or on its own when the
// selection exceeds the unary cap).
// fanoutOver is what every fan-out command needs first: the selector its
// flags name and the FanoutService client.
func (c *cli) fanoutOver(sel *selectorFlags) (*agencyv1.WorkspaceSelector, agencyv1.FanoutServiceClient, error) {
	selector, err := sel.proto()
	if err != nil {
		return nil, nil, err
	}
	api, err := c.fanoutAPI()
	if err != nil {
		return nil, nil, err
	}
	return selector, api, nil
}

func (c *cli) runFanoutWrite(ctx context.Context, longRunning, detach bool, label string, call fanoutCall) error {
	cctx, cancel := c.call(ctx)
	resp, err := call(cctx, longRunning)
	cancel()
	if err != nil && !longRunning && needsLongRunning(err) {
		c.out.info("more than 1,000 workspaces: running as an operation")
		cctx, cancel := c.call(ctx)
		resp, err = call(cctx, true)
		cancel()
	}
	if err != nil {
		return err
	}
	if op := resp.GetOperation(); op != nil {
		return c.followAndReport(ctx, []*longrunningpb.Operation{op}, label, detach)
	}
	return c.printFanout(resp)
}

// fanoutRead runs a reading fan-out and returns every workspace's result,
// through an operation when the selection exceeds the unary cap.
func (c *cli) fanoutRead(ctx context.Context, label string, call fanoutCall) (*agencyv1.FanoutResponse, error) {
	cctx, cancel := c.call(ctx)
	resp, err := call(cctx, false)
	cancel()
	if err == nil || !needsLongRunning(err) {
		return resp, err
	}
	cctx, cancel = c.call(ctx)
	resp, err = call(cctx, true)
	cancel()
	if err != nil {
		return nil, err
	}
	ops, err := c.follow(ctx, []string{resp.GetOperation().GetName()}, label)
	if err != nil {
		return nil, err
	}
	results, err := c.operationResults(ctx, ops[0].GetName())
	if err != nil {
		return nil, err
	}
	return &agencyv1.FanoutResponse{Results: results, Summary: summarize(results)}, nil
}

func (c *cli) membersCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "members",
		Aliases: []string{"member"},
		Short:   "People of one workspace (-w NAME) or of many (-l SELECTOR, --all)",
	}
	cmd.AddCommand(c.membersListCmd(), c.membersInviteCmd(), c.membersSetRoleCmd(), c.membersRmCmd())
	return cmd
}

func memberState(m *agencyv1.Member) string {
	if m.GetAccepted() {
		return "accepted"
	}
	return "invited"
}

func (c *cli) membersListCmd() *cobra.Command {
	var sel selectorFlags
	cmd := &cobra.Command{
		Use:     "list (-w NAME | -l SELECTOR | --all)",
		Aliases: []string{"ls"},
		Short:   "List members and pending invitations",
		Args:    exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			ws, err := sel.single()
			if err != nil {
				return err
			}
			if ws != "" {
				return c.listMembersOf(cmd.Context(), ws)
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			resp, err := c.fanoutRead(cmd.Context(), "reading members", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.ListAccess(ctx, &agencyv1.ListAccessRequest{Selector: selector, LongRunning: lr})
			})
			if err != nil {
				return err
			}
			if c.out.machine() {
				if err := c.out.proto(resp); err != nil {
					return err
				}
			} else {
				rows := [][]string{}
				for _, r := range resp.GetResults() {
					for _, m := range r.GetMembers().GetMembers() {
						rows = append(rows, []string{shortName(r.GetWorkspace()), m.GetEmail(), roleName(m.GetRole()), memberState(m)})
					}
				}
				c.out.table([]string{"workspace", "email", "role", "state"}, rows)
				c.printUnreadable(resp.GetResults())
			}
			return c.failedWorkspaces(resp.GetResults())
		}),
	}
	sel.register(cmd, c)
	return cmd
}

// printUnreadable lists the workspaces a read could not reach.
func (c *cli) printUnreadable(results []*agencyv1.WorkspaceResult) {
	for _, r := range results {
		if failedOutcome(r.GetOutcome()) {
			fmt.Fprintf(c.env.Out, "%s %s: %s\n", c.out.red("could not read"), shortName(r.GetWorkspace()), reasonText(r.GetStatus()))
		}
	}
}

func (c *cli) failedWorkspaces(results []*agencyv1.WorkspaceResult) error {
	n := 0
	for _, r := range results {
		if failedOutcome(r.GetOutcome()) {
			n++
		}
	}
	if n > 0 {
		return failedErr(fmt.Sprintf("%s could not be read", plural(n, "workspace")))
	}
	return nil
}

func (c *cli) listMembersOf(ctx context.Context, ws string) error {
	api, err := c.membersAPI()
	if err != nil {
		return err
	}
	var all []*agencyv1.Member
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		page, err := api.ListMembers(cctx, &agencyv1.ListMembersRequest{Parent: ws, PageSize: 100, PageToken: token})
		cancel()
		if err != nil {
			return err
		}
		all = append(all, page.GetMembers()...)
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if c.out.machine() {
		return c.out.proto(&agencyv1.ListMembersResponse{Members: all})
	}
	rows := [][]string{}
	for _, m := range all {
		rows = append(rows, []string{m.GetEmail(), roleName(m.GetRole()), memberState(m), m.GetDisplayName()})
	}
	c.out.table([]string{"email", "role", "state", "name"}, rows)
	return nil
}

// roleFlag parses --role.
func roleFlag(s string) (agencyv1.MemberRole, error) {
	if s == "" {
		return 0, usageErr("--role is required: admin, editor or view")
	}
	r, msg := parseRole(s)
	if msg != "" {
		return 0, usageErr("--role: " + msg)
	}
	return r, nil
}

func checkEmail(s string) error {
	if !validEmail(s) {
		return usageErr(fmt.Sprintf("%q is not an email address", s))
	}
	return nil
}

func (c *cli) printMember(m *agencyv1.Member, ws string) error {
	if c.out.machine() {
		return c.out.proto(m)
	}
	c.out.table([]string{"workspace", "email", "role", "state"}, [][]string{{shortName(ws), m.GetEmail(), roleName(m.GetRole()), memberState(m)}})
	return nil
}

func (c *cli) membersInviteCmd() *cobra.Command {
	var sel selectorFlags
	var role, perms string
	var dryRun, lr, detach bool
	cmd := &cobra.Command{
		Use:   "invite EMAIL --role ROLE (-w NAME | -l SELECTOR | --all)",
		Short: "Invite a person (already there = nothing to do)",
		Args:  exactArgs(1, "the person's EMAIL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			email := args[0]
			if err := checkEmail(email); err != nil {
				return err
			}
			r, err := roleFlag(role)
			if err != nil {
				return err
			}
			permissions, msg := parsePermissions(perms)
			if msg != "" {
				return usageErr("--permissions: " + msg)
			}
			ws, err := sel.single()
			if err != nil {
				return err
			}
			if ws != "" && !dryRun && !lr {
				api, err := c.membersAPI()
				if err != nil {
					return err
				}
				ctx, cancel := c.call(cmd.Context())
				defer cancel()
				m, err := api.InviteMember(ctx, &agencyv1.InviteMemberRequest{Parent: ws, Email: email, Role: r, Permissions: permissions, RequestId: newRequestID()})
				if isCode(err, codes.AlreadyExists) {
					c.out.info("%s is already a member of (or invited to) %s: nothing to do", email, ws)
					return nil
				}
				if err != nil {
					return err
				}
				return c.printMember(m, ws)
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "inviting", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.InviteMemberEverywhere(ctx, &agencyv1.InviteMemberEverywhereRequest{Selector: selector, Email: email, Role: r,
					Permissions: permissions, DryRun: dryRun, LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().StringVar(&role, "role", "", "admin, editor or view")
	cmd.Flags().StringVar(&perms, "permissions", "", "fine-grained permissions, ;-separated")
	addWriteFlags(cmd, &dryRun, &lr, &detach)
	_ = cmd.RegisterFlagCompletionFunc("role", cobra.FixedCompletions([]string{"admin", "editor", "view"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func addWriteFlags(cmd *cobra.Command, dryRun, lr, detach *bool) {
	cmd.Flags().BoolVar(dryRun, "dry-run", false, "report what would happen, change nothing")
	cmd.Flags().BoolVar(lr, "long-running", false, "run as an operation and follow it with a progress bar")
	cmd.Flags().BoolVar(detach, "detach", false, "with --long-running: print the operation's name and return")
}

func memberName(ws, email string) string { return ws + "/members/" + email }

func (c *cli) membersSetRoleCmd() *cobra.Command {
	var sel selectorFlags
	var role string
	var dryRun, lr, detach bool
	cmd := &cobra.Command{
		Use:   "set-role EMAIL --role ROLE (-w NAME | -l SELECTOR | --all)",
		Short: "Change a person's role where they are a member (owner and last admin are protected)",
		Args:  exactArgs(1, "the person's EMAIL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			email := args[0]
			if err := checkEmail(email); err != nil {
				return err
			}
			r, err := roleFlag(role)
			if err != nil {
				return err
			}
			ws, err := sel.single()
			if err != nil {
				return err
			}
			if ws != "" && !dryRun && !lr {
				api, err := c.membersAPI()
				if err != nil {
					return err
				}
				ctx, cancel := c.call(cmd.Context())
				defer cancel()
				m, err := api.UpdateMemberRole(ctx, &agencyv1.UpdateMemberRoleRequest{Name: memberName(ws, email), Role: r, RequestId: newRequestID()})
				if err != nil {
					return err
				}
				return c.printMember(m, ws)
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "changing roles", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.UpdateMemberRoleEverywhere(ctx, &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: selector, Email: email, Role: r,
					DryRun: dryRun, LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().StringVar(&role, "role", "", "admin, editor or view")
	addWriteFlags(cmd, &dryRun, &lr, &detach)
	return cmd
}

func (c *cli) membersRmCmd() *cobra.Command {
	var sel selectorFlags
	var yes, dryRun, lr, detach bool
	cmd := &cobra.Command{
		Use:     "rm EMAIL (-w NAME | -l SELECTOR | --all)",
		Aliases: []string{"remove"},
		Short:   "Remove a person or withdraw an invitation (owner and last admin are protected)",
		Args:    exactArgs(1, "the person's EMAIL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			email := args[0]
			if err := checkEmail(email); err != nil {
				return err
			}
			ws, err := sel.single()
			if err != nil {
				return err
			}
			if !dryRun {
				if err := c.confirm(fmt.Sprintf("Remove %s from %s?", email, sel.describe()), yes); err != nil {
					return err
				}
			}
			if ws != "" && !dryRun && !lr {
				api, err := c.membersAPI()
				if err != nil {
					return err
				}
				ctx, cancel := c.call(cmd.Context())
				defer cancel()
				m, err := api.RemoveMember(ctx, &agencyv1.RemoveMemberRequest{Name: memberName(ws, email), RequestId: newRequestID()})
				if err != nil {
					return err
				}
				c.out.info("removed %s from %s", m.GetEmail(), ws)
				return nil
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			return c.runFanoutWrite(cmd.Context(), lr, detach, "removing", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.RemoveMemberEverywhere(ctx, &agencyv1.RemoveMemberEverywhereRequest{Selector: selector, Email: email,
					DryRun: dryRun, LongRunning: lr, RequestId: newRequestID()})
			})
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addWriteFlags(cmd, &dryRun, &lr, &detach)
	return cmd
}

// maxMatrixColumns is the widest access matrix drawn as a grid; wider ones
// are listed one membership per line.
const maxMatrixColumns = 12

func (c *cli) accessCmd() *cobra.Command {
	var sel selectorFlags
	var email string
	var long bool
	cmd := &cobra.Command{
		Use:   "access [-l SELECTOR | -w NAME | --all] [--email EMAIL]",
		Short: "Who has access where: the people × workspaces matrix",
		Long: `Show who has access where. Without a selector, every workspace in scope.
Cells are roles; "*" marks an invitation not accepted yet. With --email, one
person's memberships. More than 12 workspaces (or --long) list one
membership per line.`,
		Args: exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if !sel.set() {
				sel.all = true
			}
			selector, err := sel.proto()
			if err != nil {
				return err
			}
			if email != "" {
				if err := checkEmail(email); err != nil {
					return err
				}
			}
			api, err := c.fanoutAPI()
			if err != nil {
				return err
			}
			resp, err := c.fanoutRead(cmd.Context(), "reading access", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.ListAccess(ctx, &agencyv1.ListAccessRequest{Selector: selector, Email: email, LongRunning: lr})
			})
			if err != nil {
				return err
			}
			if resp.GetAccessMatrix() == nil {
				resp.AccessMatrix = access.Matrix(resp.GetResults())
			}
			if c.out.machine() {
				if err := c.out.proto(resp); err != nil {
					return err
				}
				return c.failedWorkspaces(resp.GetResults())
			}
			c.printAccess(resp, email != "" || long)
			return c.failedWorkspaces(resp.GetResults())
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().StringVar(&email, "email", "", "only this person")
	cmd.Flags().BoolVar(&long, "long", false, "one membership per line instead of a grid")
	return cmd
}

func roleCell(role agencyv1.MemberRole, accepted bool) string {
	s := roleName(role)
	if !accepted {
		s += "*"
	}
	return s
}

func (c *cli) printAccess(resp *agencyv1.FanoutResponse, long bool) {
	var wss []string
	for _, r := range resp.GetResults() {
		if !failedOutcome(r.GetOutcome()) {
			wss = append(wss, r.GetWorkspace())
		}
	}
	matrix := resp.GetAccessMatrix()
	if long || len(wss) > maxMatrixColumns {
		rows := [][]string{}
		for _, p := range matrix {
			for _, w := range p.GetWorkspaces() {
				rows = append(rows, []string{p.GetEmail(), shortName(w.GetWorkspace()), roleName(w.GetRole()), map[bool]string{true: "accepted", false: "invited"}[w.GetAccepted()]})
			}
		}
		c.out.table([]string{"email", "workspace", "role", "state"}, rows)
	} else {
		header := []string{"email"}
		for _, w := range wss {
			header = append(header, shortName(w))
		}
		rows := [][]string{}
		for _, p := range matrix {
			cells := map[string]string{}
			for _, w := range p.GetWorkspaces() {
				cells[w.GetWorkspace()] = roleCell(w.GetRole(), w.GetAccepted())
			}
			row := []string{p.GetEmail()}
			for _, w := range wss {
				v := cells[w]
				if v == "" {
					v = "-"
				}
				row = append(row, v)
			}
			rows = append(rows, row)
		}
		header[0] = "EMAIL"
		fmt.Fprint(c.env.Out, renderRawTable(header, rows, c.out.color))
		fmt.Fprintf(c.env.Out, "\n%s × %s (* = invitation pending)\n", plural(len(matrix), "person"), plural(len(wss), "workspace"))
	}
	c.printUnreadable(resp.GetResults())
}

func (c *cli) invitationsCmd() *cobra.Command {
	var sel selectorFlags
	cmd := &cobra.Command{
		Use:     "invitations [-l SELECTOR | -w NAME | --all]",
		Aliases: []string{"invites"},
		Short:   "Pending invitations across workspaces (default: all in scope)",
		Args:    exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if !sel.set() {
				sel.all = true
			}
			selector, api, err := c.fanoutOver(&sel)
			if err != nil {
				return err
			}
			resp, err := c.fanoutRead(cmd.Context(), "reading invitations", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
				return api.ListPendingInvitations(ctx, &agencyv1.ListPendingInvitationsRequest{Selector: selector, LongRunning: lr})
			})
			if err != nil {
				return err
			}
			if c.out.machine() {
				if err := c.out.proto(resp); err != nil {
					return err
				}
				return c.failedWorkspaces(resp.GetResults())
			}
			rows := [][]string{}
			for _, r := range resp.GetResults() {
				for _, m := range r.GetMembers().GetMembers() {
					rows = append(rows, []string{shortName(r.GetWorkspace()), m.GetEmail(), roleName(m.GetRole()), tsString(m.GetCreateTime())})
				}
			}
			c.out.table([]string{"workspace", "email", "role", "invited"}, rows)
			c.printUnreadable(resp.GetResults())
			return c.failedWorkspaces(resp.GetResults())
		}),
	}
	sel.register(cmd, c)
	return cmd
}
