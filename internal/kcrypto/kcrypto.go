// Package kcrypto owns the asymmetric cryptography of the key vault: key
// generation, the storage encoding of private keys, and the Azure Key Vault
// operations encrypt/decrypt, wrapKey/unwrapKey (RSA-OAEP, RSA-OAEP-256,
// RSA1_5) and sign/verify (RS*, PS*, ES*, ES256K). Each operation is one
// small function; randomness is passed in as an io.Reader.
//
// wrapKey and unwrapKey with an RSA algorithm are, in Azure Key Vault and
// here, Encrypt and Decrypt of the key bytes: there are no separate wrap
// functions.
//
// Errors are classified with errkind. A request that cannot succeed (wrong
// algorithm for the key, digest of the wrong length, plaintext too long) is
// errkind.Invalid with a message that says what to change. Every failure of
// Decrypt that depends on the ciphertext is the one opaque ErrDecryption.
// No error or panic ever holds key material.
//
// It imports secret and errkind, and jwk of its own level (key types, curve
// names, key operations and the P-256K key type); never net/http or storage.
//
// Randomness: since Go 1.26 crypto/rsa and crypto/ecdsa ignore the reader
// given to key generation, PKCS #1 v1.5 encryption and ECDSA signing, and
// always use the system CSPRNG (testing/cryptotest.SetGlobalRandom makes them
// deterministic in tests). The reader is still passed through: RSA-OAEP
// encryption, PSS signing and P-256K key generation use it. P-256K
// signatures are deterministic (RFC 6979) and use no reader.
package kcrypto

import (
	"crypto"
	"slices"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
)

// Encryption (and key wrapping) algorithms.
const (
	RSAOAEP    = "RSA-OAEP"     // OAEP with SHA-1 and MGF1-SHA-1
	RSAOAEP256 = "RSA-OAEP-256" // OAEP with SHA-256 and MGF1-SHA-256
	RSA15      = "RSA1_5"       // PKCS #1 v1.5; kept for compatibility only
)

// Signature algorithms. The value signed is a digest computed by the caller.
const (
	RS256  = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256
	RS384  = "RS384"
	RS512  = "RS512"
	PS256  = "PS256" // RSASSA-PSS with SHA-256, MGF1-SHA-256, salt length 32
	PS384  = "PS384"
	PS512  = "PS512"
	ES256  = "ES256"  // ECDSA on P-256 with SHA-256, signature r‖s
	ES384  = "ES384"  // ECDSA on P-384 with SHA-384
	ES512  = "ES512"  // ECDSA on P-521 with SHA-512
	ES256K = "ES256K" // ECDSA on secp256k1 with SHA-256
)

// RSA key sizes that GenerateRSA accepts.
var rsaSizes = []int{2048, 3072, 4096}

// ErrDecryption is the one error Decrypt returns for every failure that
// depends on the ciphertext: wrong length, out of range, bad padding, wrong
// key. It carries no cause, so that nothing distinguishes the reasons.
var ErrDecryption = errkind.New(errkind.Invalid, "decryption failed")

// EncryptionAlgorithms lists the encryption and key-wrap algorithms for a
// key type: the RSA ones for RSA and RSA-HSM, none otherwise (elliptic-curve
// keys cannot encrypt; symmetric keys are not supported). The slice is new.
func EncryptionAlgorithms(kty string) []string {
	switch kty {
	case jwk.RSA, jwk.RSAHSM:
		return []string{RSAOAEP, RSAOAEP256, RSA15}
	}
	return nil
}

// SignatureAlgorithms lists the signature algorithms for a key: RS* and PS*
// for RSA, the one ES* of the curve for EC (crv is ignored for RSA). The
// slice is new; it is nil for unsupported types or curves.
func SignatureAlgorithms(kty, crv string) []string {
	switch kty {
	case jwk.RSA, jwk.RSAHSM:
		return []string{PS256, PS384, PS512, RS256, RS384, RS512}
	case jwk.EC, jwk.ECHSM:
		if alg := curveAlg(crv); alg != "" {
			return []string{alg}
		}
	}
	return nil
}

// KeyOpsDefault lists the operations a new key of type kty permits when the
// caller names none, as Azure Key Vault does: all six for RSA, sign and
// verify for EC. The slice is new.
func KeyOpsDefault(kty string) []string {
	switch kty {
	case jwk.RSA, jwk.RSAHSM:
		return []string{jwk.OpEncrypt, jwk.OpDecrypt, jwk.OpSign, jwk.OpVerify, jwk.OpWrapKey, jwk.OpUnwrapKey}
	case jwk.EC, jwk.ECHSM:
		return []string{jwk.OpSign, jwk.OpVerify}
	}
	return nil
}

// DigestSize is the digest length in bytes that a signature algorithm signs,
// or 0 if alg is not a supported signature algorithm.
func DigestSize(alg string) int {
	if s, ok := sigAlgs[alg]; ok {
		return s.hash.Size()
	}
	return 0
}

type sigAlg struct {
	hash crypto.Hash
	kind byte   // 'R' PKCS #1 v1.5, 'P' PSS, 'E' ECDSA
	crv  string // for 'E'
}

var sigAlgs = map[string]sigAlg{
	RS256: {crypto.SHA256, 'R', ""}, RS384: {crypto.SHA384, 'R', ""}, RS512: {crypto.SHA512, 'R', ""},
	PS256: {crypto.SHA256, 'P', ""}, PS384: {crypto.SHA384, 'P', ""}, PS512: {crypto.SHA512, 'P', ""},
	ES256: {crypto.SHA256, 'E', jwk.P256}, ES384: {crypto.SHA384, 'E', jwk.P384},
	ES512: {crypto.SHA512, 'E', jwk.P521}, ES256K: {crypto.SHA256, 'E', jwk.P256K},
}

func curveAlg(crv string) string {
	for name, a := range sigAlgs {
		if a.kind == 'E' && a.crv == crv {
			return name
		}
	}
	return ""
}

// sigAlgOf looks alg up, with the error the caller sees if it is unknown.
func sigAlgOf(alg string) (sigAlg, error) {
	s, ok := sigAlgs[alg]
	if !ok {
		names := make([]string, 0, len(sigAlgs))
		for n := range sigAlgs {
			names = append(names, n)
		}
		slices.Sort(names)
		return s, errkind.Errorf(errkind.Invalid, "the signature algorithm %.32q is not supported; use one of %v", alg, names)
	}
	return s, nil
}
