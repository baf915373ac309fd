// Package instantly is a typed client for Instantly's API v2: one method per
// endpoint of the project's subset (internal/sim/spec/openapi-v2-subset.json,
// the source of truth for every field name), Instantly's error bodies decoded
// into *Error, cursor pagination through All, and retries bounded by the
// caller's deadline.
//
// # Retries
//
// A call is attempted at most Options.MaxAttempts times. Between attempts it
// waits the server's Retry-After when one was sent (giving up at once if that
// exceeds Options.MaxRetryAfter or the caller's deadline), otherwise a random
// duration in [0, min(MaxBackoff, BaseBackoff·2^(attempt-1))] ("full jitter",
// so many workers throttled together do not come back together). A wait that
// would outlive ctx's deadline is not started: the last error is returned.
//
// What is retried:
//
//   - 429: always, whatever the method. Instantly refuses a throttled request
//     before acting on it, so repeating it cannot do anything twice.
//   - 500, 502, 503, 504 and transport failures after the request may have
//     been sent (timeouts, resets): for GET, PATCH, DELETE and the POSTs that
//     set state (toggle-resource, change-owner), which are safe to repeat. A
//     repeated DELETE whose first attempt had succeeded answers 404, which
//     callers deleting should treat as done.
//   - The creates (POST /workspace-members, /workspace-group-members,
//     /custom-tags, /api-keys) are never repeated once they may have reached
//     Instantly: an upstream that committed and then failed to answer would
//     get a second write (a duplicate invitation, a 409, or a second API key
//     whose secret we never see). Their 5xx and timeouts are returned as is
//     (Ambiguous reports them) and the caller reads back before trying again
//     (CreateOnce).
//   - Connection failures before anything was sent (dial and DNS errors) are
//     retried for every request, POST /api-keys included.
//   - 400, 401, 402, 403, 404, 409 and any other status are never retried, nor
//     is a 2xx whose body cannot be decoded (the server has acted).
//
// # Secrets
//
// Credential, APIKey and ChangeOwnerRequest format themselves without their
// secrets, and no error returned by this package contains an API key: URLs
// are dropped from transport errors and a key echoed in an error body is
// redacted.
//
// enums_gen.go is generated from the spec; regenerate after refreshing it:
//
//go:generate go run gen_enums.go
package instantly
