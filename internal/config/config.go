// Package config reads agencyd's configuration from flags, each of which
// also reads an AGENCY_* environment variable (the flag wins when both are
// set). Secrets are read only from the environment or files, never flags,
// so they stay out of process listings.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/agencyplane/agencyplane/internal/fanout"
	"github.com/agencyplane/agencyplane/internal/identity/oidc"
	"github.com/agencyplane/agencyplane/internal/ratelimit"
	"github.com/agencyplane/agencyplane/internal/service/fanoutsvc"
)

// Config is agencyd's configuration.
type Config struct {
	GRPCAddr     string
	HTTPAddr     string
	InstantlyURL string
	RedisURL     string
	RedisPrefix  string
	// RedisWaitReplicas is how many replicas must acknowledge the writes a
	// failover must not lose before they answer (-1: 1 through Sentinel,
	// else 0); RedisWaitTimeout bounds that wait.
	RedisWaitReplicas int
	RedisWaitTimeout  time.Duration
	MasterKeyFile     string
	LogLevel          string
	LogFormat         string
	ShutdownTimeout   time.Duration
	MaxRequestBytes   int64
	TLSCert           string
	TLSKey            string
	ClientCA          string
	ClientIdentities  string
	TrustedProxies    string
	AuditRetention    time.Duration
	// AuditMaxEvents bounds the audit trail by size too (0: by age only).
	AuditMaxEvents int64
	// AuditLogFile also writes every audit event as a JSON line to this
	// file ("-": stdout), for retention beyond the store's bounds.
	AuditLogFile       string
	RateRPS            int
	RateRPM            int
	RateHeadroom       float64
	FanoutConcurrency  int
	FanoutPerWorkspace int
	MaxInflight        int
	// Durable operations.
	ClaimTimeout       time.Duration
	OperationRetention time.Duration
	MaxOperationItems  int64
	FanoutTimeout      time.Duration
	RequestTimeout     time.Duration
	// OIDC callers: trusted issuers, the audience their tokens must name,
	// and the YAML file mapping claims to roles and scopes.
	OIDCIssuers  []string
	OIDCAudience string
	OIDCMapping  string
	// SCIM provisioning: the group → workspaces mapping file, the hourly
	// removal cap and the reconciliation interval.
	SCIMMapping            string
	SCIMMaxRemovalsPerHour int
	SCIMReconcileInterval  time.Duration
	// Access as code: how long a plan may be applied, and how often the
	// last applied desired state is checked for drift (0 = never).
	PlanTTL           time.Duration
	ReconcileInterval time.Duration
	// Now is the clock of token expiry, failed-authentication windows,
	// plan expiry and drift times (not a flag: tests inject one; nil is
	// time.Now).
	Now func() time.Time
	// ReadinessInterval is how often the store is probed for gRPC health
	// (not a flag: tests shorten it).
	ReadinessInterval time.Duration
	// MetricsPerWorkspace > 0 adds per-workspace upstream metrics for at
	// most that many workspaces (bounded cardinality); 0 = none.
	MetricsPerWorkspace int

	// From the environment only.
	MasterKey      string // AGENCY_MASTER_KEY: base64 keys, comma-separated, newest first
	BootstrapToken string // AGENCY_BOOTSTRAP_TOKEN
}

// EnvName is the environment variable read for a flag.
func EnvName(flagName string) string {
	return "AGENCY_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// WaitReplicas resolves --redis-wait-replicas: -1 means 1 through Sentinel
// (a failover promotes a replica) and 0 on a single server.
func (c *Config) WaitReplicas() int {
	if c.RedisWaitReplicas >= 0 {
		return c.RedisWaitReplicas
	}
	if u, err := url.Parse(c.RedisURL); err == nil && u.Query().Has("master_name") {
		return 1
	}
	return 0
}

// Load parses args (without the program name). getenv is os.Getenv in main
// and a map in tests.
func Load(args []string, getenv func(string) string, usage io.Writer) (*Config, error) {
	// The fan-out engine's and FanoutService's defaults are the flags'
	// defaults of the same settings: each default lives once, in its
	// package's Options.SetDefaults.
	var engineDefaults fanout.Options
	engineDefaults.SetDefaults()
	var fanoutDefaults fanoutsvc.Options
	fanoutDefaults.SetDefaults()
	c := &Config{}
	fs := flag.NewFlagSet("agencyd", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.GRPCAddr, "grpc-addr", "127.0.0.1:9090", "gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:8080", "REST, health, metrics and OpenAPI listen address")
	fs.StringVar(&c.InstantlyURL, "instantly-url", "https://api.instantly.ai", "Instantly API base URL (the simulator's address in tests and demos)")
	fs.StringVar(&c.RedisURL, "redis-url", "", "redis://[user:pass@]host:port/db, or through Sentinel redis://sentinel1:port/db?master_name=NAME&addr=sentinel2:port&addr=…; empty runs the embedded in-memory backend (state is lost on exit)")
	fs.StringVar(&c.RedisPrefix, "redis-prefix", "agency:", "prefix of every Redis key, so deployments can share a Redis")
	fs.IntVar(&c.RedisWaitReplicas, "redis-wait-replicas", -1, "replicas that must acknowledge an operation's creation, each write intent and each stored request_id answer before they answer (Redis WAIT), so a failover cannot lose them; -1: 1 through Sentinel, 0 otherwise")
	fs.DurationVar(&c.RedisWaitTimeout, "redis-wait-timeout", time.Second, "longest wait for --redis-wait-replicas; past it the call goes on with a warning logged")
	fs.StringVar(&c.MasterKeyFile, "master-key-file", "", "file with base64 32-byte master keys, one per line, newest first (or set AGENCY_MASTER_KEY)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight calls may finish on SIGTERM")
	fs.Int64Var(&c.MaxRequestBytes, "max-request-bytes", 1<<20, "largest accepted request body or gRPC message")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "PEM certificate: serve both listeners over TLS")
	fs.StringVar(&c.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.ClientCA, "client-ca", "", "PEM CA of client certificates (mTLS); needs --tls-cert and --client-identities")
	fs.StringVar(&c.ClientIdentities, "client-identities", "", `JSON file mapping client certificate identities (CN or SAN) to {"role": …, "scope": …}`)
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of proxies (load balancers) whose X-Forwarded-For names the client, for failed-authentication throttling; empty = ignore X-Forwarded-For")
	fs.IntVar(&c.RateRPS, "instantly-rps", 100, "Instantly's per-workspace limit per second")
	fs.IntVar(&c.RateRPM, "instantly-rpm", 6000, "Instantly's per-workspace limit per minute")
	fs.Float64Var(&c.RateHeadroom, "rate-headroom", 0.8, "share of each workspace's budget the control plane may use (the agency's other tools share the rest)")
	fs.IntVar(&c.FanoutConcurrency, "fanout-concurrency", engineDefaults.Concurrency, "workspaces one unary fan-out call works on at once (durable operations are not bound by it)")
	fs.IntVar(&c.FanoutPerWorkspace, "fanout-per-workspace", engineDefaults.PerWorkspace, "cap of the items in flight per workspace in one replica; below it the limit follows the workspace's budget × measured upstream latency")
	fs.IntVar(&c.MaxInflight, "max-inflight", engineDefaults.MaxInflight, "fan-out items in flight across all calls and operations of one replica")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", time.Minute, "deadline of calls that come without one (REST calls never do); fan-outs use --fanout-timeout")
	fs.DurationVar(&c.FanoutTimeout, "fanout-timeout", fanoutDefaults.DefaultTimeout, "deadline of fan-out calls that come without one")
	fs.DurationVar(&c.ClaimTimeout, "claim-timeout", 30*time.Second, "how long a replica may go silent on an operation's work before another replica takes it over")
	fs.DurationVar(&c.OperationRetention, "operation-retention", 7*24*time.Hour, "how long operations and their results are kept after they end")
	fs.Int64Var(&c.MaxOperationItems, "max-operation-items", 100_000, "most items (workspaces × people) of one operation")
	fs.DurationVar(&c.PlanTTL, "plan-ttl", time.Hour, "how long a desired-state plan may be applied after it was made")
	fs.DurationVar(&c.ReconcileInterval, "reconcile-interval", 0, "how often one replica plans the last applied desired state and reports drift; 0 = off")
	fs.IntVar(&c.MetricsPerWorkspace, "metrics-per-workspace", 0, "export per-workspace upstream request metrics for at most this many workspaces (the rest count as _other); 0 = none")
	fs.DurationVar(&c.AuditRetention, "audit-retention", 90*24*time.Hour, "how long control-plane audit events are kept")
	fs.Int64Var(&c.AuditMaxEvents, "audit-max-events", 500_000, "most control-plane audit events kept (the oldest go first; ~350 bytes each in Redis); 0 = bounded by --audit-retention only")
	fs.StringVar(&c.AuditLogFile, "audit-log-file", "", `also append every audit event as a JSON line to this file ("-" = stdout), for long retention`)
	fs.Var((*listFlag)(&c.OIDCIssuers), "oidc-issuer", "trusted OpenID Connect issuer URL (repeatable or comma-separated); callers may present its ID tokens as bearer tokens")
	fs.StringVar(&c.OIDCAudience, "oidc-audience", "", "the audience (client id) every OIDC token must name")
	fs.StringVar(&c.OIDCMapping, "oidc-mapping", "", "YAML file mapping OIDC claims to a role and scope (first match wins, no match is denied)")
	fs.StringVar(&c.SCIMMapping, "scim-mapping", "", "YAML file mapping SCIM groups (displayName) to a workspace selector and an Instantly role; empty = SCIM keeps users and groups only")
	fs.IntVar(&c.SCIMMaxRemovalsPerHour, "scim-max-removals-per-hour", 500, "most workspace removals SCIM provisioning starts per hour; the excess is paused until an admin releases it")
	fs.DurationVar(&c.SCIMReconcileInterval, "scim-reconcile-interval", 5*time.Minute, "how often SCIM provisioning reconciles every user")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] {
			return
		}
		if v := getenv(EnvName(f.Name)); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", EnvName(f.Name), err))
			}
		}
	})
	c.MasterKey = getenv("AGENCY_MASTER_KEY")
	c.BootstrapToken = getenv("AGENCY_BOOTSTRAP_TOKEN")
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

// Validate checks the values that flag parsing cannot.
func (c *Config) Validate() error {
	var errs []error
	if c.GRPCAddr == "" || c.HTTPAddr == "" {
		errs = append(errs, errors.New("--grpc-addr and --http-addr must not be empty"))
	}
	if u, err := url.Parse(c.InstantlyURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--instantly-url %q must be http(s)://host[:port]", c.InstantlyURL))
	}
	if c.RedisURL != "" {
		// The URL may hold a password: never echo it.
		u, err := url.Parse(c.RedisURL)
		switch {
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix"):
			errs = append(errs, errors.New("--redis-url must be redis://, rediss:// or unix://"))
		case u.Query().Has("master_name") && (u.Scheme == "unix" || u.Query().Get("master_name") == ""):
			// master_name makes it a Sentinel URL (go-redis's failover form).
			errs = append(errs, errors.New("--redis-url: a Sentinel URL is redis:// or rediss:// with a non-empty master_name"))
		}
	}
	if c.RedisWaitReplicas < -1 || c.RedisWaitTimeout <= 0 {
		errs = append(errs, errors.New("--redis-wait-replicas must be -1 or more and --redis-wait-timeout positive"))
	}
	if _, err := c.SlogLevel(); err != nil {
		errs = append(errs, err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, fmt.Errorf("--log-format %q must be json or text", c.LogFormat))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("--shutdown-timeout must be positive"))
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, errors.New("--max-request-bytes must be at least 1024"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("--tls-cert and --tls-key go together"))
	}
	if c.ClientCA != "" && (c.TLSCert == "" || c.ClientIdentities == "") {
		errs = append(errs, errors.New("--client-ca needs --tls-cert/--tls-key and --client-identities"))
	}
	if _, err := c.TrustedProxyPrefixes(); err != nil {
		errs = append(errs, err)
	}
	if c.RateRPS < 1 || c.RateRPM < 1 {
		errs = append(errs, errors.New("--instantly-rps and --instantly-rpm must be at least 1"))
	}
	if !(c.RateHeadroom > 0 && c.RateHeadroom <= 1) {
		errs = append(errs, errors.New("--rate-headroom must be in (0, 1]"))
	}
	if c.FanoutConcurrency < 1 || c.FanoutConcurrency > 1024 || c.FanoutPerWorkspace < 1 || c.FanoutTimeout <= 0 {
		errs = append(errs, errors.New("--fanout-concurrency must be 1-1024, --fanout-per-workspace at least 1, --fanout-timeout positive"))
	}
	if c.MaxInflight < 1 || c.MaxInflight > 1_000_000 {
		errs = append(errs, errors.New("--max-inflight must be 1-1000000"))
	}
	if c.ClaimTimeout < time.Second || c.OperationRetention < time.Hour || c.MaxOperationItems < 1 {
		errs = append(errs, errors.New("--claim-timeout must be at least 1s, --operation-retention at least 1h, --max-operation-items at least 1"))
	}
	if c.PlanTTL < time.Minute || c.ReconcileInterval < 0 || (c.ReconcileInterval > 0 && c.ReconcileInterval < time.Second) {
		errs = append(errs, errors.New("--plan-ttl must be at least 1m, --reconcile-interval 0 (off) or at least 1s"))
	}
	if c.MetricsPerWorkspace < 0 || c.MetricsPerWorkspace > 10_000 {
		errs = append(errs, errors.New("--metrics-per-workspace must be 0-10000"))
	}
	if c.AuditMaxEvents < 0 {
		errs = append(errs, errors.New("--audit-max-events must not be negative"))
	}
	if c.AuditRetention < time.Hour {
		errs = append(errs, errors.New("--audit-retention must be at least 1h"))
	}
	if len(c.OIDCIssuers) > 0 || c.OIDCAudience != "" || c.OIDCMapping != "" {
		if len(c.OIDCIssuers) == 0 || c.OIDCAudience == "" || c.OIDCMapping == "" {
			errs = append(errs, errors.New("--oidc-issuer, --oidc-audience and --oidc-mapping go together"))
		}
		for _, iss := range c.OIDCIssuers {
			if err := oidc.ValidateIssuer(iss); err != nil {
				errs = append(errs, fmt.Errorf("--oidc-issuer: %w", err))
			}
		}
	}
	if c.SCIMMaxRemovalsPerHour < 1 || c.SCIMReconcileInterval < time.Second {
		errs = append(errs, errors.New("--scim-max-removals-per-hour must be at least 1, --scim-reconcile-interval at least 1s"))
	}
	if c.BootstrapToken != "" && len(c.BootstrapToken) < 16 {
		errs = append(errs, errors.New("AGENCY_BOOTSTRAP_TOKEN must be at least 16 characters"))
	}
	return errors.Join(errs...)
}

// RateLimits is the per-workspace budget the control plane spends: both of
// Instantly's windows scaled by the headroom, burst 1 (never above the
// limit in any sliding window; see internal/ratelimit).
func (c *Config) RateLimits() ratelimit.Limits {
	return ratelimit.Scaled(c.RateRPS, c.RateRPM, c.RateHeadroom)
}

// TrustedProxyPrefixes parses TrustedProxies; a bare address is its own
// one-address prefix.
func (c *Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(c.TrustedProxies, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("--trusted-proxies: %q is not a CIDR or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// SlogLevel is LogLevel as a slog.Level.
func (c *Config) SlogLevel() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return 0, fmt.Errorf("--log-level %q must be debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}
