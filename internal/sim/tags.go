package sim

import (
	"net/http"
	"slices"
	"strings"
)

// Resource types of custom tag mappings, as toggle-resource numbers them.
const (
	ResourceAccount  = 1
	ResourceCampaign = 2
)

// CustomTag is the spec's CustomTag object.
type CustomTag struct {
	ID               string  `json:"id"`
	TimestampCreated string  `json:"timestamp_created"`
	TimestampUpdated string  `json:"timestamp_updated"`
	OrganizationID   string  `json:"organization_id"`
	Label            string  `json:"label"`
	Description      *string `json:"description"`
}

// CustomTagMapping is the spec's CustomTagMapping object: one tag on one account (resource_id
// is the account's email) or campaign (its id).
type CustomTagMapping struct {
	ID               string `json:"id"`
	TagID            string `json:"tag_id"`
	ResourceID       string `json:"resource_id"`
	ResourceType     int    `json:"resource_type"`
	TimestampCreated string `json:"timestamp_created"`
	OrganizationID   string `json:"organization_id"`
}

func tagID(t CustomTag) string            { return t.ID }
func mappingID(m CustomTagMapping) string { return m.ID }

// labelKey is a label as uniqueness sees it: trimmed and case-folded. The spec says "unique
// per workspace after trimming" and its 409 speaks of a "normalized label"; case-insensitive
// is the stricter reading.
func labelKey(label string) string { return strings.ToLower(strings.TrimSpace(label)) }

// resourceKey normalizes a resource id: account emails compare case-insensitively, and
// campaign ids are lower-case already.
func resourceKey(id string) string { return strings.ToLower(strings.TrimSpace(id)) }

func errDuplicateTag() error {
	return newError(http.StatusConflict, "A tag with this name already exists.")
}

// GET /api/v2/custom-tags: search matches label or description; resource_ids keeps tags on
// any of those resources; tag_ids keeps those tags. Lists are comma-separated.
func (s *Server) listTags(c *call) (any, error) {
	search := c.str("search")
	ids := setOf(c.list("tag_ids"))
	resources := map[string]bool{}
	for _, r := range c.list("resource_ids") {
		resources[resourceKey(r)] = true
	}
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	onResources := map[string]bool{}
	for _, m := range c.ws.mappings {
		if resources[m.ResourceID] {
			onResources[m.TagID] = true
		}
	}
	keep := func(t CustomTag) bool {
		return (search == "" || containsFold(t.Label, search) || (t.Description != nil && containsFold(*t.Description, search))) &&
			(len(ids) == 0 || ids[t.ID]) &&
			(len(resources) == 0 || onResources[t.ID])
	}
	return page(c.ws.tags, keep, tagID, c.str("starting_after"), false, c.limit()), nil
}

// POST /api/v2/custom-tags. The label is stored trimmed.
func (s *Server) createTag(c *call) (any, error) {
	body := c.body.(map[string]any)
	label := strings.TrimSpace(body["label"].(string))
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.tagIndexByLabel(label, "") >= 0 {
		c.countDuplicate()
		return nil, errDuplicateTag()
	}
	ts := timestamp(c.now)
	t := CustomTag{
		ID:               s.newID(),
		TimestampCreated: ts,
		TimestampUpdated: ts,
		OrganizationID:   ws.id,
		Label:            label,
		Description:      optString(body, "description"),
	}
	ws.tags = append(ws.tags, t)
	return t, nil
}

func (s *Server) getTag(c *call) (any, error) {
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	i := c.ws.tagIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	return c.ws.tags[i], nil
}

// PATCH /api/v2/custom-tags/{id}: label and/or description (null clears it).
func (s *Server) patchTag(c *call) (any, error) {
	body := c.body.(map[string]any)
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := ws.tagIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	t := ws.tags[i]
	if label, ok := body["label"].(string); ok {
		label = strings.TrimSpace(label)
		if ws.tagIndexByLabel(label, t.ID) >= 0 {
			return nil, errDuplicateTag()
		}
		t.Label = label
	}
	if _, ok := body["description"]; ok {
		t.Description = optString(body, "description")
	}
	t.TimestampUpdated = timestamp(c.now)
	ws.tags[i] = t
	return t, nil
}

// DELETE /api/v2/custom-tags/{id} answers the deleted tag and removes its mappings.
func (s *Server) deleteTag(c *call) (any, error) {
	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	i := ws.tagIndex(c.r.PathValue("id"))
	if i < 0 {
		return nil, errNotFound()
	}
	t := ws.tags[i]
	ws.tags = slices.Delete(ws.tags, i, i+1)
	ws.mappings = slices.DeleteFunc(ws.mappings, func(m CustomTagMapping) bool { return m.TagID == t.ID })
	return t, nil
}

// POST /api/v2/custom-tags/toggle-resource assigns (or unassigns) every tag to every resource:
// the resource_ids, or with selected_all every resource of the type that matches filter and
// search, minus excluded_resource_ids (resource_ids are then ignored). Unknown tags or
// resources are 404 and change nothing. Assigning twice keeps one mapping.
func (s *Server) toggleTagResource(c *call) (any, error) {
	body := c.body.(map[string]any)
	resourceType := int(body["resource_type"].(float64))
	assign := body["assign"].(bool)
	selectedAll, _ := body["selected_all"].(bool)
	if _, ok := body["resource_ids"]; !ok && !selectedAll {
		return nil, errBadRequest("body must have required property 'resource_ids'")
	}
	tagIDs := uniq(optStrings(body, "tag_ids"), func(s string) string { return s })

	ws := c.ws
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, id := range tagIDs {
		if ws.tagIndex(id) < 0 {
			return nil, errNotFound()
		}
	}
	var resources []string
	if selectedAll {
		excluded := map[string]bool{}
		for _, id := range optStrings(body, "excluded_resource_ids") {
			excluded[resourceKey(id)] = true
		}
		sel := selectionFrom(body)
		for _, id := range ws.resourcesMatching(resourceType, sel) {
			if !excluded[id] {
				resources = append(resources, id)
			}
		}
	} else {
		resources = uniq(optStrings(body, "resource_ids"), resourceKey)
		for _, id := range resources {
			if !ws.resourceExists(resourceType, id) {
				return nil, errNotFound()
			}
		}
	}

	targets := map[[2]string]bool{}
	for _, t := range tagIDs {
		for _, r := range resources {
			targets[[2]string{t, r}] = true
		}
	}
	matches := func(m CustomTagMapping) bool {
		return m.ResourceType == resourceType && targets[[2]string{m.TagID, m.ResourceID}]
	}
	if !assign {
		ws.mappings = slices.DeleteFunc(ws.mappings, matches)
		return map[string]bool{"success": true}, nil
	}
	for _, m := range ws.mappings {
		if matches(m) {
			delete(targets, [2]string{m.TagID, m.ResourceID})
		}
	}
	ts := timestamp(c.now)
	for _, t := range tagIDs { // in request order, so ids follow it
		for _, r := range resources {
			if targets[[2]string{t, r}] {
				ws.mappings = append(ws.mappings, CustomTagMapping{
					ID: s.newID(), TagID: t, ResourceID: r, ResourceType: resourceType,
					TimestampCreated: ts, OrganizationID: ws.id,
				})
			}
		}
	}
	return map[string]bool{"success": true}, nil
}

// GET /api/v2/custom-tag-mappings: resource_ids (comma-separated) keeps mappings of those
// resources.
func (s *Server) listTagMappings(c *call) (any, error) {
	resources := map[string]bool{}
	for _, r := range c.list("resource_ids") {
		resources[resourceKey(r)] = true
	}
	keep := func(m CustomTagMapping) bool { return len(resources) == 0 || resources[m.ResourceID] }
	c.ws.mu.RLock()
	defer c.ws.mu.RUnlock()
	return page(c.ws.mappings, keep, mappingID, c.str("starting_after"), false, c.limit()), nil
}

// The helpers below need ws.mu.

func (ws *workspace) tagIndex(id string) int {
	return slices.IndexFunc(ws.tags, func(t CustomTag) bool { return t.ID == id })
}

// tagIndexByLabel finds another tag (not except) with the same normalized label.
func (ws *workspace) tagIndexByLabel(label, except string) int {
	key := labelKey(label)
	return slices.IndexFunc(ws.tags, func(t CustomTag) bool { return t.ID != except && labelKey(t.Label) == key })
}

// tagsByResource maps "type:resource id" to the set of its tag ids.
func (ws *workspace) tagsByResource() map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, m := range ws.mappings {
		k := mappingResource(m.ResourceType, m.ResourceID)
		if out[k] == nil {
			out[k] = map[string]bool{}
		}
		out[k][m.TagID] = true
	}
	return out
}

func mappingResource(resourceType int, id string) string {
	if resourceType == ResourceAccount {
		return "account:" + id
	}
	return "campaign:" + id
}

func uniq(items []string, norm func(string) string) []string {
	seen := map[string]bool{}
	var out []string
	for _, it := range items {
		if it = norm(it); !seen[it] {
			seen[it] = true
			out = append(out, it)
		}
	}
	return out
}
