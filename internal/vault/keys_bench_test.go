package vault_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
)

// BenchmarkUnwrapCached is the Customer Key hot path: RSA-2048 OAEP-256
// unwrap of a 32-byte key through the Service with a warm cache. Compare
// with BenchmarkUnwrapRaw, the same operation on crypto/rsa directly.
func BenchmarkUnwrapCached(b *testing.B) {
	e := newKeyEnv(b)
	e.importRSA(b, "root")
	pub := &fixtureRSA().PublicKey
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := e.svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			p, err := e.svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped)
			if err != nil {
				b.Error(err)
				return
			}
			p.Value.Wipe()
		}
	})
}

func BenchmarkUnwrapRaw(b *testing.B) {
	k := fixtureRSA()
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &k.PublicKey, make([]byte, 32), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rsa.DecryptOAEP(sha256.New(), nil, k, wrapped, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGetKeyCached is the lookup part of the hot path alone (vault,
// subscription, latest version and entry from the cache, plus building the
// bundle): the overhead BenchmarkUnwrapCached adds to raw RSA.
func BenchmarkGetKeyCached(b *testing.B) {
	e := newKeyEnv(b)
	e.importRSA(b, "root")
	if _, err := e.svc.GetKey(ctx, kv, "root", ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.svc.GetKey(ctx, kv, "root", ""); err != nil {
			b.Fatal(err)
		}
	}
}
