// Package jwk owns the JSON Web Key of the Azure Key Vault data plane
// (JsonWebKey in the keys swagger, RFC 7517/7518): its wire form, its
// validation, and the conversion to and from Go crypto keys.
//
// On output every binary member is base64url without padding, as the Azure
// SDKs require, and a Key never writes a private member (d, dp, dq, qi, p, q,
// k) or key_hsm: MarshalJSON serialises the public part only, whatever the
// Key holds. On input base64url without padding is the norm; padded input and
// the standard alphabet ('+', '/') are also accepted, because some tools send
// them. Every member has a size cap, and keys are checked strictly when they
// are turned into Go keys (RSA 2048 to 4096 bits, sane exponents, exact EC
// coordinate lengths, points on the curve, consistent private parts).
//
// Private members are held as secret.Bytes; call Wipe when a Key that held
// them is no longer needed. P-256K keys use github.com/decred/dcrd/dcrec/secp256k1
// (the public key type is *secp256k1.PublicKey, the private one
// *Secp256k1PrivateKey).
//
// It imports secret and errkind only from this module, and never net/http or
// storage.
package jwk

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Key types (kty).
const (
	RSA    = "RSA"
	RSAHSM = "RSA-HSM"
	EC     = "EC"
	ECHSM  = "EC-HSM"
	Oct    = "oct"
	OctHSM = "oct-HSM"
)

// Curve names (crv).
const (
	P256  = "P-256"
	P384  = "P-384"
	P521  = "P-521"
	P256K = "P-256K" // secp256k1
)

// Key operations (key_ops).
const (
	OpEncrypt   = "encrypt"
	OpDecrypt   = "decrypt"
	OpSign      = "sign"
	OpVerify    = "verify"
	OpWrapKey   = "wrapKey"
	OpUnwrapKey = "unwrapKey"
	OpImport    = "import"
	OpExport    = "export"
)

// Size caps on input, in decoded bytes. Exact lengths are checked when a key
// is converted (Public, PrivateKey); these only bound what is decoded.
const (
	maxKID     = 1024
	maxKeyOps  = 16
	maxKeyOp   = 32
	maxRSA     = 4096/8 + 1 // one leading zero byte is tolerated
	maxRSAHalf = maxRSA/2 + 1
	maxE       = 8
	maxCoord   = 66 + 1 // P-521 coordinates are 66 bytes
	maxK       = 64
	maxT       = 16 << 10 // a BYOK blob: wrapped transfer key plus wrapped target key
	maxName    = 32       // kty and crv
)

// Key is a JSON Web Key as Azure Key Vault reads and writes it.
//
// The zero value is an empty key. Public members are plain bytes; private
// members are secret.Bytes, are read from JSON (key import) but never written
// to it, and are wiped by Wipe.
type Key struct {
	KID    string   // kid
	Kty    string   // kty: RSA, RSA-HSM, EC, EC-HSM, oct, oct-HSM
	KeyOps []string // key_ops

	N, E []byte // RSA modulus and public exponent, big-endian
	Crv  string // EC curve: P-256, P-384, P-521, P-256K
	X, Y []byte // EC point, each coordinate left-padded to the curve size

	// Private members (import only).
	D      secret.Bytes // RSA private exponent, or the EC private scalar
	DP, DQ secret.Bytes // RSA CRT exponents d mod (p-1), d mod (q-1)
	QI     secret.Bytes // RSA CRT coefficient q⁻¹ mod p
	P, Q   secret.Bytes // RSA primes
	K      secret.Bytes // symmetric key (oct)

	// T is key_hsm, a protected key blob for Bring Your Own Key. It is
	// encrypted, not plaintext, but it is input only and never written.
	T []byte
}

// wire is the JSON form. Strings rather than []byte so that decoding can be
// lenient about padding and alphabet, and encoding strict.
type wire struct {
	KID    string   `json:"kid,omitempty"`
	Kty    string   `json:"kty,omitempty"`
	KeyOps []string `json:"key_ops,omitzero"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	D      string   `json:"d,omitempty"`
	DP     string   `json:"dp,omitempty"`
	DQ     string   `json:"dq,omitempty"`
	QI     string   `json:"qi,omitempty"`
	P      string   `json:"p,omitempty"`
	Q      string   `json:"q,omitempty"`
	K      string   `json:"k,omitempty"`
	T      string   `json:"key_hsm,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

var b64 = base64.RawURLEncoding

// MarshalJSON writes the public members only (kid, kty, key_ops, n, e, crv,
// x, y), base64url without padding. Private members and key_hsm are never
// written, so that no code path can send key material by marshalling a Key.
func (k Key) MarshalJSON() ([]byte, error) {
	w := wire{KID: k.KID, Kty: k.Kty, KeyOps: k.KeyOps, Crv: k.Crv,
		N: b64.EncodeToString(k.N), E: b64.EncodeToString(k.E),
		X: b64.EncodeToString(k.X), Y: b64.EncodeToString(k.Y)}
	return json.Marshal(w)
}

// UnmarshalJSON reads a key, public or private. Binary members may be
// base64url or standard base64, padded or not. It checks sizes and encodings;
// whether the members form a valid key is checked by Public and PrivateKey.
// Errors are of kind errkind.Invalid and never quote key material.
func (k *Key) UnmarshalJSON(data []byte) error {
	var w wire
	if err := json.Unmarshal(data, &w); err != nil {
		return errkind.Wrap(errkind.Invalid, "the key is not a valid JSON web key", jsonCause(err))
	}
	out, err := w.key()
	if err != nil {
		return err
	}
	k.Wipe()
	*k = out
	return nil
}

func (w *wire) key() (k Key, err error) {
	defer func() {
		if err != nil {
			k.Wipe()
			k = Key{}
		}
	}()
	switch {
	case len(w.KID) > maxKID:
		return k, errkind.Errorf(errkind.Invalid, "the key's kid is longer than %d bytes", maxKID)
	case len(w.Kty) > maxName:
		return k, errkind.Errorf(errkind.Invalid, "the key's kty is longer than %d bytes", maxName)
	case len(w.Crv) > maxName:
		return k, errkind.Errorf(errkind.Invalid, "the key's crv is longer than %d bytes", maxName)
	case len(w.KeyOps) > maxKeyOps:
		return k, errkind.Errorf(errkind.Invalid, "the key has more than %d key_ops", maxKeyOps)
	}
	for _, op := range w.KeyOps {
		if len(op) > maxKeyOp {
			return k, errkind.Errorf(errkind.Invalid, "a key_ops entry is longer than %d bytes", maxKeyOp)
		}
	}
	k.KID, k.Kty, k.Crv = w.KID, w.Kty, w.Crv
	k.KeyOps = slices.Clone(w.KeyOps)
	pub := []struct {
		name string
		s    string
		max  int
		dst  *[]byte
	}{
		{"n", w.N, maxRSA, &k.N}, {"e", w.E, maxE, &k.E},
		{"x", w.X, maxCoord, &k.X}, {"y", w.Y, maxCoord, &k.Y},
		{"key_hsm", w.T, maxT, &k.T},
	}
	for _, f := range pub {
		if *f.dst, err = decode(f.name, f.s, f.max); err != nil {
			return k, err
		}
	}
	priv := []struct {
		name string
		s    string
		max  int
		dst  *secret.Bytes
	}{
		{"d", w.D, maxRSA, &k.D}, {"dp", w.DP, maxRSAHalf, &k.DP}, {"dq", w.DQ, maxRSAHalf, &k.DQ},
		{"qi", w.QI, maxRSAHalf, &k.QI}, {"p", w.P, maxRSAHalf, &k.P}, {"q", w.Q, maxRSAHalf, &k.Q},
		{"k", w.K, maxK, &k.K},
	}
	for _, f := range priv {
		b, err := decode(f.name, f.s, f.max)
		if err != nil {
			return k, err
		}
		*f.dst = secret.New(b)
	}
	return k, nil
}

// decode reads one binary member. It accepts base64url without padding (the
// norm), and also padding and the standard alphabet, but not both alphabets
// mixed. The error names the member, never its value.
func decode(name, s string, maxLen int) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if t, ok := strings.CutSuffix(s, "=="); ok {
		s = t
	} else if t, ok := strings.CutSuffix(s, "="); ok {
		s = t
	}
	if len(s) > b64.EncodedLen(maxLen) {
		return nil, errkind.Errorf(errkind.Invalid, "the key's %s is too long: at most %d bytes are allowed", name, maxLen)
	}
	enc := b64
	if strings.ContainsAny(s, "+/") {
		if strings.ContainsAny(s, "-_") {
			return nil, errkind.Errorf(errkind.Invalid, "the key's %s is not valid base64url: it mixes two alphabets", name)
		}
		enc = base64.RawStdEncoding
	}
	if strings.ContainsAny(s, "\r\n") { // the decoder would skip them silently
		return nil, errkind.Errorf(errkind.Invalid, "the key's %s is not valid base64url", name)
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, errkind.Wrap(errkind.Invalid, fmt.Sprintf("the key's %s is not valid base64url", name), err)
	}
	return b, nil
}

// HasPrivate reports whether k holds plaintext private material (d, dp, dq,
// qi, p, q or k). A BYOK blob (key_hsm) is not plaintext and does not count.
func (k Key) HasPrivate() bool {
	return !k.D.IsZero() || !k.DP.IsZero() || !k.DQ.IsZero() || !k.QI.IsZero() ||
		!k.P.IsZero() || !k.Q.IsZero() || !k.K.IsZero()
}

// Strip returns the public part of k: kid, kty, key_ops, n, e, crv, x, y,
// copied. It does not wipe k; call Wipe for that.
func (k Key) Strip() Key {
	return Key{KID: k.KID, Kty: k.Kty, KeyOps: slices.Clone(k.KeyOps),
		N: slices.Clone(k.N), E: slices.Clone(k.E), Crv: k.Crv, X: slices.Clone(k.X), Y: slices.Clone(k.Y)}
}

// LogValue logs what identifies the key, never its material.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.KID), slog.String("kty", k.Kty), slog.String("crv", k.Crv),
		slog.Bool("private", k.HasPrivate()))
}

// Wipe zeroes and drops the private members of k. Public members stay.
func (k *Key) Wipe() {
	for _, s := range []*secret.Bytes{&k.D, &k.DP, &k.DQ, &k.QI, &k.P, &k.Q, &k.K} {
		s.Wipe()
	}
}

// jsonCause describes a JSON error without quoting the input: a syntax
// error's text would include a character of it, which may be key material.
func jsonCause(err error) error {
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("syntax error at offset %d", e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return fmt.Errorf("member %q has the wrong type (%s)", e.Field, e.Value)
	}
	return errors.New("malformed JSON")
}
