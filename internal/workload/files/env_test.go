package files_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/dep/deptest"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/workload/files"
)

// policies is a small test implementation of files.Policies on
// deptest's in-memory policy keys. Each tenant has a service-managed
// default; a geo may get a SharePoint policy whose key can be rolled. A
// revoked policy fails user unwraps the way dep's do (PermissionDenied)
// while system unwraps still work.
type policies struct {
	*deptest.Keys

	mu   sync.Mutex
	geos map[string]string // tenant/geo -> SharePoint policy id
}

var errRevoked = errkind.New(errkind.PermissionDenied,
	"the customer revoked the root keys of the SharePoint data encryption policy; the geo's files stay unreadable until access to a root key is restored")

func newPolicies() *policies {
	return &policies{Keys: deptest.New(errRevoked), geos: map[string]string{}}
}

// register gives geo of tid a SharePoint policy.
func (p *policies) register(t testing.TB, tid, geo string) dep.PolicyRef {
	t.Helper()
	ref, err := p.Create(tid, dep.SharePoint, "SharePoint "+geo)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.geos[tid+"/"+geo] = ref.PolicyID
	return ref
}

// roll gives policy id a new key version.
func (p *policies) roll(t testing.TB, id string) dep.PolicyRef {
	t.Helper()
	ref, err := p.Roll(id)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (p *policies) revoke(id string) { p.Update(id, func(pol *deptest.Policy) { pol.Revoked = true }) }

func (p *policies) EffectiveGeo(_ context.Context, tid, geo string) (dep.PolicyRef, error) {
	p.mu.Lock()
	id, ok := p.geos[tid+"/"+geo]
	p.mu.Unlock()
	if !ok {
		return p.Default(tid)
	}
	pol, _ := p.Get(tid, id)
	return pol.Ref, nil
}

var _ files.Policies = (*policies)(nil)

// chunk is the chunk size of the fixture: small, so that edge cases cost
// little.
const chunk = files.MinChunkSize

// env is a store with two E5 tenants (org, other) and files on the test
// policies, with 1 KiB chunks and files of at most 64 KiB.
type env struct {
	t      testing.TB
	ctx    context.Context
	path   string
	store  storage.Backend
	dir    *directory.Directory
	deps   *policies
	svc    *files.Service
	org    directory.Provisioned
	other  directory.Provisioned
	admin  directory.Caller // Global Administrator of org
	spo    directory.Caller // SharePoint Administrator of org
	alice  directory.Caller // a user of org, owner of the sites the fixture makes
	bob    directory.Caller // another user of org
	oAdmin directory.Caller // Global Administrator of other
}

func newEnv(t testing.TB, o files.Options) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "db"), deps: newPolicies()}
	st, err := bolt.Open(e.path, bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	e.store = st
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	a := audit.New(audit.Options{Store: st, Now: now})
	e.dir = directory.New(directory.Options{Store: st, Audit: a, Now: now, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	o.Store, o.Policies, o.Directory, o.Audit, o.Now = st, e.deps, e.dir, a, now
	if o.ChunkSize == 0 {
		o.ChunkSize = chunk
	}
	if o.MaxFileSize == 0 {
		o.MaxFileSize = 64 << 10
	}
	e.svc = files.New(o)
	op, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.RegisterFirstPartyApps(e.ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.org = e.provision("Contoso")
	e.other = e.provision("Fabrikam")
	e.admin = caller(e.org.Tenant.ID, e.org.Admin.ID)
	e.oAdmin = caller(e.other.Tenant.ID, e.other.Admin.ID)
	e.spo = e.user("spadmin", directory.SharePointAdministrator.ID)
	e.alice = e.user("alice")
	e.bob = e.user("bob")
	return e
}

func (e *env) provision(name string) directory.Provisioned {
	e.t.Helper()
	p, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: name, Licenses: []string{"Microsoft 365 E5"}})
	if err != nil {
		e.t.Fatalf("ProvisionTenant(%s): %v", name, err)
	}
	return p
}

func caller(tid, oid string) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: oid}, TenantID: tid}
}

// user creates a user of org with the given directory roles.
func (e *env) user(alias string, roles ...string) directory.Caller {
	e.t.Helper()
	tid := e.org.Tenant.ID
	u, err := e.dir.CreateUser(e.ctx, directory.System, tid, directory.UserSpec{
		UserPrincipalName: alias + "@" + e.org.Tenant.DefaultDomain, Password: secret.NewString("Passw0rd!Passw0rd!")})
	if err != nil {
		e.t.Fatalf("CreateUser(%s): %v", alias, err)
	}
	for _, r := range roles {
		if _, err := e.dir.AssignRole(e.ctx, directory.System, tid, r, u.ID); err != nil {
			e.t.Fatalf("AssignRole: %v", err)
		}
	}
	return caller(tid, u.ID)
}

func (e *env) tid() string { return e.org.Tenant.ID }

// url is a site URL of org.
func (e *env) url(name string) string {
	host, _, _ := strings.Cut(e.org.Tenant.DefaultDomain, ".")
	return "https://" + host + ".sharepoint.com/sites/" + name
}

// site creates a site of org in geo, owned by alice.
func (e *env) site(name, geo string) files.Site {
	e.t.Helper()
	s, err := e.svc.CreateSite(e.ctx, e.admin, e.tid(), files.SiteSpec{URL: e.url(name), Geo: geo, Owners: []string{e.alice.ID}})
	if err != nil {
		e.t.Fatalf("CreateSite(%s): %v", name, err)
	}
	return s
}

func (e *env) put(c directory.Caller, site, path string, content []byte) files.File {
	e.t.Helper()
	f, err := e.svc.PutFile(e.ctx, c, e.tid(), site, path, strings.NewReader(string(content)))
	if err != nil {
		e.t.Fatalf("PutFile(%s): %v", path, err)
	}
	return f
}

func (e *env) get(c directory.Caller, site, path string) []byte {
	e.t.Helper()
	_, b, err := e.svc.GetFile(e.ctx, c, e.tid(), site, path)
	if err != nil {
		e.t.Fatalf("GetFile(%s): %v", path, err)
	}
	return b
}

func (e *env) sweep() int {
	e.t.Helper()
	n, err := e.svc.Sweep(e.ctx)
	if err != nil {
		e.t.Fatalf("Sweep: %v", err)
	}
	return n
}

// keys lists the store keys under prefix.
func (e *env) keys(prefix string) []string {
	e.t.Helper()
	var out []string
	err := e.store.View(e.ctx, func(tx storage.Tx) error {
		entries, err := tx.List(prefix, "", 0)
		for _, x := range entries {
			out = append(out, x.Key)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}
