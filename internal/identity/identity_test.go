package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.a
	tests := []struct {
		name     string
		req      identity.TokenRequest
		kind     errkind.Kind
		code     string
		contains string
	}{
		{"wrong secret", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: secret.NewString("nope"), Scope: vaultRes + "/.default"},
			errkind.Unauthenticated, identity.CodeInvalidClient, "AADSTS7000215: Invalid client secret provided."},
		{"unknown client", identity.TokenRequest{ClientID: "11111111-2222-3333-4444-555555555555", ClientSecret: secret.NewString("nope"), Scope: vaultRes + "/.default"},
			errkind.Unauthenticated, identity.CodeInvalidClient, "AADSTS7000215: Invalid client secret provided."},
		{"no credential", identity.TokenRequest{ClientID: a.AdminApp.AppID, Scope: vaultRes + "/.default"},
			errkind.Unauthenticated, identity.CodeInvalidClient, "AADSTS7000218"},
		{"no client id", identity.TokenRequest{ClientSecret: a.ClientSecret, Scope: vaultRes + "/.default"},
			errkind.Invalid, identity.CodeInvalidRequest, "'client_id'"},
		{"no scope", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret},
			errkind.Invalid, identity.CodeInvalidRequest, "AADSTS900144: The request body must contain the following parameter: 'scope'."},
		{"scope without /.default", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret, Scope: vaultRes + "/user_impersonation"},
			errkind.Invalid, identity.CodeInvalidScope, "AADSTS1002012"},
		{"only openid scopes", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret, Scope: "openid profile offline_access"},
			errkind.Invalid, identity.CodeInvalidScope, "AADSTS1002012"},
		{"two resources", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret, Scope: vaultRes + "/.default " + identity.GraphResource + "/.default"},
			errkind.Invalid, identity.CodeInvalidScope, "AADSTS28000"},
		{"unknown resource", identity.TokenRequest{ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret, Scope: "https://evil.example/.default"},
			errkind.Invalid, identity.CodeInvalidResource, "AADSTS500011: The resource principal named https://evil.example was not found in the tenant named Contoso."},
		{"unsupported grant", identity.TokenRequest{GrantType: "password", ClientID: a.AdminApp.AppID},
			errkind.Invalid, identity.CodeUnsupportedGrantType, "AADSTS70003: The app requested an unsupported grant type 'password'."},
		{"no grant type", identity.TokenRequest{GrantType: "-", ClientID: a.AdminApp.AppID},
			errkind.Invalid, identity.CodeInvalidRequest, "'grant_type'"},
		{"unknown tenant", identity.TokenRequest{Tenant: "nowhere.onmicrosoft.com", ClientID: a.AdminApp.AppID, ClientSecret: a.ClientSecret, Scope: vaultRes + "/.default"},
			errkind.Invalid, identity.CodeInvalidRequest, "AADSTS90002: Tenant 'nowhere.onmicrosoft.com' not found."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			if req.Tenant == "" {
				req.Tenant = a.Tenant.ID
			}
			switch req.GrantType {
			case "":
				req.GrantType = identity.GrantClientCredentials
			case "-":
				req.GrantType = ""
			}
			_, err := e.svc.Token(ctx, req)
			wantErr(t, err, tc.kind, tc.code, tc.contains)
		})
	}

	t.Run("wrong secret and unknown client answer alike", func(t *testing.T) {
		_, err1 := e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantClientCredentials,
			ClientID: a.AdminApp.AppID, ClientSecret: secret.NewString("wrong"), Scope: vaultRes + "/.default"})
		_, err2 := e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantClientCredentials,
			ClientID: "99999999-2222-3333-4444-555555555555", ClientSecret: secret.NewString("wrong"), Scope: vaultRes + "/.default"})
		if errkind.Public(err1) != errkind.Public(err2) || codeOf(err1) != codeOf(err2) {
			t.Errorf("wrong secret: %v; unknown client: %v; want the same answer", err1, err2)
		}
	})

	for _, tc := range []struct {
		scope, aud string
		sf         identity.Surface
	}{
		{vaultRes + "/.default", vaultRes, identity.KeyVault},
		{"https://vault.azure.net/.default", "https://vault.azure.net", identity.KeyVault},
		{"https://graph.microsoft.com/.default openid profile offline_access", identity.GraphResource, identity.Graph},
		{"https://management.azure.com//.default", "https://management.azure.com/", identity.ResourceManager},
		{"https://management.core.windows.net//.default", identity.ARMLegacyResource, identity.ResourceManager},
		{publicURL + "/.default", publicURL, identity.ResourceManager},
	} {
		t.Run("issue "+tc.scope, func(t *testing.T) {
			tok := e.appToken(tc.scope)
			p, err := e.svc.Verify(ctx, tok, tc.sf)
			if err != nil {
				t.Fatalf("Verify(%s) = %v", tc.sf, err)
			}
			want := identity.Principal{TenantID: a.Tenant.ID, ObjectID: a.AdminSP.ID, AppID: a.AdminApp.AppID,
				Type: identity.AppPrincipal, Name: a.AdminApp.DisplayName, Audience: tc.aud,
				ExpiresAt: e.clock.Now().Add(time.Hour), TokenID: p.TokenID}
			if diff := cmp.Diff(want, p); diff != "" {
				t.Errorf("Verify principal mismatch (-want +got):\n%s", diff)
			}
			if p.TokenID == "" {
				t.Error("TokenID is empty")
			}
			claims := decodeClaims(t, tok)
			for _, c := range []string{"aud", "iss", "iat", "nbf", "exp", "tid", "oid", "sub", "appid", "azp", "idtyp", "ver", "jti", "uti"} {
				if _, ok := claims[c]; !ok {
					t.Errorf("claim %q missing from %v", c, claims)
				}
			}
			if claims["iss"] != publicURL+"/"+a.Tenant.ID+"/v2.0" || claims["idtyp"] != "app" || claims["ver"] != "2.0" {
				t.Errorf("claims = %v", claims)
			}
			if _, ok := claims["scp"]; ok {
				t.Error("an app token carries scp")
			}
		})
	}
}

func codeOf(err error) string {
	if e, ok := errkind.As(err); ok {
		return e.Code
	}
	return ""
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCrossTenantRule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sys := directory.System
	// A multi-tenant app of tenant a asks for a token in tenant b.
	app, _, err := e.dir.CreateApplication(ctx, sys, e.a.Tenant.ID, directory.AppSpec{DisplayName: "Workload", MultiTenant: true})
	if err != nil {
		t.Fatal(err)
	}
	_, sec, err := e.dir.AddPassword(ctx, sys, e.a.Tenant.ID, app.AppID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	single, _, err := e.dir.CreateApplication(ctx, sys, e.a.Tenant.ID, directory.AppSpec{DisplayName: "Local only"})
	if err != nil {
		t.Fatal(err)
	}
	_, singleSec, err := e.dir.AddPassword(ctx, sys, e.a.Tenant.ID, single.AppID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	inB := func(appID string, s secret.String) (identity.TokenResponse, error) {
		return e.svc.Token(ctx, identity.TokenRequest{Tenant: e.b.Tenant.DefaultDomain, GrantType: identity.GrantClientCredentials,
			ClientID: appID, ClientSecret: s, Scope: vaultRes + "/.default"})
	}

	_, err = inB(app.AppID, sec)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
		"AADSTS7000229: The client application "+app.AppID+" is missing service principal in the tenant "+e.b.Tenant.ID+".")
	if n, _ := identity.Details(err); n != 7000229 {
		t.Errorf("Details().AADSTS = %d, want 7000229", n)
	}
	if got := e.auditText(e.b.Tenant.ID); !strings.Contains(got, "AADSTS7000229") || !strings.Contains(got, `"result":"denied"`) {
		t.Errorf("tenant b's audit log lacks the refusal: %s", got)
	}

	_, err = inB(single.AppID, singleSec)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
		"AADSTS700016: Application with identifier '"+single.AppID+"' was not found in the directory '"+e.b.Tenant.ID+"'.")

	sp, err := e.dir.CreateServicePrincipal(ctx, sys, e.b.Tenant.ID, app.AppID)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := inB(app.AppID, sec)
	if err != nil {
		t.Fatalf("after CreateServicePrincipal: %v", err)
	}
	p, err := e.svc.Verify(ctx, resp.AccessToken, identity.KeyVault)
	if err != nil {
		t.Fatal(err)
	}
	if p.TenantID != e.b.Tenant.ID || p.ObjectID != sp.ID || p.AppID != app.AppID {
		t.Errorf("principal = %+v, want tenant %s, object %s (the SP in b)", p, e.b.Tenant.ID, sp.ID)
	}

	// A disabled service principal is refused. The directory has no API
	// for disabling yet, so flip the stored flag as Graph's PATCH would.
	spKey := "directory/sp/" + e.b.Tenant.ID + "/" + sp.ID
	err = e.store.Update(ctx, func(tx storage.Tx) error {
		en, err := tx.Get(spKey)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(en.Value, &rec); err != nil {
			return err
		}
		rec["accountEnabled"] = false
		b, _ := json.Marshal(rec)
		_, err = tx.Put(spKey, b, en.Version)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = inB(app.AppID, sec)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000112")

	if err := e.dir.DeleteServicePrincipal(ctx, sys, e.b.Tenant.ID, sp.ID); err != nil {
		t.Fatal(err)
	}
	_, err = inB(app.AppID, sec)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000229")
}

func TestVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.a.Tenant.ID
	now := e.clock.Now()
	std := func(iss string, iat, nbf, exp time.Time, aud string) jwt.Claims {
		return jwt.Claims{Issuer: iss, Subject: e.a.AdminSP.ID, Audience: jwt.Audience{aud}, IssuedAt: jwt.NewNumericDate(iat),
			NotBefore: jwt.NewNumericDate(nbf), Expiry: jwt.NewNumericDate(exp), ID: "jti"}
	}
	app := func(tid string) map[string]any {
		return map[string]any{"tid": tid, "oid": e.a.AdminSP.ID, "appid": e.a.AdminApp.AppID, "azp": e.a.AdminApp.AppID,
			"idtyp": "app", "ver": "2.0", "uti": "u"}
	}
	mint := func(claims ...any) string {
		tok, err := identity.MintForTest(e.svc, claims...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	iss := publicURL + "/" + a + "/v2.0"
	jwks, err := e.svc.JWKS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kid := jwks.Keys[0].KeyID
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged := signWith(t, jose.RS256, jose.JSONWebKey{Key: otherKey, KeyID: kid}, std(iss, now, now, now.Add(time.Hour), vaultRes), app(a))
	unknownKid := signWith(t, jose.RS256, jose.JSONWebKey{Key: otherKey, KeyID: "not-a-known-kid"}, std(iss, now, now, now.Add(time.Hour), vaultRes), app(a))
	hmacKey := jwks.Keys[0].Key.(*rsa.PublicKey).N.Bytes()
	hs256 := signWith(t, jose.HS256, jose.JSONWebKey{Key: hmacKey, KeyID: kid}, std(iss, now, now, now.Add(time.Hour), vaultRes), app(a))
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT","kid":"` + kid + `"}`))
	payload, _ := json.Marshal(map[string]any{"iss": iss, "aud": vaultRes, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "tid": a,
		"oid": "x", "appid": "y", "idtyp": "app", "ver": "2.0"})
	algNone := noneHeader + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
	unknownTenant := "12345678-1234-4234-8234-123456789012"

	tests := []struct {
		name     string
		token    string
		sf       identity.Surface
		contains string
	}{
		{"empty", "", identity.KeyVault, "no access token"},
		{"garbage", "not a token", identity.KeyVault, "not a JWT"},
		{"alg none", algNone, identity.KeyVault, "not signed with RS256"},
		{"HS256 with the public key as secret", hs256, identity.KeyVault, "not signed with RS256"},
		{"forged: another key under our kid", forged, identity.KeyVault, "signature is not valid"},
		{"unknown kid", unknownKid, identity.KeyVault, "unknown kid"},
		{"expired", mint(std(iss, now.Add(-2*time.Hour), now.Add(-2*time.Hour), now.Add(-time.Hour), vaultRes), app(a)), identity.KeyVault, "the token has expired"},
		{"future nbf", mint(std(iss, now, now.Add(time.Hour), now.Add(2*time.Hour), vaultRes), app(a)), identity.KeyVault, "not valid yet"},
		{"future iat", mint(std(iss, now.Add(time.Hour), now, now.Add(2*time.Hour), vaultRes), app(a)), identity.KeyVault, "issued in the future"},
		{"graph token at Key Vault", mint(std(iss, now, now, now.Add(time.Hour), identity.GraphResource), app(a)), identity.KeyVault,
			"the token's audience https://graph.microsoft.com is not accepted by Key Vault; request a token for " + vaultRes + "/.default"},
		{"vault token at Graph", mint(std(iss, now, now, now.Add(time.Hour), vaultRes), app(a)), identity.Graph, "not accepted by Microsoft Graph"},
		{"issuer of another tenant", mint(std(publicURL+"/"+e.b.Tenant.ID+"/v2.0", now, now, now.Add(time.Hour), vaultRes), app(a)), identity.KeyVault,
			"is not this server's issuer for tenant " + a},
		{"issuer of another server", mint(std("https://login.microsoftonline.com/"+a+"/v2.0", now, now, now.Add(time.Hour), vaultRes), app(a)), identity.KeyVault,
			"is not this server's issuer"},
		{"tenant that does not exist", mint(std(publicURL+"/"+unknownTenant+"/v2.0", now, now, now.Add(time.Hour), vaultRes), app(unknownTenant)), identity.KeyVault,
			"tenant " + unknownTenant + " does not exist"},
		{"no exp", mint(jwt.Claims{Issuer: iss, Audience: jwt.Audience{vaultRes}, IssuedAt: jwt.NewNumericDate(now)}, app(a)), identity.KeyVault, "lacks exp"},
	}
	// Each refusal holds as well on a connection whose memo holds a good
	// token (verified just before, as a client's earlier request).
	conn := identity.WithConnectionMemo(ctx, nil)
	if _, err := e.svc.Verify(conn, e.appToken(vaultRes+"/.default"), identity.KeyVault); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"", ctx}, {"on a connection/", conn}} {
		for _, tc := range tests {
			t.Run(c.name+tc.name, func(t *testing.T) {
				_, err := e.svc.Verify(c.ctx, tc.token, tc.sf)
				wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidToken, tc.contains)
				if tc.token != "" && strings.Contains(err.Error(), tc.token) {
					t.Errorf("the error echoes the token: %v", err)
				}
			})
		}
	}

	t.Run("skew", func(t *testing.T) {
		tok := e.appToken(vaultRes + "/.default")
		e.clock.Advance(time.Hour + 4*time.Minute) // expired, but within the 5 minutes of skew
		if _, err := e.svc.Verify(ctx, tok, identity.KeyVault); err != nil {
			t.Errorf("Verify within skew = %v", err)
		}
		e.clock.Advance(2 * time.Minute)
		_, err := e.svc.Verify(ctx, tok, identity.KeyVault)
		wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidToken, "the token has expired")
	})
}

func signWith(t *testing.T, alg jose.SignatureAlgorithm, key jose.JSONWebKey, claims ...any) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b := jwt.Signed(sig)
	for _, c := range claims {
		b = b.Claims(c)
	}
	tok, err := b.Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestKeyRotation(t *testing.T) {
	e := newEnv(t, func(o *identity.Options) { o.KeyRotation = 10 * time.Minute })
	ctx := context.Background()
	kids := func(s *identity.Service) []string {
		set, err := s.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range set.Keys {
			if !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" {
				t.Errorf("JWKS key %s: public %v alg %q use %q", k.KeyID, k.IsPublic(), k.Algorithm, k.Use)
			}
			out = append(out, k.KeyID)
		}
		return out
	}
	first := kids(e.svc)
	if len(first) != 1 {
		t.Fatalf("JWKS has %d keys at start, want 1", len(first))
	}
	old := e.appToken(vaultRes + "/.default")

	// A second node on the same store sees the same key.
	node2 := e.newService(func(o *identity.Options) { o.KeyRotation = 10 * time.Minute })
	if got := kids(node2); !cmp.Equal(got, first) {
		t.Errorf("second node's JWKS = %v, want %v", got, first)
	}

	e.clock.Advance(11 * time.Minute)
	if err := e.svc.RotateKeysIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	both := kids(e.svc)
	if len(both) != 2 || both[0] != first[0] {
		t.Fatalf("JWKS after rotation = %v, want [%s new]", both, first[0])
	}
	newTok := e.appToken(vaultRes + "/.default")
	if h := jwtHeader(t, newTok); h["kid"] != both[1] || h["alg"] != "RS256" || h["typ"] != "JWT" {
		t.Errorf("new token header = %v, want kid %s", h, both[1])
	}
	for name, tok := range map[string]string{"old key": old, "new key": newTok} {
		if _, err := e.svc.Verify(ctx, tok, identity.KeyVault); err != nil {
			t.Errorf("Verify(token signed by the %s) = %v", name, err)
		}
		// The second node learns the new kid from the store on first sight.
		if _, err := node2.Verify(ctx, tok, identity.KeyVault); err != nil {
			t.Errorf("node2.Verify(token signed by the %s) = %v", name, err)
		}
	}

	// Both nodes due at once: one rotation wins, both adopt it.
	e.clock.Advance(11 * time.Minute)
	var wg sync.WaitGroup
	for _, s := range []*identity.Service{e.svc, node2} {
		wg.Go(func() {
			if err := s.RotateKeysIfDue(ctx); err != nil {
				t.Errorf("RotateKeysIfDue: %v", err)
			}
		})
	}
	wg.Wait()
	k1, k2 := kids(e.svc), kids(node2)
	if !cmp.Equal(k1, k2) || len(k1) != 3 {
		t.Errorf("after concurrent rotation: node1 %v, node2 %v; want the same three keys", k1, k2)
	}

	// Once every token of the first key has expired, it is unpublished.
	e.clock.Advance(time.Hour)
	if err := e.svc.RotateKeysIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	after := kids(e.svc)
	for _, k := range after {
		if k == first[0] {
			t.Errorf("JWKS %v still lists the first key after its tokens expired", after)
		}
	}
	if _, err := e.svc.Verify(ctx, old, identity.KeyVault); err == nil {
		t.Error("a token of the dropped key still verifies")
	}
}

func jwtHeader(t *testing.T, tok string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestThrottle(t *testing.T) {
	e := newEnv(t)
	ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: "r", ClientIP: "192.0.2.1"})
	req := identity.TokenRequest{Tenant: e.a.Tenant.ID, GrantType: identity.GrantClientCredentials,
		ClientID: e.a.AdminApp.AppID, Scope: vaultRes + "/.default"}
	wrong, right := req, req
	wrong.ClientSecret, right.ClientSecret = secret.NewString("wrong"), e.a.ClientSecret
	for i := range 10 {
		_, err := e.svc.Token(ctx, wrong)
		wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidClient, "AADSTS7000215")
		_ = i
	}
	_, err := e.svc.Token(ctx, right)
	wantErr(t, err, errkind.TooManyRequests, identity.CodeTemporarilyUnavailable, "Too many failed sign-in attempts")
	if _, wait := identity.Details(err); wait <= 0 || wait > 5*time.Minute {
		t.Errorf("RetryAfter = %v, want within the 5-minute window", wait)
	}
	// Another address is locked out too: the client's counter holds.
	other := audit.WithMeta(context.Background(), audit.Meta{RequestID: "r2", ClientIP: "198.51.100.7"})
	if _, err := e.svc.Token(other, right); errkind.KindOf(err) != errkind.TooManyRequests {
		t.Errorf("from another address: %v, want throttled", err)
	}
	// The address is locked for other clients as well.
	bReq := identity.TokenRequest{Tenant: e.b.Tenant.ID, GrantType: identity.GrantClientCredentials,
		ClientID: e.b.AdminApp.AppID, ClientSecret: e.b.ClientSecret, Scope: vaultRes + "/.default"}
	if _, err := e.svc.Token(ctx, bReq); errkind.KindOf(err) != errkind.TooManyRequests {
		t.Errorf("other client from the same address: %v, want throttled", err)
	}
	if _, err := e.svc.Token(other, bReq); err != nil {
		t.Errorf("other client from another address: %v", err)
	}
	if got := e.auditText(e.a.Tenant.ID); !strings.Contains(got, "Too many failed sign-in attempts") {
		t.Errorf("the throttled refusal is not audited: %s", got)
	}
	e.clock.Advance(5*time.Minute + time.Second)
	if _, err := e.svc.Token(ctx, right); err != nil {
		t.Errorf("after the window: %v", err)
	}

	t.Run("passwords", func(t *testing.T) {
		ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: "r", ClientIP: "203.0.113.9"})
		upn := e.a.Admin.UserPrincipalName
		for range 10 {
			da, err := e.svc.StartDeviceCode(ctx, e.a.Tenant.ID, directory.CLIAppID, vaultRes+"/.default")
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.svc.ApproveDeviceCode(ctx, da.UserCode, upn, secret.NewString("wrong password"))
			wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidGrant, "AADSTS50126")
		}
		da, err := e.svc.StartDeviceCode(ctx, e.a.Tenant.ID, directory.CLIAppID, vaultRes+"/.default")
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.ApproveDeviceCode(ctx, da.UserCode, upn, e.a.AdminPassword)
		wantErr(t, err, errkind.TooManyRequests, identity.CodeTemporarilyUnavailable, "Too many")
	})

	t.Run("user codes", func(t *testing.T) {
		ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: "r", ClientIP: "203.0.113.10"})
		for range 10 {
			_, err := e.svc.DescribeUserCode(ctx, "BBBB-BBBB")
			wantErr(t, err, errkind.NotFound, identity.CodeInvalidGrant, "not valid or has expired")
		}
		_, err := e.svc.DescribeUserCode(ctx, "BBBB-BBBB")
		wantErr(t, err, errkind.TooManyRequests, identity.CodeTemporarilyUnavailable, "Too many")
	})
}

// poll redeems a device code once.
func poll(e *env, tenant, deviceCode string) (identity.TokenResponse, error) {
	return e.svc.Token(context.Background(), identity.TokenRequest{Tenant: tenant, GrantType: identity.GrantDeviceCode,
		ClientID: directory.CLIAppID, DeviceCode: secret.NewString(deviceCode)})
}

func TestDeviceCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.a
	da, err := e.svc.StartDeviceCode(ctx, a.Tenant.DefaultDomain, directory.CLIAppID, "https://management.core.windows.net//.default openid profile offline_access")
	if err != nil {
		t.Fatal(err)
	}
	if len(da.UserCode) != 9 || da.UserCode[4] != '-' || da.VerificationURI != publicURL+"/devicelogin" || da.ExpiresIn != 900 ||
		da.Interval != 5 || len(da.DeviceCode) < 40 || !strings.Contains(da.Message, da.UserCode) {
		t.Errorf("StartDeviceCode = %+v", da)
	}
	_, err = poll(e, a.Tenant.ID, da.DeviceCode)
	wantErr(t, err, errkind.Invalid, identity.CodeAuthorizationPending, "AADSTS70016")
	_, err = poll(e, a.Tenant.ID, da.DeviceCode)
	wantErr(t, err, errkind.Invalid, identity.CodeSlowDown, "Polling too fast")
	e.clock.Advance(5 * time.Second)
	_, err = poll(e, a.Tenant.ID, da.DeviceCode)
	wantErr(t, err, errkind.Invalid, identity.CodeAuthorizationPending, "AADSTS70016")

	req, err := e.svc.DescribeUserCode(ctx, strings.ToLower(strings.ReplaceAll(da.UserCode, "-", " ")))
	if err != nil {
		t.Fatalf("DescribeUserCode(typed loosely) = %v", err)
	}
	if req.AppID != directory.CLIAppID || req.TenantID != a.Tenant.ID || req.TenantName != "Contoso" || req.Resource != identity.ARMLegacyResource {
		t.Errorf("DescribeUserCode = %+v", req)
	}
	_, err = e.svc.ApproveDeviceCode(ctx, da.UserCode, a.Admin.UserPrincipalName, secret.NewString("wrong password"))
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidGrant, "AADSTS50126")
	// A user of another tenant cannot approve a code of this one.
	_, err = e.svc.ApproveDeviceCode(ctx, da.UserCode, e.b.Admin.UserPrincipalName, e.b.AdminPassword)
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidGrant, "AADSTS50126")
	if _, err := e.svc.ApproveDeviceCode(ctx, da.UserCode, a.Admin.UserPrincipalName, a.AdminPassword); err != nil {
		t.Fatalf("ApproveDeviceCode = %v", err)
	}
	e.clock.Advance(5 * time.Second)
	// Another client cannot redeem it.
	_, err = e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantDeviceCode,
		ClientID: a.AdminApp.AppID, DeviceCode: secret.NewString(da.DeviceCode)})
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")
	resp, err := poll(e, a.Tenant.ID, da.DeviceCode)
	if err != nil {
		t.Fatalf("poll after approval = %v", err)
	}
	p, err := e.svc.Verify(ctx, resp.AccessToken, identity.ResourceManager)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != identity.UserPrincipal || p.ObjectID != a.Admin.ID || p.Name != a.Admin.UserPrincipalName || p.AppID != directory.CLIAppID {
		t.Errorf("principal = %+v", p)
	}
	ac := decodeClaims(t, resp.AccessToken)
	if ac["scp"] != "user_impersonation" || ac["upn"] != a.Admin.UserPrincipalName || ac["idtyp"] != "user" || ac["aud"] != identity.ARMLegacyResource {
		t.Errorf("access token claims = %v", ac)
	}
	id := decodeClaims(t, resp.IDToken)
	if id["aud"] != directory.CLIAppID || id["oid"] != a.Admin.ID || id["tid"] != a.Tenant.ID || id["preferred_username"] != a.Admin.UserPrincipalName {
		t.Errorf("ID token claims = %v", id)
	}
	ci, err := base64.RawURLEncoding.DecodeString(resp.ClientInfo)
	if err != nil || string(ci) != `{"uid":"`+a.Admin.ID+`","utid":"`+a.Tenant.ID+`"}` {
		t.Errorf("client_info = %q (%v)", ci, err)
	}
	if resp.RefreshToken == "" || resp.Scope != identity.ARMLegacyResource+"/user_impersonation "+identity.ARMLegacyResource+"/.default" {
		t.Errorf("response = %v, scope %q", resp, resp.Scope)
	}
	_, err = poll(e, a.Tenant.ID, da.DeviceCode)
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")

	t.Run("refresh rotates", func(t *testing.T) {
		refresh := func(rt, scope string) (identity.TokenResponse, error) {
			return e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantRefreshToken,
				ClientID: directory.CLIAppID, RefreshToken: secret.NewString(rt), Scope: scope})
		}
		r2, err := refresh(resp.RefreshToken, identity.GraphResource+"/.default openid offline_access profile")
		if err != nil {
			t.Fatal(err)
		}
		if p, err := e.svc.Verify(ctx, r2.AccessToken, identity.Graph); err != nil || p.ObjectID != a.Admin.ID {
			t.Errorf("Verify(refreshed Graph token) = %+v, %v", p, err)
		}
		if r2.RefreshToken == "" || r2.RefreshToken == resp.RefreshToken {
			t.Error("the refresh token was not rotated")
		}
		_, err = refresh(resp.RefreshToken, "")
		wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")
		_, err = e.svc.Token(ctx, identity.TokenRequest{Tenant: e.b.Tenant.ID, GrantType: identity.GrantRefreshToken,
			ClientID: directory.CLIAppID, RefreshToken: secret.NewString(r2.RefreshToken)})
		wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")
		e.clock.Advance(identity.RefreshTokenLifetime)
		_, err = refresh(r2.RefreshToken, "")
		wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70008")
	})

	t.Run("no secrets in the audit log", func(t *testing.T) {
		logText := e.auditText(a.Tenant.ID)
		for name, s := range map[string]string{"device code": da.DeviceCode, "refresh token": resp.RefreshToken,
			"access token": resp.AccessToken, "password": a.AdminPassword.Reveal(), "client secret": a.ClientSecret.Reveal()} {
			if strings.Contains(logText, s) {
				t.Errorf("the audit log holds the %s", name)
			}
		}
		for _, want := range []string{"identity/deviceCode/start", "identity/deviceCode/approve", "identity/token", "AADSTS50126"} {
			if !strings.Contains(logText, want) {
				t.Errorf("the audit log lacks %q", want)
			}
		}
	})
}

func TestDeviceCodeRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.a

	_, err := e.svc.StartDeviceCode(ctx, a.Tenant.ID, a.AdminApp.AppID, vaultRes+"/.default")
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidClient, "AADSTS7000218")
	_, err = e.svc.StartDeviceCode(ctx, a.Tenant.ID, directory.CLIAppID, "https://evil.example/.default")
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidResource, "AADSTS500011")

	t.Run("declined", func(t *testing.T) {
		da, err := e.svc.StartDeviceCode(ctx, a.Tenant.ID, directory.CLIAppID, vaultRes+"/.default")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DenyDeviceCode(ctx, da.UserCode); err != nil {
			t.Fatal(err)
		}
		_, err = poll(e, a.Tenant.ID, da.DeviceCode)
		wantErr(t, err, errkind.PermissionDenied, identity.CodeAccessDenied, "declined")
	})

	t.Run("expired", func(t *testing.T) {
		da, err := e.svc.StartDeviceCode(ctx, a.Tenant.ID, directory.CLIAppID, vaultRes+"/.default")
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(identity.DeviceCodeLifetime)
		_, err = poll(e, a.Tenant.ID, da.DeviceCode)
		wantErr(t, err, errkind.Invalid, identity.CodeExpiredToken, "AADSTS70020")
		_, err = e.svc.ApproveDeviceCode(ctx, da.UserCode, a.Admin.UserPrincipalName, a.AdminPassword)
		wantErr(t, err, errkind.NotFound, identity.CodeInvalidGrant, "not valid or has expired")
		n, err := e.svc.Sweep(ctx)
		if err != nil || n < 1 {
			t.Errorf("Sweep() = %d, %v; want at least the expired device code", n, err)
		}
		_, err = poll(e, a.Tenant.ID, da.DeviceCode)
		wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")
	})

	t.Run("service principal removed", func(t *testing.T) {
		sp, err := e.dir.ServicePrincipalByAppID(ctx, a.Tenant.ID, directory.CLIAppID)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.dir.DeleteServicePrincipal(ctx, directory.System, a.Tenant.ID, sp.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.svc.StartDeviceCode(ctx, a.Tenant.ID, directory.CLIAppID, vaultRes+"/.default")
		wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000229: The client application "+directory.CLIAppID)
	})
}

func TestAuthorizationCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.a
	verifier := strings.Repeat("v", 50)
	challenge := s256(verifier)
	req := identity.AuthorizeRequest{Tenant: a.Tenant.ID, ClientID: directory.CLIAppID, ResponseType: "code",
		RedirectURI: "http://localhost:53123", Scope: vaultRes + "/.default openid offline_access", State: "st",
		CodeChallenge: challenge, CodeChallengeMethod: "S256", Nonce: "n0nce"}

	bad := []struct {
		name       string
		mod        func(*identity.AuthorizeRequest)
		code       string
		redirectOK bool
	}{
		{"unregistered redirect", func(r *identity.AuthorizeRequest) { r.RedirectURI = "https://evil.example/cb" }, identity.CodeInvalidRequest, false},
		{"https loopback is not http", func(r *identity.AuthorizeRequest) { r.RedirectURI = "https://localhost:8080" }, identity.CodeInvalidRequest, false},
		{"unknown client", func(r *identity.AuthorizeRequest) { r.ClientID = "11111111-2222-3333-4444-555555555555" }, identity.CodeUnauthorizedClient, false},
		{"implicit flow", func(r *identity.AuthorizeRequest) { r.ResponseType = "token" }, identity.CodeUnsupportedResponseType, true},
		{"no PKCE", func(r *identity.AuthorizeRequest) { r.CodeChallenge = "" }, identity.CodeInvalidRequest, true},
		{"plain PKCE", func(r *identity.AuthorizeRequest) { r.CodeChallengeMethod = "plain" }, identity.CodeInvalidRequest, true},
		{"bad scope", func(r *identity.AuthorizeRequest) { r.Scope = "https://evil.example/.default" }, identity.CodeInvalidResource, true},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			r := req
			tc.mod(&r)
			info, err := e.svc.CheckAuthorize(ctx, r)
			if codeOf(err) != tc.code {
				t.Fatalf("CheckAuthorize = %v, want code %s", err, tc.code)
			}
			if _, ok := identity.ErrorRedirect(info, r.State, err); ok != tc.redirectOK {
				t.Errorf("ErrorRedirect ok = %v, want %v", ok, tc.redirectOK)
			}
		})
	}

	to, err := e.svc.Authorize(ctx, req, a.Admin.UserPrincipalName, a.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	code := queryParam(t, to, "code")
	if queryParam(t, to, "state") != "st" || !strings.HasPrefix(to, "http://localhost:53123?") {
		t.Errorf("redirect = %s", to)
	}
	redeem := func(code, verifier, redirect string) (identity.TokenResponse, error) {
		return e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantAuthorizationCode,
			ClientID: directory.CLIAppID, Code: secret.NewString(code), CodeVerifier: secret.NewString(verifier), RedirectURI: redirect})
	}
	_, err = redeem(code, strings.Repeat("w", 50), req.RedirectURI)
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS501481")
	_, err = redeem(code, verifier, "http://localhost:53124")
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "redirect_uri does not match")
	resp, err := redeem(code, verifier, req.RedirectURI)
	if err != nil {
		t.Fatal(err)
	}
	if id := decodeClaims(t, resp.IDToken); id["nonce"] != "n0nce" {
		t.Errorf("ID token nonce = %v", id["nonce"])
	}
	if _, err := e.svc.Verify(ctx, resp.AccessToken, identity.KeyVault); err != nil {
		t.Fatal(err)
	}
	_, err = redeem(code, verifier, req.RedirectURI)
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS54005")
	// The second use revoked the refresh token the first one got.
	_, err = e.svc.Token(ctx, identity.TokenRequest{Tenant: a.Tenant.ID, GrantType: identity.GrantRefreshToken,
		ClientID: directory.CLIAppID, RefreshToken: secret.NewString(resp.RefreshToken)})
	wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70000")

	t.Run("expired code", func(t *testing.T) {
		to, err := e.svc.Authorize(ctx, req, a.Admin.UserPrincipalName, a.AdminPassword)
		if err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(identity.AuthCodeLifetime)
		_, err = redeem(queryParam(t, to, "code"), verifier, req.RedirectURI)
		wantErr(t, err, errkind.Invalid, identity.CodeInvalidGrant, "AADSTS70008")
	})
	t.Run("wrong password", func(t *testing.T) {
		_, err := e.svc.Authorize(ctx, req, a.Admin.UserPrincipalName, secret.NewString("nope-nope"))
		wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidGrant, "AADSTS50126")
	})
}

func TestClientAssertionReplayAcrossNodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cert, key := selfSigned(t)
	if _, err := e.dir.AddCertificate(ctx, directory.System, e.a.Tenant.ID, e.a.AdminApp.AppID, "test", cert.Raw); err != nil {
		t.Fatal(err)
	}
	aud := publicURL + "/" + e.a.Tenant.ID + "/oauth2/v2.0/token"
	now := e.clock.Now()
	assertion := makeAssertion(t, key, cert.Raw, jose.PS256, "x5t#S256", e.a.AdminApp.AppID, aud, now, now.Add(5*time.Minute), "jti-1")
	req := identity.TokenRequest{Tenant: e.a.Tenant.ID, GrantType: identity.GrantClientCredentials, ClientID: e.a.AdminApp.AppID,
		ClientAssertionType: identity.ClientAssertionType, ClientAssertion: secret.NewString(assertion), Scope: vaultRes + "/.default"}
	if _, err := e.svc.Token(ctx, req); err != nil {
		t.Fatalf("first use: %v", err)
	}
	node2 := e.newService()
	_, err := node2.Token(ctx, req)
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidClient, "jti was already used")
	if strings.Contains(e.auditText(e.a.Tenant.ID), assertion) {
		t.Error("the audit log holds the assertion")
	}
}

func s256(v string) string {
	return base64.RawURLEncoding.EncodeToString(sha256Sum([]byte(v)))
}

func queryParam(t *testing.T, rawURL, name string) string {
	t.Helper()
	i := strings.Index(rawURL, "?")
	if i < 0 {
		t.Fatalf("no query in %s", rawURL)
	}
	for _, kv := range strings.Split(rawURL[i+1:], "&") {
		k, v, _ := strings.Cut(kv, "=")
		if k == name {
			return unescape(t, v)
		}
	}
	return ""
}

// BenchmarkVerify measures the hot path: a token seen before, so that no
// store read and no RSA verification happens.
// TestVerifyConnectionMemo checks that the token remembered for a
// connection is used only for that very token, and that the checks that
// depend on the request and the time still run.
func TestVerifyConnectionMemo(t *testing.T) {
	e := newEnv(t)
	conn := identity.WithConnectionMemo(context.Background(), nil)
	tokA := e.appToken(vaultRes + "/.default")
	pA, err := e.svc.Verify(conn, tokA, identity.KeyVault)
	if err != nil {
		t.Fatal(err)
	}
	// Another principal's token on the same connection (a proxy's
	// connection carries many clients) is its own principal.
	tokB, err := identity.MintForTest(e.svc,
		jwt.Claims{Issuer: publicURL + "/" + e.b.Tenant.ID + "/v2.0", Subject: e.b.AdminSP.ID, Audience: jwt.Audience{vaultRes},
			IssuedAt: jwt.NewNumericDate(e.clock.Now()), NotBefore: jwt.NewNumericDate(e.clock.Now()), Expiry: jwt.NewNumericDate(e.clock.Now().Add(time.Hour))},
		map[string]any{"tid": e.b.Tenant.ID, "oid": e.b.AdminSP.ID, "appid": e.b.AdminApp.AppID, "azp": e.b.AdminApp.AppID, "idtyp": "app", "ver": "2.0"})
	if err != nil {
		t.Fatal(err)
	}
	pB, err := e.svc.Verify(conn, tokB, identity.KeyVault)
	if err != nil {
		t.Fatal(err)
	}
	if pB.TenantID != e.b.Tenant.ID || pB.ObjectID == pA.ObjectID {
		t.Errorf("the second token on a connection gave %s in %s, want %s in %s", pB.ObjectID, pB.TenantID, e.b.AdminSP.ID, e.b.Tenant.ID)
	}
	// A token that differs from the remembered one in one character of
	// its signature (not the last, which also carries base64's padding
	// bits) is verified, and refused.
	i := len(tokB) - 5
	repl := "A"
	if tokB[i] == 'A' {
		repl = "B"
	}
	tampered := tokB[:i] + repl + tokB[i+1:]
	if _, err := e.svc.Verify(conn, tampered, identity.KeyVault); err == nil {
		t.Error("a token that differs from the remembered one in its signature was accepted")
	}
	if p, err := e.svc.Verify(conn, tokB, identity.KeyVault); err != nil || p.ObjectID != pB.ObjectID {
		t.Errorf("the remembered token after a refused one = %v, %v", p.ObjectID, err)
	}
	// The audience and the expiry are checked on every use.
	_, err = e.svc.Verify(conn, tokB, identity.Graph)
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidToken, "not accepted by Microsoft Graph")
	e.clock.Advance(time.Hour + 6*time.Minute)
	_, err = e.svc.Verify(conn, tokB, identity.KeyVault)
	wantErr(t, err, errkind.Unauthenticated, identity.CodeInvalidToken, "the token has expired")
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	tok := e.appToken(vaultRes + "/.default")
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{
		{"shared cache", context.Background()},
		{"connection memo", identity.WithConnectionMemo(context.Background(), nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.svc.Verify(c.ctx, tok, identity.KeyVault); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
