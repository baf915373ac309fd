package desiredstate

import (
	"context"
	"fmt"
	"strconv"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
)

// Run reconciles every ReconcileInterval until ctx ends: the replica that
// holds the leadership (a Redis lock with a TTL, renewed at every round;
// in-process on the embedded backend) plans the last applied file without
// applying it and stores the drift; every replica then loads the stored
// report into its metric, so any replica's /metrics and GetDrift agree.
// It returns at once when reconciling is off.
func (s *Service) Run(ctx context.Context) {
	every := s.opts.ReconcileInterval
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = s.leader.Resign(context.WithoutCancel(ctx))
			return
		case <-t.C:
		}
		s.round(ctx)
	}
}

// leaseTTL is how long a leader holds on without renewing: a crashed
// leader is replaced within it.
func (s *Service) leaseTTL() time.Duration {
	return max(3*s.opts.ReconcileInterval, 5*time.Second)
}

// round is one tick: reconcile if leading, then refresh the metric.
func (s *Service) round(ctx context.Context) {
	lead, err := s.leader.Lead(ctx, s.leaseTTL())
	if err != nil {
		s.opts.Logger.WarnContext(ctx, "desired state: leadership unknown; not reconciling this round", "error", err.Error())
	}
	if lead {
		rctx, cancel := context.WithTimeout(ctx, max(s.opts.ReconcileInterval, time.Minute))
		if err := s.Reconcile(rctx); err != nil && ctx.Err() == nil {
			s.opts.Logger.WarnContext(ctx, "desired state: reconcile failed", "error", err.Error())
		}
		cancel()
	}
	r, err := s.store.Drift(ctx)
	if err != nil {
		return
	}
	s.setMetric(r)
}

// setMetric sets agencyplane_drift_items from a report (nil: zero).
func (s *Service) setMetric(r *ds.DriftReport) {
	counts := map[ds.ChangeKind]int{}
	if r != nil {
		for _, it := range r.Items {
			counts[it.Change.Kind]++
		}
	}
	for _, k := range ds.Kinds() {
		s.drift.WithLabelValues(string(k)).Set(float64(counts[k]))
	}
}

// Reconcile plans the last applied file once, without applying it, and
// stores what differs; a difference the previous round saw keeps its first
// sighting.
func (s *Service) Reconcile(ctx context.Context) error {
	applied, err := s.store.LastApplied(ctx)
	if err != nil || applied == nil {
		return err
	}
	now := s.opts.Now().UTC()
	report := &ds.DriftReport{Plan: applied.Plan, ApplyTime: applied.ApplyTime, CheckTime: now}
	doc, err := ds.Parse(applied.Source)
	if err != nil {
		return fmt.Errorf("desiredstate: the applied file no longer parses: %w", err)
	}
	// The applier's plan was scoped; so is its drift.
	scope, err := labels.Parse(applied.CreatorScope)
	if err != nil {
		return fmt.Errorf("desiredstate: the applied plan's scope: %w", err)
	}
	wss, err := selected(ctx, s.raw, doc, scope.Matches, s.opts.MaxWorkspaces)
	if err != nil {
		return err
	}
	prov, err := s.provisioned(ctx)
	if err != nil {
		return err
	}
	var clean []planned
	for _, ws := range wss {
		want, c := doc.For(ws.Name, ws.Labels)
		want.Provisioned = prov[ws.Name]
		if len(c) > 0 {
			// Relabelled since the apply: the file now conflicts there.
			st := apierr.Field("desired_state", "%s", c[0].String()).GRPCStatus()
			report.Errors = append(report.Errors, ds.DriftError{Workspace: ws.Name, Code: int32(st.Code()), Message: st.Message()})
			continue
		}
		clean = append(clean, planned{ws: ws, want: want})
	}
	s.observeAll(ctx, clean, s.rawResolver.Credential)
	if err := ctx.Err(); err != nil {
		return err
	}
	seen := map[string]time.Time{}
	// The same difference keeps its first sighting, across applies too.
	if prev, err := s.store.Drift(ctx); err == nil && prev != nil {
		for _, it := range prev.Items {
			seen[it.Workspace+"\x00"+it.Change.Key()] = it.FirstSeen
		}
	}
	for _, p := range clean {
		if p.err != nil {
			st := apierr.FromError(p.err).GRPCStatus()
			report.Errors = append(report.Errors, ds.DriftError{Workspace: p.ws.Name, Code: int32(st.Code()), Message: st.Message()})
			continue
		}
		for _, c := range p.diff.Changes {
			first, ok := seen[p.ws.Name+"\x00"+c.Key()]
			if !ok {
				first = now
			}
			report.Items = append(report.Items, ds.DriftItem{Workspace: p.ws.Name, Change: c, FirstSeen: first})
		}
	}
	if err := s.store.SaveDrift(ctx, report); err != nil {
		return err
	}
	s.setMetric(report)
	return nil
}

// GetDrift implements agencyv1.DesiredStateServiceServer.
func (s *Service) GetDrift(ctx context.Context, req *agencyv1.GetDriftRequest) (*agencyv1.Drift, error) {
	out := &agencyv1.Drift{Enabled: s.opts.ReconcileInterval > 0, Summary: &agencyv1.DriftSummary{}}
	if out.Enabled {
		out.Interval = durationpb.New(s.opts.ReconcileInterval)
	}
	size, err := apierr.PageSize(req.GetPageSize(), 500, 1000)
	if err != nil {
		return nil, err
	}
	r, err := s.store.Drift(ctx)
	if err != nil {
		return nil, err
	}
	if r == nil {
		if req.GetPageToken() != "" {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
		applied, err := s.store.LastApplied(ctx)
		if err != nil {
			return nil, err
		}
		if applied != nil {
			out.Plan, out.ApplyTime = applied.Plan, timestamppb.New(applied.ApplyTime)
		}
		return out, nil
	}
	// A token is good for the report it paged: every reconcile replaces
	// the report, and positions in another one would skip or repeat items.
	hash := pagetoken.Hash("drift", r.Plan, strconv.FormatInt(r.CheckTime.UnixNano(), 10))
	after := -1
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err == nil {
			after, err = strconv.Atoi(tok.After)
		}
		if err != nil || after < -1 {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
	}
	out.Plan, out.ApplyTime, out.CheckTime = r.Plan, timestamppb.New(r.ApplyTime), timestamppb.New(r.CheckTime)
	// Only what the caller's scope shows.
	inScope, err := s.visibleNames(ctx)
	if err != nil {
		return nil, err
	}
	var items []ds.DriftItem
	for _, it := range r.Items {
		if inScope[it.Workspace] {
			items = append(items, it)
		}
	}
	for _, it := range items {
		switch it.Change.Kind {
		case ds.Invite:
			out.Summary.Invites++
		case ds.Role:
			out.Summary.RoleChanges++
		case ds.Remove:
			out.Summary.Removals++
		case ds.Tag:
			out.Summary.TagCreations++
		}
	}
	start := after + 1
	end := min(start+size, len(items))
	for i := start; i < end; i++ {
		it := items[i]
		out.Items = append(out.Items, &agencyv1.DriftItem{Workspace: it.Workspace, Change: changeToProto(it.Change),
			FirstSeenTime: timestamppb.New(it.FirstSeen)})
	}
	if end < len(items) {
		out.NextPageToken = s.pages.Encode(pagetoken.Token{After: strconv.Itoa(end - 1), FilterHash: hash})
	}
	if start == 0 {
		for _, e := range r.Errors {
			if inScope[e.Workspace] {
				out.Errors = append(out.Errors, &agencyv1.DriftError{Workspace: e.Workspace, Status: &spb.Status{Code: e.Code, Message: e.Message}})
			}
		}
	}
	return out, nil
}
