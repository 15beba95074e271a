package vault_test

import (
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

const day = 24 * time.Hour

func TestDeleteRecover(t *testing.T) {
	e := newEnv(t)
	s := spec("recover-me")
	s.Tags = map[string]string{"workload": "exchange"}
	s.SoftDeleteRetentionInDays = ptr(30)
	orig := e.create(t, s)
	deletedAt := e.clock.Now()

	if err := e.svc.Delete(ctx, caller, subA, "rg1", "recover-me"); err != nil {
		t.Fatalf("Delete() err = %v", err)
	}
	if _, err := e.svc.Get(ctx, subA, "rg1", "recover-me"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("Get() after delete err = %v, want NotFound", err)
	}
	if _, err := e.svc.ByName(ctx, "recover-me"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("ByName() after delete err = %v, want NotFound", err)
	}
	err := e.svc.Delete(ctx, caller, subA, "rg1", "recover-me")
	wantErr(t, "second Delete()", err, errkind.NotFound, "ResourceNotFound")

	list, err := e.svc.ListDeleted(ctx, subA)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListDeleted() = %d vaults, %v; want 1", len(list), err)
	}
	d := list[0].Deleted
	if d == nil || !d.DeletionDate.Equal(deletedAt) || !d.ScheduledPurgeDate.Equal(deletedAt.Add(30*day)) || d.DeletedBy.ID != userA {
		t.Errorf("Deleted = %+v; want deletion %v, scheduled purge 30 days later, by %s", d, deletedAt, userA)
	}
	if other, _ := e.svc.ListDeleted(ctx, subB); len(other) != 0 {
		t.Errorf("ListDeleted(subB) = %d vaults, want 0", len(other))
	}
	got, err := e.svc.GetDeleted(ctx, subA, "West Europe", "RECOVER-ME")
	if err != nil || got.UID != orig.UID || got.Deleted == nil {
		t.Errorf("GetDeleted() = %+v, %v; want the deleted vault", got, err)
	}
	for _, c := range []struct{ sub, loc string }{{subA, "eastus"}, {subB, "westeurope"}} {
		_, err := e.svc.GetDeleted(ctx, c.sub, c.loc, "recover-me")
		wantErr(t, "GetDeleted("+c.sub+", "+c.loc+")", err, errkind.NotFound, "ResourceNotFound")
	}

	// Recover: only in the same subscription and location.
	rec := vault.Spec{SubscriptionID: subA, ResourceGroup: "rg1", Name: "recover-me", Location: "eastus", CreateMode: "recover"}
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, rec)
	wantErr(t, "recover into another location", err, errkind.Invalid, "LocationMismatch")
	recB := rec
	recB.SubscriptionID, recB.Location = subB, "westeurope"
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, recB)
	wantErr(t, "recover from another subscription", err, errkind.NotFound, "ResourceNotFound")

	e.clock.Advance(day)
	rec.Location = "westeurope"
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, rec)
	if err != nil || !created {
		t.Fatalf("recover = created %v, err %v; want a recovered vault", created, err)
	}
	if v.UID != orig.UID || v.Deleted != nil || v.Tags["workload"] != "exchange" || v.SoftDeleteRetentionInDays != 30 ||
		len(v.AccessPolicies) != 1 || v.SKU != orig.SKU || !v.CreatedAt.Equal(orig.CreatedAt) {
		t.Errorf("recovered = %+v; want all properties of %+v restored", v, orig)
	}
	if list, _ := e.svc.ListDeleted(ctx, subA); len(list) != 0 {
		t.Errorf("ListDeleted() after recover = %d vaults, want 0", len(list))
	}
	if _, err := e.svc.Get(ctx, subA, "rg1", "recover-me"); err != nil {
		t.Errorf("Get() after recover err = %v", err)
	}
	// Recovering a live vault is refused.
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, rec)
	wantErr(t, "recover a live vault", err, errkind.Conflict, "VaultNotDeleted")
	// The sweep does not touch a recovered vault.
	e.clock.Advance(60 * day)
	if n, err := e.svc.Sweep(ctx); n != 0 || err != nil {
		t.Errorf("Sweep() after recover = %d, %v; want 0, nil", n, err)
	}
	if _, err := e.svc.Get(ctx, subA, "rg1", "recover-me"); err != nil {
		t.Errorf("Get() after sweep err = %v", err)
	}
}

func TestRecoverIntoNewResourceGroup(t *testing.T) {
	e := newEnv(t)
	e.create(t, spec("moved-vault"))
	if err := e.svc.DeleteResourcesIn(ctx, caller, subA, "rg1"); err != nil {
		t.Fatal(err)
	}
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, vault.Spec{SubscriptionID: subA, ResourceGroup: "rg2",
		Name: "moved-vault", Location: "westeurope", CreateMode: "Recover"})
	if err != nil || !created || v.ResourceGroup != "rg2" {
		t.Fatalf("recover into rg2 = %q, %v, %v; want rg2", v.ResourceGroup, created, err)
	}
	if n, _ := e.svc.CountInResourceGroup(ctx, subA, "rg2"); n != 1 {
		t.Errorf("CountInResourceGroup(rg2) = %d, want 1", n)
	}
}

func TestPurgeRules(t *testing.T) {
	tests := []struct {
		name      string
		protect   bool // purge protection on the vault
		protected bool // subscription protected
		wait      time.Duration
		code      string // "" means the purge succeeds
	}{
		{"plain vault", false, false, 0, ""},
		{"purge protection", true, false, 0, "PurgeProtectionEnabled"},
		{"purge protection, one day before the date", true, false, 89 * day, "PurgeProtectionEnabled"},
		{"purge protection, scheduled date reached", true, false, 90 * day, ""},
		{"protected subscription", false, true, 0, "SubscriptionProtected"},
		{"protected subscription, scheduled date reached", false, true, 90 * day, ""},
		{"both", true, true, 0, "PurgeProtectionEnabled"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := spec("purge-vault")
			s.EnablePurgeProtection = ptr(tc.protect)
			v := e.create(t, s)
			e.subs.set(subA, func(f *fakeSub) { f.protected = tc.protected })
			if err := e.svc.Delete(ctx, caller, subA, "rg1", "purge-vault"); err != nil {
				t.Fatal(err)
			}
			// Something stored under the vault, as its keys will be.
			child := vault.DataPrefix(v.UID) + "key/k1"
			if err := e.store.Update(ctx, func(tx storage.Tx) error {
				_, err := tx.Put(child, []byte("x"), storage.MustNotExist)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(tc.wait)
			err := e.svc.Purge(ctx, caller, subA, "westeurope", "purge-vault")
			if tc.code != "" {
				wantErr(t, "Purge()", err, errkind.Conflict, tc.code)
				if _, err := e.svc.GetDeleted(ctx, subA, "westeurope", "purge-vault"); err != nil {
					t.Errorf("GetDeleted() after refused purge err = %v", err)
				}
				if !strings.Contains(errkind.Public(err), "purge") {
					t.Errorf("message %q does not explain the refusal", errkind.Public(err))
				}
				return
			}
			if err != nil {
				t.Fatalf("Purge() err = %v", err)
			}
			if _, err := e.svc.GetDeleted(ctx, subA, "westeurope", "purge-vault"); !errkind.Is(err, errkind.NotFound) {
				t.Errorf("GetDeleted() after purge err = %v, want NotFound", err)
			}
			if _, err := storage.Get(ctx, e.store, child); !errkind.Is(err, errkind.NotFound) {
				t.Errorf("the vault's contents survived the purge: %v", err)
			}
			if len(e.purged) != 1 || e.purged[0] != "purge-vault" {
				t.Errorf("OnPurge saw %v, want [purge-vault]", e.purged)
			}
			e.create(t, spec("purge-vault")) // the name is free again
		})
	}
	t.Run("live vault", func(t *testing.T) {
		e := newEnv(t)
		e.create(t, spec("live-vault"))
		err := e.svc.Purge(ctx, caller, subA, "westeurope", "live-vault")
		wantErr(t, "Purge() of a live vault", err, errkind.NotFound, "ResourceNotFound")
	})
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	mk := func(name string, days int, protect bool) {
		s := spec(name)
		s.SoftDeleteRetentionInDays = ptr(days)
		s.EnablePurgeProtection = ptr(protect)
		e.create(t, s)
		if err := e.svc.Delete(ctx, caller, subA, "rg1", name); err != nil {
			t.Fatal(err)
		}
	}
	e.subs.set(subA, func(f *fakeSub) { f.protected = true })
	mk("sweep-7", 7, true) // purge protection and a protected subscription do not stop the schedule
	mk("sweep-30", 30, false)
	e.create(t, spec("sweep-live"))

	for _, step := range []struct {
		advance time.Duration
		purged  int
		left    int
	}{
		{0, 0, 2},
		{7*day - time.Second, 0, 2},
		{time.Second, 1, 1},
		{22 * day, 0, 1},
		{day, 1, 0},
		{365 * day, 0, 0},
	} {
		e.clock.Advance(step.advance)
		n, err := e.svc.Sweep(ctx)
		left, _ := e.svc.ListDeleted(ctx, subA)
		if n != step.purged || err != nil || len(left) != step.left {
			t.Errorf("at %v: Sweep() = %d, %v with %d deleted left; want %d purged, %d left",
				e.clock.Now().Format(time.DateTime), n, err, len(left), step.purged, step.left)
		}
	}
	if _, err := e.svc.Get(ctx, subA, "rg1", "sweep-live"); err != nil {
		t.Errorf("Sweep() touched a live vault: %v", err)
	}
	e.create(t, spec("sweep-7")) // the name is reusable after the scheduled purge
	page, err := e.audit.List(ctx, tenantA, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var system int
	for _, ev := range page.Events {
		if ev.Action == "vault/vaults/purge" && ev.Actor.Type == "system" {
			system++
		}
	}
	if system != 2 {
		t.Errorf("audit has %d scheduled purges by the system, want 2", system)
	}
}

func TestChangesAreAudited(t *testing.T) {
	e := newEnv(t)
	e.create(t, spec("audited-vault"))
	if _, err := e.svc.Update(ctx, caller, subA, "rg1", "audited-vault", vault.Patch{Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.UpdateAccessPolicies(ctx, caller, subA, "rg1", "audited-vault", "add", []vault.AccessPolicy{
		{TenantID: tenantA, ObjectID: spX, Permissions: vault.Permissions{Keys: []string{"wrapKey"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, caller, subA, "rg1", "audited-vault"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.svc.CreateOrUpdate(ctx, caller, vault.Spec{SubscriptionID: subA, ResourceGroup: "rg1",
		Name: "audited-vault", Location: "westeurope", CreateMode: "recover"}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Delete(ctx, caller, subA, "rg1", "audited-vault"); err != nil {
		t.Fatal(err)
	}
	e.subs.set(subA, func(f *fakeSub) { f.protected = true })
	_ = e.svc.Purge(ctx, caller, subA, "westeurope", "audited-vault") // refused
	e.subs.set(subA, func(f *fakeSub) { f.protected = false })
	if err := e.svc.Purge(ctx, caller, subA, "westeurope", "audited-vault"); err != nil {
		t.Fatal(err)
	}
	page, err := e.audit.List(ctx, tenantA, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range page.Events {
		if ev.Actor.ID != userA || !strings.HasSuffix(ev.Target, "/vaults/audited-vault") {
			t.Errorf("event %+v: want actor %s and the vault as target", ev, userA)
		}
		got = append(got, ev.Action+":"+string(ev.Result))
	}
	want := []string{
		"vault/vaults/create:success", "vault/vaults/update:success", "vault/vaults/accessPolicies/update:success",
		"vault/vaults/delete:success", "vault/vaults/recover:success", "vault/vaults/delete:success",
		"vault/vaults/purge:" + string(audit.Failure), "vault/vaults/purge:success",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("audit = %v\nwant   %v", got, want)
	}
	// A refused change leaves no success record.
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, func() vault.Spec { s := spec("audited-vault"); s.SKU.Name = "gold"; return s }())
	if err == nil {
		t.Fatal("create with a bad SKU succeeded")
	}
	if again, _ := e.audit.List(ctx, tenantA, "", 0); len(again.Events) != len(page.Events) {
		t.Errorf("a refused create added %d audit records", len(again.Events)-len(page.Events))
	}
}
