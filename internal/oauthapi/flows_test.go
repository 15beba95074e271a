package oauthapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/identity"
)

// TestDeviceCodeCredential drives the official azidentity device code
// credential: its prompt completes the sign-in page like a user would.
func TestDeviceCodeCredential(t *testing.T) {
	s := newServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var prompts atomic.Int32
	cred, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		ClientOptions:            s.clientOptions(),
		DisableInstanceDiscovery: true,
		TenantID:                 s.a.Tenant.ID,
		UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
			prompts.Add(1)
			if !strings.Contains(m.Message, m.UserCode) {
				t.Errorf("message %q lacks the code", m.Message)
			}
			r := s.browser(t).approveDevice(m.VerificationURL, m.UserCode, s.a.Admin.UserPrincipalName, s.a.AdminPassword.Reveal())
			if r.status != http.StatusOK || !strings.Contains(r.body, "You have signed in") {
				t.Errorf("approval page = %d %s", r.status, r.body)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vaultRes + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken = %v", err)
	}
	p, err := s.svc.Verify(ctx, tok.Token, identity.KeyVault)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != identity.UserPrincipal || p.ObjectID != s.a.Admin.ID || p.AppID != directory.CLIAppID {
		t.Errorf("principal = %+v", p)
	}
	// Another resource: MSAL redeems its refresh token, without a prompt.
	tok2, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{identity.GraphResource + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken(Graph) = %v", err)
	}
	if _, err := s.svc.Verify(ctx, tok2.Token, identity.Graph); err != nil {
		t.Fatal(err)
	}
	if n := prompts.Load(); n != 1 {
		t.Errorf("the user was prompted %d times, want 1", n)
	}
}

func TestDeviceCodeFlow(t *testing.T) {
	s := newServer(t)
	tid := s.a.Tenant.ID
	start := func() map[string]any {
		r := s.post("/"+tid+"/oauth2/v2.0/devicecode", url.Values{"client_id": {directory.CLIAppID}, "scope": {vaultRes + "/.default offline_access"}})
		if r.status != http.StatusOK {
			t.Fatalf("devicecode = %d %s", r.status, r.body)
		}
		return r.json(t)
	}
	pollForm := func(dc string) url.Values {
		return url.Values{"grant_type": {identity.GrantDeviceCode}, "client_id": {directory.CLIAppID}, "device_code": {dc}}
	}
	da := start()
	dc, uc := da["device_code"].(string), da["user_code"].(string)
	if da["verification_uri"] != s.srv.URL+"/devicelogin" || da["expires_in"] != float64(900) || da["interval"] != float64(5) {
		t.Errorf("device authorization = %v", da)
	}
	checkOAuthError(t, s.post("/"+tid+"/oauth2/v2.0/token", pollForm(dc)), 400, "authorization_pending", 70016, "pending")
	checkOAuthError(t, s.post("/"+tid+"/oauth2/v2.0/token", pollForm(dc)), 400, "slow_down", 0, "Polling too fast")

	b := s.browser(t)
	page := b.get(s.srv.URL + "/devicelogin")
	checkPageHeaders(t, page)
	// A form posted without the CSRF cookie and field is refused.
	if r := s.post("/devicelogin", url.Values{"step": {"code"}, "user_code": {uc}}); r.status != http.StatusForbidden {
		t.Errorf("POST without CSRF = %d", r.status)
	}
	f := hidden(page.body)
	f.Set("user_code", "BBBB-BBBB")
	if r := b.post(s.srv.URL+"/devicelogin", f); r.status != http.StatusNotFound || !strings.Contains(r.body, "not valid or has expired") {
		t.Errorf("unknown code = %d %s", r.status, r.body)
	}
	f.Set("user_code", uc)
	page = b.post(s.srv.URL+"/devicelogin", f)
	if page.status != http.StatusOK || !strings.Contains(page.body, "Contoso") || !strings.Contains(page.body, vaultRes) {
		t.Fatalf("code step = %d %s", page.status, page.body)
	}
	f = hidden(page.body)
	f.Set("username", s.a.Admin.UserPrincipalName)
	f.Set("password", "wrong-password")
	f.Set("action", "approve")
	r := b.post(s.srv.URL+"/devicelogin", f)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "AADSTS50126") || !strings.Contains(r.body, s.a.Admin.UserPrincipalName) {
		t.Errorf("wrong password = %d %s", r.status, r.body)
	}
	if strings.Contains(r.body, "wrong-password") {
		t.Error("the page echoes the password")
	}
	f = hidden(r.body)
	f.Set("username", s.a.Admin.UserPrincipalName)
	f.Set("password", s.a.AdminPassword.Reveal())
	f.Set("action", "approve")
	r = b.post(s.srv.URL+"/devicelogin", f)
	if r.status != http.StatusOK || !strings.Contains(r.body, "You have signed in") || !strings.Contains(r.body, "close this window") {
		t.Fatalf("approval = %d %s", r.status, r.body)
	}
	checkPageHeaders(t, r)
	r = s.post("/"+tid+"/oauth2/v2.0/token", pollForm(dc))
	if r.status != http.StatusOK {
		t.Fatalf("poll after approval = %d %s", r.status, r.body)
	}
	tokens := r.json(t)
	for _, k := range []string{"access_token", "refresh_token", "id_token", "client_info", "scope", "expires_in", "token_type"} {
		if tokens[k] == nil {
			t.Errorf("%s missing from the token response", k)
		}
	}

	t.Run("refresh rotates", func(t *testing.T) {
		rt := tokens["refresh_token"].(string)
		form := url.Values{"grant_type": {"refresh_token"}, "client_id": {directory.CLIAppID}, "refresh_token": {rt},
			"scope": {identity.GraphResource + "/.default openid offline_access profile"}}
		r := s.post("/"+tid+"/oauth2/v2.0/token", form)
		if r.status != http.StatusOK {
			t.Fatalf("refresh = %d %s", r.status, r.body)
		}
		if nt := r.json(t)["refresh_token"]; nt == rt || nt == nil {
			t.Errorf("refresh token not rotated")
		}
		checkOAuthError(t, s.post("/"+tid+"/oauth2/v2.0/token", form), 400, "invalid_grant", 70000, "refresh_token")
	})

	t.Run("declined", func(t *testing.T) {
		da := start()
		b := s.browser(t)
		page := b.get(s.srv.URL + "/devicelogin")
		f := hidden(page.body)
		f.Set("user_code", da["user_code"].(string))
		page = b.post(s.srv.URL+"/devicelogin", f)
		f = hidden(page.body)
		f.Set("action", "deny")
		if r := b.post(s.srv.URL+"/devicelogin", f); r.status != http.StatusOK || !strings.Contains(r.body, "declined") {
			t.Fatalf("deny = %d %s", r.status, r.body)
		}
		checkOAuthError(t, s.post("/"+tid+"/oauth2/v2.0/token", pollForm(da["device_code"].(string))), 400, "access_denied", 0, "declined")
	})

	t.Run("expired", func(t *testing.T) {
		da := start()
		s.clock.Advance(15 * time.Minute)
		checkOAuthError(t, s.post("/"+tid+"/oauth2/v2.0/token", pollForm(da["device_code"].(string))), 400, "expired_token", 70020, "expired")
	})

	t.Run("confidential client", func(t *testing.T) {
		r := s.post("/"+tid+"/oauth2/v2.0/devicecode", url.Values{"client_id": {s.a.AdminApp.AppID}, "scope": {vaultRes + "/.default"}})
		checkOAuthError(t, r, 401, "invalid_client", 7000218, "not a public client")
	})
}

func checkPageHeaders(t *testing.T, r response) {
	t.Helper()
	h := r.header
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
		strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	for k, v := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
		"Content-Type": "text/html; charset=utf-8"} {
		if h.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, h.Get(k), v)
		}
	}
	if !strings.Contains(r.body, "customerkey") {
		t.Error("the page does not name the server")
	}
}

func TestAuthorizationCodePKCE(t *testing.T) {
	s := newServer(t)
	tid := s.a.Tenant.ID
	verifier := "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	redirect := "http://localhost:41999"
	authURL := func(kv ...string) string {
		q := url.Values{"client_id": {directory.CLIAppID}, "response_type": {"code"}, "redirect_uri": {redirect},
			"scope": {vaultRes + "/.default openid offline_access profile"}, "state": {"xyz <&> state"}, "code_challenge": {challenge},
			"code_challenge_method": {"S256"}, "nonce": {"n-1"}}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return s.srv.URL + "/" + tid + "/oauth2/v2.0/authorize?" + q.Encode()
	}
	b := s.browser(t)
	page := b.get(authURL())
	if page.status != http.StatusOK || !strings.Contains(page.body, `name="password"`) {
		t.Fatalf("authorize page = %d %s", page.status, page.body)
	}
	checkPageHeaders(t, page)
	if csp := page.header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' http://localhost:*") {
		t.Errorf("CSP form-action does not allow the loopback redirect: %q", csp)
	}
	action := s.srv.URL + "/" + tid + "/oauth2/v2.0/authorize"
	f := hidden(page.body)
	if f.Get("state") != "xyz <&> state" || f.Get("code_challenge") != challenge {
		t.Errorf("hidden fields = %v", f)
	}
	f.Set("username", s.a.Admin.UserPrincipalName)
	f.Set("password", "wrong-password")
	f.Set("action", "signin")
	r := b.post(action, f)
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "AADSTS50126") {
		t.Fatalf("wrong password = %d %s", r.status, r.body)
	}
	f = hidden(r.body)
	f.Set("username", s.a.Admin.UserPrincipalName)
	f.Set("password", s.a.AdminPassword.Reveal())
	f.Set("action", "signin")
	r = b.post(action, f)
	if r.status != http.StatusSeeOther {
		t.Fatalf("sign-in = %d %s", r.status, r.body)
	}
	loc, _ := url.Parse(r.header.Get("Location"))
	if loc.Scheme+"://"+loc.Host != redirect || loc.Query().Get("state") != "xyz <&> state" || loc.Query().Get("code") == "" {
		t.Fatalf("redirect = %s", loc)
	}
	code := loc.Query().Get("code")
	exchange := func(code, verifier string) response {
		return s.post("/"+tid+"/oauth2/v2.0/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {directory.CLIAppID},
			"code": {code}, "code_verifier": {verifier}, "redirect_uri": {redirect}, "scope": {vaultRes + "/.default"}})
	}
	checkOAuthError(t, exchange(code, strings.Repeat("x", 43)), 400, "invalid_grant", 501481, "Code_Verifier does not match")
	r = exchange(code, verifier)
	if r.status != http.StatusOK {
		t.Fatalf("exchange = %d %s", r.status, r.body)
	}
	tok := r.json(t)
	if _, err := s.svc.Verify(context.Background(), tok["access_token"].(string), identity.KeyVault); err != nil {
		t.Fatal(err)
	}
	if tok["id_token"] == nil || tok["refresh_token"] == nil || tok["client_info"] == nil {
		t.Errorf("token response = %v", tok)
	}
	checkOAuthError(t, exchange(code, verifier), 400, "invalid_grant", 54005, "already redeemed")

	t.Run("errors", func(t *testing.T) {
		b := s.browser(t)
		// A redirect URI that is not registered is never redirected to.
		if r := b.get(authURL("redirect_uri", "https://evil.example/cb")); r.status != http.StatusBadRequest || !strings.Contains(r.body, "AADSTS50011") {
			t.Errorf("unregistered redirect = %d %s", r.status, r.body)
		}
		// Later errors go back to the registered redirect URI.
		r := b.get(authURL("scope", "https://evil.example/.default"))
		loc, _ := url.Parse(r.header.Get("Location"))
		if r.status != http.StatusFound || loc.Query().Get("error") != "invalid_resource" || loc.Query().Get("state") != "xyz <&> state" {
			t.Errorf("bad scope = %d %s", r.status, loc)
		}
		r = b.get(authURL("code_challenge_method", "plain"))
		if loc, _ := url.Parse(r.header.Get("Location")); r.status != http.StatusFound || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("plain PKCE = %d %s", r.status, loc)
		}
		if r := b.get(authURL() + "&scope=again"); r.status != http.StatusBadRequest || !strings.Contains(r.body, "AADSTS9000411") {
			t.Errorf("duplicated parameter = %d %s", r.status, r.body)
		}
		// Cancel sends access_denied back.
		page := b.get(authURL())
		f := hidden(page.body)
		f.Set("action", "cancel")
		r = b.post(action, f)
		if loc, _ := url.Parse(r.header.Get("Location")); r.status != http.StatusFound || loc.Query().Get("error") != "access_denied" {
			t.Errorf("cancel = %d %s", r.status, loc)
		}
		// A POST from another site (no CSRF cookie or field) is refused.
		if r := s.post("/"+tid+"/oauth2/v2.0/authorize", f); r.status != http.StatusForbidden {
			t.Errorf("cross-site POST = %d", r.status)
		}
	})
}
