package dep_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
)

// TestFallbackMatrix drives the unwrap rules of Exchange and
// multi-workload policies (spec §d.4) through every combination of root
// key failures and purposes, on a cold cache each time.
func TestFallbackMatrix(t *testing.T) {
	e := newEnv(t)
	m365 := e.create(dep.M365, "tenant-wide")
	exo := e.create(dep.Exchange, "mailboxes")
	items := map[dep.Kind]*scopeItem{
		dep.M365:     e.enc.addUnder(t, e.ctx, e.tid, "", m365.Ref()),
		dep.Exchange: e.mail.addUnder(t, e.ctx, e.tid, "", exo.Ref()),
	}
	tests := []struct {
		name   string
		a, b   dep.Failure
		system bool
		want   errkind.Kind // Internal: success
		viaAK  bool
	}{
		{name: "both answer"},
		{name: "one unreachable, the other serves", a: dep.Transient},
		{name: "one revoked, the other serves", b: dep.AccessDenied},
		{name: "one disabled, the other serves, system", a: dep.KeyDisabled, system: true},
		{name: "both unreachable: availability key for a user", a: dep.Transient, b: dep.Transient, viaAK: true},
		{name: "both unreachable: availability key for the system", a: dep.Transient, b: dep.Transient, system: true, viaAK: true},
		{name: "both revoked: a user is refused", a: dep.AccessDenied, b: dep.KeyDisabled, want: errkind.PermissionDenied},
		{name: "both deleted: a user is refused", a: dep.NotFound, b: dep.NotFound, want: errkind.PermissionDenied},
		{name: "both revoked: the system uses the availability key", a: dep.AccessDenied, b: dep.NotFound, system: true, viaAK: true},
		{name: "one revoked, one unreachable: availability key", a: dep.AccessDenied, b: dep.Transient, viaAK: true},
	}
	for _, kind := range []dep.Kind{dep.M365, dep.Exchange} {
		for _, tc := range tests {
			t.Run(string(kind)+"/"+tc.name, func(t *testing.T) {
				e.restart() // a cold cache
				e.roots.failWith(e.keyA, tc.a)
				e.roots.failWith(e.keyB, tc.b)
				defer e.roots.failWith(e.keyA, 0)
				defer e.roots.failWith(e.keyB, 0)
				e.roots.resetCalls()
				before := len(e.events(e.tid, dep.ActivityAKFallback))
				it := items[kind]
				rid := "req-" + strings.ReplaceAll(tc.name, " ", "-")
				err := open(e.ctx, e.svc, it, dep.Purpose{System: tc.system, RequestID: rid})
				if tc.want != errkind.Internal {
					wantKind(t, "UnwrapScopeKey", err, tc.want, "revoked access to both root keys")
				} else if err != nil {
					t.Fatalf("UnwrapScopeKey: %v", err)
				}
				records := e.events(e.tid, dep.ActivityAKFallback)[before:]
				if !tc.viaAK {
					if len(records) != 0 {
						t.Fatalf("%d availability key records, want none: the availability key is never used while a root key answers", len(records))
					}
					return
				}
				if e.roots.unwraps(e.keyA) != 1 || e.roots.unwraps(e.keyB) != 1 {
					t.Errorf("root key unwraps %d and %d before the availability key; want both asked once first",
						e.roots.unwraps(e.keyA), e.roots.unwraps(e.keyB))
				}
				if len(records) != 1 {
					t.Fatalf("%d availability key records, want 1", len(records))
				}
				r := records[0]
				id, _ := headerOf(t, it.wrapped)
				if r.Target != id || r.RequestID != rid || !strings.Contains(r.Reason, "Scope Key Version Id") ||
					!strings.Contains(r.Reason, "Policy Id "+id) {
					t.Errorf("availability key record = %+v; want the policy id, scope key version id and request id", r)
				}
				// Keys from the availability key are not cached: the next
				// use is audited again.
				if err := open(e.ctx, e.svc, it, dep.Purpose{System: tc.system, RequestID: rid}); err != nil {
					t.Fatal(err)
				}
				if n := len(e.events(e.tid, dep.ActivityAKFallback)) - before; n != 2 {
					t.Errorf("%d availability key records after a second use, want 2", n)
				}
			})
		}
	}
}

// TestSharePointNeverUsesTheAvailabilityKey: whatever fails, SharePoint
// answers with an error and never falls back.
func TestSharePointNeverUsesTheAvailabilityKey(t *testing.T) {
	e := newEnv(t)
	sp := e.register("")
	site := e.files.add(t, e.ctx, e.tid, "NAM")
	if site.ref.PolicyID != sp.ID {
		t.Fatalf("a new site is under %+v, want the geo's SharePoint policy", site.ref)
	}
	for _, tc := range []struct {
		name   string
		a, b   dep.Failure
		system bool
		want   errkind.Kind
	}{
		{"both unreachable", dep.Transient, dep.Transient, true, errkind.Unavailable},
		{"both revoked, user", dep.AccessDenied, dep.AccessDenied, false, errkind.PermissionDenied},
		{"both revoked, system", dep.KeyDisabled, dep.NotFound, true, errkind.PermissionDenied},
		{"one revoked", dep.AccessDenied, 0, false, errkind.Internal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.restart()
			e.roots.failWith(e.keyA, tc.a)
			e.roots.failWith(e.keyB, tc.b)
			defer e.roots.failWith(e.keyA, 0)
			defer e.roots.failWith(e.keyB, 0)
			err := open(e.ctx, e.svc, site, dep.Purpose{System: tc.system})
			if tc.want == errkind.Internal {
				if err != nil {
					t.Fatalf("UnwrapScopeKey: %v", err)
				}
			} else {
				wantKind(t, "UnwrapScopeKey", err, tc.want, "")
			}
			if n := len(e.events(e.tid, dep.ActivityAKFallback)); n != 0 {
				t.Errorf("%d availability key records for SharePoint, want none", n)
			}
		})
	}
}

// TestHedgedPair: SharePoint asks the second root key after HedgeDelay
// when the first hangs, and at once when the first fails; the first answer
// wins and the other call is cancelled.
func TestHedgedPair(t *testing.T) {
	e := newEnv(t)
	e.register("")
	site := e.files.add(t, e.ctx, e.tid, "NAM")
	const hedge = 80 * time.Millisecond
	for _, tc := range []struct {
		name  string
		setup func(k *fakeKey) // applied to keyA; keyB answers at once
		// wantElapsed lists the acceptable durations: the order of the two
		// keys is random.
		wantElapsed []time.Duration
	}{
		{"the first hangs", func(k *fakeKey) { k.gate = make(chan struct{}) }, []time.Duration{0, hedge}},
		{"the first is slow", func(k *fakeKey) { k.delay = time.Second }, []time.Duration{0, hedge}},
		{"the first fails at once", func(k *fakeKey) { k.fail = dep.Transient }, []time.Duration{0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 6 { // both orders, with high probability
				synctest.Test(t, func(t *testing.T) {
					e.roots.set(e.keyA, tc.setup)
					defer e.roots.set(e.keyA, func(k *fakeKey) { k.gate, k.delay, k.fail = nil, 0, 0 })
					opts := e.opts
					opts.HedgeDelay = hedge
					svc := dep.New(opts)
					defer svc.Close()
					start := time.Now()
					if err := open(e.ctx, svc, site, dep.Purpose{}); err != nil {
						t.Fatalf("UnwrapScopeKey: %v", err)
					}
					elapsed := time.Since(start)
					ok := false
					for _, d := range tc.wantElapsed {
						ok = ok || elapsed == d
					}
					if !ok {
						t.Errorf("the unwrap took %v, want one of %v", elapsed, tc.wantElapsed)
					}
					synctest.Wait()
					if n := e.roots.running(); n != 0 {
						t.Errorf("%d root key calls still running after the first answer; the other must be cancelled", n)
					}
				})
			}
		})
	}
}

// TestCacheLifetime: a cached key serves without the vault for its
// lifetime, which is the revocation latency; keys in use are refreshed
// before they expire; unused ones expire and are dropped.
func TestCacheLifetime(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.M365, "cached")
	it := e.enc.addUnder(t, e.ctx, e.tid, "", p.Ref())
	const life = 10 * time.Minute
	opts := e.opts
	opts.CacheLifetime = life
	calls := func() int { return e.roots.unwraps(e.keyA) + e.roots.unwraps(e.keyB) }

	t.Run("revocation takes effect within the lifetime", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc := dep.New(opts)
			defer svc.Close()
			e.roots.resetCalls()
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
				t.Fatal(err)
			}
			e.roots.failWith(e.keyA, dep.AccessDenied)
			e.roots.failWith(e.keyB, dep.AccessDenied)
			defer e.roots.failWith(e.keyA, 0)
			defer e.roots.failWith(e.keyB, 0)
			time.Sleep(5 * time.Minute)
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil || calls() != 1 {
				t.Fatalf("at 5 min: err %v, %d vault calls; want the cached key and no new call", err, calls())
			}
			time.Sleep(3 * time.Minute) // in the last quarter: a refresh starts, and fails
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
				t.Fatalf("at 8 min: %v; the cached key still serves", err)
			}
			synctest.Wait()
			if calls() != 3 {
				t.Errorf("at 8 min: %d vault calls, want 3 (the refresh asked both keys)", calls())
			}
			time.Sleep(2*time.Minute + time.Second)
			err := open(e.ctx, svc, it, dep.Purpose{})
			wantKind(t, "after the lifetime", err, errkind.PermissionDenied, "revoked")
		})
	})
	t.Run("keys in use are refreshed", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc := dep.New(opts)
			defer svc.Close()
			e.roots.resetCalls()
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
				t.Fatal(err)
			}
			time.Sleep(8 * time.Minute)
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if calls() != 2 {
				t.Fatalf("after the refresh: %d vault calls, want 2", calls())
			}
			time.Sleep(5 * time.Minute) // past the first entry's expiry
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil || calls() != 2 {
				t.Fatalf("at 13 min: err %v, %d vault calls; want the refreshed key and no new call", err, calls())
			}
		})
	})
	t.Run("unused keys expire and are dropped", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			svc := dep.New(opts)
			defer svc.Close()
			if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
				t.Fatal(err)
			}
			if svc.CachedKeys() != 1 {
				t.Fatalf("%d cached keys, want 1", svc.CachedKeys())
			}
			time.Sleep(life)
			synctest.Wait()
			if svc.CachedKeys() != 0 {
				t.Errorf("%d cached keys after the lifetime, want 0", svc.CachedKeys())
			}
		})
	})
}

// TestCacheSize: the cache holds at most CacheSize key versions.
func TestCacheSize(t *testing.T) {
	e := newEnvWith(t, func(o *dep.Options) { o.CacheSize = 2 })
	var items []*scopeItem
	for _, name := range []string{"one", "two", "three"} {
		items = append(items, e.enc.addUnder(t, e.ctx, e.tid, "", e.create(dep.M365, name).Ref()))
	}
	e.restart()
	for _, it := range items {
		if err := open(e.ctx, e.svc, it, dep.Purpose{}); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.svc.CachedKeys(); n != 2 {
		t.Errorf("%d cached keys, want 2 (CacheSize)", n)
	}
}

// TestCoalescing: concurrent misses for one key version cost one vault
// round trip.
func TestCoalescing(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.Exchange, "busy")
	it := e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		for _, k := range []string{e.keyA, e.keyB} {
			e.roots.set(k, func(k *fakeKey) { k.gate = gate })
		}
		defer func() {
			for _, k := range []string{e.keyA, e.keyB} {
				e.roots.set(k, func(k *fakeKey) { k.gate = nil })
			}
		}()
		svc := dep.New(e.opts)
		defer svc.Close()
		e.roots.resetCalls()
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for range 32 {
			wg.Go(func() { errs <- open(e.ctx, svc, it, dep.Purpose{}) })
		}
		synctest.Wait()
		if n := e.roots.running(); n != 1 {
			t.Errorf("%d vault calls in flight for 32 concurrent misses, want 1", n)
		}
		close(gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := e.roots.unwraps(e.keyA) + e.roots.unwraps(e.keyB); n != 1 {
			t.Errorf("%d vault unwraps, want 1", n)
		}
	})
}

// TestWaiterGivesUp: a caller whose context ends stops waiting for a
// shared unwrap, which goes on for the others.
func TestWaiterGivesUp(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.M365, "slow")
	it := e.enc.addUnder(t, e.ctx, e.tid, "", p.Ref())
	synctest.Test(t, func(t *testing.T) {
		for _, k := range []string{e.keyA, e.keyB} {
			e.roots.set(k, func(k *fakeKey) { k.delay = time.Second })
		}
		defer func() {
			for _, k := range []string{e.keyA, e.keyB} {
				e.roots.set(k, func(k *fakeKey) { k.delay = 0 })
			}
		}()
		svc := dep.New(e.opts)
		defer svc.Close()
		ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
		defer cancel()
		err := open(ctx, svc, it, dep.Purpose{})
		wantKind(t, "UnwrapScopeKey with a short deadline", err, errkind.Unavailable, "")
		if err := open(e.ctx, svc, it, dep.Purpose{}); err != nil {
			t.Fatalf("a patient caller: %v", err)
		}
	})
}

// TestScopeKeyBinding: a wrapped scope key opens only in its tenant with
// its aad, and only policies that take data take new scope keys.
func TestScopeKeyBinding(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.Exchange, "bound")
	it := e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	key, _ := envelope.NewKey()
	defer key.Wipe()
	id, v := headerOf(t, it.wrapped)
	if id != p.ID || v != 1 {
		t.Fatalf("the wrapped scope key names %s/%d, want %s/1", id, v, p.ID)
	}
	tampered := bytes.Clone(it.wrapped)
	tampered[len(tampered)-1] ^= 1
	for _, tc := range []struct {
		name    string
		tid     string
		wrapped []byte
		aad     []byte
		want    errkind.Kind
	}{
		{"other aad", e.tid, it.wrapped, []byte("other scope"), errkind.Invalid},
		{"other tenant", e.other.TenantID, it.wrapped, it.aad, errkind.NotFound},
		{"tampered", e.tid, tampered, it.aad, errkind.Invalid},
		{"not a wrapped key", e.tid, []byte("garbage"), it.aad, errkind.Invalid},
		{"not a tenant id", "contoso", it.wrapped, it.aad, errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.UnwrapScopeKey(e.ctx, tc.tid, tc.wrapped, tc.aad, dep.Purpose{System: true})
			wantKind(t, "UnwrapScopeKey", err, tc.want, "")
		})
	}
	for _, tc := range []struct {
		name string
		ref  dep.PolicyRef
		want errkind.Kind
	}{
		{"a version not made yet", dep.PolicyRef{TenantID: e.tid, PolicyID: p.ID, Kind: dep.Exchange, KeyVersion: 2}, errkind.NotFound},
		{"another tenant's policy", dep.PolicyRef{TenantID: e.other.TenantID, PolicyID: p.ID, Kind: dep.Exchange, KeyVersion: 1}, errkind.NotFound},
		{"no version", dep.PolicyRef{TenantID: e.tid, PolicyID: p.ID, KeyVersion: 0}, errkind.Invalid},
	} {
		t.Run("wrap under "+tc.name, func(t *testing.T) {
			_, err := e.svc.WrapScopeKey(e.ctx, tc.ref, key, []byte("x"))
			wantKind(t, "WrapScopeKey", err, tc.want, "")
		})
	}
}

// TestServiceManagedDefaults: each workload of a tenant gets its own
// default on first use, wrapped only by the operator key: no vault call.
func TestServiceManagedDefaults(t *testing.T) {
	e := newEnv(t)
	refs := map[dep.Workload]dep.PolicyRef{}
	for _, w := range []dep.Workload{dep.Mail, dep.Files, dep.Encryption} {
		ref, err := e.svc.Effective(e.ctx, e.tid, w)
		if err != nil || ref.Kind != dep.ServiceManaged || ref.KeyVersion != 1 {
			t.Fatalf("Effective(%s) = %+v, %v; want a service-managed default", w, ref, err)
		}
		again, err := e.svc.Effective(e.ctx, e.tid, w)
		if err != nil || !again.Same(ref) {
			t.Errorf("Effective(%s) again = %+v, %v; want the same default %+v", w, again, err, ref)
		}
		for ow, other := range refs {
			if other.PolicyID == ref.PolicyID {
				t.Errorf("%s and %s share the default %s", w, ow, ref.PolicyID)
			}
		}
		refs[w] = ref
	}
	if n := len(e.events(e.tid, "dep/defaults/create")); n != 3 {
		t.Errorf("%d default creation records, want 3", n)
	}
	e.roots.resetCalls()
	it := e.mail.add(t, e.ctx, e.tid, "")
	e.restart()
	if err := open(e.ctx, e.svc, it, dep.Purpose{}); err != nil {
		t.Fatal(err)
	}
	if len(e.roots.appsSeen()) != 0 {
		t.Errorf("service-managed keys called the vault: %v", e.roots.appsSeen())
	}
	if _, err := e.svc.Effective(e.ctx, "3f2504e0-4f89-11d3-9a0c-0305e82c3301", dep.Mail); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Effective for a tenant that does not exist: err = %v, want not found", err)
	}
	if _, err := e.svc.Effective(e.ctx, e.tid, "Teams"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Effective for an unknown workload: err = %v, want invalid", err)
	}
}

// TestEffectiveGeo: the geo's SharePoint policy, else the assigned
// multi-workload policy, else the Files default.
func TestEffectiveGeo(t *testing.T) {
	e := newEnv(t)
	def, err := e.svc.EffectiveGeo(e.ctx, e.tid, "")
	if err != nil || def.Kind != dep.ServiceManaged {
		t.Fatalf("EffectiveGeo with nothing = %+v, %v; want the Files default", def, err)
	}
	if ref, _ := e.svc.Effective(e.ctx, e.tid, dep.Files); !ref.Same(def) {
		t.Errorf("EffectiveGeo and Effective(Files) differ: %+v, %+v", def, ref)
	}
	m := e.create(dep.M365, "tenant-wide")
	if _, err := e.svc.Assign(e.ctx, e.ga, e.tid, "tenant-wide"); err != nil {
		t.Fatal(err)
	}
	sp := e.register("eur")
	for _, tc := range []struct {
		geo  string
		want string
	}{{"", m.ID}, {"NAM", m.ID}, {"EUR", sp.ID}, {"eur", sp.ID}, {"APC", m.ID}} {
		if ref, err := e.svc.EffectiveGeo(e.ctx, e.tid, tc.geo); err != nil || ref.PolicyID != tc.want {
			t.Errorf("EffectiveGeo(%q) = %+v, %v; want %s", tc.geo, ref, err, tc.want)
		}
	}
	if _, err := e.svc.EffectiveGeo(e.ctx, e.tid, "not a geo"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("EffectiveGeo of a bad code: err = %v, want invalid", err)
	}
}

// TestExchangePolicyAndCurrent: what Set-Mailbox may assign, and the
// newest version of any policy.
func TestExchangePolicyAndCurrent(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.Exchange, "Mailboxes")
	off := e.create(dep.Exchange, "Off")
	m := e.create(dep.M365, "Wide")
	no := false
	if _, err := e.svc.Set(e.ctx, e.exo, e.tid, dep.Exchange, "Off", dep.Change{Enabled: &no}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, tid, identity string
		want                errkind.Kind
	}{
		{"by name", e.tid, "mailboxes", errkind.Internal},
		{"by id", e.tid, p.ID, errkind.Internal},
		{"disabled", e.tid, off.ID, errkind.FailedPrecondition},
		{"a multi-workload policy", e.tid, m.ID, errkind.NotFound},
		{"another tenant", e.other.TenantID, p.ID, errkind.NotFound},
		{"empty", e.tid, "", errkind.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := e.svc.ExchangePolicy(e.ctx, tc.tid, tc.identity)
			if tc.want != errkind.Internal {
				wantKind(t, "ExchangePolicy", err, tc.want, "")
				return
			}
			if err != nil || !ref.Same(p.Ref()) || ref.Kind != dep.Exchange {
				t.Fatalf("ExchangePolicy = %+v, %v; want %+v", ref, err, p.Ref())
			}
		})
	}
	if ref, err := e.svc.Current(e.ctx, e.tid, strings.ToUpper(m.ID)); err != nil || !ref.Same(m.Ref()) {
		t.Errorf("Current(M365) = %+v, %v", ref, err)
	}
	if _, err := e.svc.Current(e.ctx, e.other.TenantID, m.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Current in another tenant: err = %v, want not found", err)
	}
}

// TestAuthorizationOfReads: who may read which kind.
func TestAuthorizationOfReads(t *testing.T) {
	e := newEnv(t)
	e.create(dep.M365, "m")
	e.create(dep.Exchange, "x")
	e.register("")
	for _, tc := range []struct {
		name   string
		c      directory.Caller
		kind   dep.Kind
		wantOK bool
	}{
		{"GA reads M365", e.ga, dep.M365, true},
		{"Compliance reads Exchange", e.comp, dep.Exchange, true},
		{"Exchange admin reads Exchange", e.exo, dep.Exchange, true},
		{"Exchange admin reads M365", e.exo, dep.M365, false},
		{"SharePoint admin reads SharePoint", e.spo, dep.SharePoint, true},
		{"Compliance reads SharePoint", e.comp, dep.SharePoint, false},
		{"SharePoint admin reads Exchange", e.spo, dep.Exchange, false},
		{"a user reads M365", e.user, dep.M365, false},
		{"the tenant's app reads SharePoint", e.app, dep.SharePoint, true},
		{"the system reads M365", directory.System, dep.M365, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.List(e.ctx, tc.c, e.tid, tc.kind)
			if tc.wantOK != (err == nil) {
				t.Fatalf("List(%s) err = %v, want ok %v", tc.kind, err, tc.wantOK)
			}
			if !tc.wantOK && !errkind.Is(err, errkind.PermissionDenied) {
				t.Fatalf("List err = %v, want permission denied", err)
			}
		})
	}
	ev := e.events(e.tid, "dep/policies/read")
	if len(ev) != 4 || ev[0].Result != audit.Denied {
		t.Errorf("%d read refusals audited, want 4", len(ev))
	}
}

// TestRandomFirstKey: Exchange and multi-workload unwraps start with a
// root key chosen at random, so that both vaults share the load.
func TestRandomFirstKey(t *testing.T) {
	e := newEnv(t)
	it := e.mail.addUnder(t, e.ctx, e.tid, "", e.create(dep.Exchange, "spread").Ref())
	e.roots.resetCalls()
	for range 40 {
		e.restart()
		if err := open(e.ctx, e.svc, it, dep.Purpose{}); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := e.roots.unwraps(e.keyA), e.roots.unwraps(e.keyB); a+b != 40 || a == 0 || b == 0 {
		t.Errorf("first unwraps: keyA %d, keyB %d; want 40 in all, each key chosen sometimes", a, b)
	}
}
