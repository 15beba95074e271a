package encryption

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"io"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Item format, version 1 (what Encrypt returns and Decrypt takes):
//
//	"CKE" 0x01 | n (1 byte) | scope name (n bytes) | scope key version (uint32 big-endian)
//	           | salt (32 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes)
//
// Everything before the nonce is the header. Each item has a data key of
// its own: HKDF-SHA256-Expand(scope key, info), where info is a label, the
// tenant id and the header, salt included. The scope key is uniformly
// random, so it serves as HKDF's pseudorandom key without an Extract step,
// and the expansion is a PRF of a fresh random 256-bit salt: item keys are
// independent, and a collision of two salts (the only way two items could
// share a key) is negligible even after 2^64 items. So GCM's limit of 2^32
// random nonces per key is never approached, however many items a scope
// holds. The nonce is still random (crypto/rand inside the AEAD), so a
// repeated salt would not repeat a nonce as well, and the AEAD stays the
// one FIPS 140-3 approves.
//
// The header and tenant are bound through the key (a changed header or
// another tenant derives another key, and the tag fails); the caller's
// additional data is GCM's additional data.
//
// This is faster than sealing a random data key under the scope key per
// item: one HMAC-SHA256 pass and one AES key schedule instead of two
// AES-GCM operations and key schedules, and 32 bytes of salt in the item
// instead of a sealed key of 60 or more.
const (
	itemMagic   = "CKE\x01"
	saltLen     = 32
	nonceLen    = 12
	tagLen      = 16
	itemKeyInfo = "customerkey/encryption/item/v1\x00"
	// dataKeyLabel precedes the tenant id in the additional data of
	// sealed data keys.
	dataKeyLabel = "customerkey/encryption/data-key/v1\x00"
)

// Overhead is how many bytes Encrypt adds to a plaintext in a scope whose
// name is nameLen bytes long.
func Overhead(nameLen int) int { return len(itemMagic) + 1 + nameLen + 4 + saltLen + nonceLen + tagLen }

// MaxCiphertextSize bounds what Decrypt accepts: the largest item in a
// scope with the longest name.
const MaxCiphertextSize = MaxItemSize + len(itemMagic) + 1 + 63 + 4 + saltLen + nonceLen + tagLen

// Errors of Decrypt.
var (
	// ErrMalformed: the value is not an item of this format.
	ErrMalformed = errkind.New(errkind.Invalid,
		"the value is not a ciphertext of the encryption API: it is truncated, of an unknown format version, or its header is damaged").
		WithCode("MalformedCiphertext")
	// ErrDecrypt: the item does not decrypt with this scope, tenant and
	// additional data, or it was changed. Which one is deliberately not said.
	ErrDecrypt = errkind.New(errkind.Invalid,
		"the ciphertext cannot be decrypted: it was made with another scope key, in another tenant or with other additional data, or it was changed").
		WithCode("DecryptionFailed")
)

func errAADTooLarge(n int) error {
	return errkind.Errorf(errkind.TooLarge, "the additional data is %d bytes; at most %d bytes (64 KiB) are accepted", n, MaxAADSize).
		WithCode("AADTooLarge")
}

func errTooLarge(n int) error {
	return errkind.Errorf(errkind.TooLarge,
		"the item is %d bytes; the encryption API takes items of at most %d bytes (4 MiB): split larger data, or seal it locally with a data key",
		n, MaxItemSize).WithCode("ItemTooLarge")
}

// itemHeader parses the header of an item and returns the scope name it
// names (aliasing b), the key version and the header's length.
func itemHeader(b []byte) (name []byte, version uint32, n int, err error) {
	const fixed = len(itemMagic) + 1
	if len(b) < fixed || string(b[:len(itemMagic)]) != itemMagic {
		return nil, 0, 0, ErrMalformed
	}
	nl := int(b[len(itemMagic)])
	n = fixed + nl + 4 + saltLen
	if nl == 0 || len(b) < n+nonceLen+tagLen {
		return nil, 0, 0, ErrMalformed
	}
	name = b[fixed : fixed+nl]
	return name, binary.BigEndian.Uint32(b[fixed+nl:]), n, nil
}

// itemKDF derives item keys from a scope key: HKDF-SHA256-Expand to one
// block, which is HMAC-SHA256(scope key, info || 0x01). It keeps the hash
// states after the two padded keys (the precomputation of RFC 2104 §4),
// so that each item hashes only its own info instead of starting HMAC
// over: about a third of the time, and no allocation but the hash. The
// states stand for the scope key and are wiped with it.
type itemKDF struct{ inner, outer secret.Bytes }

// newItemKDF precomputes the item key derivation of a scope key.
func newItemKDF(scopeKey secret.Bytes) (itemKDF, error) {
	k := scopeKey.Reveal()
	if len(k) != 32 {
		return itemKDF{}, errkind.Errorf(errkind.Internal, "encryption: a scope key is 32 bytes, got %d", len(k))
	}
	var pad [sha256.BlockSize]byte
	defer secret.Wipe(pad[:])
	state := func(b byte) (secret.Bytes, error) {
		for i := range pad {
			pad[i] = b
		}
		for i, c := range k {
			pad[i] ^= c
		}
		h := sha256.New()
		defer h.Reset()
		_, _ = h.Write(pad[:])
		st, err := h.(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return secret.Bytes{}, errkind.Wrap(errkind.Internal, "encryption: precomputing the item key derivation", err)
		}
		return secret.New(st), nil
	}
	inner, err := state(0x36)
	if err != nil {
		return itemKDF{}, err
	}
	outer, err := state(0x5c)
	if err != nil {
		inner.Wipe()
		return itemKDF{}, err
	}
	return itemKDF{inner: inner, outer: outer}, nil
}

// zeroByte ends the tenant id in an item key's info and firstBlock is
// HKDF's block counter; package variables, so that writing them to the
// hash allocates nothing.
var zeroByte, firstBlock = []byte{0}, []byte{1}

func (d *itemKDF) wipe() {
	d.inner.Wipe()
	d.outer.Wipe()
}

// aead derives the item key of header for tenant tid and returns its
// AEAD. The derived key is wiped as soon as the cipher is built.
func (d itemKDF) aead(tid string, header []byte) (cipher.AEAD, error) {
	h := sha256.New()
	defer h.Reset()
	u := h.(encoding.BinaryUnmarshaler)
	if err := u.UnmarshalBinary(d.inner.Reveal()); err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: deriving the item key", err)
	}
	// info is the label, the tenant id, a zero byte and the header.
	_, _ = io.WriteString(h, itemKeyInfo)
	_, _ = io.WriteString(h, tid)
	_, _ = h.Write(zeroByte)
	_, _ = h.Write(header)
	_, _ = h.Write(firstBlock)
	var k [sha256.Size]byte
	defer secret.Wipe(k[:])
	h.Sum(k[:0])
	if err := u.UnmarshalBinary(d.outer.Reveal()); err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: deriving the item key", err)
	}
	_, _ = h.Write(k[:])
	h.Sum(k[:0])
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: building the item cipher", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: building the item cipher", err)
	}
	return aead, nil
}

// Encrypt encrypts plaintext (at most MaxItemSize bytes) in the scope
// name of tenant tenantID, bound to aad, and appends the item to dst,
// which may be nil; it returns the extended slice. The caller must be a
// principal of the scope. Appending lets a server reuse its buffers.
func (s *Service) Encrypt(ctx context.Context, c directory.Caller, tenantID, name string, dst, plaintext, aad []byte) ([]byte, error) {
	if len(plaintext) > MaxItemSize {
		return nil, errTooLarge(len(plaintext))
	}
	if len(aad) > MaxAADSize {
		return nil, errAADTooLarge(len(aad))
	}
	tid, err := checkTenant(tenantID)
	if err != nil {
		return nil, err
	}
	if name, err = checkName(name); err != nil {
		return nil, err
	}
	e, err := s.use(ctx, c, tid, name)
	if err != nil {
		return nil, err
	}
	defer e.release()

	start := len(dst)
	dst = append(dst, itemMagic...)
	dst = append(dst, byte(len(name)))
	dst = append(dst, name...)
	dst = binary.BigEndian.AppendUint32(dst, e.scope.KeyVersion)
	var salt [saltLen]byte
	if _, err := io.ReadFull(s.rand, salt[:]); err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: reading random bytes for an item", err)
	}
	dst = append(dst, salt[:]...)
	aead, err := e.items.aead(tid, dst[start:])
	if err != nil {
		return nil, err
	}
	return aead.Seal(dst, nil, plaintext, aad), nil
}

// Decrypt decrypts an item made by Encrypt in the same tenant and scope
// with the same aad, and appends the plaintext to dst, which may be nil.
// The caller must be a principal of the scope. Every authentication
// failure is ErrDecrypt.
func (s *Service) Decrypt(ctx context.Context, c directory.Caller, tenantID, name string, dst, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) > MaxCiphertextSize {
		return nil, errkind.Errorf(errkind.TooLarge,
			"the ciphertext is %d bytes; ciphertexts of the encryption API are at most %d bytes", len(ciphertext), MaxCiphertextSize).
			WithCode("ItemTooLarge")
	}
	if len(aad) > MaxAADSize {
		return nil, errAADTooLarge(len(aad))
	}
	tid, err := checkTenant(tenantID)
	if err != nil {
		return nil, err
	}
	if name, err = checkName(name); err != nil {
		return nil, err
	}
	itemScope, version, n, err := itemHeader(ciphertext)
	if err != nil {
		return nil, err
	}
	if string(itemScope) != name {
		return nil, errkind.Errorf(errkind.Invalid, "the ciphertext was made in the scope %q, not %q; decrypt it there",
			clip(string(itemScope)), name).WithCode("WrongScope")
	}
	e, err := s.use(ctx, c, tid, name)
	if err != nil {
		return nil, err
	}
	defer e.release()
	if version != e.scope.KeyVersion {
		return nil, ErrDecrypt
	}
	aead, err := e.items.aead(tid, ciphertext[:n])
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(dst, nil, ciphertext[n:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return out, nil
}

func dataKeyAAD(tid string) []byte { return append([]byte(dataKeyLabel), tid...) }

// GenerateDataKey returns a new AES-256 data key and the same key sealed
// under the scope key (envelope format, naming the scope and key version),
// for a client that encrypts locally and keeps the sealed key beside its
// data. The caller must be a principal of the scope and wipes the key.
func (s *Service) GenerateDataKey(ctx context.Context, c directory.Caller, tenantID, name string) (secret.Bytes, []byte, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return secret.Bytes{}, nil, err
	}
	if name, err = checkName(name); err != nil {
		return secret.Bytes{}, nil, err
	}
	e, err := s.use(ctx, c, tid, name)
	if err != nil {
		return secret.Bytes{}, nil, err
	}
	defer e.release()
	key, err := envelope.NewKey()
	if err != nil {
		return secret.Bytes{}, nil, err
	}
	return key, e.sealer.Seal(key.Reveal(), dataKeyAAD(tid)), nil
}

// DecryptDataKey opens a data key sealed by GenerateDataKey in the same
// tenant and scope. The caller must be a principal of the scope and wipes
// the key.
func (s *Service) DecryptDataKey(ctx context.Context, c directory.Caller, tenantID, name string, sealed []byte) (secret.Bytes, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return secret.Bytes{}, err
	}
	if name, err = checkName(name); err != nil {
		return secret.Bytes{}, err
	}
	keyScope, _, err := envelope.Header(sealed)
	if err != nil {
		return secret.Bytes{}, err
	}
	if keyScope != name {
		return secret.Bytes{}, errkind.Errorf(errkind.Invalid, "the data key was issued by the scope %q, not %q; decrypt it there",
			clip(keyScope), name).WithCode("WrongScope")
	}
	e, err := s.use(ctx, c, tid, name)
	if err != nil {
		return secret.Bytes{}, err
	}
	defer e.release()
	key, err := e.sealer.Open(sealed, dataKeyAAD(tid))
	if err != nil {
		return secret.Bytes{}, err
	}
	return secret.New(key), nil
}
