package oauthapi_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/identity"
)

func policyNoRetry() policy.RetryOptions { return policy.RetryOptions{MaxRetries: -1} }

func TestDiscovery(t *testing.T) {
	s := newServer(t)
	tid := s.a.Tenant.ID
	for _, tenant := range []string{tid, s.a.Tenant.DefaultDomain} {
		r := s.get("/" + tenant + "/v2.0/.well-known/openid-configuration")
		if r.status != http.StatusOK {
			t.Fatalf("openid-configuration(%s) = %d %s", tenant, r.status, r.body)
		}
		doc := r.json(t)
		base := s.srv.URL + "/" + tid
		want := map[string]any{"issuer": base + "/v2.0", "token_endpoint": base + "/oauth2/v2.0/token",
			"authorization_endpoint": base + "/oauth2/v2.0/authorize", "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
			"jwks_uri": base + "/discovery/v2.0/keys"}
		for k, v := range want {
			if doc[k] != v {
				t.Errorf("%s: %s = %v, want %v", tenant, k, doc[k], v)
			}
		}
		for _, k := range []string{"response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
			"scopes_supported", "token_endpoint_auth_methods_supported", "grant_types_supported", "code_challenge_methods_supported", "tenant_region_scope"} {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s: %s missing", tenant, k)
			}
		}
	}
	r := s.get("/" + tid + "/discovery/v2.0/keys")
	var set jose.JSONWebKeySet
	if err := jsonUnmarshal(r.body, &set); err != nil || r.status != http.StatusOK || len(set.Keys) != 1 {
		t.Fatalf("JWKS = %d %s (%v)", r.status, r.body, err)
	}
	if k := set.Keys[0]; !k.IsPublic() || k.KeyID == "" || k.Use != "sig" || k.Algorithm != "RS256" {
		t.Errorf("JWKS key = %+v", k)
	}
	if strings.Contains(r.body, `"d"`) || strings.Contains(r.body, `"p"`) {
		t.Errorf("JWKS leaks private parts: %s", r.body)
	}
	for _, path := range []string{"/nowhere.example.com/v2.0/.well-known/openid-configuration", "/" + "00000000-0000-4000-8000-000000000000" + "/discovery/v2.0/keys"} {
		r := s.get(path)
		if r.status != http.StatusNotFound || r.json(t)["error"] != "invalid_tenant" || !strings.Contains(r.body, "AADSTS90002") {
			t.Errorf("GET %s = %d %s, want 404 invalid_tenant", path, r.status, r.body)
		}
	}
}

func TestClientSecretCredential(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	for _, tc := range []struct {
		tenant, scope string
		sf            identity.Surface
	}{
		{s.a.Tenant.ID, vaultRes + "/.default", identity.KeyVault},
		{s.a.Tenant.DefaultDomain, identity.GraphResource + "/.default", identity.Graph},
		{s.a.Tenant.ID, "https://management.azure.com//.default", identity.ResourceManager},
	} {
		cred, err := azidentity.NewClientSecretCredential(tc.tenant, s.a.AdminApp.AppID, s.a.ClientSecret.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: s.clientOptions(), DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{tc.scope}})
		if err != nil {
			t.Fatalf("GetToken(%s, %s) = %v", tc.tenant, tc.scope, err)
		}
		if d := time.Until(tok.ExpiresOn); d < 50*time.Minute || d > 61*time.Minute {
			t.Errorf("ExpiresOn in %v, want about an hour", d)
		}
		p, err := s.svc.Verify(ctx, tok.Token, tc.sf)
		if err != nil {
			t.Fatalf("Verify(%s) = %v", tc.sf, err)
		}
		if p.TenantID != s.a.Tenant.ID || p.ObjectID != s.a.AdminSP.ID || p.Type != identity.AppPrincipal {
			t.Errorf("principal = %+v", p)
		}
	}
}

// stripIDs removes what differs between two identical refusals.
var idLines = regexp.MustCompile(`(?s)\r\nTrace ID: .*`)

func TestTokenErrors(t *testing.T) {
	s := newServer(t)
	tid := s.a.Tenant.ID
	tokenPath := "/" + tid + "/oauth2/v2.0/token"
	cc := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.a.AdminApp.AppID},
			"client_secret": {s.a.ClientSecret.Reveal()}, "scope": {vaultRes + "/.default openid offline_access profile"}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	raw := func(method, path, ctype, body string, hdr ...string) response {
		req, _ := http.NewRequest(method, s.srv.URL+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		return do(t, s.srv.Client(), req)
	}
	tests := []struct {
		name   string
		resp   func() response
		status int
		error  string
		code   int
		desc   string
	}{
		{"wrong secret", func() response { return s.post(tokenPath, cc("client_secret", "wrong")) }, 401, "invalid_client", 7000215, "Invalid client secret"},
		{"unknown tenant", func() response { return s.post("/nowhere.onmicrosoft.com/oauth2/v2.0/token", cc()) }, 400, "invalid_request", 90002, "Tenant 'nowhere.onmicrosoft.com' not found"},
		{"unknown resource", func() response { return s.post(tokenPath, cc("scope", "https://evil.example/.default")) }, 400, "invalid_resource", 500011, "https://evil.example was not found in the tenant named Contoso"},
		{"bad grant type", func() response { return s.post(tokenPath, cc("grant_type", "password")) }, 400, "unsupported_grant_type", 70003, "'password'"},
		{"duplicate parameter", func() response {
			return raw("POST", tokenPath, "application/x-www-form-urlencoded", cc().Encode()+"&scope=x")
		}, 400, "invalid_request", 9000411, "The parameter 'scope' is duplicated"},
		{"oversized body", func() response {
			return raw("POST", tokenPath, "application/x-www-form-urlencoded", cc().Encode()+"&pad="+strings.Repeat("a", 70<<10))
		}, 413, "invalid_request", 0, "too large"},
		{"JSON body", func() response {
			return raw("POST", tokenPath, "application/json", `{"grant_type":"client_credentials"}`)
		}, 400, "invalid_request", 0, "x-www-form-urlencoded"},
		{"malformed form", func() response { return raw("POST", tokenPath, "application/x-www-form-urlencoded", "grant_type=%zz") }, 400, "invalid_request", 0, "not a valid form"},
		{"secret in the URL", func() response {
			return raw("POST", tokenPath+"?client_secret=x", "application/x-www-form-urlencoded", cc("client_secret", "").Encode())
		}, 400, "invalid_request", 900144, "must be sent in the request body"},
		{"basic and body secret", func() response {
			return raw("POST", tokenPath, "application/x-www-form-urlencoded", cc().Encode(), "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.a.AdminApp.AppID+":x")))
		}, 400, "invalid_request", 0, "one client authentication method"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.resp()
			checkOAuthError(t, r, tc.status, tc.error, tc.code, tc.desc)
		})
	}

	t.Run("wrong secret and unknown client answer alike", func(t *testing.T) {
		r1 := s.post(tokenPath, cc("client_secret", "wrong"))
		r2 := s.post(tokenPath, cc("client_id", "12345678-aaaa-4bbb-8ccc-123456789012", "client_secret", "wrong"))
		b1, b2 := r1.json(t), r2.json(t)
		for _, b := range []map[string]any{b1, b2} {
			b["error_description"] = idLines.ReplaceAllString(b["error_description"].(string), "")
			delete(b, "trace_id")
			delete(b, "correlation_id")
			delete(b, "timestamp")
		}
		if r1.status != r2.status || !cmp.Equal(b1, b2) {
			t.Errorf("wrong secret: %d %v\nunknown client: %d %v", r1.status, b1, r2.status, b2)
		}
	})

	t.Run("ids", func(t *testing.T) {
		r := s.post(tokenPath, cc("client_secret", "wrong"), "client-request-id", "6f0a3d52-1c2b-4e11-9d5a-2b7c9c3e4f10")
		b := r.json(t)
		if b["trace_id"] != r.header.Get("x-ms-request-id") || b["correlation_id"] != "6f0a3d52-1c2b-4e11-9d5a-2b7c9c3e4f10" {
			t.Errorf("trace_id %v (header %s), correlation_id %v", b["trace_id"], r.header.Get("x-ms-request-id"), b["correlation_id"])
		}
		if _, err := time.Parse("2006-01-02 15:04:05Z", b["timestamp"].(string)); err != nil {
			t.Errorf("timestamp %v: %v", b["timestamp"], err)
		}
		d := b["error_description"].(string)
		if !strings.Contains(d, "Trace ID: "+b["trace_id"].(string)) || !strings.Contains(d, "Correlation ID: 6f0a3d52") || !strings.Contains(d, "Timestamp: ") {
			t.Errorf("error_description = %q", d)
		}
	})

	t.Run("HTTP Basic", func(t *testing.T) {
		basic := base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(s.a.AdminApp.AppID) + ":" + url.QueryEscape(s.a.ClientSecret.Reveal())))
		r := raw("POST", tokenPath, "application/x-www-form-urlencoded", cc("client_secret", "", "client_id", "").Encode(), "Authorization", "Basic "+basic)
		if r.status != http.StatusOK || r.json(t)["access_token"] == nil {
			t.Errorf("Basic = %d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control = %q", r.header.Get("Cache-Control"))
		}
	})

	t.Run("method", func(t *testing.T) {
		if r := s.get(tokenPath); r.status != http.StatusMethodNotAllowed {
			t.Errorf("GET token = %d", r.status)
		}
	})
}

func checkOAuthError(t *testing.T, r response, status int, errCode string, aadsts int, desc string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	b := r.json(t)
	if b["error"] != errCode || !strings.Contains(b["error_description"].(string), desc) {
		t.Errorf("body = %s; want error %s, description containing %q", r.body, errCode, desc)
	}
	codes, _ := b["error_codes"].([]any)
	if aadsts != 0 && (len(codes) != 1 || codes[0] != float64(aadsts)) {
		t.Errorf("error_codes = %v, want [%d]", b["error_codes"], aadsts)
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
		if s, _ := b[k].(string); s == "" {
			t.Errorf("%s missing from %s", k, r.body)
		}
	}
}

func TestMissingServicePrincipal(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	app, _, err := s.dir.CreateApplication(ctx, directory.System, s.a.Tenant.ID, directory.AppSpec{DisplayName: "Workload", MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	_, sec, err := s.dir.AddPassword(ctx, directory.System, s.a.Tenant.ID, app.AppID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	getToken := func() error {
		cred, err := azidentity.NewClientSecretCredential(s.b.Tenant.ID, app.AppID, sec.Reveal(),
			&azidentity.ClientSecretCredentialOptions{ClientOptions: s.clientOptions(), DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vaultRes + "/.default"}})
		return err
	}
	err = getToken()
	if err == nil {
		t.Fatal("GetToken in a tenant without the service principal succeeded")
	}
	for _, want := range []string{"AADSTS7000229", app.AppID, s.b.Tenant.ID, "unauthorized_client"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if strings.Contains(err.Error(), sec.Reveal()) {
		t.Error("the error echoes the secret")
	}
	if _, err := s.dir.CreateServicePrincipal(ctx, directory.System, s.b.Tenant.ID, app.AppID); err != nil {
		t.Fatal(err)
	}
	if err := getToken(); err != nil {
		t.Errorf("after CreateServicePrincipal: %v", err)
	}
}

func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "workload"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func TestClientCertificate(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	cert, key := selfSigned(t)
	appID := s.a.AdminApp.AppID
	if _, err := s.dir.AddCertificate(ctx, directory.System, s.a.Tenant.ID, appID, "test", cert.Raw); err != nil {
		t.Fatal(err)
	}
	cred, err := azidentity.NewClientCertificateCredential(s.a.Tenant.ID, appID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: s.clientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{vaultRes + "/.default"}})
	if err != nil {
		t.Fatalf("GetToken with a certificate: %v", err)
	}
	if p, err := s.svc.Verify(ctx, tok.Token, identity.KeyVault); err != nil || p.AppID != appID {
		t.Fatalf("Verify = %+v, %v", p, err)
	}

	otherCert, otherKey := selfSigned(t)
	aud := s.srv.URL + "/" + s.a.Tenant.ID + "/oauth2/v2.0/token"
	now := time.Now()
	type assertion struct {
		key            *rsa.PrivateKey
		der            []byte
		alg            jose.SignatureAlgorithm
		thumb          string
		iss, aud       string
		nbf, exp       time.Time
		jti            string
		omitThumbprint bool
	}
	good := assertion{key: key, der: cert.Raw, alg: jose.PS256, thumb: "x5t#S256", iss: appID, aud: aud, nbf: now, exp: now.Add(5 * time.Minute)}
	sign := func(a assertion) string {
		var tp []byte
		if a.thumb == "x5t" {
			h := sha1.Sum(a.der)
			tp = h[:]
		} else {
			h := sha256.Sum256(a.der)
			tp = h[:]
		}
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if !a.omitThumbprint {
			opts = opts.WithHeader(jose.HeaderKey(a.thumb), base64.RawURLEncoding.EncodeToString(tp))
		}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: a.key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if a.jti == "" {
			a.jti = newJTI()
		}
		out, err := jwt.Signed(sig).Claims(jwt.Claims{Issuer: a.iss, Subject: a.iss, Audience: jwt.Audience{a.aud},
			NotBefore: jwt.NewNumericDate(a.nbf), Expiry: jwt.NewNumericDate(a.exp), ID: a.jti}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	mod := func(f func(*assertion)) string { a := good; f(&a); return sign(a) }
	form := func(assertion string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {appID}, "scope": {vaultRes + "/.default"},
			"client_assertion_type": {identity.ClientAssertionType}, "client_assertion": {assertion}}
	}
	replayed := sign(good)
	tests := []struct {
		name      string
		assertion string
		status    int
		desc      string
	}{
		{"RS256 with x5t (SHA-1)", mod(func(a *assertion) { a.alg, a.thumb = jose.RS256, "x5t" }), 200, ""},
		{"first use", replayed, 200, ""},
		{"replay", replayed, 401, "jti was already used"},
		{"unregistered certificate", mod(func(a *assertion) { a.key, a.der = otherKey, otherCert.Raw }), 401, "AADSTS700027"},
		{"signed by another key", mod(func(a *assertion) { a.key = otherKey }), 401, "signature is not valid"},
		{"no thumbprint", mod(func(a *assertion) { a.omitThumbprint = true }), 401, "names no certificate"},
		{"wrong audience", mod(func(a *assertion) { a.aud = "https://login.microsoftonline.com/x/oauth2/v2.0/token" }), 401, "audience must be the token endpoint"},
		{"wrong issuer", mod(func(a *assertion) { a.iss = s.b.AdminApp.AppID }), 401, "AADSTS700021"},
		{"expired", mod(func(a *assertion) { a.nbf, a.exp = now.Add(-time.Hour), now.Add(-10*time.Minute) }), 401, "AADSTS700024"},
		{"too long", mod(func(a *assertion) { a.exp = now.Add(time.Hour) }), 401, "more than 10 minutes ahead"},
		{"HS256", func() string {
			sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
			out, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: appID}).Serialize()
			return out
		}(), 401, "RS256 or PS256"},
		{"garbage", "not-a-jwt", 401, "AADSTS700027"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := s.post("/"+s.a.Tenant.ID+"/oauth2/v2.0/token", form(tc.assertion))
			if tc.status == 200 {
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				return
			}
			checkOAuthError(t, r, tc.status, "invalid_client", 0, tc.desc)
			if strings.Contains(r.body, tc.assertion) {
				t.Error("the answer echoes the assertion")
			}
		})
	}
}

func newJTI() string { return rand.Text() }

func TestThrottling(t *testing.T) {
	s := newServer(t)
	path := "/" + s.a.Tenant.ID + "/oauth2/v2.0/token"
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {s.a.AdminApp.AppID},
		"client_secret": {"wrong"}, "scope": {vaultRes + "/.default"}}
	for range 10 {
		if r := s.post(path, form); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret = %d %s", r.status, r.body)
		}
	}
	form.Set("client_secret", s.a.ClientSecret.Reveal())
	r := s.post(path, form)
	checkOAuthError(t, r, http.StatusTooManyRequests, "temporarily_unavailable", 50053, "Too many failed sign-in attempts")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After = %q", ra)
	}
	s.clock.Advance(5*time.Minute + time.Second)
	if r := s.post(path, form); r.status != http.StatusOK {
		t.Errorf("after the window: %d %s", r.status, r.body)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
