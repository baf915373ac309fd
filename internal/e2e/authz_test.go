package e2e

import (
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/authz"
)

// expectedMatrix is the access matrix of the north star, written out here on
// purpose rather than read from internal/authz: the test must catch a wrong
// table, not agree with it.
var expectedMatrix = map[string]string{
	"WorkspaceService/CreateWorkspace":           "admin",
	"WorkspaceService/GetWorkspace":              "admin,manager,sdr,viewer",
	"WorkspaceService/ListWorkspaces":            "admin,manager,sdr,viewer",
	"WorkspaceService/UpdateWorkspace":           "admin",
	"WorkspaceService/DeleteWorkspace":           "admin",
	"WorkspaceService/RotateWorkspaceCredential": "admin",
	"WorkspaceService/VerifyWorkspace":           "admin",
	"WorkspaceService/TransferOwnership":         "admin",
	"WorkspaceService/RenameInstantlyWorkspace":  "admin",
	"WorkspaceService/DiscoverSubWorkspaces":     "admin",
	"MemberService/ListMembers":                  "admin,manager",
	"MemberService/GetMember":                    "admin,manager",
	"MemberService/InviteMember":                 "admin",
	"MemberService/UpdateMemberRole":             "admin",
	"MemberService/RemoveMember":                 "admin",
	"GroupMemberService/ListGroupMembers":        "admin,manager",
	"GroupMemberService/GetGroupAdmin":           "admin,manager",
	"GroupMemberService/InviteGroupMember":       "admin",
	"GroupMemberService/RemoveGroupMember":       "admin",
	"TagService/ListTags":                        "admin,manager,sdr,viewer",
	"TagService/GetTag":                          "admin,manager,sdr,viewer",
	"TagService/ListTagMappings":                 "admin,manager,sdr,viewer",
	"TagService/ListCampaigns":                   "admin,manager,sdr,viewer",
	"TagService/ListAccounts":                    "admin,manager,sdr,viewer",
	"TagService/CreateTag":                       "admin,manager",
	"TagService/UpdateTag":                       "admin,manager",
	"TagService/DeleteTag":                       "admin,manager",
	"TagService/AssignTags":                      "admin,manager",
	"TagService/UnassignTags":                    "admin,manager",
	"ApiKeyService/ListApiKeys":                  "admin,manager",
	"ApiKeyService/CreateApiKey":                 "admin",
	"ApiKeyService/RevokeApiKey":                 "admin",
	"AuditLogService/ListAuditLogs":              "admin",
	"AuditService/ListEvents":                    "admin",
	"AuditService/ListInstantlyAuditLogs":        "admin",
	"FanoutService/InviteMemberEverywhere":       "admin",
	"FanoutService/UpdateMemberRoleEverywhere":   "admin",
	"FanoutService/RemoveMemberEverywhere":       "admin",
	"FanoutService/InviteSubWorkspacesToGroup":   "admin",
	"FanoutService/EnsureTagEverywhere":          "admin,manager",
	"FanoutService/DeleteTagEverywhere":          "admin,manager",
	"FanoutService/CreateApiKeyEverywhere":       "admin",
	"FanoutService/AuditApiKeys":                 "admin,manager",
	"FanoutService/ListAccess":                   "admin,manager",
	"FanoutService/ListPendingInvitations":       "admin,manager",
	"TokenService/CreateToken":                   "admin",
	"TokenService/GetToken":                      "admin",
	"TokenService/ListTokens":                    "admin",
	"TokenService/RevokeToken":                   "admin",
	"FanoutService/OnboardMembers":               "admin",
	"OperationService/ListOperationResults":      "admin,manager,sdr,viewer",
	"OperationService/RetryOperation":            "admin,manager,sdr,viewer",
	"DesiredStateService/CreatePlan":             "admin,manager",
	"DesiredStateService/GetPlan":                "admin,manager",
	"DesiredStateService/ListPlanWorkspaces":     "admin,manager",
	"DesiredStateService/ApplyPlan":              "admin",
	"DesiredStateService/GetDrift":               "admin,manager",
	// google.longrunning.Operations: every role, for its own operations.
	"google.longrunning.Operations/GetOperation":    "admin,manager,sdr,viewer",
	"google.longrunning.Operations/ListOperations":  "admin,manager,sdr,viewer",
	"google.longrunning.Operations/WaitOperation":   "admin,manager,sdr,viewer",
	"google.longrunning.Operations/CancelOperation": "admin,manager,sdr,viewer",
	"google.longrunning.Operations/DeleteOperation": "admin,manager,sdr,viewer",
}

// fullMethod is a matrix row's method as invoked: agency.v1 unless the row
// names its package.
func fullMethod(row string) string {
	if strings.Contains(strings.Split(row, "/")[0], ".") {
		return row
	}
	return "agency.v1." + row
}

// TestEveryMethodHasARule walks every method of every agency.v1 service:
// one without a rule (or without an expected row here) fails the build of
// trust, since authz denies it by default and nobody would notice.
func TestEveryMethodHasARule(t *testing.T) {
	rules := authz.Rules()
	seen := 0
	for _, pkg := range []string{"agency.v1", "google.longrunning"} {
		protoregistry.GlobalFiles.RangeFilesByPackage(protoreflect.FullName(pkg), func(fd protoreflect.FileDescriptor) bool {
			for i := 0; i < fd.Services().Len(); i++ {
				sd := fd.Services().Get(i)
				for j := 0; j < sd.Methods().Len(); j++ {
					m := sd.Methods().Get(j)
					short := string(sd.Name()) + "/" + string(m.Name())
					if pkg != "agency.v1" {
						short = pkg + "." + short
					}
					if _, ok := rules["/"+fullMethod(short)]; !ok {
						t.Errorf("%s has no authz rule", short)
					}
					if _, ok := expectedMatrix[short]; !ok {
						t.Errorf("%s has no row in expectedMatrix", short)
					}
					seen++
				}
			}
			return true
		})
	}
	if seen != len(rules) || seen != len(expectedMatrix) {
		t.Errorf("%d methods, %d rules, %d matrix rows", seen, len(rules), len(expectedMatrix))
	}
}

// matrixFixture is one role's world: a workspace in its scope and one out.
type matrixFixture struct {
	e                 *env
	in, out           string // registry names
	inOwner, outOwner string
}

func newMatrixFixture(t *testing.T) *matrixFixture {
	e := startEnv(t, memoryBackend)
	f := &matrixFixture{e: e}
	admin := e.grpc(testToken)
	for _, team := range []string{"west", "east"} {
		id, key := e.sim.CreateWorkspaceWithOwner("team "+team, "owner-"+team+"@agency.test")
		_ = id
		w, err := admin.Create(context.Background(), &agencyv1.CreateWorkspaceRequest{WorkspaceId: "team-" + team,
			Workspace: &agencyv1.Workspace{DisplayName: team, ApiKey: &key, Labels: map[string]string{"team": team}}})
		if err != nil {
			t.Fatal(err)
		}
		if team == "west" {
			f.in, f.inOwner = w.GetName(), "owner-west@agency.test"
		} else {
			f.out, f.outOwner = w.GetName(), "owner-east@agency.test"
		}
	}
	return f
}

// request builds a valid request for method aimed at workspace ws.
func (f *matrixFixture) request(t *testing.T, method, ws, owner string) (proto.Message, proto.Message) {
	uuid := "0190c2a4-0000-7000-8000-000000000001"
	team := strings.TrimPrefix(ws, "workspaces/team-")
	switch method {
	case "WorkspaceService/CreateWorkspace":
		_, key := f.e.sim.CreateWorkspace("new " + team)
		return &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "n", ApiKey: &key, Labels: map[string]string{"team": team}}}, &agencyv1.Workspace{}
	case "WorkspaceService/GetWorkspace":
		return &agencyv1.GetWorkspaceRequest{Name: ws}, &agencyv1.Workspace{}
	case "WorkspaceService/ListWorkspaces":
		return &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{}
	case "WorkspaceService/UpdateWorkspace":
		return &agencyv1.UpdateWorkspaceRequest{Workspace: &agencyv1.Workspace{Name: ws, DisplayName: "renamed"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name"}}}, &agencyv1.Workspace{}
	case "WorkspaceService/DeleteWorkspace":
		return &agencyv1.DeleteWorkspaceRequest{Name: ws}, &emptypb.Empty{}
	case "WorkspaceService/RotateWorkspaceCredential":
		return &agencyv1.RotateWorkspaceCredentialRequest{Name: ws, ApiKey: "not-a-real-key-000"}, &agencyv1.Workspace{}
	case "WorkspaceService/VerifyWorkspace":
		return &agencyv1.VerifyWorkspaceRequest{Name: ws}, &agencyv1.Workspace{}
	case "WorkspaceService/TransferOwnership":
		return &agencyv1.TransferOwnershipRequest{Name: ws, Email: "nobody@agency.test", Sec: "wrong"}, &agencyv1.Workspace{}
	case "WorkspaceService/RenameInstantlyWorkspace":
		return &agencyv1.RenameInstantlyWorkspaceRequest{Name: ws, InstantlyWorkspaceName: "Renamed"}, &agencyv1.Workspace{}
	case "WorkspaceService/DiscoverSubWorkspaces":
		return &agencyv1.DiscoverSubWorkspacesRequest{Name: ws}, &agencyv1.DiscoverSubWorkspacesResponse{}
	case "MemberService/ListMembers":
		return &agencyv1.ListMembersRequest{Parent: ws}, &agencyv1.ListMembersResponse{}
	case "MemberService/GetMember":
		return &agencyv1.GetMemberRequest{Name: ws + "/members/" + owner}, &agencyv1.Member{}
	case "MemberService/InviteMember":
		return &agencyv1.InviteMemberRequest{Parent: ws, Email: "new@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{}
	case "MemberService/UpdateMemberRole":
		return &agencyv1.UpdateMemberRoleRequest{Name: ws + "/members/nobody@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.Member{}
	case "MemberService/RemoveMember":
		return &agencyv1.RemoveMemberRequest{Name: ws + "/members/nobody@agency.test"}, &agencyv1.Member{}
	case "GroupMemberService/ListGroupMembers":
		return &agencyv1.ListGroupMembersRequest{Parent: ws}, &agencyv1.ListGroupMembersResponse{}
	case "GroupMemberService/GetGroupAdmin":
		return &agencyv1.GetGroupAdminRequest{Name: ws}, &agencyv1.GroupAdmin{}
	case "GroupMemberService/InviteGroupMember":
		return &agencyv1.InviteGroupMemberRequest{Parent: ws, SubWorkspace: &agencyv1.InviteGroupMemberRequest_InstantlyWorkspaceId{InstantlyWorkspaceId: uuid}}, &agencyv1.GroupMember{}
	case "GroupMemberService/RemoveGroupMember":
		return &agencyv1.RemoveGroupMemberRequest{Name: ws + "/groupMembers/" + uuid}, &agencyv1.GroupMember{}
	case "TagService/ListTags":
		return &agencyv1.ListTagsRequest{Parent: ws}, &agencyv1.ListTagsResponse{}
	case "TagService/GetTag":
		return &agencyv1.GetTagRequest{Name: ws + "/tags/" + uuid}, &agencyv1.Tag{}
	case "TagService/ListTagMappings":
		return &agencyv1.ListTagMappingsRequest{Parent: ws}, &agencyv1.ListTagMappingsResponse{}
	case "TagService/ListCampaigns":
		return &agencyv1.ListCampaignsRequest{Parent: ws}, &agencyv1.ListCampaignsResponse{}
	case "TagService/ListAccounts":
		return &agencyv1.ListAccountsRequest{Parent: ws}, &agencyv1.ListAccountsResponse{}
	case "TagService/CreateTag":
		return &agencyv1.CreateTagRequest{Parent: ws, Tag: &agencyv1.Tag{Label: "matrix"}}, &agencyv1.Tag{}
	case "TagService/UpdateTag":
		return &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: ws + "/tags/" + uuid, Label: "x"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label"}}}, &agencyv1.Tag{}
	case "TagService/DeleteTag":
		return &agencyv1.DeleteTagRequest{Name: ws + "/tags/" + uuid}, &agencyv1.Tag{}
	case "TagService/AssignTags":
		return &agencyv1.AssignTagsRequest{Parent: ws, Tags: []string{ws + "/tags/" + uuid}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{uuid}}, &emptypb.Empty{}
	case "TagService/UnassignTags":
		return &agencyv1.UnassignTagsRequest{Parent: ws, Tags: []string{ws + "/tags/" + uuid}, ResourceType: agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN, ResourceIds: []string{uuid}}, &emptypb.Empty{}
	case "ApiKeyService/ListApiKeys":
		return &agencyv1.ListApiKeysRequest{Parent: ws}, &agencyv1.ListApiKeysResponse{}
	case "ApiKeyService/CreateApiKey":
		return &agencyv1.CreateApiKeyRequest{Parent: ws, DisplayName: "matrix", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER}, &agencyv1.CreateApiKeyResponse{}
	case "ApiKeyService/RevokeApiKey":
		return &agencyv1.RevokeApiKeyRequest{Name: ws + "/apiKeys/" + uuid}, &agencyv1.ApiKey{}
	case "AuditLogService/ListAuditLogs":
		return &agencyv1.ListAuditLogsRequest{Parent: ws}, &agencyv1.ListAuditLogsResponse{}
	case "AuditService/ListEvents":
		return &agencyv1.ListEventsRequest{}, &agencyv1.ListEventsResponse{}
	case "AuditService/ListInstantlyAuditLogs":
		return &agencyv1.ListInstantlyAuditLogsRequest{}, &agencyv1.ListInstantlyAuditLogsResponse{}
	case "FanoutService/InviteMemberEverywhere":
		return &agencyv1.InviteMemberEverywhereRequest{Selector: names(ws), Email: "new@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.FanoutResponse{}
	case "FanoutService/UpdateMemberRoleEverywhere":
		return &agencyv1.UpdateMemberRoleEverywhereRequest{Selector: names(ws), Email: "nobody@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}, &agencyv1.FanoutResponse{}
	case "FanoutService/RemoveMemberEverywhere":
		return &agencyv1.RemoveMemberEverywhereRequest{Selector: names(ws), Email: "nobody@agency.test"}, &agencyv1.FanoutResponse{}
	case "FanoutService/InviteSubWorkspacesToGroup":
		return &agencyv1.InviteSubWorkspacesToGroupRequest{AdminWorkspace: ws, Selector: names(ws), DryRun: true}, &agencyv1.FanoutResponse{}
	case "FanoutService/EnsureTagEverywhere":
		return &agencyv1.EnsureTagEverywhereRequest{Selector: names(ws), Label: "matrix"}, &agencyv1.FanoutResponse{}
	case "FanoutService/DeleteTagEverywhere":
		return &agencyv1.DeleteTagEverywhereRequest{Selector: names(ws), Label: "nope"}, &agencyv1.FanoutResponse{}
	case "FanoutService/CreateApiKeyEverywhere":
		return &agencyv1.CreateApiKeyEverywhereRequest{Selector: names(ws), DisplayName: "m", Preset: agencyv1.ApiKeyPreset_API_KEY_PRESET_VIEWER}, &agencyv1.FanoutResponse{}
	case "FanoutService/AuditApiKeys":
		return &agencyv1.AuditApiKeysRequest{Selector: names(ws)}, &agencyv1.FanoutResponse{}
	case "FanoutService/ListAccess":
		return &agencyv1.ListAccessRequest{Selector: names(ws)}, &agencyv1.FanoutResponse{}
	case "FanoutService/ListPendingInvitations":
		return &agencyv1.ListPendingInvitationsRequest{Selector: names(ws)}, &agencyv1.FanoutResponse{}
	case "TokenService/CreateToken":
		return &agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: agencyv1.Role_ROLE_VIEWER, WorkspaceScope: "team=west,tier=gold"}}, &agencyv1.CreateTokenResponse{}
	case "TokenService/GetToken":
		return &agencyv1.GetTokenRequest{Name: "tokens/bootstrap"}, &agencyv1.Token{}
	case "TokenService/ListTokens":
		return &agencyv1.ListTokensRequest{}, &agencyv1.ListTokensResponse{}
	case "TokenService/RevokeToken":
		return &agencyv1.RevokeTokenRequest{Name: "tokens/does-not-exist"}, &agencyv1.Token{}
	case "FanoutService/OnboardMembers":
		return &agencyv1.OnboardMembersRequest{Selector: names(ws), People: []*agencyv1.Person{{Email: "new@agency.test", Role: agencyv1.MemberRole_MEMBER_ROLE_VIEW}}}, &longrunningpb.Operation{}
	case "OperationService/ListOperationResults":
		return &agencyv1.ListOperationResultsRequest{Name: missingOperation}, &agencyv1.ListOperationResultsResponse{}
	case "OperationService/RetryOperation":
		return &agencyv1.RetryOperationRequest{Name: missingOperation}, &longrunningpb.Operation{}
	case "google.longrunning.Operations/GetOperation":
		return &longrunningpb.GetOperationRequest{Name: missingOperation}, &longrunningpb.Operation{}
	case "DesiredStateService/CreatePlan":
		return &agencyv1.CreatePlanRequest{View: agencyv1.PlanView_PLAN_VIEW_FULL,
			DesiredState: "version: 1\ntags:\n  - selector: team=" + team + "\n    labels: [matrix]\n"}, &agencyv1.Plan{}
	case "DesiredStateService/GetPlan":
		return &agencyv1.GetPlanRequest{Name: missingPlan}, &agencyv1.Plan{}
	case "DesiredStateService/ListPlanWorkspaces":
		return &agencyv1.ListPlanWorkspacesRequest{Parent: missingPlan}, &agencyv1.ListPlanWorkspacesResponse{}
	case "DesiredStateService/ApplyPlan":
		return &agencyv1.ApplyPlanRequest{Name: missingPlan}, &longrunningpb.Operation{}
	case "DesiredStateService/GetDrift":
		return &agencyv1.GetDriftRequest{}, &agencyv1.Drift{}
	case "google.longrunning.Operations/ListOperations":
		return &longrunningpb.ListOperationsRequest{Name: "operations"}, &longrunningpb.ListOperationsResponse{}
	case "google.longrunning.Operations/WaitOperation":
		return &longrunningpb.WaitOperationRequest{Name: missingOperation}, &longrunningpb.Operation{}
	case "google.longrunning.Operations/CancelOperation":
		return &longrunningpb.CancelOperationRequest{Name: missingOperation}, &emptypb.Empty{}
	case "google.longrunning.Operations/DeleteOperation":
		return &longrunningpb.DeleteOperationRequest{Name: missingOperation}, &emptypb.Empty{}
	}
	t.Fatalf("no request for %s", method)
	return nil, nil
}

func names(ws string) *agencyv1.WorkspaceSelector {
	return &agencyv1.WorkspaceSelector{Names: []string{ws}}
}

// missingOperation is a well-formed operation name that does not exist.
const missingOperation = "operations/aaaaaaaaaaaaaaaaaaaaaaaaaa"

// missingPlan is a well-formed plan name that does not exist.
const missingPlan = "plans/aaaaaaaaaaaaaaaaaaaaaaaaaa"

// workspaceless methods are not aimed at one workspace.
var workspaceless = map[string]bool{
	"WorkspaceService/ListWorkspaces": true, "AuditService/ListEvents": true, "AuditService/ListInstantlyAuditLogs": true,
	"TokenService/CreateToken": true, "TokenService/GetToken": true, "TokenService/ListTokens": true, "TokenService/RevokeToken": true,
	"OperationService/ListOperationResults": true, "OperationService/RetryOperation": true,
	"google.longrunning.Operations/GetOperation": true, "google.longrunning.Operations/ListOperations": true,
	"google.longrunning.Operations/WaitOperation": true, "google.longrunning.Operations/CancelOperation": true,
	"google.longrunning.Operations/DeleteOperation": true,
	// CreatePlan is checked on its own: it must plan only what is in scope.
	"DesiredStateService/GetPlan":            true,
	"DesiredStateService/ListPlanWorkspaces": true,
	"DesiredStateService/ApplyPlan":          true,
	"DesiredStateService/GetDrift":           true,
}

func resourceInfo(st *status.Status) *errdetails.ResourceInfo {
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.ResourceInfo); ok {
			return ri
		}
	}
	return nil
}

// TestAccessMatrix: every RPC × every role × in scope and out of scope, over
// gRPC and over REST. A role without the permission gets PERMISSION_DENIED
// (reason PERMISSION_DENIED); with it, an out-of-scope workspace is
// NOT_FOUND naming that workspace, and an in-scope one is served (whatever
// the upstream then answers).
func TestAccessMatrix(t *testing.T) {
	methods := make([]string, 0, len(expectedMatrix))
	for m := range expectedMatrix {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	// Destructive calls last, so they do not remove what the others need.
	slices.SortStableFunc(methods, func(a, b string) int {
		rank := func(m string) int {
			if m == "WorkspaceService/DeleteWorkspace" {
				return 1
			}
			return 0
		}
		return rank(a) - rank(b)
	})
	for _, role := range []string{"admin", "manager", "sdr", "viewer"} {
		t.Run(role, func(t *testing.T) {
			f := newMatrixFixture(t)
			var created agencyv1.CreateTokenResponse
			if err := (grpcInvoker{conn: f.e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.TokenService/CreateToken",
				&agencyv1.CreateTokenRequest{Token: &agencyv1.Token{Role: roleEnum(role), WorkspaceScope: "team=west"}}, &created); err != nil {
				t.Fatal(err)
			}
			if role == "admin" {
				t.Cleanup(func() { f.checkEveryMutationAudited(t) })
			}
			for _, inv := range f.e.invokers(created.GetSecret()) {
				t.Run(inv.Transport(), func(t *testing.T) {
					for _, where := range []string{"out", "in"} {
						for _, m := range methods {
							if where == "out" && m == "WorkspaceService/DeleteWorkspace" && inv.Transport() == "grpc" {
								// Fine to run: out of scope deletes nothing.
							}
							t.Run(where+"/"+m, func(t *testing.T) {
								f.check(t, inv, role, m, where)
							})
						}
					}
				})
			}
		})
	}
}

// checkEveryMutationAudited: after the admin pass, every mutating method of
// the table has left at least one audit event, none holding a secret.
func (f *matrixFixture) checkEveryMutationAudited(t *testing.T) {
	seen := map[string]bool{}
	var resp agencyv1.ListEventsResponse
	req := &agencyv1.ListEventsRequest{PageSize: 1000}
	for {
		if err := (grpcInvoker{conn: f.e.conn, token: testToken}).Invoke(context.Background(), "agency.v1.AuditService/ListEvents", req, &resp); err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetEvents() {
			seen[e.GetMethod()] = true
			if strings.Contains(mustJSONString(e), "agp_") || strings.Contains(mustJSONString(e), testToken) {
				t.Fatalf("secret in audit event %v", e)
			}
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	for m, r := range authz.Rules() {
		if r.Mutating && !seen[m] {
			t.Errorf("no audit event for %s", m)
		}
	}
}

func roleEnum(r string) agencyv1.Role {
	return map[string]agencyv1.Role{"admin": agencyv1.Role_ROLE_ADMIN, "manager": agencyv1.Role_ROLE_MANAGER, "sdr": agencyv1.Role_ROLE_SDR, "viewer": agencyv1.Role_ROLE_VIEWER}[r]
}

func (f *matrixFixture) check(t *testing.T, inv invoker, role, method, where string) {
	ws, owner := f.in, f.inOwner
	if where == "out" {
		ws, owner = f.out, f.outOwner
	}
	if where == "in" && method == "WorkspaceService/DeleteWorkspace" && inv.Transport() == "grpc" {
		// gRPC runs first; keep the in-scope workspace for the REST pass and
		// delete a fresh one instead.
		_, key := f.e.sim.CreateWorkspace("doomed")
		w, err := f.e.grpc(testToken).Create(context.Background(), &agencyv1.CreateWorkspaceRequest{Workspace: &agencyv1.Workspace{DisplayName: "d", ApiKey: &key, Labels: map[string]string{"team": "west"}}})
		if err != nil {
			t.Fatal(err)
		}
		ws = w.GetName()
	}
	req, resp := f.request(t, method, ws, owner)
	err := inv.Invoke(context.Background(), fullMethod(method), req, resp)
	allowed := slices.Contains(strings.Split(expectedMatrix[method], ","), role)
	st := status.Convert(err)
	if ei := errorInfo(st); err != nil && st.Code() == codes.PermissionDenied && ei.GetReason() == "PERMISSION_DENIED" {
		if allowed && !(method == "WorkspaceService/CreateWorkspace" && where == "out") {
			t.Fatalf("%s denied to %s: %v", method, role, err)
		}
		return
	}
	if !allowed {
		t.Fatalf("%s allowed to %s: got %v, want PERMISSION_DENIED", method, role, err)
	}
	if status.Code(err) == codes.Unauthenticated || status.Code(err) == codes.Internal || status.Code(err) == codes.Unknown {
		t.Fatalf("%s: %v", method, err)
	}
	hidden := err != nil && st.Code() == codes.NotFound && resourceInfo(st).GetResourceType() == "workspace" && resourceInfo(st).GetResourceName() == ws
	if fr, ok := resp.(*agencyv1.FanoutResponse); ok && err == nil && strings.HasPrefix(method, "FanoutService/") && method != "FanoutService/InviteSubWorkspacesToGroup" {
		// A fan-out reports the workspace as NOT_FOUND in its own result.
		r := fr.GetResults()
		if len(r) != 1 {
			t.Fatalf("%s: %d results", method, len(r))
		}
		rst := status.FromProto(r[0].GetStatus())
		hidden = r[0].GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED && rst.Code() == codes.NotFound && resourceInfo(rst).GetResourceName() == ws
	}
	if op, ok := resp.(*longrunningpb.Operation); ok && err == nil && method == "FanoutService/OnboardMembers" {
		// The operation reports the workspace as NOT_FOUND in its result.
		waitOperation(t, inv, op.GetName(), time.Minute)
		r := allResults(t, inv, op.GetName(), false)
		if len(r) != 1 {
			t.Fatalf("%s: %d results", method, len(r))
		}
		rst := status.FromProto(r[0].GetResult().GetStatus())
		hidden = rst.Code() == codes.NotFound && resourceInfo(rst).GetResourceName() == ws
	}
	switch {
	case method == "WorkspaceService/CreateWorkspace" && where == "out":
		t.Fatalf("creating a workspace outside the scope: %v, want PERMISSION_DENIED", err)
	case method == "WorkspaceService/ListWorkspaces":
		for _, w := range resp.(*agencyv1.ListWorkspacesResponse).GetWorkspaces() {
			if w.GetLabels()["team"] != "west" {
				t.Fatalf("ListWorkspaces leaked %s", w.GetName())
			}
		}
	case method == "AuditService/ListInstantlyAuditLogs":
		r := resp.(*agencyv1.ListInstantlyAuditLogsResponse)
		for _, e := range r.GetEntries() {
			if e.GetWorkspace() != f.in && !strings.Contains(e.GetWorkspace(), "team-west") {
				t.Fatalf("cross-workspace audit leaked %s", e.GetWorkspace())
			}
		}
		for _, e := range r.GetErrors() {
			if e.GetWorkspace() == f.out {
				t.Fatalf("cross-workspace audit touched %s", f.out)
			}
		}
	case method == "DesiredStateService/CreatePlan":
		// The file selects by labels: out of scope is simply not planned.
		planned := map[string]bool{}
		for _, w := range resp.(*agencyv1.Plan).GetWorkspaces() {
			planned[w.GetWorkspace()] = true
		}
		if planned[f.out] || (where == "in" && !planned[f.in]) {
			t.Fatalf("CreatePlan planned %v: want %s and never %s", planned, f.in, f.out)
		}
	case workspaceless[method]:
	case where == "out" && !hidden:
		t.Fatalf("%s on an out-of-scope workspace: %v, want NOT_FOUND for %s", method, err, ws)
	case where == "in" && hidden:
		t.Fatalf("%s on an in-scope workspace was hidden: %v", method, err)
	}
	_ = fmt.Sprint
}
