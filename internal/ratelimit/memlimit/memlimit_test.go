package memlimit

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/limittest"
)

func TestConformance(t *testing.T) {
	limittest.Run(t, func(t *testing.T, clock func() time.Time) limittest.NewLimiter {
		// One process's limiters share state only by being one Limiter, so
		// "replicas" here are goroutines sharing the limiter for their limits.
		var mu sync.Mutex
		byLimits := map[ratelimit.Limits]*Limiter{}
		return func(ls ratelimit.Limits) ratelimit.Limiter {
			mu.Lock()
			defer mu.Unlock()
			if l, ok := byLimits[ls]; ok {
				return l
			}
			l, err := New(ls, Options{Clock: clock})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			byLimits[ls] = l
			return l
		}
	})
}

func TestNewRejectsInvalidLimits(t *testing.T) {
	bad := ratelimit.InstantlyLimits(0)
	bad.PerMinute.Burst = bad.PerMinute.Rate + 1
	if _, err := New(bad, Options{}); err == nil {
		t.Fatal("New accepted a burst above the rate")
	}
}

func TestSweepDropsIdleWindows(t *testing.T) {
	clock := limittest.NewClock()
	l, err := New(ratelimit.InstantlyLimits(0), Options{Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range sweepEvery - 1 {
		if _, err := l.Allow(t.Context(), []string{"ws" + strconv.Itoa(i)}, 1); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := l.size(), 2*(sweepEvery-1); got != want {
		t.Fatalf("size = %d, want %d (two windows per bucket)", got, want)
	}
	// Every window is idle again exactly one interval (12.5ms) after its
	// only admission, and is dropped then.
	clock.Advance(12500 * time.Microsecond)
	if _, err := l.Allow(t.Context(), []string{"last"}, 1); err != nil {
		t.Fatal(err)
	}
	if got := l.size(); got != 2 {
		t.Fatalf("size after sweep = %d, want 2 (only the last bucket)", got)
	}
	// Sweeps recur every sweepEvery calls.
	for i := range sweepEvery - 1 {
		if _, err := l.Allow(t.Context(), []string{"again" + strconv.Itoa(i)}, 1); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(time.Second)
	if _, err := l.Allow(t.Context(), []string{"last"}, 1); err != nil {
		t.Fatal(err)
	}
	if got := l.size(); got != 2 {
		t.Fatalf("size after the second sweep = %d, want 2 (only the last bucket)", got)
	}
}

func BenchmarkAllow(b *testing.B) {
	l, err := New(ratelimit.InstantlyLimits(0), Options{})
	if err != nil {
		b.Fatal(err)
	}
	buckets := make([][]string, 512)
	for i := range buckets {
		buckets[i] = []string{"ws" + strconv.Itoa(i)}
	}
	b.Run("OneBucket", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Allow(b.Context(), buckets[0], 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("TwoBuckets", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := l.Allow(b.Context(), []string{buckets[i%512][0], "admin"}, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel512Buckets", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := l.Allow(b.Context(), buckets[i%512], 1); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	})
}
