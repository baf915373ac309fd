package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// provisionerToken creates a SCIM provisioner token over gRPC (agencyctl
// does not create those).
func (e *env) provisionerToken() string {
	e.t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+e.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
	resp, err := agencyv1.NewTokenServiceClient(conn).CreateToken(ctx, &agencyv1.CreateTokenRequest{
		Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, Description: "okta"}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.GetSecret()
}

// scim sends one SCIM request as the identity provider would.
func (e *env) scim(token, method, path string, body any, want int) map[string]any {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(method, "http://"+e.http+"/scim/v2"+path, bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return out
}

// isMember reports whether email is in the simulator's workspace id.
func (e *env) isMember(id, email string) bool {
	e.t.Helper()
	st, err := e.sim.WorkspaceState(id)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range st.Members {
		if m.Email == email {
			return true
		}
	}
	return false
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSCIMRelease(t *testing.T) {
	mapping := filepath.Join(t.TempDir(), "scim.yaml")
	if err := os.WriteFile(mapping, []byte("groups:\n  - group: sdr-west\n    selector: \"team=sdr-west\"\n    role: editor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, sim.Config{}, "--scim-mapping", mapping, "--scim-max-removals-per-hour", "1")
	ws := e.newWorkspaces("west", "sdr-west", 2)
	e.register(ws)
	// agencyd's HTTP port is not the default one: from the environment.
	e.extra = append(e.extra, "AGENCY_HTTP_ADDR="+e.http)

	none := e.mustRun(0, "", "scim", "release")
	if !strings.Contains(none.stdout, "No removal is paused") {
		t.Errorf("release with nothing paused: %s", none)
	}

	// pat joins sdr-west (invited into both workspaces), then is
	// deactivated: one removal runs, the cap pauses the other.
	const pat = "pat@agency.test"
	tok := e.provisionerToken()
	id := e.scim(tok, "POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": pat, "active": true, "emails": []any{map[string]any{"primary": true, "value": pat, "type": "work"}}}, 201)["id"].(string)
	e.scim(tok, "POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "sdr-west", "members": []any{map[string]any{"value": id}}}, 201)
	waitUntil(t, "pat invited into both workspaces", func() bool { return e.isMember(ws[0].id, pat) && e.isMember(ws[1].id, pat) })
	e.scim(tok, "PATCH", "/Users/"+id, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "path": "active", "value": false}}}, 200)
	waitUntil(t, "one removal paused", func() bool {
		r := e.mustRun(0, "", "scim", "paused", "-o", "json")
		var got struct{ Paused int }
		return json.Unmarshal([]byte(r.stdout), &got) == nil && got.Paused == 1
	})
	paused := e.mustRun(0, "", "scim", "paused")
	if !strings.Contains(paused.stdout, "1 removal paused") {
		t.Errorf("scim paused: %s", paused)
	}

	// Without a terminal and without --yes nothing is released.
	e.mustRun(2, "", "scim", "release")
	// A wrong HTTP address: one line naming it, exit 1.
	bad := e.mustRun(1, "", "scim", "release", "--yes", "--http-addr", "127.0.0.1:1")
	if !strings.Contains(bad.stderr, "cannot reach http://127.0.0.1:1") || strings.Count(strings.TrimSpace(bad.stderr), "\n") != 0 {
		t.Errorf("wrong --http-addr: %s", bad)
	}
	// A token that may not release: refused.
	denied := runBin(t, append(e.environ(), "AGENCY_TOKEN="+tok), "", "scim", "release", "--yes")
	if denied.code != 1 || strings.Contains(denied.stderr, tok) {
		t.Errorf("release as the provisioner: %s", denied)
	}

	r := e.mustRun(0, "", "scim", "release", "--yes", "-o", "json")
	var got struct{ Released int }
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Released != 1 {
		t.Fatalf("release -o json: %v %s", err, r)
	}
	waitUntil(t, "pat removed everywhere", func() bool { return !e.isMember(ws[0].id, pat) && !e.isMember(ws[1].id, pat) })
	e.mustRun(0, "", "scim", "release")
}
