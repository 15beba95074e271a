package resources_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resources"
)

func TestProvidersInitialState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	want := map[string]resources.RegistrationState{
		"Microsoft.Authorization": resources.Registered, "Microsoft.Features": resources.Registered,
		"Microsoft.KeyVault": resources.NotRegistered, "Microsoft.Resources": resources.Registered,
	}
	ps, err := e.svc.Providers(ctx, s.ID)
	if err != nil || len(ps) != len(want) {
		t.Fatalf("Providers() = %+v, %v", ps, err)
	}
	for _, p := range ps {
		if p.State != want[p.Namespace] {
			t.Errorf("provider %s is %s, want %s", p.Namespace, p.State, want[p.Namespace])
		}
	}
	err = e.svc.CheckRegistered(ctx, s.ID, "microsoft.keyvault")
	wantErr(t, "CheckRegistered(Microsoft.KeyVault)", err, errkind.Conflict, resources.CodeMissingSubscriptionRegistration)
	if !strings.Contains(err.Error(), "namespace 'Microsoft.KeyVault'") {
		t.Errorf("CheckRegistered() message = %q", err)
	}
	wantErr(t, "CheckRegistered(Microsoft.Resources)", e.svc.CheckRegistered(ctx, s.ID, "Microsoft.Resources"), none, "")
	_, err = e.svc.ProviderState(ctx, s.ID, "Microsoft.Compute")
	wantErr(t, "ProviderState(Microsoft.Compute)", err, errkind.NotFound, resources.CodeInvalidResourceNamespace)
	_, err = e.svc.ProviderState(ctx, "2e0c0b8a-6a7c-4f33-9d7e-111111111111", "Microsoft.KeyVault")
	wantErr(t, "ProviderState(unknown subscription)", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
}

func TestProviderRegistration(t *testing.T) {
	const delay = 5 * time.Second
	tests := []struct {
		name  string
		delay time.Duration
	}{
		{"immediate (default)", 0},
		{"with a delay", delay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *resources.Options) { o.ProviderRegistrationDelay = tc.delay })
			ctx := context.Background()
			s := e.sub()
			step := func(what string, call func() (resources.Provider, error), pending, done resources.RegistrationState) {
				t.Helper()
				p, err := call()
				want := done
				if tc.delay > 0 {
					want = pending
				}
				if err != nil || p.State != want {
					t.Fatalf("%s = %s, %v; want %s", what, p.State, err, want)
				}
				if tc.delay > 0 {
					e.clock.Advance(tc.delay - time.Nanosecond)
					if st, _ := e.svc.ProviderState(ctx, s.ID, "Microsoft.KeyVault"); st != pending {
						t.Fatalf("%s: just before the delay the state is %s, want %s", what, st, pending)
					}
					e.clock.Advance(time.Nanosecond)
				}
				if st, _ := e.svc.ProviderState(ctx, s.ID, "Microsoft.KeyVault"); st != done {
					t.Fatalf("%s: after the delay the state is %s, want %s", what, st, done)
				}
			}
			register := func() (resources.Provider, error) {
				return e.svc.RegisterProvider(ctx, e.ga(), s.ID, "microsoft.keyvault")
			}
			step("RegisterProvider()", register, resources.Registering, resources.Registered)
			if err := e.svc.CheckRegistered(ctx, s.ID, "Microsoft.KeyVault"); err != nil {
				t.Errorf("CheckRegistered() after registering = %v", err)
			}
			// Registering again, as the seed's remedy asks, keeps it Registered.
			if p, err := register(); err != nil || p.State != resources.Registered {
				t.Errorf("RegisterProvider() again = %s, %v; want Registered", p.State, err)
			}
			step("UnregisterProvider()", func() (resources.Provider, error) {
				return e.svc.UnregisterProvider(ctx, e.ga(), s.ID, "Microsoft.KeyVault")
			}, resources.Unregistering, resources.NotRegistered)
			if evs := e.events(e.contoso.Tenant.ID, "resources/providers/register"); len(evs) != 2 {
				t.Errorf("register audit records = %d, want 2", len(evs))
			}
		})
	}
}

func TestProviderRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	if _, _, err := e.svc.CreateOrUpdateGroup(ctx, e.ga(), s.ID, "keys", resources.GroupSpec{Location: "westeurope"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterProvider(ctx, e.ga(), s.ID, "Microsoft.KeyVault"); err != nil {
		t.Fatal(err)
	}
	e.contents.set(s.ID, "keys", 1)
	tests := []struct {
		name string
		call func() (resources.Provider, error)
		kind errkind.Kind
		code string
	}{
		{"re-register Microsoft.Resources", func() (resources.Provider, error) {
			return e.svc.RegisterProvider(ctx, e.ga(), s.ID, "Microsoft.Resources")
		}, none, ""},
		{"unregister Microsoft.Resources", func() (resources.Provider, error) {
			return e.svc.UnregisterProvider(ctx, e.ga(), s.ID, "Microsoft.Resources")
		}, errkind.Conflict, resources.CodeProviderUnregistrationBlocked},
		{"unregister Microsoft.KeyVault holding a vault", func() (resources.Provider, error) {
			return e.svc.UnregisterProvider(ctx, e.ga(), s.ID, "Microsoft.KeyVault")
		}, errkind.Conflict, resources.CodeProviderUnregistrationBlocked},
		{"unknown namespace", func() (resources.Provider, error) {
			return e.svc.RegisterProvider(ctx, e.ga(), s.ID, "Microsoft.Storage")
		}, errkind.NotFound, resources.CodeInvalidResourceNamespace},
		{"another tenant", func() (resources.Provider, error) {
			return e.svc.RegisterProvider(ctx, userCaller(e.fabrikam.Admin), s.ID, "Microsoft.KeyVault")
		}, errkind.PermissionDenied, resources.CodeAuthorizationFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.call()
			wantErr(t, tc.name, err, tc.kind, tc.code)
		})
	}
	if st, _ := e.svc.ProviderState(ctx, s.ID, "Microsoft.Resources"); st != resources.Registered {
		t.Errorf("Microsoft.Resources is %s after re-registering, want Registered", st)
	}
	// A disabled subscription is read-only.
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.RegisterProvider(ctx, e.ga(), s.ID, "Microsoft.KeyVault")
	wantErr(t, "RegisterProvider() on a disabled subscription", err, errkind.FailedPrecondition, resources.CodeReadOnlyDisabledSubscription)
}

// TestMandatoryRetentionFeature walks the feature through its state
// machine under the fake clock, with the transitions at exactly the delay.
func TestMandatoryRetentionFeature(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	const ns, name = "Microsoft.Resources", "mandatoryRetentionPeriodEnabled"
	state := func() resources.RegistrationState {
		t.Helper()
		f, err := e.svc.Feature(ctx, s.ID, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		return f.State
	}
	protected := func() bool {
		t.Helper()
		ok, err := e.svc.Protected(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if st := state(); st != resources.NotRegistered || protected() {
		t.Fatalf("a new subscription's feature is %s (protected %v), want NotRegistered", st, protected())
	}
	start := e.clock.Now()
	f, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, "microsoft.resources", "MandatoryRetentionPeriodEnabled")
	if err != nil || f.State != resources.Registering || f.FullName() != resources.MandatoryRetentionFeature || !f.ReadyAt.Equal(start.Add(featureDelay)) {
		t.Fatalf("RegisterFeature() = %+v, %v; want Registering until +%v", f, err, featureDelay)
	}
	steps := []struct {
		at        time.Duration
		want      resources.RegistrationState
		protected bool
	}{
		{featureDelay / 2, resources.Registering, false},
		{featureDelay - time.Nanosecond, resources.Registering, false},
		{featureDelay, resources.Registered, true},
		{time.Hour, resources.Registered, true},
	}
	for _, st := range steps {
		e.clock.Set(start.Add(st.at))
		if got := state(); got != st.want || protected() != st.protected {
			t.Errorf("at +%v: %s (protected %v), want %s (protected %v)", st.at, got, protected(), st.want, st.protected)
		}
	}
	if f, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil || f.State != resources.Registered {
		t.Errorf("RegisterFeature() again = %s, %v; want Registered", f.State, err)
	}
	// The register call found the feature Registering in store and settled it.
	if evs := e.events(e.contoso.Tenant.ID, "resources/features/stateChange"); len(evs) != 1 {
		t.Errorf("feature stateChange records = %d, want 1", len(evs))
	}

	start = e.clock.Now()
	if f, err := e.svc.UnregisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil || f.State != resources.Unregistering {
		t.Fatalf("UnregisterFeature() = %s, %v; want Unregistering", f.State, err)
	}
	if protected() {
		t.Error("Protected() while Unregistering = true, want false")
	}
	e.clock.Set(start.Add(featureDelay))
	if got := state(); got != resources.NotRegistered {
		t.Errorf("after the delay: %s, want NotRegistered", got)
	}
	fs, err := e.svc.Features(ctx, s.ID)
	if err != nil || len(fs) != 1 || fs[0].State != resources.NotRegistered {
		t.Errorf("Features() = %+v, %v", fs, err)
	}
	if evs := e.events(e.contoso.Tenant.ID, "resources/features/register"); len(evs) != 2 {
		t.Errorf("feature register audit records = %d, want 2", len(evs))
	}
}

// TestRetentionHeldWhileUnregistering: a cancellation asked for while the
// feature is Unregistering is still held, since the lock is only released
// when unregistering completes.
func TestRetentionHeldWhileUnregistering(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	ns, name := resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName
	if _, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(featureDelay)
	if _, err := e.svc.UnregisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.Cancel(ctx, e.ga(), s.ID)
	if err != nil || !got.Cancellation.Retained || got.State != resources.Enabled {
		t.Errorf("Cancel() while Unregistering = %+v, %v; want retained and Enabled", got, err)
	}
}

func TestFeatureRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	ns, name := resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName
	if _, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(featureDelay)
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() (resources.Feature, error)
		kind errkind.Kind
		code string
		msg  string
	}{
		{"unknown feature", func() (resources.Feature, error) {
			return e.svc.Feature(ctx, s.ID, "Microsoft.Resources", "quantumKeys")
		}, errkind.NotFound, resources.CodeFeatureNotFound, "known features: Microsoft.Resources/mandatoryRetentionPeriodEnabled"},
		{"register unknown feature", func() (resources.Feature, error) {
			return e.svc.RegisterFeature(ctx, e.ga(), s.ID, "Microsoft.KeyVault", "mandatoryRetentionPeriodEnabled")
		}, errkind.NotFound, resources.CodeFeatureNotFound, ""},
		{"unregister while a cancellation is pending", func() (resources.Feature, error) {
			return e.svc.UnregisterFeature(ctx, e.ga(), s.ID, ns, name)
		}, errkind.Conflict, resources.CodeRetentionPeriodActive, "reactivate the subscription first"},
		{"another tenant", func() (resources.Feature, error) {
			return e.svc.RegisterFeature(ctx, userCaller(e.fabrikam.Admin), s.ID, ns, name)
		}, errkind.PermissionDenied, resources.CodeAuthorizationFailed, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.call()
			wantErr(t, tc.name, err, tc.kind, tc.code)
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message = %q, want it to contain %q", err, tc.msg)
			}
		})
	}
	// Once the cancellation is withdrawn, the feature can be unregistered.
	if _, err := e.svc.Reactivate(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	if f, err := e.svc.UnregisterFeature(ctx, e.ga(), s.ID, ns, name); err != nil || f.State != resources.Unregistering {
		t.Errorf("UnregisterFeature() after reactivating = %s, %v", f.State, err)
	}
}
