package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// maxPeoplePerOperation is OnboardMembers' limit of people per request.
const maxPeoplePerOperation = 1000

// onboardNamespace is the UUIDv5 namespace of onboarding request ids.
func onboardNamespace() uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://agencyplane.dev/agencyctl/onboard"))
}

// onboardRequestID is the request_id of one onboarding operation: the
// UUIDv5 of the file's bytes, the selector and the chunk, so running the
// same command again re-attaches to the same operation (agencyd answers a
// repeated request_id with the operation it started) instead of starting
// another.
func onboardRequestID(file []byte, selectorKey string, chunk, chunks int) string {
	name := make([]byte, 0, len(file)+len(selectorKey)+32)
	name = append(name, file...)
	name = append(name, 0)
	name = append(name, selectorKey...)
	name = append(name, fmt.Sprintf("\x00%d/%d", chunk, chunks)...)
	return uuid.NewSHA1(onboardNamespace(), name).String()
}

// planPerson is one person's line of the plan.
type planPerson struct {
	Email        string `json:"email"`
	Role         string `json:"role"`
	Permissions  string `json:"permissions"`
	Invites      int    `json:"invites"`
	AlreadyThere int    `json:"alreadyThere"`
}

// onboardPlan is what onboarding will do, from the access agencyd reads now.
type onboardPlan struct {
	Selector     string       `json:"selector"`
	People       int          `json:"people"`
	Workspaces   int          `json:"workspaces"`
	Items        int          `json:"items"`
	Invites      int          `json:"invites"`
	AlreadyThere int          `json:"alreadyThere"`
	Unreadable   []string     `json:"unreadable"`
	PerPerson    []planPerson `json:"perPerson"`
	Operations   int          `json:"operations"`
}

func makePlan(people []person, results []*agencyv1.WorkspaceResult, describe string) *onboardPlan {
	p := &onboardPlan{Selector: describe, People: len(people), Workspaces: len(results), Unreadable: []string{},
		Operations: (len(people) + maxPeoplePerOperation - 1) / maxPeoplePerOperation}
	p.Items = p.People * p.Workspaces
	present := map[string]map[string]bool{} // workspace → emails
	for _, r := range results {
		if failedOutcome(r.GetOutcome()) {
			p.Unreadable = append(p.Unreadable, shortName(r.GetWorkspace())+": "+reasonText(r.GetStatus()))
			continue
		}
		set := map[string]bool{}
		for _, m := range r.GetMembers().GetMembers() {
			set[strings.ToLower(m.GetEmail())] = true
		}
		present[r.GetWorkspace()] = set
	}
	for _, pr := range people {
		pp := planPerson{Email: pr.email, Role: roleName(pr.role), Permissions: strings.Join(pr.permissions, ";")}
		for _, set := range present {
			if set[strings.ToLower(pr.email)] {
				pp.AlreadyThere++
			} else {
				pp.Invites++
			}
		}
		p.Invites += pp.Invites
		p.AlreadyThere += pp.AlreadyThere
		p.PerPerson = append(p.PerPerson, pp)
	}
	return p
}

// printPlan writes the plan for people (to w: stdout, or stderr when
// stdout carries -o json|yaml).
func (c *cli) printPlan(w io.Writer, p *onboardPlan, color bool) {
	fmt.Fprintf(w, "Plan: %s × %s (%s) = %s\n\n", plural(p.People, "person"), plural(p.Workspaces, "workspace"), p.Selector, plural(p.Items, "item"))
	rows := [][]string{}
	for _, pp := range p.PerPerson {
		rows = append(rows, []string{pp.Email, pp.Role, pp.Permissions, fmt.Sprint(pp.Invites), fmt.Sprint(pp.AlreadyThere)})
	}
	fmt.Fprint(w, renderTable([]string{"email", "role", "permissions", "invite", "already there"}, rows, color))
	fmt.Fprintf(w, "\n%d to invite, %d already there", p.Invites, p.AlreadyThere)
	if len(p.Unreadable) > 0 {
		fmt.Fprintf(w, ", %s unreadable (their items will likely fail):", plural(len(p.Unreadable), "workspace"))
		for _, u := range p.Unreadable {
			fmt.Fprintf(w, "\n  %s", u)
		}
	}
	fmt.Fprintln(w)
	if p.Operations > 1 {
		fmt.Fprintf(w, "More than %d people: %d operations of up to %d people each.\n", maxPeoplePerOperation, p.Operations, maxPeoplePerOperation)
	}
}

func (c *cli) onboardCmd() *cobra.Command {
	var sel selectorFlags
	var file string
	var yes, dryRun, detach bool
	cmd := &cobra.Command{
		Use:   "onboard --csv people.csv (-l SELECTOR | --all | -w NAME...)",
		Short: "Invite people from a CSV into every selected workspace, with a plan, a progress bar and a report",
		Long: `Onboard the people of a CSV file (columns email, role, permissions; role is
admin, editor or view in any case; permissions ;-separated, may be empty)
into every selected workspace.

The whole file is checked first: bad rows are reported with their line
numbers and nothing is sent (exit 2). Then agencyctl shows the plan (people ×
workspaces, how many invitations, how many already there), asks for
confirmation (or --yes; --dry-run stops after the plan), starts the
operation and follows it with a progress bar. Ctrl-C detaches; the work goes
on and 'agencyctl ops watch' re-attaches. Running the same command with the
same file and selector again re-attaches to the same operation (its
request_id is the UUIDv5 of the file and the selector). More than 1,000
people run as one operation per 1,000 rows.`,
		Args: exactArgs(0, "no arguments (use --csv FILE)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return usageErr("--csv FILE is required")
			}
			if err := sel.check(); err != nil {
				return err
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return usageErr("--csv: " + pathErr(err))
			}
			people, problems := parsePeopleCSV(data)
			if len(problems) > 0 {
				return csvErr(file, problems)
			}
			selector, err := sel.proto()
			if err != nil {
				return err
			}
			return c.onboard(cmd.Context(), data, people, &sel, selector, yes, dryRun, detach)
		}),
	}
	cmd.Flags().StringVar(&file, "csv", "", "CSV file: email, role, permissions")
	sel.register(cmd, c)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the plan and stop")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the operations, print their names and return")
	return cmd
}

func (c *cli) onboard(ctx context.Context, data []byte, people []person, sel *selectorFlags, selector *agencyv1.WorkspaceSelector, yes, dryRun, detach bool) error {
	api, err := c.fanoutAPI()
	if err != nil {
		return err
	}
	access, err := c.fanoutRead(ctx, "reading access", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
		return api.ListAccess(ctx, &agencyv1.ListAccessRequest{Selector: selector, LongRunning: lr})
	})
	if err != nil {
		return err
	}
	plan := makePlan(people, access.GetResults(), sel.describe())
	if dryRun && c.out.machine() {
		return c.out.doc(map[string]any{"plan": plan})
	}
	planOut, color := c.env.Out, c.out.color
	if c.out.machine() {
		planOut, color = c.env.Err, false
	}
	c.printPlan(planOut, plan, color)
	if plan.Workspaces == 0 {
		return failedErr("no workspace matches " + sel.describe())
	}
	if dryRun {
		fmt.Fprintln(planOut, "Dry run: nothing was sent.")
		return nil
	}
	if err := c.confirm(fmt.Sprintf("Onboard %s into %s (%d invitations)?", plural(plan.People, "person"), plural(plan.Workspaces, "workspace"), plan.Invites), yes); err != nil {
		return err
	}
	fmt.Fprintln(planOut)
	chunks := plan.Operations
	var ops []*longrunningpb.Operation
	sent := time.Now()
	for i := range chunks {
		part := people[i*maxPeoplePerOperation : min(len(people), (i+1)*maxPeoplePerOperation)]
		req := &agencyv1.OnboardMembersRequest{Selector: selector, RequestId: onboardRequestID(data, sel.key(), i, chunks)}
		for _, p := range part {
			req.People = append(req.People, &agencyv1.Person{Email: p.email, Role: p.role, Permissions: p.permissions})
		}
		cctx, cancel := c.call(ctx)
		op, err := api.OnboardMembers(cctx, req)
		cancel()
		if err != nil {
			if len(ops) > 0 {
				c.out.info("started before the error: agencyctl ops watch %s", names(ops))
			}
			return err
		}
		// agencyd answers a request_id it has seen with the operation it
		// started then: say so, the report is that operation's.
		if ct := opMetadata(op).GetCreateTime(); op.GetDone() || (ct != nil && ct.AsTime().Before(sent.Add(-2*time.Second))) {
			c.out.info("re-attached to %s, started %s with the same file and selector", op.GetName(), tsString(ct))
		}
		ops = append(ops, op)
	}
	return c.followAndReport(ctx, ops, "onboarding", detach)
}

// offboardTarget is one workspace where the person is a member.
type offboardTarget struct {
	workspace string
	member    *agencyv1.Member
	refused   string // "" = will be removed
}

// offboardTargets applies the owner/last-admin rule agencyd enforces to
// the members read now, so the preview says where the person stays.
func offboardTargets(email string, results []*agencyv1.WorkspaceResult) []offboardTarget {
	var out []offboardTarget
	for _, r := range results {
		all := r.GetMembers().GetMembers()
		var target *agencyv1.Member
		for _, m := range all {
			if strings.EqualFold(m.GetEmail(), email) {
				target = m
			}
		}
		if target == nil {
			continue
		}
		t := offboardTarget{workspace: r.GetWorkspace(), member: target}
		switch {
		case target.GetRole() == agencyv1.MemberRole_MEMBER_ROLE_OWNER:
			t.refused = "owner: transfer ownership first"
		case target.GetRole() == agencyv1.MemberRole_MEMBER_ROLE_ADMIN && target.GetAccepted() && !otherAcceptedAdmin(all, target):
			t.refused = "last admin: make someone else admin first"
		}
		out = append(out, t)
	}
	return out
}

func otherAcceptedAdmin(all []*agencyv1.Member, m *agencyv1.Member) bool {
	for _, o := range all {
		if !strings.EqualFold(o.GetEmail(), m.GetEmail()) && o.GetRole() == agencyv1.MemberRole_MEMBER_ROLE_ADMIN && o.GetAccepted() {
			return true
		}
	}
	return false
}

func (c *cli) offboardCmd() *cobra.Command {
	var sel selectorFlags
	var yes, dryRun, detach bool
	cmd := &cobra.Command{
		Use:   "offboard EMAIL (-l SELECTOR | --all | -w NAME...)",
		Short: "Remove a person from every selected workspace, after a preview",
		Long: `Remove a person (or withdraw their invitation) everywhere in the selection.
The preview lists every workspace where they are a member; where they own
the workspace or are its last accepted admin they are kept (agencyd refuses
that too) and the command exits 1. Asks for confirmation like onboard.`,
		Args: exactArgs(1, "the person's EMAIL"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			email := args[0]
			if err := checkEmail(email); err != nil {
				return err
			}
			selector, err := sel.proto()
			if err != nil {
				return err
			}
			return c.offboard(cmd.Context(), email, &sel, selector, yes, dryRun, detach)
		}),
	}
	sel.register(cmd, c)
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show the preview and stop")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the removal, print the operation's name and return")
	return cmd
}

func (c *cli) offboard(ctx context.Context, email string, sel *selectorFlags, selector *agencyv1.WorkspaceSelector, yes, dryRun, detach bool) error {
	api, err := c.fanoutAPI()
	if err != nil {
		return err
	}
	access, err := c.fanoutRead(ctx, "reading access", func(ctx context.Context, lr bool) (*agencyv1.FanoutResponse, error) {
		return api.ListAccess(ctx, &agencyv1.ListAccessRequest{Selector: selector, LongRunning: lr})
	})
	if err != nil {
		return err
	}
	targets := offboardTargets(email, access.GetResults())
	var remove []string
	refused := 0
	rows := [][]string{}
	for _, t := range targets {
		action := "remove"
		if t.refused != "" {
			action = c.out.red("keep (" + t.refused + ")")
			refused++
		} else {
			remove = append(remove, t.workspace)
		}
		rows = append(rows, []string{shortName(t.workspace), roleName(t.member.GetRole()), memberState(t.member), action})
	}
	out, color := c.env.Out, c.out.color
	if c.out.machine() {
		out, color = c.env.Err, false
	}
	fmt.Fprintf(out, "%s is a member of %s of %s (%s):\n\n", email, plural(len(targets), "workspace"), plural(len(access.GetResults()), "workspace"), sel.describe())
	fmt.Fprint(out, renderTable([]string{"workspace", "role", "state", "action"}, rows, color))
	unreadable := 0
	for _, r := range access.GetResults() {
		if failedOutcome(r.GetOutcome()) {
			unreadable++
			fmt.Fprintf(out, "could not read %s: %s\n", shortName(r.GetWorkspace()), reasonText(r.GetStatus()))
		}
	}
	fmt.Fprintln(out)
	kept := func(err error) error {
		if err != nil {
			return err
		}
		switch {
		case refused > 0:
			return failedErr(fmt.Sprintf("%s kept %s: owner or last admin there", email, plural(refused, "workspace")))
		case unreadable > 0:
			return failedErr(fmt.Sprintf("%s could not be read", plural(unreadable, "workspace")))
		}
		return nil
	}
	if len(remove) == 0 {
		fmt.Fprintln(out, "Nothing to remove.")
		return kept(nil)
	}
	if dryRun {
		fmt.Fprintf(out, "Dry run: would remove %s from %s; nothing was sent.\n", email, plural(len(remove), "workspace"))
		return nil
	}
	if err := c.confirm(fmt.Sprintf("Remove %s from %s?", email, plural(len(remove), "workspace")), yes); err != nil {
		return err
	}
	var ops []*longrunningpb.Operation
	for i := 0; i < len(remove); i += 1000 {
		part := remove[i:min(len(remove), i+1000)]
		cctx, cancel := c.call(ctx)
		resp, err := api.RemoveMemberEverywhere(cctx, &agencyv1.RemoveMemberEverywhereRequest{
			Selector: &agencyv1.WorkspaceSelector{Names: part}, Email: email, LongRunning: true, RequestId: newRequestID()})
		cancel()
		if err != nil {
			if len(ops) > 0 {
				c.out.info("started before the error: agencyctl ops watch %s", names(ops))
			}
			return err
		}
		ops = append(ops, resp.GetOperation())
	}
	return kept(c.followAndReport(ctx, ops, "offboarding", detach))
}
