// Package app wires agencyd together from its configuration: logger,
// store, vault, Instantly client, services and server. cmd/agencyd and the
// end-to-end tests share it, so tests run the real assembly.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"cloud.google.com/go/longrunning/autogen/longrunningpb"

	"github.com/agencyplane/agencyplane"
	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/auth"
	"github.com/agencyplane/agencyplane/internal/authz"
	"github.com/agencyplane/agencyplane/internal/config"
	"github.com/agencyplane/agencyplane/internal/desiredstate"
	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/idempotency"
	"github.com/agencyplane/agencyplane/internal/identity/oidc"
	"github.com/agencyplane/agencyplane/internal/identity/scim"
	"github.com/agencyplane/agencyplane/internal/instantly"
	memberguard "github.com/agencyplane/agencyplane/internal/members"
	"github.com/agencyplane/agencyplane/internal/operations"
	"github.com/agencyplane/agencyplane/internal/pagetoken"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/memlimit"
	"github.com/agencyplane/agencyplane/internal/ratelimit/redislimit"
	"github.com/agencyplane/agencyplane/internal/replication"
	"github.com/agencyplane/agencyplane/internal/resolve"
	"github.com/agencyplane/agencyplane/internal/server"
	"github.com/agencyplane/agencyplane/internal/service/apikeys"
	"github.com/agencyplane/agencyplane/internal/service/audittrail"
	dsservice "github.com/agencyplane/agencyplane/internal/service/desiredstate"
	"github.com/agencyplane/agencyplane/internal/service/fanoutsvc"
	"github.com/agencyplane/agencyplane/internal/service/groupmembers"
	"github.com/agencyplane/agencyplane/internal/service/instantlyaudit"
	"github.com/agencyplane/agencyplane/internal/service/members"
	opservice "github.com/agencyplane/agencyplane/internal/service/operations"
	"github.com/agencyplane/agencyplane/internal/service/tags"
	"github.com/agencyplane/agencyplane/internal/service/tokens"
	"github.com/agencyplane/agencyplane/internal/service/workspaces"
	"github.com/agencyplane/agencyplane/internal/store"
	"github.com/agencyplane/agencyplane/internal/store/memory"
	"github.com/agencyplane/agencyplane/internal/store/redisstore"
	"github.com/agencyplane/agencyplane/internal/vault"
)

// App is an assembled agencyd.
type App struct {
	Server     *server.Server
	Store      store.Store
	Operations *operations.Manager
	// DesiredState serves access as code and runs its reconciler.
	DesiredState *dsservice.Service
	// SCIM serves /scim/v2 and reconciles its provisioning.
	SCIM *scim.Handler
}

// NewLogger builds the JSON (or text) slog logger the configuration asks for.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	level, _ := cfg.SlogLevel()
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// New assembles agencyd. A bootstrap token it generates is written once to
// console (never to the log).
func New(ctx context.Context, cfg *config.Config, logger *slog.Logger, console io.Writer) (*App, error) {
	st, rdb, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	if st, err = withAuditLog(cfg, st, logger); err != nil {
		_ = st.Close()
		return nil, err
	}
	a, err := assemble(ctx, cfg, logger, console, st, rdb)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	return a, nil
}

func assemble(ctx context.Context, cfg *config.Config, logger *slog.Logger, console io.Writer, st store.Store, rdb redis.UniversalClient) (*App, error) {
	keyring, masterKeys, err := loadKeyring(cfg, logger)
	if err != nil {
		return nil, err
	}
	// Page tokens are signed with a key derived from the master keys, so
	// every replica accepts every other's.
	pages, err := pagetoken.NewCodec(masterKeys...)
	if err != nil {
		return nil, err
	}
	if err := bootstrapToken(ctx, cfg, st.Tokens(), logger, console); err != nil {
		return nil, err
	}
	creds := newCredentialCheck(st.Workspaces(), keyring, logger)
	if err := creds.scan(ctx); err != nil {
		return nil, err
	}
	certs, err := loadClientIdentities(cfg.ClientIdentities)
	if err != nil {
		return nil, err
	}
	trusted, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return nil, err
	}
	jwts, err := newJWTVerifier(cfg)
	if err != nil {
		return nil, err
	}
	// SCIM's state: an OIDC caller it deactivated is refused.
	scimStore := newSCIMStore(cfg, rdb)
	authn, err := auth.NewAuthenticator(auth.Options{Tokens: st.Tokens(), Certs: certs, Failures: newFailureCounter(cfg, rdb), TrustedProxies: trusted, JWT: jwts,
		Deactivated: scim.Deactivated(scimStore), Now: cfg.Now})
	if err != nil {
		return nil, err
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	limiter, err := newLimiter(cfg, rdb, registry)
	if err != nil {
		return nil, err
	}
	mx, err := newMetrics(cfg, registry)
	if err != nil {
		return nil, err
	}
	locker, err := newMemberLocker(cfg, rdb)
	if err != nil {
		return nil, err
	}
	// Upstream latency per budget sizes each workspace's in-flight limit.
	latency := ratelimit.NewLatencyTracker(ratelimit.LatencyOptions{Rate: cfg.RateLimits().Sustained(), Max: cfg.FanoutPerWorkspace})
	client, err := instantly.New(instantly.Options{BaseURL: cfg.InstantlyURL, Logger: logger, Metrics: mx.upstream,
		Budget: ratelimit.NewGate(limiter, ratelimit.GateOptions{Latency: latency})})
	if err != nil {
		return nil, err
	}
	// Every service sees workspaces through the caller's scope.
	scoped := authz.Scoped(st.Workspaces())
	resolver := resolve.NewResolver(scoped, st.Workspaces(), keyring, pages)
	// Operation workers run without a caller: the selection was scoped
	// when the operation was created.
	rawResolver := resolve.NewResolver(st.Workspaces(), st.Workspaces(), keyring, pages)
	manager := operations.NewManager(newOperationsBackend(cfg, rdb, logger), keyring, operations.Options{
		Consumer: consumerName(), MaxEntries: cfg.MaxInflight, ClaimTimeout: cfg.ClaimTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout, Logger: logger, OnEnd: operationAuditor(st.Audit(), logger),
		Metrics: mx.operations,
	})
	engine := fanout.New(fanout.Options{Concurrency: cfg.FanoutConcurrency, PerWorkspace: cfg.FanoutPerWorkspace, MaxInflight: cfg.MaxInflight,
		Metrics: mx.fanout, Method: itemMethod,
		Limit: func(name string) int {
			b := resolver.BudgetsOf(name)
			if b == nil {
				b = rawResolver.BudgetsOf(name)
			}
			return latency.Limit(b)
		}})
	bulkSvc := fanoutsvc.New(scoped, resolver, client, engine, locker, fanoutsvc.Options{DefaultTimeout: cfg.FanoutTimeout})
	bulkSvc.EnableOperations(fanoutsvc.OperationOptions{Manager: manager, Raw: rawResolver, MaxItems: cfg.MaxOperationItems})
	opsSvc := opservice.New(manager, 0, pages)
	scimHandler, err := newSCIM(cfg, scimStore, st.Tokens(), st.Workspaces(), authn, bulkSvc, manager, locker, st.Audit(), registry, logger)
	if err != nil {
		return nil, err
	}
	dsStore, dsLeader := newDesiredStateStore(cfg, rdb)
	dsSvc, err := dsservice.New(dsservice.Deps{Scoped: scoped, Raw: st.Workspaces(), Resolver: resolver, RawResolver: rawResolver,
		Client: client, Engine: engine, Locker: locker, Manager: manager, Store: dsStore, Leader: dsLeader, Pages: pages, Registry: registry,
		// Members the SCIM mapping gave count as declared.
		Provisioned: scimHandler.Provisioned},
		dsservice.Options{PlanTTL: cfg.PlanTTL, Retention: cfg.OperationRetention, MaxWorkspaces: int(cfg.MaxOperationItems),
			ReconcileInterval: cfg.ReconcileInterval, Now: cfg.Now, Logger: logger})
	if err != nil {
		return nil, err
	}
	wsSvc := workspaces.New(workspaces.Deps{Store: scoped, Raw: st.Workspaces(), Vault: keyring, Upstream: client, Resolver: resolver, PageTokens: pages, Logger: logger})
	idem, err := newIdempotencyStore(cfg, rdb, logger)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Options{
		HTTPHandlers:      map[string]http.Handler{scim.Prefix + "/": scimHandler, scim.ReleasePath: scimHandler.ReleaseHandler()},
		GRPCAddr:          cfg.GRPCAddr,
		HTTPAddr:          cfg.HTTPAddr,
		Logger:            logger,
		Store:             st,
		Auth:              authn,
		OpenAPI:           agencyplane.OpenAPI,
		MaxRequestBytes:   cfg.MaxRequestBytes,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		RequestTimeout:    cfg.RequestTimeout,
		ReadinessInterval: cfg.ReadinessInterval,
		ReadyCheck:        creds.Ready,
		Registry:          registry,
		TLS:               server.TLSFiles{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey, ClientCAFile: cfg.ClientCA},
		Idempotency:       idempotency.Options{Store: idem, Keyring: keyring, Refresh: opsSvc.Refresh},
		Services: []server.Service{
			{Desc: &agencyv1.WorkspaceService_ServiceDesc, Impl: wsSvc, Gateway: agencyv1.RegisterWorkspaceServiceHandler},
			{Desc: &agencyv1.MemberService_ServiceDesc, Impl: members.New(resolver, client, locker), Gateway: agencyv1.RegisterMemberServiceHandler},
			{Desc: &agencyv1.GroupMemberService_ServiceDesc, Impl: groupmembers.New(resolver, client, scoped), Gateway: agencyv1.RegisterGroupMemberServiceHandler},
			{Desc: &agencyv1.TagService_ServiceDesc, Impl: tags.New(resolver, client), Gateway: agencyv1.RegisterTagServiceHandler},
			{Desc: &agencyv1.ApiKeyService_ServiceDesc, Impl: apikeys.New(resolver, client, scoped, keyring, logger), Gateway: agencyv1.RegisterApiKeyServiceHandler},
			{Desc: &agencyv1.AuditLogService_ServiceDesc, Impl: instantlyaudit.New(resolver, client), Gateway: agencyv1.RegisterAuditLogServiceHandler},
			{Desc: &agencyv1.FanoutService_ServiceDesc, Impl: bulkSvc, Gateway: agencyv1.RegisterFanoutServiceHandler},
			{Desc: &agencyv1.DesiredStateService_ServiceDesc, Impl: dsSvc, Gateway: agencyv1.RegisterDesiredStateServiceHandler},
			// google.longrunning first: its GET /v1/{name=operations/**}
			// would otherwise shadow .../results (the mux prefers the
			// handlers registered last).
			{Desc: &longrunningpb.Operations_ServiceDesc, Impl: opsSvc, Gateway: server.RegisterOperationsGateway},
			{Desc: &agencyv1.OperationService_ServiceDesc, Impl: opsSvc, Gateway: agencyv1.RegisterOperationServiceHandler},
			{Desc: &agencyv1.TokenService_ServiceDesc, Impl: tokens.New(st.Tokens(), pages), Gateway: agencyv1.RegisterTokenServiceHandler},
			{Desc: &agencyv1.AuditService_ServiceDesc, Impl: audittrail.New(st.Audit(), scoped, resolver, client, pages, engine), Gateway: agencyv1.RegisterAuditServiceHandler},
		},
	})
	if err != nil {
		return nil, err
	}
	return &App{Server: srv, Store: st, Operations: manager, DesiredState: dsSvc, SCIM: scimHandler}, nil
}

// Run serves and works on operations until ctx ends; then it stops taking
// operation work, finishes or hands back what it holds (within the
// shutdown timeout), and closes the store.
func (a *App) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = a.Operations.Run(ctx) })
	if a.DesiredState != nil {
		wg.Go(func() { a.DesiredState.Run(ctx) })
	}
	if a.SCIM != nil {
		wg.Go(func() { a.SCIM.Run(ctx) })
	}
	err := a.Server.Run(ctx)
	wg.Wait()
	if cerr := a.Store.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// newDesiredStateStore keeps plans, the applied desired state and drift in
// Redis when there is one (any replica applies, one reconciles), in memory
// otherwise.
func newDesiredStateStore(cfg *config.Config, rdb redis.UniversalClient) (desiredstate.Store, desiredstate.Leader) {
	if rdb != nil {
		return desiredstate.NewRedis(rdb, cfg.RedisPrefix), desiredstate.NewRedisLeader(rdb, cfg.RedisPrefix)
	}
	return desiredstate.NewMemory(cfg.Now), desiredstate.Alone{}
}

// replicationWaiter is how the writes a failover must not lose wait for
// replicas (--redis-wait-replicas, --redis-wait-timeout).
func replicationWaiter(cfg *config.Config, logger *slog.Logger) replication.Waiter {
	return replication.Waiter{Replicas: cfg.WaitReplicas(), Timeout: cfg.RedisWaitTimeout, Logger: logger}
}

// newOperationsBackend keeps operations in Redis when there is one (every
// replica works on them, and they survive restarts), in memory otherwise.
func newOperationsBackend(cfg *config.Config, rdb redis.UniversalClient, logger *slog.Logger) operations.Backend {
	if rdb != nil {
		return operations.NewRedis(rdb, operations.RedisOptions{Prefix: cfg.RedisPrefix, ClaimTimeout: cfg.ClaimTimeout, Retention: cfg.OperationRetention,
			Replication: replicationWaiter(cfg, logger)})
	}
	return operations.NewMemory(operations.MemoryOptions{ClaimTimeout: cfg.ClaimTimeout, Retention: cfg.OperationRetention})
}

// operationAuditor appends the outcome event of an operation when it ends
// (its creation appended the started one): counts only, so an operation
// over thousands of workspaces stays one small event.
func operationAuditor(a store.Audit, logger *slog.Logger) func(context.Context, *operations.Record, *operations.Status) {
	return func(ctx context.Context, rec *operations.Record, st *operations.Status) {
		code := "OK"
		if st.CancelRequested {
			code = "Canceled"
		}
		e := &store.AuditEvent{Time: st.EndTime, Principal: rec.Creator, Role: rec.CreatorRole, Method: rec.Method,
			RequestID: rec.RequestID, Code: code, Phase: store.AuditPhaseFinished, Operation: operations.Name(rec.ID),
			Succeeded: int(st.Done - st.Outcomes["ALREADY_DONE"] - st.Outcomes["SKIPPED"]), Failed: int(st.Failed),
			AlreadyDone: int(st.Outcomes["ALREADY_DONE"])}
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := a.Append(actx, e); err != nil {
			logger.ErrorContext(ctx, "audit event of an operation's end lost", "operation", e.Operation, "error", err.Error())
		}
	}
}

// consumerName names this replica in the operations queue.
func consumerName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), operations.NewID()[:6])
}

// newLimiter returns the per-workspace rate budget: on Redis when there is
// one (shared by every replica), in memory otherwise.
func newLimiter(cfg *config.Config, rdb redis.UniversalClient, reg prometheus.Registerer) (ratelimit.Limiter, error) {
	var l ratelimit.Limiter
	var err error
	if rdb != nil {
		l, err = redislimit.New(rdb, cfg.RateLimits(), redislimit.Options{Prefix: cfg.RedisPrefix})
	} else {
		l, err = memlimit.New(cfg.RateLimits(), memlimit.Options{})
	}
	if err != nil {
		return nil, err
	}
	m, err := ratelimit.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	return ratelimit.Instrument(l, m), nil
}

// newFailureCounter counts failed authentications in Redis when there is
// one (every replica throttles the same attacker), in memory otherwise.
func newFailureCounter(cfg *config.Config, rdb redis.UniversalClient) auth.FailureCounter {
	if rdb != nil {
		return auth.NewRedisFailures(rdb, auth.RedisFailureOptions{Prefix: cfg.RedisPrefix})
	}
	return auth.NewMemoryFailures(auth.FailureLimits{}, 0)
}

// newIdempotencyStore keeps request_id outcomes in Redis when there is one
// (a retry may reach any replica), in memory otherwise.
func newIdempotencyStore(cfg *config.Config, rdb redis.UniversalClient, logger *slog.Logger) (idempotency.Store, error) {
	if rdb != nil {
		return idempotency.NewRedisStore(rdb, idempotency.RedisOptions{Prefix: cfg.RedisPrefix, Replication: replicationWaiter(cfg, logger)})
	}
	return idempotency.NewMemoryStore(nil), nil
}

// newMemberLocker returns the per-workspace member lock: on Redis when there
// is one (held across every replica), in memory otherwise.
func newMemberLocker(cfg *config.Config, rdb redis.UniversalClient) (memberguard.Locker, error) {
	if rdb != nil {
		return memberguard.NewRedisLocker(rdb, memberguard.RedisOptions{Prefix: cfg.RedisPrefix})
	}
	return memberguard.NewMemoryLocker(), nil
}

// withAuditLog also writes every audit event as a JSON line to
// --audit-log-file ("-": stdout), opened for appending so a rotated file
// (logrotate's copytruncate) keeps working.
func withAuditLog(cfg *config.Config, st store.Store, logger *slog.Logger) (store.Store, error) {
	var w io.Writer
	switch cfg.AuditLogFile {
	case "":
		return st, nil
	case "-":
		w = struct{ io.Writer }{os.Stdout} // not an io.Closer: stdout stays open
	default:
		f, err := os.OpenFile(cfg.AuditLogFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return st, fmt.Errorf("--audit-log-file: %w", err)
		}
		w = f
	}
	return store.WithAuditLog(st, w, func(err error) { logger.Error("audit event not written to --audit-log-file", "error", err.Error()) }), nil
}

// storeOpTimeout bounds each round trip of the Redis store, the audit
// trail's appends included. With the limiter's 100 ms per decision,
// ratelimit.MaxUnavailableWait and the request_id store's 500 ms it keeps a
// call's fail-closed time with Redis gone within the README's bound (1.1 s).
const storeOpTimeout = 500 * time.Millisecond

func openStore(ctx context.Context, cfg *config.Config, logger *slog.Logger) (store.Store, redis.UniversalClient, error) {
	if cfg.RedisURL == "" {
		logger.Warn("EMBEDDED IN-MEMORY BACKEND: all state (workspaces, credentials) is lost when agencyd exits; set --redis-url for production")
		return memory.NewWithOptions(memory.Options{AuditRetention: cfg.AuditRetention, AuditMaxEvents: int(cfg.AuditMaxEvents)}), nil, nil
	}
	rdb, addr, err := newRedisClient(cfg.RedisURL) // a single server or a Sentinel deployment
	if err != nil {
		return nil, nil, err
	}
	st := redisstore.New(rdb, redisstore.Options{Prefix: cfg.RedisPrefix, AuditRetention: cfg.AuditRetention, OpTimeout: storeOpTimeout,
		AuditMaxEvents: cfg.AuditMaxEvents})
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		_ = st.Close()
		return nil, nil, fmt.Errorf("redis at %s is not reachable: %w", addr, errors.Unwrap(err))
	}
	logger.Info("using Redis backend", "addr", addr, "db", redisDB(rdb), "prefix", cfg.RedisPrefix)
	return st, rdb, nil
}

// loadKeyring returns the keyring and the master keys it holds, newest
// first.
func loadKeyring(cfg *config.Config, logger *slog.Logger) (*vault.Keyring, [][]byte, error) {
	var src string
	switch {
	case cfg.MasterKey != "":
		src = cfg.MasterKey
	case cfg.MasterKeyFile != "":
		data, err := os.ReadFile(cfg.MasterKeyFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--master-key-file: %w", err)
		}
		src = string(data)
	case cfg.RedisURL != "":
		return nil, nil, errors.New("a master key is required with the Redis backend: set AGENCY_MASTER_KEY or --master-key-file (generate one with: head -c32 /dev/urandom | base64)")
	default:
		logger.Warn("no master key configured: using a random one; sealed credentials cannot be opened after restart")
		key, err := vault.GenerateKey()
		if err != nil {
			return nil, nil, err
		}
		kr, err := vault.NewKeyring(key)
		return kr, [][]byte{key}, err
	}
	keys, err := vault.ParseKeys(src)
	if err != nil {
		return nil, nil, fmt.Errorf("master key: %w", err)
	}
	kr, err := vault.NewKeyring(keys...)
	if err != nil {
		return nil, nil, fmt.Errorf("master key: %w", err)
	}
	logger.Info("master keys loaded", "current_key_id", kr.CurrentKeyID(), "keys", len(keys))
	return kr, keys, nil
}

// bootstrapToken makes sure the deployment has its bootstrap admin token,
// "tokens/bootstrap": AGENCY_BOOTSTRAP_TOKEN when set, else one generated on
// the deployment's first start and printed once. It works until revoked.
func bootstrapToken(ctx context.Context, cfg *config.Config, ts store.Tokens, logger *slog.Logger, console io.Writer) error {
	token := cfg.BootstrapToken
	if token == "" {
		var err error
		if token, err = auth.GenerateToken(); err != nil {
			return err
		}
	}
	now := time.Now().UTC()
	err := ts.Create(ctx, &store.Token{ID: bootstrapID, Hash: auth.HashToken(token), Role: auth.RoleAdmin,
		Description: "bootstrap admin token", Creator: "agencyd", CreateTime: now})
	switch {
	case err == nil && cfg.BootstrapToken == "":
		fmt.Fprintf(console, "\n%s\n  bootstrap admin token (shown once, keep it safe):\n\n    %s\n\n%s\n",
			strings.Repeat("=", 72), token, strings.Repeat("=", 72))
		logger.Warn("generated a bootstrap admin token and printed it once to stderr")
		return nil
	case err == nil:
		logger.Info("bootstrap admin token taken from AGENCY_BOOTSTRAP_TOKEN")
		return nil
	case !errors.Is(err, store.ErrAlreadyExists):
		return fmt.Errorf("bootstrap token: %w", err)
	case cfg.BootstrapToken == "":
		logger.Info("bootstrap admin token was issued at an earlier start; set AGENCY_BOOTSTRAP_TOKEN to use a known one")
		return nil
	}
	// AGENCY_BOOTSTRAP_TOKEN names the bootstrap token from now on, unless it
	// was revoked: a revocation stands.
	t, err := ts.Update(ctx, bootstrapID, func(t *store.Token) error {
		if t.RevokeTime.IsZero() {
			t.Hash = auth.HashToken(token)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bootstrap token: %w", err)
	}
	if !t.RevokeTime.IsZero() {
		logger.Warn("the bootstrap token was revoked; AGENCY_BOOTSTRAP_TOKEN is ignored")
	} else {
		logger.Info("bootstrap admin token taken from AGENCY_BOOTSTRAP_TOKEN")
	}
	return nil
}

const bootstrapID = "bootstrap"

// loadClientIdentities reads the mTLS identity map.
// newSCIM serves /scim/v2, its state in the deployment's backend; with
// --scim-mapping it provisions workspaces through FanoutService's
// operations.
func newSCIM(cfg *config.Config, st scim.Store, tokens store.Tokens, workspaces store.Workspaces, authn *auth.Authenticator, fan scim.Fanout, ops *operations.Manager,
	locker memberguard.Locker, audit store.Audit, reg prometheus.Registerer, logger *slog.Logger) (*scim.Handler, error) {
	opts := scim.Options{Store: st, Tokens: tokens, Workspaces: workspaces, Authn: authn, Logger: logger, Audit: audit, Registry: reg, Locker: locker,
		MaxRemovalsPerHour: cfg.SCIMMaxRemovalsPerHour, ReconcileInterval: cfg.SCIMReconcileInterval}
	if cfg.SCIMMapping != "" {
		m, err := scim.LoadMapping(cfg.SCIMMapping)
		if err != nil {
			return nil, err
		}
		opts.Mapping, opts.Fanout, opts.Operations = m, fan, ops
	}
	return scim.New(opts)
}

// newSCIMStore keeps SCIM's users and groups in the deployment's backend.
func newSCIMStore(cfg *config.Config, rdb redis.UniversalClient) scim.Store {
	if rdb != nil {
		return scim.NewRedis(rdb, cfg.RedisPrefix)
	}
	return scim.NewMemory()
}

// newJWTVerifier verifies OIDC callers' tokens; nil without --oidc-issuer.
func newJWTVerifier(cfg *config.Config) (auth.JWTVerifier, error) {
	if len(cfg.OIDCIssuers) == 0 {
		return nil, nil
	}
	mapping, err := oidc.LoadMapping(cfg.OIDCMapping)
	if err != nil {
		return nil, err
	}
	return oidc.New(oidc.Options{Issuers: cfg.OIDCIssuers, Audience: cfg.OIDCAudience, Mapping: mapping})
}

func loadClientIdentities(path string) (map[string]auth.CertIdentity, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--client-identities: %w", err)
	}
	var m map[string]auth.CertIdentity
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("--client-identities: %w", err)
	}
	return m, nil
}
