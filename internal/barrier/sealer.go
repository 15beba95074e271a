package barrier

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Sealer protects the keyring with the root key. The root key never leaves
// the sealer, so an implementation may keep it in a PKCS#11 HSM.
// Implementations are safe for concurrent use.
type Sealer interface {
	// Seal encrypts and authenticates plaintext.
	Seal(ctx context.Context, plaintext []byte) ([]byte, error)
	// Unseal reverses Seal and fails when ciphertext was not sealed by this
	// root key or was changed. The caller owns, and wipes, the plaintext. A
	// sealer that cannot reach its key should return an errkind.Unavailable
	// error, so that the barrier reports an outage rather than a wrong key.
	Unseal(ctx context.Context, ciphertext []byte) ([]byte, error)
}

// Sealed keyring format of FileSealer, version 1:
//
//	0x01 | nonce (12 bytes) | AES-256-GCM ciphertext and tag
const (
	sealedV1   = 0x01
	keyringAAD = "customerkey-keyring-v1"
)

var errNotSealed = errors.New("barrier: sealed data is malformed or was not sealed by this root key")

// FileSealer seals with a 32-byte AES-256-GCM root key read from a file in
// the data directory. Whoever reads the file and the data file together can
// read everything: keep them on the same protected volume only when the
// threat model allows it, or use an HSM sealer.
type FileSealer struct {
	key    secret.Bytes
	aead   cipher.AEAD
	closed atomic.Bool
}

var _ Sealer = (*FileSealer)(nil)

// NewFileSealer uses key, which must be 32 bytes, as the root key. It takes
// ownership of key and wipes it on Close.
func NewFileSealer(key secret.Bytes) (*FileSealer, error) {
	if key.Len() != keyLen {
		n := key.Len()
		key.Wipe()
		return nil, errkind.Errorf(errkind.Invalid, "barrier: a root key is %d bytes, want %d", n, keyLen)
	}
	block, err := aes.NewCipher(key.Reveal())
	if err != nil {
		key.Wipe()
		return nil, errkind.Wrap(errkind.Internal, "barrier: building the root key cipher", err)
	}
	// The random nonce comes from crypto/rand inside the AEAD; the keyring
	// is sealed once per rotation, far below the 2^32 messages where random
	// 96-bit nonces start to risk a collision.
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		key.Wipe()
		return nil, errkind.Wrap(errkind.Internal, "barrier: building the root key cipher", err)
	}
	return &FileSealer{key: key, aead: aead}, nil
}

// LoadOrCreateKeyFile reads the root key from path, creating the file with
// a new random key and mode 0600 when it does not exist. It refuses a file
// that others may read or that is not exactly 32 bytes, rather than guess:
// a replaced key would make every stored value unreadable.
func LoadOrCreateKeyFile(path string) (*FileSealer, error) {
	key, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, err
		}
		key, err = readKeyFile(path)
	}
	if err != nil {
		return nil, err
	}
	return NewFileSealer(key)
}

func readKeyFile(path string) (secret.Bytes, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return secret.Bytes{}, err
	}
	if err != nil {
		return secret.Bytes{}, errkind.Wrap(errkind.Internal, fmt.Sprintf("barrier: cannot open root key file %s", path), err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checks and the read see the
	// same file.
	fi, err := f.Stat()
	if err != nil {
		return secret.Bytes{}, errkind.Wrap(errkind.Internal, fmt.Sprintf("barrier: cannot stat root key file %s", path), err)
	}
	if !fi.Mode().IsRegular() {
		return secret.Bytes{}, errkind.Errorf(errkind.FailedPrecondition,
			"barrier: root key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return secret.Bytes{}, errkind.Errorf(errkind.FailedPrecondition,
			"barrier: root key file %s has mode %04o, so other users may read it; run `chmod 600 %s` as its owner (and consider whether the key was exposed)",
			path, perm, path)
	}
	if fi.Size() != keyLen {
		return secret.Bytes{}, errkind.Errorf(errkind.FailedPrecondition,
			"barrier: root key file %s is %d bytes, want exactly %d; restore the original file from backup (a new key cannot read data sealed by the old one), or move it away to start with an empty data directory",
			path, fi.Size(), keyLen)
	}
	buf := make([]byte, keyLen+1)
	n, err := io.ReadFull(f, buf)
	if err != io.ErrUnexpectedEOF || n != keyLen {
		secret.Wipe(buf)
		return secret.Bytes{}, errkind.Errorf(errkind.FailedPrecondition,
			"barrier: root key file %s changed while it was read; retry", path)
	}
	return secret.New(buf[:keyLen]), nil
}

// createKeyFile writes the key to a temporary file and links it into place,
// so that a crash never leaves a short key file behind and a concurrent
// creator's key is never overwritten.
func createKeyFile(path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".root-key-*") // created with mode 0600
	if err != nil {
		return errkind.Wrap(errkind.Internal, fmt.Sprintf("barrier: cannot create root key file in %s", dir), err)
	}
	defer os.Remove(tmp.Name())
	key := make([]byte, keyLen)
	_, _ = rand.Read(key) // crypto/rand.Read never fails
	_, err = tmp.Write(key)
	secret.Wipe(key)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if errors.Is(err, fs.ErrExist) {
		return nil // another process created it first; use theirs
	}
	if err != nil {
		return errkind.Wrap(errkind.Internal, fmt.Sprintf("barrier: cannot create root key file %s", path), err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the new name durable before any data depends on it
		_ = d.Close()
	}
	return nil
}

var errSealerClosed = errkind.New(errkind.Unavailable, "barrier: the root key sealer is closed")

// Seal encrypts plaintext under the root key.
func (s *FileSealer) Seal(_ context.Context, plaintext []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, errSealerClosed
	}
	out := make([]byte, 1, 1+s.aead.Overhead()+len(plaintext))
	out[0] = sealedV1
	return s.aead.Seal(out, nil, plaintext, []byte(keyringAAD)), nil
}

// Unseal decrypts what Seal produced.
func (s *FileSealer) Unseal(_ context.Context, ciphertext []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, errSealerClosed
	}
	if len(ciphertext) > 0 && ciphertext[0] == sealedHSM {
		return nil, errSealedByHSM
	}
	if len(ciphertext) < 1+s.aead.Overhead() || ciphertext[0] != sealedV1 {
		return nil, errNotSealed
	}
	out, err := s.aead.Open(nil, nil, ciphertext[1:], []byte(keyringAAD))
	if err != nil {
		return nil, errNotSealed
	}
	return out, nil
}

// Close wipes the root key. It is safe to call more than once.
func (s *FileSealer) Close() error {
	if !s.closed.Swap(true) {
		s.key.Wipe()
	}
	return nil
}
