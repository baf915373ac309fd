// Package fanoutsvc implements agency.v1.FanoutService: one operation across
// many workspaces through the fan-out engine, with read-before-write so a
// retried call does nothing twice, dry runs, and guards that never remove a
// workspace's owner or last admin.
package fanoutsvc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/labels"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Service implements agencyv1.FanoutServiceServer.
type Service struct {
	agencyv1.UnimplementedFanoutServiceServer
	store    store.Workspaces // scoped to the caller
	resolver *resolve.Resolver
	client   *instantly.Client
	engine   *fanout.Engine
	// guard makes member removals and role changes under the workspace's
	// member lock, shared by every replica, with the owner/last-admin rule.
	guard *memberguard.Guard
	opts  Options
	// ops, when set, runs the long-running forms (EnableOperations).
	ops *OperationOptions
}

// Options tunes the service.
type Options struct {
	// MaxWorkspaces bounds one call (default 1000).
	MaxWorkspaces int
	// DefaultTimeout applies to calls without a deadline (default 5m), so
	// every call ends with a result for every workspace.
	DefaultTimeout time.Duration
}

// SetDefaults gives every unset (zero or negative) field its default: the
// one place the service's defaults live (agencyd's flags take theirs from
// here).
func (o *Options) SetDefaults() {
	if o.MaxWorkspaces <= 0 {
		o.MaxWorkspaces = 1000
	}
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 5 * time.Minute
	}
}

// New returns the service; member removals and role changes take each
// workspace's member lock from l.
func New(ws store.Workspaces, r *resolve.Resolver, c *instantly.Client, e *fanout.Engine, l memberguard.Locker, opts Options) *Service {
	opts.SetDefaults()
	return &Service{store: ws, resolver: r, client: c, engine: e, guard: memberguard.NewGuard(l, c), opts: opts}
}

// target is one selected workspace, or the reason it cannot be used.
type target struct {
	name string
	ws   *store.Workspace
	err  error
}

// selectWorkspaces resolves the selector through the caller's scope: names
// outside it are NOT_FOUND results, like names that do not exist. A label
// selector or all may select at most limit workspaces. That exactly one of
// names, label_selector and all is set is the selector's protovalidate rule
// (a message oneof), checked before a call runs.
func (s *Service) selectWorkspaces(ctx context.Context, sel *agencyv1.WorkspaceSelector, limit int) ([]target, error) {
	if len(sel.GetNames()) > 0 {
		out := make([]target, 0, len(sel.GetNames()))
		for _, n := range sel.GetNames() {
			ws, err := s.store.Get(ctx, n)
			switch {
			case errors.Is(err, store.ErrNotFound):
				out = append(out, target{name: n, err: apierr.NotFound("workspace", n)})
			case err != nil:
				return nil, err
			default:
				out = append(out, target{name: n, ws: ws})
			}
		}
		slices.SortFunc(out, func(a, b target) int { return cmp.Compare(a.name, b.name) })
		return out, nil
	}
	q := store.ListQuery{Limit: limit + 1}
	if ls := sel.GetLabelSelector(); ls != "" {
		parsed, err := labels.Parse(ls)
		if err != nil {
			return nil, apierr.Field("selector.label_selector", "%s", err.Error())
		}
		q.Match = parsed.Matches
	}
	wss, err := s.store.List(ctx, q)
	if err != nil {
		return nil, err
	}
	if len(wss) > limit {
		return nil, apierr.Field("selector", "selects more than %d workspaces; narrow it or set long_running", limit)
	}
	out := make([]target, len(wss))
	for i, ws := range wss {
		out[i] = target{name: ws.Name, ws: ws}
	}
	return out, nil
}

// op is the per-workspace work of one call.
type op func(ctx context.Context, t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error)

// run selects, fans out, and assembles the response.
func (s *Service) run(ctx context.Context, sel *agencyv1.WorkspaceSelector, dryRun bool, fn op) (*agencyv1.FanoutResponse, error) {
	start := time.Now()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.DefaultTimeout)
		defer cancel()
	}
	targets, err := s.selectWorkspaces(ctx, sel, s.opts.MaxWorkspaces)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]target, len(targets))
	names := make([]string, len(targets))
	for i, t := range targets {
		byName[t.name], names[i] = t, t.name
	}
	results := fanout.Run(ctx, s.engine, names, func(ctx context.Context, name string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
		t := byName[name]
		if t.err != nil {
			return nil, fanout.Failed, t.err
		}
		cred, err := s.resolver.Credential(ctx, t.ws)
		if err != nil {
			return nil, fanout.Failed, err
		}
		return fn(ctx, t, cred)
	})
	resp := &agencyv1.FanoutResponse{DryRun: dryRun, Summary: &agencyv1.FanoutSummary{Total: int32(len(results))}}
	for _, r := range results {
		count(resp.Summary, r.Outcome)
		wr := toResult(r)
		wr.DryRun = dryRun // the outcome is what would happen; nothing was written
		resp.Results = append(resp.Results, wr)
	}
	resp.Summary.Duration = durationpb.New(time.Since(start))
	return resp, nil
}

func count(s *agencyv1.FanoutSummary, o fanout.Outcome) {
	switch {
	case o.Succeeded():
		s.Succeeded++
	case o == fanout.AlreadyDone:
		s.AlreadyDone++
	case o == fanout.Skipped:
		s.Skipped++
	case o == fanout.NotAttempted:
		s.NotAttempted++
	default:
		s.Failed++
	}
}

func outcomeToProto(o fanout.Outcome) agencyv1.FanoutOutcome {
	switch o {
	case fanout.Created:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED
	case fanout.Updated:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED
	case fanout.Deleted:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_DELETED
	case fanout.AlreadyDone:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_ALREADY_DONE
	case fanout.Skipped:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_SKIPPED
	case fanout.Read:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ
	case fanout.Failed:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED
	case fanout.NotAttempted:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED
	case fanout.TimedOut:
		return agencyv1.FanoutOutcome_FANOUT_OUTCOME_TIMED_OUT
	}
	return agencyv1.FanoutOutcome_FANOUT_OUTCOME_UNSPECIFIED
}

func precondition(format string, args ...any) error {
	return apierr.New(codes.FailedPrecondition, agencyv1.ErrorReason_ERROR_REASON_CONFLICT, fmt.Sprintf(format, args...))
}

func sameLabel(a, b string) bool {
	return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b))
}

func trim(s string) string { return strings.TrimSpace(s) }
