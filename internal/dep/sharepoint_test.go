package dep_test

import (
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
)

// TestRegisterSharePoint covers the preconditions of
// Register-SPODataEncryptionPolicy: EXO or MDEP enabled and both
// subscriptions protected (V18), one policy per geo (V13), keys in two
// vaults (V6), the SharePoint roles.
func TestRegisterSharePoint(t *testing.T) {
	e := newEnv(t)
	spec := func(geo string) dep.SharePointSpec {
		return dep.SharePointSpec{Geo: geo, PrimaryKeyURI: e.keyA, SecondaryKeyURI: e.keyB}
	}
	tests := []struct {
		name  string
		spec  dep.SharePointSpec
		setup func() func()
		want  errkind.Kind
		frag  string
	}{
		{name: "no scenario enabled", spec: spec("EUR"), setup: func() func() {
			e.scen.disableAll(e.tid)
			return func() { e.scen.enable(e.tid, onboarding.MDEP, onboarding.EXO) }
		}, want: errkind.FailedPrecondition, frag: "EXO or MDEP"},
		{name: "EXO alone is enough", spec: spec("APC"), setup: func() func() {
			e.scen.disableAll(e.tid)
			e.scen.enable(e.tid, onboarding.EXO)
			return func() { e.scen.enable(e.tid, onboarding.MDEP) }
		}},
		{name: "a subscription without the mandatory retention period (V18)", spec: spec("EUR"), setup: func() func() {
			e.custody.protect(subB, false)
			return func() { e.custody.protect(subB, true) }
		}, want: errkind.FailedPrecondition, frag: subB},
		{name: "a vault of another tenant", spec: spec("EUR"), setup: func() func() {
			e.custody.addVault("vault-b", subB, e.other.TenantID, true)
			return func() { e.custody.addVault("vault-b", subB, e.tid, true) }
		}, want: errkind.FailedPrecondition, frag: "vault-b"},
		{name: "both keys in one vault (V6)", spec: dep.SharePointSpec{Geo: "EUR", PrimaryKeyURI: e.keyA, SecondaryKeyURI: e.keyA2},
			want: errkind.Invalid, frag: "rule V6"},
		{name: "a bad geo", spec: spec("Europe!"), want: errkind.Invalid},
		{name: "the default geo", spec: spec("")},
		{name: "a second policy in the geo (V13)", spec: spec("nam"), want: errkind.AlreadyExists, frag: "rule V13"},
		{name: "pinned versions", spec: spec("EUR")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				defer tc.setup()()
			}
			p, err := e.svc.RegisterSharePoint(e.ctx, e.spo, e.tid, tc.spec)
			if tc.want != errkind.Internal {
				wantKind(t, "RegisterSharePoint", err, tc.want, tc.frag)
				return
			}
			if err != nil {
				t.Fatalf("RegisterSharePoint: %v", err)
			}
			geo := strings.ToUpper(tc.spec.Geo)
			if geo == "" {
				geo = dep.DefaultGeo
			}
			if p.Geo != geo || p.Kind != dep.SharePoint || p.KeyVersion != 1 || p.State != dep.Registered ||
				p.PercentComplete == nil || *p.PercentComplete != 100 {
				t.Errorf("RegisterSharePoint = %+v; want geo %s Registered (no sites to move)", p, geo)
			}
			// Versionless identifiers are pinned to the current version.
			if len(p.KeyURIs) != 2 || !strings.HasPrefix(p.KeyURIs[0], e.keyA+"/") || !strings.HasPrefix(p.KeyURIs[1], e.keyB+"/") {
				t.Errorf("KeyURIs = %v, want pinned versions of keyA and keyB", p.KeyURIs)
			}
		})
	}
	_, err := e.svc.RegisterSharePoint(e.ctx, e.comp, e.tid, spec("CAN"))
	wantKind(t, "RegisterSharePoint by the Compliance Administrator", err, errkind.PermissionDenied, "SharePoint Administrator")
}

// TestSharePointRoll: Registering until every site is on the policy,
// Rolling after an update until every site is on the new version, one
// roll at a time (V14); older versions keep opening (V20).
func TestSharePointRoll(t *testing.T) {
	e := newEnv(t)
	var sites []*scopeItem
	for range 4 {
		sites = append(sites, e.files.add(t, e.ctx, e.tid, "NAM"))
	}
	elsewhere := e.files.add(t, e.ctx, e.tid, "EUR")
	p, err := e.svc.RegisterSharePoint(e.ctx, e.ga, e.tid, dep.SharePointSpec{PrimaryKeyURI: e.keyA, SecondaryKeyURI: e.keyB})
	if err != nil {
		t.Fatal(err)
	}
	if p.State != dep.Registering || *p.PercentComplete != 0 || e.files.kicked(e.tid) != 1 {
		t.Fatalf("after Register: %s %d%%, kicked %d; want Registering 0%% and a kick", p.State, *p.PercentComplete, e.files.kicked(e.tid))
	}
	_, err = e.svc.UpdateSharePoint(e.ctx, e.ga, e.tid, "", dep.Primary, e.roots.newVersion(e.keyA))
	wantKind(t, "Update while Registering (V14)", err, errkind.FailedPrecondition, "rule V14")
	if n := e.files.rewrap(t, e.ctx, e.tid); n != 4 {
		t.Fatalf("rewrapped %d sites, want the 4 of NAM", n)
	}
	if p, _ = e.svc.SharePointPolicy(e.ctx, e.spo, e.tid, "nam"); p.State != dep.Registered || *p.PercentComplete != 100 {
		t.Fatalf("after the sites moved: %s %d%%, want Registered 100%%", p.State, *p.PercentComplete)
	}
	if len(e.events(e.tid, "dep/sharepoint/registered")) != 1 {
		t.Error("the move to Registered was not audited")
	}
	if elsewhere.ref.Kind != dep.ServiceManaged {
		t.Errorf("a site of another geo moved onto NAM's policy: %+v", elsewhere.ref)
	}
	v1 := *sites[0]

	newA := e.roots.newVersion(e.keyA)
	_, err = e.svc.UpdateSharePoint(e.ctx, e.ga, e.tid, "NAM", dep.Primary, p.KeyURIs[0])
	wantKind(t, "Update to the same key version", err, errkind.Invalid, "already")
	p, err = e.svc.UpdateSharePoint(e.ctx, e.spo, e.tid, "NAM", dep.Primary, newA)
	if err != nil {
		t.Fatalf("Update Primary: %v", err)
	}
	if p.State != dep.Rolling || p.KeyVersion != 2 || p.KeyURIs[0] != newA || *p.PercentComplete != 0 {
		t.Fatalf("after Update: %+v; want Rolling at version 2 with the new primary", p)
	}
	_, err = e.svc.UpdateSharePoint(e.ctx, e.spo, e.tid, "NAM", dep.Secondary, e.keyC)
	wantKind(t, "a second roll while Rolling (V14)", err, errkind.FailedPrecondition, "one key rolls at a time")
	e.files.rewrap(t, e.ctx, e.tid)
	p, err = e.svc.UpdateSharePoint(e.ctx, e.spo, e.tid, "NAM", dep.Secondary, e.keyC)
	if err != nil {
		t.Fatalf("Update Secondary after the roll finished: %v", err)
	}
	if p.KeyVersion != 3 || !strings.HasPrefix(p.KeyURIs[1], e.keyC+"/") || p.KeyURIs[0] != newA {
		t.Errorf("after the second roll: %+v", p)
	}
	_, err = e.svc.UpdateSharePoint(e.ctx, e.spo, e.tid, "NAM", "Availability", e.keyC)
	wantKind(t, "an unknown key type", err, errkind.Invalid, "")
	e.restart()
	if err := open(e.ctx, e.svc, &v1, dep.Purpose{}); err != nil {
		t.Errorf("a site key of version 1 after two rolls: %v", err)
	}
	if ref, _ := e.svc.EffectiveGeo(e.ctx, e.tid, "NAM"); ref.KeyVersion != 3 {
		t.Errorf("EffectiveGeo = %+v, want the newest version 3", ref)
	}
}

// TestRestoreSharePoint: after the customer lost both root keys, an
// operator re-wraps the same TIK, recovered with the availability key,
// under new root keys; the sites open again without being rewrapped.
func TestRestoreSharePoint(t *testing.T) {
	e := newEnv(t)
	e.register("")
	s1 := e.files.add(t, e.ctx, e.tid, "NAM")
	if _, err := e.svc.UpdateSharePoint(e.ctx, e.ga, e.tid, "", dep.Primary, e.roots.newVersion(e.keyA)); err != nil {
		t.Fatal(err)
	}
	s2 := e.files.add(t, e.ctx, e.tid, "NAM") // on version 2; s1 stays on 1
	e.roots.failWith(e.keyA, dep.NotFound)
	e.roots.failWith(e.keyB, dep.NotFound)
	e.restart()
	err := open(e.ctx, e.svc, s1, dep.Purpose{System: true})
	wantKind(t, "a site with both keys lost", err, errkind.PermissionDenied, "never uses the availability key")

	spec := dep.SharePointSpec{PrimaryKeyURI: e.keyC, SecondaryKeyURI: e.keyA2}
	_, err = e.svc.RestoreSharePoint(e.ctx, e.ga, e.tid, spec)
	wantKind(t, "Restore by the tenant's Global Administrator", err, errkind.PermissionDenied, "operator")
	p, err := e.svc.RestoreSharePoint(e.ctx, e.op1, e.tid, spec)
	if err != nil {
		t.Fatalf("RestoreSharePoint: %v", err)
	}
	if p.KeyVersion != 2 || !strings.HasPrefix(p.KeyURIs[0], e.keyC+"/") || !strings.HasPrefix(p.KeyURIs[1], e.keyA2+"/") {
		t.Errorf("after Restore: %+v; want version 2 on keyC and keyA2", p)
	}
	e.roots.resetCalls()
	e.restart()
	for i, s := range []*scopeItem{s1, s2} {
		if err := open(e.ctx, e.svc, s, dep.Purpose{}); err != nil {
			t.Errorf("site %d after Restore: %v", i+1, err)
		}
	}
	if e.roots.unwraps(e.keyC)+e.roots.unwraps(e.keyA2) != 2 || e.roots.unwraps(e.keyA)+e.roots.unwraps(e.keyB) != 0 {
		t.Errorf("after Restore the sites opened through keyA/keyB %d times, keyC/keyA2 %d times; want only the new keys",
			e.roots.unwraps(e.keyA)+e.roots.unwraps(e.keyB), e.roots.unwraps(e.keyC)+e.roots.unwraps(e.keyA2))
	}
	if len(e.events(e.tid, "dep/sharepoint/restore")) != 1 {
		t.Error("the restore was not audited")
	}
}
