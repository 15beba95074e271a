package vault_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"math/big"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

// publicRSA is the public key GetKey returns for name.
func (e *env) publicKey(t *testing.T, name string) crypto.PublicKey {
	t.Helper()
	k, err := e.svc.GetKey(ctx, kv, name, "")
	if err != nil {
		t.Fatalf("GetKey(%s) err = %v", name, err)
	}
	pub, err := k.JWK.Public()
	if err != nil {
		t.Fatalf("JWK.Public() err = %v", err)
	}
	return pub
}

func localEncrypt(t *testing.T, pub *rsa.PublicKey, alg string, msg []byte) []byte {
	t.Helper()
	var ct []byte
	var err error
	switch alg {
	case "RSA-OAEP":
		ct, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
	case "RSA-OAEP-256":
		ct, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
	case "RSA1_5":
		ct, err = rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
	}
	if err != nil {
		t.Fatalf("local %s encrypt err = %v", alg, err)
	}
	return ct
}

func localDecrypt(t *testing.T, k *rsa.PrivateKey, alg string, ct []byte) []byte {
	t.Helper()
	var pt []byte
	var err error
	switch alg {
	case "RSA-OAEP":
		pt, err = rsa.DecryptOAEP(sha1.New(), nil, k, ct, nil)
	case "RSA-OAEP-256":
		pt, err = rsa.DecryptOAEP(sha256.New(), nil, k, ct, nil)
	case "RSA1_5":
		pt, err = rsa.DecryptPKCS1v15(nil, k, ct)
	}
	if err != nil {
		t.Fatalf("local %s decrypt err = %v", alg, err)
	}
	return pt
}

func hashFor(alg string) (crypto.Hash, hash.Hash) {
	switch alg[len(alg)-3:] {
	case "384":
		return crypto.SHA384, sha512.New384()
	case "512":
		return crypto.SHA512, sha512.New()
	}
	return crypto.SHA256, sha256.New()
}

func digest(alg string, msg []byte) []byte {
	_, h := hashFor(alg)
	h.Write(msg)
	return h.Sum(nil)
}

func TestRSARoundTrips(t *testing.T) {
	e := newKeyEnv(t)
	created := e.createKey(t, "root1", vault.KeySpec{Type: "RSA"})
	e.importRSA(t, "imported")
	pub := e.publicKey(t, "root1").(*rsa.PublicKey)
	dek := []byte("0123456789abcdef0123456789abcdef")

	for _, alg := range []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"} {
		t.Run(alg, func(t *testing.T) {
			// Ciphertext made locally with the public key from GetKey decrypts on the server.
			for _, op := range []string{"decrypt", "unwrapKey"} {
				ct := localEncrypt(t, pub, alg, dek)
				var got vault.PlainResult
				var err error
				if op == "decrypt" {
					got, err = e.svc.Decrypt(ctx, kv, "root1", "", alg, ct)
				} else {
					got, err = e.svc.UnwrapKey(ctx, kv, "root1", created.Ref.Version, alg, ct)
				}
				if err != nil || !bytes.Equal(got.Value.Reveal(), dek) || got.Ref != created.Ref {
					t.Errorf("%s(local %s ciphertext) = %v, %v; want the DEK and kid %+v", op, alg, got.Ref, err, created.Ref)
				}
				got.Value.Wipe()
			}
			// The server's ciphertext decrypts locally with the imported key.
			w, err := e.svc.WrapKey(ctx, kv, "imported", "", alg, dek)
			if err != nil {
				t.Fatalf("WrapKey(%s) err = %v", alg, err)
			}
			if pt := localDecrypt(t, fixtureRSA(), alg, w.Value); !bytes.Equal(pt, dek) {
				t.Errorf("local decrypt of WrapKey(%s) = %x, want the DEK", alg, pt)
			}
			c, err := e.svc.Encrypt(ctx, kv, "root1", "", alg, dek)
			if err != nil {
				t.Fatalf("Encrypt(%s) err = %v", alg, err)
			}
			p, err := e.svc.Decrypt(ctx, kv, "root1", "", alg, c.Value)
			if err != nil || !bytes.Equal(p.Value.Reveal(), dek) {
				t.Errorf("Decrypt(Encrypt(%s)) = %v; want the DEK", alg, err)
			}
		})
	}
	ct := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	ct[10] ^= 1
	_, err := e.svc.UnwrapKey(ctx, kv, "root1", "", "RSA-OAEP-256", ct)
	wantErr(t, "UnwrapKey(tampered)", err, errkind.Invalid, "BadParameter")

	msg := []byte("customer key")
	for _, alg := range []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"} {
		t.Run(alg, func(t *testing.T) {
			h, _ := hashFor(alg)
			d := digest(alg, msg)
			s, err := e.svc.Sign(ctx, kv, "root1", "", alg, d)
			if err != nil {
				t.Fatalf("Sign(%s) err = %v", alg, err)
			}
			if alg[0] == 'R' {
				err = rsa.VerifyPKCS1v15(pub, h, d, s.Value)
			} else {
				err = rsa.VerifyPSS(pub, h, d, s.Value, nil)
			}
			if err != nil {
				t.Errorf("local verify of Sign(%s) err = %v", alg, err)
			}
			// A signature made locally verifies on the server; a tampered one does not.
			var local []byte
			if alg[0] == 'R' {
				local, err = rsa.SignPKCS1v15(rand.Reader, fixtureRSA(), h, d)
			} else {
				local, err = rsa.SignPSS(rand.Reader, fixtureRSA(), h, d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			}
			if err != nil {
				t.Fatal(err)
			}
			if v, err := e.svc.Verify(ctx, kv, "imported", "", alg, d, local); err != nil || !v.Valid {
				t.Errorf("Verify(local %s) = %v, %v; want valid", alg, v.Valid, err)
			}
			local[0] ^= 1
			if v, err := e.svc.Verify(ctx, kv, "imported", "", alg, d, local); err != nil || v.Valid {
				t.Errorf("Verify(tampered %s) = %v, %v; want invalid, no error", alg, v.Valid, err)
			}
		})
	}
}

func TestECSignVerify(t *testing.T) {
	e := newKeyEnv(t)
	msg := []byte("customer key")
	for _, c := range []struct{ crv, alg string }{{"P-256", "ES256"}, {"P-384", "ES384"}, {"P-521", "ES512"}, {"P-256K", "ES256K"}} {
		t.Run(c.alg, func(t *testing.T) {
			name := "ec-" + c.alg
			e.createKey(t, name, vault.KeySpec{Type: "EC", Curve: c.crv})
			d := digest(c.alg, msg)
			s, err := e.svc.Sign(ctx, kv, name, "", c.alg, d)
			if err != nil {
				t.Fatalf("Sign(%s) err = %v", c.alg, err)
			}
			if pub, ok := e.publicKey(t, name).(*ecdsa.PublicKey); ok { // P-256K has its own type
				size := (pub.Curve.Params().BitSize + 7) / 8
				if len(s.Value) != 2*size {
					t.Fatalf("signature is %d bytes, want r||s of %d", len(s.Value), 2*size)
				}
				r, ss := new(big.Int).SetBytes(s.Value[:size]), new(big.Int).SetBytes(s.Value[size:])
				if !ecdsa.Verify(pub, d, r, ss) {
					t.Errorf("local ecdsa.Verify of Sign(%s) failed", c.alg)
				}
			}
			if v, err := e.svc.Verify(ctx, kv, name, "", c.alg, d, s.Value); err != nil || !v.Valid {
				t.Errorf("Verify(Sign(%s)) = %v, %v; want valid", c.alg, v.Valid, err)
			}
			s.Value[len(s.Value)-1] ^= 1
			if v, err := e.svc.Verify(ctx, kv, name, "", c.alg, d, s.Value); err != nil || v.Valid {
				t.Errorf("Verify(tampered) = %v, %v; want invalid", v.Valid, err)
			}
		})
	}
}

func TestKeyStateRefusals(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "k")
	pub := e.publicKey(t, "k").(*rsa.PublicKey)
	e.createKey(t, "ec", vault.KeySpec{Type: "EC"})
	dek := make([]byte, 32)
	wrapped := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	d := digest("RS256", []byte("m"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, fixtureRSA(), crypto.SHA256, d)
	if err != nil {
		t.Fatal(err)
	}
	now := day0(e)
	op := func(name, key, alg string) error {
		var err error
		switch name {
		case "wrapKey":
			_, err = e.svc.WrapKey(ctx, kv, key, "", alg, dek)
		case "unwrapKey":
			var p vault.PlainResult
			p, err = e.svc.UnwrapKey(ctx, kv, key, "", alg, wrapped)
			p.Value.Wipe()
		case "encrypt":
			_, err = e.svc.Encrypt(ctx, kv, key, "", alg, dek)
		case "sign":
			_, err = e.svc.Sign(ctx, kv, key, "", alg, d)
		case "verify":
			_, err = e.svc.Verify(ctx, kv, key, "", alg, d, sig)
		}
		return err
	}
	cases := []struct {
		name   string
		update vault.KeyUpdate
		op     string
		key    string
		alg    string
		kind   errkind.Kind // 0 with code "": allowed
		code   string
		msg    string
	}{
		{"enabled wraps", vault.KeyUpdate{}, "wrapKey", "k", "RSA-OAEP-256", 0, "", ""},
		{"disabled wrap", vault.KeyUpdate{Enabled: ptr(false)}, "wrapKey", "k", "RSA-OAEP-256", errkind.PermissionDenied, "KeyDisabled",
			"Operation wrapKey is not allowed on a disabled key."},
		{"disabled unwrap", vault.KeyUpdate{Enabled: ptr(false)}, "unwrapKey", "k", "RSA-OAEP-256", errkind.PermissionDenied, "KeyDisabled", ""},
		{"disabled verify", vault.KeyUpdate{Enabled: ptr(false)}, "verify", "k", "RS256", errkind.PermissionDenied, "KeyDisabled", ""},
		{"not yet valid wrap", vault.KeyUpdate{Enabled: ptr(true), NotBefore: ptrTime(now.Add(time.Hour))}, "wrapKey", "k", "RSA-OAEP-256",
			errkind.PermissionDenied, "KeyNotYetValid", ""},
		{"not yet valid sign", vault.KeyUpdate{}, "sign", "k", "RS256", errkind.PermissionDenied, "KeyNotYetValid", ""},
		{"not yet valid unwrap", vault.KeyUpdate{}, "unwrapKey", "k", "RSA-OAEP-256", 0, "", ""},
		{"expired wrap", vault.KeyUpdate{NotBefore: ptrTime(now.Add(-2 * time.Hour)), Expires: ptrTime(now)}, "wrapKey", "k", "RSA-OAEP-256",
			errkind.PermissionDenied, "KeyExpired", ""},
		{"expired encrypt", vault.KeyUpdate{}, "encrypt", "k", "RSA-OAEP", errkind.PermissionDenied, "KeyExpired", ""},
		{"expired sign", vault.KeyUpdate{}, "sign", "k", "RS256", errkind.PermissionDenied, "KeyExpired", ""},
		{"expired unwrap", vault.KeyUpdate{}, "unwrapKey", "k", "RSA-OAEP-256", 0, "", ""},
		{"expired verify", vault.KeyUpdate{}, "verify", "k", "RS256", 0, "", ""},
		{"9999 wraps", vault.KeyUpdate{Expires: ptrTime(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))}, "wrapKey", "k", "RSA-OAEP-256", 0, "", ""},
		{"op not in key_ops", vault.KeyUpdate{Ops: []string{"wrapKey", "unwrapKey"}}, "encrypt", "k", "RSA-OAEP", errkind.PermissionDenied,
			"OperationNotAllowed", ""},
		{"op in key_ops", vault.KeyUpdate{}, "unwrapKey", "k", "RSA-OAEP-256", 0, "", ""},
		{"bad alg for wrap", vault.KeyUpdate{}, "wrapKey", "k", "RS256", errkind.Invalid, "BadParameter", ""},
		{"unknown alg", vault.KeyUpdate{}, "wrapKey", "k", "A256KW", errkind.Invalid, "BadParameter", ""},
		{"ec wrap", vault.KeyUpdate{}, "wrapKey", "ec", "RSA-OAEP-256", errkind.PermissionDenied, "OperationNotAllowed", ""},
		{"ec wrong curve alg", vault.KeyUpdate{}, "sign", "ec", "ES384", errkind.Invalid, "BadParameter", ""},
		{"short digest", vault.KeyUpdate{Ops: []string{"sign", "verify", "wrapKey"}}, "sign", "k", "RS384", errkind.Invalid, "BadParameter", ""},
		{"missing key", vault.KeyUpdate{}, "wrapKey", "nope", "RSA-OAEP-256", errkind.NotFound, "KeyNotFound", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.update.Enabled != nil || tc.update.NotBefore != nil || tc.update.Expires != nil || tc.update.Ops != nil {
				if _, err := e.svc.UpdateKey(ctx, caller, kv, "k", "", tc.update); err != nil {
					t.Fatalf("UpdateKey err = %v", err)
				}
			}
			err := op(tc.op, tc.key, tc.alg)
			if tc.code == "" {
				if err != nil {
					t.Errorf("%s err = %v, want success", tc.op, err)
				}
				return
			}
			wantErr(t, tc.op, err, tc.kind, tc.code)
			if tc.msg != "" && errkind.Public(err) != tc.msg {
				t.Errorf("message %q, want %q", errkind.Public(err), tc.msg)
			}
		})
	}
}
