package server

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles configures optional TLS and mTLS for both listeners.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, enables client certificates (mTLS): a
	// certificate signed by this CA authenticates its holder, whose identity
	// the configuration maps to a role. Bearer tokens keep working.
	ClientCAFile string
}

// Enabled reports whether TLS is configured.
func (t TLSFiles) Enabled() bool { return t.CertFile != "" }

// serverTLS builds the listeners' TLS configuration.
func (t TLSFiles) serverTLS() (*tls.Config, error) {
	if t.CertFile == "" || t.KeyFile == "" {
		return nil, errors.New("server: TLS needs both a certificate and a key")
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: TLS key pair: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("server: client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("server: client CA file holds no PEM certificate")
		}
		cfg.ClientCAs = pool
		// A certificate is optional (bearer tokens also authenticate), but
		// one that is presented must verify.
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// selfDialTLS is how the gateway dials our own gRPC port: it trusts exactly
// our own leaf certificate, whoever issued it.
func selfDialTLS(server *tls.Config) *tls.Config {
	leaf := server.Certificates[0].Certificate[0]
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !bytes.Equal(raw[0], leaf) {
				return errors.New("gateway: gRPC port presented a certificate that is not ours")
			}
			return nil
		},
	}
}

// certIdentity names a verified client certificate: its Common Name, else
// its first DNS or URI SAN.
func certIdentity(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return ""
}
