package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/store"
)

// auditor keeps the audit trail of mutating calls that passed
// authorization: who (never a secret), what, which workspaces, and how it
// ended. A call that reaches its handler appends a "started" event first
// and is refused (UNAVAILABLE, nothing done) when that append fails; every
// call, refused or not, then appends its outcome. A request_id replay does
// nothing and appends nothing (its log line says replay).
type auditor struct {
	store  store.Audit
	authz  *authz.Authorizer
	logger *slog.Logger
	now    func() time.Time
}

// auditTimeout bounds one append.
const auditTimeout = 2 * time.Second

// fanoutResponse is what fan-out responses offer (generated getters), so
// the event carries their workspaces and counts.
type fanoutResponse interface {
	GetResults() []*agencyv1.WorkspaceResult
	GetSummary() *agencyv1.FanoutSummary
	GetDryRun() bool
	GetOperation() *longrunningpb.Operation
}

type auditCallKey struct{}

// auditCall is what the inner interceptors tell the outer one about a
// mutating call. The chain runs on one goroutine, so no lock is needed.
type auditCall struct {
	startFailed bool // the started event could not be appended: nothing ran
	replay      bool // answered from a stored request_id outcome: nothing ran
}

// markReplay records that the call was answered from a stored request_id
// outcome, for the audit trail and the log line.
func markReplay(ctx context.Context) {
	if c, ok := ctx.Value(auditCallKey{}).(*auditCall); ok {
		c.replay = true
	}
	if ci := callInfoFrom(ctx); ci != nil {
		ci.replay = true
	}
}

// unary appends the outcome event. It wraps validation and request_id, so
// calls refused there are audited too.
func (a *auditor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	rule, ok := a.authz.Rule(info.FullMethod)
	if !ok || !rule.Mutating {
		return handler(ctx, req)
	}
	call := &auditCall{}
	resp, err := handler(context.WithValue(ctx, auditCallKey{}, call), req)
	if call.replay || call.startFailed {
		return resp, err
	}
	e := a.event(ctx, info.FullMethod, req, store.AuditPhaseFinished)
	e.Code = status.Code(err).String()
	a.outcome(e, resp, err)
	// The call has happened: a failed append must not turn it into an
	// error the client would retry. It is logged loudly instead.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditTimeout)
	defer cancel()
	if aerr := a.store.Append(actx, e); aerr != nil {
		a.logger.ErrorContext(ctx, "audit event lost", "request_id", e.RequestID, "method", e.Method, "error", aerr.Error())
	}
	return resp, err
}

// unaryStarted appends the started event right before the handler: an
// effect nobody could audit must not happen.
func (a *auditor) unaryStarted(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	call, ok := ctx.Value(auditCallKey{}).(*auditCall)
	if !ok {
		return handler(ctx, req) // not mutating
	}
	e := a.event(ctx, info.FullMethod, req, store.AuditPhaseStarted)
	actx, cancel := context.WithTimeout(ctx, auditTimeout)
	defer cancel()
	if err := a.store.Append(actx, e); err != nil {
		call.startFailed = true
		a.logger.ErrorContext(ctx, "audit trail unavailable; call refused", "request_id", e.RequestID, "method", e.Method, "error", err.Error())
		return nil, apierr.Wrap(codes.Unavailable, agencyv1.ErrorReason_ERROR_REASON_STORE_UNAVAILABLE,
			"audit trail unavailable; nothing was done", err)
	}
	return handler(ctx, req)
}

// event is what both events of a call share: who, what, which workspaces
// the request names.
func (a *auditor) event(ctx context.Context, method string, req any, phase string) *store.AuditEvent {
	e := &store.AuditEvent{
		Time:      a.now().UTC(),
		Phase:     phase,
		Method:    method,
		RequestID: RequestID(ctx),
	}
	if p, ok := auth.FromContext(ctx); ok {
		e.Principal, e.PrincipalEmail, e.Role = p.ID, p.Email, p.Role
	}
	if m, ok := req.(proto.Message); ok {
		e.Workspaces = targetWorkspaces(m)
	}
	return e
}

// outcome fills in what the call did.
func (a *auditor) outcome(e *store.AuditEvent, resp any, err error) {
	if err != nil {
		e.Failed = 1
		return
	}
	if op, ok := resp.(*longrunningpb.Operation); ok {
		e.Operation = op.GetName()
	}
	f, ok := resp.(fanoutResponse)
	if !ok {
		// A create names its workspace only in the response.
		if m, ok := resp.(proto.Message); ok && len(e.Workspaces) == 0 {
			e.Workspaces = targetWorkspaces(m)
		}
		e.Succeeded = 1
		return
	}
	if op := f.GetOperation(); op != nil {
		// The work goes on in the operation: its events carry the name,
		// the request's targets stay.
		e.Operation = op.GetName()
		return
	}
	// Only the workspaces that changed or failed, so events stay compact
	// however many workspaces a selector matched.
	e.Workspaces = nil
	for _, r := range f.GetResults() {
		if fanoutChanged(r.GetOutcome(), f.GetDryRun()) {
			e.Workspaces = append(e.Workspaces, r.GetWorkspace())
		}
	}
	sum := f.GetSummary()
	e.Succeeded, e.Failed, e.AlreadyDone = int(sum.GetSucceeded()), int(sum.GetFailed()+sum.GetNotAttempted()), int(sum.GetAlreadyDone())
}

// fanoutChanged reports outcomes an audit event lists: a change (none in a
// dry run, which writes nothing) or a failure.
func fanoutChanged(o agencyv1.FanoutOutcome, dryRun bool) bool {
	switch o {
	case agencyv1.FanoutOutcome_FANOUT_OUTCOME_CREATED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_UPDATED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_DELETED:
		return !dryRun
	case agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_NOT_ATTEMPTED, agencyv1.FanoutOutcome_FANOUT_OUTCOME_TIMED_OUT:
		return true
	}
	return false
}

// targetWorkspaces finds the workspaces a request names: string fields
// "name", "parent", "workspace", "admin_workspace", a top-level
// "workspace_id" (as "workspaces/{id}") and the names of
// message fields such as workspace.name or tag.name, reduced to
// "workspaces/{id}".
func targetWorkspaces(m proto.Message) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !strings.HasPrefix(s, "workspaces/") {
			return
		}
		parts := strings.SplitN(s, "/", 3)
		w := parts[0] + "/" + parts[1]
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	var walk func(protoreflect.Message, int)
	walk = func(r protoreflect.Message, depth int) {
		r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case depth == 0 && fd.Name() == "workspace_id" && fd.Kind() == protoreflect.StringKind:
				// CreateWorkspace names its workspace by id alone.
				add("workspaces/" + v.String())
			case fd.Kind() == protoreflect.StringKind && fd.Cardinality() != protoreflect.Repeated && !fd.IsMap():
				add(v.String())
			case fd.Kind() == protoreflect.StringKind && fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					add(v.List().Get(i).String())
				}
			case fd.Kind() == protoreflect.MessageKind && !fd.IsList() && !fd.IsMap() && depth < 2:
				walk(v.Message(), depth+1)
			}
			return true
		})
	}
	walk(m.ProtoReflect(), 0)
	return out
}
