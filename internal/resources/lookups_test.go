package resources_test

import (
	"context"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
)

func TestLookups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	tid := e.contoso.Tenant.ID
	if _, _, err := e.svc.CreateOrUpdateGroup(ctx, e.ga(), s.ID, "Keys", resources.GroupSpec{Location: "westeurope"}); err != nil {
		t.Fatal(err)
	}
	const unknown = "5b2a1c0d-9e8f-4a7b-8c6d-000000000042"

	got, usable, err := e.svc.Subscription(ctx, s.ID)
	if got != tid || usable != nil || err != nil {
		t.Errorf("Subscription() = %q, %v, %v; want %s, nil, nil", got, usable, err, tid)
	}
	_, _, err = e.svc.Subscription(ctx, unknown)
	wantErr(t, "Subscription(unknown)", err, errkind.NotFound, resources.CodeSubscriptionNotFound)

	for rg, want := range map[string]bool{"keys": true, "KEYS": true, "other": false, "bad.": false} {
		if ok, err := e.svc.ResourceGroupExists(ctx, s.ID, rg); ok != want || err != nil {
			t.Errorf("ResourceGroupExists(%q) = %v, %v; want %v", rg, ok, err, want)
		}
	}
	if _, err := e.svc.ResourceGroupExists(ctx, unknown, "keys"); !errkind.Is(err, errkind.NotFound) {
		t.Errorf("ResourceGroupExists(unknown subscription) err = %v, want NotFound", err)
	}
	if ok, err := e.svc.ProviderRegistered(ctx, s.ID, "Microsoft.KeyVault"); ok || err != nil {
		t.Errorf("ProviderRegistered(Microsoft.KeyVault) = %v, %v; want false", ok, err)
	}
	if !e.svc.KnownLocation("westeurope") || e.svc.KnownLocation("atlantis") {
		t.Error("KnownLocation() disagrees with LookupRegion")
	}

	tests := []struct {
		scope resourceid.ID
		kind  errkind.Kind
	}{
		{resourceid.Subscription(s.ID), none},
		{resourceid.ResourceGroup(s.ID, "KEYS"), none},
		{resourceid.Vault(s.ID, "keys", "v1"), none},
		{resourceid.ResourceGroup(s.ID, "missing"), errkind.NotFound},
		{resourceid.Subscription(unknown), errkind.NotFound},
	}
	for _, tc := range tests {
		got, err := e.svc.TenantOf(ctx, tc.scope)
		wantErr(t, "TenantOf("+tc.scope.String()+")", err, tc.kind, "")
		if tc.kind == none && got != tid {
			t.Errorf("TenantOf(%s) = %q, want %s", tc.scope, got, tid)
		}
	}

	// Disabled: usable says why; Deleted: gone.
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	_, usable, err = e.svc.Subscription(ctx, s.ID)
	wantErr(t, "Subscription() of a disabled subscription: err", err, none, "")
	wantErr(t, "Subscription() of a disabled subscription: usable", usable, errkind.FailedPrecondition, resources.CodeReadOnlyDisabledSubscription)
	e.clock.Advance(90 * day)
	_, _, err = e.svc.Subscription(ctx, s.ID)
	wantErr(t, "Subscription() of a deleted subscription", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
	_, err = e.svc.TenantOf(ctx, resourceid.Subscription(s.ID))
	wantErr(t, "TenantOf() of a deleted subscription", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
}
