package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/sim"
)

// SCIMOffboardConfig is one SCIM offboarding run: a person a mapped SCIM
// group put into Workspaces workspaces is deactivated (PATCH active false),
// on Replicas replicas sharing Redis, against the simulator at Instantly's
// limits with Latency.
type SCIMOffboardConfig struct {
	Workspaces int           // default 300
	Replicas   int           // default 3
	Latency    time.Duration // default 150ms
	RPS, RPM   int           // default 100, 6000 (Instantly's)
	Headroom   float64       // default 0.8
	RedisURL   string        // required
}

func (c *SCIMOffboardConfig) defaults() {
	if c.Workspaces <= 0 {
		c.Workspaces = 300
	}
	if c.Replicas <= 0 {
		c.Replicas = 3
	}
	if c.Latency < 0 {
		c.Latency = 0
	}
	if c.RPS <= 0 {
		c.RPS = ratelimit.InstantlyPerSecond
	}
	if c.RPM <= 0 {
		c.RPM = ratelimit.InstantlyPerMinute
	}
	if c.Headroom <= 0 {
		c.Headroom = ratelimit.DefaultHeadroom
	}
}

// SCIMOffboardReport is the run's line.
type SCIMOffboardReport struct {
	Workspaces int
	Measured   time.Duration // PATCH active=false sent → removed from every workspace
	Bound      time.Duration // the larger of a workspace's calls at the budget and three round trips
	Ratio      float64       // Measured / Bound: 1 is perfect
	// Remaining are workspaces the person is still in at the end (0 is
	// correct); OwnersLost, owners that are gone (0 is correct).
	Remaining, OwnersLost int
	Upstream429           int64
	Duplicates            int64
}

func (r SCIMOffboardReport) String() string {
	return fmt.Sprintf("scim-offboard: workspaces=%d measured=%.3fs bound=%.3fs ratio=%.2f remaining=%d owners_lost=%d upstream_429=%d duplicates=%d",
		r.Workspaces, r.Measured.Seconds(), r.Bound.Seconds(), r.Ratio, r.Remaining, r.OwnersLost, r.Upstream429, r.Duplicates)
}

const scimBenchPerson = "leaver@agency.example"

// RunSCIMOffboard runs the SCIM offboarding benchmark: the person joins a
// mapped group (one OnboardMembers operation into every workspace), then
// the identity provider deactivates them and the clock runs until the
// simulator shows them gone everywhere. The bound is what the "Durable bulk
// operations" issue defines: a workspace's upstream calls (one read of its
// members, one removal) at the budget's rate, or three round trips,
// whichever is longer.
func RunSCIMOffboard(ctx context.Context, cfg SCIMOffboardConfig) (SCIMOffboardReport, error) {
	cfg.defaults()
	if cfg.RedisURL == "" {
		return SCIMOffboardReport{}, errors.New("bench: a Redis URL is required")
	}
	dir, err := os.MkdirTemp("", "agencybench-scim")
	if err != nil {
		return SCIMOffboardReport{}, err
	}
	defer os.RemoveAll(dir)
	mapping := filepath.Join(dir, "scim.yaml")
	if err := os.WriteFile(mapping, []byte("groups:\n  - group: bench\n    selector: \"bench=yes\"\n    role: editor\n"), 0o600); err != nil {
		return SCIMOffboardReport{}, err
	}
	w := &world{cfg: Config{Workspaces: cfg.Workspaces, Replicas: cfg.Replicas, RPS: cfg.RPS, RPM: cfg.RPM, Headroom: cfg.Headroom,
		RedisURL: cfg.RedisURL, Latency: cfg.Latency}, keys: map[string]string{},
		args: []string{"--scim-mapping", mapping, "--scim-max-removals-per-hour", strconv.Itoa(cfg.Workspaces * 2)}}
	w.cfg.defaults()
	stopSim, err := w.serveSim(sim.Config{RPS: cfg.RPS, RPM: cfg.RPM, Latency: cfg.Latency})
	if err != nil {
		return SCIMOffboardReport{}, err
	}
	defer stopSim()
	owners := map[string]string{}
	for i := range cfg.Workspaces {
		owner := fmt.Sprintf("owner-%03d@agency.example", i)
		id, key := w.sim.CreateWorkspaceWithOwner(fmt.Sprintf("client-%03d", i), owner)
		w.keys[id], w.ids, owners[id] = key, append(w.ids, id), owner
	}
	stop, err := w.startReplicas(ctx)
	if err != nil {
		return SCIMOffboardReport{}, err
	}
	defer stop()
	if err := w.registerParallel(ctx, 32); err != nil {
		return SCIMOffboardReport{}, err
	}
	prov, err := agencyv1.NewTokenServiceClient(w.replicas[0]).CreateToken(authed(ctx), &agencyv1.CreateTokenRequest{
		Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_PROVISIONER, Description: "bench scim"}})
	if err != nil {
		return SCIMOffboardReport{}, err
	}
	base := "http://" + w.httpAddrs[len(w.httpAddrs)-1] + "/scim/v2"
	scimDo := func(method, path string, body any) (map[string]any, error) {
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Authorization", "Bearer "+prov.GetSecret())
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			return nil, fmt.Errorf("bench: SCIM %s %s: HTTP %d: %s", method, path, resp.StatusCode, out)
		}
		var m map[string]any
		_ = json.Unmarshal(out, &m)
		return m, nil
	}
	u, err := scimDo("POST", "/Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": scimBenchPerson, "active": true, "emails": []any{map[string]any{"primary": true, "value": scimBenchPerson}}})
	if err != nil {
		return SCIMOffboardReport{}, err
	}
	userID, _ := u["id"].(string)
	if _, err := scimDo("POST", "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
		"displayName": "bench", "members": []any{map[string]any{"value": userID}}}); err != nil {
		return SCIMOffboardReport{}, err
	}
	// Onboarded everywhere before the clock starts.
	if err := w.waitMember(ctx, func(n int) bool { return n == cfg.Workspaces }, 10*time.Minute); err != nil {
		return SCIMOffboardReport{}, fmt.Errorf("bench: onboarding: %w", err)
	}
	w.sim.ResetStats()
	start := time.Now()
	if _, err := scimDo("PATCH", "/Users/"+userID, map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"},
		"Operations": []any{map[string]any{"op": "replace", "value": map[string]any{"active": false}}}}); err != nil {
		return SCIMOffboardReport{}, err
	}
	werr := w.waitMember(ctx, func(n int) bool { return n == 0 }, 10*time.Minute)
	measured := time.Since(start)
	limits := ratelimit.Scaled(cfg.RPS, cfg.RPM, cfg.Headroom)
	const calls = 2 // one read of the members, one removal
	bound := max(time.Duration(calls/limits.Sustained()*float64(time.Second)), 3*cfg.Latency)
	r := SCIMOffboardReport{Workspaces: cfg.Workspaces, Measured: measured, Bound: bound, Ratio: measured.Seconds() / bound.Seconds()}
	for _, id := range w.ids {
		st, err := w.sim.WorkspaceState(id)
		if err != nil {
			return r, err
		}
		owner := false
		for _, m := range st.Members {
			switch strings.ToLower(m.Email) {
			case scimBenchPerson:
				r.Remaining++
			case owners[id]:
				owner = true
			}
		}
		if !owner {
			r.OwnersLost++
		}
	}
	for _, s := range w.sim.Stats() {
		r.Upstream429 += s.RateLimited
		r.Duplicates += s.DuplicateCreates
	}
	if werr != nil {
		return r, fmt.Errorf("bench: offboarding: %w", werr)
	}
	return r, nil
}

// waitMember polls the simulator until done(number of workspaces the
// bench person is in) holds.
func (w *world) waitMember(ctx context.Context, done func(int) bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n := 0
		for _, id := range w.ids {
			st, err := w.sim.WorkspaceState(id)
			if err != nil {
				return err
			}
			for _, m := range st.Members {
				if strings.EqualFold(m.Email, scimBenchPerson) {
					n++
					break
				}
			}
		}
		if done(n) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the person is in %d of %d workspaces after %s", n, len(w.ids), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
