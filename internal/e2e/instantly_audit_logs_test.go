package e2e

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// TestInstantlyAuditLogsPartialFailures: Instantly's audit logs across
// workspaces go through the fan-out engine, and a workspace that cannot be
// read is an error entry carrying its google.rpc.Status with details (the
// ErrorInfo reason), as a fan-out result does; it never fails the call.
func TestInstantlyAuditLogsPartialFailures(t *testing.T) {
	for _, pick := range []func(*env) invoker{
		func(e *env) invoker { return grpcInvoker{conn: e.conn, token: testToken} },
		func(e *env) invoker { return restInvoker{api: e.rest(testToken)} },
	} {
		probe := pick(startEnv(t, memoryBackend))
		t.Run(probe.Transport(), func(t *testing.T) {
			w := newFanoutWorld(t, pick)
			var resp agencyv1.ListInstantlyAuditLogsResponse
			if err := w.admin.Invoke(context.Background(), "agency.v1.AuditService/ListInstantlyAuditLogs",
				&agencyv1.ListInstantlyAuditLogsRequest{Filter: "team=sdr"}, &resp); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range resp.GetErrors() {
				if e.GetStatus() == nil {
					t.Fatalf("%s: error without a google.rpc.Status: %v", e.GetWorkspace(), e)
				}
				st := status.FromProto(e.GetStatus())
				o := st.Code().String()
				if ei := errorInfo(st); ei != nil {
					o += "/" + ei.GetReason()
				}
				if e.GetCode() != st.Code().String() || e.GetMessage() != st.Message() {
					t.Fatalf("%s: code/message %q/%q disagree with the status %v", e.GetWorkspace(), e.GetCode(), e.GetMessage(), st)
				}
				got[e.GetWorkspace()] = o
			}
			want := map[string]string{"workspaces/revoked": "FailedPrecondition/CREDENTIAL_INVALID", "workspaces/narrow": "PermissionDenied/SCOPE_DENIED"}
			if len(got) != len(want) {
				t.Fatalf("errors %v, want %v", got, want)
			}
			for ws, o := range want {
				if got[ws] != o {
					t.Fatalf("errors %v, want %v", got, want)
				}
			}
			for _, e := range resp.GetEntries() {
				if _, failed := want[e.GetWorkspace()]; failed {
					t.Fatalf("an entry from %s, which failed", e.GetWorkspace())
				}
			}
		})
	}
}

// wantAuditLogsRefuseOverLimit: a filter selecting more workspaces than a
// unary call may read is INVALID_ARGUMENT on filter, like a unary fan-out's
// selector, never a silent cut at 1,000.
func wantAuditLogsRefuseOverLimit(t *testing.T, inv invoker, filter string) {
	t.Helper()
	err := inv.Invoke(context.Background(), "agency.v1.AuditService/ListInstantlyAuditLogs",
		&agencyv1.ListInstantlyAuditLogsRequest{Filter: filter}, &agencyv1.ListInstantlyAuditLogsResponse{})
	wantField(t, wantCode(t, err, codes.InvalidArgument), "filter")
}
