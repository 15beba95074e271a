package identity_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net/url"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func sha256Sum(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

func unescape(t *testing.T, s string) string {
	t.Helper()
	v, err := url.QueryUnescape(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// selfSigned makes a certificate for client assertions.
func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "workload"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// makeAssertion builds a client assertion as MSAL does: the thumbprint in
// standard base64 with padding, under the header name given.
func makeAssertion(t *testing.T, key *rsa.PrivateKey, der []byte, alg jose.SignatureAlgorithm, thumbHeader, clientID, aud string, nbf, exp time.Time, jti string) string {
	t.Helper()
	var tp []byte
	if thumbHeader == "x5t" {
		s := sha1.Sum(der)
		tp = s[:]
	} else {
		tp = sha256Sum(der)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey(thumbHeader), base64.StdEncoding.EncodeToString(tp))
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud},
		NotBefore: jwt.NewNumericDate(nbf), Expiry: jwt.NewNumericDate(exp), ID: jti}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
