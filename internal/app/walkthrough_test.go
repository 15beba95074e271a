package app_test

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
)

var updateWalkthrough = flag.Bool("update-walkthrough", false, "rewrite docs/walkthrough.md from a fresh run")

// step is one command of the walkthrough and the prose before it.
type step struct {
	prose string
	// env is who runs the command: "operator", "admin", "sub0" or "sub1"
	// (the admin with AZURE_SUBSCRIPTION_ID set), or "approver" (a user of
	// the operator tenant, with a saved sign-in).
	env  string
	args []string
	// before runs first: it waits for the background work the output
	// depends on, or moves the clock.
	before func()
	// after reads values later steps need from the output.
	after func(out string)
	// signIn makes a `login` step a person's: who approves its device
	// code on the sign-in page, with which password.
	signIn func() (upn, password string)
}

// listField reads "Name : value" from a command's Format-List output.
func listField(out, name string) string {
	for line := range strings.Lines(out) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestWalkthrough runs the seed's steps in order with the customerkey CLI
// against a real server, then goes on through the data encryption
// policies, a key roll, a revocation and an Exchange purge, and compares
// the transcript with docs/walkthrough.md, so that the document cannot
// drift from what the commands do. Volatile values (ids, secrets, times,
// ports) are replaced by placeholders. As the seed recommends for
// production, the root keys are RSA-HSM keys in premium vaults, so the
// test needs an HSM: SoftHSM2, as .ci/run sets it up; without one it
// skips. Regenerate with: go test ./internal/app -run TestWalkthrough -update-walkthrough
func TestWalkthrough(t *testing.T) {
	if os.Getenv(hsmtest.ModuleEnv) == "" {
		t.Skipf("walkthrough skipped: its root keys are RSA-HSM keys in premium vaults, which needs an HSM. Install softhsm2, "+
			"point SOFTHSM2_CONF at a scratch token directory and set %s=/usr/lib/softhsm/libsofthsm2.so (.ci/run does this), "+
			"then run go test ./internal/app -run TestWalkthrough (add -update-walkthrough to regenerate docs/walkthrough.md)", hsmtest.ModuleEnv)
	}
	tok := hsmtest.NewToken(t)
	clk := &clock{now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	// A policy key cache of a second, so that a revocation shows at once
	// (the default, and the documented latency, is ten minutes).
	useHSM := withHSM(t, tok)
	s := startConfigured(t, dataDir, app.Options{Now: clk.Now}, func(c *config.Config) {
		useHSM(c)
		c.PolicyKeyCacheLifetime = time.Second
	})
	opFile := filepath.Join(dataDir, config.CredentialsFile)
	var tenant tenantCreds
	var subs [2]string
	secrets := map[string]string{}
	envs := map[string]map[string]string{"approver": dpUserEnv(t, s)}
	// vars are values later steps use, read from earlier output: {name}
	// in a step's arguments stands for vars[name].
	vars := map[string]string{}
	vault := func(i int) string { return fmt.Sprintf("ContosoAKV0%d", i+1) }
	key := func(i int) string { return fmt.Sprintf("ContosoKey%d", i+1) }
	keyURI := func(i int) string {
		return "https://" + strings.ToLower(vault(i)) + ".vault.localhost:" + s.port() + "/keys/" + key(i)
	}
	// keep saves a Format-List field of a step's output as vars[name]:
	// whole, or only its last path segment (the version of a key id).
	keep := func(name, fieldName string, whole bool) func(string) {
		return func(out string) {
			v := listField(out, fieldName)
			if !whole {
				v = v[strings.LastIndex(v, "/")+1:]
			}
			vars[name] = v
		}
	}
	// wait polls a command as the admin until its output holds want.
	wait := func(want string, args ...string) func() {
		return func() {
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				out, err := runCLI(t, s.adminEnv(tenant, ""), expand(args, vars)...)
				if err == nil && strings.Contains(out, want) || err != nil && strings.Contains(err.Error(), want) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("customerkey %s never showed %q: %q, %v", strings.Join(args, " "), want, out, err)
				}
			}
		}
	}
	steps := []step{
		{prose: "## The operator creates the tenant\n\nThe operator signs in with the credentials the first start wrote, and creates the customer's tenant with a qualifying licence. The Global Administrator's password and the automation application's secret are shown once.",
			env: "operator", args: []string{"tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json"},
			after: func(out string) {
				_ = json.Unmarshal([]byte(out), &tenant)
				secrets[tenant.AdminApp.ClientSecret] = "<client secret>"
				secrets[tenant.GlobalAdmin.Password] = "<password>"
				envs["admin"] = map[string]string{"AZURE_TENANT_ID": tenant.TenantID, "AZURE_CLIENT_ID": tenant.AdminApp.ClientID, "AZURE_CLIENT_SECRET": tenant.AdminApp.ClientSecret}
			}},
	}
	for i := range 2 {
		steps = append(steps, step{prose: fmt.Sprintf("## Subscription %d\n\nCustomer Key requires two paid subscriptions of the tenant (the operator's billing side creates them).", i+1),
			env: "operator", args: []string{"subscription", "create", "--tenant-id", "{tenant}", "--name", fmt.Sprintf("Customer Key %c", 'A'+i), "--offer", "EnterpriseAgreement", "-o", "json"},
			after: func(out string) {
				var o struct{ SubscriptionID string }
				_ = json.Unmarshal([]byte(out), &o)
				subs[i] = o.SubscriptionID
			}})
	}
	steps = append(steps,
		step{prose: "## Register the required service principals\n\nFrom here on the tenant's admin works: `AZURE_TENANT_ID` (also `$TENANT_ID`), `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` are the automation application's from `tenant create`, and `$SUB1` and `$SUB2` the two subscription ids. First, check whether the Onboarding application is registered:",
			env: "admin", args: []string{"Get-AzADServicePrincipal", "-ServicePrincipalName", directory.OnboardingAppID}},
		step{prose: "It isn't, so register it, then the M365DataAtRestEncryption and Exchange Online applications:", env: "admin", args: []string{"New-AzADServicePrincipal", "-ApplicationId", directory.OnboardingAppID}},
		step{env: "admin", args: []string{"New-AzADServicePrincipal", "-ApplicationId", directory.M365DAREAppID}},
		step{env: "admin", args: []string{"New-AzADServicePrincipal", "-ApplicationId", directory.ExchangeAppID}},
	)
	for i := range 2 {
		sub := fmt.Sprintf("sub%d", i)
		// firstOr gives the first vault the full prose; the second says less.
		firstOr := func(first, again string) string {
			if i == 0 {
				return first
			}
			return again
		}
		scope := "/subscriptions/{" + sub + "}/resourceGroups/ContosoCK/providers/Microsoft.KeyVault/vaults/" + vault(i)
		steps = append(steps,
			step{prose: fmt.Sprintf("## Key vault %d\n\nIn subscription %d (`AZURE_SUBSCRIPTION_ID`): a resource group and a premium vault%s; soft delete is on with 90 days.", i+1, i+1,
				firstOr(", as the seed recommends for production data (premium vaults hold HSM-protected keys; standard ones are for testing)", "")),
				env: sub, args: []string{"group", "create", "--name", "ContosoCK", "--location", "westeurope"}},
			step{env: sub, args: []string{"vault", "create", "--resource-group", "ContosoCK", "--name", vault(i), "--location", "westeurope", "--sku", "premium"}},
			step{prose: "Give Exchange Online and M365DataAtRestEncryption wrap, unwrap and get (Key Vault Crypto Service Encryption User), and the admin the right to create keys:",
				env: sub, args: []string{"role", "assignment", "create", "--assignee", directory.ExchangeAppID, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope},
				after: keep(fmt.Sprintf("exchangeRole%d", i), "RoleAssignmentId", true)},
			step{env: sub, args: []string{"role", "assignment", "create", "--assignee", directory.M365DAREAppID, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope}},
			step{env: sub, args: []string{"role", "assignment", "create", "--assignee", "{adminApp}", "--role", "Key Vault Crypto Officer", "--scope", scope}},
			step{prose: firstOr("Add an HSM-protected RSA key (`-Destination HSM`, so KeyType RSA-HSM: the key is generated inside the HSM, which does every operation with it; it leaves the HSM only wrapped, in a backup) and check that it has no expiry:",
				"Add an HSM-protected RSA key and check that it has no expiry:"),
				env: sub, args: []string{"Add-AzKeyVaultKey", "-VaultName", vault(i), "-Name", key(i), "-Destination", "HSM"},
				after: keep(fmt.Sprintf("keyVersion%d", i), "Id", false)},
			step{prose: "Back it up at once, and keep the file online and offline" + firstOr(". The backup holds the key wrapped under the HSM's backup key, so it restores into this HSM deployment only:", ":"), env: sub, args: []string{"Backup-AzKeyVaultKey", "-VaultName", vault(i), "-Name", key(i), "-OutputFile", "{tmp}/" + key(i) + ".blob"}},
		)
	}
	onboard := func(scenario, mode string) []string {
		return []string{"New-CustomerKeyOnboardingRequest", "-Organization", "{tenant}", "-Scenario", scenario,
			"-Subscription1", "{sub0}", "-VaultName1", vault(0), "-KeyName1", key(0),
			"-Subscription2", "{sub1}", "-VaultName2", vault(1), "-KeyName2", key(1), "-OnboardingMode", mode}
	}
	steps = append(steps,
		step{prose: "## Onboard: Validate\n\nValidate checks everything and changes nothing. The mandatory retention period is not registered yet:", env: "admin", args: onboard("MDEP", "Validate")},
		step{prose: "## Prepare\n\nPrepare registers the mandatory retention period on both subscriptions; it takes a while (a minute here, up to an hour in Azure):", env: "admin", args: onboard("MDEP", "Prepare")},
		step{prose: "When it shows Registered, validate again:", env: "sub0", args: []string{"Get-AzProviderFeature", "-FeatureName", "mandatoryRetentionPeriodEnabled", "-ProviderNamespace", "Microsoft.Resources"},
			before: func() { clk.Advance(2 * time.Minute) }},
		step{env: "admin", args: onboard("MDEP", "Validate")},
		step{prose: "## Enable\n\nEnable for the multi-workload scenario and for Exchange Online:", env: "admin", args: onboard("MDEP", "Enable")},
		step{env: "admin", args: onboard("EXO", "Enable")},
		step{prose: "The tenant now has Customer Key enabled for both:", env: "admin", args: []string{"tenant", "show", "{tenant}"}},
	)
	keys := keyURI(0) + "," + keyURI(1)
	mailbox := "finance@contoso.onmicrosoft.com"
	stats := []string{"Get-MailboxStatistics", "-Identity", mailbox}
	readMessage := []string{"message", "get", "--mailbox", mailbox, "--id", "{message}"}
	approvePurge := []string{"exchange-policy", "approve-purge", "--tenant", "{tenant}", "--identity", "ContosoEXO"}
	encrypted := wait(`"isEncrypted": true`, append(stats, "-o", "json")...)
	steps = append(steps,
		step{prose: "## Data encryption policies\n\nA multi-workload policy with both root keys, versionless so that a refresh picks up their newest versions (New-M365DataAtRestEncryptionPolicy), assigned to the whole tenant:",
			env: "admin", args: []string{"New-M365DataAtRestEncryptionPolicy", "-Name", "ContosoM365", "-AzureKeyIDs", keys, "-Description", "Contoso's tenant-wide policy"}},
		step{env: "admin", args: []string{"Set-M365DataAtRestEncryptionPolicyAssignment", "-DataEncryptionPolicy", "ContosoM365"}},
		step{prose: "And a mailbox policy for Exchange Online (New-DataEncryptionPolicy):",
			env: "admin", args: []string{"New-DataEncryptionPolicy", "-Name", "ContosoEXO", "-AzureKeyIDs", keys, "-Description", "Contoso's mailboxes"},
			after: keep("exchangePolicy", "Id", true)},
		step{prose: "## Mailboxes\n\nA shared mailbox (Exchange and Global Administrators read it), assigned the mailbox policy; its mailbox key is rewrapped under the policy in the background:",
			env: "admin", args: []string{"mailbox", "create", "--type", "SharedMailbox", "--primary-smtp-address", mailbox, "--display-name", "Finance"}},
		step{env: "admin", args: []string{"Set-Mailbox", "-Identity", mailbox, "-DataEncryptionPolicy", "ContosoEXO"}},
		step{prose: "Get-MailboxStatistics shows the policy that encrypts it:", env: "admin", args: stats,
			before: encrypted},
		step{prose: "Messages are kept sealed under the mailbox's key:",
			env: "admin", args: []string{"message", "put", "--mailbox", mailbox, "--subject", "Q3 forecast", "--from", "megan@contoso.onmicrosoft.com",
				"--to", mailbox, "--body", "Revenue up 12%."},
			after: keep("message", "Id", true)},
		step{env: "admin", args: readMessage},
		step{prose: "## SharePoint and OneDrive\n\nSharePoint Online needs its service principal and the same role on both vaults:",
			env: "admin", args: []string{"New-AzADServicePrincipal", "-ApplicationId", directory.SharePointAppID}},
	)
	for i := range 2 {
		sub := fmt.Sprintf("sub%d", i)
		steps = append(steps, step{env: sub, args: []string{"role", "assignment", "create", "--assignee", directory.SharePointAppID,
			"--role", "Key Vault Crypto Service Encryption User", "--scope", "/subscriptions/{" + sub + "}/resourceGroups/ContosoCK/providers/Microsoft.KeyVault/vaults/" + vault(i)}})
	}
	steps = append(steps,
		step{prose: "The geo's policy pins the keys' versions (Register-SPODataEncryptionPolicy); a site created afterwards is encrypted under it at once:",
			env: "admin", args: []string{"Register-SPODataEncryptionPolicy",
				"-PrimaryKeyVaultName", vault(0), "-PrimaryKeyName", key(0), "-PrimaryKeyVersion", "{keyVersion0}",
				"-SecondaryKeyVaultName", vault(1), "-SecondaryKeyName", key(1), "-SecondaryKeyVersion", "{keyVersion1}"}},
		step{env: "admin", args: []string{"site", "create", "--url", "https://contoso.sharepoint.com/sites/finance", "--owner", "admin@contoso.onmicrosoft.com"}},
		step{env: "admin", args: []string{"Get-SPOSiteDataEncryptionPolicy", "-Identity", "https://contoso.sharepoint.com/sites/finance"}},
		step{prose: "## Rolling a key\n\nA new version of the first key (Add-AzKeyVaultKey with the same name), again in the HSM; the older version stays, as data may still need it:",
			env: "sub0", args: []string{"Add-AzKeyVaultKey", "-VaultName", vault(0), "-Name", key(0), "-Destination", "HSM"},
			after: keep("newKeyVersion0", "Id", false)},
		step{prose: "Each policy picks it up: the policy key is wrapped under the new version (its KeyVersion grows) and the data is rewrapped in the background:",
			env: "admin", args: []string{"Set-DataEncryptionPolicy", "-Identity", "ContosoEXO", "-Refresh"}},
		step{env: "admin", args: []string{"Set-M365DataAtRestEncryptionPolicy", "-Identity", "ContosoM365", "-Refresh"}},
		step{prose: "SharePoint rolls one key at a time; the geo is Rolling, with the percentage of sites done, until every site is on the new version (`--wait` follows it):",
			env: "admin", args: []string{"Update-SPODataEncryptionPolicy", "-KeyVaultName", vault(0), "-KeyName", key(0), "-KeyVersion", "{newKeyVersion0}",
				"-KeyType", "Primary", "--wait"}},
		step{prose: "The mailbox is on the refreshed policy, and its messages read as before:", env: "admin", args: stats,
			before: encrypted},
		step{env: "admin", args: readMessage},
		step{prose: "## Revoking access\n\nThe customer removes Exchange Online's role from both vaults (the ids are those `role assignment create` printed):",
			env: "sub0", args: []string{"role", "assignment", "delete", "--id", "{exchangeRole0}"}},
		step{env: "sub1", args: []string{"role", "assignment", "delete", "--id", "{exchangeRole1}"}},
		step{prose: "Once the policy key cached in memory expires (`policy-key-cache-lifetime`, the documented revocation latency: ten minutes by default, a second in the run behind this page), reading the mailbox fails. Work the service does itself, such as moving the mailbox to another policy, may still use the policy's availability key, and every such use is in the tenant's audit log (`customerkey audit list`) as \"Fallback to Availability Key\":",
			env: "admin", args: readMessage, before: wait("RootKeysRevoked", readMessage...)},
		step{prose: "## Purging the mailbox policy's data\n\nWith Exchange Online's access gone from both keys, the customer asks for the purge (it is refused while Exchange can still use a key):",
			env: "admin", args: []string{"Set-DataEncryptionPolicy", "-Identity", "ContosoEXO", "-PermanentDataPurgeRequested",
				"-PermanentDataPurgeReason", "Contoso leaves Exchange Online", "-PermanentDataPurgeContact", "legal@contoso.com"}},
		step{prose: "Two different Global Administrators of the operator approve. The first is the operator's automation application:", env: "operator", args: approvePurge},
		step{prose: "The second is a person: the operator adds an administrator, who signs in (device code) and approves; that approval runs the purge:",
			env: "operator", args: []string{"user", "create", "--upn", "approver@operator.onmicrosoft.com", "--display-name", "Purge approver"},
			after: func(out string) {
				secrets[listField(out, "Password")] = "<password>"
				vars["approverPassword"] = listField(out, "Password")
			}},
		step{env: "operator", args: []string{"directory-role", "assign", "--role", "Global Administrator", "--user", "approver@operator.onmicrosoft.com"}},
		step{env: "approver", args: []string{"login", "--tenant", "operator.onmicrosoft.com"},
			signIn: func() (string, string) { return "approver@operator.onmicrosoft.com", vars["approverPassword"] }},
		step{env: "approver", args: approvePurge},
		step{prose: "The mailboxes under the policy are gone, with their keys; the policy stays as a tombstone:",
			env: "admin", args: []string{"Get-Mailbox", "-Identity", mailbox}},
		step{env: "admin", args: []string{"Get-DataEncryptionPolicy", "-Identity", "{exchangePolicy}"}},
	)

	var doc strings.Builder
	doc.WriteString("# Walkthrough: setting up Customer Key with customerkey\n\n" +
		"The seed's steps, in its order, each as the customerkey command that does it, with the output of a real run;\n" +
		"then the data encryption policies, a key roll, a revocation and an Exchange purge.\n" +
		"Ids, secrets and times are placeholders. `internal/app/walkthrough_test.go` runs these same commands\n" +
		"against a real server on every test run and fails when this page and the output part ways.\n\n" +
		"The root keys are HSM-protected (RSA-HSM) keys in premium vaults, as the seed recommends for production, so the server\n" +
		"runs with an HSM configured: any PKCS#11 token, here SoftHSM2 (`docs/hsm.md` says how to set one up).\n" +
		"Start the server with it:\n\n" +
		"```sh\ngo run ./cmd/customerkey serve --hsm-module /usr/lib/softhsm/libsofthsm2.so --hsm-token customerkey \\\n" +
		"    --hsm-pin-file /etc/customerkey/hsm.pin\n```\n\n" +
		"and point the CLI at it:\n\n" +
		"```sh\nexport CUSTOMERKEY_ENDPOINT=https://localhost:8443 CUSTOMERKEY_CA_FILE=~/.local/share/customerkey/ca.pem\n" +
		"customerkey login --credentials-file ~/.local/share/customerkey/operator.json   # as the operator\n```\n")
	tmp := t.TempDir()
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		fixed := map[string]string{"{tenant}": tenant.TenantID, "{sub0}": subs[0], "{sub1}": subs[1], "{adminApp}": tenant.AdminApp.ClientID, "{tmp}": tmp}
		args := expand(st.args, vars)
		for i, a := range args {
			for from, to := range fixed {
				a = strings.ReplaceAll(a, from, to)
			}
			args[i] = a
		}
		env := map[string]string{"CUSTOMERKEY_ENDPOINT": s.url, "CUSTOMERKEY_CA_FILE": s.CAFile}
		switch st.env {
		case "operator":
			args = append(args, "--credentials-file", opFile)
		case "approver":
			env = envs["approver"]
		default:
			for k, v := range envs["admin"] {
				env[k] = v
			}
			if strings.HasPrefix(st.env, "sub") {
				env["AZURE_SUBSCRIPTION_ID"] = subs[st.env[3]-'0']
			}
		}
		var out string
		var err error
		if st.signIn != nil {
			upn, password := st.signIn()
			out, err = dpLogin(t, s, env, args, upn, password)
		} else {
			out, err = runCLI(t, env, args...)
		}
		if err != nil {
			out = "Error: " + err.Error() + "\n"
		}
		if st.after != nil {
			st.after(out)
		}
		if st.prose != "" {
			doc.WriteString("\n" + st.prose + "\n")
		}
		shown := strings.Join(quoteArgs(expand(st.args, vars)), " ")
		for from, to := range map[string]string{"{tenant}": "$TENANT_ID", "{sub0}": "$SUB1", "{sub1}": "$SUB2", "{adminApp}": "$AZURE_CLIENT_ID", "{tmp}": "/tmp/backups"} {
			shown = strings.ReplaceAll(shown, from, to)
		}
		switch st.env {
		case "operator":
			shown += "   # as the operator"
		case "approver":
			shown += "   # as approver@operator.onmicrosoft.com"
		case "sub0", "sub1":
			shown = "AZURE_SUBSCRIPTION_ID=$SUB" + string(rune('1'+st.env[3]-'0')) + " customerkey " + shown
		}
		if !strings.HasPrefix(shown, "AZURE_") {
			shown = "customerkey " + shown
		}
		doc.WriteString("\n```\n$ " + shown + "\n" + out + "```\n")
	}
	// A validation's Scope is the first five characters of a subscription id.
	secrets[" "+subs[0][:5]+" "] = " $SUB1 " // same width, so the table stays aligned
	secrets[" "+subs[1][:5]+" "] = " $SUB2 "
	got := normalize(doc.String(), s.url, tmp, secrets)
	path := filepath.Join("..", "..", "docs", "walkthrough.md")
	if *updateWalkthrough {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (regenerate with -update-walkthrough)", path, err)
	}
	if string(want) != got {
		t.Errorf("docs/walkthrough.md is out of date with what the commands print; regenerate it with\n  go test ./internal/app -run TestWalkthrough -update-walkthrough\nand review the diff. First difference near: %q", firstDiff(string(want), got))
	}
	for _, milestone := range []string{"CustomerKeyEnabledFor : EXO, MDEP", "IsEncrypted            : True", "State                       : Registered",
		"Error: RootKeysRevoked", "State                       : Purged", "Error: ManagementObjectNotFound"} {
		if !strings.Contains(got, milestone) {
			t.Errorf("the walkthrough lacks %q", milestone)
		}
	}
	// Every root key the walkthrough creates, the rolled version too, is
	// in the HSM: none is a software key.
	if n := strings.Count(got, "KeyType       : RSA-HSM\n"); n != 3 || strings.Contains(got, "KeyType       : RSA\n") {
		t.Errorf("the walkthrough shows %d RSA-HSM keys, want 3 and no software key", n)
	}
}

// expand replaces {name} in args with vars[name].
func expand(args []string, vars map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "{"+k+"}", v)
		}
		out[i] = a
	}
	return out
}

func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " &") {
			a = `"` + a + `"`
		}
		out[i] = a
	}
	return out
}

var (
	guidRE    = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	versionRE = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	timeRE    = regexp.MustCompile(`\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z|\d{1,2}/\d{1,2}/\d{4} \d{1,2}:\d{2}:\d{2} [AP]M`)
	// Well-known ids stay: they are what the reader types.
	wellKnown = map[string]bool{directory.OnboardingAppID: true, directory.M365DAREAppID: true, directory.ExchangeAppID: true,
		directory.SharePointAppID: true, directory.CLIAppID: true}
)

// normalize replaces what differs between runs with stable placeholders.
func normalize(s, url, tmp string, secrets map[string]string) string {
	for v, p := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, p)
		}
	}
	s = strings.ReplaceAll(s, tmp, "/tmp/backups")
	s = strings.ReplaceAll(s, strings.TrimPrefix(url, "https://localhost"), ":8443")
	ids := map[string]string{}
	s = guidRE.ReplaceAllStringFunc(s, func(g string) string {
		if wellKnown[g] {
			return g
		}
		if _, ok := ids[g]; !ok {
			ids[g] = fmt.Sprintf("<id-%d>", len(ids)+1)
		}
		return ids[g]
	})
	vers := map[string]string{}
	s = versionRE.ReplaceAllStringFunc(s, func(v string) string {
		if _, ok := vers[v]; !ok {
			vers[v] = fmt.Sprintf("<version-%d>", len(vers)+1)
		}
		return vers[v]
	})
	return timeRE.ReplaceAllString(s, "<time>")
}

func firstDiff(a, b string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return b[max(0, i-40):min(len(b), i+40)]
		}
	}
	return "(one is a prefix of the other)"
}
