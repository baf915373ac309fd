package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// defaultAddr is where `make run` serves gRPC.
const defaultAddr = "127.0.0.1:9090"

// endpoint is where and how to reach agencyd, resolved from flags, then
// the environment, then the config file's context.
type endpoint struct {
	addr          string // host:port
	tls           bool
	ca, cert, key string
	token         string
	source        string // where addr came from, for messages
	httpBase      string // agencyd's HTTP base URL, "http(s)://host:port"
}

// resolveEndpoint applies the precedence flag > environment > context >
// default for each setting.
func (c *cli) resolveEndpoint() (*endpoint, error) {
	if c.ep != nil {
		return c.ep, nil
	}
	ctxEntry, err := c.currentContext()
	if err != nil {
		return nil, err
	}
	if ctxEntry == nil {
		ctxEntry = &contextEntry{}
	}
	ep := &endpoint{}
	raw, source := first(
		kv{c.addr, "--addr"}, kv{c.env.Getenv("AGENCY_ADDR"), "AGENCY_ADDR"},
		kv{ctxEntry.Addr, "context"}, kv{defaultAddr, "default"})
	ep.source = source
	ep.ca, _ = first(kv{c.caFile, ""}, kv{ctxEntry.CA, ""})
	ep.cert, _ = first(kv{c.certFile, ""}, kv{ctxEntry.Cert, ""})
	ep.key, _ = first(kv{c.key, ""}, kv{ctxEntry.Key, ""})
	if (ep.cert == "") != (ep.key == "") {
		return nil, usageErr("--cert and --key go together")
	}
	switch {
	case strings.HasPrefix(raw, "https://"):
		ep.tls, raw = true, strings.TrimPrefix(raw, "https://")
	case strings.HasPrefix(raw, "http://"):
		raw = strings.TrimPrefix(raw, "http://")
	}
	raw = strings.TrimSuffix(raw, "/")
	if ep.ca != "" || ep.cert != "" {
		ep.tls = true
	}
	if _, _, err := net.SplitHostPort(raw); err != nil {
		if !ep.tls || strings.Contains(raw, "/") {
			return nil, usageErr(fmt.Sprintf("address %q (from %s): want host:port or https://host[:port]", raw, source))
		}
		raw = net.JoinHostPort(raw, "443")
	}
	ep.addr = raw
	if ep.httpBase, err = httpBase(ep, ctxEntry, c.httpAddr, c.env.Getenv("AGENCY_HTTP_ADDR")); err != nil {
		return nil, err
	}
	tok, err := c.readToken(ctxEntry)
	if err != nil {
		return nil, err
	}
	ep.token = tok
	if !ep.tls && !isLoopback(ep.addr) {
		c.out.info("agencyctl: warning: plaintext connection to %s: the token and API keys travel unencrypted (use https:// or --ca)", ep.addr)
	}
	c.ep = ep
	return ep, nil
}

// defaultHTTPPort is agencyd's default --http-addr port.
const defaultHTTPPort = "8080"

// httpBase resolves agencyd's HTTP address (--http-addr, AGENCY_HTTP_ADDR,
// the context's http-addr): host:port (https when TLS is on for gRPC),
// http://host:port or https://host[:port]. Unset, it is the gRPC host on
// port 8080, agencyd's default.
func httpBase(ep *endpoint, ctxEntry *contextEntry, flag, env string) (string, error) {
	raw, source := first(kv{flag, "--http-addr"}, kv{env, "AGENCY_HTTP_ADDR"}, kv{ctxEntry.HTTPAddr, "context http-addr"})
	scheme := "http"
	if ep.tls {
		scheme = "https"
	}
	if raw == "" {
		host, _, _ := net.SplitHostPort(ep.addr)
		return scheme + "://" + net.JoinHostPort(host, defaultHTTPPort), nil
	}
	switch {
	case strings.HasPrefix(raw, "https://"):
		scheme, raw = "https", strings.TrimPrefix(raw, "https://")
	case strings.HasPrefix(raw, "http://"):
		scheme, raw = "http", strings.TrimPrefix(raw, "http://")
	}
	raw = strings.TrimSuffix(raw, "/")
	if strings.Contains(raw, "/") || raw == "" {
		return "", usageErr(fmt.Sprintf("HTTP address %q (from %s): want host:port or http(s)://host[:port]", raw, source))
	}
	if _, _, err := net.SplitHostPort(raw); err != nil {
		port := "80"
		if scheme == "https" {
			port = "443"
		}
		raw = net.JoinHostPort(raw, port)
	}
	return scheme + "://" + raw, nil
}

type kv struct{ v, source string }

// first returns the first non-empty value and where it came from.
func first(vs ...kv) (string, string) {
	for _, v := range vs {
		if v.v != "" {
			return v.v, v.source
		}
	}
	return "", ""
}

// readToken picks the token: --token, --token-file, AGENCY_TOKEN, then the
// context's token or token file, then the token `agencyctl login` cached.
// A file's content never reaches a message.
func (c *cli) readToken(ctxEntry *contextEntry) (string, error) {
	if c.token != "" {
		return c.token, nil
	}
	file := c.tokenFile
	if file == "" {
		if t := c.env.Getenv("AGENCY_TOKEN"); t != "" {
			return strings.TrimSpace(t), nil
		}
		if ctxEntry.Token != "" {
			return ctxEntry.Token, nil
		}
		file = ctxEntry.TokenFile
	}
	if file == "" {
		return c.loginToken()
	}
	b, err := os.ReadFile(expandHome(file))
	if err != nil {
		return "", usageErr(fmt.Sprintf("token file: %v", pathErr(err)))
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", usageErr(fmt.Sprintf("token file %s is empty", file))
	}
	return t, nil
}

// pathErr drops the operation from *os.PathError ("open x: no such file").
func pathErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func expandHome(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return home + "/" + rest
		}
	}
	return p
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// client dials agencyd once per invocation (lazily: commands that fail
// their own checks first never connect).
func (c *cli) client() (*grpc.ClientConn, error) {
	if c.conn != nil {
		return c.conn, nil
	}
	ep, err := c.resolveEndpoint()
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if ep.tls {
		cfg, err := tlsConfig(ep)
		if err != nil {
			return nil, err
		}
		creds = credentials.NewTLS(cfg)
	}
	token := ep.token
	auth := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	conn, err := grpc.NewClient("passthrough:///"+ep.addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithUnaryInterceptor(auth),
		grpc.WithUserAgent("agencyctl"),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		return nil, usageErr(fmt.Sprintf("address %s: %v", ep.addr, err))
	}
	c.conn = conn
	return conn, nil
}

func tlsConfig(ep *endpoint) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(ep.addr)
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if ep.ca != "" {
		pem, err := os.ReadFile(expandHome(ep.ca))
		if err != nil {
			return nil, usageErr("--ca: " + pathErr(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErr(fmt.Sprintf("--ca %s: no PEM certificate in it", ep.ca))
		}
		cfg.RootCAs = pool
	}
	if ep.cert != "" {
		pair, err := tls.LoadX509KeyPair(expandHome(ep.cert), expandHome(ep.key))
		if err != nil {
			return nil, usageErr(fmt.Sprintf("--cert/--key: %v", err))
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// call returns a context bounded by --timeout for one call to agencyd.
func (c *cli) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// pollInterval is how often a followed operation is read.
const pollInterval = 300 * time.Millisecond
