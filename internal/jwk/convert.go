package jwk

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"math/big"
	"math/bits"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/customerkey/customerkey/internal/errkind"
)

// RSA limits on input. Azure Key Vault creates and imports 2048, 3072 and
// 4096-bit keys; other sizes in that range are accepted on import.
const (
	MinRSABits = 2048
	MaxRSABits = 4096
	maxRSAExp  = 1<<31 - 1
)

// FromPublic returns the JSON Web Key of pub: RSA (*rsa.PublicKey) with n and
// e as minimal big-endian bytes, or EC (*ecdsa.PublicKey on P-256, P-384 or
// P-521, or *secp256k1.PublicKey for P-256K) with x and y left-padded to the
// curve size. kty is RSA or EC; a caller serving an -HSM key sets Kty
// afterwards. ops is copied. A private key is refused, so that FromPublic
// cannot be handed key material by mistake.
func FromPublic(kid string, pub crypto.PublicKey, ops []string) (Key, error) {
	k := Key{KID: kid, KeyOps: slices.Clone(ops)}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p == nil || p.N == nil || p.N.Sign() <= 0 || p.E <= 0 {
			return Key{}, errkind.New(errkind.Internal, "jwk: incomplete RSA public key")
		}
		k.Kty = RSA
		k.N = p.N.Bytes()
		k.E = big.NewInt(int64(p.E)).Bytes()
	case *ecdsa.PublicKey:
		if p == nil || p.Curve == nil {
			return Key{}, errkind.New(errkind.Internal, "jwk: incomplete EC public key")
		}
		crv := p.Curve.Params().Name
		if _, ok := nistCurve(crv); !ok {
			return Key{}, errkind.Errorf(errkind.Internal, "jwk: unsupported curve %s", crv)
		}
		b, err := p.Bytes() // 0x04 ‖ x ‖ y, each coordinate full length
		if err != nil {
			return Key{}, errkind.Wrap(errkind.Internal, "jwk: invalid EC public key", err)
		}
		size := (len(b) - 1) / 2
		k.Kty, k.Crv, k.X, k.Y = EC, crv, b[1:1+size], b[1+size:]
	case *secp256k1.PublicKey:
		if p == nil {
			return Key{}, errkind.New(errkind.Internal, "jwk: incomplete EC public key")
		}
		b := p.SerializeUncompressed()
		k.Kty, k.Crv, k.X, k.Y = EC, P256K, b[1:33], b[33:]
	case crypto.Signer, crypto.Decrypter, *Secp256k1PrivateKey:
		return Key{}, errkind.New(errkind.Internal, "jwk: FromPublic was given a private key; pass its Public()")
	default:
		return Key{}, errkind.Errorf(errkind.Internal, "jwk: unsupported public key type %T", pub)
	}
	return k, nil
}

// CurveSize is the byte length of a coordinate (and of a private scalar) on
// crv, or 0 if crv is not supported.
func CurveSize(crv string) int {
	switch crv {
	case P256, P256K:
		return 32
	case P384:
		return 48
	case P521:
		return 66
	}
	return 0
}

func nistCurve(crv string) (elliptic.Curve, bool) {
	switch crv {
	case P256:
		return elliptic.P256(), true
	case P384:
		return elliptic.P384(), true
	case P521:
		return elliptic.P521(), true
	}
	return nil, false
}

// Public returns the public key of k: *rsa.PublicKey, *ecdsa.PublicKey or
// *secp256k1.PublicKey. It checks the RSA size (2048 to 4096 bits) and
// exponent (odd, 3 ≤ e ≤ 2³¹-1), and that an EC point has coordinates of the
// exact curve size and lies on the curve. Errors are errkind.Invalid.
func (k Key) Public() (crypto.PublicKey, error) {
	switch k.Kty {
	case RSA, RSAHSM:
		return k.rsaPublic()
	case EC, ECHSM:
		return k.ecPublic()
	}
	return nil, k.ktyError()
}

func (k Key) ktyError() error {
	switch k.Kty {
	case "":
		return errkind.New(errkind.Invalid, "the key's kty is missing")
	case Oct, OctHSM:
		return errkind.New(errkind.Invalid, "symmetric (oct) keys are not supported here; use an RSA or EC key")
	}
	return errkind.Errorf(errkind.Invalid, "the key type %.32q is not supported; use RSA, RSA-HSM, EC or EC-HSM", k.Kty)
}

func (k Key) rsaPublic() (*rsa.PublicKey, error) {
	n := trimZeros(k.N)
	if len(n) == 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key's n is missing")
	}
	bits := (len(n)-1)*8 + bits.Len8(n[0])
	if bits < MinRSABits || bits > MaxRSABits {
		return nil, errkind.Errorf(errkind.Invalid, "the RSA key's modulus is %d bits; it must be %d to %d bits", bits, MinRSABits, MaxRSABits)
	}
	if n[len(n)-1]&1 == 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key's n is not valid: an RSA modulus is odd")
	}
	e := trimZeros(k.E)
	if len(e) == 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key's e is missing")
	}
	var ev uint64
	if len(e) <= 4 {
		for _, b := range e {
			ev = ev<<8 | uint64(b)
		}
	}
	if len(e) > 4 || ev < 3 || ev > maxRSAExp || ev&1 == 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key's public exponent e must be odd and between 3 and 2^31-1")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
}

func (k Key) ecPublic() (crypto.PublicKey, error) {
	size := CurveSize(k.Crv)
	switch {
	case k.Crv == "":
		return nil, errkind.New(errkind.Invalid, "the EC key's crv is missing")
	case size == 0:
		return nil, errkind.Errorf(errkind.Invalid, "the curve %.32q is not supported; use P-256, P-384, P-521 or P-256K", k.Crv)
	case len(k.X) != size:
		return nil, errkind.Errorf(errkind.Invalid, "the EC key's x must be %d bytes on %s, not %d", size, k.Crv, len(k.X))
	case len(k.Y) != size:
		return nil, errkind.Errorf(errkind.Invalid, "the EC key's y must be %d bytes on %s, not %d", size, k.Crv, len(k.Y))
	}
	point := make([]byte, 0, 1+2*size)
	point = append(append(append(point, 4), k.X...), k.Y...)
	if k.Crv == P256K {
		pub, err := secp256k1.ParsePubKey(point)
		if err != nil {
			return nil, errkind.Wrap(errkind.Invalid, "the EC key's x and y are not a point on P-256K", err)
		}
		return pub, nil
	}
	curve, _ := nistCurve(k.Crv)
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "the EC key's x and y are not a point on "+k.Crv, err)
	}
	return pub, nil
}

// PrivateKey returns the private key of k for import: *rsa.PrivateKey
// (validated and precomputed), *ecdsa.PrivateKey or *Secp256k1PrivateKey.
//
// An RSA key needs n, e, d, p and q; dp, dq and qi are optional but, when
// given, must all be given and must match. An EC key needs crv, x, y and d,
// each of the exact curve size, and d must match x and y. Errors are
// errkind.Invalid and name the inconsistency, never a value.
//
// The conversion goes through math/big, which is not constant time and
// whose copies cannot be wiped; it runs once per import, not per operation.
func (k Key) PrivateKey() (crypto.Signer, error) {
	switch k.Kty {
	case RSA, RSAHSM:
		return k.rsaPrivate()
	case EC, ECHSM:
		return k.ecPrivate()
	}
	return nil, k.ktyError()
}

func (k Key) rsaPrivate() (*rsa.PrivateKey, error) {
	pub, err := k.rsaPublic()
	if err != nil {
		return nil, err
	}
	switch {
	case k.D.IsZero():
		return nil, errkind.New(errkind.Invalid, "the RSA key has no private exponent d")
	case k.P.IsZero() || k.Q.IsZero():
		return nil, errkind.New(errkind.Invalid, "the RSA key's p and q are missing; private keys without their primes are not supported")
	}
	crt := !k.DP.IsZero() || !k.DQ.IsZero() || !k.QI.IsZero()
	if crt && (k.DP.IsZero() || k.DQ.IsZero() || k.QI.IsZero()) {
		return nil, errkind.New(errkind.Invalid, "the RSA key's dp, dq and qi must be given together")
	}
	n := pub.N
	d := new(big.Int).SetBytes(k.D.Reveal())
	p := new(big.Int).SetBytes(k.P.Reveal())
	q := new(big.Int).SetBytes(k.Q.Reveal())
	one := big.NewInt(1)
	if d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key's d is not valid: it must be between 1 and n-1")
	}
	if p.Cmp(one) <= 0 || q.Cmp(one) <= 0 || new(big.Int).Mul(p, q).Cmp(n) != 0 {
		return nil, errkind.New(errkind.Invalid, "the RSA key is not consistent: p*q != n")
	}
	if crt {
		pm1 := new(big.Int).Sub(p, one)
		qm1 := new(big.Int).Sub(q, one)
		if new(big.Int).SetBytes(k.DP.Reveal()).Cmp(new(big.Int).Mod(d, pm1)) != 0 {
			return nil, errkind.New(errkind.Invalid, "the RSA key is not consistent: dp != d mod (p-1)")
		}
		if new(big.Int).SetBytes(k.DQ.Reveal()).Cmp(new(big.Int).Mod(d, qm1)) != 0 {
			return nil, errkind.New(errkind.Invalid, "the RSA key is not consistent: dq != d mod (q-1)")
		}
		qi := new(big.Int).SetBytes(k.QI.Reveal())
		if qi.Cmp(p) >= 0 || new(big.Int).Mod(new(big.Int).Mul(qi, q), p).Cmp(one) != 0 {
			return nil, errkind.New(errkind.Invalid, "the RSA key is not consistent: qi != q^-1 mod p")
		}
	}
	key := &rsa.PrivateKey{PublicKey: *pub, D: d, Primes: []*big.Int{p, q}}
	key.Precompute() // computes dp, dq, qi and the constant-time form once
	if err := key.Validate(); err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "the RSA key is not consistent: d, e, p and q do not form a valid key", err)
	}
	return key, nil
}

func (k Key) ecPrivate() (crypto.Signer, error) {
	pub, err := k.ecPublic()
	if err != nil {
		return nil, err
	}
	size := CurveSize(k.Crv)
	switch {
	case k.D.IsZero():
		return nil, errkind.New(errkind.Invalid, "the EC key has no private scalar d")
	case k.D.Len() != size:
		return nil, errkind.Errorf(errkind.Invalid, "the EC key's d must be %d bytes on %s, not %d", size, k.Crv, k.D.Len())
	}
	mismatch := errkind.New(errkind.Invalid, "the EC key is not consistent: d does not match x and y")
	if k.Crv == P256K {
		var s secp256k1.ModNScalar
		overflow := s.SetByteSlice(k.D.Reveal())
		if overflow || s.IsZero() {
			s.Zero()
			return nil, errkind.New(errkind.Invalid, "the EC key's d is not valid on P-256K")
		}
		priv := secp256k1.NewPrivateKey(&s)
		s.Zero()
		if !priv.PubKey().IsEqual(pub.(*secp256k1.PublicKey)) {
			priv.Zero()
			return nil, mismatch
		}
		return &Secp256k1PrivateKey{k: priv}, nil
	}
	curve, _ := nistCurve(k.Crv)
	priv, err := ecdsa.ParseRawPrivateKey(curve, k.D.Reveal())
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, "the EC key's d is not valid on "+k.Crv, err)
	}
	if !priv.PublicKey.Equal(pub) {
		return nil, mismatch
	}
	return priv, nil
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == 0 {
		b = b[1:]
	}
	return b
}
