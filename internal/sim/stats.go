package sim

// WorkspaceStats counts one workspace's API traffic since the last reset.
// Requests = Admitted + RateLimited + (Faults - FaultsAfter): faults of FaultRate are injected
// before the rate limiter, those of FaultAfterRate after an admitted write was applied.
type WorkspaceStats struct {
	Requests    int64 `json:"requests"`     // authenticated API requests
	Admitted    int64 `json:"admitted"`     // passed the rate limiter
	RateLimited int64 `json:"rate_limited"` // answered 429
	Faults      int64 `json:"faults"`       // answered an injected 5xx or dropped, FaultsAfter included
	FaultsAfter int64 `json:"faults_after"` // of which the write was applied first (FaultAfterRate)
	// DuplicateCreates counts API creates that hit something existing: a member's email, a
	// tag's label, a live key's name, a sub workspace already linked to this admin: usually
	// retries of writes that had succeeded, whether answered 409 or created again.
	DuplicateCreates int64 `json:"duplicate_creates"`
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

// faultAfter counts an admitted request whose answer was lost after its write was applied.
func (m *meter) faultAfter() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.Faults++
	m.stats.FaultsAfter++
}

func (m *meter) duplicate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats.DuplicateCreates++
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

// countDuplicate counts a duplicate create against the workspace acted on. Only API requests
// count: statistics describe API traffic, not seeding through the Go or admin API.
func (c *call) countDuplicate() {
	if c.key != nil {
		c.ws.meter.duplicate()
	}
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
