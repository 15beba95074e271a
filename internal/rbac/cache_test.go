package rbac_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/rbac"
)

func TestCacheRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	workload := e.app(t, e.a, "workload")
	other := e.newService(0) // a second node on the same store

	a := e.assign(t, e.a.admin, workload, rbac.KeyVaultCryptoServiceEncryptionUserID, e.a.key1)
	for name, svc := range map[string]*rbac.Service{"this node": e.svc, "other node": other} {
		if err := svc.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); err != nil {
			t.Fatalf("%s: CheckData(unwrap) before revocation err = %v", name, err)
		}
	}
	if _, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.key1, a.ID); err != nil {
		t.Fatal(err)
	}
	// The node that made the change sees it at once.
	if err := e.svc.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); !isDenied(err) {
		t.Errorf("this node: CheckData(unwrap) after revocation err = %v, want denied", err)
	}
	// The other node serves its cache until the TTL has passed.
	e.clock.Advance(rbac.DefaultCacheTTL - time.Millisecond)
	if err := other.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); err != nil {
		t.Errorf("other node within the TTL: err = %v, want the cached allow", err)
	}
	e.clock.Advance(time.Millisecond)
	if err := other.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); !isDenied(err) {
		t.Errorf("other node after the TTL: err = %v, want denied", err)
	}

	// A grant made elsewhere shows up after the TTL too, or at once after
	// Invalidate.
	e.assign(t, e.a.admin, workload, rbac.KeyVaultCryptoServiceEncryptionUserID, e.a.key1)
	if err := other.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); !isDenied(err) {
		t.Errorf("other node before the TTL: err = %v, want the cached deny", err)
	}
	other.Invalidate()
	if err := other.CheckData(ctx, workload, rbac.DataKeysUnwrap, e.a.key1); err != nil {
		t.Errorf("other node after Invalidate: err = %v", err)
	}
}

func TestCacheOff(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	workload := e.app(t, e.a, "workload")
	uncached := e.newService(-1)
	a := e.assign(t, e.a.admin, workload, rbac.KeyVaultCryptoUserID, e.a.vault)
	if err := uncached.CheckData(ctx, workload, rbac.DataKeysSign, e.a.key1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.vault, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := uncached.CheckData(ctx, workload, rbac.DataKeysSign, e.a.key1); !isDenied(err) {
		t.Errorf("uncached node after revocation: err = %v, want denied", err)
	}
}

func TestCacheBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	small := rbac.New(rbac.Options{Store: e.store, Scopes: e.scopes, Now: e.clock.Now, CacheSize: 4})
	var ps []rbac.Principal
	for range 20 {
		p := randomPrincipal(e.a)
		e.grant(t, small, p, rbac.KeyVaultReaderID, e.a.vault)
		ps = append(ps, p)
	}
	for round := range 3 {
		for i, p := range ps {
			if err := small.CheckData(ctx, p, rbac.DataKeysRead, e.a.key1); err != nil {
				t.Fatalf("round %d principal %d: %v", round, i, err)
			}
		}
	}
}

func TestConcurrentChecks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := randomPrincipal(e.a)
	e.grant(t, e.svc, p, rbac.KeyVaultCryptoServiceEncryptionUserID, e.a.vault)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if err := e.svc.CheckData(ctx, p, rbac.DataKeysWrap, e.a.key1); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			e.svc.Invalidate()
		}
	})
	wg.Wait()
}

func BenchmarkCheckDataCached(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	p := randomPrincipal(e.a)
	e.grant(b, e.svc, p, rbac.KeyVaultCryptoServiceEncryptionUserID, e.a.vault)
	// A few other assignments, as a workload identity in a real tenant has.
	e.grant(b, e.svc, p, rbac.KeyVaultReaderID, e.a.vault2)
	e.grant(b, e.svc, p, rbac.KeyVaultCryptoUserID, e.a.key2)
	e.grant(b, e.svc, p, rbac.ReaderID, e.a.rg2)
	if err := e.svc.CheckData(ctx, p, rbac.DataKeysUnwrap, e.a.key1); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := e.svc.CheckData(ctx, p, rbac.DataKeysUnwrap, e.a.key1); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
