package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// newRequestID returns a random UUID (version 4).
func newRequestID(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// registerSimWorkspace registers a new simulator workspace as
// workspaces/{id} and returns its simulator id.
func registerSimWorkspace(t *testing.T, e *env, id string) string {
	t.Helper()
	simID, key := e.sim.CreateWorkspace(id)
	if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.WorkspaceService/CreateWorkspace",
		&agencyv1.CreateWorkspaceRequest{WorkspaceId: id, Workspace: &agencyv1.Workspace{DisplayName: id, ApiKey: &key}}, &agencyv1.Workspace{}); err != nil {
		t.Fatal(err)
	}
	return simID
}

func simState(t *testing.T, e *env, simID string) sim.WorkspaceState {
	t.Helper()
	st, err := e.sim.WorkspaceState(simID)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func upstreamRequests(e *env, simID string) int64 { return e.sim.Stats()[simID].Requests }

// TestRequestIDReplay: a unary mutating call repeated with its request_id
// acts once and answers the same, over gRPC and REST, on both backends; the
// id with another request, or an id that is no UUID, is INVALID_ARGUMENT
// naming request_id.
func TestRequestIDReplay(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			e := startEnv(t, b)
			simID := registerSimWorkspace(t, e, "rid")
			ctx := context.Background()
			for _, inv := range e.invokers(testToken) {
				t.Run(inv.Transport(), func(t *testing.T) {
					id := newRequestID(t)
					label := "rid-" + inv.Transport()
					req := &agencyv1.CreateTagRequest{Parent: "workspaces/rid", Tag: &agencyv1.Tag{Label: label}, RequestId: id}
					var first, again agencyv1.Tag
					if err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag", req, &first); err != nil {
						t.Fatal(err)
					}
					before := upstreamRequests(e, simID)
					if err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag", req, &again); err != nil {
						t.Fatalf("replay: %v", err)
					}
					if !proto.Equal(&first, &again) {
						t.Fatalf("replay answered %v, first %v", &again, &first)
					}
					if n := upstreamRequests(e, simID) - before; n != 0 {
						t.Fatalf("the replay sent %d requests to Instantly", n)
					}
					if n := countTags(simState(t, e, simID), label); n != 1 {
						t.Fatalf("%d tags labelled %s, want 1", n, label)
					}

					// The same id for another request.
					other := &agencyv1.CreateTagRequest{Parent: "workspaces/rid", Tag: &agencyv1.Tag{Label: label + "-other"}, RequestId: id}
					err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag", other, &agencyv1.Tag{})
					wantField(t, wantCode(t, err, codes.InvalidArgument), "request_id")
					if n := countTags(simState(t, e, simID), label+"-other"); n != 0 {
						t.Fatal("a reused request_id created something")
					}
					// An id that is no UUID.
					bad := &agencyv1.CreateTagRequest{Parent: "workspaces/rid", Tag: &agencyv1.Tag{Label: label + "-bad"}, RequestId: "not-a-uuid"}
					err = inv.Invoke(ctx, "agency.v1.TagService/CreateTag", bad, &agencyv1.Tag{})
					wantField(t, wantCode(t, err, codes.InvalidArgument), "request_id")

					// An invitation: without request_id a repeat is
					// ALREADY_EXISTS (read before write); with one it answers
					// the first invitation again.
					invite := &agencyv1.InviteMemberRequest{Parent: "workspaces/rid", Email: label + "@agency.test",
						Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW, RequestId: newRequestID(t)}
					var m1, m2 agencyv1.Member
					if err := inv.Invoke(ctx, "agency.v1.MemberService/InviteMember", invite, &m1); err != nil {
						t.Fatal(err)
					}
					if err := inv.Invoke(ctx, "agency.v1.MemberService/InviteMember", invite, &m2); err != nil || !proto.Equal(&m1, &m2) {
						t.Fatalf("invite replay: %v %v, first %v", &m2, err, &m1)
					}
					plain := proto.Clone(invite).(*agencyv1.InviteMemberRequest)
					plain.RequestId = ""
					wantCode(t, inv.Invoke(ctx, "agency.v1.MemberService/InviteMember", plain, &agencyv1.Member{}), codes.AlreadyExists)
					if n := countMembers(simState(t, e, simID), invite.GetEmail()); n != 1 {
						t.Fatalf("%d members %s, want 1", n, invite.GetEmail())
					}
				})
			}
			// One id, two transports: the gateway builds the same request,
			// so REST replays what gRPC did.
			id := newRequestID(t)
			req := &agencyv1.CreateTagRequest{Parent: "workspaces/rid", Tag: &agencyv1.Tag{Label: "rid-both"}, RequestId: id}
			invs := e.invokers(testToken)
			var viaGRPC, viaREST agencyv1.Tag
			if err := invs[0].Invoke(ctx, "agency.v1.TagService/CreateTag", req, &viaGRPC); err != nil {
				t.Fatal(err)
			}
			if err := invs[1].Invoke(ctx, "agency.v1.TagService/CreateTag", req, &viaREST); err != nil || !proto.Equal(&viaGRPC, &viaREST) {
				t.Fatalf("REST replay of a gRPC call: %v %v, want %v", &viaREST, err, &viaGRPC)
			}
			if n := countTags(simState(t, e, simID), "rid-both"); n != 1 {
				t.Fatalf("%d tags, want 1", n)
			}
			if d := e.sim.Stats()[simID].DuplicateCreates; d != 0 {
				t.Fatalf("%d duplicate creates upstream", d)
			}
		})
	}
}

// TestRequestIDSecretToItsCallerOnly: a replayed CreateApiKey gives its
// caller the same secret; another caller with the same id gets its own key,
// never the first secret; on Redis the stored answers are sealed.
func TestRequestIDSecretToItsCallerOnly(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			e := startEnv(t, b)
			simID := registerSimWorkspace(t, e, "keys")
			ctx := context.Background()
			var other agencyv1.CreateTokenResponse
			if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(ctx, "agency.v1.TokenService/CreateToken",
				&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN}}, &other); err != nil {
				t.Fatal(err)
			}
			var secrets []string
			mine, theirs := e.invokers(testToken), e.invokers(other.GetSecret())
			for i, inv := range mine {
				t.Run(inv.Transport(), func(t *testing.T) {
					name := "rid-" + inv.Transport()
					req := &agencyv1.CreateApiKeyRequest{Parent: "workspaces/keys", DisplayName: name,
						Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_SDR, RequestId: newRequestID(t)}
					var first, again, theirsResp agencyv1.CreateApiKeyResponse
					if err := inv.Invoke(ctx, "agency.v1.ApiKeyService/CreateApiKey", req, &first); err != nil {
						t.Fatal(err)
					}
					if err := inv.Invoke(ctx, "agency.v1.ApiKeyService/CreateApiKey", req, &again); err != nil {
						t.Fatal(err)
					}
					if first.GetSecret() == "" || again.GetSecret() != first.GetSecret() || again.GetApiKey().GetName() != first.GetApiKey().GetName() {
						t.Fatalf("replay %v, first %v", &again, &first)
					}
					if n := countKeys(simState(t, e, simID), name); n != 1 {
						t.Fatalf("%d keys named %s, want 1", n, name)
					}
					// Another caller, same id: its own call, its own secret.
					if err := theirs[i].Invoke(ctx, "agency.v1.ApiKeyService/CreateApiKey", req, &theirsResp); err != nil {
						t.Fatal(err)
					}
					if theirsResp.GetSecret() == "" || theirsResp.GetSecret() == first.GetSecret() || theirsResp.GetApiKey().GetName() == first.GetApiKey().GetName() {
						t.Fatalf("another caller got %v, first caller %v", &theirsResp, &first)
					}
					if n := countKeys(simState(t, e, simID), name); n != 2 {
						t.Fatalf("%d keys named %s, want 2", n, name)
					}
					secrets = append(secrets, first.GetSecret(), theirsResp.GetSecret())
				})
			}
			if b == redisBackend {
				rdb := redistest.Start(t)
				dump := dumpRedis(t, rdb, e.prefix)
				if !strings.Contains(dump, "idem:{") {
					t.Fatalf("no request_id records under %s", e.prefix)
				}
				assertNoSecrets(t, "Redis", dump, secrets)
			}
			assertNoSecrets(t, "logs", e.logs.String(), secrets)
		})
	}
}

// TestAuditBeforeEffect: a mutating call whose started event cannot be
// appended is UNAVAILABLE and sends nothing upstream, while reads go on; a
// call that runs leaves its started event, then its outcome.
func TestAuditBeforeEffect(t *testing.T) {
	srv := redistest.StartServer(t)
	e := startEnvOn(t, "redis://"+srv.Addr+"/0", 0)
	simID := registerSimWorkspace(t, e, "first")
	ctx := context.Background()
	auditKey := e.prefix + "audit"
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			// Only the audit trail fails: its stream key now holds a string.
			if err := srv.Client.Set(ctx, auditKey, "not a stream", 0).Err(); err != nil {
				t.Fatal(err)
			}
			label := "audit-" + inv.Transport()
			req := &agencyv1.CreateTagRequest{Parent: "workspaces/first", Tag: &agencyv1.Tag{Label: label}, RequestId: newRequestID(t)}
			before := upstreamRequests(e, simID)
			err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag", req, &agencyv1.Tag{})
			if st := wantCode(t, err, codes.Unavailable); errorReason(st) != "STORE_UNAVAILABLE" {
				t.Fatalf("reason %q", errorReason(st))
			}
			if n := upstreamRequests(e, simID) - before; n != 0 {
				t.Fatalf("%d requests reached Instantly without an audit event", n)
			}
			// Reads work as before.
			if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/first"}, &agencyv1.Workspace{}); err != nil {
				t.Fatalf("read with the audit trail down: %v", err)
			}
			if err := inv.Invoke(ctx, "agency.v1.TagService/ListTags", &agencyv1.ListTagsRequest{Parent: "workspaces/first"}, &agencyv1.ListTagsResponse{}); err != nil {
				t.Fatalf("upstream read with the audit trail down: %v", err)
			}

			// Back: the retry (same request_id: nothing was kept) runs and
			// leaves started, then finished.
			if err := srv.Client.Del(ctx, auditKey).Err(); err != nil {
				t.Fatal(err)
			}
			if err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag", req, &agencyv1.Tag{}); err != nil {
				t.Fatal(err)
			}
			if n := countTags(simState(t, e, simID), label); n != 1 {
				t.Fatalf("%d tags, want 1", n)
			}
			var events agencyv1.ListEventsResponse
			if err := (grpcInvoker{conn: e.conn, token: testToken}).Invoke(ctx, "agency.v1.AuditService/ListEvents",
				&agencyv1.ListEventsRequest{Method: "/agency.v1.TagService/CreateTag"}, &events); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range events.GetEvents() { // newest first
				got = append(got, ev.GetCode())
			}
			evs := events.GetEvents()
			if !slices.Equal(got, []string{"OK", ""}) || evs[0].GetRequestId() != evs[1].GetRequestId() ||
				!slices.Equal(evs[1].GetWorkspaces(), []string{"workspaces/first"}) {
				t.Fatalf("events %v, want the started event (no code) then the outcome", evs)
			}
		})
	}

	// Redis gone: a mutating call is UNAVAILABLE and nothing reaches
	// Instantly; reads fail as before (the token store is down too).
	srv.Stop()
	for _, inv := range e.invokers(testToken) {
		before := upstreamRequests(e, simID)
		err := inv.Invoke(ctx, "agency.v1.TagService/CreateTag",
			&agencyv1.CreateTagRequest{Parent: "workspaces/first", Tag: &agencyv1.Tag{Label: "down"}, RequestId: newRequestID(t)}, &agencyv1.Tag{})
		wantCode(t, err, codes.Unavailable)
		if n := upstreamRequests(e, simID) - before; n != 0 {
			t.Fatalf("%s: %d requests reached Instantly with Redis down", inv.Transport(), n)
		}
		err = inv.Invoke(ctx, "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/first"}, &agencyv1.Workspace{})
		wantCode(t, err, codes.Unavailable)
	}
}

func countTags(st sim.WorkspaceState, label string) int {
	n := 0
	for _, tag := range st.CustomTags {
		if tag.Label == label {
			n++
		}
	}
	return n
}

func countMembers(st sim.WorkspaceState, email string) int {
	n := 0
	for _, m := range st.Members {
		if strings.EqualFold(m.Email, email) {
			n++
		}
	}
	return n
}

func countKeys(st sim.WorkspaceState, name string) int {
	n := 0
	for _, k := range st.APIKeys {
		if k.Name == name {
			n++
		}
	}
	return n
}

func errorReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// dumpRedis renders every key under prefix with its value, whatever its type.
func dumpRedis(t *testing.T, rdb *redis.Client, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var dump strings.Builder
	for _, k := range redistest.Keys(t, rdb, prefix) {
		dump.WriteString(k + "\n")
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "string":
			dump.WriteString(rdb.Get(ctx, k).Val())
		case "hash":
			fmt.Fprint(&dump, rdb.HGetAll(ctx, k).Val())
		case "list":
			dump.WriteString(strings.Join(rdb.LRange(ctx, k, 0, -1).Val(), "\n"))
		case "set":
			dump.WriteString(strings.Join(rdb.SMembers(ctx, k).Val(), "\n"))
		case "zset":
			dump.WriteString(strings.Join(rdb.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				fmt.Fprint(&dump, m.Values)
			}
		}
		dump.WriteString("\n")
	}
	return dump.String()
}
