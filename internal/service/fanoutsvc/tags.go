package fanoutsvc

import (
	"context"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/tags"
)

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
		if resolve.HTTPStatus(err) == 409 {
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
		if resolve.HTTPStatus(err) == 404 {
			return tagResult(t, tag), fanout.AlreadyDone, nil
		}
		if err != nil {
			return nil, fanout.Failed, err
		}
		return tagResult(t, deleted), fanout.Deleted, nil
	}
}
