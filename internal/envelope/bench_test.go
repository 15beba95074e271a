package envelope_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"github.com/customerkey/customerkey/internal/envelope"
)

var benchSizes = []int{4 << 10, 64 << 10, 1 << 20}

// BenchmarkSealer measures Seal and Open through a cached Sealer beside raw
// AES-256-GCM on the same bytes, the baseline the format's overhead is
// judged by.
func BenchmarkSealer(b *testing.B) {
	key := testKey(b, 7)
	s, err := envelope.NewSealer(key, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", 1)
	if err != nil {
		b.Fatal(err)
	}
	block, err := aes.NewCipher(key.Reveal())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		b.Fatal(err)
	}
	aad := []byte("tenant|scope|item")
	for _, size := range benchSizes {
		pt := bytes.Repeat([]byte{0x5a}, size)
		blob := s.Seal(pt, aad)
		rawBlob := raw.Seal(nil, nil, pt, aad)
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run("Seal/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				s.Seal(pt, aad)
			}
		})
		b.Run("Open/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Open(blob, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("RawSeal/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				raw.Seal(nil, nil, pt, aad)
			}
		})
		b.Run("RawOpen/"+name, func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := raw.Open(nil, nil, rawBlob, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOneShot measures the package functions, which build the cipher
// on every call: the cost a caller pays for not keeping a Sealer.
func BenchmarkOneShot(b *testing.B) {
	key := testKey(b, 8)
	pt := bytes.Repeat([]byte{0x5a}, 4<<10)
	blob, err := envelope.Seal(key, "k", 1, pt, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Seal/4KiB", func(b *testing.B) {
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := envelope.Seal(key, "k", 1, pt, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Open/4KiB", func(b *testing.B) {
		b.SetBytes(int64(len(pt)))
		for b.Loop() {
			if _, err := envelope.Open(key, blob, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
