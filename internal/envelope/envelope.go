// Package envelope owns the self-describing, versioned AES-256-GCM format in
// which the key hierarchy seals keys and data: scope keys under policy keys,
// data keys under scope keys, items under data keys.
//
// A sealed blob names the key that sealed it, so that a reader can find the
// key before opening it (Header), and binds that name and the caller's
// context bytes (the additional data) into the authentication tag, so that a
// blob relabelled, moved to another scope or opened with another context
// fails to open. Every failure to open is one opaque error; no error carries
// bytes of a blob.
//
// Format version 1:
//
//	0x01 | n (1 byte) | key id (n bytes, printable ASCII) | key version (uint32 big-endian)
//	     | nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes)
//
// The additional data authenticated is "customerkey-envelope-v1" NUL, the
// header (everything before the nonce) and the caller's aad, in that order.
// The header is self-delimiting, so the concatenation is unambiguous.
//
// Nonces are random (crypto/rand inside the AEAD). Seal at most 2^32
// messages under one key; the key hierarchy stays far below that because
// every item gets its own data key.
//
// It imports only secret and errkind (level 0) and the standard library; it
// must not import net/http or any storage package.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"io"
	"sync"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Format constants.
const (
	// Version1 is the first byte of every blob of this format.
	Version1 = 0x01
	// KeySize is the size of every key: AES-256.
	KeySize = 32
	// MaxKeyIDLen bounds the key id a blob names.
	MaxKeyIDLen = 255

	nonceLen  = 12
	tagLen    = 16
	fixedHead = 1 + 1 + 4 // version, id length, key version
	// minLen is the shortest well-formed blob: a one-byte key id and an
	// empty plaintext.
	minLen = fixedHead + 1 + nonceLen + tagLen

	label = "customerkey-envelope-v1\x00"
)

// Errors. Both are classified Invalid: a blob comes from a caller or from
// the store, and either way the request cannot succeed as made. Callers that
// read blobs from their own store may reclassify them as Internal.
var (
	// ErrMalformed: the blob is truncated, of an unknown format version, or
	// its header is not well formed.
	ErrMalformed = errkind.New(errkind.Invalid,
		"the sealed data is malformed: it is truncated, of an unknown format version, or its header is damaged").WithCode("MalformedCiphertext")
	// ErrOpen: the blob does not open with this key and additional data:
	// the wrong key, changed bytes, or a different context. Which one is
	// deliberately not said.
	ErrOpen = errkind.New(errkind.Invalid,
		"the sealed data cannot be opened: it was sealed under another key or with other context data, or it was changed").WithCode("DecryptionFailed")
)

// NewKey returns a fresh random AES-256 key from crypto/rand.
func NewKey() (secret.Bytes, error) {
	b := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return secret.Bytes{}, errkind.Wrap(errkind.Internal, "envelope: reading random bytes for a new key", err)
	}
	return secret.New(b), nil
}

// Sealer seals and opens blobs under one key version. Build it once per key
// (building the cipher is the costly part) and share it: it is safe for
// concurrent use. It keeps the expanded cipher, not the raw key, which the
// caller still owns and wipes.
type Sealer struct {
	aead    cipher.AEAD
	header  []byte // the blob header this sealer writes and accepts
	keyID   string
	version uint32
}

// NewSealer returns a Sealer for key, which names itself keyID at version
// keyVersion in every blob it seals. keyID must be 1 to MaxKeyIDLen
// printable ASCII characters.
func NewSealer(key secret.Bytes, keyID string, keyVersion uint32) (*Sealer, error) {
	if !validKeyID(keyID) {
		return nil, errkind.Errorf(errkind.Invalid,
			"envelope: a key id is 1 to %d printable ASCII characters without spaces (got %d bytes)", MaxKeyIDLen, len(keyID))
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	h := make([]byte, 0, fixedHead+len(keyID))
	h = append(h, Version1, byte(len(keyID)))
	h = append(h, keyID...)
	h = binary.BigEndian.AppendUint32(h, keyVersion)
	return &Sealer{aead: aead, header: h, keyID: keyID, version: keyVersion}, nil
}

func newAEAD(key secret.Bytes) (cipher.AEAD, error) {
	if key.Len() != KeySize {
		return nil, errkind.Errorf(errkind.Invalid, "envelope: a key is %d bytes (AES-256), got %d", KeySize, key.Len())
	}
	block, err := aes.NewCipher(key.Reveal())
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "envelope: building the cipher", err)
	}
	// The AEAD draws each nonce from crypto/rand itself and prepends it, so
	// no caller can ever repeat one.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "envelope: building the cipher", err)
	}
	return aead, nil
}

// validKeyID takes bytes too, so that parsing a blob does not copy its id.
func validKeyID[T string | []byte](id T) bool {
	if len(id) == 0 || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// KeyID is the key id the sealer writes.
func (s *Sealer) KeyID() string { return s.keyID }

// KeyVersion is the key version the sealer writes.
func (s *Sealer) KeyVersion() uint32 { return s.version }

// Overhead is how many bytes a blob sealed by s adds to its plaintext.
func (s *Sealer) Overhead() int { return len(s.header) + nonceLen + tagLen }

// Seal encrypts plaintext bound to aad. The returned blob is the only
// allocation.
func (s *Sealer) Seal(plaintext, aad []byte) []byte {
	out := make([]byte, len(s.header), len(s.header)+nonceLen+len(plaintext)+tagLen)
	copy(out, s.header)
	ad := getAD(s.header, aad)
	out = s.aead.Seal(out, nil, plaintext, *ad)
	putAD(ad)
	return out
}

// Open authenticates and decrypts a blob sealed under this sealer's key id
// and version with the same aad. The plaintext is the only allocation; a
// blob naming another key, or failing authentication, is ErrOpen.
func (s *Sealer) Open(blob, aad []byte) ([]byte, error) {
	h, err := headerLen(blob)
	if err != nil {
		return nil, err
	}
	if h != len(s.header) || string(blob[:h]) != string(s.header) {
		return nil, ErrOpen
	}
	ad := getAD(s.header, aad)
	out, err := s.aead.Open(make([]byte, 0, len(blob)-h-nonceLen-tagLen), nil, blob[h:], *ad)
	putAD(ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Seal encrypts plaintext under key, naming the key keyID at keyVersion and
// binding aad. For many calls with one key, build a Sealer instead.
func Seal(key secret.Bytes, keyID string, keyVersion uint32, plaintext, aad []byte) ([]byte, error) {
	s, err := NewSealer(key, keyID, keyVersion)
	if err != nil {
		return nil, err
	}
	return s.Seal(plaintext, aad), nil
}

// Open authenticates and decrypts blob with key and aad, whatever key id
// and version the blob names (use Header to choose the key).
func Open(key secret.Bytes, blob, aad []byte) ([]byte, error) {
	h, err := headerLen(blob)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	ad := getAD(blob[:h], aad)
	out, err := aead.Open(make([]byte, 0, len(blob)-h-nonceLen-tagLen), nil, blob[h:], *ad)
	putAD(ad)
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}

// Header returns the key id and version blob names, so that the caller can
// find the key before opening it. It checks the form only: the header is
// authenticated by Open, so trust it only after Open succeeds.
func Header(blob []byte) (keyID string, keyVersion uint32, err error) {
	if _, err := headerLen(blob); err != nil {
		return "", 0, err
	}
	n := int(blob[1])
	return string(blob[2 : 2+n]), binary.BigEndian.Uint32(blob[2+n:]), nil
}

// headerLen parses the header of blob and returns its length; the rest of
// the blob is at least a nonce and a tag long.
func headerLen(blob []byte) (int, error) {
	if len(blob) < minLen || blob[0] != Version1 {
		return 0, ErrMalformed
	}
	n := int(blob[1])
	h := fixedHead + n
	if n == 0 || len(blob) < h+nonceLen+tagLen || !validKeyID(blob[2:2+n]) {
		return 0, ErrMalformed
	}
	return h, nil
}

// adPool keeps the additional data of each call off the allocator: passing
// a stack buffer through the AEAD interface would move it to the heap.
var adPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 256)
	return &b
}}

// maxPooledAD keeps unusually large additional data out of the pool.
const maxPooledAD = 4 << 10

func getAD(header, aad []byte) *[]byte {
	p := adPool.Get().(*[]byte)
	b := append((*p)[:0], label...)
	b = append(b, header...)
	*p = append(b, aad...)
	return p
}

func putAD(p *[]byte) {
	if cap(*p) <= maxPooledAD {
		adPool.Put(p)
	}
}
