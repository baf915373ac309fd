package scim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/labels"
	"github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/store"
)

// Fanout is what provisioning needs of FanoutService: onboarding and
// removal, each started as one durable operation.
type Fanout interface {
	OnboardMembers(ctx context.Context, req *agencyv1.OnboardMembersRequest) (*longrunningpb.Operation, error)
	RemoveMemberEverywhere(ctx context.Context, req *agencyv1.RemoveMemberEverywhereRequest) (*agencyv1.FanoutResponse, error)
}

// Operations reads the operations provisioning started.
type Operations interface {
	Wait(ctx context.Context, id string, timeout time.Duration) (*operations.Record, *operations.Status, error)
	Backend() operations.Backend
	Decode(id string, index int64, data []byte) (*agencyv1.WorkspaceResult, error)
}

// grantDoc is what the mapping gave one SCIM user: per mapped group, the
// invite operation and the workspaces where it created the membership.
// Only those are ever removed: a member the mapping did not add (already
// there, ALREADY_DONE) is never touched.
type grantDoc struct {
	UserID string                 `json:"user_id"`
	Email  string                 `json:"email"`
	Groups map[string]*groupGrant `json:"groups"` // by group name, lower-cased
}

type groupGrant struct {
	Op string `json:"op"` // the invite operation's id
	// Targets are the workspaces the invite selected.
	Targets []string `json:"targets"`
	// Workspaces are those where the mapping made the person a member.
	Workspaces []string `json:"workspaces"`
	Settled    bool     `json:"settled"`
}

// pausedDoc is a removal held back by the hourly cap.
type pausedDoc struct {
	ID         string    `json:"id"`
	Email      string    `json:"email"`
	Workspaces []string  `json:"workspaces"`
	Group      string    `json:"group"`
	RequestID  string    `json:"request_id"`
	Time       time.Time `json:"time"`
}

// capDoc counts removals started in the last hour.
type capDoc struct {
	Events []capEvent `json:"events"`
}

type capEvent struct {
	T int64 `json:"t"`
	N int   `json:"n"`
}

const (
	kindGrant  = "Grant"
	kindPaused = "Paused"
	kindCap    = "Cap"
)

// userLocks serializes one user's reconciliation within a replica.
type userLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (l *userLocks) lock(id string) func() {
	l.mu.Lock()
	if l.locks == nil {
		l.locks = map[string]*sync.Mutex{}
	}
	m := l.locks[id]
	if m == nil {
		m = &sync.Mutex{}
		l.locks[id] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// lockUser serializes one user's reconciliation: across replicas with the
// Locker (Redis), within this one without.
func (h *Handler) lockUser(ctx context.Context, userID string) (func(), error) {
	if h.opts.Locker == nil {
		return h.locks.lock(userID), nil
	}
	// The lease lives as long as the Lock call's ctx: bound the whole
	// reconciliation by it.
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	lease, err := h.opts.Locker.Lock(lctx, "scim-user:"+userID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("scim user lock: %w", err)
	}
	return func() {
		_ = lease.Unlock(context.WithoutCancel(ctx))
		cancel()
	}, nil
}

func (h *Handler) provisioning() bool { return h.opts.Mapping != nil && h.opts.Fanout != nil }

// actor is the principal provisioning's operations run as: unscoped, with
// the rights onboarding and removal need, named after the SCIM caller.
func actor(ctx context.Context) *auth.Principal {
	id := "scim:reconciler"
	if p, ok := auth.FromContext(ctx); ok {
		id = "scim:" + p.ID
	}
	return &auth.Principal{ID: id, Role: auth.RoleAdmin}
}

// reconcile brings one user's workspaces in line with the mapping: an
// invite operation for each mapped group the (active) user is newly in, a
// removal for each mapped group it left (deactivated and deleted users
// have none). Level-triggered: a retried request, or a run after a crash,
// finds nothing or the rest to do.
func (h *Handler) reconcile(ctx context.Context, userID, requestID string) error {
	if !h.provisioning() {
		return nil
	}
	unlock, err := h.lockUser(ctx, userID)
	if err != nil {
		return err
	}
	defer unlock()
	pctx := auth.WithPrincipal(ctx, actor(ctx))
	grant, err := h.loadGrant(ctx, userID)
	if err != nil {
		return err
	}
	u, err := h.loadUser(ctx, userID)
	var se *scimError
	if errors.As(err, &se) && se.Status == 404 {
		u, err = nil, nil
	}
	if err != nil {
		return err
	}
	desired := map[string]*GroupRule{}
	if u != nil && bool(u.Active) && u.Email() != "" {
		if len(grant.Groups) == 0 {
			// The address invitations go to is fixed while the mapping
			// holds grants, so a removal finds what the invite made.
			grant.Email = u.Email()
		}
		groups, err := h.allGroups(ctx)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if r, ok := h.opts.Mapping.rule(g.DisplayName); ok && hasMember(g, userID) {
				desired[strings.ToLower(r.Group)] = r
			}
		}
	}
	keys := make([]string, 0, len(desired))
	for k := range desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if grant.Groups[k] != nil {
			continue
		}
		gg, err := h.invite(pctx, grant.Email, desired[k], requestID)
		if err != nil {
			return err
		}
		grant.Groups[k] = gg
		if err := h.saveGrant(ctx, grant); err != nil {
			return err
		}
	}
	for k, gg := range grant.Groups {
		if !gg.Settled {
			wait := time.Duration(0)
			if desired[k] == nil {
				wait = h.opts.SettleTimeout
			}
			if err := h.settle(ctx, gg, wait); err != nil {
				return err
			}
		}
	}
	for _, k := range keys {
		// A settled grant whose selector now picks workspaces its invites
		// did not (registered or relabelled since): invite there too.
		gg := grant.Groups[k]
		if gg == nil || !gg.Settled {
			continue
		}
		extended, err := h.extend(pctx, grant.Email, desired[k], gg, requestID)
		if err != nil {
			return err
		}
		if extended {
			if err := h.saveGrant(ctx, grant); err != nil {
				return err
			}
		}
	}
	left := make([]string, 0)
	for k := range grant.Groups {
		if desired[k] == nil {
			left = append(left, k)
		}
	}
	sort.Strings(left)
	for _, k := range left {
		gg := grant.Groups[k]
		if !gg.Settled {
			// Its invite is still running: the next request or the
			// periodic reconciliation finishes the job.
			h.opts.Logger.InfoContext(ctx, "scim removal waits for its invite operation", "operation", operations.Name(gg.Op), "group", k)
			continue
		}
		var remove []string
		for _, w := range gg.Workspaces {
			kept := false
			for k2, other := range grant.Groups {
				if k2 != k && desired[k2] != nil && slices.Contains(other.Targets, w) {
					// Another mapped group of the person selects it: it
					// now holds the grant.
					if !slices.Contains(other.Workspaces, w) {
						other.Workspaces = append(other.Workspaces, w)
					}
					kept = true
				}
			}
			if !kept {
				remove = append(remove, w)
			}
		}
		delete(grant.Groups, k)
		if err := h.remove(pctx, grant.Email, k, remove, requestID); err != nil {
			return err
		}
		if err := h.saveGrant(ctx, grant); err != nil {
			return err
		}
	}
	return nil
}

// invite starts one OnboardMembers operation for the person and group.
func (h *Handler) invite(ctx context.Context, email string, r *GroupRule, requestID string) (*groupGrant, error) {
	op, err := h.opts.Fanout.OnboardMembers(ctx, &agencyv1.OnboardMembersRequest{
		Selector: &agencyv1.WorkspaceSelector{LabelSelector: r.Selector},
		People:   []*agencyv1.Person{{Email: email, Role: r.role}}, RequestId: requestID,
	})
	if err != nil {
		return nil, fmt.Errorf("invite into group %q's workspaces: %w", r.Group, err)
	}
	id, _ := operations.ParseName(op.GetName())
	rec, _, err := h.opts.Operations.Backend().Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("invite operation %s: %w", id, err)
	}
	gg := &groupGrant{Op: id}
	for _, e := range rec.Entries {
		if !e.Missing {
			gg.Targets = append(gg.Targets, e.Workspace)
		}
	}
	h.audit(ctx, agencyv1.FanoutService_OnboardMembers_FullMethodName, requestID, gg.Targets, store.AuditPhaseStarted, "", op.GetName())
	return gg, nil
}

// extend starts one OnboardMembers operation for the workspaces the
// group's selector picks now and its grant's invites did not; the grant
// then follows that operation (unsettled until it ends; the memberships it
// creates join the grant's, so a removal includes them). False when there
// are none, or without a workspace registry.
func (h *Handler) extend(ctx context.Context, email string, r *GroupRule, gg *groupGrant, requestID string) (bool, error) {
	if h.opts.Workspaces == nil {
		return false, nil
	}
	sel, err := labels.Parse(r.Selector)
	if err != nil {
		return false, fmt.Errorf("group %q's selector: %w", r.Group, err)
	}
	var fresh []string
	for after := ""; ; {
		page, err := h.opts.Workspaces.List(ctx, store.ListQuery{After: after, Limit: 500, Match: sel.Matches})
		if err != nil {
			return false, fmt.Errorf("workspaces of group %q: %w", r.Group, err)
		}
		for _, w := range page {
			if !slices.Contains(gg.Targets, w.Name) {
				fresh = append(fresh, w.Name)
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].Name
	}
	if len(fresh) == 0 {
		return false, nil
	}
	var started []string
	for chunk := range slices.Chunk(fresh, 1000) {
		op, err := h.opts.Fanout.OnboardMembers(ctx, &agencyv1.OnboardMembersRequest{
			Selector: &agencyv1.WorkspaceSelector{Names: chunk},
			People:   []*agencyv1.Person{{Email: email, Role: r.role}}, RequestId: requestID,
		})
		if err != nil {
			return false, fmt.Errorf("invite into group %q's new workspaces: %w", r.Group, err)
		}
		id, _ := operations.ParseName(op.GetName())
		h.audit(ctx, agencyv1.FanoutService_OnboardMembers_FullMethodName, requestID, chunk, store.AuditPhaseStarted, "", op.GetName())
		started = append(started, id)
		gg.Targets = append(gg.Targets, chunk...)
	}
	// The grant follows the last operation; more than 1000 new workspaces
	// at once settle the earlier chunks' creations on a later pass (their
	// workspaces are targets, so a removal still considers them).
	gg.Op, gg.Settled = started[len(started)-1], false
	return true, nil
}

// settle reads a finished invite's results: the workspaces where it
// created the membership join the grant. A running one is left unsettled.
func (h *Handler) settle(ctx context.Context, gg *groupGrant, wait time.Duration) error {
	rec, st, err := h.opts.Operations.Wait(ctx, gg.Op, wait)
	if err != nil {
		if errors.Is(err, operations.ErrNotFound) {
			gg.Settled = true // expired: nothing more to learn
			return nil
		}
		return fmt.Errorf("invite operation %s: %w", gg.Op, err)
	}
	if st.EndTime.IsZero() {
		return nil
	}
	var idx []int64
	for _, e := range rec.Entries {
		idx = append(idx, e.Offset)
	}
	res, err := h.opts.Operations.Backend().Results(ctx, gg.Op, idx)
	if err != nil {
		return fmt.Errorf("invite operation %s: %w", gg.Op, err)
	}
	for _, e := range rec.Entries {
		data, ok := res[e.Offset]
		if !ok {
			continue
		}
		r, err := h.opts.Operations.Decode(gg.Op, e.Offset, data)
		if err != nil {
			return err
		}
		if r.GetOutcome() == agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED && !slices.Contains(gg.Workspaces, e.Workspace) {
			gg.Workspaces = append(gg.Workspaces, e.Workspace)
		}
	}
	gg.Settled = true
	return nil
}

// remove starts the removals the hourly cap allows, as operations of at
// most 1000 workspaces, and pauses the rest.
func (h *Handler) remove(ctx context.Context, email, group string, workspaces []string, requestID string) error {
	if len(workspaces) == 0 {
		return nil
	}
	allowed, err := h.reserve(ctx, len(workspaces))
	if err != nil {
		return err
	}
	if err := h.startRemoval(ctx, email, workspaces[:allowed], requestID); err != nil {
		return err
	}
	paused := workspaces[allowed:]
	if len(paused) == 0 {
		return nil
	}
	p := &pausedDoc{ID: newID(), Email: email, Workspaces: paused, Group: group, RequestID: requestID, Time: h.opts.Now().UTC()}
	doc, _ := json.Marshal(p)
	if err := h.opts.Store.Create(ctx, kindPaused, p.ID, p.ID, doc); err != nil {
		return err
	}
	h.paused.Add(float64(len(paused)))
	h.audit(ctx, "scim/RemovalsPaused", requestID, paused, store.AuditPhaseFinished, "ResourceExhausted", "")
	h.opts.Logger.WarnContext(ctx, "scim removals paused by --scim-max-removals-per-hour", "removals", len(paused), "paused", p.ID)
	return nil
}

func (h *Handler) startRemoval(ctx context.Context, email string, workspaces []string, requestID string) error {
	for chunk := range slices.Chunk(workspaces, 1000) {
		resp, err := h.opts.Fanout.RemoveMemberEverywhere(ctx, &agencyv1.RemoveMemberEverywhereRequest{
			Selector: &agencyv1.WorkspaceSelector{Names: chunk}, Email: email, LongRunning: true, RequestId: requestID})
		if err != nil {
			return fmt.Errorf("removal from %d workspaces: %w", len(chunk), err)
		}
		h.audit(ctx, agencyv1.FanoutService_RemoveMemberEverywhere_FullMethodName, requestID, chunk, store.AuditPhaseStarted, "", resp.GetOperation().GetName())
	}
	return nil
}

// reserve takes up to n removals from the last hour's budget and returns
// how many it took.
func (h *Handler) reserve(ctx context.Context, n int) (int, error) {
	var got int
	update := func(cur []byte) ([]byte, string, error) {
		var c capDoc
		if cur != nil {
			if err := json.Unmarshal(cur, &c); err != nil {
				return nil, "", err
			}
		}
		now := h.opts.Now()
		used := 0
		kept := c.Events[:0]
		for _, e := range c.Events {
			if now.Sub(time.Unix(e.T, 0)) < time.Hour {
				kept = append(kept, e)
				used += e.N
			}
		}
		got = max(0, min(n, h.opts.MaxRemovalsPerHour-used))
		if got > 0 {
			kept = append(kept, capEvent{T: now.Unix(), N: got})
		}
		c.Events = kept
		doc, err := json.Marshal(&c)
		return doc, "removals", err
	}
	for range 5 {
		err := h.opts.Store.Update(ctx, kindCap, "removals", update)
		if errors.Is(err, errNotFound) {
			doc, _, uerr := update(nil)
			if uerr != nil {
				return 0, uerr
			}
			err = h.opts.Store.Create(ctx, kindCap, "removals", "removals", doc)
			if errors.Is(err, errTaken) {
				continue // another replica created it first
			}
		}
		return got, err
	}
	return 0, errors.New("scim: removal budget contended")
}

func (h *Handler) loadGrant(ctx context.Context, userID string) (*grantDoc, error) {
	g := &grantDoc{UserID: userID, Groups: map[string]*groupGrant{}}
	b, err := h.opts.Store.Get(ctx, kindGrant, userID)
	if errors.Is(err, errNotFound) {
		return g, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, g); err != nil {
		return nil, fmt.Errorf("grant of %s: %w", userID, err)
	}
	if g.Groups == nil {
		g.Groups = map[string]*groupGrant{}
	}
	return g, nil
}

func (h *Handler) saveGrant(ctx context.Context, g *grantDoc) error {
	if len(g.Groups) == 0 {
		if err := h.opts.Store.Delete(ctx, kindGrant, g.UserID); err != nil && !errors.Is(err, errNotFound) {
			return err
		}
		return nil
	}
	doc, err := json.Marshal(g)
	if err != nil {
		return err
	}
	err = h.opts.Store.Update(ctx, kindGrant, g.UserID, func([]byte) ([]byte, string, error) { return doc, g.UserID, nil })
	if errors.Is(err, errNotFound) {
		err = h.opts.Store.Create(ctx, kindGrant, g.UserID, g.UserID, doc)
	}
	return err
}

// audit appends an event of provisioning's own (the operations it starts
// append their outcome when they end); a failure is logged.
func (h *Handler) audit(ctx context.Context, method, requestID string, workspaces []string, phase, code, operation string) {
	if h.opts.Audit == nil {
		return
	}
	p := actor(ctx)
	if cur, ok := auth.FromContext(ctx); ok {
		p = cur
	}
	e := &store.AuditEvent{Time: h.opts.Now().UTC(), Principal: p.ID, Role: p.Role, Method: method, RequestID: requestID,
		Phase: phase, Workspaces: workspaces, Code: code, Operation: operation}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := h.opts.Audit.Append(actx, e); err != nil {
		h.opts.Logger.ErrorContext(ctx, "scim audit event lost", "method", method, "request_id", requestID, "error", err.Error())
	}
}

// Run reconciles every provisioned user each interval, so work a crash or
// a still-running invite left behind gets done.
func (h *Handler) Run(ctx context.Context) {
	if !h.provisioning() || h.opts.ReconcileInterval <= 0 {
		return
	}
	t := time.NewTicker(h.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.ReconcileAll(ctx); err != nil && ctx.Err() == nil {
			h.opts.Logger.WarnContext(ctx, "scim reconciliation", "error", err.Error())
		}
	}
}

// ReconcileAll reconciles every user and every user with a grant.
func (h *Handler) ReconcileAll(ctx context.Context) error {
	ids := map[string]bool{}
	for _, kind := range []string{"User", kindGrant} {
		docs, err := h.opts.Store.List(ctx, kind)
		if err != nil {
			return err
		}
		for _, d := range docs {
			var v struct {
				ID     string `json:"id"`
				UserID string `json:"user_id"`
			}
			if json.Unmarshal(d, &v) == nil {
				ids[v.ID+v.UserID] = true
			}
		}
	}
	var errs []error
	for id := range ids {
		if err := h.reconcile(ctx, id, newID()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
