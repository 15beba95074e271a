package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"

	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
)

// namedKey returns the AES-256 key of the token labelled label, creating it
// (a private, sensitive, never extractable token object permitting usage)
// when there is none. Several service nodes may create one at the same
// time; all of them then use the one with the smallest CKA_ID, and since a
// blob names the key it was made with by id, blobs of the others stay
// usable.
func (h *HSM) namedKey(ctx context.Context, label string, usage ...uint) ([]byte, error) {
	h.setup.Lock()
	defer h.setup.Unlock()
	if id := h.named[label]; id != nil {
		return id, nil
	}
	var id []byte
	err := h.do(ctx, "finding the "+label+" key", true, func(sh pkcs11.SessionHandle) error {
		var err error
		id, err = h.lowestID(sh, label)
		return err
	})
	if err == nil && id == nil {
		id = newID()
		t := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		}
		for _, u := range usage {
			t = append(t, pkcs11.NewAttribute(u, true))
		}
		err = h.do(ctx, "creating the "+label+" key", false, func(sh pkcs11.SessionHandle) error {
			if _, err := h.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, t); err != nil {
				return err
			}
			id, err = h.lowestID(sh, label)
			return err
		})
	}
	if err != nil {
		return nil, h.classify("preparing the "+label+" key", err)
	}
	if h.named == nil {
		h.named = map[string][]byte{}
	}
	h.named[label] = id
	return id, nil
}

// lowestID returns the smallest CKA_ID among the secret keys labelled
// label, or nil when there is none.
func (h *HSM) lowestID(sh pkcs11.SessionHandle, label string) ([]byte, error) {
	if err := h.p.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label)}); err != nil {
		return nil, err
	}
	found, _, err := h.p.FindObjects(sh, 64)
	if ferr := h.p.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	var lowest []byte
	for _, o := range found {
		at, err := h.p.GetAttributeValue(sh, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_ID, nil)})
		if err != nil {
			return nil, err
		}
		if id := at[0].Value; len(id) > 0 && (lowest == nil || bytes.Compare(id, lowest) < 0) {
			lowest = id
		}
	}
	return lowest, nil
}

// BackupKeyID returns the CKA_ID of the token's backup key, creating the key
// on first use: an AES-256 key that wraps key pairs for backups and never
// leaves the token itself (see privateTemplate for why it is not a trusted
// key).
func (h *HSM) BackupKeyID(ctx context.Context) ([]byte, error) {
	return h.namedKey(ctx, BackupLabel, pkcs11.CKA_WRAP, pkcs11.CKA_UNWRAP)
}

// BackupWrap wraps the private key id under the token's backup key
// (CKM_AES_KEY_WRAP_PAD of the key's PKCS#8 encoding). It returns the
// backup key's id, which BackupUnwrap needs, and the wrapped key; neither
// reveals anything without the token.
func (h *HSM) BackupWrap(ctx context.Context, id []byte) (backupKeyID, wrapped []byte, err error) {
	bk, err := h.BackupKeyID(ctx)
	if err != nil {
		return nil, nil, err
	}
	err = h.do(ctx, "wrapping a key for a backup", true, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_SECRET_KEY, bk, func(w pkcs11.ObjectHandle) error {
			return h.withObject(sh, pkcs11.CKO_PRIVATE_KEY, id, func(o pkcs11.ObjectHandle) error {
				var err error
				wrapped, err = h.p.WrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, w, o)
				return err
			})
		})
	})
	if isCode(err, pkcs11.CKR_KEY_UNEXTRACTABLE) || isCode(err, pkcs11.CKR_KEY_NOT_WRAPPABLE) {
		return nil, nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q refuses to wrap the key object %s "+
			"(%v): it was not created extractable, so it cannot be backed up", h.token, hex.EncodeToString(id), err).
			WithCode("HSMKeyNotExportable")
	}
	if err != nil {
		return nil, nil, h.classify("wrapping a key for a backup", err)
	}
	return bk, wrapped, nil
}

// BackupUnwrap unwraps what BackupWrap returned into a new private key
// object of keyType (jwk.RSA or jwk.EC) for usage, and returns it with the
// public key pub the caller kept (an RSA key's modulus is checked against
// it; an EC private key object does not expose its point). A backup key id
// the token does not know means the backup was made with another HSM
// deployment: errkind.Invalid, code BadParameter.
func (h *HSM) BackupUnwrap(ctx context.Context, backupKeyID, wrapped []byte, keyType string, u Usage, pub crypto.PublicKey) (Key, error) {
	if err := errUsage(u, keyType); err != nil {
		return Key{}, err
	}
	ckk := uint(pkcs11.CKK_RSA)
	if keyType == jwk.EC {
		ckk = pkcs11.CKK_EC
	} else if keyType != jwk.RSA {
		return Key{}, errkind.Errorf(errkind.Invalid, "hsm: cannot restore a key of type %q", keyType).WithCode("BadParameter")
	}
	id := newID()
	err := h.do(ctx, "restoring a key from a backup", false, func(sh pkcs11.SessionHandle) error {
		bk, found, err := h.find(sh, pkcs11.CKO_SECRET_KEY, backupKeyID)
		if err != nil {
			return err
		}
		if !found {
			if _, err := h.p.GetTokenInfo(h.slotNow()); err != nil {
				return err
			}
			return errkind.Errorf(errkind.Invalid, "The backup holds HSM-protected keys wrapped under backup key %s, "+
				"which HSM token %q does not have: a backup of HSM keys restores only into the HSM deployment it was "+
				"made in.", hex.EncodeToString(backupKeyID), h.token).WithCode("BadParameter")
		}
		o, err := h.p.UnwrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, bk, wrapped,
			privateTemplate(ckk, id, u))
		if err != nil {
			if sessionLost(err) || isCode(err, pkcs11.CKR_DEVICE_MEMORY) {
				return err
			}
			return errkind.Wrap(errkind.Invalid, "The backup's HSM-protected key could not be unwrapped: the backup is "+
				"damaged.", err).WithCode("BadParameter")
		}
		if rp, ok := pub.(*rsa.PublicKey); ok {
			got, err := h.rsaPublic(sh, o)
			if err != nil || !got.Equal(rp) {
				_ = h.p.DestroyObject(sh, o)
				if err != nil {
					return err
				}
				return errkind.New(errkind.Invalid, "The backup's HSM-protected key does not match its public key: the "+
					"backup is damaged.").WithCode("BadParameter")
			}
		}
		return nil
	})
	if err != nil {
		return Key{}, h.classify("restoring a key from a backup", err)
	}
	return Key{ID: id, Public: pub}, nil
}

// ImportTransfer imports the target key of a Bring Your Own Key transfer,
// protected by the key exchange key kek (a key pair of this token made with
// UseKeyExchange): ciphertext is, as Azure's BYOK specification and PKCS#11
// CKM_RSA_AES_KEY_WRAP have it, an ephemeral AES key encrypted with
// RSA-OAEP (SHA-1) under the KEK, followed by the target key's PKCS#8
// encoding wrapped with AES key wrap with padding (RFC 5649) under that AES
// key. Tokens without CKM_RSA_AES_KEY_WRAP (SoftHSM2 among them) are served
// the same way in two steps: the AES key is unwrapped into a session
// object with the KEK, then the target key with the AES key; the AES key is
// destroyed at once, and the target key never exists outside the token in
// the clear. Only RSA targets are accepted: an unwrapped EC private key
// object does not expose its public point, which the vault must publish.
func (h *HSM) ImportTransfer(ctx context.Context, kek, ciphertext []byte, u Usage) (Key, error) {
	if err := errUsage(u, jwk.RSA); err != nil {
		return Key{}, err
	}
	bad := func(why string, err error) error {
		return errkind.Wrap(errkind.Invalid, "The key transfer blob could not be imported: "+why, err).WithCode("BadParameter")
	}
	id := newID()
	var pub *rsa.PublicKey
	err := h.do(ctx, "importing a key transfer blob", false, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_PRIVATE_KEY, kek, func(ko pkcs11.ObjectHandle) error {
			kp, err := h.rsaPublic(sh, ko)
			if err != nil {
				return err
			}
			k := kp.Size()
			if len(ciphertext) < k+24 || (len(ciphertext)-k)%8 != 0 {
				return bad("its ciphertext is not an RSA-OAEP block of the key exchange key's size followed by an "+
					"AES key-wrapped key.", nil)
			}
			eph, err := h.p.UnwrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, oaepSHA1)}, ko,
				ciphertext[:k], []*pkcs11.Attribute{
					pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
					pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
					pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
					pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
					pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
					pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
					pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true),
				})
			if err != nil {
				if sessionLost(err) || isCode(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
					return err
				}
				return bad("its transfer key does not decrypt with the key exchange key (the blob was made for "+
					"another KEK, or is damaged).", err)
			}
			defer h.p.DestroyObject(sh, eph)
			o, err := h.p.UnwrapKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}, eph,
				ciphertext[k:], privateTemplate(pkcs11.CKK_RSA, id, u))
			if err != nil {
				if sessionLost(err) || isCode(err, pkcs11.CKR_DEVICE_MEMORY) {
					return err
				}
				return bad("its target key does not unwrap as an RSA private key in PKCS#8 form (the blob is "+
					"damaged, or the target is not an RSA key).", err)
			}
			pub, err = h.rsaPublic(sh, o)
			if err == nil && pub.N.BitLen() != 2048 && pub.N.BitLen() != 3072 && pub.N.BitLen() != 4096 {
				err = bad("the target key is not a 2048, 3072 or 4096-bit RSA key.", nil)
			}
			if err != nil {
				_ = h.p.DestroyObject(sh, o)
			}
			return err
		})
	})
	if isCode(err, pkcs11.CKR_KEY_FUNCTION_NOT_PERMITTED) {
		return Key{}, errkind.New(errkind.Invalid, "The key named as the key exchange key cannot unwrap: it was not "+
			"created as a key exchange key (key_ops [\"import\"]).").WithCode("BadParameter")
	}
	if err != nil {
		return Key{}, h.classify("importing a key transfer blob", err)
	}
	return Key{ID: id, Public: pub}, nil
}

// EncryptGCM encrypts plaintext with AES-256-GCM inside the token under the
// secret key keyID (the seal key, or a key of GenerateSecretKey), authenticating aad too. The output is the 12-byte IV
// followed by the ciphertext and the 16-byte tag. The IV is random; a token
// that picks its own (some do) is followed.
func (h *HSM) EncryptGCM(ctx context.Context, keyID, aad, plaintext []byte) ([]byte, error) {
	var out []byte
	err := h.do(ctx, "encrypting with an AES key", true, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_SECRET_KEY, keyID, func(o pkcs11.ObjectHandle) error {
			iv := make([]byte, gcmIVLen)
			_, _ = rand.Read(iv)
			params := pkcs11.NewGCMParams(iv, aad, 128)
			defer params.Free()
			if err := h.p.EncryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, o); err != nil {
				return err
			}
			ct, err := h.p.Encrypt(sh, plaintext)
			if err != nil {
				return err
			}
			if used := params.IV(); len(used) == gcmIVLen {
				iv = used
			}
			out = append(iv, ct...)
			return nil
		})
	})
	if err != nil {
		return nil, h.classify("encrypting with an AES key", err)
	}
	return out, nil
}

const gcmIVLen = 12

// DecryptGCM reverses EncryptGCM. Data that does not authenticate (another
// key, another aad, a change) is an errkind.Internal error that says so.
// The caller owns, and wipes, the plaintext.
func (h *HSM) DecryptGCM(ctx context.Context, keyID, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < gcmIVLen+16 {
		return nil, errNotAuthentic
	}
	var out []byte
	err := h.do(ctx, "decrypting with an AES key", true, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_SECRET_KEY, keyID, func(o pkcs11.ObjectHandle) error {
			params := pkcs11.NewGCMParams(sealed[:gcmIVLen], aad, 128)
			defer params.Free()
			if err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, o); err != nil {
				return err
			}
			pt, err := finishDecrypt(h.p, sh, sealed[gcmIVLen:])
			if err != nil {
				if sessionLost(err) {
					return err
				}
				return errNotAuthentic
			}
			out = pt.Reveal()
			return nil
		})
	})
	if err != nil {
		return nil, h.classify("decrypting with an AES key", err)
	}
	return out, nil
}

var errNotAuthentic = errkind.New(errkind.Internal, "hsm: the sealed data does not authenticate under the HSM AES key it names")

// SealKeyID returns the CKA_ID of the token's seal key, creating the key on
// first use: an AES-256 key that encrypts and decrypts inside the token and
// never leaves it.
func (h *HSM) SealKeyID(ctx context.Context) ([]byte, error) {
	return h.namedKey(ctx, SealLabel, pkcs11.CKA_ENCRYPT, pkcs11.CKA_DECRYPT)
}

// SecretLabel labels the AES keys of GenerateSecretKey.
const SecretLabel = "customerkey-secret"

// GenerateSecretKey generates an AES-256 key inside the token for
// EncryptGCM and DecryptGCM, and returns its random CKA_ID: a private,
// sensitive, never extractable token object labelled SecretLabel, so that
// nothing outside the token ever holds its value and DestroyKey destroys it
// for good. dep keeps one per data encryption policy (its availability key),
// so that purging the policy crypto-shreds whatever the store still holds of
// it. A full token is errkind.Unavailable with code HSMFull.
func (h *HSM) GenerateSecretKey(ctx context.Context) ([]byte, error) {
	id := newID()
	t := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, SecretLabel),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
	}
	err := h.do(ctx, "generating an AES key", false, func(sh pkcs11.SessionHandle) error {
		_, err := h.p.GenerateKey(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, t)
		return err
	})
	if err != nil {
		return nil, h.classify("generating an AES key", err)
	}
	return id, nil
}
