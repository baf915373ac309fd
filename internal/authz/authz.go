// Package authz decides who may do what, where. One table maps every RPC to
// a permission; roles grant permissions (the access matrix); a method
// without a rule is denied. Workspace scope is enforced by Scoped, a view of
// the workspace store that hides what the caller may not see.
package authz

import (
	"context"
	"fmt"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
)

// Permission is one row of the access matrix.
type Permission string

// Permissions.
const (
	WorkspacesRead    Permission = "workspaces.read"
	WorkspacesWrite   Permission = "workspaces.write"
	MembersRead       Permission = "members.read"
	MembersWrite      Permission = "members.write"
	GroupMembersRead  Permission = "group_members.read"
	GroupMembersWrite Permission = "group_members.write"
	TagsRead          Permission = "tags.read"
	TagsWrite         Permission = "tags.write"
	APIKeysRead       Permission = "api_keys.read"
	APIKeysWrite      Permission = "api_keys.write"
	AuditRead         Permission = "audit.read"
	TokensManage      Permission = "tokens.manage"
	// Operations: every role sees and cancels its own operations (and an
	// admin those in its scope); the handlers apply that visibility, and
	// RetryOperation also needs the permission of the operation's method.
	OperationsRead  Permission = "operations.read"
	OperationsWrite Permission = "operations.write"
)

// Rule is a method's permission and whether it changes anything (mutating
// calls are written to the audit trail and keep their request_id answer).
type Rule struct {
	Permission Permission
	Mutating   bool
}

// Rules returns the method → rule table. Every method of every registered
// service must appear here (a test walks them); a missing one is denied. A
// method is mutating unless its proto declares
// `option idempotency_level = NO_SIDE_EFFECTS;` (see NoSideEffects).
func Rules() map[string]Rule {
	rules := make(map[string]Rule, len(permissions))
	for method, p := range permissions {
		rules[method] = Rule{Permission: p, Mutating: !NoSideEffects(method)}
	}
	return rules
}

// NoSideEffects reports whether the method ("/pkg.Service/Method") is
// declared idempotency_level = NO_SIDE_EFFECTS in its proto. A method not
// in the registry has side effects (the safe answer: it is audited).
// google.longrunning's proto declares no idempotency levels, so its three
// reads are listed here.
func NoSideEffects(fullMethod string) bool {
	switch fullMethod {
	case longrunningpb.Operations_GetOperation_FullMethodName, longrunningpb.Operations_ListOperations_FullMethodName,
		longrunningpb.Operations_WaitOperation_FullMethodName:
		return true
	}
	name := protoreflect.FullName(strings.ReplaceAll(strings.TrimPrefix(fullMethod, "/"), "/", "."))
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
	if err != nil {
		return false
	}
	md, ok := d.(protoreflect.MethodDescriptor)
	if !ok {
		return false
	}
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	return ok && opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
}

// permissions maps every method to the permission it needs.
var permissions = map[string]Permission{
	agencyv1.WorkspaceService_CreateWorkspace_FullMethodName:           WorkspacesWrite,
	agencyv1.WorkspaceService_GetWorkspace_FullMethodName:              WorkspacesRead,
	agencyv1.WorkspaceService_ListWorkspaces_FullMethodName:            WorkspacesRead,
	agencyv1.WorkspaceService_UpdateWorkspace_FullMethodName:           WorkspacesWrite,
	agencyv1.WorkspaceService_DeleteWorkspace_FullMethodName:           WorkspacesWrite,
	agencyv1.WorkspaceService_RotateWorkspaceCredential_FullMethodName: WorkspacesWrite,
	agencyv1.WorkspaceService_VerifyWorkspace_FullMethodName:           WorkspacesWrite,
	agencyv1.WorkspaceService_TransferOwnership_FullMethodName:         WorkspacesWrite,
	agencyv1.WorkspaceService_RenameInstantlyWorkspace_FullMethodName:  WorkspacesWrite,
	agencyv1.WorkspaceService_DiscoverSubWorkspaces_FullMethodName:     WorkspacesWrite,

	agencyv1.MemberService_ListMembers_FullMethodName:      MembersRead,
	agencyv1.MemberService_GetMember_FullMethodName:        MembersRead,
	agencyv1.MemberService_InviteMember_FullMethodName:     MembersWrite,
	agencyv1.MemberService_UpdateMemberRole_FullMethodName: MembersWrite,
	agencyv1.MemberService_RemoveMember_FullMethodName:     MembersWrite,

	agencyv1.GroupMemberService_ListGroupMembers_FullMethodName:  GroupMembersRead,
	agencyv1.GroupMemberService_GetGroupAdmin_FullMethodName:     GroupMembersRead,
	agencyv1.GroupMemberService_InviteGroupMember_FullMethodName: GroupMembersWrite,
	agencyv1.GroupMemberService_RemoveGroupMember_FullMethodName: GroupMembersWrite,

	agencyv1.TagService_ListTags_FullMethodName:        TagsRead,
	agencyv1.TagService_GetTag_FullMethodName:          TagsRead,
	agencyv1.TagService_ListTagMappings_FullMethodName: TagsRead,
	agencyv1.TagService_ListCampaigns_FullMethodName:   TagsRead,
	agencyv1.TagService_ListAccounts_FullMethodName:    TagsRead,
	agencyv1.TagService_CreateTag_FullMethodName:       TagsWrite,
	agencyv1.TagService_UpdateTag_FullMethodName:       TagsWrite,
	agencyv1.TagService_DeleteTag_FullMethodName:       TagsWrite,
	agencyv1.TagService_AssignTags_FullMethodName:      TagsWrite,
	agencyv1.TagService_UnassignTags_FullMethodName:    TagsWrite,

	agencyv1.ApiKeyService_ListApiKeys_FullMethodName:  APIKeysRead,
	agencyv1.ApiKeyService_CreateApiKey_FullMethodName: APIKeysWrite,
	agencyv1.ApiKeyService_RevokeApiKey_FullMethodName: APIKeysWrite,

	agencyv1.AuditLogService_ListAuditLogs_FullMethodName:       AuditRead,
	agencyv1.AuditService_ListEvents_FullMethodName:             AuditRead,
	agencyv1.AuditService_ListInstantlyAuditLogs_FullMethodName: AuditRead,

	agencyv1.FanoutService_InviteMemberEverywhere_FullMethodName:     MembersWrite,
	agencyv1.FanoutService_UpdateMemberRoleEverywhere_FullMethodName: MembersWrite,
	agencyv1.FanoutService_RemoveMemberEverywhere_FullMethodName:     MembersWrite,
	agencyv1.FanoutService_InviteSubWorkspacesToGroup_FullMethodName: GroupMembersWrite,
	agencyv1.FanoutService_EnsureTagEverywhere_FullMethodName:        TagsWrite,
	agencyv1.FanoutService_DeleteTagEverywhere_FullMethodName:        TagsWrite,
	agencyv1.FanoutService_CreateApiKeyEverywhere_FullMethodName:     APIKeysWrite,
	agencyv1.FanoutService_AuditApiKeys_FullMethodName:               APIKeysRead,
	agencyv1.FanoutService_ListAccess_FullMethodName:                 MembersRead,
	agencyv1.FanoutService_ListPendingInvitations_FullMethodName:     MembersRead,
	agencyv1.FanoutService_OnboardMembers_FullMethodName:             MembersWrite,

	// Planning reads members (and tags, which every role reads);
	// applying changes both: ApplyPlan also checks tags write.
	agencyv1.DesiredStateService_CreatePlan_FullMethodName:         MembersRead,
	agencyv1.DesiredStateService_GetPlan_FullMethodName:            MembersRead,
	agencyv1.DesiredStateService_ListPlanWorkspaces_FullMethodName: MembersRead,
	agencyv1.DesiredStateService_ApplyPlan_FullMethodName:          MembersWrite,
	agencyv1.DesiredStateService_GetDrift_FullMethodName:           MembersRead,

	longrunningpb.Operations_GetOperation_FullMethodName:          OperationsRead,
	longrunningpb.Operations_ListOperations_FullMethodName:        OperationsRead,
	longrunningpb.Operations_WaitOperation_FullMethodName:         OperationsRead,
	longrunningpb.Operations_CancelOperation_FullMethodName:       OperationsWrite,
	longrunningpb.Operations_DeleteOperation_FullMethodName:       OperationsWrite,
	agencyv1.OperationService_ListOperationResults_FullMethodName: OperationsRead,
	agencyv1.OperationService_RetryOperation_FullMethodName:       OperationsWrite,

	agencyv1.TokenService_CreateToken_FullMethodName: TokensManage,
	agencyv1.TokenService_GetToken_FullMethodName:    TokensManage,
	agencyv1.TokenService_ListTokens_FullMethodName:  TokensManage,
	agencyv1.TokenService_RevokeToken_FullMethodName: TokensManage,
}

// RolePermissions is the access matrix of the north star.
func RolePermissions(role string) []Permission {
	switch role {
	case auth.RoleAdmin:
		return []Permission{WorkspacesRead, WorkspacesWrite, MembersRead, MembersWrite, GroupMembersRead, GroupMembersWrite,
			TagsRead, TagsWrite, APIKeysRead, APIKeysWrite, AuditRead, TokensManage, OperationsRead, OperationsWrite}
	case auth.RoleManager:
		return []Permission{WorkspacesRead, MembersRead, GroupMembersRead, TagsRead, TagsWrite, APIKeysRead, OperationsRead, OperationsWrite}
	case auth.RoleSDR, auth.RoleViewer:
		return []Permission{WorkspacesRead, TagsRead, OperationsRead, OperationsWrite}
	}
	return nil
}

// Has reports whether role grants p.
func Has(role string, p Permission) bool {
	for _, q := range RolePermissions(role) {
		if q == p {
			return true
		}
	}
	return false
}

// Authorizer applies the table.
type Authorizer struct {
	rules map[string]Rule
}

// NewAuthorizer returns an Authorizer over Rules().
func NewAuthorizer() *Authorizer { return &Authorizer{rules: Rules()} }

// Rule returns the method's rule.
func (a *Authorizer) Rule(method string) (Rule, bool) {
	r, ok := a.rules[method]
	return r, ok
}

// Authorize allows the call or says why not. Deny by default.
func (a *Authorizer) Authorize(ctx context.Context, method string) error {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return apierr.New(codes.Unauthenticated, agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, "not authenticated")
	}
	r, ok := a.rules[method]
	if !ok {
		return apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED, "method has no access rule")
	}
	if !Has(p.Role, r.Permission) {
		return apierr.New(codes.PermissionDenied, agencyv1.ErrorReason_ERROR_REASON_PERMISSION_DENIED,
			fmt.Sprintf("role %s lacks %s", p.Role, r.Permission)).WithMetadata("permission", string(r.Permission))
	}
	return nil
}
