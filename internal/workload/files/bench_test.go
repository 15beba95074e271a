package files_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/customerkey/customerkey/internal/workload/files"
)

// The benchmarks use the default 256 KiB chunks on bbolt with an fsync per
// commit, so PutFile is bound by the disk; GetFile shows the cost of the
// key hierarchy (one site key unwrap through the test policies, then per
// chunk one key unwrap and one open).
func BenchmarkPutFile(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := newEnv(b, files.Options{ChunkSize: files.DefaultChunkSize, MaxFileSize: files.DefaultMaxFileSize})
			site := e.site("bench", "")
			content := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := e.svc.PutFile(e.ctx, e.alice, e.tid(), site.ID, "bench.bin", bytes.NewReader(content)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetFile(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := newEnv(b, files.Options{ChunkSize: files.DefaultChunkSize, MaxFileSize: files.DefaultMaxFileSize})
			site := e.site("bench", "")
			e.put(e.alice, site.ID, "bench.bin", make([]byte, size))
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, _, err := e.svc.GetFile(e.ctx, e.alice, e.tid(), site.ID, "bench.bin"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
