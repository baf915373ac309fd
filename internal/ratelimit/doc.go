// Package ratelimit budgets the calls the control plane makes to each Instantly
// workspace, which allows at most 100 requests in any second and 6,000 in any
// minute, shared by every tool that uses the workspace.
//
// A [Limiter] checks every window (per second and per minute) of every bucket
// (workspace) a request spends, and admits it only if all of them have room;
// then it charges all of them, otherwise none ("denied requests consume
// nothing"). Backends: redislimit (shared by replicas through one Lua script
// that reads Redis TIME) and memlimit (embedded mode). limittest holds the
// conformance suite both pass.
//
// # Algorithm: GCRA per window
//
// Each window of each bucket keeps one number, its theoretical arrival time
// (TAT), as in redis_rate. A Limit of Rate per Period with burst B has the
// emission interval T = ceil(Period / (Rate-B+1)) (whole microseconds) and the
// tolerance τ = (B-1)·T. n requests arriving at now conform iff
//
//	max(TAT, now) + (n-1)·T ≤ now + τ
//
// and, when admitted, set TAT = max(TAT, now) + n·T.
//
// # Burst semantics, and why Rate is a hard sliding-window cap
//
// Limit{Rate, Period, Burst} guarantees at most Rate admissions in every
// half-open window (t-Period, t], for every t and every Burst in [1, Rate]. That
// is the upstream's own accounting (the Instantly simulator counts admissions
// in any sliding 1 s and 60 s window), so running at the limit never earns a
// 429 from this limiter's own traffic. Burst is how many requests may go at
// once after idle; it is paid for in sustained rate, which is (Rate-B+1) per
// Period. This is deliberately not redis_rate's PerSecond(n), where Burst=Rate
// lets 2·Rate-1 through in one period after idle (LESSONS: "32 events in a 17
// per 30 s setting").
//
// Proof. Let admitted requests (counting a call of n as n requests at one
// instant) have times t₁ ≤ … ≤ t_k. After the first, TAT ≥ t₁ + T, and every
// admission adds T, so before the i-th TAT ≥ t₁ + (i-1)·T. The i-th conformed,
// so t_i ≥ TAT - τ ≥ t₁ + (i-1)·T - (B-1)·T, i.e. t_k - t₁ ≥ (k-B)·T. If all k
// lie in one window (t-Period, t], then t_k - t₁ < Period, so
// (k-B)·T < Period ≤ (Rate-B+1)·T, hence k < Rate+1: k ≤ Rate. ∎ The bound is
// tight: B at once after idle, then one every T, puts exactly Rate in a window,
// so a greedy caller runs at the limit, not below it. Denials leave every TAT
// alone, and a request is admitted only if it conforms in every window of every
// bucket it names, so the bound holds for each window of each bucket on its
// own. limittest checks this by simulation with an injected clock
// (SlidingWindowBound) on both backends.
//
// Trade-off. Burst 1 (the default, and what InstantlyLimits uses) gives the
// full sustained rate, 80/s at 80 % headroom, but nothing is banked during
// idle, and a lone sequential caller loses its own latency on every request
// (GCRA cannot credit lateness with τ = 0). Concurrent callers on one
// workspace hide that. Burst B lets B go at once and absorbs up to (B-1)·T of
// lateness, at a cost of (B-1)/Rate of the sustained rate. With the Instantly
// limits at 80 %, T is 12.5 ms in both windows, so the minute window never
// binds at burst 1; give it a larger Burst to allow minute-scale bursts.
//
// What the guarantee is measured against: the limiter's clock (Redis TIME, or
// the injected clock). Requests reach the upstream later, with jitter, which
// can squeeze two admissions closer than T; the headroom covers that and the
// agency's other tools.
//
// # Multiple buckets
//
// A request sent through an admin workspace acting as a sub workspace spends
// both budgets: Allow(ctx, []string{sub, admin}, 1) checks all four windows
// and charges all or none. Duplicate bucket names count once.
//
// # Failure policy
//
// Limiters fail closed: when the backend cannot decide (Redis down, slow past
// the per-call timeout, a malformed reply), Allow returns an error wrapping
// ErrUnavailable and the caller must treat the request as not allowed. A limit
// we cannot see is never a reason to send traffic, because every replica would
// do the same at once.
package ratelimit
