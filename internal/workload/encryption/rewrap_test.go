package encryption

import (
	"context"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
)

func (e *env) progress(ref dep.PolicyRef) (int, int) {
	e.t.Helper()
	done, total, err := e.svc.Progress(e.ctx, e.tid, "", ref)
	if err != nil {
		e.t.Fatalf("Progress: %v", err)
	}
	return done, total
}

// TestRewrapOnPolicyChange assigns a customer policy to a tenant with
// scopes under the service-managed default: Sweep rewraps every scope key
// under it, items encrypted before stay readable, and the old policy is no
// longer needed to read them.
func TestRewrapOnPolicyChange(t *testing.T) {
	e := newEnv(t)
	e.scope("one", e.alice.ID)
	e.scope("two", e.alice.ID)
	if _, err := e.svc.CreateScope(e.ctx, e.otherAdmin, e.otherTID, ScopeSpec{Name: "one"}); err != nil {
		t.Fatal(err)
	}
	old := e.encrypt(e.alice, "one", []byte("written under the default"), []byte("aad"))
	_, oldSealed, err := e.svc.GenerateDataKey(e.ctx, e.alice, e.tid, "two")
	if err != nil {
		t.Fatal(err)
	}

	mdep := dep.PolicyRef{TenantID: e.tid, PolicyID: "mdep-1", Kind: dep.M365, KeyVersion: 1}
	if d, n := e.progress(mdep); d != 0 || n != 2 {
		t.Errorf("Progress before = %d of %d, want 0 of 2", d, n)
	}
	// Nothing to do while the effective policy is unchanged.
	if n, err := e.svc.Sweep(e.ctx); n != 0 || err != nil {
		t.Errorf("Sweep with nothing stale = %d, %v", n, err)
	}
	e.dep.assign(mdep)
	sys := e.dep.systemUnwraps.Load()
	n, err := e.svc.Sweep(e.ctx)
	if n != 2 || err != nil {
		t.Fatalf("Sweep = %d, %v; want the 2 scopes of the tenant rewrapped (the other tenant's stays)", n, err)
	}
	if d := e.dep.systemUnwraps.Load() - sys; d != 2 {
		t.Errorf("the rewrap made %d system unwraps, want 2", d)
	}
	if d, n := e.progress(mdep); d != 2 || n != 2 {
		t.Errorf("Progress after = %d of %d, want 2 of 2", d, n)
	}
	sc, err := e.svc.Scope(e.ctx, e.admin, e.tid, "one")
	if err != nil || !sc.Policy.Same(mdep) || sc.KeyVersion != 1 {
		t.Errorf("Scope after rewrap = %+v, %v; want key version 1 under %+v", sc, err, mdep)
	}
	if !e.hasEvent(e.tid, actionRewrap, "one", audit.Success) {
		t.Error("the rewrap is not in the audit log")
	}
	other, err := e.svc.Scope(e.ctx, e.otherAdmin, e.otherTID, "one")
	if err != nil || !other.Policy.Same(defaultRef(e.otherTID)) {
		t.Errorf("the other tenant's scope = %+v, %v; want it left under its default", other, err)
	}
	// A second sweep finds nothing.
	if n, err := e.svc.Sweep(e.ctx); n != 0 || err != nil {
		t.Errorf("second Sweep = %d, %v", n, err)
	}

	// The old policy's keys are revoked: the rewrapped scopes do not need
	// them, and the cache was dropped, so this really unwraps under mdep.
	e.dep.revoke(defaultRef(e.tid).PolicyID)
	u := e.dep.unwraps.Load()
	pt, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "one", nil, old, []byte("aad"))
	if err != nil || string(pt) != "written under the default" {
		t.Errorf("Decrypt of an item from before the rewrap = %q, %v", pt, err)
	}
	if e.dep.unwraps.Load() != u+1 {
		t.Error("the rewrap left the old scope key in the cache")
	}
	k, err := e.svc.DecryptDataKey(e.ctx, e.alice, e.tid, "two", oldSealed)
	if err != nil {
		t.Errorf("DecryptDataKey of a key from before the rewrap: %v", err)
	}
	k.Wipe()
}

func TestRunRewrapsKickedTenant(t *testing.T) {
	e := newEnv(t)
	e.scope("kicked", e.alice.ID)
	mdep := dep.PolicyRef{TenantID: e.tid, PolicyID: "mdep-2", Kind: dep.M365, KeyVersion: 1}
	e.dep.assign(mdep)

	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- e.svc.Run(ctx) }()
	e.svc.Kick("not-a-tenant") // ignored
	e.svc.Kick(e.tid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if d, _ := e.progress(mdep); d == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not rewrap the kicked tenant")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A policy key roll (new version of the same policy) is picked up too.
	rolled := mdep
	rolled.KeyVersion = 2
	e.dep.assign(rolled)
	e.svc.Kick(e.tid)
	for {
		if d, _ := e.progress(rolled); d == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not rewrap after the policy key rolled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after its context ended", err)
	}
}

func TestRewrapSkipsChangedScope(t *testing.T) {
	e := newEnv(t)
	e.scope("gone", e.alice.ID)
	e.scope("again", e.alice.ID)
	mdep := dep.PolicyRef{TenantID: e.tid, PolicyID: "mdep-3", Kind: dep.M365, KeyVersion: 1}
	// Deleted before its rewrap: nothing to do.
	if err := e.svc.DeleteScope(e.ctx, e.admin, e.tid, "gone"); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.svc.rewrap(e.ctx, stale{e.tid, "gone", mdep}); ok || err != nil {
		t.Errorf("rewrap of a deleted scope = %v, %v; want nothing done", ok, err)
	}
	// Already under the policy: nothing to do.
	e.dep.assign(mdep)
	if ok, err := e.svc.rewrap(e.ctx, stale{e.tid, "again", mdep}); !ok || err != nil {
		t.Fatalf("rewrap = %v, %v", ok, err)
	}
	if ok, err := e.svc.rewrap(e.ctx, stale{e.tid, "again", mdep}); ok || err != nil {
		t.Errorf("rewrap of a scope already under the policy = %v, %v", ok, err)
	}
}

func TestProgressArguments(t *testing.T) {
	e := newEnv(t)
	_, _, err := e.svc.Progress(e.ctx, e.tid, "NAM", defaultRef(e.tid))
	wantKind(t, "Progress with a geo", err, errkind.Invalid)
	_, _, err = e.svc.Progress(e.ctx, "nope", "", defaultRef(e.tid))
	wantKind(t, "Progress of a bad tenant", err, errkind.Invalid)
	if d, n := e.progress(defaultRef(e.tid)); d != 0 || n != 0 {
		t.Errorf("Progress of a tenant without scopes = %d of %d", d, n)
	}
	if e.svc.Workload() != dep.Encryption {
		t.Errorf("Workload() = %s", e.svc.Workload())
	}
}

func TestPurgePolicy(t *testing.T) {
	e := newEnv(t)
	e.scope("stays", e.alice.ID)
	mdep := dep.PolicyRef{TenantID: e.tid, PolicyID: "exo-1", Kind: dep.Exchange, KeyVersion: 1}
	e.dep.assign(mdep)
	e.scope("purged-a", e.alice.ID)
	e.scope("purged-b", e.alice.ID)
	ct := e.encrypt(e.alice, "purged-a", []byte("doomed"), nil)
	kept := e.encrypt(e.alice, "stays", []byte("kept"), nil)

	n, err := e.svc.PurgePolicy(e.ctx, e.tid, "exo-1")
	if n != 2 || err != nil {
		t.Fatalf("PurgePolicy = %d, %v; want the 2 scopes under it", n, err)
	}
	if !e.hasEvent(e.tid, actionPurge, "purged-a", audit.Success) || !e.hasEvent(e.tid, actionPurge, "purged-b", audit.Success) {
		t.Error("the purge is not in the audit log")
	}
	_, err = e.svc.Decrypt(e.ctx, e.alice, e.tid, "purged-a", nil, ct, nil)
	wantKind(t, "Decrypt in a purged scope", err, errkind.NotFound)
	if pt, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "stays", nil, kept, nil); err != nil || string(pt) != "kept" {
		t.Errorf("Decrypt in a scope of another policy = %q, %v", pt, err)
	}
	if n, err := e.svc.PurgePolicy(e.ctx, e.tid, "exo-1"); n != 0 || err != nil {
		t.Errorf("second PurgePolicy = %d, %v", n, err)
	}
	_, err = e.svc.PurgePolicy(e.ctx, e.tid, "")
	wantKind(t, "PurgePolicy without a policy id", err, errkind.Invalid)
}

// TestRunSweeps checks that Run sweeps every SweepInterval without a kick.
func TestRunSweeps(t *testing.T) {
	e := newEnv(t)
	e.svc = New(Options{Store: e.store, Audit: e.audit, Policies: e.dep, Directory: e.dir, SweepInterval: 10 * time.Millisecond, Now: e.clock.Now})
	e.scope("swept", e.alice.ID)
	mdep := dep.PolicyRef{TenantID: e.tid, PolicyID: "mdep-4", Kind: dep.M365, KeyVersion: 1}
	e.dep.assign(mdep)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- e.svc.Run(ctx) }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if d, _ := e.progress(mdep); d == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
