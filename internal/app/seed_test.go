package app_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
)

// TestSeedAzureStepsWithTheCLI walks the seed's Azure steps with the
// customerkey CLI, in the seed's order: two subscriptions, service
// principals, a premium vault in each with soft delete, the role for
// Exchange Online, key administrators who cannot delete, and the
// mandatory retention period.
func TestSeedAzureStepsWithTheCLI(t *testing.T) {
	clk := &clock{now: time.Now()}
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := startWith(t, dataDir, app.Options{Now: clk.Now})
	opFile := filepath.Join(dataDir, config.CredentialsFile)
	run := func(env map[string]string, args ...string) string {
		t.Helper()
		return mustCLI(t, env, args...)
	}
	var c tenantCreds
	if err := json.Unmarshal([]byte(run(nil, "tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json", "--credentials-file", opFile)), &c); err != nil {
		t.Fatal(err)
	}
	// The operator (billing) creates the tenant's two subscriptions.
	var subs [2]string
	for i := range subs {
		var out struct{ SubscriptionID string }
		_ = json.Unmarshal([]byte(run(nil, "subscription", "create", "--tenant-id", c.TenantID, "--name", "Customer Key "+string(rune('A'+i)),
			"--offer", "EnterpriseAgreement", "-o", "json", "--credentials-file", opFile)), &out)
		if out.SubscriptionID == "" {
			t.Fatal("subscription create printed no id")
		}
		subs[i] = out.SubscriptionID
	}
	admin := s.adminEnv(c, "")
	if out := run(admin, "subscription", "list"); !strings.Contains(out, subs[0]) || !strings.Contains(out, subs[1]) {
		t.Fatalf("subscription list = %q", out)
	}
	// Service principals, as the seed registers them.
	for _, appID := range []string{directory.OnboardingAppID, directory.M365DAREAppID, directory.ExchangeAppID} {
		run(admin, "New-AzADServicePrincipal", "-ApplicationId", appID)
	}
	for i, sub := range subs {
		env := s.adminEnv(c, sub)
		name := "ContosoEXOAKV0" + string(rune('1'+i))
		run(env, "group", "create", "--name", "ContosoCK", "--location", "westeurope")
		out := run(env, "vault", "create", "--resource-group", "ContosoCK", "--name", name, "--location", "westeurope", "--sku", "premium")
		for _, want := range []string{"Soft Delete Enabled?                : True", "Soft Delete Retention Period (days) : 90", "SKU                                 : premium"} {
			if !strings.Contains(out, want) {
				t.Errorf("vault create printed %q; want %q", out, want)
			}
		}
		// The seed's check that soft delete is on, with its cmdlet spelling.
		if out := run(env, "Get-AzKeyVault", "-VaultName", name); !strings.Contains(out, "Vault URI") || !strings.Contains(out, strings.ToLower(name)+".vault.localhost") {
			t.Errorf("Get-AzKeyVault = %q", out)
		}
		vaultID := "/subscriptions/" + sub + "/resourceGroups/ContosoCK/providers/Microsoft.KeyVault/vaults/" + name
		run(env, "role", "assignment", "create", "--assignee", directory.ExchangeAppID, "--role", "Key Vault Crypto Service Encryption User", "--scope", vaultID)
		if out := run(env, "role", "assignment", "list", "--scope", vaultID); !strings.Contains(out, "Key Vault Crypto Service Encryption User") {
			t.Errorf("role assignment list = %q", out)
		}
		// Prepare's effect, done by hand here: the mandatory retention period.
		if out := run(env, "Register-AzProviderFeature", "-FeatureName", "mandatoryRetentionPeriodEnabled", "-ProviderNamespace", "Microsoft.Resources"); !strings.Contains(out, "Registering") {
			t.Errorf("Register-AzProviderFeature = %q; want Registering", out)
		}
		run(env, "Register-AzResourceProvider", "-ProviderNamespace", "Microsoft.KeyVault")
	}
	clk.Advance(2 * time.Minute)
	env := s.adminEnv(c, subs[0])
	if out := run(env, "Get-AzProviderFeature", "-FeatureName", "mandatoryRetentionPeriodEnabled", "-ProviderNamespace", "Microsoft.Resources"); !strings.Contains(out, "RegistrationState : Registered") {
		t.Errorf("Get-AzProviderFeature after the delay = %q", out)
	}
	// Key administrators without delete: a custom role from a file.
	role := filepath.Join(t.TempDir(), "role.json")
	def := `{"Name":"Key Vault Key Administrator (no delete)","Description":"Day-to-day key administration without delete or purge",
	  "DataActions":["Microsoft.KeyVault/vaults/keys/read","Microsoft.KeyVault/vaults/keys/create/action","Microsoft.KeyVault/vaults/keys/import/action",
	  "Microsoft.KeyVault/vaults/keys/backup/action","Microsoft.KeyVault/vaults/keys/restore/action"],
	  "AssignableScopes":["/subscriptions/` + subs[0] + `"]}`
	if err := os.WriteFile(role, []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	run(env, "role", "definition", "create", "--file", role)
	if out := run(env, "role", "definition", "show", "--name", "Key Vault Key Administrator (no delete)", "--scope", "/subscriptions/"+subs[0]); !strings.Contains(out, "keys/backup/action") || strings.Contains(out, "keys/delete") {
		t.Errorf("role definition show = %q", out)
	}
	// Soft delete in action: delete, list deleted, recover.
	run(env, "vault", "update", "--name", "ContosoEXOAKV01", "--enable-purge-protection", "true")
	run(env, "vault", "delete", "--name", "ContosoEXOAKV01")
	if out := run(env, "vault", "list", "--deleted"); !strings.Contains(out, "ContosoEXOAKV01") {
		t.Errorf("vault list --deleted = %q", out)
	}
	if _, err := runCLI(t, env, "vault", "purge", "--name", "ContosoEXOAKV01", "--location", "westeurope"); err == nil {
		t.Error("a purge-protected vault in a protected subscription was purged")
	}
	run(env, "vault", "recover", "--name", "ContosoEXOAKV01", "--resource-group", "ContosoCK", "--location", "westeurope")
	if out := run(env, "vault", "show", "--name", "ContosoEXOAKV01"); !strings.Contains(out, "Purge Protection Enabled?           : True") {
		t.Errorf("recovered vault = %q", out)
	}
	// With the retention period registered, cancelling leaves it Enabled.
	run(env, "subscription", "cancel")
	if out := run(env, "subscription", "show"); !strings.Contains(out, "State    : Enabled") {
		t.Errorf("subscription after cancel under retention = %q; want Enabled", out)
	}
}
