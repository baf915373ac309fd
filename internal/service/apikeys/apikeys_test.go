package apikeys

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/testutil/syncbuf"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// world is workspace a (client=a, the caller's scope) and b outside it,
// each with the one all:all key the simulator gives a new workspace: its
// stored credential, registered by hand (no key id recorded).
type world struct {
	e    *servicetest.Env
	svc  *Service
	a, b servicetest.Workspace
	logs *syncbuf.Buffer
}

func newWorld(t *testing.T, cfg sim.Config) *world {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{Sim: cfg})
	w := &world{e: e, logs: &syncbuf.Buffer{},
		a: e.Register(t, "a", map[string]string{"client": "a"}),
		b: e.Register(t, "b", map[string]string{"client": "b"})}
	w.svc = New(e.Resolver, e.Client, e.Scoped, e.Keyring, slog.New(slog.NewTextHandler(w.logs, nil)))
	return w
}

// callerA is a manager who sees client=a only.
func callerA() context.Context { return servicetest.As(auth.RoleManager, "client=a") }

// keys is the simulator's key list of a workspace, by id.
func (w *world) keys(t *testing.T, ws servicetest.Workspace) map[string]sim.APIKey {
	t.Helper()
	out := map[string]sim.APIKey{}
	for _, k := range w.e.State(t, ws.InstantlyID).APIKeys {
		out[k.ID] = k
	}
	return out
}

// storedKeyID is the id of ws's stored credential (its first key).
func (w *world) storedKeyID(t *testing.T, ws servicetest.Workspace) string {
	t.Helper()
	return w.e.State(t, ws.InstantlyID).APIKeys[0].ID
}

// addKey creates a key in ws upstream, as someone else would.
func (w *world) addKey(t *testing.T, ws servicetest.Workspace, name string, scopes ...string) sim.APIKey {
	t.Helper()
	k, err := w.e.Sim.CreateAPIKey(ws.InstantlyID, name, scopes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// workspace is the stored record of ws.
func (w *world) workspace(t *testing.T, ws servicetest.Workspace) *store.Workspace {
	t.Helper()
	got, err := w.e.Store.Workspaces().Get(context.Background(), ws.Name)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// update changes ws's stored record.
func (w *world) update(t *testing.T, ws servicetest.Workspace, fn func(*store.Workspace)) {
	t.Helper()
	if _, err := w.e.Store.Workspaces().Update(context.Background(), ws.Name, func(x *store.Workspace) error { fn(x); return nil }); err != nil {
		t.Fatal(err)
	}
}

// useKey makes k ws's stored credential, with its key id recorded or not.
func (w *world) useKey(t *testing.T, ws servicetest.Workspace, k sim.APIKey, recordID bool) {
	t.Helper()
	sealed, err := w.e.Keyring.Seal([]byte(k.Key), []byte(ws.Name))
	if err != nil {
		t.Fatal(err)
	}
	w.update(t, ws, func(x *store.Workspace) {
		x.SealedCredential, x.CredentialFingerprint, x.CredentialKeyID = string(sealed), vault.Fingerprint(k.Key), ""
		if recordID {
			x.CredentialKeyID = k.ID
		}
	})
}

// noSecret fails t when any secret shows in err or in the service's logs.
func (w *world) noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			t.Fatal("an empty secret proves nothing")
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Fatalf("a secret is in the error: %v", err)
		}
		if strings.Contains(w.logs.String(), s) {
			t.Fatalf("a secret is in the logs: %s", w.logs.String())
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestCreateApiKeyRefused: bad input names its field, and neither it nor a
// workspace outside the caller's scope reaches Instantly.
func TestCreateApiKeyRefused(t *testing.T) {
	w := newWorld(t, sim.Config{})
	viewer := agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER
	cases := []struct {
		name  string
		req   *agencyv1.CreateApiKeyRequest
		field string     // INVALID_ARGUMENT naming it, or
		code  codes.Code // this code
	}{
		{name: "scopes and preset", req: &agencyv1.CreateApiKeyRequest{Scopes: []string{"leads:read"}, Preset: viewer}, field: "preset"},
		{name: "neither", req: &agencyv1.CreateApiKeyRequest{}, field: "scopes"},
		{name: "unknown scope", req: &agencyv1.CreateApiKeyRequest{Scopes: []string{"leads:read", "leads:nuke"}}, field: "scopes[1]"},
		{name: "stored credential without workspaces:read", req: &agencyv1.CreateApiKeyRequest{Preset: viewer, StoreAsCredential: true}, field: "store_as_credential"},
		{name: "out of scope", req: &agencyv1.CreateApiKeyRequest{Parent: w.b.Name, Preset: viewer}, code: codes.NotFound},
		{name: "unknown workspace", req: &agencyv1.CreateApiKeyRequest{Parent: "workspaces/nope", Preset: viewer}, code: codes.NotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.req.Parent == "" {
				c.req.Parent = w.a.Name
			}
			c.req.DisplayName = "team"
			before := w.e.Requests(w.a.InstantlyID) + w.e.Requests(w.b.InstantlyID)
			_, err := w.svc.CreateApiKey(callerA(), c.req)
			if c.field != "" {
				servicetest.WantField(t, err, c.field)
			} else {
				servicetest.WantCode(t, err, c.code)
			}
			if after := w.e.Requests(w.a.InstantlyID) + w.e.Requests(w.b.InstantlyID); after != before {
				t.Fatalf("%d requests reached Instantly", after-before)
			}
		})
	}
	if n := len(w.keys(t, w.a)) + len(w.keys(t, w.b)); n != 2 {
		t.Fatalf("%d keys upstream, want the 2 stored credentials", n)
	}
}

// TestCreateApiKey: a preset expands to the access matrix's scopes,
// explicit scopes go as given, the display name trimmed; the secret, the
// new key's, comes back in the response, outside the ApiKey message.
func TestCreateApiKey(t *testing.T) {
	w := newWorld(t, sim.Config{})
	cases := []struct {
		name    string
		req     *agencyv1.CreateApiKeyRequest
		scopes  []string
		overPri bool
	}{
		{"sdr preset", &agencyv1.CreateApiKeyRequest{DisplayName: "  sdr team ", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR},
			PresetScopes(agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR), false},
		{"explicit scopes", &agencyv1.CreateApiKeyRequest{DisplayName: "sdr team", Scopes: []string{"all:update", "leads:read"}},
			[]string{"all:update", "leads:read"}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.req.Parent = w.a.Name
			resp, err := w.svc.CreateApiKey(callerA(), c.req)
			if err != nil {
				t.Fatal(err)
			}
			k := resp.GetApiKey()
			up, ok := w.keys(t, w.a)[k.GetId()]
			if !ok || up.Name != "sdr team" || !slices.Equal(up.Scopes, c.scopes) {
				t.Fatalf("upstream key %+v, want name %q scopes %v", up, "sdr team", c.scopes)
			}
			if k.GetName() != w.a.Name+"/apiKeys/"+k.GetId() || k.GetDisplayName() != "sdr team" || !slices.Equal(k.GetScopes(), c.scopes) ||
				k.GetOverPrivileged() != c.overPri || k.GetIsStoredCredential() || k.GetCreateTime() == nil {
				t.Fatalf("key %v", k)
			}
			// The simulator's secrets name their key (Instantly's format).
			if embeddedKeyID(resp.GetSecret()) != k.GetId() {
				t.Fatalf("the secret is not the new key's")
			}
			w.noSecret(t, nil, resp.GetSecret())
		})
	}
}

// TestCreateApiKeyAsStoredCredential: the new key replaces the stored
// credential (sealed, its id recorded, its secret kept from the response);
// a sub workspace acting through its admin's key cannot store one; a key
// that cannot be stored is handed back with its secret, which stays out of
// the logs.
func TestCreateApiKeyAsStoredCredential(t *testing.T) {
	req := func(parent string) *agencyv1.CreateApiKeyRequest {
		return &agencyv1.CreateApiKeyRequest{Parent: parent, DisplayName: "control plane", Scopes: []string{"all:all"}, StoreAsCredential: true}
	}
	t.Run("stored", func(t *testing.T) {
		w := newWorld(t, sim.Config{})
		resp, err := w.svc.CreateApiKey(callerA(), req(w.a.Name))
		if err != nil {
			t.Fatal(err)
		}
		id := resp.GetApiKey().GetId()
		if resp.GetSecret() != "" || !resp.GetApiKey().GetIsStoredCredential() {
			t.Fatalf("response %v", resp)
		}
		ws := w.workspace(t, w.a)
		secret, err := w.e.Keyring.Open([]byte(ws.SealedCredential), []byte(ws.Name))
		if err != nil {
			t.Fatal(err)
		}
		if ws.CredentialKeyID != id || embeddedKeyID(string(secret)) != id || ws.CredentialFingerprint != vault.Fingerprint(string(secret)) {
			t.Fatalf("stored credential: key id %q, fingerprint %q; want the new key %s", ws.CredentialKeyID, ws.CredentialFingerprint, id)
		}
		w.noSecret(t, nil, string(secret))
		// The list marks the new key only; the old one may go without force.
		list, err := w.svc.ListApiKeys(callerA(), &agencyv1.ListApiKeysRequest{Parent: w.a.Name})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range list.GetApiKeys() {
			if k.GetIsStoredCredential() != (k.GetId() == id) {
				t.Fatalf("listed %v", k)
			}
		}
		if _, err := w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: w.a.Name + "/apiKeys/" + w.storedKeyID(t, w.a)}); err != nil {
			t.Fatalf("revoking the former credential: %v", err)
		}
		_, err = w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: resp.GetApiKey().GetName()})
		servicetest.WantErr(t, err, codes.FailedPrecondition, "", "CONFLICT")
	})
	t.Run("sub workspace", func(t *testing.T) {
		w := newWorld(t, sim.Config{})
		iid, _ := w.e.Sim.CreateWorkspace("sub")
		now := time.Now().UTC()
		if err := w.e.Store.Workspaces().Create(context.Background(), &store.Workspace{Name: "workspaces/sub", Labels: map[string]string{"client": "a"},
			InstantlyWorkspaceID: iid, AdminWorkspace: w.a.Name, State: store.StateActive, CreateTime: now, UpdateTime: now}); err != nil {
			t.Fatal(err)
		}
		before := w.e.Requests(iid) + w.e.Requests(w.a.InstantlyID)
		_, err := w.svc.CreateApiKey(callerA(), req("workspaces/sub"))
		servicetest.WantCode(t, err, codes.FailedPrecondition)
		if after := w.e.Requests(iid) + w.e.Requests(w.a.InstantlyID); after != before {
			t.Fatal("a refused key was created upstream")
		}
	})
	t.Run("cannot seal", func(t *testing.T) {
		w := newWorld(t, sim.Config{})
		w.svc.vault = failingSealer{}
		old := w.workspace(t, w.a)
		resp, err := w.svc.CreateApiKey(callerA(), req(w.a.Name))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetSecret() == "" || resp.GetApiKey().GetIsStoredCredential() {
			t.Fatalf("a key not stored must come back with its secret: %v", resp)
		}
		if now := w.workspace(t, w.a); now.SealedCredential != old.SealedCredential || now.CredentialKeyID != "" {
			t.Fatal("the stored credential changed")
		}
		if !strings.Contains(w.logs.String(), resp.GetApiKey().GetId()) {
			t.Fatalf("no warning names the key: %q", w.logs.String())
		}
		w.noSecret(t, nil, resp.GetSecret())
	})
}

type failingSealer struct{}

func (failingSealer) Seal([]byte, []byte) ([]byte, error) {
	return nil, errors.New("vault: sealing failed")
}

// TestListApiKeys: small pages walk every key once, flagging the
// over-privileged ones and the recorded stored credential; a token only
// continues the listing of the workspace it was issued for.
func TestListApiKeys(t *testing.T) {
	w := newWorld(t, sim.Config{})
	stored := w.storedKeyID(t, w.a)
	w.update(t, w.a, func(x *store.Workspace) { x.CredentialKeyID = stored })
	want := map[string]bool{stored: true} // id → over-privileged (the simulator's first key is all:all)
	for name, scopes := range map[string][]string{"viewer": {"leads:read"}, "wide": {"all:update"}, "sdr": {"campaigns:read"}, "four": {"accounts:read"}} {
		want[w.addKey(t, w.a, name, scopes...).ID] = name == "wide"
	}
	var tok string
	seen := map[string]bool{}
	servicetest.WalkPages(t, 3, func(token string) (string, error) {
		resp, err := w.svc.ListApiKeys(callerA(), &agencyv1.ListApiKeysRequest{Parent: w.a.Name, PageSize: 2, PageToken: token})
		for _, k := range resp.GetApiKeys() {
			over, ok := want[k.GetId()]
			if !ok || seen[k.GetId()] || k.GetOverPrivileged() != over || k.GetIsStoredCredential() != (k.GetId() == stored) ||
				k.GetName() != w.a.Name+"/apiKeys/"+k.GetId() {
				t.Fatalf("listed %v", k)
			}
			seen[k.GetId()] = true
		}
		if tok == "" {
			tok = resp.GetNextPageToken()
		}
		return resp.GetNextPageToken(), err
	})
	if len(seen) != len(want) {
		t.Fatalf("listed %d keys, want %d", len(seen), len(want))
	}
	for name, req := range map[string]*agencyv1.ListApiKeysRequest{
		"other workspace": {Parent: w.b.Name, PageToken: tok},
		"forged":          {Parent: w.a.Name, PageToken: tok[:len(tok)-2] + "xx"},
	} {
		t.Run(name, func(t *testing.T) {
			servicetest.WantField(t, second(w.svc.ListApiKeys(servicetest.Admin(), req)), "page_token")
		})
	}
	before := w.e.Requests(w.b.InstantlyID)
	servicetest.WantCode(t, second(w.svc.ListApiKeys(callerA(), &agencyv1.ListApiKeysRequest{Parent: w.b.Name})), codes.NotFound)
	if w.e.Requests(w.b.InstantlyID) != before {
		t.Fatal("an out-of-scope list reached Instantly")
	}
}

// TestRevokeApiKey: any key but the stored credential is revoked; the
// stored credential (recorded, or identified in the key list when it was
// handed over) only with force, which marks the workspace
// CREDENTIAL_INVALID; a credential that cannot list keys cannot be told
// apart, so nothing is revoked without force. Refusals leave every key in
// place and no secret in the error.
func TestRevokeApiKey(t *testing.T) {
	cases := []struct {
		name string
		// setup returns the key to revoke (by id) in w.a.
		setup  func(t *testing.T, w *world) string
		force  bool
		code   codes.Code
		reason string
		// after the call: the stored key id recorded, the workspace's state
		recorded bool
		state    store.State
	}{
		{name: "another key", setup: func(t *testing.T, w *world) string { return w.addKey(t, w.a, "x", "leads:read").ID },
			state: store.StateActive, recorded: true},
		{name: "identified stored credential", setup: func(t *testing.T, w *world) string { return w.storedKeyID(t, w.a) },
			code: codes.FailedPrecondition, reason: "CONFLICT", recorded: true, state: store.StateActive},
		{name: "identified stored credential, forced", setup: func(t *testing.T, w *world) string { return w.storedKeyID(t, w.a) },
			force: true, recorded: true, state: store.StateCredentialInvalid},
		{name: "recorded stored credential that cannot list keys", setup: func(t *testing.T, w *world) string {
			k := w.addKey(t, w.a, "narrow", "api_keys:delete")
			w.useKey(t, w.a, k, true)
			return k.ID
		}, code: codes.FailedPrecondition, reason: "CONFLICT", recorded: true, state: store.StateActive},
		{name: "unidentifiable credential", setup: func(t *testing.T, w *world) string {
			w.useKey(t, w.a, w.addKey(t, w.a, "narrow", "api_keys:delete"), false)
			return w.storedKeyID(t, w.a)
		}, code: codes.FailedPrecondition, reason: "CONFLICT", state: store.StateActive},
		{name: "unidentifiable credential, forced", setup: func(t *testing.T, w *world) string {
			w.useKey(t, w.a, w.addKey(t, w.a, "narrow", "api_keys:delete"), false)
			return w.storedKeyID(t, w.a)
		}, force: true, state: store.StateActive},
		{name: "unknown key", setup: func(*testing.T, *world) string { return "0190a3c4-7e86-47af-b764-e075564821ba" },
			code: codes.NotFound, recorded: true, state: store.StateActive},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, sim.Config{})
			id := c.setup(t, w)
			before := w.keys(t, w.a)
			cred := w.workspace(t, w.a)
			secret, _ := w.e.Keyring.Open([]byte(cred.SealedCredential), []byte(cred.Name))
			name := w.a.Name + "/apiKeys/" + id
			k, err := w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: name, Force: c.force})
			st := servicetest.WantErr(t, err, c.code, "", c.reason)
			if c.code == codes.NotFound && !strings.Contains(st.Message(), name) {
				t.Fatalf("NOT_FOUND does not name the key: %q", st.Message())
			}
			w.noSecret(t, err, string(secret), w.a.APIKey)
			after := w.keys(t, w.a)
			_, gone := before[id]
			gone = gone && after[id].ID == ""
			if c.code == codes.OK {
				if k.GetName() != name || k.GetId() != id || !gone || len(after) != len(before)-1 {
					t.Fatalf("revoked %v; %d keys before, %d after", k, len(before), len(after))
				}
			} else if len(after) != len(before) {
				t.Fatal("a refused revocation removed a key")
			}
			// The simulator's secrets name their key: the stored
			// credential's id is known here without asking Instantly.
			wantID := ""
			if c.recorded {
				wantID = embeddedKeyID(string(secret))
			}
			if ws := w.workspace(t, w.a); ws.CredentialKeyID != wantID || ws.State != c.state {
				t.Fatalf("workspace: stored key id %q, state %s; want %q, %s", ws.CredentialKeyID, ws.State, wantID, c.state)
			}
		})
	}
}

// TestRevokeApiKeyRefusedEarly: a malformed name is the name's fault; a
// key of a workspace outside the caller's scope is NOT_FOUND, and neither
// reaches Instantly.
func TestRevokeApiKeyRefusedEarly(t *testing.T) {
	w := newWorld(t, sim.Config{})
	bKey := w.storedKeyID(t, w.b)
	for _, c := range []struct {
		name string
		code codes.Code
	}{
		{w.a.Name + "/keys/" + bKey, codes.InvalidArgument},
		{w.a.Name + "/apiKeys/", codes.InvalidArgument},
		{"apiKeys/" + bKey, codes.InvalidArgument},
		{w.b.Name + "/apiKeys/" + bKey, codes.NotFound},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := w.e.Requests(w.a.InstantlyID) + w.e.Requests(w.b.InstantlyID)
			_, err := w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: c.name, Force: true})
			if c.code == codes.InvalidArgument {
				servicetest.WantField(t, err, "name")
			} else {
				servicetest.WantCode(t, err, c.code)
			}
			if w.e.Requests(w.a.InstantlyID)+w.e.Requests(w.b.InstantlyID) != before {
				t.Fatal("a refused revocation reached Instantly")
			}
		})
	}
	if len(w.keys(t, w.b)) != 1 {
		t.Fatal("b's key was revoked")
	}
}

// TestUpstreamFailures: a revoked stored key is FAILED_PRECONDITION and an
// Instantly that keeps failing UNAVAILABLE, for every call.
func TestUpstreamFailures(t *testing.T) {
	build := func(t *testing.T, cfg sim.Config) (*world, *servicetest.Env, string) {
		w := newWorld(t, cfg)
		return w, w.e, w.a.InstantlyID
	}
	servicetest.EachUpstreamFailure(t, build, func(w *world) map[string]error {
		other := w.a.Name + "/apiKeys/0190a3c4-7e86-47af-b764-e075564821ba"
		return map[string]error{
			"list":   second(w.svc.ListApiKeys(callerA(), &agencyv1.ListApiKeysRequest{Parent: w.a.Name})),
			"create": second(w.svc.CreateApiKey(callerA(), &agencyv1.CreateApiKeyRequest{Parent: w.a.Name, DisplayName: "x", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR})),
			"revoke": second(w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: other})),
			// With the stored key's id recorded, nothing is identified first.
			"revoke recorded": func() error {
				if _, err := w.e.Store.Workspaces().Update(context.Background(), w.a.Name, func(x *store.Workspace) error {
					x.CredentialKeyID = "0190a3c4-0000-47af-b764-e075564821ba"
					return nil
				}); err != nil {
					return err
				}
				return second(w.svc.RevokeApiKey(callerA(), &agencyv1.RevokeApiKeyRequest{Name: other}))
			}(),
		}
	})
}

// TestCreateApiKeyNotRepeated: a create that meets a 5xx is not sent again
// (a repeat could mint a second key whose secret nobody sees), while a
// read is retried: the same counter sees the list's retries.
func TestCreateApiKeyNotRepeated(t *testing.T) {
	w := newWorld(t, sim.Config{FaultRate: 1})
	for _, c := range []struct {
		name string
		call func() error
		sent int64 // requests reaching the simulator
	}{
		{"create", func() error {
			return second(w.svc.CreateApiKey(callerA(), &agencyv1.CreateApiKeyRequest{Parent: w.a.Name, DisplayName: "x", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR}))
		}, 1},
		{"list", func() error {
			return second(w.svc.ListApiKeys(callerA(), &agencyv1.ListApiKeysRequest{Parent: w.a.Name}))
		}, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := w.e.Requests(w.a.InstantlyID)
			servicetest.WantCode(t, c.call(), codes.Unavailable)
			if sent := w.e.Requests(w.a.InstantlyID) - before; sent != c.sent {
				t.Fatalf("%d requests sent, want %d", sent, c.sent)
			}
		})
	}
}
