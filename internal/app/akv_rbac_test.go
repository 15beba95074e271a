package app_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/rbac"
)

// The data plane's authorization, driven with real tokens through the real
// server and the official clients: the RBAC matrix of the Key Vault roles
// (design akv-api.md §g items 34–37), key-scope assignments, the seed's
// key administrators who cannot delete, access-policy vaults (item 38) and
// tokens of another tenant.

// rbacRoles are the columns of rbacMatrix: each is held, alone and at the
// vault scope, by a service principal of its own.
var rbacRoles = []struct{ short, name, guid string }{
	{"cseu", "Key Vault Crypto Service Encryption User", rbac.KeyVaultCryptoServiceEncryptionUserID},
	{"cu", "Key Vault Crypto User", rbac.KeyVaultCryptoUserID},
	{"rdr", "Key Vault Reader", rbac.KeyVaultReaderID},
	{"co", "Key Vault Crypto Officer", rbac.KeyVaultCryptoOfficerID},
	{"own", "Owner", rbac.OwnerID},
	{"nodel", "Key Vault Key Administrator without delete (custom)", ""}, // rbac.KeyAdministratorNoDelete
}

// rbacMatrix is the expected outcome of every data operation: "Y" succeeds
// (and its result is checked), "." is refused with 403 Forbidden /
// ForbiddenByRbac naming the caller, the data action and the scope.
// "list" and "get" both need keys/read, as in Azure.
var rbacMatrix = []string{
	// operation   cseu cu  rdr co  own nodel
	"get           Y    Y   Y   Y   .   Y",
	"list          Y    Y   Y   Y   .   Y",
	"create        .    .   .   Y   .   Y",
	"import        .    .   .   Y   .   Y",
	"update        .    Y   .   Y   .   .",
	"delete        .    .   .   Y   .   .",
	"backup        .    Y   .   Y   .   Y",
	"restore       .    .   .   Y   .   Y",
	"recover       .    .   .   Y   .   .",
	"purge         .    .   .   Y   .   .",
	"encrypt       .    Y   .   Y   .   .",
	"decrypt       .    Y   .   Y   .   .",
	"wrap          Y    Y   .   Y   .   .",
	"unwrap        Y    Y   .   Y   .   .",
	"sign          .    Y   .   Y   .   .",
	"verify        .    Y   .   Y   .   .",
	"getPolicy     .    .   Y   Y   .   .",
	"setPolicy     .    .   .   Y   .   .",
	"rotate        .    .   .   Y   .   .",
}

// opFixture is what one matrix row's operations work on: keys the officer
// prepared under the row's prefix, and the local RSA key they were
// imported from (the oracle for every crypto result).
type opFixture struct {
	kc      *azkeys.Client // the principal's client
	officer *azkeys.Client // a Crypto Officer's, to look behind a refusal
	prefix  string
	priv    *rsa.PrivateKey
	version string // version of {prefix}-k as imported
	backup  []byte // backup of {prefix}-bak, which is purged
}

func (f *opFixture) name(suffix string) string { return f.prefix + "-" + suffix }

// dataOp is one data operation: the data action it needs, the key it
// names ("" means the vault scope) and how to run it. run returns the
// client's error; when the call succeeds it checks the result.
type dataOp struct {
	op     string
	action string
	key    string
	run    func(t *testing.T, ctx context.Context, f *opFixture) error
	// afterDenied, if set, checks that a refused call changed nothing.
	afterDenied func(t *testing.T, ctx context.Context, f *opFixture)
}

var (
	oaep256 = to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256)
	rs256   = to.Ptr(azkeys.SignatureAlgorithmRS256)
)

func dataOps() []dataOp {
	return []dataOp{
		{op: "get", action: rbac.DataKeysRead, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.GetKey(ctx, f.name("k"), "", nil)
			if err == nil && (got.Key.KID.Name() != f.name("k") || !bytes.Equal(got.Key.N, f.priv.N.Bytes()) || got.Key.D != nil) {
				t.Errorf("GetKey = kid %s, same modulus %v, private part %v", *got.Key.KID, bytes.Equal(got.Key.N, f.priv.N.Bytes()), got.Key.D != nil)
			}
			return err
		}},
		{op: "list", action: rbac.DataKeysRead, run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			found := false
			for pager := f.kc.NewListKeyPropertiesPager(nil); pager.More(); {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return err
				}
				for _, k := range page.Value {
					found = found || k.KID.Name() == f.name("k")
				}
			}
			if !found {
				t.Errorf("the key list lacks %s", f.name("k"))
			}
			return nil
		}},
		{op: "create", action: rbac.DataKeysCreate, key: "new", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.CreateKey(ctx, f.name("new"), azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
			if err == nil && (got.Key.KID.Name() != f.name("new") || len(got.Key.N) != 256 || *got.Key.Kty != azkeys.KeyTypeRSA) {
				t.Errorf("CreateKey = kid %s, modulus of %d bytes", *got.Key.KID, len(got.Key.N))
			}
			return err
		}, afterDenied: func(t *testing.T, ctx context.Context, f *opFixture) {
			if _, err := f.officer.GetKey(ctx, f.name("new"), "", nil); !isStatus(err, http.StatusNotFound) {
				t.Errorf("after a refused create, GetKey(%s) err = %v; want 404", f.name("new"), err)
			}
		}},
		{op: "import", action: rbac.DataKeysImport, key: "imp", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.ImportKey(ctx, f.name("imp"), azkeys.ImportKeyParameters{Key: importJWK(f.priv)}, nil)
			if err == nil && (got.Key.KID.Name() != f.name("imp") || !bytes.Equal(got.Key.N, f.priv.N.Bytes()) || got.Key.D != nil) {
				t.Errorf("ImportKey = kid %s", *got.Key.KID)
			}
			return err
		}},
		{op: "update", action: rbac.DataKeysUpdate, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.UpdateKey(ctx, f.name("k"), "", azkeys.UpdateKeyParameters{Tags: map[string]*string{"owner": to.Ptr(f.prefix)}}, nil)
			if err == nil && (got.Tags["owner"] == nil || *got.Tags["owner"] != f.prefix || got.Key.KID.Version() != f.version) {
				t.Errorf("UpdateKey = tags %v, kid %s", got.Tags, *got.Key.KID)
			}
			return err
		}},
		{op: "delete", action: rbac.DataKeysDelete, key: "del", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.DeleteKey(ctx, f.name("del"), nil)
			if err == nil && (got.RecoveryID == nil || !strings.HasSuffix(*got.RecoveryID, "/deletedkeys/"+f.name("del"))) {
				t.Errorf("DeleteKey = recoveryId %v", got.RecoveryID)
			}
			return err
		}, afterDenied: func(t *testing.T, ctx context.Context, f *opFixture) {
			if _, err := f.officer.GetKey(ctx, f.name("del"), "", nil); err != nil {
				t.Errorf("after a refused delete, GetKey(%s) err = %v; want the key still there", f.name("del"), err)
			}
		}},
		{op: "backup", action: rbac.DataKeysBackup, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.BackupKey(ctx, f.name("k"), nil)
			if err == nil && len(got.Value) < 256 {
				t.Errorf("BackupKey = %d bytes", len(got.Value))
			}
			return err
		}},
		{op: "restore", action: rbac.DataKeysRestore, run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: f.backup}, nil)
			if err == nil && (got.Key.KID.Name() != f.name("bak") || !bytes.Equal(got.Key.N, f.priv.N.Bytes())) {
				t.Errorf("RestoreKey = kid %s", *got.Key.KID)
			}
			return err
		}},
		{op: "recover", action: rbac.DataKeysRecover, key: "rec", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.RecoverDeletedKey(ctx, f.name("rec"), nil)
			if err == nil && got.Key.KID.Name() != f.name("rec") {
				t.Errorf("RecoverDeletedKey = kid %s", *got.Key.KID)
			}
			if err == nil {
				if _, gerr := f.officer.GetKey(ctx, f.name("rec"), "", nil); gerr != nil {
					t.Errorf("after recover, GetKey(%s) err = %v", f.name("rec"), gerr)
				}
			}
			return err
		}},
		{op: "purge", action: rbac.DataKeysPurge, key: "pur", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			_, err := f.kc.PurgeDeletedKey(ctx, f.name("pur"), nil)
			if err == nil {
				if _, gerr := f.officer.GetDeletedKey(ctx, f.name("pur"), nil); !isStatus(gerr, http.StatusNotFound) {
					t.Errorf("after purge, GetDeletedKey(%s) err = %v; want 404", f.name("pur"), gerr)
				}
			}
			return err
		}, afterDenied: func(t *testing.T, ctx context.Context, f *opFixture) {
			if _, err := f.officer.GetDeletedKey(ctx, f.name("pur"), nil); err != nil {
				t.Errorf("after a refused purge, GetDeletedKey(%s) err = %v; want the deleted key still there", f.name("pur"), err)
			}
		}},
		{op: "encrypt", action: rbac.DataKeysEncrypt, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			msg := []byte("encrypt me " + f.prefix)
			got, err := f.kc.Encrypt(ctx, f.name("k"), "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: msg}, nil)
			if err == nil {
				if plain, derr := rsa.DecryptOAEP(sha256.New(), nil, f.priv, got.Result, nil); derr != nil || !bytes.Equal(plain, msg) {
					t.Errorf("Encrypt: the local key cannot decrypt the result: %v", derr)
				}
			}
			return err
		}},
		{op: "decrypt", action: rbac.DataKeysDecrypt, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			msg := []byte("decrypt me " + f.prefix)
			ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &f.priv.PublicKey, msg, nil)
			got, err := f.kc.Decrypt(ctx, f.name("k"), "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: ct}, nil)
			if err == nil && !bytes.Equal(got.Result, msg) {
				t.Errorf("Decrypt = %q, want %q", got.Result, msg)
			}
			return err
		}},
		{op: "wrap", action: rbac.DataKeysWrap, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			dek := make([]byte, 32)
			_, _ = rand.Read(dek)
			got, err := f.kc.WrapKey(ctx, f.name("k"), "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: dek}, nil)
			if err == nil {
				if un, derr := rsa.DecryptOAEP(sha256.New(), nil, f.priv, got.Result, nil); derr != nil || !bytes.Equal(un, dek) {
					t.Errorf("WrapKey: the local key cannot unwrap the result: %v", derr)
				}
			}
			return err
		}},
		{op: "unwrap", action: rbac.DataKeysUnwrap, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			dek := make([]byte, 32)
			_, _ = rand.Read(dek)
			wrapped, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &f.priv.PublicKey, dek, nil)
			got, err := f.kc.UnwrapKey(ctx, f.name("k"), "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: wrapped}, nil)
			if err == nil && !bytes.Equal(got.Result, dek) {
				t.Error("UnwrapKey returned another key")
			}
			return err
		}},
		{op: "sign", action: rbac.DataKeysSign, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			digest := sha256.Sum256([]byte("sign me " + f.prefix))
			got, err := f.kc.Sign(ctx, f.name("k"), "", azkeys.SignParameters{Algorithm: rs256, Value: digest[:]}, nil)
			if err == nil {
				if verr := rsa.VerifyPKCS1v15(&f.priv.PublicKey, crypto.SHA256, digest[:], got.Result); verr != nil {
					t.Errorf("Sign: the signature does not verify locally: %v", verr)
				}
			}
			return err
		}},
		{op: "verify", action: rbac.DataKeysVerify, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			digest := sha256.Sum256([]byte("verify me " + f.prefix))
			sig, _ := rsa.SignPKCS1v15(nil, f.priv, crypto.SHA256, digest[:])
			got, err := f.kc.Verify(ctx, f.name("k"), "", azkeys.VerifyParameters{Algorithm: rs256, Digest: digest[:], Signature: sig}, nil)
			if err == nil && (got.Value == nil || !*got.Value) {
				t.Error("Verify of a good signature = false")
			}
			return err
		}},
		{op: "getPolicy", action: rbac.DataKeyRotationPolicyRead, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.GetKeyRotationPolicy(ctx, f.name("k"), nil)
			if err == nil && (got.ID == nil || !strings.HasSuffix(*got.ID, "/keys/"+f.name("k")+"/rotationpolicy")) {
				t.Errorf("GetKeyRotationPolicy id = %v", got.ID)
			}
			return err
		}},
		{op: "setPolicy", action: rbac.DataKeyRotationPolicyWrite, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			notify := azkeys.KeyRotationPolicyActionNotify
			got, err := f.kc.UpdateKeyRotationPolicy(ctx, f.name("k"), azkeys.KeyRotationPolicy{
				Attributes: &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P1Y")},
				LifetimeActions: []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: &notify},
					Trigger: &azkeys.LifetimeActionTrigger{TimeBeforeExpiry: to.Ptr("P30D")}}}}, nil)
			if err == nil && (got.Attributes == nil || got.Attributes.ExpiryTime == nil || *got.Attributes.ExpiryTime != "P1Y") {
				t.Errorf("UpdateKeyRotationPolicy = %+v", got.Attributes)
			}
			return err
		}},
		// Last: it changes the key's latest version.
		{op: "rotate", action: rbac.DataKeysRotate, key: "k", run: func(t *testing.T, ctx context.Context, f *opFixture) error {
			got, err := f.kc.RotateKey(ctx, f.name("k"), nil)
			if err == nil && (got.Key.KID.Name() != f.name("k") || got.Key.KID.Version() == f.version || len(got.Key.N) != 256) {
				t.Errorf("RotateKey = kid %s (imported version %s)", *got.Key.KID, f.version)
			}
			return err
		}},
	}
}

// rbacWorld is the one server, tenant, subscription and RBAC vault all
// the subtests share.
type rbacWorld struct {
	s        *server
	e        vaultEnv
	graphTok string
	officer  *azkeys.Client // the admin app, with Key Vault Crypto Officer on the vault
	noDelete string         // GUID of the custom "no delete" role
	priv     *rsa.PrivateKey
}

// TestKeyVaultDataPlaneAuthorization: see the comment at the top of the file.
func TestKeyVaultDataPlaneAuthorization(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"))
	ctx := context.Background()
	e := s.newVault(t, "rbacmatrix")
	w := &rbacWorld{s: s, e: e}
	w.graphTok, _ = token(ctx, e.admin, graphScope)
	var err error
	if w.priv, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	adminSP := servicePrincipalOf(t, s, w.graphTok, e.c.AdminApp.ClientID)
	s.grant(t, e, adminSP, "ServicePrincipal", rbac.KeyVaultCryptoOfficerID, e.vaultID)
	w.officer = keysClient(t, s, e.vaultURL, e.admin)

	// The seed's key administrators' role, shipped as rbac.KeyAdministratorNoDelete:
	// the tenant's admin (Owner of the subscription) puts it as is.
	def := rbac.KeyAdministratorNoDelete(e.sub)
	w.noDelete = def.ID
	defs, _ := armauthorization.NewRoleDefinitionsClient(e.admin, s.armOptions())
	p := def.Permissions[0]
	if _, err := defs.CreateOrUpdate(ctx, "/subscriptions/"+e.sub, def.ID, armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
		RoleName: to.Ptr(def.RoleName), Description: to.Ptr(def.Description), RoleType: to.Ptr(rbac.CustomRole),
		AssignableScopes: to.SliceOfPtrs(def.AssignableScopes...),
		Permissions: []*armauthorization.Permission{{Actions: to.SliceOfPtrs(p.Actions...), NotActions: to.SliceOfPtrs(p.NotActions...),
			DataActions: to.SliceOfPtrs(p.DataActions...), NotDataActions: to.SliceOfPtrs(p.NotDataActions...)}}}}, nil); err != nil {
		t.Fatalf("PUT the no-delete role definition: %v", err)
	}

	t.Run("RoleMatrix", w.roleMatrix)
	t.Run("KeyScope", w.keyScope)
	t.Run("KeyAdministratorFlow", w.keyAdministratorFlow)
	t.Run("AccessPolicies", w.accessPolicies)
	t.Run("CrossTenant", w.crossTenant)
}

// roleMatrix runs every data operation for every role of rbacRoles and
// compares the outcome with rbacMatrix.
func (w *rbacWorld) roleMatrix(t *testing.T) {
	ctx := context.Background()
	ops := dataOps()
	if len(ops) != len(rbacMatrix) {
		t.Fatalf("%d operations, %d matrix rows", len(ops), len(rbacMatrix))
	}
	for col, role := range rbacRoles {
		t.Run(role.short, func(t *testing.T) {
			guid := role.guid
			if guid == "" {
				guid = w.noDelete
			}
			oid, cred := w.newApp(t, "rbac-"+role.short)
			w.s.grant(t, w.e, oid, "ServicePrincipal", guid, w.e.vaultID)
			f := w.fixture(t, role.short)
			f.kc = keysClient(t, w.s, w.e.vaultURL, cred)
			for i, op := range ops {
				cells := strings.Fields(rbacMatrix[i])
				if len(cells) != 1+len(rbacRoles) || cells[0] != op.op {
					t.Fatalf("matrix row %d is %q; want operation %s and %d cells", i, rbacMatrix[i], op.op, len(rbacRoles))
				}
				allowed := cells[1+col] == "Y"
				err := op.run(t, ctx, f)
				switch {
				case allowed && err != nil:
					t.Errorf("%s as %s: err = %v; want success", op.op, role.name, err)
				case !allowed && err == nil:
					t.Errorf("%s as %s succeeded; want 403 ForbiddenByRbac", op.op, role.name)
				case !allowed:
					scope := w.e.vaultID
					if op.key != "" {
						scope += "/keys/" + f.name(op.key)
					}
					checkForbiddenByRbac(t, op.op+" as "+role.name, err, oid, op.action, scope)
					if op.afterDenied != nil {
						op.afterDenied(t, ctx, f)
					}
				}
			}
		})
	}
}

// fixture prepares, as the officer, the keys one matrix row works on: an
// imported key {p}-k, {p}-del to delete, {p}-rec and {p}-pur already
// deleted, and a backup of {p}-bak, which is then purged.
func (w *rbacWorld) fixture(t *testing.T, prefix string) *opFixture {
	t.Helper()
	ctx := context.Background()
	f := &opFixture{officer: w.officer, prefix: prefix, priv: w.priv}
	for _, n := range []string{"k", "del", "rec", "pur", "bak"} {
		k, err := w.officer.ImportKey(ctx, f.name(n), azkeys.ImportKeyParameters{Key: importJWK(w.priv)}, nil)
		if err != nil {
			t.Fatalf("officer ImportKey(%s): %v", f.name(n), err)
		}
		if n == "k" {
			f.version = k.Key.KID.Version()
		}
	}
	b, err := w.officer.BackupKey(ctx, f.name("bak"), nil)
	if err != nil {
		t.Fatalf("officer BackupKey: %v", err)
	}
	f.backup = b.Value
	for _, n := range []string{"rec", "pur", "bak"} {
		if _, err := w.officer.DeleteKey(ctx, f.name(n), nil); err != nil {
			t.Fatalf("officer DeleteKey(%s): %v", f.name(n), err)
		}
	}
	if _, err := w.officer.PurgeDeletedKey(ctx, f.name("bak"), nil); err != nil {
		t.Fatalf("officer PurgeDeletedKey(%s): %v", f.name("bak"), err)
	}
	return f
}

// keyScope: Key Vault Crypto Service Encryption User assigned at one key
// reaches that key only.
func (w *rbacWorld) keyScope(t *testing.T) {
	ctx := context.Background()
	for _, n := range []string{"ks1", "ks2"} {
		if _, err := w.officer.ImportKey(ctx, n, azkeys.ImportKeyParameters{Key: importJWK(w.priv)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	oid, cred := w.newApp(t, "rbac-keyscope")
	k1 := w.e.vaultID + "/keys/ks1"
	w.s.grant(t, w.e, oid, "ServicePrincipal", rbac.KeyVaultCryptoServiceEncryptionUserID, k1)
	kc := keysClient(t, w.s, w.e.vaultURL, cred)

	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	wrapped, err := kc.WrapKey(ctx, "ks1", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: dek}, nil)
	if err != nil {
		t.Fatalf("WrapKey(ks1) with a key-scope assignment: %v", err)
	}
	un, err := kc.UnwrapKey(ctx, "ks1", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: wrapped.Result}, nil)
	if err != nil || !bytes.Equal(un.Result, dek) {
		t.Fatalf("UnwrapKey(ks1) = match %v, err %v", bytes.Equal(un.Result, dek), err)
	}
	if _, err := kc.GetKey(ctx, "ks1", "", nil); err != nil {
		t.Errorf("GetKey(ks1) err = %v", err)
	}
	_, err = kc.WrapKey(ctx, "ks2", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: dek}, nil)
	checkForbiddenByRbac(t, "WrapKey(ks2)", err, oid, rbac.DataKeysWrap, w.e.vaultID+"/keys/ks2")
	wrapped2, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &w.priv.PublicKey, dek, nil)
	_, err = kc.UnwrapKey(ctx, "ks2", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: wrapped2}, nil)
	checkForbiddenByRbac(t, "UnwrapKey(ks2)", err, oid, rbac.DataKeysUnwrap, w.e.vaultID+"/keys/ks2")
	_, err = kc.GetKey(ctx, "ks2", "", nil)
	checkForbiddenByRbac(t, "GetKey(ks2)", err, oid, rbac.DataKeysRead, w.e.vaultID+"/keys/ks2")
	_, err = kc.NewListKeyPropertiesPager(nil).NextPage(ctx)
	checkForbiddenByRbac(t, "list", err, oid, rbac.DataKeysRead, w.e.vaultID)
}

// keyAdministratorFlow is the seed's "Assigning User roles": a user holds
// the no-delete role for day-to-day work; deleting takes a temporary Key
// Vault Crypto Officer assignment that the tenant's admin grants and
// removes again.
func (w *rbacWorld) keyAdministratorFlow(t *testing.T) {
	ctx := context.Background()
	s, e := w.s, w.e
	upn := "kv-admin@" + e.c.DefaultDomain
	oid := createUser(t, s, w.graphTok, upn)
	s.grant(t, e, oid, "User", w.noDelete, e.vaultID)
	user := s.userCredential(t, e.c.TenantID, upn, "Kim-password-123")
	kc := keysClient(t, s, e.vaultURL, user)

	// Day to day: create, import, get, list, backup, restore.
	for _, n := range []string{"adm1", "adm2"} {
		if _, err := kc.CreateKey(ctx, n, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
			t.Fatalf("kv-admin CreateKey(%s): %v", n, err)
		}
	}
	if _, err := kc.ImportKey(ctx, "adm-imp", azkeys.ImportKeyParameters{Key: importJWK(w.priv)}, nil); err != nil {
		t.Fatalf("kv-admin ImportKey: %v", err)
	}
	if got, err := kc.GetKey(ctx, "adm1", "", nil); err != nil || got.Key.KID.Name() != "adm1" {
		t.Fatalf("kv-admin GetKey: %v", err)
	}
	n := 0
	for pager := kc.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("kv-admin list: %v", err)
		}
		n += len(page.Value)
	}
	if n < 3 {
		t.Errorf("kv-admin lists %d keys, want at least 3", n)
	}
	bak, err := kc.BackupKey(ctx, "adm-imp", nil)
	if err != nil {
		t.Fatalf("kv-admin BackupKey: %v", err)
	}
	// Restoring needs a free name: the officer deletes and purges first.
	if _, err := w.officer.DeleteKey(ctx, "adm-imp", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.officer.PurgeDeletedKey(ctx, "adm-imp", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bak.Value}, nil); err != nil || got.Key.KID.Name() != "adm-imp" {
		t.Fatalf("kv-admin RestoreKey: %v", err)
	}

	// Never delete or purge.
	_, err = kc.DeleteKey(ctx, "adm1", nil)
	checkForbiddenByRbac(t, "kv-admin DeleteKey", err, oid, rbac.DataKeysDelete, e.vaultID+"/keys/adm1")
	// A key the officer deleted, for kv-admin to try to purge.
	if _, err := w.officer.ImportKey(ctx, "adm-gone", azkeys.ImportKeyParameters{Key: importJWK(w.priv)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.officer.DeleteKey(ctx, "adm-gone", nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.PurgeDeletedKey(ctx, "adm-gone", nil)
	checkForbiddenByRbac(t, "kv-admin PurgeDeletedKey", err, oid, rbac.DataKeysPurge, e.vaultID+"/keys/adm-gone")

	// kv-admin cannot grant itself more: the no-delete role has no
	// roleAssignments/write.
	selfRA, _ := armauthorization.NewRoleAssignmentsClient(e.sub, user, s.armOptions())
	_, err = selfRA.Create(ctx, e.vaultID, newGUID(t), roleAssignment(e.sub, rbac.KeyVaultCryptoOfficerID, oid, "User"), nil)
	if code, status := respErr(err); status != http.StatusForbidden || code != "AuthorizationFailed" {
		t.Errorf("kv-admin assigning itself Crypto Officer: %d %s %v; want 403 AuthorizationFailed", status, code, err)
	}

	// The tenant's admin (Owner) grants Key Vault Crypto Officer for the job.
	ras, _ := armauthorization.NewRoleAssignmentsClient(e.sub, e.admin, s.armOptions())
	raName := newGUID(t)
	if _, err := ras.Create(ctx, e.vaultID, raName, roleAssignment(e.sub, rbac.KeyVaultCryptoOfficerID, oid, "User"), nil); err != nil {
		t.Fatalf("temporary Crypto Officer assignment: %v", err)
	}
	del, err := kc.DeleteKey(ctx, "adm1", nil)
	if err != nil || del.RecoveryID == nil {
		t.Fatalf("kv-admin DeleteKey with the temporary assignment: %v", err)
	}
	if _, err := kc.PurgeDeletedKey(ctx, "adm1", nil); err != nil {
		t.Fatalf("kv-admin PurgeDeletedKey with the temporary assignment: %v", err)
	}
	if _, err := kc.GetDeletedKey(ctx, "adm1", nil); !isStatus(err, http.StatusNotFound) {
		t.Errorf("GetDeletedKey(adm1) after the purge err = %v; want 404", err)
	}
	if _, err := kc.PurgeDeletedKey(ctx, "adm-gone", nil); err != nil {
		t.Errorf("kv-admin purging the officer's deleted key with the temporary assignment: %v", err)
	}

	// Removed again: this process changed it, so it is refused at once.
	if _, err := ras.Delete(ctx, e.vaultID, raName, nil); err != nil {
		t.Fatalf("removing the temporary assignment: %v", err)
	}
	_, err = kc.DeleteKey(ctx, "adm2", nil)
	checkForbiddenByRbac(t, "kv-admin DeleteKey after the removal", err, oid, rbac.DataKeysDelete, e.vaultID+"/keys/adm2")
	if _, err := kc.GetKey(ctx, "adm2", "", nil); err != nil {
		t.Errorf("kv-admin GetKey(adm2) after the removal err = %v; the no-delete role still reads", err)
	}
}

// accessPolicies: a vault without RBAC authorization uses its access
// policies; get without wrapKey means GetKey works and WrapKey is refused
// until an accessPolicies/add grants wrapKey.
func (w *rbacWorld) accessPolicies(t *testing.T) {
	ctx := context.Background()
	s, e := w.s, w.e
	adminSP := servicePrincipalOf(t, s, w.graphTok, e.c.AdminApp.ClientID)
	oid, cred := w.newApp(t, "ap-reader")
	vaults, _ := armkeyvault.NewVaultsClient(e.sub, e.admin, s.armOptions())
	allKeys := []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsAll)}
	p, err := vaults.BeginCreateOrUpdate(ctx, "rg", "rbacpolicies", armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"),
		Properties: &armkeyvault.VaultProperties{TenantID: to.Ptr(e.c.TenantID), EnableRbacAuthorization: to.Ptr(false),
			SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)},
			AccessPolicies: []*armkeyvault.AccessPolicyEntry{
				{TenantID: to.Ptr(e.c.TenantID), ObjectID: to.Ptr(adminSP), Permissions: &armkeyvault.Permissions{Keys: allKeys}},
				{TenantID: to.Ptr(e.c.TenantID), ObjectID: to.Ptr(oid), Permissions: &armkeyvault.Permissions{
					Keys: []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsGet)}}},
			}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	vaultURL := strings.TrimSuffix(*v.Properties.VaultURI, "/")
	if _, err := keysClient(t, s, vaultURL, e.admin).ImportKey(ctx, "ap1", azkeys.ImportKeyParameters{Key: importJWK(w.priv)}, nil); err != nil {
		t.Fatalf("admin ImportKey on the access-policy vault: %v", err)
	}
	// An RBAC role does not count on this vault.
	s.grant(t, e, oid, "ServicePrincipal", rbac.KeyVaultCryptoServiceEncryptionUserID, *v.ID)

	kc := keysClient(t, s, vaultURL, cred)
	if got, err := kc.GetKey(ctx, "ap1", "", nil); err != nil || !bytes.Equal(got.Key.N, w.priv.N.Bytes()) {
		t.Fatalf("GetKey with the get permission: %v", err)
	}
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	_, err = kc.WrapKey(ctx, "ap1", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: dek}, nil)
	body := checkForbidden(t, "WrapKey without wrapKey", err, "AccessDenied")
	if !strings.Contains(body.Error.Message, oid) || !strings.Contains(body.Error.Message, "wrapKey") ||
		!strings.Contains(strings.ToLower(body.Error.Message), "rbacpolicies") {
		t.Errorf("access-policy refusal message = %q; want the caller %s, the permission wrapKey and the vault", body.Error.Message, oid)
	}

	if _, err := vaults.UpdateAccessPolicy(ctx, "rg", "rbacpolicies", armkeyvault.AccessPolicyUpdateKindAdd, armkeyvault.VaultAccessPolicyParameters{
		Properties: &armkeyvault.VaultAccessPolicyProperties{AccessPolicies: []*armkeyvault.AccessPolicyEntry{
			{TenantID: to.Ptr(e.c.TenantID), ObjectID: to.Ptr(oid), Permissions: &armkeyvault.Permissions{
				Keys: []*armkeyvault.KeyPermissions{to.Ptr(armkeyvault.KeyPermissionsWrapKey)}}}}}}, nil); err != nil {
		t.Fatalf("accessPolicies/add wrapKey: %v", err)
	}
	wrapped, err := kc.WrapKey(ctx, "ap1", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: dek}, nil)
	if err != nil {
		t.Fatalf("WrapKey after accessPolicies/add: %v", err)
	}
	if un, err := rsa.DecryptOAEP(sha256.New(), nil, w.priv, wrapped.Result, nil); err != nil || !bytes.Equal(un, dek) {
		t.Errorf("the wrapped key does not unwrap locally: %v", err)
	}
	if _, err := kc.GetKey(ctx, "ap1", "", nil); err != nil {
		t.Errorf("GetKey after add (get must be kept): %v", err)
	}
	_, err = kc.UnwrapKey(ctx, "ap1", "", azkeys.KeyOperationParameters{Algorithm: oaep256, Value: wrapped.Result}, nil)
	checkForbidden(t, "UnwrapKey without unwrapKey", err, "AccessDenied")
}

// crossTenant: a principal of another tenant with a valid token for the
// vault resource is not authenticated for this vault: 401, never 403/200.
func (w *rbacWorld) crossTenant(t *testing.T) {
	ctx := context.Background()
	s, e := w.s, w.e
	other := s.newTenant(t, "Northwind")
	cred := s.credential(t, other.TenantID, other.AdminApp.ClientID, other.AdminApp.ClientSecret)
	// The official client asks for a token of the vault's tenant, which
	// this credential refuses client-side; a misbehaving client sends its
	// home tenant's token instead.
	kc := keysClient(t, s, e.vaultURL, homeTenantOnly{cred})
	_, err := kc.GetKey(ctx, "ks1", "", nil)
	code, status := respErr(err)
	if status != http.StatusUnauthorized || code != "Unauthorized" {
		t.Fatalf("GetKey with another tenant's token: %d %s %v; want 401 Unauthorized", status, code, err)
	}
	if !strings.Contains(err.Error(), other.TenantID) || !strings.Contains(err.Error(), e.c.TenantID) {
		t.Errorf("401 message does not name both tenants: %v", err)
	}
	// The same with a raw request: the token is valid, its issuer is not the vault's.
	tok, err := token(ctx, cred, "https://vault.azure.net/.default")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", e.vaultURL+"/keys?api-version=7.5", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), e.c.TenantID) {
		t.Errorf("raw list with another tenant's token = %d, challenge %q; want 401 naming the vault's tenant",
			resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// homeTenantOnly drops the tenant a challenge asks for.
type homeTenantOnly struct{ c azcore.TokenCredential }

func (h homeTenantOnly) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	o.TenantID = ""
	return h.c.GetToken(ctx, o)
}

// newApp registers an application in the vault's tenant through Graph,
// adds a client secret, and returns its service principal's object id and
// a credential for it.
func (w *rbacWorld) newApp(t *testing.T, name string) (string, azcore.TokenCredential) {
	t.Helper()
	var app struct{ ID, AppID string }
	if code := doJSON(t, w.s, w.graphTok, "POST", "/v1.0/applications", `{"displayName":"`+name+`"}`, &app); code != http.StatusCreated {
		t.Fatalf("POST /applications = %d", code)
	}
	var pw struct {
		SecretText string `json:"secretText"`
	}
	if code := doJSON(t, w.s, w.graphTok, "POST", "/v1.0/applications/"+app.ID+"/addPassword", `{"passwordCredential":{"displayName":"test"}}`, &pw); code != http.StatusOK || pw.SecretText == "" {
		t.Fatalf("addPassword = %d", code)
	}
	return servicePrincipalOf(t, w.s, w.graphTok, app.AppID), w.s.credential(t, w.e.c.TenantID, app.AppID, pw.SecretText)
}

// servicePrincipalOf returns the object id of the service principal of appID.
func servicePrincipalOf(t testing.TB, s *server, graphTok, appID string) string {
	t.Helper()
	var sp struct {
		Value []struct{ ID string } `json:"value"`
	}
	filter := url.PathEscape("appId eq '" + appID + "'")
	if code := doJSON(t, s, graphTok, "GET", "/v1.0/servicePrincipals?$filter="+filter, "", &sp); code != http.StatusOK || len(sp.Value) != 1 {
		t.Fatalf("service principal of %s: %d, %d found", appID, code, len(sp.Value))
	}
	return sp.Value[0].ID
}

// keysClient is the official client with the server's transport and no retries.
func keysClient(t *testing.T, s *server, vaultURL string, cred azcore.TokenCredential) *azkeys.Client {
	t.Helper()
	kc, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: s.client,
		Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

func roleAssignment(sub, roleGUID, principal, principalType string) armauthorization.RoleAssignmentCreateParameters {
	return armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		RoleDefinitionID: to.Ptr(rbac.DefinitionID(sub, roleGUID)), PrincipalID: to.Ptr(principal),
		PrincipalType: to.Ptr(armauthorization.PrincipalType(principalType))}}
}

// importJWK is priv as the JSON Web Key ImportKey takes.
func importJWK(priv *rsa.PrivateKey) *azkeys.JSONWebKey {
	b := func(i *big.Int) []byte { return i.Bytes() }
	return &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: b(priv.N), E: b(big.NewInt(int64(priv.E))), D: b(priv.D),
		P: b(priv.Primes[0]), Q: b(priv.Primes[1]), DP: b(priv.Precomputed.Dp), DQ: b(priv.Precomputed.Dq), QI: b(priv.Precomputed.Qinv)}
}

func isStatus(err error, status int) bool {
	_, st := respErr(err)
	return st == status
}

// akvError is the data plane's error body.
type akvError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// checkForbidden asserts a 403 Forbidden with innererror inner and returns the body.
func checkForbidden(t *testing.T, what string, err error, inner string) akvError {
	t.Helper()
	var body akvError
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("%s: err = %v; want a 403 response", what, err)
		return body
	}
	raw, _ := runtime.Payload(re.RawResponse)
	if jerr := json.Unmarshal(raw, &body); jerr != nil {
		t.Errorf("%s: error body %q: %v", what, raw, jerr)
	}
	if re.StatusCode != http.StatusForbidden || re.ErrorCode != "Forbidden" || body.Error.Code != "Forbidden" ||
		body.Error.InnerError == nil || body.Error.InnerError.Code != inner {
		t.Errorf("%s: %d %s %s; want 403 Forbidden with innererror %s", what, re.StatusCode, re.ErrorCode, raw, inner)
	}
	return body
}

// checkForbiddenByRbac asserts an RBAC refusal naming the caller's object
// id, the data action and the scope.
func checkForbiddenByRbac(t *testing.T, what string, err error, oid, action, scope string) {
	t.Helper()
	body := checkForbidden(t, what, err, "ForbiddenByRbac")
	msg := body.Error.Message
	if !strings.Contains(msg, "oid="+oid) || !strings.Contains(msg, "Action: '"+action+"'") ||
		!strings.Contains(strings.ToLower(msg), "resource: '"+strings.ToLower(scope)+"'") {
		t.Errorf("%s: message %q; want caller %s, action %s, scope %s", what, msg, oid, action, scope)
	}
}
