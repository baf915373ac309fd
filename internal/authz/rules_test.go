package authz

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestMutatingFollowsIdempotencyLevel: "mutating" (audited, request_id
// kept) is derived from the protos' idempotency_level, and the derived
// flag equals the read/write split of the access table for every method:
// a read RPC without NO_SIDE_EFFECTS, or a write with it, fails here.
func TestMutatingFollowsIdempotencyLevel(t *testing.T) {
	want := map[string]bool{
		"/agency.v1.WorkspaceService/CreateWorkspace":           true,
		"/agency.v1.WorkspaceService/GetWorkspace":              false,
		"/agency.v1.WorkspaceService/ListWorkspaces":            false,
		"/agency.v1.WorkspaceService/UpdateWorkspace":           true,
		"/agency.v1.WorkspaceService/DeleteWorkspace":           true,
		"/agency.v1.WorkspaceService/RotateWorkspaceCredential": true,
		"/agency.v1.WorkspaceService/VerifyWorkspace":           true,
		"/agency.v1.WorkspaceService/TransferOwnership":         true,
		"/agency.v1.WorkspaceService/RenameInstantlyWorkspace":  true,
		"/agency.v1.WorkspaceService/DiscoverSubWorkspaces":     true,
		"/agency.v1.MemberService/ListMembers":                  false,
		"/agency.v1.MemberService/GetMember":                    false,
		"/agency.v1.MemberService/InviteMember":                 true,
		"/agency.v1.MemberService/UpdateMemberRole":             true,
		"/agency.v1.MemberService/RemoveMember":                 true,
		"/agency.v1.GroupMemberService/ListGroupMembers":        false,
		"/agency.v1.GroupMemberService/GetGroupAdmin":           false,
		"/agency.v1.GroupMemberService/InviteGroupMember":       true,
		"/agency.v1.GroupMemberService/RemoveGroupMember":       true,
		"/agency.v1.TagService/ListTags":                        false,
		"/agency.v1.TagService/GetTag":                          false,
		"/agency.v1.TagService/ListTagMappings":                 false,
		"/agency.v1.TagService/ListCampaigns":                   false,
		"/agency.v1.TagService/ListAccounts":                    false,
		"/agency.v1.TagService/CreateTag":                       true,
		"/agency.v1.TagService/UpdateTag":                       true,
		"/agency.v1.TagService/DeleteTag":                       true,
		"/agency.v1.TagService/AssignTags":                      true,
		"/agency.v1.TagService/UnassignTags":                    true,
		"/agency.v1.ApiKeyService/ListApiKeys":                  false,
		"/agency.v1.ApiKeyService/CreateApiKey":                 true,
		"/agency.v1.ApiKeyService/RevokeApiKey":                 true,
		"/agency.v1.AuditLogService/ListAuditLogs":              false,
		"/agency.v1.AuditService/ListEvents":                    false,
		"/agency.v1.AuditService/ListInstantlyAuditLogs":        false,
		"/agency.v1.FanoutService/InviteMemberEverywhere":       true,
		"/agency.v1.FanoutService/UpdateMemberRoleEverywhere":   true,
		"/agency.v1.FanoutService/RemoveMemberEverywhere":       true,
		"/agency.v1.FanoutService/InviteSubWorkspacesToGroup":   true,
		"/agency.v1.FanoutService/EnsureTagEverywhere":          true,
		"/agency.v1.FanoutService/DeleteTagEverywhere":          true,
		"/agency.v1.FanoutService/CreateApiKeyEverywhere":       true,
		"/agency.v1.FanoutService/AuditApiKeys":                 false,
		"/agency.v1.FanoutService/ListAccess":                   false,
		"/agency.v1.FanoutService/ListPendingInvitations":       false,
		"/agency.v1.FanoutService/OnboardMembers":               true,
		"/agency.v1.DesiredStateService/CreatePlan":             false,
		"/agency.v1.DesiredStateService/GetPlan":                false,
		"/agency.v1.DesiredStateService/ListPlanWorkspaces":     false,
		"/agency.v1.DesiredStateService/ApplyPlan":              true,
		"/agency.v1.DesiredStateService/GetDrift":               false,
		"/google.longrunning.Operations/GetOperation":           false,
		"/google.longrunning.Operations/ListOperations":         false,
		"/google.longrunning.Operations/WaitOperation":          false,
		"/google.longrunning.Operations/CancelOperation":        true,
		"/google.longrunning.Operations/DeleteOperation":        true,
		"/agency.v1.OperationService/ListOperationResults":      false,
		"/agency.v1.OperationService/RetryOperation":            true,
		"/agency.v1.TokenService/CreateToken":                   true,
		"/agency.v1.TokenService/GetToken":                      false,
		"/agency.v1.TokenService/ListTokens":                    false,
		"/agency.v1.TokenService/RevokeToken":                   true,
	}
	rules := Rules()
	if len(rules) != len(want) {
		t.Fatalf("%d rules, want %d", len(rules), len(want))
	}
	for method, mutating := range want {
		r, ok := rules[method]
		if !ok {
			t.Errorf("%s has no rule", method)
			continue
		}
		if r.Mutating != mutating {
			t.Errorf("%s: derived mutating %v, want %v", method, r.Mutating, mutating)
		}
	}
	// Every method of the table is in the registry, so NoSideEffects never
	// answers for a name it could not look up.
	for method := range rules {
		name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(method, "/"), "/", "."))
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(name); err != nil {
			t.Errorf("%s: %v", method, err)
		} else if _, ok := d.(protoreflect.MethodDescriptor); !ok {
			t.Errorf("%s is not a method", method)
		}
	}
	if NoSideEffects("/agency.v1.NoSuchService/Get") {
		t.Error("an unknown method has no side effects")
	}
}
