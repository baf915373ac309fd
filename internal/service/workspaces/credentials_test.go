package workspaces

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// TestRotateWorkspaceCredential: a new key of the same Instantly workspace
// replaces the sealed one and clears a failed state; anything else changes
// nothing.
func TestRotateWorkspaceCredential(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	w := e.Register(t, "w", map[string]string{"client": "a"})
	other := e.Register(t, "other", map[string]string{"client": "b"})
	if _, err := e.Store.Workspaces().Update(context.Background(), w.Name, func(r *store.Workspace) error {
		r.State, r.StateMessage = store.StateCredentialInvalid, "revoked"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.Sim.CreateAPIKey(w.InstantlyID, "rotated", []string{"all:all"})
	if err != nil {
		t.Fatal(err)
	}

	got, err := s.RotateWorkspaceCredential(servicetest.Admin(), &agencyv1.RotateWorkspaceCredentialRequest{Name: w.Name, ApiKey: fresh.Key})
	if err != nil {
		t.Fatal(err)
	}
	rec := stored(t, e, w.Name)
	opened, err := e.Keyring.Open([]byte(rec.SealedCredential), []byte(w.Name))
	if err != nil || string(opened) != fresh.Key {
		t.Fatalf("stored credential %q (%v), want the new key", opened, err)
	}
	if got.GetState() != agencyv1.Workspace_STATE_ACTIVE || got.GetStateMessage() != "" || rec.CredentialKeyID != fresh.ID ||
		got.GetCredentialFingerprint() != vault.Fingerprint(fresh.Key) {
		t.Fatalf("rotated: %v, key id %q want %q", got, rec.CredentialKeyID, fresh.ID)
	}

	cases := []struct {
		name   string
		ctx    context.Context
		target string
		key    string
		code   codes.Code
		field  string
		reason string
	}{
		{"key of another workspace", nil, w.Name, other.APIKey, codes.FailedPrecondition, "", "WORKSPACE_MISMATCH"},
		{"refused key", nil, w.Name, "not-a-real-key-000", codes.InvalidArgument, "api_key", "CREDENTIAL_INVALID"},
		{"out of scope", servicetest.As(auth.RoleAdmin, "client=a"), other.Name, other.APIKey, codes.NotFound, "", "NOT_FOUND"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := orAdmin(tc.ctx)
			before := *stored(t, e, tc.target)
			_, err := s.RotateWorkspaceCredential(ctx, &agencyv1.RotateWorkspaceCredentialRequest{Name: tc.target, ApiKey: tc.key})
			servicetest.WantErr(t, err, tc.code, tc.field, tc.reason)
			if after := stored(t, e, tc.target); after.SealedCredential != before.SealedCredential || after.CredentialKeyID != before.CredentialKeyID {
				t.Fatal("a refused rotation changed the stored credential")
			}
		})
	}
}

// TestRotateSubWorkspace: a sub workspace has no key of its own; the
// refusal names the admin workspace only to a caller who may see it.
func TestRotateSubWorkspace(t *testing.T) {
	s, admin := withSub(t)
	for _, tc := range []struct {
		ctx   context.Context
		named bool
	}{{servicetest.Admin(), true}, {servicetest.As(auth.RoleAdmin, "client=a"), false}} {
		_, err := s.RotateWorkspaceCredential(tc.ctx, &agencyv1.RotateWorkspaceCredentialRequest{Name: "workspaces/sub", ApiKey: admin.APIKey})
		st := servicetest.WantErr(t, err, codes.FailedPrecondition, "", "")
		if strings.Contains(st.Message(), admin.Name) != tc.named {
			t.Fatalf("message %q: admin workspace named=%v, want %v", st.Message(), !tc.named, tc.named)
		}
	}
}

// TestVerifyWorkspace: verification classifies the stored key's standing
// with Instantly and records it; it never fails the call for that.
func TestVerifyWorkspace(t *testing.T) {
	cases := []struct {
		name  string
		fault float64
		// setup prepares the case; it returns text the state message holds.
		setup func(t *testing.T, e *servicetest.Env, w servicetest.Workspace) string
		want  agencyv1.Workspace_State
	}{
		{"active", 0, func(t *testing.T, e *servicetest.Env, w servicetest.Workspace) string {
			// Renamed in the app: verification picks the new name up.
			name := "Renamed In App"
			if _, err := e.Client.UpdateCurrentWorkspace(context.Background(), instantly.Credential{APIKey: w.APIKey},
				instantly.UpdateCurrentWorkspaceRequest{Name: &name}); err != nil {
				t.Fatal(err)
			}
			return ""
		}, agencyv1.Workspace_STATE_ACTIVE},
		{"key revoked", 0, func(t *testing.T, e *servicetest.Env, w servicetest.Workspace) string {
			e.RevokeKeys(t, w.InstantlyID)
			return "401"
		}, agencyv1.Workspace_STATE_CREDENTIAL_INVALID},
		{"key of another workspace", 0, func(t *testing.T, e *servicetest.Env, w servicetest.Workspace) string {
			otherIID, otherKey := e.Sim.CreateWorkspace("other")
			sealed, err := e.Keyring.Seal([]byte(otherKey), []byte(w.Name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.Store.Workspaces().Update(context.Background(), w.Name, func(r *store.Workspace) error {
				r.SealedCredential = string(sealed)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return otherIID
		}, agencyv1.Workspace_STATE_WORKSPACE_MISMATCH},
		{"Instantly down", 1, func(*testing.T, *servicetest.Env, servicetest.Workspace) string { return "" }, agencyv1.Workspace_STATE_UPSTREAM_UNAVAILABLE},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, e := newTestService(t, servicetest.Options{Sim: sim.Config{FaultRate: tc.fault}})
			verifiedAt := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
			s.d.Now = func() time.Time { return verifiedAt }
			w := e.Register(t, "w", nil)
			msg := tc.setup(t, e, w)
			before := stored(t, e, w.Name)
			got, err := s.VerifyWorkspace(servicetest.Admin(), &agencyv1.VerifyWorkspaceRequest{Name: w.Name})
			if err != nil {
				t.Fatal(err)
			}
			rec := stored(t, e, w.Name)
			if got.GetState() != tc.want || rec.State != stateFromProto(tc.want) || !strings.Contains(got.GetStateMessage(), msg) ||
				(tc.want != agencyv1.Workspace_STATE_ACTIVE) != (got.GetStateMessage() != "") || !rec.LastVerifyTime.Equal(verifiedAt) {
				t.Fatalf("verified %v, stored %s, want %v with %q in the message", got, rec.State, tc.want, msg)
			}
			upstream, err := e.Sim.WorkspaceState(w.InstantlyID)
			if err != nil {
				t.Fatal(err)
			}
			// Instantly's name is recorded only from a key that still acts on the workspace.
			wantName := before.InstantlyWorkspaceName
			if tc.want == agencyv1.Workspace_STATE_ACTIVE {
				wantName = upstream.Workspace.Name
			}
			if got.GetInstantlyWorkspaceName() != wantName {
				t.Fatalf("Instantly name %q, want %q", got.GetInstantlyWorkspaceName(), wantName)
			}
			// Only an active key is identified among the workspace's keys.
			if (rec.CredentialKeyID != "") != (tc.want == agencyv1.Workspace_STATE_ACTIVE) {
				t.Fatalf("key id %q in state %v", rec.CredentialKeyID, tc.want)
			}
		})
	}
	s, e := newTestService(t, servicetest.Options{})
	e.Register(t, "b", map[string]string{"client": "b"})
	_, err := s.VerifyWorkspace(servicetest.As(auth.RoleAdmin, "client=a"), &agencyv1.VerifyWorkspaceRequest{Name: "workspaces/b"})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	if rec := stored(t, e, "workspaces/b"); !rec.LastVerifyTime.Equal(rec.CreateTime) {
		t.Fatal("an out-of-scope verification was recorded")
	}
}

func stateFromProto(s agencyv1.Workspace_State) store.State {
	for _, st := range []store.State{store.StateActive, store.StateCredentialInvalid, store.StateWorkspaceMismatch, store.StateUpstreamUnavailable} {
		if stateToProto(st) == s {
			return st
		}
	}
	return ""
}

// TestVerifyReseals: after a master-key rotation, verifying re-seals the
// credential under the current key, and it still opens to the same key.
func TestVerifyReseals(t *testing.T) {
	e := servicetest.New(t, servicetest.Options{})
	w := e.Register(t, "w", nil)
	current, err := vault.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	old := make([]byte, 32)
	for i := range old {
		old[i] = byte(i + 1) // servicetest's master key
	}
	kr, err := vault.NewKeyring(current, old)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Deps{Store: e.Scoped, Raw: e.Store.Workspaces(), Vault: kr, Upstream: e.Client,
		Resolver: resolve.NewResolver(e.Scoped, e.Store.Workspaces(), kr, e.Pages), PageTokens: e.Pages, Logger: slog.New(slog.DiscardHandler)})
	if !kr.NeedsReseal([]byte(stored(t, e, w.Name).SealedCredential)) {
		t.Fatal("fixture: the credential is already under the current key")
	}
	if _, err := s.VerifyWorkspace(servicetest.Admin(), &agencyv1.VerifyWorkspaceRequest{Name: w.Name}); err != nil {
		t.Fatal(err)
	}
	sealed := []byte(stored(t, e, w.Name).SealedCredential)
	onlyCurrent, err := vault.NewKeyring(current)
	if err != nil {
		t.Fatal(err)
	}
	if opened, err := onlyCurrent.Open(sealed, []byte(w.Name)); err != nil || string(opened) != w.APIKey {
		t.Fatalf("not re-sealed under the current key: %q %v", opened, err)
	}
}

// TestTransferOwnership: the change reaches Instantly; a wrong secret is
// Instantly's refusal, mapped; out of scope never reaches Instantly.
func TestTransferOwnership(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	w := e.Register(t, "w", map[string]string{"client": "a"})
	m, err := e.Sim.InviteMember(w.InstantlyID, "next@example.com", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Sim.AcceptMember(w.InstantlyID, m.ID); err != nil {
		t.Fatal(err)
	}
	sec, err := e.Sim.OwnerTransferSecret(w.InstantlyID)
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.TransferOwnership(servicetest.As(auth.RoleAdmin, "client=b"), &agencyv1.TransferOwnershipRequest{Name: w.Name, Email: "next@example.com", Sec: sec})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
	if e.Requests(w.InstantlyID) != 0 {
		t.Fatal("an out-of-scope transfer reached Instantly")
	}
	_, err = s.TransferOwnership(servicetest.Admin(), &agencyv1.TransferOwnershipRequest{Name: w.Name, Email: "next@example.com", Sec: "wrong"})
	servicetest.WantErr(t, err, codes.PermissionDenied, "", "SCOPE_DENIED")

	got, err := s.TransferOwnership(servicetest.Admin(), &agencyv1.TransferOwnershipRequest{Name: w.Name, Email: "next@example.com", Sec: sec})
	if err != nil || got.GetName() != w.Name {
		t.Fatalf("transfer: %v %v", got, err)
	}
	st, err := e.Sim.WorkspaceState(w.InstantlyID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Workspace.Owner != m.UserID {
		t.Fatalf("owner %q, want %q", st.Workspace.Owner, m.UserID)
	}
}

// TestRenameInstantlyWorkspace: the trimmed name is set in Instantly and
// the record keeps Instantly's answer.
func TestRenameInstantlyWorkspace(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{})
	w := e.Register(t, "w", map[string]string{"client": "a"})
	got, err := s.RenameInstantlyWorkspace(servicetest.Admin(), &agencyv1.RenameInstantlyWorkspaceRequest{Name: w.Name, InstantlyWorkspaceName: "  New Name "})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.Sim.WorkspaceState(w.InstantlyID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Workspace.Name != "New Name" || got.GetInstantlyWorkspaceName() != "New Name" || stored(t, e, w.Name).InstantlyWorkspaceName != "New Name" {
		t.Fatalf("Instantly has %q, answer %q", st.Workspace.Name, got.GetInstantlyWorkspaceName())
	}
	_, err = s.RenameInstantlyWorkspace(servicetest.As(auth.RoleAdmin, "client=b"), &agencyv1.RenameInstantlyWorkspaceRequest{Name: w.Name, InstantlyWorkspaceName: "x"})
	servicetest.WantErr(t, err, codes.NotFound, "", "NOT_FOUND")
}

// TestDiscoverSubWorkspaces: every group link is listed; with register,
// only accepted unregistered ones are registered; a registered one is
// named only to a caller who may see it.
func TestDiscoverSubWorkspaces(t *testing.T) {
	g := newGroup(t)
	s, e, admin, fresh, pending, hidden := g.s, g.e, g.admin, g.accepted, g.pending, g.hidden
	scopedA := servicetest.As(auth.RoleAdmin, "client=a")

	resp, err := s.DiscoverSubWorkspaces(scopedA, &agencyv1.DiscoverSubWorkspacesRequest{Name: admin.Name, Register: true, Labels: map[string]string{"client": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*agencyv1.DiscoveredSubWorkspace{}
	for _, d := range resp.GetSubWorkspaces() {
		got[d.GetInstantlyWorkspaceId()] = d
	}
	freshName := "workspaces/" + strings.ToLower(fresh)
	if len(got) != 3 || got[fresh].GetRegisteredWorkspace() != freshName || !got[fresh].GetRegisteredNow() ||
		got[fresh].GetInstantlyWorkspaceName() != "Accepted" ||
		got[pending].GetRegisteredWorkspace() != "" || got[hidden].GetRegisteredWorkspace() != "" || got[hidden].GetRegisteredNow() {
		t.Fatalf("discovered %v", resp)
	}
	if rec := stored(t, e, freshName); rec.AdminWorkspace != admin.Name || rec.Labels["client"] != "a" {
		t.Fatalf("registered %+v", rec)
	}
	if _, err := e.Store.Workspaces().GetByInstantlyID(context.Background(), pending); err == nil {
		t.Fatal("a pending sub workspace was registered")
	}
	// Again: already registered, named, not registered now.
	resp, err = s.DiscoverSubWorkspaces(servicetest.Admin(), &agencyv1.DiscoverSubWorkspacesRequest{Name: admin.Name})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.GetSubWorkspaces() {
		if d.GetRegisteredNow() || (d.GetInstantlyWorkspaceId() == hidden) != (d.GetRegisteredWorkspace() == "workspaces/hidden") {
			t.Fatalf("second discovery %v", d)
		}
	}

	cases := []struct {
		name  string
		req   *agencyv1.DiscoverSubWorkspacesRequest
		code  codes.Code
		field string
	}{
		{"bad label", &agencyv1.DiscoverSubWorkspacesRequest{Name: admin.Name, Labels: map[string]string{"A B": "x"}}, codes.InvalidArgument, `labels["A B"]`},
		{"a sub workspace", &agencyv1.DiscoverSubWorkspacesRequest{Name: freshName}, codes.InvalidArgument, "name"},
		{"out of scope", &agencyv1.DiscoverSubWorkspacesRequest{Name: "workspaces/hidden"}, codes.NotFound, ""},
	}
	for _, tc := range cases {
		_, err := s.DiscoverSubWorkspaces(scopedA, tc.req)
		servicetest.WantErr(t, err, tc.code, tc.field, "")
	}
}

// TestDiscoverUpstreamDown: a failing group list fails the call as
// UNAVAILABLE.
func TestDiscoverUpstreamDown(t *testing.T) {
	s, e := newTestService(t, servicetest.Options{Sim: sim.Config{FaultRate: 1}})
	admin := e.Register(t, "adm", nil)
	_, err := s.DiscoverSubWorkspaces(servicetest.Admin(), &agencyv1.DiscoverSubWorkspacesRequest{Name: admin.Name})
	servicetest.WantErr(t, err, codes.Unavailable, "", "UPSTREAM_UNAVAILABLE")
}
