package identity_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

const (
	publicURL = "https://localhost:8443"
	vaultRes  = "https://vault.localhost:8443"
)

// clock is a settable clock shared by the directory and the token service.
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

// env is a real stack: bbolt store, audit log, directory, token service,
// with an operator tenant (holding the first-party apps) and two customer
// tenants.
type env struct {
	t     testing.TB
	store storage.Backend
	clock *clock
	audit *audit.Log
	dir   *directory.Directory
	svc   *identity.Service
	op    directory.Provisioned
	a, b  directory.Provisioned
}

func newEnv(t testing.TB, opts ...func(*identity.Options)) *env {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	al := audit.New(audit.Options{Store: st, Now: c.Now})
	dir := directory.New(directory.Options{Store: st, Audit: al, Now: c.Now, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	e := &env{t: t, store: st, clock: c, audit: al, dir: dir}
	if e.op, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true}); err != nil {
		t.Fatalf("ProvisionTenant(operator): %v", err)
	}
	if err := dir.RegisterFirstPartyApps(ctx, e.op.Tenant.ID); err != nil {
		t.Fatalf("RegisterFirstPartyApps: %v", err)
	}
	if e.a, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso"}); err != nil {
		t.Fatalf("ProvisionTenant(Contoso): %v", err)
	}
	if e.b, err = dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"}); err != nil {
		t.Fatalf("ProvisionTenant(Fabrikam): %v", err)
	}
	e.svc = e.newService(opts...)
	return e
}

// newService starts another token service on the same store, as a second
// node would.
func (e *env) newService(opts ...func(*identity.Options)) *identity.Service {
	e.t.Helper()
	o := identity.Options{Store: e.store, Directory: e.dir, Audit: e.audit, Now: e.clock.Now, PublicURL: publicURL, VaultResource: vaultRes}
	for _, f := range opts {
		f(&o)
	}
	s, err := identity.New(context.Background(), o)
	if err != nil {
		e.t.Fatalf("identity.New: %v", err)
	}
	return s
}

// appToken gets a client-credentials token for tenant a's automation app.
func (e *env) appToken(scope string) string {
	e.t.Helper()
	resp, err := e.svc.Token(context.Background(), identity.TokenRequest{Tenant: e.a.Tenant.ID, GrantType: identity.GrantClientCredentials,
		ClientID: e.a.AdminApp.AppID, ClientSecret: e.a.ClientSecret, Scope: scope})
	if err != nil {
		e.t.Fatalf("Token(client_credentials, %q): %v", scope, err)
	}
	return resp.AccessToken
}

// auditText returns every audit record of a tenant as JSON text.
func (e *env) auditText(tid string) string {
	e.t.Helper()
	p, err := e.audit.List(context.Background(), tid, "", 0)
	if err != nil {
		e.t.Fatalf("audit.List: %v", err)
	}
	b, _ := json.Marshal(p.Events)
	return string(b)
}

// wantErr checks err's kind, OAuth code and that its message contains want.
func wantErr(t *testing.T, err error, kind errkind.Kind, code, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %v %s %q", kind, code, contains)
	}
	e, ok := errkind.As(err)
	if !ok {
		t.Fatalf("err = %v, not an errkind error", err)
	}
	if e.Kind != kind || e.Code != code || !strings.Contains(e.Msg, contains) {
		t.Fatalf("err = (%v, %q, %q), want (%v, %q, containing %q)", e.Kind, e.Code, e.Msg, kind, code, contains)
	}
}
