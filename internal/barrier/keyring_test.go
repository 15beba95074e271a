package barrier

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
)

// testKeyring has deterministic keys so that fuzz seeds stay valid.
func testKeyring(tb testing.TB, terms int) *keyring {
	tb.Helper()
	kr := &keyring{}
	for i := range terms {
		if err := kr.add(bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, keyLen))); err != nil {
			tb.Fatal(err)
		}
	}
	return kr
}

func TestSealLayout(t *testing.T) {
	kr := testKeyring(t, 2)
	v := kr.seal("a/b", []byte("hello"))
	if len(v) != Overhead+5 || v[0] != formatV1 || binary.BigEndian.Uint32(v[1:]) != 2 {
		t.Errorf("seal = % x, want 0x01, term 2, %d bytes", v, Overhead+5)
	}
	got, err := kr.open("a/b", v)
	if err != nil || string(got) != "hello" {
		t.Errorf("open = %q, %v, want %q, nil", got, err, "hello")
	}
	// The NUL after the AAD prefix keeps key "a" with a longer prefix from
	// colliding; a different key must fail.
	if _, err := kr.open("a/c", v); !errors.Is(err, ErrDecrypt) {
		t.Errorf("open under another key err = %v, want ErrDecrypt", err)
	}
}

func TestKeyringRoundTrip(t *testing.T) {
	kr := testKeyring(t, 3)
	p := kr.encode()
	got, err := decodeKeyring(p)
	if err != nil {
		t.Fatalf("decodeKeyring err = %v", err)
	}
	if got.newest() != 3 {
		t.Fatalf("decoded %d terms, want 3", got.newest())
	}
	for i := range kr.keys {
		if !got.keys[i].Equal(kr.keys[i]) {
			t.Errorf("term %d key differs after a round trip", i+1)
		}
	}
	bad := [][]byte{nil, p[:1], p[:len(p)-1], append([]byte{2}, p[1:]...)}
	swapped := bytes.Clone(p)
	binary.BigEndian.PutUint32(swapped[1:], 2)
	bad = append(bad, swapped)
	for i, b := range bad {
		if _, err := decodeKeyring(b); err == nil {
			t.Errorf("decodeKeyring(bad #%d) err = nil, want an error", i)
		}
	}
	kr.wipe()
	for i, k := range kr.keys {
		if !k.IsZero() {
			t.Errorf("term %d not wiped", i+1)
		}
	}
}

func TestHotPathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	kr := testKeyring(t, 1)
	value := bytes.Repeat([]byte("v"), 256)
	v := kr.seal("alloc/key", value)
	if n := testing.AllocsPerRun(100, func() { _ = kr.seal("alloc/key", value) }); n != 1 {
		t.Errorf("seal allocates %v times per call, want 1 (the output)", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = kr.open("alloc/key", v) }); n != 1 {
		t.Errorf("open allocates %v times per call, want 1 (the output)", n)
	}
}

func FuzzOpenValue(f *testing.F) {
	kr := testKeyring(f, 2)
	// Forging is infeasible, so only the seeds can open. Nonces are random
	// and every fuzz worker builds its own seeds, so remember what was
	// sealed rather than the exact bytes.
	sealed := map[string]bool{}
	for _, key := range []string{"a", "tenant/x/key", ""} {
		for _, pt := range [][]byte{nil, []byte("hello"), bytes.Repeat([]byte{0}, 100)} {
			v := kr.seal(key, pt)
			sealed[key+"\x00"+string(pt)] = true
			f.Add(key, v)
			f.Add(key, v[:len(v)-1])
			f.Add(key+"x", v)
		}
	}
	f.Add("k", []byte{})
	f.Add("k", []byte{formatV1})
	f.Add("k", []byte{formatV1, 0, 0, 0, 3})
	f.Add("k", append([]byte{formatV1, 0xff, 0xff, 0xff, 0xff}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, key string, v []byte) {
		pt, err := kr.open(key, v)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) || errkind.KindOf(err) != errkind.Internal {
				t.Fatalf("open err = %v, want an Internal ErrDecrypt", err)
			}
			return
		}
		if !sealed[key+"\x00"+string(pt)] {
			t.Fatalf("open(%q, % x) = %q, nil; want an error for a value that was never sealed", key, v, pt)
		}
	})
}
