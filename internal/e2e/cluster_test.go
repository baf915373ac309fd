package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// The cluster tests run agencyd as real processes (several replicas on one
// Redis, against the simulator), so a replica can die by SIGKILL the way
// production ones do.

// agencydBinary builds cmd/agencyd once per test binary.
var agencydBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "agencyd-bin-*")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "agencyd")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/agencyplane/agencyplane/cmd/agencyd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build agencyd: %v\n%s", err, out)
	}
	return bin, nil
})

// cluster is a deployment of agencyd processes sharing one Redis and one
// master key, talking to one in-process simulator.
type cluster struct {
	t        *testing.T
	sim      *sim.Server
	simURL   string
	redis    *redistest.Server   // the AOF server, unless sentinel
	sentinel *redistest.Sentinel // a Sentinel deployment, when set
	prefix   string
	extra    []string // extra flags for every replica
	env      []string
	mu       sync.Mutex
	replicas []*replica
}

type replica struct {
	cmd      *exec.Cmd
	grpcAddr string
	httpAddr string
	logs     *syncbuf.Buffer
	conn     *grpc.ClientConn
	done     chan struct{}
}

// Pid is the replica's process id.
func (r *replica) Pid() int { return r.cmd.Process.Pid }

// newCluster starts replicas on one Redis with AOF (appendfsync always).
func newCluster(t *testing.T, simCfg sim.Config, replicas int, extra ...string) *cluster {
	t.Helper()
	return startCluster(t, simCfg, replicas, false, extra)
}

// newSentinelCluster starts replicas on a Sentinel deployment.
func newSentinelCluster(t *testing.T, simCfg sim.Config, replicas int, extra ...string) *cluster {
	t.Helper()
	return startCluster(t, simCfg, replicas, true, extra)
}

func startCluster(t *testing.T, simCfg sim.Config, replicas int, sentinel bool, extra []string) *cluster {
	t.Helper()
	if _, err := agencydBinary(); err != nil {
		t.Fatal(err)
	}
	s := sim.New(simCfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	key, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, sim: s, simURL: hs.URL, prefix: redistest.Prefix(t), extra: extra}
	if sentinel {
		c.sentinel = redistest.StartSentinel(t)
	} else {
		c.redis = redistest.StartServerWith(t, redistest.ServerOptions{AOF: true})
	}
	c.env = append(os.Environ(), "AGENCY_MASTER_KEY="+base64.StdEncoding.EncodeToString(key), "AGENCY_BOOTSTRAP_TOKEN="+testToken)
	for range replicas {
		c.start()
	}
	return c
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start launches one more replica and waits until it is ready.
func (c *cluster) start() *replica {
	t := c.t
	t.Helper()
	bin, _ := agencydBinary()
	r := &replica{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), logs: &syncbuf.Buffer{}, done: make(chan struct{})}
	suiteLogs.Lock()
	suiteLogs.bufs = append(suiteLogs.bufs, r.logs)
	suiteLogs.Unlock()
	args := append([]string{"--grpc-addr", r.grpcAddr, "--http-addr", r.httpAddr, "--instantly-url", c.simURL,
		"--redis-url", c.redisURL(), "--redis-prefix", c.prefix, "--log-level", "info"}, c.extra...)
	r.cmd = exec.Command(bin, args...)
	r.cmd.Env = c.env
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test binary
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { r.kill() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + r.httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-r.done:
			t.Fatalf("agencyd exited at start: %s", r.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agencyd not ready: %v\n%s", err, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	conn, err := grpc.NewClient(r.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.conn = conn
	c.mu.Lock()
	c.replicas = append(c.replicas, r)
	c.mu.Unlock()
	return r
}

// kill ends the replica with SIGKILL (nothing is flushed or handed back).
func (r *replica) kill() {
	if r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
	}
	<-r.done
}

// terminate sends SIGTERM and waits for the replica to exit.
func (r *replica) terminate(t *testing.T, within time.Duration) {
	t.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(within):
		t.Fatalf("agencyd did not exit within %v of SIGTERM", within)
	}
}

// admin is a gRPC invoker on replica i with the bootstrap token.
func (c *cluster) admin(i int) invoker {
	return grpcInvoker{conn: c.replicas[i].conn, token: testToken}
}

// register registers n simulator workspaces (in parallel) labelled
// team=<team>, each with an owner; it returns registry name → Instantly id.
func (c *cluster) register(team string, n int) map[string]string {
	t := c.t
	t.Helper()
	var mu sync.Mutex
	ids := map[string]string{}
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			name := fmt.Sprintf("%s-%03d", team, i)
			id, key := c.sim.CreateWorkspaceWithOwner(name, "owner-"+name+"@client.test")
			inv := c.admin(i % len(c.replicas))
			if err := inv.Invoke(context.Background(), "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
				Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": team}}}, &agencyv1.Workspace{}); err != nil {
				errs <- fmt.Errorf("register %s: %w", name, err)
				return
			}
			mu.Lock()
			ids["workspaces/"+name] = id
			mu.Unlock()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return ids
}

func (c *cluster) redisURL() string {
	if c.sentinel != nil {
		return c.sentinel.URL
	}
	return "redis://" + c.redis.Addr + "/0"
}

// redisClient is a client to the cluster's Redis (its primary).
func (c *cluster) redisClient() *redis.Client {
	if c.sentinel != nil {
		return c.sentinel.NewClient(c.t)
	}
	rdb := redis.NewClient(&redis.Options{Addr: c.redis.Addr})
	c.t.Cleanup(func() { rdb.Close() })
	return rdb
}

// pendingOf counts the queue entries a replica holds (its consumer name
// carries its pid).
func (c *cluster) pendingOf(r *replica) int64 {
	rdb := c.redisClient()
	res, err := rdb.XPending(context.Background(), c.prefix+"ops:queue", "workers").Result()
	if err != nil {
		return 0
	}
	for consumer, n := range res.Consumers {
		if strings.Contains(consumer, fmt.Sprintf("-%d-", r.Pid())) {
			return n
		}
	}
	return 0
}

// waitHolding waits until replica r holds queued work (so killing it
// interrupts something), failing after limit.
func (c *cluster) waitHolding(r *replica, limit time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for c.pendingOf(r) == 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("replica %d never held work", r.Pid())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
