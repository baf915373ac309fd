package cli_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// examplePeople is the sample file `make demo` onboards.
var examplePeople = filepath.Join("..", "..", "examples", "people.csv")

// importResults is `workspaces import -o json`.
type importResults struct {
	Results []struct {
		Workspace string `json:"workspace"`
		Line      int    `json:"line"`
		Result    string `json:"result"`
		Detail    string `json:"detail"`
	} `json:"results"`
	Summary map[string]int `json:"summary"`
}

func TestImportTwiceThenChanges(t *testing.T) {
	e := startEnv(t, sim.Config{})
	ws := append(e.newWorkspaces("west", "sdr-west", 3), e.newWorkspaces("east", "sdr-east", 2)...)
	file := e.writeFile("ws.csv", importCSV(ws))

	first := e.mustRun(0, "", "workspaces", "import", "--csv", file)
	golden(t, "import_first", first.stdout)

	// The second run registers nothing and changes nothing.
	e.sim.ResetStats()
	second := e.mustRun(0, "", "workspaces", "import", "--csv", file, "-o", "json")
	var got importResults
	if err := json.Unmarshal([]byte(second.stdout), &got); err != nil {
		t.Fatalf("-o json: %v\n%s", err, second.stdout)
	}
	if len(got.Results) != 5 || got.Summary["unchanged"] != 5 {
		t.Fatalf("second import: %+v", got)
	}
	for _, r := range got.Results {
		if r.Result != "unchanged" || !strings.HasPrefix(r.Workspace, "workspaces/") || r.Line < 2 {
			t.Errorf("second import row: %+v", r)
		}
	}
	if n := e.requests(); n != 0 {
		t.Errorf("an unchanged import sent %d requests to Instantly", n)
	}

	// New labels: updated; another key of the same workspace: conflict
	// (use rotate), which does not fail the run.
	other, err := e.sim.CreateAPIKey(ws[4].id, "second", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(importCSV(ws), "team=sdr-west;client=west-1", "team=sdr-west;client=west-1;tier=gold", 1)
	changed = strings.Replace(changed, ws[4].key, other.Key, 1)
	third := e.mustRun(0, "", "workspaces", "import", "--csv", e.writeFile("ws2.csv", changed))
	golden(t, "import_changes", third.stdout)

	list := e.mustRun(0, "", "workspaces", "list")
	golden(t, "workspaces_list", list.stdout)

	// -o json and -o yaml parse back into the proto with its JSON names.
	for _, format := range []string{"json", "yaml"} {
		r := e.mustRun(0, "", "workspaces", "list", "-l", "team=sdr-west", "-o", format)
		data := []byte(r.stdout)
		if format == "yaml" {
			if data, err = yaml.YAMLToJSON(data); err != nil {
				t.Fatal(err)
			}
		}
		var resp agencyv1.ListWorkspacesResponse
		if err := protojson.Unmarshal(data, &resp); err != nil {
			t.Fatalf("-o %s is not a ListWorkspacesResponse: %v\n%s", format, err, r.stdout)
		}
		if len(resp.GetWorkspaces()) != 3 || resp.GetWorkspaces()[0].GetLabels()["tier"] != "gold" ||
			!strings.Contains(r.stdout, "credentialFingerprint") {
			t.Errorf("-o %s: %v", format, &resp)
		}
	}
}

// onboardReport is `onboard -o json`.
type onboardReport struct {
	Operations []json.RawMessage `json:"operations"`
	Summary    json.RawMessage   `json:"summary"`
	Results    []json.RawMessage `json:"results"`
}

func parseOnboard(t *testing.T, out string) ([]*longrunningpb.Operation, *agencyv1.FanoutSummary, []*agencyv1.WorkspaceResult) {
	t.Helper()
	var rep onboardReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	var ops []*longrunningpb.Operation
	for _, raw := range rep.Operations {
		op := &longrunningpb.Operation{}
		if err := protojson.Unmarshal(raw, op); err != nil {
			t.Fatal(err)
		}
		ops = append(ops, op)
	}
	sum := &agencyv1.FanoutSummary{}
	if err := protojson.Unmarshal(rep.Summary, sum); err != nil {
		t.Fatal(err)
	}
	var results []*agencyv1.WorkspaceResult
	for _, raw := range rep.Results {
		r := &agencyv1.WorkspaceResult{}
		if err := protojson.Unmarshal(raw, r); err != nil {
			t.Fatal(err)
		}
		results = append(results, r)
	}
	return ops, sum, results
}

func TestOnboardThenOffboard(t *testing.T) {
	e := startEnv(t, sim.Config{})
	e.register(append(e.newWorkspaces("west", "sdr-west", 3), e.newWorkspaces("east", "sdr-east", 2)...))

	dry := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-west", "--dry-run")
	golden(t, "onboard_plan", dry.stdout)

	// Without a terminal and without --yes nothing starts.
	e.sim.ResetStats()
	refused := e.mustRun(2, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-west")
	if !strings.Contains(refused.stderr, "--yes") {
		t.Errorf("refusal without --yes: %s", refused)
	}

	r := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-west", "--yes", "-o", "json")
	ops, sum, results := parseOnboard(t, r.stdout)
	if len(ops) != 1 || !ops[0].GetDone() || sum.GetTotal() != 15 || sum.GetSucceeded() != 15 || len(results) != 15 {
		t.Fatalf("onboard report: ops %v, summary %v, %d results", ops, sum, len(results))
	}
	for _, res := range results {
		if res.GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED || res.GetEmail() == "" || !strings.HasPrefix(res.GetWorkspace(), "workspaces/west-") {
			t.Errorf("item %v", res)
		}
	}
	if strings.Contains(r.stderr, "items/s") || strings.Contains(r.stderr, "\r") {
		t.Errorf("a progress bar was drawn without a terminal:\n%q", r.stderr)
	}

	// The same command again re-attaches to the same operation.
	again := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-west", "--yes")
	if !strings.Contains(again.stderr, "re-attached to "+ops[0].GetName()) || !strings.Contains(again.stdout, "15 items: 15 succeeded") {
		t.Errorf("re-run did not re-attach to %s: %s", ops[0].GetName(), again)
	}
	golden(t, "onboard_rerun", again.stdout)
	r2 := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-west", "--yes", "-o", "json")
	if ops2, _, _ := parseOnboard(t, r2.stdout); ops2[0].GetName() != ops[0].GetName() {
		t.Errorf("re-run started %s instead of re-attaching to %s", ops2[0].GetName(), ops[0].GetName())
	}

	matrix := e.mustRun(0, "", "access", "-l", "team=sdr-west")
	golden(t, "access_matrix", matrix.stdout)

	// Offboarding removes the person everywhere in the selection.
	off := e.mustRun(0, "", "offboard", "ana.lopez@agency.example", "-l", "team=sdr-west", "--yes")
	golden(t, "offboard", off.stdout)
	after := e.mustRun(0, "", "access", "--all", "--email", "ana.lopez@agency.example", "-o", "json")
	var resp agencyv1.FanoutResponse
	if err := protojson.Unmarshal([]byte(after.stdout), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.GetAccessMatrix()) != 0 {
		t.Errorf("after offboarding: %v", resp.GetAccessMatrix())
	}

	// An owner is kept: the preview says so, nothing is removed, exit 1.
	owner := e.mustRun(1, "", "offboard", "owner-west-1@client.test", "-l", "team=sdr-west", "--yes")
	if !strings.Contains(owner.stdout, "keep (owner") || !strings.Contains(owner.stderr, "kept 1 workspace") {
		t.Errorf("offboarding an owner: %s", owner)
	}
	still := e.mustRun(0, "", "access", "-l", "team=sdr-west", "--email", "owner-west-1@client.test", "-o", "json")
	resp.Reset()
	if err := protojson.Unmarshal([]byte(still.stdout), &resp); err != nil || len(resp.GetAccessMatrix()) != 1 {
		t.Errorf("the owner is gone: %v %v", err, &resp)
	}
}

func TestOnboardFailingWorkspace(t *testing.T) {
	e := startEnv(t, sim.Config{})
	ws := e.newWorkspaces("ok", "sdr-north", 2)
	// A workspace whose key may read but not invite: every invite there fails.
	id, _ := e.sim.CreateWorkspaceWithOwner("limited-1", "owner-limited-1@client.test")
	k, err := e.sim.CreateAPIKey(id, "read only", []string{"workspaces:read", "workspace_members:read"})
	if err != nil {
		t.Fatal(err)
	}
	ws = append(ws, simWorkspace{id: id, name: "limited-1", key: k.Key, team: "sdr-north"})
	e.register(ws)

	r := e.mustRun(1, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-north", "--yes")
	golden(t, "onboard_failure", r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var firstRow string
	for i, l := range lines {
		if strings.HasPrefix(l, "WORKSPACE") && i+1 < len(lines) {
			firstRow = lines[i+1]
		}
	}
	if !strings.HasPrefix(firstRow, "limited-1") || !strings.Contains(firstRow, "SCOPE_DENIED") {
		t.Errorf("the failing workspace is not first with its reason: %q\n%s", firstRow, r)
	}
	if !strings.Contains(r.stderr, "ops retry") {
		t.Errorf("no hint to retry: %s", r.stderr)
	}

	// -o json carries every failed item with its status.
	r = e.mustRun(1, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-north", "--yes", "-o", "json")
	ops, sum, results := parseOnboard(t, r.stdout)
	failed := 0
	for _, res := range results {
		if res.GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED {
			failed++
			if res.GetWorkspace() != "workspaces/limited-1" || res.GetStatus().GetMessage() == "" {
				t.Errorf("failed item %v", res)
			}
		}
	}
	if failed != 5 || sum.GetFailed() != 5 {
		t.Errorf("%d failed items, summary %v", failed, sum)
	}

	// Give the workspace a key that may invite, then retry only what failed.
	full, err := e.sim.CreateAPIKey(id, "full", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}
	e.mustRun(0, "", "workspaces", "rotate", "limited-1", "--api-key-file", e.writeFile("key", full.Key+"\n"))
	retry := e.mustRun(0, "", "ops", "retry", ops[0].GetName())
	if !strings.Contains(retry.stdout, "5 items: 5 succeeded, 0 failed") || !strings.Contains(retry.stdout, "limited-1") || strings.Contains(retry.stdout, "ok-1") {
		t.Errorf("ops retry: %s", retry)
	}
}

func TestBadCSVSendsNothing(t *testing.T) {
	e := startEnv(t, sim.Config{})
	ws := e.newWorkspaces("team", "sdr-south", 2)
	e.register(ws)
	good := "email,role,permissions\nana@agency.example,editor,\n"
	cases := []struct {
		name, cmd, csv, want string
	}{
		{"missing column", "onboard", "email,permissions\nana@agency.example,\n", `line 1: missing column "role"`},
		{"unknown column", "onboard", "email,role,team\nana@agency.example,editor,x\n", `line 1: unknown column "team"`},
		{"bad email", "onboard", "email,role\nana@agency.example,editor\nbo-at-agency,view\n", `line 3: email "bo-at-agency" is not an email address`},
		{"unknown role", "onboard", "email,role\nana@agency.example,superuser\n", `line 2: role "superuser" does not exist`},
		{"unknown permission", "onboard", "email,role,permissions\nana@agency.example,view,campaigns.fly\n", `line 2: permission "campaigns.fly"`},
		{"duplicate rows", "onboard", "email,role\nana@agency.example,editor\nbo@agency.example,view\nANA@agency.example,editor\n", "line 4: ANA@agency.example repeats line 2"},
		{"no rows", "onboard", "email,role,permissions\n", "line 1: no rows after the header"},
		{"empty file", "onboard", "", "line 1: the file is empty"},
		{"bad label", "import", "workspace_id,api_key,labels\nteam-9,abcdefgh12345,Team=west\n", `line 2: labels: labels["Team"]`},
		{"import missing column", "import", "workspace_id,display_name\nteam-9,Team 9\n", `line 1: missing column "api_key"`},
		{"import duplicate rows", "import", "workspace_id,api_key\nteam-9,abcdefgh12345\nteam-9,zyxwvuts98765\n", `line 3: workspace_id "team-9" repeats line 2`},
		{"import no rows", "import", "\xef\xbb\xbfworkspace_id,display_name,api_key,labels\n", "no rows after the header"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			file := e.writeFile("bad.csv", tc.csv)
			e.sim.ResetStats()
			var r result
			if tc.cmd == "onboard" {
				r = e.run("", "onboard", "--csv", file, "-l", "team=sdr-south", "--yes")
			} else {
				r = e.run("", "workspaces", "import", "--csv", file)
			}
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "nothing was sent") || r.stdout != "" {
				t.Errorf("want exit 2 and %q, got %s", tc.want, r)
			}
			if n := e.requests(); n != 0 {
				t.Errorf("a bad file sent %d requests to Instantly", n)
			}
		})
	}
	// The BOM and any case of the role are fine.
	e.sim.ResetStats()
	file := e.writeFile("good.csv", "\xef\xbb\xbf"+strings.Replace(good, "editor", "EDITOR", 1))
	e.mustRun(0, "", "onboard", "--csv", file, "-l", "team=sdr-south", "--yes")
	// Every problem of a file is reported at once, by line.
	r := e.mustRun(2, "", "onboard", "--csv", e.writeFile("many.csv", "email,role\nx,admin\ny@z.io,owner\n"), "--all", "--yes")
	golden(t, "bad_csv_stderr", strings.ReplaceAll(r.stderr, e.dir, "DIR"))
}

func TestUnreachableAndWrongToken(t *testing.T) {
	e := startEnv(t, sim.Config{})

	// A closed port: refused at once, one line naming the address.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	r := runBin(t, append(e.environ(), "AGENCY_ADDR="+closed), "", "workspaces", "list", "--timeout", "5s")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "cannot reach "+closed) || r.took > 5*time.Second {
		t.Errorf("closed port: %s", r)
	}

	// A server that accepts and never answers: the --timeout bounds it.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		var held []net.Conn
		for {
			c, err := silent.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	r = runBin(t, append(e.environ(), "AGENCY_ADDR="+silent.Addr().String()), "", "workspaces", "list", "--timeout", "1s")
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, silent.Addr().String()) || r.took > 4*time.Second {
		t.Errorf("silent server with --timeout 1s: %s", r)
	}

	// A wrong token: one line, exit 1, and the token is not in it.
	const wrong = "not-the-token-0123456789abcdef"
	for _, how := range [][]string{{"AGENCY_TOKEN=" + wrong}, nil} {
		args := []string{"workspaces", "list"}
		environ := append(e.environ(), how...)
		if how == nil {
			args = append(args, "--token", wrong)
		}
		r = runBin(t, environ, "", args...)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "refused the credentials") || strings.Contains(r.stderr, wrong) {
			t.Errorf("wrong token %v: %s", how, r)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	e := startEnv(t, sim.Config{})
	for _, args := range [][]string{
		{"workspace", "lst"},
		{"nosuchcommand"},
		{"workspaces", "get"},
		{"workspaces", "list", "--bogus"},
		{"workspaces", "list", "-o", "xml"},
		{"workspaces", "list", "-l", "team in (a"},
		{"members", "invite", "not-an-email", "--role", "view", "--all"},
		{"members", "invite", "a@b.io", "--role", "owner", "--all"},
		{"members", "list"},
		{"members", "list", "-w", "a", "--all"},
		{"onboard", "-l", "team=x"},
		{"onboard", "--csv", "/does/not/exist.csv", "--all"},
	} {
		r := e.run("", args...)
		if r.code != 2 || r.stderr == "" || r.stdout != "" {
			t.Errorf("agencyctl %s: want exit 2 with a message, got %s", strings.Join(args, " "), r)
		}
	}
}

func TestConfigContexts(t *testing.T) {
	e := startEnv(t, sim.Config{})
	e.register(e.newWorkspaces("ctx", "sdr-ctx", 1))
	// No address nor token in the environment: only the context.
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "AGENCYCTL_CONFIG=" + filepath.Join(e.dir, "config.yaml")}
	r := runBin(t, base, adminToken+"\n", "config", "set-context", "local", "--addr", e.addr, "--token-stdin")
	if r.code != 0 {
		t.Fatalf("set-context: %s", r)
	}
	fi, err := os.Stat(filepath.Join(e.dir, "config.yaml"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode: %v %v", fi, err)
	}
	if r := runBin(t, base, "", "config", "set-context", "other", "--addr", "127.0.0.1:1"); r.code != 0 {
		t.Fatalf("set-context other: %s", r)
	}
	r = runBin(t, base, "", "config", "get-contexts")
	if r.code != 0 || strings.Contains(r.stdout, adminToken) || !regexp.MustCompile(`(?m)^\*\s+local\s`).MatchString(r.stdout) {
		t.Errorf("get-contexts: %s", r)
	}
	r = runBin(t, base, "", "workspaces", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "ctx-1") {
		t.Errorf("list through the context: %s", r)
	}
	if r = runBin(t, base, "", "config", "use-context", "other"); r.code != 0 {
		t.Fatalf("use-context: %s", r)
	}
	if r = runBin(t, base, "", "workspaces", "list"); r.code != 1 || !strings.Contains(r.stderr, "cannot reach 127.0.0.1:1") {
		t.Errorf("list through the other context: %s", r)
	}
	// A flag wins over the context.
	if r = runBin(t, base, "", "workspaces", "list", "--context", "local"); r.code != 0 {
		t.Errorf("--context local: %s", r)
	}
	if r = runBin(t, base, "", "workspaces", "list", "--context", "nope"); r.code != 2 {
		t.Errorf("--context nope: %s", r)
	}
}

func TestOperationsCommands(t *testing.T) {
	e := startEnv(t, sim.Config{})
	e.register(e.newWorkspaces("op", "sdr-op", 2))
	r := e.mustRun(0, "", "onboard", "--csv", examplePeople, "-l", "team=sdr-op", "--yes", "--detach")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	name := lines[len(lines)-1]
	if !strings.HasPrefix(name, "operations/") {
		t.Fatalf("--detach printed %q", r.stdout)
	}
	w := e.mustRun(0, "", "ops", "watch", name)
	if !strings.Contains(w.stdout, "10 items: 10 succeeded, 0 failed") {
		t.Errorf("ops watch: %s", w)
	}
	g := e.mustRun(0, "", "ops", "get", name, "-o", "json")
	op := &longrunningpb.Operation{}
	if err := protojson.Unmarshal([]byte(g.stdout), op); err != nil || !op.GetDone() || op.GetName() != name {
		t.Errorf("ops get -o json: %v %v", op, err)
	}
	l := e.mustRun(0, "", "ops", "list")
	if !strings.Contains(l.stdout, name) || !strings.Contains(l.stdout, "OnboardMembers") {
		t.Errorf("ops list: %s", l)
	}
	// A finished operation cannot be cancelled: agencyd's one line, exit 1.
	c := e.mustRun(1, "", "ops", "cancel", name)
	if strings.Count(c.stderr, "\n") != 1 {
		t.Errorf("ops cancel of a finished operation: %s", c)
	}
	// Fan-out writes and reads through the same binary.
	e.mustRun(0, "", "tags", "ensure", "vip", "--all")
	tl := e.mustRun(0, "", "tags", "list", "-w", "op-1")
	if !strings.Contains(tl.stdout, "vip") {
		t.Errorf("tags list: %s", tl)
	}
	e.mustRun(0, "", "members", "invite", "zed@agency.example", "--role", "view", "-l", "team=sdr-op", "--long-running")
	inv := e.mustRun(0, "", "invitations", "-l", "team=sdr-op")
	if strings.Count(inv.stdout, "zed@agency.example") != 2 {
		t.Errorf("invitations: %s", inv)
	}
	e.mustRun(0, "", "members", "set-role", "zed@agency.example", "--role", "editor", "-w", "op-1")
	e.mustRun(0, "", "members", "rm", "zed@agency.example", "-l", "team=sdr-op", "--yes")
	audit := e.mustRun(0, "", "audit", "events", "--limit", "5")
	if !strings.Contains(audit.stdout, "tokens/bootstrap") {
		t.Errorf("audit events: %s", audit)
	}
	tok := e.mustRun(0, "", "tokens", "create", "--role", "viewer", "--scope", "team=sdr-op", "-o", "json")
	var created agencyv1.CreateTokenResponse
	if err := protojson.Unmarshal([]byte(tok.stdout), &created); err != nil || created.GetSecret() == "" {
		t.Fatalf("tokens create: %v %s", err, tok)
	}
	e.mustRun(0, "", "tokens", "revoke", created.GetToken().GetName(), "--yes")
}
