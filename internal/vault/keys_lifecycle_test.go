package vault_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestDeleteRecoverPurgeKey(t *testing.T) {
	e := newKeyEnv(t)
	k := e.importRSA(t, "root")
	pub := e.publicKey(t, "root").(*rsa.PublicKey)
	dek := []byte("data encryption key, 32 bytes!!!")
	wrapped := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	deletedAt := day0(e)

	d, err := e.svc.DeleteKey(ctx, caller, kv, "root")
	if err != nil {
		t.Fatalf("DeleteKey err = %v", err)
	}
	if d.Deleted == nil || !d.Deleted.DeletedDate.Equal(deletedAt) || !d.Deleted.ScheduledPurgeDate.Equal(deletedAt.Add(90*day)) ||
		d.Ref != k.Ref || d.Attributes.RecoverableDays != 90 {
		t.Errorf("DeleteKey = %+v deleted %+v; want deleted now, purge in 90 days, same kid", d.Ref, d.Deleted)
	}
	_, err = e.svc.GetKey(ctx, kv, "root", "")
	wantErr(t, "GetKey after delete", err, errkind.NotFound, "KeyNotFound")
	_, err = e.svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped)
	wantErr(t, "UnwrapKey after delete", err, errkind.NotFound, "KeyNotFound")
	_, err = e.svc.DeleteKey(ctx, caller, kv, "root")
	wantErr(t, "second DeleteKey", err, errkind.NotFound, "KeyNotFound")

	got, err := e.svc.GetDeletedKey(ctx, kv, "root")
	if err != nil || got.Deleted == nil || got.Ref != k.Ref || got.JWK.HasPrivate() {
		t.Errorf("GetDeletedKey = %+v, %v; want the deleted key without private parts", got, err)
	}
	page, err := e.svc.ListDeletedKeys(ctx, kv, "", 0)
	if err != nil || len(page.Items) != 1 || page.Items[0].Deleted == nil || page.Items[0].Ref.Name != "root" {
		t.Errorf("ListDeletedKeys = %+v, %v; want root", page, err)
	}
	if live, _ := e.svc.ListKeys(ctx, kv, "", 0); len(live.Items) != 0 {
		t.Errorf("ListKeys after delete = %d, want 0", len(live.Items))
	}
	_, err = e.svc.CreateKey(ctx, caller, kv, "root", vault.KeySpec{Type: "EC"})
	wantErr(t, "CreateKey on a deleted name", err, errkind.Conflict, "ObjectIsDeletedButRecoverable")
	_, err = e.svc.ImportKey(ctx, caller, kv, "ROOT", vault.KeyImport{Key: ecJWK(fixtureEC())})
	wantErr(t, "ImportKey on a deleted name", err, errkind.Conflict, "ObjectIsDeletedButRecoverable")

	e.clock.Advance(day)
	r, err := e.svc.RecoverDeletedKey(ctx, caller, kv, "root")
	if err != nil || r.Ref != k.Ref || r.Deleted != nil {
		t.Fatalf("RecoverDeletedKey = %+v, %v; want the same kid", r.Ref, err)
	}
	p, err := e.svc.UnwrapKey(ctx, kv, "root", k.Ref.Version, "RSA-OAEP-256", wrapped)
	if err != nil || !bytes.Equal(p.Value.Reveal(), dek) {
		t.Errorf("UnwrapKey after recover = %v; want the DEK", err)
	}
	_, err = e.svc.GetDeletedKey(ctx, kv, "root")
	wantErr(t, "GetDeletedKey after recover", err, errkind.NotFound, "KeyNotFound")
	_, err = e.svc.RecoverDeletedKey(ctx, caller, kv, "root")
	wantErr(t, "second recover", err, errkind.NotFound, "KeyNotFound")

	if _, err := e.svc.DeleteKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.PurgeDeletedKey(ctx, caller, kv, "root"); err != nil {
		t.Fatalf("PurgeDeletedKey err = %v", err)
	}
	err = e.svc.PurgeDeletedKey(ctx, caller, kv, "root")
	wantErr(t, "second purge", err, errkind.NotFound, "KeyNotFound")
	if _, err := e.svc.GetDeletedKey(ctx, kv, "root"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetDeletedKey after purge err = %v, want NotFound", err)
	}
	again := e.createKey(t, "root", vault.KeySpec{Type: "EC"})
	if again.Ref.Version == k.Ref.Version {
		t.Errorf("re-created key reuses version %s", k.Ref.Version)
	}
	if vers, _ := e.svc.ListKeyVersions(ctx, kv, "root", "", 0); len(vers.Items) != 1 {
		t.Errorf("re-created key has %d versions, want 1 (the purged ones are gone)", len(vers.Items))
	}
	assertNoDue(t, e, 0)

	// The audit trail names every change, with the vault's tenant, and no key material.
	for _, a := range []string{"keys/import", "keys/delete", "keys/recover", "keys/purge", "keys/create"} {
		evs := e.events(t, a)
		if len(evs) == 0 {
			t.Errorf("no %s event", a)
			continue
		}
		if ev := evs[0]; ev.Actor.ID != userA || !strings.HasPrefix(ev.Target, kv+"/root/") || ev.TenantID != tenantA {
			t.Errorf("%s event = %+v; want actor %s, target %s/root/<version>", a, ev, userA, kv)
		}
	}
	if all := e.allAudit(t); leaksKey(all) {
		t.Errorf("the audit log holds key material: %s", all)
	}
}

// leaksKey reports whether s holds the fixture's private exponent in any
// common encoding.
func leaksKey(s string) bool {
	d := fixtureRSA().D.Bytes()[:24]
	for _, enc := range []string{hex.EncodeToString(d), base64.StdEncoding.EncodeToString(d)[:30],
		base64.RawURLEncoding.EncodeToString(d)[:30]} {
		if strings.Contains(s, enc) {
			return true
		}
	}
	return false
}

// assertNoDue checks the number of entries in the key due index.
func assertNoDue(t *testing.T, e *env, want int) {
	t.Helper()
	var n int
	_ = e.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List("vault/kdue/", "", 0)
		n = len(entries)
		return err
	})
	if n != want {
		t.Errorf("key due index has %d entries, want %d", n, want)
	}
}

func TestPurgeProtectionAndScheduledPurge(t *testing.T) {
	e := newEnv(t)
	pp := spec("kv-protected")
	pp.EnablePurgeProtection = ptr(true)
	pp.SoftDeleteRetentionInDays = ptr(7)
	e.create(t, pp)
	e.create(t, spec("kv-sub-protected")) // subA gets the mandatory retention period below
	for _, name := range []string{"kv-protected", "kv-sub-protected"} {
		if _, err := e.svc.CreateKey(ctx, caller, name, "k", vault.KeySpec{Type: "EC"}); err != nil {
			t.Fatal(err)
		}
	}
	e.subs.set(subA, func(s *fakeSub) { s.protected = true })

	cases := []struct {
		vault, level, code string
		days               int
	}{
		{"kv-protected", "CustomizedRecoverable+ProtectedSubscription", "SubscriptionProtected", 7},
		{"kv-sub-protected", "Recoverable+ProtectedSubscription", "SubscriptionProtected", 90},
	}
	for _, c := range cases {
		d, err := e.svc.DeleteKey(ctx, caller, c.vault, "k")
		if err != nil {
			t.Fatalf("DeleteKey(%s) err = %v", c.vault, err)
		}
		if d.Attributes.RecoveryLevel != c.level || d.Attributes.RecoverableDays != c.days {
			t.Errorf("%s: recovery %s/%d, want %s/%d", c.vault, d.Attributes.RecoveryLevel, d.Attributes.RecoverableDays, c.level, c.days)
		}
		err = e.svc.PurgeDeletedKey(ctx, caller, c.vault, "k")
		wantErr(t, "PurgeDeletedKey("+c.vault+")", err, errkind.PermissionDenied, c.code)
		if !strings.Contains(errkind.Public(err), "scheduled purge date") {
			t.Errorf("purge refusal %q; want it to name the scheduled purge date", errkind.Public(err))
		}
	}
	// Purge protection alone (the subscription no longer protected).
	e.subs.set(subA, func(s *fakeSub) { s.protected = false })
	err := e.svc.PurgeDeletedKey(ctx, caller, "kv-protected", "k")
	wantErr(t, "PurgeDeletedKey(purge protection)", err, errkind.PermissionDenied, "PurgeProtectionEnabled")
	if ev := e.events(t, "keys/purge"); len(ev) != 3 || ev[0].Result != "failure" {
		t.Errorf("keys/purge events = %+v; want 3 refusals recorded", ev)
	}
	if _, err := e.svc.GetDeletedKey(ctx, "kv-protected", "k"); err != nil {
		t.Errorf("the refused purge removed the key: %v", err)
	}

	// The scheduled purge ignores protection.
	e.subs.set(subA, func(s *fakeSub) { s.protected = true })
	if n, err := e.svc.SweepKeys(ctx); n != 0 || err != nil {
		t.Errorf("SweepKeys before the date = %d, %v; want 0", n, err)
	}
	e.clock.Advance(7 * day)
	if n, err := e.svc.SweepKeys(ctx); n != 1 || err != nil {
		t.Errorf("SweepKeys after 7 days = %d, %v; want 1 (kv-protected's key)", n, err)
	}
	if _, err := e.svc.GetDeletedKey(ctx, "kv-protected", "k"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetDeletedKey after the scheduled purge err = %v, want NotFound", err)
	}
	if _, err := e.svc.GetDeletedKey(ctx, "kv-sub-protected", "k"); err != nil {
		t.Errorf("the 90-day key was purged early: %v", err)
	}
	e.clock.Advance(83 * day)
	if n, err := e.svc.SweepKeys(ctx); n != 1 || err != nil {
		t.Errorf("SweepKeys after 90 days = %d, %v; want 1", n, err)
	}
	assertNoDue(t, e, 0)
	var system int
	for _, ev := range e.events(t, "keys/purge") {
		if ev.Actor.Type == "system" && ev.Result == "success" {
			system++
		}
	}
	if system != 2 {
		t.Errorf("%d scheduled purges audited as the system, want 2", system)
	}
	if _, err := e.svc.CreateKey(ctx, caller, "kv-protected", "k", vault.KeySpec{Type: "EC"}); err != nil {
		t.Errorf("CreateKey after the scheduled purge err = %v", err)
	}
}

func TestKeyRecoveryLevels(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name      string
		retention int
		pp        bool
		level     string
	}{
		{"kv-default", 90, false, "Recoverable+Purgeable"},
		{"kv-thirty", 30, false, "CustomizedRecoverable+Purgeable"},
		{"kv-pp", 90, true, "Recoverable"},
		{"kv-pp-ten", 10, true, "CustomizedRecoverable"},
	}
	for _, c := range cases {
		s := spec(c.name)
		s.SoftDeleteRetentionInDays = ptr(c.retention)
		s.EnablePurgeProtection = ptr(c.pp)
		e.create(t, s)
		k, err := e.svc.CreateKey(ctx, caller, c.name, "k", vault.KeySpec{Type: "EC"})
		if err != nil {
			t.Fatal(err)
		}
		if a := k.Attributes; a.RecoveryLevel != c.level || a.RecoverableDays != c.retention {
			t.Errorf("%s: %s/%d, want %s/%d", c.name, a.RecoveryLevel, a.RecoverableDays, c.level, c.retention)
		}
	}
}

// TestDeleteWithoutSoftDelete plants a legacy vault (soft delete off, which
// can no longer be created): deleting a key purges it at once.
func TestDeleteWithoutSoftDelete(t *testing.T) {
	e := newKeyEnv(t)
	e.createKey(t, "k", vault.KeySpec{Type: "EC"})
	err := e.store.Update(ctx, func(tx storage.Tx) error {
		ent, err := tx.Get("vault/v/" + kv)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(ent.Value, &m); err != nil {
			return err
		}
		m["enableSoftDelete"] = false
		b, _ := json.Marshal(m)
		_, err = tx.Put(ent.Key, b, ent.Version)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := e.service(time.Second) // a node that has not cached the old vault
	d, err := svc.DeleteKey(ctx, caller, kv, "k")
	if err != nil {
		t.Fatalf("DeleteKey err = %v", err)
	}
	if d.Attributes.RecoveryLevel != "Purgeable" || d.Deleted == nil || !d.Deleted.ScheduledPurgeDate.IsZero() {
		t.Errorf("DeleteKey = %+v %+v; want Purgeable and no scheduled purge", d.Attributes, d.Deleted)
	}
	if _, err := svc.GetDeletedKey(ctx, kv, "k"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("GetDeletedKey err = %v, want NotFound: the key was purged", err)
	}
	if _, err := svc.CreateKey(ctx, caller, kv, "k", vault.KeySpec{Type: "EC"}); err != nil {
		t.Errorf("CreateKey after the purge err = %v", err)
	}
	assertNoDue(t, e, 0)
}

// TestVaultPurgeTakesKeys: purging a vault removes its keys, their
// versions and their due entries.
func TestVaultPurgeTakesKeys(t *testing.T) {
	e := newKeyEnv(t)
	e.createKey(t, "live", vault.KeySpec{Type: "EC"})
	e.createKey(t, "gone", vault.KeySpec{Type: "EC"})
	if _, err := e.svc.SetRotationPolicy(ctx, caller, kv, "live", vault.RotationPolicy{
		LifetimeActions: []vault.LifetimeAction{{TimeAfterCreate: "P30D", Type: "rotate"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "gone"); err != nil {
		t.Fatal(err)
	}
	assertNoDue(t, e, 2)
	if err := e.svc.Delete(ctx, caller, subA, "rg1", kv); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.GetKey(ctx, kv, "live", "")
	wantErr(t, "GetKey in a deleted vault", err, errkind.NotFound, "VaultNotFound")
	if err := e.svc.Purge(ctx, caller, subA, "westeurope", kv); err != nil {
		t.Fatalf("Purge err = %v", err)
	}
	assertNoDue(t, e, 0)
	var left int
	_ = e.store.View(context.Background(), func(tx storage.Tx) error {
		entries, err := tx.List("vault/data/", "", 0)
		left = len(entries)
		return err
	})
	if left != 0 {
		t.Errorf("%d entries left under vault/data/ after the purge", left)
	}
}
