package kcrypto_test

import (
	"bytes"
	"encoding/asn1"
	"fmt"
	"math/big"
	"testing"

	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
)

// Known-answer tests against vectors that OpenSSL produced for the fixed
// keys of testdata (see gen-vectors.sh): an independent implementation, so
// these catch a wrong hash, MGF, salt length or signature layout that a
// round trip through our own code would not. Wycheproof vectors are not
// vendored (no network here); these and the cross-checks against crypto/rsa,
// crypto/ecdsa and decred stand in for them.

func TestKnownAnswerDecrypt(t *testing.T) {
	key(t, "rsa2048.pem") // load vectors
	if len(vecs.Decrypt) == 0 {
		t.Fatal("no decrypt vectors")
	}
	for _, v := range vecs.Decrypt {
		t.Run(fmt.Sprintf("%s/%s/%dB", v.Key, v.Alg, len(v.PT)/2), func(t *testing.T) {
			k := key(t, v.Key)
			ct := unhex(t, v.CT)
			got, err := kcrypto.Decrypt(k, v.Alg, ct)
			if err != nil {
				t.Fatalf("Decrypt(%s) err = %v", v.Alg, err)
			}
			if want := unhex(t, v.PT); !bytes.Equal(got.Reveal(), want) {
				t.Errorf("Decrypt(%s) = %x, want %x", v.Alg, got.Reveal(), want)
			}
			// One flipped bit anywhere gives the opaque error.
			for _, i := range []int{0, len(ct) / 2, len(ct) - 1} {
				bad := bytes.Clone(ct)
				bad[i] ^= 0x10
				if _, err := kcrypto.Decrypt(k, v.Alg, bad); err != kcrypto.ErrDecryption {
					t.Errorf("Decrypt(%s, ct with byte %d flipped) err = %v, want ErrDecryption", v.Alg, i, err)
				}
			}
		})
	}
}

func TestKnownAnswerVerify(t *testing.T) {
	key(t, "rsa2048.pem")
	if len(vecs.Verify) == 0 {
		t.Fatal("no verify vectors")
	}
	for _, v := range vecs.Verify {
		t.Run(v.Key+"/"+v.Alg, func(t *testing.T) {
			k := key(t, v.Key)
			d := unhex(t, v.Digest)
			var sig []byte
			if v.SigDER != "" {
				sig = derToRaw(t, unhex(t, v.SigDER), jwk.CurveSize(curveOf(t, v.Alg)))
			} else {
				sig = unhex(t, v.Sig)
			}
			ok, err := kcrypto.Verify(k.Public(), v.Alg, d, sig)
			if err != nil || !ok {
				t.Fatalf("Verify(%s, OpenSSL signature) = %v, %v; want true, nil", v.Alg, ok, err)
			}
			bad := bytes.Clone(sig)
			bad[len(bad)/3] ^= 1
			if ok, err := kcrypto.Verify(k.Public(), v.Alg, d, bad); ok || err != nil {
				t.Errorf("Verify(%s, tampered signature) = %v, %v; want false, nil", v.Alg, ok, err)
			}
			// PKCS #1 v1.5 signatures are deterministic: ours must be OpenSSL's.
			if v.Alg[:2] == "RS" {
				got, err := kcrypto.Sign(k, v.Alg, d, nil)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, sig) {
					t.Errorf("Sign(%s) differs from OpenSSL's signature", v.Alg)
				}
			}
		})
	}
}

func curveOf(t *testing.T, alg string) string {
	switch alg {
	case kcrypto.ES256:
		return jwk.P256
	case kcrypto.ES384:
		return jwk.P384
	case kcrypto.ES512:
		return jwk.P521
	case kcrypto.ES256K:
		return jwk.P256K
	}
	t.Fatalf("no curve for %s", alg)
	return ""
}

// derToRaw converts an ASN.1 ECDSA signature to r‖s, each left-padded.
func derToRaw(t testing.TB, der []byte, size int) []byte {
	t.Helper()
	var s struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &s); err != nil || len(rest) != 0 {
		t.Fatalf("bad DER signature: %v", err)
	}
	raw := make([]byte, 2*size)
	s.R.FillBytes(raw[:size])
	s.S.FillBytes(raw[size:])
	return raw
}

// rawToDER is the inverse, to hand our signatures to ecdsa.VerifyASN1.
func rawToDER(t testing.TB, raw []byte) []byte {
	t.Helper()
	n := len(raw) / 2
	der, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:n]), new(big.Int).SetBytes(raw[n:])})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
