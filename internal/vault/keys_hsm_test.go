package vault_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
	"github.com/customerkey/customerkey/internal/jwk"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

func openHSM(t *testing.T, c hsm.Config) *hsm.HSM {
	t.Helper()
	h, err := hsm.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("hsm.Open err = %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// hsmService is a Service on e's store whose -HSM keys live in h (nil: no
// HSM), or whose HSM failed to start with hsmErr.
func (e *env) hsmService(h *hsm.HSM, hsmErr error) *vault.Service {
	o := vault.Options{Store: e.store, Audit: e.audit, Subscriptions: e.subs,
		Locations: fakeLocations{"westeurope": true}, Now: e.clock.Now, HSMError: hsmErr,
		VaultURI: func(name string) string { return "https://" + name + ".vault.test:8443/" }}
	if h != nil {
		o.HSM = h
	}
	return vault.New(o)
}

// newHSMEnv is newKeyEnv whose service keeps -HSM keys in a fresh token.
func newHSMEnv(t *testing.T) (*env, hsm.Config) {
	t.Helper()
	c := hsmtest.NewToken(t)
	e := newKeyEnv(t)
	e.svc = e.hsmService(openHSM(t, c), nil)
	return e, c
}

// storedMaterial lists the material records of key name in vault kv.
func (e *env) storedMaterial(t *testing.T, name string) []string {
	t.Helper()
	var out []string
	err := e.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List("vault/data/", "", 0)
		for _, en := range entries {
			if strings.Contains(en.Key, "/mat/"+name+"/") {
				out = append(out, en.Key)
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func privateObjects(t *testing.T, c hsm.Config) int {
	t.Helper()
	n := 0
	for _, o := range hsmtest.Objects(t, c) {
		if o.Class == "private key" {
			n++
		}
	}
	return n
}

func TestHSMKeys(t *testing.T) {
	e, c := newHSMEnv(t)
	tests := []struct {
		name string
		spec vault.KeySpec
		kty  string
		alg  string // a signature algorithm to try
	}{
		{"rsa-2048", vault.KeySpec{Type: "RSA-HSM"}, "RSA-HSM", "PS256"},
		{"rsa-3072", vault.KeySpec{Type: "rsa-hsm", Size: 3072}, "RSA-HSM", "RS384"},
		{"ec-p256", vault.KeySpec{Type: "EC-HSM"}, "EC-HSM", "ES256"},
		{"ec-p256k", vault.KeySpec{Type: "EC-HSM", Curve: "P-256K"}, "EC-HSM", "ES256K"},
		{"ec-p521", vault.KeySpec{Type: "EC-HSM", Curve: "P-521"}, "EC-HSM", "ES512"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := e.createKey(t, tc.name, tc.spec)
			if k.Type != tc.kty || k.JWK.Kty != tc.kty || k.Attributes.HSMPlatform != "2" {
				t.Errorf("CreateKey(%s) kty %q JWK kty %q hsmPlatform %q, want %s and platform 2",
					tc.spec.Type, k.Type, k.JWK.Kty, k.Attributes.HSMPlatform, tc.kty)
			}
			if m := e.storedMaterial(t, tc.name); len(m) != 0 {
				t.Errorf("the store holds private key material of an HSM key: %v", m)
			}
			digest := make([]byte, map[string]int{"PS256": 32, "RS384": 48, "ES256": 32, "ES256K": 32, "ES512": 64}[tc.alg])
			_, _ = rand.Read(digest)
			sig, err := e.svc.Sign(ctx, kv, tc.name, "", tc.alg, digest)
			if err != nil {
				t.Fatalf("Sign(%s) err = %v", tc.alg, err)
			}
			ok, err := e.svc.Verify(ctx, kv, tc.name, "", tc.alg, digest, sig.Value)
			if err != nil || !ok.Valid {
				t.Errorf("Verify(%s) = %v, %v, want true", tc.alg, ok.Valid, err)
			}
		})
	}
	soft := e.createKey(t, "soft", vault.KeySpec{Type: "RSA"})
	if soft.Attributes.HSMPlatform != "0" {
		t.Errorf("a software key's hsmPlatform = %q, want 0", soft.Attributes.HSMPlatform)
	}

	pub := e.publicKey(t, "rsa-2048").(*rsa.PublicKey)
	dek := []byte("a policy key of thirty-two bytes")
	for _, alg := range []string{"RSA-OAEP", "RSA-OAEP-256", "RSA1_5"} {
		w, err := e.svc.WrapKey(ctx, kv, "rsa-2048", "", alg, dek)
		if err != nil {
			t.Fatalf("WrapKey(%s) err = %v", alg, err)
		}
		for _, ct := range [][]byte{w.Value, localEncrypt(t, pub, alg, dek)} {
			got, err := e.svc.UnwrapKey(ctx, kv, "rsa-2048", "", alg, ct)
			if err != nil || string(got.Value.Reveal()) != string(dek) {
				t.Errorf("UnwrapKey(%s) = %q, %v", alg, got.Value.Reveal(), err)
			}
		}
		bad := localEncrypt(t, pub, alg, dek)
		bad[10] ^= 1
		_, err = e.svc.UnwrapKey(ctx, kv, "rsa-2048", "", alg, bad)
		wantErr(t, "UnwrapKey(tampered "+alg+")", err, errkind.Invalid, "BadParameter")
		_, err = e.svc.UnwrapKey(ctx, kv, "rsa-2048", "", alg, bad[:100])
		wantErr(t, "UnwrapKey(short "+alg+")", err, errkind.Invalid, "BadParameter")
	}
	_, err := e.svc.Decrypt(ctx, kv, "ec-p256", "", "RSA-OAEP", make([]byte, 256))
	wantErr(t, "Decrypt with EC-HSM", err, errkind.PermissionDenied, "OperationNotAllowed")

	// Rotation makes a new HSM object; the old version still unwraps.
	old := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	before := privateObjects(t, c)
	r, err := e.svc.RotateKey(ctx, caller, kv, "rsa-2048")
	if err != nil || r.Type != "RSA-HSM" {
		t.Fatalf("RotateKey = %s, %v, want an RSA-HSM version", r.Type, err)
	}
	if after := privateObjects(t, c); after != before+1 {
		t.Errorf("rotation left %d private key objects, want %d", after, before+1)
	}
	oldVersion := ""
	page, _ := e.svc.ListKeyVersions(ctx, kv, "rsa-2048", "", 0)
	for _, it := range page.Items {
		if it.Ref.Version != r.Ref.Version {
			oldVersion = it.Ref.Version
		}
	}
	if got, err := e.svc.UnwrapKey(ctx, kv, "rsa-2048", oldVersion, "RSA-OAEP-256", old); err != nil || string(got.Value.Reveal()) != string(dek) {
		t.Errorf("UnwrapKey with the old version = %q, %v", got.Value.Reveal(), err)
	}

	// Purge destroys the HSM objects of every version.
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	if n := privateObjects(t, c); n != before+1 {
		t.Errorf("a soft-deleted key's objects: %d, want them kept (%d)", n, before+1)
	}
	if err := e.svc.PurgeDeletedKey(ctx, caller, kv, "rsa-2048"); err != nil {
		t.Fatal(err)
	}
	if n := privateObjects(t, c); n != before-1 {
		t.Errorf("after purging a two-version key the token holds %d private keys, want %d", n, before-1)
	}
}

func TestHSMKeysRefused(t *testing.T) {
	e := newKeyEnv(t)
	std := spec("kv-std")
	std.SKU.Name = "standard"
	e.create(t, std)
	_, err := e.svc.CreateKey(ctx, caller, "kv-std", "k", vault.KeySpec{Type: "RSA-HSM"})
	wantErr(t, "CreateKey(RSA-HSM, standard vault)", err, errkind.Invalid, "BadParameter")
	_, err = e.svc.CreateKey(ctx, caller, kv, "k", vault.KeySpec{Type: "EC-HSM"})
	wantErr(t, "CreateKey(EC-HSM, no HSM)", err, errkind.FailedPrecondition, "HSMNotConfigured")

	broken := e.hsmService(nil, errkind.New(errkind.FailedPrecondition, "hsm: token \"t\" refused the PIN (CKR_PIN_INCORRECT)"))
	_, err = broken.CreateKey(ctx, caller, kv, "k", vault.KeySpec{Type: "RSA-HSM"})
	wantErr(t, "CreateKey(RSA-HSM, HSM failed to start)", err, errkind.Unavailable, "HSMUnavailable")
	if !strings.Contains(errkind.Public(err), "CKR_PIN_INCORRECT") {
		t.Errorf("the message %q does not say why the HSM failed", errkind.Public(err))
	}
	if _, err := broken.CreateKey(ctx, caller, kv, "soft", vault.KeySpec{Type: "RSA"}); err != nil {
		t.Errorf("a software key with a broken HSM err = %v, want it to work", err)
	}

	tests := []struct {
		name string
		spec vault.KeySpec
	}{
		{"import on a software key", vault.KeySpec{Type: "RSA", Ops: []string{"import"}}},
		{"import with other operations", vault.KeySpec{Type: "RSA-HSM", Ops: []string{"import", "unwrapKey"}}},
		{"import on EC-HSM", vault.KeySpec{Type: "EC-HSM", Ops: []string{"import"}}},
		{"decrypt on EC-HSM", vault.KeySpec{Type: "EC-HSM", Ops: []string{"decrypt"}}},
	}
	for _, tc := range tests {
		_, err := e.svc.CreateKey(ctx, caller, kv, "k", tc.spec)
		wantErr(t, "CreateKey("+tc.name+")", err, errkind.Invalid, "BadParameter")
	}
}

// failingStore fails every Update while fail is set, as a store that lost
// its disk would.
type failingStore struct {
	storage.Backend
	fail atomic.Bool
}

var errDiskGone = errors.New("disk gone")

func (f *failingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	if f.fail.Load() {
		return errDiskGone
	}
	return f.Backend.Update(ctx, fn)
}

// TestHSMCreateFailsCleanly: a key whose record cannot be stored leaves no
// object in the HSM, and one whose object cannot be made leaves no record.
func TestHSMCreateFailsCleanly(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := openHSM(t, c)
	e := newKeyEnv(t)
	fs := &failingStore{Backend: e.store}
	e.store = fs
	e.svc = e.hsmService(h, nil)
	fs.fail.Store(true)
	_, err := e.svc.CreateKey(ctx, caller, kv, "k", vault.KeySpec{Type: "RSA-HSM"})
	if !errors.Is(err, errDiskGone) {
		t.Fatalf("CreateKey with a failing store err = %v, want the store's error", err)
	}
	if n := privateObjects(t, c); n != 0 {
		t.Errorf("a failed create left %d private key objects in the HSM", n)
	}
	fs.fail.Store(false)

	hsmtest.DeleteToken(t, c)
	_, err = e.svc.CreateKey(ctx, caller, kv, "k", vault.KeySpec{Type: "RSA-HSM"})
	wantErr(t, "CreateKey with the token gone", err, errkind.Unavailable, "HSMUnavailable")
	if _, err := e.svc.GetKey(ctx, kv, "k", ""); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetKey after a failed create err = %v, want NotFound", err)
	}
}

func TestHSMImportPlain(t *testing.T) {
	e, c := newHSMEnv(t)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	k, err := e.svc.ImportKey(ctx, caller, kv, "byok-plain", vault.KeyImport{Key: rsaJWK(rk), HSM: true})
	if err != nil {
		t.Fatalf("ImportKey(Hsm true) err = %v", err)
	}
	if k.Type != "RSA-HSM" || k.Attributes.HSMPlatform != "2" || len(e.storedMaterial(t, "byok-plain")) != 0 {
		t.Errorf("ImportKey(Hsm true) = kty %s platform %s, material %v; want RSA-HSM in the HSM only",
			k.Type, k.Attributes.HSMPlatform, e.storedMaterial(t, "byok-plain"))
	}
	ct := localEncrypt(t, &rk.PublicKey, "RSA-OAEP-256", []byte("dek"))
	if got, err := e.svc.Decrypt(ctx, kv, "byok-plain", "", "RSA-OAEP-256", ct); err != nil || string(got.Value.Reveal()) != "dek" {
		t.Errorf("Decrypt with the imported HSM key = %q, %v", got.Value.Reveal(), err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecKey := ecJWK(ek)
	ecKey.Kty = "EC-HSM"
	if _, err := e.svc.ImportKey(ctx, caller, kv, "ec-plain", vault.KeyImport{Key: ecKey}); err != nil {
		t.Errorf("ImportKey(EC-HSM) err = %v", err)
	}
	if n := privateObjects(t, c); n != 2 {
		t.Errorf("the token holds %d private keys, want 2", n)
	}
}

// byok creates the key exchange key "kek" in kv and returns its kid and
// public key, as a customer reads them before running the BYOK tool.
func byok(t *testing.T, e *env) (string, *rsa.PublicKey) {
	t.Helper()
	k := e.createKey(t, "kek", vault.KeySpec{Type: "RSA-HSM", Size: 3072, Ops: []string{"import"}})
	pub, err := k.JWK.Public()
	if err != nil {
		t.Fatal(err)
	}
	return "https://kv1.vault.test:8443/keys/kek/" + k.Ref.Version, pub.(*rsa.PublicKey)
}

func TestBYOK(t *testing.T) {
	e, _ := newHSMEnv(t)
	kid, kekPub := byok(t, e)
	target, _ := rsa.GenerateKey(rand.Reader, 2048)
	file, err := hsmtest.BYOKFile(kid, kekPub, target)
	if err != nil {
		t.Fatal(err)
	}
	k, err := e.svc.ImportKey(ctx, caller, kv, "root", vault.KeyImport{Key: jwk.Key{Kty: "RSA-HSM", T: file,
		KeyOps: []string{"wrapKey", "unwrapKey"}}})
	if err != nil {
		t.Fatalf("ImportKey(key_hsm) err = %v", err)
	}
	pub, _ := k.JWK.Public()
	if k.Type != "RSA-HSM" || !pub.(*rsa.PublicKey).Equal(&target.PublicKey) || !sameStrings(k.JWK.KeyOps, []string{"wrapKey", "unwrapKey"}) {
		t.Fatalf("ImportKey(key_hsm) = %s ops %v, want the target's RSA-HSM public key with wrapKey and unwrapKey", k.Type, k.JWK.KeyOps)
	}
	ct := localEncrypt(t, &target.PublicKey, "RSA-OAEP-256", []byte("policy key"))
	if got, err := e.svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", ct); err != nil || string(got.Value.Reveal()) != "policy key" {
		t.Errorf("UnwrapKey with the BYOK key = %q, %v", got.Value.Reveal(), err)
	}
	if _, err := e.svc.Decrypt(ctx, kv, "kek", "", "RSA-OAEP-256", localEncrypt(t, kekPub, "RSA-OAEP-256", []byte("x"))); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("Decrypt with the KEK err = %v, want PermissionDenied (key_ops import only)", err)
	}
	_, err = e.svc.UpdateKey(ctx, caller, kv, "kek", "", vault.KeyUpdate{Ops: []string{"decrypt"}})
	wantErr(t, "UpdateKey(KEK to decrypt)", err, errkind.Invalid, "BadParameter")
	_, err = e.svc.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Ops: []string{"import"}})
	wantErr(t, "UpdateKey(key to import)", err, errkind.Invalid, "BadParameter")

	soft := e.createKey(t, "soft", vault.KeySpec{Type: "RSA", Size: 3072})
	softPub, _ := soft.JWK.Public()
	ecTarget, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	blob := func(kid string, pub *rsa.PublicKey, target any) []byte {
		b, err := hsmtest.BYOKFile(kid, pub, target)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var tampered map[string]any
	_ = json.Unmarshal(file, &tampered)
	tampered["header"].(map[string]any)["enc"] = "RSA_AES_KEY_WRAP_256"
	wrongEnc, _ := json.Marshal(tampered)
	tests := []struct {
		name string
		key  jwk.Key
		kind errkind.Kind
		says string
	}{
		{"KEK of another vault", jwk.Key{Kty: "RSA-HSM", T: blob("https://other.vault.test:8443/keys/kek/"+strings.Repeat("0", 32), kekPub, target)}, errkind.Invalid, "not a key of vault"},
		{"not a KEK", jwk.Key{Kty: "RSA-HSM", T: blob("https://kv1.vault.test:8443/keys/soft", softPub.(*rsa.PublicKey), target)}, errkind.Invalid, "not a key exchange key"},
		{"missing KEK", jwk.Key{Kty: "RSA-HSM", T: blob("https://kv1.vault.test:8443/keys/nope", kekPub, target)}, errkind.NotFound, "nope"},
		{"made for another KEK", jwk.Key{Kty: "RSA-HSM", T: blob(kid, &target.PublicKey, target)}, errkind.Invalid, "another KEK"},
		{"EC target", jwk.Key{Kty: "EC-HSM", T: blob(kid, kekPub, ecTarget)}, errkind.Invalid, "RSA keys"},
		{"not JSON", jwk.Key{Kty: "RSA-HSM", T: []byte("garbage")}, errkind.Invalid, ".byok file"},
		{"other mechanism", jwk.Key{Kty: "RSA-HSM", T: wrongEnc}, errkind.Invalid, "CKM_RSA_AES_KEY_WRAP"},
		{"private members too", func() jwk.Key { k := rsaJWK(target); k.Kty = "RSA-HSM"; k.T = file; return k }(), errkind.Invalid, "not both"},
		{"as a KEK", jwk.Key{Kty: "RSA-HSM", T: file, KeyOps: []string{"import"}}, errkind.Invalid, "created in the vault"},
	}
	for _, tc := range tests {
		_, err := e.svc.ImportKey(ctx, caller, kv, "byok-bad", vault.KeyImport{Key: tc.key})
		if !errkind.Is(err, tc.kind) || !strings.Contains(errkind.Public(err), tc.says) {
			t.Errorf("ImportKey(%s) err = %v (kind %v), want kind %v saying %q", tc.name, err, errkind.KindOf(err), tc.kind, tc.says)
		}
	}
	disabled := false
	if _, err := e.svc.UpdateKey(ctx, caller, kv, "kek", "", vault.KeyUpdate{Enabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.ImportKey(ctx, caller, kv, "byok-bad", vault.KeyImport{Key: jwk.Key{Kty: "RSA-HSM", T: file}})
	wantErr(t, "ImportKey through a disabled KEK", err, errkind.PermissionDenied, "KeyDisabled")
	if _, err := e.svc.GetKey(ctx, kv, "byok-bad", ""); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("a refused import left a key behind: %v", err)
	}
}

func TestHSMBackupRestore(t *testing.T) {
	e, c := newHSMEnv(t)
	second := spec("kv2")
	e.create(t, second)
	first := e.createKey(t, "root", vault.KeySpec{Type: "RSA-HSM"})
	v1 := first.Ref.Version
	pub := e.publicKey(t, "root").(*rsa.PublicKey)
	e.createKey(t, "root", vault.KeySpec{Type: "RSA-HSM", Size: 3072}) // a second version
	dek := []byte("a policy key of thirty-two bytes")
	ct := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	blob, err := e.svc.BackupKey(ctx, kv, "root")
	if err != nil {
		t.Fatalf("BackupKey(RSA-HSM) err = %v", err)
	}
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.PurgeDeletedKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	if n := privateObjects(t, c); n != 0 {
		t.Fatalf("after the purge the token holds %d private keys", n)
	}
	k, err := e.svc.RestoreKey(ctx, caller, "kv2", blob)
	if err != nil {
		t.Fatalf("RestoreKey(RSA-HSM) err = %v", err)
	}
	if k.Type != "RSA-HSM" || k.Attributes.HSMPlatform != "2" || len(e.storedMaterial(t, "root")) != 0 {
		t.Errorf("RestoreKey = %s platform %s; want RSA-HSM kept in the HSM", k.Type, k.Attributes.HSMPlatform)
	}
	got, err := e.svc.UnwrapKey(ctx, "kv2", "root", v1, "RSA-OAEP-256", ct)
	if err != nil || string(got.Value.Reveal()) != string(dek) {
		t.Errorf("UnwrapKey with the restored first version = %q, %v", got.Value.Reveal(), err)
	}
	if n := privateObjects(t, c); n != 2 {
		t.Errorf("the restore made %d private keys, want 2", n)
	}

	// Another HSM deployment (another token) refuses the blob and keeps
	// nothing.
	otherToken := hsmtest.NewToken(t)
	elsewhere := e.hsmService(openHSM(t, otherToken), nil)
	_, err = elsewhere.RestoreKey(ctx, caller, kv, blob)
	wantErr(t, "RestoreKey on another HSM", err, errkind.Invalid, "BadParameter")
	if !strings.Contains(errkind.Public(err), "HSM deployment it was made in") {
		t.Errorf("RestoreKey on another HSM says %q", errkind.Public(err))
	}
	if _, err := elsewhere.GetKey(ctx, kv, "root", ""); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("a refused restore left a key behind: %v", err)
	}
	noHSM := e.hsmService(nil, nil)
	_, err = noHSM.RestoreKey(ctx, caller, kv, blob)
	wantErr(t, "RestoreKey without an HSM", err, errkind.FailedPrecondition, "HSMNotConfigured")
}

func TestHSMVaultPurge(t *testing.T) {
	e, c := newHSMEnv(t)
	s := spec("kv-gone")
	e.create(t, s)
	for _, name := range []string{"a", "b"} {
		if _, err := e.svc.CreateKey(ctx, caller, "kv-gone", name, vault.KeySpec{Type: "RSA-HSM"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.svc.Delete(ctx, caller, subA, "rg1", "kv-gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Purge(ctx, caller, subA, "westeurope", "kv-gone"); err != nil {
		t.Fatal(err)
	}
	if n := privateObjects(t, c); n != 0 {
		t.Errorf("after purging the vault the token holds %d private keys, want 0", n)
	}
}

// TestHSMPurgeWhileHSMDown: a purge commits even when the HSM cannot
// destroy the objects, and SweepKeys destroys them once it can.
func TestHSMPurgeWhileHSMDown(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := openHSM(t, c)
	e := newKeyEnv(t)
	e.svc = e.hsmService(h, nil)
	e.createKey(t, "k", vault.KeySpec{Type: "EC-HSM"})
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "k"); err != nil {
		t.Fatal(err)
	}
	down := e.hsmService(nil, errors.New("the HSM is down"))
	if err := down.PurgeDeletedKey(ctx, caller, kv, "k"); err != nil {
		t.Fatalf("PurgeDeletedKey with the HSM down err = %v, want the purge to commit", err)
	}
	if n := privateObjects(t, c); n != 1 {
		t.Fatalf("the token holds %d private keys, want the purged one still queued", n)
	}
	if _, err := e.svc.SweepKeys(ctx); err != nil {
		t.Fatalf("SweepKeys err = %v", err)
	}
	if n := privateObjects(t, c); n != 0 {
		t.Errorf("after SweepKeys the token holds %d private keys, want 0", n)
	}
	if _, err := e.svc.GetDeletedKey(ctx, kv, "k"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetDeletedKey after the purge err = %v, want NotFound", err)
	}
}
