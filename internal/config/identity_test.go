package config

import (
	"io"
	"slices"
	"testing"
)

func TestOIDCFlags(t *testing.T) {
	c, err := Load([]string{"--oidc-issuer", "https://accounts.google.com", "--oidc-issuer", "https://a.example, https://b.example",
		"--oidc-audience", "client-1", "--oidc-mapping", "/etc/agencyd/oidc.yaml"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"https://accounts.google.com", "https://a.example", "https://b.example"}; !slices.Equal(c.OIDCIssuers, want) {
		t.Fatalf("issuers %q, want %q", c.OIDCIssuers, want)
	}
	c, err = Load(nil, env(map[string]string{"AGENCY_OIDC_ISSUER": "https://a.example,http://127.0.0.1:5556",
		"AGENCY_OIDC_AUDIENCE": "x", "AGENCY_OIDC_MAPPING": "m.yaml"}), io.Discard)
	if err != nil || len(c.OIDCIssuers) != 2 {
		t.Fatalf("from the environment: %v %+v", err, c)
	}
	for _, bad := range [][]string{
		{"--oidc-issuer", "https://a.example"}, // no audience, no mapping
		{"--oidc-audience", "x", "--oidc-mapping", "m.yaml"},
		{"--oidc-issuer", "http://idp.example", "--oidc-audience", "x", "--oidc-mapping", "m.yaml"}, // http off loopback
		{"--oidc-issuer", "not a url", "--oidc-audience", "x", "--oidc-mapping", "m.yaml"},
	} {
		if _, err := Load(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestSCIMFlags(t *testing.T) {
	c, err := Load(nil, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.SCIMMapping != "" || c.SCIMMaxRemovalsPerHour != 500 || c.SCIMReconcileInterval.Minutes() != 5 {
		t.Fatalf("defaults %+v", c)
	}
	c, err = Load([]string{"--scim-mapping", "scim.yaml", "--scim-max-removals-per-hour", "20"}, env(map[string]string{"AGENCY_SCIM_RECONCILE_INTERVAL": "30s"}), io.Discard)
	if err != nil || c.SCIMMapping != "scim.yaml" || c.SCIMMaxRemovalsPerHour != 20 || c.SCIMReconcileInterval.Seconds() != 30 {
		t.Fatalf("%v %+v", err, c)
	}
	for _, bad := range [][]string{{"--scim-max-removals-per-hour", "0"}, {"--scim-reconcile-interval", "10ms"}} {
		if _, err := Load(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
