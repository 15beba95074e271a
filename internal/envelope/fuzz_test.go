package envelope_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/secret"
)

// FuzzParse feeds arbitrary bytes to the parser: it never panics, a header
// it accepts re-encodes to the blob's first bytes, and nothing but the one
// blob sealed under the key (the known answer) opens.
func FuzzParse(f *testing.F) {
	key := secret.New(mustHex(f, katKeyHex))
	f.Add(mustHex(f, katBlob), []byte(katAAD))
	// Seeds are fixed bytes: the fuzzing workers run this function again,
	// and a blob sealed here would differ in each (fresh nonce).
	f.Add([]byte{}, []byte(nil))
	f.Add([]byte{envelope.Version1, 0xff}, []byte("x"))
	f.Add(append([]byte{envelope.Version1, 1, 'k', 0, 0, 0, 1}, make([]byte, 28)...), []byte(nil))
	f.Fuzz(func(t *testing.T, blob, aad []byte) {
		id, ver, err := envelope.Header(blob)
		if err != nil {
			if !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("Header err = %v, want ErrMalformed", err)
			}
			if _, err := envelope.Open(key, blob, aad); !errors.Is(err, envelope.ErrMalformed) {
				t.Fatalf("Open of a blob Header refused: err = %v, want ErrMalformed", err)
			}
			return
		}
		head := append([]byte{envelope.Version1, byte(len(id))}, id...)
		head = binary.BigEndian.AppendUint32(head, ver)
		if !bytes.HasPrefix(blob, head) {
			t.Fatalf("Header = %q, %d; does not re-encode to the blob's prefix", id, ver)
		}
		got, err := envelope.Open(key, blob, aad)
		if err == nil && !bytes.Equal(blob, mustHex(t, katBlob)) {
			t.Fatalf("Open accepted a blob that was never sealed: %q", got)
		}
		if err != nil && !errors.Is(err, envelope.ErrOpen) {
			t.Fatalf("Open of a well-formed blob err = %v, want ErrOpen", err)
		}
	})
}
