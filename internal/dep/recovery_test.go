package dep_test

import (
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
)

// TestRecovery: a customer who lost both root keys is served from the
// availability key, user requests included, while the operator has the
// policy in recovery; before and after, user requests are refused.
func TestRecovery(t *testing.T) {
	e := newEnv(t)
	exo := e.create(dep.Exchange, "mailboxes")
	spo := e.register("")
	it := e.mail.addUnder(t, e.ctx, e.tid, "", exo.Ref())
	user := dep.Purpose{RequestID: "req-user"}
	lose := func() {
		e.restart()
		e.roots.failWith(e.keyA, dep.NotFound)
		e.roots.failWith(e.keyB, dep.NotFound)
	}
	lose()
	wantKind(t, "a user request after the keys are lost", open(e.ctx, e.svc, it, user), errkind.PermissionDenied, "revoked access to both root keys")

	if _, err := e.svc.SetRecovery(e.ctx, e.comp, e.tid, exo.ID, true, "lost both vaults"); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("the customer's compliance administrator put the policy into recovery: err = %v, want permission denied", err)
	}
	if _, err := e.svc.SetRecovery(e.ctx, e.op1, e.tid, exo.ID, true, " "); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("recovery without a reason: err = %v, want invalid", err)
	}
	if _, err := e.svc.SetRecovery(e.ctx, e.op1, e.tid, spo.ID, true, "lost"); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("recovery of a SharePoint policy: err = %v, want failed precondition (Restore is its recovery)", err)
	}

	p, err := e.svc.SetRecovery(e.ctx, e.op1, e.tid, exo.ID, true, "customer lost both vaults (ticket 42)")
	if err != nil || p.Recovery == nil || p.Recovery.By.ID == "" {
		t.Fatalf("SetRecovery(on) = %+v, %v", p.Recovery, err)
	}
	before := len(e.events(e.tid, dep.ActivityAKFallback))
	if err := open(e.ctx, e.svc, it, user); err != nil {
		t.Fatalf("a user request in recovery: %v", err)
	}
	recs := e.events(e.tid, dep.ActivityAKFallback)[before:]
	if len(recs) != 1 || recs[0].RequestID != "req-user" || !strings.Contains(recs[0].Reason, "in recovery") {
		t.Fatalf("availability key records in recovery = %+v, want one naming the recovery and the request", recs)
	}
	if n := len(e.events(e.tid, "dep/policies/recoveryStart")); n != 1 {
		t.Errorf("%d recovery start records, want 1", n)
	}

	if _, err := e.svc.SetRecovery(e.ctx, e.op2, e.tid, exo.ID, false, ""); err != nil {
		t.Fatal(err)
	}
	lose()
	wantKind(t, "a user request after the recovery ended", open(e.ctx, e.svc, it, user), errkind.PermissionDenied, "revoked access to both root keys")

	// A purge request ends a recovery and refuses a new one.
	if _, err := e.svc.SetRecovery(e.ctx, e.op1, e.tid, exo.ID, true, "again"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RequestPurge(e.ctx, e.comp, e.tid, dep.Exchange, exo.ID, dep.PurgeRequest{Reason: "leaving", Contact: "legal@contoso.com", Force: true}); err != nil {
		t.Fatalf("RequestPurge: %v", err)
	}
	got, err := e.svc.Get(e.ctx, e.comp, e.tid, dep.Exchange, exo.ID)
	if err != nil || got.Recovery != nil {
		t.Errorf("after a purge request the recovery is %+v (err %v), want ended", got.Recovery, err)
	}
	if _, err := e.svc.SetRecovery(e.ctx, e.op1, e.tid, exo.ID, true, "again"); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("recovery of a purge-requested policy: err = %v, want failed precondition", err)
	}
}
