package dep_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
	"github.com/customerkey/customerkey/internal/storage"
)

func openHSM(t *testing.T, c hsm.Config) *hsm.HSM {
	t.Helper()
	h, err := hsm.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("hsm.Open: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// newHSMEnv is newEnv whose Service keeps availability keys in a fresh
// SoftHSM token (skipped, saying why, without CUSTOMERKEY_TEST_PKCS11_MODULE).
func newHSMEnv(t *testing.T) (*env, hsm.Config, *hsm.HSM) {
	t.Helper()
	c := hsmtest.NewToken(t)
	h := openHSM(t, c)
	return newEnvWith(t, func(o *dep.Options) { o.HSM = h }), c, h
}

// akRecord reads the stored availability key record of policy id as it is
// on disk under the barrier: what anyone holding the store's keys sees.
func (e *env) akRecord(id string) []byte {
	e.t.Helper()
	var raw []byte
	err := e.store.View(e.ctx, func(tx storage.Tx) error {
		en, err := tx.Get("dep/ak/" + e.tid + "/" + id)
		raw = append([]byte(nil), en.Value...)
		return err
	})
	if err != nil {
		e.t.Fatalf("reading the availability key record: %v", err)
	}
	return raw
}

// hsmObjectOf is the CKA_ID an availability key record names; it fails
// the test when the record is not an HSM reference.
func hsmObjectOf(t *testing.T, raw []byte) []byte {
	t.Helper()
	var r struct {
		Kind string `json:"kind"`
		ID   []byte `json:"id"`
	}
	if len(raw) == 32 || json.Unmarshal(raw, &r) != nil || r.Kind != "hsm" || len(r.ID) == 0 {
		t.Fatalf("the availability key record is %d bytes, not a reference to an HSM object", len(raw))
	}
	return r.ID
}

// availableCopy reads the availability key copy of version v of policy id.
func (e *env) availableCopy(id string, v int) []byte {
	e.t.Helper()
	var kv struct {
		Available []byte `json:"available"`
	}
	err := e.store.View(e.ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, fmt.Sprintf("dep/keys/%s/%s/%010d", e.tid, id, v), &kv)
		return err
	})
	if err != nil || len(kv.Available) == 0 {
		e.t.Fatalf("reading key version %d: %v (copy of %d bytes)", v, err, len(kv.Available))
	}
	return kv.Available
}

func objectOf(t *testing.T, c hsm.Config, id []byte) (hsmtest.Object, bool) {
	t.Helper()
	for _, o := range hsmtest.Objects(t, c) {
		if bytes.Equal(o.ID, id) {
			return o, true
		}
	}
	return hsmtest.Object{}, false
}

// TestHSMAvailabilityKey: with an HSM, a policy's availability key is a
// key object the HSM generated and never reveals; the store keeps only its
// id; the fallback opens the policy key in the HSM and is audited; and a
// purge destroys the object, after which the copy the store may still hold
// (read here before the purge) opens for no one.
func TestHSMAvailabilityKey(t *testing.T) {
	e, c, h := newHSMEnv(t)
	p := e.create(dep.Exchange, "Leaving")
	id := hsmObjectOf(t, e.akRecord(p.ID))
	o, ok := objectOf(t, c, id)
	if !ok {
		t.Fatalf("the token has no object with the availability key's CKA_ID %x", id)
	}
	if o.Class != "secret key" || o.Extractable || !o.Sensitive || !o.NeverExtractable || o.ValueRefusal != "CKR_ATTRIBUTE_SENSITIVE" {
		t.Errorf("the availability key object = %+v; want a sensitive secret key that was never extractable", o)
	}

	it := e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	e.roots.failWith(e.keyA, dep.Transient)
	e.roots.failWith(e.keyB, dep.Transient)
	e.restart()
	before := len(e.events(e.tid, dep.ActivityAKFallback))
	if err := open(e.ctx, e.svc, it, dep.Purpose{RequestID: "req-hsm"}); err != nil {
		t.Fatalf("the fallback to the HSM availability key: %v", err)
	}
	if n := len(e.events(e.tid, dep.ActivityAKFallback)) - before; n != 1 {
		t.Errorf("%d availability key records after the fallback, want 1", n)
	}
	e.roots.failWith(e.keyA, 0)
	e.roots.failWith(e.keyB, 0)

	// Refresh seals version 2 with the same HSM key.
	if _, err := e.svc.Refresh(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); err != nil {
		t.Fatal(err)
	}
	if again := hsmObjectOf(t, e.akRecord(p.ID)); !bytes.Equal(again, id) {
		t.Errorf("after Refresh the availability key is %x, want still %x", again, id)
	}
	lingering := e.availableCopy(p.ID, 2)
	aad := dep.AKAAD(e.tid, p.ID, 2)
	if key, err := h.DecryptGCM(e.ctx, id, aad, lingering); err != nil || len(key) != 32 {
		t.Fatalf("the availability key copy before the purge: %d bytes, %v; want the 32-byte policy key", len(key), err)
	}

	e.purge(p, false)
	if _, ok := objectOf(t, c, id); ok {
		t.Error("the availability key object is still in the token after the purge")
	}
	_, err := h.DecryptGCM(e.ctx, id, aad, lingering)
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "has no secret key object") {
		t.Errorf("opening the lingering copy after the purge: err = %v; want the key object gone", err)
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
	if n := len(e.events(e.tid, "dep/policies/purgeAvailabilityKey")); n != 1 {
		t.Errorf("%d records of the HSM object's destruction, want 1", n)
	}
}

// TestHSMRestoreSharePoint: a geo whose availability key is in the HSM is
// restored under new root keys with it.
func TestHSMRestoreSharePoint(t *testing.T) {
	e, _, _ := newHSMEnv(t)
	p := e.register("")
	hsmObjectOf(t, e.akRecord(p.ID))
	site := e.files.add(t, e.ctx, e.tid, "NAM")
	e.roots.failWith(e.keyA, dep.NotFound)
	e.roots.failWith(e.keyB, dep.NotFound)
	e.restart()
	if _, err := e.svc.RestoreSharePoint(e.ctx, e.op1, e.tid, dep.SharePointSpec{PrimaryKeyURI: e.keyC, SecondaryKeyURI: e.keyA2}); err != nil {
		t.Fatalf("RestoreSharePoint: %v", err)
	}
	e.restart()
	if err := open(e.ctx, e.svc, site, dep.Purpose{}); err != nil {
		t.Errorf("the site after Restore: %v", err)
	}
}

// TestHSMStoreKeysStay: a policy created before the HSM was configured
// keeps its availability key in the store, and everything still works on
// it once there is an HSM, the purge included (which asks nothing of it).
func TestHSMStoreKeysStay(t *testing.T) {
	c := hsmtest.NewToken(t)
	e := newEnv(t)
	p := e.create(dep.Exchange, "older")
	if raw := e.akRecord(p.ID); len(raw) != 32 {
		t.Fatalf("without an HSM the availability key record is %d bytes, want the 32-byte key", len(raw))
	}
	it := e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	e.opts.HSM = openHSM(t, c)
	e.restart()
	if _, err := e.svc.Refresh(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); err != nil {
		t.Fatal(err)
	}
	if raw := e.akRecord(p.ID); len(raw) != 32 {
		t.Errorf("after Refresh with an HSM the record is %d bytes, want the store key kept", len(raw))
	}
	e.roots.failWith(e.keyA, dep.Transient)
	e.roots.failWith(e.keyB, dep.Transient)
	if err := open(e.ctx, e.svc, it, dep.Purpose{}); err != nil {
		t.Errorf("the fallback to a store availability key with an HSM configured: %v", err)
	}
	e.roots.failWith(e.keyA, 0)
	e.roots.failWith(e.keyB, 0)
	if got := e.purge(p, false); got.State != dep.Purged {
		t.Errorf("the purge = %+v, want Purged", got)
	}
	if objs := hsmtest.Objects(t, c); len(objs) != 0 {
		t.Errorf("the token holds %d objects, want none: a store key policy makes none", len(objs))
	}
}

// TestHSMDownDuringPurge: when the HSM cannot destroy the availability key,
// the purge of the store stands, the job stays, and ResumePurges destroys
// the object once an HSM is back; a server without an HSM says what it
// needs.
func TestHSMDownDuringPurge(t *testing.T) {
	e, c, h := newHSMEnv(t)
	p := e.create(dep.Exchange, "Leaving")
	id := hsmObjectOf(t, e.akRecord(p.ID))
	e.mail.addUnder(t, e.ctx, e.tid, "", p.Ref())
	e.roots.failWith(e.keyA, dep.AccessDenied)
	e.roots.failWith(e.keyB, dep.AccessDenied)
	if _, err := e.svc.RequestPurge(e.ctx, e.ga, e.tid, dep.Exchange, p.ID, dep.PurgeRequest{Reason: "r", Contact: "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ApprovePurge(e.ctx, e.op1, e.tid, p.ID); err != nil {
		t.Fatal(err)
	}
	h.Close() // the HSM goes away before the purge runs
	_, err := e.svc.ApprovePurge(e.ctx, e.op2, e.tid, p.ID)
	wantKind(t, "the approval whose HSM is down", err, errkind.Unavailable, "resumes on the next ResumePurges")
	if got, _ := e.svc.Get(e.ctx, e.ga, e.tid, dep.Exchange, p.ID); got.State != dep.Purged {
		t.Errorf("after the store's part the policy is %s, want Purged", got.State)
	}
	if _, ok := objectOf(t, c, id); !ok {
		t.Fatal("the availability key object is gone although the HSM was down")
	}

	e.opts.HSM = nil
	e.restart()
	n, err := e.svc.ResumePurges(e.ctx)
	if n != 0 {
		t.Errorf("ResumePurges without an HSM finished %d purges, want 0", n)
	}
	wantKind(t, "ResumePurges without an HSM", err, errkind.Unavailable, "no HSM")

	e.opts.HSM = openHSM(t, c)
	e.restart()
	if n, err := e.svc.ResumePurges(e.ctx); err != nil || n != 1 {
		t.Fatalf("ResumePurges with the HSM back = %d, %v; want 1", n, err)
	}
	if _, ok := objectOf(t, c, id); ok {
		t.Error("the availability key object survived the resumed purge")
	}
	if n, err := e.svc.ResumePurges(e.ctx); err != nil || n != 0 {
		t.Errorf("ResumePurges with nothing left = %d, %v", n, err)
	}
	if got := len(e.events(e.tid, "dep/policies/purge")); got != 1 {
		t.Errorf("%d purge records, want 1: the store's part ran once", got)
	}
	if got := len(e.events(e.tid, "dep/policies/purgeAvailabilityKey")); got != 1 {
		t.Errorf("%d records of the HSM object's destruction, want 1", got)
	}
}
