package dep_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/vault"
)

const (
	subA = "aaaaaaaa-0000-0000-0000-00000000000a"
	subB = "bbbbbbbb-0000-0000-0000-00000000000b"
	subC = "cccccccc-0000-0000-0000-00000000000c"
)

// env is a tenant ready for Customer Key on a real store (bolt behind the
// barrier, as in production) with a real directory and audit log: MDEP
// and EXO enabled, two vaults in two protected subscriptions with an RSA
// key each (and a spare vault in a third), the tenant's administrators of
// every role, and two operator Global Administrators.
type env struct {
	t        *testing.T
	ctx      context.Context
	dbPath   string
	store    storage.Backend
	audit    *audit.Log
	dir      *directory.Directory
	roots    *fakeRoots
	scen     *fakeScenarios
	custody  *fakeCustody
	mail     *fakeWorkload
	files    *fakeWorkload
	enc      *fakeWorkload
	svc      *dep.Service
	opts     dep.Options
	tid      string
	keyA     string // versionless, vault-a in subA
	keyB     string // versionless, vault-b in subB
	keyC     string // versionless, vault-c in subC
	keyA2    string // a second key in vault-a
	ga       directory.Caller
	comp     directory.Caller // Compliance Administrator
	exo      directory.Caller // Exchange Administrator
	spo      directory.Caller // SharePoint Administrator
	user     directory.Caller // no role
	app      directory.Caller // the tenant's automation app (Global Administrator)
	other    directory.Caller // Global Administrator of another tenant
	op1, op2 directory.Caller // operator Global Administrators
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, func(*dep.Options) {})
}

func newEnvWith(t *testing.T, tune func(*dep.Options)) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dbPath: filepath.Join(t.TempDir(), "db")}
	b, err := bolt.Open(e.dbPath, bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	sealer, err := barrier.NewFileSealer(secret.Copy(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	bar, err := barrier.Open(e.ctx, b, sealer, nil)
	if err != nil {
		t.Fatalf("barrier.Open: %v", err)
	}
	t.Cleanup(func() { bar.Close() })
	e.store = bar
	e.audit = audit.New(audit.Options{Store: e.store})
	e.dir = directory.New(directory.Options{Store: e.store, Audit: e.audit, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})

	op := e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Domain: "operator.onmicrosoft.com", Operator: true}))
	if err := e.dir.RegisterFirstPartyApps(e.ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.op1 = caller(op.Tenant.ID, op.Admin.ID)
	e.op2 = e.newUser(op.Tenant, "second-admin", directory.GlobalAdministrator)
	org := e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso", Licenses: []string{"Microsoft 365 E5"}}))
	e.tid = org.Tenant.ID
	e.ga = caller(e.tid, org.Admin.ID)
	e.app = directory.Caller{Actor: audit.Actor{Type: "servicePrincipal", ID: org.AdminSP.ID, Name: org.AdminApp.AppID}, TenantID: e.tid}
	e.comp = e.newUser(org.Tenant, "compliance", directory.ComplianceAdministrator)
	e.exo = e.newUser(org.Tenant, "exchange", directory.ExchangeAdministrator)
	e.spo = e.newUser(org.Tenant, "sharepoint", directory.SharePointAdministrator)
	e.user = e.newUser(org.Tenant, "someone")
	other := e.must(e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam", Licenses: []string{"Microsoft 365 E5"}}))
	e.other = caller(other.Tenant.ID, other.Admin.ID)

	e.roots = newFakeRoots(t)
	e.keyA = e.roots.add("vault-a", "root")
	e.keyB = e.roots.add("vault-b", "root")
	e.keyC = e.roots.add("vault-c", "root")
	e.keyA2 = e.roots.add("vault-a", "other")
	e.scen = &fakeScenarios{m: map[string][]onboarding.Scenario{}}
	e.scen.enable(e.tid, onboarding.MDEP, onboarding.EXO)
	e.custody = &fakeCustody{vaults: map[string]vault.Vault{}, protected: map[string]bool{}}
	e.custody.addVault("vault-a", subA, e.tid, true)
	e.custody.addVault("vault-b", subB, e.tid, true)
	e.custody.addVault("vault-c", subC, e.tid, true)

	e.opts = dep.Options{Store: e.store, Audit: e.audit, Directory: e.dir, Scenarios: e.scen, Vaults: e.custody,
		Subscriptions: e.custody, RootKeys: e.roots, HedgeDelay: 20 * time.Millisecond}
	tune(&e.opts)
	e.mail = &fakeWorkload{w: dep.Mail, kicks: map[string]int{}}
	e.files = &fakeWorkload{w: dep.Files, kicks: map[string]int{}}
	e.enc = &fakeWorkload{w: dep.Encryption, kicks: map[string]int{}}
	e.restart()
	return e
}

// restart builds a new Service on the same store, as a process restart
// does: nothing cached survives.
func (e *env) restart() {
	if e.svc != nil {
		e.svc.Close()
	}
	svc := dep.New(e.opts)
	e.svc = svc
	for _, w := range []*fakeWorkload{e.mail, e.files, e.enc} {
		w.svc = func() *dep.Service { return svc }
	}
	svc.AddScopes(e.mail, e.files, e.enc)
	e.t.Cleanup(svc.Close)
}

func caller(tid, oid string) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: oid}, TenantID: tid}
}

func (e *env) newUser(t directory.Tenant, name string, roles ...directory.RoleDefinition) directory.Caller {
	e.t.Helper()
	u, err := e.dir.CreateUser(e.ctx, directory.System, t.ID, directory.UserSpec{UserPrincipalName: name + "@" + t.DefaultDomain,
		DisplayName: name, Password: secret.NewString("Correct-Horse-Battery-9")})
	if err != nil {
		e.t.Fatalf("CreateUser: %v", err)
	}
	for _, r := range roles {
		if _, err := e.dir.AssignRole(e.ctx, directory.System, t.ID, r.ID, u.ID); err != nil {
			e.t.Fatalf("AssignRole: %v", err)
		}
	}
	return caller(t.ID, u.ID)
}

func (e *env) must(p directory.Provisioned, err error) directory.Provisioned {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("ProvisionTenant: %v", err)
	}
	return p
}

// create makes a policy of kind k over keyA and keyB, failing the test on error.
func (e *env) create(k dep.Kind, name string) dep.Policy {
	e.t.Helper()
	p, err := e.svc.Create(e.ctx, e.ga, e.tid, k, dep.Spec{Name: name, KeyURIs: []string{e.keyA, e.keyB}})
	if err != nil {
		e.t.Fatalf("Create(%s, %q): %v", k, name, err)
	}
	return p
}

// register makes the SharePoint policy of geo over keyA and keyB.
func (e *env) register(geo string) dep.Policy {
	e.t.Helper()
	p, err := e.svc.RegisterSharePoint(e.ctx, e.ga, e.tid, dep.SharePointSpec{Geo: geo, PrimaryKeyURI: e.keyA, SecondaryKeyURI: e.keyB})
	if err != nil {
		e.t.Fatalf("RegisterSharePoint(%s): %v", geo, err)
	}
	return p
}

// events returns the tenant's audit records of one action.
func (e *env) events(tid, action string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	page, err := e.audit.List(e.ctx, tid, "", 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range page.Events {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// wantKind checks err's kind and, when frag is set, that its public
// message contains frag.
func wantKind(t *testing.T, what string, err error, k errkind.Kind, frag string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: err = nil, want %v", what, k)
	}
	if errkind.KindOf(err) != k {
		t.Fatalf("%s: err = %v (kind %v), want kind %v", what, err, errkind.KindOf(err), k)
	}
	if frag != "" && !strings.Contains(errkind.Public(err), frag) {
		t.Fatalf("%s: message %q does not mention %q", what, errkind.Public(err), frag)
	}
}

// headerOf returns the policy id and key version a wrapped scope key names.
func headerOf(t *testing.T, blob []byte) (string, uint32) {
	t.Helper()
	id, v, err := envelope.Header(blob)
	if err != nil {
		t.Fatal(err)
	}
	return id, v
}

// secretKey is a fresh scope key.
func secretKey(t *testing.T) secret.Bytes {
	t.Helper()
	k, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Wipe)
	return k
}
