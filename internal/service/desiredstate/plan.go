package desiredstate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/apierr"
	ds "github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/instantly"
	"github.com/agencyplane/agencyplane/internal/store"
)

// planned is one workspace of a plan: what the file asks, what was read,
// and the diff.
type planned struct {
	ws   *store.Workspace
	want ds.Want
	obs  ds.Observed
	diff ds.Diff
	err  error // the workspace could not be read
}

// credFunc opens a workspace's credential (the caller's resolver, or the
// unscoped one for workers and the reconciler).
type credFunc func(ctx context.Context, ws *store.Workspace) (instantly.Credential, error)

// selected lists the registered workspaces the file selects, in name order,
// through st (the caller-scoped view, or the raw store with extra applying
// a stored scope). It refuses more than limit.
func selected(ctx context.Context, st store.Workspaces, doc *ds.Doc, extra func(map[string]string) bool, limit int) ([]*store.Workspace, error) {
	const page = 1000
	var out []*store.Workspace
	after := ""
	for {
		wss, err := st.List(ctx, store.ListQuery{After: after, Limit: page, Match: func(l map[string]string) bool {
			return doc.Selects(l) && (extra == nil || extra(l))
		}})
		if err != nil {
			return nil, err
		}
		out = append(out, wss...)
		if len(out) > limit {
			return nil, apierr.Field("desired_state", "the file selects more than %d workspaces (--max-operation-items)", limit)
		}
		if len(wss) < page {
			return out, nil
		}
		after = wss[len(wss)-1].Name
	}
}

// resolveAll resolves what the file asks of each workspace; conflicts are
// returned all at once (the file must be fixed before anything is read).
func resolveAll(doc *ds.Doc, wss []*store.Workspace) ([]planned, []ds.Conflict) {
	out := make([]planned, len(wss))
	var conflicts []ds.Conflict
	for i, ws := range wss {
		want, c := doc.For(ws.Name, ws.Labels)
		out[i] = planned{ws: ws, want: want}
		conflicts = append(conflicts, c...)
	}
	return out, conflicts
}

// observeAll reads every workspace (members once, tags once, each only
// when the file manages them) through the fan-out engine, unbounded by the
// per-call limit: only each workspace's budget and --max-inflight hold it,
// so a plan of hundreds of workspaces takes about one round trip. Then it
// computes each diff.
func (s *Service) observeAll(ctx context.Context, ps []planned, cred credFunc) {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.ws.Name
	}
	byName := make(map[string]int, len(ps))
	for i, n := range names {
		byName[n] = i
	}
	res := fanout.RunWith(ctx, s.engine, names, fanout.RunOptions{Unbounded: true},
		func(ctx context.Context, name string) (ds.Observed, fanout.Outcome, error) {
			p := ps[byName[name]]
			c, err := cred(ctx, p.ws)
			if err != nil {
				return ds.Observed{}, fanout.Failed, err
			}
			o, err := s.observe(ctx, c, p.want.Members, len(p.want.Tags) > 0)
			if err != nil {
				return o, fanout.Failed, err
			}
			return o, fanout.Read, nil
		})
	for i, r := range res {
		if r.Err != nil {
			ps[i].err = r.Err
			continue
		}
		ps[i].obs = r.Value
		ps[i].diff = ds.Compute(ps[i].want, r.Value)
	}
}

// observe reads what a diff needs of one workspace: its members and
// pending invitations (all pages) and its tags (all pages), the two reads
// at once.
func (s *Service) observe(ctx context.Context, cred instantly.Credential, members, tags bool) (ds.Observed, error) {
	var o ds.Observed
	var mErr, tErr error
	var wg sync.WaitGroup
	if members {
		wg.Go(func() {
			o.Members, mErr = instantly.Collect(s.client.AllWorkspaceMembers(ctx, cred, instantly.ListWorkspaceMembersParams{}))
			o.MembersRead = mErr == nil
		})
	}
	if tags {
		wg.Go(func() {
			o.Tags, tErr = instantly.Collect(s.client.AllCustomTags(ctx, cred, instantly.ListCustomTagsParams{}))
			o.TagsRead = tErr == nil
		})
	}
	wg.Wait()
	if mErr != nil {
		return o, mErr
	}
	return o, tErr
}

// planFingerprint binds a plan to its file and every workspace's state.
func planFingerprint(source string, wps []*agencyv1.WorkspacePlan) string {
	h := sha256.New()
	h.Write([]byte(source + "\n"))
	for _, w := range wps {
		h.Write([]byte(w.GetWorkspace() + "\t" + w.GetFingerprint() + "\n"))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:32]
}
