package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/cli"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
)

// TestUserLoginWithDeviceCode signs a tenant's Global Administrator in
// with `customerkey login` (device code), approving the code on the
// server's sign-in page as a person would, then uses the saved sign-in for
// Graph and the control API through refresh tokens.
func TestUserLoginWithDeviceCode(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := start(t, dataDir)
	out, err := runCLI(t, nil, "tenant", "create", "--name", "Relecloud", "--license", "Microsoft 365 E5", "-o", "json",
		"--credentials-file", filepath.Join(dataDir, config.CredentialsFile))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		TenantID    string `json:"tenantId"`
		GlobalAdmin struct{ UserPrincipalName, Password string }
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CUSTOMERKEY_ENDPOINT", s.url)
	t.Setenv("CUSTOMERKEY_CA_FILE", s.CAFile)

	// Run `customerkey login` and read the instructions it prints.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		root := &cobra.Command{Use: "customerkey", SilenceUsage: true, SilenceErrors: true}
		cli.AddCommands(root)
		root.SetOut(io.Discard)
		root.SetErr(pw)
		root.SetArgs([]string{"login", "--tenant", "relecloud.onmicrosoft.com"})
		done <- root.ExecuteContext(context.Background())
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the login instructions: %v", err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`(https://\S+/devicelogin)\S*.*?\b([A-Z0-9]{4}-[A-Z0-9]{4}|[A-Z0-9]{8,9})\b`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("login printed %q; want the sign-in page and a code", line)
	}
	approve(t, s, m[1], m[2], created.GlobalAdmin.UserPrincipalName, created.GlobalAdmin.Password)
	if err := <-done; err != nil {
		t.Fatalf("login err = %v", err)
	}

	// The saved sign-in works for Graph (New-AzADServicePrincipal) ...
	if out, err := runCLI(t, nil, "sp", "create", "--app-id", directory.M365DAREAppID, "-o", "json"); err != nil || !strings.Contains(out, directory.M365DAREAppID) {
		t.Fatalf("sp create as the signed-in user = %q, %v", out, err)
	}
	// ... and the control API, and it is refused where the user has no right.
	if out, err := runCLI(t, nil, "tenant", "show", created.TenantID); err != nil || !strings.Contains(out, "Relecloud") {
		t.Fatalf("tenant show as the user = %q, %v", out, err)
	}
	if _, err := runCLI(t, nil, "tenant", "list"); err == nil || !strings.Contains(err.Error(), "operator") {
		t.Errorf("tenant list as a customer's admin err = %v; want a refusal naming the operator", err)
	}
	// Every one of those calls is attributed to the user in the audit log.
	out, err = runCLI(t, nil, "audit", "list", "--all", "-o", "json")
	if err != nil || !strings.Contains(out, created.GlobalAdmin.UserPrincipalName) || strings.Contains(out, created.GlobalAdmin.Password) {
		t.Errorf("audit list = %v; want the user's sign-in and no password", err)
	}
}

// approve plays the person at the device login page.
func approve(t *testing.T, s *server, pageURL, code, upn, password string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: s.client.Transport, Jar: jar}
	get := func(u string) string {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	post := func(u string, f url.Values) string {
		req, _ := http.NewRequest("POST", u, strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.url)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s = %d %s", u, resp.StatusCode, b)
		}
		return string(b)
	}
	f := hiddenFields(get(pageURL))
	f.Set("user_code", code)
	f = hiddenFields(post(pageURL, f))
	f.Set("username", upn)
	f.Set("password", password)
	f.Set("action", "approve")
	if page := post(pageURL, f); !strings.Contains(strings.ToLower(page), "signed in") {
		t.Fatalf("approval page = %q", page)
	}
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func hiddenFields(body string) url.Values {
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		f.Set(m[1], m[2])
	}
	return f
}
