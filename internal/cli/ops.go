package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"github.com/spf13/cobra"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

func opName(s string) string {
	if strings.HasPrefix(s, "operations/") {
		return s
	}
	return "operations/" + s
}

func opMetadata(op *longrunningpb.Operation) *agencyv1.OperationMetadata {
	md := &agencyv1.OperationMetadata{}
	if op.GetMetadata() != nil {
		_ = op.GetMetadata().UnmarshalTo(md)
	}
	return md
}

func opResponse(op *longrunningpb.Operation) *agencyv1.OperationResponse {
	resp := &agencyv1.OperationResponse{}
	if op.GetResponse() != nil {
		_ = op.GetResponse().UnmarshalTo(resp)
	}
	return resp
}

func opState(op *longrunningpb.Operation) string {
	switch {
	case !op.GetDone():
		if opMetadata(op).GetCancelRequested() {
			return "cancelling"
		}
		return "running"
	case op.GetError() != nil:
		if op.GetError().GetCode() == 1 { // CANCELLED
			return "cancelled"
		}
		return "failed"
	}
	return "done"
}

// shortMethod is "OnboardMembers" for "agency.v1.FanoutService/OnboardMembers".
func shortMethod(m string) string {
	if i := strings.LastIndex(m, "/"); i >= 0 {
		return m[i+1:]
	}
	return m
}

func (c *cli) opsAPI() (longrunningpb.OperationsClient, agencyv1.OperationServiceClient, error) {
	conn, err := c.client()
	if err != nil {
		return nil, nil, err
	}
	return longrunningpb.NewOperationsClient(conn), agencyv1.NewOperationServiceClient(conn), nil
}

// detached is the exit of Ctrl-C while following: the operations go on.
func detached(names []string) error {
	return &exitError{code: exitInterrupted, msg: "detached; the operation goes on. Re-attach with:\n  agencyctl ops watch " + strings.Join(names, " ")}
}

// follow polls the operations until they all end, with a live progress bar
// when a person watches. Ctrl-C (ctx cancelled) detaches; it never cancels.
func (c *cli) follow(ctx context.Context, names []string, label string) ([]*longrunningpb.Operation, error) {
	lro, _, err := c.opsAPI()
	if err != nil {
		return nil, err
	}
	ops := make([]*longrunningpb.Operation, len(names))
	var bar *progress
	started := false
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		var total, done, failed int64
		all := true
		for i, n := range names {
			if ops[i] == nil || !ops[i].GetDone() {
				cctx, cancel := c.call(ctx)
				op, err := lro.GetOperation(cctx, &longrunningpb.GetOperationRequest{Name: n})
				cancel()
				if err != nil {
					if ctx.Err() != nil {
						bar.finish(false)
						return nil, detached(names)
					}
					bar.finish(false)
					return nil, err
				}
				ops[i] = op
			}
			md := opMetadata(ops[i])
			total += md.GetTotalItems()
			done += md.GetDoneItems() + md.GetFailedItems()
			failed += md.GetFailedItems()
			all = all && ops[i].GetDone()
		}
		if !started {
			started = true
			if !all {
				c.out.info("following %s (%s; Ctrl-C detaches, the work goes on)", strings.Join(names, ", "), plural(int(total), "item"))
			}
			bar = c.newProgress(total, label)
		}
		bar.update(total, done, failed)
		if all {
			bar.finish(true)
			return ops, nil
		}
		select {
		case <-ctx.Done():
			bar.finish(false)
			return nil, detached(names)
		case <-ticker.C:
		}
	}
}

// operationResults pages through every item's result of an operation.
func (c *cli) operationResults(ctx context.Context, name string) ([]*agencyv1.WorkspaceResult, error) {
	_, api, err := c.opsAPI()
	if err != nil {
		return nil, err
	}
	var out []*agencyv1.WorkspaceResult
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		page, err := api.ListOperationResults(cctx, &agencyv1.ListOperationResultsRequest{Name: name, PageSize: 1000, PageToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, r := range page.GetResults() {
			out = append(out, r.GetResult())
		}
		if token = page.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// opReport prints the final report of finished operations: every item's
// result (JSON) or one row per workspace, failures first (tables). Exit 1
// when any item failed or an operation was cancelled.
func (c *cli) opReport(ctx context.Context, ops []*longrunningpb.Operation) error {
	var results []*agencyv1.WorkspaceResult
	var opErrs []string
	byPeople := false
	dryRun := false
	for _, op := range ops {
		rs, err := c.operationResults(ctx, op.GetName())
		if err != nil {
			return err
		}
		results = append(results, rs...)
		if e := op.GetError(); e != nil {
			opErrs = append(opErrs, op.GetName()+": "+statusText(e))
		}
		md := opMetadata(op)
		byPeople = byPeople || shortMethod(md.GetMethod()) == "OnboardMembers"
		dryRun = dryRun || md.GetDryRun()
	}
	sum := summarize(results)
	if c.out.machine() {
		opsRaw, err := protoList(ops)
		if err != nil {
			return err
		}
		resRaw, err := protoList(results)
		if err != nil {
			return err
		}
		sumRaw, err := protoRaw(sum)
		if err != nil {
			return err
		}
		if err := c.out.doc(map[string]json.RawMessage{"operations": opsRaw, "summary": sumRaw, "results": resRaw}); err != nil {
			return err
		}
	} else {
		if byPeople {
			c.printItemsByWorkspace(results)
		} else {
			rows := [][]string{}
			for _, r := range failuresFirst(results) {
				rows = append(rows, []string{shortName(r.GetWorkspace()), c.outcomeCell(r.GetOutcome()), c.detail(r)})
			}
			c.out.table([]string{"workspace", "outcome", "detail"}, rows)
		}
		line := summaryLine(sum, "item")
		if dryRun {
			line += " (dry run: nothing was changed)"
		}
		fmt.Fprintf(c.env.Out, "\n%s\n", line)
		for _, e := range opErrs {
			fmt.Fprintln(c.env.Out, c.out.red(e))
		}
	}
	if n := notDone(sum); n > 0 {
		return failedErr(fmt.Sprintf("%s of %d failed (agencyctl ops retry %s retries them)", plural(n, "item"), sum.GetTotal(), names(ops)))
	}
	if len(opErrs) > 0 {
		return failedErr(strings.Join(opErrs, "; "))
	}
	return nil
}

func names(ops []*longrunningpb.Operation) string {
	out := make([]string, len(ops))
	for i, op := range ops {
		out[i] = op.GetName()
	}
	return strings.Join(out, " ")
}

// followAndReport is what every command that starts operations ends with.
func (c *cli) followAndReport(ctx context.Context, ops []*longrunningpb.Operation, label string, detach bool) error {
	ns := make([]string, len(ops))
	for i, op := range ops {
		ns[i] = op.GetName()
	}
	if detach {
		if c.out.machine() {
			raw, err := protoList(ops)
			if err != nil {
				return err
			}
			return c.out.doc(map[string]json.RawMessage{"operations": raw})
		}
		for _, n := range ns {
			fmt.Fprintln(c.env.Out, n)
		}
		c.out.info("started; follow with: agencyctl ops watch %s", strings.Join(ns, " "))
		return nil
	}
	done, err := c.follow(ctx, ns, label)
	if err != nil {
		return err
	}
	return c.opReport(ctx, done)
}

func (c *cli) opsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ops",
		Aliases: []string{"operations", "op"},
		Short:   "Long-running operations: list, get, watch, cancel, retry",
	}
	cmd.AddCommand(c.opsListCmd(), c.opsGetCmd(), c.opsWatchCmd(), c.opsCancelCmd(), c.opsRetryCmd())
	return cmd
}

func (c *cli) opsListCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List your operations, newest first",
		Args:    exactArgs(0, "no arguments"),
		RunE: c.action(func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return usageErr("--limit must not be negative")
			}
			lro, _, err := c.opsAPI()
			if err != nil {
				return err
			}
			var list []*longrunningpb.Operation
			token := ""
			for {
				size := 1000
				if limit > 0 {
					size = min(1000, limit-len(list))
				}
				ctx, cancel := c.call(cmd.Context())
				page, err := lro.ListOperations(ctx, &longrunningpb.ListOperationsRequest{Name: "operations", PageSize: int32(size), PageToken: token})
				cancel()
				if err != nil {
					return err
				}
				list = append(list, page.GetOperations()...)
				token = page.GetNextPageToken()
				if token == "" || (limit > 0 && len(list) >= limit) {
					break
				}
			}
			if c.out.machine() {
				return c.out.proto(&longrunningpb.ListOperationsResponse{Operations: list})
			}
			rows := [][]string{}
			for _, op := range list {
				md := opMetadata(op)
				rows = append(rows, []string{op.GetName(), shortMethod(md.GetMethod()), opState(op),
					fmt.Sprintf("%d/%d", md.GetDoneItems()+md.GetFailedItems(), md.GetTotalItems()),
					fmt.Sprint(md.GetFailedItems()), tsString(md.GetCreateTime())})
			}
			c.out.table([]string{"name", "method", "state", "items", "failed", "created"}, rows)
			return nil
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many (0: all)")
	return cmd
}

func outcomesString(list []*agencyv1.OutcomeCount) string {
	var parts []string
	for _, o := range list {
		parts = append(parts, fmt.Sprintf("%d %s", o.GetCount(), outcomeName(o.GetOutcome())))
	}
	return strings.Join(parts, ", ")
}

func (c *cli) opsGetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show an operation's state and progress",
		Args:  exactArgs(1, "an operation NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			lro, _, err := c.opsAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			op, err := lro.GetOperation(ctx, &longrunningpb.GetOperationRequest{Name: opName(args[0])})
			if err != nil {
				return err
			}
			if c.out.machine() {
				return c.out.proto(op)
			}
			md := opMetadata(op)
			fields := [][2]string{
				{"Name", op.GetName()},
				{"Method", md.GetMethod()},
				{"Creator", md.GetCreator()},
				{"State", opState(op)},
				{"Items", fmt.Sprintf("%d of %d finished (%d failed, %d running, %d pending)",
					md.GetDoneItems()+md.GetFailedItems(), md.GetTotalItems(), md.GetFailedItems(), md.GetRunningItems(), md.GetPendingItems())},
				{"Workspaces", fmt.Sprint(md.GetWorkspaces())},
				{"Outcomes", outcomesString(md.GetOutcomes())},
				{"Created", tsString(md.GetCreateTime())},
				{"Ended", tsString(md.GetEndTime())},
			}
			if md.GetDryRun() {
				fields = append(fields, [2]string{"Dry run", "yes"})
			}
			if md.GetRetryOf() != "" {
				fields = append(fields, [2]string{"Retry of", md.GetRetryOf()})
			}
			if e := op.GetError(); e != nil {
				fields = append(fields, [2]string{"Error", statusText(e)})
			}
			c.out.fields(fields)
			if failed := opResponse(op).GetFailed(); len(failed) > 0 {
				fmt.Fprintln(c.env.Out)
				rows := [][]string{}
				for _, r := range failed {
					rows = append(rows, []string{shortName(r.GetWorkspace()), r.GetEmail(), c.outcomeCell(r.GetOutcome()), reasonText(r.GetStatus())})
				}
				c.out.table([]string{"workspace", "email", "outcome", "reason"}, rows)
			}
			return nil
		}),
	}
}

func (c *cli) opsWatchCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "watch NAME...",
		Short: "Follow operations with a progress bar, then report every workspace",
		Args:  minArgs(1, "one or more operation NAMEs"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			ns := make([]string, len(args))
			for i, a := range args {
				ns[i] = opName(a)
			}
			ops, err := c.follow(cmd.Context(), ns, "working")
			if err != nil {
				return err
			}
			return c.opReport(cmd.Context(), ops)
		}),
	}
}

func (c *cli) opsCancelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "cancel NAME",
		Short: "Cancel an operation: items not started end NOT_ATTEMPTED",
		Args:  exactArgs(1, "an operation NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			lro, _, err := c.opsAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			defer cancel()
			if _, err := lro.CancelOperation(ctx, &longrunningpb.CancelOperationRequest{Name: opName(args[0])}); err != nil {
				return err
			}
			c.out.info("cancel requested for %s", opName(args[0]))
			return nil
		}),
	}
}

func (c *cli) opsRetryCmd() *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "retry NAME",
		Short: "Re-run the items of a finished operation that failed or were not attempted",
		Args:  exactArgs(1, "an operation NAME"),
		RunE: c.action(func(cmd *cobra.Command, args []string) error {
			_, api, err := c.opsAPI()
			if err != nil {
				return err
			}
			ctx, cancel := c.call(cmd.Context())
			op, err := api.RetryOperation(ctx, &agencyv1.RetryOperationRequest{Name: opName(args[0]), RequestId: newRequestID()})
			cancel()
			if err != nil {
				return err
			}
			return c.followAndReport(cmd.Context(), []*longrunningpb.Operation{op}, "retrying", detach)
		}),
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "print the new operation's name and return")
	return cmd
}
