package barrier

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"sync"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Stored value format, version 1:
//
//	0x01 | term (uint32 big-endian) | nonce (12 bytes) | AES-256-GCM ciphertext and tag
//
// The additional data is valueAAD followed by the storage key, so a value
// only decrypts under the key it was written to. The prefix names purpose
// and format version, so a later format cannot accept a version-1 value by
// accident; the NUL ends it because storage keys cannot contain NUL.
const (
	formatV1  = 0x01
	termLen   = 4
	nonceLen  = 12
	tagLen    = 16
	headerLen = 1 + termLen + nonceLen
	// Overhead is how many bytes encryption adds to every value.
	Overhead = headerLen + tagLen
	// MaxValueLen is the largest value the barrier accepts: the inner
	// backend's limit less the encryption overhead.
	MaxValueLen = storage.MaxValueLen - Overhead

	valueAAD = "customerkey-barrier-v1\x00"
	keyLen   = 32
)

// Keyring plaintext format, version 1, sealed by the Sealer:
//
//	0x01 | { term (uint32 big-endian) | key (32 bytes) } for terms 1..n in order
const (
	keyringV1      = 0x01
	keyringRecord  = termLen + keyLen
	maxKeyringTerm = 1 << 16 // weekly rotation for a thousand years
)

// ErrDecrypt is in the chain of every error about a stored value that
// cannot be decrypted: too short, an unknown format or term, or a failed
// authentication (tampering, or a value moved to another key).
var ErrDecrypt = errors.New("barrier: cannot decrypt value")

// decryptFailure is the internal cause of a decryption error. It names the
// reason only, never bytes of the value.
type decryptFailure string

func (f decryptFailure) Error() string      { return string(f) }
func (decryptFailure) Is(target error) bool { return target == ErrDecrypt }

const (
	errShort       = decryptFailure("value is shorter than the format allows")
	errFormat      = decryptFailure("unknown value format")
	errUnknownTerm = decryptFailure("unknown keyring term")
	errAuth        = decryptFailure("authentication failed")
)

func decryptError(key string, why decryptFailure) error {
	return &errkind.Error{
		Kind: errkind.Internal,
		Msg:  "barrier: cannot decrypt value at " + strconv.Quote(key),
		Err:  why,
	}
}

// keyring is immutable once built, so readers share it without locks. The
// raw keys are kept only to be wiped; encryption uses the cached AEADs.
type keyring struct {
	keys  []secret.Bytes // keys[i] is term i+1
	aeads []cipher.AEAD
	// version is the storage version of the core/keyring entry this
	// keyring was read from or written as; a larger one is newer.
	version int64
}

func (kr *keyring) newest() uint32 { return uint32(len(kr.aeads)) }

// add appends a fresh random key as the next term.
func (kr *keyring) add(rand io.Reader) error {
	if len(kr.keys) >= maxKeyringTerm {
		return errkind.Errorf(errkind.FailedPrecondition, "barrier: the keyring already holds %d terms", len(kr.keys))
	}
	raw := make([]byte, keyLen)
	if _, err := io.ReadFull(rand, raw); err != nil {
		secret.Wipe(raw)
		return errkind.Wrap(errkind.Internal, "barrier: reading random bytes for a data key", err)
	}
	return kr.push(secret.New(raw))
}

// push takes ownership of key.
func (kr *keyring) push(key secret.Bytes) error {
	block, err := aes.NewCipher(key.Reveal())
	if err != nil {
		key.Wipe()
		return errkind.Wrap(errkind.Internal, "barrier: building a data key cipher", err)
	}
	// The AEAD draws each nonce from crypto/rand itself, the construction
	// FIPS 140-3 approves, so no injected reader can ever repeat one. At
	// 2^32 values per term the collision risk of random 96-bit nonces starts
	// to matter: rotate well before that.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		key.Wipe()
		return errkind.Wrap(errkind.Internal, "barrier: building a data key cipher", err)
	}
	kr.keys = append(kr.keys, key)
	kr.aeads = append(kr.aeads, aead)
	return nil
}

// wipe clears the raw keys. The AEADs hold their own expanded key schedule,
// which crypto/aes gives no way to clear; they stay usable for transactions
// still running on this keyring and are dropped with it.
func (kr *keyring) wipe() {
	if kr == nil {
		return
	}
	for i := range kr.keys {
		kr.keys[i].Wipe()
	}
}

// encode returns the keyring plaintext; the caller wipes it.
func (kr *keyring) encode() []byte {
	buf := make([]byte, 1, 1+len(kr.keys)*keyringRecord)
	buf[0] = keyringV1
	for i, k := range kr.keys {
		buf = binary.BigEndian.AppendUint32(buf, uint32(i+1))
		buf = append(buf, k.Reveal()...)
	}
	return buf
}

var errKeyringFormat = errors.New("keyring plaintext is malformed")

// decodeKeyring copies the keys out of p; the caller wipes p.
func decodeKeyring(p []byte) (*keyring, error) {
	if len(p) < 1+keyringRecord || p[0] != keyringV1 || (len(p)-1)%keyringRecord != 0 {
		return nil, errKeyringFormat
	}
	n := (len(p) - 1) / keyringRecord
	if n > maxKeyringTerm {
		return nil, errKeyringFormat
	}
	kr := &keyring{keys: make([]secret.Bytes, 0, n), aeads: make([]cipher.AEAD, 0, n)}
	for i := range n {
		rec := p[1+i*keyringRecord : 1+(i+1)*keyringRecord]
		if binary.BigEndian.Uint32(rec) != uint32(i+1) {
			kr.wipe()
			return nil, errKeyringFormat
		}
		if err := kr.push(secret.Copy(rec[termLen:])); err != nil {
			kr.wipe()
			return nil, err
		}
	}
	return kr, nil
}

// aadPool keeps the per-call additional data off the allocator: the AEAD
// interface call would otherwise move a stack buffer to the heap.
var aadPool = sync.Pool{New: func() any {
	b := make([]byte, 0, len(valueAAD)+storage.MaxKeyLen)
	return &b
}}

func getAAD(key string) *[]byte {
	p := aadPool.Get().(*[]byte)
	*p = append(append((*p)[:0], valueAAD...), key...)
	return p
}

// seal encrypts plaintext for key under the newest term. The output is the
// only allocation.
func (kr *keyring) seal(key string, plaintext []byte) []byte {
	aad := getAAD(key)
	out := kr.sealAAD(*aad, plaintext)
	aadPool.Put(aad)
	return out
}

// sealAAD encrypts plaintext under the newest term with the complete
// additional data aad; the AEAD appends nonce, ciphertext and tag after the
// header.
func (kr *keyring) sealAAD(aad, plaintext []byte) []byte {
	term := kr.newest()
	out := make([]byte, 1+termLen, headerLen+len(plaintext)+tagLen)
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:], term)
	return kr.aeads[term-1].Seal(out, nil, plaintext, aad)
}

// open parses and decrypts a stored value. Every failure is a decryptError;
// errUnknownTerm tells the caller a newer keyring may help.
func (kr *keyring) open(key string, v []byte) ([]byte, error) {
	aad := getAAD(key)
	out, why := kr.openAAD(*aad, v)
	aadPool.Put(aad)
	if why != "" {
		return nil, decryptError(key, why)
	}
	return out, nil
}

// openAAD parses and decrypts what sealAAD produced with the same aad. It
// returns the reason of a failure instead of an error, so that each caller
// names what could not be decrypted in its own words.
func (kr *keyring) openAAD(aad, v []byte) ([]byte, decryptFailure) {
	if len(v) < headerLen+tagLen {
		return nil, errShort
	}
	if v[0] != formatV1 {
		return nil, errFormat
	}
	term := binary.BigEndian.Uint32(v[1:])
	if term == 0 || term > kr.newest() {
		return nil, errUnknownTerm
	}
	out, err := kr.aeads[term-1].Open(make([]byte, 0, len(v)-headerLen-tagLen), nil, v[1+termLen:], aad)
	if err != nil {
		return nil, errAuth
	}
	return out, ""
}

// termOf reports the term a well-formed value names.
func termOf(v []byte) (uint32, bool) {
	if len(v) < headerLen+tagLen || v[0] != formatV1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(v[1:]), true
}
