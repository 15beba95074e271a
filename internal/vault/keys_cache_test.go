package vault_test

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha256"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestCacheInvalidation(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "root")
	dek := make([]byte, 32)
	wrap := func(s *vault.Service) error {
		_, err := s.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", dek)
		return err
	}
	node2 := e.service(5 * time.Second)
	for _, s := range []*vault.Service{e.svc, node2} {
		if err := wrap(s); err != nil {
			t.Fatalf("WrapKey err = %v", err)
		}
	}
	// In-process: the change is seen at once.
	if _, err := e.svc.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "WrapKey right after disabling", wrap(e.svc), errkind.PermissionDenied, "KeyDisabled")
	// Another node: the documented staleness, then the change after the TTL.
	if err := wrap(node2); err != nil {
		t.Errorf("node 2 within the TTL err = %v; want its cached (enabled) view", err)
	}
	e.clock.Advance(5 * time.Second)
	wantErr(t, "node 2 after the TTL", wrap(node2), errkind.PermissionDenied, "KeyDisabled")

	// A new latest version made elsewhere is used after the TTL.
	if _, err := e.svc.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Second)
	if err := wrap(node2); err != nil {
		t.Fatal(err)
	}
	rotated, err := e.svc.RotateKey(ctx, caller, kv, "root")
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := e.svc.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", dek); w.Ref != rotated.Ref {
		t.Errorf("node 1 wraps with %s right after rotating, want %s", w.Ref.Version, rotated.Ref.Version)
	}
	e.clock.Advance(5 * time.Second)
	if w, _ := node2.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", dek); w.Ref != rotated.Ref {
		t.Errorf("node 2 wraps with %s after the TTL, want %s", w.Ref.Version, rotated.Ref.Version)
	}
	// A deleted key disappears from node 2 after the TTL too.
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "node 1 after delete", wrap(e.svc), errkind.NotFound, "KeyNotFound")
	e.clock.Advance(5 * time.Second)
	wantErr(t, "node 2 after delete and TTL", wrap(node2), errkind.NotFound, "KeyNotFound")
}

func TestSubscriptionNotUsable(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "root")
	e.subs.set(subA, func(s *fakeSub) { s.disabled = true })
	_, err := e.svc.CreateKey(ctx, caller, kv, "k2", vault.KeySpec{Type: "EC"})
	wantErr(t, "CreateKey", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	_, err = e.svc.DeleteKey(ctx, caller, kv, "root")
	wantErr(t, "DeleteKey", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	e.clock.Advance(vault.DefaultKeyCacheTTL) // the crypto path trusts its cache that long
	_, err = e.svc.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", make([]byte, 32))
	wantErr(t, "WrapKey", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	_, err = e.svc.GetKey(ctx, kv, "root", "")
	wantErr(t, "GetKey", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	_, err = e.svc.ListKeys(ctx, kv, "", 0)
	wantErr(t, "ListKeys", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	e.subs.set(subA, func(s *fakeSub) { s.disabled = false })
	e.clock.Advance(vault.DefaultKeyCacheTTL)
	if _, err := e.svc.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", make([]byte, 32)); err != nil {
		t.Errorf("WrapKey after re-enabling err = %v", err)
	}
}

// TestHotPathReadsNothing: once warm, crypto operations and GetKey do not
// touch the store until the TTL passes.
func TestHotPathReadsNothing(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "root")
	cs := &countingStore{Backend: e.store}
	svc := vault.New(vault.Options{Store: cs, Subscriptions: e.subs, Now: e.clock.Now})
	pub := e.publicKey(t, "root").(*rsa.PublicKey)
	wrapped := localEncrypt(t, pub, "RSA-OAEP-256", make([]byte, 32))
	if _, err := svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped); err != nil {
		t.Fatal(err)
	}
	before := cs.views.Load() + cs.updates.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 5 {
				if _, err := svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped); err != nil {
					t.Error(err)
				}
				if _, err := svc.GetKey(ctx, kv, "root", ""); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := cs.views.Load() + cs.updates.Load() - before; n != 0 {
		t.Errorf("%d store transactions on the warm hot path, want 0", n)
	}
	e.clock.Advance(vault.DefaultKeyCacheTTL)
	if _, err := svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped); err != nil {
		t.Fatal(err)
	}
	if n := cs.views.Load() - before; n < 1 || n > 2 {
		t.Errorf("%d reads after the TTL, want 1 or 2 (the vault, then the key and version)", n)
	}
	if n := cs.material.Load(); n != 1 {
		t.Errorf("the private key was read %d times, want once: a revalidation keeps the parsed key", n)
	}
	// Asking for versions that do not exist neither evicts nor re-reads the real one.
	for range 3 {
		_, err := svc.GetKey(ctx, kv, "root", "0123456789abcdef0123456789abcdef")
		wantErr(t, "GetKey(unknown version)", err, errkind.NotFound, "KeyNotFound")
	}
	if _, err := svc.UnwrapKey(ctx, kv, "root", "", "RSA-OAEP-256", wrapped); err != nil {
		t.Fatal(err)
	}
	if n := cs.material.Load(); n != 1 {
		t.Errorf("the private key was read %d times after lookups of unknown versions, want once", n)
	}
}

// TestCacheEvictionUnderLoad: a cache of one version serves two keys in
// parallel; evicted private keys are wiped only once unused.
func TestCacheEvictionUnderLoad(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "a")
	e.importRSA(t, "b")
	svc := vault.New(vault.Options{Store: e.store, Subscriptions: e.subs, Now: e.clock.Now, KeyCacheSize: 1})
	pub := e.publicKey(t, "a").(*rsa.PublicKey)
	dek := bytes.Repeat([]byte{7}, 32)
	wrapped := localEncrypt(t, pub, "RSA-OAEP-256", dek)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			name := []string{"a", "b"}[i%2]
			for range 4 {
				p, err := svc.UnwrapKey(ctx, kv, name, "", "RSA-OAEP-256", wrapped)
				if err != nil || !bytes.Equal(p.Value.Reveal(), dek) {
					t.Errorf("UnwrapKey(%s) = %v; want the DEK", name, err)
				}
				d := sha256.Sum256([]byte(name))
				if _, err := svc.Sign(ctx, kv, name, "", "PS256", d[:]); err != nil {
					t.Errorf("Sign(%s) err = %v", name, err)
				}
			}
		})
	}
	wg.Wait()
}

// TestKeysSurviveRestart: everything is in the store, nothing only in memory.
func TestKeysSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.store = st
	e.svc = vault.New(vault.Options{Store: st, Subscriptions: e.subs, Now: e.clock.Now})
	e.create(t, spec(kv))
	k := e.importRSA(t, "root")
	st.Close()
	st2, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	svc := vault.New(vault.Options{Store: st2, Subscriptions: e.subs, Now: e.clock.Now})
	got, err := svc.GetKey(ctx, kv, "root", "")
	if err != nil || got.Ref != k.Ref {
		t.Errorf("GetKey after restart = %+v, %v; want %+v", got.Ref, err, k.Ref)
	}
}
