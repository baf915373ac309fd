package ratelimit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestGCRAParameters(t *testing.T) {
	for _, tc := range []struct {
		limit          Limit
		interval, tolr time.Duration
	}{
		{Limit{Rate: 80, Period: time.Second}, 12500 * time.Microsecond, 0},
		{Limit{Rate: 4800, Period: time.Minute, Burst: 1}, 12500 * time.Microsecond, 0},
		{Limit{Rate: 100, Period: time.Second, Burst: 1}, 10 * time.Millisecond, 0},
		// Burst is paid for in rate: Rate-Burst+1 slots per period.
		{Limit{Rate: 10, Period: time.Second, Burst: 3}, 125 * time.Millisecond, 250 * time.Millisecond},
		{Limit{Rate: 5, Period: time.Second, Burst: 5}, time.Second, 4 * time.Second},
		// Rounded up, so Rate·T ≥ Period: 1s/3 = 333333.3µs → 333334µs.
		{Limit{Rate: 3, Period: time.Second, Burst: 1}, 333334 * time.Microsecond, 0},
		// A sub-µs period remainder rounds up too.
		{Limit{Rate: 1, Period: time.Millisecond + 1}, 1001 * time.Microsecond, 0},
	} {
		interval, tolerance := tc.limit.GCRA()
		if interval != tc.interval || tolerance != tc.tolr {
			t.Errorf("%+v.GCRA() = %v, %v; want %v, %v", tc.limit, interval, tolerance, tc.interval, tc.tolr)
		}
		if err := tc.limit.Validate(); err != nil {
			t.Errorf("%+v.Validate() = %v", tc.limit, err)
		}
		if slots := int64(tc.limit.Rate - tc.limit.burst() + 1); time.Duration(slots)*interval < tc.limit.Period {
			t.Errorf("%+v: %d slots of %v are shorter than the period", tc.limit, slots, interval)
		}
	}
}

func TestLimitValidate(t *testing.T) {
	for _, l := range []Limit{
		{},
		{Rate: 0, Period: time.Second},
		{Rate: 10, Period: 0},
		{Rate: 10, Period: time.Nanosecond},
		{Rate: 10, Period: time.Second, Burst: -1},
		{Rate: 10, Period: time.Second, Burst: 11},
	} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v.Validate() = nil, want an error", l)
		}
	}
	if err := (Limits{PerSecond: Limit{Rate: 1, Period: time.Second}}).Validate(); err == nil {
		t.Error("Limits without a per-minute window validated")
	}
}

func TestInstantlyLimits(t *testing.T) {
	for _, tc := range []struct {
		headroom       float64
		second, minute int
	}{
		{0.8, 80, 4800},
		{0, 80, 4800},  // unset: the default
		{-1, 80, 4800}, // nonsense: the default
		{1, 100, 6000},
		{2, 100, 6000},
		{0.29, 29, 1740}, // not 28 through float error
		{0.001, 1, 6},
	} {
		ls := InstantlyLimits(tc.headroom)
		if ls.PerSecond.Rate != tc.second || ls.PerMinute.Rate != tc.minute {
			t.Errorf("InstantlyLimits(%v) = %d/s, %d/min; want %d, %d", tc.headroom, ls.PerSecond.Rate, ls.PerMinute.Rate, tc.second, tc.minute)
		}
		if ls.PerSecond.Period != time.Second || ls.PerMinute.Period != time.Minute || ls.MaxN() != 1 {
			t.Errorf("InstantlyLimits(%v) = %+v", tc.headroom, ls)
		}
		if err := ls.Validate(); err != nil {
			t.Errorf("InstantlyLimits(%v).Validate() = %v", tc.headroom, err)
		}
	}
}

func TestPrepareRequest(t *testing.T) {
	ls := InstantlyLimits(0)
	got, err := PrepareRequest(ls, []string{"b", "a", "b"}, 1)
	if err != nil || !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("PrepareRequest = %q, %v; want [a b]", got, err)
	}
	in := []string{"b", "a"}
	_, _ = PrepareRequest(ls, in, 1)
	if !slices.Equal(in, []string{"b", "a"}) {
		t.Fatal("PrepareRequest changed the caller's slice")
	}
	if _, err := PrepareRequest(ls, []string{"a"}, 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("n above the burst: %v, want ErrInvalid", err)
	}
}

// script is a Limiter that replays results.
type script struct {
	mu    sync.Mutex
	steps []step
	calls int
}

type step struct {
	res Result
	err error
}

func (s *script) Allow(context.Context, []string, int) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.steps[min(s.calls, len(s.steps)-1)]
	s.calls++
	return st.res, st.err
}

func denied(d time.Duration) step { return step{res: Result{RetryAfter: d}} }

func allowed() step { return step{res: Result{Allowed: true}} }

func TestWaitSleepsRetryAfter(t *testing.T) {
	l := &script{steps: []step{denied(30 * time.Millisecond), denied(20 * time.Millisecond), allowed()}}
	waited, err := Wait(t.Context(), l, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	// 50ms of RetryAfter plus at most 2 × 1ms of jitter (and timer slack).
	if waited < 50*time.Millisecond || waited > 150*time.Millisecond {
		t.Fatalf("waited %v, want about 50ms", waited)
	}
	if l.calls != 3 {
		t.Fatalf("%d calls, want 3", l.calls)
	}
}

func TestWaitReturnsInvalidAtOnce(t *testing.T) {
	l := &script{steps: []step{{err: ErrInvalid}}}
	if _, err := Wait(t.Context(), l, []string{"a"}); !errors.Is(err, ErrInvalid) || l.calls != 1 {
		t.Fatalf("err = %v after %d calls; want ErrInvalid after 1", err, l.calls)
	}
}

func TestWaitRetriesUnavailableWithBackoff(t *testing.T) {
	l := &script{steps: []step{{err: ErrUnavailable}, {err: ErrTimeout}, {err: ErrUnavailable}, allowed()}}
	waited, err := Wait(t.Context(), l, []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	// Backoff 20, 40, 80ms with jitter in [½, 1]: 70ms to 140ms in all.
	if waited < 70*time.Millisecond || waited > 250*time.Millisecond {
		t.Fatalf("waited %v, want 70–140ms of backoff", waited)
	}
}

func TestWaitGivesUpBeforeTheDeadline(t *testing.T) {
	l := &script{steps: []step{denied(time.Second)}}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Wait(ctx, l, []string{"a"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 50*time.Millisecond {
		t.Fatalf("gave up after %v; a 1s wait never fits 100ms, so at once", el)
	}

	// While unavailable, the last cause is kept for the caller's logs.
	l = &script{steps: []step{{err: ErrTimeout}}}
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = Wait(ctx, l, []string{"a"})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want DeadlineExceeded and ErrTimeout", err)
	}
}

func TestWaitCanceled(t *testing.T) {
	l := &script{steps: []step{denied(time.Hour)}}
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := Wait(ctx, l, []string{"a"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

func TestInstrument(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
	l := Instrument(&script{steps: []step{
		allowed(), denied(time.Millisecond), {err: ErrTimeout}, {err: ErrUnavailable}, {err: ErrInvalid}, {err: context.Canceled}, allowed(),
	}}, m)
	for range 6 {
		_, _ = l.Allow(t.Context(), []string{"a"}, 1)
	}
	if _, err := Wait(t.Context(), l, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				name := mf.GetName() + "{" + lp.GetValue() + "}"
				if c := mt.GetCounter(); c != nil {
					got[name] = c.GetValue()
				}
				if h := mt.GetHistogram(); h != nil {
					got[name] = float64(h.GetSampleCount())
				}
				if lp.GetName() != "outcome" && lp.GetName() != "kind" {
					t.Errorf("unexpected label %q on %s", lp.GetName(), mf.GetName())
				}
			}
		}
	}
	want := map[string]float64{
		"agencyplane_ratelimit_decisions_total{allowed}":  2, // one from Wait
		"agencyplane_ratelimit_decisions_total{denied}":   1,
		"agencyplane_ratelimit_errors_total{timeout}":     1,
		"agencyplane_ratelimit_errors_total{unavailable}": 1,
		"agencyplane_ratelimit_errors_total{invalid}":     1,
		"agencyplane_ratelimit_errors_total{canceled}":    1,
		"agencyplane_ratelimit_errors_total{other}":       0,
		"agencyplane_ratelimit_wait_seconds{allowed}":     1,
		"agencyplane_ratelimit_wait_seconds{deadline}":    0,
		"agencyplane_ratelimit_wait_seconds{canceled}":    0,
		"agencyplane_ratelimit_wait_seconds{error}":       0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("series = %v, want exactly %v", got, want)
	}
}
