package scim

import (
	"context"
	"encoding/json"
	"strings"
)

// Provisioned returns, per workspace name, the members (lower-cased
// emails) the mapping gave there: for access as code they count as
// declared. An invite that has not settled yet counts for every workspace
// it selected, so a plan made meanwhile never removes what provisioning is
// adding.
func (h *Handler) Provisioned(ctx context.Context) (map[string]map[string]bool, error) {
	docs, err := h.opts.Store.List(ctx, kindGrant)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]bool{}
	add := func(ws, email string) {
		if out[ws] == nil {
			out[ws] = map[string]bool{}
		}
		out[ws][email] = true
	}
	for _, doc := range docs {
		var g grantDoc
		if json.Unmarshal(doc, &g) != nil || g.Email == "" {
			continue
		}
		email := strings.ToLower(g.Email)
		for _, gg := range g.Groups {
			for _, ws := range gg.Workspaces {
				add(ws, email)
			}
			if !gg.Settled {
				for _, ws := range gg.Targets {
					add(ws, email)
				}
			}
		}
	}
	return out, nil
}
