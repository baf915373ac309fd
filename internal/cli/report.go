package cli

import (
	"fmt"
	"sort"
	"strings"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// outcomeName is an outcome in words: "created", "already done".
func outcomeName(o agencyv1.FanoutOutcome) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(o.String(), "FANOUT_OUTCOME_")), "_", " ")
}

// failedOutcome reports outcomes that mean "not done": FAILED, TIMED_OUT,
// NOT_ATTEMPTED.
func failedOutcome(o agencyv1.FanoutOutcome) bool {
	switch o {
	case agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_TIMED_OUT,
		agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED:
		return true
	}
	return false
}

func succeededOutcome(o agencyv1.FanoutOutcome) bool {
	switch o {
	case agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED,
		agencyv1.FanoutOutcome_FANOUT_OUTCOME_DELETED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ:
		return true
	}
	return false
}

// summarize counts results the way agencyd's FanoutSummary does.
func summarize(results []*agencyv1.WorkspaceResult) *agencyv1.FanoutSummary {
	s := &agencyv1.FanoutSummary{Total: int32(len(results))}
	for _, r := range results {
		switch o := r.GetOutcome(); {
		case succeededOutcome(o):
			s.Succeeded++
		case o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE:
			s.AlreadyDone++
		case o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_SKIPPED:
			s.Skipped++
		case o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED:
			s.NotAttempted++
		case failedOutcome(o):
			s.Failed++
		}
	}
	return s
}

func summaryLine(s *agencyv1.FanoutSummary, unit string) string {
	parts := []string{fmt.Sprintf("%d succeeded", s.GetSucceeded())}
	if s.GetAlreadyDone() > 0 {
		parts = append(parts, fmt.Sprintf("%d already done", s.GetAlreadyDone()))
	}
	if s.GetSkipped() > 0 {
		parts = append(parts, fmt.Sprintf("%d skipped", s.GetSkipped()))
	}
	parts = append(parts, fmt.Sprintf("%d failed", s.GetFailed()))
	if s.GetNotAttempted() > 0 {
		parts = append(parts, fmt.Sprintf("%d not attempted", s.GetNotAttempted()))
	}
	return fmt.Sprintf("%s: %s", plural(int(s.GetTotal()), unit), strings.Join(parts, ", "))
}

// notDone is how many results of s are failures of the run.
func notDone(s *agencyv1.FanoutSummary) int { return int(s.GetFailed() + s.GetNotAttempted()) }

// detail says what a result carries beyond its outcome.
func (c *cli) detail(r *agencyv1.WorkspaceResult) string {
	if failedOutcome(r.GetOutcome()) {
		return reasonText(r.GetStatus())
	}
	var parts []string
	switch {
	case r.GetMember() != nil:
		m := r.GetMember()
		s := roleName(m.GetRole())
		if !m.GetAccepted() {
			s += " (invited)"
		}
		parts = append(parts, s)
	case r.GetTag() != nil:
		parts = append(parts, "tag "+r.GetTag().GetId())
	case r.GetCreatedApiKey() != nil:
		k := r.GetCreatedApiKey()
		s := "key " + k.GetApiKey().GetId()
		if k.GetSecret() != "" {
			s += " secret " + k.GetSecret() + " (shown once)"
		}
		parts = append(parts, s)
	case r.GetApiKeys() != nil:
		l := r.GetApiKeys()
		parts = append(parts, fmt.Sprintf("%s, %d over-privileged", plural(len(l.GetApiKeys()), "key"), l.GetOverPrivileged()))
	case r.GetMembers() != nil:
		parts = append(parts, plural(len(r.GetMembers().GetMembers()), "member"))
	case r.GetDesiredState() != nil:
		parts = append(parts, desiredStateDetail(r.GetDesiredState()))
	case r.GetGroupMember() != nil:
		parts = append(parts, strings.ToLower(strings.TrimPrefix(r.GetGroupMember().GetStatus().String(), "STATUS_")))
	}
	if r.GetNote() != "" {
		parts = append(parts, r.GetNote())
	}
	return strings.Join(parts, "; ")
}

func (c *cli) outcomeCell(o agencyv1.FanoutOutcome) string {
	s := outcomeName(o)
	switch {
	case failedOutcome(o):
		return c.out.red(s)
	case succeededOutcome(o):
		return c.out.green(s)
	}
	return s
}

// failuresFirst orders results failed first, then by workspace and email,
// keeping item order otherwise.
func failuresFirst(results []*agencyv1.WorkspaceResult) []*agencyv1.WorkspaceResult {
	out := append([]*agencyv1.WorkspaceResult(nil), results...)
	sort.SliceStable(out, func(i, j int) bool {
		return failedOutcome(out[i].GetOutcome()) && !failedOutcome(out[j].GetOutcome())
	})
	return out
}

// printFanout reports a unary fan-out: a table of one row per workspace,
// failures first, and the summary; exit 1 when any workspace failed.
func (c *cli) printFanout(resp *agencyv1.FanoutResponse) error {
	if c.out.machine() {
		if err := c.out.proto(resp); err != nil {
			return err
		}
	} else {
		rows := [][]string{}
		for _, r := range failuresFirst(resp.GetResults()) {
			rows = append(rows, []string{shortName(r.GetWorkspace()), c.outcomeCell(r.GetOutcome()), c.detail(r)})
		}
		c.out.table([]string{"workspace", "outcome", "detail"}, rows)
		line := summaryLine(resp.GetSummary(), "workspace")
		if resp.GetDryRun() {
			line += " (dry run: nothing was changed)"
		}
		fmt.Fprintf(c.env.Out, "\n%s\n", line)
	}
	if n := notDone(resp.GetSummary()); n > 0 {
		return failedErr(fmt.Sprintf("%s failed", plural(n, "workspace")))
	}
	return nil
}

// wsReport is one workspace's line of an operation's report.
type wsReport struct {
	workspace                           string
	succeeded, already, skipped, failed int
	reasons                             []string
}

// printItemsByWorkspace is the report of an operation over people ×
// workspaces: one row per workspace, failures first, with their reasons.
func (c *cli) printItemsByWorkspace(results []*agencyv1.WorkspaceResult) {
	byWS := map[string]*wsReport{}
	var order []string
	for _, r := range results {
		w := byWS[r.GetWorkspace()]
		if w == nil {
			w = &wsReport{workspace: r.GetWorkspace()}
			byWS[r.GetWorkspace()] = w
			order = append(order, r.GetWorkspace())
		}
		switch o := r.GetOutcome(); {
		case failedOutcome(o):
			w.failed++
			reason := reasonText(r.GetStatus())
			if r.GetEmail() != "" {
				reason = r.GetEmail() + ": " + reason
			}
			w.reasons = append(w.reasons, reason)
		case o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE:
			w.already++
		case o == agencyv1.FanoutOutcome_FANOUT_OUTCOME_SKIPPED:
			w.skipped++
		default:
			w.succeeded++
		}
	}
	sort.SliceStable(order, func(i, j int) bool { return byWS[order[i]].failed > 0 && byWS[order[j]].failed == 0 })
	// Thousands of clean rows would bury the failures: past a screenful,
	// the workspaces where nothing failed share one row (-o json has all).
	clean := 0
	for _, name := range order {
		if byWS[name].failed == 0 {
			clean++
		}
	}
	var rest *wsReport
	if clean > maxCleanRows {
		rest = &wsReport{}
	}
	rows := [][]string{}
	for _, name := range order {
		w := byWS[name]
		if rest != nil && w.failed == 0 {
			rest.succeeded += w.succeeded
			rest.already += w.already
			rest.skipped += w.skipped
			continue
		}
		reason := ""
		if len(w.reasons) > 0 {
			reason = w.reasons[0]
			if len(w.reasons) > 1 {
				reason += fmt.Sprintf(" (+%d more)", len(w.reasons)-1)
			}
		}
		failed := fmt.Sprint(w.failed)
		if w.failed > 0 {
			failed = c.out.red(failed)
		}
		rows = append(rows, []string{shortName(name), fmt.Sprint(w.succeeded), fmt.Sprint(w.already), fmt.Sprint(w.skipped), failed, reason})
	}
	if rest != nil {
		label := fmt.Sprintf("(%d more)", clean)
		if len(rows) == 0 {
			label = "(" + plural(clean, "workspace") + ")"
		}
		rows = append(rows, []string{label, fmt.Sprint(rest.succeeded), fmt.Sprint(rest.already), fmt.Sprint(rest.skipped), "0", "nothing failed there"})
	}
	c.out.table([]string{"workspace", "done", "already there", "skipped", "failed", "reason"}, rows)
}

// maxCleanRows is how many workspaces without failures a report lists one
// by one.
const maxCleanRows = 20
