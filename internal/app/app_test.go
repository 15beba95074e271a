package app_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/spf13/cobra"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/cli"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/directory"
)

// server is a real customerkey on a loopback port with its own CA.
type server struct {
	*app.Server
	url    string
	client *http.Client
	stop   func()
}

func start(t testing.TB, dataDir string) *server { return startWith(t, dataDir, app.Options{}) }

// startWith starts a server with options (a clock for the resource
// manager, say); the KDF is always the cheap one.
func startWith(t testing.TB, dataDir string, o app.Options) *server {
	t.Helper()
	return startConfigured(t, dataDir, o, nil)
}

// startConfigured is startWith with a change to the configuration.
func startConfigured(t testing.TB, dataDir string, o app.Options, tune func(*config.Config)) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Listen = ln.Addr().String()
	cfg.PublicURL = "https://localhost:" + strconv.Itoa(port)
	cfg.Store = testStore(t, dataDir)
	if tune != nil {
		tune(&cfg)
	}
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	o.KDF = directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}
	o.DeviceCodeInterval = time.Second
	s, err := app.Open(ctx, cfg, log, o)
	if err != nil {
		cancel()
		t.Fatalf("app.Open() err = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	srv := &server{Server: s, url: cfg.PublicURL, client: trusting(t, s.CAFile)}
	var once bool
	srv.stop = func() {
		if once {
			return
		}
		once = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve() after shutdown err = %v, want nil", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close() err = %v", err)
		}
	}
	t.Cleanup(srv.stop)
	waitHealthy(t, srv)
	return srv
}

func trusting(t testing.TB, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("ca.pem holds no certificate")
	}
	d := &net.Dialer{}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			return d.DialContext(ctx, network, "127.0.0.1:"+port)
		},
	}}
}

func waitHealthy(t testing.TB, s *server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := s.client.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// credential is the official azidentity client pointed at the server.
func (s *server) credential(t testing.TB, tenant, clientID, secret string) *azidentity.ClientSecretCredential {
	t.Helper()
	c, err := azidentity.NewClientSecretCredential(tenant, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.url + "/"},
			Transport: s.client,
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func token(ctx context.Context, c azcore.TokenCredential, scope string) (string, error) {
	tok, err := c.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	return tok.Token, err
}

// runCLI runs the customerkey client commands in-process against the server.
func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	root := &cobra.Command{Use: "customerkey", SilenceUsage: true, SilenceErrors: true}
	cli.AddCommands(root)
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(cli.RewriteCmdlet(args))
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// mustCLI runs a customerkey command in-process and fails the test if it
// fails.
func mustCLI(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, err := runCLI(t, env, args...)
	if err != nil {
		t.Fatalf("customerkey %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// adminEnv is the environment of a tenant's automation application, as
// Azure tools read it; a non-empty sub sets AZURE_SUBSCRIPTION_ID too.
func (s *server) adminEnv(c tenantCreds, sub string) map[string]string {
	env := map[string]string{"CUSTOMERKEY_ENDPOINT": s.url, "CUSTOMERKEY_CA_FILE": s.CAFile,
		"AZURE_TENANT_ID": c.TenantID, "AZURE_CLIENT_ID": c.AdminApp.ClientID, "AZURE_CLIENT_SECRET": c.AdminApp.ClientSecret}
	if sub != "" {
		env["AZURE_SUBSCRIPTION_ID"] = sub
	}
	return env
}

const armScope, graphScope = "https://management.azure.com/.default", "https://graph.microsoft.com/.default"

func TestServerEndToEnd(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	t.Setenv("CUSTOMERKEY_PROFILE", filepath.Join(t.TempDir(), "profile.json"))
	s := start(t, dataDir)
	ctx := context.Background()

	// operator.json: exactly five keys, mode 0600, an absolute caFile.
	credPath := filepath.Join(dataDir, config.CredentialsFile)
	fi, err := os.Stat(credPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("operator.json mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	raw, _ := os.ReadFile(credPath)
	var keys map[string]string
	if err := json.Unmarshal(raw, &keys); err != nil || len(keys) != 5 {
		t.Fatalf("operator.json = %s; want exactly endpoint, caFile, tenantId, clientId, clientSecret", raw)
	}
	op := s.Credentials
	if op.Endpoint != s.url || !filepath.IsAbs(op.CAFile) || op.CAFile != s.CAFile {
		t.Errorf("operator.json endpoint/caFile = %q/%q", op.Endpoint, op.CAFile)
	}

	// The official client gets operator tokens for each surface.
	opCred := s.credential(t, op.TenantID, op.ClientID, op.ClientSecret)
	for _, scope := range []string{armScope, graphScope} {
		if _, err := token(ctx, opCred, scope); err != nil {
			t.Fatalf("operator GetToken(%s) err = %v", scope, err)
		}
	}

	// The operator creates a tenant through the CLI.
	opFile := map[string]string{}
	out, err := runCLI(t, opFile, "tenant", "create", "--name", "Contoso", "--license", "Microsoft 365 E5", "-o", "json", "--credentials-file", credPath)
	if err != nil {
		t.Fatalf("tenant create err = %v", err)
	}
	var created struct {
		TenantID      string `json:"tenantId"`
		DefaultDomain string `json:"defaultDomain"`
		GlobalAdmin   struct{ UserPrincipalName, Password string }
		AdminApp      struct{ ClientID, ClientSecret string }
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.TenantID == "" || created.AdminApp.ClientSecret == "" || created.GlobalAdmin.Password == "" {
		t.Fatalf("tenant create printed %q (%v)", out, err)
	}

	// The tenant's automation app signs in with the official client.
	custCred := s.credential(t, created.TenantID, created.AdminApp.ClientID, created.AdminApp.ClientSecret)
	if _, err := token(ctx, custCred, graphScope); err != nil {
		t.Fatalf("customer GetToken err = %v", err)
	}
	// Also by domain name, as Entra ID allows.
	if _, err := token(ctx, s.credential(t, created.DefaultDomain, created.AdminApp.ClientID, created.AdminApp.ClientSecret), armScope); err != nil {
		t.Fatalf("customer GetToken by domain err = %v", err)
	}

	// The operator gives the onboarding workload a credential (Graph addPassword).
	opGraph, _ := token(ctx, opCred, graphScope)
	var apps struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if code := doJSON(t, s, opGraph, "GET", "/v1.0/applications?$filter=appId%20eq%20'"+directory.OnboardingAppID+"'", "", &apps); code != http.StatusOK || len(apps.Value) != 1 {
		t.Fatalf("GET applications?$filter=appId = %d, %d apps", code, len(apps.Value))
	}
	var pw struct {
		SecretText string `json:"secretText"`
	}
	if code := doJSON(t, s, opGraph, "POST", "/v1.0/applications/"+apps.Value[0].ID+"/addPassword",
		`{"passwordCredential":{"displayName":"onboarding workload"}}`, &pw); code != http.StatusOK || pw.SecretText == "" {
		t.Fatalf("addPassword = %d, secret %v", code, pw.SecretText != "")
	}

	// Without its service principal in Contoso, the workload gets no token there ...
	_, err = token(ctx, s.credential(t, created.TenantID, directory.OnboardingAppID, pw.SecretText), armScope)
	if err == nil || !strings.Contains(err.Error(), directory.OnboardingAppID) || !strings.Contains(err.Error(), "service principal") {
		t.Fatalf("workload GetToken without its service principal err = %v; want a refusal naming the app and the missing service principal", err)
	}

	// ... until Contoso's admin registers it, as the seed says.
	adminEnv := map[string]string{"CUSTOMERKEY_ENDPOINT": s.url, "CUSTOMERKEY_CA_FILE": s.CAFile,
		"AZURE_TENANT_ID": created.TenantID, "AZURE_CLIENT_ID": created.AdminApp.ClientID, "AZURE_CLIENT_SECRET": created.AdminApp.ClientSecret}
	if _, err := runCLI(t, adminEnv, "Get-AzADServicePrincipal", "-ServicePrincipalName", directory.OnboardingAppID); err == nil ||
		!strings.Contains(err.Error(), "sp create") {
		t.Errorf("Get-AzADServicePrincipal before registration err = %v; want a hint to register it", err)
	}
	if out, err := runCLI(t, adminEnv, "New-AzADServicePrincipal", "-ApplicationId", directory.OnboardingAppID); err != nil || !strings.Contains(out, "Customer Key Onboarding") {
		t.Fatalf("New-AzADServicePrincipal = %q, %v", out, err)
	}
	if out, err := runCLI(t, adminEnv, "sp", "show", "--app-id", directory.OnboardingAppID, "-o", "json"); err != nil || !strings.Contains(out, directory.OnboardingAppID) {
		t.Fatalf("sp show = %q, %v", out, err)
	}
	if _, err := token(ctx, s.credential(t, created.TenantID, directory.OnboardingAppID, pw.SecretText), armScope); err != nil {
		t.Fatalf("workload GetToken after registration err = %v", err)
	}

	// The refusal and the registration are in Contoso's audit log.
	out, err = runCLI(t, adminEnv, "audit", "list", "--all", "-o", "json")
	if err != nil {
		t.Fatalf("audit list err = %v", err)
	}
	for _, want := range []string{`"denied"`, "directory/servicePrincipals/create"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit list lacks %s", want)
		}
	}

	// Shut down, then look at every byte written: no customer secret in the clear.
	s.stop()
	secrets := map[string]string{"admin password": created.GlobalAdmin.Password, "admin app secret": created.AdminApp.ClientSecret,
		"workload secret": pw.SecretText}
	err = filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for name, v := range secrets {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("%s holds the %s in the clear", path, name)
			}
		}
		if filepath.Base(path) != config.CredentialsFile && bytes.Contains(b, []byte(op.ClientSecret)) {
			t.Errorf("%s holds the operator's client secret in the clear", path)
		}
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a PEM private key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second start reuses the CA, the operator tenant and its credentials.
	caBefore, _ := os.ReadFile(s.CAFile)
	s2 := start(t, dataDir)
	caAfter, _ := os.ReadFile(s2.CAFile)
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("the second start replaced the CA certificate")
	}
	if s2.Credentials.TenantID != op.TenantID || s2.Credentials.ClientSecret != op.ClientSecret {
		t.Error("the second start changed the operator's credentials")
	}
	if _, err := token(ctx, s2.credential(t, created.TenantID, created.AdminApp.ClientID, created.AdminApp.ClientSecret), graphScope); err != nil {
		t.Errorf("after restart, customer GetToken err = %v", err)
	}
}

func doJSON(t testing.TB, s *server, tok, method, path, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		t.Logf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}
