package kcrypto

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"slices"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/secret"
)

// GenerateRSA returns a new RSA key of 2048, 3072 or 4096 bits with e =
// 65537, precomputed. Other sizes are errkind.Invalid. See the package doc
// on the reader.
func GenerateRSA(r io.Reader, bits int) (*rsa.PrivateKey, error) {
	if !slices.Contains(rsaSizes, bits) {
		return nil, errkind.New(errkind.Invalid, "RSA keys must be 2048, 3072 or 4096 bits")
	}
	k, err := rsa.GenerateKey(r, bits)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "kcrypto: RSA key generation failed", err)
	}
	k.Precompute()
	return k, nil
}

// GenerateEC returns a new elliptic-curve key: *ecdsa.PrivateKey for P-256,
// P-384 and P-521, *jwk.Secp256k1PrivateKey for P-256K. Other curves are
// errkind.Invalid.
func GenerateEC(r io.Reader, crv string) (crypto.Signer, error) {
	if crv == jwk.P256K {
		k, err := secp256k1.GeneratePrivateKeyFromRand(r)
		if err != nil {
			return nil, errkind.Wrap(errkind.Internal, "kcrypto: P-256K key generation failed", err)
		}
		return jwk.NewSecp256k1PrivateKey(k), nil
	}
	c, ok := nistCurve(crv)
	if !ok {
		return nil, errkind.Errorf(errkind.Invalid, "the curve %.32q is not supported; use P-256, P-384, P-521 or P-256K", crv)
	}
	k, err := ecdsa.GenerateKey(c, r)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "kcrypto: EC key generation failed", err)
	}
	return k, nil
}

func nistCurve(crv string) (elliptic.Curve, bool) {
	switch crv {
	case jwk.P256:
		return elliptic.P256(), true
	case jwk.P384:
		return elliptic.P384(), true
	case jwk.P521:
		return elliptic.P521(), true
	}
	return nil, false
}

// The storage encoding of a P-256K private key, which PKCS #8 in crypto/x509
// cannot express:
//
//	'K' '1' version(1)=0x01 d(32, big-endian scalar)
//
// 35 bytes. A PKCS #8 encoding starts with 0x30 (an ASN.1 SEQUENCE), so the
// first byte tells the two apart. A new version gets a new version byte.
var k1Magic = []byte{'K', '1', 0x01}

const k1Len = 3 + 32

// MarshalPrivate encodes a private key for storage: PKCS #8 DER for RSA and
// NIST EC keys, the format above for P-256K. The result is key material.
// (Intermediate copies inside crypto/x509 cannot be wiped.)
func MarshalPrivate(k crypto.Signer) (secret.Bytes, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey:
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			return secret.Bytes{}, errkind.Wrap(errkind.Internal, "kcrypto: cannot encode the private key", err)
		}
		return secret.New(b), nil
	case *jwk.Secp256k1PrivateKey:
		b := make([]byte, 0, k1Len)
		b = append(b, k1Magic...)
		var d [32]byte
		k.Secp256k1().Key.PutBytes(&d)
		b = append(b, d[:]...)
		secret.Wipe(d[:])
		return secret.New(b), nil
	}
	return secret.Bytes{}, errkind.Errorf(errkind.Internal, "kcrypto: cannot encode a private key of type %T", k)
}

// ParsePrivate decodes what MarshalPrivate wrote. RSA keys come back
// validated and precomputed, so that operations never re-derive them. It
// refuses RSA sizes outside 2048 to 4096 bits and curves other than P-256,
// P-384, P-521 and P-256K. Errors are errkind.Internal (stored data is
// corrupt) and never quote b.
func ParsePrivate(b []byte) (crypto.Signer, error) {
	malformed := func(cause error) error {
		return errkind.Wrap(errkind.Internal, "kcrypto: the stored private key is malformed", cause)
	}
	if bytes.HasPrefix(b, k1Magic[:2]) {
		if len(b) != k1Len || b[2] != k1Magic[2] {
			return nil, malformed(fmt.Errorf("P-256K encoding: length %d, version %d", len(b), b[min(2, len(b)-1)]))
		}
		var s secp256k1.ModNScalar
		if overflow := s.SetByteSlice(b[3:]); overflow || s.IsZero() {
			s.Zero()
			return nil, malformed(fmt.Errorf("P-256K scalar out of range"))
		}
		k := secp256k1.NewPrivateKey(&s)
		s.Zero()
		return jwk.NewSecp256k1PrivateKey(k), nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b) // validates and precomputes RSA keys
	if err != nil {
		return nil, malformed(fmt.Errorf("PKCS #8: %w", err))
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < jwk.MinRSABits || bits > jwk.MaxRSABits {
			return nil, malformed(fmt.Errorf("RSA key of %d bits", bits))
		}
		k.Precompute() // a no-op when crypto/x509 has done it
		return k, nil
	case *ecdsa.PrivateKey:
		if _, ok := nistCurve(k.Curve.Params().Name); !ok {
			return nil, malformed(fmt.Errorf("curve %s", k.Curve.Params().Name))
		}
		return k, nil
	}
	return nil, malformed(fmt.Errorf("key type %T", k))
}
