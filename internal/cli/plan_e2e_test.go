package cli_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// exampleAgency is the desired-state file `make demo` plans.
var exampleAgency = filepath.Join("..", "..", "examples", "agency.yaml")

// planJSON is `plan -o json`.
func planJSON(t *testing.T, out string) (*agencyv1.Plan, int) {
	t.Helper()
	var doc struct {
		Plan    json.RawMessage `json:"plan"`
		Changes int             `json:"changes"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("plan -o json: %v\n%s", err, out)
	}
	p := &agencyv1.Plan{}
	if err := protojson.Unmarshal(doc.Plan, p); err != nil {
		t.Fatalf("plan -o json: not a Plan: %v\n%s", err, out)
	}
	return p, doc.Changes
}

func TestPlanApplyDrift(t *testing.T) {
	e := startEnv(t, sim.Config{}, "--reconcile-interval", "1s")
	west := e.newWorkspaces("west", "sdr-west", 2)
	ws := append(append(west, e.newWorkspaces("east", "sdr-east", 2)...), e.newWorkspaces("smb", "smb", 1)...)
	e.register(ws)
	// By hand before the plan: someone nobody declared (removed), ana with
	// the wrong role (changed), client staff (unmanaged: kept).
	for _, m := range [][2]string{
		{"stranger@agency.example", "editor"},
		{"ana.lopez@agency.example", "view"},
		{"pat@client-acme.com", "view"},
	} {
		if _, err := e.sim.InviteMember(west[0].id, m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}

	plan := e.mustRun(3, "", "plan", "-f", exampleAgency)
	golden(t, "plan_diff", plan.stdout)
	for _, want := range []string{
		"+ invite dee.patel@agency.example as admin",
		"~ role ana.lopez@agency.example: view → editor (invitation pending)",
		"- remove stranger@agency.example (editor, invitation pending)",
		`+ tag "Q3 push"`,
		"Plan: ",
	} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan.stdout, "\033[") {
		t.Errorf("colour without a terminal:\n%q", plan.stdout)
	}

	// -o json for CI parses back into the Plan.
	r := e.mustRun(3, "", "plan", "-f", exampleAgency, "-o", "json")
	p, changes := planJSON(t, r.stdout)
	if changes == 0 || p.GetSummary().GetWorkspaces() != 5 || p.GetSummary().GetRemovals() != 1 ||
		p.GetSummary().GetRoleChanges() != 1 || len(p.GetWorkspaces()) != 5 || !strings.HasPrefix(p.GetName(), "plans/") {
		t.Errorf("plan -o json: %d changes, %v", changes, p)
	}

	// Without a terminal and without --yes nothing is applied.
	e.mustRun(2, "", "apply", "-f", exampleAgency)

	apply := e.mustRun(0, "", "apply", "-f", exampleAgency, "--yes")
	if !strings.Contains(apply.stdout, "+ invite dee.patel") || !strings.Contains(apply.stdout, "applied") ||
		!strings.Contains(apply.stdout, "5 items: 5 succeeded") {
		t.Errorf("apply: %s", apply)
	}
	// Converged: the next plan is empty.
	again := e.mustRun(0, "", "plan", "-f", exampleAgency)
	if !strings.Contains(again.stdout, "No changes: 5 workspaces match the file") {
		t.Errorf("plan after apply: %s", again)
	}
	e.mustRun(0, "", "apply", "-f", exampleAgency, "--yes")

	// A hand change shows as drift within an interval or two.
	if _, err := e.sim.InviteMember(west[1].id, "intruder@agency.example", "view"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	var drift agencyv1.Drift
	for {
		r := e.mustRun(0, "", "drift", "-o", "json")
		drift.Reset()
		if err := protojson.Unmarshal([]byte(r.stdout), &drift); err != nil {
			t.Fatalf("drift -o json: %v\n%s", err, r.stdout)
		}
		if len(drift.GetItems()) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no drift after 15s: %s", r.stdout)
		}
		time.Sleep(300 * time.Millisecond)
	}
	it := drift.GetItems()[0]
	if !drift.GetEnabled() || len(drift.GetItems()) != 1 || it.GetWorkspace() != "workspaces/west-2" ||
		it.GetChange().GetKind() != agencyv1.ChangeKind_CHANGE_KIND_REMOVE || it.GetChange().GetEmail() != "intruder@agency.example" {
		t.Errorf("drift: %v", &drift)
	}
	table := e.mustRun(0, "", "drift")
	if !strings.Contains(table.stdout, "west-2") || !strings.Contains(table.stdout, "- remove intruder@agency.example (view, invitation pending)") ||
		!strings.Contains(table.stdout, "1 to remove") {
		t.Errorf("drift table: %s", table)
	}
}

func TestPlanBadFile(t *testing.T) {
	e := startEnv(t, sim.Config{})
	e.register(e.newWorkspaces("west", "sdr-west", 1))
	bad := e.writeFile("bad.yaml", `version: 1
people:
  - email: ana@agency.example
    access:
      - selector: "team=sdr-west"
        role: manager
`)
	e.sim.ResetStats()
	for _, args := range [][]string{{"plan"}, {"apply", "--yes"}} {
		cmd := args[0]
		r := e.mustRun(2, "", append(args, "-f", bad)...)
		if !strings.Contains(r.stderr, "line 6") || !strings.Contains(r.stderr, "manager") || !strings.Contains(r.stderr, "nothing was sent") || r.stdout != "" {
			t.Errorf("%s of a bad file: %s", cmd, r)
		}
	}
	if n := e.requests(); n != 0 {
		t.Errorf("a bad file sent %d requests to Instantly", n)
	}
	e.mustRun(2, "", "plan")
	e.mustRun(2, "", "plan", "-f", filepath.Join(e.dir, "missing.yaml"))

	// Drift is off without --reconcile-interval.
	off := e.mustRun(0, "", "drift")
	if !strings.Contains(off.stdout, "--reconcile-interval") {
		t.Errorf("drift when off: %s", off)
	}
}

// TestApplyOnTerminal: on a terminal the diff is coloured (never with
// NO_COLOR) and apply asks before it writes; "n" changes nothing.
func TestApplyOnTerminal(t *testing.T) {
	e := startEnv(t, sim.Config{})
	e.register(e.newWorkspaces("tty", "sdr-west", 2))

	plain := startPTY(t, append(e.environ(), "NO_COLOR=1"), "plan", "-f", exampleAgency)
	if code := plain.wait(); code != 3 || strings.Contains(plain.output(), "\x1b[") || !strings.Contains(plain.output(), "+ invite dee.patel") {
		t.Errorf("plan with NO_COLOR: exit %d\n%q", code, plain.output())
	}

	no := startPTY(t, e.environ(), "apply", "-f", exampleAgency)
	no.waitFor("[y/N]")
	no.write("n\n")
	if code := no.wait(); code != 1 || !strings.Contains(no.output(), "\x1b[32m+ invite dee.patel") {
		t.Errorf("apply answered n: exit %d\n%q", code, no.output())
	}
	e.mustRun(3, "", "plan", "-f", exampleAgency)

	yes := startPTY(t, e.environ(), "apply", "-f", exampleAgency)
	yes.waitFor("[y/N]")
	yes.write("y\n")
	if code := yes.wait(); code != 0 || !strings.Contains(yes.output(), "2 items: 2 succeeded") {
		t.Errorf("apply answered y: exit %d\n%q", code, yes.output())
	}
	e.mustRun(0, "", "plan", "-f", exampleAgency)
}
