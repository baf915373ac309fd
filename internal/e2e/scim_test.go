package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

const scimMapping = `
groups:
  - group: sdr-west
    selector: "team=sdr-west"
    role: editor
  - group: sdr-east
    selector: "team=sdr-east"
    role: view
`

// scimEnv is agencyd with SCIM provisioning, three client workspaces
// (two team=sdr-west, one team=sdr-east) and a provisioner token.
type scimEnv struct {
	e     *env
	token string
	ids   map[string]string // registry id → Instantly workspace id
}

func startSCIMEnv(t *testing.T, maxRemovals int) *scimEnv {
	return startSCIMEnvOn(t, memoryBackend, maxRemovals)
}

func startSCIMEnvOn(t *testing.T, b backend, maxRemovals int) *scimEnv {
	t.Helper()
	mapping := filepath.Join(t.TempDir(), "scim.yaml")
	if err := os.WriteFile(mapping, []byte(scimMapping), 0o600); err != nil {
		t.Fatal(err)
	}
	redisURL := ""
	if b == redisBackend {
		redisURL = "redis://" + redistest.Start(t).Options().Addr + "/0"
	}
	e := startEnvWith(t, redisURL, 0, func(c *config.Config) {
		c.SCIMMapping = mapping
		if maxRemovals > 0 {
			c.SCIMMaxRemovalsPerHour = maxRemovals
		}
	})
	s := &scimEnv{e: e, ids: map[string]string{}}
	admin := e.grpc(testToken)
	for name, team := range map[string]string{"west-1": "sdr-west", "west-2": "sdr-west", "east-1": "sdr-east"} {
		id, key := e.sim.CreateWorkspaceWithOwner(name, "owner-"+name+"@agency.test")
		if _, err := admin.Create(context.Background(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": team}}}); err != nil {
			t.Fatal(err)
		}
		s.ids[name] = id
	}
	var created agencyv1.CreateTokenResponse
	if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, Description: "okta"}}, &created); err != nil {
		t.Fatal(err)
	}
	s.token = created.GetSecret()
	return s
}

// do sends a SCIM request with the provisioner token.
func (s *scimEnv) do(t *testing.T, method, path string, body any, want int) map[string]any {
	t.Helper()
	return s.doAs(t, s.token, method, scim.Prefix+path, body, want)
}

func (s *scimEnv) doAs(t *testing.T, token, method, path string, body any, want int) map[string]any {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(jsonMarshal(body))
	}
	req, err := http.NewRequest(method, s.e.httpBase+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: HTTP %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return out
}

// members is the simulator's truth: email → role in one workspace.
func (s *scimEnv) members(t *testing.T, ws string) map[string]string {
	t.Helper()
	st, err := s.e.sim.WorkspaceState(s.ids[ws])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range st.Members {
		out[strings.ToLower(m.Email)] = m.Role
	}
	return out
}

// want waits until every workspace has (or lacks) the person as said.
func (s *scimEnv) want(t *testing.T, email string, where map[string]bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, got := true, map[string]bool{}
		for ws, in := range where {
			_, present := s.members(t, ws)[email]
			got[ws] = present
			ok = ok && present == in
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: membership %v, want %v", email, got, where)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *scimEnv) noDuplicates(t *testing.T) {
	t.Helper()
	for id, st := range s.e.sim.Stats() {
		if st.DuplicateCreates != 0 {
			t.Fatalf("workspace %s: %d duplicate creates", id, st.DuplicateCreates)
		}
	}
}

func scimFilter(attr, v string) string {
	return "filter=" + url.QueryEscape(fmt.Sprintf(`%s eq "%s"`, attr, v))
}

func scimPatch(ops ...map[string]any) map[string]any {
	return map[string]any{"schemas": []string{scim.SchemaPatchOp}, "Operations": ops}
}

func scimUser(email string) map[string]any {
	local := strings.Split(email, "@")[0]
	return map[string]any{"schemas": []string{scim.SchemaUser}, "userName": email, "active": true, "displayName": local,
		"name": map[string]any{"givenName": local, "familyName": "Test"}, "externalId": "ext-" + local,
		"emails": []any{map[string]any{"primary": true, "value": email, "type": "work"}}}
}

// TestSCIMOktaProvisioning replays Okta's sequence against the simulator:
// the workspaces end exactly as the mapping says, members the mapping did
// not add are never touched, and nothing is created twice.
func TestSCIMOktaProvisioning(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) { testSCIMOkta(t, startSCIMEnvOn(t, b, 0)) })
	}
}

func testSCIMOkta(t *testing.T, s *scimEnv) {
	const dana, keep = "dana@agency.test", "keep@agency.test"
	// keep is already a member of west-1, by hand.
	if _, err := s.e.sim.InviteMember(s.ids["west-1"], keep, "view"); err != nil {
		t.Fatal(err)
	}

	if got := s.do(t, "GET", "/Users?"+scimFilter("userName", dana)+"&startIndex=1&count=100", nil, 200); got["totalResults"].(float64) != 0 {
		t.Fatalf("lookup %v", got)
	}
	danaID := s.do(t, "POST", "/Users", scimUser(dana), 201)["id"].(string)
	s.do(t, "POST", "/Users", scimUser(dana), 409)
	keepID := s.do(t, "POST", "/Users", scimUser(keep), 201)["id"].(string)
	gid := s.do(t, "POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "displayName": "sdr-west", "members": []any{}}, 201)["id"].(string)

	add := scimPatch(map[string]any{"op": "add", "path": "members", "value": []any{
		map[string]any{"value": danaID, "display": dana}, map[string]any{"value": keepID, "display": keep}}})
	s.do(t, "PATCH", "/Groups/"+gid, add, 204)
	s.do(t, "PATCH", "/Groups/"+gid, add, 204) // Okta's retry
	s.want(t, dana, map[string]bool{"west-1": true, "west-2": true, "east-1": false})
	s.want(t, keep, map[string]bool{"west-1": true, "west-2": true, "east-1": false})
	if r := s.members(t, "west-2")[dana]; r != "editor" {
		t.Fatalf("dana's role in west-2: %q", r)
	}

	// keep leaves the group: removed where the mapping added them
	// (west-2), never from west-1 where they were before.
	s.do(t, "PATCH", "/Groups/"+gid, scimPatch(map[string]any{"op": "remove", "path": `members[value eq "` + keepID + `"]`}), 204)
	s.want(t, keep, map[string]bool{"west-1": true, "west-2": false})
	time.Sleep(200 * time.Millisecond)
	s.want(t, keep, map[string]bool{"west-1": true, "west-2": false})

	// Okta deactivates dana: gone from every mapped workspace; owners stay.
	deact := scimPatch(map[string]any{"op": "replace", "value": map[string]any{"active": false}})
	s.do(t, "PATCH", "/Users/"+danaID, deact, 200)
	s.do(t, "PATCH", "/Users/"+danaID, deact, 200)
	s.want(t, dana, map[string]bool{"west-1": false, "west-2": false, "east-1": false})
	s.want(t, "owner-west-1@agency.test", map[string]bool{"west-1": true})
	s.noDuplicates(t)

	// The audit trail names the provisioner and the SCIM request id.
	var events agencyv1.ListEventsResponse
	if err := (grpcInvoker{conn: s.e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{PageSize: 1000}, &events); err != nil {
		t.Fatal(err)
	}
	invites, removals := 0, 0
	for _, e := range events.GetEvents() {
		if !strings.HasPrefix(e.GetPrincipal(), "scim:tokens/") || e.GetRequestId() == "" {
			continue
		}
		switch {
		case strings.HasSuffix(e.GetMethod(), "/OnboardMembers") && e.GetCode() == "":
			invites++
		case strings.HasSuffix(e.GetMethod(), "/RemoveMemberEverywhere") && e.GetCode() == "":
			removals++
		}
	}
	if invites != 2 || removals != 2 {
		t.Fatalf("audited %d invite and %d removal operations, want 2 and 2 (one per person and change)", invites, removals)
	}
}

// TestSCIMEntraProvisioning replays Entra's sequence with its quirks.
func TestSCIMEntraProvisioning(t *testing.T) {
	s := startSCIMEnv(t, 0)
	const ryan = "ryan@agency.test"
	s.do(t, "GET", "/Users?"+scimFilter("userName", ryan), nil, 200)
	u := scimUser(ryan)
	u["schemas"] = []string{scim.SchemaUser, scim.SchemaEnterprise}
	u[scim.SchemaEnterprise] = map[string]any{"department": "Sales"}
	id := s.do(t, "POST", "/Users", u, 201)["id"].(string)
	s.do(t, "GET", "/Groups?excludedAttributes=members&"+scimFilter("displayName", "sdr-east"), nil, 200)
	gid := s.do(t, "POST", "/Groups", map[string]any{"schemas": []string{scim.SchemaGroup}, "externalId": "g1", "displayName": "sdr-east", "members": []any{}}, 201)["id"].(string)
	s.do(t, "PATCH", "/Groups/"+gid, scimPatch(map[string]any{"op": "Add", "path": "members", "value": []any{map[string]any{"value": id}}}), 204)
	s.want(t, ryan, map[string]bool{"east-1": true, "west-1": false, "west-2": false})
	if r := s.members(t, "east-1")[ryan]; r != "view" {
		t.Fatalf("ryan's role %q", r)
	}

	off := scimPatch(map[string]any{"op": "Replace", "path": "active", "value": "False"})
	s.do(t, "PATCH", "/Users/"+id, off, 200)
	s.want(t, ryan, map[string]bool{"east-1": false})
	// Still readable, inactive, by the filter Entra's validator uses.
	if got := s.do(t, "GET", "/Users?"+scimFilter("userName", ryan), nil, 200); got["Resources"].([]any)[0].(map[string]any)["active"] != false {
		t.Fatalf("deactivated user %v", got)
	}
	s.do(t, "PATCH", "/Users/"+id, scimPatch(map[string]any{"op": "Replace", "path": "active", "value": "True"}), 200)
	s.want(t, ryan, map[string]bool{"east-1": true})
	s.do(t, "DELETE", "/Users/"+id, nil, 204)
	s.want(t, ryan, map[string]bool{"east-1": false})
	s.noDuplicates(t)
}

// TestSCIMRemovalCap: removals over --scim-max-removals-per-hour are
// paused (metric, audit event) until an admin releases them.
func TestSCIMRemovalCap(t *testing.T) {
	s := startSCIMEnv(t, 1)
	const pat = "pat@agency.test"
	id := s.do(t, "POST", "/Users", scimUser(pat), 201)["id"].(string)
	s.do(t, "POST", "/Groups", map[string]any{"displayName": "sdr-west", "members": []any{map[string]any{"value": id}}}, 201)
	s.want(t, pat, map[string]bool{"west-1": true, "west-2": true})
	s.do(t, "PATCH", "/Users/"+id, scimPatch(map[string]any{"op": "replace", "path": "active", "value": false}), 200)
	deadline := time.Now().Add(20 * time.Second)
	for {
		left := 0
		for _, ws := range []string{"west-1", "west-2"} {
			if _, ok := s.members(t, ws)[pat]; ok {
				left++
			}
		}
		if left == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pat is in %d west workspaces, want 1 (one removal allowed, one paused)", left)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.doAs(t, testToken, "GET", scim.ReleasePath, nil, 200); got["paused"].(float64) != 1 {
		t.Fatalf("paused %v", got)
	}
	resp, err := http.Get(s.e.httpBase + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "agencyd_scim_removals_paused_total 1") {
		t.Fatal("no agencyd_scim_removals_paused_total 1 in /metrics")
	}
	// Only an unscoped admin releases.
	s.doAs(t, s.token, "POST", scim.ReleasePath, nil, 403)
	if got := s.doAs(t, testToken, "POST", scim.ReleasePath, nil, 200); got["released"].(float64) != 1 {
		t.Fatalf("released %v", got)
	}
	s.want(t, pat, map[string]bool{"west-1": false, "west-2": false})
	var events agencyv1.ListEventsResponse
	if err := (grpcInvoker{conn: s.e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.AuditService/ListEvents", &agencyv1.ListEventsRequest{}, &events); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events.GetEvents() {
		seen[e.GetMethod()] = true
	}
	if !seen["scim/RemovalsPaused"] || !seen["scim/ReleaseRemovals"] {
		t.Fatalf("audit methods %v", seen)
	}
	s.noDuplicates(t)
}

// TestSCIMProvisionerToken: the provisioner role is allowed SCIM and
// nothing else; other tokens are refused by SCIM; only an unscoped admin
// mints a provisioner token.
func TestSCIMProvisionerToken(t *testing.T) {
	s := startSCIMEnv(t, 0)
	ctx := context.Background()
	for m := range expectedMatrix {
		req, resp := (&matrixFixture{e: s.e}).request(t, m, "workspaces/west-1", "owner-west-1@agency.test")
		err := grpcInvoker{conn: s.e.conn, token: s.token}.Invoke(ctx, fullMethod(m), req, resp)
		wantReason(t, wantCode(t, err, codes.PermissionDenied), "PERMISSION_DENIED")
	}
	s.doAs(t, testToken, "GET", scim.Prefix+"/Users", nil, 403)
	s.doAs(t, "", "GET", scim.Prefix+"/Users", nil, 401)
	s.do(t, "GET", "/ServiceProviderConfig", nil, 200)

	var scoped agencyv1.CreateTokenResponse
	admin := grpcInvoker{conn: s.e.conn, token: testToken}
	if err := admin.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, WorkspaceScope: "team=sdr-west"}}, &scoped); err != nil {
		t.Fatal(err)
	}
	err := grpcInvoker{conn: s.e.conn, token: scoped.GetSecret()}.Invoke(ctx, "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, WorkspaceScope: "team=sdr-west"}}, &agencyv1.CreateTokenResponse{})
	wantCode(t, err, codes.PermissionDenied)
	err = admin.Invoke(ctx, "agency.v1.TokenService/CreateToken",
		&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, WorkspaceScope: "team=sdr-west"}}, &agencyv1.CreateTokenResponse{})
	wantCode(t, err, codes.PermissionDenied)
}
