package kcrypto_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
)

// The fixed keys of testdata, written by testdata/gen-vectors.sh with
// OpenSSL. They are test keys and protect nothing. Loading them instead of
// generating keeps the tests fast (RSA-4096 generation takes seconds) and
// lets the known-answer vectors refer to them.

var (
	fixedOnce sync.Once
	fixed     map[string]crypto.Signer // by file name, and "ec-p-256k.pem"
	vecs      vectors
	fixedErr  error
)

type vectors struct {
	Secp256k1D string `json:"secp256k1_d"`
	Decrypt    []struct {
		Key, Alg, PT, CT string
	} `json:"decrypt"`
	Verify []struct {
		Key, Alg, Digest, Sig string
		SigDER                string `json:"sig_der"`
	} `json:"verify"`
}

func loadFixed() {
	fixed = map[string]crypto.Signer{}
	for _, name := range []string{"rsa2048.pem", "rsa3072.pem", "rsa4096.pem", "ec-p-256.pem", "ec-p-384.pem", "ec-p-521.pem"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			fixedErr = err
			return
		}
		blk, _ := pem.Decode(b)
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			fixedErr = err
			return
		}
		fixed[name] = k.(crypto.Signer)
	}
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		fixedErr = err
		return
	}
	if fixedErr = json.Unmarshal(b, &vecs); fixedErr != nil {
		return
	}
	d, err := hex.DecodeString(vecs.Secp256k1D)
	if err != nil || len(d) != 32 {
		fixedErr = err
		return
	}
	fixed["ec-p-256k.pem"] = jwk.NewSecp256k1PrivateKey(secp256k1.PrivKeyFromBytes(d))
}

func key(t testing.TB, name string) crypto.Signer {
	t.Helper()
	fixedOnce.Do(loadFixed)
	if fixedErr != nil {
		t.Fatalf("loading testdata: %v", fixedErr)
	}
	k, ok := fixed[name]
	if !ok {
		t.Fatalf("no test key %q", name)
	}
	return k
}

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	return key(t, map[int]string{2048: "rsa2048.pem", 3072: "rsa3072.pem", 4096: "rsa4096.pem"}[bits]).(*rsa.PrivateKey)
}

// ecKeys are the fixed EC keys by curve.
func ecKeys(t testing.TB) map[string]crypto.Signer {
	return map[string]crypto.Signer{
		jwk.P256: key(t, "ec-p-256.pem"), jwk.P384: key(t, "ec-p-384.pem"),
		jwk.P521: key(t, "ec-p-521.pem"), jwk.P256K: key(t, "ec-p-256k.pem"),
	}
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// digest returns n bytes of a fixed pattern: a stand-in for a hash value.
func digest(n int) []byte {
	d := make([]byte, n)
	for i := range d {
		d[i] = byte(i*7 + 1)
	}
	return d
}

// generated caches one generated key per RSA size for the test binary:
// RSA-4096 generation alone takes seconds.
type genKey struct {
	once sync.Once
	k    *rsa.PrivateKey
	err  error
}

var genKeys = map[int]*genKey{2048: {}, 3072: {}, 4096: {}}

func generated(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	g := genKeys[bits]
	g.once.Do(func() { g.k, g.err = kcrypto.GenerateRSA(rand.Reader, bits) })
	if g.err != nil {
		t.Fatalf("GenerateRSA(%d): %v", bits, g.err)
	}
	return g.k
}
