package encryption

import (
	"encoding/binary"
	"testing"
)

// FuzzItemHeader feeds the item parser arbitrary bytes: it must never
// panic, and what it accepts must be self-consistent.
func FuzzItemHeader(f *testing.F) {
	good := []byte(itemMagic)
	good = append(good, byte(len("crm-prod")))
	good = append(good, "crm-prod"...)
	good = binary.BigEndian.AppendUint32(good, 1)
	good = append(good, make([]byte, saltLen+nonceLen+tagLen)...)
	f.Add(good)
	f.Add([]byte(itemMagic))
	f.Add([]byte("CKE\x01\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, _, n, err := itemHeader(b)
		if err != nil {
			return
		}
		if len(name) == 0 || n > len(b)-nonceLen-tagLen || n != len(itemMagic)+1+len(name)+4+saltLen {
			t.Fatalf("itemHeader(%x) = %q, header %d bytes of %d", b, name, n, len(b))
		}
	})
}
