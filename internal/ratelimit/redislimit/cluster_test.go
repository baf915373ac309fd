//go:build linux

package redislimit

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
)

// startCluster runs a one-node Redis Cluster holding every slot. One node is
// enough: Cluster refuses multi-key commands across slots even on one node.
func startCluster(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not installed")
	}
	dir := t.TempDir()
	var port int
	for { // the cluster bus takes port+10000, which must exist
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		_ = ln.Close()
		if port+10000 < 65536 {
			break
		}
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf",
		"--cluster-announce-ip", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no orphan if the test binary dies
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for c.Ping(ctx).Err() != nil {
		if ctx.Err() != nil {
			t.Fatal("cluster node did not answer PING")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	for {
		info, _ := c.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			return addr
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster not ok: %s", info)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCluster(t *testing.T) {
	addr := startCluster(t)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	l, err := New(c, testLimits(), Options{Prefix: "test:", Timeout: time.Second, DisableDenyCache: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)

	// One bucket: one key, so the script runs.
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || !r.Allowed {
		t.Fatalf("Allow([a]) = %+v, %v", r, err)
	}
	if r, err := l.Allow(ctx, []string{"a"}, 1); err != nil || r.Allowed {
		t.Fatalf("second Allow([a]) = %+v, %v; want denied", r, err)
	}
	if ks, kt := c.ClusterKeySlot(ctx, Key("test:", "a")).Val(), c.ClusterKeySlot(ctx, "{a}").Val(); ks != kt {
		t.Fatalf("a's key is in slot %d, not its hash tag's %d", ks, kt)
	}

	// Two buckets in different slots: a deployment error, not an outage.
	_, err = l.Allow(ctx, []string{"b", "c"}, 1)
	if !errors.Is(err, ErrCrossSlot) || !errors.Is(err, ratelimit.ErrInvalid) || errors.Is(err, ratelimit.ErrUnavailable) {
		t.Fatalf("Allow([b c]) on Cluster: %v; want ErrCrossSlot (ErrInvalid, not ErrUnavailable)", err)
	}
	// Nothing ran, so nothing was charged.
	for _, b := range []string{"b", "c"} {
		if r, err := l.Allow(ctx, []string{b}, 1); err != nil || !r.Allowed {
			t.Fatalf("Allow([%s]) after the cross-slot call = %+v, %v", b, r, err)
		}
	}
}
