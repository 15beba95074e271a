package hsm_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/kcrypto"
	"github.com/customerkey/customerkey/internal/secret"
)

func open(t *testing.T, c hsm.Config) *hsm.HSM {
	t.Helper()
	h, err := hsm.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("Open(%q) err = %v", c.Token, err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func wantKind(t *testing.T, what string, err error, kind errkind.Kind, code string, says ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s succeeded, want a %v error", what, kind)
	}
	e, ok := errkind.As(err)
	if !ok || e.Kind != kind || (code != "" && e.Code != code) {
		t.Fatalf("%s err = %v (kind %v), want kind %v code %q", what, err, errkind.KindOf(err), kind, code)
	}
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("%s err = %q, want it to say %q", what, err, s)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	pin := secret.NewString("1234")
	tests := []struct {
		name string
		c    hsm.Config
		says []string
	}{
		{"empty", hsm.Config{}, []string{"hsm-module", "hsm-token", "hsm-pin-file", hsm.PINEnv}},
		{"relative module", hsm.Config{Module: "libsofthsm2.so", Token: "t", PIN: pin}, []string{"absolute path"}},
		{"negative sessions", hsm.Config{Module: "/m.so", Token: "t", PIN: pin, MaxSessions: -1}, []string{"hsm-max-sessions"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hsm.Open(t.Context(), tc.c)
			wantKind(t, "Open", err, errkind.Invalid, "", tc.says...)
		})
	}
}

func TestOpenModuleProblems(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.so")
	if err := os.WriteFile(junk, []byte("not a library"), 0o600); err != nil {
		t.Fatal(err)
	}
	pin := secret.NewString("1234")
	tests := []struct {
		name   string
		module string
		says   string
	}{
		{"missing", filepath.Join(dir, "nope.so"), "cannot be read"},
		{"directory", dir, "not a regular file"},
		{"not a library", junk, "not a loadable PKCS#11 library"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hsm.Open(t.Context(), hsm.Config{Module: tc.module, Token: "t", PIN: pin})
			wantKind(t, "Open", err, errkind.FailedPrecondition, "", tc.says, tc.module)
		})
	}
}

func TestReadPIN(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("pin", "123456\n", 0o600)
	open := write("open", "123456", 0o644)
	empty := write("empty", "\n", 0o600)
	pin, err := hsm.ReadPIN(good)
	if err != nil || pin.Reveal() != "123456" {
		t.Fatalf("ReadPIN(file) = %q, %v, want 123456 without the newline", pin.Reveal(), err)
	}
	for _, tc := range []struct{ path, says string }{
		{open, "chmod 600"}, {empty, "is empty"}, {filepath.Join(dir, "none"), "cannot read"}} {
		_, err := hsm.ReadPIN(tc.path)
		wantKind(t, "ReadPIN("+tc.path+")", err, errkind.FailedPrecondition, "", tc.says)
	}
	t.Setenv(hsm.PINEnv, "from-env")
	if pin, err := hsm.ReadPIN(""); err != nil || pin.Reveal() != "from-env" {
		t.Errorf("ReadPIN(\"\") = %q, %v, want the value of %s", pin.Reveal(), err, hsm.PINEnv)
	}
	t.Setenv(hsm.PINEnv, "")
	_, err = hsm.ReadPIN("")
	wantKind(t, "ReadPIN without file or env", err, errkind.FailedPrecondition, "", hsm.PINEnv)
}

func TestClassify(t *testing.T) {
	tests := []struct {
		code uint
		kind errkind.Kind
		ec   string
		says string
	}{
		{pkcs11.CKR_PIN_INCORRECT, errkind.FailedPrecondition, "HSMLoginFailed", "CKR_PIN_INCORRECT"},
		{pkcs11.CKR_PIN_LOCKED, errkind.FailedPrecondition, "HSMLoginFailed", "security officer"},
		{pkcs11.CKR_DEVICE_MEMORY, errkind.Unavailable, "HSMFull", "is full"},
		{pkcs11.CKR_TOKEN_NOT_PRESENT, errkind.Unavailable, "HSMUnavailable", "not reachable"},
		{pkcs11.CKR_DEVICE_REMOVED, errkind.Unavailable, "HSMUnavailable", "not reachable"},
		{pkcs11.CKR_SESSION_HANDLE_INVALID, errkind.Unavailable, "HSMUnavailable", "reconnects"},
		{pkcs11.CKR_SESSION_COUNT, errkind.Unavailable, "HSMUnavailable", "hsm-max-sessions"},
		{pkcs11.CKR_MECHANISM_INVALID, errkind.Invalid, "BadParameter", "does not support"},
		{pkcs11.CKR_FUNCTION_FAILED, errkind.Internal, "", "CKR_FUNCTION_FAILED"},
	}
	for _, tc := range tests {
		err := hsm.Classify("tok", "doing it", tc.code)
		wantKind(t, pkcs11.Error(tc.code).Error(), err, tc.kind, tc.ec, tc.says)
	}
}

func TestOpenTokenProblems(t *testing.T) {
	c := hsmtest.NewToken(t)
	t.Run("unknown label", func(t *testing.T) {
		bad := c
		bad.Token = "no-such-token"
		_, err := hsm.Open(t.Context(), bad)
		wantKind(t, "Open", err, errkind.Unavailable, "HSMUnavailable", `no token labelled "no-such-token"`, c.Token)
	})
	t.Run("wrong PIN", func(t *testing.T) {
		bad := c
		bad.PIN = secret.NewString("wrong-pin")
		_, err := hsm.Open(t.Context(), bad)
		wantKind(t, "Open", err, errkind.FailedPrecondition, "HSMLoginFailed", "CKR_PIN_INCORRECT", c.Token)
		if strings.Contains(err.Error(), "wrong-pin") || strings.Contains(err.Error(), c.PIN.Reveal()) {
			t.Errorf("Open err = %q shows a PIN", err)
		}
	})
	t.Run("right PIN", func(t *testing.T) {
		open(t, c)
	})
}

// encryptFor encrypts pt to pub with alg in Go, as a Key Vault client
// wrapping a key would.
func encryptFor(t *testing.T, pub *rsa.PublicKey, alg string, pt []byte) []byte {
	t.Helper()
	ct, err := kcrypto.Encrypt(pub, alg, pt, rand.Reader)
	if err != nil {
		t.Fatalf("Encrypt(%s) err = %v", alg, err)
	}
	return ct
}

func TestRSAKeys(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	ctx := t.Context()
	for _, bits := range []int{2048, 3072, 4096} {
		t.Run(big.NewInt(int64(bits)).String(), func(t *testing.T) {
			k, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: bits})
			if err != nil {
				t.Fatalf("GenerateKey(RSA %d) err = %v", bits, err)
			}
			pub := k.Public.(*rsa.PublicKey)
			if pub.N.BitLen() != bits || pub.E != 65537 || len(k.ID) != 16 {
				t.Fatalf("GenerateKey(RSA %d) = %d bits e=%d id %x", bits, pub.N.BitLen(), pub.E, k.ID)
			}
			dek := []byte("0123456789abcdef0123456789abcdef")
			for _, alg := range []string{kcrypto.RSAOAEP, kcrypto.RSAOAEP256, kcrypto.RSA15} {
				ct := encryptFor(t, pub, alg, dek)
				got, err := h.Decrypt(ctx, k.ID, alg, ct)
				if err != nil || !bytes.Equal(got.Reveal(), dek) {
					t.Errorf("Decrypt(%s) = %x, %v, want the key back", alg, got.Reveal(), err)
				}
				got.Wipe()
				ct[len(ct)/2] ^= 1
				_, err = h.Decrypt(ctx, k.ID, alg, ct)
				if !errors.Is(err, kcrypto.ErrDecryption) {
					t.Errorf("Decrypt(%s, tampered) err = %v, want ErrDecryption", alg, err)
				}
			}
			for _, alg := range []string{kcrypto.RS256, kcrypto.RS384, kcrypto.RS512, kcrypto.PS256, kcrypto.PS384, kcrypto.PS512} {
				digest := make([]byte, kcrypto.DigestSize(alg))
				_, _ = rand.Read(digest)
				sig, err := h.Sign(ctx, k.ID, alg, digest)
				if err != nil {
					t.Fatalf("Sign(%s) err = %v", alg, err)
				}
				if ok, err := kcrypto.Verify(pub, alg, digest, sig); !ok || err != nil {
					t.Errorf("Verify(%s) of the HSM's signature = %v, %v, want true", alg, ok, err)
				}
			}
		})
	}
}

func TestECKeys(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	for _, crv := range []string{jwk.P256, jwk.P384, jwk.P521, jwk.P256K} {
		t.Run(crv, func(t *testing.T) {
			k, err := h.GenerateKey(t.Context(), hsm.KeySpec{Type: jwk.EC, Curve: crv})
			if err != nil {
				t.Fatalf("GenerateKey(EC %s) err = %v", crv, err)
			}
			alg := kcrypto.SignatureAlgorithms(jwk.EC, crv)[0]
			digest := make([]byte, kcrypto.DigestSize(alg))
			_, _ = rand.Read(digest)
			sig, err := h.Sign(t.Context(), k.ID, alg, digest)
			if err != nil {
				t.Fatalf("Sign(%s) err = %v", alg, err)
			}
			if ok, err := kcrypto.Verify(k.Public, alg, digest, sig); !ok || err != nil {
				t.Errorf("Verify(%s) of the HSM's signature = %v, %v, want true", alg, ok, err)
			}
			if _, err := h.Decrypt(t.Context(), k.ID, kcrypto.RSAOAEP, make([]byte, 256)); err == nil {
				t.Error("Decrypt with an EC key succeeded")
			}
		})
	}
}

func TestGenerateRefusals(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	tests := []struct {
		name string
		spec hsm.KeySpec
		says string
	}{
		{"RSA 1024", hsm.KeySpec{Type: jwk.RSA, Bits: 1024}, "2048, 3072 or 4096"},
		{"unknown curve", hsm.KeySpec{Type: jwk.EC, Curve: "P-192"}, "not supported"},
		{"oct", hsm.KeySpec{Type: jwk.Oct}, "RSA or EC"},
		{"EC key exchange key", hsm.KeySpec{Type: jwk.EC, Curve: jwk.P256, Usage: hsm.UseKeyExchange}, "must be RSA"},
	}
	for _, tc := range tests {
		_, err := h.GenerateKey(t.Context(), tc.spec)
		wantKind(t, "GenerateKey("+tc.name+")", err, errkind.Invalid, "BadParameter", tc.says)
	}
}

// TestPrivateKeysCannotBeRead asks the token itself, attribute by
// attribute, for what it reveals of every key the package made.
func TestPrivateKeysCannotBeRead(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := open(t, c)
	ctx := t.Context()
	rk, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.EC, Curve: jwk.P256})
	if err != nil {
		t.Fatal(err)
	}
	soft, _ := rsa.GenerateKey(rand.Reader, 2048)
	ik, err := h.ImportKey(ctx, soft, hsm.UseOperations)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.BackupKeyID(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.SealKeyID(ctx); err != nil {
		t.Fatal(err)
	}
	objs := hsmtest.Objects(t, c)
	seen := map[string]bool{}
	for _, o := range objs {
		seen[hex.EncodeToString(o.ID)] = true
		if !o.Sensitive || o.ValueRefusal != "CKR_ATTRIBUTE_SENSITIVE" {
			t.Errorf("%s %x (%s): sensitive %v, reading its value gave %q; want sensitive and CKR_ATTRIBUTE_SENSITIVE",
				o.Class, o.ID, o.Label, o.Sensitive, o.ValueRefusal)
		}
		switch o.Class {
		case "secret key": // backup and seal keys never leave the token
			if o.Extractable || !o.NeverExtractable {
				t.Errorf("secret key %s: extractable %v never-extractable %v, want false and true", o.Label, o.Extractable, o.NeverExtractable)
			}
		case "private key": // extractable toward the backup key only (see privateTemplate)
			if !o.Extractable || o.Label != hsm.KeyLabel {
				t.Errorf("private key %x: extractable %v label %q, want true and %q", o.ID, o.Extractable, o.Label, hsm.KeyLabel)
			}
		}
	}
	for _, k := range []hsm.Key{rk, ek, ik} {
		if !seen[hex.EncodeToString(k.ID)] {
			t.Errorf("the token has no object with id %x", k.ID)
		}
	}
	if len(objs) != 5 {
		t.Errorf("the token holds %d key objects, want 5 (three key pairs, the backup and the seal key)", len(objs))
	}
}

func TestImportKey(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	ctx := t.Context()
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	k1, _ := kcrypto.GenerateEC(rand.Reader, jwk.P256K)
	for _, tc := range []struct {
		name string
		priv crypto.Signer
		alg  string
	}{{"RSA", rk, kcrypto.PS256}, {"P-384", ek, kcrypto.ES384}, {"P-256K", k1, kcrypto.ES256K}} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := h.ImportKey(ctx, tc.priv, hsm.UseOperations)
			if err != nil {
				t.Fatalf("ImportKey err = %v", err)
			}
			digest := make([]byte, kcrypto.DigestSize(tc.alg))
			sig, err := h.Sign(ctx, k.ID, tc.alg, digest)
			if err != nil {
				t.Fatalf("Sign err = %v", err)
			}
			if ok, _ := kcrypto.Verify(tc.priv.Public(), tc.alg, digest, sig); !ok {
				t.Error("the imported key's signature does not verify with the original public key")
			}
		})
	}
	ct := encryptFor(t, &rk.PublicKey, kcrypto.RSAOAEP256, []byte("dek"))
	k, err := h.ImportKey(ctx, rk, hsm.UseKeyExchange)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.Decrypt(ctx, k.ID, kcrypto.RSAOAEP256, ct)
	if err == nil {
		t.Error("a key exchange key decrypted; it must only unwrap transfer blobs")
	}
}

func TestImportTransfer(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := open(t, c)
	ctx := t.Context()
	kek, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 3072, Usage: hsm.UseKeyExchange})
	if err != nil {
		t.Fatal(err)
	}
	kekPub := kek.Public.(*rsa.PublicKey)
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	blob, err := hsmtest.TransferBlob(kekPub, target)
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.ImportTransfer(ctx, kek.ID, blob, hsm.UseOperations)
	if err != nil {
		t.Fatalf("ImportTransfer err = %v", err)
	}
	if !k.Public.(*rsa.PublicKey).Equal(&target.PublicKey) {
		t.Fatal("the imported key's public key is not the target's")
	}
	ct := encryptFor(t, &target.PublicKey, kcrypto.RSAOAEP256, []byte("data key"))
	if pt, err := h.Decrypt(ctx, k.ID, kcrypto.RSAOAEP256, ct); err != nil || string(pt.Reveal()) != "data key" {
		t.Errorf("Decrypt with the imported key = %q, %v", pt.Reveal(), err)
	}

	other, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 3072, Usage: hsm.UseKeyExchange})
	if err != nil {
		t.Fatal(err)
	}
	operational, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 3072})
	if err != nil {
		t.Fatal(err)
	}
	ecTarget, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecBlob, _ := hsmtest.TransferBlob(kekPub, ecTarget)
	damaged := append([]byte(nil), blob...)
	damaged[len(damaged)-5] ^= 1
	before := len(hsmtest.Objects(t, c))
	tests := []struct {
		name string
		kek  []byte
		blob []byte
		says string
	}{
		{"another KEK", other.ID, blob, "another KEK"},
		{"damaged target", kek.ID, damaged, "damaged"},
		{"truncated", kek.ID, blob[:400], "not an RSA-OAEP block"},
		{"EC target", kek.ID, ecBlob, "not an RSA key"},
		{"not a KEK", operational.ID, blob, "not created as a key exchange key"},
	}
	for _, tc := range tests {
		_, err := h.ImportTransfer(ctx, tc.kek, tc.blob, hsm.UseOperations)
		wantKind(t, "ImportTransfer("+tc.name+")", err, errkind.Invalid, "BadParameter", tc.says)
	}
	if after := len(hsmtest.Objects(t, c)); after != before {
		t.Errorf("failed imports left %d objects behind", after-before)
	}
}

func TestBackupWrapUnwrap(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	ctx := t.Context()
	rk, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	ek, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.EC, Curve: jwk.P521})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kty, alg string
		k              hsm.Key
	}{{"RSA", jwk.RSA, kcrypto.RS256, rk}, {"EC", jwk.EC, kcrypto.ES512, ek}} {
		t.Run(tc.name, func(t *testing.T) {
			bk, wrapped, err := h.BackupWrap(ctx, tc.k.ID)
			if err != nil {
				t.Fatalf("BackupWrap err = %v", err)
			}
			if err := h.DestroyKey(ctx, tc.k.ID); err != nil {
				t.Fatalf("DestroyKey err = %v", err)
			}
			r, err := h.BackupUnwrap(ctx, bk, wrapped, tc.kty, hsm.UseOperations, tc.k.Public)
			if err != nil {
				t.Fatalf("BackupUnwrap err = %v", err)
			}
			digest := make([]byte, kcrypto.DigestSize(tc.alg))
			sig, err := h.Sign(ctx, r.ID, tc.alg, digest)
			if err != nil {
				t.Fatalf("Sign with the restored key err = %v", err)
			}
			if ok, _ := kcrypto.Verify(tc.k.Public, tc.alg, digest, sig); !ok {
				t.Error("the restored key is not the backed-up key")
			}
		})
	}
	bk, wrapped, err := h.BackupWrap(ctx, mustGen(t, h).ID)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, err = h.BackupUnwrap(ctx, bk, wrapped, jwk.RSA, hsm.UseOperations, &otherPub.PublicKey)
	wantKind(t, "BackupUnwrap(another public key)", err, errkind.Invalid, "BadParameter", "does not match")

	elsewhere := open(t, hsmtest.NewToken(t))
	_, err = elsewhere.BackupUnwrap(ctx, bk, wrapped, jwk.RSA, hsm.UseOperations, nil)
	wantKind(t, "BackupUnwrap on another token", err, errkind.Invalid, "BadParameter", "restores only into the HSM deployment")
}

func mustGen(t *testing.T, h *hsm.HSM) hsm.Key {
	t.Helper()
	k, err := h.GenerateKey(t.Context(), hsm.KeySpec{Type: jwk.RSA, Bits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealKeyGCM(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	ctx := t.Context()
	id, err := h.SealKeyID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.SealKeyID(ctx)
	if err != nil || !bytes.Equal(id, again) {
		t.Fatalf("SealKeyID twice = %x, %x (%v), want the same key", id, again, err)
	}
	pt := []byte("the keyring")
	sealed, err := h.EncryptGCM(ctx, id, []byte("aad"), pt)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, pt) {
		t.Error("the sealed data contains the plaintext")
	}
	got, err := h.DecryptGCM(ctx, id, []byte("aad"), sealed)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("DecryptGCM = %q, %v", got, err)
	}
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name        string
		aad, sealed []byte
	}{{"other aad", []byte("other"), sealed}, {"tampered", []byte("aad"), tampered}, {"short", []byte("aad"), sealed[:20]}} {
		_, err := h.DecryptGCM(ctx, id, tc.aad, tc.sealed)
		wantKind(t, "DecryptGCM("+tc.name+")", err, errkind.Internal, "", "does not authenticate")
	}
	elsewhere := open(t, hsmtest.NewToken(t))
	_, err = elsewhere.DecryptGCM(ctx, id, []byte("aad"), sealed)
	wantKind(t, "DecryptGCM on another token", err, errkind.Unavailable, "HSMKeyMissing", "has no secret key object")
}

func TestDestroyKey(t *testing.T) {
	h := open(t, hsmtest.NewToken(t))
	ctx := t.Context()
	k := mustGen(t, h)
	if err := h.DestroyKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroyKey(ctx, k.ID); err != nil {
		t.Errorf("DestroyKey of a destroyed key err = %v, want nil", err)
	}
	_, err := h.Sign(ctx, k.ID, kcrypto.RS256, make([]byte, 32))
	wantKind(t, "Sign with a destroyed key", err, errkind.Unavailable, "HSMKeyMissing", hex.EncodeToString(k.ID))
}

// TestSecretKey: a key of GenerateSecretKey lives only in the token, seals
// and opens with AES-GCM there, and once destroyed nothing it sealed opens.
func TestSecretKey(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := open(t, c)
	ctx := t.Context()
	id, err := h.GenerateSecretKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.GenerateSecretKey(ctx)
	if err != nil || bytes.Equal(id, other) {
		t.Fatalf("a second GenerateSecretKey = %x, %v; want another key", other, err)
	}
	var found bool
	for _, o := range hsmtest.Objects(t, c) {
		if !bytes.Equal(o.ID, id) {
			continue
		}
		found = true
		if o.Class != "secret key" || o.Label != hsm.SecretLabel || !o.Sensitive || o.Extractable || !o.NeverExtractable ||
			o.ValueRefusal != "CKR_ATTRIBUTE_SENSITIVE" {
			t.Errorf("the secret key object = %+v; want a sensitive, never extractable secret key labelled %s", o, hsm.SecretLabel)
		}
	}
	if !found {
		t.Fatalf("the token has no object with CKA_ID %x", id)
	}
	sealed, err := h.EncryptGCM(ctx, id, []byte("aad"), []byte("a policy key"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.DecryptGCM(ctx, other, []byte("aad"), sealed); err == nil {
		t.Error("another secret key opened the sealed data")
	}
	if got, err := h.DecryptGCM(ctx, id, []byte("aad"), sealed); err != nil || string(got) != "a policy key" {
		t.Fatalf("DecryptGCM = %q, %v", got, err)
	}
	if err := h.DestroyKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := h.DestroyKey(ctx, id); err != nil {
		t.Errorf("DestroyKey of a destroyed secret key err = %v, want nil", err)
	}
	_, err = h.DecryptGCM(ctx, id, []byte("aad"), sealed)
	wantKind(t, "DecryptGCM with a destroyed key", err, errkind.Unavailable, "HSMKeyMissing", hex.EncodeToString(id))
	if _, err := h.DecryptGCM(ctx, other, []byte("aad"), mustSeal(t, h, other)); err != nil {
		t.Errorf("the other secret key after destroying the first: %v", err)
	}
}

func mustSeal(t *testing.T, h *hsm.HSM, id []byte) []byte {
	t.Helper()
	sealed, err := h.EncryptGCM(t.Context(), id, []byte("aad"), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func TestTokenRemovedMidRun(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := open(t, c)
	ctx := t.Context()
	k := mustGen(t, h)
	hsmtest.DeleteToken(t, c)
	_, err := h.Sign(ctx, k.ID, kcrypto.RS256, make([]byte, 32))
	wantKind(t, "Sign after the token was removed", err, errkind.Unavailable, "HSMUnavailable", c.Token)
	_, err = h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.RSA, Bits: 2048})
	wantKind(t, "GenerateKey after the token was removed", err, errkind.Unavailable, "HSMUnavailable", c.Token)
}

func TestConcurrentOperations(t *testing.T) {
	c := hsmtest.NewToken(t)
	c.MaxSessions = 2
	h := open(t, c)
	ctx := t.Context()
	k := mustGen(t, h)
	pub := k.Public.(*rsa.PublicKey)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			dek := []byte{byte(i), 1, 2, 3}
			ct, _ := kcrypto.Encrypt(pub, kcrypto.RSAOAEP256, dek, rand.Reader)
			pt, err := h.Decrypt(ctx, k.ID, kcrypto.RSAOAEP256, ct)
			if err == nil && !bytes.Equal(pt.Reveal(), dek) {
				err = errors.New("wrong plaintext")
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Decrypt err = %v", err)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := h.Decrypt(cancelled, k.ID, kcrypto.RSAOAEP256, make([]byte, 256))
	if err == nil {
		t.Error("Decrypt after Close succeeded")
	}
}

// TestOAEPUnpad checks the host-side OAEP decoding used when a token lacks
// OAEP with SHA-256, against blocks made by crypto/rsa and opened with a
// plain modular exponentiation.
func TestOAEPUnpad(t *testing.T) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	k := priv.Size()
	raw := func(ct []byte) []byte {
		m := new(big.Int).Exp(new(big.Int).SetBytes(ct), priv.D, priv.N)
		return m.FillBytes(make([]byte, k))
	}
	for _, n := range []int{0, 1, 32, k - 2*32 - 2} {
		msg := bytes.Repeat([]byte{0x5a}, n)
		ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := hsm.OAEPUnpad(sha256.New(), raw(ct))
		if !ok || !bytes.Equal(got, msg) {
			t.Errorf("OAEPUnpad(%d-byte message) = %x, %v", n, got, ok)
		}
	}
	good, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("m"), nil)
	sha1CT, _ := rsa.EncryptOAEP(sha1.New(), rand.Reader, &priv.PublicKey, []byte("m"), nil)
	labelled, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("m"), []byte("label"))
	leading := raw(good)
	leading[0] = 1
	pkcs1, _ := rsa.EncryptPKCS1v15(rand.Reader, &priv.PublicKey, []byte("m"))
	tests := []struct {
		name string
		em   []byte
	}{
		{"SHA-1 block", raw(sha1CT)},
		{"another label", raw(labelled)},
		{"non-zero first byte", leading},
		{"PKCS #1 v1.5 block", raw(pkcs1)},
		{"too short", make([]byte, 2*32+1)},
		{"all zeros", make([]byte, k)},
	}
	for _, tc := range tests {
		if got, ok := hsm.OAEPUnpad(sha256.New(), tc.em); ok {
			t.Errorf("OAEPUnpad(%s) = %x, true; want a failure", tc.name, got)
		}
	}
}

// TestReconnects: when the token drops every session and the login, the
// next operations reconnect and log in again by themselves, those that
// create objects included.
func TestReconnects(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := open(t, c)
	ctx := t.Context()
	k := mustGen(t, h)
	digest := make([]byte, 32)
	for round := range 2 {
		hsmtest.CloseAllSessions(t, c)
		sig, err := h.Sign(ctx, k.ID, kcrypto.RS256, digest)
		if err != nil {
			t.Fatalf("round %d: Sign after the sessions were closed err = %v", round, err)
		}
		if ok, _ := kcrypto.Verify(k.Public, kcrypto.RS256, digest, sig); !ok {
			t.Fatalf("round %d: the signature does not verify", round)
		}
	}
	hsmtest.CloseAllSessions(t, c)
	if _, err := h.GenerateKey(ctx, hsm.KeySpec{Type: jwk.EC, Curve: jwk.P256}); err != nil {
		t.Errorf("GenerateKey after the sessions were closed err = %v", err)
	}
	if n := len(hsmtest.Objects(t, c)); n != 2 {
		t.Errorf("the token holds %d key objects, want 2 (no duplicate from the retry)", n)
	}
}
