// Package desiredstate implements agency.v1.DesiredStateService: access as
// code. CreatePlan reads every workspace the file selects (members once,
// tags once, through the fan-out engine) and stores the plan, bound to a
// fingerprint of each workspace's state; ApplyPlan runs it as a durable
// operation (internal/operations), re-reading each workspace first; a
// reconciler (one replica at a time) plans the last applied file every
// --reconcile-interval and reports the drift (GetDrift, and the metric
// agencyplane_drift_items). The rules live in internal/desiredstate; this
// package maps them to and from the API.
package desiredstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Deps are what the service works with.
type Deps struct {
	// Scoped is the registry seen through the caller's scope; Raw the
	// unscoped one (workers and the reconciler run without a caller).
	Scoped, Raw store.Workspaces
	// Resolver opens credentials for callers, RawResolver for workers.
	Resolver, RawResolver *resolve.Resolver
	Client                *instantly.Client
	Engine                *fanout.Engine
	// Locker is the per-workspace member lock every removal and role
	// change takes (through memberguard.Guard).
	Locker  memberguard.Locker
	Manager *ops.Manager
	Store   ds.Store
	Leader  ds.Leader
	Pages   *pagetoken.Codec
	// Registry receives agencyplane_drift_items.
	Registry prometheus.Registerer
	// Provisioned, when set, returns per workspace name the members (lower-
	// cased emails) the identity provider's mapping gave: they count as
	// declared (kept, never removed by a plan).
	Provisioned func(context.Context) (map[string]map[string]bool, error)
}

// Options tune the service; zero values take the defaults.
type Options struct {
	// PlanTTL: an older plan is refused by ApplyPlan (default 1h).
	PlanTTL time.Duration
	// Retention: how long an applied plan is kept for its operation's
	// workers (default 7 days, --operation-retention).
	Retention time.Duration
	// MaxWorkspaces bounds one plan (default 100,000).
	MaxWorkspaces int
	// ReconcileInterval: how often the last applied file is planned for
	// drift; 0 turns reconciling off.
	ReconcileInterval time.Duration
	Now               func() time.Time
	Logger            *slog.Logger
}

// Service implements agencyv1.DesiredStateServiceServer.
type Service struct {
	agencyv1.UnimplementedDesiredStateServiceServer
	scoped, raw           store.Workspaces
	resolver, rawResolver *resolve.Resolver
	client                *instantly.Client
	engine                *fanout.Engine
	guard                 *memberguard.Guard
	manager               *ops.Manager
	store                 ds.Store
	leader                ds.Leader
	pages                 *pagetoken.Codec
	provisionedFn         func(context.Context) (map[string]map[string]bool, error)
	drift                 *prometheus.GaugeVec
	opts                  Options

	// plans caches the plans workers apply (immutable once stored).
	mu    sync.Mutex
	plans map[string]*loadedPlan
	// docs caches the files of long-running plans' operations.
	docs map[string]*ds.Doc
	// assemble serialises putting long-running plans together.
	assemble sync.Mutex
}

// loadedPlan is a stored plan, decoded.
type loadedPlan struct {
	rec  *ds.PlanRecord
	plan *agencyv1.Plan
	doc  *ds.Doc
}

// New returns the service and registers the ApplyPlan executor with the
// operations manager and the drift metric with the registry.
func New(d Deps, o Options) (*Service, error) {
	if o.PlanTTL <= 0 {
		o.PlanTTL = time.Hour
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.MaxWorkspaces <= 0 {
		o.MaxWorkspaces = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Leader == nil {
		d.Leader = ds.Alone{}
	}
	s := &Service{scoped: d.Scoped, raw: d.Raw, resolver: d.Resolver, rawResolver: d.RawResolver, client: d.Client,
		engine: d.Engine, guard: memberguard.NewGuard(d.Locker, d.Client), manager: d.Manager, store: d.Store,
		leader: d.Leader, pages: d.Pages, provisionedFn: d.Provisioned, opts: o, plans: map[string]*loadedPlan{},
		docs: map[string]*ds.Doc{}}
	s.drift = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "agencyplane_drift_items",
		Help: "Differences between the workspaces and the last applied desired state, by the change a plan would make (invite, role, remove, tag), as of the last reconcile."},
		[]string{"kind"})
	for _, k := range ds.Kinds() {
		s.drift.WithLabelValues(string(k)).Set(0)
	}
	if d.Registry != nil {
		if err := d.Registry.Register(s.drift); err != nil {
			return nil, fmt.Errorf("desiredstate: registering the drift metric: %w", err)
		}
	}
	d.Manager.Register(agencyv1.DesiredStateService_ApplyPlan_FullMethodName, ops.ExecutorFunc(s.execute))
	d.Manager.Register(agencyv1.DesiredStateService_CreatePlan_FullMethodName, ops.ExecutorFunc(s.executeRead))
	return s, nil
}

// planName and parsePlanName: "plans/{id}", the id as an operation's.
func planName(id string) string { return "plans/" + id }

func parsePlanName(name string) (string, bool) {
	id, ok := strings.CutPrefix(name, "plans/")
	if !ok {
		return "", false
	}
	if _, ok := ops.ParseName(ops.Name(id)); !ok {
		return "", false
	}
	return id, true
}

func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apierr.New(codes.Unauthenticated, agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, "not authenticated")
	}
	return p, nil
}

// visible reports whether the caller may see a plan: its creator, or an
// admin whose scope covers the creator's (as for operations).
func visible(p *auth.Principal, rec *ds.PlanRecord) bool {
	if p.ID == rec.Creator {
		return true
	}
	if p.Role != auth.RoleAdmin {
		return false
	}
	creatorScope, err := labels.Parse(rec.CreatorScope)
	return err == nil && creatorScope.NarrowerOrEqual(p.Scope)
}

// invalidFile maps the parser's problems to field violations on
// desired_state, one per problem, each naming its line.
func invalidFile(err error) error {
	var pe *ds.ParseError
	if !errors.As(err, &pe) {
		return apierr.Field("desired_state", "%v", err)
	}
	vs := make([]apierr.Violation, len(pe.Problems))
	for i, p := range pe.Problems {
		vs[i] = apierr.Violation{Field: "desired_state", Description: p.String()}
	}
	return apierr.InvalidArgument(vs...)
}

// CreatePlan implements agencyv1.DesiredStateServiceServer.
func (s *Service) CreatePlan(ctx context.Context, req *agencyv1.CreatePlanRequest) (*agencyv1.Plan, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	source := []byte(req.GetDesiredState())
	doc, err := ds.Parse(source)
	if err != nil {
		return nil, invalidFile(err)
	}
	wss, err := selected(ctx, s.scoped, doc, nil, s.opts.MaxWorkspaces)
	if err != nil {
		return nil, err
	}
	ps, conflicts := resolveAll(doc, wss)
	prov, err := s.provisioned(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		ps[i].want.Provisioned = prov[ps[i].ws.Name]
	}
	if len(conflicts) > 0 {
		vs := make([]apierr.Violation, 0, min(len(conflicts), 50))
		for _, c := range conflicts[:min(len(conflicts), 50)] {
			vs = append(vs, apierr.Violation{Field: "desired_state", Description: c.String()})
		}
		return nil, apierr.InvalidArgument(vs...)
	}
	if req.GetLongRunning() {
		return s.startPlan(ctx, p, req, doc, ps)
	}
	s.observeAll(ctx, ps, s.resolver.Credential)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.opts.Now().UTC()
	id := ops.NewID()
	var wps []*agencyv1.WorkspacePlan
	for _, pl := range ps {
		wps = append(wps, workspacePlan(pl))
	}
	plan := s.buildPlan(id, p.ID, now, doc, wps)
	data, err := proto.Marshal(plan)
	if err != nil {
		return nil, err
	}
	rec := &ds.PlanRecord{ID: id, Creator: p.ID, CreatorRole: p.Role, CreatorScope: p.Scope.String(), CreateTime: now,
		Source: source, Plan: data}
	// Kept past its TTL so that a late ApplyPlan hears "expired", not
	// "not found".
	if err := s.store.SavePlan(ctx, rec, s.opts.PlanTTL+time.Hour); err != nil {
		return nil, err
	}
	return view(plan, req.GetView()), nil
}

// view trims a plan to what the caller asked for.
func view(p *agencyv1.Plan, v agencyv1.PlanView) *agencyv1.Plan {
	if v == agencyv1.PlanView_PLAN_VIEW_FULL {
		return p
	}
	c := proto.Clone(p).(*agencyv1.Plan)
	c.Workspaces = nil
	return c
}

// load returns a visible plan, or NOT_FOUND (malformed, unknown, expired
// past its retention or not visible alike).
func (s *Service) load(ctx context.Context, name string) (*loadedPlan, error) {
	id, ok := parsePlanName(name)
	if !ok {
		return nil, apierr.NotFound("plan", name)
	}
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	lp, err := s.loadPlan(ctx, id)
	if errors.Is(err, ds.ErrNotFound) {
		// A long-running plan is stored once its operation has ended.
		lp, err = s.planOfOperation(ctx, p, id)
	}
	if errors.Is(err, ds.ErrNotFound) {
		return nil, apierr.NotFound("plan", name)
	}
	if err != nil {
		return nil, err
	}
	if !visible(p, lp.rec) {
		return nil, apierr.NotFound("plan", name)
	}
	return lp, nil
}

// loadPlan reads and decodes a stored plan.
func (s *Service) loadPlan(ctx context.Context, id string) (*loadedPlan, error) {
	rec, err := s.store.GetPlan(ctx, id)
	if err != nil {
		return nil, err
	}
	plan := &agencyv1.Plan{}
	if err := proto.Unmarshal(rec.Plan, plan); err != nil {
		return nil, fmt.Errorf("desiredstate: stored plan %s: %w", id, err)
	}
	doc, err := ds.Parse(rec.Source)
	if err != nil {
		return nil, fmt.Errorf("desiredstate: stored plan %s no longer parses: %w", id, err)
	}
	plan.ApplyOperation = rec.ApplyOperation
	return &loadedPlan{rec: rec, plan: plan, doc: doc}, nil
}

// GetPlan implements agencyv1.DesiredStateServiceServer.
func (s *Service) GetPlan(ctx context.Context, req *agencyv1.GetPlanRequest) (*agencyv1.Plan, error) {
	lp, err := s.load(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return view(lp.plan, req.GetView()), nil
}

// ListPlanWorkspaces implements agencyv1.DesiredStateServiceServer.
func (s *Service) ListPlanWorkspaces(ctx context.Context, req *agencyv1.ListPlanWorkspacesRequest) (*agencyv1.ListPlanWorkspacesResponse, error) {
	lp, err := s.load(ctx, req.GetParent())
	if err != nil {
		return nil, err
	}
	size, err := apierr.PageSize(req.GetPageSize(), 100, 1000)
	if err != nil {
		return nil, err
	}
	hash := pagetoken.Hash("plan-workspaces", lp.rec.ID, strconv.FormatBool(req.GetChangedOnly()))
	after := ""
	if req.GetPageToken() != "" {
		tok, err := s.pages.Decode(req.GetPageToken(), hash)
		if err != nil {
			return nil, apierr.Field("page_token", pagetoken.InvalidDescription)
		}
		after = tok.After
	}
	var match []*agencyv1.WorkspacePlan
	for _, w := range lp.plan.GetWorkspaces() {
		if !req.GetChangedOnly() || len(w.GetChanges()) > 0 || w.GetStatus() != nil {
			match = append(match, w)
		}
	}
	out := &agencyv1.ListPlanWorkspacesResponse{TotalSize: int32(len(match))}
	start, _ := slices.BinarySearchFunc(match, after, func(w *agencyv1.WorkspacePlan, name string) int {
		return strings.Compare(w.GetWorkspace(), name)
	})
	if after != "" && start < len(match) && match[start].GetWorkspace() == after {
		start++
	}
	end := min(start+size, len(match))
	out.Workspaces = match[start:end]
	if end < len(match) {
		out.NextPageToken = s.pages.Encode(pagetoken.Token{After: match[end-1].GetWorkspace(), FilterHash: hash})
	}
	return out, nil
}

// provisioned returns, per workspace name, the members the identity
// provider gave (nil without one).
func (s *Service) provisioned(ctx context.Context) (map[string]map[string]bool, error) {
	if s.provisionedFn == nil {
		return nil, nil
	}
	return s.provisionedFn(ctx)
}
