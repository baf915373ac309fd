// Package sim is a faithful, in-memory stand-in for Instantly's API v2, for tests and demos.
//
// Requests under /api/v2 go through the same steps, in this order, as the real service is
// believed to apply them:
//
//	latency → route (404) → API key (401) → x-as-workspace (403) → fault injection (5xx) →
//	per-workspace rate limit (429) → key scope (403) → JSON body, then query string
//	(400/413/415) → handler (400/404/409) → ambiguous fault (5xx or dropped connection)
//
// Faults come in two kinds, each drawn from its own RNG seeded by Config.Seed, so a sequential
// run is reproducible. Config.FaultRate fails a share of all API requests before anything
// happens (500/502/503, nothing applied). Config.FaultAfterRate hits a share of the writes
// (POST/PATCH/DELETE) that succeeded: the write is applied exactly as on success, then the
// answer is lost, half the time replaced by a random 500/502/503/504 (the same body as a fault
// before), otherwise by closing the connection without a byte of answer, which an HTTP client
// sees as an error (EOF), as when an upstream times out after committing. The admin API is
// never faulted.
//
// Request bodies and query strings are validated against Instantly's own OpenAPI document
// (embedded from spec/), with Fastify/AJV-style messages such as
// "body must NOT have additional properties" or "querystring/limit must be <= 100"; query
// values are coerced as Fastify's AJV does ("10" is an integer, "true" a boolean), unknown
// query parameters are ignored. Error bodies always have the shape
// {"statusCode": 401, "error": "Unauthorized", "message": "..."}; unknown ids are
// 404 "Resource not found".
//
// # Endpoints
//
// Every operation of the spec is served except schedule-for-removal and whitelabel-domain:
// the current workspace (get, patch, change-owner), workspace members, workspace group
// members, custom tags (with toggle-resource), custom tag mappings, campaigns and accounts
// (list only), API keys and audit logs. Scopes are those of the spec's descriptions;
// toggle-resource and GET /workspace-group-members/admin document none and need only a valid
// key.
//
// # Lists
//
// Lists answer {"items": [...], "next_starting_after": "<cursor>"}: limit is 1–100 (audit
// logs 1–1000), 10 by default; the cursor is the last item's, also on the last page, and the
// page after the last is empty (stop on empty items). Ids other than workspace and user ids are
// time-ordered UUIDs (version 7), strictly increasing per Server, and lists compare them as a
// database would ("id > starting_after"), so a cursor stays valid when its item is deleted.
// Lists are in creation order, except audit logs (newest first) and accounts, which are
// ordered by (timestamp_created, email) with Instantly's "timestamp_created&email" cursor (a
// bare ISO timestamp, the legacy cursor, is accepted too). Accounts with sort_by are sorted by
// that column and paginated by skip alone, without a cursor.
//
// # Semantics chosen where Instantly documents none
//
//   - Emails (members, accounts, owners) are stored trimmed and lower case and compared so.
//   - Every workspace starts with one accepted member with role owner, whose user id is the
//     workspace's owner. An email is one user across workspaces (one user_id).
//   - Inviting a member whose email is already a member (accepted or not) is 409
//     "A workspace member with this email already exists". Callers must not rely on it.
//   - Roles owner and client cannot be invited or patched in: 400 "body/role must be equal to
//     one of the allowed values". The owner's role cannot be patched (400) and the owner cannot
//     be deleted (400 "The workspace owner cannot be removed").
//   - change-owner: a wrong sec is 403 "Invalid sec" (checked first); an email that is not an
//     accepted member is 400, as is the current owner's. The old owner becomes admin, and the
//     sec is rotated after every change. Read it with OwnerTransferSecret or the admin API.
//   - Workspace groups: a link is pending until the sub workspace's owner accepts or rejects it
//     (admin API). Pending and accepted links are active; POST is 409 when the sub already has
//     an active link, when the sub is an admin of an active link, when the inviting workspace
//     is a sub of an active link, or when a workspace invites itself. The admin workspace lists
//     its links (any status); both sides may get or delete a link (the sub leaves by deleting).
//     GET /workspace-group-members/admin reports only an accepted admin; otherwise
//     {"workspace_name": "Undefined", "has_admin_workspace": false}.
//   - x-as-workspace: <sub id> is honoured only for a key of the admin workspace of an accepted
//     link; anything else (pending, rejected, unrelated, own id) is 403 and spends no budget.
//     An honoured request acts on the sub workspace with the key's scopes, and is admitted only
//     if both the sub's and the admin's windows have room; it then spends both budgets, and both
//     workspaces' statistics count it.
//   - Custom tag labels are stored trimmed and unique per workspace ignoring case (409
//     "A tag with this name already exists."). Deleting a tag deletes its mappings.
//   - toggle-resource: resource_type 1 is an account (resource id = email), 2 a campaign, as
//     the toggle-resource schema says (CustomTagMapping's prose says the opposite). Every tag
//     and resource must exist, else 404 and nothing changes; resource_ids is required unless
//     selected_all is true, which selects every resource of the type matching filter/search
//     minus excluded_resource_ids (resource_ids are then ignored). Assigning twice keeps one
//     mapping. Answers {"success": true}.
//   - API keys: lists and deletions show the key masked (first and last 4 characters); only the
//     creation answer has the secret. A key may delete itself. Names need not be unique: a
//     POST with the name of a live key makes a second key, as in Instantly. Creating and deleting a key
//     through the API appends an audit-log entry (activity_type 37 / 38, from_api true,
//     api_key_id = the calling key, audit_metadata naming the key acted on); keys made or
//     revoked through the Go or admin API are not audited.
//
// # Admin API
//
// Routes under /_sim/ are the simulator's own API (no auth, no limits, no faults), each the
// twin of a Go method:
//
//	GET    /_sim/health
//	GET    /_sim/stats                                       Stats
//	POST   /_sim/stats/reset                                 ResetStats (204)
//	GET    /_sim/workspaces                                  Workspaces
//	POST   /_sim/workspaces {name, owner_email?}             CreateWorkspaceWithOwner (201)
//	GET    /_sim/workspaces/{id}                             WorkspaceState (incl. change_owner_sec)
//	GET    /_sim/workspaces/{id}/change-owner-sec            OwnerTransferSecret → {"sec"}
//	POST   /_sim/workspaces/{id}/api-keys {name, scopes}     CreateAPIKey (201)
//	DELETE /_sim/workspaces/{id}/api-keys/{key_id}           RevokeAPIKey
//	POST   /_sim/workspaces/{id}/members/{member_id}/accept  AcceptMember → WorkspaceMember
//	POST   /_sim/group-members/{id}/accept                   AcceptGroupMember → WorkspaceGroupMember
//	POST   /_sim/group-members/{id}/reject                   RejectGroupMember → WorkspaceGroupMember
//	POST   /_sim/workspaces/{id}/campaigns {name, status?}   AddCampaign → Campaign (201)
//	POST   /_sim/workspaces/{id}/accounts {email, …}         AddAccount → Account (201)
//	POST   /_sim/workspaces/{id}/audit-logs {activity_type, …}  AddAuditLog → AuditLog (201)
//
// Accepting or rejecting an invitation that is not pending is 409.
//
// # Statistics
//
// Stats counts, per workspace since the last reset: requests, admitted, rate_limited, faults
// (both kinds) and faults_after (those after the write), the most admitted in any 1 s / 60 s
// window, and duplicate_creates: API creates that hit something that exists — a member's email
// (409), a tag's label (409), a live key's name (created again), a sub workspace with an active
// link to the same admin (409). Duplicates are what retrying an ambiguous failure produces.
//
// # Concurrency
//
// Each workspace has its own state behind its own mutex, and its own rate-limit log and
// statistics behind another, so requests for different workspaces never contend. Lock order:
// Server.mu, then Server.groupMu, then a workspace's mutex; meters are leaves, locked in
// workspace-id order when a request spends two budgets.
package sim
