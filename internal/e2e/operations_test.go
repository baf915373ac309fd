package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/sim"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/testutil/redistest"
)

// registerWorkspaces creates n simulator workspaces with an owner each and
// registers them as "<prefix>-<i>" labelled team=<prefix>; it returns the
// Instantly id of each registry name.
func registerWorkspaces(t *testing.T, e *env, inv invoker, prefix string, n int) map[string]string {
	t.Helper()
	ctx := context.Background()
	ids := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("%s-%d", prefix, i)
		id, key := e.sim.CreateWorkspaceWithOwner(name, fmt.Sprintf("owner-%s@client.test", name))
		if err := inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
			Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": prefix}}}, &agencyv1.Workspace{}); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
		ids["workspaces/"+name] = id
	}
	return ids
}

// waitOperation waits (WaitOperation, repeated) until the operation ends.
func waitOperation(t *testing.T, inv invoker, name string, limit time.Duration) *longrunningpb.Operation {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		op := &longrunningpb.Operation{}
		if err := inv.Invoke(context.Background(), "google.longrunning.Operations/WaitOperation",
			&longrunningpb.WaitOperationRequest{Name: name, Timeout: durationpb.New(5 * time.Second)}, op); err != nil {
			t.Fatalf("WaitOperation: %v", err)
		}
		if op.GetDone() {
			return op
		}
		if time.Now().After(deadline) {
			t.Fatalf("operation %s not done after %v: %v", name, limit, op)
		}
	}
}

func opMetadata(t *testing.T, op *longrunningpb.Operation) *agencyv1.OperationMetadata {
	t.Helper()
	md := &agencyv1.OperationMetadata{}
	if err := op.GetMetadata().UnmarshalTo(md); err != nil {
		t.Fatal(err)
	}
	return md
}

func opResponse(t *testing.T, op *longrunningpb.Operation) *agencyv1.OperationResponse {
	t.Helper()
	if op.GetError() != nil {
		t.Fatalf("operation failed: %v", op.GetError())
	}
	resp := &agencyv1.OperationResponse{}
	if err := op.GetResponse().UnmarshalTo(resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// allResults pages through ListOperationResults.
func allResults(t *testing.T, inv invoker, name string, failedOnly bool) []*agencyv1.OperationResult {
	t.Helper()
	var out []*agencyv1.OperationResult
	token := ""
	for {
		page := &agencyv1.ListOperationResultsResponse{}
		if err := inv.Invoke(context.Background(), "agency.v1.OperationService/ListOperationResults",
			&agencyv1.ListOperationResultsRequest{Name: name, PageSize: 7, PageToken: token, FailedOnly: failedOnly}, page); err != nil {
			t.Fatalf("ListOperationResults: %v", err)
		}
		out = append(out, page.GetResults()...)
		if token = page.GetNextPageToken(); token == "" {
			return out
		}
	}
}

func people(emails ...string) []*agencyv1.Person {
	var out []*agencyv1.Person
	for _, e := range emails {
		out = append(out, &agencyv1.Person{Email: e, Role: agencyv1.MemberRole_MEMBER_ROLE_EDITOR})
	}
	return out
}

// TestOnboardMembersOperation: an operation onboards people into every
// selected workspace, reports every item once, and a second run finds
// everything done; over gRPC and REST, on both backends.
func TestOnboardMembersOperation(t *testing.T) {
	for _, b := range []backend{memoryBackend, redisBackend} {
		t.Run(string(b), func(t *testing.T) {
			var e *env
			if b == redisBackend {
				e = startEnvSim(t, sim.Config{Latency: 5 * time.Millisecond}, "redis://"+redistest.Start(t).Options().Addr+"/0", 0, nil)
			} else {
				e = startEnvSim(t, sim.Config{Latency: 5 * time.Millisecond}, "", 0, nil)
			}
			for _, inv := range e.invokers(testToken) {
				t.Run(inv.Transport(), func(t *testing.T) {
					team := "onb" + inv.Transport()
					ids := registerWorkspaces(t, e, inv, team, 6)
					emails := []string{"ana@agency.test", "bo@agency.test", "cy@agency.test"}
					req := &agencyv1.OnboardMembersRequest{Selector: &agencyv1.WorkspaceSelector{LabelSelector: "team=" + team}, People: people(emails...)}
					op := &longrunningpb.Operation{}
					if err := inv.Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers", req, op); err != nil {
						t.Fatal(err)
					}
					if !strings.HasPrefix(op.GetName(), "operations/") {
						t.Fatalf("name = %q", op.GetName())
					}
					if md := opMetadata(t, op); md.GetTotalItems() != 18 || md.GetWorkspaces() != 6 || md.GetCreator() != "tokens/bootstrap" {
						t.Fatalf("metadata at creation = %v", md)
					}
					op = waitOperation(t, inv, op.GetName(), time.Minute)
					md := opMetadata(t, op)
					resp := opResponse(t, op)
					if md.GetDoneItems() != 18 || md.GetFailedItems() != 0 || md.GetPendingItems() != 0 || md.GetRunningItems() != 0 ||
						resp.GetSummary().GetSucceeded() != 18 || resp.GetFailedTotal() != 0 || md.GetEndTime() == nil {
						t.Fatalf("metadata %v, response %v", md, resp)
					}
					results := allResults(t, inv, op.GetName(), false)
					if len(results) != 18 {
						t.Fatalf("%d results, want 18", len(results))
					}
					seen := map[string]bool{}
					for i, r := range results {
						key := r.GetResult().GetWorkspace() + "|" + r.GetResult().GetEmail()
						if r.GetIndex() != int64(i) || r.GetState() != agencyv1.ItemState_ITEM_STATE_DONE ||
							r.GetResult().GetOutcome() != agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED || seen[key] || ids[r.GetResult().GetWorkspace()] == "" {
							t.Fatalf("result %d = %v", i, r)
						}
						seen[key] = true
					}
					// The simulator holds each person once in each workspace.
					for name, id := range ids {
						st, err := e.sim.WorkspaceState(id)
						if err != nil {
							t.Fatal(err)
						}
						for _, email := range emails {
							n := 0
							for _, m := range st.Members {
								if m.Email == email {
									n++
								}
							}
							if n != 1 {
								t.Fatalf("%s holds %s %d times", name, email, n)
							}
						}
						if d := e.sim.Stats()[id].DuplicateCreates; d != 0 {
							t.Fatalf("%s: %d duplicate creates", name, d)
						}
					}
					// Again: nothing to do anywhere.
					if err := inv.Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers", req, op); err != nil {
						t.Fatal(err)
					}
					op = waitOperation(t, inv, op.GetName(), time.Minute)
					if s := opResponse(t, op).GetSummary(); s.GetAlreadyDone() != 18 {
						t.Fatalf("second run summary = %v, want 18 already done", s)
					}
					// The operation is listed for its creator.
					list := &longrunningpb.ListOperationsResponse{}
					if err := inv.Invoke(context.Background(), "google.longrunning.Operations/ListOperations", &longrunningpb.ListOperationsRequest{Name: "operations"}, list); err != nil {
						t.Fatal(err)
					}
					if len(list.GetOperations()) < 2 || list.GetOperations()[0].GetName() != op.GetName() {
						t.Fatalf("list = %v", list.GetOperations())
					}
				})
			}
		})
	}
}

// TestOperationErrors: bad input and bad names answer what the issue
// says, before anything is stored.
func TestOperationErrors(t *testing.T) {
	e := startEnv(t, memoryBackend)
	for _, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			ctx := context.Background()
			registerWorkspaces(t, e, inv, "err"+inv.Transport(), 2)
			sel := &agencyv1.WorkspaceSelector{LabelSelector: "team=err" + inv.Transport()}
			onboard := func(req *agencyv1.OnboardMembersRequest) error {
				return inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", req, &longrunningpb.Operation{})
			}
			wantField(t, wantCode(t, onboard(&agencyv1.OnboardMembersRequest{Selector: sel}), codes.InvalidArgument), "people")
			wantField(t, wantCode(t, onboard(&agencyv1.OnboardMembersRequest{Selector: sel, People: people("a@x.test", "A@x.test")}), codes.InvalidArgument), "people[1].email")
			wantField(t, wantCode(t, onboard(&agencyv1.OnboardMembersRequest{Selector: sel, People: people("a@x.test"), RequestId: "not-a-uuid"}), codes.InvalidArgument), "request_id")
			many := make([]string, 1001)
			for i := range many {
				many[i] = fmt.Sprintf("p%d@x.test", i)
			}
			wantField(t, wantCode(t, onboard(&agencyv1.OnboardMembersRequest{Selector: sel, People: people(many...)}), codes.InvalidArgument), "people")
			wantField(t, wantCode(t, onboard(&agencyv1.OnboardMembersRequest{Selector: &agencyv1.WorkspaceSelector{}, People: people("a@x.test")}), codes.InvalidArgument), "selector")

			for _, name := range []string{"operations/" + strings.Repeat("a", 26), "operations/nope", "operations/../x"} {
				err := inv.Invoke(ctx, "google.longrunning.Operations/GetOperation", &longrunningpb.GetOperationRequest{Name: name}, &longrunningpb.Operation{})
				wantCode(t, err, codes.NotFound)
			}
			op := &longrunningpb.Operation{}
			if err := inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", &agencyv1.OnboardMembersRequest{Selector: sel, People: people("z@x.test")}, op); err != nil {
				t.Fatal(err)
			}
			waitOperation(t, inv, op.GetName(), time.Minute)
			err := inv.Invoke(ctx, "google.longrunning.Operations/CancelOperation", &longrunningpb.CancelOperationRequest{Name: op.GetName()}, &longrunningpb.Operation{})
			wantCode(t, err, codes.FailedPrecondition)
		})
	}
}

// TestOperationVisibility: another principal does not see an operation
// (NOT_FOUND, as for one that does not exist); an admin of all scopes does.
func TestOperationVisibility(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	inv := e.invokers(testToken)[0]
	registerWorkspaces(t, e, inv, "vis", 2)
	mint := func(role agencyv1.Role, scope string) string {
		t.Helper()
		resp := &agencyv1.CreateTokenResponse{}
		if err := inv.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: role, WorkspaceScope: scope, Description: "t"}}, resp); err != nil {
			t.Fatal(err)
		}
		return resp.GetSecret()
	}
	scopedAdmin := mint(agencyv1.Role_ROLE_ADMIN, "team=vis")
	other := mint(agencyv1.Role_ROLE_MANAGER, "")
	op := &longrunningpb.Operation{}
	scopedInv := e.invokers(scopedAdmin)[0]
	if err := scopedInv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", &agencyv1.OnboardMembersRequest{
		Selector: &agencyv1.WorkspaceSelector{All: true}, People: people("v@x.test")}, op); err != nil {
		t.Fatal(err)
	}
	get := func(token string) error {
		return e.invokers(token)[0].Invoke(ctx, "google.longrunning.Operations/GetOperation", &longrunningpb.GetOperationRequest{Name: op.GetName()}, &longrunningpb.Operation{})
	}
	if err := get(scopedAdmin); err != nil {
		t.Fatalf("creator: %v", err)
	}
	if err := get(testToken); err != nil {
		t.Fatalf("unscoped admin: %v", err)
	}
	wantCode(t, get(other), codes.NotFound)
	// The scoped admin's operation reached only its scope.
	done := waitOperation(t, scopedInv, op.GetName(), time.Minute)
	if md := opMetadata(t, done); md.GetWorkspaces() != 2 {
		t.Fatalf("scoped operation acted on %d workspaces, want 2", md.GetWorkspaces())
	}
}

// TestOperationRequestIDReplay: OnboardMembers with a request_id starts one
// operation however often it is sent (the replay answers its current
// state); the same id with another request is INVALID_ARGUMENT. Its audit
// trail carries the operation's name, ending with its outcome.
func TestOperationRequestIDReplay(t *testing.T) {
	e := startEnvSim(t, sim.Config{}, "redis://"+redistest.Start(t).Options().Addr+"/0", 0, nil)
	for i, inv := range e.invokers(testToken) {
		t.Run(inv.Transport(), func(t *testing.T) {
			ctx := context.Background()
			team := "rid" + inv.Transport()
			registerWorkspaces(t, e, inv, team, 3)
			id := fmt.Sprintf("0190c2a4-0000-7000-8000-00000000000%d", i)
			req := &agencyv1.OnboardMembersRequest{Selector: &agencyv1.WorkspaceSelector{LabelSelector: "team=" + team},
				People: people("r@agency.test"), RequestId: id}
			first := &longrunningpb.Operation{}
			if err := inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", req, first); err != nil {
				t.Fatal(err)
			}
			waitOperation(t, inv, first.GetName(), time.Minute)
			again := &longrunningpb.Operation{}
			if err := inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", req, again); err != nil {
				t.Fatal(err)
			}
			if again.GetName() != first.GetName() || !again.GetDone() {
				t.Fatalf("replay answered %v, want the same operation %s, done", again, first.GetName())
			}
			other := proto.Clone(req).(*agencyv1.OnboardMembersRequest)
			other.People = people("s@agency.test")
			wantField(t, wantCode(t, inv.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", other, &longrunningpb.Operation{}), codes.InvalidArgument), "request_id")
			list := &longrunningpb.ListOperationsResponse{}
			if err := inv.Invoke(ctx, "google.longrunning.Operations/ListOperations", &longrunningpb.ListOperationsRequest{Name: "operations", PageSize: 1000}, list); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, op := range list.GetOperations() {
				if strings.Contains(opMetadata(t, op).GetMethod(), "OnboardMembers") && op.GetName() == first.GetName() {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d listings of the operation", n)
			}
			// Audit: started, created (naming the operation), and its end.
			evs, err := e.app.Store.Audit().List(ctx, store.AuditQuery{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var phases []string
			for _, ev := range evs {
				if ev.Operation == first.GetName() {
					phases = append(phases, ev.Phase+":"+ev.Code)
				}
			}
			if strings.Join(phases, ",") != "finished:OK,finished:OK" {
				t.Fatalf("operation events (newest first) %v, want its end and its creation", phases)
			}
		})
	}
}

// TestOperationSecretsToCreatorOnly: the API keys a long-running
// CreateApiKeyEverywhere made are in its results with their secrets for
// its creator; an admin who sees the operation sees the keys, not the
// secrets. Nothing of a secret is stored in plain text.
func TestOperationSecretsToCreatorOnly(t *testing.T) {
	e := startEnvSim(t, sim.Config{}, "redis://"+redistest.Start(t).Options().Addr+"/0", 0, nil)
	ctx := context.Background()
	boot := e.invokers(testToken)[0]
	registerWorkspaces(t, e, boot, "sec", 3)
	created := &agencyv1.CreateTokenResponse{}
	if err := boot.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, Description: "creator"}}, created); err != nil {
		t.Fatal(err)
	}
	creator := e.invokers(created.GetSecret())[0]
	resp := &agencyv1.FanoutResponse{}
	if err := creator.Invoke(ctx, "agency.v1.FanoutService/CreateApiKeyEverywhere", &agencyv1.CreateApiKeyEverywhereRequest{
		Selector: &agencyv1.WorkspaceSelector{LabelSelector: "team=sec"}, DisplayName: "k", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER, LongRunning: true}, resp); err != nil {
		t.Fatal(err)
	}
	name := resp.GetOperation().GetName()
	waitOperation(t, creator, name, time.Minute)
	var secrets []string
	for _, r := range allResults(t, creator, name, false) {
		if s := r.GetResult().GetCreatedApiKey().GetSecret(); s == "" {
			t.Fatalf("creator's result without its secret: %v", r)
		} else {
			secrets = append(secrets, s)
		}
	}
	for _, r := range allResults(t, boot, name, false) {
		if r.GetResult().GetCreatedApiKey().GetApiKey() == nil || r.GetResult().GetCreatedApiKey().GetSecret() != "" {
			t.Fatalf("another admin's view: %v, want the key without its secret", r)
		}
	}
	rdb := redistest.Start(t)
	for _, k := range redistest.Keys(t, rdb, e.prefix) {
		dump, err := rdb.Dump(ctx, k).Result()
		if err != nil {
			continue
		}
		for _, s := range secrets {
			if strings.Contains(dump, s) {
				t.Fatalf("a key's secret is in Redis in plain text under %s", k)
			}
		}
	}
}

// TestOperationBeyondThousandWorkspaces: a unary fan-out (and the
// cross-workspace audit-log read) refuses a selection above 1,000
// workspaces; the same selection as an operation
// reaches every one of them.
func TestOperationBeyondThousandWorkspaces(t *testing.T) {
	if testing.Short() {
		t.Skip("registers 1,001 workspaces")
	}
	e := startEnv(t, memoryBackend)
	inv := e.invokers(testToken)[0]
	ctx := context.Background()
	sem := make(chan struct{}, 16)
	errs := make(chan error, 1001)
	for i := range 1001 {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			name := fmt.Sprintf("big-%04d", i)
			_, key := e.sim.CreateWorkspace(name)
			errs <- inv.Invoke(ctx, "agency.v1.WorkspaceService/CreateWorkspace", &agencyv1.CreateWorkspaceRequest{WorkspaceId: name,
				Workspace: &agencyv1.Workspace{DisplayName: name, ApiKey: &key, Labels: map[string]string{"team": "big"}}}, &agencyv1.Workspace{})
		}()
	}
	for range 1001 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	sel := &agencyv1.WorkspaceSelector{LabelSelector: "team=big"}
	err := inv.Invoke(ctx, "agency.v1.FanoutService/EnsureTagEverywhere", &agencyv1.EnsureTagEverywhereRequest{Selector: sel, Label: "q3"}, &agencyv1.FanoutResponse{})
	wantField(t, wantCode(t, err, codes.InvalidArgument), "selector")
	wantAuditLogsRefuseOverLimit(t, inv, "team=big")
	resp := &agencyv1.FanoutResponse{}
	if err := inv.Invoke(ctx, "agency.v1.FanoutService/EnsureTagEverywhere", &agencyv1.EnsureTagEverywhereRequest{Selector: sel, Label: "q3", LongRunning: true}, resp); err != nil {
		t.Fatal(err)
	}
	op := waitOperation(t, inv, resp.GetOperation().GetName(), 2*time.Minute)
	if s := opResponse(t, op).GetSummary(); s.GetTotal() != 1001 || s.GetSucceeded() != 1001 {
		t.Fatalf("summary %v, want 1001 tags created", s)
	}
}

// TestOperationItemCap: --max-operation-items bounds one operation,
// INVALID_ARGUMENT naming the field that makes it too big.
func TestOperationItemCap(t *testing.T) {
	e := startEnvWith(t, "", 0, func(c *config.Config) { c.MaxOperationItems = 3 })
	inv := e.invokers(testToken)[0]
	registerWorkspaces(t, e, inv, "cap", 2)
	sel := &agencyv1.WorkspaceSelector{LabelSelector: "team=cap"}
	err := inv.Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers",
		&agencyv1.OnboardMembersRequest{Selector: sel, People: people("a@x.test", "b@x.test")}, &longrunningpb.Operation{})
	wantField(t, wantCode(t, err, codes.InvalidArgument), "people")
	if err := inv.Invoke(context.Background(), "agency.v1.FanoutService/OnboardMembers",
		&agencyv1.OnboardMembersRequest{Selector: sel, People: people("a@x.test")}, &longrunningpb.Operation{}); err != nil {
		t.Fatalf("2 items under a cap of 3: %v", err)
	}
}

// TestRetryKeepsScope: a workspace outside the creator's scope fails
// NOT_FOUND in an operation, and retrying the operation does not reach it.
func TestRetryKeepsScope(t *testing.T) {
	e := startEnv(t, memoryBackend)
	ctx := context.Background()
	boot := e.invokers(testToken)[0]
	registerWorkspaces(t, e, boot, "mine", 1)
	other := registerWorkspaces(t, e, boot, "theirs", 1)
	created := &agencyv1.CreateTokenResponse{}
	if err := boot.Invoke(ctx, "agency.v1.TokenService/CreateToken", &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_ADMIN, WorkspaceScope: "team=mine"}}, created); err != nil {
		t.Fatal(err)
	}
	scoped := e.invokers(created.GetSecret())[0]
	op := &longrunningpb.Operation{}
	if err := scoped.Invoke(ctx, "agency.v1.FanoutService/OnboardMembers", &agencyv1.OnboardMembersRequest{
		Selector: &agencyv1.WorkspaceSelector{Names: []string{"workspaces/mine-0", "workspaces/theirs-0"}}, People: people("x@agency.test")}, op); err != nil {
		t.Fatal(err)
	}
	op = waitOperation(t, scoped, op.GetName(), time.Minute)
	if r := opResponse(t, op); r.GetFailedTotal() != 1 || r.GetFailed()[0].GetWorkspace() != "workspaces/theirs-0" {
		t.Fatalf("response %v", r)
	}
	retry := &longrunningpb.Operation{}
	if err := scoped.Invoke(ctx, "agency.v1.OperationService/RetryOperation", &agencyv1.RetryOperationRequest{Name: op.GetName()}, retry); err != nil {
		t.Fatal(err)
	}
	retry = waitOperation(t, scoped, retry.GetName(), time.Minute)
	if r := opResponse(t, retry); r.GetFailedTotal() != 1 || status.FromProto(r.GetFailed()[0].GetStatus()).Code() != codes.NotFound {
		t.Fatalf("retry response %v", r)
	}
	for _, id := range other {
		st, _ := e.sim.WorkspaceState(id)
		for _, m := range st.Members {
			if m.Email == "x@agency.test" {
				t.Fatal("the retry reached a workspace outside the scope")
			}
		}
	}
}
