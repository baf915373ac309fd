package servicetest

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/agencyplane/agencyplane/internal/sim"
)

// Requests counts the API requests the simulator has seen for an Instantly
// workspace: a test that a refusal reached Instantly not at all compares
// it before and after.
func (e *Env) Requests(instantlyID string) int64 {
	return e.Sim.Stats()[instantlyID].Requests
}

// RevokeKeys revokes every API key of an Instantly workspace, so a
// registered workspace's stored credential is refused (401).
func (e *Env) RevokeKeys(t testing.TB, instantlyID string) {
	t.Helper()
	st, err := e.Sim.WorkspaceState(instantlyID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range st.APIKeys {
		if err := e.Sim.RevokeAPIKey(instantlyID, k.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// State is the simulator's copy of Instantly workspace iid.
func (e *Env) State(t testing.TB, iid string) sim.WorkspaceState {
	t.Helper()
	st, err := e.Sim.WorkspaceState(iid)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// AddMember invites email with role into Instantly workspace iid, as the
// app would, and accepts the invitation when accepted is set.
func (e *Env) AddMember(t testing.TB, iid, email, role string, accepted bool) sim.WorkspaceMember {
	t.Helper()
	m, err := e.Sim.InviteMember(iid, email, role)
	if err != nil {
		t.Fatal(err)
	}
	if accepted {
		if err := e.Sim.AcceptMember(iid, m.ID); err != nil {
			t.Fatal(err)
		}
		m.Accepted = true
	}
	return m
}

// MemberByEmail is the simulator's member of iid with that (stored,
// lower-case) email, or nil.
func (e *Env) MemberByEmail(t testing.TB, iid, email string) *sim.WorkspaceMember {
	t.Helper()
	for _, m := range e.State(t, iid).Members {
		if m.Email == email {
			return &m
		}
	}
	return nil
}

// upstreamFailures are the failures every per-workspace call maps alike:
// a revoked stored key is the caller's credential problem, an Instantly
// that keeps failing (past the client's retries) is unavailable.
var upstreamFailures = []struct {
	name   string
	sim    sim.Config
	revoke bool // revoke the workspace's keys after setup
	code   codes.Code
}{
	{name: "revoked key", revoke: true, code: codes.FailedPrecondition},
	{name: "upstream down", sim: sim.Config{FaultRate: 1}, code: codes.Unavailable},
}

// EachUpstreamFailure checks, once per way Instantly fails, that every
// call calls(w) makes maps to that failure's code. build makes a fresh
// world w for the simulator config and returns it with its Env and the
// Instantly workspace whose keys are revoked in the revoked-key case.
func EachUpstreamFailure[W any](t *testing.T, build func(*testing.T, sim.Config) (W, *Env, string), calls func(W) map[string]error) {
	t.Helper()
	for _, f := range upstreamFailures {
		t.Run(f.name, func(t *testing.T) {
			w, e, iid := build(t, f.sim)
			if f.revoke {
				e.RevokeKeys(t, iid)
			}
			for what, err := range calls(w) {
				t.Run(what, func(t *testing.T) { WantCode(t, err, f.code) })
			}
		})
	}
}
