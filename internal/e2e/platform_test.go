package e2e

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// TestCrossTransport: what one transport writes the other reads.
func TestCrossTransport(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	g, r := e.grpc(testToken), e.rest(testToken)
	_, k1 := e.newInstantlyWorkspace("via rest")
	_, k2 := e.newInstantlyWorkspace("via grpc")
	if _, err := r.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "from-rest", Workspace: &agencyv1.Workspace{DisplayName: "R", ApiKey: &k1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Create(ctx, &agencyv1.CreateWorkspaceRequest{WorkspaceId: "from-grpc", Workspace: &agencyv1.Workspace{DisplayName: "G", ApiKey: &k2}}); err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]api{"grpc": g, "rest": r} {
		list, err := a.List(ctx, &agencyv1.ListWorkspacesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, w := range list.GetWorkspaces() {
			got = append(got, w.GetName())
		}
		if strings.Join(got, ",") != "workspaces/from-grpc,workspaces/from-rest" {
			t.Fatalf("%s lists %v", name, got)
		}
	}
}

// TestErrorDetailsOverREST: every detail type reaches REST clients intact
// (an unlinked type would turn the answer into a 500).
func TestErrorDetailsOverREST(t *testing.T) {
	e := startEnv(t, memoryBackend)
	_, err := e.rest(testToken).Get(context.Background(), "workspaces/missing")
	st := wantCode(t, err, codes.NotFound)
	wantReason(t, st, "NOT_FOUND")
	var ri *errdetails.ResourceInfo
	for _, d := range st.Details() {
		if v, ok := d.(*errdetails.ResourceInfo); ok {
			ri = v
		}
	}
	if ri == nil || ri.GetResourceType() != "workspace" || ri.GetResourceName() != "workspaces/missing" {
		t.Fatalf("ResourceInfo %v", st.Details())
	}
}

func TestHTTPEndpoints(t *testing.T) {
	e := startEnv(t, memoryBackend)
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, e.httpBase+path, nil)
		req.Header.Set("X-Request-Id", "req-abc.123")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header
	}
	if code, body, _ := get("/healthz"); code != 200 || !strings.Contains(body, "ok") {
		t.Fatalf("/healthz %d %s", code, body)
	}
	if code, body, _ := get("/readyz"); code != 200 || !strings.Contains(body, "ready") {
		t.Fatalf("/readyz %d %s", code, body)
	}
	code, body, _ := get("/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &doc) != nil || doc.OpenAPI != "3.1.0" || doc.Paths["/v1/workspaces"]["post"] == nil || doc.Paths["/v1/workspaces/{workspace}:verify"] == nil {
		t.Fatalf("/openapi.json %d: %.200s", code, body)
	}
	code, _, hdr := get("/v1/workspaces")
	if code != 200 || hdr.Get("X-Request-Id") != "req-abc.123" {
		t.Fatalf("request id not echoed: %d %v", code, hdr)
	}
	if code, body, _ := get("/metrics"); code != 200 || !strings.Contains(body, `grpc_server_handled_total{grpc_code="OK",grpc_method="ListWorkspaces"`) {
		t.Fatalf("/metrics %d lacks the RPC counter", code)
	}
	if !strings.Contains(e.logs.String(), `"request_id":"req-abc.123"`) {
		t.Fatal("request id missing from the log line")
	}
}

// TestHealthAndReflectionNeedNoToken: grpc-health-probe and grpcurl work
// with no credentials and no proto files.
func TestHealthAndReflectionNeedNoToken(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	resp, err := healthpb.NewHealthClient(e.conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "agency.v1.WorkspaceService"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", resp, err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range r.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "agency.v1.WorkspaceService") {
		t.Fatalf("reflection lists %v", names)
	}
}

// TestNoPlaintextSecretAnywhere registers workspaces on Redis, then reads
// every value agencyd wrote and every log line, looking for the keys in any
// common encoding.
func TestNoPlaintextSecretAnywhere(t *testing.T) {
	e := startEnv(t, redisBackend)
	ctx := context.Background()
	var secrets []string
	for i, a := range []api{e.grpc(testToken), e.rest(testToken)} {
		for j := range 3 {
			id, key := e.newInstantlyWorkspace("secret test")
			secrets = append(secrets, key)
			w, err := a.Create(ctx, &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "S", ApiKey: &key, Labels: map[string]string{"n": string(rune('a' + i*3 + j))}}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Verify(ctx, w.GetName()); err != nil {
				t.Fatal(err)
			}
			// Rotation writes a new sealed key too.
			k2, err := e.sim.CreateAPIKey(id, "rotated", []string{"all:all"})
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, k2.Key)
			if _, err := a.Rotate(ctx, w.GetName(), k2.Key); err != nil {
				t.Fatal(err)
			}
		}
	}
	secrets = append(secrets, testToken)
	rdb := redistest.Start(t)
	keys := redistest.Keys(t, rdb, e.prefix)
	if len(keys) < 10 {
		t.Fatalf("expected agencyd's keys under %s, found %v", e.prefix, keys)
	}
	var dump strings.Builder
	for _, k := range keys {
		dump.WriteString(k + "\n")
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "none":
			// Expired since SCAN listed it (rate-limit keys live milliseconds).
		case "string":
			dump.WriteString(rdb.Get(ctx, k).Val())
		case "zset":
			dump.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				fmt.Fprint(&dump, m.Values)
			}
		default:
			t.Fatalf("key %s has unexpected type %s: extend this test", k, typ)
		}
		dump.WriteString("\n")
	}
	assertNoSecrets(t, "Redis", dump.String(), secrets)
	assertNoSecrets(t, "logs", e.logs.String(), secrets)
}

func assertNoSecrets(t *testing.T, where, haystack string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		for _, form := range []string{s, base64.StdEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)), hex.EncodeToString([]byte(s))} {
			if strings.Contains(haystack, form) {
				t.Fatalf("a secret appears in %s", where)
			}
		}
	}
}

// TestReadinessFollowsRedis: /readyz and gRPC health go unready when Redis
// dies, while liveness stays up.
func TestReadinessFollowsRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnvOn(t, "redis://"+srv.Addr+"/0", 100*time.Millisecond)
	srv.Stop()
	resp, err := http.Get(e.httpBase + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d", resp.StatusCode)
	}
	resp, err = http.Get(e.httpBase + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := healthpb.NewHealthClient(e.conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_NOT_SERVING {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gRPC health still %v %v", r, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A call that needs the store fails cleanly, naming the store, not Redis internals.
	_, err = e.grpc(testToken).List(context.Background(), &agencyv1.ListWorkspacesRequest{})
	st := wantCode(t, err, codes.Unavailable)
	wantReason(t, st, "STORE_UNAVAILABLE")
	if strings.Contains(strings.ToLower(st.Message()), "dial") || strings.Contains(st.Message(), srv.Addr) {
		t.Fatalf("Redis internals leaked: %q", st.Message())
	}
}
