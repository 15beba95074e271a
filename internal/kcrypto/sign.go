package kcrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"io"
	"math/big"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
)

var pssOptions = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}

// Sign signs a digest the caller computed, as the Azure Key Vault sign
// operation does: RS256/384/512 (PKCS #1 v1.5), PS256/384/512 (PSS, salt
// length = hash length), ES256/384/512 on P-256/384/521 and ES256K on
// P-256K. ECDSA signatures are r‖s, each left-padded to the curve size (JWS
// form, not ASN.1). An unknown algorithm, an algorithm that does not fit the
// key, or a digest whose length is not the algorithm's hash size is
// errkind.Invalid.
func Sign(k crypto.Signer, alg string, digest []byte, r io.Reader) ([]byte, error) {
	if k == nil {
		return nil, errkind.New(errkind.Internal, "kcrypto: Sign without a key")
	}
	a, err := checkSig(k.Public(), alg, digest)
	if err != nil {
		return nil, err
	}
	var sig []byte
	switch k := k.(type) {
	case *rsa.PrivateKey:
		if a.kind == 'P' {
			sig, err = rsa.SignPSS(r, k, a.hash, digest, pssOptions)
		} else {
			sig, err = rsa.SignPKCS1v15(nil, k, a.hash, digest)
		}
	case *ecdsa.PrivateKey:
		var rr, ss *big.Int
		if rr, ss, err = ecdsa.Sign(r, k, digest); err == nil {
			size := jwk.CurveSize(a.crv)
			sig = make([]byte, 2*size)
			rr.FillBytes(sig[:size])
			ss.FillBytes(sig[size:])
		}
	case *jwk.Secp256k1PrivateKey:
		s := k1ecdsa.Sign(k.Secp256k1(), digest) // RFC 6979: no randomness
		rr, ss := s.R(), s.S()
		sig = make([]byte, 64)
		rr.PutBytesUnchecked(sig[:32])
		ss.PutBytesUnchecked(sig[32:])
	default:
		return nil, errkind.Errorf(errkind.Internal, "kcrypto: cannot sign with a key of type %T", k)
	}
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "kcrypto: signing failed", err)
	}
	return sig, nil
}

// Verify checks a signature made as Sign makes it. pub may also be a
// crypto.Signer, whose public key is used. A signature that does not verify,
// including one of the wrong length or with r or s out of range, is (false,
// nil); the errors are those of Sign (unknown algorithm, wrong key type,
// wrong digest length), errkind.Invalid.
func Verify(pub crypto.PublicKey, alg string, digest, sig []byte) (bool, error) {
	pub = publicOf(pub)
	a, err := checkSig(pub, alg, digest)
	if err != nil {
		return false, err
	}
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.kind == 'P' {
			return rsa.VerifyPSS(k, a.hash, digest, sig, pssOptions) == nil, nil
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig) == nil, nil
	case *ecdsa.PublicKey:
		size := jwk.CurveSize(a.crv)
		if len(sig) != 2*size {
			return false, nil
		}
		rr := new(big.Int).SetBytes(sig[:size])
		ss := new(big.Int).SetBytes(sig[size:])
		return ecdsa.Verify(k, digest, rr, ss), nil
	case *secp256k1.PublicKey:
		if len(sig) != 64 {
			return false, nil
		}
		var rr, ss secp256k1.ModNScalar
		if rr.SetByteSlice(sig[:32]) || ss.SetByteSlice(sig[32:]) {
			return false, nil // r or s ≥ N
		}
		return k1ecdsa.NewSignature(&rr, &ss).Verify(digest, k), nil
	}
	return false, errkind.Errorf(errkind.Internal, "kcrypto: cannot verify with a key of type %T", pub)
}

// checkSig validates the algorithm, its fit with the key and the digest
// length, in that order.
func checkSig(pub crypto.PublicKey, alg string, digest []byte) (sigAlg, error) {
	a, err := sigAlgOf(alg)
	if err != nil {
		return a, err
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if a.kind == 'E' {
			return a, errkind.Errorf(errkind.Invalid, "the algorithm %s needs an EC key on %s; this is %s (use PS256/384/512 or RS256/384/512)", alg, a.crv, describe(pub))
		}
	case *ecdsa.PublicKey, *secp256k1.PublicKey:
		crv := jwk.P256K
		if e, ok := p.(*ecdsa.PublicKey); ok {
			crv = e.Curve.Params().Name
		}
		if a.kind != 'E' {
			return a, errkind.Errorf(errkind.Invalid, "the algorithm %s needs an RSA key; this is %s (%s)", alg, describe(pub), useFor(crv))
		}
		if a.crv != crv {
			return a, errkind.Errorf(errkind.Invalid, "the algorithm %s needs an EC key on %s; this is %s (%s)", alg, a.crv, describe(pub), useFor(crv))
		}
	default:
		return a, errkind.Errorf(errkind.Internal, "kcrypto: unsupported key type %T", pub)
	}
	if len(digest) != a.hash.Size() {
		return a, errkind.Errorf(errkind.Invalid, "the digest for %s must be %d bytes (the %s hash size), not %d", alg, a.hash.Size(), a.hash, len(digest))
	}
	return a, nil
}

func useFor(crv string) string {
	if alg := curveAlg(crv); alg != "" {
		return "use " + alg
	}
	return "this curve is not supported"
}
