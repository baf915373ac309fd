package sim

// WorkspaceStats counts one workspace's API traffic since the last reset.
// Requests = Admitted + RateLimited + Faults: faults are injected before the rate limiter.
type WorkspaceStats struct {
	Requests    int64 `json:"requests"`     // authenticated API requests
	Admitted    int64 `json:"admitted"`     // passed the rate limiter
	RateLimited int64 `json:"rate_limited"` // answered 429
	Faults      int64 `json:"faults"`       // answered an injected 5xx
	// The most admitted requests seen in any sliding 1 s and 60 s window: a client that
	// respects the limits keeps these at or below RPS and RPM with RateLimited at zero.
	MaxAdmitted1s  int `json:"max_admitted_1s"`
	MaxAdmitted60s int `json:"max_admitted_60s"`
}

func (m *meter) fault() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Requests++
	m.stats.Faults++
}

func (m *meter) snapshot() WorkspaceStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// reset clears the statistics but keeps the rate-limit log: budgets are behaviour, not stats.
func (m *meter) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats = WorkspaceStats{}
}

// Stats returns every workspace's statistics, keyed by workspace id.
func (s *Server) Stats() map[string]WorkspaceStats {
	out := make(map[string]WorkspaceStats)
	for _, ws := range s.allWorkspaces() {
		out[ws.id] = ws.meter.snapshot()
	}
	return out
}

// ResetStats zeroes every workspace's statistics; rate-limit budgets already spent stay spent.
func (s *Server) ResetStats() {
	for _, ws := range s.allWorkspaces() {
		ws.meter.reset()
	}
}
