package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedKeyStepsWithTheCLI follows the seed's key steps with its cmdlet
// spellings: add a key to each vault, check it has no expiry, move an
// expiry to 12/31/9999, back it up, and read its URI.
func TestSeedKeyStepsWithTheCLI(t *testing.T) {
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := start(t, filepath.Join(t.TempDir(), "data"))
	e := s.newVault(t, "contosoekv1")
	ctx := context.Background()
	var adminSP struct {
		Value []struct{ ID string } `json:"value"`
	}
	graphTok, _ := token(ctx, e.admin, graphScope)
	doJSON(t, s, graphTok, "GET", "/v1.0/servicePrincipals?$filter=appId%20eq%20'"+e.c.AdminApp.ClientID+"'", "", &adminSP)
	s.grant(t, e, adminSP.Value[0].ID, "ServicePrincipal", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", e.vaultID) // Key Vault Crypto Officer
	env := s.adminEnv(e.c, "")
	run := func(args ...string) string {
		t.Helper()
		return mustCLI(t, env, args...)
	}
	out := run("Add-AzKeyVaultKey", "-VaultName", "contosoekv1", "-Name", "ContosoKey1", "-Size", "3072")
	for _, want := range []string{"KeySize       : 3072", "KeyType       : RSA", "Enabled       : True", "Expires       : \n", "wrapKey, unwrapKey"} {
		if !strings.Contains(out, want) {
			t.Errorf("Add-AzKeyVaultKey printed %q; want %q", out, want)
		}
	}
	// A key created with an expiry, then moved to the legacy path's 12/31/9999.
	run("key", "create", "--vault-name", "contosoekv1", "--name", "ContosoKey2", "--expires", "2027-06-30")
	out = run("Update-AzKeyVaultKey", "-VaultName", "contosoekv1", "-Name", "ContosoKey2", "-Expires", "12/31/9999")
	if !strings.Contains(out, "Expires       : 12/31/9999") {
		t.Errorf("Update-AzKeyVaultKey -Expires 12/31/9999 printed %q", out)
	}
	// Get-AzKeyVaultKey -VaultName lists the keys with their expiry.
	if out := run("Get-AzKeyVaultKey", "-VaultName", "contosoekv1"); !strings.Contains(out, "/keys/contosokey1") && !strings.Contains(out, "/keys/ContosoKey1") {
		t.Errorf("Get-AzKeyVaultKey -VaultName = %q", out)
	}
	// (Get-AzKeyVaultKey -VaultName V -Name K).Id is the URI the DEP needs.
	out = run("Get-AzKeyVaultKey", "-VaultName", "contosoekv1", "-Name", "ContosoKey1", "-o", "json")
	if !strings.Contains(out, e.vaultURL+"/keys/ContosoKey1/") {
		t.Errorf("key show -o json = %q; want the versioned key URI under %s", out, e.vaultURL)
	}
	// Back up right after creation, as the seed says; the blob restores.
	blob := filepath.Join(t.TempDir(), "ContosoKey1.blob")
	run("Backup-AzKeyVaultKey", "-VaultName", "contosoekv1", "-Name", "ContosoKey1", "-OutputFile", blob)
	if fi, err := os.Stat(blob); err != nil || fi.Size() < 100 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file = %v, %v", fi, err)
	}
	if _, err := runCLI(t, env, "Restore-AzKeyVaultKey", "-VaultName", "contosoekv1", "-InputFile", blob); err == nil || !strings.Contains(err.Error(), "Conflict") {
		t.Errorf("restoring over the live key err = %v; want a 409 Conflict", err)
	}
	run("key", "delete", "--vault-name", "contosoekv1", "--name", "ContosoKey1")
	if out := run("key", "list", "--vault-name", "contosoekv1", "--deleted"); !strings.Contains(strings.ToLower(out), "contosokey1") {
		t.Errorf("key list --deleted = %q", out)
	}
	run("key", "purge", "--vault-name", "contosoekv1", "--name", "ContosoKey1")
	if out := run("Restore-AzKeyVaultKey", "-VaultName", "contosoekv1", "-InputFile", blob); !strings.Contains(out, "KeySize       : 3072") {
		t.Errorf("restore after purge = %q", out)
	}
	// A key the CLI cannot reach: a clear 404.
	if _, err := runCLI(t, env, "key", "show", "--vault-name", "contosoekv1", "--name", "nokey"); err == nil || !strings.Contains(err.Error(), "KeyNotFound") {
		t.Errorf("key show of a missing key err = %v", err)
	}
}
