package vault_test

import (
	"bytes"
	"crypto/rsa"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestBackupRestore(t *testing.T) {
	e := newKeyEnv(t)
	second := spec("kv2") // same subscription, other vault
	e.create(t, second)
	other := spec("kv-other-sub") // same tenant, other subscription
	other.SubscriptionID = subA2
	e.create(t, other)

	v1 := e.importRSA(t, "root", "wrapKey", "unwrapKey")
	pub := e.publicKey(t, "root").(*rsa.PublicKey)
	dek := []byte("a policy key of thirty-two bytes")
	wrapped := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	e.clock.Advance(time.Hour)
	exp := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	v2 := e.createKey(t, "root", vault.KeySpec{Type: "RSA", Expires: &exp, Tags: map[string]string{"gen": "2"}})
	pol, err := e.svc.SetRotationPolicy(ctx, caller, kv, "root", vault.RotationPolicy{ExpiryTime: "P90D",
		LifetimeActions: []vault.LifetimeAction{{TimeAfterCreate: "P30D", Type: "Rotate"}}})
	if err != nil {
		t.Fatal(err)
	}

	blob, err := e.svc.BackupKey(ctx, kv, "root")
	if err != nil {
		t.Fatalf("BackupKey err = %v", err)
	}
	if bytes.Contains(blob, fixtureRSA().D.Bytes()[:16]) || strings.Contains(string(blob), "root") {
		t.Errorf("the backup blob shows its contents in the clear")
	}
	_, err = e.svc.BackupKey(ctx, kv, "nope")
	wantErr(t, "BackupKey(missing)", err, errkind.NotFound, "KeyNotFound")

	// The name exists: refused, live or soft-deleted.
	_, err = e.svc.RestoreKey(ctx, caller, kv, blob)
	wantErr(t, "RestoreKey(live name)", err, errkind.Conflict, "Conflict")
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.RestoreKey(ctx, caller, kv, blob)
	wantErr(t, "RestoreKey(deleted name)", err, errkind.Conflict, "Conflict")

	// Another subscription, damaged blobs.
	_, err = e.svc.RestoreKey(ctx, caller, "kv-other-sub", blob)
	wantErr(t, "RestoreKey(other subscription)", err, errkind.Invalid, "BadParameter")
	if !strings.Contains(errkind.Public(err), "another subscription") {
		t.Errorf("other-subscription message %q; want it to say so", errkind.Public(err))
	}
	for name, bad := range map[string][]byte{
		"flipped ciphertext": flip(blob, len(blob)-40),
		"flipped tag":        flip(blob, len(blob)-1),
		"flipped nonce":      flip(blob, 16),
		"truncated":          blob[:len(blob)/2],
		"garbage":            []byte("not a backup at all, just bytes"),
		"empty":              nil,
	} {
		_, err := e.svc.RestoreKey(ctx, caller, "kv2", bad)
		wantErr(t, "RestoreKey("+name+")", err, errkind.Invalid, "BadParameter")
		if !strings.Contains(errkind.Public(err), "The backup blob is not valid") {
			t.Errorf("RestoreKey(%s) message %q; want 'The backup blob is not valid'", name, errkind.Public(err))
		}
	}
	_, err = e.svc.RestoreKey(ctx, caller, "kv2", flip(blob, 4)) // the format byte
	wantErr(t, "RestoreKey(format 0)", err, errkind.Invalid, "BadParameter")

	// Into another vault of the subscription: all versions, same ids, kid host kv2.
	r, err := e.svc.RestoreKey(ctx, caller, "kv2", blob)
	if err != nil {
		t.Fatalf("RestoreKey(kv2) err = %v", err)
	}
	if r.Ref != (vault.KeyRef{Vault: "kv2", Name: "root", Version: v2.Ref.Version}) || r.Tags["gen"] != "2" ||
		!r.Attributes.Expires.Equal(exp) || !r.Attributes.Created.Equal(v2.Attributes.Created) {
		t.Errorf("restored = %+v %+v; want kv2/root/%s with v2's attributes and tags", r.Ref, r.Attributes, v2.Ref.Version)
	}
	vers, err := e.svc.ListKeyVersions(ctx, "kv2", "root", "", 0)
	if err != nil || len(vers.Items) != 2 {
		t.Fatalf("restored versions = %+v, %v; want 2", vers, err)
	}
	if !sameStrings([]string{vers.Items[0].Ref.Version, vers.Items[1].Ref.Version}, []string{v1.Ref.Version, v2.Ref.Version}) {
		t.Errorf("restored version ids differ from the originals")
	}
	old, err := e.svc.GetKey(ctx, "kv2", "root", v1.Ref.Version)
	if err != nil || !sameStrings(old.JWK.KeyOps, []string{"wrapKey", "unwrapKey"}) {
		t.Errorf("restored v1 = %+v, %v; want its ops kept", old.JWK.KeyOps, err)
	}
	p, err := e.svc.UnwrapKey(ctx, "kv2", "root", v1.Ref.Version, "RSA-OAEP-256", wrapped)
	if err != nil || !bytes.Equal(p.Value.Reveal(), dek) {
		t.Errorf("UnwrapKey with the restored v1 = %v; want the DEK", err)
	}
	gotPol, err := e.svc.GetRotationPolicy(ctx, "kv2", "root")
	if err != nil || gotPol.ExpiryTime != pol.ExpiryTime || len(gotPol.LifetimeActions) != len(pol.LifetimeActions) {
		t.Errorf("restored policy = %+v, %v; want %+v", gotPol, err, pol)
	}

	// Into the original vault after the purge.
	if err := e.svc.PurgeDeletedKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	r, err = e.svc.RestoreKey(ctx, caller, kv, blob)
	if err != nil || r.Ref != v2.Ref {
		t.Errorf("RestoreKey(original vault) = %+v, %v; want %+v", r.Ref, err, v2.Ref)
	}
	if ev := e.events(t, "keys/restore"); len(ev) != 2 || ev[1].Target != kv+"/root/"+v2.Ref.Version {
		t.Errorf("keys/restore events = %+v; want 2, the last on %s/root/%s", ev, kv, v2.Ref.Version)
	}
	if all := e.allAudit(t); leaksKey(all) {
		t.Errorf("the audit log holds key material")
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}
