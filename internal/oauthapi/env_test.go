package oauthapi_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/oauthapi"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

const vaultRes = "https://vault.localhost:8443"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// server is the real stack (bbolt, audit, directory, identity) served by
// oauthapi on a TLS test server, with an operator tenant holding the
// first-party apps and two customer tenants.
type server struct {
	t     *testing.T
	store storage.Backend
	clock *clock
	audit *audit.Log
	dir   *directory.Directory
	svc   *identity.Service
	srv   *httptest.Server
	op    directory.Provisioned
	a, b  directory.Provisioned
}

func newServer(t *testing.T) *server {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	// The clock starts at the real time: MSAL checks expiry with its own.
	c := &clock{t: time.Now().UTC()}
	al := audit.New(audit.Options{Store: st, Now: c.Now})
	dir := directory.New(directory.Options{Store: st, Audit: al, Now: c.Now, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	s := &server{t: t, store: st, clock: c, audit: al, dir: dir}
	if s.op, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true}); err != nil {
		t.Fatal(err)
	}
	if err := dir.RegisterFirstPartyApps(ctx, s.op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	if s.a, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso"}); err != nil {
		t.Fatal(err)
	}
	if s.b, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"}); err != nil {
		t.Fatal(err)
	}
	// The public URL is known only once the server listens; the handler
	// is installed right after.
	var h atomic.Pointer[http.Handler]
	s.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
	t.Cleanup(s.srv.Close)
	if s.svc, err = identity.New(ctx, identity.Options{Store: st, Directory: dir, Audit: al, Now: c.Now,
		PublicURL: s.srv.URL, VaultResource: vaultRes}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	oauthapi.Register(mux, s.svc, nil)
	var handler http.Handler = httpx.WithRequestID(mux)
	h.Store(&handler)
	return s
}

// clientOptions points an azidentity credential at the server.
func (s *server) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: s.srv.URL + "/", Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}},
		Transport: s.srv.Client(),
		Retry:     policyNoRetry(),
	}
}

// response is a raw HTTP answer.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// post sends a form to path.
func (s *server) post(path string, form url.Values, hdr ...string) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return do(s.t, s.srv.Client(), req)
}

func (s *server) get(path string) response {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.srv.URL+path, nil)
	return do(s.t, s.srv.Client(), req)
}

// browser is a user's browser: it keeps cookies and does not follow
// redirects, so tests see where the server sends it.
type browser struct {
	t *testing.T
	c *http.Client
}

func (s *server) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	tr := s.srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	return &browser{t: t, c: &http.Client{Jar: jar, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(u string) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return do(b.t, b.c, req)
}

func (b *browser) post(u string, form url.Values) response {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pu, _ := url.Parse(u)
	req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
	return do(b.t, b.c, req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page's form.
func hidden(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// approveDevice completes the device login pages as a user would.
func (b *browser) approveDevice(verificationURL, userCode, upn, password string) response {
	b.t.Helper()
	page := b.get(verificationURL)
	if page.status != http.StatusOK {
		b.t.Fatalf("GET %s = %d", verificationURL, page.status)
	}
	f := hidden(page.body)
	f.Set("user_code", userCode)
	page = b.post(verificationURL, f)
	if page.status != http.StatusOK || !strings.Contains(page.body, `name="password"`) {
		b.t.Fatalf("code step = %d %s", page.status, page.body)
	}
	f = hidden(page.body)
	f.Set("username", upn)
	f.Set("password", password)
	f.Set("action", "approve")
	return b.post(verificationURL, f)
}
