package ratelimit

import (
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/testutil/fakeclock"
)

func newStepClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }

// TestGatePenaltySchedule: consecutive 429s without Retry-After pause a
// bucket for BasePenalty, doubling per 429 up to MaxPenalty; zero or negative
// options mean 250ms and 10s.
func TestGatePenaltySchedule(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		opts GateOptions
		want []time.Duration
	}{
		{"defaults", GateOptions{}, []time.Duration{250 * ms, 500 * ms, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}},
		{"negative means default", GateOptions{BasePenalty: -time.Second, MaxPenalty: -time.Second}, []time.Duration{250 * ms, 500 * ms}},
		{"custom", GateOptions{BasePenalty: 100 * ms, MaxPenalty: 300 * ms}, []time.Duration{100 * ms, 200 * ms, 300 * ms, 300 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newStepClock()
			tc.opts.Now = clk.Now
			g := NewGate(nil, tc.opts)
			b := []string{"ws"}
			for i, want := range tc.want {
				g.Throttled(b, 0)
				if got := g.pause(b); got != want {
					t.Fatalf("pause after 429 #%d = %v, want %v", i+1, got, want)
				}
			}
		})
	}
}

// TestGatePauseIsTheLongestOfItsBuckets: Retry-After sets the pause, a
// shorter later one does not cut it, and a request waits for its most
// penalized bucket.
func TestGatePauseIsTheLongestOfItsBuckets(t *testing.T) {
	clk := newStepClock()
	g := NewGate(nil, GateOptions{Now: clk.Now})
	g.Throttled([]string{"admin"}, 3*time.Second)
	g.Throttled([]string{"admin"}, time.Second)
	g.Throttled([]string{"sub"}, 0)
	if got := g.pause([]string{"admin"}); got != 3*time.Second {
		t.Fatalf("admin pause %v, want the Retry-After 3s", got)
	}
	if got := g.pause([]string{"sub", "admin"}); got != 3*time.Second {
		t.Fatalf("[sub, admin] pause %v, want admin's 3s", got)
	}
	if got := g.pause([]string{"other"}); got != 0 {
		t.Fatalf("an unthrottled bucket pauses %v", got)
	}
	clk.Advance(3 * time.Second)
	if got := g.pause([]string{"sub", "admin"}); got != 0 {
		t.Fatalf("pause %v after it ran out", got)
	}
}

// TestGatePenaltyDecaysOneStepPerSuccess: each success undoes one 429's
// doubling, even once the pause has run out, so a workspace that keeps
// hitting 429s does not restart from the base pause after one success.
func TestGatePenaltyDecaysOneStepPerSuccess(t *testing.T) {
	clk := newStepClock()
	g := NewGate(nil, GateOptions{Now: clk.Now})
	b := []string{"ws"}
	for range 3 {
		g.Throttled(b, 0) // 250ms, 500ms, 1s
	}
	clk.Advance(time.Second)
	g.Succeeded(b, 0)
	g.Throttled(b, 0)
	if got := g.pause(b); got != time.Second {
		t.Fatalf("429, 429, 429, success, 429: pause %v, want 1s (two strikes left)", got)
	}
}

// TestGatePenaltyBanksNoCredit: successes beyond the 429s they undo earn
// nothing, and a fully decayed penalty is forgotten: the next 429 pauses
// BasePenalty again.
func TestGatePenaltyBanksNoCredit(t *testing.T) {
	clk := newStepClock()
	g := NewGate(nil, GateOptions{Now: clk.Now})
	b := []string{"ws"}
	g.Throttled(b, 0)
	for range 3 { // while the 250ms pause still runs
		g.Succeeded(b, 0)
	}
	if got := g.pause(b); got != 250*time.Millisecond {
		t.Fatalf("a success cut the running pause to %v", got)
	}
	clk.Advance(250 * time.Millisecond)
	g.Succeeded(b, 0)
	g.mu.Lock()
	n := len(g.penalties)
	g.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d penalties remembered after full decay, want 0", n)
	}
	g.Throttled(b, 0)
	if got := g.pause(b); got != 250*time.Millisecond {
		t.Fatalf("pause %v after full decay, want the base 250ms", got)
	}
}
