package server

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/store"
)

// auditor appends one event per mutating call that passed authorization,
// whatever its outcome: who (never a secret), what, which workspaces, and
// how it ended.
type auditor struct {
	store  store.Audit
	authz  *authz.Authorizer
	logger *slog.Logger
	now    func() time.Time
}

// fanoutResponse is what fan-out responses offer (generated getters), so
// the event carries their workspaces and counts.
type fanoutResponse interface {
	GetResults() []*agencyv1.WorkspaceResult
	GetSummary() *agencyv1.FanoutSummary
}

func (a *auditor) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	rule, ok := a.authz.Rule(info.FullMethod)
	if !ok || !rule.Mutating {
		return resp, err
	}
	e := &store.AuditEvent{
		Time:      a.now().UTC(),
		Method:    info.FullMethod,
		RequestID: RequestID(ctx),
		Code:      status.Code(err).String(),
	}
	if p, ok := auth.FromContext(ctx); ok {
		e.Principal, e.Role = p.ID, p.Role
	}
	if m, ok := req.(proto.Message); ok {
		e.Workspaces = targetWorkspaces(m)
	}
	// A create names its workspace only in the response.
	if m, ok := resp.(proto.Message); ok && err == nil && len(e.Workspaces) == 0 {
		e.Workspaces = targetWorkspaces(m)
	}
	if f, ok := resp.(fanoutResponse); ok && err == nil {
		e.Workspaces = e.Workspaces[:0]
		for _, r := range f.GetResults() {
			e.Workspaces = append(e.Workspaces, r.GetWorkspace())
		}
		sum := f.GetSummary()
		e.Succeeded, e.Failed, e.AlreadyDone = int(sum.GetSucceeded()), int(sum.GetFailed()+sum.GetNotAttempted()), int(sum.GetAlreadyDone())
	} else if err == nil {
		e.Succeeded = 1
	} else {
		e.Failed = 1
	}
	// The call has happened: a failed append must not turn it into an
	// error the client would retry. It is logged loudly instead.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if aerr := a.store.Append(actx, e); aerr != nil {
		a.logger.ErrorContext(ctx, "audit event lost", "request_id", e.RequestID, "method", e.Method, "error", aerr.Error())
	}
	return resp, err
}

// targetWorkspaces finds the workspaces a request names: string fields
// "name", "parent", "workspace", "admin_workspace" and the names of
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
