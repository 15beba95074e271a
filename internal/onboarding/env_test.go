package onboarding_test

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
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/vault"
)

// The adapters between the real services, as internal/app/wiring.go has them.

type ownerGranter struct{ r *rbac.Service }

func (g ownerGranter) GrantOwnerTx(ctx context.Context, tx storage.Tx, by audit.Actor, o resources.OwnerGrant) error {
	t, _ := rbac.ParsePrincipalType(o.PrincipalType)
	_, err := g.r.GrantTx(ctx, tx, by, rbac.Grant{TenantID: o.TenantID, Scope: o.Scope, RoleID: rbac.OwnerID,
		PrincipalID: o.PrincipalID, PrincipalType: t})
	return err
}

func (g ownerGranter) Invalidate() { g.r.Invalidate() }

type scopes struct{ e *env }

func (s scopes) TenantOf(ctx context.Context, scope resourceid.ID) (string, error) {
	tid, err := s.e.res.TenantOf(ctx, scope)
	if err != nil || scope.Namespace == "" {
		return tid, err
	}
	if !strings.EqualFold(scope.Namespace, vault.Namespace) || !strings.EqualFold(scope.Types[0], "vaults") {
		return "", errkind.New(errkind.NotFound, "no such scope")
	}
	v, err := s.e.kv.Get(ctx, scope.SubscriptionID, scope.ResourceGroup, scope.Names[0])
	if err != nil {
		return "", err
	}
	return v.TenantID, nil
}

type contents struct{ e *env }

func (c contents) CountInResourceGroup(ctx context.Context, sub, rg string) (int, error) {
	return c.e.kv.CountInResourceGroup(ctx, sub, rg)
}

func (c contents) DeleteResourcesIn(ctx context.Context, by directory.Caller, sub, rg string) error {
	return c.e.kv.DeleteResourcesIn(ctx, by, sub, rg)
}

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

const (
	sub1     = "11111aaa-0000-0000-0000-000000000001"
	sub2     = "22222bbb-0000-0000-0000-000000000002"
	subOther = "99999ccc-0000-0000-0000-000000000009" // another tenant's
	rg       = "ck-rg"
	loc      = "westeurope"
	featDur  = time.Minute
)

// env is a fixture tenant ready for Customer Key: Microsoft 365 E5, two
// Pay-As-You-Go subscriptions with the mandatory retention period
// Registered and Microsoft.KeyVault registered, an RBAC vault in each with
// an RSA-2048 key without expiry, and both workload service principals
// registered and granted Key Vault Crypto Service Encryption User on both keys.
type env struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	store storage.Backend
	audit *audit.Log
	dir   *directory.Directory
	rbac  *rbac.Service
	res   *resources.Service
	kv    *vault.Service
	svc   *onboarding.Service

	op, org, other directory.Provisioned
	admin          onboarding.Caller // Global Administrator of org, Owner of its subscriptions
	otherAdmin     onboarding.Caller
	operator       onboarding.Caller
	sps            map[string]directory.ServicePrincipal // by app id
}

func (e *env) adminDir() directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: e.admin.ObjectID}, TenantID: e.admin.TenantID}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: context.Background(), store: st, clock: &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}}
	now := e.clock.Now
	e.audit = audit.New(audit.Options{Store: st, Now: now})
	e.dir = directory.New(directory.Options{Store: st, Audit: e.audit, Now: now, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	e.rbac = rbac.New(rbac.Options{Store: st, Audit: e.audit, Directory: e.dir, Scopes: scopes{e}, Now: now, CacheTTL: -1})
	e.res = resources.New(resources.Options{Store: st, Audit: e.audit, Directory: e.dir, Now: now,
		Owners: ownerGranter{e.rbac}, Contents: contents{e}, FeatureRegistrationDelay: featDur})
	e.kv = vault.New(vault.Options{Store: st, Audit: e.audit, Subscriptions: e.res, Locations: e.res, Now: now, KeyCacheTTL: -1,
		VaultURI: func(name string) string { return "https://" + name + ".vault.test:8443/" }})
	e.svc = onboarding.New(onboarding.Options{Store: st, Audit: e.audit, Directory: e.dir, Resources: e.res, Vaults: e.kv, RBAC: e.rbac, Now: now})

	e.op = e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Domain: "operator.onmicrosoft.com", Operator: true}))
	if err := e.dir.RegisterFirstPartyApps(e.ctx, e.op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.org = e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso", Licenses: []string{"Microsoft 365 E5"}}))
	e.other = e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam", Licenses: []string{"Microsoft 365 E5"}}))
	e.admin = onboarding.Caller{TenantID: e.org.Tenant.ID, ObjectID: e.org.Admin.ID, Type: "user", Name: e.org.Admin.UserPrincipalName}
	e.otherAdmin = onboarding.Caller{TenantID: e.other.Tenant.ID, ObjectID: e.other.Admin.ID, Type: "user"}
	e.operator = onboarding.Caller{TenantID: e.op.Tenant.ID, ObjectID: e.op.Admin.ID, Type: "user"}

	e.sps = map[string]directory.ServicePrincipal{}
	for _, app := range []string{directory.M365DAREAppID, directory.ExchangeAppID} {
		sp, err := e.dir.CreateServicePrincipal(e.ctx, e.adminDir(), e.org.Tenant.ID, app)
		if err != nil {
			t.Fatalf("CreateServicePrincipal(%s): %v", app, err)
		}
		e.sps[app] = sp
	}
	e.domain(sub1, "ckvault1", "key1", domainOpts{})
	e.domain(sub2, "ckvault2", "key2", domainOpts{})
	e.clock.Advance(2 * featDur) // the retention periods become Registered
	// A subscription of another tenant, for the tenant boundary.
	if _, err := e.res.Create(e.ctx, directory.System, resources.SubscriptionSpec{TenantID: e.other.Tenant.ID, ID: subOther}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) must(p directory.Provisioned, err error) directory.Provisioned {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

type domainOpts struct {
	offer         resources.Offer // default PayAsYouGo
	retentionDays int             // default 90
	noFeature     bool
}

// domain creates a custody domain: a subscription of org (unless it
// exists), Microsoft.KeyVault registered, the retention period registered
// (Registering until the clock moves on), a resource group and an RBAC
// vault with an RSA-2048 key that both workloads may use.
func (e *env) domain(sub, vaultName, key string, o domainOpts) {
	e.t.Helper()
	ctx, c := e.ctx, e.adminDir()
	if _, err := e.res.Get(ctx, sub); err != nil {
		offer := o.offer
		if offer == "" {
			offer = resources.PayAsYouGo
		}
		if _, err := e.res.Create(ctx, directory.System, resources.SubscriptionSpec{TenantID: e.org.Tenant.ID, ID: sub, Offer: offer}); err != nil {
			e.t.Fatalf("Create subscription: %v", err)
		}
		if _, err := e.res.RegisterProvider(ctx, c, sub, resources.NamespaceKeyVault); err != nil {
			e.t.Fatalf("RegisterProvider: %v", err)
		}
		if !o.noFeature {
			if _, err := e.res.RegisterFeature(ctx, c, sub, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName); err != nil {
				e.t.Fatalf("RegisterFeature: %v", err)
			}
		}
		if _, _, err := e.res.CreateOrUpdateGroup(ctx, c, sub, rg, resources.GroupSpec{Location: loc}); err != nil {
			e.t.Fatalf("CreateOrUpdateGroup: %v", err)
		}
	}
	spec := vault.Spec{SubscriptionID: sub, ResourceGroup: rg, Name: vaultName, Location: loc, TenantID: e.org.Tenant.ID,
		SKU: vault.SKU{Name: vault.Premium}, EnableRbacAuthorization: ptr(true)}
	if o.retentionDays != 0 {
		spec.SoftDeleteRetentionInDays = ptr(o.retentionDays)
	}
	if _, _, err := e.kv.CreateOrUpdate(ctx, c, spec); err != nil {
		e.t.Fatalf("CreateOrUpdate vault: %v", err)
	}
	e.key(vaultName, key, vault.KeySpec{Type: vault.KeyTypeRSA, Size: 2048})
}

// key creates a key and grants both workloads the crypto service role on it.
func (e *env) key(vaultName, name string, spec vault.KeySpec) vault.Key {
	e.t.Helper()
	k, err := e.kv.CreateKey(e.ctx, e.adminDir(), vaultName, name, spec)
	if err != nil {
		e.t.Fatalf("CreateKey(%s, %s): %v", vaultName, name, err)
	}
	v, err := e.kv.ByName(e.ctx, vaultName)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, sp := range e.sps {
		e.grant(v.ResourceID().Child("keys", name), rbac.KeyVaultCryptoServiceEncryptionUserID, sp.ID, rbac.PrincipalServicePrincipal)
	}
	return k
}

// keyNoGrant creates a key nobody was granted.
func (e *env) keyNoGrant(vaultName, name string, spec vault.KeySpec) {
	e.t.Helper()
	if _, err := e.kv.CreateKey(e.ctx, e.adminDir(), vaultName, name, spec); err != nil {
		e.t.Fatalf("CreateKey(%s, %s): %v", vaultName, name, err)
	}
}

func (e *env) grant(scope resourceid.ID, role, principal string, typ rbac.PrincipalType) {
	e.t.Helper()
	err := e.store.Update(e.ctx, func(tx storage.Tx) error {
		_, err := e.rbac.GrantTx(e.ctx, tx, audit.Actor{Type: "system", ID: "test"}, rbac.Grant{TenantID: e.org.Tenant.ID, Scope: scope,
			RoleID: role, PrincipalID: principal, PrincipalType: typ})
		return err
	})
	if err != nil {
		e.t.Fatalf("GrantTx: %v", err)
	}
	e.rbac.Invalidate()
}

func (e *env) vaultID(name string) resourceid.ID {
	e.t.Helper()
	v, err := e.kv.ByName(e.ctx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return v.ResourceID()
}

// user creates a user of tenant p with the given directory roles.
func (e *env) user(p directory.Provisioned, upn string, roles ...string) onboarding.Caller {
	e.t.Helper()
	u, err := e.dir.CreateUser(e.ctx, directory.System, p.Tenant.ID, directory.UserSpec{UserPrincipalName: upn + "@" + p.Tenant.DefaultDomain,
		DisplayName: upn, Password: secret.NewString("Passw0rd!Passw0rd!")})
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	for _, r := range roles {
		if _, err := e.dir.AssignRole(e.ctx, directory.System, p.Tenant.ID, r, u.ID); err != nil {
			e.t.Fatalf("AssignRole: %v", err)
		}
	}
	return onboarding.Caller{TenantID: p.Tenant.ID, ObjectID: u.ID, Type: "user", Name: u.UserPrincipalName}
}

// spec is the all-passing request of the fixture.
func (e *env) spec(sc, mode string) onboarding.Spec {
	return onboarding.Spec{Organization: e.org.Tenant.ID, Scenario: sc, Mode: mode,
		Subscription1: sub1, VaultName1: "ckvault1", KeyName1: "key1",
		Subscription2: sub2, VaultName2: "ckvault2", KeyName2: "key2"}
}

func (e *env) unregisterFeature(sub string) {
	e.t.Helper()
	if _, err := e.res.UnregisterFeature(e.ctx, e.adminDir(), sub, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName); err != nil {
		e.t.Fatalf("UnregisterFeature: %v", err)
	}
	e.clock.Advance(2 * featDur)
}

func (e *env) feature(sub string) resources.Feature {
	e.t.Helper()
	f, err := e.res.Feature(e.ctx, sub, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

func ptr[T any](v T) *T { return &v }
