// Package server runs agencyd's two listeners: gRPC, and REST through
// grpc-gateway dialling our own gRPC port so every interceptor runs once for
// both transports. It also serves health, readiness, metrics and the OpenAPI
// document on the HTTP port.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"buf.build/go/protovalidate"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/idempotency"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// Service is one gRPC service with its REST registration.
type Service struct {
	Desc    *grpc.ServiceDesc
	Impl    any
	Gateway func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error
}

// Options configures the server.
type Options struct {
	GRPCAddr string
	HTTPAddr string
	Logger   *slog.Logger
	Store    store.Store
	Auth     *auth.Authenticator
	Authz    *authz.Authorizer
	Services []Service
	// TLS, when enabled, serves both listeners over TLS (and mTLS with a
	// client CA).
	TLS TLSFiles
	// OpenAPI is served at /openapi.json.
	OpenAPI []byte
	// HTTPHandlers are mounted on the HTTP listener beside the gateway
	// (pattern → handler, e.g. "/scim/v2/"), bodies capped at
	// MaxRequestBytes; they authenticate their own callers.
	HTTPHandlers map[string]http.Handler
	// MaxRequestBytes caps REST bodies and gRPC messages (these with
	// envelopeHeadroom more). Default 1 MiB.
	MaxRequestBytes int64
	// ShutdownTimeout bounds graceful shutdown. Default 15s.
	ShutdownTimeout time.Duration
	// RequestTimeout is the deadline of calls that come without one
	// (fan-outs excepted). Default 60s.
	RequestTimeout time.Duration
	// ReadinessInterval is how often the store is probed for gRPC health.
	// Default 5s.
	ReadinessInterval time.Duration
	// ReadyCheck, when set, is asked after the store's ping by /readyz and
	// the gRPC health probe: an error means not ready, and its text is the
	// reason /readyz gives (e.g. stored credentials the master keys cannot
	// open). It must be cheap.
	ReadyCheck func(ctx context.Context) error
	// Registry receives the server's metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Idempotency configures request_id (AIP-155). The server sets Mutating
	// (from Authz) and Logger when unset, and calls OnReplay after its own
	// bookkeeping. Without a Store, records are kept in memory (the
	// embedded backend); without a Keyring, sealed with a random key.
	Idempotency idempotency.Options
}

// Server is a running agencyd.
type Server struct {
	opts     Options
	grpcLis  net.Listener
	httpLis  net.Listener
	grpc     *grpc.Server
	health   *health.Server
	registry *prometheus.Registry
	// tls is nil without TLS.
	tls           *tls.Config
	gatewaySecret string
}

// New validates opts and opens both listeners, so the bound addresses are
// known (":0" picks free ports) before Run.
func New(opts Options) (*Server, error) {
	if opts.Logger == nil || opts.Store == nil || opts.Auth == nil {
		return nil, errors.New("server: Logger, Store and Auth are required")
	}
	if opts.Authz == nil {
		opts.Authz = authz.NewAuthorizer()
	}
	if opts.MaxRequestBytes <= 0 {
		opts.MaxRequestBytes = 1 << 20
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 15 * time.Second
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 60 * time.Second
	}
	if opts.ReadinessInterval <= 0 {
		opts.ReadinessInterval = 5 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
		opts.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	validator, err := protovalidate.New()
	if err != nil {
		return nil, fmt.Errorf("server: protovalidate: %w", err)
	}
	metrics := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
	opts.Registry.MustRegister(metrics)
	secret, err := auth.GenerateToken()
	if err != nil {
		return nil, err
	}
	ic := &interceptors{
		logger: opts.Logger, authn: opts.Auth, authz: opts.Authz, validator: validator, metrics: metrics,
		audit:         &auditor{store: opts.Store.Audit(), authz: opts.Authz, logger: opts.Logger, now: time.Now},
		gatewaySecret: secret, requestTimeout: opts.RequestTimeout,
	}
	if ic.idempotency, err = newIdempotency(opts); err != nil {
		return nil, err
	}
	serverOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ic.unary()...),
		grpc.ChainStreamInterceptor(ic.stream()...),
		grpc.MaxRecvMsgSize(int(opts.MaxRequestBytes) + envelopeHeadroom),
	}
	var tlsCfg *tls.Config
	if opts.TLS.Enabled() {
		if tlsCfg, err = opts.TLS.serverTLS(); err != nil {
			return nil, err
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	gs := grpc.NewServer(serverOpts...)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	for _, svc := range opts.Services {
		gs.RegisterService(svc.Desc, svc.Impl)
		hs.SetServingStatus(svc.Desc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	}
	metrics.InitializeMetrics(gs)

	s := &Server{opts: opts, grpc: gs, health: hs, registry: opts.Registry, tls: tlsCfg, gatewaySecret: secret}
	if s.grpcLis, err = net.Listen("tcp", opts.GRPCAddr); err != nil {
		return nil, fmt.Errorf("server: listen gRPC %s: %w", opts.GRPCAddr, err)
	}
	if s.httpLis, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		_ = s.grpcLis.Close()
		return nil, fmt.Errorf("server: listen HTTP %s: %w", opts.HTTPAddr, err)
	}
	return s, nil
}

// newIdempotency completes opts.Idempotency with the server's parts.
func newIdempotency(opts Options) (*idempotency.Interceptor, error) {
	o := opts.Idempotency
	if o.Store == nil {
		o.Store = idempotency.NewMemoryStore(nil)
	}
	if o.Keyring == nil {
		// Only the embedded store may use a key no other replica has.
		if opts.Idempotency.Store != nil {
			return nil, errors.New("server: Idempotency.Keyring is required with an Idempotency.Store")
		}
		key, err := vault.GenerateKey()
		if err != nil {
			return nil, err
		}
		if o.Keyring, err = vault.NewKeyring(key); err != nil {
			return nil, err
		}
	}
	if o.Mutating == nil {
		o.Mutating = func(method string) bool {
			r, ok := opts.Authz.Rule(method)
			return ok && r.Mutating
		}
	}
	if o.Logger == nil {
		o.Logger = opts.Logger
	}
	next := o.OnReplay
	o.OnReplay = func(ctx context.Context) {
		markReplay(ctx)
		if next != nil {
			next(ctx)
		}
	}
	return idempotency.New(o)
}

// GRPCAddr is the bound gRPC address.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() string { return s.httpLis.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully: health goes
// NOT_SERVING, in-flight calls finish (bounded by ShutdownTimeout), and the
// listeners close. The store is left to the caller.
func (s *Server) Run(ctx context.Context) error {
	creds := insecure.NewCredentials()
	if s.tls != nil {
		creds = credentials.NewTLS(selfDialTLS(s.tls))
	}
	conn, err := grpc.NewClient(s.GRPCAddr(), grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(requestFaults(int(s.opts.MaxRequestBytes)+envelopeHeadroom)),
		// Answers as large as the server sends (it has no cap): the client's
		// default of 4 MiB would fail a big fan-out's answer on REST only.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return fmt.Errorf("server: dial own gRPC port: %w", err)
	}
	defer conn.Close()
	gw := newGatewayMux(s.gatewaySecret)
	for _, svc := range s.opts.Services {
		if svc.Gateway == nil {
			continue
		}
		if err := svc.Gateway(ctx, gw, conn); err != nil {
			return fmt.Errorf("server: register gateway for %s: %w", svc.Desc.ServiceName, err)
		}
	}
	hsrv := &http.Server{
		Handler:           s.httpHandler(gw),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}

	errc := make(chan error, 2)
	go func() { errc <- s.grpc.Serve(s.grpcLis) }()
	go func() {
		var err error
		if s.tls != nil {
			hsrv.TLSConfig = s.tls.Clone()
			err = hsrv.ServeTLS(s.httpLis, "", "")
		} else {
			err = hsrv.Serve(s.httpLis)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	var wg sync.WaitGroup
	probeCtx, stopProbe := context.WithCancel(ctx)
	wg.Go(func() { s.probeReadiness(probeCtx) })
	s.opts.Logger.Info("agencyd serving", "grpc_addr", s.GRPCAddr(), "http_addr", s.HTTPAddr())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopProbe()
	wg.Wait()
	s.shutdown(hsrv)
	return serveErr
}

func (s *Server) shutdown(hsrv *http.Server) {
	s.opts.Logger.Info("agencyd shutting down")
	s.health.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	// REST first: its calls travel through the gRPC server.
	if err := hsrv.Shutdown(ctx); err != nil {
		s.opts.Logger.Warn("HTTP shutdown incomplete", "error", err.Error())
		_ = hsrv.Close()
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		s.grpc.Stop()
	}
}

// probeReadiness mirrors the store's health into gRPC health, so
// grpc-health-probe reflects Redis as /readyz does.
func (s *Server) probeReadiness(ctx context.Context) {
	t := time.NewTicker(s.opts.ReadinessInterval)
	defer t.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVING
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := s.ready(pctx); err != nil && ctx.Err() == nil {
			st = healthpb.HealthCheckResponse_NOT_SERVING
			s.opts.Logger.Warn("not ready", "error", err.Error())
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		s.health.SetServingStatus("", st)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ready is nil when the store answers and ReadyCheck passes.
func (s *Server) ready(ctx context.Context) error {
	if err := s.opts.Store.Ping(ctx); err != nil {
		return err
	}
	if s.opts.ReadyCheck != nil {
		if err := s.opts.ReadyCheck(ctx); err != nil {
			return notReadyError{err}
		}
	}
	return nil
}

// notReadyError is a ReadyCheck's verdict, whose text /readyz shows.
type notReadyError struct{ err error }

func (e notReadyError) Error() string { return e.err.Error() }
func (e notReadyError) Unwrap() error { return e.err }

func (s *Server) httpHandler(gw http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"status\":\"ok\"}\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			msg := "state store unavailable"
			var nr notReadyError
			if errors.As(err, &nr) {
				msg = nr.Error()
			}
			httpError(w, http.StatusServiceUnavailable, msg)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte("{\"status\":\"ready\"}\n"))
	})
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.opts.OpenAPI)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	for pattern, h := range s.opts.HTTPHandlers {
		mux.Handle(pattern, http.MaxBytesHandler(h, s.opts.MaxRequestBytes))
	}
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As http.MaxBytesHandler, with a body that keeps what was read
		// and whether the cap was hit, for the error handler (requestBody).
		r2 := *r
		r2.Body = &requestBody{ReadCloser: http.MaxBytesReader(w, r.Body, s.opts.MaxRequestBytes)}
		gw.ServeHTTP(w, &r2)
	}))
	return mux
}

// envelopeHeadroom is how much larger than --max-request-bytes a gRPC
// message may be: a REST body at the limit becomes a message with the
// path's and query's fields (and a PATCH's derived update mask) added, and
// must still fit. A gRPC caller gets the same room.
const envelopeHeadroom = 64 << 10
