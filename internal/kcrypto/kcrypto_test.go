package kcrypto_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
)

// wantInvalid fails unless err is errkind.Invalid with a message containing want.
func wantInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	e, ok := errkind.As(err)
	if !ok || e.Kind != errkind.Invalid {
		t.Fatalf("%s err = %v (kind %v), want kind Invalid", what, err, errkind.KindOf(err))
	}
	if !strings.Contains(e.Msg, want) {
		t.Errorf("%s err message = %q, want it to contain %q", what, e.Msg, want)
	}
}

func TestGenerateRSA(t *testing.T) {
	for _, bits := range []int{2048, 3072, 4096} {
		t.Run(fmt.Sprint(bits), func(t *testing.T) {
			t.Parallel()
			k := generated(t, bits)
			if k.N.BitLen() != bits || k.E != 65537 {
				t.Errorf("key has %d bits, e = %d; want %d, 65537", k.N.BitLen(), k.E, bits)
			}
			if k.Precomputed.Dp == nil || k.Precomputed.Qinv == nil {
				t.Error("key is not precomputed")
			}
			if err := k.Validate(); err != nil {
				t.Errorf("Validate() = %v", err)
			}
		})
	}
	for _, bits := range []int{0, 1024, 2047, 2049, 8192} {
		_, err := kcrypto.GenerateRSA(rand.Reader, bits)
		wantInvalid(t, fmt.Sprintf("GenerateRSA(%d)", bits), err, "RSA keys must be 2048, 3072 or 4096 bits")
	}
}

func TestGenerateEC(t *testing.T) {
	for _, crv := range []string{jwk.P256, jwk.P384, jwk.P521, jwk.P256K} {
		k, err := kcrypto.GenerateEC(rand.Reader, crv)
		if err != nil {
			t.Fatalf("GenerateEC(%s): %v", crv, err)
		}
		j, err := jwk.FromPublic("", k.Public(), nil)
		if err != nil {
			t.Fatalf("FromPublic(GenerateEC(%s).Public()): %v", crv, err)
		}
		if j.Kty != jwk.EC || j.Crv != crv || len(j.X) != jwk.CurveSize(crv) {
			t.Errorf("GenerateEC(%s): jwk kty %s crv %s len(x) %d", crv, j.Kty, j.Crv, len(j.X))
		}
		if crv == jwk.P256K {
			if _, ok := k.(*jwk.Secp256k1PrivateKey); !ok {
				t.Errorf("GenerateEC(P-256K) = %T", k)
			}
		} else if e, ok := k.(*ecdsa.PrivateKey); !ok || e.Curve.Params().Name != crv {
			t.Errorf("GenerateEC(%s) = %T", crv, k)
		}
	}
	for _, crv := range []string{"", "P-224", "secp256k1", "Ed25519"} {
		_, err := kcrypto.GenerateEC(rand.Reader, crv)
		wantInvalid(t, fmt.Sprintf("GenerateEC(%q)", crv), err, "is not supported; use P-256, P-384, P-521 or P-256K")
	}
	// The reader is used for P-256K: the same bytes give the same key.
	seed := bytes.Repeat([]byte{0x42}, 32)
	a, _ := kcrypto.GenerateEC(bytes.NewReader(seed), jwk.P256K)
	b, _ := kcrypto.GenerateEC(bytes.NewReader(seed), jwk.P256K)
	if !a.(*jwk.Secp256k1PrivateKey).Equal(b) {
		t.Error("GenerateEC(P-256K) ignores its reader")
	}
}

func TestMarshalParsePrivate(t *testing.T) {
	keys := map[string]crypto.Signer{"RSA-2048": rsaKey(t, 2048), "RSA-4096": rsaKey(t, 4096)}
	for crv, k := range ecKeys(t) {
		keys[crv] = k
	}
	for name, k := range keys {
		t.Run(name, func(t *testing.T) {
			b, err := kcrypto.MarshalPrivate(k)
			if err != nil {
				t.Fatalf("MarshalPrivate: %v", err)
			}
			if name == jwk.P256K {
				if b.Len() != 35 || !bytes.HasPrefix(b.Reveal(), []byte("K1\x01")) {
					t.Errorf("P-256K encoding has %d bytes, prefix %q", b.Len(), b.Reveal()[:3])
				}
			} else if b.Reveal()[0] != 0x30 {
				t.Errorf("encoding starts with %#x, want a PKCS #8 SEQUENCE", b.Reveal()[0])
			}
			got, err := kcrypto.ParsePrivate(b.Reveal())
			if err != nil {
				t.Fatalf("ParsePrivate: %v", err)
			}
			if !got.(interface{ Equal(crypto.PrivateKey) bool }).Equal(k) {
				t.Error("ParsePrivate(MarshalPrivate(k)) != k")
			}
			if r, ok := got.(*rsa.PrivateKey); ok && r.Precomputed.Dp == nil {
				t.Error("parsed RSA key is not precomputed")
			}
			if fmt.Sprint(b) != "[secret]" {
				t.Errorf("the encoding prints as %v", b)
			}
		})
	}

	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalPKCS8PrivateKey(p224)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa1024DER, _ := x509.MarshalPKCS8PrivateKey(rsa1024)
	overflow := append([]byte("K1\x01"), bytes.Repeat([]byte{0xff}, 32)...)
	for name, b := range map[string][]byte{
		"empty":             nil,
		"junk":              []byte("not a key at all"),
		"P-256K version 2":  append([]byte("K1\x02"), make([]byte, 32)...),
		"P-256K short":      append([]byte("K1\x01"), make([]byte, 31)...),
		"P-256K zero":       append([]byte("K1\x01"), make([]byte, 32)...),
		"P-256K overflow":   overflow,
		"P-256K magic only": []byte("K1"),
		"P-224":             p224DER,
		"RSA-1024":          rsa1024DER,
	} {
		_, err := kcrypto.ParsePrivate(b)
		if !errkind.Is(err, errkind.Internal) {
			t.Errorf("ParsePrivate(%s) err = %v, want kind Internal", name, err)
		}
		if err != nil && len(b) > 8 && strings.Contains(err.Error(), fmt.Sprintf("%x", b[len(b)-8:])) {
			t.Errorf("ParsePrivate(%s) error quotes its input: %v", name, err)
		}
	}
}

var encAlgs = []string{kcrypto.RSAOAEP, kcrypto.RSAOAEP256, kcrypto.RSA15}

func TestEncryptDecrypt(t *testing.T) {
	for _, bits := range []int{2048, 3072, 4096} {
		k := rsaKey(t, bits)
		for _, alg := range encAlgs {
			t.Run(fmt.Sprintf("%d/%s", bits, alg), func(t *testing.T) {
				maxLen, err := kcrypto.MaxPlaintext(k, alg)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{0, 32, maxLen} {
					pt := digest(n)
					ct, err := kcrypto.Encrypt(&k.PublicKey, alg, pt, rand.Reader)
					if err != nil {
						t.Fatalf("Encrypt(%d bytes): %v", n, err)
					}
					if len(ct) != k.Size() {
						t.Errorf("len(ct) = %d, want %d", len(ct), k.Size())
					}
					got, err := kcrypto.Decrypt(k, alg, ct)
					if err != nil || !bytes.Equal(got.Reveal(), pt) {
						t.Fatalf("Decrypt(Encrypt(%d bytes)) = %d bytes, %v", n, got.Len(), err)
					}
					// Cross-check with crypto/rsa in both directions.
					raw, err := rawDecrypt(k, alg, ct)
					if err != nil || !bytes.Equal(raw, pt) {
						t.Fatalf("crypto/rsa cannot decrypt our %s ciphertext: %v", alg, err)
					}
					ct2 := rawEncrypt(t, &k.PublicKey, alg, pt)
					if got, err := kcrypto.Decrypt(k, alg, ct2); err != nil || !bytes.Equal(got.Reveal(), pt) {
						t.Fatalf("Decrypt(crypto/rsa ciphertext) = %v", err)
					}
				}
				// The key itself may stand for its public key.
				if _, err := kcrypto.Encrypt(k, alg, []byte("x"), rand.Reader); err != nil {
					t.Errorf("Encrypt(private key as public) = %v", err)
				}
				_, err = kcrypto.Encrypt(&k.PublicKey, alg, digest(maxLen+1), rand.Reader)
				wantInvalid(t, "Encrypt(too long)", err, fmt.Sprintf("the plaintext is %d bytes; %s with a %d-bit RSA key encrypts at most %d bytes", maxLen+1, alg, bits, maxLen))
			})
		}
	}
	if n, _ := kcrypto.MaxPlaintext(rsaKey(t, 2048), kcrypto.RSAOAEP256); n != 190 {
		t.Errorf("MaxPlaintext(2048, RSA-OAEP-256) = %d, want 190", n)
	}
	if n, _ := kcrypto.MaxPlaintext(rsaKey(t, 4096), kcrypto.RSAOAEP); n != 470 {
		t.Errorf("MaxPlaintext(4096, RSA-OAEP) = %d, want 470", n)
	}
	if n, _ := kcrypto.MaxPlaintext(rsaKey(t, 3072), kcrypto.RSA15); n != 373 {
		t.Errorf("MaxPlaintext(3072, RSA1_5) = %d, want 373", n)
	}
}

func rawDecrypt(k *rsa.PrivateKey, alg string, ct []byte) ([]byte, error) {
	switch alg {
	case kcrypto.RSAOAEP:
		return rsa.DecryptOAEP(sha1.New(), nil, k, ct, nil)
	case kcrypto.RSAOAEP256:
		return k.Decrypt(nil, ct, &rsa.OAEPOptions{Hash: crypto.SHA256, MGFHash: crypto.SHA256})
	}
	//lint:ignore SA1019 the algorithm under test
	return rsa.DecryptPKCS1v15(nil, k, ct)
}

func rawEncrypt(t *testing.T, k *rsa.PublicKey, alg string, pt []byte) []byte {
	var ct []byte
	var err error
	switch alg {
	case kcrypto.RSAOAEP:
		ct, err = rsa.EncryptOAEPWithOptions(rand.Reader, k, pt, &rsa.OAEPOptions{Hash: crypto.SHA1, MGFHash: crypto.SHA1})
	case kcrypto.RSAOAEP256:
		ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, k, pt, nil)
	default:
		//lint:ignore SA1019 the algorithm under test
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, k, pt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// The reader given to Encrypt is the OAEP seed source.
func TestEncryptUsesReader(t *testing.T) {
	k := rsaKey(t, 2048)
	seed := bytes.Repeat([]byte{7}, 64)
	a, err := kcrypto.Encrypt(&k.PublicKey, kcrypto.RSAOAEP256, []byte("dek"), bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := kcrypto.Encrypt(&k.PublicKey, kcrypto.RSAOAEP256, []byte("dek"), bytes.NewReader(seed))
	if !bytes.Equal(a, b) {
		t.Error("two encryptions with the same reader bytes differ")
	}
	_, err = kcrypto.Encrypt(&k.PublicKey, kcrypto.RSAOAEP256, []byte("dek"), iotestErrReader{})
	if err == nil || errkind.KindOf(err) != errkind.Internal {
		t.Errorf("Encrypt(failing reader) err = %v, want kind Internal", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestEncryptErrors(t *testing.T) {
	rk := rsaKey(t, 2048)
	ct, _ := kcrypto.Encrypt(&rk.PublicKey, kcrypto.RSAOAEP256, []byte("x"), rand.Reader)
	for crv, k := range ecKeys(t) {
		_, err := kcrypto.Encrypt(k.Public(), kcrypto.RSAOAEP256, []byte("x"), rand.Reader)
		wantInvalid(t, "Encrypt("+crv+" key)", err, "elliptic-curve keys cannot encrypt or wrap; use an RSA key")
		_, err = kcrypto.Decrypt(k, kcrypto.RSAOAEP256, ct)
		wantInvalid(t, "Decrypt("+crv+" key)", err, "elliptic-curve keys cannot encrypt or wrap; use an RSA key")
		if _, err := kcrypto.MaxPlaintext(k, kcrypto.RSAOAEP); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("MaxPlaintext(%s key) err = %v", crv, err)
		}
	}
	for _, alg := range []string{"", "A256GCM", "A256KW", "RS256", "rsa-oaep", "RSA-OAEP-384"} {
		_, err := kcrypto.Encrypt(&rk.PublicKey, alg, []byte("x"), rand.Reader)
		wantInvalid(t, fmt.Sprintf("Encrypt(%q)", alg), err, "use RSA-OAEP, RSA-OAEP-256 or RSA1_5")
		_, err = kcrypto.Decrypt(rk, alg, ct)
		wantInvalid(t, fmt.Sprintf("Decrypt(%q)", alg), err, "use RSA-OAEP, RSA-OAEP-256 or RSA1_5")
	}
}

// Every ciphertext-dependent failure is the same opaque error, with no cause.
func TestDecryptOpaque(t *testing.T) {
	k := rsaKey(t, 2048)
	other := rsaKey(t, 3072)
	enc := func(pub *rsa.PublicKey, alg string) []byte {
		ct, err := kcrypto.Encrypt(pub, alg, []byte("a data encryption key, 32 bytes"), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	// About one OAEP ciphertext in 400 is also well-formed PKCS #1 v1.5
	// (its padding checks only 00 02, eight non-zero bytes and a zero),
	// and then RSA1_5 rightly returns bytes: the case takes one that is
	// not, as crypto/rsa judges it.
	oaepNotV15 := func() []byte {
		for range 100 {
			ct := enc(&k.PublicKey, kcrypto.RSAOAEP256)
			if _, err := rsa.DecryptPKCS1v15(nil, k, ct); err != nil {
				return ct
			}
		}
		t.Fatal("100 OAEP ciphertexts in a row were also valid PKCS #1 v1.5")
		return nil
	}
	nBytes := k.N.Bytes()
	otherCT := enc(&other.PublicKey, kcrypto.RSAOAEP256)
	cases := []struct {
		name, alg string
		ct        []byte
	}{
		{"empty", kcrypto.RSAOAEP256, nil},
		{"one byte", kcrypto.RSA15, []byte{1}},
		{"short", kcrypto.RSAOAEP, make([]byte, 255)},
		{"long", kcrypto.RSAOAEP256, make([]byte, 257)},
		{"zero", kcrypto.RSAOAEP256, make([]byte, 256)},
		{"zero RSA1_5", kcrypto.RSA15, make([]byte, 256)},
		{"equal to n", kcrypto.RSAOAEP256, nBytes},
		{"all ones", kcrypto.RSA15, bytes.Repeat([]byte{0xff}, 256)},
		{"OAEP-256 read as OAEP", kcrypto.RSAOAEP, enc(&k.PublicKey, kcrypto.RSAOAEP256)},
		{"OAEP read as OAEP-256", kcrypto.RSAOAEP256, enc(&k.PublicKey, kcrypto.RSAOAEP)},
		{"OAEP read as RSA1_5", kcrypto.RSA15, oaepNotV15()},
		{"RSA1_5 read as OAEP-256", kcrypto.RSAOAEP256, enc(&k.PublicKey, kcrypto.RSA15)},
		{"other key (3072-bit ct)", kcrypto.RSAOAEP256, otherCT},
		{"other key (truncated)", kcrypto.RSAOAEP256, otherCT[:256]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kcrypto.Decrypt(k, tc.alg, tc.ct)
			if err != kcrypto.ErrDecryption {
				t.Fatalf("Decrypt err = %v, want ErrDecryption", err)
			}
			if !got.IsZero() {
				t.Error("Decrypt returned plaintext with its error")
			}
			if e, _ := errkind.As(err); e.Kind != errkind.Invalid || e.Msg != "decryption failed" || errors.Unwrap(err) != nil {
				t.Errorf("ErrDecryption = %+v, want kind Invalid, message %q, no cause", e, "decryption failed")
			}
		})
	}
}

var rsaSigAlgs = []string{kcrypto.RS256, kcrypto.RS384, kcrypto.RS512, kcrypto.PS256, kcrypto.PS384, kcrypto.PS512}

func TestSignVerifyRSA(t *testing.T) {
	for _, bits := range []int{2048, 4096} {
		k := rsaKey(t, bits)
		for _, alg := range rsaSigAlgs {
			t.Run(fmt.Sprintf("%d/%s", bits, alg), func(t *testing.T) {
				h := map[byte]crypto.Hash{'2': crypto.SHA256, '3': crypto.SHA384, '5': crypto.SHA512}[alg[2]]
				d := digest(h.Size())
				sig, err := kcrypto.Sign(k, alg, d, rand.Reader)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if len(sig) != k.Size() {
					t.Errorf("len(sig) = %d, want %d", len(sig), k.Size())
				}
				// Cross-check with crypto/rsa; PSS with an explicit salt length
				// equal to the hash size, as Azure Key Vault uses.
				if alg[0] == 'P' {
					err = rsa.VerifyPSS(&k.PublicKey, h, d, sig, &rsa.PSSOptions{SaltLength: h.Size()})
				} else {
					err = rsa.VerifyPKCS1v15(&k.PublicKey, h, d, sig)
				}
				if err != nil {
					t.Errorf("crypto/rsa rejects our %s signature: %v", alg, err)
				}
				checkVerify(t, k, alg, d, sig)
			})
		}
	}
	// A PSS signature with another salt length is not accepted.
	k := rsaKey(t, 2048)
	d := digest(32)
	sig, _ := rsa.SignPSS(rand.Reader, k, crypto.SHA256, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	if ok, err := kcrypto.Verify(&k.PublicKey, kcrypto.PS256, d, sig); ok || err != nil {
		t.Errorf("Verify(PS256, maximal salt) = %v, %v; want false, nil", ok, err)
	}
}

func TestSignVerifyEC(t *testing.T) {
	algs := map[string]string{jwk.P256: kcrypto.ES256, jwk.P384: kcrypto.ES384, jwk.P521: kcrypto.ES512, jwk.P256K: kcrypto.ES256K}
	for crv, k := range ecKeys(t) {
		alg := algs[crv]
		t.Run(alg, func(t *testing.T) {
			d := digest(kcrypto.DigestSize(alg))
			size := jwk.CurveSize(crv)
			for range 20 { // short r or s must still be left-padded
				sig, err := kcrypto.Sign(k, alg, d, rand.Reader)
				if err != nil {
					t.Fatalf("Sign: %v", err)
				}
				if len(sig) != 2*size {
					t.Fatalf("len(sig) = %d, want %d (r‖s)", len(sig), 2*size)
				}
				// Cross-check with the reference verifier of the curve.
				switch pub := k.Public().(type) {
				case *ecdsa.PublicKey:
					if !ecdsa.VerifyASN1(pub, d, rawToDER(t, sig)) {
						t.Fatalf("crypto/ecdsa rejects our %s signature", alg)
					}
				case *secp256k1.PublicKey:
					var r, s secp256k1.ModNScalar
					r.SetByteSlice(sig[:32])
					s.SetByteSlice(sig[32:])
					if !k1ecdsa.NewSignature(&r, &s).Verify(d, pub) {
						t.Fatalf("decred rejects our %s signature", alg)
					}
				}
				checkVerify(t, k, alg, d, sig)
			}
			// A signature made by the reference implementation verifies.
			h := map[int]crypto.Hash{32: crypto.SHA256, 48: crypto.SHA384, 64: crypto.SHA512}[len(d)]
			der, err := k.Sign(rand.Reader, d, h)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := kcrypto.Verify(k.Public(), alg, d, derToRaw(t, der, size)); !ok || err != nil {
				t.Errorf("Verify(reference signature) = %v, %v", ok, err)
			}
		})
	}
}

// checkVerify: the signature verifies, and every corruption of it or of the
// digest gives (false, nil).
func checkVerify(t *testing.T, k crypto.Signer, alg string, d, sig []byte) {
	t.Helper()
	if ok, err := kcrypto.Verify(k.Public(), alg, d, sig); !ok || err != nil {
		t.Fatalf("Verify(own signature) = %v, %v", ok, err)
	}
	if ok, err := kcrypto.Verify(k, alg, d, sig); !ok || err != nil {
		t.Fatalf("Verify(private key as public) = %v, %v", ok, err)
	}
	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1
	d2 := bytes.Clone(d)
	d2[0] ^= 1
	n := len(sig)
	for name, c := range map[string][2][]byte{
		"flipped bit":   {d, bad},
		"other digest":  {d2, sig},
		"empty":         {d, nil},
		"short":         {d, sig[:n-1]},
		"long":          {d, append(bytes.Clone(sig), 0)},
		"zeros":         {d, make([]byte, n)},
		"ones":          {d, bytes.Repeat([]byte{0xff}, n)},
		"r and s equal": {d, append(bytes.Clone(sig[:n/2]), sig[:n/2]...)},
	} {
		if ok, err := kcrypto.Verify(k.Public(), alg, c[0], c[1]); ok || err != nil {
			t.Errorf("Verify(%s) = %v, %v; want false, nil", name, ok, err)
		}
	}
}

func TestSignErrors(t *testing.T) {
	rk := rsaKey(t, 2048)
	ec := ecKeys(t)
	tests := []struct {
		name   string
		key    crypto.Signer
		alg    string
		digest int
		want   string
	}{
		{"ES256 with RSA", rk, kcrypto.ES256, 32, "the algorithm ES256 needs an EC key on P-256; this is an RSA key"},
		{"ES256K with RSA", rk, kcrypto.ES256K, 32, "the algorithm ES256K needs an EC key on P-256K; this is an RSA key"},
		{"RS256 with EC", ec[jwk.P256], kcrypto.RS256, 32, "the algorithm RS256 needs an RSA key; this is an EC key on P-256 (use ES256)"},
		{"PS512 with P-256K", ec[jwk.P256K], kcrypto.PS512, 64, "the algorithm PS512 needs an RSA key; this is an EC key on P-256K (use ES256K)"},
		{"ES256 with P-384", ec[jwk.P384], kcrypto.ES256, 32, "the algorithm ES256 needs an EC key on P-256; this is an EC key on P-384 (use ES384)"},
		{"ES512 with P-256", ec[jwk.P256], kcrypto.ES512, 64, "needs an EC key on P-521; this is an EC key on P-256 (use ES256)"},
		{"ES256 with P-256K", ec[jwk.P256K], kcrypto.ES256, 32, "needs an EC key on P-256; this is an EC key on P-256K (use ES256K)"},
		{"ES256K with P-256", ec[jwk.P256], kcrypto.ES256K, 32, "needs an EC key on P-256K; this is an EC key on P-256 (use ES256)"},
		{"RS256 short digest", rk, kcrypto.RS256, 31, "the digest for RS256 must be 32 bytes (the SHA-256 hash size), not 31"},
		{"PS384 SHA-256 digest", rk, kcrypto.PS384, 32, "the digest for PS384 must be 48 bytes (the SHA-384 hash size), not 32"},
		{"ES384 SHA-256 digest", ec[jwk.P384], kcrypto.ES384, 32, "the digest for ES384 must be 48 bytes"},
		{"ES256K empty digest", ec[jwk.P256K], kcrypto.ES256K, 0, "the digest for ES256K must be 32 bytes"},
		{"RSNULL", rk, "RSNULL", 32, `the signature algorithm "RSNULL" is not supported`},
		{"HS256", rk, "HS256", 32, "is not supported"},
		{"encryption alg", rk, kcrypto.RSAOAEP256, 32, "is not supported"},
		{"empty", rk, "", 32, "is not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := kcrypto.Sign(tc.key, tc.alg, digest(tc.digest), rand.Reader)
			wantInvalid(t, "Sign", err, tc.want)
			_, err = kcrypto.Verify(tc.key.Public(), tc.alg, digest(tc.digest), make([]byte, 64))
			wantInvalid(t, "Verify", err, tc.want)
		})
	}
}

func TestAlgorithmLists(t *testing.T) {
	rsaEnc := []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"}
	rsaSig := []string{"PS256", "PS384", "PS512", "RS256", "RS384", "RS512"}
	rsaOps := []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
	ecOps := []string{"sign", "verify"}
	tests := []struct {
		kty, crv         string
		enc, sig, keyOps []string
	}{
		{jwk.RSA, "", rsaEnc, rsaSig, rsaOps},
		{jwk.RSAHSM, "", rsaEnc, rsaSig, rsaOps},
		{jwk.EC, jwk.P256, nil, []string{"ES256"}, ecOps},
		{jwk.ECHSM, jwk.P384, nil, []string{"ES384"}, ecOps},
		{jwk.EC, jwk.P521, nil, []string{"ES512"}, ecOps},
		{jwk.EC, jwk.P256K, nil, []string{"ES256K"}, ecOps},
		{jwk.EC, "P-224", nil, nil, ecOps},
		{jwk.Oct, "", nil, nil, nil},
		{"", "", nil, nil, nil},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.enc, kcrypto.EncryptionAlgorithms(tc.kty)); diff != "" {
			t.Errorf("EncryptionAlgorithms(%q) (-want +got):\n%s", tc.kty, diff)
		}
		if diff := cmp.Diff(tc.sig, kcrypto.SignatureAlgorithms(tc.kty, tc.crv)); diff != "" {
			t.Errorf("SignatureAlgorithms(%q, %q) (-want +got):\n%s", tc.kty, tc.crv, diff)
		}
		if diff := cmp.Diff(tc.keyOps, kcrypto.KeyOpsDefault(tc.kty)); diff != "" {
			t.Errorf("KeyOpsDefault(%q) (-want +got):\n%s", tc.kty, diff)
		}
	}
	// The lists are fresh copies.
	kcrypto.KeyOpsDefault(jwk.RSA)[0] = "changed"
	kcrypto.EncryptionAlgorithms(jwk.RSA)[0] = "changed"
	if kcrypto.KeyOpsDefault(jwk.RSA)[0] != "encrypt" || kcrypto.EncryptionAlgorithms(jwk.RSA)[0] != "RSA-OAEP" {
		t.Error("a returned list aliases package state")
	}
	for alg, want := range map[string]int{"RS256": 32, "PS384": 48, "ES512": 64, "ES256K": 32, "RSA-OAEP": 0, "": 0} {
		if got := kcrypto.DigestSize(alg); got != want {
			t.Errorf("DigestSize(%q) = %d, want %d", alg, got, want)
		}
	}
}

func FuzzDecrypt(f *testing.F) {
	key(f, "rsa2048.pem")
	for _, v := range vecs.Decrypt {
		if v.Key == "rsa2048.pem" {
			f.Add(uint8(0), unhex(f, v.CT))
		}
	}
	f.Add(uint8(1), []byte{})
	f.Add(uint8(2), make([]byte, 256))
	f.Add(uint8(2), bytes.Repeat([]byte{0xff}, 256))
	k := rsaKey(f, 2048)
	f.Fuzz(func(t *testing.T, which uint8, ct []byte) {
		alg := encAlgs[int(which)%len(encAlgs)]
		got, err := kcrypto.Decrypt(k, alg, ct)
		if err != nil && err != kcrypto.ErrDecryption {
			t.Fatalf("Decrypt(%s) err = %v, want ErrDecryption or success", alg, err)
		}
		if err != nil && !got.IsZero() {
			t.Fatal("plaintext returned with an error")
		}
	})
}

func benchUnwrap(b *testing.B, bits int, alg string) {
	k := rsaKey(b, bits)
	dek := digest(32)
	ct, err := kcrypto.Encrypt(&k.PublicKey, alg, dek, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("kcrypto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pt, err := kcrypto.Decrypt(k, alg, ct)
			if err != nil {
				b.Fatal(err)
			}
			pt.Wipe()
		}
	})
	b.Run("crypto-rsa", func(b *testing.B) { // the raw rate, for comparison
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rawDecrypt(k, alg, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkUnwrapRSA2048OAEP256(b *testing.B) { benchUnwrap(b, 2048, kcrypto.RSAOAEP256) }
func BenchmarkUnwrapRSA3072OAEP256(b *testing.B) { benchUnwrap(b, 3072, kcrypto.RSAOAEP256) }
func BenchmarkUnwrapRSA4096OAEP256(b *testing.B) { benchUnwrap(b, 4096, kcrypto.RSAOAEP256) }
func BenchmarkUnwrapRSA2048OAEP(b *testing.B)    { benchUnwrap(b, 2048, kcrypto.RSAOAEP) }

func BenchmarkWrapRSA2048OAEP256(b *testing.B) {
	k := rsaKey(b, 2048)
	dek := digest(32)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kcrypto.Encrypt(&k.PublicKey, kcrypto.RSAOAEP256, dek, rand.Reader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	for _, c := range []struct {
		alg string
		key crypto.Signer
	}{
		{kcrypto.PS256, rsaKey(b, 2048)}, {kcrypto.RS256, rsaKey(b, 2048)},
		{kcrypto.ES256, key(b, "ec-p-256.pem")}, {kcrypto.ES256K, key(b, "ec-p-256k.pem")},
	} {
		b.Run(c.alg, func(b *testing.B) {
			d := digest(32)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := kcrypto.Sign(c.key, c.alg, d, rand.Reader); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
