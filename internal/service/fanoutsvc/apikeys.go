package fanoutsvc

import (
	"context"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
)

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
