package dep_test

import (
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
)

// TestRefreshAndReplace: each makes a new key version that the workloads
// move onto, and everything sealed under older versions still opens (V20),
// from the root keys, after a restart.
func TestRefreshAndReplace(t *testing.T) {
	for _, kind := range []dep.Kind{dep.M365, dep.Exchange} {
		t.Run(string(kind), func(t *testing.T) {
			e := newEnv(t)
			p := e.create(kind, "rolling")
			v1 := e.enc.addUnder(t, e.ctx, e.tid, "", p.Ref())
			old := *v1

			newA, newB := e.roots.newVersion(e.keyA), e.roots.newVersion(e.keyB)
			kicks := e.enc.kicked(e.tid)
			r, err := e.svc.Refresh(e.ctx, e.ga, e.tid, kind, "rolling")
			if err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if r.KeyVersion != 2 || r.RootKeyIDs[0] != newA || r.RootKeyIDs[1] != newB || r.KeyURIs[0] != e.keyA {
				t.Errorf("after Refresh: version %d, root keys %v; want 2 and the new versions %s, %s", r.KeyVersion, r.RootKeyIDs, newA, newB)
			}
			if e.enc.kicked(e.tid) != kicks+1 {
				t.Errorf("the workloads were not kicked after Refresh")
			}
			if cur, _ := e.svc.Current(e.ctx, e.tid, p.ID); cur.KeyVersion != 2 {
				t.Errorf("Current after Refresh = %+v, want version 2", cur)
			}
			v2 := e.enc.addUnder(t, e.ctx, e.tid, "", r.Ref())

			rp, err := e.svc.Replace(e.ctx, e.ga, e.tid, kind, p.ID, []string{e.keyC, e.keyA2})
			if err != nil {
				t.Fatalf("Replace: %v", err)
			}
			if rp.KeyVersion != 3 || !strings.HasPrefix(rp.RootKeyIDs[0], e.keyC+"/") || rp.KeyURIs[1] != e.keyA2 {
				t.Errorf("after Replace = %+v; want version 3 on keyC and keyA2", rp)
			}
			v3 := e.enc.addUnder(t, e.ctx, e.tid, "", rp.Ref())
			e.restart()
			for i, it := range []*scopeItem{&old, v2, v3} {
				if err := open(e.ctx, e.svc, it, dep.Purpose{}); err != nil {
					t.Errorf("key version %d after a restart: %v", i+1, err)
				}
			}
			// Version 1 was wrapped by the first versions of keyA and keyB:
			// keeping them is what keeps old data readable.
			e.roots.failWith(e.keyC, dep.AccessDenied)
			e.roots.failWith(e.keyA2, dep.AccessDenied)
			e.restart()
			if err := open(e.ctx, e.svc, &old, dep.Purpose{}); err != nil {
				t.Errorf("version 1 with the new keys revoked: %v", err)
			}
			_, err = e.svc.Replace(e.ctx, e.ga, e.tid, kind, p.ID, []string{e.keyC, e.keyA2})
			wantKind(t, "Replace with the same keys", err, errkind.Invalid, "refresh")
			_, err = e.svc.Refresh(e.ctx, e.ga, e.tid, kind, p.ID)
			wantKind(t, "Refresh with both keys revoked", err, errkind.FailedPrecondition, "restore its access")
			if n := len(e.events(e.tid, "dep/policies/refresh")) + len(e.events(e.tid, "dep/policies/replace")); n != 2 {
				t.Errorf("%d refresh and replace records, want 2", n)
			}
		})
	}
}

// TestRefreshChecksKeys: a refresh takes each key's current version
// through the same checks as a create.
func TestRefreshChecksKeys(t *testing.T) {
	e := newEnv(t)
	e.create(dep.M365, "p")
	e.roots.newVersion(e.keyB)
	e.roots.set(e.keyB, func(k *fakeKey) { k.info.Ops = []string{"encrypt"} })
	_, err := e.svc.Refresh(e.ctx, e.comp, e.tid, dep.M365, "p")
	wantKind(t, "Refresh onto a version without wrapKey", err, errkind.FailedPrecondition, "wrapKey")
	if p, _ := e.svc.Get(e.ctx, e.ga, e.tid, dep.M365, "p"); p.KeyVersion != 1 {
		t.Errorf("a refused Refresh left key version %d, want 1", p.KeyVersion)
	}
	_, err = e.svc.Refresh(e.ctx, e.exo, e.tid, dep.M365, "p")
	wantKind(t, "Refresh by the Exchange Administrator", err, errkind.PermissionDenied, "")
}

// TestTest reports each root key with its failure class.
func TestTest(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.M365, "tested")
	res, err := e.svc.Test(e.ctx, e.ga, e.tid, dep.M365, "tested")
	if err != nil || !res.Success || len(res.Keys) != 2 || res.Keys[0].Result != "Success" || res.Keys[1].KeyURI != e.keyB {
		t.Fatalf("Test = %+v, %v; want both keys Success", res, err)
	}
	e.roots.failWith(e.keyB, dep.KeyDisabled)
	res, err = e.svc.Test(e.ctx, e.ga, e.tid, dep.M365, p.ID)
	if err != nil || res.Success || res.Keys[0].Result != "Success" || res.Keys[1].Result != "Failed" ||
		res.Keys[1].Failure != "KeyDisabled" || !strings.Contains(res.Keys[1].Message, e.keyB) {
		t.Fatalf("Test with keyB disabled = %+v, %v", res, err)
	}
}
