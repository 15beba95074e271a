package hsm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/hex"
	"math/big"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/secret"
)

// Labels of the objects this package creates. The label says who made an
// object; the random CKA_ID names it.
const (
	KeyLabel    = "customerkey-key"
	BackupLabel = "customerkey-backup"
	SealLabel   = "customerkey-seal"
)

// idLen is the length of the random CKA_ID of every object made here.
const idLen = 16

// Usage says what a key pair may do inside the token.
type Usage uint8

const (
	// UseOperations permits decrypt and sign: the Key Vault operations
	// that need the private key (encrypt and verify use the public key and
	// run outside the token).
	UseOperations Usage = iota
	// UseKeyExchange permits unwrap only: the key exchange key of Bring
	// Your Own Key, which decrypts nothing but transfer blobs.
	UseKeyExchange
)

// KeySpec describes a key pair to generate.
type KeySpec struct {
	Type  string // jwk.RSA or jwk.EC
	Bits  int    // RSA: 2048, 3072 or 4096
	Curve string // EC: jwk.P256, P384, P521 or P256K
	Usage Usage
}

// Key is a private key object in the token and its public key.
type Key struct {
	// ID is the object's CKA_ID, all a caller keeps to use it again.
	ID []byte
	// Public is *rsa.PublicKey, *ecdsa.PublicKey or *secp256k1.PublicKey.
	Public crypto.PublicKey
}

// Protection of private and secret keys.
//
// Sensitive: the value never leaves the token in the clear
// (C_GetAttributeValue of CKA_VALUE, CKA_PRIVATE_EXPONENT and the other
// private members answers CKR_ATTRIBUTE_SENSITIVE).
//
// Extractable, for key pairs only, toward the backup key: Key Vault backs
// keys up, and a key that cannot leave the token cannot be backed up, so
// BackupKey wraps it under the token's backup key (CKM_AES_KEY_WRAP_PAD),
// an AES key that is itself sensitive and never extractable. PKCS#11 can
// restrict wrapping to trusted keys (CKA_WRAP_WITH_TRUSTED), and SoftHSM2
// honours it, but only the security officer may set CKA_TRUSTED, and the
// security officer can create only public objects: a public unwrapping key
// lets anyone who reaches the token, without a PIN, unwrap a backup blob
// into a key whose value is readable (checked against SoftHSM2 2.6.1). A
// private backup key needs the user PIN for that. Without an unwrap
// template (CKA_UNWRAP_TEMPLATE, which miekg/pkcs11 cannot express), a
// holder of the user PIN can move keys out either way, so trusted wrapping
// would add no protection against the PIN holder and would remove the
// protection against everyone else. The user PIN is therefore as precious
// as the keys: keep hsm-pin-file readable by the service only.
func privateTemplate(keyType uint, id []byte, u Usage) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, true),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, KeyLabel),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, u == UseOperations && keyType == pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, u == UseOperations),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, u == UseKeyExchange),
	}
}

func newID() []byte {
	id := make([]byte, idLen)
	_, _ = rand.Read(id) // crypto/rand.Read never fails
	return id
}

func errUsage(u Usage, keyType string) error {
	if u != UseOperations && u != UseKeyExchange {
		return errkind.Errorf(errkind.Internal, "hsm: unknown key usage %d", u)
	}
	if u == UseKeyExchange && keyType != jwk.RSA {
		return errkind.New(errkind.Invalid, "hsm: a key exchange key must be RSA").WithCode("BadParameter")
	}
	return nil
}

// Named curves: their OIDs (CKA_EC_PARAMS) and Go curves.
var curves = map[string]asn1.ObjectIdentifier{
	jwk.P256:  {1, 2, 840, 10045, 3, 1, 7},
	jwk.P384:  {1, 3, 132, 0, 34},
	jwk.P521:  {1, 3, 132, 0, 35},
	jwk.P256K: {1, 3, 132, 0, 10},
}

func goCurve(crv string) elliptic.Curve {
	switch crv {
	case jwk.P256:
		return elliptic.P256()
	case jwk.P384:
		return elliptic.P384()
	case jwk.P521:
		return elliptic.P521()
	}
	return nil
}

// GenerateKey generates a key pair inside the token: RSA of 2048, 3072 or
// 4096 bits with e = 65537, or EC on P-256, P-384, P-521 or P-256K. The
// private key is a token object (sensitive, extractable toward the backup
// key only, see privateTemplate); the public key is read and its session
// object dropped, since callers keep the public key themselves. A full
// token is errkind.Unavailable with code HSMFull; nothing is left behind
// when generation fails.
func (h *HSM) GenerateKey(ctx context.Context, spec KeySpec) (Key, error) {
	if err := errUsage(spec.Usage, spec.Type); err != nil {
		return Key{}, err
	}
	id := newID()
	var mech uint
	var pubT, privT []*pkcs11.Attribute
	switch spec.Type {
	case jwk.RSA:
		if !slices.Contains([]int{2048, 3072, 4096}, spec.Bits) {
			return Key{}, errkind.Errorf(errkind.Invalid, "hsm: RSA keys are 2048, 3072 or 4096 bits, not %d", spec.Bits).WithCode("BadParameter")
		}
		mech = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
		pubT = []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS_BITS, spec.Bits),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
		}
		privT = privateTemplate(pkcs11.CKK_RSA, id, spec.Usage)
	case jwk.EC:
		oid, ok := curves[spec.Curve]
		if !ok {
			return Key{}, errkind.Errorf(errkind.Invalid, "hsm: the curve %q is not supported; use P-256, P-384, P-521 or P-256K", spec.Curve).WithCode("BadParameter")
		}
		if !h.mechs[pkcs11.CKM_EC_KEY_PAIR_GEN] || !h.mechs[pkcs11.CKM_ECDSA] {
			return Key{}, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q cannot generate or use EC keys "+
				"(no CKM_EC_KEY_PAIR_GEN or CKM_ECDSA); use RSA-HSM", h.token).WithCode("HSMUnsupported")
		}
		params, _ := asn1.Marshal(oid)
		mech = pkcs11.CKM_EC_KEY_PAIR_GEN
		pubT = []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params),
		}
		privT = privateTemplate(pkcs11.CKK_EC, id, spec.Usage)
	default:
		return Key{}, errkind.Errorf(errkind.Invalid, "hsm: cannot generate a key of type %q; use RSA or EC", spec.Type).WithCode("BadParameter")
	}
	var pub crypto.PublicKey
	err := h.do(ctx, "generating a key pair", false, func(sh pkcs11.SessionHandle) error {
		pubH, privH, err := h.p.GenerateKeyPair(sh, []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}, pubT, privT)
		if err != nil {
			return err
		}
		defer h.p.DestroyObject(sh, pubH)
		if spec.Type == jwk.RSA {
			pub, err = h.rsaPublic(sh, privH)
		} else {
			pub, err = h.ecPublic(sh, pubH, spec.Curve)
		}
		if err != nil {
			_ = h.p.DestroyObject(sh, privH) // a key the caller cannot use must not stay behind
		}
		return err
	})
	if err != nil {
		curveRefused := isCode(err, pkcs11.CKR_CURVE_NOT_SUPPORTED) || isCode(err, pkcs11.CKR_DOMAIN_PARAMS_INVALID) ||
			isCode(err, pkcs11.CKR_TEMPLATE_INCONSISTENT)
		if spec.Type == jwk.EC && curveRefused {
			return Key{}, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q does not support the curve %s (%v); "+
				"use another curve", h.token, spec.Curve, err).WithCode("HSMUnsupported")
		}
		return Key{}, h.classify("generating a key pair", err)
	}
	return Key{ID: id, Public: pub}, nil
}

// rsaPublic reads the public key of an RSA key object.
func (h *HSM) rsaPublic(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle) (*rsa.PublicKey, error) {
	at, err := h.p.GetAttributeValue(sh, o, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_MODULUS, nil), pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, nil)})
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(at[0].Value)
	e := new(big.Int).SetBytes(at[1].Value)
	if n.BitLen() < 2048 || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
		return nil, errkind.New(errkind.Internal, "hsm: the token reported an RSA public key out of range")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

// ecPublic reads the public point of an EC public key object: CKA_EC_POINT
// is the uncompressed point in a DER OCTET STRING (some tokens omit the
// OCTET STRING, which is accepted too).
func (h *HSM) ecPublic(sh pkcs11.SessionHandle, o pkcs11.ObjectHandle, crv string) (crypto.PublicKey, error) {
	at, err := h.p.GetAttributeValue(sh, o, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, err
	}
	point := at[0].Value
	var inner []byte
	if rest, err := asn1.Unmarshal(point, &inner); err == nil && len(rest) == 0 {
		point = inner
	}
	return parsePoint(crv, point)
}

func parsePoint(crv string, point []byte) (crypto.PublicKey, error) {
	bad := errkind.New(errkind.Internal, "hsm: the token reported an EC public point that does not parse")
	if crv == jwk.P256K {
		k, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return nil, bad
		}
		return k, nil
	}
	c := goCurve(crv)
	if c == nil {
		return nil, bad
	}
	k, err := ecdsa.ParseUncompressedPublicKey(c, point)
	if err != nil {
		return nil, bad
	}
	return k, nil
}

// ImportKey creates a private key object from a software key, for keys
// imported into a premium vault with the HSM protection asked for: the key
// crosses the host once, and the token keeps it like a key it generated
// (sensitive, extractable toward the backup key only). priv is an
// *rsa.PrivateKey, an *ecdsa.PrivateKey or a *jwk.Secp256k1PrivateKey; the
// caller still owns and wipes it.
func (h *HSM) ImportKey(ctx context.Context, priv crypto.Signer, u Usage) (Key, error) {
	id := newID()
	var attrs []*pkcs11.Attribute
	var wipe [][]byte
	defer func() {
		for _, b := range wipe {
			secret.Wipe(b)
		}
	}()
	private := func(b []byte) []byte { wipe = append(wipe, b); return b }
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		if err := errUsage(u, jwk.RSA); err != nil {
			return Key{}, err
		}
		if len(k.Primes) != 2 {
			return Key{}, errkind.New(errkind.Invalid, "hsm: only two-prime RSA keys can be imported").WithCode("BadParameter")
		}
		k.Precompute()
		attrs = append(privateTemplate(pkcs11.CKK_RSA, id, u),
			pkcs11.NewAttribute(pkcs11.CKA_MODULUS, k.N.Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(k.E)).Bytes()),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE_EXPONENT, private(k.D.Bytes())),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_1, private(k.Primes[0].Bytes())),
			pkcs11.NewAttribute(pkcs11.CKA_PRIME_2, private(k.Primes[1].Bytes())),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_1, private(k.Precomputed.Dp.Bytes())),
			pkcs11.NewAttribute(pkcs11.CKA_EXPONENT_2, private(k.Precomputed.Dq.Bytes())),
			pkcs11.NewAttribute(pkcs11.CKA_COEFFICIENT, private(k.Precomputed.Qinv.Bytes())))
	case *ecdsa.PrivateKey:
		if err := errUsage(u, jwk.EC); err != nil {
			return Key{}, err
		}
		crv := k.Curve.Params().Name
		oid, ok := curves[crv]
		if !ok {
			return Key{}, errkind.Errorf(errkind.Invalid, "hsm: the curve %s is not supported", crv).WithCode("BadParameter")
		}
		d, err := k.Bytes()
		if err != nil {
			return Key{}, errkind.Wrap(errkind.Invalid, "hsm: the EC key is not valid", err).WithCode("BadParameter")
		}
		params, _ := asn1.Marshal(oid)
		attrs = append(privateTemplate(pkcs11.CKK_EC, id, u),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_VALUE, private(d)))
	case *jwk.Secp256k1PrivateKey:
		if err := errUsage(u, jwk.EC); err != nil {
			return Key{}, err
		}
		d := k.Secp256k1().Key.Bytes()
		params, _ := asn1.Marshal(curves[jwk.P256K])
		attrs = append(privateTemplate(pkcs11.CKK_EC, id, u),
			pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, params), pkcs11.NewAttribute(pkcs11.CKA_VALUE, private(d[:])))
	default:
		return Key{}, errkind.Errorf(errkind.Invalid, "hsm: cannot import a key of type %T", priv).WithCode("BadParameter")
	}
	err := h.do(ctx, "importing a key", false, func(sh pkcs11.SessionHandle) error {
		_, err := h.p.CreateObject(sh, attrs)
		return err
	})
	if err != nil {
		if isCode(err, pkcs11.CKR_CURVE_NOT_SUPPORTED) || isCode(err, pkcs11.CKR_DOMAIN_PARAMS_INVALID) {
			return Key{}, errkind.Errorf(errkind.FailedPrecondition, "hsm: token %q does not support this key's curve (%v)",
				h.token, err).WithCode("HSMUnsupported")
		}
		return Key{}, h.classify("importing a key", err)
	}
	return Key{ID: id, Public: priv.Public()}, nil
}

// DestroyKey destroys the key object id: a private key (of a key pair) or
// a secret key (an availability key of GenerateSecretKey). An object that
// is already gone is not an error, so that an interrupted purge can be
// repeated.
func (h *HSM) DestroyKey(ctx context.Context, id []byte) error {
	err := h.do(ctx, "destroying a key", false, func(sh pkcs11.SessionHandle) error {
		for _, class := range []uint{pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_SECRET_KEY} {
			if err := h.destroyAll(sh, class, id); err != nil {
				return err
			}
		}
		return nil
	})
	return h.classify("destroying a key", err)
}

// destroyAll destroys every object of class with CKA_ID id. A token may
// hold more than one (a retried import); the loop is bounded against a
// token that keeps reporting one.
func (h *HSM) destroyAll(sh pkcs11.SessionHandle, class uint, id []byte) error {
	for range 8 {
		o, found, err := h.find(sh, class, id)
		if err != nil || !found {
			return err
		}
		if err := h.p.DestroyObject(sh, o); err != nil && !isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) {
			return err
		}
		h.forget(class, id)
	}
	return errkind.Errorf(errkind.Internal, "hsm: token %q still reports a key object with CKA_ID %s after destroying it",
		h.token, hex.EncodeToString(id))
}

// find looks up the object of class with CKA_ID id, through the handle
// cache. Object handles stay valid across the sessions of the application
// while the token is logged in; reconnect clears the cache.
func (h *HSM) find(sh pkcs11.SessionHandle, class uint, id []byte) (pkcs11.ObjectHandle, bool, error) {
	k := handleKey{class: class, id: string(id)}
	h.mu.Lock()
	o, ok := h.handles[k]
	gen := h.gen
	h.mu.Unlock()
	if ok {
		return o, true, nil
	}
	if err := h.p.FindObjectsInit(sh, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_ID, id)}); err != nil {
		return 0, false, err
	}
	found, _, err := h.p.FindObjects(sh, 1)
	if ferr := h.p.FindObjectsFinal(sh); err == nil {
		err = ferr
	}
	if err != nil || len(found) == 0 {
		return 0, false, err
	}
	h.mu.Lock()
	if h.gen == gen {
		h.handles[k] = found[0]
	}
	h.mu.Unlock()
	return found[0], true, nil
}

func (h *HSM) forget(class uint, id []byte) {
	h.mu.Lock()
	delete(h.handles, handleKey{class: class, id: string(id)})
	h.mu.Unlock()
}

// withObject runs fn with the handle of object id. A handle the token no
// longer knows (the object was destroyed and found again, or the token
// reloaded) is looked up once more. A missing object is an error that says
// whether the token itself is gone.
func (h *HSM) withObject(sh pkcs11.SessionHandle, class uint, id []byte, fn func(o pkcs11.ObjectHandle) error) error {
	for attempt := 0; ; attempt++ {
		o, found, err := h.find(sh, class, id)
		if err != nil {
			return err
		}
		if !found {
			return h.missing(class, id)
		}
		err = fn(o)
		if attempt == 0 && (isCode(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isCode(err, pkcs11.CKR_KEY_HANDLE_INVALID)) {
			h.forget(class, id)
			continue
		}
		return err
	}
}

// missing is the error for an object the token does not have: the token
// itself being unreadable (removed, deleted) is reported as such.
func (h *HSM) missing(class uint, id []byte) error {
	if _, err := h.p.GetTokenInfo(h.slotNow()); err != nil {
		return h.classify("looking up a key object", err)
	}
	what := "key"
	if class == pkcs11.CKO_SECRET_KEY {
		what = "secret key"
	}
	return errkind.Errorf(errkind.Unavailable, "hsm: token %q has no %s object with CKA_ID %s: it was destroyed "+
		"outside the service, or the configured token is not the one the key was created in", h.token, what,
		hex.EncodeToString(id)).WithCode("HSMKeyMissing")
}
