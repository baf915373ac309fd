package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// healthcheck is `agencyd healthcheck`: it GETs /readyz of the agencyd on
// this host and exits 0 when it is ready, 1 otherwise, so a container
// image without a shell or curl (distroless) can have a HEALTHCHECK. It
// reads the server's own AGENCY_HTTP_ADDR and AGENCY_TLS_CERT, so it probes
// where the server listens; a wildcard host (0.0.0.0, ::, empty) means
// loopback. Over TLS it does not verify the certificate: it only asks this
// host's server whether it is ready and sends nothing secret.
func healthcheck(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("agencyd healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http-addr", envOr(getenv, "AGENCY_HTTP_ADDR", "127.0.0.1:8080"), "agencyd's REST address (default $AGENCY_HTTP_ADDR)")
	useTLS := fs.Bool("tls", getenv("AGENCY_TLS_CERT") != "", "use https (default: when $AGENCY_TLS_CERT is set)")
	path := fs.String("path", "/readyz", "path to GET: /readyz (ready to serve) or /healthz (alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	host, port, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "agencyd healthcheck: --http-addr %q: %v\n", *addr, err)
		return 2
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "http"
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if *useTLS {
		scheme = "https"
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // a loopback readiness probe
	}
	url := scheme + "://" + net.JoinHostPort(host, port) + *path
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "agencyd healthcheck: %v\n", err)
		return 2
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "agencyd healthcheck: %s: %v\n", url, err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "agencyd healthcheck: %s: HTTP %d %s", url, resp.StatusCode, body)
		return 1
	}
	fmt.Fprintf(stdout, "%s", body)
	return 0
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}
