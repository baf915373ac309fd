// Package authz decides who may do what, where. One table maps every RPC to
// a permission; roles grant permissions (the access matrix); a method
// without a rule is denied. Workspace scope is enforced by Scoped, a view of
// the workspace store that hides what the caller may not see.
package authz

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"

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
// calls are written to the audit trail).
type Rule struct {
	Permission Permission
	Mutating   bool
}

func read(p Permission) Rule  { return Rule{Permission: p} }
func write(p Permission) Rule { return Rule{Permission: p, Mutating: true} }

// Rules returns the method → rule table. Every method of every registered
// service must appear here (a test walks them); a missing one is denied.
func Rules() map[string]Rule {
	ws := "/agency.v1.WorkspaceService/"
	mem := "/agency.v1.MemberService/"
	grp := "/agency.v1.GroupMemberService/"
	tag := "/agency.v1.TagService/"
	key := "/agency.v1.ApiKeyService/"
	fan := "/agency.v1.FanoutService/"
	lro := "/google.longrunning.Operations/"
	dst := "/agency.v1.DesiredStateService/"
	return map[string]Rule{
		ws + "CreateWorkspace":           write(WorkspacesWrite),
		ws + "GetWorkspace":              read(WorkspacesRead),
		ws + "ListWorkspaces":            read(WorkspacesRead),
		ws + "UpdateWorkspace":           write(WorkspacesWrite),
		ws + "DeleteWorkspace":           write(WorkspacesWrite),
		ws + "RotateWorkspaceCredential": write(WorkspacesWrite),
		ws + "VerifyWorkspace":           write(WorkspacesWrite),
		ws + "TransferOwnership":         write(WorkspacesWrite),
		ws + "RenameInstantlyWorkspace":  write(WorkspacesWrite),
		ws + "DiscoverSubWorkspaces":     write(WorkspacesWrite),

		mem + "ListMembers":      read(MembersRead),
		mem + "GetMember":        read(MembersRead),
		mem + "InviteMember":     write(MembersWrite),
		mem + "UpdateMemberRole": write(MembersWrite),
		mem + "RemoveMember":     write(MembersWrite),

		grp + "ListGroupMembers":  read(GroupMembersRead),
		grp + "GetGroupAdmin":     read(GroupMembersRead),
		grp + "InviteGroupMember": write(GroupMembersWrite),
		grp + "RemoveGroupMember": write(GroupMembersWrite),

		tag + "ListTags":        read(TagsRead),
		tag + "GetTag":          read(TagsRead),
		tag + "ListTagMappings": read(TagsRead),
		tag + "ListCampaigns":   read(TagsRead),
		tag + "ListAccounts":    read(TagsRead),
		tag + "CreateTag":       write(TagsWrite),
		tag + "UpdateTag":       write(TagsWrite),
		tag + "DeleteTag":       write(TagsWrite),
		tag + "AssignTags":      write(TagsWrite),
		tag + "UnassignTags":    write(TagsWrite),

		key + "ListApiKeys":  read(APIKeysRead),
		key + "CreateApiKey": write(APIKeysWrite),
		key + "RevokeApiKey": write(APIKeysWrite),

		"/agency.v1.AuditLogService/ListAuditLogs":       read(AuditRead),
		"/agency.v1.AuditService/ListEvents":             read(AuditRead),
		"/agency.v1.AuditService/ListInstantlyAuditLogs": read(AuditRead),

		fan + "InviteMemberEverywhere":     write(MembersWrite),
		fan + "UpdateMemberRoleEverywhere": write(MembersWrite),
		fan + "RemoveMemberEverywhere":     write(MembersWrite),
		fan + "InviteSubWorkspacesToGroup": write(GroupMembersWrite),
		fan + "EnsureTagEverywhere":        write(TagsWrite),
		fan + "DeleteTagEverywhere":        write(TagsWrite),
		fan + "CreateApiKeyEverywhere":     write(APIKeysWrite),
		fan + "AuditApiKeys":               read(APIKeysRead),
		fan + "ListAccess":                 read(MembersRead),
		fan + "ListPendingInvitations":     read(MembersRead),
		fan + "OnboardMembers":             write(MembersWrite),

		// Planning reads members (and tags, which every role reads);
		// applying changes both: ApplyPlan also checks tags write.
		dst + "CreatePlan":         read(MembersRead),
		dst + "GetPlan":            read(MembersRead),
		dst + "ListPlanWorkspaces": read(MembersRead),
		dst + "ApplyPlan":          write(MembersWrite),
		dst + "GetDrift":           read(MembersRead),

		lro + "GetOperation":                               read(OperationsRead),
		lro + "ListOperations":                             read(OperationsRead),
		lro + "WaitOperation":                              read(OperationsRead),
		lro + "CancelOperation":                            write(OperationsWrite),
		lro + "DeleteOperation":                            write(OperationsWrite),
		"/agency.v1.OperationService/ListOperationResults": read(OperationsRead),
		"/agency.v1.OperationService/RetryOperation":       write(OperationsWrite),

		"/agency.v1.TokenService/CreateToken": write(TokensManage),
		"/agency.v1.TokenService/GetToken":    read(TokensManage),
		"/agency.v1.TokenService/ListTokens":  read(TokensManage),
		"/agency.v1.TokenService/RevokeToken": write(TokensManage),
	}
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
