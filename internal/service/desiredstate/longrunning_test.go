package desiredstate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/instantly"
	ops "github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/store"
)

// TestPlanOfOperation: a long-running plan is FAILED_PRECONDITION until
// every workspace was read, invisible to others, and then put together from
// the items' results (a workspace whose item failed as a whole is
// unreadable) and stored once, with the operation's end as its time.
func TestPlanOfOperation(t *testing.T) {
	ctx := context.Background()
	backend := ops.NewMemory(ops.MemoryOptions{})
	mgr := ops.NewManager(backend, nil, ops.Options{})
	s := &Service{manager: mgr, store: ds.NewMemory(time.Now), opts: Options{PlanTTL: time.Hour, Now: time.Now},
		plans: map[string]*loadedPlan{}, docs: map[string]*ds.Doc{}}
	const file = "version: 1\npeople:\n  - email: a@x.io\n    access:\n      - selector: \"\"\n        role: editor\n"
	doc, err := ds.Parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := proto.Marshal(&agencyv1.CreatePlanRequest{DesiredState: file, LongRunning: true})
	rec := &ops.Record{ID: ops.NewID(), Method: agencyv1.DesiredStateService_CreatePlan_FullMethodName, Request: req,
		Creator: "tokens/a", CreatorRole: auth.RoleAdmin, Entries: []ops.Entry{{Workspace: "workspaces/a"}, {Workspace: "workspaces/b"}}}
	if err := mgr.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	creator := &auth.Principal{ID: "tokens/a", Role: auth.RoleAdmin}
	stranger := &auth.Principal{ID: "tokens/b", Role: auth.RoleManager}

	_, err = s.planOfOperation(ctx, creator, rec.ID)
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "0 of 2") {
		t.Fatalf("while reading: %v", err)
	}
	if _, err := s.planOfOperation(ctx, stranger, rec.ID); !errors.Is(err, ds.ErrNotFound) {
		t.Fatalf("another caller: %v", err)
	}

	obs := ds.Observed{MembersRead: true, Members: []instantly.WorkspaceMember{{Email: "o@x.io", Role: instantly.RoleOwner, Accepted: true}}}
	want, _ := doc.For("workspaces/a", nil)
	wpA := workspacePlan(planned{ws: &store.Workspace{Name: "workspaces/a"}, want: want, obs: obs, diff: ds.Compute(want, obs)})
	results := []*agencyv1.WorkspaceResult{
		{Workspace: "workspaces/a", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_READ,
			Payload: &agencyv1.WorkspaceResult_DesiredState{DesiredState: wpA}},
		{Workspace: "workspaces/b", Outcome: agencyv1.FanoutOutcome_FANOUT_OUTCOME_FAILED,
			Status: status.New(codes.Unavailable, "delivered too often").Proto()},
	}
	for i, r := range results {
		data, _ := proto.Marshal(r)
		if _, _, err := backend.Record(ctx, rec.ID, ops.ItemResult{Index: int64(i), Entry: i, Outcome: strings.TrimPrefix(r.GetOutcome().String(), "FANOUT_OUTCOME_"),
			Failed: ops.Failed(r.GetOutcome()), Data: append([]byte{'p'}, data...)}); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := s.planOfOperation(ctx, creator, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, st, _ := backend.Get(ctx, rec.ID)
	p := lp.plan
	if p.GetName() != planName(rec.ID) || len(p.GetWorkspaces()) != 2 || !proto.Equal(p.GetWorkspaces()[0], wpA) ||
		codes.Code(p.GetWorkspaces()[1].GetStatus().GetCode()) != codes.Unavailable ||
		p.GetSummary().GetFailedWorkspaces() != 1 || p.GetSummary().GetInvites() != 1 ||
		p.GetFingerprint() != planFingerprint(doc.SHA256, p.GetWorkspaces()) || !p.GetCreateTime().AsTime().Equal(st.EndTime) ||
		string(lp.rec.Source) != file || lp.rec.Creator != "tokens/a" {
		t.Fatalf("assembled plan %v", p)
	}
	// Stored: found without the operation.
	if again, err := s.loadPlan(ctx, rec.ID); err != nil || again.plan.GetFingerprint() != p.GetFingerprint() {
		t.Fatalf("stored plan: %v %v", again, err)
	}

	// An operation of another method is no plan.
	other := &ops.Record{ID: ops.NewID(), Method: agencyv1.DesiredStateService_ApplyPlan_FullMethodName, Creator: "tokens/a",
		Entries: []ops.Entry{{Workspace: "workspaces/a"}}}
	if err := mgr.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := s.planOfOperation(ctx, creator, other.ID); !errors.Is(err, ds.ErrNotFound) {
		t.Fatalf("an ApplyPlan operation: %v", err)
	}
}
