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

// afterStream picks the PCG stream of the fault-after RNG (any constant other than 0 would do).
const afterStream = 0x9e3779b97f4a7c15

// drawFaultAfter decides, from its own seeded RNG, whether a write that succeeded loses its
// answer, and how: about half the time a random 500/502/503/504, otherwise a dropped
// connection. Nothing is drawn when these faults are off.
func (s *Server) drawFaultAfter() (response, bool) {
	if s.cfg.FaultAfterRate <= 0 {
		return response{}, false
	}
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	if s.afterRNG.Float64() >= s.cfg.FaultAfterRate {
		return response{}, false
	}
	if s.afterRNG.IntN(2) == 0 {
		return response{drop: true}, true
	}
	statuses := [...]int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	// The same body as a fault before the write, so the client cannot tell them apart.
	return errorResponse(faultError(statuses[s.afterRNG.IntN(len(statuses))])), true
}

func faultError(status int) *apiError {
	return newError(status, "Simulated upstream failure")
}

// dropConnection closes the client's connection without a byte of answer, as a proxy that
// times out does. Where the connection cannot be taken over (HTTP/2, a recorder) it aborts
// the handler instead, which net/http turns into a reset stream or a closed connection.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
