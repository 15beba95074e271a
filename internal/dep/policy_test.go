package dep_test

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// TestCreateRules covers the checks of New-M365DataAtRestEncryptionPolicy
// and New-DataEncryptionPolicy: callers, key identifiers (V6), key type,
// size, operations and state (V2, V3, V4, V19), live access, the
// scenario, and names (V8). A refused create stores nothing.
func TestCreateRules(t *testing.T) {
	e := newEnv(t)
	past, future, far := time.Now().Add(-time.Hour), time.Now().Add(365*24*time.Hour), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	info := func(uri string, change func(*dep.RootKeyInfo)) func() func() {
		return func() func() {
			var saved dep.RootKeyInfo
			e.roots.set(uri, func(k *fakeKey) { saved = k.info; change(&k.info) })
			return func() { e.roots.set(uri, func(k *fakeKey) { k.info = saved }) }
		}
	}
	failing := func(uri string, c dep.Failure) func() func() {
		return func() func() {
			e.roots.failWith(uri, c)
			return func() { e.roots.failWith(uri, 0) }
		}
	}
	tests := []struct {
		name   string
		caller directory.Caller
		kind   dep.Kind
		spec   dep.Spec
		setup  func() func()
		want   errkind.Kind // Internal means success
		frag   string
	}{
		{name: "M365 by the Global Administrator", kind: dep.M365},
		{name: "M365 by the Compliance Administrator", caller: e.comp, kind: dep.M365},
		{name: "Exchange by the Exchange Administrator", caller: e.exo, kind: dep.Exchange},
		{name: "by the tenant's application with Global Administrator", caller: e.app, kind: dep.Exchange},
		{name: "M365 by the Exchange Administrator", caller: e.exo, kind: dep.M365, want: errkind.PermissionDenied, frag: "Compliance Administrator"},
		{name: "by a user without a role", caller: e.user, kind: dep.Exchange, want: errkind.PermissionDenied, frag: "Exchange Administrator"},
		{name: "by another tenant's Global Administrator", caller: e.other, kind: dep.M365, want: errkind.PermissionDenied, frag: "sign in to"},
		{name: "SharePoint through Create", kind: dep.SharePoint, want: errkind.Invalid},
		{name: "one key", kind: dep.M365, spec: dep.Spec{KeyURIs: []string{e.keyA}}, want: errkind.Invalid, frag: "2 to 4"},
		{name: "five keys", kind: dep.M365, spec: dep.Spec{KeyURIs: []string{e.keyA, e.keyB, e.keyC, e.keyA, e.keyB}}, want: errkind.Invalid},
		{name: "two keys in one vault (V6)", kind: dep.M365, spec: dep.Spec{KeyURIs: []string{e.keyA, e.keyA2}}, want: errkind.Invalid, frag: "rule V6"},
		{name: "a versioned key identifier", kind: dep.M365, spec: dep.Spec{KeyURIs: []string{e.keyA + "/0123456789abcdef0123456789abcdef", e.keyB}},
			want: errkind.Invalid, frag: "without the version"},
		{name: "not a key identifier", kind: dep.M365, spec: dep.Spec{KeyURIs: []string{"http://vault-a/keys/x", e.keyB}}, want: errkind.Invalid},
		{name: "an EC key (V2)", kind: dep.M365, setup: info(e.keyB, func(i *dep.RootKeyInfo) { i.Kty = "EC-HSM" }), want: errkind.FailedPrecondition, frag: "rule V2"},
		{name: "RSA 1024 (V3)", kind: dep.M365, setup: info(e.keyB, func(i *dep.RootKeyInfo) { i.Size = 1024 }), want: errkind.FailedPrecondition, frag: "rule V3"},
		{name: "RSA 8192 (V3)", kind: dep.M365, setup: info(e.keyB, func(i *dep.RootKeyInfo) { i.Size = 8192 }), want: errkind.FailedPrecondition, frag: "rule V3"},
		{name: "RSA 4096", kind: dep.M365, setup: info(e.keyB, func(i *dep.RootKeyInfo) { i.Size = 4096 })},
		{name: "RSA 3072", kind: dep.Exchange, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Size = 3072; i.Kty = "RSA" })},
		{name: "without unwrapKey", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Ops = []string{"wrapKey", "encrypt"} }),
			want: errkind.FailedPrecondition, frag: "unwrapKey"},
		{name: "disabled (V19)", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Enabled = false }), want: errkind.FailedPrecondition, frag: "disabled"},
		{name: "expired (V19)", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Expires = &past }), want: errkind.FailedPrecondition, frag: "expired"},
		{name: "not yet valid (V19)", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.NotBefore = &future }), want: errkind.FailedPrecondition, frag: "not valid before"},
		{name: "with an expiry date (V4)", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Expires = &future }), want: errkind.FailedPrecondition, frag: "rule V4"},
		{name: "expiring 9999-12-31", kind: dep.M365, setup: info(e.keyA, func(i *dep.RootKeyInfo) { i.Expires = &far })},
		{name: "the workload may not use a key", kind: dep.Exchange, setup: failing(e.keyB, dep.AccessDenied), want: errkind.FailedPrecondition,
			frag: "Office 365 Exchange Online cannot use the root key " + e.keyB},
		{name: "both keys refused are reported together", kind: dep.M365, setup: func() func() {
			a, b := failing(e.keyA, dep.KeyDisabled)(), failing(e.keyB, dep.NotFound)()
			return func() { a(); b() }
		}, want: errkind.FailedPrecondition, frag: e.keyA},
		{name: "a vault that does not answer", kind: dep.M365, setup: failing(e.keyA, dep.Transient), want: errkind.Unavailable},
		{name: "MDEP not enabled", kind: dep.M365, setup: func() func() {
			e.scen.disableAll(e.tid)
			return func() { e.scen.enable(e.tid, "MDEP", "EXO") }
		}, want: errkind.FailedPrecondition, frag: "MDEP"},
		{name: "empty name", kind: dep.M365, spec: dep.Spec{Name: " "}, want: errkind.Invalid},
		{name: "a name that is a GUID", kind: dep.M365, spec: dep.Spec{Name: "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}, want: errkind.Invalid, frag: "GUID"},
		{name: "a name too long", kind: dep.M365, spec: dep.Spec{Name: strings.Repeat("n", 65)}, want: errkind.Invalid},
		{name: "a name in use (V8)", kind: dep.M365, spec: dep.Spec{Name: "Taken"}, want: errkind.AlreadyExists, frag: "unique"},
		{name: "a name in use, other case (V8)", kind: dep.M365, spec: dep.Spec{Name: "TAKEN"}, want: errkind.AlreadyExists},
		{name: "a name in use by the other kind", kind: dep.Exchange, spec: dep.Spec{Name: "Taken"}},
	}
	e.create(dep.M365, "Taken")
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				defer tc.setup()()
			}
			c := tc.caller
			if c.ID == "" {
				c = e.ga
			}
			spec := tc.spec
			if spec.Name == "" {
				spec.Name = "policy-" + string(rune('a'+i))
			}
			if spec.KeyURIs == nil {
				spec.KeyURIs = []string{e.keyA, e.keyB}
			}
			before := countAll(t, e, tc.kind)
			p, err := e.svc.Create(e.ctx, c, e.tid, tc.kind, spec)
			if tc.want != errkind.Internal {
				wantKind(t, "Create", err, tc.want, tc.frag)
				if n := countAll(t, e, tc.kind); n != before {
					t.Errorf("a refused Create left %d policies, want %d", n, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if p.Kind != tc.kind || !p.Enabled || p.State != dep.Active || p.KeyVersion != 1 || len(p.RootKeyIDs) != 2 ||
				!strings.HasPrefix(p.RootKeyIDs[0], e.keyA+"/") || !strings.HasPrefix(p.RootKeyIDs[1], e.keyB+"/") {
				t.Errorf("Create = %+v; want an enabled Active policy at key version 1 wrapped by versions of both keys", p)
			}
		})
	}
}

func countAll(t *testing.T, e *env, k dep.Kind) int {
	t.Helper()
	if k != dep.M365 && k != dep.Exchange {
		return 0
	}
	ps, err := e.svc.List(e.ctx, e.ga, e.tid, k)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return len(ps)
}

// TestCreateUsesTheWorkloadIdentity: every vault call of a policy is made
// as its workload's application.
func TestCreateUsesTheWorkloadIdentity(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		kind dep.Kind
		app  string
	}{{dep.M365, directory.M365DAREAppID}, {dep.Exchange, directory.ExchangeAppID}} {
		e.roots.resetCalls()
		e.create(tc.kind, "p-"+string(tc.kind))
		apps := e.roots.appsSeen()
		if len(apps) != 6 || slices.ContainsFunc(apps, func(a string) bool { return a != tc.app }) {
			t.Errorf("%s policy: vault calls as %v; want Describe, Wrap and Unwrap of each key, all as %s", tc.kind, apps, tc.app)
		}
	}
	e.roots.resetCalls()
	e.register("")
	if apps := e.roots.appsSeen(); slices.ContainsFunc(apps, func(a string) bool { return a != directory.SharePointAppID }) {
		t.Errorf("SharePoint policy: vault calls as %v, want all as %s", apps, directory.SharePointAppID)
	}
}

// TestOnlyWrappedCopiesAreStored looks for the plaintext policy keys and
// availability keys in the store's file: none may be there.
func TestOnlyWrappedCopiesAreStored(t *testing.T) {
	e := newEnv(t)
	p1 := e.create(dep.M365, "one")
	p2 := e.create(dep.Exchange, "two")
	sp := e.register("EUR")
	if _, err := e.svc.Effective(e.ctx, e.tid, dep.Mail); err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	secrets = append(secrets, e.roots.wrapped...)
	err := e.store.View(e.ctx, func(tx storage.Tx) error {
		for _, p := range []dep.Policy{p1, p2, sp} {
			ent, err := tx.Get("dep/ak/" + e.tid + "/" + p.ID)
			if err != nil {
				return err
			}
			secrets = append(secrets, bytes.Clone(ent.Value))
		}
		ent, err := tx.Get("dep/operator/1")
		if err != nil {
			return err
		}
		secrets = append(secrets, bytes.Clone(ent.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(secrets) < 7 {
		t.Fatalf("found %d keys to look for, want at least 7", len(secrets))
	}
	for i, s := range secrets {
		if len(s) != 32 {
			t.Fatalf("secret %d is %d bytes, want 32", i, len(s))
		}
		if bytes.Contains(raw, s) {
			t.Errorf("key %d appears in plaintext in the store file", i)
		}
	}
}

// TestGetListSet covers identities (never "all"), kinds, renames (V8),
// and disabling only when unassigned (V12).
func TestGetListSet(t *testing.T) {
	e := newEnv(t)
	a := e.create(dep.M365, "Alpha")
	b := e.create(dep.M365, "Beta")
	x := e.create(dep.Exchange, "Xray")

	for _, tc := range []struct {
		name, identity string
		kind           dep.Kind
		want           string
		err            errkind.Kind
	}{
		{"by name", "Alpha", dep.M365, a.ID, errkind.Internal},
		{"by name in other case", "alpha", dep.M365, a.ID, errkind.Internal},
		{"by id", b.ID, dep.M365, b.ID, errkind.Internal},
		{"by id in upper case", strings.ToUpper(b.ID), dep.M365, b.ID, errkind.Internal},
		{"empty identity is not all", "", dep.M365, "", errkind.Invalid},
		{"unknown", "Gamma", dep.M365, "", errkind.NotFound},
		{"the other kind by name", "Xray", dep.M365, "", errkind.NotFound},
		{"the other kind by id", x.ID, dep.M365, "", errkind.NotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.svc.Get(e.ctx, e.ga, e.tid, tc.kind, tc.identity)
			if tc.err != errkind.Internal {
				wantKind(t, "Get", err, tc.err, "")
				return
			}
			if err != nil || p.ID != tc.want {
				t.Fatalf("Get(%q) = %s, %v; want %s", tc.identity, p.ID, err, tc.want)
			}
		})
	}
	if _, err := e.svc.Get(e.ctx, e.other, e.tid, dep.M365, "Alpha"); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("Get by another tenant's admin: err = %v, want permission denied", err)
	}
	if denied := e.events(e.tid, "dep/policies/read"); len(denied) != 1 || denied[0].Result != audit.Denied {
		t.Errorf("audit of the refused read = %+v, want one denied record", denied)
	}
	list, err := e.svc.List(e.ctx, e.comp, e.tid, dep.M365)
	if err != nil || len(list) != 2 || list[0].ID != a.ID || list[1].ID != b.ID {
		t.Fatalf("List(M365) = %v, %v; want Alpha, Beta", list, err)
	}
	if list, err := e.svc.List(e.ctx, e.exo, e.tid, dep.Exchange); err != nil || len(list) != 1 {
		t.Fatalf("List(Exchange) by the Exchange Administrator = %v, %v; want Xray", list, err)
	}

	str := func(s string) *string { return &s }
	no, yes := false, true
	if _, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, "Alpha", dep.Change{Name: str("beta")}); !errkind.Is(err, errkind.AlreadyExists) {
		t.Errorf("rename onto another policy's name: err = %v, want already exists", err)
	}
	p, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, "Alpha", dep.Change{Name: str("Alpha 2"), Description: str("tenant-wide")})
	if err != nil || p.Name != "Alpha 2" || p.Description != "tenant-wide" {
		t.Fatalf("Set(rename) = %+v, %v", p, err)
	}
	if _, err := e.svc.Get(e.ctx, e.ga, e.tid, dep.M365, "Alpha"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Get by the old name after a rename: err = %v, want not found", err)
	}
	if _, err := e.svc.Create(e.ctx, e.ga, e.tid, dep.M365, dep.Spec{Name: "Alpha", KeyURIs: []string{e.keyA, e.keyB}}); err != nil {
		t.Errorf("the old name is free after a rename: Create err = %v", err)
	}
	if _, err := e.svc.Assign(e.ctx, e.comp, e.tid, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, a.ID, dep.Change{Enabled: &no})
	wantKind(t, "disable the assigned policy (V12)", err, errkind.FailedPrecondition, "rule V12")
	if p, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, "Beta", dep.Change{Enabled: &no}); err != nil || p.Enabled {
		t.Fatalf("disable an unassigned policy = %+v, %v", p, err)
	}
	if p, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, "Beta", dep.Change{Enabled: &yes}); err != nil || !p.Enabled {
		t.Fatalf("enable again = %+v, %v", p, err)
	}
	if _, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.Exchange, "Xray", dep.Change{Enabled: &no}); err != nil {
		t.Errorf("disable an Exchange policy: %v", err)
	}
	if n := len(e.events(e.tid, "dep/policies/update")); n != 4 {
		t.Errorf("%d update records, want 4", n)
	}
}

// TestAssignment: exactly one multi-workload policy is assigned (V11);
// assigning another replaces it; only an enabled one; the workloads are
// told; Effective follows.
func TestAssignment(t *testing.T) {
	e := newEnv(t)
	a := e.create(dep.M365, "A")
	b := e.create(dep.M365, "B")
	if got, err := e.svc.Assignment(e.ctx, e.ga, e.tid); err != nil || got.PolicyID != "" {
		t.Fatalf("Assignment before any = %+v, %v; want none", got, err)
	}
	def, err := e.svc.Effective(e.ctx, e.tid, dep.Encryption)
	if err != nil || def.Kind != dep.ServiceManaged {
		t.Fatalf("Effective with nothing assigned = %+v, %v; want the service-managed default", def, err)
	}
	if _, err := e.svc.Assign(e.ctx, e.exo, e.tid, "A"); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("Assign by the Exchange Administrator: err = %v, want permission denied", err)
	}
	if _, err := e.svc.Assign(e.ctx, e.ga, e.tid, ""); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Assign with no identity: err = %v, want invalid", err)
	}
	got, err := e.svc.Assign(e.ctx, e.ga, e.tid, "A")
	if err != nil || got.PolicyID != a.ID {
		t.Fatalf("Assign(A) = %+v, %v", got, err)
	}
	for _, w := range []*fakeWorkload{e.mail, e.files, e.enc} {
		if w.kicked(e.tid) != 1 {
			t.Errorf("%s kicked %d times after the assignment, want 1", w.w, w.kicked(e.tid))
		}
	}
	for _, w := range []dep.Workload{dep.Mail, dep.Encryption, dep.Files} {
		if ref, err := e.svc.Effective(e.ctx, e.tid, w); err != nil || !ref.Same(a.Ref()) {
			t.Errorf("Effective(%s) = %+v, %v; want A", w, ref, err)
		}
	}
	if got, err := e.svc.Assign(e.ctx, e.comp, e.tid, b.Name); err != nil || got.PolicyID != b.ID {
		t.Fatalf("Assign(B) = %+v, %v", got, err)
	}
	if got, _ := e.svc.Assignment(e.ctx, e.comp, e.tid); got.PolicyID != b.ID || got.PolicyName != "B" {
		t.Errorf("Assignment after assigning B = %+v; B replaces A", got)
	}
	if ev := e.events(e.tid, "dep/assignment/set"); len(ev) != 3 || ev[0].Result != audit.Denied || !strings.Contains(ev[2].Reason, "replacing A") {
		t.Errorf("assignment records = %+v", ev)
	}
	no := false
	if _, err := e.svc.Set(e.ctx, e.ga, e.tid, dep.M365, "A", dep.Change{Enabled: &no}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Assign(e.ctx, e.ga, e.tid, "A")
	wantKind(t, "assign a disabled policy", err, errkind.FailedPrecondition, "disabled")
	if _, err := e.svc.RequestPurge(e.ctx, e.ga, e.tid, dep.M365, "B", dep.PurgeRequest{Reason: "r", Contact: "c"}); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("purge of a multi-workload policy: err = %v, want failed precondition (no purge)", err)
	}
}

// TestExchangeLimit: at most 50 Exchange policies per tenant (V9); purged
// ones do not count.
func TestExchangeLimit(t *testing.T) {
	e := newEnv(t)
	var first dep.Policy
	for i := range dep.MaxExchangePolicies {
		p := e.create(dep.Exchange, "dep-"+string(rune('A'+i/26))+string(rune('a'+i%26)))
		if i == 0 {
			first = p
		}
	}
	_, err := e.svc.Create(e.ctx, e.ga, e.tid, dep.Exchange, dep.Spec{Name: "one-too-many", KeyURIs: []string{e.keyA, e.keyB}})
	wantKind(t, "the 51st Exchange policy", err, errkind.FailedPrecondition, "50")
	if _, err := e.svc.Create(e.ctx, e.ga, e.tid, dep.M365, dep.Spec{Name: "one-too-many", KeyURIs: []string{e.keyA, e.keyB}}); err != nil {
		t.Errorf("an M365 policy beside 50 Exchange ones: %v", err)
	}
	e.purge(first, false)
	if _, err := e.svc.Create(e.ctx, e.ga, e.tid, dep.Exchange, dep.Spec{Name: "one-too-many", KeyURIs: []string{e.keyA, e.keyB}}); err != nil {
		t.Errorf("an Exchange policy after one of 50 was purged: %v", err)
	}
}

// purge revokes both keys, requests the purge of p, has both operators
// approve it, and gives the keys back.
func (e *env) purge(p dep.Policy, force bool) dep.Policy {
	e.t.Helper()
	e.roots.failWith(e.keyA, dep.AccessDenied)
	e.roots.failWith(e.keyB, dep.AccessDenied)
	defer e.roots.failWith(e.keyA, 0)
	defer e.roots.failWith(e.keyB, 0)
	ident := p.ID
	if p.Kind == dep.SharePoint {
		ident = p.Geo
	}
	if _, err := e.svc.RequestPurge(e.ctx, e.ga, e.tid, p.Kind, ident, dep.PurgeRequest{Reason: "leaving", Contact: "cfo@contoso", Force: force}); err != nil {
		e.t.Fatalf("RequestPurge: %v", err)
	}
	if _, err := e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID); err != nil {
		e.t.Fatalf("ApprovePurge 1: %v", err)
	}
	out, err := e.svc.ApprovePurge(e.ctx, e.op2, e.tid, p.ID)
	if err != nil {
		e.t.Fatalf("ApprovePurge 2: %v", err)
	}
	return out
}
