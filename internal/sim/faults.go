package sim

import (
	"context"
	"net/http"
	"time"
)

// sleep waits d, or less if ctx ends first; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// drawFault decides, from the seeded RNG, whether this request fails and with which status.
// Nothing is drawn when faults are off, so enabling them never shifts other randomness.
func (s *Server) drawFault() (int, bool) {
	if s.cfg.FaultRate <= 0 {
		return 0, false
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	if s.rng.Float64() >= s.cfg.FaultRate {
		return 0, false
	}
	// The failures a real upstream shows under load or during deploys.
	switch s.rng.IntN(3) {
	case 0:
		return http.StatusInternalServerError, true
	case 1:
		return http.StatusBadGateway, true
	default:
		return http.StatusServiceUnavailable, true
	}
}

func faultError(status int) *apiError {
	return newError(status, "Simulated upstream failure")
}
