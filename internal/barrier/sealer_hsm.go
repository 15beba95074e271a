package barrier

import (
	"context"
	"errors"
	"fmt"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// HSMKeys is what HSMSealer needs of a hardware security module: an AES
// key that lives in it and encrypts with AES-GCM inside it. Package hsm
// implements it; the composition root wires it in.
type HSMKeys interface {
	// SealKeyID returns the id of the seal key, creating it on first use.
	SealKeyID(ctx context.Context) ([]byte, error)
	// EncryptGCM encrypts plaintext and authenticates aad under key keyID.
	EncryptGCM(ctx context.Context, keyID, aad, plaintext []byte) ([]byte, error)
	// DecryptGCM reverses EncryptGCM; the caller owns the plaintext. A key
	// or token it cannot reach is errkind.Unavailable.
	DecryptGCM(ctx context.Context, keyID, aad, sealed []byte) ([]byte, error)
}

// Sealed keyring format of HSMSealer, version 2:
//
//	0x02 | key id length (1 byte) | key id | the HSM's AES-256-GCM output (IV, ciphertext, tag)
//
// The additional data is keyringAAD followed by everything before the HSM's
// output, so the key id cannot be swapped. The key id says which HSM key
// sealed the keyring: the seal key is found by it, whichever node created
// the token's seal key first.
const (
	sealedHSM = 0x02
	maxKeyID  = 64
)

// Seal kinds, as the configuration names them.
const (
	SealFile   = "file"
	SealPKCS11 = "pkcs11"
)

// HSMSealer seals the keyring with a key held in an HSM. A copy of the data
// directory, root key file included, reveals nothing without the HSM and
// its PIN.
type HSMSealer struct{ h HSMKeys }

var _ Sealer = (*HSMSealer)(nil)

// NewHSMSealer seals with h's seal key.
func NewHSMSealer(h HSMKeys) *HSMSealer { return &HSMSealer{h: h} }

func hsmAAD(header []byte) []byte {
	return append([]byte(keyringAAD), header...)
}

// Seal encrypts plaintext inside the HSM.
func (s *HSMSealer) Seal(ctx context.Context, plaintext []byte) ([]byte, error) {
	id, err := s.h.SealKeyID(ctx)
	if err != nil {
		return nil, err
	}
	if len(id) == 0 || len(id) > maxKeyID {
		return nil, errkind.Errorf(errkind.Internal, "barrier: the HSM seal key id is %d bytes", len(id))
	}
	header := append([]byte{sealedHSM, byte(len(id))}, id...)
	ct, err := s.h.EncryptGCM(ctx, id, hsmAAD(header), plaintext)
	if err != nil {
		return nil, err
	}
	return append(header, ct...), nil
}

// Unseal decrypts what Seal produced, inside the HSM.
func (s *HSMSealer) Unseal(ctx context.Context, ciphertext []byte) ([]byte, error) {
	if len(ciphertext) > 0 && ciphertext[0] == sealedV1 {
		return nil, errSealedByFile
	}
	if len(ciphertext) < 2 || ciphertext[0] != sealedHSM || ciphertext[1] == 0 || int(ciphertext[1]) > maxKeyID ||
		len(ciphertext) < 2+int(ciphertext[1]) {
		return nil, errNotSealed
	}
	n := 2 + int(ciphertext[1])
	header, id := ciphertext[:n], ciphertext[2:n]
	p, err := s.h.DecryptGCM(ctx, id, hsmAAD(header), ciphertext[n:])
	if err != nil {
		if errkind.Is(err, errkind.Unavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", errNotSealed, err)
	}
	return p, nil
}

var (
	errSealedByFile = errkind.New(errkind.FailedPrecondition, "barrier: the keyring is sealed by the root key file "+
		"(seal: file), not by the HSM; start with seal: file, or move the seal to the HSM with "+
		"`customerkey seal migrate --to pkcs11`")
	errSealedByHSM = errkind.New(errkind.FailedPrecondition, "barrier: the keyring is sealed by an HSM (seal: pkcs11), "+
		"not by the root key file; start with seal: pkcs11 and the hsm-module, hsm-token and hsm-pin-file it was "+
		"sealed with")
)

// SealedBy reports how the keyring in inner is sealed: SealFile, SealPKCS11,
// or "" when inner has no keyring yet (a new store). It reads the one
// reserved record and decrypts nothing.
func SealedBy(ctx context.Context, inner storage.Backend) (string, error) {
	e, err := storage.Get(ctx, inner, keyringKey)
	if errors.Is(err, storage.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	switch {
	case len(e.Value) > 0 && e.Value[0] == sealedV1:
		return SealFile, nil
	case len(e.Value) > 0 && e.Value[0] == sealedHSM:
		return SealPKCS11, nil
	}
	return "", errkind.New(errkind.Internal, "barrier: the stored keyring has an unknown seal format")
}

// Reseal seals the keyring stored in inner again, unsealing it with from
// and sealing it with to, in one transaction that checks the record did not
// change meanwhile. The data keys stay the same, so every value stays
// readable; only what unlocks them changes. Nothing else in inner is read
// or written. Run it with no server using inner.
func Reseal(ctx context.Context, inner storage.Backend, from, to Sealer) error {
	return inner.Update(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(keyringKey)
		if errors.Is(err, storage.ErrNotFound) {
			return errkind.New(errkind.FailedPrecondition, "barrier: the store has no keyring to re-seal: it was never opened")
		}
		if err != nil {
			return err
		}
		p, err := from.Unseal(ctx, e.Value)
		if err != nil {
			if errkind.Is(err, errkind.Unavailable) || errkind.Is(err, errkind.FailedPrecondition) {
				return err
			}
			return fmt.Errorf("%w: %w", ErrUnseal, err)
		}
		defer secret.Wipe(p)
		kr, err := decodeKeyring(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrUnseal, err)
		}
		kr.wipe() // decoded only to check that from really unsealed a keyring
		sealed, err := to.Seal(ctx, p)
		if err != nil {
			return errkind.Wrap(errkind.KindOf(err), "barrier: cannot seal the keyring with the new root key", err)
		}
		_, err = tx.Put(keyringKey, sealed, e.Version)
		return err
	})
}
