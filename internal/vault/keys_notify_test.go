package vault_test

import (
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/vault"
)

// TestInvalidationAcrossNodes: with a notify.Bus between them, a node sees
// another node's key changes at once, though its cache TTL is an hour and
// the clock never moves.
func TestInvalidationAcrossNodes(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "root")
	hub := notify.NewHub()
	node := func() *vault.Service {
		return vault.New(vault.Options{Store: e.store, Audit: e.audit, Subscriptions: e.subs,
			Locations: fakeLocations{"westeurope": true}, Now: e.clock.Now, KeyCacheTTL: time.Hour, Bus: hub.Node()})
	}
	a, b := node(), node()
	dek := make([]byte, 32)
	wrap := func(s *vault.Service) (vault.KeyRef, error) {
		w, err := s.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", dek)
		return w.Ref, err
	}
	for _, s := range []*vault.Service{a, b} { // both caches hold the key
		if _, err := wrap(s); err != nil {
			t.Fatalf("WrapKey err = %v", err)
		}
	}
	if _, err := a.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	_, err := wrap(b)
	wantErr(t, "node B right after node A disabled the key", err, errkind.PermissionDenied, "KeyDisabled")
	if _, err := a.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Enabled: ptr(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := wrap(b); err != nil {
		t.Errorf("node B right after node A enabled the key again err = %v", err)
	}
	rotated, err := a.RotateKey(ctx, caller, kv, "root")
	if err != nil {
		t.Fatal(err)
	}
	if ref, err := wrap(b); err != nil || ref != rotated.Ref {
		t.Errorf("node B wraps with %v (err %v) right after node A rotated, want %s", ref.Version, err, rotated.Ref.Version)
	}
	// A vault change: node B's cached vault record is dropped too.
	if _, err := a.DeleteKey(ctx, caller, kv, "root"); err != nil {
		t.Fatal(err)
	}
	_, err = wrap(b)
	wantErr(t, "node B right after node A deleted the key", err, errkind.NotFound, "KeyNotFound")
}

// TestFlushAfterMissedNotifications: notify.All (sent by a Bus that may
// have missed notifications) empties the cache, so a change nobody
// announced is seen at once.
func TestFlushAfterMissedNotifications(t *testing.T) {
	e := newKeyEnv(t)
	e.importRSA(t, "root")
	hub := notify.NewHub()
	b := vault.New(vault.Options{Store: e.store, Audit: e.audit, Subscriptions: e.subs,
		Locations: fakeLocations{"westeurope": true}, Now: e.clock.Now, KeyCacheTTL: time.Hour, Bus: hub.Node()})
	if _, err := b.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", make([]byte, 32)); err != nil {
		t.Fatal(err)
	}
	// e.svc has no Bus: its changes reach node B only through a flush.
	// Each round toggles the key and flushes through one topic.
	enabled := true
	for _, topic := range []string{"vault/key", "vault/vault", "vault/uid"} {
		enabled = !enabled
		if _, err := e.svc.UpdateKey(ctx, caller, kv, "root", "", vault.KeyUpdate{Enabled: ptr(enabled)}); err != nil {
			t.Fatal(err)
		}
		_, err := b.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", make([]byte, 32))
		if stale := err == nil; stale == enabled {
			t.Fatalf("node B before the flush of %s: err = %v, want its cached view (enabled %v)", topic, err, !enabled)
		}
		hub.Node().Publish(ctx, topic, notify.All)
		_, err = b.WrapKey(ctx, kv, "root", "", "RSA-OAEP-256", make([]byte, 32))
		if enabled && err != nil {
			t.Errorf("node B after a flush of %s err = %v, want the key enabled again", topic, err)
		}
		if !enabled {
			wantErr(t, "node B after a flush of "+topic, err, errkind.PermissionDenied, "KeyDisabled")
		}
	}
}
