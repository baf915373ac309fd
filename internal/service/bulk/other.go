package bulk

import (
	"cmp"
	"context"
	"slices"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/service/groupmembers"
	"github.com/agencyplane/agencyplane/internal/service/tags"
	"github.com/agencyplane/agencyplane/internal/service/upstream"
)

func slicesSortByEmail(p []*agencyv1.PersonAccess) {
	slices.SortFunc(p, func(a, b *agencyv1.PersonAccess) int { return cmp.Compare(a.GetEmail(), b.GetEmail()) })
}

// findTag returns the tag with label (trimmed, case-insensitive), or nil.
func (s *Service) findTag(ctx context.Context, cred instantly.Credential, label string) (*instantly.CustomTag, error) {
	label = trim(label)
	for tag, err := range s.client.AllCustomTags(ctx, cred, instantly.ListCustomTagsParams{Search: label}) {
		if err != nil {
			return nil, err
		}
		if sameLabel(tag.Label, label) {
			return &tag, nil
		}
	}
	return nil, nil
}

func tagResult(t target, tag *instantly.CustomTag) *agencyv1.WorkspaceResult {
	return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_Tag{Tag: tags.ToProto(t.name, tag)}}
}

// EnsureTagEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) EnsureTagEverywhere(ctx context.Context, req *agencyv1.EnsureTagEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_EnsureTagEverywhere_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), s.ensureTagOp(req))
}

// ensureTagOp is EnsureTagEverywhere in one workspace.
func (s *Service) ensureTagOp(req *agencyv1.EnsureTagEverywhereRequest) op {
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		tag, err := s.findTag(ctx, cred, req.GetLabel())
		switch {
		case err != nil:
			return nil, fanout.Failed, err
		case tag != nil:
			return tagResult(t, tag), fanout.AlreadyDone, nil
		case req.GetDryRun():
			return nil, fanout.Created, nil
		}
		body := instantly.CreateCustomTagRequest{Label: trim(req.GetLabel())}
		if d := req.GetDescription(); d != "" {
			body.Description = &d
		}
		created, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.CustomTag, error) {
			return s.client.CreateCustomTag(ctx, cred, body)
		}, func(ctx context.Context) (*instantly.CustomTag, bool, error) {
			tag, err := s.findTag(ctx, cred, req.GetLabel())
			return tag, tag != nil, err
		})
		if upstream.HTTPStatus(err) == 409 {
			// Created meanwhile by someone else: reuse it.
			if tag, ferr := s.findTag(ctx, cred, req.GetLabel()); ferr == nil && tag != nil {
				return tagResult(t, tag), fanout.AlreadyDone, nil
			}
		}
		if err != nil {
			return nil, fanout.Failed, err
		}
		return tagResult(t, created), fanout.Created, nil
	}
}

// DeleteTagEverywhere implements agencyv1.FanoutServiceServer.
func (s *Service) DeleteTagEverywhere(ctx context.Context, req *agencyv1.DeleteTagEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_DeleteTagEverywhere_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), s.deleteTagOp(req))
}

// deleteTagOp is DeleteTagEverywhere in one workspace.
func (s *Service) deleteTagOp(req *agencyv1.DeleteTagEverywhereRequest) op {
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		tag, err := s.findTag(ctx, cred, req.GetLabel())
		switch {
		case err != nil:
			return nil, fanout.Failed, err
		case tag == nil:
			return nil, fanout.Skipped, nil
		case req.GetDryRun():
			return tagResult(t, tag), fanout.Deleted, nil
		}
		deleted, err := s.client.DeleteCustomTag(ctx, cred, tag.ID)
		if upstream.HTTPStatus(err) == 404 {
			return tagResult(t, tag), fanout.AlreadyDone, nil
		}
		if err != nil {
			return nil, fanout.Failed, err
		}
		return tagResult(t, deleted), fanout.Deleted, nil
	}
}

// CreateApiKeyEverywhere implements agencyv1.FanoutServiceServer. The
// unary form creates a key in every workspace as asked; the long-running
// form makes each workspace's key exactly once even across crashed
// workers (see createKeyItem).
func (s *Service) CreateApiKeyEverywhere(ctx context.Context, req *agencyv1.CreateApiKeyEverywhereRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_CreateApiKeyEverywhere_FullMethodName, req, req.GetSelector(), false, req.GetRequestId())
	}
	scopes := apikeys.PresetScopes(req.GetPreset())
	return s.run(ctx, req.GetSelector(), false, func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		key, err := s.client.CreateAPIKey(ctx, cred, instantly.CreateAPIKeyRequest{Name: trim(req.GetDisplayName()), Scopes: scopes})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_CreatedApiKey{CreatedApiKey: &agencyv1.CreatedApiKey{
			ApiKey: apikeys.ToProto(t.ws, key), Secret: key.Key}}}, fanout.Created, nil
	})
}

// AuditApiKeys implements agencyv1.FanoutServiceServer.
func (s *Service) AuditApiKeys(ctx context.Context, req *agencyv1.AuditApiKeysRequest) (*agencyv1.FanoutResponse, error) {
	if req.GetLongRunning() {
		return s.startFanout(ctx, agencyv1.FanoutService_AuditApiKeys_FullMethodName, req, req.GetSelector(), false, "")
	}
	return s.run(ctx, req.GetSelector(), false, s.auditKeysOp())
}

// auditKeysOp is AuditApiKeys in one workspace.
func (s *Service) auditKeysOp() op {
	return func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		list := &agencyv1.ApiKeyList{}
		for k, err := range s.client.AllAPIKeys(ctx, cred, instantly.ListParams{}) {
			if err != nil {
				return nil, fanout.Failed, err
			}
			pk := apikeys.ToProto(t.ws, &k)
			if pk.GetOverPrivileged() {
				list.OverPrivileged++
			}
			list.ApiKeys = append(list.ApiKeys, pk)
		}
		return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_ApiKeys{ApiKeys: list}}, fanout.Read, nil
	}
}

// InviteSubWorkspacesToGroup implements agencyv1.FanoutServiceServer.
func (s *Service) InviteSubWorkspacesToGroup(ctx context.Context, req *agencyv1.InviteSubWorkspacesToGroupRequest) (*agencyv1.FanoutResponse, error) {
	admin, err := s.resolver.Resolve(ctx, req.GetAdminWorkspace())
	if err != nil {
		return nil, err
	}
	if req.GetLongRunning() {
		// The admin workspace was resolved in the caller's scope above;
		// workers read its group links per workspace.
		return s.startFanout(ctx, agencyv1.FanoutService_InviteSubWorkspacesToGroup_FullMethodName, req, req.GetSelector(), req.GetDryRun(), req.GetRequestId())
	}
	// Read before write: the group's current links, once for the whole call.
	links := map[string]*instantly.WorkspaceGroupMember{}
	for gm, err := range s.client.AllWorkspaceGroupMembers(ctx, admin.Cred, instantly.ListParams{}) {
		if err != nil {
			return nil, err
		}
		links[gm.SubWorkspaceID] = &gm
	}
	return s.run(ctx, req.GetSelector(), req.GetDryRun(), func(ctx context.Context, t target, _ instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		sub := t.ws.InstantlyWorkspaceID
		if sub == admin.Workspace.InstantlyWorkspaceID {
			return nil, fanout.Failed, apierr.Field("selector", "%s is the admin workspace itself", t.name)
		}
		if gm, ok := links[sub]; ok && gm.Status != instantly.GroupMemberRejected {
			return groupResult(req.GetAdminWorkspace(), gm), fanout.AlreadyDone, nil
		}
		if req.GetDryRun() {
			return nil, fanout.Created, nil
		}
		gm, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceGroupMember, error) {
			return s.client.CreateWorkspaceGroupMember(ctx, admin.Cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: sub})
		}, func(ctx context.Context) (*instantly.WorkspaceGroupMember, bool, error) {
			for gm, err := range s.client.AllWorkspaceGroupMembers(ctx, admin.Cred, instantly.ListParams{}) {
				if err != nil || (gm.SubWorkspaceID == sub && gm.Status != instantly.GroupMemberRejected) {
					return &gm, err == nil, err
				}
			}
			return nil, false, nil
		})
		if err != nil {
			return nil, fanout.Failed, err
		}
		return groupResult(req.GetAdminWorkspace(), gm), fanout.Created, nil
	})
}

func groupResult(admin string, gm *instantly.WorkspaceGroupMember) *agencyv1.WorkspaceResult {
	return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_GroupMember{GroupMember: groupmembers.ToProto(admin, gm)}}
}
