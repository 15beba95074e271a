package mail_test

import (
	"context"
	"fmt"
	"path/filepath"
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
	"github.com/customerkey/customerkey/internal/workload/mail"
)

// policies is a small test implementation of mail.Policies on deptest's
// in-memory policy keys. A policy can be revoked, after which user unwraps
// fail the way dep's do (PermissionDenied) while system unwraps still
// work, as the availability key allows.
type policies struct {
	*deptest.Keys

	mu   sync.Mutex
	mdep map[string]string // tenant -> assigned multi-workload policy id
}

// errRevoked is what user requests get once a policy's root keys are
// revoked.
var errRevoked = errkind.New(errkind.PermissionDenied,
	"the customer revoked the root keys of the data encryption policy; the data stays unreadable until access to a root key is restored")

func newPolicies() *policies {
	return &policies{Keys: deptest.New(errRevoked), mdep: map[string]string{}}
}

// create adds a policy of kind k with version 1 and returns its ref.
func (p *policies) create(t testing.TB, tid string, k dep.Kind, name string) dep.PolicyRef {
	t.Helper()
	ref, err := p.Create(tid, k, name)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// refresh gives policy id a new key version and returns its ref.
func (p *policies) refresh(t testing.TB, id string) dep.PolicyRef {
	t.Helper()
	ref, err := p.Roll(id)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func (p *policies) assignMDEP(tid, id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mdep[tid] = id
}

func (p *policies) Effective(_ context.Context, tid string, w dep.Workload) (dep.PolicyRef, error) {
	if w != dep.Mail {
		return dep.PolicyRef{}, fmt.Errorf("test policies: workload %s asked for", w)
	}
	p.mu.Lock()
	id, ok := p.mdep[tid]
	p.mu.Unlock()
	if !ok {
		return p.Default(tid)
	}
	pol, _ := p.Get(tid, id)
	return pol.Ref, nil
}

func (p *policies) ExchangePolicy(_ context.Context, tid, identity string) (dep.PolicyRef, error) {
	pol, ok := p.Find(func(pol deptest.Policy) bool {
		return pol.Ref.Kind == dep.Exchange && pol.Ref.TenantID == tid && (pol.Ref.PolicyID == identity || pol.Name == identity)
	})
	switch {
	case !ok:
		return dep.PolicyRef{}, errkind.Errorf(errkind.NotFound, "the data encryption policy %q was not found", identity)
	case pol.Disabled || pol.PurgeRequested:
		return dep.PolicyRef{}, errkind.Errorf(errkind.FailedPrecondition, "the policy %s is disabled or being purged", identity)
	}
	return pol.Ref, nil
}

func (p *policies) Current(_ context.Context, tid, id string) (dep.PolicyRef, error) {
	pol, ok := p.Get(tid, id)
	if !ok {
		return dep.PolicyRef{}, errkind.Errorf(errkind.NotFound, "the data encryption policy %q was not found", id)
	}
	return pol.Ref, nil
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
