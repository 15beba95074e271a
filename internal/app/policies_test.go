package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
)

// ckClient calls the control API with one principal's token.
type ckClient struct {
	t    *testing.T
	s    *server
	tok  string
	base string // /customerkey/v1/tenants/{tenant}
}

// answer is a response of the control API: its status, its body and, for
// errors, the code and message of {"error":{…}}.
type answer struct {
	status        int
	body          []byte
	header        http.Header
	code, message string
}

// json decodes the body into v, failing the test when it is not JSON.
func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d %q is not JSON: %v", a.status, a.body, err)
	}
}

func (c ckClient) raw(method, path, contentType string, body []byte) answer {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.s.url+c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok)
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.s.client.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if a.body, err = io.ReadAll(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	if a.status >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(a.body, &e)
		a.code, a.message = e.Error.Code, e.Error.Message
	}
	return a
}

// call sends v as JSON (nil for no body).
func (c ckClient) call(method, path string, v any) answer {
	c.t.Helper()
	if v == nil {
		return c.raw(method, path, "", nil)
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.raw(method, path, "application/json", b)
}

// must is call that fails the test unless the status is want, and decodes
// the answer into out (when not nil).
func (c ckClient) must(want int, method, path string, v, out any) answer {
	c.t.Helper()
	a := c.call(method, path, v)
	if a.status != want {
		c.t.Fatalf("%s %s = %d %s; want %d", method, path, a.status, a.body, want)
	}
	if out != nil {
		a.json(c.t, out)
	}
	return a
}

// refused checks that a request is refused with status and an error whose
// code is code (when not empty) and whose message mentions each of
// mentions.
func (c ckClient) refused(what string, a answer, status int, code string, mentions ...string) {
	c.t.Helper()
	if a.status != status || (code != "" && a.code != code) {
		c.t.Errorf("%s = %d %s %q; want %d %s", what, a.status, a.code, a.message, status, code)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(a.message, m) {
			c.t.Errorf("%s: message %q does not mention %q", what, a.message, m)
		}
	}
}

// policyJSON is a policy answer as the tests read it.
type policyJSON struct {
	ID                          string   `json:"id"`
	Name                        string   `json:"name"`
	Kind                        string   `json:"kind"`
	Enabled                     bool     `json:"enabled"`
	AzureKeyIDs                 []string `json:"azureKeyIds"`
	RootKeys                    []string `json:"rootKeys"`
	KeyVersion                  int      `json:"keyVersion"`
	State                       string   `json:"state"`
	CreatedTime                 string   `json:"createdTime"`
	PermanentDataPurgeRequested *bool    `json:"permanentDataPurgeRequested"`
	PurgeApprovals              []struct {
		ApprovedBy string `json:"approvedBy"`
	} `json:"purgeApprovals"`
	// SharePoint
	Geo             string `json:"geo"`
	PrimaryKeyID    string `json:"primaryKeyId"`
	SecondaryKeyID  string `json:"secondaryKeyId"`
	PercentComplete *int   `json:"percentComplete"`
}

type statsJSON struct {
	DataEncryptionPolicyID string `json:"dataEncryptionPolicyId"`
	IsEncrypted            bool   `json:"isEncrypted"`
	ItemCount              int    `json:"itemCount"`
	TotalItemSize          int64  `json:"totalItemSize"`
}

// eventually polls cond until it holds or 20 seconds pass: rewraps and
// key rolls run in the background.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 20s", what, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ckTenant is a tenant made ready for Customer Key: two subscriptions with
// the retention period registered, a vault in each with a root key that
// the workloads may use, a third vault where they may not, and both
// scenarios enabled.
type ckTenant struct {
	c      tenantCreds
	subs   [2]string
	vaults [3]string
	keys   [3]string // versionless root key identifiers, one per vault
	admin  ckClient
}

func setUpCustomerKey(t *testing.T, s *server, clk *clock, opFile string) ckTenant {
	t.Helper()
	run := func(env map[string]string, args ...string) string {
		t.Helper()
		return mustCLI(t, env, args...)
	}
	var ck ckTenant
	if err := json.Unmarshal([]byte(run(nil, "tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json",
		"--credentials-file", opFile)), &ck.c); err != nil {
		t.Fatal(err)
	}
	c := ck.c
	admin := s.adminEnv(c, "")
	workloads := []string{directory.M365DAREAppID, directory.ExchangeAppID, directory.SharePointAppID}
	for _, a := range append([]string{directory.OnboardingAppID}, workloads...) {
		run(admin, "New-AzADServicePrincipal", "-ApplicationId", a)
	}
	keyID := func(env map[string]string, vault, name string, extra ...string) string {
		t.Helper()
		var k struct{ Key struct{ Kid string } }
		out := run(env, append([]string{"key", "create", "--vault-name", vault, "--name", name, "-o", "json"}, extra...)...)
		if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key.Kid == "" {
			t.Fatalf("key create printed %q (%v)", out, err)
		}
		return k.Key.Kid[:strings.LastIndex(k.Key.Kid, "/")]
	}
	for i := range 3 {
		if i < 2 {
			var out struct{ SubscriptionID string }
			_ = json.Unmarshal([]byte(run(nil, "subscription", "create", "--tenant-id", c.TenantID, "--name", fmt.Sprintf("CK %d", i+1),
				"--offer", "EnterpriseAgreement", "-o", "json", "--credentials-file", opFile)), &out)
			ck.subs[i] = out.SubscriptionID
		}
		sub := ck.subs[min(i, 1)]
		env := s.adminEnv(c, sub)
		ck.vaults[i] = fmt.Sprintf("contosoakv0%d", i+1)
		if i < 2 {
			run(env, "group", "create", "--name", "ck", "--location", "westeurope")
		}
		run(env, "vault", "create", "--resource-group", "ck", "--name", ck.vaults[i], "--location", "westeurope")
		scope := "/subscriptions/" + sub + "/resourceGroups/ck/providers/Microsoft.KeyVault/vaults/" + ck.vaults[i]
		run(env, "role", "assignment", "create", "--assignee", c.AdminApp.ClientID, "--role", "Key Vault Crypto Officer", "--scope", scope)
		if i < 2 { // the third vault is one the workloads were never given
			for _, w := range workloads {
				run(env, "role", "assignment", "create", "--assignee", w, "--role", "Key Vault Crypto Service Encryption User", "--scope", scope)
			}
		}
		ck.keys[i] = keyID(env, ck.vaults[i], fmt.Sprintf("contosokey%d", i+1))
	}
	onboard := func(scenario, mode string) map[string]any {
		t.Helper()
		var r map[string]any
		_ = json.Unmarshal([]byte(run(admin, "New-CustomerKeyOnboardingRequest", "-Organization", c.TenantID, "-Scenario", scenario,
			"-Subscription1", ck.subs[0], "-VaultName1", ck.vaults[0], "-KeyName1", "contosokey1",
			"-Subscription2", ck.subs[1], "-VaultName2", ck.vaults[1], "-KeyName2", "contosokey2", "-OnboardingMode", mode, "-o", "json")), &r)
		return r
	}
	onboard("MDEP", "Prepare")
	clk.Advance(2 * time.Minute) // the mandatory retention period registers
	for _, sc := range []string{"MDEP", "EXO"} {
		if r := onboard(sc, "Enable"); r["EnablementResult"] != "Success" {
			t.Fatalf("Enable %s = %v", sc, r)
		}
	}
	tok, err := token(context.Background(), s.credential(t, c.TenantID, c.AdminApp.ClientID, c.AdminApp.ClientSecret), armScope)
	if err != nil {
		t.Fatal(err)
	}
	ck.admin = ckClient{t: t, s: s, tok: tok, base: "/customerkey/v1/tenants/" + c.TenantID}
	return ck
}

// TestPoliciesEndToEnd drives the data encryption policies and the
// workloads they protect through the documented routes of a real server:
// multi-workload, Exchange and SharePoint policies made live with two
// vaults' root keys, the refusals of keys and policies that cannot be
// used, the tenant's assignment, mailboxes and their messages, sites and
// their files, the rewraps that follow a change of policy or key, and the
// purge request and approvals.
func TestPoliciesEndToEnd(t *testing.T) {
	clk := &clock{now: time.Now()}
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := startWith(t, dataDir, app.Options{Now: clk.Now})
	opFile := filepath.Join(dataDir, config.CredentialsFile)
	ck := setUpCustomerKey(t, s, clk, opFile)
	c, api := ck.c, ck.admin
	env0 := s.adminEnv(c, ck.subs[0])
	k1, k2, k3 := ck.keys[0], ck.keys[1], ck.keys[2]
	ctx := context.Background()
	opTok, err := token(ctx, s.credential(t, s.Credentials.TenantID, s.Credentials.ClientID, s.Credentials.ClientSecret), armScope)
	if err != nil {
		t.Fatal(err)
	}
	operator := ckClient{t: t, s: s, tok: opTok, base: api.base}
	fab := s.newTenant(t, "Fabrikam")
	fabTok, err := token(ctx, s.credential(t, fab.TenantID, fab.AdminApp.ClientID, fab.AdminApp.ClientSecret), armScope)
	if err != nil {
		t.Fatal(err)
	}
	fabrikam := ckClient{t: t, s: s, tok: fabTok, base: api.base}

	// A mailbox made before any customer policy: service-managed keys.
	var info struct{ ID, PrimarySmtpAddress string }
	api.must(201, "POST", "/mailboxes", map[string]string{"type": "SharedMailbox", "primarySmtpAddress": "info@" + c.DefaultDomain,
		"displayName": "Info", "owner": ""}, &info)
	var st statsJSON
	api.must(200, "GET", "/mailboxes/"+url.PathEscape(info.PrimarySmtpAddress)+"/statistics", nil, &st)
	if st.IsEncrypted || st.DataEncryptionPolicyID == "" {
		t.Errorf("statistics before any policy = %+v; want a service-managed policy, not encrypted", st)
	}
	serviceManaged := st.DataEncryptionPolicyID

	// A multi-workload policy with two vaults' keys: wrapped live, as the
	// workload, under each key's current version.
	var m365 policyJSON
	a := api.must(201, "POST", "/m365-policies", map[string]any{"name": "Contoso DEP", "azureKeyIds": []string{k1, k2},
		"description": "all workloads", "enabled": true}, &m365)
	if m365.Kind != "M365DataAtRest" || m365.State != "Active" || m365.KeyVersion != 1 || !m365.Enabled ||
		len(m365.RootKeys) != 2 || !strings.HasPrefix(m365.RootKeys[0], k1+"/") || !strings.HasPrefix(m365.RootKeys[1], k2+"/") ||
		m365.PermanentDataPurgeRequested != nil {
		t.Errorf("created policy = %+v", m365)
	}
	if _, err := time.Parse(time.RFC3339, m365.CreatedTime); err != nil || !strings.HasSuffix(m365.CreatedTime, "Z") {
		t.Errorf("createdTime = %q; want RFC 3339 in UTC", m365.CreatedTime)
	}
	if loc := a.header.Get("Location"); !strings.HasSuffix(loc, "/m365-policies/"+m365.ID) {
		t.Errorf("Location = %q", loc)
	}
	for _, secretField := range []string{"wrapped", "value", "availab"} {
		if bytes.Contains(bytes.ToLower(a.body), []byte(secretField)) {
			t.Errorf("the policy answer has a %q field: %s", secretField, a.body)
		}
	}
	// By name, by id, and with the tenant named by its domain.
	var got policyJSON
	api.must(200, "GET", "/m365-policies/"+url.PathEscape("Contoso DEP"), nil, &got)
	if got.ID != m365.ID {
		t.Errorf("GET by name = %s, want %s", got.ID, m365.ID)
	}
	byDomain := ckClient{t: t, s: s, tok: api.tok, base: "/customerkey/v1/tenants/" + c.DefaultDomain}
	byDomain.must(200, "GET", "/m365-policies/"+m365.ID, nil, &got)
	api.refused("GET an unknown policy", api.call("GET", "/m365-policies/nosuch", nil), 404, "PolicyNotFound", "nosuch")

	// Keys that cannot protect a policy.
	newKey := func(name string, extra ...string) string {
		var k struct{ Key struct{ Kid string } }
		out := mustCLI(t, env0, append([]string{"key", "create", "--vault-name", ck.vaults[0], "--name", name, "-o", "json"}, extra...)...)
		_ = json.Unmarshal([]byte(out), &k)
		return k.Key.Kid[:strings.LastIndex(k.Key.Kid, "/")]
	}
	ecKey := newKey("eckey", "--kty", "EC")
	disabledKey := newKey("disabledkey", "--disabled")
	expiredKey := newKey("expiredkey", "--expires", clk.Now().Add(-24*time.Hour).UTC().Format("2006-01-02"))
	sameVault := ck.keys[0][:strings.LastIndex(ck.keys[0], "/")] + "/otherkey"
	for _, tc := range []struct {
		name     string
		keys     []string
		status   int
		code     string
		mentions []string
	}{
		{"one key", []string{k1}, 400, "", []string{"2 to 4"}},
		{"two keys in one vault", []string{k1, sameVault}, 400, "KeysInSameVault", []string{ck.vaults[0]}},
		{"an EC key", []string{ecKey, k2}, 400, "RootKeyNotAccepted", []string{"RSA"}},
		{"a disabled key", []string{disabledKey, k2}, 400, "", []string{"disabled"}},
		{"an expired key", []string{expiredKey, k2}, 400, "", []string{"expired"}},
		{"a key the workload may not use", []string{k1, k3}, 400, "RootKeyUnusable", []string{k3}},
		{"a versioned key", []string{m365.RootKeys[0], k2}, 400, "", []string{"without the version"}},
	} {
		a := api.call("POST", "/m365-policies", map[string]any{"name": "Bad " + tc.name, "azureKeyIds": tc.keys})
		api.refused("create with "+tc.name, a, tc.status, tc.code, tc.mentions...)
	}
	api.refused("a second policy of the same name", api.call("POST", "/m365-policies", map[string]any{"name": "contoso dep", "azureKeyIds": []string{k1, k2}}),
		409, "PolicyNameInUse")
	api.refused("an unknown field", api.call("POST", "/m365-policies", map[string]any{"name": "x", "azureKeyIds": []string{k1, k2}, "keyUris": []string{}}),
		400, "", "keyUris")
	api.refused("another tenant's caller", fabrikam.call("GET", "/m365-policies", nil), 403, "AuthorizationFailed")
	api.refused("the operator", operator.call("GET", "/m365-policies", nil), 403, "AuthorizationFailed")

	// Testing the policy: both keys pass, as the workload.
	var test struct {
		Success bool
		Results []struct{ KeyURI, KeyID, Result, Failure string }
	}
	api.must(200, "POST", "/m365-policies/"+m365.ID+"/test", nil, &test)
	if !test.Success || len(test.Results) != 2 || test.Results[0].Result != "Success" || test.Results[1].KeyURI != k2 {
		t.Errorf("test = %+v", test)
	}

	// Assignment: none, then a disabled policy is refused, then the policy.
	var asg struct{ DataEncryptionPolicy *policyJSON }
	api.must(200, "GET", "/m365-policy-assignment", nil, &asg)
	if asg.DataEncryptionPolicy != nil {
		t.Errorf("assignment before any = %+v, want null", asg.DataEncryptionPolicy)
	}
	api.must(201, "POST", "/m365-policies", map[string]any{"name": "Spare DEP", "azureKeyIds": []string{k1, k2}, "enabled": false}, nil)
	api.refused("assigning a disabled policy", api.call("PUT", "/m365-policy-assignment", map[string]string{"dataEncryptionPolicy": "Spare DEP"}),
		400, "PolicyDisabled")
	api.must(200, "PUT", "/m365-policy-assignment", map[string]string{"dataEncryptionPolicy": "Contoso DEP"}, &asg)
	if asg.DataEncryptionPolicy == nil || asg.DataEncryptionPolicy.ID != m365.ID {
		t.Fatalf("assignment = %+v", asg.DataEncryptionPolicy)
	}
	api.refused("disabling the assigned policy", api.call("PATCH", "/m365-policies/"+m365.ID, map[string]any{"enabled": false}), 400, "PolicyAssigned")
	api.refused("a PATCH with nothing", api.call("PATCH", "/m365-policies/"+m365.ID, map[string]any{}), 400, "", "nothing to change")
	api.must(200, "PATCH", "/m365-policies/Spare%20DEP", map[string]any{"description": "kept for later"}, nil)

	// The mailbox made before moves onto the assigned policy.
	statsOf := func(mbx string) statsJSON {
		var st statsJSON
		api.must(200, "GET", "/mailboxes/"+url.PathEscape(mbx)+"/statistics", nil, &st)
		return st
	}
	eventually(t, "the mailbox under the assigned policy", func() (bool, string) {
		st := statsOf(info.ID)
		return st.DataEncryptionPolicyID == m365.ID && st.IsEncrypted, fmt.Sprintf("%+v", st)
	})

	// Exchange policies, up to the limit of 50.
	var exo, purgeable policyJSON
	api.must(201, "POST", "/exchange-policies", map[string]any{"name": "EXO DEP", "azureKeyIds": []string{k1, k2}}, &exo)
	if exo.Kind != "Exchange" || exo.PermanentDataPurgeRequested == nil || *exo.PermanentDataPurgeRequested || exo.PurgeApprovals == nil {
		t.Errorf("exchange policy = %+v; want the purge fields", exo)
	}
	api.must(201, "POST", "/exchange-policies", map[string]any{"name": "EXO Purge", "azureKeyIds": []string{k1, k2}}, &purgeable)
	for i := 3; i <= 50; i++ {
		api.must(201, "POST", "/exchange-policies", map[string]any{"name": fmt.Sprintf("EXO %02d", i), "azureKeyIds": []string{k1, k2}}, nil)
	}
	api.refused("a 51st Exchange policy", api.call("POST", "/exchange-policies", map[string]any{"name": "EXO 51", "azureKeyIds": []string{k1, k2}}),
		400, "PolicyLimitReached", "50")
	var list struct{ Value []policyJSON }
	api.must(200, "GET", "/exchange-policies", nil, &list)
	if len(list.Value) != 50 || !slices.ContainsFunc(list.Value, func(p policyJSON) bool { return p.ID == exo.ID && p.Name == "EXO DEP" }) {
		t.Errorf("exchange policy list has %d policies, EXO DEP among them: %v", len(list.Value),
			slices.ContainsFunc(list.Value, func(p policyJSON) bool { return p.ID == exo.ID }))
	}

	// Mailboxes: the licence rule, an Exchange policy of its own, $null.
	var user struct{ ID, Owner string }
	api.must(201, "POST", "/mailboxes", map[string]string{"type": "UserMailbox", "primarySmtpAddress": "", "displayName": "",
		"owner": c.GlobalAdmin.UserPrincipalName}, &user)
	if user.Owner == "" {
		t.Errorf("user mailbox = %+v; want its owner", user)
	}
	api.refused("a mailbox of another tenant's domain", api.call("POST", "/mailboxes", map[string]string{"type": "SharedMailbox",
		"primarySmtpAddress": "x@" + fab.DefaultDomain, "displayName": "", "owner": ""}), 400, "", c.DefaultDomain)
	api.refused("a PATCH without the field", api.call("PATCH", "/mailboxes/"+info.ID, map[string]any{}), 400, "", "nothing to change")
	api.refused("a purge-requestable policy still in use", api.call("POST", "/exchange-policies/EXO%20DEP/purge-request",
		map[string]any{"reason": "leaving", "contact": "kim@contoso.com", "force": false}), 400, "", "can still unwrap", k1, k2)
	api.must(200, "PATCH", "/mailboxes/"+url.PathEscape(info.PrimarySmtpAddress), map[string]any{"dataEncryptionPolicy": "EXO DEP"}, nil)
	eventually(t, "the mailbox under its Exchange policy", func() (bool, string) {
		st := statsOf(info.ID)
		return st.DataEncryptionPolicyID == exo.ID && st.IsEncrypted, fmt.Sprintf("%+v", st)
	})
	api.must(200, "PATCH", "/mailboxes/"+info.ID, map[string]any{"dataEncryptionPolicy": nil}, nil)
	eventually(t, "the mailbox back under the assigned policy", func() (bool, string) {
		st := statsOf(info.ID)
		return st.DataEncryptionPolicyID == m365.ID && st.IsEncrypted, fmt.Sprintf("%+v", st)
	})
	if st := statsOf(info.ID); st.DataEncryptionPolicyID == serviceManaged {
		t.Errorf("statistics = %+v; still service-managed", st)
	}

	// Messages: a round trip under the mailbox key, counted in statistics.
	body := "Quarterly numbers attached.\n— Alex"
	var msg struct{ ID, Subject string }
	api.must(201, "POST", "/mailboxes/"+info.ID+"/messages", map[string]any{"subject": "Q1", "from": "Alex <alex@" + c.DefaultDomain + ">",
		"to": []string{"info@" + c.DefaultDomain}, "body": body}, &msg)
	var read struct{ Subject, Body string }
	api.must(200, "GET", "/mailboxes/"+info.ID+"/messages/"+msg.ID, nil, &read)
	if read.Subject != "Q1" || read.Body != body {
		t.Errorf("message read back = %+v", read)
	}
	api.must(201, "POST", "/mailboxes/"+info.ID+"/messages", map[string]any{"subject": "Q2", "from": "alex@" + c.DefaultDomain,
		"to": []string{"info@" + c.DefaultDomain}, "body": "second"}, nil)
	var page struct {
		Value         []struct{ ID, Subject string }
		NextPageToken string
	}
	api.must(200, "GET", "/mailboxes/"+info.ID+"/messages?top=1", nil, &page)
	if len(page.Value) != 1 || page.Value[0].ID != msg.ID || page.NextPageToken == "" {
		t.Errorf("first page = %+v", page)
	}
	var last struct {
		Value         []struct{ ID, Subject string }
		NextPageToken *string
	}
	api.must(200, "GET", "/mailboxes/"+info.ID+"/messages?top=1&pageToken="+url.QueryEscape(page.NextPageToken), nil, &last)
	if len(last.Value) != 1 || last.Value[0].Subject != "Q2" || last.NextPageToken != nil {
		t.Errorf("last page = %+v", last)
	}
	if st := statsOf(info.ID); st.ItemCount != 2 || st.TotalItemSize == 0 {
		t.Errorf("statistics after two messages = %+v", st)
	}
	api.must(204, "DELETE", "/mailboxes/"+info.ID+"/messages/"+msg.ID, nil, nil)
	api.refused("a deleted message", api.call("GET", "/mailboxes/"+info.ID+"/messages/"+msg.ID, nil), 404, "ItemNotFound")
	api.refused("another tenant's mailbox", fabrikam.call("GET", "/mailboxes/"+info.ID, nil), 404, "ManagementObjectNotFound")
	api.refused("another tenant's messages", fabrikam.call("GET", "/mailboxes/"+info.ID+"/messages", nil), 404, "ManagementObjectNotFound")

	// The licence rule: without a licence that includes Exchange, no user
	// mailbox; a shared one needs none.
	mustCLI(t, nil, "tenant", "license", "remove", "--tenant-id", c.TenantID, "--license", "Microsoft 365 E5", "--credentials-file", opFile)
	api.must(204, "DELETE", "/mailboxes/"+user.ID, nil, nil)
	api.refused("a user mailbox without a licence", api.call("POST", "/mailboxes", map[string]string{"type": "UserMailbox",
		"primarySmtpAddress": "", "displayName": "", "owner": c.GlobalAdmin.UserPrincipalName}), 400, "LicenseRequired", "licence")
	api.must(201, "POST", "/mailboxes", map[string]string{"type": "SharedMailbox", "primarySmtpAddress": "sales@" + c.DefaultDomain,
		"displayName": "Sales", "owner": ""}, nil)
	mustCLI(t, nil, "tenant", "license", "add", "--tenant-id", c.TenantID, "--license", "Microsoft 365 E5", "--credentials-file", opFile)

	// SharePoint: one policy per geo; sites and files under it.
	var spo policyJSON
	api.must(201, "PUT", "/sharepoint/policies/NAM", map[string]string{"primaryKeyId": k1, "secondaryKeyId": k2}, &spo)
	if spo.Geo != "NAM" || !strings.HasPrefix(spo.PrimaryKeyID, k1+"/") || !strings.HasPrefix(spo.SecondaryKeyID, k2+"/") ||
		(spo.State != "Registering" && spo.State != "Registered") {
		t.Errorf("registered geo policy = %+v", spo)
	}
	api.refused("a second policy in a geo", api.call("PUT", "/sharepoint/policies/nam", map[string]string{"primaryKeyId": k1, "secondaryKeyId": k2}),
		409, "PolicyExists", "NAM")
	var site, euSite struct{ ID, URL, Geo string }
	siteURL := "https://" + strings.Split(c.DefaultDomain, ".")[0] + ".sharepoint.com/sites/finance"
	api.must(201, "POST", "/sites", map[string]any{"url": siteURL, "geo": "NAM", "owners": []string{c.GlobalAdmin.UserPrincipalName}}, &site)
	api.must(201, "POST", "/sites", map[string]any{"url": strings.Replace(siteURL, "finance", "europe", 1), "geo": "EUR",
		"owners": []string{c.GlobalAdmin.UserPrincipalName}}, &euSite)
	var enc struct {
		PolicyID, PolicyKind string
		KeyVersion           int
		Current              bool
	}
	api.must(200, "GET", "/sites/"+url.PathEscape(siteURL)+"/encryption", nil, &enc)
	if enc.PolicyID != spo.ID || enc.PolicyKind != "SharePoint" || enc.KeyVersion != 1 || !enc.Current {
		t.Errorf("NAM site encryption = %+v; want the geo's policy", enc)
	}
	api.must(200, "GET", "/sites/"+euSite.ID+"/encryption", nil, &enc)
	if enc.PolicyID != m365.ID || !enc.Current {
		t.Errorf("EUR site encryption = %+v; want the assigned multi-workload policy", enc)
	}
	content := bytes.Repeat([]byte("Customer Key \x00\xff "), 40000)
	var f struct {
		Path string
		Size int64
	}
	a = api.raw("PUT", "/sites/"+site.ID+"/files/Shared%20Documents/q1%20report.bin", "application/octet-stream", content)
	if a.status != 200 {
		t.Fatalf("PUT file = %d %s", a.status, a.body)
	}
	a.json(t, &f)
	if f.Path != "Shared Documents/q1 report.bin" || f.Size != int64(len(content)) {
		t.Errorf("uploaded file = %+v", f)
	}
	a = api.raw("GET", "/sites/"+site.ID+"/files/Shared%20Documents/q1%20report.bin", "", nil)
	if a.status != 200 || !bytes.Equal(a.body, content) || a.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET file = %d, %d bytes (%s)", a.status, len(a.body), a.header.Get("Content-Type"))
	}
	api.refused("a file sent as JSON", api.raw("PUT", "/sites/"+site.ID+"/files/a.txt", "application/json", []byte(`"x"`)),
		400, "UnsupportedMediaType")
	var files struct{ Value []struct{ Path string } }
	api.must(200, "GET", "/sites/"+site.ID+"/files", nil, &files)
	if len(files.Value) != 1 || files.Value[0].Path != "Shared Documents/q1 report.bin" {
		t.Errorf("files = %+v", files)
	}
	api.refused("another tenant's site", fabrikam.call("GET", "/sites/"+site.ID+"/files", nil), 404, "SiteNotFound")

	// A new version of the second key: the multi-workload policy is
	// refreshed, and the geo rolls its secondary key; the sites follow.
	mustCLI(t, s.adminEnv(c, ck.subs[1]), "key", "rotate", "--vault-name", ck.vaults[1], "--name", "contosokey2")
	var refreshed policyJSON
	api.must(200, "POST", "/m365-policies/"+m365.ID+"/refresh", nil, &refreshed)
	if refreshed.KeyVersion != 2 || refreshed.RootKeys[1] == m365.RootKeys[1] || refreshed.RootKeys[0] != m365.RootKeys[0] {
		t.Errorf("refreshed = %+v; want key version 2 under the second key's new version", refreshed)
	}
	eventually(t, "the geo registered before its roll", func() (bool, string) {
		var p policyJSON
		api.must(200, "GET", "/sharepoint/policies/NAM", nil, &p)
		return p.State == "Registered", p.State
	})
	var rolled policyJSON
	api.must(200, "PATCH", "/sharepoint/policies/NAM", map[string]string{"keyType": "Secondary", "keyId": k2}, &rolled)
	if rolled.KeyVersion != 2 || rolled.SecondaryKeyID == spo.SecondaryKeyID || rolled.PrimaryKeyID != spo.PrimaryKeyID {
		t.Errorf("rolled = %+v", rolled)
	}
	eventually(t, "the roll done", func() (bool, string) {
		var p policyJSON
		api.must(200, "GET", "/sharepoint/policies/NAM", nil, &p)
		return p.State == "Registered" && p.PercentComplete != nil && *p.PercentComplete == 100, fmt.Sprintf("%s %v", p.State, p.PercentComplete)
	})
	api.must(200, "GET", "/sites/"+site.ID+"/encryption", nil, &enc)
	if enc.KeyVersion != 2 || !enc.Current {
		t.Errorf("site after the roll = %+v", enc)
	}
	a = api.raw("GET", "/sites/"+site.ID+"/files/Shared%20Documents/q1%20report.bin", "", nil)
	if a.status != 200 || !bytes.Equal(a.body, content) {
		t.Errorf("GET file after the roll = %d, %d bytes", a.status, len(a.body))
	}
	api.must(204, "DELETE", "/sites/"+site.ID+"/files/Shared%20Documents/q1%20report.bin", nil, nil)
	api.refused("a deleted file", api.raw("GET", "/sites/"+site.ID+"/files/Shared%20Documents/q1%20report.bin", "", nil), 404, "FileNotFound")

	// The seed's cmdlets, through the CLI, read the same answers.
	adminEnv := s.adminEnv(c, "")
	if out := mustCLI(t, adminEnv, "Get-M365DataAtRestEncryptionPolicy", "-Identity", "Contoso DEP", "-o", "json"); !strings.Contains(out, m365.ID) {
		t.Errorf("Get-M365DataAtRestEncryptionPolicy printed %s", out)
	}
	if out := mustCLI(t, adminEnv, "Test-M365DataAtRestEncryptionPolicy", "-Identity", "Contoso DEP"); strings.Count(out, "Success") != 2 {
		t.Errorf("Test-M365DataAtRestEncryptionPolicy printed %s", out)
	}
	if out := mustCLI(t, adminEnv, "Get-MailboxStatistics", "-Identity", info.PrimarySmtpAddress); !strings.Contains(out, m365.ID) ||
		!strings.Contains(out, "True") {
		t.Errorf("Get-MailboxStatistics printed %s", out)
	}
	mustCLI(t, adminEnv, "Set-Mailbox", "-Identity", info.PrimarySmtpAddress, "-DataEncryptionPolicy", "EXO DEP")
	mustCLI(t, adminEnv, "Set-Mailbox", "-Identity", info.PrimarySmtpAddress, "-DataEncryptionPolicy", "$null")
	if out := mustCLI(t, adminEnv, "mailbox", "show", "--identity", info.ID, "-o", "json"); strings.Contains(out, exo.ID) {
		t.Errorf("after Set-Mailbox -DataEncryptionPolicy $null the mailbox shows %s", out)
	}
	if out := mustCLI(t, adminEnv, "spo-policy", "show", "-o", "json"); !strings.Contains(out, rolled.SecondaryKeyID) {
		t.Errorf("spo-policy show printed %s", out)
	}
	local := filepath.Join(t.TempDir(), "budget.bin")
	if err := os.WriteFile(local, content, 0o600); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, adminEnv, "file", "put", "--site", siteURL, "--path", "Shared Documents/budget.bin", "--file", local)
	if out := mustCLI(t, adminEnv, "file", "get", "--site", siteURL, "--path", "Shared Documents/budget.bin"); out != string(content) {
		t.Errorf("file get printed %d bytes, want the %d uploaded", len(out), len(content))
	}

	// Purge: refused while Exchange can still use a key; once its access is
	// removed from both vaults, requested; then no mailbox may take the
	// policy, and only operator administrators approve, each once.
	for i, sub := range ck.subs {
		env := s.adminEnv(c, sub)
		scope := "/subscriptions/" + sub + "/resourceGroups/ck/providers/Microsoft.KeyVault/vaults/" + ck.vaults[i]
		var ras []struct{ ID string }
		_ = json.Unmarshal([]byte(mustCLI(t, env, "role", "assignment", "list", "--scope", scope, "--assignee", directory.ExchangeAppID, "-o", "json")), &ras)
		if len(ras) == 0 {
			t.Fatalf("no role assignment of Exchange Online on %s", ck.vaults[i])
		}
		for _, ra := range ras {
			mustCLI(t, env, "role", "assignment", "delete", "--id", ra.ID)
		}
	}
	var requested policyJSON
	api.must(200, "POST", "/exchange-policies/EXO%20Purge/purge-request",
		map[string]any{"reason": "leaving the service", "contact": "kim@" + c.DefaultDomain, "force": false}, &requested)
	if requested.State != "PurgeRequested" || requested.PermanentDataPurgeRequested == nil || !*requested.PermanentDataPurgeRequested {
		t.Errorf("purge requested = %+v", requested)
	}
	api.refused("assigning a purge-requested policy", api.call("PATCH", "/mailboxes/"+info.ID,
		map[string]any{"dataEncryptionPolicy": "EXO Purge"}), 400, "PolicyPurgeRequested")
	api.refused("a customer approving", api.call("POST", "/exchange-policies/EXO%20Purge/purge-approvals", nil), 403, "AuthorizationFailed")
	var approved policyJSON
	operator.must(200, "POST", "/exchange-policies/EXO%20Purge/purge-approvals", nil, &approved)
	if approved.State != "PurgeRequested" || len(approved.PurgeApprovals) != 1 {
		t.Errorf("after one approval = %+v", approved)
	}
	api.refused("the same operator approving again", operator.call("POST", "/exchange-policies/"+purgeable.ID+"/purge-approvals", nil), 409, "")
	api.refused("approving a policy of another kind by id", operator.call("POST", "/exchange-policies/"+m365.ID+"/purge-approvals", nil),
		404, "PolicyNotFound")
}
