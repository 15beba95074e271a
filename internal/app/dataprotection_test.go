package app_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/cli"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// The end-to-end proofs of Step 5: data written under Contoso's policies is
// encrypted at rest, survives the loss of one root key, becomes unreadable
// for users within the documented latency when both are revoked (while
// system work goes on with the availability key, audited), survives a key
// roll and a vault outage, and is gone for good after the Exchange purge.
// Everything is done as the seed's people do it: with the customerkey CLI
// and the seed's cmdlet spellings, as Contoso's automation application
// (a Global Administrator), as Megan (a user who owns a mailbox and a site)
// and as the operator.

// dpLifetime is the policy-key-cache-lifetime of these servers, the
// documented revocation latency: short, so that the tests can wait it out.
const dpLifetime = 2 * time.Second

// dpWorkloads are the workload identities whose access to the root keys
// Contoso grants and revokes: Exchange Online (mailbox policies),
// M365DataAtRestEncryption (multi-workload policies, which the encryption
// API uses) and SharePoint Online (geo policies).
var dpWorkloads = []string{directory.ExchangeAppID, directory.M365DAREAppID, directory.SharePointAppID}

// dpStart starts a server on dataDir whose mandatory retention period
// registers at once and whose policy keys are cached for dpLifetime.
func dpStart(t *testing.T, dataDir string) *server {
	t.Helper()
	return startConfigured(t, dataDir, app.Options{}, dpConfig)
}

// dpStartOnBolt is dpStart on the embedded store whatever store the test
// run uses, for the tests that read the store file itself.
func dpStartOnBolt(t *testing.T, dataDir string) *server {
	t.Helper()
	return startConfigured(t, dataDir, app.Options{}, func(c *config.Config) {
		dpConfig(c)
		c.Store = config.StoreBolt
	})
}

// dpConfig is the configuration of dpStart.
func dpConfig(c *config.Config) {
	c.FeatureRegistrationDelay = 0
	c.PolicyKeyCacheLifetime = dpLifetime
}

// dpTenant is Contoso after the seed's setup: onboarded for MDEP and EXO,
// two subscriptions with a premium vault and an RSA root key each, the
// three workloads holding Key Vault Crypto Service Encryption User on both
// vaults, and Megan signed in.
type dpTenant struct {
	s       *server
	c       tenantCreds
	opFile  string
	subs    [2]string
	vaults  [2]string
	keyName [2]string
	keyIDs  [2]string         // versionless, as the seed passes them to New-DataEncryptionPolicy
	admin   map[string]string // the automation application, a Global Administrator
	megan   map[string]string // Megan's saved sign-in
	meganID string
	upn     string
}

// dpOnboard does the seed's setup for Contoso with the CLI.
func dpOnboard(t *testing.T, s *server, dataDir string) *dpTenant {
	t.Helper()
	d := &dpTenant{s: s, opFile: filepath.Join(dataDir, config.CredentialsFile),
		vaults: [2]string{"ContosoAKV01", "ContosoAKV02"}, keyName: [2]string{"ContosoKey1", "ContosoKey2"}}
	dpJSON(t, d.op(t, "tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json"), &d.c)
	d.admin = s.adminEnv(d.c, "")
	for _, appID := range append([]string{directory.OnboardingAppID}, dpWorkloads...) {
		mustCLI(t, d.admin, "New-AzADServicePrincipal", "-ApplicationId", appID)
	}
	for i := range 2 {
		var sub struct{ SubscriptionID string }
		dpJSON(t, d.op(t, "subscription", "create", "--tenant-id", d.c.TenantID, "--name", "Customer Key "+string(rune('A'+i)),
			"--offer", "EnterpriseAgreement", "-o", "json"), &sub)
		d.subs[i] = sub.SubscriptionID
		env := d.sub(i)
		mustCLI(t, env, "group", "create", "--name", "ContosoCK", "--location", "westeurope")
		mustCLI(t, env, "vault", "create", "--resource-group", "ContosoCK", "--name", d.vaults[i], "--location", "westeurope", "--sku", "premium")
		mustCLI(t, env, "role", "assignment", "create", "--assignee", d.c.AdminApp.ClientID, "--role", "Key Vault Crypto Officer", "--scope", d.scope(i))
		for _, w := range dpWorkloads {
			d.grant(t, w, i)
		}
		var k struct {
			Key struct{ KID string }
		}
		dpJSON(t, mustCLI(t, env, "Add-AzKeyVaultKey", "-VaultName", d.vaults[i], "-Name", d.keyName[i], "-o", "json"), &k)
		d.keyIDs[i] = k.Key.KID[:strings.LastIndex(k.Key.KID, "/")]
	}
	for _, step := range []struct{ scenario, mode string }{{"MDEP", "Prepare"}, {"MDEP", "Enable"}, {"EXO", "Enable"}} {
		var r struct{ ValidationResult, EnablementResult string }
		dpJSON(t, mustCLI(t, d.admin, "New-CustomerKeyOnboardingRequest", "-Organization", d.c.TenantID, "-Scenario", step.scenario,
			"-Subscription1", d.subs[0], "-VaultName1", d.vaults[0], "-KeyName1", d.keyName[0],
			"-Subscription2", d.subs[1], "-VaultName2", d.vaults[1], "-KeyName2", d.keyName[1], "-OnboardingMode", step.mode, "-o", "json"), &r)
		if step.mode == "Enable" && r.EnablementResult != "Success" {
			t.Fatalf("onboarding %s %s = %+v", step.scenario, step.mode, r)
		}
	}
	d.upn = "megan@" + d.c.DefaultDomain
	var u struct{ ID, Password string }
	dpJSON(t, mustCLI(t, d.admin, "user", "create", "--upn", d.upn, "--display-name", "Megan Bowen", "-o", "json"), &u)
	d.meganID = u.ID
	d.megan = dpSignIn(t, s, d.c.TenantID, d.upn, u.Password)
	return d
}

// op runs a command as the operator, with the credentials the first start
// wrote.
func (d *dpTenant) op(t *testing.T, args ...string) string {
	t.Helper()
	return mustCLI(t, nil, append(args, "--credentials-file", d.opFile)...)
}

// sub is the admin's environment in subscription i (Set-AzContext).
func (d *dpTenant) sub(i int) map[string]string { return d.s.adminEnv(d.c, d.subs[i]) }

// scope is vault i's resource id, the scope of its role assignments.
func (d *dpTenant) scope(i int) string {
	return "/subscriptions/" + d.subs[i] + "/resourceGroups/ContosoCK/providers/Microsoft.KeyVault/vaults/" + d.vaults[i]
}

// grant gives a workload Key Vault Crypto Service Encryption User on vault i.
func (d *dpTenant) grant(t *testing.T, appID string, i int) {
	t.Helper()
	mustCLI(t, d.sub(i), "role", "assignment", "create", "--assignee", appID, "--role", "Key Vault Crypto Service Encryption User", "--scope", d.scope(i))
}

// revoke removes every role assignment of a workload on vault i: Contoso
// takes the service's access to that root key away.
func (d *dpTenant) revoke(t *testing.T, appID string, i int) {
	t.Helper()
	var ras []struct{ ID string }
	dpJSON(t, mustCLI(t, d.sub(i), "role", "assignment", "list", "--scope", d.scope(i), "--assignee", appID, "-o", "json"), &ras)
	if len(ras) == 0 {
		t.Fatalf("%s holds no role on vault %s to remove", appID, d.vaults[i])
	}
	for _, ra := range ras {
		mustCLI(t, d.sub(i), "role", "assignment", "delete", "--id", ra.ID)
	}
}

// dpJSON decodes a command's -o json output.
func dpJSON(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("decoding %q: %v", out, err)
	}
}

// dpSignIn signs a user in with `customerkey login` (device code) into a
// saved sign-in of its own and returns the environment that uses it.
func dpSignIn(t *testing.T, s *server, tenant, upn, password string) map[string]string {
	t.Helper()
	env := dpUserEnv(t, s)
	if _, err := dpLogin(t, s, env, []string{"login", "--tenant", tenant}, upn, password); err != nil {
		t.Fatalf("login as %s: %v", upn, err)
	}
	return env
}

// dpUserEnv is the environment of a user's saved sign-in, in a file of its
// own.
func dpUserEnv(t *testing.T, s *server) map[string]string {
	return map[string]string{"CUSTOMERKEY_ENDPOINT": s.url, "CUSTOMERKEY_CA_FILE": s.CAFile,
		"CUSTOMERKEY_PROFILE": filepath.Join(t.TempDir(), "profile.json"),
		// An application's credentials in the environment would win over the saved sign-in.
		"AZURE_TENANT_ID": "", "AZURE_CLIENT_ID": "", "AZURE_CLIENT_SECRET": ""}
}

// dpLogin runs a `login` command (args) in env and approves its device
// code on the server's sign-in page as the person would; it returns what
// the command printed.
func dpLogin(t *testing.T, s *server, env map[string]string, args []string, upn, password string) (string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	pr, pw := io.Pipe()
	var out bytes.Buffer
	// Cancelled on every way out, so that the command stops polling for
	// an approval that will not come.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		root := &cobra.Command{Use: "customerkey", SilenceUsage: true, SilenceErrors: true}
		cli.AddCommands(root)
		root.SetOut(&out)
		root.SetErr(pw)
		root.SetArgs(args)
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("reading the login instructions: %w (the command: %v)", err, <-done)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`(https://\S+/devicelogin)\S*.*?\b([A-Z0-9]{4}-[A-Z0-9]{4}|[A-Z0-9]{8,9})\b`).FindStringSubmatch(line)
	if m == nil {
		cancel()
		<-done
		return "", fmt.Errorf("login printed %q; want the sign-in page and a code", line)
	}
	approve(t, s, m[1], m[2], upn, password)
	err = <-done
	return out.String(), err
}

// dpData is what Contoso keeps under its policies, each piece with a secret
// of its own that must never be found in the clear at rest.
type dpData struct {
	exoID, m365ID string // the Exchange (ContosoEXO) and multi-workload (ContosoM365) policies
	site          string
	messages      []dpMessage // in Megan's mailbox, under ContosoEXO
	files         []dpFile    // in the finance site, under the geo's SharePoint policy
	items         []dpItem    // encryption API items of scope crm, under ContosoM365
}

type dpMessage struct{ id, subject, body string }

type dpFile struct{ path, content string }

// dpItem is an item Megan encrypted: the plaintext, and the file that holds
// the ciphertext the encryption API gave her (the service keeps nothing).
type dpItem struct{ plaintext, ciphertext string }

// secrets are the plaintexts data holds.
func (data *dpData) secrets() []string {
	var out []string
	for _, m := range data.messages {
		out = append(out, m.subject, m.body)
	}
	for _, f := range data.files {
		out = append(out, f.content)
	}
	for _, it := range data.items {
		out = append(out, it.plaintext)
	}
	return out
}

// dpSecret is a text no other run or record contains by chance.
func dpSecret(what string) string { return "ck-secret " + what + " " + rand.Text() }

// protect puts Contoso's data under its policies, as the seed goes on
// after onboarding: a multi-workload policy assigned to the tenant (the
// encryption API's scope keys follow it), a mailbox policy for Megan's
// mailbox (Set-Mailbox, then Get-MailboxStatistics until it shows the
// policy), the geo's SharePoint policy, and a message, a file and an
// encryption API item written by Megan.
func (d *dpTenant) protect(t *testing.T) *dpData {
	t.Helper()
	keys := d.keyIDs[0] + "," + d.keyIDs[1]
	data := &dpData{site: "https://contoso.sharepoint.com/sites/finance"}
	var p struct{ ID string }
	dpJSON(t, mustCLI(t, d.admin, "New-M365DataAtRestEncryptionPolicy", "-Name", "ContosoM365", "-AzureKeyIDs", keys, "-o", "json"), &p)
	data.m365ID = p.ID
	mustCLI(t, d.admin, "Set-M365DataAtRestEncryptionPolicyAssignment", "-DataEncryptionPolicy", "ContosoM365")
	dpJSON(t, mustCLI(t, d.admin, "New-DataEncryptionPolicy", "-Name", "ContosoEXO", "-AzureKeyIDs", keys, "-o", "json"), &p)
	data.exoID = p.ID
	mustCLI(t, d.admin, "mailbox", "create", "--primary-smtp-address", d.upn, "--owner", d.upn)
	mustCLI(t, d.admin, "Set-Mailbox", "-Identity", d.upn, "-DataEncryptionPolicy", "ContosoEXO")
	d.waitMailbox(t, data.exoID)

	var versions [2]string
	for i := range 2 {
		var k struct{ Key struct{ KID string } }
		dpJSON(t, mustCLI(t, d.sub(i), "Get-AzKeyVaultKey", "-VaultName", d.vaults[i], "-Name", d.keyName[i], "-o", "json"), &k)
		versions[i] = k.Key.KID[strings.LastIndex(k.Key.KID, "/")+1:]
	}
	mustCLI(t, d.admin, "Register-SPODataEncryptionPolicy",
		"-PrimaryKeyVaultName", d.vaults[0], "-PrimaryKeyName", d.keyName[0], "-PrimaryKeyVersion", versions[0],
		"-SecondaryKeyVaultName", d.vaults[1], "-SecondaryKeyName", d.keyName[1], "-SecondaryKeyVersion", versions[1])
	mustCLI(t, d.admin, "site", "create", "--url", data.site, "--owner", d.upn)
	mustCLI(t, d.admin, "encryption", "scope", "create", "--name", "crm", "--principal", d.meganID)

	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Fatalf("Megan cannot read what she just wrote: %v", errs)
	}
	return data
}

// waitMailbox waits until Get-MailboxStatistics shows Megan's mailbox
// encrypted under policy: the rewrap job applies a change in the
// background.
func (d *dpTenant) waitMailbox(t *testing.T, policy string) {
	t.Helper()
	var st struct {
		DataEncryptionPolicyID string `json:"dataEncryptionPolicyId"`
		IsEncrypted            bool   `json:"isEncrypted"`
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		dpJSON(t, mustCLI(t, d.admin, "Get-MailboxStatistics", "-Identity", d.upn, "-o", "json"), &st)
		if st.DataEncryptionPolicyID == policy && st.IsEncrypted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get-MailboxStatistics = %+v; want IsEncrypted under policy %s", st, policy)
		}
	}
}

// write adds a message, a file and an encryption API item, as Megan.
func (d *dpTenant) write(t *testing.T, data *dpData) {
	t.Helper()
	if err := d.tryWrite(t, data); err != nil {
		t.Fatal(err)
	}
}

// tryWrite is write that reports the first failure instead.
func (d *dpTenant) tryWrite(t *testing.T, data *dpData) error {
	t.Helper()
	n := strconv.Itoa(len(data.messages) + 1)
	m := dpMessage{subject: dpSecret("subject " + n), body: dpSecret("body " + n)}
	out, err := runCLI(t, d.megan, "message", "put", "--mailbox", d.upn, "--subject", m.subject, "--from", d.upn, "--to", d.upn,
		"--body", m.body, "-o", "json")
	if err != nil {
		return fmt.Errorf("putting message %s: %w", n, err)
	}
	var sum struct{ ID string }
	dpJSON(t, out, &sum)
	m.id = sum.ID
	data.messages = append(data.messages, m)

	dir := t.TempDir()
	f := dpFile{path: "Shared Documents/q" + n + ".txt", content: dpSecret("file " + n)}
	local := filepath.Join(dir, "upload")
	if err := os.WriteFile(local, []byte(f.content), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, d.megan, "file", "put", "--site", data.site, "--path", f.path, "--file", local); err != nil {
		return fmt.Errorf("putting file %s: %w", f.path, err)
	}
	data.files = append(data.files, f)

	it := dpItem{plaintext: dpSecret("item " + n), ciphertext: filepath.Join(dir, "item.enc")}
	plain := filepath.Join(dir, "item")
	if err := os.WriteFile(plain, []byte(it.plaintext), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, d.megan, "encryption", "encrypt", "--scope", "crm", "--in", plain, "--out", it.ciphertext); err != nil {
		return fmt.Errorf("encrypting item %s: %w", n, err)
	}
	data.items = append(data.items, it)
	return nil
}

// dpRead names one of Megan's reads; read reports each failure under it.
type dpRead string

const (
	readMail  dpRead = "mail"
	readFiles dpRead = "files"
	readItems dpRead = "items"
)

// read reads everything back as Megan and returns the first failure of
// each workload: an error, or content that differs from what was written.
func (d *dpTenant) read(t *testing.T, data *dpData) map[dpRead]error {
	t.Helper()
	errs := map[dpRead]error{}
	for _, m := range data.messages {
		out, err := runCLI(t, d.megan, "message", "get", "--mailbox", d.upn, "--id", m.id, "-o", "json")
		var got struct{ Subject, Body string }
		if err == nil {
			dpJSON(t, out, &got)
			if got.Subject != m.subject || got.Body != m.body {
				err = fmt.Errorf("message %s reads %q / %q, want %q / %q", m.id, got.Subject, got.Body, m.subject, m.body)
			}
		}
		if err != nil {
			errs[readMail] = err
			break
		}
	}
	for _, f := range data.files {
		out, err := runCLI(t, d.megan, "file", "get", "--site", data.site, "--path", f.path)
		if err == nil && out != f.content {
			err = fmt.Errorf("file %s reads %q, want %q", f.path, out, f.content)
		}
		if err != nil {
			errs[readFiles] = err
			break
		}
	}
	for _, it := range data.items {
		out, err := runCLI(t, d.megan, "encryption", "decrypt", "--scope", "crm", "--in", it.ciphertext)
		if err == nil && out != it.plaintext {
			err = fmt.Errorf("item decrypts to %q, want %q", out, it.plaintext)
		}
		if err != nil {
			errs[readItems] = err
			break
		}
	}
	return errs
}

// dpEvent is an audit record as `audit list -o json` shows it.
type dpEvent struct {
	Action    string `json:"action"`
	Target    string `json:"target"`
	Reason    string `json:"reason"`
	RequestID string `json:"requestId"`
}

// audit returns Contoso's audit records of an action, as its Global
// Administrator reads them.
func (d *dpTenant) audit(t *testing.T, action string) []dpEvent {
	t.Helper()
	var page struct{ Events []dpEvent }
	dpJSON(t, mustCLI(t, d.admin, "audit", "list", "--all", "--top", "1000", "-o", "json"), &page)
	var out []dpEvent
	for _, e := range page.Events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

// readOne reads the first piece of one workload's data, for polling.
func (d *dpTenant) readOne(t *testing.T, data *dpData, r dpRead) error {
	t.Helper()
	one := &dpData{site: data.site}
	switch r {
	case readMail:
		one.messages = data.messages[:1]
	case readFiles:
		one.files = data.files[:1]
	case readItems:
		one.items = data.items[:1]
	}
	return d.read(t, one)[r]
}

// TestDataAtRestHoldsNoPlaintext: what Megan writes under Contoso's
// policies (message subjects and bodies, file content, encryption API
// items) is nowhere in the data directory in the clear: not in the store
// while the server runs, not after it stopped, not in the audit journal.
// The search is shown to work on the same bytes: it finds the tenant id,
// which storage keys hold in the clear.
func TestDataAtRestHoldsNoPlaintext(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := dpStartOnBolt(t, dataDir)
	d := dpOnboard(t, s, dataDir)
	data := d.protect(t)
	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Fatal(errs)
	}
	// The encryption API returns items and keeps nothing; the item itself
	// is ciphertext too.
	for _, it := range data.items {
		b, err := os.ReadFile(it.ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(it.plaintext)) {
			t.Errorf("the encryption API's item holds its plaintext %q", it.plaintext)
		}
	}
	secrets := data.secrets()
	dpNotInDataDir(t, dataDir, d.c.TenantID, secrets...)
	s.stop()
	files := dpNotInDataDir(t, dataDir, d.c.TenantID, secrets...)
	if !slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "audit-journal") }) {
		t.Errorf("the search read %v: not the audit journal", files)
	}
}

// dpSlack is what a measured revocation latency may exceed dpLifetime by:
// the moments between a vault's last answer before the revocation and the
// cache entry made of it, and the clocks of the test.
const dpSlack = 500 * time.Millisecond

// TestRevocationOfOneAndBothRootKeys: Contoso takes the workloads' role
// away on one vault, and Megan notices nothing, also once every cached
// policy key has expired (the other root key serves); then on the other
// vault too, and her reads fail within the documented latency with an
// error that says what happened, while system work (moving her mailbox off
// the revoked policy) still uses the availability key, audited. Giving the
// roles back restores everything.
func TestRevocationOfOneAndBothRootKeys(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	d := dpOnboard(t, dpStart(t, dataDir), dataDir)
	data := d.protect(t)

	// One vault: Test-M365DataAtRestEncryptionPolicy shows the refusal ...
	for _, w := range dpWorkloads {
		d.revoke(t, w, 0)
	}
	out, err := runCLI(t, d.admin, "Test-M365DataAtRestEncryptionPolicy", "-Identity", "ContosoM365", "-o", "json")
	var test struct {
		Results []struct{ Result, Failure string }
	}
	dpJSON(t, out, &test)
	if err == nil || len(test.Results) != 2 || test.Results[0].Failure != "AccessDenied" || test.Results[1].Result != "Success" {
		t.Errorf("Test-M365DataAtRestEncryptionPolicy with vault 1 revoked = %+v, %v; want key 1 AccessDenied, key 2 Success, and a failed command",
			test.Results, err)
	}
	// ... and users read and write on, past the cache lifetime.
	for start := time.Now(); time.Since(start) < dpLifetime*3/2; {
		if errs := d.read(t, data); len(errs) > 0 {
			t.Fatalf("%s after vault 1 was revoked: %v; the other root key must serve", time.Since(start).Round(time.Millisecond), errs)
		}
	}
	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Fatalf("with vault 1 revoked, reading what was just written: %v", errs)
	}

	// Both vaults: every workload's user reads fail within the lifetime.
	workloadOf := map[string]dpRead{directory.ExchangeAppID: readMail, directory.M365DAREAppID: readItems, directory.SharePointAppID: readFiles}
	revoked := map[dpRead]time.Time{}
	for _, w := range dpWorkloads {
		d.revoke(t, w, 1)
		revoked[workloadOf[w]] = time.Now()
	}
	for failed := map[dpRead]bool{}; len(failed) < len(revoked); {
		for r, at := range revoked {
			if failed[r] {
				continue
			}
			// A read that starts past the latency must fail, however long
			// the CLI takes to answer.
			started := time.Now()
			err := d.readOne(t, data, r)
			if err == nil {
				if started.Sub(at) > dpLifetime+dpSlack {
					t.Fatalf("%s: Megan still reads %s after both root keys were revoked; the documented latency is %s", r, started.Sub(at), dpLifetime)
				}
				continue
			}
			failed[r] = true
			t.Logf("%s: user reads fail %s after the second revocation", r, time.Since(at).Round(time.Millisecond))
			if !strings.Contains(err.Error(), "revoked access to both root keys") {
				t.Errorf("%s: a read after the revocation failed with %q; want an error that says the customer revoked both root keys", r, err)
			}
		}
	}
	// They stay failed (no background refresh brings a key back), and so do writes.
	time.Sleep(dpLifetime)
	if errs := d.read(t, data); len(errs) != 3 {
		t.Errorf("a lifetime after the revocation, failed reads = %v; want all three workloads refused", errs)
	}
	if err := d.tryWrite(t, &dpData{site: data.site}); err == nil || !strings.Contains(err.Error(), "revoked access to both root keys") {
		t.Errorf("writing with both root keys revoked err = %v; want the revocation", err)
	}

	// M365DataAtRestEncryption gets its role on vault 2 back: the encryption
	// API works again at once (failures are never cached).
	d.grant(t, directory.M365DAREAppID, 1)
	if err := d.read(t, data)[readItems]; err != nil {
		t.Errorf("with M365DataAtRestEncryption's role restored, decrypting: %v", err)
	}
	// System work: an administrator moves Megan's mailbox off the revoked
	// ContosoEXO (Set-Mailbox -DataEncryptionPolicy $null). The rewrap job
	// unwraps her mailbox key with ContosoEXO's availability key and wraps
	// it under ContosoM365, and she reads her mail again.
	mustCLI(t, d.admin, "Set-Mailbox", "-Identity", d.upn, "-DataEncryptionPolicy", "$null")
	d.waitMailbox(t, data.m365ID)
	if err := d.read(t, data)[readMail]; err != nil {
		t.Errorf("after her mailbox moved to ContosoM365, Megan reads her mail: %v", err)
	}
	// The fallback is in Contoso's audit log; no user request used the availability key.
	fallbacks := d.audit(t, "Fallback to Availability Key")
	var system bool
	for _, e := range fallbacks {
		if strings.Contains(e.Reason, "user request") {
			t.Errorf("a user request used the availability key while the root keys were revoked: %+v", e)
		}
		system = system || e.Target == data.exoID && strings.Contains(e.Reason, "Customer Key Service Encryption") &&
			strings.Contains(e.Reason, "Policy Id "+data.exoID) && strings.Contains(e.Reason, "Scope Key Version Id ") &&
			strings.Contains(e.Reason, "system request")
	}
	if !system {
		t.Errorf("audit records %q = %+v; want the system rewrap's fallback with ContosoEXO's policy id and the scope key version id",
			"Fallback to Availability Key", fallbacks)
	}

	// Contoso gives every role back: Megan's mailbox returns to ContosoEXO
	// and everything reads and writes as before.
	for _, w := range dpWorkloads {
		for i := range 2 {
			if w != directory.M365DAREAppID || i == 0 {
				d.grant(t, w, i)
			}
		}
	}
	mustCLI(t, d.admin, "Set-Mailbox", "-Identity", d.upn, "-DataEncryptionPolicy", "ContosoEXO")
	d.waitMailbox(t, data.exoID)
	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Errorf("with the roles restored: %v", errs)
	}
}

// dpPolicy is a policy as `-o json` shows it.
type dpPolicy struct {
	State           string   `json:"state"`
	KeyVersion      int      `json:"keyVersion"`
	RootKeys        []string `json:"rootKeys"`
	PercentComplete *int     `json:"percentComplete"`
	PrimaryKeyID    string   `json:"primaryKeyId"`
	SecondaryKeyID  string   `json:"secondaryKeyId"`
	PurgeApprovals  []struct {
		ApprovedBy string `json:"approvedBy"`
	} `json:"purgeApprovals"`
}

// TestKeyRoll: Contoso gives both root keys a new version (Add-AzKeyVaultKey
// with the same name, and key rotate) and tells each policy
// (Set-DataEncryptionPolicy -Refresh, Set-M365DataAtRestEncryptionPolicy
// -Refresh, Update-SPODataEncryptionPolicy one key at a time). The policies
// are wrapped under the new versions, Get-MailboxStatistics shows Megan's
// mailbox under its policy, the geo goes Rolling → Registered, and what was
// written before and after the roll reads back.
func TestKeyRoll(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	d := dpOnboard(t, dpStart(t, dataDir), dataDir)
	data := d.protect(t)
	// More sites, so that the geo has progress to report.
	for _, name := range []string{"hr", "legal", "sales"} {
		mustCLI(t, d.admin, "site", "create", "--url", "https://contoso.sharepoint.com/sites/"+name, "--owner", d.upn)
	}

	var fresh [2]string // the new versions' key ids
	var k struct{ Key struct{ KID string } }
	dpJSON(t, mustCLI(t, d.sub(0), "Add-AzKeyVaultKey", "-VaultName", d.vaults[0], "-Name", d.keyName[0], "-o", "json"), &k)
	fresh[0] = k.Key.KID
	dpJSON(t, mustCLI(t, d.sub(1), "key", "rotate", "--vault-name", d.vaults[1], "--name", d.keyName[1], "-o", "json"), &k)
	fresh[1] = k.Key.KID

	for _, refresh := range [][]string{
		{"Set-DataEncryptionPolicy", "-Identity", "ContosoEXO", "-Refresh", "-o", "json"},
		{"Set-M365DataAtRestEncryptionPolicy", "-Identity", "ContosoM365", "-Refresh", "-o", "json"},
	} {
		var p dpPolicy
		dpJSON(t, mustCLI(t, d.admin, refresh...), &p)
		if p.KeyVersion != 2 || len(p.RootKeys) != 2 || p.RootKeys[0] != fresh[0] || p.RootKeys[1] != fresh[1] {
			t.Errorf("%s = key version %d under %v; want version 2 under %v", refresh[0], p.KeyVersion, p.RootKeys, fresh)
		}
	}
	// Get-MailboxStatistics shows the mailbox under ContosoEXO, its key
	// rewrapped onto the new version (IsEncrypted means exactly that).
	d.waitMailbox(t, data.exoID)

	// SharePoint: one key at a time, each Rolling until every site is on
	// the new version, then Registered at 100 percent.
	for i, keyType := range []string{"Primary", "Secondary"} {
		ver := fresh[i][strings.LastIndex(fresh[i], "/")+1:]
		var p dpPolicy
		dpJSON(t, mustCLI(t, d.admin, "Update-SPODataEncryptionPolicy", "-KeyVaultName", d.vaults[i], "-KeyName", d.keyName[i],
			"-KeyVersion", ver, "-KeyType", keyType, "-o", "json"), &p)
		if p.State != "Rolling" && p.State != "Registered" || p.PercentComplete == nil || p.KeyVersion != i+2 {
			t.Errorf("Update-SPODataEncryptionPolicy -KeyType %s = %+v; want key version %d, Rolling or Registered with a percentage", keyType, p, i+2)
		}
		seen := []string{fmt.Sprintf("%s %d%%", p.State, *p.PercentComplete)}
		for deadline := time.Now().Add(20 * time.Second); p.State != "Registered"; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the geo never became Registered after rolling the %s key: %v", keyType, seen)
			}
			dpJSON(t, mustCLI(t, d.admin, "Get-SPODataEncryptionPolicy", "-o", "json"), &p)
			if p.PercentComplete == nil {
				t.Fatalf("Get-SPODataEncryptionPolicy while %s shows no percentage: %+v", p.State, p)
			}
			if st := fmt.Sprintf("%s %d%%", p.State, *p.PercentComplete); st != seen[len(seen)-1] {
				seen = append(seen, st)
			}
		}
		t.Logf("rolling the %s key: %v", keyType, seen)
		if *p.PercentComplete != 100 || []string{p.PrimaryKeyID, p.SecondaryKeyID}[i] != fresh[i] {
			t.Errorf("after rolling the %s key, the geo's policy = %+v; want Registered at 100%% with key %s", keyType, p, fresh[i])
		}
	}
	// The audit log has both transitions, whichever states a poll saw.
	rolled := 0
	for _, e := range d.audit(t, "dep/sharepoint/registered") {
		if strings.HasPrefix(e.Reason, "Rolling -> Registered: all 4 sites of geo NAM") {
			rolled++
		}
	}
	if rolled != 2 {
		t.Errorf("audit records of the geo going Rolling -> Registered with all 4 sites = %d, want 2", rolled)
	}
	var site struct {
		KeyVersion int  `json:"keyVersion"`
		Current    bool `json:"current"`
	}
	dpJSON(t, mustCLI(t, d.admin, "Get-SPOSiteDataEncryptionPolicy", "-Identity", data.site, "-o", "json"), &site)
	if site.KeyVersion != 3 || !site.Current {
		t.Errorf("Get-SPOSiteDataEncryptionPolicy = %+v; want the site on the geo policy's key version 3", site)
	}

	// Old and new data read back.
	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Errorf("after the key roll: %v", errs)
	}
}

// TestExchangePurge: Contoso leaves Exchange's mailbox policy for good. The
// purge request is refused while Exchange Online can still use a root key;
// once its role is gone from both vaults, the request is accepted, the
// operator's automation application approves, the same approver cannot
// approve twice, and a second operator Global Administrator's approval runs
// the purge: the mailboxes under ContosoEXO are gone and stay gone (giving
// the role back restores nothing; no API, the operator's included, finds
// them), the policy shows Purged, and the store keeps no record of them and
// no copy of the policy key or of its availability key, so that not even
// whoever holds the store and its barrier key can recover them. Data under
// other policies is untouched.
func TestExchangePurge(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := dpStartOnBolt(t, dataDir)
	d := dpOnboard(t, s, dataDir)
	data := d.protect(t)
	tid := d.c.TenantID
	// A shared mailbox under ContosoEXO too, and one that follows the tenant's ContosoM365.
	shared, other := "finance@"+d.c.DefaultDomain, "archive@"+d.c.DefaultDomain
	var mbx struct{ ID string }
	dpJSON(t, mustCLI(t, d.admin, "mailbox", "create", "--type", "SharedMailbox", "--primary-smtp-address", shared, "-o", "json"), &mbx)
	sharedID := mbx.ID
	mustCLI(t, d.admin, "Set-Mailbox", "-Identity", shared, "-DataEncryptionPolicy", "ContosoEXO")
	secret := dpSecret("shared body")
	mustCLI(t, d.admin, "message", "put", "--mailbox", shared, "--subject", "Q3", "--from", d.upn, "--to", shared, "--body", secret)
	dpJSON(t, mustCLI(t, d.admin, "mailbox", "create", "--type", "SharedMailbox", "--primary-smtp-address", other, "-o", "json"), &mbx)
	otherID := mbx.ID
	mustCLI(t, d.admin, "message", "put", "--mailbox", other, "--subject", "kept", "--from", d.upn, "--to", other, "--body", "kept")
	dpJSON(t, mustCLI(t, d.admin, "Get-Mailbox", "-Identity", d.upn, "-o", "json"), &mbx)
	meganMbx := mbx.ID

	purge := []string{"Set-DataEncryptionPolicy", "-Identity", "ContosoEXO", "-PermanentDataPurgeRequested",
		"-PermanentDataPurgeReason", "Contoso leaves Exchange Online", "-PermanentDataPurgeContact", "legal@contoso.com", "-o", "json"}
	if _, err := runCLI(t, d.admin, purge...); err == nil || !strings.Contains(err.Error(), "RootKeyNotRevoked") {
		t.Errorf("a purge request while Exchange Online can use the root keys err = %v; want RootKeyNotRevoked (rule V15)", err)
	}
	for i := range 2 {
		d.revoke(t, directory.ExchangeAppID, i)
	}
	var p dpPolicy
	dpJSON(t, mustCLI(t, d.admin, purge...), &p)
	if p.State != "PurgeRequested" {
		t.Fatalf("after the purge request, ContosoEXO is %s; want PurgeRequested", p.State)
	}
	if _, err := runCLI(t, d.admin, "Set-Mailbox", "-Identity", other, "-DataEncryptionPolicy", "ContosoEXO"); err == nil || !strings.Contains(err.Error(), "PolicyPurgeRequested") {
		t.Errorf("assigning a policy whose purge is requested err = %v; want a refusal (rule V16)", err)
	}

	// Two distinct operator Global Administrators approve.
	approve := []string{"exchange-policy", "approve-purge", "--tenant", tid, "--identity", "ContosoEXO", "-o", "json"}
	dpJSON(t, d.op(t, approve...), &p)
	if p.State != "PurgeRequested" || len(p.PurgeApprovals) != 1 {
		t.Fatalf("after one approval, ContosoEXO = %+v; want PurgeRequested with one approval", p)
	}
	if _, err := runCLI(t, nil, append(approve, "--credentials-file", d.opFile)...); err == nil || !strings.Contains(err.Error(), "different operator administrator") {
		t.Errorf("the same operator's second approval err = %v; want a refusal that asks for another administrator", err)
	}
	if _, err := runCLI(t, d.admin, approve...); err == nil || !strings.Contains(err.Error(), "only the operator's Global Administrators") {
		t.Errorf("Contoso's own Global Administrator's approval err = %v; want a refusal: only the operator's may approve", err)
	}
	approverUPN := "approver@operator.onmicrosoft.com"
	var u struct{ Password string }
	dpJSON(t, d.op(t, "user", "create", "--upn", approverUPN, "-o", "json"), &u)
	d.op(t, "directory-role", "assign", "--role", "Global Administrator", "--user", approverUPN)
	approver := dpSignIn(t, s, s.Credentials.TenantID, approverUPN, u.Password)
	dpJSON(t, mustCLI(t, approver, approve...), &p)
	if p.State != "Purged" || len(p.PurgeApprovals) != 2 || p.PurgeApprovals[1].ApprovedBy != approverUPN {
		t.Fatalf("after the second approval, ContosoEXO = %+v; want Purged with two approvals, the second by %s", p, approverUPN)
	}

	// The mailboxes are gone, and giving Exchange its roles back changes nothing.
	for i := range 2 {
		d.grant(t, directory.ExchangeAppID, i)
	}
	dpJSON(t, mustCLI(t, d.admin, "Get-DataEncryptionPolicy", "-Identity", data.exoID, "-o", "json"), &p)
	if p.State != "Purged" {
		t.Errorf("Get-DataEncryptionPolicy after the purge = %s; want Purged", p.State)
	}
	for _, addr := range []string{d.upn, shared} {
		if out, err := runCLI(t, d.admin, "Get-Mailbox", "-Identity", addr); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Get-Mailbox %s after the purge = %q, %v; want not found", addr, out, err)
		}
		if out, err := runCLI(t, nil, "message", "list", "--tenant", tid, "--mailbox", addr, "--credentials-file", d.opFile); err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("the operator lists %s's messages after the purge: %q, %v; want not found", addr, out, err)
		}
	}
	if err := d.read(t, data)[readMail]; err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Megan reading her purged mail err = %v; want not found", err)
	}
	if out := mustCLI(t, d.admin, "message", "list", "--mailbox", other, "-o", "json"); !strings.Contains(out, `"kept"`) {
		t.Errorf("the mailbox under ContosoM365 after the purge lists %q; want its message", out)
	}
	gone := []string{secret}
	for _, m := range data.messages {
		gone = append(gone, m.subject, m.body)
	}
	data.messages = nil
	if errs := d.read(t, data); len(errs) > 0 {
		t.Errorf("Megan's files and items, under other policies, after the purge: %v", errs)
	}

	// The store keeps no record of the purged mailboxes and no wrapped copy
	// of the policy key or its availability key; the policy is a tombstone.
	s.stop()
	keys := dpStoreKeys(t, dataDir)
	for _, k := range keys {
		for _, purged := range []string{meganMbx, sharedID, "dep/keys/" + tid + "/" + data.exoID + "/", "dep/ak/" + tid + "/" + data.exoID} {
			if strings.Contains(k, purged) {
				t.Errorf("after the purge the store still holds %s", k)
			}
		}
	}
	for _, kept := range []string{"dep/policy/" + tid + "/" + data.exoID, "mail/mbx/" + tid + "/" + otherID} {
		if !slices.Contains(keys, kept) {
			t.Errorf("the store lacks %s; the listing is not of this store, or the purge took too much", kept)
		}
	}
	dpNotInDataDir(t, dataDir, tid, gone...)
}

// dpStoreKeys lists every key of the (stopped) server's store. The barrier
// encrypts values, not keys, so the raw store lists them without the
// barrier key.
func dpStoreKeys(t *testing.T, dataDir string) []string {
	t.Helper()
	b, err := bolt.Open(filepath.Join(dataDir, "customerkey.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var keys []string
	err = b.View(t.Context(), func(tx storage.Tx) error {
		entries, err := tx.List("", "", 0)
		for _, e := range entries {
			keys = append(keys, e.Key)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// dpNeedles are the forms a secret could take in a file if it were stored
// in the clear: as is, in base64 (standard, as encoding/json writes bytes,
// and URL-safe; at each of the three alignments a value can start at) and
// in hex.
func dpNeedles(secret string) [][]byte {
	out := [][]byte{[]byte(secret), []byte(hex.EncodeToString([]byte(secret)))}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := range 3 {
			b := enc.EncodeToString(append(make([]byte, pad), secret...))
			// The first four characters may mix in what precedes the
			// value, the last four what follows it.
			out = append(out, []byte(b[4:len(b)-4]))
		}
	}
	return out
}

// dpNotInDataDir reads every file under dataDir byte for byte (the store,
// the audit journal, the barrier key, the CA, operator.json) and fails the
// test if any secret is in one. control must be found in the store: the
// proof that the search sees what is on disk. It returns the files read.
func dpNotInDataDir(t *testing.T, dataDir, control string, secrets ...string) []string {
	t.Helper()
	var files []string
	controlFound := false
	err := filepath.WalkDir(dataDir, func(path string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, path)
		for _, sec := range secrets {
			for _, n := range dpNeedles(sec) {
				if bytes.Contains(b, n) {
					t.Errorf("%s holds %q in the clear (as %q)", path, sec, n)
				}
			}
		}
		controlFound = controlFound || bytes.Contains(b, []byte(control))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !controlFound {
		t.Errorf("no file under %s holds %q, which the store keeps in the clear: the search does not see what is on disk", dataDir, control)
	}
	return files
}

// dpRestart stops s and serves its data directory again on the same port,
// tuned by tune: the port is part of every vault's URI, and so of every
// root key id the policies keep, which a server on another port would not
// serve. It is startConfigured with a given listener.
func dpRestart(t *testing.T, s *server, dataDir string, tune func(*config.Config)) *server {
	t.Helper()
	s.stop()
	ln, err := net.Listen("tcp", "127.0.0.1:"+s.port())
	if err != nil {
		t.Fatalf("listening on the port of the stopped server: %v", err)
	}
	cfg := config.Default()
	cfg.DataDir, cfg.Listen, cfg.PublicURL = dataDir, ln.Addr().String(), s.url
	cfg.Store = testStore(t, dataDir)
	dpConfig(&cfg)
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := app.Options{KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}, DeviceCodeInterval: time.Second}
	srv, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler), o)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("app.Open() on restart err = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	next := &server{Server: srv, url: s.url, client: s.client}
	var once bool
	next.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() after shutdown err = %v, want nil", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close() err = %v", err)
		}
	}
	t.Cleanup(next.stop)
	waitHealthy(t, next)
	return next
}

// TestVaultOutage: both of Contoso's vaults stop answering (Azure's
// throttling, or an outage, as the service sees it: 429s with a long
// Retry-After, which the key provider classifies as Transient, exactly as
// it does 5xx answers and unreachable hosts). Simulated by restarting the
// server with vault-requests-per-second so low that, once the one request
// of each vault's burst is spent, every call of the workloads is refused
// for the rest of the run; the restart also empties the policy key cache.
// Exchange and the encryption API fall back to the availability keys and
// say so in the audit log, with the request ids; SharePoint, which never
// does, refuses cleanly and writes nothing; and when the vaults answer
// again (another restart, without the limit) everything written before and
// during the outage reads back.
func TestVaultOutage(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := dpStart(t, dataDir)
	d := dpOnboard(t, s, dataDir)
	data := d.protect(t)

	s = dpRestart(t, s, dataDir, func(c *config.Config) { c.VaultRequestsPerSecond = 0.001 })
	d.s = s
	for i := range 2 { // spend each vault's burst
		mustCLI(t, d.sub(i), "Get-AzKeyVaultKey", "-VaultName", d.vaults[i], "-Name", d.keyName[i])
	}
	if _, err := runCLI(t, d.sub(0), "Get-AzKeyVaultKey", "-VaultName", d.vaults[0], "-Name", d.keyName[0]); err == nil ||
		!strings.Contains(err.Error(), "Throttled") {
		t.Fatalf("a vault past its limit answered %v; want Throttled, or this test simulates no outage", err)
	}

	errs := d.read(t, data)
	if errs[readMail] != nil || errs[readItems] != nil {
		t.Errorf("with the vaults down, Exchange and the encryption API must fall back to the availability key: %v", errs)
	}
	if err := errs[readFiles]; err == nil || !strings.Contains(err.Error(), "RootKeysUnavailable") || !strings.Contains(err.Error(), "try again later") {
		t.Errorf("with the vaults down, reading a file err = %v; want RootKeysUnavailable, try again later", err)
	}
	// Writes: a message goes in; a file is refused whole.
	n := len(data.messages)
	err := d.tryWrite(t, data)
	if len(data.messages) != n+1 || err == nil || !strings.Contains(err.Error(), "RootKeysUnavailable") {
		t.Errorf("writing with the vaults down: %d new messages, err %v; want the message stored and the file refused", len(data.messages)-n, err)
	}
	failedFile := "Shared Documents/q" + strconv.Itoa(n+1) + ".txt"

	fallbacks := d.audit(t, "Fallback to Availability Key")
	used := map[string]bool{}
	for _, e := range fallbacks {
		if e.RequestID != "" && strings.Contains(e.Reason, "user request; root keys unavailable") &&
			strings.Contains(e.Reason, "Policy Id "+e.Target) && strings.Contains(e.Reason, "Transient") {
			used[e.Target] = true
		}
	}
	if !used[data.exoID] || !used[data.m365ID] {
		t.Errorf("audit records %q = %+v; want user requests' fallbacks of ContosoEXO and ContosoM365, with request ids", "Fallback to Availability Key", fallbacks)
	}

	// The vaults answer again.
	s = dpRestart(t, s, dataDir, nil)
	d.s = s
	if errs := d.read(t, data); len(errs) > 0 {
		t.Errorf("after the outage, reading what was written before and during it: %v", errs)
	}
	if out, err := runCLI(t, d.megan, "file", "get", "--site", data.site, "--path", failedFile); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("the file refused during the outage, after it: %q, %v; want not found", out, err)
	}
	d.write(t, data)
	if errs := d.read(t, data); len(errs) > 0 {
		t.Errorf("after the outage: %v", errs)
	}
	d.waitMailbox(t, data.exoID)
	var p dpPolicy
	dpJSON(t, mustCLI(t, d.admin, "Get-SPODataEncryptionPolicy", "-o", "json"), &p)
	if p.State != "Registered" {
		t.Errorf("the geo's policy after the outage is %s; want Registered", p.State)
	}
}

// TestRecoveryWhenBothRootKeysAreLost: Contoso loses both root keys of its
// Exchange policy (here: Exchange's access to both vaults is gone and
// cannot come back). Users cannot read their mail; the operator puts the
// policy into recovery (break-glass, spec §d.7) and they read it again
// from the availability key, every use audited; Contoso moves the mailbox
// to another policy; the operator ends the recovery.
func TestRecoveryWhenBothRootKeysAreLost(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	d := dpOnboard(t, dpStart(t, dataDir), dataDir)
	data := d.protect(t)
	d.revoke(t, directory.ExchangeAppID, 0)
	d.revoke(t, directory.ExchangeAppID, 1)
	time.Sleep(dpLifetime + dpSlack)
	if err := d.readOne(t, data, readMail); err == nil || !strings.Contains(err.Error(), "revoked access to both root keys") {
		t.Fatalf("reading mail with both root keys gone: err = %v, want the revocation", err)
	}

	// Only the operator may start a recovery.
	if out, err := runCLI(t, d.admin, "exchange-policy", "start-recovery", "--tenant", d.c.TenantID, "--identity", "ContosoEXO",
		"--reason", "lost both vaults"); err == nil {
		t.Fatalf("Contoso's admin started a recovery: %s", out)
	}
	var p struct {
		Recovery *struct{ Reason, By, Since string } `json:"recovery"`
	}
	dpJSON(t, d.op(t, "exchange-policy", "start-recovery", "--tenant", d.c.TenantID, "--identity", "ContosoEXO",
		"--reason", "Contoso lost both key vaults (ticket 4711)", "-o", "json"), &p)
	if p.Recovery == nil || !strings.Contains(p.Recovery.Reason, "ticket 4711") || p.Recovery.By == "" {
		t.Fatalf("start-recovery answered recovery = %+v", p.Recovery)
	}
	before := len(d.audit(t, "Fallback to Availability Key"))
	if err := d.readOne(t, data, readMail); err != nil {
		t.Fatalf("reading mail in recovery: %v", err)
	}
	var inRecovery int
	for _, ev := range d.audit(t, "Fallback to Availability Key")[before:] {
		if strings.Contains(ev.Reason, "in recovery") && strings.Contains(ev.Reason, "user request") && ev.RequestID != "" {
			inRecovery++
		}
	}
	if inRecovery == 0 {
		t.Errorf("no audited availability-key use for a user request in recovery")
	}

	// Contoso moves the mailbox to its multi-workload policy; the rewrap
	// reads the old key with the availability key. Then the operator ends
	// the recovery and the mail stays readable under the new policy.
	mustCLI(t, d.admin, "Set-Mailbox", "-Identity", d.upn, "-DataEncryptionPolicy", "$null")
	d.waitMailbox(t, data.m365ID)
	p.Recovery = nil
	dpJSON(t, d.op(t, "exchange-policy", "end-recovery", "--tenant", d.c.TenantID, "--identity", "ContosoEXO", "-o", "json"), &p)
	if p.Recovery != nil {
		t.Errorf("end-recovery answered recovery = %+v, want none", *p.Recovery)
	}
	if err := d.readOne(t, data, readMail); err != nil {
		t.Errorf("reading mail after the move to the multi-workload policy: %v", err)
	}
}
