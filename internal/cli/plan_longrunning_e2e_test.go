package cli_test

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// TestPlanLongRunning: `plan --long-running` reads the workspaces as an
// operation and prints the same plan as `plan` (diff and JSON alike), with
// the same exit code; `apply --long-running --yes` applies it, after which
// the next plan is empty.
func TestPlanLongRunning(t *testing.T) {
	e := startEnv(t, sim.Config{})
	west := e.newWorkspaces("west", "sdr-west", 2)
	ws := append(append(west, e.newWorkspaces("east", "sdr-east", 2)...), e.newWorkspaces("smb", "smb", 1)...)
	e.register(ws)
	if _, err := e.sim.InviteMember(west[0].id, "stranger@agency.example", "editor"); err != nil {
		t.Fatal(err)
	}

	unary := e.mustRun(3, "", "plan", "-f", exampleAgency)
	long := e.mustRun(3, "", "plan", "-f", exampleAgency, "--long-running")
	if long.stdout != unary.stdout {
		t.Errorf("plan --long-running printed\n%s\nplan printed\n%s", long.stdout, unary.stdout)
	}
	if !strings.Contains(long.stdout, "- remove stranger@agency.example") {
		t.Errorf("plan --long-running: %s", long)
	}

	u, uChanges := planJSON(t, e.mustRun(3, "", "plan", "-f", exampleAgency, "-o", "json").stdout)
	l, lChanges := planJSON(t, e.mustRun(3, "", "plan", "-f", exampleAgency, "--long-running", "-o", "json").stdout)
	if lChanges != uChanges || l.GetFingerprint() != u.GetFingerprint() || !proto.Equal(l.GetSummary(), u.GetSummary()) ||
		len(l.GetWorkspaces()) != len(u.GetWorkspaces()) || l.GetCreateOperation() != nil {
		t.Errorf("plan --long-running -o json:\n%v\nplan -o json:\n%v", l, u)
	}
	for i, w := range l.GetWorkspaces() {
		if !proto.Equal(w, u.GetWorkspaces()[i]) {
			t.Errorf("%s: %v vs %v", w.GetWorkspace(), w, u.GetWorkspaces()[i])
		}
	}

	apply := e.mustRun(0, "", "apply", "-f", exampleAgency, "--long-running", "--yes")
	if !strings.Contains(apply.stdout, "- remove stranger@agency.example") || !strings.Contains(apply.stdout, "5 items: 5 succeeded") {
		t.Errorf("apply --long-running: %s", apply)
	}
	again := e.mustRun(0, "", "plan", "-f", exampleAgency, "--long-running")
	if !strings.Contains(again.stdout, "No changes: 5 workspaces match the file") {
		t.Errorf("plan --long-running after apply: %s", again)
	}
}
