package app_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armfeatures"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	k1ecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/customerkey/customerkey/internal/app"
)

// This file is the keys data-plane conformance suite of akv-api.md §g,
// driven with the official azkeys client (challenge resource verification
// on) and, where the wire itself is the subject, with raw HTTP. The SDK
// accepts an empty {} as a success, so every test asserts the fields.

const (
	confCryptoOfficer = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603" // Key Vault Crypto Officer
	confAPIVersion    = "2025-07-01"
	confQuery         = "?api-version=" + confAPIVersion
)

// confB64URL is base64url without padding, the only byte encoding the SDKs
// accept.
var confB64URL = regexp.MustCompile(`^[A-Za-z0-9_-]*$`)

// confExchange is one request and its response as a client saw them.
type confExchange struct {
	method    string
	url       string
	reqHeader http.Header
	status    int
	header    http.Header
	body      []byte
}

// confRecorder is a transport that keeps every exchange and notes the
// responses without an x-ms-request-id.
type confRecorder struct {
	next policy.Transporter
	mu   sync.Mutex
	ex   []confExchange
	all  int
	noID []string
}

func (r *confRecorder) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.next.Do(req)
	if err != nil {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all++
	if resp.Header.Get("x-ms-request-id") == "" {
		r.noID = append(r.noID, req.Method+" "+req.URL.String())
	}
	r.ex = append(r.ex, confExchange{method: req.Method, url: req.URL.String(), reqHeader: req.Header.Clone(),
		status: resp.StatusCode, header: resp.Header.Clone(), body: b})
	return resp, nil
}

// take returns the exchanges since the last take.
func (r *confRecorder) take() []confExchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ex
	r.ex = nil
	return out
}

// confCred records what the client asks of the real credential.
type confCred struct {
	next  azcore.TokenCredential
	mu    sync.Mutex
	calls []policy.TokenRequestOptions
}

func (c *confCred) GetToken(ctx context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.calls = append(c.calls, o)
	c.mu.Unlock()
	return c.next.GetToken(ctx, o)
}

// confStaticCred hands out a fixed token.
type confStaticCred string

func (c confStaticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// confHostTransport sends every request with another Host header: a vault
// reached by its IP address (a port forward, say) while the server still
// sees the vault's host.
type confHostTransport struct {
	next policy.Transporter
	host string
}

func (h confHostTransport) Do(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = h.host
	return h.next.Do(r)
}

// confReply is a raw answer of the data plane with its AKV error, if any.
type confReply struct {
	status int
	header http.Header
	body   []byte
	code   string
	inner  string
	msg    string
}

// confEnv is the shared server, tenant and vaults of the suite.
type confEnv struct {
	s        *server
	e        vaultEnv
	clk      *clock
	port     string
	resource string // the challenge resource: https://vault.localhost:PORT
	vaultTok string // the admin app's token for the vaults
	armTok   string
	rec      *confRecorder
	kc       *azkeys.Client // the main vault (standard, 90 days, purgeable)

	listURL  string // a vault holding only the listing test's keys
	pp7URL   string // purge protection, 7 days
	ret30URL string // 30 days, purgeable
	sub2     string // a second subscription with the mandatory retention period
	protURL  string // a vault in sub2 with purge protection

	recorders []*confRecorder
}

func (c *confEnv) newClient(t *testing.T, vaultURL string, cred azcore.TokenCredential, tr policy.Transporter,
	mod func(*azkeys.ClientOptions)) *azkeys.Client {
	t.Helper()
	o := &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}}
	if mod != nil {
		mod(o)
	}
	kc, err := azkeys.NewClient(vaultURL, cred, o)
	if err != nil {
		t.Fatal(err)
	}
	return kc
}

// client is a client of vaultURL as the admin app, with its own recorder.
func (c *confEnv) client(t *testing.T, vaultURL string) (*azkeys.Client, *confRecorder) {
	rec := &confRecorder{next: c.s.client}
	c.recorders = append(c.recorders, rec)
	return c.newClient(t, vaultURL, c.e.admin, rec, nil), rec
}

// raw sends one request to the data plane with the admin's vault token.
func (c *confEnv) raw(t *testing.T, method, u, body string, hdr map[string]string) confReply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.vaultTok)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := confReply{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.Header.Get("x-ms-request-id") == "" {
		t.Errorf("%s %s = %d without x-ms-request-id", method, u, resp.StatusCode)
	}
	if resp.StatusCode >= 300 && len(b) > 0 {
		var e struct {
			Error struct {
				Code       string `json:"code"`
				Message    string `json:"message"`
				InnerError *struct {
					Code string `json:"code"`
				} `json:"innererror"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s = %d %q: not AKV's error format {\"error\":{\"code\",\"message\"}}", method, u, resp.StatusCode, b)
		}
		rep.code, rep.msg = e.Error.Code, e.Error.Message
		if e.Error.InnerError != nil {
			rep.inner = e.Error.InnerError.Code
		}
	}
	return rep
}

// wantRaw checks a raw refusal.
func confWantRaw(t *testing.T, what string, rep confReply, status int, code string, msgParts ...string) {
	t.Helper()
	if rep.status != status || rep.code != code {
		t.Errorf("%s = %d %s, want %d %s", what, rep.status, rep.body, status, code)
		return
	}
	for _, p := range msgParts {
		if !strings.Contains(rep.msg, p) {
			t.Errorf("%s: message %q lacks %q", what, rep.msg, p)
		}
	}
}

// wantErr checks an SDK error: its status, its top-level code, and parts
// of the body (an innererror code, words of the message).
func confWantErr(t *testing.T, what string, err error, status int, code string, parts ...string) {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Errorf("%s err = %v, want a %d %s response", what, err, status, code)
		return
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Errorf("%s = %d %s, want %d %s: %v", what, re.StatusCode, re.ErrorCode, status, code, err)
		return
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: the error lacks %q: %v", what, p, err)
		}
	}
}

func confEC(crv azkeys.CurveName) azkeys.CreateKeyParameters {
	return azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(crv)}
}

func confRSA(size int32) azkeys.CreateKeyParameters {
	return azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(size)}
}

func confCreate(t *testing.T, kc *azkeys.Client, name string, p azkeys.CreateKeyParameters) azkeys.KeyBundle {
	t.Helper()
	k, err := kc.CreateKey(context.Background(), name, p, nil)
	if err != nil {
		t.Fatalf("CreateKey %s err = %v", name, err)
	}
	if k.Key == nil || k.Key.KID == nil || k.Attributes == nil || k.Attributes.Created == nil {
		t.Fatalf("CreateKey %s returned no kid or attributes: %+v", name, k)
	}
	return k.KeyBundle
}

func confRSAPublic(t *testing.T, k *azkeys.JSONWebKey) *rsa.PublicKey {
	t.Helper()
	if k == nil || len(k.N) == 0 || len(k.E) == 0 {
		t.Fatalf("the key has no n or e")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())}
}

func confKID(k azkeys.KeyBundle) string { return string(*k.Key.KID) }

func confVersion(k azkeys.KeyBundle) string { return k.Key.KID.Version() }

// versions lists the versioned kids of key name.
func confVersions(t *testing.T, kc *azkeys.Client, name string) []string {
	t.Helper()
	var out []string
	for pager := kc.NewListKeyPropertiesVersionsPager(name, nil); pager.More(); {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list versions of %s err = %v", name, err)
		}
		for _, it := range page.Value {
			out = append(out, string(*it.KID))
		}
	}
	slices.Sort(out)
	return out
}

// challengeParams parses `Bearer k="v", k2="v2"`.
func confChallenge(h string) map[string]string {
	out := map[string]string{}
	h, _ = strings.CutPrefix(h, "Bearer ")
	for _, p := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out
}

// TestAKVConformance runs akv-api.md §g against one server: a tenant whose
// automation app holds Key Vault Crypto Officer on two subscriptions, and a
// few vaults with different recovery settings.
func TestAKVConformance(t *testing.T) {
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	s := startWith(t, filepath.Join(t.TempDir(), "data"), app.Options{Now: clk.Now})
	ctx := context.Background()
	e := s.newVault(t, "ckconf-main")
	c := &confEnv{s: s, e: e, clk: clk, port: s.port()}
	c.resource = "https://vault.localhost:" + c.port
	var err error
	if c.vaultTok, err = token(ctx, e.admin, c.resource+"/.default"); err != nil {
		t.Fatalf("vault token: %v", err)
	}
	if c.armTok, err = token(ctx, e.admin, armScope); err != nil {
		t.Fatal(err)
	}
	spID := c.adminSP(t)
	s.grant(t, e, spID, "ServicePrincipal", confCryptoOfficer, "/subscriptions/"+e.sub)
	c.kc, c.rec = c.client(t, e.vaultURL)

	c.listURL = c.vault(t, e.sub, "ckconf-list", armkeyvault.VaultProperties{})
	c.pp7URL = c.vault(t, e.sub, "ckconf-pp7", armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true),
		SoftDeleteRetentionInDays: to.Ptr(int32(7))})
	c.ret30URL = c.vault(t, e.sub, "ckconf-ret30", armkeyvault.VaultProperties{SoftDeleteRetentionInDays: to.Ptr(int32(30))})

	// A second subscription registers the mandatory retention period.
	c.sub2 = c.subscription(t, spID)
	features, _ := armfeatures.NewClient(c.sub2, e.admin, s.armOptions())
	if _, err := features.Register(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil); err != nil {
		t.Fatalf("feature Register err = %v", err)
	}
	c.protURL = c.vault(t, c.sub2, "ckconf-prot", armkeyvault.VaultProperties{EnablePurgeProtection: to.Ptr(true)})
	clk.Advance(61 * time.Second) // past the registration delay
	if f, err := features.Get(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil); err != nil || *f.Properties.State != "Registered" {
		t.Fatalf("mandatoryRetentionPeriodEnabled = %v, %v; want Registered", f.Properties, err)
	}

	t.Run("auth", c.testAuth)
	t.Run("crud", c.testCRUD)
	t.Run("listing", c.testListing)
	t.Run("soft delete", c.testSoftDelete)
	t.Run("crypto", c.testCrypto)
	t.Run("backup and restore", c.testBackup)
	t.Run("rotation", c.testRotation)
	t.Run("refused operations", c.testRefused)
	t.Run("wire", c.testWire)
	t.Run("disabled subscription", func(t *testing.T) { c.testDisabledSubscription(t, spID) })
	t.Run("request ids (41)", func(t *testing.T) {
		for _, r := range c.recorders {
			r.mu.Lock()
			if len(r.noID) > 0 {
				t.Errorf("%d of %d responses had no x-ms-request-id, e.g. %s", len(r.noID), r.all, r.noID[0])
			}
			r.mu.Unlock()
		}
	})
}

// adminSP is the object id of the tenant's automation app.
func (c *confEnv) adminSP(t *testing.T) string {
	t.Helper()
	graphTok, _ := token(context.Background(), c.e.admin, graphScope)
	var sp struct {
		Value []struct{ ID string } `json:"value"`
	}
	if code := doJSON(t, c.s, graphTok, "GET", "/v1.0/servicePrincipals?$filter=appId%20eq%20'"+c.e.c.AdminApp.ClientID+"'", "", &sp); code != http.StatusOK || len(sp.Value) != 1 {
		t.Fatalf("the automation app's service principal: %d, %d found", code, len(sp.Value))
	}
	return sp.Value[0].ID
}

// subscription creates another subscription of the tenant with a resource
// group rg, where the automation app is Crypto Officer.
func (c *confEnv) subscription(t *testing.T, spID string) string {
	t.Helper()
	sub := c.s.newSubscription(t, c.armTok, c.e.c.TenantID, "PayAsYouGo")
	groups, _ := armresources.NewResourceGroupsClient(sub, c.e.admin, c.s.armOptions())
	if _, err := groups.CreateOrUpdate(context.Background(), "rg", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	e := c.e
	e.sub = sub // role definition ids name the subscription of the scope
	c.s.grant(t, e, spID, "ServicePrincipal", confCryptoOfficer, "/subscriptions/"+sub)
	return sub
}

// vault creates a standard RBAC vault in group rg of sub and returns its URL.
func (c *confEnv) vault(t *testing.T, sub, name string, p armkeyvault.VaultProperties) string {
	t.Helper()
	ctx := context.Background()
	vaults, _ := armkeyvault.NewVaultsClient(sub, c.e.admin, c.s.armOptions())
	p.TenantID = to.Ptr(c.e.c.TenantID)
	p.SKU = &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNameStandard)}
	p.EnableRbacAuthorization = to.Ptr(true)
	poller, err := vaults.BeginCreateOrUpdate(ctx, "rg", name, armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"), Properties: &p}, nil)
	if err != nil {
		t.Fatalf("create vault %s: %v", name, err)
	}
	v, err := poller.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatalf("create vault %s: %v", name, err)
	}
	return strings.TrimSuffix(*v.Properties.VaultURI, "/")
}

// Auth and transport: §g 1–4 and 6.
func (c *confEnv) testAuth(t *testing.T) {
	ctx := context.Background()
	confCreate(t, c.kc, "auth-k1", confEC(azkeys.CurveNameP256))

	t.Run("one challenge, then the token is reused (1, 2)", func(t *testing.T) {
		rec := &confRecorder{next: c.s.client}
		c.recorders = append(c.recorders, rec)
		cred := &confCred{next: c.e.admin}
		kc := c.newClient(t, c.e.vaultURL, cred, rec, nil)
		got, err := kc.GetKey(ctx, "auth-k1", "", nil)
		if err != nil || got.Key == nil || got.Key.KID == nil || got.Key.KID.Name() != "auth-k1" {
			t.Fatalf("GetKey = %+v, %v", got.Key, err)
		}
		ex := rec.take()
		if len(ex) != 2 || ex[0].status != http.StatusUnauthorized || ex[1].status != http.StatusOK {
			t.Fatalf("the first operation made %d requests; want 2: the 401 challenge, then 200", len(ex))
		}
		if h := ex[0].reqHeader.Get("Authorization"); h != "" {
			t.Errorf("the first request carried Authorization %q; the SDK sends it bare", h)
		}
		ch := confChallenge(ex[0].header.Get("WWW-Authenticate"))
		if want := c.s.url + "/" + c.e.c.TenantID; ch["authorization"] != want {
			t.Errorf("challenge authorization = %q, want %q (a URL whose path is the vault's tenant)", ch["authorization"], want)
		}
		if ch["resource"] != c.resource {
			t.Errorf("challenge resource = %q, want %q (the parent domain of every vault host, with the port)", ch["resource"], c.resource)
		}
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(ex[0].body, &body); err != nil || body.Error.Code != "Unauthorized" || !strings.HasPrefix(body.Error.Message, "AKV10000:") {
			t.Errorf("challenge body = %s; want code Unauthorized and message AKV10000", ex[0].body)
		}
		if _, err := kc.GetKey(ctx, "auth-k1", "", nil); err != nil {
			t.Fatal(err)
		}
		if ex := rec.take(); len(ex) != 1 || ex[0].status != http.StatusOK {
			t.Errorf("the second operation made %d requests; want 1 with the cached token", len(ex))
		}
		cred.mu.Lock()
		defer cred.mu.Unlock()
		if len(cred.calls) != 1 {
			t.Fatalf("GetToken was called %d times; want once per client", len(cred.calls))
		}
		if o := cred.calls[0]; !slices.Equal(o.Scopes, []string{c.resource + "/.default"}) || o.TenantID != c.e.c.TenantID {
			t.Errorf("GetToken scopes %v tenant %q; want [%s/.default] and %s", o.Scopes, o.TenantID, c.resource, c.e.c.TenantID)
		}
	})

	t.Run("a vault reached by IP fails challenge verification (3)", func(t *testing.T) {
		host := strings.TrimPrefix(c.e.vaultURL, "https://")
		ipURL := "https://127.0.0.1:" + c.port
		kc := c.newClient(t, ipURL, c.e.admin, confHostTransport{next: c.s.client, host: host}, nil)
		_, err := kc.GetKey(ctx, "auth-k1", "", nil)
		if err == nil || !strings.Contains(err.Error(), "doesn't match the requested domain") || !strings.Contains(err.Error(), c.resource) {
			t.Errorf("GetKey through https://127.0.0.1 err = %v; want the SDK's challenge resource mismatch naming %s", err, c.resource)
		}
		// Documented opt-out.
		kc = c.newClient(t, ipURL, c.e.admin, confHostTransport{next: c.s.client, host: host},
			func(o *azkeys.ClientOptions) { o.DisableChallengeResourceVerification = true })
		if got, err := kc.GetKey(ctx, "auth-k1", "", nil); err != nil || !strings.HasPrefix(string(*got.Key.KID), c.e.vaultURL+"/keys/auth-k1/") {
			t.Errorf("with DisableChallengeResourceVerification: GetKey = %v", err)
		}
	})

	t.Run("bad tokens get 401 without a loop (4)", func(t *testing.T) {
		parts := strings.Split(c.vaultTok, ".")
		if len(parts) != 3 {
			t.Fatalf("the vault token is not a JWS")
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		claims["exp"] = time.Now().Add(-time.Hour).Unix()
		claims["nbf"] = time.Now().Add(-2 * time.Hour).Unix()
		p2, _ := json.Marshal(claims)
		expired := parts[0] + "." + base64.RawURLEncoding.EncodeToString(p2) + "." + parts[2]
		for _, tc := range []struct{ name, tok string }{
			{"malformed", "not-a-jwt"},
			{"expired (exp moved into the past)", expired},
			{"unsigned", parts[0] + "." + parts[1] + "."},
			{"for Resource Manager", c.armTok},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rec := &confRecorder{next: c.s.client}
				c.recorders = append(c.recorders, rec)
				kc := c.newClient(t, c.e.vaultURL, confStaticCred(tc.tok), rec, nil)
				_, err := kc.GetKey(ctx, "auth-k1", "", nil)
				confWantErr(t, "GetKey", err, http.StatusUnauthorized, "Unauthorized")
				if ex := rec.take(); len(ex) != 2 {
					t.Errorf("the client made %d requests; want 2 (challenge, rejected token) and no loop", len(ex))
				}
			})
		}
	})

	t.Run("api-versions (6)", func(t *testing.T) {
		for _, v := range []string{"7.4", "7.5", "7.6", "2025-07-01"} {
			rec := &confRecorder{next: c.s.client}
			c.recorders = append(c.recorders, rec)
			kc := c.newClient(t, c.e.vaultURL, c.e.admin, rec, func(o *azkeys.ClientOptions) { o.APIVersion = v })
			got, err := kc.GetKey(ctx, "auth-k1", "", nil)
			if err != nil || got.Key == nil || got.Key.KID == nil || got.Key.KID.Version() == "" || len(got.Key.X) != 32 {
				t.Errorf("api-version %s: GetKey = %+v, %v", v, got.Key, err)
				continue
			}
			for _, ex := range rec.take() {
				u, _ := url.Parse(ex.url)
				if got := u.Query().Get("api-version"); got != v {
					t.Errorf("api-version %s: the client sent %q", v, got)
				}
			}
		}
		rep := c.raw(t, "GET", c.e.vaultURL+"/keys/auth-k1/?api-version=7.3", "", nil)
		confWantRaw(t, "GET with api-version 7.3", rep, http.StatusBadRequest, "BadParameter", "(7.3) is not recognized", confAPIVersion)
		rep = c.raw(t, "GET", c.e.vaultURL+"/keys/auth-k1/", "", nil)
		confWantRaw(t, "GET without api-version", rep, http.StatusBadRequest, "BadParameter", "api-version")
	})
}

// CRUD and versions: §g 7–13.
func (c *confEnv) testCRUD(t *testing.T) {
	ctx := context.Background()
	now := c.clk.Now().UTC()
	nbf, exp := now.Add(-time.Hour), now.Add(365*24*time.Hour)

	t.Run("RSA keys (7)", func(t *testing.T) {
		for _, size := range []int32{2048, 3072, 4096} {
			name := "rsa-" + strconv.Itoa(int(size))
			p := confRSA(size)
			p.Tags = map[string]*string{"env": to.Ptr("conformance"), "size": to.Ptr(strconv.Itoa(int(size)))}
			p.KeyAttributes = &azkeys.KeyAttributes{NotBefore: to.Ptr(nbf), Expires: to.Ptr(exp)}
			k := confCreate(t, c.kc, name, p)
			kidRE := regexp.MustCompile(`^` + regexp.QuoteMeta(c.e.vaultURL+"/keys/"+name+"/") + `[0-9a-f]{32}$`)
			if !kidRE.MatchString(confKID(k)) || k.Key.KID.Name() != name || len(k.Key.KID.Version()) != 32 {
				t.Errorf("%s: kid %s (name %q, version %q)", name, confKID(k), k.Key.KID.Name(), k.Key.KID.Version())
			}
			pub := confRSAPublic(t, k.Key)
			if *k.Key.Kty != azkeys.KeyTypeRSA || pub.N.BitLen() != int(size) || pub.E != 65537 {
				t.Errorf("%s: kty %s, %d bits, e %d", name, *k.Key.Kty, pub.N.BitLen(), pub.E)
			}
			if _, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, []byte("usable"), nil); err != nil {
				t.Errorf("%s: n and e do not form a usable public key: %v", name, err)
			}
			if k.Key.D != nil || k.Key.P != nil || k.Key.Q != nil {
				t.Errorf("%s: the response holds private parts", name)
			}
			a := k.Attributes
			if !a.Created.Equal(*a.Updated) || !a.Created.Equal(now) {
				t.Errorf("%s: created %v updated %v, want both %v", name, a.Created, a.Updated, now)
			}
			if a.NotBefore == nil || !a.NotBefore.Equal(nbf) || a.Expires == nil || !a.Expires.Equal(exp) || !*a.Enabled {
				t.Errorf("%s: nbf %v exp %v enabled %v", name, a.NotBefore, a.Expires, *a.Enabled)
			}
			if *a.RecoveryLevel != "Recoverable+Purgeable" || *a.RecoverableDays != 90 {
				t.Errorf("%s: recovery %s/%d", name, *a.RecoveryLevel, *a.RecoverableDays)
			}
			if len(k.Tags) != 2 || *k.Tags["env"] != "conformance" || *k.Tags["size"] != strconv.Itoa(int(size)) {
				t.Errorf("%s: tags %v", name, k.Tags)
			}
			var ops []string
			for _, o := range k.Key.KeyOps {
				ops = append(ops, string(*o))
			}
			if !slices.Equal(ops, []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}) {
				t.Errorf("%s: key_ops %v, want the six RSA operations", name, ops)
			}
		}
		// Timestamps are integers on the wire.
		rep := c.raw(t, "GET", c.e.vaultURL+"/keys/rsa-2048/"+confQuery, "", nil)
		var raw struct {
			Attributes map[string]json.RawMessage `json:"attributes"`
		}
		if err := json.Unmarshal(rep.body, &raw); rep.status != http.StatusOK || err != nil {
			t.Fatalf("raw GET = %d %s", rep.status, rep.body)
		}
		for _, f := range []string{"created", "updated", "nbf", "exp"} {
			if v := string(raw.Attributes[f]); !regexp.MustCompile(`^[0-9]+$`).MatchString(v) {
				t.Errorf("attributes.%s = %q on the wire, want integer Unix seconds", f, v)
			}
		}
	})

	t.Run("EC keys (8)", func(t *testing.T) {
		for crv, size := range map[azkeys.CurveName]int{azkeys.CurveNameP256: 32, azkeys.CurveNameP384: 48,
			azkeys.CurveNameP521: 66, azkeys.CurveNameP256K: 32} {
			name := "ec-" + strings.ToLower(strings.ReplaceAll(string(crv), "-", ""))
			k := confCreate(t, c.kc, name, confEC(crv))
			var ops []string
			for _, o := range k.Key.KeyOps {
				ops = append(ops, string(*o))
			}
			if *k.Key.Kty != azkeys.KeyTypeEC || k.Key.Crv == nil || *k.Key.Crv != crv || len(k.Key.X) != size || len(k.Key.Y) != size ||
				!slices.Equal(ops, []string{"sign", "verify"}) || k.Key.N != nil || k.Key.D != nil {
				t.Errorf("%s: kty %v crv %v x %d y %d bytes ops %v", name, *k.Key.Kty, k.Key.Crv, len(k.Key.X), len(k.Key.Y), ops)
			}
		}
	})

	t.Run("invalid names and types (9)", func(t *testing.T) {
		for _, name := range []string{"a_b", strings.Repeat("a", 128), "a/b", "a.b"} {
			_, err := c.kc.CreateKey(ctx, name, confEC(azkeys.CurveNameP256), nil)
			confWantErr(t, "CreateKey "+name[:min(len(name), 8)], err, http.StatusBadRequest, "BadParameter")
		}
		confCreate(t, c.kc, strings.Repeat("b", 127), confEC(azkeys.CurveNameP256)) // the longest name
		rep := c.raw(t, "POST", c.e.vaultURL+"/keys/a%2Fb/create"+confQuery, `{"kty":"EC"}`, nil)
		confWantRaw(t, "POST /keys/a%2Fb/create", rep, http.StatusBadRequest, "BadParameter", "a/b")
		for _, kty := range []azkeys.KeyType{"DSA", azkeys.KeyTypeOct, ""} {
			_, err := c.kc.CreateKey(ctx, "badtype", azkeys.CreateKeyParameters{Kty: to.Ptr(kty)}, nil)
			confWantErr(t, "CreateKey kty "+string(kty), err, http.StatusBadRequest, "BadParameter")
		}
		_, err := c.kc.CreateKey(ctx, "badsize", confRSA(1024), nil)
		confWantErr(t, "CreateKey RSA 1024", err, http.StatusBadRequest, "BadParameter", "2048")
		_, err = c.kc.CreateKey(ctx, "badcrv", confEC("P-192"), nil)
		confWantErr(t, "CreateKey P-192", err, http.StatusBadRequest, "BadParameter", "P-192")
		if _, err := c.kc.GetKey(ctx, "badtype", "", nil); err == nil {
			t.Error("a refused CreateKey left a key behind")
		}
	})

	var v1, v2 azkeys.KeyBundle
	t.Run("new versions and latest (10)", func(t *testing.T) {
		v1 = confCreate(t, c.kc, "ver-k", confEC(azkeys.CurveNameP256))
		v2 = confCreate(t, c.kc, "ver-k", confEC(azkeys.CurveNameP256))
		if confVersion(v1) == confVersion(v2) || bytes.Equal(v1.Key.X, v2.Key.X) {
			t.Fatalf("the second CreateKey did not make a new version with new material")
		}
		latest, err := c.kc.GetKey(ctx, "ver-k", "", nil)
		if err != nil || confKID(latest.KeyBundle) != confKID(v2) || !bytes.Equal(latest.Key.X, v2.Key.X) {
			t.Errorf("GetKey latest = %v, %v; want %s", latest.Key, err, confKID(v2))
		}
		old, err := c.kc.GetKey(ctx, "ver-k", confVersion(v1), nil)
		if err != nil || confKID(old.KeyBundle) != confKID(v1) || !bytes.Equal(old.Key.X, v1.Key.X) {
			t.Errorf("GetKey v1 = %v, %v; want %s with its own material", old.Key, err, confKID(v1))
		}
		// Versions compare without regard to case.
		if up, err := c.kc.GetKey(ctx, "ver-k", strings.ToUpper(confVersion(v1)), nil); err != nil || confKID(up.KeyBundle) != confKID(v1) {
			t.Errorf("GetKey with the version uppercased = %v", err)
		}
	})

	t.Run("not found (11)", func(t *testing.T) {
		_, err := c.kc.GetKey(ctx, "no-such-key", "", nil)
		confWantErr(t, "GetKey missing name", err, http.StatusNotFound, "KeyNotFound", "no-such-key")
		_, err = c.kc.GetKey(ctx, "ver-k", strings.Repeat("0", 32), nil)
		confWantErr(t, "GetKey missing version", err, http.StatusNotFound, "KeyNotFound", strings.Repeat("0", 32))
		_, err = c.kc.GetKey(ctx, "ver-k", "not-a-version", nil)
		confWantErr(t, "GetKey malformed version", err, http.StatusNotFound, "KeyNotFound")
	})

	t.Run("update changes the latest version only (12)", func(t *testing.T) {
		if v2.Key == nil {
			t.Skip("needs the versions of (10)")
		}
		c.clk.Advance(2 * time.Second)
		newExp := now.Add(30 * 24 * time.Hour)
		up, err := c.kc.UpdateKey(ctx, "ver-k", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{
			Enabled: to.Ptr(false), Expires: to.Ptr(newExp)}, Tags: map[string]*string{"stage": to.Ptr("retired")}}, nil)
		if err != nil {
			t.Fatalf("UpdateKey err = %v", err)
		}
		a := up.Attributes
		if confKID(up.KeyBundle) != confKID(v2) || *a.Enabled || !a.Expires.Equal(newExp) || *up.Tags["stage"] != "retired" ||
			!a.Created.Equal(*v2.Attributes.Created) || !a.Updated.After(*a.Created) {
			t.Errorf("UpdateKey = kid %s enabled %v exp %v tags %v created %v updated %v", confKID(up.KeyBundle), *a.Enabled, a.Expires,
				up.Tags, a.Created, a.Updated)
		}
		if len(up.Key.X) != 32 {
			t.Errorf("UpdateKey returned no key material")
		}
		old, err := c.kc.GetKey(ctx, "ver-k", confVersion(v1), nil)
		if err != nil || !*old.Attributes.Enabled || old.Attributes.Expires != nil || len(old.Tags) != 0 || !old.Attributes.Updated.Equal(*old.Attributes.Created) {
			t.Errorf("the old version changed: %+v, %v", old.Attributes, err)
		}
		latest, err := c.kc.GetKey(ctx, "ver-k", "", nil)
		if err != nil || *latest.Attributes.Enabled || !latest.Attributes.Updated.Equal(*a.Updated) {
			t.Errorf("GetKey after the update = %+v, %v", latest.Attributes, err)
		}
		// Updating a missing key is KeyNotFound, and an expiry cannot be removed.
		_, err = c.kc.UpdateKey(ctx, "no-such-key", "", azkeys.UpdateKeyParameters{Tags: map[string]*string{}}, nil)
		confWantErr(t, "UpdateKey missing", err, http.StatusNotFound, "KeyNotFound")
	})

	t.Run("import (13)", func(t *testing.T) {
		priv, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		jk := &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA), N: priv.N.Bytes(), E: big.NewInt(int64(priv.E)).Bytes(),
			D: priv.D.Bytes(), P: priv.Primes[0].Bytes(), Q: priv.Primes[1].Bytes(), DP: priv.Precomputed.Dp.Bytes(),
			DQ: priv.Precomputed.Dq.Bytes(), QI: priv.Precomputed.Qinv.Bytes()}
		rec := c.rec
		rec.take()
		k, err := c.kc.ImportKey(ctx, "imp-rsa", azkeys.ImportKeyParameters{Key: jk, Tags: map[string]*string{"src": to.Ptr("onprem")}}, nil)
		if err != nil {
			t.Fatalf("ImportKey RSA err = %v", err)
		}
		if k.Key.D != nil || k.Key.P != nil || k.Key.Q != nil || k.Key.DP != nil || k.Key.DQ != nil || k.Key.QI != nil ||
			!bytes.Equal(k.Key.N, priv.N.Bytes()) || *k.Tags["src"] != "onprem" || k.Key.KID.Version() == "" {
			t.Errorf("ImportKey RSA = %+v", k.Key)
		}
		for _, ex := range rec.take() {
			var b struct {
				Key map[string]json.RawMessage `json:"key"`
			}
			if ex.status != http.StatusOK || json.Unmarshal(ex.body, &b) != nil {
				continue
			}
			for _, f := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "key_hsm"} {
				if _, ok := b.Key[f]; ok {
					t.Errorf("the import response carries the private member %q", f)
				}
			}
		}
		// The vault holds the private key: it decrypts what the local public key encrypted.
		ct, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, &priv.PublicKey, []byte("imported"), nil)
		if pt, err := c.kc.Decrypt(ctx, "imp-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: ct}, nil); err != nil || string(pt.Result) != "imported" {
			t.Errorf("Decrypt with the imported key = %q, %v", pt.Result, err)
		}

		ecPriv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		pt, _ := ecPriv.PublicKey.Bytes() // 0x04 || x || y
		d, _ := ecPriv.Bytes()
		ek, err := c.kc.ImportKey(ctx, "imp-ec", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC),
			Crv: to.Ptr(azkeys.CurveNameP384), X: pt[1:49], Y: pt[49:], D: d}}, nil)
		if err != nil {
			t.Fatalf("ImportKey EC err = %v", err)
		}
		if ek.Key.D != nil || !bytes.Equal(ek.Key.X, pt[1:49]) || *ek.Key.Crv != azkeys.CurveNameP384 {
			t.Errorf("ImportKey EC = %+v", ek.Key)
		}
		dg := sha512.Sum384([]byte("imported ec"))
		sig, err := c.kc.Sign(ctx, "imp-ec", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: dg[:]}, nil)
		if err != nil || len(sig.Result) != 96 ||
			!ecdsa.Verify(&ecPriv.PublicKey, dg[:], new(big.Int).SetBytes(sig.Result[:48]), new(big.Int).SetBytes(sig.Result[48:])) {
			t.Errorf("Sign with the imported EC key: %v", err)
		}

		// Public-only keys, oct keys and HSM keys on a standard vault are refused.
		_, err = c.kc.ImportKey(ctx, "imp-pub", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeRSA),
			N: priv.N.Bytes(), E: []byte{1, 0, 1}}}, nil)
		confWantErr(t, "ImportKey without private parts", err, http.StatusBadRequest, "BadParameter", "private")
		_, err = c.kc.ImportKey(ctx, "imp-oct", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeOct),
			K: bytes.Repeat([]byte{7}, 32)}}, nil)
		confWantErr(t, "ImportKey oct", err, http.StatusBadRequest, "BadParameter", "Managed HSM")
		_, err = c.kc.ImportKey(ctx, "imp-hsm", azkeys.ImportKeyParameters{Key: jk, HSM: to.Ptr(true)}, nil)
		confWantErr(t, "ImportKey Hsm:true into a standard vault", err, http.StatusBadRequest, "BadParameter", "premium")
	})
}

// Listing: §g 14 and 15.
func (c *confEnv) testListing(t *testing.T) {
	ctx := context.Background()
	lc, rec := c.client(t, c.listURL)
	const n = 27
	for i := range n {
		confCreate(t, lc, "lk-"+strconv.Itoa(100+i), confEC(azkeys.CurveNameP256))
	}
	rec.take()

	t.Run("keys page with absolute nextLinks (14)", func(t *testing.T) {
		var names []string
		pages := 0
		for pager := lc.NewListKeyPropertiesPager(nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage err = %v", err)
			}
			pages++
			for _, it := range page.Value {
				if it.KID == nil || it.KID.Version() != "" || string(*it.KID) != c.listURL+"/keys/"+it.KID.Name() ||
					it.Attributes == nil || it.Attributes.Created == nil || !*it.Attributes.Enabled {
					t.Errorf("list item = %+v; want a kid without version and the attributes", it)
					continue
				}
				names = append(names, it.KID.Name())
			}
		}
		slices.Sort(names)
		if len(names) != n || len(slices.Compact(names)) != n || pages < 2 {
			t.Fatalf("listed %d keys (distinct) in %d pages; want %d in at least 2", len(names), pages, n)
		}
		ex := rec.take()
		if len(ex) != pages {
			t.Fatalf("%d requests for %d pages", len(ex), pages)
		}
		for i, x := range ex {
			var body struct {
				Value    []map[string]json.RawMessage `json:"value"`
				NextLink *string                      `json:"nextLink"`
			}
			if err := json.Unmarshal(x.body, &body); err != nil {
				t.Fatal(err)
			}
			if len(body.Value) > 25 {
				t.Errorf("page %d has %d items; AKV pages hold at most 25", i, len(body.Value))
			}
			for _, it := range body.Value {
				if _, ok := it["key"]; ok {
					t.Errorf("a list item carries key material: %s", it["key"])
				}
			}
			if i == len(ex)-1 {
				if body.NextLink != nil && *body.NextLink != "" {
					t.Errorf("the last page has nextLink %s", *body.NextLink)
				}
				continue
			}
			if body.NextLink == nil {
				t.Fatalf("page %d has no nextLink", i)
			}
			u, err := url.Parse(*body.NextLink)
			if err != nil || u.Scheme != "https" || "https://"+u.Host != c.listURL || u.Path != "/keys" ||
				u.Query().Get("api-version") != confAPIVersion || u.Query().Get("$skiptoken") == "" {
				t.Errorf("nextLink = %s; want an absolute https link on %s with api-version and $skiptoken", *body.NextLink, c.listURL)
			}
			next, _ := url.Parse(ex[i+1].url)
			if next.Host != u.Host || next.Path != u.Path || next.Query().Encode() != u.Query().Encode() {
				t.Errorf("the client followed %s, not the nextLink %s", ex[i+1].url, *body.NextLink)
			}
		}
	})

	t.Run("maxresults is honoured (14)", func(t *testing.T) {
		link := c.listURL + "/keys" + confQuery + "&maxresults=5"
		total, pages := 0, 0
		for link != "" && pages < 20 {
			rep := c.raw(t, "GET", link, "", nil)
			var body struct {
				Value    []json.RawMessage `json:"value"`
				NextLink *string           `json:"nextLink"`
			}
			if rep.status != http.StatusOK || json.Unmarshal(rep.body, &body) != nil {
				t.Fatalf("GET %s = %d %s", link, rep.status, rep.body)
			}
			pages++
			total += len(body.Value)
			if len(body.Value) > 5 {
				t.Errorf("page %d has %d items with maxresults=5", pages, len(body.Value))
			}
			link = ""
			if body.NextLink != nil {
				link = *body.NextLink
				if u, _ := url.Parse(link); u.Query().Get("maxresults") != "5" {
					t.Errorf("nextLink %s dropped maxresults", link)
				}
			}
		}
		if total != n || pages != (n+4)/5 {
			t.Errorf("maxresults=5 listed %d keys in %d pages; want %d in %d", total, pages, n, (n+4)/5)
		}
		for _, bad := range []string{"0", "26", "x"} {
			rep := c.raw(t, "GET", c.listURL+"/keys"+confQuery+"&maxresults="+bad, "", nil)
			confWantRaw(t, "maxresults="+bad, rep, http.StatusBadRequest, "BadParameter", "maxresults")
		}
	})

	t.Run("versions (15)", func(t *testing.T) {
		var want []string
		for range 3 {
			want = append(want, confKID(confCreate(t, c.kc, "lv-k", confEC(azkeys.CurveNameP256))))
		}
		slices.Sort(want)
		if got := confVersions(t, c.kc, "lv-k"); !slices.Equal(got, want) {
			t.Errorf("versions = %v, want %v", got, want)
		}
		for pager := c.kc.NewListKeyPropertiesVersionsPager("no-such-key", nil); pager.More(); {
			_, err := pager.NextPage(ctx)
			confWantErr(t, "list versions of a missing key", err, http.StatusNotFound, "KeyNotFound")
			break
		}
	})
}

// Soft delete, recover, purge: §g 16–21.
func (c *confEnv) testSoftDelete(t *testing.T) {
	ctx := context.Background()
	confCreate(t, c.kc, "del-k", confEC(azkeys.CurveNameP256))
	latest := confCreate(t, c.kc, "del-k", confEC(azkeys.CurveNameP256))

	t.Run("delete (16)", func(t *testing.T) {
		d, err := c.kc.DeleteKey(ctx, "del-k", nil)
		if err != nil {
			t.Fatalf("DeleteKey err = %v", err)
		}
		if d.RecoveryID == nil || *d.RecoveryID != c.e.vaultURL+"/deletedkeys/del-k" || d.DeletedDate == nil || d.ScheduledPurgeDate == nil ||
			d.ScheduledPurgeDate.Sub(*d.DeletedDate) != 90*24*time.Hour || d.Key == nil || string(*d.Key.KID) != confKID(latest) ||
			*d.Attributes.RecoverableDays != 90 {
			t.Errorf("DeleteKey = recoveryId %v deleted %v purge %v kid %v", d.RecoveryID, d.DeletedDate, d.ScheduledPurgeDate, d.Key)
		}
		_, err = c.kc.GetKey(ctx, "del-k", "", nil)
		confWantErr(t, "GetKey after delete", err, http.StatusNotFound, "KeyNotFound")
		_, err = c.kc.DeleteKey(ctx, "del-k", nil)
		confWantErr(t, "DeleteKey twice", err, http.StatusNotFound, "KeyNotFound")
	})

	t.Run("deleted key visible at once (17)", func(t *testing.T) {
		g, err := c.kc.GetDeletedKey(ctx, "del-k", nil)
		if err != nil || string(*g.Key.KID) != confKID(latest) || *g.RecoveryID != c.e.vaultURL+"/deletedkeys/del-k" || g.ScheduledPurgeDate == nil {
			t.Errorf("GetDeletedKey = %+v, %v", g.Key, err)
		}
		found := false
		for pager := c.kc.NewListDeletedKeyPropertiesPager(nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, it := range page.Value {
				if it.KID.Name() == "del-k" {
					found = true
					if it.KID.Version() != "" || it.RecoveryID == nil || it.DeletedDate == nil || it.ScheduledPurgeDate == nil {
						t.Errorf("deleted item = kid %s recoveryId %v", *it.KID, it.RecoveryID)
					}
				}
			}
		}
		if !found {
			t.Error("ListDeletedKeyProperties does not list del-k")
		}
		_, err = c.kc.GetDeletedKey(ctx, "ver-k", nil)
		confWantErr(t, "GetDeletedKey of a live key", err, http.StatusNotFound, "KeyNotFound", "Deleted Key not found")
	})

	t.Run("create or import on a soft-deleted name (18)", func(t *testing.T) {
		_, err := c.kc.CreateKey(ctx, "del-k", confEC(azkeys.CurveNameP256), nil)
		confWantErr(t, "CreateKey on a soft-deleted name", err, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable", "del-k")
		ecPriv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		pt, _ := ecPriv.PublicKey.Bytes()
		d, _ := ecPriv.Bytes()
		_, err = c.kc.ImportKey(ctx, "del-k", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC),
			Crv: to.Ptr(azkeys.CurveNameP256), X: pt[1:33], Y: pt[33:], D: d}}, nil)
		confWantErr(t, "ImportKey on a soft-deleted name", err, http.StatusConflict, "Conflict", "ObjectIsDeletedButRecoverable")
	})

	t.Run("recover (19)", func(t *testing.T) {
		r, err := c.kc.RecoverDeletedKey(ctx, "del-k", nil)
		if err != nil || confKID(r.KeyBundle) != confKID(latest) || !bytes.Equal(r.Key.X, latest.Key.X) {
			t.Fatalf("RecoverDeletedKey = %v, %v; want %s", r.Key, err, confKID(latest))
		}
		if g, err := c.kc.GetKey(ctx, "del-k", "", nil); err != nil || confKID(g.KeyBundle) != confKID(latest) {
			t.Errorf("GetKey after recover = %v", err)
		}
		if got := confVersions(t, c.kc, "del-k"); len(got) != 2 {
			t.Errorf("versions after recover = %d, want 2", len(got))
		}
		_, err = c.kc.GetDeletedKey(ctx, "del-k", nil)
		confWantErr(t, "GetDeletedKey after recover", err, http.StatusNotFound, "KeyNotFound")
		_, err = c.kc.RecoverDeletedKey(ctx, "del-k", nil)
		confWantErr(t, "RecoverDeletedKey of a live key", err, http.StatusNotFound, "KeyNotFound")
	})

	t.Run("purge (20)", func(t *testing.T) {
		if _, err := c.kc.DeleteKey(ctx, "del-k", nil); err != nil {
			t.Fatal(err)
		}
		rep := c.raw(t, "DELETE", c.e.vaultURL+"/deletedkeys/del-k"+confQuery, "", nil)
		if rep.status != http.StatusNoContent || len(rep.body) != 0 {
			t.Fatalf("purge = %d %q; want 204 with no body", rep.status, rep.body)
		}
		_, err := c.kc.GetDeletedKey(ctx, "del-k", nil)
		confWantErr(t, "GetDeletedKey after purge", err, http.StatusNotFound, "KeyNotFound")
		_, err = c.kc.PurgeDeletedKey(ctx, "del-k", nil)
		confWantErr(t, "purge twice", err, http.StatusNotFound, "KeyNotFound")
		k := confCreate(t, c.kc, "del-k", confEC(azkeys.CurveNameP256))
		if got := confVersions(t, c.kc, "del-k"); len(got) != 1 || got[0] != confKID(k) {
			t.Errorf("after purge and re-create: versions %v", got)
		}
		// The SDK's own purge.
		if _, err := c.kc.DeleteKey(ctx, "del-k", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := c.kc.PurgeDeletedKey(ctx, "del-k", nil); err != nil {
			t.Errorf("PurgeDeletedKey err = %v", err)
		}
	})

	t.Run("recovery levels and protected purges (20, 21)", func(t *testing.T) {
		cases := []struct {
			name, url string
			level     string
			days      int32
			purgeable bool
			inner     string
		}{
			{"90 days", c.e.vaultURL, "Recoverable+Purgeable", 90, true, ""},
			{"30 days", c.ret30URL, "CustomizedRecoverable+Purgeable", 30, true, ""},
			{"purge protection, 7 days", c.pp7URL, "CustomizedRecoverable", 7, false, "PurgeProtectionEnabled"},
			{"mandatory retention period", c.protURL, "Recoverable+ProtectedSubscription", 90, false, "SubscriptionProtected"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				kc, _ := c.client(t, tc.url)
				k := confCreate(t, kc, "lvl-k", confEC(azkeys.CurveNameP256))
				if *k.Attributes.RecoveryLevel != tc.level || *k.Attributes.RecoverableDays != tc.days {
					t.Errorf("created: %s/%d, want %s/%d", *k.Attributes.RecoveryLevel, *k.Attributes.RecoverableDays, tc.level, tc.days)
				}
				if g, err := kc.GetKey(ctx, "lvl-k", "", nil); err != nil || *g.Attributes.RecoveryLevel != tc.level {
					t.Errorf("GetKey level = %v", err)
				}
				d, err := kc.DeleteKey(ctx, "lvl-k", nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := d.ScheduledPurgeDate.Sub(*d.DeletedDate); got != time.Duration(tc.days)*24*time.Hour {
					t.Errorf("scheduledPurgeDate - deletedDate = %v, want %d days", got, tc.days)
				}
				_, err = kc.PurgeDeletedKey(ctx, "lvl-k", nil)
				if tc.purgeable {
					if err != nil {
						t.Errorf("PurgeDeletedKey err = %v", err)
					}
					return
				}
				confWantErr(t, "PurgeDeletedKey", err, http.StatusForbidden, "Forbidden", tc.inner, tc.level, "lvl-k")
				if _, err := kc.GetDeletedKey(ctx, "lvl-k", nil); err != nil {
					t.Errorf("the key is gone after a refused purge: %v", err)
				}
				if _, err := kc.RecoverDeletedKey(ctx, "lvl-k", nil); err != nil {
					t.Errorf("RecoverDeletedKey err = %v", err)
				}
			})
		}
	})
}

// Crypto against crypto/* as the oracle: §g 22–27.
func (c *confEnv) testCrypto(t *testing.T) {
	ctx := context.Background()
	rk := confCreate(t, c.kc, "cr-rsa", confRSA(2048))
	pub := confRSAPublic(t, rk.Key)

	t.Run("encrypt and decrypt (22)", func(t *testing.T) {
		msg := []byte("customer key data encryption policy")
		for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSA15} {
			enc, err := c.kc.Encrypt(ctx, "cr-rsa", confVersion(rk), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: msg}, nil)
			if err != nil || len(enc.Result) != 256 || string(*enc.KID) != confKID(rk) {
				t.Fatalf("%s: Encrypt = %d bytes kid %v, %v", alg, len(enc.Result), enc.KID, err)
			}
			dec, err := c.kc.Decrypt(ctx, "cr-rsa", confVersion(rk), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: enc.Result}, nil)
			if err != nil || !bytes.Equal(dec.Result, msg) || string(*dec.KID) != confKID(rk) {
				t.Errorf("%s: Decrypt of the vault's ciphertext = %q, %v", alg, dec.Result, err)
			}
			var local []byte
			switch alg {
			case azkeys.EncryptionAlgorithmRSAOAEP:
				local, err = rsa.EncryptOAEP(sha1.New(), rand.Reader, pub, msg, nil)
			case azkeys.EncryptionAlgorithmRSAOAEP256:
				local, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
			default:
				local, err = rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
			}
			if err != nil {
				t.Fatal(err)
			}
			dec, err = c.kc.Decrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: local}, nil)
			if err != nil || !bytes.Equal(dec.Result, msg) {
				t.Errorf("%s: Decrypt of a local ciphertext = %q, %v", alg, dec.Result, err)
			}
		}
		// The wrong algorithm or a damaged ciphertext is a 400, never a 500.
		enc, _ := c.kc.Encrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: msg}, nil)
		_, err := c.kc.Decrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: enc.Result}, nil)
		confWantErr(t, "Decrypt with the wrong algorithm", err, http.StatusBadRequest, "BadParameter")
		_, err = c.kc.Encrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmA256GCM), Value: msg}, nil)
		confWantErr(t, "Encrypt A256GCM with an RSA key", err, http.StatusBadRequest, "BadParameter", "A256GCM")
	})

	t.Run("sign and verify (23)", func(t *testing.T) {
		hashes := map[string]crypto.Hash{"256": crypto.SHA256, "384": crypto.SHA384, "512": crypto.SHA512}
		digest := func(h crypto.Hash) []byte {
			w := h.New()
			w.Write([]byte("Microsoft 365 Customer Key"))
			return w.Sum(nil)
		}
		for _, alg := range []azkeys.SignatureAlgorithm{azkeys.SignatureAlgorithmRS256, azkeys.SignatureAlgorithmRS384, azkeys.SignatureAlgorithmRS512,
			azkeys.SignatureAlgorithmPS256, azkeys.SignatureAlgorithmPS384, azkeys.SignatureAlgorithmPS512} {
			h := hashes[string(alg)[2:]]
			d := digest(h)
			sig, err := c.kc.Sign(ctx, "cr-rsa", "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: d}, nil)
			if err != nil {
				t.Fatalf("%s: Sign err = %v", alg, err)
			}
			if strings.HasPrefix(string(alg), "RS") {
				err = rsa.VerifyPKCS1v15(pub, h, d, sig.Result)
			} else {
				err = rsa.VerifyPSS(pub, h, d, sig.Result, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			}
			if err != nil {
				t.Errorf("%s: crypto/rsa rejects the vault's signature: %v", alg, err)
			}
			c.checkVerify(t, "cr-rsa", alg, d, sig.Result)
		}
		for crv, alg := range map[azkeys.CurveName]azkeys.SignatureAlgorithm{azkeys.CurveNameP256: azkeys.SignatureAlgorithmES256,
			azkeys.CurveNameP384: azkeys.SignatureAlgorithmES384, azkeys.CurveNameP521: azkeys.SignatureAlgorithmES512,
			azkeys.CurveNameP256K: azkeys.SignatureAlgorithmES256K} {
			name := "cr-" + strings.ToLower(strings.ReplaceAll(string(crv), "-", ""))
			k := confCreate(t, c.kc, name, confEC(crv))
			h := hashes[strings.TrimSuffix(string(alg)[2:], "K")]
			d := digest(h)
			sig, err := c.kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(alg), Value: d}, nil)
			if err != nil {
				t.Fatalf("%s: Sign err = %v", alg, err)
			}
			size := len(k.Key.X)
			if len(sig.Result) != 2*size {
				t.Fatalf("%s: signature of %d bytes; want raw r||s of %d (not ASN.1)", alg, len(sig.Result), 2*size)
			}
			point := append(append([]byte{4}, k.Key.X...), k.Key.Y...)
			ok := false
			if crv == azkeys.CurveNameP256K {
				pk, err := secp256k1.ParsePubKey(point)
				if err != nil {
					t.Fatal(err)
				}
				var r, s secp256k1.ModNScalar
				r.SetByteSlice(sig.Result[:size])
				s.SetByteSlice(sig.Result[size:])
				ok = k1ecdsa.NewSignature(&r, &s).Verify(d, pk)
			} else {
				curve := map[azkeys.CurveName]elliptic.Curve{azkeys.CurveNameP256: elliptic.P256(), azkeys.CurveNameP384: elliptic.P384(),
					azkeys.CurveNameP521: elliptic.P521()}[crv]
				pk, err := ecdsa.ParseUncompressedPublicKey(curve, point)
				if err != nil {
					t.Fatal(err)
				}
				ok = ecdsa.Verify(pk, d, new(big.Int).SetBytes(sig.Result[:size]), new(big.Int).SetBytes(sig.Result[size:]))
			}
			if !ok {
				t.Errorf("%s: the reference verifier rejects the vault's signature", alg)
			}
			c.checkVerify(t, name, alg, d, sig.Result)
		}
		// A digest of the wrong length and an algorithm of another curve are refused.
		_, err := c.kc.Sign(ctx, "cr-p256", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: []byte("short")}, nil)
		confWantErr(t, "Sign with a short digest", err, http.StatusBadRequest, "BadParameter", "32 bytes")
		_, err = c.kc.Sign(ctx, "cr-p256", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: make([]byte, 48)}, nil)
		confWantErr(t, "Sign ES384 with a P-256 key", err, http.StatusBadRequest, "BadParameter", "ES384")
	})

	t.Run("wrap and unwrap (24)", func(t *testing.T) {
		dek := make([]byte, 32)
		_, _ = rand.Read(dek)
		for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSA15} {
			w, err := c.kc.WrapKey(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: dek}, nil)
			if err != nil || len(w.Result) != 256 || string(*w.KID) != confKID(rk) {
				t.Fatalf("%s: WrapKey = %v", alg, err)
			}
			u, err := c.kc.UnwrapKey(ctx, "cr-rsa", confVersion(rk), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: w.Result}, nil)
			if err != nil || !bytes.Equal(u.Result, dek) {
				t.Errorf("%s: UnwrapKey = %v", alg, err)
			}
		}
		local, _ := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, dek, nil)
		if u, err := c.kc.UnwrapKey(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: local}, nil); err != nil || !bytes.Equal(u.Result, dek) {
			t.Errorf("UnwrapKey of a local wrap: %v", err)
		}
		// Wrapping with an EC key is refused.
		_, err := c.kc.WrapKey(ctx, "cr-p256", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
		confWantErr(t, "WrapKey with an EC key", err, http.StatusForbidden, "Forbidden", "OperationNotAllowed")
	})

	t.Run("key state refuses operations (25)", func(t *testing.T) {
		d := sha256.Sum256([]byte("state"))
		es256 := azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: d[:]}
		confCreate(t, c.kc, "cr-disabled", confEC(azkeys.CurveNameP256))
		sig, err := c.kc.Sign(ctx, "cr-disabled", "", es256, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.kc.UpdateKey(ctx, "cr-disabled", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
			t.Fatal(err)
		}
		_, err = c.kc.Sign(ctx, "cr-disabled", "", es256, nil)
		confWantErr(t, "Sign with a disabled key", err, http.StatusForbidden, "Forbidden", "KeyDisabled", "disabled")
		_, err = c.kc.Verify(ctx, "cr-disabled", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: d[:], Signature: sig.Result}, nil)
		confWantErr(t, "Verify with a disabled key", err, http.StatusForbidden, "Forbidden", "KeyDisabled")
		if _, err := c.kc.GetKey(ctx, "cr-disabled", "", nil); err != nil {
			t.Errorf("GetKey of a disabled key err = %v; reading stays allowed", err)
		}

		p := confEC(azkeys.CurveNameP256)
		p.KeyOps = []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationVerify)}
		confCreate(t, c.kc, "cr-verifyonly", p)
		_, err = c.kc.Sign(ctx, "cr-verifyonly", "", es256, nil)
		confWantErr(t, "Sign with a verify-only key", err, http.StatusForbidden, "Forbidden", "OperationNotAllowed", "key_ops")
		rp := confRSA(2048)
		rp.KeyOps = []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationWrapKey), to.Ptr(azkeys.KeyOperationUnwrapKey)}
		confCreate(t, c.kc, "cr-wraponly", rp)
		_, err = c.kc.Encrypt(ctx, "cr-wraponly", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("x")}, nil)
		confWantErr(t, "Encrypt with a wrap-only key", err, http.StatusForbidden, "Forbidden", "OperationNotAllowed")

		now := c.clk.Now()
		p = confEC(azkeys.CurveNameP256)
		p.KeyAttributes = &azkeys.KeyAttributes{NotBefore: to.Ptr(now.Add(time.Hour))}
		confCreate(t, c.kc, "cr-notyet", p)
		_, err = c.kc.Sign(ctx, "cr-notyet", "", es256, nil)
		confWantErr(t, "Sign before nbf", err, http.StatusForbidden, "Forbidden", "KeyNotYetValid")

		p = confEC(azkeys.CurveNameP256)
		p.KeyAttributes = &azkeys.KeyAttributes{Expires: to.Ptr(now.Add(time.Hour))}
		confCreate(t, c.kc, "cr-expired", p)
		sig, err = c.kc.Sign(ctx, "cr-expired", "", es256, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.kc.UpdateKey(ctx, "cr-expired", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: to.Ptr(now.Add(-time.Hour))}}, nil); err != nil {
			t.Fatalf("moving exp into the past: %v", err)
		}
		_, err = c.kc.Sign(ctx, "cr-expired", "", es256, nil)
		confWantErr(t, "Sign after exp", err, http.StatusForbidden, "Forbidden", "KeyExpired")
		// Documented rule: verify (like decrypt and unwrap) still works after exp.
		v, err := c.kc.Verify(ctx, "cr-expired", "", azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: d[:], Signature: sig.Result}, nil)
		if err != nil || v.Value == nil || !*v.Value {
			t.Errorf("Verify after exp = %v, %v; want true", v.Value, err)
		}
	})

	t.Run("omitted version uses the latest (26)", func(t *testing.T) {
		k1 := confCreate(t, c.kc, "cr-latest", confEC(azkeys.CurveNameP256))
		k2 := confCreate(t, c.kc, "cr-latest", confEC(azkeys.CurveNameP256))
		d := sha256.Sum256([]byte("latest"))
		sig, err := c.kc.Sign(ctx, "cr-latest", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: d[:]}, nil)
		if err != nil || string(*sig.KID) != confKID(k2) {
			t.Fatalf("Sign without version: kid %v, %v; want %s", sig.KID, err, confKID(k2))
		}
		v, err := c.kc.Verify(ctx, "cr-latest", confVersion(k1), azkeys.VerifyParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Digest: d[:], Signature: sig.Result}, nil)
		if err != nil || *v.Value {
			t.Errorf("Verify with the old version = %v, %v; want false: the signature is the latest's", v.Value, err)
		}
		rep := c.raw(t, "POST", c.e.vaultURL+"/keys/cr-latest/sign"+confQuery, `{"alg":"ES256","value":"`+base64.RawURLEncoding.EncodeToString(d[:])+`"}`, nil)
		var out struct{ KID, Value string }
		if err := json.Unmarshal(rep.body, &out); rep.status != http.StatusOK || err != nil || out.KID != confKID(k2) {
			t.Errorf("POST /keys/cr-latest/sign = %d %s; want the latest version's kid", rep.status, rep.body)
		}
	})

	t.Run("byte fields are unpadded base64url (27)", func(t *testing.T) {
		for n := 1; n <= 64; n++ {
			msg := make([]byte, n)
			_, _ = rand.Read(msg)
			enc, err := c.kc.Encrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: msg}, nil)
			if err != nil {
				t.Fatalf("Encrypt %d bytes: %v", n, err)
			}
			dec, err := c.kc.Decrypt(ctx, "cr-rsa", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: enc.Result}, nil)
			if err != nil || !bytes.Equal(dec.Result, msg) {
				t.Fatalf("Decrypt of %d bytes: %v", n, err)
			}
		}
		// On the wire, field by field.
		check := func(what string, body []byte, fields ...string) {
			t.Helper()
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("%s: %s", what, body)
			}
			if k, ok := m["key"]; ok {
				var km map[string]json.RawMessage
				_ = json.Unmarshal(k, &km)
				for f, v := range km {
					m["key."+f] = v
				}
			}
			for _, f := range fields {
				var s string
				if err := json.Unmarshal(m[f], &s); err != nil || s == "" || !confB64URL.MatchString(s) {
					t.Errorf("%s: %s = %s; want unpadded base64url", what, f, m[f])
				}
			}
		}
		rep := c.raw(t, "GET", c.e.vaultURL+"/keys/cr-rsa/"+confQuery, "", nil)
		check("GetKey RSA", rep.body, "key.n", "key.e")
		rep = c.raw(t, "GET", c.e.vaultURL+"/keys/cr-p256/"+confQuery, "", nil)
		check("GetKey EC", rep.body, "key.x", "key.y")
		rep = c.raw(t, "POST", c.e.vaultURL+"/keys/cr-rsa/encrypt"+confQuery, `{"alg":"RSA-OAEP-256","value":"AQ"}`, nil)
		check("Encrypt", rep.body, "value")
		var enc struct{ Value string }
		_ = json.Unmarshal(rep.body, &enc)
		rep = c.raw(t, "POST", c.e.vaultURL+"/keys/cr-rsa/decrypt"+confQuery, `{"alg":"RSA-OAEP-256","value":"`+enc.Value+`"}`, nil)
		check("Decrypt", rep.body, "value")
		d := sha256.Sum256([]byte("wire"))
		rep = c.raw(t, "POST", c.e.vaultURL+"/keys/cr-p256/sign"+confQuery, `{"alg":"ES256","value":"`+base64.RawURLEncoding.EncodeToString(d[:])+`"}`, nil)
		check("Sign", rep.body, "value")
		rep = c.raw(t, "POST", c.e.vaultURL+"/keys/cr-p256/backup"+confQuery, "", nil)
		check("BackupKey", rep.body, "value")
		// Padded and standard-alphabet input is accepted, as some tools send it.
		rep = c.raw(t, "POST", c.e.vaultURL+"/keys/cr-rsa/encrypt"+confQuery, `{"alg":"RSA-OAEP-256","value":"AQ=="}`, nil)
		if rep.status != http.StatusOK {
			t.Errorf("Encrypt with a padded value = %d %s", rep.status, rep.body)
		}
	})
}

func (c *confEnv) checkVerify(t *testing.T, name string, alg azkeys.SignatureAlgorithm, d, sig []byte) {
	t.Helper()
	ctx := context.Background()
	v, err := c.kc.Verify(ctx, name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: d, Signature: sig}, nil)
	if err != nil || v.Value == nil || !*v.Value {
		t.Errorf("%s: Verify of a good signature = %v, %v", alg, v.Value, err)
	}
	bad := slices.Clone(sig)
	bad[len(bad)-1] ^= 1
	v, err = c.kc.Verify(ctx, name, "", azkeys.VerifyParameters{Algorithm: to.Ptr(alg), Digest: d, Signature: bad}, nil)
	if err != nil || v.Value == nil || *v.Value {
		t.Errorf("%s: Verify of a tampered signature = %v, %v; want false", alg, v.Value, err)
	}
}

// Backup and restore: §g 28 and 29.
func (c *confEnv) testBackup(t *testing.T) {
	ctx := context.Background()
	confCreate(t, c.kc, "bk-k", confEC(azkeys.CurveNameP384))
	p := confEC(azkeys.CurveNameP384)
	p.Tags = map[string]*string{"backup": to.Ptr("yes")}
	last := confCreate(t, c.kc, "bk-k", p)
	before := confVersions(t, c.kc, "bk-k")
	b, err := c.kc.BackupKey(ctx, "bk-k", nil)
	if err != nil || len(b.Value) == 0 {
		t.Fatalf("BackupKey = %d bytes, %v", len(b.Value), err)
	}
	blob := b.Value

	t.Run("restore needs the name free (28)", func(t *testing.T) {
		_, err := c.kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: blob}, nil)
		confWantErr(t, "RestoreKey over a live key", err, http.StatusConflict, "Conflict", "bk-k")
		if _, err := c.kc.DeleteKey(ctx, "bk-k", nil); err != nil {
			t.Fatal(err)
		}
		_, err = c.kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: blob}, nil)
		confWantErr(t, "RestoreKey over a soft-deleted key", err, http.StatusConflict, "Conflict", "bk-k")
		if _, err := c.kc.PurgeDeletedKey(ctx, "bk-k", nil); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("restore brings back every version (28)", func(t *testing.T) {
		r, err := c.kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: blob}, nil)
		if err != nil {
			t.Fatalf("RestoreKey err = %v", err)
		}
		if confKID(r.KeyBundle) != confKID(last) || !bytes.Equal(r.Key.X, last.Key.X) || *r.Tags["backup"] != "yes" ||
			!r.Attributes.Created.Equal(*last.Attributes.Created) {
			t.Errorf("RestoreKey = kid %s tags %v created %v; want %s", confKID(r.KeyBundle), r.Tags, r.Attributes.Created, confKID(last))
		}
		if after := confVersions(t, c.kc, "bk-k"); !slices.Equal(after, before) {
			t.Errorf("versions after restore = %v, want %v", after, before)
		}
		d := sha512.Sum384([]byte("restored"))
		if _, err := c.kc.Sign(ctx, "bk-k", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: d[:]}, nil); err != nil {
			t.Errorf("Sign with the restored key: %v", err)
		}
	})

	t.Run("damaged blobs are refused (28)", func(t *testing.T) {
		for name, bad := range map[string][]byte{
			"a flipped byte": func() []byte { x := slices.Clone(blob); x[len(x)/2] ^= 0x40; return x }(),
			"truncated":      blob[:len(blob)-20],
			"not a backup":   []byte("opaque-blob"),
		} {
			_, err := c.kc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: bad}, nil)
			confWantErr(t, "RestoreKey of "+name, err, http.StatusBadRequest, "BadParameter", "backup")
		}
		rep := c.raw(t, "POST", c.e.vaultURL+"/keys/restore"+confQuery, `{"value":"!!!"}`, nil)
		confWantRaw(t, "RestoreKey with bad base64url", rep, http.StatusBadRequest, "BadParameter", "base64url")
	})

	t.Run("restore into another subscription is refused (29)", func(t *testing.T) {
		pc, _ := c.client(t, c.protURL)
		_, err := pc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: blob}, nil)
		confWantErr(t, "RestoreKey into another subscription", err, http.StatusBadRequest, "BadParameter", "another subscription")
		if _, err := pc.GetKey(ctx, "bk-k", "", nil); err == nil {
			t.Error("the refused restore created the key")
		}
		// Another vault of the same subscription takes it.
		lc, _ := c.client(t, c.ret30URL)
		if r, err := lc.RestoreKey(ctx, azkeys.RestoreKeyParameters{KeyBackup: blob}, nil); err != nil || r.Key.KID.Version() != confVersion(last) ||
			!strings.HasPrefix(confKID(r.KeyBundle), c.ret30URL+"/keys/bk-k/") {
			t.Errorf("RestoreKey into a vault of the same subscription = %v", err)
		}
	})
}

// Rotation: §g 30 and 31.
func (c *confEnv) testRotation(t *testing.T) {
	ctx := context.Background()
	first := confCreate(t, c.kc, "rot-k", confEC(azkeys.CurveNameP256))

	t.Run("default policy", func(t *testing.T) {
		p, err := c.kc.GetKeyRotationPolicy(ctx, "rot-k", nil)
		if err != nil || p.ID == nil || *p.ID != c.e.vaultURL+"/keys/rot-k/rotationpolicy" || len(p.LifetimeActions) != 1 ||
			!strings.EqualFold(string(*p.LifetimeActions[0].Action.Type), "Notify") || *p.LifetimeActions[0].Trigger.TimeBeforeExpiry != "P30D" {
			t.Errorf("GetKeyRotationPolicy of a key without one = %+v, %v; want the default Notify P30D", p, err)
		}
	})

	t.Run("policy round trip (30)", func(t *testing.T) {
		in := azkeys.KeyRotationPolicy{
			Attributes: &azkeys.KeyRotationPolicyAttributes{ExpiryTime: to.Ptr("P90D")},
			LifetimeActions: []*azkeys.LifetimeAction{{
				Action:  &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyAction("rotate"))},
				Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P30D")},
			}},
		}
		set, err := c.kc.UpdateKeyRotationPolicy(ctx, "rot-k", in, nil)
		if err != nil {
			t.Fatalf("UpdateKeyRotationPolicy err = %v", err)
		}
		got, err := c.kc.GetKeyRotationPolicy(ctx, "rot-k", nil)
		if err != nil {
			t.Fatal(err)
		}
		for what, p := range map[string]azkeys.KeyRotationPolicy{"set": set.KeyRotationPolicy, "get": got.KeyRotationPolicy} {
			if p.ID == nil || *p.ID != c.e.vaultURL+"/keys/rot-k/rotationpolicy" {
				t.Errorf("%s: id = %v", what, p.ID)
			}
			if p.Attributes == nil || p.Attributes.ExpiryTime == nil || *p.Attributes.ExpiryTime != "P90D" || p.Attributes.Created == nil || p.Attributes.Updated == nil {
				t.Errorf("%s: attributes = %+v", what, p.Attributes)
			}
			var rotate, notify bool
			for _, a := range p.LifetimeActions {
				switch {
				case strings.EqualFold(string(*a.Action.Type), "rotate"):
					rotate = a.Trigger.TimeAfterCreate != nil && *a.Trigger.TimeAfterCreate == "P30D"
				case strings.EqualFold(string(*a.Action.Type), "notify"):
					notify = a.Trigger.TimeBeforeExpiry != nil && *a.Trigger.TimeBeforeExpiry == "P30D"
				}
			}
			if !rotate || !notify || len(p.LifetimeActions) != 2 {
				t.Errorf("%s: %d actions, rotate %v, default notify %v", what, len(p.LifetimeActions), rotate, notify)
			}
		}
		bad := in
		bad.LifetimeActions = []*azkeys.LifetimeAction{{Action: &azkeys.LifetimeActionType{Type: to.Ptr(azkeys.KeyRotationPolicyAction("Explode"))},
			Trigger: &azkeys.LifetimeActionTrigger{TimeAfterCreate: to.Ptr("P30D")}}}
		_, err = c.kc.UpdateKeyRotationPolicy(ctx, "rot-k", bad, nil)
		confWantErr(t, "a policy with action Explode", err, http.StatusBadRequest, "BadParameter", "Explode")
		_, err = c.kc.UpdateKeyRotationPolicy(ctx, "no-such-key", in, nil)
		confWantErr(t, "a policy on a missing key", err, http.StatusNotFound, "KeyNotFound")
	})

	t.Run("rotate (31)", func(t *testing.T) {
		r, err := c.kc.RotateKey(ctx, "rot-k", nil)
		if err != nil {
			t.Fatalf("RotateKey err = %v", err)
		}
		a := r.Attributes
		if r.Key == nil || r.Key.KID == nil || r.Key.KID.Version() == "" || r.Key.KID.Version() == confVersion(first) || bytes.Equal(r.Key.X, first.Key.X) {
			t.Fatalf("RotateKey = %+v; want a new version with new material", r.Key)
		}
		if a.Expires == nil || !a.Expires.Equal(a.Created.AddDate(0, 0, 90)) {
			t.Errorf("rotated version: created %v exp %v; want exp = created + 90 days (the policy's expiryTime)", a.Created, a.Expires)
		}
		if latest, err := c.kc.GetKey(ctx, "rot-k", "", nil); err != nil || confKID(latest.KeyBundle) != confKID(r.KeyBundle) {
			t.Errorf("GetKey after rotate = %v", err)
		}
		if got := confVersions(t, c.kc, "rot-k"); len(got) != 2 {
			t.Errorf("versions after rotate = %d, want 2", len(got))
		}
		_, err = c.kc.RotateKey(ctx, "no-such-key", nil)
		confWantErr(t, "RotateKey of a missing key", err, http.StatusNotFound, "KeyNotFound", "no-such-key")
	})
}

// Operations the service refuses: §g 32 and 33.
func (c *confEnv) testRefused(t *testing.T) {
	ctx := context.Background()
	confCreate(t, c.kc, "rel-k", confRSA(2048))
	t.Run("GetRandomBytes (32)", func(t *testing.T) {
		_, err := c.kc.GetRandomBytes(ctx, azkeys.GetRandomBytesParameters{Count: to.Ptr(int32(16))}, nil)
		confWantErr(t, "GetRandomBytes", err, http.StatusBadRequest, "BadParameter", "Managed HSM")
	})
	t.Run("release (33)", func(t *testing.T) {
		_, err := c.kc.Release(ctx, "rel-k", "", azkeys.ReleaseParameters{TargetAttestationToken: to.Ptr("eyJhbGciOiJub25lIn0.e30.")}, nil)
		confWantErr(t, "Release", err, http.StatusBadRequest, "BadParameter", "Key release is not supported")
		p := confRSA(2048)
		p.KeyAttributes = &azkeys.KeyAttributes{Exportable: to.Ptr(true)}
		_, err = c.kc.CreateKey(ctx, "rel-exportable", p, nil)
		confWantErr(t, "CreateKey exportable", err, http.StatusBadRequest, "BadParameter", "release")
	})
}

// Wire robustness: §g 39–41, and body limits.
func (c *confEnv) testWire(t *testing.T) {
	base := c.e.vaultURL
	t.Run("bodies (39)", func(t *testing.T) {
		rep := c.raw(t, "POST", base+"/keys/wire-k/create"+confQuery, `{"kty":"EC"}`, map[string]string{"Content-Type": ""})
		confWantRaw(t, "a body without Content-Type", rep, http.StatusBadRequest, "BadParameter", "Content-Type")
		rep = c.raw(t, "POST", base+"/keys/wire-k/create"+confQuery, `{"kty":"EC"}`, map[string]string{"Content-Type": "text/plain"})
		confWantRaw(t, "a text/plain body", rep, http.StatusBadRequest, "BadParameter")
		for _, body := range []string{`{"kty":`, `[1,2]`, `{"kty":"EC"} {}`, `{"kty":"EC","key_size":"big"}`, `{"kty":"EC","crv":"P-256","attributes":{"exp":"2030-01-01"}}`, `null x`} {
			rep = c.raw(t, "POST", base+"/keys/wire-k/create"+confQuery, body, nil)
			confWantRaw(t, "malformed JSON "+body, rep, http.StatusBadRequest, "BadParameter")
		}
		rep = c.raw(t, "POST", base+"/keys/wire-k/create"+confQuery, "", nil)
		confWantRaw(t, "an empty body", rep, http.StatusBadRequest, "BadParameter")
		rep = c.raw(t, "POST", base+"/keys/wire-k/create"+confQuery, `{"kty":"EC","crv":"P-256","futureField":{"a":[1,2]},"attributes":{"hsmPlatform":"9"}}`, nil)
		if rep.status != http.StatusOK {
			t.Errorf("unknown fields = %d %s; want them ignored", rep.status, rep.body)
		}
		rep = c.raw(t, "POST", base+"/keys/wire-k/sign"+confQuery, `{"alg":"ES256","value":"`+strings.Repeat("A", 20<<10)+`"}`, nil)
		if rep.status < 400 || rep.status >= 500 || rep.code == "" {
			t.Errorf("an oversized sign body = %d %s; want a 4xx in AKV's format", rep.status, rep.body)
		}
		rep = c.raw(t, "PUT", base+"/keys/wire-big"+confQuery, `{"key":{"kty":"RSA","n":"`+strings.Repeat("A", 100<<10)+`"}}`, nil)
		if rep.status < 400 || rep.status >= 500 || rep.code == "" {
			t.Errorf("an oversized import body = %d %s; want a 4xx in AKV's format", rep.status, rep.body)
		}
		for _, p := range []string{"/keys/wire-k/sign", "/keys/wire-k/encrypt", "/keys/wire-k/verify"} {
			for _, body := range []string{`{}`, `{"alg":"ES256"}`, `{"alg":"ES256","value":"***"}`, `{"alg":"ES256","value":"AA","digest":"%%"}`, `{"alg":7}`} {
				rep = c.raw(t, "POST", base+p+confQuery, body, nil)
				if rep.status < 400 || rep.status >= 500 {
					t.Errorf("POST %s %s = %d %s; want a 4xx", p, body, rep.status, rep.body)
				}
			}
		}
	})

	t.Run("URL forms (40)", func(t *testing.T) {
		rep := c.raw(t, "GET", base+"/keys/wire-k/?api%2Dversion="+confAPIVersion, "", nil)
		if rep.status != http.StatusOK {
			t.Errorf("api%%2Dversion = %d %s", rep.status, rep.body)
		}
		rep = c.raw(t, "GET", base+"/keys/wire-k"+confQuery, "", nil)
		if rep.status != http.StatusOK {
			t.Errorf("GET without the trailing slash = %d %s", rep.status, rep.body)
		}
		rep = c.raw(t, "PATCH", base+"/keys/wire-k/"+confQuery, `{"tags":{"patched":"yes"}}`, nil)
		if rep.status != http.StatusOK || !strings.Contains(string(rep.body), `"patched":"yes"`) {
			t.Errorf("PATCH with the trailing slash = %d %s", rep.status, rep.body)
		}
		rep = c.raw(t, "GET", base+"//keys//wire-k/"+confQuery, "", nil)
		if rep.status != http.StatusOK {
			t.Errorf("GET with doubled slashes = %d %s", rep.status, rep.body)
		}
		rep = c.raw(t, "GET", base+"/KEYS/wire-k/"+confQuery, "", nil)
		if rep.status != http.StatusOK {
			t.Errorf("GET /KEYS = %d %s; paths compare without regard to case", rep.status, rep.body)
		}
		for _, p := range []string{"/keys/lv-k%2Fversions", "/keys/lv-k%2F", "/keys/lv-k%2f..%2fwire-k", "/keys/%2E%2E/wire-k"} {
			rep = c.raw(t, "GET", base+p+confQuery, "", nil)
			if rep.status == http.StatusOK || rep.status >= 500 {
				t.Errorf("GET %s = %d %s; an escaped slash must not reach another key", p, rep.status, rep.body)
			}
		}
		rep = c.raw(t, "GET", base+"/keys/lv-k%2Fversions"+confQuery, "", nil)
		confWantRaw(t, "GET /keys/lv-k%2Fversions", rep, http.StatusBadRequest, "BadParameter")
		rep = c.raw(t, "DELETE", base+"/keys/wire-k%2F"+confQuery, "", nil)
		confWantRaw(t, "DELETE /keys/wire-k%2F", rep, http.StatusBadRequest, "BadParameter")
		if rep := c.raw(t, "GET", base+"/keys/wire-k/"+confQuery, "", nil); rep.status != http.StatusOK {
			t.Errorf("wire-k is gone after DELETE /keys/wire-k%%2F: %d", rep.status)
		}
		rep = c.raw(t, "GET", base+"/secrets/s1"+confQuery, "", nil)
		confWantRaw(t, "GET /secrets/s1", rep, http.StatusBadRequest, "BadParameter", "not part of the Key Vault keys API")
	})

	t.Run("request ids (41)", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{{"GET", "/keys/wire-k/"}, {"GET", "/keys/no-such-key/"}, {"POST", "/rng"}} {
			rep := c.raw(t, tc.method, base+tc.path+confQuery, "", map[string]string{"x-ms-client-request-id": "ckconf-0042"})
			if got := rep.header.Get("x-ms-client-request-id"); got != "ckconf-0042" {
				t.Errorf("%s %s = %d echoed x-ms-client-request-id %q", tc.method, tc.path, rep.status, got)
			}
		}
		req, _ := http.NewRequest("GET", base+"/keys/wire-k/"+confQuery, nil) // no token: the challenge
		resp, err := c.s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("x-ms-request-id") == "" {
			t.Errorf("the challenge = %d with x-ms-request-id %q", resp.StatusCode, resp.Header.Get("x-ms-request-id"))
		}
	})
}

// A cancelled subscription (no retention period) disables its vaults.
func (c *confEnv) testDisabledSubscription(t *testing.T, spID string) {
	ctx := context.Background()
	sub := c.subscription(t, spID)
	u := c.vault(t, sub, "ckconf-dis", armkeyvault.VaultProperties{})
	dc, _ := c.client(t, u)
	confCreate(t, dc, "dis-k", confEC(azkeys.CurveNameP256))
	armMust(t, c.s, c.armTok, "POST", "/subscriptions/"+sub+"/providers/Microsoft.Subscription/cancel?api-version=2021-10-01", "", http.StatusOK, nil)

	_, err := dc.CreateKey(ctx, "dis-k2", confEC(azkeys.CurveNameP256), nil)
	confWantErr(t, "CreateKey in a cancelled subscription", err, http.StatusForbidden, "Forbidden", "ReadOnlyDisabledSubscription", sub, "disabled")
	c.clk.Advance(6 * time.Second) // past what a node caches of the subscription
	_, err = dc.GetKey(ctx, "dis-k", "", nil)
	confWantErr(t, "GetKey in a cancelled subscription", err, http.StatusForbidden, "Forbidden", "ReadOnlyDisabledSubscription", sub)
	d := sha256.Sum256([]byte("disabled"))
	_, err = dc.Sign(ctx, "dis-k", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: d[:]}, nil)
	confWantErr(t, "Sign in a cancelled subscription", err, http.StatusForbidden, "Forbidden", "ReadOnlyDisabledSubscription")
	// Other subscriptions are unaffected.
	if _, err := c.kc.GetKey(ctx, "rot-k", "", nil); err != nil {
		t.Errorf("a vault of another subscription stopped working: %v", err)
	}
}
