package encryption_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/ckapi"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	domain "github.com/customerkey/customerkey/internal/workload/encryption"
)

// policies is a test double of dep built on envelope: one in-memory
// AES-256 key per policy seals the scope keys. The real dep has its own
// tests, and the end-to-end tests of internal/app run the service on it;
// here the subject is the client and the HTTP surface.
type policies struct {
	mu   sync.Mutex
	keys map[string]secret.Bytes
}

func (p *policies) key(id string) (secret.Bytes, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[id]
	if !ok {
		var err error
		if k, err = envelope.NewKey(); err != nil {
			return k, err
		}
		p.keys[id] = k
	}
	return k, nil
}

func (p *policies) Effective(_ context.Context, tid string, _ dep.Workload) (dep.PolicyRef, error) {
	return dep.PolicyRef{TenantID: tid, PolicyID: "default-" + tid, Kind: dep.ServiceManaged, KeyVersion: 1}, nil
}

func (p *policies) WrapScopeKey(_ context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	k, err := p.key(ref.PolicyID)
	if err != nil {
		return nil, err
	}
	return envelope.Seal(k, ref.PolicyID, uint32(ref.KeyVersion), key.Reveal(), aad)
}

func (p *policies) UnwrapScopeKey(_ context.Context, _ string, wrapped, aad []byte, _ dep.Purpose) (secret.Bytes, error) {
	id, _, err := envelope.Header(wrapped)
	if err != nil {
		return secret.Bytes{}, err
	}
	k, err := p.key(id)
	if err != nil {
		return secret.Bytes{}, err
	}
	b, err := envelope.Open(k, wrapped, aad)
	return secret.New(b), err
}

// verifier accepts the fixture's tokens, each naming one principal.
type verifier map[string]identity.Principal

func (v verifier) Verify(_ context.Context, token string, s identity.Surface) (identity.Principal, error) {
	p, ok := v[token]
	if !ok || s != identity.ResourceManager {
		return identity.Principal{}, errkind.New(errkind.Unauthenticated, "the test token is not known")
	}
	return p, nil
}

// credential hands out one fixed token.
type credential string

func (c credential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(c), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// testServer is the encryption API over HTTPS: the ckapi handlers in
// front of the domain service on a bolt store, with the dep double. It has
// a tenant Contoso whose automation application (token "app", a Global
// Administrator) and user alice (token "alice") are the principals of the
// scope crm-prod, an administrator user (token "admin") who is not, and
// another tenant's administrator (token "other").
type testServer struct {
	URL, TenantID, Domain string
	Client                *http.Client // trusts the server's certificate
	Svc                   *domain.Service
	// App is the automation application as the service sees it (token
	// "app"), AppID its object id, AliceID alice's.
	App            directory.Caller
	AppID, AliceID string

	srv   *httptest.Server
	store interface{ Close() error }
	dir   string

	mu    sync.Mutex
	calls map[string]int // requests by the last path segment(s)
}

// startTestServer starts the fixture; Close stops it and removes its files.
func startTestServer() (*testServer, error) {
	dir, err := os.MkdirTemp("", "ck-client-")
	if err != nil {
		return nil, err
	}
	ts := &testServer{dir: dir, calls: map[string]int{}}
	if err := ts.start(); err != nil {
		ts.Close()
		return nil, err
	}
	return ts, nil
}

func (ts *testServer) start() error {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(ts.dir, "db"), bolt.Options{})
	if err != nil {
		return err
	}
	ts.store = st
	log := audit.New(audit.Options{Store: st})
	dir := directory.New(directory.Options{Store: st, Audit: log, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	op, err := dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true})
	if err != nil {
		return err
	}
	if err := dir.RegisterFirstPartyApps(ctx, op.Tenant.ID); err != nil {
		return err
	}
	org, err := dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso"})
	if err != nil {
		return err
	}
	other, err := dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"})
	if err != nil {
		return err
	}
	alice, err := dir.CreateUser(ctx, directory.System, org.Tenant.ID, directory.UserSpec{UserPrincipalName: "alice@" + org.Tenant.DefaultDomain,
		DisplayName: "Alice", Password: secret.NewString("Passw0rd!Passw0rd!")})
	if err != nil {
		return err
	}
	ts.TenantID, ts.Domain = org.Tenant.ID, org.Tenant.DefaultDomain
	ts.Svc = domain.New(domain.Options{Store: st, Audit: log, Policies: &policies{keys: map[string]secret.Bytes{}}, Directory: dir})
	user := func(p directory.Provisioned, oid, upn string) identity.Principal {
		return identity.Principal{TenantID: p.Tenant.ID, ObjectID: oid, AppID: directory.CLIAppID, Type: identity.UserPrincipal, Name: upn}
	}
	v := verifier{
		"app":   {TenantID: org.Tenant.ID, ObjectID: org.AdminSP.ID, AppID: org.AdminApp.AppID, Type: identity.AppPrincipal, Name: "Contoso automation"},
		"alice": user(org, alice.ID, alice.UserPrincipalName),
		"admin": user(org, org.Admin.ID, org.Admin.UserPrincipalName),
		"other": user(other, other.Admin.ID, other.Admin.UserPrincipalName),
	}
	api := ckapi.New(ckapi.Options{Directory: dir, Encryption: ts.Svc, Verifier: v, Log: slog.New(slog.DiscardHandler), PublicURL: "https://localhost"})
	mux := http.NewServeMux()
	api.Register(mux)
	h := httpx.WithRequestID(mux)
	ts.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.calls[op2(r.URL.Path)]++
		ts.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	ts.srv.EnableHTTP2 = true
	ts.srv.StartTLS()
	ts.URL, ts.Client = ts.srv.URL, ts.srv.Client()
	ts.App, ts.AppID, ts.AliceID = v["app"].Caller(), org.AdminSP.ID, alice.ID
	_, err = ts.Svc.CreateScope(ctx, ts.App, org.Tenant.ID, domain.ScopeSpec{Name: "crm-prod", Principals: []string{ts.AppID, ts.AliceID}})
	return err
}

// op2 names a request by what follows the scope: encrypt, datakey/decrypt…
func op2(path string) string {
	_, rest, ok := strings.Cut(path, "/encryption/scopes/")
	if !ok {
		return path
	}
	if _, op, ok := strings.Cut(rest, "/"); ok {
		return op
	}
	return "scope"
}

// Calls returns how many requests of op reached the server.
func (ts *testServer) Calls(op string) int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.calls[op]
}

// Close stops the server and removes its files.
func (ts *testServer) Close() error {
	if ts.srv != nil {
		ts.srv.Close()
	}
	var err error
	if ts.store != nil {
		err = ts.store.Close()
	}
	return errors.Join(err, os.RemoveAll(ts.dir))
}
