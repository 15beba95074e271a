package vault_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/vault"
)

const (
	tenantA = "11111111-1111-1111-1111-111111111111"
	tenantB = "22222222-2222-2222-2222-222222222222"
	subA    = "aaaaaaaa-0000-0000-0000-000000000001"
	subA2   = "aaaaaaaa-0000-0000-0000-000000000002" // a second subscription of tenant A
	subB    = "bbbbbbbb-0000-0000-0000-000000000001"
	userA   = "a0000000-0000-0000-0000-00000000000a"
	appX    = "c0000000-0000-0000-0000-00000000000c"
	spX     = "d0000000-0000-0000-0000-00000000000d"
)

// fakeSubs is a test double of the consumer-declared vault.Subscriptions
// interface. Package resources implements the real one; it is being written
// concurrently, so these tests do not depend on it.
type fakeSubs struct {
	mu   sync.Mutex
	subs map[string]*fakeSub
}

type fakeSub struct {
	tenant     string
	disabled   bool
	registered bool
	protected  bool
	rgs        map[string]bool // lowercased names
}

func (f *fakeSubs) get(id string) *fakeSub { return f.subs[strings.ToLower(id)] }

func (f *fakeSubs) Subscription(_ context.Context, id string) (string, error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.get(id)
	if s == nil {
		return "", nil, errkind.Errorf(errkind.NotFound, "The subscription '%s' could not be found.", id).WithCode("SubscriptionNotFound")
	}
	if s.disabled {
		return s.tenant, errkind.Errorf(errkind.FailedPrecondition, "The subscription '%s' is disabled and therefore marked as read only.", id).
			WithCode("ReadOnlyDisabledSubscription"), nil
	}
	return s.tenant, nil, nil
}

func (f *fakeSubs) ResourceGroupExists(_ context.Context, sub, rg string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.get(sub)
	return s != nil && s.rgs[strings.ToLower(rg)], nil
}

func (f *fakeSubs) ProviderRegistered(_ context.Context, sub, ns string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.get(sub)
	return s != nil && ns == vault.Namespace && s.registered, nil
}

func (f *fakeSubs) Protected(_ context.Context, sub string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.get(sub)
	return s != nil && s.protected, nil
}

func (f *fakeSubs) set(sub string, fn func(*fakeSub)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f.get(sub))
}

// fakeLocations is a test double of the consumer-declared vault.Locations
// interface (implemented by package resources).
type fakeLocations map[string]bool

func (l fakeLocations) KnownLocation(name string) bool { return l[name] }

// clock is an injected, adjustable time source.
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

type env struct {
	svc    *vault.Service
	subs   *fakeSubs
	clock  *clock
	audit  *audit.Log
	store  storage.Backend
	purged []string // names given to OnPurge
}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{
		store: st,
		clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		subs: &fakeSubs{subs: map[string]*fakeSub{
			subA:  {tenant: tenantA, registered: true, rgs: map[string]bool{"rg1": true, "rg2": true}},
			subA2: {tenant: tenantA, registered: true, rgs: map[string]bool{"rg1": true}},
			subB:  {tenant: tenantB, registered: true, rgs: map[string]bool{"rg1": true}},
		}},
	}
	e.audit = audit.New(audit.Options{Store: st, Now: e.clock.Now})
	e.svc = vault.New(vault.Options{
		Store: st, Audit: e.audit, Subscriptions: e.subs,
		Locations: fakeLocations{"westeurope": true, "northeurope": true, "eastus": true},
		Now:       e.clock.Now,
		VaultURI:  func(name string) string { return "https://" + name + ".vault.test:8443/" },
		OnPurge: func(_ context.Context, _ storage.Tx, v vault.Vault) error {
			e.purged = append(e.purged, v.Name)
			return nil
		},
	})
	return e
}

var ctx = context.Background()

// caller is a user of tenant A.
var caller = directory.Caller{Actor: audit.Actor{Type: "user", ID: userA, Name: "admin@contoso.onmicrosoft.com"}, TenantID: tenantA}

func ptr[T any](v T) *T { return &v }

// spec is a valid new vault in subA/rg1.
func spec(name string) vault.Spec {
	return vault.Spec{
		SubscriptionID: subA, ResourceGroup: "rg1", Name: name, Location: "westeurope",
		TenantID: tenantA, SKU: vault.SKU{Family: "A", Name: "premium"},
		AccessPolicies: []vault.AccessPolicy{{TenantID: tenantA, ObjectID: userA,
			Permissions: vault.Permissions{Keys: []string{"get", "list", "create"}}}},
	}
}

func (e *env) create(t testing.TB, s vault.Spec) vault.Vault {
	t.Helper()
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, s)
	if err != nil || !created {
		t.Fatalf("CreateOrUpdate(%s) = created %v, err %v; want a new vault", s.Name, created, err)
	}
	return v
}

// wantErr checks err's kind and, when code is not empty, its code.
func wantErr(t *testing.T, what string, err error, kind errkind.Kind, code string) {
	t.Helper()
	if !errkind.Is(err, kind) {
		t.Errorf("%s err = %v (kind %v), want kind %v", what, err, errkind.KindOf(err), kind)
		return
	}
	if code != "" {
		if e, _ := errkind.As(err); e.Code != code {
			t.Errorf("%s code = %q, want %q (err %v)", what, e.Code, code, err)
		}
	}
}
