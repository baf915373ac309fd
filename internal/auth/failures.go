package auth

import (
	"context"
	"time"
)

// FailureLimits tunes the failed-authentication throttle; zero values take
// the defaults. Each key (an address, a presented credential) may fail Burst
// times at once, then once more per Every: a GCRA bucket.
type FailureLimits struct {
	// Burst failures are allowed at once per key (default 10) ...
	Burst int
	// ... then one more per Every (default 6s, i.e. 10 a minute).
	Every time.Duration
}

// Defaults for FailureLimits.
const (
	DefaultFailureBurst = 10
	DefaultFailureEvery = 6 * time.Second
)

func (l FailureLimits) withDefaults() FailureLimits {
	if l.Burst <= 0 {
		l.Burst = DefaultFailureBurst
	}
	if l.Every <= 0 {
		l.Every = DefaultFailureEvery
	}
	return l
}

// tolerance is how far a key's theoretical arrival time may run ahead of
// now and still admit one more failure: Burst-1 intervals.
func (l FailureLimits) tolerance() time.Duration {
	return time.Duration(l.Burst-1) * l.Every
}

// FailureCounter counts failed authentications per key, shared by every
// replica of a deployment (Redis) or kept in this process (embedded
// backend). Successful authentications never reach it.
type FailureCounter interface {
	// Fail records one failure against every key, at now, unless one of
	// them is over its limit: then it records nothing (a refused attempt
	// costs its keys nothing more) and returns how long until every key
	// admits one more failure.
	Fail(ctx context.Context, now time.Time, keys []string) (retryAfter time.Duration, err error)
}

// gcra decides one key: tat is its theoretical arrival time (zero when
// unknown or expired). It returns the key's new TAT when the failure is
// admitted, or how long to wait when it is not.
func gcra(now, tat time.Time, l FailureLimits) (newTAT time.Time, wait time.Duration) {
	if tat.Before(now) {
		tat = now
	}
	if allowAt := tat.Add(-l.tolerance()); allowAt.After(now) {
		return time.Time{}, allowAt.Sub(now)
	}
	return tat.Add(l.Every), 0
}
