package rbac_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

var _ rbac.Directory = (*directory.Directory)(nil)

// scopeMap is a map-backed rbac.ScopeResolver for these tests only; the
// real one is built by the composition root over the resources package.
// It knows exactly the scopes added to it.
type scopeMap struct {
	mu sync.Mutex
	m  map[string]string // scope key -> tenant
}

func (s *scopeMap) add(tid string, ids ...resourceid.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.m[id.Key()] = tid
	}
}

func (s *scopeMap) TenantOf(_ context.Context, id resourceid.ID) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m[id.Key()]; ok {
		return t, nil
	}
	return "", errkind.Errorf(errkind.NotFound, "The scope '%s' was not found.", id).WithCode("ResourceNotFound")
}

// clock is an injected, settable time.
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
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// tenant is one customer tenant with a subscription holding a resource
// group with two vaults, each with keys; its administrator owns the
// subscription.
type tenant struct {
	p      directory.Provisioned
	admin  rbac.Principal // Owner of sub
	sub    resourceid.ID
	rg     resourceid.ID
	rg2    resourceid.ID
	vault  resourceid.ID
	vault2 resourceid.ID
	key1   resourceid.ID
	key10  resourceid.ID
	key2   resourceid.ID // in vault2
}

type env struct {
	store  storage.Backend
	audit  *audit.Log
	dir    *directory.Directory
	scopes *scopeMap
	clock  *clock
	svc    *rbac.Service
	a, b   tenant
}

var cheap = directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}

func newEnv(t testing.TB) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := &clock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	al := audit.New(audit.Options{Store: st, Now: clk.Now})
	d := directory.New(directory.Options{Store: st, Audit: al, KDF: cheap, Now: clk.Now})
	e := &env{store: st, audit: al, dir: d, scopes: &scopeMap{m: map[string]string{}}, clock: clk}
	e.svc = e.newService(0)
	ctx := context.Background()
	op, err := d.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Domain: "operator.onmicrosoft.com", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RegisterFirstPartyApps(ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.a = e.newTenant(t, "Contoso")
	e.b = e.newTenant(t, "Fabrikam")
	return e
}

func (e *env) newService(ttl time.Duration) *rbac.Service {
	return rbac.New(rbac.Options{Store: e.store, Audit: e.audit, Directory: e.dir, Scopes: e.scopes,
		Now: e.clock.Now, CacheTTL: ttl})
}

func (e *env) newTenant(t testing.TB, name string) tenant {
	t.Helper()
	ctx := context.Background()
	p, err := e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: name})
	if err != nil {
		t.Fatal(err)
	}
	tn := tenant{p: p}
	tn.sub = resourceid.Subscription(uuid.NewString())
	tn.rg = resourceid.ResourceGroup(tn.sub.SubscriptionID, "keys-rg")
	tn.rg2 = resourceid.ResourceGroup(tn.sub.SubscriptionID, "other-rg")
	tn.vault = resourceid.Vault(tn.sub.SubscriptionID, "keys-rg", strings.ToLower(name)+"-vault1")
	tn.vault2 = resourceid.Vault(tn.sub.SubscriptionID, "keys-rg", strings.ToLower(name)+"-vault2")
	tn.key1 = tn.vault.Child("keys", "k1")
	tn.key10 = tn.vault.Child("keys", "k10")
	tn.key2 = tn.vault2.Child("keys", "k2")
	e.scopes.add(p.Tenant.ID, tn.sub, tn.rg, tn.rg2, tn.vault, tn.vault2, tn.key1, tn.key10, tn.key2)
	tn.admin = rbac.Principal{TenantID: p.Tenant.ID, ObjectID: p.Admin.ID, Type: rbac.PrincipalUser, Name: p.Admin.UserPrincipalName}
	// As the composition root does when it creates a subscription.
	err = e.store.Update(ctx, func(tx storage.Tx) error {
		_, err := e.svc.GrantTx(ctx, tx, audit.Actor{Type: "operator", ID: "op"}, rbac.Grant{
			TenantID: p.Tenant.ID, Scope: tn.sub, RoleID: rbac.OwnerID, PrincipalID: p.Admin.ID, PrincipalType: rbac.PrincipalUser})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Invalidate()
	return tn
}

// user creates a user in tn's directory.
func (e *env) user(t testing.TB, tn tenant, alias string) rbac.Principal {
	t.Helper()
	ga := directory.Caller{Actor: audit.Actor{Type: "user", ID: tn.p.Admin.ID}, TenantID: tn.p.Tenant.ID}
	u, err := e.dir.CreateUser(context.Background(), ga, tn.p.Tenant.ID, directory.UserSpec{
		UserPrincipalName: alias + "@" + tn.p.Tenant.DefaultDomain, Password: secret.NewString("correct horse battery")})
	if err != nil {
		t.Fatal(err)
	}
	return rbac.Principal{TenantID: tn.p.Tenant.ID, ObjectID: u.ID, Type: rbac.PrincipalUser, Name: u.UserPrincipalName}
}

// app creates an application and its service principal in tn's directory.
func (e *env) app(t testing.TB, tn tenant, name string) rbac.Principal {
	t.Helper()
	ga := directory.Caller{Actor: audit.Actor{Type: "user", ID: tn.p.Admin.ID}, TenantID: tn.p.Tenant.ID}
	app, sp, err := e.dir.CreateApplication(context.Background(), ga, tn.p.Tenant.ID, directory.AppSpec{DisplayName: name})
	if err != nil {
		t.Fatal(err)
	}
	return rbac.Principal{TenantID: tn.p.Tenant.ID, ObjectID: sp.ID, Type: rbac.PrincipalServicePrincipal, Name: app.AppID}
}

// grant gives p role at scope through the composition root's path,
// without the checks of CreateAssignment, and returns the assignment.
func (e *env) grant(t testing.TB, svc *rbac.Service, p rbac.Principal, role string, scope resourceid.ID) rbac.Assignment {
	t.Helper()
	ctx := context.Background()
	var a rbac.Assignment
	err := e.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		a, err = svc.GrantTx(ctx, tx, audit.Actor{Type: "system", ID: "test"}, rbac.Grant{
			TenantID: p.TenantID, Scope: scope, RoleID: role, PrincipalID: p.ObjectID, PrincipalType: rbac.PrincipalUser})
		return err
	})
	if err != nil {
		t.Fatalf("GrantTx(%s at %s) err = %v", role, scope, err)
	}
	svc.Invalidate()
	return a
}

// assign makes an assignment through the public API as caller c.
func (e *env) assign(t testing.TB, c rbac.Principal, to rbac.Principal, role string, scope resourceid.ID) rbac.Assignment {
	t.Helper()
	a, err := e.svc.CreateAssignment(context.Background(), c, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: scope,
		RoleDefinitionID: rbac.DefinitionID(scope.SubscriptionID, role), PrincipalID: to.ObjectID, PrincipalType: to.Type})
	if err != nil {
		t.Fatalf("CreateAssignment(%s to %s at %s) err = %v", role, to.Name, scope, err)
	}
	return a
}

// randomPrincipal is a principal of tn that the directory does not know;
// the evaluator does not ask the directory, so it serves evaluator tests.
func randomPrincipal(tn tenant) rbac.Principal {
	return rbac.Principal{TenantID: tn.p.Tenant.ID, ObjectID: uuid.NewString(), Type: rbac.PrincipalUser}
}

func wantCode(t testing.TB, what string, err error, kind errkind.Kind, code string) {
	t.Helper()
	e, ok := errkind.As(err)
	if !ok || e.Kind != kind || e.Code != code {
		t.Fatalf("%s err = %v, want kind %v code %q", what, err, kind, code)
	}
}

func isDenied(err error) bool {
	_, ok := errors.AsType[*rbac.DeniedError](err)
	return ok && errkind.Is(err, errkind.PermissionDenied)
}

// auditEvents returns tenant tid's audit events for action.
func (e *env) auditEvents(t testing.TB, tid, action string) []audit.Event {
	t.Helper()
	page, err := e.audit.List(context.Background(), tid, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range page.Events {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}
