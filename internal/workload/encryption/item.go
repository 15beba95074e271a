package encryption

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
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

// itemAEAD derives the item key of header for tenant tid and returns its
// AEAD. The derived key is wiped as soon as the cipher is built.
func itemAEAD(scopeKey secret.Bytes, tid string, header []byte) (cipher.AEAD, error) {
	info := make([]byte, 0, len(itemKeyInfo)+len(tid)+1+len(header))
	info = append(info, itemKeyInfo...)
	info = append(info, tid...)
	info = append(info, 0)
	info = append(info, header...)
	k, err := hkdf.Expand(sha256.New, scopeKey.Reveal(), string(info), 32)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "encryption: deriving the item key", err)
	}
	defer secret.Wipe(k)
	block, err := aes.NewCipher(k)
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
	aead, err := itemAEAD(e.key, tid, dst[start:])
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
	aead, err := itemAEAD(e.key, tid, ciphertext[:n])
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
