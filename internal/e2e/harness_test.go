package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/app"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
	"github.com/agencyplane/agencyplane/internal/vault"
)

func TestMain(m *testing.M) { redistest.MainThen(m, scanSuiteLogs) }

// suiteLogs holds every server log of the whole suite, scanned for secrets
// when it ends.
var suiteLogs struct {
	sync.Mutex
	bufs []*syncbuf.Buffer
}

var (
	tokenShapeRE = regexp.MustCompile(`agp_[A-Za-z0-9_-]{43}`)
	base64RunRE  = regexp.MustCompile(`[A-Za-z0-9+/]{40,}={0,2}`)
	simKeyRE     = regexp.MustCompile(`^[0-9a-f-]{36}:[A-Za-z0-9]+$`)
)

// scanSuiteLogs fails the suite when any log line of any server holds a
// control-plane token, an Instantly key (the simulator's keys are base64 of
// "<uuid>:<secret>") or the bootstrap token.
func scanSuiteLogs(code int) int {
	suiteLogs.Lock()
	defer suiteLogs.Unlock()
	for _, b := range suiteLogs.bufs {
		logs := b.String()
		leak := tokenShapeRE.FindString(logs)
		if strings.Contains(logs, testToken) {
			leak = "the bootstrap token"
		}
		for _, run := range base64RunRE.FindAllString(logs, -1) {
			if raw, err := base64.StdEncoding.DecodeString(run); err == nil && simKeyRE.Match(raw) {
				leak = "an Instantly key"
			}
		}
		if leak != "" {
			fmt.Fprintf(os.Stderr, "FAIL: a secret (%s) appears in the server logs of this suite\n", leak)
			return 1
		}
	}
	return code
}

const testToken = "e2e-admin-token-0123456789"

// env is one running agencyd plus the simulator it talks to.
type env struct {
	t        testing.TB
	sim      *sim.Server
	app      *app.App
	httpBase string
	conn     *grpc.ClientConn
	logs     *syncbuf.Buffer
	prefix   string // Redis key prefix, "" on the memory backend
}

type backend string

const (
	memoryBackend backend = "memory"
	redisBackend  backend = "redis"
)

func startEnv(t *testing.T, b backend) *env {
	t.Helper()
	if b == redisBackend {
		return startEnvOn(t, "redis://"+redistest.Start(t).Options().Addr+"/0", 0)
	}
	return startEnvOn(t, "", 0)
}

// startEnvOn starts agencyd on the given Redis URL ("" = memory backend).
func startEnvOn(t *testing.T, redisURL string, readinessInterval time.Duration) *env {
	t.Helper()
	return startEnvWith(t, redisURL, readinessInterval, nil)
}

// startEnvWith is startEnvOn with a last word on the configuration.
func startEnvWith(t testing.TB, redisURL string, readinessInterval time.Duration, tweak func(*config.Config)) *env {
	t.Helper()
	return startEnvSim(t, sim.Config{}, redisURL, readinessInterval, tweak)
}

// startEnvSim is startEnvWith with a configured simulator.
func startEnvSim(t testing.TB, simCfg sim.Config, redisURL string, readinessInterval time.Duration, tweak func(*config.Config)) *env {
	t.Helper()
	simSrv := sim.New(simCfg)
	hs := httptest.NewServer(simSrv)
	t.Cleanup(hs.Close)

	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load([]string{
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--instantly-url", hs.URL, "--log-level", "debug", "--shutdown-timeout", "5s",
	}, func(k string) string {
		switch k {
		case "AGENCY_BOOTSTRAP_TOKEN":
			return testToken
		case "AGENCY_MASTER_KEY":
			return base64.StdEncoding.EncodeToString(key)
		}
		return ""
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, sim: simSrv, logs: &syncbuf.Buffer{}}
	suiteLogs.Lock()
	suiteLogs.bufs = append(suiteLogs.bufs, e.logs)
	suiteLogs.Unlock()
	if redisURL != "" {
		cfg.RedisURL = redisURL
		cfg.RedisPrefix = redistest.Prefix(t)
		e.prefix = cfg.RedisPrefix
	}
	cfg.ReadinessInterval = readinessInterval
	scheme := "http://"
	var dialOpt grpc.DialOption = grpc.WithTransportCredentials(insecure.NewCredentials())
	if tweak != nil {
		tweak(cfg)
		if cfg.TLSCert != "" {
			scheme = "https://"
		}
	}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := app.New(context.Background(), cfg, logger, e.logs)
	if err != nil {
		t.Fatal(err)
	}
	e.app = a
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agencyd Run: %v", err)
		}
	})
	e.httpBase = scheme + a.Server.HTTPAddr()
	if scheme == "https://" {
		return e // TLS tests dial with their own certificates
	}
	waitHealthy(t, e.httpBase)
	conn, err := grpc.NewClient(a.Server.GRPCAddr(), dialOpt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.conn = conn
	return e
}

func waitHealthy(t testing.TB, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("agencyd did not become healthy")
}

// newInstantlyWorkspace creates a workspace in the simulator and returns its
// id and all:all key.
func (e *env) newInstantlyWorkspace(name string) (string, string) {
	return e.sim.CreateWorkspace(name)
}

// api is the WorkspaceService as a test sees it; grpcAPI and restAPI
// implement it so every case runs over both transports.
type api interface {
	Create(ctx context.Context, req *agencyv1.CreateWorkspaceRequest) (*agencyv1.Workspace, error)
	Get(ctx context.Context, name string) (*agencyv1.Workspace, error)
	List(ctx context.Context, req *agencyv1.ListWorkspacesRequest) (*agencyv1.ListWorkspacesResponse, error)
	Update(ctx context.Context, w *agencyv1.Workspace, paths ...string) (*agencyv1.Workspace, error)
	Delete(ctx context.Context, name string) error
	Rotate(ctx context.Context, name, key string) (*agencyv1.Workspace, error)
	Verify(ctx context.Context, name string) (*agencyv1.Workspace, error)
}

type grpcAPI struct {
	c     agencyv1.WorkspaceServiceClient
	token string
}

func (e *env) grpc(token string) *grpcAPI {
	return &grpcAPI{c: agencyv1.NewWorkspaceServiceClient(e.conn), token: token}
}

func (g *grpcAPI) ctx(ctx context.Context) context.Context {
	if g.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
}

func (g *grpcAPI) Create(ctx context.Context, req *agencyv1.CreateWorkspaceRequest) (*agencyv1.Workspace, error) {
	return g.c.CreateWorkspace(g.ctx(ctx), req)
}

func (g *grpcAPI) Get(ctx context.Context, name string) (*agencyv1.Workspace, error) {
	return g.c.GetWorkspace(g.ctx(ctx), &agencyv1.GetWorkspaceRequest{Name: name})
}

func (g *grpcAPI) List(ctx context.Context, req *agencyv1.ListWorkspacesRequest) (*agencyv1.ListWorkspacesResponse, error) {
	return g.c.ListWorkspaces(g.ctx(ctx), req)
}

func (g *grpcAPI) Update(ctx context.Context, w *agencyv1.Workspace, paths ...string) (*agencyv1.Workspace, error) {
	return g.c.UpdateWorkspace(g.ctx(ctx), &agencyv1.UpdateWorkspaceRequest{Workspace: w, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}})
}

func (g *grpcAPI) Delete(ctx context.Context, name string) error {
	_, err := g.c.DeleteWorkspace(g.ctx(ctx), &agencyv1.DeleteWorkspaceRequest{Name: name})
	return err
}

func (g *grpcAPI) Rotate(ctx context.Context, name, key string) (*agencyv1.Workspace, error) {
	return g.c.RotateWorkspaceCredential(g.ctx(ctx), &agencyv1.RotateWorkspaceCredentialRequest{Name: name, ApiKey: key})
}

func (g *grpcAPI) Verify(ctx context.Context, name string) (*agencyv1.Workspace, error) {
	return g.c.VerifyWorkspace(g.ctx(ctx), &agencyv1.VerifyWorkspaceRequest{Name: name})
}

type restAPI struct {
	base   string
	token  string
	client *http.Client // nil = http.DefaultClient
}

func (e *env) rest(token string) *restAPI { return &restAPI{base: e.httpBase, token: token} }

// call sends a REST request; a non-2xx answer is decoded as google.rpc.Status
// into a gRPC status error, so assertions are the same for both transports.
func (r *restAPI) call(ctx context.Context, method, path string, body []byte, out proto.Message) error {
	_, err := r.raw(ctx, method, path, body, out)
	return err
}

func (r *restAPI) raw(ctx context.Context, method, path string, body []byte, out proto.Message) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return nil, err
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := r.client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		var st spb.Status
		if err := protojson.Unmarshal(data, &st); err != nil {
			return resp, fmt.Errorf("HTTP %d with a body that is not a google.rpc.Status (%v): %s", resp.StatusCode, err, data)
		}
		return resp, &httpStatusError{httpCode: resp.StatusCode, st: status.FromProto(&st)}
	}
	if out != nil {
		if err := protojson.Unmarshal(data, out); err != nil {
			return resp, fmt.Errorf("decode %s: %v", data, err)
		}
	}
	return resp, nil
}

// httpStatusError is a REST error answer: the HTTP status and the decoded
// google.rpc.Status (with its details resolved).
type httpStatusError struct {
	httpCode int
	st       *status.Status
}

func (e *httpStatusError) Error() string { return fmt.Sprintf("HTTP %d: %v", e.httpCode, e.st.Err()) }

// GRPCStatus lets status.FromError read REST errors like gRPC ones.
func (e *httpStatusError) GRPCStatus() *status.Status { return e.st }

func mustJSON(m proto.Message) []byte {
	b, err := protojson.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func (r *restAPI) Create(ctx context.Context, req *agencyv1.CreateWorkspaceRequest) (*agencyv1.Workspace, error) {
	q := url.Values{}
	if req.GetWorkspaceId() != "" {
		q.Set("workspaceId", req.GetWorkspaceId())
	}
	if req.GetSubWorkspaceId() != "" {
		q.Set("subWorkspaceId", req.GetSubWorkspaceId())
	}
	path := "/v1/workspaces"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var body []byte // no body at all: the gateway leaves workspace unset
	if req.GetWorkspace() != nil {
		body = mustJSON(req.GetWorkspace())
	}
	var out agencyv1.Workspace
	return &out, r.call(ctx, http.MethodPost, path, body, &out)
}

func (r *restAPI) Get(ctx context.Context, name string) (*agencyv1.Workspace, error) {
	var out agencyv1.Workspace
	return &out, r.call(ctx, http.MethodGet, "/v1/"+name, nil, &out)
}

func (r *restAPI) List(ctx context.Context, req *agencyv1.ListWorkspacesRequest) (*agencyv1.ListWorkspacesResponse, error) {
	q := []string{}
	if req.GetPageSize() != 0 {
		q = append(q, fmt.Sprintf("pageSize=%d", req.GetPageSize()))
	}
	if req.GetPageToken() != "" {
		q = append(q, "pageToken="+urlEscape(req.GetPageToken()))
	}
	if req.GetFilter() != "" {
		q = append(q, "filter="+urlEscape(req.GetFilter()))
	}
	var out agencyv1.ListWorkspacesResponse
	return &out, r.call(ctx, http.MethodGet, "/v1/workspaces?"+strings.Join(q, "&"), nil, &out)
}

// Update sends only the masked fields: the gateway derives the field mask
// from the body's keys, as REST clients rely on.
func (r *restAPI) Update(ctx context.Context, w *agencyv1.Workspace, paths ...string) (*agencyv1.Workspace, error) {
	body := map[string]any{}
	full := map[string]any{}
	if err := jsonUnmarshal(mustJSON(w), &full); err != nil {
		return nil, err
	}
	for _, p := range paths {
		jp := jsonName(p)
		if v, ok := full[jp]; ok {
			body[jp] = v
		} else {
			body[jp] = nil
		}
	}
	if w.ApiKey != nil {
		body["apiKey"] = w.GetApiKey()
	}
	var out agencyv1.Workspace
	return &out, r.call(ctx, http.MethodPatch, "/v1/"+w.GetName(), jsonMarshal(body), &out)
}

func (r *restAPI) Delete(ctx context.Context, name string) error {
	return r.call(ctx, http.MethodDelete, "/v1/"+name, nil, &emptypb.Empty{})
}

func (r *restAPI) Rotate(ctx context.Context, name, key string) (*agencyv1.Workspace, error) {
	var out agencyv1.Workspace
	return &out, r.call(ctx, http.MethodPost, "/v1/"+name+":rotateCredential", jsonMarshal(map[string]any{"apiKey": key}), &out)
}

func (r *restAPI) Verify(ctx context.Context, name string) (*agencyv1.Workspace, error) {
	var out agencyv1.Workspace
	return &out, r.call(ctx, http.MethodPost, "/v1/"+name+":verify", []byte("{}"), &out)
}

// transports runs fn once over gRPC and once over REST.
func transports(t *testing.T, e *env, fn func(t *testing.T, a api)) {
	t.Run("grpc", func(t *testing.T) { fn(t, e.grpc(testToken)) })
	t.Run("rest", func(t *testing.T) { fn(t, e.rest(testToken)) })
}
