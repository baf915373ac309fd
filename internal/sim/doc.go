// Package sim is a faithful, in-memory stand-in for Instantly's API v2, for tests and demos.
//
// Requests under /api/v2 go through the same steps, in this order, as the real service is
// believed to apply them:
//
//	latency → route (404) → API key (401) → fault injection (5xx) → per-workspace
//	rate limit (429) → key scope (403) → JSON body and schema (400/413/415) → handler
//
// Request bodies are validated against the request schemas of Instantly's own OpenAPI document
// (embedded from spec/), with Fastify/AJV-style messages such as
// "body must NOT have additional properties". Error bodies always have the shape
// {"statusCode": 401, "error": "Unauthorized", "message": "..."}.
//
// Routes under /_sim/ are the simulator's own admin API (no auth, no limits, no faults):
// create workspaces and keys, read state, read and reset statistics.
//
// Each workspace has its own state behind its own mutex, and its own rate-limit log and
// statistics behind another, so requests for different workspaces never contend.
package sim
