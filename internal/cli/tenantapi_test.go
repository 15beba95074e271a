package cli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"
)

// fakeAPI stands for the server in the commands' tests: it issues tokens,
// announces the vault DNS suffix, records every other request and answers
// what the test set (200 {} by default).
type fakeAPI struct {
	t       *testing.T
	port    string
	mu      sync.Mutex
	reqs    []recorded
	answers map[string][]answer // "METHOD escaped-path" → answers, in turn; the last repeats
}

type recorded struct {
	method, path, query, contentType string
	header                           http.Header
	body                             []byte
}

type answer struct {
	status      int
	contentType string
	body        string
}

// startFakeAPI starts the fake and points the CLI at it, signed in as an
// application of tenant t1.
func startFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, answers: map[string][]answer{}}
	srv := httptest.NewTLSServer(f)
	t.Cleanup(srv.Close)
	_, f.port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	t.Setenv("CUSTOMERKEY_ENDPOINT", srv.URL)
	t.Setenv("CUSTOMERKEY_CA_FILE", ca)
	t.Setenv("AZURE_TENANT_ID", "t1")
	t.Setenv("AZURE_CLIENT_ID", "app")
	t.Setenv("AZURE_CLIENT_SECRET", "s3cret")
	return f
}

// answer sets what the fake answers to method and path, in turn.
func (f *fakeAPI) answer(method, path string, a ...answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[method+" "+path] = a
}

func (f *fakeAPI) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.reqs...)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/t1/oauth2/v2.0/token":
		_ = r.ParseForm()
		if r.PostForm.Get("client_secret") != "s3cret" || r.PostForm.Get("scope") != armScope {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad secret or scope"}`)
			return
		}
		fmt.Fprint(w, `{"access_token":"tok","expires_in":3600}`)
		return
	case r.URL.Path == "/customerkey/v1/metadata":
		fmt.Fprint(w, `{"vaultDnsSuffix":"vault.localhost"}`)
		return
	}
	if r.Header.Get("Authorization") != "Bearer tok" {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"no token"}}`)
		return
	}
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.EscapedPath()
	f.mu.Lock()
	f.reqs = append(f.reqs, recorded{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery,
		contentType: r.Header.Get("Content-Type"), header: r.Header, body: body})
	a := answer{status: http.StatusOK, contentType: "application/json", body: `{}`}
	if as := f.answers[key]; len(as) > 0 {
		a = as[0]
		if len(as) > 1 {
			f.answers[key] = as[1:]
		}
	}
	f.mu.Unlock()
	if a.contentType != "" {
		w.Header().Set("Content-Type", a.contentType)
	}
	w.WriteHeader(a.status)
	fmt.Fprint(w, a.body)
}

// runCmd runs the CLI in-process on a fresh command tree (cobra keeps
// flag values between executions), with the cmdlet spellings rewritten as
// main does.
func runCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := &cobra.Command{Use: "customerkey", SilenceUsage: true, SilenceErrors: true}
	AddCommands(root)
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(RewriteCmdlet(args))
	err = root.ExecuteContext(t.Context())
	return out.String(), errOut.String(), err
}

// jsonEqual reports whether a and b hold the same JSON value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

// TestCommandRequests checks what each command sends: method, path under
// the tenant and body, from both the CLI's and the cmdlets' spellings.
func TestCommandRequests(t *testing.T) {
	const k1, k2 = "https://a.vault.localhost/keys/k1", "https://b.vault.localhost/keys/k2"
	const base = "/customerkey/v1/tenants/t1"
	tests := []struct {
		name   string
		stdin  string
		args   []string
		method string
		path   string
		body   string // JSON compared as a value; "" for none
		raw    bool   // body is raw bytes, compared exactly
	}{
		{"New-M365", "", []string{"New-M365DataAtRestEncryptionPolicy", "-Name", "p1", "-AzureKeyIDs", k1 + ", " + k2, "-Description", "Contoso MDEP"},
			"POST", base + "/m365-policies", `{"name":"p1","azureKeyIds":["` + k1 + `","` + k2 + `"],"description":"Contoso MDEP","enabled":true}`, false},
		{"one key goes to the server, which answers", "", []string{"m365-policy", "create", "--name", "p1", "--azure-key-ids", k1, "--enabled=false"},
			"POST", base + "/m365-policies", `{"name":"p1","azureKeyIds":["` + k1 + `"],"description":"","enabled":false}`, false},
		{"Set-M365 -Enabled $false", "", []string{"Set-M365DataAtRestEncryptionPolicy", "-Identity", "p1", "-Enabled", "$false"},
			"PATCH", base + "/m365-policies/p1", `{"enabled":false}`, false},
		{"set only what is given", "", []string{"m365-policy", "set", "--identity", "p1", "--description", ""},
			"PATCH", base + "/m365-policies/p1", `{"description":""}`, false},
		{"Set-M365 -Refresh, escaped identity", "", []string{"Set-M365DataAtRestEncryptionPolicy", "-Identity", "p 1", "-Refresh"},
			"POST", base + "/m365-policies/p%201/refresh", "", false},
		{"Set-M365 -Replace", "", []string{"Set-M365DataAtRestEncryptionPolicy", "-Identity", "p1", "-Replace", "-AzureKeyIDs", k2 + "," + k1},
			"POST", base + "/m365-policies/p1/replace", `{"azureKeyIds":["` + k2 + `","` + k1 + `"]}`, false},
		{"Get-M365 --tenant by domain", "", []string{"Get-M365DataAtRestEncryptionPolicy", "-Identity", "p1", "--tenant", "contoso.onmicrosoft.com"},
			"GET", "/customerkey/v1/tenants/contoso.onmicrosoft.com/m365-policies/p1", "", false},
		{"Get-M365 list", "", []string{"Get-M365DataAtRestEncryptionPolicy"}, "GET", base + "/m365-policies", "", false},
		{"Set-M365 assignment", "", []string{"Set-M365DataAtRestEncryptionPolicyAssignment", "-DataEncryptionPolicy", "p1"},
			"PUT", base + "/m365-policy-assignment", `{"dataEncryptionPolicy":"p1"}`, false},
		{"Get-M365 assignment", "", []string{"Get-M365DataAtRestEncryptionPolicyAssignment"}, "GET", base + "/m365-policy-assignment", "", false},
		{"New-DEP", "", []string{"New-DataEncryptionPolicy", "-Name", "e1", "-AzureKeyIDs", k1 + "," + k2},
			"POST", base + "/exchange-policies", `{"name":"e1","azureKeyIds":["` + k1 + `","` + k2 + `"],"description":"","enabled":true}`, false},
		{"Set-DEP -Refresh", "", []string{"Set-DataEncryptionPolicy", "-Identity", "e1", "-Refresh"}, "POST", base + "/exchange-policies/e1/refresh", "", false},
		{"Set-DEP purge request", "", []string{"Set-DataEncryptionPolicy", "-Identity", "e1", "-PermanentDataPurgeRequested",
			"-PermanentDataPurgeReason", "Leaving", "-PermanentDataPurgeContact", "admin@contoso.com", "-Force"},
			"POST", base + "/exchange-policies/e1/purge-request", `{"reason":"Leaving","contact":"admin@contoso.com","force":true}`, false},
		{"approve purge in the customer's tenant", "", []string{"exchange-policy", "approve-purge", "--tenant", "t2", "--identity", "e1"},
			"POST", "/customerkey/v1/tenants/t2/exchange-policies/e1/purge-approvals", "", false},
		{"Set-Mailbox $null", "", []string{"Set-Mailbox", "-Identity", "alice@contoso.com", "-DataEncryptionPolicy", "$null"},
			"PATCH", base + "/mailboxes/alice@contoso.com", `{"dataEncryptionPolicy":null}`, false},
		{"Set-Mailbox policy", "", []string{"Set-Mailbox", "-Identity", "alice@contoso.com", "-DataEncryptionPolicy", "e1"},
			"PATCH", base + "/mailboxes/alice@contoso.com", `{"dataEncryptionPolicy":"e1"}`, false},
		{"Get-MailboxStatistics", "", []string{"Get-MailboxStatistics", "-Identity", "alice@contoso.com"},
			"GET", base + "/mailboxes/alice@contoso.com/statistics", "", false},
		{"mailbox create", "", []string{"mailbox", "create", "--primary-smtp-address", "alice@contoso.com", "--owner", "alice@contoso.onmicrosoft.com"},
			"POST", base + "/mailboxes", `{"type":"UserMailbox","primarySmtpAddress":"alice@contoso.com","displayName":"","owner":"alice@contoso.onmicrosoft.com"}`, false},
		{"message put from stdin", "Hello\n", []string{"message", "put", "--mailbox", "alice@contoso.com", "--subject", "Hi", "--from", "bob@contoso.com",
			"--to", "alice@contoso.com,carol@contoso.com", "--body-file", "-"},
			"POST", base + "/mailboxes/alice@contoso.com/messages", `{"subject":"Hi","from":"bob@contoso.com","to":["alice@contoso.com","carol@contoso.com"],"body":"Hello\n"}`, false},
		{"message delete", "", []string{"message", "delete", "--mailbox", "alice@contoso.com", "--id", "m1"},
			"DELETE", base + "/mailboxes/alice@contoso.com/messages/m1", "", false},
		{"Register-SPO by name: URIs from the vault suffix", "", []string{"Register-SPODataEncryptionPolicy", "-PrimaryKeyVaultName", "ContosoSPOAKV01",
			"-PrimaryKeyName", "ka", "-PrimaryKeyVersion", "0a1b", "-SecondaryKeyVaultName", "ContosoSPOAKV02", "-SecondaryKeyName", "kb", "-SecondaryKeyVersion", "2c3d"},
			"PUT", base + "/sharepoint/policies/NAM",
			`{"primaryKeyId":"https://contosospoakv01.vault.localhost:PORT/keys/ka/0a1b","secondaryKeyId":"https://contosospoakv02.vault.localhost:PORT/keys/kb/2c3d"}`, false},
		{"Register-SPO by URI in a geo", "", []string{"Register-SPODataEncryptionPolicy", "-PrimaryKeyVaultUri", k1, "-SecondaryKeyVaultUri", k2, "--geo", "EUR"},
			"PUT", base + "/sharepoint/policies/EUR", `{"primaryKeyId":"` + k1 + `","secondaryKeyId":"` + k2 + `"}`, false},
		{"Update-SPO by name", "", []string{"Update-SPODataEncryptionPolicy", "-KeyVaultName", "ContosoSPOAKV01", "-KeyName", "ka", "-KeyVersion", "0a1c", "-KeyType", "Primary"},
			"PATCH", base + "/sharepoint/policies/NAM", `{"keyType":"Primary","keyId":"https://contosospoakv01.vault.localhost:PORT/keys/ka/0a1c"}`, false},
		{"Restore-SPO", "", []string{"Restore-SPODataEncryptionPolicy", "-PrimaryKeyVaultUri", k1, "-SecondaryKeyVaultUri", k2, "--tenant", "t2"},
			"POST", "/customerkey/v1/tenants/t2/sharepoint/policies/NAM/restore", `{"primaryKeyId":"` + k1 + `","secondaryKeyId":"` + k2 + `"}`, false},
		{"SPO purge request", "", []string{"spo-policy", "request-purge", "--geo", "EUR", "--reason", "Leaving"},
			"POST", base + "/sharepoint/policies/EUR/purge-request", `{"reason":"Leaving","contact":"","force":false}`, false},
		{"Get-SPOSite by URL", "", []string{"Get-SPOSiteDataEncryptionPolicy", "-Identity", "https://contoso.sharepoint.com/sites/finance"},
			"GET", base + "/sites/https:%2F%2Fcontoso.sharepoint.com%2Fsites%2Ffinance/encryption", "", false},
		{"site create", "", []string{"site", "create", "--url", "https://contoso.sharepoint.com/sites/finance", "--owner", "alice", "--owner", "bob"},
			"POST", base + "/sites", `{"url":"https://contoso.sharepoint.com/sites/finance","geo":"NAM","owners":["alice","bob"]}`, false},
		{"file put from stdin", "raw\x00bytes", []string{"file", "put", "--site", "s1", "--path", "/Shared Documents/a b.txt"},
			"PUT", base + "/sites/s1/files/Shared%20Documents/a%20b.txt", "raw\x00bytes", true},
		{"file delete", "", []string{"file", "delete", "--site", "s1", "--path", "a.txt"}, "DELETE", base + "/sites/s1/files/a.txt", "", false},
		{"scope create", "", []string{"encryption", "scope", "create", "--name", "hr", "--principal", "app1"},
			"POST", base + "/encryption/scopes", `{"name":"hr","principals":["app1"]}`, false},
		{"scope closed to everyone", "", []string{"encryption", "scope", "set-principals", "--scope", "hr"},
			"PUT", base + "/encryption/scopes/hr/principals", `{"principals":[]}`, false},
		{"encrypt from stdin", "plain text", []string{"encryption", "encrypt", "--scope", "hr"},
			"POST", base + "/encryption/scopes/hr/encrypt", "plain text", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeAPI(t)
			if _, stderr, err := runCmd(t, tc.stdin, tc.args...); err != nil {
				t.Fatalf("%q: %v\n%s", tc.args, err, stderr)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%q sent %d requests, want 1: %+v", tc.args, len(reqs), reqs)
			}
			r := reqs[0]
			if r.method != tc.method || r.path != tc.path {
				t.Errorf("%q sent %s %s, want %s %s", tc.args, r.method, r.path, tc.method, tc.path)
			}
			want := strings.ReplaceAll(tc.body, "PORT", f.port)
			switch {
			case tc.raw:
				if string(r.body) != want || r.contentType != "application/octet-stream" {
					t.Errorf("%q sent %q (%s), want %q as application/octet-stream", tc.args, r.body, r.contentType, want)
				}
			case want == "":
				if len(r.body) != 0 {
					t.Errorf("%q sent body %s, want none", tc.args, r.body)
				}
			case !jsonEqual(r.body, []byte(want)):
				t.Errorf("%q sent body\n %s\nwant\n %s", tc.args, r.body, want)
			}
		})
	}
}

// TestClientRefusals covers what the CLI refuses before asking the server:
// only what it cannot send at all, or what the server would refuse less
// clearly.
func TestClientRefusals(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"set without a change", []string{"m365-policy", "set", "--identity", "p1"}, "nothing to change"},
		{"empty key URI", []string{"m365-policy", "create", "--name", "p1", "--azure-key-ids", "k1,,k2"}, "empty key URI"},
		{"mailbox set without a policy", []string{"mailbox", "set", "--identity", "m"}, "data-encryption-policy"},
		{"mailbox set with both", []string{"mailbox", "set", "--identity", "m", "--data-encryption-policy", "e1", "--clear-data-encryption-policy"}, "none of the others"},
		{"approve without the customer's tenant", []string{"exchange-policy", "approve-purge", "--identity", "e1"}, "pass --tenant"},
		{"restore without the customer's tenant", []string{"spo-policy", "restore", "--primary-key-uri", "a", "--secondary-key-uri", "b"}, "pass --tenant"},
		{"SPO key without its name", []string{"spo-policy", "register", "--primary-key-vault-name", "va", "--secondary-key-uri", "b"},
			"give --primary-key-vault-name and --primary-key-name"},
		{"SPO key given twice", []string{"spo-policy", "register", "--primary-key-uri", "a", "--primary-key-name", "ka", "--secondary-key-uri", "b"},
			"not both"},
		{"SPO update without a key", []string{"spo-policy", "update", "--key-type", "Primary"}, "give --key-vault-name and --key-name"},
		{"file path climbing out", []string{"file", "get", "--site", "s1", "--path", "docs/../../x"}, "without empty, . or .. parts"},
		{"file path with an empty part", []string{"file", "delete", "--site", "s1", "--path", "docs//x"}, "without empty, . or .. parts"},
		{"bad output format", []string{"m365-policy", "list", "-o", "yaml"}, "use table or json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeAPI(t)
			_, _, err := runCmd(t, "", tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q err = %v, want one saying %q", tc.args, err, tc.want)
			}
			if reqs := f.requests(); len(reqs) != 0 {
				t.Errorf("%q sent %+v, want nothing sent", tc.args, reqs)
			}
		})
	}
}

// TestServerErrorsShown checks that the server's refusal reaches the user
// as the server worded it, for JSON calls and raw-byte transfers alike.
func TestServerErrorsShown(t *testing.T) {
	f := startFakeAPI(t)
	refusal := answer{status: http.StatusBadRequest, contentType: "application/json",
		body: `{"error":{"code":"InvalidPolicy","message":"a policy needs two root keys in two different vaults"}}`}
	f.answer("POST", "/customerkey/v1/tenants/t1/m365-policies", refusal)
	f.answer("GET", "/customerkey/v1/tenants/t1/sites/s1/files/a.txt",
		answer{status: http.StatusForbidden, contentType: "application/json", body: `{"error":{"code":"KeyAccessRevoked","message":"both root keys are revoked"}}`})
	_, _, err := runCmd(t, "", "m365-policy", "create", "--name", "p1", "--azure-key-ids", "k1")
	if err == nil || err.Error() != "InvalidPolicy: a policy needs two root keys in two different vaults" {
		t.Errorf("create with one key err = %v, want the server's InvalidPolicy", err)
	}
	out, _, err := runCmd(t, "", "file", "get", "--site", "s1", "--path", "a.txt")
	if err == nil || err.Error() != "KeyAccessRevoked: both root keys are revoked" || out != "" {
		t.Errorf("file get err = %v, printed %q; want the server's KeyAccessRevoked and nothing printed", err, out)
	}
}

func TestFileGetStreams(t *testing.T) {
	f := startFakeAPI(t)
	content := strings.Repeat("\x00\xffdata", 1000)
	f.answer("GET", "/customerkey/v1/tenants/t1/sites/s1/files/a.bin",
		answer{status: http.StatusOK, contentType: "application/octet-stream", body: content},
		answer{status: http.StatusOK, contentType: "application/octet-stream", body: content})
	out, _, err := runCmd(t, "", "file", "get", "--site", "s1", "--path", "a.bin")
	if err != nil || out != content {
		t.Fatalf("file get to stdout: %d bytes, %v; want the %d bytes served", len(out), err, len(content))
	}
	dst := filepath.Join(t.TempDir(), "a.bin")
	if _, _, err := runCmd(t, "", "file", "get", "--site", "s1", "--path", "a.bin", "--file", dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil || string(got) != content {
		t.Errorf("file get --file wrote %d bytes (%v), want the %d served", len(got), err, len(content))
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("downloaded file mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 1 {
		t.Errorf("the download left %d files behind, want only %s", len(entries), dst)
	}
}

func TestEncryptFileToFile(t *testing.T) {
	f := startFakeAPI(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "plain"), filepath.Join(dir, "sealed")
	if err := os.WriteFile(in, []byte("secret report"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.answer("POST", "/customerkey/v1/tenants/t1/encryption/scopes/hr/encrypt",
		answer{status: http.StatusOK, contentType: "application/octet-stream", body: "CK\x01ciphertext"})
	if _, _, err := runCmd(t, "", "encryption", "encrypt", "--scope", "hr", "--in", in, "--out", out); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); string(got) != "CK\x01ciphertext" {
		t.Errorf("--out holds %q, want the server's answer", got)
	}
	if reqs := f.requests(); len(reqs) != 1 || string(reqs[0].body) != "secret report" || reqs[0].header.Get("X-CK-AAD") != "" {
		t.Errorf("sent %+v, want the --in file's bytes and no additional data", reqs)
	}
	if _, _, err := runCmd(t, "", "encryption", "decrypt", "--scope", "hr", "--in", out, "--aad", "invoice 7"); err != nil {
		t.Fatal(err)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[1].header.Get("X-CK-AAD") != "aW52b2ljZSA3" {
		t.Errorf("decrypt --aad sent %+v, want X-CK-AAD: base64url of the text", reqs[1:])
	}
	if _, _, err := runCmd(t, "", "encryption", "decrypt", "--scope", "hr", "--in", filepath.Join(dir, "missing")); err == nil {
		t.Error("decrypt --in a missing file succeeded")
	}
}

// TestListFollowsPages checks that lists gather every page, and that a
// server ignoring the page token is not followed forever.
func TestListFollowsPages(t *testing.T) {
	const path = "/customerkey/v1/tenants/t1/mailboxes"
	ok := func(body string) answer {
		return answer{status: http.StatusOK, contentType: "application/json", body: body}
	}
	f := startFakeAPI(t)
	f.answer("GET", path,
		ok(`{"value":[{"displayName":"Alice","primarySmtpAddress":"alice@contoso.com"}],"nextPageToken":"p2"}`),
		ok(`{"value":[{"displayName":"Bob","primarySmtpAddress":"bob@contoso.com","dataEncryptionPolicy":"e1"}]}`))
	out, _, err := runCmd(t, "", "Get-Mailbox", "-o", "json")
	if err != nil || !jsonEqual([]byte(out), []byte(`[{"displayName":"Alice","primarySmtpAddress":"alice@contoso.com"},`+
		`{"displayName":"Bob","primarySmtpAddress":"bob@contoso.com","dataEncryptionPolicy":"e1"}]`)) {
		t.Errorf("Get-Mailbox -o json = %s (%v), want both pages' mailboxes", out, err)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[0].query != "" || reqs[1].query != "pageToken=p2" {
		t.Errorf("requests %+v, want the first page, then pageToken=p2", reqs)
	}

	f.answer("GET", path, ok(`{"value":[],"nextPageToken":"p2"}`), ok(`{"value":[],"nextPageToken":"p2"}`))
	if _, _, err := runCmd(t, "", "mailbox", "list"); err == nil || !strings.Contains(err.Error(), "cannot be followed") {
		t.Errorf("a repeated page token: err = %v, want a refusal to loop", err)
	}
}
