package tags

import (
	"context"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/service/servicetest"
	"github.com/agencyplane/agencyplane/internal/sim"
)

const (
	campaignType = agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_CAMPAIGN
	accountType  = agencyv1.TaggedResourceType_TAGGED_RESOURCE_TYPE_ACCOUNT
)

// shop is workspace a (in the caller's scope) with two campaigns and two
// accounts, and workspace b outside the scope with a tag of its own.
type shop struct {
	e         *servicetest.Env
	svc       *Service
	a, b      servicetest.Workspace
	campaigns []string // a's campaign ids
	accounts  []string // a's account emails
	bTag      string   // b's tag id
}

func newShop(t *testing.T, cfg sim.Config) *shop {
	t.Helper()
	e := servicetest.New(t, servicetest.Options{Sim: cfg})
	s := &shop{e: e, svc: New(e.Resolver, e.Client),
		a: e.Register(t, "a", map[string]string{"client": "a"}),
		b: e.Register(t, "b", map[string]string{"client": "b"})}
	for _, n := range []string{"Spring push", "Autumn push"} {
		c, err := e.Sim.AddCampaign(s.a.InstantlyID, n)
		if err != nil {
			t.Fatal(err)
		}
		s.campaigns = append(s.campaigns, c.ID)
	}
	for _, m := range []string{"sdr1@send.test", "sdr2@send.test"} {
		if _, err := e.Sim.AddAccount(s.a.InstantlyID, m); err != nil {
			t.Fatal(err)
		}
		s.accounts = append(s.accounts, m)
	}
	if cfg.FaultRate > 0 {
		return s // b's tag would need a working Instantly; failure tests do without
	}
	bt, err := s.svc.CreateTag(servicetest.Admin(), &agencyv1.CreateTagRequest{Parent: s.b.Name, Tag: &agencyv1.Tag{Label: "b only"}})
	if err != nil {
		t.Fatal(err)
	}
	s.bTag = bt.GetId()
	return s
}

// caller is a manager who sees client=a only.
func caller() context.Context { return servicetest.As(auth.RoleManager, "client=a") }

func (s *shop) create(t *testing.T, label, desc string) *agencyv1.Tag {
	t.Helper()
	tag, err := s.svc.CreateTag(caller(), &agencyv1.CreateTagRequest{Parent: s.a.Name, Tag: &agencyv1.Tag{Label: label, Description: desc}})
	if err != nil {
		t.Fatal(err)
	}
	return tag
}

// upstreamTag is a's tag with id as the simulator holds it, or nil.
func (s *shop) upstreamTag(t *testing.T, id string) *sim.CustomTag {
	t.Helper()
	for _, tag := range s.e.State(t, s.a.InstantlyID).CustomTags {
		if tag.ID == id {
			return &tag
		}
	}
	return nil
}

// TestTagLifecycle: create (label trimmed), get, update each masked field
// alone, delete; every step checked against the simulator.
func TestTagLifecycle(t *testing.T) {
	s := newShop(t, sim.Config{})
	tag := s.create(t, "  VIP  ", "big spenders")
	up := s.upstreamTag(t, tag.GetId())
	if up == nil || up.Label != "VIP" || up.Description == nil || *up.Description != "big spenders" {
		t.Fatalf("upstream %+v", up)
	}
	if tag.GetName() != s.a.Name+"/tags/"+up.ID || tag.GetLabel() != "VIP" || tag.GetDescription() != "big spenders" || tag.GetCreateTime() == nil {
		t.Fatalf("answer %v", tag)
	}
	got, err := s.svc.GetTag(caller(), &agencyv1.GetTagRequest{Name: tag.GetName()})
	if err != nil || got.GetLabel() != "VIP" || got.GetName() != tag.GetName() {
		t.Fatalf("get: %v, %v", got, err)
	}

	// Only masked fields change: the label alone, then the description alone.
	if _, err := s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: tag.GetName(), Label: " Gold ", Description: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label"}}}); err != nil {
		t.Fatal(err)
	}
	if up := s.upstreamTag(t, tag.GetId()); up.Label != "Gold" || *up.Description != "big spenders" {
		t.Fatalf("after label update %+v", up)
	}
	if _, err := s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: tag.GetName(), Label: "ignored", Description: "top tier"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"description"}}}); err != nil {
		t.Fatal(err)
	}
	if up := s.upstreamTag(t, tag.GetId()); up.Label != "Gold" || *up.Description != "top tier" {
		t.Fatalf("after description update %+v", up)
	}

	if _, err := s.svc.DeleteTag(caller(), &agencyv1.DeleteTagRequest{Name: tag.GetName()}); err != nil {
		t.Fatal(err)
	}
	if s.upstreamTag(t, tag.GetId()) != nil {
		t.Fatal("deleted tag still upstream")
	}
	// Gone now: each call names our resource.
	for what, err := range map[string]error{
		"get":    second(s.svc.GetTag(caller(), &agencyv1.GetTagRequest{Name: tag.GetName()})),
		"delete": second(s.svc.DeleteTag(caller(), &agencyv1.DeleteTagRequest{Name: tag.GetName()})),
		"update": second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: tag.GetName(), Label: "x"},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label"}}})),
	} {
		if e := servicetest.WantCode(t, err, codes.NotFound); e.Resource.GetResourceName() != tag.GetName() {
			t.Errorf("%s: resource %v", what, e.Resource)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestTagRequestErrors: each bad request names its field and reaches no
// workspace; a taken label is ALREADY_EXISTS; b's tags are not there.
func TestTagRequestErrors(t *testing.T) {
	s := newShop(t, sim.Config{})
	taken := s.create(t, "Taken", "")
	other := s.create(t, "Other", "")
	label := &fieldmaskpb.FieldMask{Paths: []string{"label"}}
	cases := []struct {
		what  string
		call  func() error
		code  codes.Code
		field string
	}{
		{"blank label", func() error {
			return second(s.svc.CreateTag(caller(), &agencyv1.CreateTagRequest{Parent: s.a.Name, Tag: &agencyv1.Tag{Label: "  "}}))
		}, codes.InvalidArgument, "tag.label"},
		{"taken label, other case", func() error {
			return second(s.svc.CreateTag(caller(), &agencyv1.CreateTagRequest{Parent: s.a.Name, Tag: &agencyv1.Tag{Label: " taken "}}))
		}, codes.AlreadyExists, ""},
		{"create out of scope", func() error {
			return second(s.svc.CreateTag(caller(), &agencyv1.CreateTagRequest{Parent: s.b.Name, Tag: &agencyv1.Tag{Label: "sneaky"}}))
		}, codes.NotFound, ""},
		{"no mask", func() error {
			return second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: other.GetName(), Label: "x"}}))
		}, codes.InvalidArgument, "update_mask"},
		{"unknown path", func() error {
			return second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: other.GetName(), Label: "x"},
				UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label", "id"}}}))
		}, codes.InvalidArgument, "update_mask"},
		{"blank new label", func() error {
			return second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: other.GetName(), Label: " "}, UpdateMask: label}))
		}, codes.InvalidArgument, "tag.label"},
		{"bad tag name", func() error {
			return second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: s.a.Name + "/labels/x", Label: "x"}, UpdateMask: label}))
		}, codes.InvalidArgument, "tag.name"},
		{"rename onto a taken label", func() error {
			return second(s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: other.GetName(), Label: "TAKEN"}, UpdateMask: label}))
		}, codes.AlreadyExists, ""},
		{"b's tag under a", func() error {
			return second(s.svc.GetTag(caller(), &agencyv1.GetTagRequest{Name: s.a.Name + "/tags/" + s.bTag}))
		}, codes.NotFound, ""},
		{"b's tag out of scope", func() error {
			return second(s.svc.DeleteTag(caller(), &agencyv1.DeleteTagRequest{Name: s.b.Name + "/tags/" + s.bTag}))
		}, codes.NotFound, ""},
		{"get bad name", func() error {
			return second(s.svc.GetTag(caller(), &agencyv1.GetTagRequest{Name: "workspaces/a/tags/"}))
		}, codes.InvalidArgument, "name"},
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			err := c.call()
			if c.field != "" {
				servicetest.WantField(t, err, c.field)
			} else {
				servicetest.WantCode(t, err, c.code)
			}
		})
	}
	// Nothing above changed a tag.
	labels := func(iid string) (out []string) {
		for _, tag := range s.e.State(t, iid).CustomTags {
			out = append(out, tag.Label)
		}
		return out
	}
	if a, b := labels(s.a.InstantlyID), labels(s.b.InstantlyID); !slices.Equal(a, []string{taken.GetLabel(), other.GetLabel()}) || !slices.Equal(b, []string{"b only"}) {
		t.Fatalf("tags now a=%v b=%v", a, b)
	}
}

// TestUpdateTagReportsEveryViolation: all bad fields of one request are
// reported together, so a client fixes them in one round.
func TestUpdateTagReportsEveryViolation(t *testing.T) {
	s := newShop(t, sim.Config{})
	_, err := s.svc.UpdateTag(caller(), &agencyv1.UpdateTagRequest{Tag: &agencyv1.Tag{Name: "tags/x", Label: ""},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"label", "color"}}})
	for _, f := range []string{"tag.label", "update_mask", "tag.name"} {
		servicetest.WantField(t, err, f)
	}
}

// TestAssignTags: tags go on the named campaigns and accounts and come off
// again; the mappings list shows them under our names; ids of the wrong
// kind and tags of another workspace are refused before Instantly.
func TestAssignTags(t *testing.T) {
	s := newShop(t, sim.Config{})
	vip, hot := s.create(t, "VIP", ""), s.create(t, "Hot", "")
	both := []string{vip.GetName(), hot.GetName()}
	if _, err := s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: both, ResourceType: campaignType, ResourceIds: s.campaigns[:1]}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: both[:1], ResourceType: accountType, ResourceIds: s.accounts}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.e.State(t, s.a.InstantlyID).CustomTagMappings); n != 4 {
		t.Fatalf("%d mappings upstream, want 4", n)
	}
	resp, err := s.svc.ListTagMappings(caller(), &agencyv1.ListTagMappingsRequest{Parent: s.a.Name, ResourceIds: s.campaigns[:1]})
	if err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, m := range resp.GetTagMappings() {
		if m.GetResourceId() != s.campaigns[0] || m.GetResourceType() != campaignType || m.GetCreateTime() == nil {
			t.Fatalf("mapping %v", m)
		}
		tags = append(tags, m.GetTag())
	}
	if slices.Sort(tags); !slices.Equal(tags, sorted(both)) {
		t.Fatalf("campaign's tags %v, want %v", tags, both)
	}

	if _, err := s.svc.UnassignTags(caller(), &agencyv1.UnassignTagsRequest{Parent: s.a.Name, Tags: both[:1], ResourceType: accountType, ResourceIds: s.accounts[1:]}); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.e.State(t, s.a.InstantlyID).CustomTagMappings {
		if m.ResourceID == s.accounts[1] {
			t.Fatalf("%s still tagged", s.accounts[1])
		}
	}

	before := len(s.e.State(t, s.a.InstantlyID).CustomTagMappings)
	for _, c := range []struct {
		what  string
		req   *agencyv1.AssignTagsRequest
		field string
	}{
		{"tag of another workspace", &agencyv1.AssignTagsRequest{Tags: []string{vip.GetName(), s.b.Name + "/tags/" + s.bTag}, ResourceType: campaignType, ResourceIds: s.campaigns}, "tags[1]"},
		{"not a tag name", &agencyv1.AssignTagsRequest{Tags: []string{vip.GetId()}, ResourceType: campaignType, ResourceIds: s.campaigns}, "tags[0]"},
		{"campaign by name", &agencyv1.AssignTagsRequest{Tags: both, ResourceType: campaignType, ResourceIds: []string{s.campaigns[0], "Spring push"}}, "resource_ids[1]"},
		{"account by display form", &agencyv1.AssignTagsRequest{Tags: both, ResourceType: accountType, ResourceIds: []string{"SDR <sdr1@send.test>"}}, "resource_ids[0]"},
		{"account by campaign id", &agencyv1.AssignTagsRequest{Tags: both, ResourceType: accountType, ResourceIds: s.campaigns[:1]}, "resource_ids[0]"},
	} {
		t.Run(c.what, func(t *testing.T) {
			c.req.Parent = s.a.Name
			servicetest.WantField(t, second(s.svc.AssignTags(caller(), c.req)), c.field)
		})
	}
	_, err = s.svc.UnassignTags(caller(), &agencyv1.UnassignTagsRequest{Parent: s.b.Name, Tags: []string{s.b.Name + "/tags/" + s.bTag}, ResourceType: campaignType})
	servicetest.WantCode(t, err, codes.NotFound)
	if after := len(s.e.State(t, s.a.InstantlyID).CustomTagMappings); after != before {
		t.Fatalf("refused requests changed mappings: %d → %d", before, after)
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestListByTags: campaigns and accounts filter by any of the tags, or all
// of them with match_all_tags (which needs tags); tag names must belong to
// the parent.
func TestListByTags(t *testing.T) {
	s := newShop(t, sim.Config{})
	vip, hot := s.create(t, "VIP", ""), s.create(t, "Hot", "")
	assign := func(tags []string, rt agencyv1.TaggedResourceType, ids ...string) {
		t.Helper()
		if _, err := s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: tags, ResourceType: rt, ResourceIds: ids}); err != nil {
			t.Fatal(err)
		}
	}
	assign([]string{vip.GetName(), hot.GetName()}, accountType, s.accounts[0])
	assign([]string{hot.GetName()}, accountType, s.accounts[1])
	assign([]string{vip.GetName()}, campaignType, s.campaigns[1])

	accounts := func(all bool, tags ...string) []string {
		t.Helper()
		resp, err := s.svc.ListAccounts(caller(), &agencyv1.ListAccountsRequest{Parent: s.a.Name, Tags: tags, MatchAllTags: all})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range resp.GetAccounts() {
			out = append(out, a.GetEmail())
		}
		return sorted(out)
	}
	if got := accounts(false, vip.GetName(), hot.GetName()); !slices.Equal(got, s.accounts) {
		t.Errorf("any of VIP, Hot: %v", got)
	}
	if got := accounts(true, vip.GetName(), hot.GetName()); !slices.Equal(got, s.accounts[:1]) {
		t.Errorf("all of VIP, Hot: %v", got)
	}
	resp, err := s.svc.ListCampaigns(caller(), &agencyv1.ListCampaignsRequest{Parent: s.a.Name, Tags: []string{vip.GetName()}})
	if err != nil || len(resp.GetCampaigns()) != 1 || resp.GetCampaigns()[0].GetName() != s.a.Name+"/campaigns/"+s.campaigns[1] ||
		resp.GetCampaigns()[0].GetDisplayName() != "Autumn push" {
		t.Fatalf("VIP campaigns: %v, %v", resp, err)
	}

	_, err = s.svc.ListAccounts(caller(), &agencyv1.ListAccountsRequest{Parent: s.a.Name, MatchAllTags: true})
	servicetest.WantField(t, err, "match_all_tags")
	_, err = s.svc.ListAccounts(caller(), &agencyv1.ListAccountsRequest{Parent: s.a.Name, Tags: []string{s.b.Name + "/tags/" + s.bTag}})
	servicetest.WantField(t, err, "tags[0]")
	_, err = s.svc.ListCampaigns(caller(), &agencyv1.ListCampaignsRequest{Parent: s.a.Name, Tags: []string{vip.GetName(), "VIP"}})
	servicetest.WantField(t, err, "tags[1]")
	_, err = s.svc.ListCampaigns(caller(), &agencyv1.ListCampaignsRequest{Parent: s.b.Name})
	servicetest.WantCode(t, err, codes.NotFound)
}

// TestListPageTokens: every list walks its items once in pages of one,
// and its token is refused by a listing with other filters.
func TestListPageTokens(t *testing.T) {
	s := newShop(t, sim.Config{})
	vip, hot := s.create(t, "VIP", ""), s.create(t, "Hot", "")
	for _, tag := range []string{vip.GetName(), hot.GetName()} {
		if _, err := s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: []string{tag}, ResourceType: campaignType, ResourceIds: s.campaigns}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: []string{vip.GetName()}, ResourceType: accountType, ResourceIds: s.accounts}); err != nil {
		t.Fatal(err)
	}
	// list runs one listing from its token; it returns the items' count
	// and the next token.
	type list func(token string) (int, string, error)
	accounts := func(tags []string, all bool, search string) list {
		return func(tok string) (int, string, error) {
			r, err := s.svc.ListAccounts(caller(), &agencyv1.ListAccountsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok, Tags: tags, MatchAllTags: all, Search: search})
			return len(r.GetAccounts()), r.GetNextPageToken(), err
		}
	}
	vipOnly := []string{vip.GetName()}
	lists := []struct {
		what      string
		want      int
		run, skew list // skew is the same listing with another filter
	}{
		{"tags", 2, func(tok string) (int, string, error) {
			r, err := s.svc.ListTags(caller(), &agencyv1.ListTagsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok})
			return len(r.GetTags()), r.GetNextPageToken(), err
		}, func(tok string) (int, string, error) {
			r, err := s.svc.ListTags(caller(), &agencyv1.ListTagsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok, Search: "v"})
			return len(r.GetTags()), r.GetNextPageToken(), err
		}},
		{"mappings", 6, func(tok string) (int, string, error) {
			r, err := s.svc.ListTagMappings(caller(), &agencyv1.ListTagMappingsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok})
			return len(r.GetTagMappings()), r.GetNextPageToken(), err
		}, func(tok string) (int, string, error) {
			r, err := s.svc.ListTagMappings(caller(), &agencyv1.ListTagMappingsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok, ResourceIds: s.campaigns[:1]})
			return len(r.GetTagMappings()), r.GetNextPageToken(), err
		}},
		{"campaigns", 2, func(tok string) (int, string, error) {
			r, err := s.svc.ListCampaigns(caller(), &agencyv1.ListCampaignsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok, Tags: []string{vip.GetName()}})
			return len(r.GetCampaigns()), r.GetNextPageToken(), err
		}, func(tok string) (int, string, error) {
			r, err := s.svc.ListCampaigns(caller(), &agencyv1.ListCampaignsRequest{Parent: s.a.Name, PageSize: 1, PageToken: tok, Tags: []string{hot.GetName()}})
			return len(r.GetCampaigns()), r.GetNextPageToken(), err
		}},
		{"accounts", 2, accounts(nil, false, ""), accounts(nil, false, "sdr")},
		{"accounts, other tags", 2, accounts(vipOnly, false, ""), accounts([]string{hot.GetName()}, false, "")},
		{"accounts, all tags", 2, accounts(vipOnly, false, ""), accounts(vipOnly, true, "")},
	}
	for _, l := range lists {
		t.Run(l.what, func(t *testing.T) {
			total, first := 0, ""
			servicetest.WalkPages(t, l.want+1, func(tok string) (string, error) {
				n, next, err := l.run(tok)
				if first == "" {
					first = next
				}
				total += n
				return next, err
			})
			if total != l.want {
				t.Fatalf("%d items, want %d", total, l.want)
			}
			_, _, err := l.skew(first)
			servicetest.WantField(t, err, "page_token")
		})
	}
}

// TestTagUpstreamFailures: reads and writes meet Instantly's failures with
// the documented codes, never NOT_FOUND or INTERNAL.
func TestTagUpstreamFailures(t *testing.T) {
	build := func(t *testing.T, cfg sim.Config) (*shop, *servicetest.Env, string) {
		s := newShop(t, cfg)
		return s, s.e, s.a.InstantlyID
	}
	servicetest.EachUpstreamFailure(t, build, func(s *shop) map[string]error {
		name := s.a.Name + "/tags/0190a3c4-7e86-47af-b764-e075564821ba"
		return map[string]error{
			"list":   second(s.svc.ListTags(caller(), &agencyv1.ListTagsRequest{Parent: s.a.Name})),
			"get":    second(s.svc.GetTag(caller(), &agencyv1.GetTagRequest{Name: name})),
			"create": second(s.svc.CreateTag(caller(), &agencyv1.CreateTagRequest{Parent: s.a.Name, Tag: &agencyv1.Tag{Label: "x"}})),
			"assign": second(s.svc.AssignTags(caller(), &agencyv1.AssignTagsRequest{Parent: s.a.Name, Tags: []string{name}, ResourceType: campaignType, ResourceIds: s.campaigns})),
		}
	})
}
