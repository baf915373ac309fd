package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/store"
)

// TestAuditLogFile: with --audit-log-file every audit event the store
// keeps is also a JSON line in the file, for retention beyond
// --audit-max-events and --audit-retention.
func TestAuditLogFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	e := startEnvWith(t, "", 0, func(c *config.Config) { c.AuditLogFile = path })
	_, key := e.newInstantlyWorkspace("acme")
	if _, err := e.grpc(testToken).Create(context.Background(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: "acme",
		Workspace: &agencyv1.Workspace{DisplayName: "Acme", ApiKey: &key}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var phases []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var ev store.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("not a JSON line: %q: %v", sc.Text(), err)
		}
		if ev.Method != agencyv1.WorkspaceService_CreateWorkspace_FullMethodName || ev.ID == "" || ev.Principal != "tokens/bootstrap" {
			t.Fatalf("event %+v", ev)
		}
		phases = append(phases, ev.Phase)
	}
	if len(phases) != 2 || phases[0] != store.AuditPhaseStarted || phases[1] != store.AuditPhaseFinished {
		t.Fatalf("phases %v, want started then finished", phases)
	}
}
