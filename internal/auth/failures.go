package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// FailureLimits tunes FailureLimiter; zero values take the defaults.
type FailureLimits struct {
	// Burst failures are allowed at once per source (default 10) ...
	Burst int
	// ... then one more per Every (default 6s, i.e. 10 a minute).
	Every time.Duration
	// MaxSources bounds memory; beyond it the oldest entries are dropped
	// (default 10000).
	MaxSources int
}

// FailureLimiter throttles sources that keep failing authentication, so a
// token cannot be guessed at line rate. Successful calls cost nothing.
type FailureLimiter struct {
	mu      sync.Mutex
	limits  FailureLimits
	sources map[string]*rate.Limiter
	order   []string
}

// NewFailureLimiter returns a limiter.
func NewFailureLimiter(l FailureLimits) *FailureLimiter {
	if l.Burst <= 0 {
		l.Burst = 10
	}
	if l.Every <= 0 {
		l.Every = 6 * time.Second
	}
	if l.MaxSources <= 0 {
		l.MaxSources = 10000
	}
	return &FailureLimiter{limits: l, sources: map[string]*rate.Limiter{}}
}

// Allow reports whether source may try to authenticate now.
func (f *FailureLimiter) Allow(source string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.sources[source]
	return !ok || l.Tokens() >= 1
}

// Fail records a failed attempt by source.
func (f *FailureLimiter) Fail(source string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.sources[source]
	if !ok {
		if len(f.order) >= f.limits.MaxSources {
			delete(f.sources, f.order[0])
			f.order = f.order[1:]
		}
		l = rate.NewLimiter(rate.Every(f.limits.Every), f.limits.Burst)
		f.sources[source] = l
		f.order = append(f.order, source)
	}
	l.Allow()
}
