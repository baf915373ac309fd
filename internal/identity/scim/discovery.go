package scim

import (
	"net/http"
	"strings"
)

func (h *Handler) serviceProviderConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":          []string{SchemaSPConfig},
		"documentationUri": "https://github.com/agencyplane/agencyplane#identity-provider",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": h.opts.MaxPageSize},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token",
			"description": "A control-plane token with the provisioner role (TokenService.CreateToken).", "primary": true,
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": strings.TrimSuffix(location(r, "ServiceProviderConfig", ""), "/")},
	})
}

func resourceTypes(r *http.Request) []map[string]any {
	return []map[string]any{
		{"schemas": []string{SchemaResourceType}, "id": "User", "name": "User", "endpoint": "/Users",
			"description": "A person of the agency", "schema": SchemaUser,
			"schemaExtensions": []map[string]any{{"schema": SchemaEnterprise, "required": false}},
			"meta":             map[string]any{"resourceType": "ResourceType", "location": location(r, "ResourceTypes", "User")}},
		{"schemas": []string{SchemaResourceType}, "id": "Group", "name": "Group", "endpoint": "/Groups",
			"description": "A group; mapped groups give their members workspaces", "schema": SchemaGroup,
			"meta": map[string]any{"resourceType": "ResourceType", "location": location(r, "ResourceTypes", "Group")}},
	}
}

func (h *Handler) resourceTypes(w http.ResponseWriter, r *http.Request) {
	all := resourceTypes(r)
	if id := r.PathValue("id"); id != "" {
		for _, t := range all {
			if t["id"] == id {
				writeJSON(w, http.StatusOK, t)
				return
			}
		}
		writeError(w, notFound("ResourceType", id))
		return
	}
	writeJSON(w, http.StatusOK, listResponse(len(all), 1, all))
}

func attr(name, typ string, required, caseExact bool, uniqueness string) map[string]any {
	return map[string]any{"name": name, "type": typ, "multiValued": false, "required": required, "caseExact": caseExact,
		"mutability": "readWrite", "returned": "default", "uniqueness": uniqueness}
}

func multi(name string, sub ...map[string]any) map[string]any {
	return map[string]any{"name": name, "type": "complex", "multiValued": true, "required": false,
		"mutability": "readWrite", "returned": "default", "subAttributes": sub}
}

func schemas(r *http.Request) []map[string]any {
	nameAttr := attr("name", "complex", false, false, "none")
	nameAttr["subAttributes"] = []map[string]any{attr("formatted", "string", false, false, "none"),
		attr("givenName", "string", false, false, "none"), attr("familyName", "string", false, false, "none")}
	groups := multi("groups", attr("value", "string", false, false, "none"), attr("display", "string", false, false, "none"))
	groups["mutability"] = "readOnly"
	members := multi("members", attr("value", "string", true, true, "none"), attr("display", "string", false, false, "none"))
	return []map[string]any{
		{"schemas": []string{SchemaSchema}, "id": SchemaUser, "name": "User", "description": "User Account",
			"attributes": []map[string]any{
				attr("userName", "string", true, false, "server"), nameAttr, attr("displayName", "string", false, false, "none"),
				multi("emails", attr("value", "string", false, false, "none"), attr("type", "string", false, false, "none"), attr("primary", "boolean", false, false, "none")),
				attr("active", "boolean", false, false, "none"), attr("externalId", "string", false, true, "none"), groups,
			},
			"meta": map[string]any{"resourceType": "Schema", "location": location(r, "Schemas", SchemaUser)}},
		{"schemas": []string{SchemaSchema}, "id": SchemaGroup, "name": "Group", "description": "Group",
			"attributes": []map[string]any{attr("displayName", "string", true, false, "server"), members, attr("externalId", "string", false, true, "none")},
			"meta":       map[string]any{"resourceType": "Schema", "location": location(r, "Schemas", SchemaGroup)}},
	}
}

func (h *Handler) schemas(w http.ResponseWriter, r *http.Request) {
	all := schemas(r)
	if id := r.PathValue("id"); id != "" {
		for _, s := range all {
			if s["id"] == id {
				writeJSON(w, http.StatusOK, s)
				return
			}
		}
		writeError(w, notFound("Schema", id))
		return
	}
	writeJSON(w, http.StatusOK, listResponse(len(all), 1, all))
}
