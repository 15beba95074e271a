package mail_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/workload/mail"
)

// policies is a small test implementation of mail.Policies: policy keys
// live in memory and scope keys are sealed under them with envelope. A
// policy can be revoked, after which user unwraps fail the way dep's do
// (PermissionDenied) while system unwraps still work, as the availability
// key allows. The real dep has its own tests; the end-to-end tests in
// internal/app run the workloads on it.
type policies struct {
	mu       sync.Mutex
	byID     map[string]*policy
	defaults map[string]string // tenant -> its service-managed default policy id
	mdep     map[string]string // tenant -> assigned multi-workload policy id
	unwraps  []dep.Purpose     // every UnwrapScopeKey purpose, in order
}

type policy struct {
	ref            dep.PolicyRef // the current version
	name           string
	keys           map[int]secret.Bytes // by version
	disabled       bool
	purgeRequested bool
	revoked        bool
}

// errRevoked is what user requests get once a policy's root keys are
// revoked.
var errRevoked = errkind.New(errkind.PermissionDenied,
	"the customer revoked the root keys of the data encryption policy; the data stays unreadable until access to a root key is restored")

func newPolicies() *policies {
	return &policies{byID: map[string]*policy{}, defaults: map[string]string{}, mdep: map[string]string{}}
}

// create adds a policy of kind k with version 1 and returns its ref.
func (p *policies) create(t testing.TB, tid string, k dep.Kind, name string) dep.PolicyRef {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.createLocked(t, tid, k, name)
}

func (p *policies) createLocked(t testing.TB, tid string, k dep.Kind, name string) dep.PolicyRef {
	key, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	ref := dep.PolicyRef{TenantID: tid, PolicyID: uuid.NewString(), Kind: k, KeyVersion: 1}
	p.byID[ref.PolicyID] = &policy{ref: ref, name: name, keys: map[int]secret.Bytes{1: key}}
	return ref
}

// refresh gives policy id a new key version and returns its ref.
func (p *policies) refresh(t testing.TB, id string) dep.PolicyRef {
	t.Helper()
	key, err := envelope.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	pol := p.byID[id]
	pol.ref.KeyVersion++
	pol.keys[pol.ref.KeyVersion] = key
	return pol.ref
}

func (p *policies) set(id string, fn func(*policy)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn(p.byID[id])
}

func (p *policies) assignMDEP(tid, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mdep[tid] = id
}

func (p *policies) purposes() []dep.Purpose {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]dep.Purpose(nil), p.unwraps...)
}

func (p *policies) Effective(_ context.Context, tid string, w dep.Workload) (dep.PolicyRef, error) {
	if w != dep.Mail {
		return dep.PolicyRef{}, fmt.Errorf("test policies: workload %s asked for", w)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.mdep[tid]; ok {
		return p.byID[id].ref, nil
	}
	id, ok := p.defaults[tid]
	if !ok {
		key, err := envelope.NewKey()
		if err != nil {
			return dep.PolicyRef{}, err
		}
		id = uuid.NewString()
		p.byID[id] = &policy{ref: dep.PolicyRef{TenantID: tid, PolicyID: id, Kind: dep.ServiceManaged, KeyVersion: 1},
			name: "default", keys: map[int]secret.Bytes{1: key}}
		p.defaults[tid] = id
	}
	return p.byID[id].ref, nil
}

func (p *policies) ExchangePolicy(_ context.Context, tid, identity string) (dep.PolicyRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pol := range p.byID {
		if pol.ref.Kind != dep.Exchange || pol.ref.TenantID != tid || (pol.ref.PolicyID != identity && pol.name != identity) {
			continue
		}
		if pol.disabled || pol.purgeRequested {
			return dep.PolicyRef{}, errkind.Errorf(errkind.FailedPrecondition, "the policy %s is disabled or being purged", identity)
		}
		return pol.ref, nil
	}
	return dep.PolicyRef{}, errkind.Errorf(errkind.NotFound, "the data encryption policy %q was not found", identity)
}

func (p *policies) Current(_ context.Context, tid, id string) (dep.PolicyRef, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pol, ok := p.byID[id]
	if !ok || pol.ref.TenantID != tid {
		return dep.PolicyRef{}, errkind.Errorf(errkind.NotFound, "the data encryption policy %q was not found", id)
	}
	return pol.ref, nil
}

func (p *policies) WrapScopeKey(_ context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pol, ok := p.byID[ref.PolicyID]
	if !ok || pol.ref.TenantID != ref.TenantID {
		return nil, errkind.New(errkind.NotFound, "no such policy")
	}
	pk, ok := pol.keys[ref.KeyVersion]
	if !ok {
		return nil, errkind.New(errkind.NotFound, "no such policy key version")
	}
	return envelope.Seal(pk, "policy/"+ref.PolicyID, uint32(ref.KeyVersion), key.Reveal(), aad)
}

func (p *policies) UnwrapScopeKey(_ context.Context, tid string, wrapped, aad []byte, why dep.Purpose) (secret.Bytes, error) {
	id, ver, err := envelope.Header(wrapped)
	if err != nil {
		return secret.Bytes{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unwraps = append(p.unwraps, why)
	pol, ok := p.byID[strings.TrimPrefix(id, "policy/")]
	if !ok || pol.ref.TenantID != tid {
		return secret.Bytes{}, errkind.New(errkind.NotFound, "the policy that wrapped this key was not found")
	}
	if pol.revoked && !why.System {
		return secret.Bytes{}, errRevoked
	}
	b, err := envelope.Open(pol.keys[int(ver)], wrapped, aad)
	if err != nil {
		return secret.Bytes{}, err
	}
	return secret.New(b), nil
}

var _ mail.Policies = (*policies)(nil)

// env is a store with two E5 tenants (org, other), a tenant whose licence
// has no Exchange (nolic), and mail on the test policies.
type env struct {
	t      testing.TB
	ctx    context.Context
	path   string
	store  storage.Backend
	dir    *directory.Directory
	deps   *policies
	svc    *mail.Service
	org    directory.Provisioned
	other  directory.Provisioned
	nolic  directory.Provisioned
	admin  directory.Caller // Global Administrator of org
	exch   directory.Caller // Exchange Administrator of org
	alice  directory.Caller // a user of org
	bob    directory.Caller // another user of org
	oAdmin directory.Caller // Global Administrator of other
}

func newEnv(t testing.TB) *env {
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
	// A clock that stands still: message ids must still sort in arrival order.
	e.svc = mail.New(mail.Options{Store: st, Policies: e.deps, Directory: e.dir, Audit: a, Now: now})
	op, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.RegisterFirstPartyApps(e.ctx, op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	e.org = e.provision("Contoso", "Microsoft 365 E5")
	e.other = e.provision("Fabrikam", "Microsoft 365 E5")
	e.nolic = e.provision("Northwind", "Microsoft 365 E5 Compliance")
	e.admin = caller(e.org.Tenant.ID, e.org.Admin.ID)
	e.oAdmin = caller(e.other.Tenant.ID, e.other.Admin.ID)
	e.exch = e.user(e.org, "exadmin", directory.ExchangeAdministrator.ID)
	e.alice = e.user(e.org, "alice")
	e.bob = e.user(e.org, "bob")
	return e
}

func (e *env) provision(name, licence string) directory.Provisioned {
	e.t.Helper()
	p, err := e.dir.ProvisionTenant(e.ctx, directory.System, directory.TenantSpec{DisplayName: name, Licenses: []string{licence}})
	if err != nil {
		e.t.Fatalf("ProvisionTenant(%s): %v", name, err)
	}
	return p
}

func caller(tid, oid string) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: oid}, TenantID: tid}
}

// user creates a user of p with the given directory roles.
func (e *env) user(p directory.Provisioned, alias string, roles ...string) directory.Caller {
	e.t.Helper()
	u, err := e.dir.CreateUser(e.ctx, directory.System, p.Tenant.ID, directory.UserSpec{
		UserPrincipalName: alias + "@" + p.Tenant.DefaultDomain, Password: secret.NewString("Passw0rd!Passw0rd!")})
	if err != nil {
		e.t.Fatalf("CreateUser(%s): %v", alias, err)
	}
	for _, r := range roles {
		if _, err := e.dir.AssignRole(e.ctx, directory.System, p.Tenant.ID, r, u.ID); err != nil {
			e.t.Fatalf("AssignRole: %v", err)
		}
	}
	return caller(p.Tenant.ID, u.ID)
}

func (e *env) tid() string { return e.org.Tenant.ID }

// addr is an address of org's domain.
func (e *env) addr(alias string) string { return alias + "@" + e.org.Tenant.DefaultDomain }

// mailbox creates a mailbox of org as its Global Administrator.
func (e *env) mailbox(spec mail.Spec) mail.Mailbox {
	e.t.Helper()
	m, err := e.svc.CreateMailbox(e.ctx, e.admin, e.tid(), spec)
	if err != nil {
		e.t.Fatalf("CreateMailbox(%+v): %v", spec, err)
	}
	return m
}

// aliceBox is alice's user mailbox.
func (e *env) aliceBox() mail.Mailbox {
	return e.mailbox(mail.Spec{Type: mail.UserMailbox, Owner: e.alice.ID})
}

func (e *env) put(c directory.Caller, mbx, subject string, body []byte) mail.MessageSummary {
	e.t.Helper()
	m, err := e.svc.PutMessage(e.ctx, c, e.tid(), mbx, mail.NewMessage{Subject: subject, From: "sender@example.com",
		To: []string{"kim@example.com"}, Body: body})
	if err != nil {
		e.t.Fatalf("PutMessage(%s): %v", subject, err)
	}
	return m
}

func (e *env) stats(mbx string) mail.Statistics {
	e.t.Helper()
	st, err := e.svc.MailboxStatistics(e.ctx, e.admin, e.tid(), mbx)
	if err != nil {
		e.t.Fatalf("MailboxStatistics: %v", err)
	}
	return st
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
