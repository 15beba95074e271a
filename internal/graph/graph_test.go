package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/graph"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// fakeVerifier is the test double of graph's consumer-declared Verifier
// interface: it maps opaque test tokens to principals. Real tokens are
// verified by identity, and the server-level tests drive this surface with
// them; here only the mapping from a verified principal to a response is
// under test.
type fakeVerifier map[string]identity.Principal

func (f fakeVerifier) Verify(_ context.Context, token string, s identity.Surface) (identity.Principal, error) {
	p, ok := f[token]
	if !ok {
		return identity.Principal{}, errkind.New(errkind.Unauthenticated, "the access token is not valid")
	}
	if s != identity.Graph || p.Audience != identity.GraphResource {
		return identity.Principal{}, errkind.Errorf(errkind.Unauthenticated, "the access token's audience %q is not valid for %s", p.Audience, s)
	}
	return p, nil
}

// Test tokens.
const (
	tokAdmin     = "admin-contoso"  // Global Administrator user of Contoso
	tokAdminApp  = "admin-app"      // Contoso's automation app (Global Administrator)
	tokUser      = "user-contoso"   // a Contoso user without roles
	tokFabrikam  = "admin-fabrikam" // Global Administrator of another tenant
	tokARM       = "arm-token"      // Contoso admin, but a Resource Manager token
	tokNoTenant  = "deleted-tenant" // a principal of a tenant that does not exist
	contosoPlain = "plain@contoso.onmicrosoft.com"
)

type fixture struct {
	t        *testing.T
	srv      *httptest.Server
	dir      *directory.Directory
	operator directory.Provisioned
	contoso  directory.Provisioned
	fabrikam directory.Provisioned
	plain    directory.User

	mu        sync.Mutex
	responses []recorded // every response the server sent, to look for leaks
}

type recorded struct {
	method, path string
	body         string
}

var fixedNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newFixture builds a real directory on a real bbolt file with an
// operator tenant (holding the first-party apps), a customer tenant
// Contoso with an E5 licence and a plain user, and a second customer
// tenant Fabrikam, and serves the Graph surface over them.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "ck.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open() err = %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// One clock for the directory and the surface, as the app layer wires
	// them: addPassword turns an endDateTime into a lifetime.
	now := func() time.Time { return fixedNow }
	dir := directory.New(directory.Options{Store: st, Audit: audit.New(audit.Options{Store: st, Now: now}), Now: now,
		KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	f := &fixture{t: t, dir: dir}
	if f.operator, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true}); err != nil {
		t.Fatalf("ProvisionTenant(operator) err = %v", err)
	}
	if err := dir.RegisterFirstPartyApps(ctx, f.operator.Tenant.ID); err != nil {
		t.Fatalf("RegisterFirstPartyApps() err = %v", err)
	}
	if f.contoso, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso",
		Licenses: []string{"Office 365 E5"}}); err != nil {
		t.Fatalf("ProvisionTenant(contoso) err = %v", err)
	}
	if f.fabrikam, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"}); err != nil {
		t.Fatalf("ProvisionTenant(fabrikam) err = %v", err)
	}
	if f.plain, err = dir.CreateUser(ctx, directory.System, f.contoso.Tenant.ID, directory.UserSpec{
		UserPrincipalName: contosoPlain, Password: secret.NewString("correct horse battery")}); err != nil {
		t.Fatalf("CreateUser() err = %v", err)
	}
	user := func(p directory.Provisioned, u directory.User) identity.Principal {
		return identity.Principal{TenantID: p.Tenant.ID, ObjectID: u.ID, AppID: directory.CLIAppID, Type: identity.UserPrincipal,
			Name: u.UserPrincipalName, Audience: identity.GraphResource}
	}
	arm := user(f.contoso, f.contoso.Admin)
	arm.Audience = identity.ARMResource
	gone := user(f.contoso, f.contoso.Admin)
	gone.TenantID = "0b7e1a52-3c43-4c1f-9a1e-000000000000"
	verifier := fakeVerifier{
		tokAdmin: user(f.contoso, f.contoso.Admin),
		tokAdminApp: {TenantID: f.contoso.Tenant.ID, ObjectID: f.contoso.AdminSP.ID, AppID: f.contoso.AdminApp.AppID,
			Type: identity.AppPrincipal, Name: f.contoso.AdminApp.DisplayName, Audience: identity.GraphResource},
		tokUser:     user(f.contoso, f.plain),
		tokFabrikam: user(f.fabrikam, f.fabrikam.Admin),
		tokARM:      arm,
		tokNoTenant: gone,
	}
	var h http.Handler
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	api := graph.New(graph.Options{Directory: dir, Verifier: verifier, PublicURL: f.srv.URL, Now: now})
	mux := http.NewServeMux()
	api.Register(mux)
	h = httpx.WithRequestID(f.recording(mux))
	return f
}

// recording keeps a copy of every response body.
func (f *fixture) recording(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &tee{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		f.mu.Lock()
		f.responses = append(f.responses, recorded{r.Method, r.URL.Path, rec.buf.String()})
		f.mu.Unlock()
	})
}

type tee struct {
	http.ResponseWriter
	buf bytes.Buffer
}

func (t *tee) Write(b []byte) (int, error) {
	t.buf.Write(b)
	return t.ResponseWriter.Write(b)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request. A body that is not a string or []byte is
// encoded as JSON.
func (f *fixture) call(method, path, token string, body any) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatalf("json.Marshal(%v) err = %v", b, err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, rd)
	if err != nil {
		f.t.Fatalf("NewRequest(%s %s) err = %v", method, path, err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("client-request-id", "test-client-request")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatalf("%s %s err = %v", method, path, err)
	}
	return readResponse(f.t, resp)
}

func readResponse(t *testing.T, resp *http.Response) response {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// want fails the test unless the response has status; it returns the
// body decoded into T.
func want[T any](t *testing.T, r response, status int) T {
	t.Helper()
	var v T
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if len(r.body) > 0 {
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}
	return v
}

// graphError is Graph's OData error; wantError decodes it strictly, so an
// extra or misspelled property fails the test.
type graphError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

func wantError(t *testing.T, r response, status int, code string, msgParts ...string) graphError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	var e graphError
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %s is not Graph's shape: %v", r.body, err)
	}
	if e.Error.Code != code {
		t.Errorf("error code = %q, want %q (message %q)", e.Error.Code, code, e.Error.Message)
	}
	for _, p := range msgParts {
		if !strings.Contains(e.Error.Message, p) {
			t.Errorf("error message %q does not contain %q", e.Error.Message, p)
		}
	}
	if e.Error.InnerError.RequestID == "" || e.Error.InnerError.RequestID != r.header.Get("x-ms-request-id") {
		t.Errorf("innerError.request-id = %q, want the x-ms-request-id %q", e.Error.InnerError.RequestID, r.header.Get("x-ms-request-id"))
	}
	if got, want := e.Error.InnerError.Date, "2026-03-01T12:00:00"; got != want {
		t.Errorf("innerError.date = %q, want %q", got, want)
	}
	if got := e.Error.InnerError.ClientRequestID; got != "test-client-request" {
		t.Errorf("innerError.client-request-id = %q, want the client's", got)
	}
	return e
}

type collection[T any] struct {
	Context  string `json:"@odata.context"`
	Count    *int   `json:"@odata.count"`
	NextLink string `json:"@odata.nextLink"`
	Value    []T    `json:"value"`
}

func (f *fixture) contextURL(fragment string) string {
	return f.srv.URL + "/v1.0/$metadata#" + fragment
}
