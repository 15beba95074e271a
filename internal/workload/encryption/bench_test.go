package encryption

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"
)

// BenchmarkItems measures Encrypt and Decrypt through a warm scope beside
// raw AES-256-GCM with one fixed key on the same bytes: the difference is
// the cost of authorization, the cache, the per-item key and the header.
func BenchmarkItems(b *testing.B) {
	e := newEnv(b)
	e.scope("bench", e.alice.ID)
	block, err := aes.NewCipher(randBytes(b, 32))
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{4 << 10, 64 << 10, 1 << 20} {
		pt := bytes.Repeat([]byte{0x5a}, size)
		ct := e.encrypt(e.alice, "bench", pt, nil)
		rawCT := raw.Seal(nil, nil, pt, nil)
		buf := make([]byte, 0, size+Overhead(len("bench")))
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run("Encrypt/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Encrypt(e.ctx, e.alice, e.tid, "bench", buf[:0], pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Decrypt/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "bench", buf[:0], ct, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("RawSeal/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				raw.Seal(buf[:0], nil, pt, nil)
			}
		})
		b.Run("RawOpen/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := raw.Open(buf[:0], nil, rawCT, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
