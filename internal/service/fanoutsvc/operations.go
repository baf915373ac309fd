package fanoutsvc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/service/members"
)

// OperationOptions turn on the long-running forms of the fan-outs.
type OperationOptions struct {
	Manager *ops.Manager
	// Raw resolves workspaces for workers, which run without a caller:
	// the selection was intersected with the creator's scope when the
	// operation was created.
	Raw *resolve.Resolver
	// MaxItems bounds one operation (workspaces × people; default 100,000).
	MaxItems int64
}

// EnableOperations lets the service start operations and registers the
// executors of every fan-out with the manager.
func (s *Service) EnableOperations(o OperationOptions) {
	if o.MaxItems <= 0 {
		o.MaxItems = 100_000
	}
	s.ops = &o
	for method, k := range s.kinds() {
		o.Manager.Register(method, ops.ExecutorFunc(func(ctx context.Context, job *ops.Job) {
			req := k.newReq()
			if err := proto.Unmarshal(job.Rec.Request, req); err != nil {
				job.FailAll(ctx, codes.Internal, "the operation's request cannot be read")
				return
			}
			s.execute(ctx, job, req, k)
		}))
	}
}

// kind is what an operation of one fan-out method does per workspace.
type kind struct {
	newReq func() proto.Message
	// op builds the per-workspace work of one request (single-item kinds).
	op func(proto.Message) op
	// onboard marks OnboardMembers, whose entries hold several people.
	onboard bool
}

func (s *Service) kinds() map[string]kind {
	single := func(newReq func() proto.Message, fn func(proto.Message) op) kind {
		return kind{newReq: newReq, op: fn}
	}
	return map[string]kind{
		agencyv1.FanoutService_InviteMemberEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.InviteMemberEverywhereRequest{} },
			func(m proto.Message) op { return s.inviteOp(m.(*agencyv1.InviteMemberEverywhereRequest)) }),
		agencyv1.FanoutService_UpdateMemberRoleEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.UpdateMemberRoleEverywhereRequest{} },
			func(m proto.Message) op { return s.updateRoleOp(m.(*agencyv1.UpdateMemberRoleEverywhereRequest)) }),
		agencyv1.FanoutService_RemoveMemberEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.RemoveMemberEverywhereRequest{} },
			func(m proto.Message) op { return s.removeOp(m.(*agencyv1.RemoveMemberEverywhereRequest)) }),
		agencyv1.FanoutService_EnsureTagEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.EnsureTagEverywhereRequest{} },
			func(m proto.Message) op { return s.ensureTagOp(m.(*agencyv1.EnsureTagEverywhereRequest)) }),
		agencyv1.FanoutService_DeleteTagEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.DeleteTagEverywhereRequest{} },
			func(m proto.Message) op { return s.deleteTagOp(m.(*agencyv1.DeleteTagEverywhereRequest)) }),
		agencyv1.FanoutService_CreateApiKeyEverywhere_FullMethodName: single(func() proto.Message { return &agencyv1.CreateApiKeyEverywhereRequest{} },
			nil), // its executor records the key's intent (createKeyItem)
		agencyv1.FanoutService_AuditApiKeys_FullMethodName: single(func() proto.Message { return &agencyv1.AuditApiKeysRequest{} },
			func(proto.Message) op { return s.auditKeysOp() }),
		agencyv1.FanoutService_ListAccess_FullMethodName: single(func() proto.Message { return &agencyv1.ListAccessRequest{} },
			func(m proto.Message) op { return s.accessOp(m.(*agencyv1.ListAccessRequest)) }),
		agencyv1.FanoutService_ListPendingInvitations_FullMethodName: single(func() proto.Message { return &agencyv1.ListPendingInvitationsRequest{} },
			func(proto.Message) op { return s.pendingOp() }),
		agencyv1.FanoutService_InviteSubWorkspacesToGroup_FullMethodName: single(func() proto.Message { return &agencyv1.InviteSubWorkspacesToGroupRequest{} },
			nil), // resolved per operation (the admin workspace's links)
		agencyv1.FanoutService_OnboardMembers_FullMethodName: {newReq: func() proto.Message { return &agencyv1.OnboardMembersRequest{} }, onboard: true},
	}
}

// start stores an operation over the selected workspaces (people > 0: one
// item per workspace × person) and returns it at once.
func (s *Service) start(ctx context.Context, method string, req proto.Message, sel *agencyv1.WorkspaceSelector, dryRun bool, people int, requestID string) (*longrunningpb.Operation, error) {
	if s.ops == nil {
		return nil, apierr.New(codes.Unimplemented, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, "long-running operations are not enabled")
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apierr.New(codes.Unauthenticated, agencyv1.ErrorReason_ERROR_REASON_UNAUTHENTICATED, "not authenticated")
	}
	targets, err := s.selectWorkspaces(ctx, sel, int(s.ops.MaxItems)+1)
	if err != nil {
		return nil, err
	}
	per := int64(max(people, 1))
	if n := int64(len(targets)) * per; n > s.ops.MaxItems {
		field := "selector"
		if people > 0 {
			field = "people"
		}
		return nil, apierr.Field(field, "the operation would have %d items (workspaces × people); at most %d (--max-operation-items)", n, s.ops.MaxItems)
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
	if err != nil {
		return nil, err
	}
	rec := &ops.Record{Method: method, Request: data, Creator: p.ID, CreatorRole: p.Role, CreatorScope: p.Scope.String(),
		DryRun: dryRun, RequestID: requestID}
	for _, t := range targets {
		e := ops.Entry{Workspace: t.name, Missing: t.err != nil}
		for i := range people {
			e.People = append(e.People, int32(i))
		}
		rec.Entries = append(rec.Entries, e)
	}
	if err := s.ops.Manager.Create(ctx, rec); err != nil {
		return nil, err
	}
	_, st, err := s.ops.Manager.Backend().Get(ctx, rec.ID)
	if err != nil {
		return nil, err
	}
	return s.ops.Manager.Render(ctx, rec, st)
}

// startFanout is the long_running form of a fan-out RPC.
func (s *Service) startFanout(ctx context.Context, method string, req proto.Message, sel *agencyv1.WorkspaceSelector, dryRun bool, requestID string) (*agencyv1.FanoutResponse, error) {
	op, err := s.start(ctx, method, req, sel, dryRun, 0, requestID)
	if err != nil {
		return nil, err
	}
	return &agencyv1.FanoutResponse{Operation: op, DryRun: dryRun}, nil
}

// OnboardMembers implements agencyv1.FanoutServiceServer.
func (s *Service) OnboardMembers(ctx context.Context, req *agencyv1.OnboardMembersRequest) (*longrunningpb.Operation, error) {
	seen := map[string]int{}
	for i, p := range req.GetPeople() {
		email := strings.ToLower(p.GetEmail())
		if j, ok := seen[email]; ok {
			return nil, apierr.Field(fmt.Sprintf("people[%d].email", i), "%s is also people[%d]; each person once", p.GetEmail(), j)
		}
		seen[email] = i
		for _, perm := range p.GetPermissions() {
			if !instantly.ValidPermission(perm) {
				return nil, apierr.Field(fmt.Sprintf("people[%d].permissions", i), "%q is not an Instantly permission", perm)
			}
		}
	}
	return s.start(ctx, agencyv1.FanoutService_OnboardMembers_FullMethodName, req, req.GetSelector(), req.GetDryRun(), len(req.GetPeople()), req.GetRequestId())
}

// target resolves an entry's workspace for a worker.
func (s *Service) workerTarget(ctx context.Context, job *ops.Job) (target, instantly.Credential, error) {
	if job.Entry.Missing {
		return target{}, instantly.Credential{}, apierr.NotFound("workspace", job.Entry.Workspace)
	}
	t, err := s.ops.Raw.Resolve(ctx, job.Entry.Workspace)
	if err != nil {
		// Deleted since the operation started: NOT_FOUND like a name that
		// never existed.
		return target{}, instantly.Credential{}, err
	}
	return target{name: job.Entry.Workspace, ws: t.Workspace}, t.Cred, nil
}

// execute runs the pending items of one entry.
func (s *Service) execute(ctx context.Context, job *ops.Job, req proto.Message, k kind) {
	pending := job.Start(ctx)
	if len(pending) == 0 {
		return
	}
	start := time.Now()
	t, cred, err := s.workerTarget(ctx, job)
	if err != nil {
		var emails []string
		if r, ok := req.(*agencyv1.OnboardMembersRequest); ok {
			emails = personEmails(r, pending) // each failed item names its person
		}
		s.recordAll(ctx, job, pending, emails, fanout.Failed, err, start)
		return
	}
	switch {
	case k.onboard:
		s.onboard(ctx, job, req.(*agencyv1.OnboardMembersRequest), t, cred)
		return
	case k.op == nil:
		s.executeSpecial(ctx, job, req, t, cred)
		return
	}
	it := pending[0]
	res := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[*agencyv1.WorkspaceResult] {
		return fanout.Do(ctx, s.engine, t.name, func(ctx context.Context, _ string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
			return k.op(req)(ctx, t, cred)
		})
	})
	s.recordResult(ctx, job, it, res)
}

// recordResult records one engine result as an item's result. An item cut
// by shutdown is left for another worker.
func (s *Service) recordResult(ctx context.Context, job *ops.Job, it ops.Item, r fanout.Result[*agencyv1.WorkspaceResult]) {
	if ctx.Err() != nil && (r.Outcome == fanout.NotAttempted || r.Outcome == fanout.TimedOut) {
		return // handed back by the manager
	}
	job.Record(ctx, it, toResult(r))
}

// toResult renders one engine result as a WorkspaceResult (unary fan-outs
// and operation items alike).
func toResult(r fanout.Result[*agencyv1.WorkspaceResult]) *agencyv1.WorkspaceResult {
	wr := r.Value
	if wr == nil {
		wr = &agencyv1.WorkspaceResult{}
	}
	wr.Workspace, wr.Outcome, wr.Duration = r.Workspace, outcomeToProto(r.Outcome), durationpb.New(r.Duration)
	if r.Err != nil {
		wr.Status = apierr.FromError(r.Err).GRPCStatus().Proto()
	}
	return wr
}

func (s *Service) recordAll(ctx context.Context, job *ops.Job, items []ops.Item, emails []string, o fanout.Outcome, err error, start time.Time) {
	for i, it := range items {
		wr := toResult(fanout.Result[*agencyv1.WorkspaceResult]{Workspace: job.Entry.Workspace, Outcome: o, Err: err, Duration: time.Since(start)})
		if i < len(emails) {
			wr.Email = emails[i]
		}
		job.Record(ctx, it, wr)
	}
}

// onboard invites an entry's people into its workspace: the members are
// read once, then every missing person is invited, each under the
// workspace's in-flight limit. An invite whose write may have happened in
// an earlier attempt (its intent is recorded) and that is now present is
// CREATED, not ALREADY_DONE: this operation made it.
func (s *Service) onboard(ctx context.Context, job *ops.Job, req *agencyv1.OnboardMembersRequest, t target, cred instantly.Credential) {
	start := time.Now()
	pending := job.Pending()
	emails := personEmails(req, pending)
	var list []instantly.WorkspaceMember
	read := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[*agencyv1.WorkspaceResult] {
		return fanout.Do(ctx, s.engine, t.name, func(ctx context.Context, _ string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
			var err error
			list, err = instantly.Collect(s.client.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{}))
			return nil, fanout.Read, err
		})
	})
	if read.Err != nil || read.Outcome == fanout.NotAttempted {
		if ctx.Err() == nil {
			s.recordAll(ctx, job, pending, emails, fanout.Failed, read.Err, start)
		}
		return
	}
	present := make(map[string]*instantly.WorkspaceMember, len(list))
	for i := range list {
		present[strings.ToLower(list[i].Email)] = &list[i]
	}
	var wg sync.WaitGroup
	for i, it := range pending {
		wg.Go(func() {
			person := req.GetPeople()[it.Person]
			first, cancelled := true, false
			res := fanout.Retry(ctx, apierr.Transient, func() fanout.Result[*agencyv1.WorkspaceResult] {
				return fanout.Do(ctx, s.engine, t.name, func(ctx context.Context, _ string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
					// Checked once the item has its slot: people queue
					// behind the workspace's in-flight limit, and a cancel
					// must stop those still waiting.
					if first && job.Cancelled(ctx) {
						cancelled = true
						return nil, fanout.NotAttempted, nil
					}
					existing := present[strings.ToLower(person.GetEmail())]
					if !first {
						// A failed try may have invited them: look again.
						m, err := members.FindByEmail(ctx, s.client, cred, person.GetEmail())
						if err != nil {
							return nil, fanout.Failed, err
						}
						existing = m
					}
					first = false
					return s.invitePerson(ctx, job, it, t, cred, person, existing, req.GetDryRun())
				})
			})
			if cancelled {
				res.Err = apierr.New(codes.Canceled, agencyv1.ErrorReason_ERROR_REASON_UNSPECIFIED, ops.CancelledBeforeStart)
			} else if ctx.Err() != nil && (res.Outcome == fanout.NotAttempted || res.Outcome == fanout.TimedOut) {
				return
			}
			wr := toResult(res)
			wr.Email = emails[i]
			job.Record(ctx, it, wr)
		})
	}
	wg.Wait()
}

// personEmails are the emails of items' people, in order.
func personEmails(req *agencyv1.OnboardMembersRequest, items []ops.Item) []string {
	emails := make([]string, len(items))
	for i, it := range items {
		emails[i] = req.GetPeople()[it.Person].GetEmail()
	}
	return emails
}

// invitePerson is one onboarding item.
func (s *Service) invitePerson(ctx context.Context, job *ops.Job, it ops.Item, t target, cred instantly.Credential,
	person *agencyv1.Person, existing *instantly.WorkspaceMember, dryRun bool) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
	role := members.RoleToUpstream(person.GetRole())
	if existing != nil {
		if intent, err := job.Intent(ctx, it); err == nil && !intent.IsZero() {
			// An earlier attempt sent this invite; it arrived.
			return memberResult(t, existing), fanout.Created, nil
		}
		if existing.Role == role || !existing.Accepted {
			return memberResult(t, existing), fanout.AlreadyDone, nil
		}
		return memberResult(t, existing), fanout.Skipped,
			precondition("%s is already a member with role %s; use UpdateMemberRoleEverywhere", person.GetEmail(), existing.Role)
	}
	if dryRun {
		return nil, fanout.Created, nil
	}
	if _, err := job.SetIntent(ctx, it); err != nil {
		return nil, fanout.Failed, err // fail closed: no intent, no write
	}
	m, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceMember, error) {
		return s.client.CreateWorkspaceMember(ctx, cred, instantly.CreateWorkspaceMemberRequest{Email: person.GetEmail(), Role: role, Permissions: person.GetPermissions()})
	}, func(ctx context.Context) (*instantly.WorkspaceMember, bool, error) {
		m, err := members.FindByEmail(ctx, s.client, cred, person.GetEmail())
		return m, m != nil, err
	})
	if resolve.HTTPStatus(err) == 409 {
		// Invited meanwhile by someone else: present, nothing to do.
		if m, ferr := members.FindByEmail(ctx, s.client, cred, person.GetEmail()); ferr == nil && m != nil {
			return memberResult(t, m), fanout.AlreadyDone, nil
		}
	}
	if err != nil {
		return nil, fanout.Failed, err
	}
	return memberResult(t, m), fanout.Created, nil
}

// executeSpecial runs the kinds whose item needs more than the unary
// fan-out's per-workspace function.
func (s *Service) executeSpecial(ctx context.Context, job *ops.Job, req proto.Message, t target, cred instantly.Credential) {
	it := job.Pending()[0]
	var res fanout.Result[*agencyv1.WorkspaceResult]
	switch r := req.(type) {
	case *agencyv1.CreateApiKeyEverywhereRequest:
		res = fanout.Retry(ctx, apierr.Transient, func() fanout.Result[*agencyv1.WorkspaceResult] {
			return fanout.Do(ctx, s.engine, t.name, func(ctx context.Context, _ string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
				return s.createKeyItem(ctx, job, it, r, t, cred)
			})
		})
	case *agencyv1.InviteSubWorkspacesToGroupRequest:
		res = fanout.Retry(ctx, apierr.Transient, func() fanout.Result[*agencyv1.WorkspaceResult] {
			return fanout.Do(ctx, s.engine, t.name, func(ctx context.Context, _ string) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
				return s.groupInviteItem(ctx, r, t)
			})
		})
	default:
		job.FailAll(ctx, codes.Internal, fmt.Sprintf("no executor for %T", req))
		return
	}
	s.recordResult(ctx, job, it, res)
}

// keySkew is how much older than its intent a key's Instantly creation
// time may look (clock differences between agencyd and Instantly).
const keySkew = time.Minute

// createKeyItem creates the operation's API key in one workspace exactly
// once in effect. The key's name is the requested display name. A key of
// that name that existed before the operation is ALREADY_DONE (its secret
// was shown when it was made). Before creating, the item records its
// intent; an attempt that finds keys of that name made after the intent
// knows an earlier attempt (or an ambiguous answer) created them and that
// their secret reached nobody, so it revokes them and creates anew, saying
// so in the result's note. No live key is left whose secret nobody holds.
func (s *Service) createKeyItem(ctx context.Context, job *ops.Job, it ops.Item, req *agencyv1.CreateApiKeyEverywhereRequest,
	t target, cred instantly.Credential) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
	name := trim(req.GetDisplayName())
	intent, err := job.Intent(ctx, it)
	if err != nil {
		return nil, fanout.Failed, err
	}
	note := ""
	for range 3 {
		ours, theirs, err := s.keysNamed(ctx, cred, name, intent)
		if err != nil {
			return nil, fanout.Failed, err
		}
		if len(ours) == 0 && len(theirs) > 0 {
			return &agencyv1.WorkspaceResult{Payload: &agencyv1.WorkspaceResult_CreatedApiKey{CreatedApiKey: &agencyv1.CreatedApiKey{
				ApiKey: apikeys.ToProto(t.ws, &theirs[0])}}}, fanout.AlreadyDone, nil
		}
		if len(ours) > 0 {
			if err := s.revokeKeys(ctx, cred, ours); err != nil {
				return nil, fanout.Failed, err
			}
			note = "an interrupted earlier attempt had created this key; its secret reached nobody, so it was revoked and the key created anew"
		}
		if intent.IsZero() {
			if intent, err = job.SetIntent(ctx, it); err != nil {
				return nil, fanout.Failed, err // no intent, no write
			}
		}
		key, err := s.client.CreateAPIKey(ctx, cred, instantly.CreateAPIKeyRequest{Name: name, Scopes: apikeys.PresetScopes(req.GetPreset())})
		if instantly.Ambiguous(err) && ctx.Err() == nil {
			continue // look again: a key made without an answer is revoked
		}
		if err != nil {
			return nil, fanout.Failed, err
		}
		return &agencyv1.WorkspaceResult{Note: note, Payload: &agencyv1.WorkspaceResult_CreatedApiKey{CreatedApiKey: &agencyv1.CreatedApiKey{
			ApiKey: apikeys.ToProto(t.ws, key), Secret: key.Key}}}, fanout.Created, nil
	}
	// The last creation's answer was lost too: revoke what it may have made.
	ours, _, err := s.keysNamed(ctx, cred, name, intent)
	if err == nil {
		err = s.revokeKeys(ctx, cred, ours)
	}
	if err != nil {
		return nil, fanout.Failed, err
	}
	return nil, fanout.Failed, apierr.New(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_UPSTREAM_UNAVAILABLE,
		"Instantly kept failing to answer key creations; every key made without an answer was revoked")
}

// revokeKeys revokes keys; one already gone is fine.
func (s *Service) revokeKeys(ctx context.Context, cred instantly.Credential, keys []instantly.APIKey) error {
	for _, k := range keys {
		if _, err := s.client.DeleteAPIKey(ctx, cred, k.ID); err != nil && resolve.HTTPStatus(err) != 404 {
			return err
		}
	}
	return nil
}

// keysNamed splits the workspace's keys named name into those created
// after intent (ours) and the others.
func (s *Service) keysNamed(ctx context.Context, cred instantly.Credential, name string, intent time.Time) (ours, theirs []instantly.APIKey, err error) {
	for k, err := range s.client.AllAPIKeys(ctx, cred, instantly.ListParams{}) {
		if err != nil {
			return nil, nil, err
		}
		if k.Name != name {
			continue
		}
		created, perr := time.Parse(time.RFC3339Nano, k.TimestampCreated)
		if !intent.IsZero() && (perr != nil || !created.Before(intent.Add(-keySkew))) {
			ours = append(ours, k)
		} else {
			theirs = append(theirs, k)
		}
	}
	return ours, theirs, nil
}

// groupInviteItem invites one workspace into an admin workspace's group,
// reading the group's links first.
func (s *Service) groupInviteItem(ctx context.Context, req *agencyv1.InviteSubWorkspacesToGroupRequest, t target) (*agencyv1.WorkspaceResult, fanout.Outcome, error) {
	admin, err := s.ops.Raw.Resolve(ctx, req.GetAdminWorkspace())
	if err != nil {
		return nil, fanout.Failed, err
	}
	sub := t.ws.InstantlyWorkspaceID
	if sub == admin.Workspace.InstantlyWorkspaceID {
		return nil, fanout.Failed, apierr.Field("selector", "%s is the admin workspace itself", t.name)
	}
	find := func(ctx context.Context) (*instantly.WorkspaceGroupMember, bool, error) {
		for gm, err := range s.client.AllWorkspaceGroupMembers(ctx, admin.Cred, instantly.ListParams{}) {
			if err != nil {
				return nil, false, err
			}
			if gm.SubWorkspaceID == sub && gm.Status != instantly.GroupMemberRejected {
				return &gm, true, nil
			}
		}
		return nil, false, nil
	}
	if gm, ok, err := find(ctx); err != nil {
		return nil, fanout.Failed, err
	} else if ok {
		return groupResult(req.GetAdminWorkspace(), gm), fanout.AlreadyDone, nil
	}
	if req.GetDryRun() {
		return nil, fanout.Created, nil
	}
	gm, err := instantly.CreateOnce(ctx, func(ctx context.Context) (*instantly.WorkspaceGroupMember, error) {
		return s.client.CreateWorkspaceGroupMember(ctx, admin.Cred, instantly.CreateWorkspaceGroupMemberRequest{SubWorkspaceID: sub})
	}, find)
	if err != nil {
		return nil, fanout.Failed, err
	}
	return groupResult(req.GetAdminWorkspace(), gm), fanout.Created, nil
}
