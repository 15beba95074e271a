package app_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
	"github.com/customerkey/customerkey/internal/secret"
)

// pinFile writes the token's PIN where hsm-pin-file can name it.
func pinFile(t *testing.T, c hsm.Config) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "hsm.pin")
	if err := os.WriteFile(p, []byte(c.PIN.Reveal()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withHSM configures the server with the HSM token c.
func withHSM(t *testing.T, c hsm.Config) func(*config.Config) {
	pin := pinFile(t, c)
	return func(cfg *config.Config) {
		cfg.HSMModule, cfg.HSMToken, cfg.HSMPINFile = c.Module, c.Token, pin
	}
}

// hsmVaultEnv is a tenant whose automation app is Crypto Officer on its
// subscription, with a premium and a standard vault there.
type hsmVaultEnv struct {
	vaultEnv
	premium, standard *azkeys.Client
}

func (s *server) hsmVaults(t *testing.T, prefix string) hsmVaultEnv {
	t.Helper()
	e := s.newVault(t, prefix+"-std")
	vaults, _ := armkeyvault.NewVaultsClient(e.sub, e.admin, s.armOptions())
	p, err := vaults.BeginCreateOrUpdate(context.Background(), "rg", prefix+"-prem", armkeyvault.VaultCreateOrUpdateParameters{
		Location: to.Ptr("westeurope"), Properties: &armkeyvault.VaultProperties{TenantID: to.Ptr(e.c.TenantID),
			SKU:                     &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNamePremium)},
			EnableRbacAuthorization: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.PollUntilDone(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &confEnv{s: s, e: e}
	s.grant(t, e, c.adminSP(t), "ServicePrincipal", confCryptoOfficer, "/subscriptions/"+e.sub)
	client := func(u string) *azkeys.Client {
		kc, err := azkeys.NewClient(u, e.admin, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: s.client,
			Retry: policy.RetryOptions{MaxRetries: -1}}})
		if err != nil {
			t.Fatal(err)
		}
		return kc
	}
	return hsmVaultEnv{vaultEnv: e, premium: client(strings.TrimSuffix(*v.Properties.VaultURI, "/")), standard: client(e.vaultURL)}
}

func wrapLocally(t *testing.T, k *azkeys.JSONWebKey, dek []byte) []byte {
	t.Helper()
	ct, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, confRSAPublic(t, k), dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

func unwrapWith(t *testing.T, kc *azkeys.Client, name, version string, alg azkeys.EncryptionAlgorithm, ct []byte) ([]byte, error) {
	t.Helper()
	r, err := kc.UnwrapKey(context.Background(), name, version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: ct}, nil)
	return r.Result, err
}

// TestHSMKeysWithOfficialClient runs the azkeys operations Customer Key
// uses against RSA-HSM keys of a premium vault on SoftHSM2: create, get,
// wrap and unwrap, encrypt and decrypt, sign and verify, rotate, disable,
// backup, purge and restore, and Bring Your Own Key through a key exchange
// key; then it asks the token what it reveals of the keys, and removes the
// token while the server runs.
func TestHSMKeysWithOfficialClient(t *testing.T) {
	tok := hsmtest.NewToken(t)
	s := startConfigured(t, filepath.Join(t.TempDir(), "data"), app.Options{}, withHSM(t, tok))
	e := s.hsmVaults(t, "hsmkv")
	ctx := context.Background()
	kc := e.premium

	created, err := kc.CreateKey(ctx, "ContosoEXOKey1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM),
		KeySize: to.Ptr(int32(3072))}, nil)
	if err != nil {
		t.Fatalf("CreateKey(RSA-HSM) err = %v", err)
	}
	if *created.Key.Kty != azkeys.KeyTypeRSAHSM || created.Attributes.HSMPlatform == nil || *created.Attributes.HSMPlatform != "2" ||
		created.Key.D != nil || len(created.Key.N) != 384 {
		t.Fatalf("created = kty %s, hsmPlatform %v, private part %v, %d-byte modulus", *created.Key.Kty,
			created.Attributes.HSMPlatform, created.Key.D != nil, len(created.Key.N))
	}
	got, err := kc.GetKey(ctx, "ContosoEXOKey1", "", nil)
	if err != nil || *got.Key.Kty != azkeys.KeyTypeRSAHSM || *got.Attributes.HSMPlatform != "2" {
		t.Fatalf("GetKey = %v, %v", got.Key, err)
	}
	version := created.Key.KID.Version()

	t.Run("wrap and unwrap", func(t *testing.T) {
		dek := make([]byte, 32)
		_, _ = rand.Read(dek)
		for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP,
			azkeys.EncryptionAlgorithmRSA15} {
			w, err := kc.WrapKey(ctx, "ContosoEXOKey1", version, azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: dek}, nil)
			if err != nil {
				t.Fatalf("WrapKey(%s) err = %v", alg, err)
			}
			if pt, err := unwrapWith(t, kc, "ContosoEXOKey1", "", alg, w.Result); err != nil || !bytes.Equal(pt, dek) {
				t.Errorf("UnwrapKey(%s) = %x, %v", alg, pt, err)
			}
		}
		if pt, err := unwrapWith(t, kc, "ContosoEXOKey1", version, azkeys.EncryptionAlgorithmRSAOAEP256, wrapLocally(t, created.Key, dek)); err != nil || !bytes.Equal(pt, dek) {
			t.Errorf("UnwrapKey of a local wrap = %x, %v", pt, err)
		}
		bad := wrapLocally(t, created.Key, dek)
		bad[7] ^= 1
		_, err := unwrapWith(t, kc, "ContosoEXOKey1", "", azkeys.EncryptionAlgorithmRSAOAEP256, bad)
		confWantErr(t, "UnwrapKey(tampered)", err, http.StatusBadRequest, "BadParameter")
		enc, err := kc.Encrypt(ctx, "ContosoEXOKey1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("hello")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := kc.Decrypt(ctx, "ContosoEXOKey1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: enc.Result}, nil)
		if err != nil || string(dec.Result) != "hello" {
			t.Errorf("Decrypt = %q, %v", dec.Result, err)
		}
	})

	t.Run("sign and verify", func(t *testing.T) {
		digest := sha256.Sum256([]byte("message"))
		for _, alg := range []azkeys.SignatureAlgorithm{azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmPS256} {
			sig, err := kc.Sign(ctx, "ContosoEXOKey1", "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: digest[:]}, nil)
			if err != nil {
				t.Fatalf("Sign(%s) err = %v", alg, err)
			}
			pub := confRSAPublic(t, created.Key)
			var verr error
			if alg == azkeys.SignatureAlgorithmPS256 {
				verr = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig.Result, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				verr = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig.Result)
			}
			if verr != nil {
				t.Errorf("the %s signature does not verify locally: %v", alg, verr)
			}
			v, err := kc.Verify(ctx, "ContosoEXOKey1", "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: digest[:], Signature: sig.Result}, nil)
			if err != nil || !*v.Value {
				t.Errorf("Verify(%s) = %v, %v", alg, v.Value, err)
			}
		}
		ec, err := kc.CreateKey(ctx, "ec-hsm", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP256)}, nil)
		if err != nil || *ec.Key.Kty != azkeys.KeyTypeECHSM {
			t.Fatalf("CreateKey(EC-HSM) = %v, %v", ec.Key, err)
		}
		sig, err := kc.Sign(ctx, "ec-hsm", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := kc.Verify(ctx, "ec-hsm", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: digest[:], Signature: sig.Result}, nil); err != nil || !*v.Value {
			t.Errorf("Verify(ES256) = %v, %v", v.Value, err)
		}
	})

	t.Run("rotate and disable", func(t *testing.T) {
		dek := []byte("a policy key of thirty-two bytes")
		old := wrapLocally(t, created.Key, dek)
		r, err := kc.RotateKey(ctx, "ContosoEXOKey1", nil)
		if err != nil || *r.Key.Kty != azkeys.KeyTypeRSAHSM || r.Key.KID.Version() == version {
			t.Fatalf("RotateKey = %v, %v", r.Key, err)
		}
		if pt, err := unwrapWith(t, kc, "ContosoEXOKey1", version, azkeys.EncryptionAlgorithmRSAOAEP256, old); err != nil || !bytes.Equal(pt, dek) {
			t.Errorf("UnwrapKey with the old version after rotation = %x, %v", pt, err)
		}
		if _, err := kc.UpdateKey(ctx, "ContosoEXOKey1", version, azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
			t.Fatal(err)
		}
		_, err = unwrapWith(t, kc, "ContosoEXOKey1", version, azkeys.EncryptionAlgorithmRSAOAEP256, old)
		confWantErr(t, "UnwrapKey with a disabled HSM version", err, http.StatusForbidden, "Forbidden", "KeyDisabled")
		if _, err := kc.UpdateKey(ctx, "ContosoEXOKey1", version, azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(true)}}, nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("backup, purge and restore", func(t *testing.T) {
		dek := []byte("data encrypted before the backup")
		wrapped := wrapLocally(t, created.Key, dek)
		b, err := kc.BackupKey(ctx, "ContosoEXOKey1", nil)
		if err != nil {
			t.Fatalf("BackupKey err = %v", err)
		}
		if _, err := kc.DeleteKey(ctx, "ContosoEXOKey1", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := kc.PurgeDeletedKey(ctx, "ContosoEXOKey1", nil); err != nil {
			t.Fatal(err)
		}
		_, err = unwrapWith(t, kc, "ContosoEXOKey1", version, azkeys.EncryptionAlgorithmRSAOAEP256, wrapped)
		confWantErr(t, "UnwrapKey after the purge", err, http.StatusNotFound, "KeyNotFound")
		r, err := kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: b.Value}, nil)
		if err != nil || *r.Key.Kty != azkeys.KeyTypeRSAHSM {
			t.Fatalf("RestoreKey = %v, %v", r.Key, err)
		}
		if pt, err := unwrapWith(t, kc, "ContosoEXOKey1", version, azkeys.EncryptionAlgorithmRSAOAEP256, wrapped); err != nil || !bytes.Equal(pt, dek) {
			t.Errorf("UnwrapKey with the restored version = %x, %v", pt, err)
		}
	})

	t.Run("bring your own key", func(t *testing.T) {
		kek, err := kc.CreateKey(ctx, "KEKforBYOK", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM),
			KeySize: to.Ptr(int32(4096)), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationImport)}}, nil)
		if err != nil {
			t.Fatalf("CreateKey(KEK) err = %v", err)
		}
		target, _ := rsa.GenerateKey(rand.Reader, 2048)
		file, err := hsmtest.BYOKFile(string(*kek.Key.KID), confRSAPublic(t, kek.Key), target)
		if err != nil {
			t.Fatal(err)
		}
		imported, err := kc.ImportKey(ctx, "ContosoBYOK", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{
			Kty: to.Ptr(azkeys.KeyTypeRSAHSM), T: file,
			KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationWrapKey), to.Ptr(azkeys.KeyOperationUnwrapKey)}}}, nil)
		if err != nil {
			t.Fatalf("ImportKey(key_hsm) err = %v", err)
		}
		if !confRSAPublic(t, imported.Key).Equal(&target.PublicKey) || *imported.Attributes.HSMPlatform != "2" {
			t.Fatalf("the imported key is not the target key in the HSM")
		}
		dek := []byte("wrapped by the customer's own key")
		ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &target.PublicKey, dek, nil)
		if pt, err := unwrapWith(t, kc, "ContosoBYOK", "", azkeys.EncryptionAlgorithmRSAOAEP256, ct); err != nil || !bytes.Equal(pt, dek) {
			t.Errorf("UnwrapKey with the BYOK key = %q, %v", pt, err)
		}
		_, err = unwrapWith(t, kc, "KEKforBYOK", "", azkeys.EncryptionAlgorithmRSAOAEP256, make([]byte, 512))
		confWantErr(t, "UnwrapKey with the KEK", err, http.StatusForbidden, "Forbidden", "OperationNotAllowed")
	})

	t.Run("standard vaults refuse HSM keys", func(t *testing.T) {
		_, err := e.standard.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
		confWantErr(t, "CreateKey(RSA-HSM) in a standard vault", err, http.StatusBadRequest, "BadParameter", "premium vault")
		soft, err := e.standard.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
		if err != nil || *soft.Attributes.HSMPlatform != "0" {
			t.Errorf("CreateKey(RSA) in a standard vault = %v, %v; want a software key (hsmPlatform 0)", soft.Attributes, err)
		}
	})

	// The token itself, asked attribute by attribute: no private or secret
	// key reveals its value.
	t.Run("private keys cannot be read out", func(t *testing.T) {
		objs := hsmtest.Objects(t, tok)
		private := 0
		for _, o := range objs {
			if o.Class == "private key" {
				private++
			}
			if !o.Sensitive || o.ValueRefusal != "CKR_ATTRIBUTE_SENSITIVE" {
				t.Errorf("%s %x (%s): sensitive %v, value read gave %q; want sensitive and CKR_ATTRIBUTE_SENSITIVE",
					o.Class, o.ID, o.Label, o.Sensitive, o.ValueRefusal)
			}
			if o.Class == "secret key" && o.Extractable {
				t.Errorf("secret key %s is extractable", o.Label)
			}
		}
		// ContosoEXOKey1 (two versions, restored), ec-hsm, KEKforBYOK, ContosoBYOK.
		if private != 5 {
			t.Errorf("the token holds %d private keys, want 5", private)
		}
	})

	t.Run("token removed while serving", func(t *testing.T) {
		hsmtest.DeleteToken(t, tok)
		_, err := unwrapWith(t, kc, "ContosoBYOK", "", azkeys.EncryptionAlgorithmRSAOAEP256, make([]byte, 256))
		confWantErr(t, "UnwrapKey with the token gone", err, http.StatusServiceUnavailable, "ServiceUnavailable", "HSMUnavailable", tok.Token)
		if _, err := e.standard.CreateKey(ctx, "after", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
			t.Errorf("a standard vault with the HSM gone: CreateKey err = %v", err)
		}
	})
}

// TestHSMStartFailures: a wrong PIN, a missing module or an unknown token
// do not stop the server; standard vaults work, and premium vaults say why
// HSM keys are unavailable. An HSM that seals the store does stop it.
func TestHSMStartFailures(t *testing.T) {
	tok := hsmtest.NewToken(t)
	wrongPIN := tok
	wrongPIN.PIN = secret.NewString("not-the-pin")
	unknown := tok
	unknown.Token = "no-such-token"
	missing := tok
	missing.Module = filepath.Join(t.TempDir(), "libnothing.so")
	tests := []struct {
		name string
		c    hsm.Config
		says string
	}{
		{"wrong PIN", wrongPIN, "CKR_PIN_INCORRECT"},
		{"unknown token", unknown, "no token labelled"},
		{"missing module", missing, "cannot be read"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startConfigured(t, filepath.Join(t.TempDir(), "data"), app.Options{}, withHSM(t, tc.c))
			e := s.hsmVaults(t, "fail")
			ctx := context.Background()
			_, err := e.premium.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM)}, nil)
			confWantErr(t, "CreateKey(RSA-HSM)", err, http.StatusServiceUnavailable, "ServiceUnavailable", "HSMUnavailable", tc.says)
			if err != nil && strings.Contains(err.Error(), "not-the-pin") {
				t.Error("the error shows the PIN")
			}
			for _, kc := range []*azkeys.Client{e.premium, e.standard} {
				if _, err := kc.CreateKey(ctx, "soft", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
					t.Errorf("CreateKey(RSA) with the HSM down err = %v", err)
				}
			}
		})
	}
	t.Run("sealing HSM", func(t *testing.T) {
		cfg := hsmConfig(t, filepath.Join(t.TempDir(), "data"), wrongPIN)
		cfg.Seal = config.SealPKCS11
		_, err := app.Open(context.Background(), cfg, slog.New(slog.DiscardHandler), app.Options{})
		if err == nil || !strings.Contains(err.Error(), "cannot start without it") || !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") {
			t.Errorf("app.Open(seal pkcs11, wrong PIN) err = %v, want a refusal naming the PIN", err)
		}
	})
}

// hsmConfig is a server configuration on dataDir with the HSM token c.
func hsmConfig(t *testing.T, dataDir string, c hsm.Config) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Listen = "127.0.0.1:0"
	cfg.Store = testStore(t, dataDir)
	withHSM(t, c)(&cfg)
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSealMigrate moves a running installation's seal from the key file to
// the HSM with the one documented command, and checks that a copy of the
// data directory then reveals nothing without the HSM.
func TestSealMigrate(t *testing.T) {
	tok := hsmtest.NewToken(t)
	dir := filepath.Join(t.TempDir(), "data")
	s := startConfigured(t, dir, app.Options{}, withHSM(t, tok))
	creds := s.Credentials
	s.stop()
	keyFile := filepath.Join(dir, "barrier.key")

	// The command, as an operator runs it.
	bin := filepath.Join(t.TempDir(), "customerkey")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/customerkey").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg := hsmConfig(t, dir, tok)
	args := []string{"seal", "migrate", "--to", "pkcs11", "--data-dir", dir, "--store", cfg.Store,
		"--hsm-module", tok.Module, "--hsm-token", tok.Token, "--hsm-pin-file", cfg.HSMPINFile}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("customerkey seal migrate: %v\n%s", err, out)
	}
	for _, want := range []string{"re-sealed the keyring with the HSM token", "checked", "removed " + keyFile, "seal: pkcs11"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("seal migrate printed %q; want it to say %q", out, want)
		}
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("barrier.key after the migration: %v, want it removed", err)
	}
	if out, err := exec.Command(bin, args...).CombinedOutput(); err == nil || !strings.Contains(string(out), "already sealed") {
		t.Errorf("a second migration = %v %s, want a refusal: already sealed", err, out)
	}

	// The server starts with seal: pkcs11, and everything is still there.
	s = startConfigured(t, dir, app.Options{}, func(c *config.Config) {
		withHSM(t, tok)(c)
		c.Seal = config.SealPKCS11
	})
	if got := s.Credentials; got.TenantID != creds.TenantID || got.ClientID != creds.ClientID {
		t.Errorf("after the migration the operator is %s/%s, want %s/%s", got.TenantID, got.ClientID, creds.TenantID, creds.ClientID)
	}
	s.newTenant(t, "Contoso after the migration")
	s.stop()

	log := slog.New(slog.DiscardHandler)
	t.Run("configured with the key file", func(t *testing.T) {
		c := hsmConfig(t, dir, tok)
		_, err := app.Open(context.Background(), c, log, app.Options{})
		if err == nil || !strings.Contains(err.Error(), "sealed by an HSM") {
			t.Errorf("app.Open(seal file) err = %v, want a refusal that says the HSM seals the store", err)
		}
		if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
			t.Error("the refused start created a key file")
		}
	})
	t.Run("stolen, with another HSM", func(t *testing.T) {
		c := hsmConfig(t, dir, hsmtest.NewToken(t))
		c.Seal = config.SealPKCS11
		_, err := app.Open(context.Background(), c, log, app.Options{})
		if err == nil || !strings.Contains(err.Error(), "root key is unavailable") {
			t.Errorf("app.Open(another token) err = %v, want the seal key missing", err)
		}
	})
	t.Run("the data file reveals no secret", func(t *testing.T) {
		if cfg.Store != config.StoreBolt {
			t.Skip("the store is PostgreSQL")
		}
		raw, err := os.ReadFile(filepath.Join(dir, "customerkey.db"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(creds.ClientSecret)) || bytes.Contains(raw, []byte("Contoso after the migration")) {
			t.Error("the data file holds a secret or a tenant name in the clear")
		}
	})
	t.Run("and back to a key file", func(t *testing.T) {
		if err := app.MigrateSeal(context.Background(), cfg, config.SealFile, io.Discard); err != nil {
			t.Fatalf("MigrateSeal(to file) err = %v", err)
		}
		s := startConfigured(t, dir, app.Options{}, nil)
		if s.Credentials.TenantID != creds.TenantID {
			t.Errorf("after moving back the operator tenant is %s, want %s", s.Credentials.TenantID, creds.TenantID)
		}
	})
}
