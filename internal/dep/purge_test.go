package dep_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// TestPurgeRequestNeedsRevocation: the request is refused until the
// workload lost access to every root key (V15), checked live.
func TestPurgeRequestNeedsRevocation(t *testing.T) {
	e := newEnv(t)
	req := dep.PurgeRequest{Reason: "leaving the service", Contact: "cfo@contoso.example"}
	tests := []struct {
		name  string
		a, b  dep.Failure
		setup func() func()
		req   dep.PurgeRequest
		want  errkind.Kind
		frag  string
	}{
		{name: "both keys still work", want: errkind.FailedPrecondition, frag: "can still unwrap"},
		{name: "one key still works", a: dep.AccessDenied, want: errkind.FailedPrecondition, frag: e.keyB},
		{name: "a vault does not answer", a: dep.AccessDenied, b: dep.Transient, want: errkind.Unavailable},
		{name: "an expired key is not a revocation", a: dep.AccessDenied, b: dep.KeyExpired, want: errkind.FailedPrecondition, frag: "not a revocation"},
		{name: "a vault deleted, without force", a: dep.AccessDenied, b: dep.NotFound, setup: func() func() {
			e.custody.deleteVault("vault-b")
			return func() { e.custody.addVault("vault-b", subB, e.tid, true) }
		}, want: errkind.FailedPrecondition, frag: "-Force"},
		{name: "no reason", a: dep.AccessDenied, b: dep.AccessDenied, req: dep.PurgeRequest{Contact: "x"}, want: errkind.Invalid},
		{name: "no contact", a: dep.AccessDenied, b: dep.AccessDenied, req: dep.PurgeRequest{Reason: "x"}, want: errkind.Invalid},
	}
	p := e.create(dep.Exchange, "to-purge")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				defer tc.setup()()
			}
			e.roots.failWith(e.keyA, tc.a)
			e.roots.failWith(e.keyB, tc.b)
			defer e.roots.failWith(e.keyA, 0)
			defer e.roots.failWith(e.keyB, 0)
			r := tc.req
			if r.Reason == "" && r.Contact == "" {
				r = req
			}
			_, err := e.svc.RequestPurge(e.ctx, e.exo, e.tid, dep.Exchange, p.Name, r)
			wantKind(t, "RequestPurge", err, tc.want, tc.frag)
			if got, _ := e.svc.Get(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); got.State != dep.Active {
				t.Errorf("a refused request left the policy %s", got.State)
			}
		})
	}
	for _, tc := range []struct {
		name  string
		a, b  dep.Failure
		force bool
		gone  bool
	}{
		{"access removed from both", dep.AccessDenied, dep.AccessDenied, false, false},
		{"one disabled, one key deleted from its live vault", dep.KeyDisabled, dep.NotFound, false, false},
		{"a vault deleted, with force", dep.AccessDenied, dep.NotFound, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := e.create(dep.Exchange, "p-"+strings.ReplaceAll(tc.name, " ", "-"))
			if tc.gone {
				e.custody.deleteVault("vault-b")
				defer e.custody.addVault("vault-b", subB, e.tid, true)
			}
			e.roots.failWith(e.keyA, tc.a)
			e.roots.failWith(e.keyB, tc.b)
			defer e.roots.failWith(e.keyA, 0)
			defer e.roots.failWith(e.keyB, 0)
			r := req
			r.Force = tc.force
			got, err := e.svc.RequestPurge(e.ctx, e.ga, e.tid, dep.Exchange, p.ID, r)
			if err != nil {
				t.Fatalf("RequestPurge: %v", err)
			}
			if got.State != dep.PurgeRequested || !got.PermanentDataPurgeRequested || got.PermanentDataPurgeContact != req.Contact ||
				got.PurgeForced != tc.force || got.Enabled {
				t.Errorf("after RequestPurge = %+v", got)
			}
		})
	}
}

// TestPurge walks an Exchange policy through the purge path: request,
// two different operator approvals, the data and keys deleted, a
// tombstone; nothing wrapped under it opens afterwards.
func TestPurge(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.Exchange, "Leaving")
	keep := e.create(dep.Exchange, "Staying")
	var doomed []*scopeItem
	for range 3 {
		doomed = append(doomed, e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref()))
	}
	doomed = append(doomed, e.enc.addUnder(t, e.ctx, e.tid, "", p.Ref()))
	kept := e.mail.addUnder(t, e.ctx, e.tid, "", keep.Ref())
	if _, err := e.svc.Refresh(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); err != nil {
		t.Fatal(err)
	}
	doomed = append(doomed, e.mail.addUnder(t, e.ctx, e.tid, "", dep.PolicyRef{TenantID: e.tid, PolicyID: p.ID, Kind: dep.Exchange, KeyVersion: 2}))

	e.roots.failWith(e.keyA, dep.AccessDenied)
	e.roots.failWith(e.keyB, dep.AccessDenied)
	if _, err := e.svc.RequestPurge(e.ctx, e.exo, e.tid, dep.Exchange, "leaving", dep.PurgeRequest{Reason: "exit", Contact: "cfo"}); err != nil {
		t.Fatal(err)
	}
	e.roots.failWith(e.keyA, 0)
	e.roots.failWith(e.keyB, 0)
	if _, err := e.svc.ExchangePolicy(e.ctx, e.tid, "Leaving"); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("ExchangePolicy of a purge-requested policy: err = %v, want failed precondition (V16)", err)
	}
	if _, err := e.svc.WrapScopeKey(e.ctx, p.Ref(), secretKey(t), nil); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("WrapScopeKey under a purge-requested policy: err = %v, want failed precondition", err)
	}
	if _, err := e.svc.RequestPurge(e.ctx, e.exo, e.tid, dep.Exchange, "leaving", dep.PurgeRequest{Reason: "exit", Contact: "cfo"}); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("a second RequestPurge: err = %v, want conflict", err)
	}
	if _, err := e.svc.Refresh(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("Refresh of a purge-requested policy: err = %v, want failed precondition", err)
	}
	// Until the purge, system work may still read the data.
	if err := open(e.ctx, e.svc, doomed[0], dep.Purpose{System: true}); err != nil {
		t.Errorf("system read before the purge: %v", err)
	}

	_, err := e.svc.ApprovePurge(e.ctx, e.ga, e.tid, p.ID)
	wantKind(t, "approval by the tenant's Global Administrator", err, errkind.PermissionDenied, "operator")
	got, err := e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID)
	if err != nil || got.State != dep.PurgeRequested || len(got.PurgeApprovals) != 1 {
		t.Fatalf("first approval = %+v, %v", got, err)
	}
	_, err = e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID)
	wantKind(t, "a second approval by the same operator", err, errkind.Conflict, "different operator")
	got, err = e.svc.ApprovePurge(e.ctx, e.op2, e.tid, p.ID)
	if err != nil {
		t.Fatalf("second approval: %v", err)
	}
	if got.State != dep.Purged || got.PurgedAt == nil || got.PurgedScopes != len(doomed) || len(got.PurgeApprovals) != 2 {
		t.Errorf("after the purge = %+v; want a Purged tombstone that deleted %d scopes", got, len(doomed))
	}
	if e.mail.count(e.tid) != 1 || e.enc.count(e.tid) != 0 {
		t.Errorf("after the purge: %d mail and %d encryption scopes, want only the other policy's 1", e.mail.count(e.tid), e.enc.count(e.tid))
	}
	for i, it := range doomed {
		for _, sys := range []bool{false, true} {
			err := open(e.ctx, e.svc, it, dep.Purpose{System: sys})
			wantKind(t, "UnwrapScopeKey after the purge", err, errkind.NotFound, "purged")
			_ = i
		}
	}
	e.restart()
	if err := open(e.ctx, e.svc, doomed[0], dep.Purpose{System: true}); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("after a restart: err = %v, want not found", err)
	}
	if err := open(e.ctx, e.svc, kept, dep.Purpose{}); err != nil {
		t.Errorf("the other policy's data after the purge: %v", err)
	}
	if _, err := e.svc.Current(e.ctx, e.tid, p.ID); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Current after the purge: err = %v, want not found", err)
	}
	if tomb, err := e.svc.Get(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); err != nil || tomb.State != dep.Purged {
		t.Errorf("Get of the tombstone = %+v, %v", tomb, err)
	}
	err = e.store.View(e.ctx, func(tx storage.Tx) error {
		for _, prefix := range []string{"dep/keys/" + e.tid + "/" + p.ID + "/", "dep/ak/" + e.tid + "/" + p.ID, "dep/purgejob/"} {
			if left, err := tx.List(prefix, "", 0); err != nil || len(left) != 0 {
				t.Errorf("%d records left under %s (err %v), want none", len(left), prefix, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for action, n := range map[string]int{"dep/policies/purgeRequest": 1, "dep/policies/purgeApprove": 2, "dep/policies/purge": 1} {
		if got := len(e.events(e.tid, action)); got != n {
			t.Errorf("%d %s records, want %d", got, action, n)
		}
	}
	_, err = e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID)
	wantKind(t, "approving a purged policy", err, errkind.FailedPrecondition, "")
}

// TestPurgeSharePoint: a geo's policy is purged like an Exchange one; the
// geo falls back to the tenant's other policies and may register again.
func TestPurgeSharePoint(t *testing.T) {
	e := newEnv(t)
	p := e.register("EUR")
	site := e.files.add(t, e.ctx, e.tid, "EUR")
	got := e.purge(p, false)
	if got.State != dep.Purged || e.files.count(e.tid) != 0 {
		t.Fatalf("after the purge: %+v, %d sites", got, e.files.count(e.tid))
	}
	if err := open(e.ctx, e.svc, site, dep.Purpose{System: true}); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("a site key after the purge: err = %v, want not found", err)
	}
	if ref, _ := e.svc.EffectiveGeo(e.ctx, e.tid, "EUR"); ref.Kind != dep.ServiceManaged {
		t.Errorf("EffectiveGeo after the purge = %+v, want the Files default", ref)
	}
	if _, err := e.svc.SharePointPolicy(e.ctx, e.ga, e.tid, "EUR"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("SharePointPolicy after the purge: err = %v, want not found", err)
	}
	e.register("EUR")
}

var errCrash = errors.New("simulated crash while the workload deleted data")

// TestPurgeResumes: a purge interrupted between steps is resumed by a new
// process from where it stopped.
func TestPurgeResumes(t *testing.T) {
	e := newEnv(t)
	p := e.create(dep.Exchange, "crashy")
	e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	e.enc.addUnder(t, e.ctx, e.tid, "", p.Ref())
	e.enc.purgeErrs = []error{errCrash}

	e.roots.failWith(e.keyA, dep.AccessDenied)
	e.roots.failWith(e.keyB, dep.AccessDenied)
	if _, err := e.svc.RequestPurge(e.ctx, e.ga, e.tid, dep.Exchange, p.ID, dep.PurgeRequest{Reason: "r", Contact: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.ApprovePurge(e.ctx, e.op2, e.tid, p.ID)
	wantKind(t, "the approval whose purge stopped", err, errkind.Unavailable, "resumes")
	if got, _ := e.svc.Get(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); got.State != dep.Purging {
		t.Fatalf("after the interruption the policy is %s, want Purging", got.State)
	}
	if e.mail.count(e.tid) != 0 || e.enc.count(e.tid) != 1 {
		t.Fatalf("after the interruption: %d mail, %d encryption scopes; want mail deleted, encryption not", e.mail.count(e.tid), e.enc.count(e.tid))
	}

	e.restart()
	n, err := e.svc.ResumePurges(e.ctx)
	if err != nil || n != 1 {
		t.Fatalf("ResumePurges = %d, %v; want 1", n, err)
	}
	got, _ := e.svc.Get(e.ctx, e.ga, e.tid, dep.Exchange, p.ID)
	if got.State != dep.Purged || got.PurgedScopes != 2 {
		t.Errorf("after resuming: %+v; want Purged with 2 scopes", got)
	}
	if e.mail.purges != 1 || e.enc.purges != 2 || e.enc.count(e.tid) != 0 {
		t.Errorf("PurgePolicy calls: mail %d, encryption %d; want mail not asked again (1) and encryption retried (2)", e.mail.purges, e.enc.purges)
	}
	if n, err := e.svc.ResumePurges(e.ctx); err != nil || n != 0 {
		t.Errorf("ResumePurges with nothing left = %d, %v", n, err)
	}
}
