package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/spf13/cobra"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/desiredstate"
)

// exitChanges is `agencyctl plan`'s exit code when the plan has changes
// (terraform plan -detailed-exitcode's 2, which is our usage error).
const exitChanges = 3

func (c *cli) desiredStateAPI() (agencyv1.DesiredStateServiceClient, error) {
	conn, err := c.client()
	if err != nil {
		return nil, err
	}
	return agencyv1.NewDesiredStateServiceClient(conn), nil
}

// readDesiredState reads the file (- is stdin) and validates it locally
// with the parser agencyd uses: every problem with its line, exit 2,
// nothing sent.
func (c *cli) readDesiredState(file string) ([]byte, error) {
	if file == "" {
		return nil, usageErr("-f FILE is required (the desired state, e.g. agency.yaml; - reads stdin)")
	}
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(c.env.In)
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, usageErr("-f: " + pathErr(err))
	}
	if _, err := desiredstate.Parse(data); err != nil {
		var pe *desiredstate.ParseError
		if !errors.As(err, &pe) {
			return nil, usageErr(file + ": " + err.Error())
		}
		var b strings.Builder
		fmt.Fprintf(&b, "%s: %d problem(s), nothing was sent:", file, len(pe.Problems))
		for _, p := range pe.Problems {
			fmt.Fprintf(&b, "\n  %s", p)
		}
		return nil, usageErr(b.String())
	}
	return data, nil
}

// createPlan asks agencyd for the plan of data and pages through its
// workspaces with changes (or that could not be read), in name order. With
// longRunning the workspaces are read by an operation, followed with the
// progress display until the plan is complete.
func (c *cli) createPlan(ctx context.Context, data []byte, longRunning bool) (*agencyv1.Plan, error) {
	api, err := c.desiredStateAPI()
	if err != nil {
		return nil, err
	}
	cctx, cancel := c.call(ctx)
	plan, err := api.CreatePlan(cctx, &agencyv1.CreatePlanRequest{DesiredState: string(data), View: agencyv1.PlanView_PLAN_VIEW_BASIC,
		LongRunning: longRunning})
	cancel()
	if err != nil {
		return nil, err
	}
	if longRunning {
		done, err := c.follow(ctx, []string{plan.GetCreateOperation().GetName()}, "reading")
		if err != nil {
			return nil, err
		}
		if e := done[0].GetError(); e != nil {
			return nil, failedErr(fmt.Sprintf("%s: %s", done[0].GetName(), e.GetMessage()))
		}
		cctx, cancel := c.call(ctx)
		plan, err = api.GetPlan(cctx, &agencyv1.GetPlanRequest{Name: plan.GetName(), View: agencyv1.PlanView_PLAN_VIEW_BASIC})
		cancel()
		if err != nil {
			return nil, err
		}
	}
	plan.Workspaces = nil
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		page, err := api.ListPlanWorkspaces(cctx, &agencyv1.ListPlanWorkspacesRequest{Parent: plan.GetName(), PageSize: 1000, PageToken: token, ChangedOnly: true})
		cancel()
		if err != nil {
			return nil, err
		}
		plan.Workspaces = append(plan.Workspaces, page.GetWorkspaces()...)
		if token = page.GetNextPageToken(); token == "" {
			return plan, nil
		}
	}
}

// planChanges is how many changes a plan makes.
func planChanges(p *agencyv1.Plan) int {
	s := p.GetSummary()
	return int(s.GetInvites() + s.GetRoleChanges() + s.GetRemovals() + s.GetTagCreations())
}

// changeLine is one change as a diff line: "+ invite …", "~ role …",
// "- remove …", "+ tag …", coloured when color is on.
func (c *cli) changeLine(ch *agencyv1.Change, color bool) string {
	paint := func(s string, f func(string) string) string {
		if color {
			return f(s)
		}
		return s
	}
	pending := ""
	if ch.GetPending() {
		pending = ", invitation pending"
	}
	var s string
	switch ch.GetKind() {
	case agencyv1.ChangeKind_CHANGE_KIND_INVITE:
		s = paint(fmt.Sprintf("+ invite %s as %s", ch.GetEmail(), roleName(ch.GetRole())), c.out.green)
	case agencyv1.ChangeKind_CHANGE_KIND_TAG:
		s = paint(fmt.Sprintf("+ tag %q", ch.GetLabel()), c.out.green)
	case agencyv1.ChangeKind_CHANGE_KIND_ROLE:
		s = paint(fmt.Sprintf("~ role %s: %s → %s", ch.GetEmail(), roleName(ch.GetCurrentRole()), roleName(ch.GetRole())), c.out.yellow)
		if pending != "" {
			s += " (invitation pending)"
		}
	case agencyv1.ChangeKind_CHANGE_KIND_REMOVE:
		s = paint(fmt.Sprintf("- remove %s", ch.GetEmail()), c.out.red) + " (" + roleName(ch.GetCurrentRole()) + pending + ")"
	default:
		s = "? " + ch.GetKind().String()
	}
	if ch.GetLine() > 0 {
		s += fmt.Sprintf("   # line %d", ch.GetLine())
	}
	return s
}

// printPlanDiff writes the plan for people: a diff per workspace with
// changes, the workspaces that could not be read, the limits it exceeds
// and a summary line.
func (c *cli) printPlanDiff(w io.Writer, p *agencyv1.Plan, color bool) {
	bold := func(s string) string {
		if color {
			return "\033[1m" + s + "\033[0m"
		}
		return s
	}
	for _, ws := range p.GetWorkspaces() {
		if st := ws.GetStatus(); st != nil && st.GetCode() != 0 {
			line := fmt.Sprintf("! %s: could not be read: %s", shortName(ws.GetWorkspace()), reasonText(st))
			if color {
				line = c.out.red(line)
			}
			fmt.Fprintln(w, line)
			fmt.Fprintln(w)
			continue
		}
		if len(ws.GetChanges()) == 0 {
			continue
		}
		fmt.Fprintln(w, bold(shortName(ws.GetWorkspace())))
		for _, ch := range ws.GetChanges() {
			fmt.Fprintf(w, "  %s\n", c.changeLine(ch, color))
		}
		fmt.Fprintln(w)
	}
	const maxViolations = 5
	for i, v := range p.GetLimitViolations() {
		line := "over the limits, apply will refuse it: " + v
		if i == maxViolations {
			line = fmt.Sprintf("… and %d more over the limits ('-o json' lists them all)", len(p.GetLimitViolations())-maxViolations)
		}
		if color {
			line = c.out.red(line)
		}
		fmt.Fprintln(w, line)
		if i == maxViolations {
			break
		}
	}
	s := p.GetSummary()
	if planChanges(p) == 0 {
		fmt.Fprintf(w, "No changes: %s match the file", plural(int(s.GetWorkspaces()), "workspace"))
	} else {
		fmt.Fprintf(w, "Plan: %s in %d of %s", changeCounts(s.GetInvites(), s.GetRoleChanges(), s.GetRemovals(), s.GetTagCreations()),
			s.GetChangedWorkspaces(), plural(int(s.GetWorkspaces()), "workspace"))
	}
	if s.GetKept() > 0 {
		fmt.Fprintf(w, "; %d kept (owner, unmanaged, last admin or pending invitation)", s.GetKept())
	}
	if s.GetFailedWorkspaces() > 0 {
		fmt.Fprintf(w, "; %s could not be read", plural(int(s.GetFailedWorkspaces()), "workspace"))
	}
	fmt.Fprintln(w, ".")
}

// changeCounts is "2 to invite, 1 role change, 3 tags to create", without
// the kinds that are zero.
func changeCounts(invites, roles, removals, tags int32) string {
	var parts []string
	if invites > 0 {
		parts = append(parts, fmt.Sprintf("%d to invite", invites))
	}
	if roles > 0 {
		parts = append(parts, fmt.Sprintf("%d role %s", roles, pluralWord(int(roles), "change")))
	}
	if removals > 0 {
		parts = append(parts, fmt.Sprintf("%d to remove", removals))
	}
	if tags > 0 {
		parts = append(parts, fmt.Sprintf("%d %s to create", tags, pluralWord(int(tags), "tag")))
	}
	return strings.Join(parts, ", ")
}

// pluralWord is word, or word+"s" unless n is 1.
func pluralWord(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// planDoc is `plan -o json|yaml`: the Plan (its workspaces: those with
// changes or that could not be read) and whether it has changes.
func (c *cli) planDoc(p *agencyv1.Plan) error {
	raw, err := protoRaw(p)
	if err != nil {
		return err
	}
	return c.out.doc(map[string]any{"plan": raw, "changes": planChanges(p)})
}

func (c *cli) planCmd() *cobra.Command {
	var file string
	var longRunning bool
	cmd := &cobra.Command{
		Use:   "plan -f agency.yaml",
		Short: "Show what applying a desired-state file would change (writes nothing)",
		Long: `Check the desired-state file locally (every problem with its line; exit 2,
nothing sent), then ask agencyd for the plan (CreatePlan, which reads the
selected workspaces and writes nothing) and print a diff per workspace:
'+ invite', '~ role', '- remove', '+ tag', and a summary line.

Exit codes: 0 no changes, 3 changes, 1 failure (agencyd unreachable or a
workspace could not be read), 2 usage or file errors. -o json prints
{"plan": Plan, "changes": n} for CI.

--long-running reads the workspaces as a durable operation (for large
agencies), followed with the progress bar; the plan is printed once every
workspace was read.`,
		Args: exactArgs(0, "no arguments (use -f FILE)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			data, err := c.readDesiredState(file)
			if err != nil {
				return err
			}
			plan, err := c.createPlan(cmd.Context(), data, longRunning)
			if err != nil {
				return err
			}
			if c.out.machine() {
				if err := c.planDoc(plan); err != nil {
					return err
				}
			} else {
				c.printPlanDiff(c.env.Out, plan, c.out.color)
			}
			return planExit(plan)
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the desired-state file (YAML, version 1; - reads stdin)")
	cmd.Flags().BoolVar(&longRunning, "long-running", false, "read the workspaces as an operation, followed with the progress bar (large agencies)")
	return cmd
}

// planExit is plan's exit: 1 when a workspace could not be read, 3 with
// changes, else 0.
func planExit(p *agencyv1.Plan) error {
	if n := p.GetSummary().GetFailedWorkspaces(); n > 0 {
		return failedErr(fmt.Sprintf("%s could not be read", plural(int(n), "workspace")))
	}
	if planChanges(p) > 0 {
		return &exitError{code: exitChanges}
	}
	return nil
}

func (c *cli) applyCmd() *cobra.Command {
	var file string
	var yes, replan, detach, longRunning bool
	cmd := &cobra.Command{
		Use:   "apply -f agency.yaml",
		Short: "Plan a desired-state file, confirm, apply it as an operation and follow it",
		Long: `Check the file locally (exit 2 on any problem, nothing sent), make the plan
and show it like 'agencyctl plan', ask for confirmation (or --yes; without
a terminal --yes is required), then apply it (ApplyPlan, as an operation)
and follow it with the progress bar and the report per workspace.

A workspace that changed since the plan is skipped (FAILED_PRECONDITION in
its result, exit 1) unless --replan, which plans it again and applies the
new difference. A plan over the file's removal limits is refused before
anything is written. Ctrl-C detaches; 'agencyctl ops watch' re-attaches.`,
		Args: exactArgs(0, "no arguments (use -f FILE)"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			data, err := c.readDesiredState(file)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			plan, err := c.createPlan(ctx, data, longRunning)
			if err != nil {
				return err
			}
			out, color := c.env.Out, c.out.color
			if c.out.machine() {
				out, color = c.env.Err, false
			}
			c.printPlanDiff(out, plan, color)
			if planChanges(plan) == 0 && !replan {
				fmt.Fprintln(out, "Nothing to apply.")
				if c.out.machine() {
					return c.out.doc(map[string]json.RawMessage{"operations": json.RawMessage("[]")})
				}
				return planExit(plan)
			}
			if v := plan.GetLimitViolations(); len(v) > 0 {
				return failedErr("the plan exceeds the file's removal limits; nothing was applied")
			}
			if err := c.confirm(fmt.Sprintf("Apply %s in %s?", plural(planChanges(plan), "change"), plural(int(plan.GetSummary().GetChangedWorkspaces()), "workspace")), yes); err != nil {
				return err
			}
			fmt.Fprintln(out)
			api, err := c.desiredStateAPI()
			if err != nil {
				return err
			}
			cctx, cancel := c.call(ctx)
			op, err := api.ApplyPlan(cctx, &agencyv1.ApplyPlanRequest{Name: plan.GetName(), Replan: replan, RequestId: newRequestID()})
			cancel()
			if err != nil {
				return err
			}
			return c.followAndReport(ctx, []*longrunningpb.Operation{op}, "applying", detach)
		}),
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the desired-state file (YAML, version 1; - reads stdin)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&replan, "replan", false, "plan again a workspace that changed since the plan instead of skipping it")
	cmd.Flags().BoolVar(&detach, "detach", false, "start the apply, print the operation's name and return")
	cmd.Flags().BoolVar(&longRunning, "long-running", false, "plan as an operation, followed with the progress bar (large agencies)")
	return cmd
}

func (c *cli) driftCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "drift",
		Short: "Show where the workspaces differ from the last applied desired state",
		Long: `Show the findings of agencyd's last reconcile (GetDrift; agencyd runs one
every --reconcile-interval): each difference with its workspace, the change
a plan would make to undo it and when it was first seen, and the workspaces
that could not be read. -o json prints the Drift message with every page.`,
		Args: exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			api, err := c.desiredStateAPI()
			if err != nil {
				return err
			}
			var drift *agencyv1.Drift
			token := ""
			for {
				cctx, cancel := c.call(cmd.Context())
				page, err := api.GetDrift(cctx, &agencyv1.GetDriftRequest{PageSize: 1000, PageToken: token})
				cancel()
				if err != nil {
					return err
				}
				if drift == nil {
					drift = page
				} else {
					drift.Items = append(drift.Items, page.GetItems()...)
				}
				if token = page.GetNextPageToken(); token == "" {
					break
				}
			}
			drift.NextPageToken = ""
			if c.out.machine() {
				return c.out.proto(drift)
			}
			c.printDrift(drift)
			return nil
		}),
	}
}

func (c *cli) printDrift(d *agencyv1.Drift) {
	if !d.GetEnabled() {
		fmt.Fprintln(c.env.Out, "Drift detection is off: start agencyd with --reconcile-interval.")
		return
	}
	plan := d.GetPlan()
	if plan == "" {
		plan = "none yet (apply a file first)"
	}
	c.out.fields([][2]string{
		{"Interval", d.GetInterval().AsDuration().String()},
		{"Applied plan", plan},
		{"Applied", tsString(d.GetApplyTime())},
		{"Last check", tsString(d.GetCheckTime())},
	})
	fmt.Fprintln(c.env.Out)
	if len(d.GetItems()) > 0 {
		rows := [][]string{}
		for _, it := range d.GetItems() {
			rows = append(rows, []string{shortName(it.GetWorkspace()), c.changeLine(it.GetChange(), false), tsString(it.GetFirstSeenTime())})
		}
		c.out.table([]string{"workspace", "change to undo it", "first seen"}, rows)
		fmt.Fprintln(c.env.Out)
	}
	for _, e := range d.GetErrors() {
		fmt.Fprintln(c.env.Out, c.out.red(fmt.Sprintf("could not read %s: %s", shortName(e.GetWorkspace()), reasonText(e.GetStatus()))))
	}
	s := d.GetSummary()
	n := s.GetInvites() + s.GetRoleChanges() + s.GetRemovals() + s.GetTagCreations()
	if n == 0 {
		fmt.Fprintln(c.env.Out, "No drift.")
		return
	}
	fmt.Fprintf(c.env.Out, "Drift: %s ('agencyctl apply' undoes it).\n", changeCounts(s.GetInvites(), s.GetRoleChanges(), s.GetRemovals(), s.GetTagCreations()))
}

// desiredStateDetail sums up an apply's workspace result.
func desiredStateDetail(p *agencyv1.WorkspacePlan) string {
	counts := map[agencyv1.ChangeState]int{}
	var failed []string
	for _, ch := range p.GetChanges() {
		counts[ch.GetState()]++
		if ch.GetState() == agencyv1.ChangeState_CHANGE_STATE_FAILED {
			what := ch.GetEmail()
			if what == "" {
				what = ch.GetLabel()
			}
			failed = append(failed, what+": "+reasonText(ch.GetStatus()))
		}
	}
	var parts []string
	for _, s := range []struct {
		state agencyv1.ChangeState
		word  string
	}{
		{agencyv1.ChangeState_CHANGE_STATE_APPLIED, "applied"},
		{agencyv1.ChangeState_CHANGE_STATE_ALREADY_DONE, "already done"},
		{agencyv1.ChangeState_CHANGE_STATE_FAILED, "failed"},
		{agencyv1.ChangeState_CHANGE_STATE_NOT_ATTEMPTED, "not attempted"},
		{agencyv1.ChangeState_CHANGE_STATE_PLANNED, "planned"},
	} {
		if n := counts[s.state]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s.word))
		}
	}
	if len(parts) == 0 {
		return "no changes"
	}
	out := "changes: " + strings.Join(parts, ", ")
	if len(failed) > 0 {
		out += " (" + strings.Join(failed, "; ") + ")"
	}
	return out
}
