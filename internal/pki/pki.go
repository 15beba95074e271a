// Package pki owns the server's local certificate authority and its TLS
// server certificate. Private keys are kept only in the store (which the
// barrier encrypts); the CA certificate, which clients must trust, is the
// only thing written in the clear. It owns the storage prefix "pki/" and
// imports storage (same level), secret and errkind.
package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"slices"
	"time"

	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

const (
	keyCA     = "pki/ca"
	keyServer = "pki/server"

	caLife     = 10 * 365 * 24 * time.Hour
	serverLife = 397 * 24 * time.Hour // the longest life browsers accept
	// renewBefore is how long before expiry a server certificate is replaced.
	renewBefore = 30 * 24 * time.Hour
)

// stored is a certificate with its private key (PKCS#8 DER).
type stored struct {
	CertDER []byte `json:"cert"`
	KeyDER  []byte `json:"key"`
}

// Bundle is the CA certificate and the current server certificate.
type Bundle struct {
	CA     *x509.Certificate
	CAPEM  []byte
	Server tls.Certificate
}

// Options says which names the server certificate must carry.
type Options struct {
	// DNSNames and IPs are the server certificate's subject alternative names.
	DNSNames []string
	IPs      []net.IP
	Now      func() time.Time
	Rand     io.Reader
}

// LoadOrCreate returns the CA and a server certificate for o's names,
// creating the CA on first use and a new server certificate when the names
// changed or the current one is close to expiry.
func LoadOrCreate(ctx context.Context, st storage.Backend, o Options) (Bundle, error) {
	now := o.Now()
	var b Bundle
	err := st.Update(ctx, func(tx storage.Tx) error {
		ca, caKey, err := loadOrCreateCA(tx, now, o.Rand)
		if err != nil {
			return err
		}
		defer wipeKey(caKey)
		b.CA = ca
		b.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
		srv, err := load(tx, keyServer)
		if err == nil && fits(srv, ca, o, now) {
			b.Server, err = tlsCert(srv, ca)
			return err
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		srv, err = issueServer(ca, caKey, o, now)
		if err != nil {
			return err
		}
		if err := save(tx, keyServer, srv); err != nil {
			return err
		}
		b.Server, err = tlsCert(srv, ca)
		return err
	})
	return b, err
}

func load(tx storage.Tx, key string) (stored, error) {
	var s stored
	e, err := tx.Get(key)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(e.Value, &s); err != nil {
		return s, fmt.Errorf("pki: decoding %s: %w", key, err)
	}
	return s, nil
}

func save(tx storage.Tx, key string, s stored) error {
	v, err := json.Marshal(s)
	if err != nil {
		return err
	}
	defer secret.Wipe(v)
	_, err = tx.Put(key, v, storage.AnyVersion)
	return err
}

func loadOrCreateCA(tx storage.Tx, now time.Time, r io.Reader) (*x509.Certificate, crypto.Signer, error) {
	s, err := load(tx, keyCA)
	if err == nil {
		defer secret.Wipe(s.KeyDER)
		cert, err := x509.ParseCertificate(s.CertDER)
		if err != nil {
			return nil, nil, fmt.Errorf("pki: stored CA certificate is corrupt: %w", err)
		}
		k, err := x509.ParsePKCS8PrivateKey(s.KeyDER)
		if err != nil {
			return nil, nil, errors.New("pki: stored CA key is corrupt")
		}
		return cert, k.(crypto.Signer), nil
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), r)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(r),
		Subject:               pkix.Name{CommonName: "customerkey local CA", Organization: []string{"customerkey"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLife),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(r, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: creating CA certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	defer secret.Wipe(kder)
	if err := save(tx, keyCA, stored{CertDER: der, KeyDER: kder}); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func serial(r io.Reader) *big.Int {
	n, err := randInt(r)
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func randInt(r io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

// fits reports whether srv was issued by ca for exactly o's names and is
// not close to expiry.
func fits(srv stored, ca *x509.Certificate, o Options, now time.Time) bool {
	c, err := x509.ParseCertificate(srv.CertDER)
	if err != nil || c.CheckSignatureFrom(ca) != nil || now.Add(renewBefore).After(c.NotAfter) {
		return false
	}
	if !slices.Equal(sortedCopy(c.DNSNames), sortedCopy(o.DNSNames)) || len(c.IPAddresses) != len(o.IPs) {
		return false
	}
	for _, ip := range o.IPs {
		if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
			return false
		}
	}
	return true
}

func sortedCopy(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

func issueServer(ca *x509.Certificate, caKey crypto.Signer, o Options, now time.Time) (stored, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), o.Rand)
	if err != nil {
		return stored{}, fmt.Errorf("pki: generating server key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(o.Rand),
		Subject:      pkix.Name{CommonName: firstOr(o.DNSNames, "customerkey"), Organization: []string{"customerkey"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(serverLife),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     o.DNSNames,
		IPAddresses:  o.IPs,
	}
	der, err := x509.CreateCertificate(o.Rand, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return stored{}, fmt.Errorf("pki: issuing server certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return stored{}, err
	}
	return stored{CertDER: der, KeyDER: kder}, nil
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func tlsCert(s stored, ca *x509.Certificate) (tls.Certificate, error) {
	leaf, err := x509.ParseCertificate(s.CertDER)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: stored server certificate is corrupt: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(s.KeyDER)
	if err != nil {
		return tls.Certificate{}, errors.New("pki: stored server key is corrupt")
	}
	return tls.Certificate{Certificate: [][]byte{s.CertDER, ca.Raw}, PrivateKey: k, Leaf: leaf}, nil
}

// wipeKey clears what Go lets us clear of an ECDSA key.
func wipeKey(k crypto.Signer) {
	if ec, ok := k.(*ecdsa.PrivateKey); ok && ec != nil && ec.D != nil {
		ec.D.SetInt64(0)
	}
}
