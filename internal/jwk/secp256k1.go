package jwk

import (
	"crypto"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// Secp256k1PrivateKey is a P-256K (secp256k1) private key. The standard
// library has no secp256k1, so this wraps decred's implementation in a
// crypto.Signer; Public returns *secp256k1.PublicKey, which FromPublic
// understands. It lives here, not in kcrypto, because PrivateKey must be able
// to return it and jwk cannot import kcrypto.
type Secp256k1PrivateKey struct {
	_ [0]func() // not comparable with ==
	k *secp256k1.PrivateKey
}

// NewSecp256k1PrivateKey wraps k; the caller must not use k afterwards.
func NewSecp256k1PrivateKey(k *secp256k1.PrivateKey) *Secp256k1PrivateKey {
	return &Secp256k1PrivateKey{k: k}
}

// Public returns the *secp256k1.PublicKey.
func (k *Secp256k1PrivateKey) Public() crypto.PublicKey { return k.k.PubKey() }

// Sign signs digest with deterministic ECDSA (RFC 6979, low S) and returns
// the ASN.1 DER signature, as crypto/ecdsa's Sign does. The reader and opts
// are ignored: the nonce is derived from the key and the digest. For the raw
// r‖s form of JWS (ES256K), use kcrypto.Sign.
func (k *Secp256k1PrivateKey) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return ecdsa.Sign(k.k, digest).Serialize(), nil
}

// Secp256k1 returns the wrapped decred key. It aliases k's secret.
func (k *Secp256k1PrivateKey) Secp256k1() *secp256k1.PrivateKey { return k.k }

// Equal reports whether x is the same P-256K private key, in constant time.
func (k *Secp256k1PrivateKey) Equal(x crypto.PrivateKey) bool {
	o, ok := x.(*Secp256k1PrivateKey)
	return ok && k.k.Key.Equals(&o.k.Key)
}

// Wipe zeroes the private scalar. The key must not be used afterwards.
func (k *Secp256k1PrivateKey) Wipe() { k.k.Zero() }

// String never reveals the key.
func (*Secp256k1PrivateKey) String() string { return "[secp256k1 private key]" }

// GoString never reveals the key.
func (*Secp256k1PrivateKey) GoString() string { return "jwk.Secp256k1PrivateKey{[secret]}" }
