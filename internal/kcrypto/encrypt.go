package kcrypto

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

var errECEncrypt = errkind.New(errkind.Invalid, "elliptic-curve keys cannot encrypt or wrap; use an RSA key")

// Encrypt encrypts (or wraps) pt under an RSA public key with RSA-OAEP,
// RSA-OAEP-256 or RSA1_5, as the Azure Key Vault encrypt and wrapKey
// operations do. pub may also be a crypto.Signer, whose public key is used.
// An elliptic-curve key, an unknown algorithm, or a plaintext longer than
// the key and algorithm allow (the message gives the maximum) is
// errkind.Invalid. r supplies the padding randomness.
func Encrypt(pub crypto.PublicKey, alg string, pt []byte, r io.Reader) ([]byte, error) {
	k, err := rsaPublicFor(pub)
	if err != nil {
		return nil, err
	}
	maxLen, err := MaxPlaintext(k, alg)
	if err != nil {
		return nil, err
	}
	if len(pt) > maxLen {
		return nil, errkind.Errorf(errkind.Invalid, "the plaintext is %d bytes; %s with a %d-bit RSA key encrypts at most %d bytes",
			len(pt), alg, k.N.BitLen(), maxLen)
	}
	var ct []byte
	switch alg {
	case RSAOAEP:
		ct, err = rsa.EncryptOAEP(sha1.New(), r, k, pt, nil)
	case RSAOAEP256:
		ct, err = rsa.EncryptOAEP(sha256.New(), r, k, pt, nil)
	case RSA15:
		//lint:ignore SA1019 RSA1_5 is part of the Azure Key Vault API; OAEP is preferred.
		ct, err = rsa.EncryptPKCS1v15(r, k, pt)
	}
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, "kcrypto: RSA encryption failed", err)
	}
	return ct, nil
}

// MaxPlaintext is the longest plaintext Encrypt accepts for the RSA key pub
// (or a crypto.Signer holding one) and alg: k-2·hLen-2 bytes for OAEP,
// k-11 for RSA1_5, where k is the modulus size in bytes.
func MaxPlaintext(pub crypto.PublicKey, alg string) (int, error) {
	k, err := rsaPublicFor(pub)
	if err != nil {
		return 0, err
	}
	switch alg {
	case RSAOAEP:
		return k.Size() - 2*sha1.Size - 2, nil
	case RSAOAEP256:
		return k.Size() - 2*sha256.Size - 2, nil
	case RSA15:
		return k.Size() - 11, nil
	}
	return 0, errkind.Errorf(errkind.Invalid, "the algorithm %.32q cannot encrypt or wrap with an RSA key; use RSA-OAEP, RSA-OAEP-256 or RSA1_5", alg)
}

// Decrypt decrypts (or unwraps) ct with an RSA private key. k must be a
// precomputed *rsa.PrivateKey, as GenerateRSA, ParsePrivate and
// jwk.Key.PrivateKey return: nothing about the key is derived per call.
// The caller owns the plaintext and wipes it when done.
//
// An elliptic-curve key or an unknown algorithm is errkind.Invalid with a
// clear message, decided before the ciphertext is looked at. Every failure
// that depends on the ciphertext (a length other than the modulus size, a
// value not below the modulus, bad padding, a different key) is the single
// ErrDecryption, without a cause.
//
// RSA1_5 and Bleichenbacher: the padding check of crypto/rsa runs in
// constant time and all its failures collapse into ErrDecryption here, but a
// decrypt API that reports whether padding was valid is a padding oracle by
// nature, in Azure Key Vault as here. The remedy is policy, not code: prefer
// RSA-OAEP-256, and let operators refuse RSA1_5 (the vault checks allowed
// algorithms before calling Decrypt). Implicit rejection (returning a
// pseudo-random plaintext instead of an error) is not used, because clients
// of the Azure API expect an error for a bad ciphertext.
func Decrypt(k crypto.Signer, alg string, ct []byte) (secret.Bytes, error) {
	priv, ok := k.(*rsa.PrivateKey)
	if k == nil || (ok && priv == nil) {
		return secret.Bytes{}, errkind.New(errkind.Internal, "kcrypto: Decrypt without a key")
	}
	if !ok {
		if isEC(k.Public()) {
			return secret.Bytes{}, errECEncrypt
		}
		return secret.Bytes{}, errkind.Errorf(errkind.Internal, "kcrypto: cannot decrypt with a key of type %T", k)
	}
	if alg != RSAOAEP && alg != RSAOAEP256 && alg != RSA15 {
		_, err := MaxPlaintext(&priv.PublicKey, alg) // the unknown-algorithm error
		return secret.Bytes{}, err
	}
	if len(ct) != priv.Size() {
		return secret.Bytes{}, ErrDecryption
	}
	var (
		pt  []byte
		err error
	)
	switch alg {
	case RSAOAEP:
		pt, err = rsa.DecryptOAEP(sha1.New(), nil, priv, ct, nil)
	case RSAOAEP256:
		pt, err = rsa.DecryptOAEP(sha256.New(), nil, priv, ct, nil)
	case RSA15:
		//lint:ignore SA1019 RSA1_5 is part of the Azure Key Vault API; see the doc above.
		pt, err = rsa.DecryptPKCS1v15(nil, priv, ct)
	}
	if err != nil {
		return secret.Bytes{}, ErrDecryption
	}
	return secret.New(pt), nil
}

// rsaPublicFor returns the RSA public key of pub, or the error for an
// elliptic-curve key.
func rsaPublicFor(pub crypto.PublicKey) (*rsa.PublicKey, error) {
	pub = publicOf(pub)
	if k, ok := pub.(*rsa.PublicKey); ok && k != nil && k.N != nil {
		return k, nil
	}
	if isEC(pub) {
		return nil, errECEncrypt
	}
	return nil, errkind.Errorf(errkind.Internal, "kcrypto: cannot encrypt with a key of type %T", pub)
}

// publicOf returns the public key of a crypto.Signer, or pub itself.
func publicOf(pub crypto.PublicKey) crypto.PublicKey {
	if s, ok := pub.(crypto.Signer); ok {
		return s.Public()
	}
	return pub
}

func isEC(pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *ecdsa.PublicKey, *secp256k1.PublicKey:
		return true
	}
	return false
}

// describe names a key's type for error messages: never its value.
func describe(pub crypto.PublicKey) string {
	switch p := publicOf(pub).(type) {
	case *rsa.PublicKey:
		return "an RSA key"
	case *ecdsa.PublicKey:
		return "an EC key on " + p.Curve.Params().Name
	case *secp256k1.PublicKey:
		return "an EC key on P-256K"
	}
	return fmt.Sprintf("a key of type %T", pub)
}
