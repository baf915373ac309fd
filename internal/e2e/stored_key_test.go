package e2e

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/store"
)

// storedFlags runs AuditApiKeys over one workspace and returns each key's
// is_stored_credential by Instantly key id.
func storedFlags(t *testing.T, inv invoker, name string) map[string]bool {
	t.Helper()
	var resp agencyv1.FanoutResponse
	if err := inv.Invoke(context.Background(), "agency.v1.FanoutService/AuditApiKeys",
		&agencyv1.AuditApiKeysRequest{Selector: &agencyv1.WorkspaceSelector{Names: []string{name}}}, &resp); err != nil {
		t.Fatalf("AuditApiKeys: %v", err)
	}
	if len(resp.GetResults()) != 1 || resp.GetResults()[0].GetApiKeys() == nil {
		t.Fatalf("AuditApiKeys results: %v", resp.GetResults())
	}
	out := map[string]bool{}
	for _, k := range resp.GetResults()[0].GetApiKeys().GetApiKeys() {
		out[k.GetId()] = k.GetIsStoredCredential()
	}
	return out
}

func onlyStored(t *testing.T, flags map[string]bool, want string) {
	t.Helper()
	for id, stored := range flags {
		if stored != (id == want) {
			t.Fatalf("is_stored_credential %v, want only %s", flags, want)
		}
	}
	if !flags[want] {
		t.Fatalf("is_stored_credential %v, want %s", flags, want)
	}
}

// A key registered by hand is recognised as the stored credential (in
// AuditApiKeys and by RevokeApiKey), after registration, after rotation and
// for a record made before key ids were recorded; revoking it needs force
// and leaves the workspace CREDENTIAL_INVALID.
func TestStoredCredentialIdentified(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	spares, others := map[string]string{}, map[string]string{}
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			simID, key := e.sim.CreateWorkspace("acme " + inv.Transport())
			spare, err := e.sim.CreateAPIKey(simID, "spare", []string{"all:all"})
			if err != nil {
				t.Fatal(err)
			}
			other, err := e.sim.CreateAPIKey(simID, "other", []string{"all:all"})
			if err != nil {
				t.Fatal(err)
			}
			spares[inv.Transport()], others[inv.Transport()] = spare.ID, other.ID
			name := "workspaces/acme-" + inv.Transport()
			var ws agencyv1.Workspace
			if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{
				WorkspaceId: "acme-" + inv.Transport(), Workspace: &agencyv1.Workspace{DisplayName: "Acme", ApiKey: &key}}, &ws); err != nil {
				t.Fatalf("CreateWorkspace: %v", err)
			}
			rec, err := e.app.Store.Workspaces().Get(ctx, name)
			if err != nil || rec.CredentialKeyID == "" {
				t.Fatalf("no key id recorded at registration: %+v %v", rec, err)
			}
			firstID := rec.CredentialKeyID
			flags := storedFlags(t, inv, name)
			if len(flags) < 3 {
				t.Fatalf("keys %v", flags)
			}
			onlyStored(t, flags, firstID)

			// Revoking the stored credential is refused, naming it.
			err = inv.Invoke(ctx, "agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: name + "/apiKeys/" + firstID}, &agencyv1.ApiKey{})
			st := wantCode(t, err, codes.FailedPrecondition)
			if ei := errorInfo(st); ei == nil || ei.GetMetadata()["api_key_id"] != firstID {
				t.Fatalf("refusal without the key id: %v", st.Details())
			}

			// Rotation to another key moves the mark.
			if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/RotateWorkspaceCredential",
				&agencyv1.RotateWorkspaceCredentialRequest{Name: name, ApiKey: spare.Key}, &agencyv1.Workspace{}); err != nil {
				t.Fatalf("RotateWorkspaceCredential: %v", err)
			}
			onlyStored(t, storedFlags(t, inv, name), spare.ID)

			// A record from before key ids were recorded: identified when a
			// revocation asks, and recorded.
			if _, err := e.app.Store.Workspaces().Update(ctx, name, func(w *store.Workspace) error {
				w.CredentialKeyID = ""
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			err = inv.Invoke(ctx, "agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: name + "/apiKeys/" + spare.ID}, &agencyv1.ApiKey{})
			wantCode(t, err, codes.FailedPrecondition)
			if rec, _ := e.app.Store.Workspaces().Get(ctx, name); rec.CredentialKeyID != spare.ID {
				t.Fatalf("identified key id not recorded: %q", rec.CredentialKeyID)
			}
		})
	}

	// Any other key is revoked as before; the stored one only with force,
	// which leaves the workspace CREDENTIAL_INVALID.
	inv := grpcInvoker{conn: e.conn, token: testToken}
	name := "workspaces/acme-grpc"
	if err := inv.Invoke(ctx, "agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: name + "/apiKeys/" + others["grpc"]}, &agencyv1.ApiKey{}); err != nil {
		t.Fatalf("revoking a key that is not the stored credential: %v", err)
	}
	if err := inv.Invoke(ctx, "agency.v1.ApiKeyService/RevokeApiKey", &agencyv1.RevokeApiKeyRequest{Name: name + "/apiKeys/" + spares["grpc"], Force: true}, &agencyv1.ApiKey{}); err != nil {
		t.Fatalf("forced revocation: %v", err)
	}
	var ws agencyv1.Workspace
	if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: name}, &ws); err != nil {
		t.Fatal(err)
	}
	if ws.GetState() != agencyv1.Workspace_STATE_CREDENTIAL_INVALID {
		t.Fatalf("state after the stored credential was revoked: %v (%s)", ws.GetState(), ws.GetStateMessage())
	}
}
