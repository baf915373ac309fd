// Package tags implements agency.v1.TagService over Instantly's custom tags,
// tag mappings, campaigns and accounts.
package tags

import (
	"context"
	"fmt"
	"net/mail"
	"regexp"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/emptypb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fieldmask"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
)

// Service implements agencyv1.TagServiceServer.
type Service struct {
	agencyv1.UnimplementedTagServiceServer
	resolver *resolve.Resolver
	client   *instantly.Client
}

// New returns the service.
func New(r *resolve.Resolver, c *instantly.Client) *Service {
	return &Service{resolver: r, client: c}
}

const defaultPageSize = 50

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ListTags implements agencyv1.TagServiceServer.
func (s *Service) ListTags(ctx context.Context, req *agencyv1.ListTagsRequest) (*agencyv1.ListTagsResponse, error) {
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), "tags", req.GetParent(), req.GetSearch())
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListCustomTags(ctx, t.Cred, instantly.ListCustomTagsParams{Limit: page.Limit, StartingAfter: page.StartingAfter, Search: req.GetSearch()})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListTagsResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for i := range res.Items {
		out.Tags = append(out.Tags, ToProto(req.GetParent(), &res.Items[i]))
	}
	return out, nil
}

// GetTag implements agencyv1.TagServiceServer.
func (s *Service) GetTag(ctx context.Context, req *agencyv1.GetTagRequest) (*agencyv1.Tag, error) {
	t, id, err := s.resolver.ResolveChild(ctx, req.GetName(), "tags")
	if err != nil {
		return nil, err
	}
	parent := t.Workspace.Name
	tag, err := s.client.GetCustomTag(ctx, t.Cred, id)
	if err != nil {
		return nil, resolve.NotFound(err, "tag", req.GetName())
	}
	return ToProto(parent, tag), nil
}

// CreateTag implements agencyv1.TagServiceServer.
func (s *Service) CreateTag(ctx context.Context, req *agencyv1.CreateTagRequest) (*agencyv1.Tag, error) {
	label := strings.TrimSpace(req.GetTag().GetLabel())
	if label == "" {
		return nil, apierr.Field("tag.label", "is required and must not be blank")
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	body := instantly.CreateCustomTagRequest{Label: label}
	if d := req.GetTag().GetDescription(); d != "" {
		body.Description = &d
	}
	tag, err := s.client.CreateCustomTag(ctx, t.Cred, body)
	if err != nil {
		return nil, duplicateLabel(err, label)
	}
	return ToProto(req.GetParent(), tag), nil
}

// UpdateTag implements agencyv1.TagServiceServer.
func (s *Service) UpdateTag(ctx context.Context, req *agencyv1.UpdateTagRequest) (*agencyv1.Tag, error) {
	in := req.GetTag()
	var body instantly.UpdateCustomTagRequest
	var vs []apierr.Violation
	paths := fieldmask.Paths(req.GetUpdateMask().GetPaths())
	if len(paths) == 0 {
		vs = append(vs, apierr.Violation{Field: "update_mask", Description: `is required: name the fields to change ("label", "description")`})
	}
	for _, p := range paths {
		switch p {
		case "label":
			l := strings.TrimSpace(in.GetLabel())
			if l == "" {
				vs = append(vs, apierr.Violation{Field: "tag.label", Description: "must not be blank"})
			}
			body.Label = &l
		case "description":
			d := in.GetDescription()
			body.Description = &d
		default:
			vs = append(vs, apierr.Violation{Field: "update_mask", Description: fmt.Sprintf("path %q cannot be updated (allowed: label, description)", p)})
		}
	}
	parent, id, err := resolve.ChildName(in.GetName(), "tags")
	if err != nil {
		vs = append(vs, apierr.Violation{Field: "tag.name", Description: "must be workspaces/{workspace}/tags/{tag}"})
	}
	if len(vs) > 0 {
		return nil, apierr.InvalidArgument(vs...)
	}
	t, err := s.resolver.Resolve(ctx, parent)
	if err != nil {
		return nil, err
	}
	tag, err := s.client.UpdateCustomTag(ctx, t.Cred, id, body)
	if err != nil {
		if body.Label != nil {
			err = duplicateLabel(err, *body.Label)
		}
		return nil, resolve.NotFound(err, "tag", in.GetName())
	}
	return ToProto(parent, tag), nil
}

// DeleteTag implements agencyv1.TagServiceServer.
func (s *Service) DeleteTag(ctx context.Context, req *agencyv1.DeleteTagRequest) (*agencyv1.Tag, error) {
	t, id, err := s.resolver.ResolveChild(ctx, req.GetName(), "tags")
	if err != nil {
		return nil, err
	}
	parent := t.Workspace.Name
	tag, err := s.client.DeleteCustomTag(ctx, t.Cred, id)
	if err != nil {
		return nil, resolve.NotFound(err, "tag", req.GetName())
	}
	return ToProto(parent, tag), nil
}

// AssignTags implements agencyv1.TagServiceServer.
func (s *Service) AssignTags(ctx context.Context, req *agencyv1.AssignTagsRequest) (*emptypb.Empty, error) {
	return s.toggle(ctx, req.GetParent(), req.GetTags(), req.GetResourceType(), req.GetResourceIds(), true)
}

// UnassignTags implements agencyv1.TagServiceServer.
func (s *Service) UnassignTags(ctx context.Context, req *agencyv1.UnassignTagsRequest) (*emptypb.Empty, error) {
	return s.toggle(ctx, req.GetParent(), req.GetTags(), req.GetResourceType(), req.GetResourceIds(), false)
}

func (s *Service) toggle(ctx context.Context, parent string, tags []string, rt agencyv1.TaggedResourceType, ids []string, assign bool) (*emptypb.Empty, error) {
	tagIDs, err := TagIDs(parent, "tags", tags)
	if err != nil {
		return nil, err
	}
	if err := checkResourceIDs(rt, ids); err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, parent)
	if err != nil {
		return nil, err
	}
	err = s.client.ToggleTagResource(ctx, t.Cred, instantly.ToggleTagResourceRequest{
		TagIDs: tagIDs, ResourceType: resourceTypeToUpstream(rt), Assign: assign, ResourceIDs: ids,
	})
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

// ListTagMappings implements agencyv1.TagServiceServer.
func (s *Service) ListTagMappings(ctx context.Context, req *agencyv1.ListTagMappingsRequest) (*agencyv1.ListTagMappingsResponse, error) {
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), append([]string{"tag-mappings", req.GetParent()}, req.GetResourceIds()...)...)
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListCustomTagMappings(ctx, t.Cred, instantly.ListCustomTagMappingsParams{Limit: page.Limit, StartingAfter: page.StartingAfter, ResourceIDs: req.GetResourceIds()})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListTagMappingsResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for _, m := range res.Items {
		out.TagMappings = append(out.TagMappings, &agencyv1.TagMapping{
			Id: m.ID, Tag: req.GetParent() + "/tags/" + m.TagID, ResourceId: m.ResourceID,
			ResourceType: resourceTypeFromUpstream(m.ResourceType), CreateTime: resolve.Timestamp(m.TimestampCreated),
		})
	}
	return out, nil
}

// ListCampaigns implements agencyv1.TagServiceServer.
func (s *Service) ListCampaigns(ctx context.Context, req *agencyv1.ListCampaignsRequest) (*agencyv1.ListCampaignsResponse, error) {
	tagIDs, err := TagIDs(req.GetParent(), "tags", req.GetTags())
	if err != nil {
		return nil, err
	}
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(), append([]string{"campaigns", req.GetParent(), req.GetSearch()}, tagIDs...)...)
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	res, err := s.client.ListCampaigns(ctx, t.Cred, instantly.ListCampaignsParams{Limit: page.Limit, StartingAfter: page.StartingAfter, Search: req.GetSearch(), TagIDs: tagIDs})
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListCampaignsResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for _, c := range res.Items {
		out.Campaigns = append(out.Campaigns, campaignToProto(req.GetParent(), &c))
	}
	return out, nil
}

// ListAccounts implements agencyv1.TagServiceServer.
func (s *Service) ListAccounts(ctx context.Context, req *agencyv1.ListAccountsRequest) (*agencyv1.ListAccountsResponse, error) {
	tagIDs, err := TagIDs(req.GetParent(), "tags", req.GetTags())
	if err != nil {
		return nil, err
	}
	if req.GetMatchAllTags() && len(tagIDs) == 0 {
		return nil, apierr.Field("match_all_tags", "needs tags")
	}
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(),
		append([]string{"accounts", req.GetParent(), req.GetSearch(), fmt.Sprint(req.GetMatchAllTags())}, tagIDs...)...)
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	p := instantly.ListAccountsParams{Limit: page.Limit, StartingAfter: page.StartingAfter, Search: req.GetSearch()}
	if req.GetMatchAllTags() {
		p.TagIDsAll = tagIDs
	} else {
		p.TagIDs = tagIDs
	}
	res, err := s.client.ListAccounts(ctx, t.Cred, p)
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListAccountsResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for _, a := range res.Items {
		out.Accounts = append(out.Accounts, accountToProto(&a))
	}
	return out, nil
}

// TagIDs checks that every name is a tag of parent and returns the ids.
func TagIDs(parent, field string, names []string) ([]string, error) {
	ids := make([]string, 0, len(names))
	for i, n := range names {
		p, id, err := resolve.ChildName(n, "tags")
		if err != nil || p != parent {
			return nil, apierr.Field(fmt.Sprintf("%s[%d]", field, i), "must be a tag of %s (%s/tags/{tag})", parent, parent)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// checkResourceIDs refuses ids of the wrong kind before any upstream call:
// campaigns are UUIDs, accounts are email addresses.
func checkResourceIDs(rt agencyv1.TaggedResourceType, ids []string) error {
	for i, id := range ids {
		field := fmt.Sprintf("resource_ids[%d]", i)
		switch rt {
		case agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN:
			if !uuidRE.MatchString(id) {
				return apierr.Field(field, "campaigns are identified by UUID")
			}
		case agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT:
			if a, err := mail.ParseAddress(id); err != nil || a.Address != id {
				return apierr.Field(field, "accounts are identified by their email address")
			}
		}
	}
	return nil
}

func resourceTypeToUpstream(rt agencyv1.TaggedResourceType) instantly.ResourceType {
	if rt == agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN {
		return instantly.ResourceTypeCampaign
	}
	return instantly.ResourceTypeAccount
}

func resourceTypeFromUpstream(rt instantly.ResourceType) agencyv1.TaggedResourceType {
	switch rt {
	case instantly.ResourceTypeCampaign:
		return agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN
	case instantly.ResourceTypeAccount:
		return agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT
	}
	return agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_UNSPECIFIED
}

// duplicateLabel turns Instantly's 409 on a taken label into ALREADY_EXISTS.
func duplicateLabel(err error, label string) error {
	if resolve.HTTPStatus(err) == 409 {
		return apierr.Wrap(codes.AlreadyExists, agencyv1.ErrorReason_ERROR_REASON_ALREADY_EXISTS,
			fmt.Sprintf("a tag labelled %q already exists", label), err)
	}
	return err
}

// ToProto renders a tag of the workspace parent.
func ToProto(parent string, t *instantly.CustomTag) *agencyv1.Tag {
	out := &agencyv1.Tag{
		Name: parent + "/tags/" + t.ID, Id: t.ID, Label: t.Label,
		CreateTime: resolve.Timestamp(t.TimestampCreated), UpdateTime: resolve.Timestamp(t.TimestampUpdated),
	}
	if t.Description != nil {
		out.Description = *t.Description
	}
	return out
}

func campaignToProto(parent string, c *instantly.Campaign) *agencyv1.Campaign {
	return &agencyv1.Campaign{
		Name: parent + "/campaigns/" + c.ID, Id: c.ID, DisplayName: c.Name,
		Status: int32(c.Status), CreateTime: resolve.Timestamp(c.TimestampCreated),
	}
}

func accountToProto(a *instantly.Account) *agencyv1.Account {
	return &agencyv1.Account{
		Email: a.Email, DisplayName: strings.TrimSpace(a.FirstName + " " + a.LastName),
		Status: int32(a.Status), CreateTime: resolve.Timestamp(a.TimestampCreated),
	}
}
