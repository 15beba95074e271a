package resources_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

type auditEvent = audit.Event

// clock is a fake clock the tests move by hand.
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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// grantPrefix is where recordingGranter writes, inside the caller's
// transaction, what the rbac package would write there.
const grantPrefix = "rbactest/owner/"

// recordingGranter stands in for the rbac package's OwnerGranter: it
// writes one key per grant in the transaction it is given (so a rolled
// back transaction leaves none) and fails on the principal named in
// failOn.
type recordingGranter struct {
	mu          sync.Mutex
	failOn      string
	calls       []string // "scope principal type by", in call order
	invalidated int
}

func (g *recordingGranter) GrantOwnerTx(ctx context.Context, tx storage.Tx, by audit.Actor, o resources.OwnerGrant) error {
	g.mu.Lock()
	g.calls = append(g.calls, o.Scope.String()+" "+o.PrincipalID+" "+o.PrincipalType+" "+by.ID)
	fail := g.failOn
	g.mu.Unlock()
	if o.PrincipalID == fail {
		return errkind.New(errkind.Internal, "rbac test double: grant refused")
	}
	if o.TenantID == "" || (o.PrincipalType != "user" && o.PrincipalType != "servicePrincipal") {
		return errkind.Errorf(errkind.Invalid, "rbac test double: grant without tenant or principal type: %+v", o)
	}
	_, err := tx.Put(grantPrefix+o.Scope.Key()+"|"+o.PrincipalID, nil, storage.MustNotExist)
	return err
}

// Invalidate is what the rbac adapter forwards to rbac.Service.Invalidate.
func (g *recordingGranter) Invalidate() {
	g.mu.Lock()
	g.invalidated++
	g.mu.Unlock()
}

// grants returns the grants committed to the store.
func grants(t *testing.T, st storage.Backend) []string {
	t.Helper()
	var out []string
	err := st.View(context.Background(), func(tx storage.Tx) error {
		entries, err := tx.List(grantPrefix, "", 0)
		for _, e := range entries {
			out = append(out, strings.TrimPrefix(e.Key, grantPrefix))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fakeContents stands in for the vault package's Contents.
type fakeContents struct {
	mu      sync.Mutex
	counts  map[string]int // sub/fold(rg) -> resources
	deleted []string
}

func (f *fakeContents) key(sub, rg string) string { return sub + "/" + strings.ToLower(rg) }

func (f *fakeContents) set(sub, rg string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.counts == nil {
		f.counts = map[string]int{}
	}
	f.counts[f.key(sub, rg)] = n
}

func (f *fakeContents) CountInResourceGroup(ctx context.Context, sub, rg string) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[f.key(sub, rg)], nil
}

func (f *fakeContents) DeleteResourcesIn(ctx context.Context, c directory.Caller, sub, rg string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, f.key(sub, rg)+" by "+c.ID)
	delete(f.counts, f.key(sub, rg))
	return nil
}

var (
	cheap = directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}
	epoch = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

const (
	day          = 24 * time.Hour
	featureDelay = 30 * time.Second
)

type env struct {
	t        *testing.T
	path     string
	st       *bolt.Backend
	al       *audit.Log
	dir      *directory.Directory
	clock    *clock
	granter  *recordingGranter
	contents *fakeContents
	opts     resources.Options
	svc      *resources.Service

	op, contoso, fabrikam directory.Provisioned
	alice                 directory.User // a plain user of contoso
}

func newEnv(t *testing.T, tune ...func(*resources.Options)) *env {
	t.Helper()
	e := &env{t: t, path: filepath.Join(t.TempDir(), "db"), clock: &clock{t: epoch},
		granter: &recordingGranter{}, contents: &fakeContents{}}
	e.open()
	t.Cleanup(func() { e.st.Close() })
	ctx := context.Background()
	var err error
	if e.op, err = e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Operator", Operator: true}); err != nil {
		t.Fatal(err)
	}
	if err := e.dir.RegisterFirstPartyApps(ctx, e.op.Tenant.ID); err != nil {
		t.Fatal(err)
	}
	if e.contoso, err = e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Contoso"}); err != nil {
		t.Fatal(err)
	}
	if e.fabrikam, err = e.dir.ProvisionTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Fabrikam"}); err != nil {
		t.Fatal(err)
	}
	if e.alice, err = e.dir.CreateUser(ctx, directory.System, e.contoso.Tenant.ID, directory.UserSpec{
		UserPrincipalName: "alice@" + e.contoso.Tenant.DefaultDomain, Password: secret.NewString("correct horse battery")}); err != nil {
		t.Fatal(err)
	}
	e.opts = resources.Options{Store: e.st, Audit: e.al, Directory: e.dir, Owners: e.granter, Contents: e.contents,
		Now: e.clock.Now, FeatureRegistrationDelay: featureDelay}
	for _, f := range tune {
		f(&e.opts)
	}
	e.svc = resources.New(e.opts)
	return e
}

// open opens (or reopens) the store and the services on it.
func (e *env) open() {
	st, err := bolt.Open(e.path, bolt.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.st = st
	e.al = audit.New(audit.Options{Store: st, Now: e.clock.Now})
	e.dir = directory.New(directory.Options{Store: st, Audit: e.al, Now: e.clock.Now, KDF: cheap})
}

// restart closes the store and opens everything again, as a new process
// would.
func (e *env) restart() {
	e.t.Helper()
	if err := e.st.Close(); err != nil {
		e.t.Fatal(err)
	}
	e.open()
	e.opts.Store, e.opts.Audit, e.opts.Directory = e.st, e.al, e.dir
	e.svc = resources.New(e.opts)
}

func userCaller(u directory.User) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "user", ID: u.ID, Name: u.UserPrincipalName}, TenantID: u.TenantID}
}

func spCaller(p directory.Provisioned) directory.Caller {
	return directory.Caller{Actor: audit.Actor{Type: "servicePrincipal", ID: p.AdminSP.ID, Name: p.AdminApp.AppID}, TenantID: p.Tenant.ID}
}

func (e *env) operator() directory.Caller { return userCaller(e.op.Admin) }
func (e *env) ga() directory.Caller       { return userCaller(e.contoso.Admin) }

// sub creates a Pay-As-You-Go subscription in contoso as its Global
// Administrator.
func (e *env) sub() resources.Subscription {
	e.t.Helper()
	s, err := e.svc.Create(context.Background(), e.ga(), resources.SubscriptionSpec{DisplayName: "Keys 1"})
	if err != nil {
		e.t.Fatalf("Create() err = %v", err)
	}
	return s
}

// events returns the audit events of a tenant with the given action.
func (e *env) events(tid, action string) []audit.Event {
	e.t.Helper()
	var out []audit.Event
	token := ""
	for {
		p, err := e.al.List(context.Background(), tid, token, 0)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range p.Events {
			if ev.Action == action {
				out = append(out, ev)
			}
		}
		if token = p.Next; token == "" {
			return out
		}
	}
}

// none, as a wanted kind, means no error.
const none = errkind.Kind(255)

// wantErr checks err's kind and, when code is set, its code.
func wantErr(t *testing.T, what string, err error, kind errkind.Kind, code string) {
	t.Helper()
	if kind == none {
		if err != nil {
			t.Fatalf("%s err = %v, want nil", what, err)
		}
		return
	}
	e, ok := errkind.As(err)
	if !ok || e.Kind != kind || (code != "" && e.Code != code) {
		t.Fatalf("%s err = %v (%s), want kind %s code %q", what, err, describe(err), kind, code)
	}
}

func describe(err error) string {
	if e, ok := errkind.As(err); ok {
		return fmt.Sprintf("kind %s code %q", e.Kind, e.Code)
	}
	if err == nil {
		return "nil"
	}
	return "unclassified"
}
