package e2e

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// redisDownBound is the README's bound: a call fails closed this long at
// most after Redis goes away (an Instantly request already in flight
// aside). The assertions allow twice as much for a loaded CI machine.
const redisDownBound = 1100 * time.Millisecond

// TestRedisDownFailsClosedWithinBound: with Redis gone, a mutating call
// fails closed (UNAVAILABLE, nothing sent to Instantly) within the bound,
// whether Redis was gone before the call or died during it, and whether it
// refuses connections (stopped) or answers nothing (stalled: every round
// trip runs into its timeout, the worst case).
func TestRedisDownFailsClosedWithinBound(t *testing.T) {
	t.Run("stopped", func(t *testing.T) {
		srv := redistest.StartServer(t)
		testRedisDown(t, srv.Addr, srv.Stop)
	})
	t.Run("stalled", func(t *testing.T) {
		srv := redistest.StartServer(t)
		p := startStallProxy(t, srv.Addr)
		testRedisDown(t, p.addr, p.stall)
	})
}

func testRedisDown(t *testing.T, addr string, kill func()) {
	const latency = 600 * time.Millisecond
	e := startEnvSim(t, sim.Config{Latency: latency}, "redis://"+addr+"/0", 0, nil)
	id, key := e.sim.CreateWorkspace("acme")
	inv := e.invokers(testToken)[0] // gRPC
	if err := inv.Invoke(context.Background(), "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: "acme",
		Workspace: &agencyv1.Workspace{DisplayName: "acme", ApiKey: &key}}, &agencyv1.Workspace{}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetStats()

	// Redis dies while the fan-out's read is at Instantly: its write must
	// not be sent, and the call must end soon after the read's answer.
	type answer struct {
		resp *agencyv1.FanoutResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp := &agencyv1.FanoutResponse{}
		err := inv.Invoke(context.Background(), "agency.v1.FanoutService/EnsureTagEverywhere",
			&agencyv1.EnsureTagEverywhereRequest{Selector: &agencyv1.WorkspaceSelector{Names: []string{"workspaces/acme"}}, Label: "x"}, resp)
		done <- answer{resp, err}
	}()
	time.Sleep(latency / 2)
	stopped := time.Now()
	kill()
	a := <-done
	elapsed := time.Since(stopped)
	t.Logf("Redis died mid-call: the call ended %v later (%v of it the read in flight)", elapsed.Round(time.Millisecond), latency/2)
	if n := e.sim.Stats()[id].Requests; n != 1 {
		t.Fatalf("Instantly saw %d requests, want the read only (machine too slow for this timing?)", n)
	}
	if a.err == nil {
		r := a.resp.GetResults()
		if len(r) != 1 || r[0].GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED || codes.Code(r[0].GetStatus().GetCode()) != codes.Unavailable {
			t.Fatalf("results %v, want one FAILED UNAVAILABLE", r)
		}
	} else if status.Code(a.err) != codes.Unavailable {
		t.Fatalf("call error %v, want UNAVAILABLE", a.err)
	}
	if elapsed-latency/2 > 2*redisDownBound {
		t.Fatalf("failed closed %v after Redis died (read aside), want within %v (bound %v)", elapsed-latency/2, 2*redisDownBound, redisDownBound)
	}

	// Redis already gone: a mutating call fails closed at once.
	for _, inv := range e.invokers(testToken) {
		start := time.Now()
		err := inv.Invoke(context.Background(), "agency.v1.TagService/CreateTag",
			&agencyv1.CreateTagRequest{Parent: "workspaces/acme", Tag: &agencyv1.Tag{Label: "y"}}, &agencyv1.Tag{})
		elapsed := time.Since(start)
		t.Logf("%s: Redis down: failed closed in %v", inv.Transport(), elapsed.Round(time.Millisecond))
		st := wantCode(t, err, codes.Unavailable)
		wantReason(t, st, "STORE_UNAVAILABLE")
		if elapsed > 2*redisDownBound {
			t.Fatalf("%s: failed closed after %v, want within %v (bound %v)", inv.Transport(), elapsed, 2*redisDownBound, redisDownBound)
		}
	}
	if n := e.sim.Stats()[id].Requests; n != 1 {
		t.Fatalf("Instantly saw %d requests with Redis down", n)
	}
}

// stallProxy forwards TCP to Redis until stall; from then on it delivers
// nothing either way and holds every connection, old and new, open: a
// Redis that stopped answering (SIGSTOP, a partition).
type stallProxy struct {
	addr    string
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{addr: lis.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = lis.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			p.track(c)
			if p.stalled.Load() {
				continue // held open, never answered
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.track(up)
			wg.Go(func() { p.pump(up, c) })
			wg.Go(func() { p.pump(c, up) })
		}
	})
	return p
}

func (p *stallProxy) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

// pump copies src to dst until stalled, then swallows what src sends.
func (p *stallProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}

func (p *stallProxy) stall() { p.stalled.Store(true) }
