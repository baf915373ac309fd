package operations

import (
	"context"
	"strings"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
)

// MaxFailedInResponse bounds the failed items an Operation's response
// carries; ListOperationResults pages through all of them.
const MaxFailedInResponse = 100

// Render builds the google.longrunning.Operation of rec in state st: the
// metadata always, and once it has ended the response (or, when it was
// cancelled, a CANCELLED error, as AIP-151 asks).
func (m *Manager) Render(ctx context.Context, rec *Record, st *Status) (*longrunningpb.Operation, error) {
	md := &agencyv1.OperationMetadata{
		Method:          strings.TrimPrefix(rec.Method, "/"),
		Creator:         rec.Creator,
		CreateTime:      timestamppb.New(rec.CreateTime),
		UpdateTime:      timestamppb.New(st.UpdateTime),
		TotalItems:      rec.Total,
		RunningItems:    st.Running,
		DoneItems:       st.Done,
		FailedItems:     st.Failed,
		PendingItems:    max(rec.Total-st.Done-st.Failed-st.Running, 0),
		Outcomes:        outcomeCounts(st),
		DryRun:          rec.DryRun,
		CancelRequested: st.CancelRequested,
		RetryOf:         rec.RetryOf,
		Workspaces:      int64(len(rec.Entries)),
	}
	if !st.EndTime.IsZero() {
		md.EndTime = timestamppb.New(st.EndTime)
	}
	mdAny, err := anypb.New(md)
	if err != nil {
		return nil, err
	}
	op := &longrunningpb.Operation{Name: Name(rec.ID), Metadata: mdAny, Done: !st.EndTime.IsZero()}
	if !op.Done {
		return op, nil
	}
	if st.CancelRequested {
		op.Result = &longrunningpb.Operation_Error{Error: status.New(codes.Canceled,
			"the operation was cancelled; items that had not started are NOT_ATTEMPTED (see ListOperationResults)").Proto()}
		return op, nil
	}
	resp := &agencyv1.OperationResponse{Summary: Summary(rec, st), Outcomes: md.Outcomes}
	failed, total, err := m.backend.FailedItems(ctx, rec.ID, -1, MaxFailedInResponse)
	if err != nil {
		return nil, err
	}
	resp.FailedTotal = total
	if len(failed) > 0 {
		data, err := m.backend.Results(ctx, rec.ID, failed)
		if err != nil {
			return nil, err
		}
		for _, i := range failed {
			if r, err := m.Decode(rec.ID, i, data[i]); err == nil {
				if k := r.GetCreatedApiKey(); k != nil {
					k.Secret = "" // failed items hold none; never through Get
				}
				resp.Failed = append(resp.Failed, r)
			}
		}
	}
	respAny, err := anypb.New(resp)
	if err != nil {
		return nil, err
	}
	op.Result = &longrunningpb.Operation_Response{Response: respAny}
	return op, nil
}

func outcomeCounts(st *Status) []*agencyv1.OutcomeCount {
	var out []*agencyv1.OutcomeCount
	for v := agencyv1.FanoutOutcome(1); ; v++ {
		name, ok := agencyv1.FanoutOutcome_name[int32(v)]
		if !ok {
			break
		}
		if n := st.Outcomes[strings.TrimPrefix(name, "FANOUT_OUTCOME_")]; n > 0 {
			out = append(out, &agencyv1.OutcomeCount{Outcome: v, Count: n})
		}
	}
	return out
}

// Summary counts the outcomes the way FanoutResponse does.
func Summary(rec *Record, st *Status) *agencyv1.FanoutSummary {
	o := st.Outcomes
	s := &agencyv1.FanoutSummary{
		Total:        int32(rec.Total),
		Succeeded:    int32(o["CREATED"] + o["UPDATED"] + o["DELETED"] + o["READ"]),
		AlreadyDone:  int32(o["ALREADY_DONE"]),
		Skipped:      int32(o["SKIPPED"]),
		Failed:       int32(o["FAILED"] + o["TIMED_OUT"]),
		NotAttempted: int32(o["NOT_ATTEMPTED"]),
	}
	if !st.EndTime.IsZero() {
		s.Duration = durationpb.New(st.EndTime.Sub(rec.CreateTime))
	}
	return s
}
