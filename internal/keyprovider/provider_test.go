package keyprovider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
)

// The provider against a stand-in vault speaking AKV's protocol over TLS:
// the challenge, the token, the answers the unwrap rules depend on, the
// caches and the timeouts. The real server is driven in internal/app.

const (
	testSuffix = "vault.test"
	testTenant = "tenant-1"
	testApp    = "00000002-0000-0ff1-ce00-000000000000"
	testVer    = "0123456789abcdef0123456789abcdef"
)

// fakeVault answers like Key Vault for vaults *.vault.test, by vault and
// key name:
//   - vault "gone": 404 VaultNotFound; "foreign": its challenge names
//     another tenant; "odd": its challenge names another resource.
//   - key "good": a 2048-bit RSA key whose wrap reverses the bytes;
//     "disabled", "rbac", "missing", "busy" (503), "slow" (never answers),
//     "liar" (answers with another key's identifier).
type fakeVault struct {
	srv  *httptest.Server
	port string
	n    []byte

	mu       sync.Mutex
	requests map[string]int // by vault/key
	tokens   map[string]bool
}

func newFakeVault(t *testing.T) (*fakeVault, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"*." + testSuffix}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeVault{n: append([]byte{0xc0}, make([]byte, 255)...), requests: map[string]int{}, tokens: map[string]bool{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	_, f.port, _ = net.SplitHostPort(f.srv.Listener.Addr().String())
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return f, pool
}

func (f *fakeVault) uri(vault, key string) string {
	return "https://" + vault + "." + testSuffix + ":" + f.port + "/keys/" + key
}

func (f *fakeVault) count(vaultKey string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[vaultKey]
}

func (f *fakeVault) serve(w http.ResponseWriter, r *http.Request) {
	vault, _, _ := strings.Cut(r.Host, ".")
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/keys/"), "/")
	name := parts[0]
	f.mu.Lock()
	f.requests[vault+"/"+name]++
	f.mu.Unlock()
	fail := func(status int, code, inner string) {
		body := map[string]any{"code": code, "message": "stand-in answer"}
		if inner != "" {
			body["innererror"] = map[string]string{"code": inner}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
	}
	if vault == "gone" {
		fail(http.StatusNotFound, "VaultNotFound", "")
		return
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		tenant, resource := testTenant, "https://"+testSuffix+":"+f.port
		switch vault {
		case "foreign":
			tenant = "tenant-2"
		case "odd":
			resource = "https://test:" + f.port
		}
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.test/`+tenant+`", resource="`+resource+`"`)
		fail(http.StatusUnauthorized, "Unauthorized", "")
		return
	}
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	kid := f.uri(vault, name) + "/" + testVer
	op := ""
	if len(parts) > 1 {
		op = parts[len(parts)-1]
	}
	switch name {
	case "disabled":
		fail(http.StatusForbidden, "Forbidden", "KeyDisabled")
		return
	case "rbac":
		fail(http.StatusForbidden, "Forbidden", "ForbiddenByRbac")
		return
	case "missing":
		fail(http.StatusNotFound, "KeyNotFound", "")
		return
	case "busy":
		fail(http.StatusServiceUnavailable, "ServiceUnavailable", "")
		return
	case "slow":
		// The body is read first: only then does the server notice
		// the client hanging up.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return
	case "liar":
		kid = f.uri(vault, "other") + "/" + testVer
	}
	w.Header().Set("Content-Type", "application/json")
	b64 := base64.RawURLEncoding
	switch {
	case r.Method == http.MethodGet:
		_ = json.NewEncoder(w).Encode(map[string]any{
			"key": map[string]any{"kid": kid, "kty": "RSA-HSM", "key_ops": []string{"wrapKey", "unwrapKey"},
				"n": b64.EncodeToString(f.n), "e": "AQAB"},
			"attributes": map[string]any{"enabled": true, "nbf": 1700000000, "exp": 1900000000, "recoveryLevel": "Recoverable+ProtectedSubscription"}})
	case op == "wrapkey" || op == "unwrapkey":
		var in struct{ Alg, Value string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Alg != "RSA-OAEP-256" {
			fail(http.StatusBadRequest, "BadParameter", "")
			return
		}
		v, _ := b64.DecodeString(in.Value)
		slices.Reverse(v)
		_ = json.NewEncoder(w).Encode(map[string]any{"kid": kid, "value": b64.EncodeToString(v)})
	default:
		fail(http.StatusBadRequest, "BadParameter", "")
	}
}

// newTestProvider points a provider at f: every vault host dials f,
// except nxdomain.vault.test, which does not resolve.
func newTestProvider(t *testing.T, f *fakeVault, pool *x509.CertPool, tokens Tokens, tune func(*Options)) *Provider {
	t.Helper()
	d := &net.Dialer{}
	o := Options{Tokens: tokens, VaultDNSSuffix: testSuffix, RootCAs: pool, Retries: -1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if strings.HasPrefix(addr, "nxdomain.") {
				host, _, _ := net.SplitHostPort(addr)
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return d.DialContext(ctx, network, f.srv.Listener.Addr().String())
		}}
	if tune != nil {
		tune(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProviderRoundTrip(t *testing.T) {
	ctx := context.Background()
	f, pool := newFakeVault(t)
	tok := &countingTokens{now: time.Now, lifetime: time.Hour}
	p := newTestProvider(t, f, pool, tok, nil)

	key := []byte("0123456789abcdef0123456789abcdef")
	w, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "good"), key)
	if err != nil {
		t.Fatalf("Wrap err = %v", err)
	}
	reversed := slices.Clone(key)
	slices.Reverse(reversed)
	want := dep.WrappedRoot{KeyID: f.uri("kv1", "good") + "/" + testVer, Alg: "RSA-OAEP-256", Value: reversed}
	if diff := cmp.Diff(want, w); diff != "" {
		t.Errorf("Wrap mismatch (-want +got):\n%s", diff)
	}
	got, err := p.Unwrap(ctx, testApp, testTenant, w)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("Unwrap = %q, %v; want the key back", got, err)
	}
	info, err := p.Describe(ctx, testApp, testTenant, f.uri("kv1", "good")+"/"+testVer)
	if err != nil {
		t.Fatalf("Describe err = %v", err)
	}
	nbf, exp := time.Unix(1700000000, 0), time.Unix(1900000000, 0)
	wantInfo := dep.RootKeyInfo{KeyID: want.KeyID, Kty: "RSA-HSM", Size: 2048, Ops: []string{"wrapKey", "unwrapKey"}, Enabled: true,
		NotBefore: &nbf, Expires: &exp, RecoveryLevel: "Recoverable+ProtectedSubscription"}
	if diff := cmp.Diff(wantInfo, info); diff != "" {
		t.Errorf("Describe mismatch (-want +got):\n%s", diff)
	}
	// One token for the identity, reused by every call and every vault.
	if _, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv2", "good"), key); err != nil {
		t.Fatal(err)
	}
	if n := tok.count(); n != 1 || tok.calls[0] != testTenant+"/"+testApp+"/https://"+testSuffix+":"+f.port {
		t.Errorf("token service calls = %v; want one, for the vault resource", tok.calls)
	}
	// Another identity gets its own. (Renewal is the credential's test:
	// azcore's bearer policy also holds the token, by the real clock.)
	const sharePoint = "00000003-0000-0ff1-ce00-000000000000"
	if _, err := p.Wrap(ctx, sharePoint, testTenant, f.uri("kv1", "good"), key); err != nil {
		t.Fatal(err)
	}
	if n := tok.count(); n != 2 || !strings.HasPrefix(tok.calls[1], testTenant+"/"+sharePoint+"/") {
		t.Errorf("token service calls = %v; want a second one for SharePoint Online", tok.calls)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.tokens) != 2 {
		t.Errorf("the vault saw %d distinct tokens; want 2", len(f.tokens))
	}
}

func TestProviderFailures(t *testing.T) {
	ctx := context.Background()
	f, pool := newFakeVault(t)
	tok := &countingTokens{now: time.Now, lifetime: time.Hour}
	p := newTestProvider(t, f, pool, tok, func(o *Options) { o.CallTimeout = 300 * time.Millisecond })
	refused := newTestProvider(t, f, pool, &countingTokens{now: time.Now,
		fail: errkind.New(errkind.PermissionDenied, "AADSTS7000229: missing service principal")}, nil)
	wrapped := func(vault, name string) dep.WrappedRoot {
		return dep.WrappedRoot{KeyID: f.uri(vault, name) + "/" + testVer, Alg: "RSA-OAEP-256", Value: []byte{1, 2, 3}}
	}
	tests := []struct {
		name  string
		do    func() error
		class dep.Failure
		kind  errkind.Kind
		part  string
	}{
		{"disabled", func() error {
			_, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "disabled"), []byte{1})
			return err
		},
			dep.KeyDisabled, errkind.FailedPrecondition, "is disabled"},
		{"no role", func() error { _, err := p.Unwrap(ctx, testApp, testTenant, wrapped("kv1", "rbac")); return err },
			dep.AccessDenied, errkind.PermissionDenied, "Key Vault Crypto Service Encryption User"},
		{"missing key", func() error { _, err := p.Describe(ctx, testApp, testTenant, f.uri("kv1", "missing")); return err },
			dep.NotFound, errkind.NotFound, "was not found in vault kv1"},
		{"missing vault", func() error { _, err := p.Describe(ctx, testApp, testTenant, f.uri("gone", "good")); return err },
			dep.NotFound, errkind.NotFound, "Vault gone does not exist"},
		{"host not in DNS", func() error { _, err := p.Describe(ctx, testApp, testTenant, f.uri("nxdomain", "good")); return err },
			dep.NotFound, errkind.NotFound, "does not resolve"},
		{"vault of another tenant", func() error { _, err := p.Describe(ctx, testApp, testTenant, f.uri("foreign", "good")); return err },
			dep.AccessDenied, errkind.PermissionDenied, "belongs to tenant tenant-2"},
		{"challenge for another resource", func() error { _, err := p.Describe(ctx, testApp, testTenant, f.uri("odd", "good")); return err },
			dep.Transient, errkind.Unavailable, "asked for a token"},
		{"vault failing", func() error { _, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "busy"), []byte{1}); return err },
			dep.Transient, errkind.Unavailable, "(503)"},
		{"vault silent", func() error { _, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "slow"), []byte{1}); return err },
			dep.Transient, errkind.Unavailable, "did not answer in time (a call may take at most 300ms)"},
		{"answer about another key", func() error { _, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "liar"), []byte{1}); return err },
			dep.Transient, errkind.Unavailable, "answered wrapKey"},
		{"foreign key URI", func() error {
			_, err := p.Wrap(ctx, testApp, testTenant, "https://kv1.vault.azure.net/keys/good", []byte{1})
			return err
		}, dep.NotFound, errkind.Invalid, "not a key of this deployment's vaults (*.vault.test)"},
		{"nothing to wrap", func() error { _, err := p.Wrap(ctx, testApp, testTenant, f.uri("kv1", "good"), nil); return err },
			dep.Transient, errkind.Invalid, "must be 1 to 446 bytes"},
		{"versionless wrapped key", func() error {
			_, err := p.Unwrap(ctx, testApp, testTenant, dep.WrappedRoot{KeyID: f.uri("kv1", "good"), Alg: "RSA-OAEP-256", Value: []byte{1}})
			return err
		}, dep.Transient, errkind.Invalid, "must name a key version"},
		{"wrapped with another algorithm", func() error {
			w := wrapped("kv1", "good")
			w.Alg = "RSA1_5"
			_, err := p.Unwrap(ctx, testApp, testTenant, w)
			return err
		}, dep.Transient, errkind.Invalid, "the algorithm RSA-OAEP-256"},
		{"token refused", func() error {
			_, err := refused.Describe(ctx, testApp, testTenant, f.uri("kv1", "good"))
			return err
		}, dep.AccessDenied, errkind.PermissionDenied, "New-AzADServicePrincipal"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			ke, ok := errors.AsType[*dep.KeyError](err)
			if !ok {
				t.Fatalf("err = %v; want a *dep.KeyError", err)
			}
			if ke.Class != tc.class || errkind.KindOf(err) != tc.kind || !strings.Contains(ke.Message, tc.part) {
				t.Errorf("err = %v %v (%v); want %v %v with %q", ke.Class, errkind.KindOf(err), ke, tc.class, tc.kind, tc.part)
			}
		})
	}
}

func TestProviderRetriesWithinTheCallTimeout(t *testing.T) {
	f, pool := newFakeVault(t)
	tok := &countingTokens{now: time.Now, lifetime: time.Hour}
	p := newTestProvider(t, f, pool, tok, func(o *Options) { o.Retries = 2 })
	_, err := p.Wrap(context.Background(), testApp, testTenant, f.uri("kv1", "busy"), []byte{1})
	if dep.ClassOf(err) != dep.Transient {
		t.Fatalf("Wrap(busy) err = %v; want Transient", err)
	}
	// The challenge, then the first try and two retries.
	if n := f.count("kv1/busy"); n != 4 {
		t.Errorf("busy vault saw %d requests; want 4 (challenge, try, 2 retries)", n)
	}
}

func TestProviderBoundsItsClients(t *testing.T) {
	ctx := context.Background()
	f, pool := newFakeVault(t)
	tok := &countingTokens{now: time.Now, lifetime: time.Hour}
	p := newTestProvider(t, f, pool, tok, func(o *Options) { o.MaxClients = 2 })
	for _, v := range []string{"kv1", "kv2", "kv3", "kv1"} {
		if _, err := p.Describe(ctx, testApp, testTenant, f.uri(v, "good")); err != nil {
			t.Fatalf("Describe(%s) err = %v", v, err)
		}
	}
	for _, app := range []string{"app-a", "app-b", "app-c"} {
		if _, err := p.Describe(ctx, app, testTenant, f.uri("kv1", "good")); err != nil {
			t.Fatalf("Describe as %s err = %v", app, err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.clients) != 2 || len(p.creds) != 2 {
		t.Errorf("kept %d clients and %d credentials; want at most 2 of each", len(p.clients), len(p.creds))
	}
	// The most recent ones are kept.
	if _, ok := p.creds[credKey{appID: "app-c", tenantID: testTenant}]; !ok {
		t.Error("the most recently used credential was evicted")
	}
}

func TestNewRequiresTokensAndSuffix(t *testing.T) {
	for _, o := range []Options{{VaultDNSSuffix: testSuffix}, {Tokens: &countingTokens{}}, {Tokens: &countingTokens{}, VaultDNSSuffix: "."}} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) err = nil; want a refusal", o)
		}
	}
}
