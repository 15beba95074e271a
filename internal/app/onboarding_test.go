package app_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
)

// TestOnboardingEndToEnd is the seed's onboarding with its own cmdlets:
// Validate fails on the retention period, Prepare registers it, Validate
// passes once it is Registered, and Enable succeeds for MDEP and EXO. Then
// an expired key, a missing role assignment, an unregistered service
// principal and an unlicensed tenant each turn their rule red.
func TestOnboardingEndToEnd(t *testing.T) {
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
	_ = json.Unmarshal([]byte(run(nil, "tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json", "--credentials-file", opFile)), &c)
	admin := s.adminEnv(c, "")
	with := func(sub string) map[string]string { return s.adminEnv(c, sub) }
	for _, app := range []string{directory.OnboardingAppID, directory.M365DAREAppID, directory.ExchangeAppID} {
		run(admin, "New-AzADServicePrincipal", "-ApplicationId", app)
	}
	var subs [2]string
	var vaults, keys [2]string
	for i := range subs {
		var out struct{ SubscriptionID string }
		_ = json.Unmarshal([]byte(run(nil, "subscription", "create", "--tenant-id", c.TenantID, "--name", "CK", "--offer", "EnterpriseAgreement",
			"-o", "json", "--credentials-file", opFile)), &out)
		subs[i] = out.SubscriptionID
		env := with(subs[i])
		vaults[i], keys[i] = "contosoakv0"+string(rune('1'+i)), "contosokey"+string(rune('1'+i))
		run(env, "group", "create", "--name", "ck", "--location", "westeurope")
		run(env, "vault", "create", "--resource-group", "ck", "--name", vaults[i], "--location", "westeurope")
		scope := "/subscriptions/" + subs[i] + "/resourceGroups/ck/providers/Microsoft.KeyVault/vaults/" + vaults[i]
		run(env, "role", "assignment", "create", "--assignee", c.AdminApp.ClientID, "--role", "Key Vault Crypto Officer", "--scope", scope)
		for _, workload := range []string{directory.M365DAREAppID, directory.ExchangeAppID} {
			run(env, "role", "assignment", "create", "--assignee", workload, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope)
		}
		run(env, "Add-AzKeyVaultKey", "-VaultName", vaults[i], "-Name", keys[i])
	}
	request := func(scenario, mode string, extra ...string) map[string]any {
		t.Helper()
		args := append([]string{"New-CustomerKeyOnboardingRequest", "-Organization", c.TenantID, "-Scenario", scenario,
			"-Subscription1", subs[0], "-VaultName1", vaults[0], "-KeyName1", keys[0],
			"-Subscription2", subs[1], "-VaultName2", vaults[1], "-KeyName2", keys[1], "-OnboardingMode", mode, "-o", "json"}, extra...)
		var r map[string]any
		if err := json.Unmarshal([]byte(run(admin, args...)), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	failed := func(r map[string]any) map[string]map[string]any {
		out := map[string]map[string]any{}
		fv, _ := r["FailedValidations"].([]any)
		for _, v := range fv {
			m := v.(map[string]any)
			out[m["RuleName"].(string)] = m
		}
		return out
	}
	// Validate: only the retention period is missing, on both subscriptions.
	r := request("MDEP", "Validate")
	f := failed(r)
	if r["ValidationResult"] != "Failed" || f["MandatoryRetentionPeriodState"] == nil {
		t.Fatalf("first Validate = %v; failed rules %v", r["ValidationResult"], keysOf(f))
	}
	for rule := range f {
		if rule != "MandatoryRetentionPeriodState" && rule != "RecoveryLevel" {
			t.Errorf("first Validate fails %s too; only the retention period should be missing", rule)
		}
	}
	if v := f["MandatoryRetentionPeriodState"]; v["ExpectedValue"] != "Registered" || v["Scope"] != subs[0][:5] && v["Scope"] != subs[1][:5] {
		t.Errorf("MandatoryRetentionPeriodState = %v", v)
	}
	// Prepare, then wait out the registration delay.
	r = request("MDEP", "Prepare")
	if msgs, _ := r["Messages"].([]any); len(msgs) == 0 || !strings.Contains(msgs[0].(string), "Registering") {
		t.Errorf("Prepare messages = %v; want a note that the period is Registering", r["Messages"])
	}
	clk.Advance(2 * time.Minute)
	if r = request("MDEP", "Validate"); r["ValidationResult"] != "Success" {
		t.Fatalf("Validate after Prepare = %v, failed %v", r["ValidationResult"], keysOf(failed(r)))
	}
	for _, sc := range []string{"MDEP", "EXO"} {
		if r = request(sc, "Enable"); r["ValidationResult"] != "Success" || r["EnablementResult"] != "Success" {
			t.Fatalf("Enable %s = %v/%v, failed %v", sc, r["ValidationResult"], r["EnablementResult"], keysOf(failed(r)))
		}
	}
	if out := run(admin, "tenant", "show", c.TenantID, "-o", "json"); !strings.Contains(out, `"EXO"`) || !strings.Contains(out, `"MDEP"`) {
		t.Errorf("tenant show = %s; want both scenarios enabled", out)
	}
	// Get-CustomerKeyOnboardingRequest lists them; -RequestID shows one.
	id := r["ID"].(string)
	if out := run(admin, "Get-CustomerKeyOnboardingRequest", "-OrganizationID", c.TenantID); strings.Count(out, "\n") < 6 {
		t.Errorf("Get-CustomerKeyOnboardingRequest lists %q", out)
	}
	if out := run(admin, "Get-CustomerKeyOnboardingRequest", "-OrganizationID", c.TenantID, "-RequestID", id, "--passed-validations"); !strings.Contains(out, "KeyAccessPermissions") {
		t.Errorf("passed validations = %q", out)
	}

	// Each broken piece turns its own rule red.
	env0 := with(subs[0])
	run(env0, "Update-AzKeyVaultKey", "-VaultName", vaults[0], "-Name", keys[0], "-Expires", "2030-01-01")
	if f := failed(request("EXO", "Validate")); f["KeyNeverExpires"] == nil || f["KeyNeverExpires"]["Scope"] != subs[0][:5] {
		t.Errorf("an expiring key: failed rules %v; want KeyNeverExpires in %s", keysOf(f), subs[0][:5])
	}
	run(env0, "key", "create", "--vault-name", vaults[0], "--name", "freshkey")
	scope := "/subscriptions/" + subs[0] + "/resourceGroups/ck/providers/Microsoft.KeyVault/vaults/" + vaults[0]
	var ras []struct {
		ID         string `json:"id"`
		Properties struct {
			PrincipalID string `json:"principalId"`
		} `json:"properties"`
	}
	_ = json.Unmarshal([]byte(run(env0, "role", "assignment", "list", "--scope", scope, "--assignee", directory.ExchangeAppID, "-o", "json")), &ras)
	for _, ra := range ras {
		run(env0, "role", "assignment", "delete", "--id", ra.ID)
	}
	if f := failed(request("EXO", "Validate", "-KeyName1", "freshkey")); f["KeyAccessPermissions"] == nil {
		t.Errorf("no role for Exchange Online: failed rules %v; want KeyAccessPermissions", keysOf(f))
	}
	sps := run(admin, "sp", "show", "--app-id", directory.M365DAREAppID, "-o", "json")
	var sp struct{ ID string }
	_ = json.Unmarshal([]byte(sps), &sp)
	if _, err := deleteSP(t, s, c, sp.ID); err != nil {
		t.Fatal(err)
	}
	if f := failed(request("MDEP", "Validate", "-KeyName1", "freshkey")); f["KeyAccessPermissions"] == nil ||
		!strings.Contains(f["KeyAccessPermissions"]["ActualValue"].(string)+f["KeyAccessPermissions"]["Details"].(string), directory.M365DAREAppID) {
		t.Errorf("unregistered M365DataAtRestEncryption: failed %v", f["KeyAccessPermissions"])
	}
	run(nil, "tenant", "license", "remove", "--tenant-id", c.TenantID, "--license", "Microsoft 365 E5", "--credentials-file", opFile)
	if f := failed(request("EXO", "Validate", "-KeyName1", "freshkey")); f["OrganizationHasRequiredServicePlan"] == nil {
		t.Errorf("unlicensed tenant: failed rules %v; want OrganizationHasRequiredServicePlan", keysOf(f))
	}
}

func keysOf(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// deleteSP removes a service principal through Graph as the tenant's admin.
func deleteSP(t *testing.T, s *server, c tenantCreds, id string) (int, error) {
	t.Helper()
	tok, err := token(t.Context(), s.credential(t, c.TenantID, c.AdminApp.ClientID, c.AdminApp.ClientSecret), graphScope)
	if err != nil {
		return 0, err
	}
	return doJSON(t, s, tok, "DELETE", "/v1.0/servicePrincipals/"+id, "", nil), nil
}
