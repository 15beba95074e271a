package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/keyprovider"
)

// RootKeys builds the provider through which the service reaches customer
// root keys: the official key vault client, over HTTPS to this server's
// own vault hosts (trusting only its CA), as the first-party workload
// applications with tokens from the token service. Each call builds a new
// provider with its own token and client caches; the wiring of the data
// encryption policies builds one and keeps it, and tests call it again to
// act as another node (or as one whose tokens have expired).
func (s *Server) RootKeys() (*keyprovider.Provider, error) {
	pool, err := s.caPool()
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return keyprovider.New(keyprovider.Options{
		Tokens:         s.ids,
		VaultDNSSuffix: s.cfg.VaultDNSSuffix,
		RootCAs:        pool,
		// *.localhost names are the loopback address (RFC 6761), which
		// Go's resolver does not know; other suffixes go to DNS.
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	})
}

// caPool trusts the CA that issued the server's certificate: pki puts it
// last in the chain the server presents.
func (s *Server) caPool() (*x509.CertPool, error) {
	if s.tls == nil || len(s.tls.Certificates) == 0 || len(s.tls.Certificates[0].Certificate) < 2 {
		return nil, errors.New("the server's TLS chain does not include its CA certificate")
	}
	chain := s.tls.Certificates[0].Certificate
	ca, err := x509.ParseCertificate(chain[len(chain)-1])
	if err != nil {
		return nil, fmt.Errorf("parsing the CA certificate of the server's TLS chain: %w", err)
	}
	if !ca.IsCA {
		return nil, errors.New("the last certificate of the server's TLS chain is not a CA certificate")
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, nil
}
