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
)

var updateWalkthrough = flag.Bool("update-walkthrough", false, "rewrite docs/walkthrough.md from a fresh run")

// step is one command of the walkthrough and the prose before it.
type step struct {
	prose string
	env   string // "operator", "admin" or "admin+sub" (AZURE_SUBSCRIPTION_ID set)
	args  []string
	// after reads values later steps need from the JSON output.
	after func(out string)
}

// TestWalkthrough runs the seed's steps in order with the customerkey CLI
// against a real server and compares the transcript with
// docs/walkthrough.md, so that the document cannot drift from what the
// commands do. Volatile values (ids, secrets, times, ports) are replaced
// by placeholders. Regenerate with: go test ./internal/app -run TestWalkthrough -update-walkthrough
func TestWalkthrough(t *testing.T) {
	clk := &clock{now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := startWith(t, dataDir, app.Options{Now: clk.Now})
	opFile := filepath.Join(dataDir, config.CredentialsFile)
	var tenant tenantCreds
	var subs [2]string
	secrets := map[string]string{}
	envs := map[string]map[string]string{}
	vault := func(i int) string { return fmt.Sprintf("ContosoAKV0%d", i+1) }
	key := func(i int) string { return fmt.Sprintf("ContosoKey%d", i+1) }
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
		i := i
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
		scope := "/subscriptions/{" + sub + "}/resourceGroups/ContosoCK/providers/Microsoft.KeyVault/vaults/" + vault(i)
		steps = append(steps,
			step{prose: fmt.Sprintf("## Key vault %d\n\nIn subscription %d (`AZURE_SUBSCRIPTION_ID`): a resource group and a premium vault; soft delete is on with 90 days.", i+1, i+1),
				env: sub, args: []string{"group", "create", "--name", "ContosoCK", "--location", "westeurope"}},
			step{env: sub, args: []string{"vault", "create", "--resource-group", "ContosoCK", "--name", vault(i), "--location", "westeurope", "--sku", "premium"}},
			step{prose: "Give Exchange Online and M365DataAtRestEncryption wrap, unwrap and get (Key Vault Crypto Service Encryption User), and the admin the right to create keys:",
				env: sub, args: []string{"role", "assignment", "create", "--assignee", directory.ExchangeAppID, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope}},
			step{env: sub, args: []string{"role", "assignment", "create", "--assignee", directory.M365DAREAppID, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope}},
			step{env: sub, args: []string{"role", "assignment", "create", "--assignee", "{adminApp}", "--role", "Key Vault Crypto Officer", "--scope", scope}},
			step{prose: "Add an RSA key and check that it has no expiry:", env: sub, args: []string{"Add-AzKeyVaultKey", "-VaultName", vault(i), "-Name", key(i)}},
			step{prose: "Back it up at once, and keep the file online and offline:", env: sub, args: []string{"Backup-AzKeyVaultKey", "-VaultName", vault(i), "-Name", key(i), "-OutputFile", "{tmp}/" + key(i) + ".blob"}},
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
		step{prose: "When it shows Registered, validate again:", env: "sub0", args: []string{"Get-AzProviderFeature", "-FeatureName", "mandatoryRetentionPeriodEnabled", "-ProviderNamespace", "Microsoft.Resources"}},
		step{env: "admin", args: onboard("MDEP", "Validate")},
		step{prose: "## Enable\n\nEnable for the multi-workload scenario and for Exchange Online:", env: "admin", args: onboard("MDEP", "Enable")},
		step{env: "admin", args: onboard("EXO", "Enable")},
		step{prose: "The tenant now has Customer Key enabled for both:", env: "admin", args: []string{"tenant", "show", "{tenant}"}},
	)

	var doc strings.Builder
	doc.WriteString("# Walkthrough: setting up Customer Key with customerkey\n\n" +
		"The seed's steps, in its order, each as the customerkey command that does it, with the output of a real run.\n" +
		"Ids, secrets and times are placeholders. `internal/app/walkthrough_test.go` runs these same commands\n" +
		"against a real server on every test run and fails when this page and the output part ways.\n\n" +
		"Start the server (`go run ./cmd/customerkey serve`) and point the CLI at it:\n\n" +
		"```sh\nexport CUSTOMERKEY_ENDPOINT=https://localhost:8443 CUSTOMERKEY_CA_FILE=~/.local/share/customerkey/ca.pem\n" +
		"customerkey login --credentials-file ~/.local/share/customerkey/operator.json   # as the operator\n```\n")
	tmp := t.TempDir()
	for n, st := range steps {
		if n == len(steps)-5 { // after Prepare, the registration delay passes
			clk.Advance(2 * time.Minute)
		}
		args := make([]string, len(st.args))
		for i, a := range st.args {
			a = strings.ReplaceAll(a, "{tenant}", tenant.TenantID)
			a = strings.ReplaceAll(a, "{sub0}", subs[0])
			a = strings.ReplaceAll(a, "{sub1}", subs[1])
			a = strings.ReplaceAll(a, "{adminApp}", tenant.AdminApp.ClientID)
			a = strings.ReplaceAll(a, "{tmp}", tmp)
			args[i] = a
		}
		env := map[string]string{"CUSTOMERKEY_ENDPOINT": s.url, "CUSTOMERKEY_CA_FILE": s.CAFile}
		switch st.env {
		case "operator":
			args = append(args, "--credentials-file", opFile)
		default:
			for k, v := range envs["admin"] {
				env[k] = v
			}
			if strings.HasPrefix(st.env, "sub") {
				env["AZURE_SUBSCRIPTION_ID"] = subs[st.env[3]-'0']
			}
		}
		out, err := runCLI(t, env, args...)
		if err != nil {
			out = "Error: " + err.Error() + "\n"
		}
		if st.after != nil {
			st.after(out)
		}
		if st.prose != "" {
			doc.WriteString("\n" + st.prose + "\n")
		}
		shown := strings.Join(quoteArgs(st.args), " ")
		for from, to := range map[string]string{"{tenant}": "$TENANT_ID", "{sub0}": "$SUB1", "{sub1}": "$SUB2", "{adminApp}": "$AZURE_CLIENT_ID", "{tmp}": "/tmp/backups"} {
			shown = strings.ReplaceAll(shown, from, to)
		}
		switch st.env {
		case "operator":
			shown += "   # as the operator"
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
	if !strings.Contains(got, "CustomerKeyEnabledFor : EXO, MDEP") {
		t.Error("the walkthrough does not end with both scenarios enabled")
	}
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
