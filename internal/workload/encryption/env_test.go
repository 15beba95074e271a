package encryption

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// fakePolicies is a test double of dep built on envelope: it keeps one
// AES-256 key per policy version in memory and seals scope keys under it,
// so that wrapping, unwrapping, revocation and policy changes are real
// cryptography without root keys and vaults. The real dep has its own
// tests, and the end-to-end tests of internal/app run this package on it.
type fakePolicies struct {
	mu        sync.Mutex
	keys      map[dep.PolicyRef]secret.Bytes
	effective map[string]dep.PolicyRef
	revoked   map[string]bool // policy ids whose root keys the customer revoked
	// gate, when set, holds every unwrap until it is closed.
	gate chan struct{}

	wraps, unwraps, systemUnwraps atomic.Int64
}

func newFakePolicies() *fakePolicies {
	return &fakePolicies{keys: map[dep.PolicyRef]secret.Bytes{}, effective: map[string]dep.PolicyRef{}, revoked: map[string]bool{}}
}

// defaultRef is the service-managed default of a tenant.
func defaultRef(tid string) dep.PolicyRef {
	return dep.PolicyRef{TenantID: tid, PolicyID: "default-" + tid[:8], Kind: dep.ServiceManaged, KeyVersion: 1}
}

func (f *fakePolicies) Effective(_ context.Context, tid string, w dep.Workload) (dep.PolicyRef, error) {
	if w != dep.Encryption {
		return dep.PolicyRef{}, errkind.Errorf(errkind.Invalid, "fake dep: asked for workload %s", w)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref, ok := f.effective[tid]; ok {
		return ref, nil
	}
	return defaultRef(tid), nil
}

// assign makes ref the tenant's effective policy.
func (f *fakePolicies) assign(ref dep.PolicyRef) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.effective[ref.TenantID] = ref
}

func (f *fakePolicies) revoke(policyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[policyID] = true
}

func (f *fakePolicies) key(ref dep.PolicyRef) (secret.Bytes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ref.TenantID = ""
	k, ok := f.keys[ref]
	if !ok {
		var err error
		if k, err = envelope.NewKey(); err != nil {
			return k, err
		}
		f.keys[ref] = k
	}
	return k, nil
}

func (f *fakePolicies) WrapScopeKey(_ context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	f.wraps.Add(1)
	pk, err := f.key(ref)
	if err != nil {
		return nil, err
	}
	// The fake's wrapped form names the policy and kind in the key id.
	return envelope.Seal(pk, string(ref.Kind)+":"+ref.PolicyID, uint32(ref.KeyVersion), key.Reveal(), aad)
}

func (f *fakePolicies) UnwrapScopeKey(_ context.Context, _ string, wrapped, aad []byte, p dep.Purpose) (secret.Bytes, error) {
	f.unwraps.Add(1)
	if p.System {
		f.systemUnwraps.Add(1)
	}
	f.mu.Lock()
	gate := f.gate
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	id, ver, err := envelope.Header(wrapped)
	if err != nil {
		return secret.Bytes{}, err
	}
	kind, policyID, _ := strings.Cut(id, ":")
	f.mu.Lock()
	revoked := f.revoked[policyID]
	f.mu.Unlock()
	if revoked && !p.System {
		return secret.Bytes{}, errkind.Errorf(errkind.PermissionDenied, "fake dep: the root keys of policy %s are revoked", policyID)
	}
	pk, err := f.key(dep.PolicyRef{PolicyID: policyID, Kind: dep.Kind(kind), KeyVersion: int(ver)})
	if err != nil {
		return secret.Bytes{}, err
	}
	b, err := envelope.Open(pk, wrapped, aad)
	if err != nil {
		return secret.Bytes{}, err
	}
	return secret.New(b), nil
}

// countingStore counts the transactions that reach the store, so that
// tests can check the hot path reads nothing.
type countingStore struct {
	storage.Backend
	views, updates atomic.Int64
}

func (c *countingStore) View(ctx context.Context, fn func(storage.Tx) error) error {
	c.views.Add(1)
	return c.Backend.View(ctx, fn)
}

func (c *countingStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	c.updates.Add(1)
	return c.Backend.Update(ctx, fn)
}

func (c *countingStore) ops() int64 { return c.views.Load() + c.updates.Load() }

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const cacheLife = time.Minute

// env is a fixture: two tenants (Contoso, Fabrikam) with their first
// Global Administrators, a Compliance Administrator, two users and the
// automation application of Contoso, and the service on a real bolt store
// with the dep double.
type env struct {
	t     testing.TB
	ctx   context.Context
	clock *clock
	store *countingStore
	audit *audit.Log
	dir   *directory.Directory
	dep   *fakePolicies
	svc   *Service

	org, other        directory.Provisioned
	tid, otherTID     string
	admin, otherAdmin directory.Caller // Global Administrators
	compliance        directory.Caller // Compliance Administrator of org
	exchangeAdmin     directory.Caller // a role that does not manage scopes
	alice, bob        directory.Caller // users of org without roles
	app               directory.Caller // org's automation service principal
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: context.Background(), store: &countingStore{Backend: st}, dep: newFakePolicies(),
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	e.audit = audit.New(audit.Options{Store: e.store, Now: e.clock.Now})
	e.dir = directory.New(directory.Options{Store: e.store, Audit: e.audit, Now: e.clock.Now, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	e.svc = New(Options{Store: e.store, Audit: e.audit, Policies: e.dep, Directory: e.dir, KeyCacheLifetime: cacheLife, Now: e.clock.Now})

	op, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.RegisterFirstPartyApps(e.ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.org = e.provision("Contoso")
	e.other = e.provision("Fabrikam")
	e.tid, e.otherTID = e.org.Tenant.ID, e.other.Tenant.ID
	e.admin = caller(e.tid, e.org.Admin.ID, "user")
	e.otherAdmin = caller(e.otherTID, e.other.Admin.ID, "user")
	e.app = caller(e.tid, e.org.AdminSP.ID, "servicePrincipal")
	e.compliance = e.user("compliance", directory.ComplianceAdministrator.ID)
	e.alice = e.user("alice")
	e.bob = e.user("bob")
	e.exchangeAdmin = e.user("exo", directory.ExchangeAdministrator.ID)
	return e
}

func caller(tid, oid, typ string) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: typ, ID: oid}, TenantID: tid}
}

func (e *env) provision(name string) directory.Provisioned {
	e.t.Helper()
	p, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: name, Licenses: []string{"Microsoft 365 E5"}})
	if err != nil {
		e.t.Fatalf("ProvisionTenant(%s): %v", name, err)
	}
	return p
}

// user creates a user of org with the given directory roles.
func (e *env) user(name string, roles ...string) directory.Caller {
	e.t.Helper()
	u, err := e.dir.CreateUser(e.ctx, directory.System, e.tid, directory.UserSpec{UserPrincipalName: name + "@" + e.org.Tenant.DefaultDomain,
		DisplayName: name, Password: secret.NewString("Passw0rd!Passw0rd!")})
	if err != nil {
		e.t.Fatalf("CreateUser(%s): %v", name, err)
	}
	for _, r := range roles {
		if _, err := e.dir.AssignRole(e.ctx, directory.System, e.tid, r, u.ID); err != nil {
			e.t.Fatalf("AssignRole(%s): %v", name, err)
		}
	}
	c := caller(e.tid, u.ID, "user")
	c.Name = u.UserPrincipalName
	return c
}

// scope creates a scope in org as its Global Administrator.
func (e *env) scope(name string, principals ...string) Scope {
	e.t.Helper()
	sc, err := e.svc.CreateScope(e.ctx, e.admin, e.tid, ScopeSpec{Name: name, Principals: principals})
	if err != nil {
		e.t.Fatalf("CreateScope(%s): %v", name, err)
	}
	return sc
}

func (e *env) encrypt(c directory.Caller, name string, pt, aad []byte) []byte {
	e.t.Helper()
	ct, err := e.svc.Encrypt(e.ctx, c, e.tid, name, nil, pt, aad)
	if err != nil {
		e.t.Fatalf("Encrypt(%s): %v", name, err)
	}
	return ct
}

// events returns the actions and results of org's audit log.
func (e *env) events(tid string) []audit.Event {
	e.t.Helper()
	page, err := e.audit.List(e.ctx, tid, "", audit.MaxPage)
	if err != nil {
		e.t.Fatalf("audit.List: %v", err)
	}
	return page.Events
}

func (e *env) hasEvent(tid, action, target string, result audit.Result) bool {
	for _, ev := range e.events(tid) {
		if ev.Action == action && ev.Target == target && ev.Result == result {
			return true
		}
	}
	return false
}

func wantKind(t *testing.T, what string, err error, k errkind.Kind) {
	t.Helper()
	if !errkind.Is(err, k) {
		t.Errorf("%s: err = %v (kind %v), want kind %v", what, err, errkind.KindOf(err), k)
	}
}
