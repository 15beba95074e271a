package envelope_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// The known answer was computed with an independent AES-GCM implementation
// (Python's cryptography package) from the format in the package doc:
// header 01 | 24 | id | 00000007, nonce 000102…0b, additional data
// "customerkey-envelope-v1" NUL, the header and "tenant:contoso".
const (
	katKeyHex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	katID     = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
	katVer    = 7
	katAAD    = "tenant:contoso"
	katPlain  = "a scope key, thirty-two bytes!!!"
	katBlob   = "012433663235303465302d346638392d313164332d396130632d303330356538326333333031" +
		"00000007" + "000102030405060708090a0b" +
		"2622a578aa95a73be624eea7919d1004f1a2fe19840c305c5a1e91e06e482193" +
		"4cde478d6e92946a9e94390c08228f30"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testKey(t testing.TB, fill byte) secret.Bytes {
	t.Helper()
	return secret.New(bytes.Repeat([]byte{fill}, envelope.KeySize))
}

func TestKnownAnswer(t *testing.T) {
	key := secret.New(mustHex(t, katKeyHex))
	blob := mustHex(t, katBlob)
	id, ver, err := envelope.Header(blob)
	if err != nil || id != katID || ver != katVer {
		t.Fatalf("Header(kat) = %q, %d, %v; want %q, %d, nil", id, ver, err, katID, katVer)
	}
	got, err := envelope.Open(key, blob, []byte(katAAD))
	if err != nil || string(got) != katPlain {
		t.Fatalf("Open(kat) = %q, %v; want %q", got, err, katPlain)
	}
	s, err := envelope.NewSealer(key, katID, katVer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open(blob, []byte(katAAD)); err != nil || string(got) != katPlain {
		t.Fatalf("Sealer.Open(kat) = %q, %v; want %q", got, err, katPlain)
	}
	// A blob sealed now has the same header and length (only the nonce and
	// therefore the ciphertext differ).
	fresh := s.Seal([]byte(katPlain), []byte(katAAD))
	if len(fresh) != len(blob) || !bytes.Equal(fresh[:2+len(katID)+4], blob[:2+len(katID)+4]) {
		t.Errorf("Seal(kat plaintext) header/length = %x/%d, want %x/%d", fresh[:2+len(katID)+4], len(fresh),
			blob[:2+len(katID)+4], len(blob))
	}
}

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("k", envelope.MaxKeyIDLen)
	tests := []struct {
		name      string
		keyID     string
		version   uint32
		plaintext []byte
		aad       []byte
	}{
		{"empty plaintext, no aad", "p", 0, nil, nil},
		{"one byte", "policy", 1, []byte{0}, []byte("t1")},
		{"guid id, 4 KiB", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", 42, bytes.Repeat([]byte("x"), 4096), []byte("tenant|scope")},
		{"longest id, max version", long, ^uint32(0), []byte("data"), bytes.Repeat([]byte("a"), 10_000)},
	}
	key := testKey(t, 0x11)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := envelope.NewSealer(key, tc.keyID, tc.version)
			if err != nil {
				t.Fatalf("NewSealer: %v", err)
			}
			pkg, err := envelope.Seal(key, tc.keyID, tc.version, tc.plaintext, tc.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			for name, blob := range map[string][]byte{"Sealer.Seal": s.Seal(tc.plaintext, tc.aad), "Seal": pkg} {
				if want := len(tc.plaintext) + s.Overhead(); len(blob) != want {
					t.Errorf("%s: len = %d, want %d", name, len(blob), want)
				}
				id, ver, err := envelope.Header(blob)
				if err != nil || id != tc.keyID || ver != tc.version {
					t.Errorf("%s: Header = %q, %d, %v; want %q, %d", name, id, ver, err, tc.keyID, tc.version)
				}
				for opener, open := range map[string]func([]byte, []byte) ([]byte, error){
					"Open":        func(b, a []byte) ([]byte, error) { return envelope.Open(key, b, a) },
					"Sealer.Open": s.Open,
				} {
					got, err := open(blob, tc.aad)
					if err != nil || !bytes.Equal(got, tc.plaintext) {
						t.Errorf("%s then %s = %d bytes, %v; want the %d bytes sealed", name, opener, len(got), err, len(tc.plaintext))
					}
				}
			}
		})
	}
}

func TestNoncesDiffer(t *testing.T) {
	s, err := envelope.NewSealer(testKey(t, 1), "k", 1)
	if err != nil {
		t.Fatal(err)
	}
	a, b := s.Seal([]byte("same"), nil), s.Seal([]byte("same"), nil)
	if bytes.Equal(a, b) {
		t.Error("two seals of the same plaintext are equal; the nonce must be fresh each time")
	}
}

// TestTamper flips every byte and truncates at every length: nothing but
// the original opens.
func TestTamper(t *testing.T) {
	key := secret.New(mustHex(t, katKeyHex))
	blob := mustHex(t, katBlob)
	s, err := envelope.NewSealer(key, katID, katVer)
	if err != nil {
		t.Fatal(err)
	}
	opens := func(b []byte) bool {
		_, err1 := envelope.Open(key, b, []byte(katAAD))
		_, err2 := s.Open(b, []byte(katAAD))
		for _, err := range []error{err1, err2} {
			if err != nil && !errors.Is(err, envelope.ErrOpen) && !errors.Is(err, envelope.ErrMalformed) {
				t.Errorf("error %v is neither ErrOpen nor ErrMalformed", err)
			}
		}
		return err1 == nil || err2 == nil
	}
	for i := range blob {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(blob)
			b[i] ^= mask
			if opens(b) {
				t.Errorf("blob with byte %d xor %#x opened", i, mask)
			}
		}
	}
	for n := range len(blob) {
		if opens(blob[:n]) {
			t.Errorf("blob truncated to %d bytes opened", n)
		}
	}
	if opens(append(bytes.Clone(blob), 0)) {
		t.Error("blob with a byte appended opened")
	}
}

// TestContext checks that the key, the aad and the header are all bound.
func TestContext(t *testing.T) {
	key, other := testKey(t, 1), testKey(t, 2)
	const id = "aaaaaaaa-0000-0000-0000-000000000001"
	blob, err := envelope.Seal(key, id, 3, []byte("scope key"), []byte("tenant-a|mailbox-1"))
	if err != nil {
		t.Fatal(err)
	}
	relabel := func(newID string, newVer uint32) []byte {
		b := bytes.Clone(blob)
		copy(b[2:], newID)
		binary.BigEndian.PutUint32(b[2+len(id):], newVer)
		return b
	}
	sealerFor := func(id string, ver uint32) *envelope.Sealer {
		s, err := envelope.NewSealer(key, id, ver)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name string
		open func() ([]byte, error)
		want error
	}{
		{"other key", func() ([]byte, error) { return envelope.Open(other, blob, []byte("tenant-a|mailbox-1")) }, envelope.ErrOpen},
		{"other aad", func() ([]byte, error) { return envelope.Open(key, blob, []byte("tenant-b|mailbox-1")) }, envelope.ErrOpen},
		{"aad missing", func() ([]byte, error) { return envelope.Open(key, blob, nil) }, envelope.ErrOpen},
		{"aad extended", func() ([]byte, error) { return envelope.Open(key, blob, []byte("tenant-a|mailbox-10")) }, envelope.ErrOpen},
		{"relabelled id", func() ([]byte, error) {
			return envelope.Open(key, relabel("bbbbbbbb-0000-0000-0000-000000000001", 3), []byte("tenant-a|mailbox-1"))
		}, envelope.ErrOpen},
		{"relabelled version", func() ([]byte, error) { return envelope.Open(key, relabel(id, 4), []byte("tenant-a|mailbox-1")) }, envelope.ErrOpen},
		{"sealer of another version", func() ([]byte, error) { return sealerFor(id, 4).Open(blob, []byte("tenant-a|mailbox-1")) }, envelope.ErrOpen},
		{"sealer of another id", func() ([]byte, error) { return sealerFor("x", 3).Open(blob, []byte("tenant-a|mailbox-1")) }, envelope.ErrOpen},
		{"garbage", func() ([]byte, error) { return envelope.Open(key, []byte("not a blob at all, but long enough"), nil) }, envelope.ErrMalformed},
		{"format 2", func() ([]byte, error) {
			b := bytes.Clone(blob)
			b[0] = 2
			return envelope.Open(key, b, []byte("tenant-a|mailbox-1"))
		}, envelope.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.open()
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("open = %q, %v; want nil, %v", got, err, tc.want)
			}
			if !errkind.Is(err, errkind.Invalid) {
				t.Errorf("kind = %v, want invalid", errkind.KindOf(err))
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	tests := []struct {
		name  string
		key   secret.Bytes
		keyID string
	}{
		{"no key", secret.Bytes{}, "k"},
		{"AES-128 key", secret.New(make([]byte, 16)), "k"},
		{"33-byte key", secret.New(make([]byte, 33)), "k"},
		{"empty id", testKey(t, 1), ""},
		{"id with space", testKey(t, 1), "a b"},
		{"id with NUL", testKey(t, 1), "a\x00"},
		{"non-ASCII id", testKey(t, 1), "clé"},
		{"id too long", testKey(t, 1), strings.Repeat("k", envelope.MaxKeyIDLen+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := envelope.NewSealer(tc.key, tc.keyID, 1); !errkind.Is(err, errkind.Invalid) {
				t.Errorf("NewSealer err = %v, want invalid", err)
			}
			if _, err := envelope.Seal(tc.key, tc.keyID, 1, []byte("x"), nil); !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Seal err = %v, want invalid", err)
			}
		})
	}
	blob := mustHex(t, katBlob)
	if _, err := envelope.Open(secret.New(make([]byte, 16)), blob, nil); !errkind.Is(err, errkind.Invalid) || errors.Is(err, envelope.ErrOpen) {
		t.Errorf("Open with a 16-byte key err = %v, want invalid naming the key size", err)
	}
}

// TestErrorsSayNothingOfTheBlob: no error text carries the blob's bytes or
// the key id it names.
func TestErrorsSayNothingOfTheBlob(t *testing.T) {
	key := testKey(t, 3)
	blob, err := envelope.Seal(key, "MARKER-ID", 1, []byte("PLAINTEXT-MARKER"), []byte("AAD-MARKER"))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	_, e1 := envelope.Open(key, bad, []byte("AAD-MARKER"))
	_, e2 := envelope.Open(key, bad[:20], nil)
	_, _, e3 := envelope.Header(bad[:20])
	for _, err := range []error{e1, e2, e3} {
		msg := err.Error() + errkind.Public(err)
		for _, leak := range []string{"MARKER", hex.EncodeToString(bad[20:30]), string(bad[20:30])} {
			if strings.Contains(msg, leak) {
				t.Errorf("error %q contains %q", msg, leak)
			}
		}
	}
}

func TestNewKey(t *testing.T) {
	a, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.Len() != envelope.KeySize || a.Equal(b) {
		t.Errorf("NewKey: len %d, two keys equal %v; want %d bytes and different keys", a.Len(), a.Equal(b), envelope.KeySize)
	}
	a.Wipe()
	b.Wipe()
}

func TestSealerAllocatesOnlyTheOutput(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	s, err := envelope.NewSealer(testKey(t, 4), "3f2504e0-4f89-11d3-9a0c-0305e82c3301", 9)
	if err != nil {
		t.Fatal(err)
	}
	pt, aad := bytes.Repeat([]byte("p"), 4096), []byte("tenant|scope|item")
	blob := s.Seal(pt, aad)
	if n := testing.AllocsPerRun(100, func() { s.Seal(pt, aad) }); n != 1 {
		t.Errorf("Sealer.Seal allocates %v times per call, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := s.Open(blob, aad); err != nil {
			t.Fatal(err)
		}
	}); n != 1 {
		t.Errorf("Sealer.Open allocates %v times per call, want 1", n)
	}
}

func TestSealerAccessors(t *testing.T) {
	s, err := envelope.NewSealer(testKey(t, 5), "abc", 12)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != "abc" || s.KeyVersion() != 12 || s.Overhead() != 1+1+3+4+12+16 {
		t.Errorf("KeyID, KeyVersion, Overhead = %q, %d, %d; want abc, 12, 37", s.KeyID(), s.KeyVersion(), s.Overhead())
	}
}
