package mail_test

import (
	"fmt"
	"testing"

	"github.com/customerkey/customerkey/internal/workload/mail"
)

// The benchmarks run on bbolt with an fsync per commit, so PutMessage is
// bound by the disk; GetMessage shows the cost of the key hierarchy (one
// scope key unwrap through the test policies, one data key, two opens).
func BenchmarkPutMessage(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := newEnv(b)
			box := e.aliceBox()
			m := mail.NewMessage{Subject: "bench", From: "a@example.com", To: []string{"b@example.com"}, Body: make([]byte, size)}
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := e.svc.PutMessage(e.ctx, e.alice, e.tid(), box.ID, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkGetMessage(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			e := newEnv(b)
			box := e.aliceBox()
			msg := e.put(e.alice, box.ID, "bench", make([]byte, size))
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := e.svc.GetMessage(e.ctx, e.alice, e.tid(), box.ID, msg.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
