package hsm

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"hash"

	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
)

// Decrypt decrypts ct with the RSA private key id inside the token, as the
// Key Vault decrypt and unwrapKey operations do: alg is RSA-OAEP (SHA-1),
// RSA-OAEP-256 or RSA1_5. ct must be as long as the modulus. Every failure
// that depends on the ciphertext is kcrypto.ErrDecryption; a token that is
// gone, or a key object that is missing, is errkind.Unavailable. The caller
// owns, and wipes, the plaintext.
func (h *HSM) Decrypt(ctx context.Context, id []byte, alg string, ct []byte) (secret.Bytes, error) {
	var out secret.Bytes
	err := h.do(ctx, "decrypting", true, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_PRIVATE_KEY, id, func(o pkcs11.ObjectHandle) error {
			pt, err := h.decrypt(sh, o, alg, ct)
			out = pt
			return err
		})
	})
	if err != nil {
		return secret.Bytes{}, h.classify("decrypting", err)
	}
	return out, nil
}

var oaepSHA1 = pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1, pkcs11.CKZ_DATA_SPECIFIED, nil)

func (h *HSM) decrypt(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, alg string, ct []byte) (secret.Bytes, error) {
	var mech *pkcs11.Mechanism
	switch alg {
	case kcrypto.RSA15:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
	case kcrypto.RSAOAEP:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, oaepSHA1)
	case kcrypto.RSAOAEP256:
		if h.oaep256Raw.Load() {
			return h.decryptOAEPRaw(sh, o, ct)
		}
		p := pkcs11.NewOAEPParams(pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil)
		err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, p)}, o)
		if isCode(err, pkcs11.CKR_ARGUMENTS_BAD) || isCode(err, pkcs11.CKR_MECHANISM_PARAM_INVALID) {
			// SoftHSM2 2.6 implements OAEP with SHA-1 only. Remember it, so
			// the refused attempt costs one call per HSM value, not one per
			// operation.
			h.oaep256Raw.Store(true)
			return h.decryptOAEPRaw(sh, o, ct)
		}
		if err != nil {
			return secret.Bytes{}, err
		}
		return finishDecrypt(h.p, sh, ct)
	default:
		return secret.Bytes{}, errkind.Errorf(errkind.Invalid, "hsm: %.32q is not an RSA decryption algorithm; use "+
			"RSA-OAEP, RSA-OAEP-256 or RSA1_5", alg).WithCode("BadParameter")
	}
	if err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{mech}, o); err != nil {
		return secret.Bytes{}, err
	}
	return finishDecrypt(h.p, sh, ct)
}

// finishDecrypt runs C_Decrypt of an initialised operation. A failure of
// the session is returned as is (the caller may reconnect); any other
// failure is the one opaque ErrDecryption.
func finishDecrypt(p *pkcs11.Ctx, sh pkcs11.SessionHandle, ct []byte) (secret.Bytes, error) {
	pt, err := p.Decrypt(sh, ct)
	if err != nil {
		if sessionLost(err) {
			return secret.Bytes{}, err
		}
		return secret.Bytes{}, kcrypto.ErrDecryption
	}
	return secret.New(pt), nil
}

// decryptOAEPRaw is RSA-OAEP-256 on a token that implements OAEP with
// SHA-1 only: the private-key operation runs in the token (CKM_RSA_X_509)
// and the OAEP padding is checked here, in constant time, as RFC 8017
// §7.1.2 describes. The padded block is on the host either way: a token
// returns the plaintext it unpads, and this one is wiped.
func (h *HSM) decryptOAEPRaw(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, ct []byte) (secret.Bytes, error) {
	if !h.mechs[pkcs11.CKM_RSA_X_509] {
		return secret.Bytes{}, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q supports neither RSA-OAEP with "+
			"SHA-256 nor raw RSA (CKM_RSA_X_509), so RSA-OAEP-256 cannot be decrypted; use RSA-OAEP", h.token).
			WithCode("HSMUnsupported")
	}
	if err := h.p.DecryptInit(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_X_509, nil)}, o); err != nil {
		return secret.Bytes{}, err
	}
	raw, err := finishDecrypt(h.p, sh, ct)
	if err != nil {
		return secret.Bytes{}, err
	}
	defer raw.Wipe()
	k := len(ct)
	if raw.Len() > k {
		return secret.Bytes{}, kcrypto.ErrDecryption
	}
	em := make([]byte, k) // a token may drop the leading zero bytes
	defer secret.Wipe(em)
	copy(em[k-raw.Len():], raw.Reveal())
	pt, ok := oaepUnpad(sha256.New(), em)
	if !ok {
		return secret.Bytes{}, kcrypto.ErrDecryption
	}
	return secret.Copy(pt), nil
}

// oaepUnpad decodes an EME-OAEP block em (RFC 8017 §7.1.2 step 3) with an
// empty label, without branching on secret data until the end. The result
// aliases em.
func oaepUnpad(hf hash.Hash, em []byte) ([]byte, bool) {
	hLen := hf.Size()
	k := len(em)
	if k < 2*hLen+2 {
		return nil, false
	}
	hf.Reset()
	lHash := hf.Sum(nil)
	seed, db := em[1:1+hLen], em[1+hLen:]
	mgf1XOR(seed, hf, db)
	mgf1XOR(db, hf, seed)
	good := subtle.ConstantTimeByteEq(em[0], 0) & subtle.ConstantTimeCompare(db[:hLen], lHash)
	rest := db[hLen:]
	// Find the 0x01 that ends the zero padding; anything but zeros before
	// it is invalid.
	looking, index, invalid := 1, 0, 0
	for i := range rest {
		zero := subtle.ConstantTimeByteEq(rest[i], 0)
		one := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(looking&one, i, index)
		looking = subtle.ConstantTimeSelect(one, 0, looking)
		invalid = subtle.ConstantTimeSelect(looking&^zero, 1, invalid)
	}
	if good&(1-looking)&(1-invalid) != 1 {
		return nil, false
	}
	return rest[index+1:], true
}

// mgf1XOR xors out with MGF1(seed) built on hf (RFC 8017 §B.2.1).
func mgf1XOR(out []byte, hf hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	for done := 0; done < len(out); {
		hf.Reset()
		hf.Write(seed)
		hf.Write(counter[:])
		digest = hf.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
	secret.Wipe(digest)
}

// DigestInfo prefixes of EMSA-PKCS1-v1_5 (RFC 8017 §9.2, note 1): CKM_RSA_PKCS
// signs the DigestInfo, which the caller builds.
var digestInfo = map[string][]byte{
	kcrypto.RS256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	kcrypto.RS384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	kcrypto.RS512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// PSS parameters: the hash and MGF1 of the algorithm, salt as long as the
// hash (as kcrypto signs).
var pss = map[string]struct{ hash, mgf, salt uint }{
	kcrypto.PS256: {pkcs11.CKM_SHA256, pkcs11.CKG_MGF1_SHA256, 32},
	kcrypto.PS384: {pkcs11.CKM_SHA384, pkcs11.CKG_MGF1_SHA384, 48},
	kcrypto.PS512: {pkcs11.CKM_SHA512, pkcs11.CKG_MGF1_SHA512, 64},
}

// Sign signs digest with the private key id inside the token: RS256/384/512
// (CKM_RSA_PKCS over the DigestInfo), PS256/384/512 (CKM_RSA_PKCS_PSS, salt
// length = hash length) or ES256/384/512/ES256K (CKM_ECDSA; the signature is
// r‖s, the JWS form). The digest must have the algorithm's hash length.
// Which algorithm suits which key is the caller's to check.
func (h *HSM) Sign(ctx context.Context, id []byte, alg string, digest []byte) ([]byte, error) {
	n := kcrypto.DigestSize(alg)
	if n == 0 {
		return nil, errkind.Errorf(errkind.Invalid, "hsm: %.32q is not a signature algorithm", alg).WithCode("BadParameter")
	}
	if len(digest) != n {
		return nil, errkind.Errorf(errkind.Invalid, "hsm: the digest for %s must be %d bytes, not %d", alg, n, len(digest)).
			WithCode("BadParameter")
	}
	var mech *pkcs11.Mechanism
	data := digest
	switch {
	case digestInfo[alg] != nil:
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)
		data = append(append([]byte(nil), digestInfo[alg]...), digest...)
	case pss[alg].hash != 0:
		if !h.mechs[pkcs11.CKM_RSA_PKCS_PSS] {
			return nil, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q cannot make PSS signatures "+
				"(no CKM_RSA_PKCS_PSS); use RS256, RS384 or RS512", h.token).WithCode("HSMUnsupported")
		}
		p := pss[alg]
		mech = pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_PSS, pkcs11.NewPSSParams(p.hash, p.mgf, p.salt))
	default: // ES*: the digest is signed as it is
		mech = pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)
	}
	var sig []byte
	err := h.do(ctx, "signing", true, func(sh pkcs11.SessionHandle) error {
		return h.withObject(sh, pkcs11.CKO_PRIVATE_KEY, id, func(o pkcs11.ObjectHandle) error {
			if err := h.p.SignInit(sh, []*pkcs11.Mechanism{mech}, o); err != nil {
				return err
			}
			var err error
			sig, err = h.p.Sign(sh, data)
			return err
		})
	})
	if err != nil {
		return nil, h.classify("signing", err)
	}
	return sig, nil
}
