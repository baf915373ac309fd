// Package instantlyaudit implements agency.v1.AuditLogService over Instantly's
// audit log.
package instantlyaudit

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/structpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/resolve"
)

// Service implements agencyv1.AuditLogServiceServer.
type Service struct {
	agencyv1.UnimplementedAuditLogServiceServer
	resolver *resolve.Resolver
	client   *instantly.Client
}

// New returns the service.
func New(r *resolve.Resolver, c *instantly.Client) *Service {
	return &Service{resolver: r, client: c}
}

const defaultPageSize = 100

// ListAuditLogs implements agencyv1.AuditLogServiceServer.
func (s *Service) ListAuditLogs(ctx context.Context, req *agencyv1.ListAuditLogsRequest) (*agencyv1.ListAuditLogsResponse, error) {
	var start, end string
	if req.StartTime != nil {
		start = req.GetStartTime().AsTime().UTC().Format(time.RFC3339)
	}
	if req.EndTime != nil {
		end = req.GetEndTime().AsTime().UTC().Format(time.RFC3339)
	}
	if req.StartTime != nil && req.EndTime != nil && !req.GetEndTime().AsTime().After(req.GetStartTime().AsTime()) {
		return nil, apierr.Field("end_time", "must be after start_time")
	}
	page, err := s.resolver.NewPage(req.GetPageSize(), defaultPageSize, req.GetPageToken(),
		"audit-logs", req.GetParent(), fmt.Sprint(req.GetActivityType()), req.GetSearch(), start, end)
	if err != nil {
		return nil, err
	}
	t, err := s.resolver.Resolve(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	p := instantly.ListAuditLogsParams{Limit: page.Limit, StartingAfter: page.StartingAfter, Search: req.GetSearch(), StartDate: start, EndDate: end}
	if at := int(req.GetActivityType()); at != 0 {
		p.ActivityType = &at
	}
	res, err := s.client.ListAuditLogs(ctx, t.Cred, p)
	if err != nil {
		return nil, err
	}
	out := &agencyv1.ListAuditLogsResponse{NextPageToken: page.Next(len(res.Items), res.NextStartingAfter)}
	for i := range res.Items {
		out.AuditLogs = append(out.AuditLogs, ToProto(&res.Items[i]))
	}
	return out, nil
}

// ToProto renders one audit-log entry.
func ToProto(a *instantly.AuditLog) *agencyv1.AuditLog {
	out := &agencyv1.AuditLog{
		Id:           a.ID,
		Time:         resolve.Timestamp(a.Timestamp),
		ActivityType: int32(a.ActivityType),
		Activity:     a.ActivityType.String(),
		FromApi:      a.FromAPI,
		IpAddress:    a.IPAddress,
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out.UserId, out.UserName, out.ApiKeyId = str(a.UserID), str(a.UserName), str(a.APIKeyID)
	out.UserAgent, out.CampaignId = str(a.UserAgent), str(a.CampaignID)
	if a.AffectedCount != nil {
		out.AffectedCount = int64(*a.AffectedCount)
	}
	if len(a.AuditMetadata) > 0 {
		if md, err := structpb.NewStruct(a.AuditMetadata); err == nil {
			out.Metadata = md
		}
	}
	return out
}
