package sim

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Config tunes the simulator. The zero value simulates Instantly's documented limits with no
// added latency and no faults.
type Config struct {
	RPS       int           // admitted requests per workspace in any sliding second; 0 means 100
	RPM       int           // and in any sliding minute; 0 means 6000
	Latency   time.Duration // added before every API request is handled
	FaultRate float64       // 0..1: share of API requests answered with a random 500/502/503
	// FaultAfterRate (0..1) is the share of successful API writes (POST, PATCH, DELETE) that
	// are applied and then answered a random 500/502/503/504 or dropped without an answer,
	// as an upstream that times out after committing: the client cannot tell what happened.
	FaultAfterRate float64
	Seed           int64 // seeds the fault RNGs, so a sequential run is reproducible
	Now            func() time.Time
	Logger         *slog.Logger // nil discards logs
}

func (c Config) withDefaults() Config {
	if c.RPS <= 0 {
		c.RPS = DefaultRPS
	}
	if c.RPM <= 0 {
		c.RPM = DefaultRPM
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is the simulator: an http.Handler plus a Go API to seed and inspect its state.
type Server struct {
	cfg   Config
	log   *slog.Logger
	spec  *apiSpec
	valid *validator
	api   *router
	admin *router

	rngMu    sync.Mutex
	rng      *rand.Rand // faults before the handler
	afterRNG *rand.Rand // faults after it: its own stream, so enabling one never shifts the other

	ids idGen // ids of everything but workspaces, users and secrets

	mu         sync.RWMutex // guards the registry below; taken before any other lock
	workspaces map[string]*workspace
	order      []*workspace // creation order
	keys       map[[32]byte]*apiKey
	users      map[string]string // lower-case email → user id: one user across workspaces

	groupMu sync.RWMutex // guards groups; taken after mu and before any workspace's lock
	groups  []*groupLink // admin/sub links of workspace groups, in id order
}

// New returns an empty simulator; add workspaces with CreateWorkspace or POST /_sim/workspaces.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	spec := mustSpec()
	seed := uint64(cfg.Seed)
	return &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		spec:       spec,
		valid:      &validator{root: spec.doc},
		api:        newRouter(apiRoutes(), spec),
		admin:      newRouter(adminRoutes(), spec),
		rng:        rand.New(rand.NewPCG(seed, seed)),
		afterRNG:   rand.New(rand.NewPCG(seed, seed^afterStream)),
		workspaces: make(map[string]*workspace),
		keys:       make(map[[32]byte]*apiKey),
		users:      make(map[string]string),
	}
}

const adminPrefix = "/_sim/"

// ServeHTTP serves Instantly's API under /api/v2 and the simulator's admin API under /_sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		res := s.handleAdmin(r)
		writeResponse(w, res)
		s.logRequest(r, res.status, "", start)
		return
	}
	if !sleep(r.Context(), s.cfg.Latency) {
		return // the client gave up before its request "arrived": nothing to count or answer
	}
	res, wsID := s.handleAPI(r)
	writeResponse(w, res)
	s.logRequest(r, res.status, wsID, start)
}

// isWrite reports whether a request may change state: the requests an ambiguous fault hits.
func isWrite(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// handleAPI runs the steps listed in the package documentation, in that order. It also
// returns the id of the workspace the request acted on, if any.
func (s *Server) handleAPI(r *http.Request) (response, string) {
	rt := s.api.match(r)
	if rt == nil {
		return errorResponse(errNotFound()), ""
	}
	key, err := s.authenticate(r)
	if err != nil {
		return errorResponse(err), ""
	}
	// x-as-workspace chooses the target before any budget is spent; acting as a sub workspace
	// spends the budgets of both the sub and the admin workspace.
	ws := key.ws
	meters := []*meter{ws.meter}
	if as := r.Header.Get(asWorkspaceHeader); as != "" {
		if ws, err = s.actAs(key.ws, as); err != nil {
			return errorResponse(err), ""
		}
		meters = append(meters, ws.meter)
	}
	if status, fail := s.drawFault(); fail {
		for _, m := range meters {
			m.fault()
		}
		return errorResponse(faultError(status)), ws.id
	}
	now := s.now()
	if !admitAll(now, meters...) {
		return errorResponse(newError(http.StatusTooManyRequests, "Rate limit exceeded")), ws.id
	}
	if !scopeAllows(key.Scopes, rt.scope) {
		return errorResponse(errMissingScope(rt.scope)), ws.id
	}
	res := s.run(rt, &call{r: r, now: now, ws: ws, key: key})
	// Only a write that succeeded is ambiguous when its answer is lost; a failed one is an
	// ordinary fault, which FaultRate covers.
	if isWrite(r.Method) && res.status < http.StatusBadRequest {
		if fault, ok := s.drawFaultAfter(); ok {
			for _, m := range meters {
				m.faultAfter()
			}
			return fault, ws.id
		}
	}
	return res, ws.id
}

func (s *Server) handleAdmin(r *http.Request) response {
	rt := s.admin.match(r)
	if rt == nil {
		return errorResponse(errNotFound())
	}
	return s.run(rt, &call{r: r, now: s.now()})
}

// run validates the body, then the query string (Fastify's order), then calls the handler.
func (s *Server) run(rt *compiledRoute, c *call) response {
	if rt.schema != nil {
		body, err := readBody(c.r)
		if err != nil {
			return errorResponse(err)
		}
		if msg := s.valid.check(rt.schema, body, "body"); msg != "" {
			return errorResponse(errBadRequest(msg))
		}
		c.body = body
	}
	if rt.query != nil {
		c.query = decodeQuery(rt.query, c.r.URL.Query())
		if msg := s.valid.check(rt.query, c.query, "querystring"); msg != "" {
			return errorResponse(errBadRequest(msg))
		}
	}
	out, err := rt.handle(s, c)
	if err != nil {
		return errorResponse(err)
	}
	return response{status: rt.status, body: out}
}

// logRequest logs status 0 for a connection dropped without an answer.
func (s *Server) logRequest(r *http.Request, status int, wsID string, start time.Time) {
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.String("workspace_id", wsID),
		slog.Duration("duration", time.Since(start)))
}
