package jwk_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
)

var b64 = base64.RawURLEncoding

// rsaKey is the fixed RSA-2048 test key of testdata (a test key, protecting
// nothing), so that tests and fuzz seeds are reproducible without paying
// for key generation.
func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/rsa2048.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*rsa.PrivateKey)
}

func ecKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func k1Key(t testing.TB) *jwk.Secp256k1PrivateKey {
	t.Helper()
	k, err := secp256k1.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return jwk.NewSecp256k1PrivateKey(k)
}

// privateJSON writes the private JWK of k by hand, independently of the
// package's encoder (which never writes private members).
func privateJSON(t testing.TB, k crypto.Signer) map[string]any {
	t.Helper()
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return map[string]any{"kty": "RSA", "kid": "https://v/keys/k/1",
			"n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
			"d": b64.EncodeToString(k.D.Bytes()), "p": b64.EncodeToString(k.Primes[0].Bytes()),
			"q": b64.EncodeToString(k.Primes[1].Bytes()), "dp": b64.EncodeToString(k.Precomputed.Dp.Bytes()),
			"dq": b64.EncodeToString(k.Precomputed.Dq.Bytes()), "qi": b64.EncodeToString(k.Precomputed.Qinv.Bytes())}
	case *ecdsa.PrivateKey:
		pub, _ := k.PublicKey.Bytes()
		d, _ := k.Bytes()
		n := len(d)
		return map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": b64.EncodeToString(pub[1 : 1+n]),
			"y": b64.EncodeToString(pub[1+n:]), "d": b64.EncodeToString(d)}
	case *jwk.Secp256k1PrivateKey:
		pub := k.Secp256k1().PubKey().SerializeUncompressed()
		return map[string]any{"kty": "EC", "crv": "P-256K", "x": b64.EncodeToString(pub[1:33]),
			"y": b64.EncodeToString(pub[33:]), "d": b64.EncodeToString(k.Secp256k1().Serialize())}
	}
	t.Fatalf("privateJSON(%T): unsupported", k)
	return nil
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type signer interface {
	crypto.Signer
	Equal(crypto.PrivateKey) bool
}

// samePublic compares public keys; decred's spells Equal as IsEqual.
func samePublic(a, b crypto.PublicKey) bool {
	if k, ok := a.(*secp256k1.PublicKey); ok {
		o, ok := b.(*secp256k1.PublicKey)
		return ok && k.IsEqual(o)
	}
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func testKeys(t *testing.T) map[string]signer {
	return map[string]signer{
		"RSA-2048": rsaKey(t),
		"P-256":    ecKey(t, elliptic.P256()),
		"P-384":    ecKey(t, elliptic.P384()),
		"P-521":    ecKey(t, elliptic.P521()),
		"P-256K":   k1Key(t),
	}
}

func TestPublicRoundTrip(t *testing.T) {
	for name, k := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			ops := []string{jwk.OpSign, jwk.OpVerify}
			j, err := jwk.FromPublic("https://v.vault.localhost/keys/k/0123", k.Public(), ops)
			if err != nil {
				t.Fatalf("FromPublic: %v", err)
			}
			if j.HasPrivate() {
				t.Error("FromPublic(...).HasPrivate() = true")
			}
			out := mustJSON(t, j)
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatal(err)
			}
			for _, priv := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "key_hsm"} {
				if _, ok := m[priv]; ok {
					t.Errorf("public JSON has member %q: %s", priv, out)
				}
			}
			for member, v := range m {
				if s, ok := v.(string); ok && member != "kid" && member != "kty" && member != "crv" && strings.ContainsAny(s, "=+/") {
					t.Errorf("member %q = %q is not base64url without padding", member, s)
				}
			}
			var back jwk.Key
			if err := json.Unmarshal(out, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", out, err)
			}
			if diff := cmp.Diff(j.Strip(), back.Strip()); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			pub, err := back.Public()
			if err != nil {
				t.Fatalf("Public: %v", err)
			}
			if !samePublic(pub, k.Public()) {
				t.Error("Public() differs from the original key")
			}
		})
	}
}

func TestPrivateRoundTrip(t *testing.T) {
	for name, k := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			var j jwk.Key
			if err := json.Unmarshal(mustJSON(t, privateJSON(t, k)), &j); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !j.HasPrivate() {
				t.Fatal("HasPrivate() = false for a private JWK")
			}
			got, err := j.PrivateKey()
			if err != nil {
				t.Fatalf("PrivateKey: %v", err)
			}
			if !k.Equal(got) {
				t.Error("PrivateKey() differs from the original key")
			}
			if r, ok := got.(*rsa.PrivateKey); ok && r.Precomputed.Dp == nil {
				t.Error("RSA key was not precomputed")
			}
			// The encoder never writes private members, whatever the Key holds.
			out := string(mustJSON(t, j))
			for _, priv := range []string{`"d"`, `"p"`, `"q"`, `"dp"`, `"dq"`, `"qi"`} {
				if strings.Contains(out, priv) {
					t.Errorf("json.Marshal(private key) contains %s: %s", priv, out)
				}
			}
			s := j.Strip()
			if s.HasPrivate() {
				t.Error("Strip().HasPrivate() = true")
			}
			if _, err := s.PrivateKey(); !errkind.Is(err, errkind.Invalid) {
				t.Errorf("Strip().PrivateKey() err = %v, want Invalid", err)
			}
			j.Wipe()
			if j.HasPrivate() {
				t.Error("HasPrivate() = true after Wipe")
			}
		})
	}
}

// go-jose is an independent JWK implementation: what it writes we must read,
// and what we write it must read.
func TestGoJoseInterop(t *testing.T) {
	for name, k := range testKeys(t) {
		if name == "P-256K" {
			continue // go-jose has no secp256k1
		}
		t.Run(name, func(t *testing.T) {
			priv, err := json.Marshal(jose.JSONWebKey{Key: k, KeyID: "k1"})
			if err != nil {
				t.Fatal(err)
			}
			var j jwk.Key
			if err := json.Unmarshal(priv, &j); err != nil {
				t.Fatalf("Unmarshal(go-jose JSON): %v", err)
			}
			got, err := j.PrivateKey()
			if err != nil {
				t.Fatalf("PrivateKey(go-jose JSON): %v", err)
			}
			if !k.Equal(got) {
				t.Error("key read from go-jose JSON differs")
			}
			ours, err := jwk.FromPublic("k1", k.Public(), nil)
			if err != nil {
				t.Fatal(err)
			}
			var jk jose.JSONWebKey
			if err := json.Unmarshal(mustJSON(t, ours), &jk); err != nil {
				t.Fatalf("go-jose cannot read our JSON: %v", err)
			}
			if !samePublic(jk.Key, k.Public()) {
				t.Error("go-jose read a different key from our JSON")
			}
		})
	}
}

// EC coordinates are left-padded to the curve size. A P-521 coordinate has
// 521 bits, so its first byte is 0 or 1; P-256 keys are drawn until one has
// a leading zero byte (about 1 in 128).
func TestECLeftPadding(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P521()} {
		size := jwk.CurveSize(c.Params().Name)
		for i := 0; ; i++ {
			k := ecKey(t, c)
			j, err := jwk.FromPublic("", k.Public(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(j.X) != size || len(j.Y) != size {
				t.Fatalf("%s: len(x), len(y) = %d, %d, want %d", c.Params().Name, len(j.X), len(j.Y), size)
			}
			if j.X[0] != 0 && j.Y[0] != 0 {
				if i > 5000 {
					t.Fatalf("%s: no coordinate with a leading zero in %d keys", c.Params().Name, i)
				}
				continue
			}
			var back jwk.Key
			if err := json.Unmarshal(mustJSON(t, privateJSON(t, k)), &back); err != nil {
				t.Fatal(err)
			}
			if got, err := back.PrivateKey(); err != nil || !k.Equal(got) {
				t.Fatalf("%s: PrivateKey() of a padded key = %v, %v", c.Params().Name, got != nil, err)
			}
			break
		}
	}
}

func TestRSAMinimalEncoding(t *testing.T) {
	k := rsaKey(t)
	j, err := jwk.FromPublic("", k.Public(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j.E, []byte{1, 0, 1}) {
		t.Errorf("e = %x, want 010001", j.E)
	}
	if j.N[0] == 0 || len(j.N) != 256 {
		t.Errorf("n has %d bytes, first %#x; want 256 bytes without a leading zero", len(j.N), j.N[0])
	}
}

// Some tools send padded or standard base64, or a leading zero on n. We
// accept those on input; we never produce them.
func TestLenientInput(t *testing.T) {
	k := rsaKey(t)
	m := privateJSON(t, k)
	std := base64.StdEncoding
	m["n"] = std.EncodeToString(append([]byte{0}, k.N.Bytes()...))
	m["d"] = std.EncodeToString(k.D.Bytes())
	m["e"] = "AQAB"
	var j jwk.Key
	if err := json.Unmarshal(mustJSON(t, m), &j); err != nil {
		t.Fatalf("Unmarshal(padded standard base64): %v", err)
	}
	got, err := j.PrivateKey()
	if err != nil {
		t.Fatalf("PrivateKey: %v", err)
	}
	if !k.Equal(got) {
		t.Error("key differs")
	}
}

// Only n, e, d, p and q: the CRT values are computed.
func TestRSAWithoutCRT(t *testing.T) {
	k := rsaKey(t)
	m := privateJSON(t, k)
	delete(m, "dp")
	delete(m, "dq")
	delete(m, "qi")
	var j jwk.Key
	if err := json.Unmarshal(mustJSON(t, m), &j); err != nil {
		t.Fatal(err)
	}
	got, err := j.PrivateKey()
	if err != nil {
		t.Fatalf("PrivateKey: %v", err)
	}
	if r := got.(*rsa.PrivateKey); !k.Equal(r) || r.Precomputed.Qinv.Cmp(k.Precomputed.Qinv) != 0 {
		t.Error("key or its CRT values differ")
	}
}

func TestFromPublicRefusesPrivateKeys(t *testing.T) {
	for name, k := range testKeys(t) {
		if _, err := jwk.FromPublic("", k, nil); err == nil {
			t.Errorf("FromPublic(%s private key) succeeded", name)
		}
	}
	if _, err := jwk.FromPublic("", "not a key", nil); err == nil {
		t.Error("FromPublic(string) succeeded")
	}
}

func TestBadInputs(t *testing.T) {
	rk := rsaKey(t)
	other := ecKey(t, elliptic.P256())
	otherD, _ := other.Bytes()
	k1 := k1Key(t)
	n := rk.N.Bytes()
	even := append([]byte(nil), n...)
	even[len(even)-1] &^= 1
	short, _ := rsa.GenerateKey(rand.Reader, 1024)
	offCurve := func(m map[string]any) {
		y, _ := b64.DecodeString(m["y"].(string))
		y[len(y)-1] ^= 1
		m["y"] = b64.EncodeToString(y)
	}
	enc := b64.EncodeToString
	tests := []struct {
		name   string
		key    signer // nil: RSA
		edit   func(m map[string]any)
		public bool // the error comes from Public (else from PrivateKey)
		want   string
	}{
		{name: "n not base64", edit: func(m map[string]any) { m["n"] = "!!!!" }, want: "the key's n is not valid base64url"},
		{name: "d not base64", edit: func(m map[string]any) { m["d"] = "a b" }, want: "the key's d is not valid base64url"},
		{name: "mixed alphabets", edit: func(m map[string]any) { m["n"] = "ab-_cd+/" }, want: "the key's n is not valid base64url: it mixes two alphabets"},
		{name: "three padding characters", edit: func(m map[string]any) { m["e"] = "AQAB===" }, want: "the key's e is not valid base64url"},
		{name: "n too long", edit: func(m map[string]any) { m["n"] = enc(make([]byte, 600)) }, want: "the key's n is too long"},
		{name: "key_hsm too long", edit: func(m map[string]any) { m["key_hsm"] = enc(make([]byte, 17<<10)) }, want: "the key's key_hsm is too long"},
		{name: "kid too long", edit: func(m map[string]any) { m["kid"] = strings.Repeat("k", 2000) }, want: "kid is longer than"},
		{name: "too many key_ops", edit: func(m map[string]any) { m["key_ops"] = make([]string, 17) }, want: "more than 16 key_ops"},
		{name: "kty wrong type", edit: func(m map[string]any) { m["kty"] = 7 }, want: "the key is not a valid JSON web key"},
		{name: "kty missing", edit: func(m map[string]any) { delete(m, "kty") }, public: true, want: "the key's kty is missing"},
		{name: "kty unknown", edit: func(m map[string]any) { m["kty"] = "DSA" }, public: true, want: `the key type "DSA" is not supported`},
		{name: "oct", edit: func(m map[string]any) { m["kty"] = "oct" }, public: true, want: "symmetric (oct) keys are not supported"},
		{name: "n missing", edit: func(m map[string]any) { delete(m, "n") }, public: true, want: "the RSA key's n is missing"},
		{name: "1024-bit n", edit: func(m map[string]any) { m["n"] = enc(short.N.Bytes()) }, public: true, want: "modulus is 1024 bits; it must be 2048 to 4096 bits"},
		{name: "even n", edit: func(m map[string]any) { m["n"] = enc(even) }, public: true, want: "the RSA key's n is not valid"},
		{name: "e missing", edit: func(m map[string]any) { delete(m, "e") }, public: true, want: "the RSA key's e is missing"},
		{name: "e even", edit: func(m map[string]any) { m["e"] = enc([]byte{1, 0, 0}) }, public: true, want: "public exponent e must be odd"},
		{name: "e is 1", edit: func(m map[string]any) { m["e"] = enc([]byte{1}) }, public: true, want: "public exponent e must be odd"},
		{name: "e too large", edit: func(m map[string]any) { m["e"] = enc([]byte{1, 0, 0, 0, 1}) }, public: true, want: "public exponent e must be odd"},
		{name: "d missing", edit: func(m map[string]any) { delete(m, "d") }, want: "the RSA key has no private exponent d"},
		{name: "p missing", edit: func(m map[string]any) { delete(m, "p") }, want: "the RSA key's p and q are missing"},
		{name: "p*q != n", edit: func(m map[string]any) { m["p"] = enc([]byte{3}) }, want: "the RSA key is not consistent: p*q != n"},
		{name: "p and q swapped in", edit: func(m map[string]any) { m["q"] = m["p"] }, want: "p*q != n"},
		{name: "d zero", edit: func(m map[string]any) { m["d"] = enc([]byte{0}) }, want: "the RSA key's d is not valid"},
		{name: "d wrong", edit: func(m map[string]any) {
			delete(m, "dp")
			delete(m, "dq")
			delete(m, "qi")
			m["d"] = enc(new(big.Int).Add(rk.D, big.NewInt(2)).Bytes())
		}, want: "the RSA key is not consistent: d, e, p and q do not form a valid key"},
		{name: "dp wrong", edit: func(m map[string]any) { m["dp"] = enc([]byte{5}) }, want: "the RSA key is not consistent: dp != d mod (p-1)"},
		{name: "dq wrong", edit: func(m map[string]any) { m["dq"] = m["dp"] }, want: "the RSA key is not consistent: dq != d mod (q-1)"},
		{name: "qi wrong", edit: func(m map[string]any) { m["qi"] = enc([]byte{1}) }, want: "the RSA key is not consistent: qi != q^-1 mod p"},
		{name: "dp alone", edit: func(m map[string]any) { delete(m, "dq"); delete(m, "qi") }, want: "dp, dq and qi must be given together"},

		{name: "crv missing", key: other, edit: func(m map[string]any) { delete(m, "crv") }, public: true, want: "the EC key's crv is missing"},
		{name: "crv unknown", key: other, edit: func(m map[string]any) { m["crv"] = "P-192" }, public: true, want: `the curve "P-192" is not supported`},
		{name: "x short", key: other, edit: func(m map[string]any) { m["x"] = enc(make([]byte, 31)) }, public: true, want: "the EC key's x must be 32 bytes on P-256, not 31"},
		{name: "y long", key: other, edit: func(m map[string]any) { m["y"] = enc(make([]byte, 33)) }, public: true, want: "the EC key's y must be 32 bytes on P-256, not 33"},
		{name: "off curve", key: other, edit: offCurve, public: true, want: "the EC key's x and y are not a point on P-256"},
		{name: "EC d missing", key: other, edit: func(m map[string]any) { delete(m, "d") }, want: "the EC key has no private scalar d"},
		{name: "EC d short", key: other, edit: func(m map[string]any) { m["d"] = enc(otherD[1:]) }, want: "the EC key's d must be 32 bytes on P-256, not 31"},
		{name: "EC d zero", key: other, edit: func(m map[string]any) { m["d"] = enc(make([]byte, 32)) }, want: "the EC key's d is not valid on P-256"},
		{name: "EC d mismatch", key: other, edit: func(m map[string]any) {
			d, _ := ecKey(t, elliptic.P256()).Bytes()
			m["d"] = enc(d)
		}, want: "the EC key is not consistent: d does not match x and y"},
		{name: "P-256K off curve", key: k1, edit: offCurve, public: true, want: "the EC key's x and y are not a point on P-256K"},
		{name: "P-256K d overflow", key: k1, edit: func(m map[string]any) { m["d"] = enc(bytes.Repeat([]byte{0xff}, 32)) }, want: "the EC key's d is not valid on P-256K"},
		{name: "P-256K d mismatch", key: k1, edit: func(m map[string]any) { m["d"] = privateJSON(t, k1Key(t))["d"] }, want: "d does not match x and y"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == nil {
				key = rk
			}
			m := privateJSON(t, key)
			tc.edit(m)
			var j jwk.Key
			err := json.Unmarshal(mustJSON(t, m), &j)
			if err == nil {
				_, err = j.Public()
				if err == nil && tc.public {
					t.Fatalf("Public() succeeded, want error %q", tc.want)
				}
				if err != nil && !tc.public {
					t.Fatalf("Public() err = %v, want success (the error belongs to PrivateKey)", err)
				}
			}
			if err == nil {
				_, err = j.PrivateKey()
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.want)
			}
			e, ok := errkind.As(err)
			if !ok || e.Kind != errkind.Invalid {
				t.Fatalf("err = %v (kind %v), want kind Invalid", err, errkind.KindOf(err))
			}
			if !strings.Contains(e.Msg, tc.want) {
				t.Errorf("err message = %q, want it to contain %q", e.Msg, tc.want)
			}
			for _, member := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if s, _ := m[member].(string); len(s) > 8 && strings.Contains(err.Error(), s) {
					t.Errorf("error %q quotes the key's %s", err, member)
				}
			}
		})
	}
}

func TestSecp256k1Signer(t *testing.T) {
	k := k1Key(t)
	digest := make([]byte, 32)
	der, err := k.Sign(nil, digest, crypto.SHA256)
	if err != nil || len(der) < 8 || der[0] != 0x30 {
		t.Fatalf("Sign() = %x, %v; want a DER signature", der, err)
	}
	if got := k.String(); strings.Contains(got, "0x") || got != "[secp256k1 private key]" {
		t.Errorf("String() = %q", got)
	}
	if !k.Equal(jwk.NewSecp256k1PrivateKey(secp256k1.PrivKeyFromBytes(k.Secp256k1().Serialize()))) {
		t.Error("Equal(same scalar) = false")
	}
	if k.Equal(k1Key(t)) {
		t.Error("Equal(other key) = true")
	}
}

func FuzzParse(f *testing.F) {
	rk := rsaKey(f)
	for _, k := range []crypto.Signer{rk, ecKey(f, elliptic.P256()), ecKey(f, elliptic.P521()), k1Key(f)} {
		f.Add(mustJSON(f, privateJSON(f, k)))
		pub, err := jwk.FromPublic("kid", k.Public(), []string{"sign"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mustJSON(f, pub))
	}
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQ","p":"Aw","q":"AQ"}`))
	f.Add([]byte(`{"kty":"EC","crv":"P-256K","x":"","y":"","d":"AA=="}`))
	f.Add([]byte(`{"kty":"oct","k":"AAAA","key_ops":["encrypt"]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var k jwk.Key
		if err := json.Unmarshal(data, &k); err != nil {
			// encoding/json checks the syntax of the whole input before it
			// calls UnmarshalJSON; everything after that is ours to classify.
			if _, syntax := errors.AsType[*json.SyntaxError](err); !syntax && !errkind.Is(err, errkind.Invalid) {
				t.Fatalf("Unmarshal err = %v, want kind Invalid", err)
			}
			return
		}
		pub, err := k.Public()
		if err != nil && !errkind.Is(err, errkind.Invalid) {
			t.Fatalf("Public err = %v, want kind Invalid", err)
		}
		if err == nil {
			// A valid public key survives FromPublic and our encoder.
			j, err := jwk.FromPublic(k.KID, pub, k.KeyOps)
			if err != nil {
				t.Fatalf("FromPublic(Public()) = %v", err)
			}
			var back jwk.Key
			if err := json.Unmarshal(mustJSON(t, j), &back); err != nil {
				t.Fatalf("Unmarshal(Marshal(FromPublic())) = %v", err)
			}
			p2, err := back.Public()
			if err != nil || !samePublic(p2, pub) {
				t.Fatalf("public round trip: %v", err)
			}
		}
		priv, err := k.PrivateKey()
		if err != nil && !errkind.Is(err, errkind.Invalid) {
			t.Fatalf("PrivateKey err = %v, want kind Invalid", err)
		}
		if err == nil && !samePublic(priv.Public(), pub) {
			t.Fatal("PrivateKey().Public() != Public()")
		}
		var written map[string]any
		if err := json.Unmarshal(mustJSON(t, k), &written); err != nil {
			t.Fatal(err)
		}
		for _, member := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "key_hsm"} {
			if _, ok := written[member]; ok {
				t.Fatalf("Marshal wrote the private member %q", member)
			}
		}
	})
}
