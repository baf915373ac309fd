package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	agencyv1 "github.com/agencyplane/agencyplane/gen/agency/v1"
	"github.com/agencyplane/agencyplane/internal/config"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T) *testCA {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, cn string, server bool) ([]byte, []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMutualTLS: a client certificate's identity maps to a role and scope
// over gRPC and over REST; an unmapped one is refused; tokens still work.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newCA(t)
	srvCert, srvKey := ca.issue(t, "agencyd", true)
	ids := writeFile(t, dir, "ids.json", []byte(`{"svc.reporting": {"role": "viewer", "scope": "team=west"}}`))
	e := startEnvWith(t, "", 0, func(c *config.Config) {
		c.TLSCert = writeFile(t, dir, "srv.pem", srvCert)
		c.TLSKey = writeFile(t, dir, "srv.key", srvKey)
		c.ClientCA = writeFile(t, dir, "ca.pem", ca.pem)
		c.ClientIdentities = ids
	})
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	clientTLS := func(cn string) *tls.Config {
		cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cn != "" {
			c, k := ca.issue(t, cn, false)
			pair, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		return cfg
	}
	// Seed two workspaces with the bootstrap token over TLS.
	admin, err := grpc.NewClient(e.app.Server.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(""))))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, team := range []string{"west", "east"} {
		_, key := e.sim.CreateWorkspace(team)
		if err := (grpcInvoker{conn: admin, token: testToken}).Invoke(context.Background(), "agency.v1.WorkspaceService/CreateWorkspace",
			&agencyv1.CreateWorkspaceRequest{WorkspaceId: team, Workspace: &agencyv1.Workspace{DisplayName: team, ApiKey: &key, Labels: map[string]string{"team": team}}}, &agencyv1.Workspace{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		cn   string
		want codes.Code
	}{{"svc.reporting", codes.OK}, {"svc.unknown", codes.PermissionDenied}, {"", codes.Unauthenticated}} {
		t.Run("grpc/"+tc.cn, func(t *testing.T) {
			conn, err := grpc.NewClient(e.app.Server.GRPCAddr(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(tc.cn))))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			checkMTLS(t, grpcInvoker{conn: conn}, tc.want)
		})
		t.Run("rest/"+tc.cn, func(t *testing.T) {
			api := e.rest("")
			api.client = &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS(tc.cn)}}
			checkMTLS(t, restInvoker{api: api}, tc.want)
		})
	}
}

func checkMTLS(t *testing.T, inv invoker, want codes.Code) {
	var list agencyv1.ListWorkspacesResponse
	err := inv.Invoke(context.Background(), "agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &list)
	if want != codes.OK {
		wantCode(t, err, want)
		return
	}
	if err != nil || len(list.GetWorkspaces()) != 1 || list.GetWorkspaces()[0].GetName() != "workspaces/west" {
		t.Fatalf("viewer scoped to team=west: %v %v", list.GetWorkspaces(), err)
	}
	// The viewer role applies: no writes.
	err = inv.Invoke(context.Background(), "agency.v1.TagService/CreateTag", &agencyv1.CreateTagRequest{Parent: "workspaces/west", Tag: &agencyv1.Tag{Label: "x"}}, &agencyv1.Tag{})
	wantCode(t, err, codes.PermissionDenied)
	// And the scope: east does not exist for it.
	err = inv.Invoke(context.Background(), "agency.v1.WorkspaceService/GetWorkspace", &agencyv1.GetWorkspaceRequest{Name: "workspaces/east"}, &agencyv1.Workspace{})
	wantCode(t, err, codes.NotFound)
}

// TestGatewayMetadataCannotBeForged: a client cannot claim a certificate
// identity (or source address) through the metadata the gateway uses.
func TestGatewayMetadataCannotBeForged(t *testing.T) {
	dir := t.TempDir()
	ids := writeFile(t, dir, "ids.json", []byte(`{"svc.reporting": {"role": "admin", "scope": ""}}`))
	e := startEnvWith(t, "", 0, func(c *config.Config) { c.ClientIdentities = ids })
	ctx := context.Background()
	// Over REST, as headers the gateway would forward.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.httpBase+"/v1/workspaces", nil)
	req.Header.Set("Grpc-Metadata-X-Agency-Client-Cert", "svc.reporting")
	req.Header.Set("Grpc-Metadata-X-Agency-Gateway", "guess")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged headers over REST: HTTP %d", resp.StatusCode)
	}
	// Over gRPC, as metadata.
	md := metadata.Pairs("x-agency-client-cert", "svc.reporting", "x-agency-gateway", "guess")
	err = e.conn.Invoke(metadata.NewOutgoingContext(ctx, md), "/agency.v1.WorkspaceService/ListWorkspaces", &agencyv1.ListWorkspacesRequest{}, &agencyv1.ListWorkspacesResponse{})
	wantCode(t, err, codes.Unauthenticated)
}
