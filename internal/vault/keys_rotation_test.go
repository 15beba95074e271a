package vault_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestRotationPolicyRules(t *testing.T) {
	e := newKeyEnv(t)
	e.createKey(t, "k", vault.KeySpec{Type: "EC"})
	notify30 := vault.LifetimeAction{TimeBeforeExpiry: "P30D", Type: "Notify"}
	type la = vault.LifetimeAction
	cases := []struct {
		name string
		in   vault.RotationPolicy
		want []vault.LifetimeAction // nil: refused
		exp  string
	}{
		{"rotate only gets the default notify", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P30D", Type: "rotate"}}},
			[]la{{TimeAfterCreate: "P30D", Type: "Rotate"}, notify30}, ""},
		{"rotate before expiry", vault.RotationPolicy{ExpiryTime: "p90d", LifetimeActions: []la{{TimeBeforeExpiry: "P30D", Type: "ROTATE"}}},
			[]la{{TimeBeforeExpiry: "P30D", Type: "Rotate"}, notify30}, "P90D"},
		{"own notify kept", vault.RotationPolicy{ExpiryTime: "P1Y", LifetimeActions: []la{{TimeAfterCreate: "P11M", Type: "Rotate"},
			{TimeBeforeExpiry: "P7D", Type: "notify"}}}, []la{{TimeAfterCreate: "P11M", Type: "Rotate"}, {TimeBeforeExpiry: "P7D", Type: "Notify"}}, "P1Y"},
		{"exactly seven days", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P1W", Type: "Rotate"}}},
			[]la{{TimeAfterCreate: "P1W", Type: "Rotate"}, notify30}, ""},
		{"notify only", vault.RotationPolicy{LifetimeActions: []la{{TimeBeforeExpiry: "P10D", Type: "Notify"}}},
			[]la{{TimeBeforeExpiry: "P10D", Type: "Notify"}}, ""},
		{"expiry only", vault.RotationPolicy{ExpiryTime: "P28D"}, []la{}, "P28D"},
		{"six days", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P6D", Type: "Rotate"}}}, nil, ""},
		{"hours", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "PT23H", Type: "Rotate"}}}, nil, ""},
		{"before expiry without expiryTime", vault.RotationPolicy{LifetimeActions: []la{{TimeBeforeExpiry: "P30D", Type: "Rotate"}}}, nil, ""},
		{"too close to expiry", vault.RotationPolicy{ExpiryTime: "P90D", LifetimeActions: []la{{TimeBeforeExpiry: "P85D", Type: "Rotate"}}}, nil, ""},
		{"after create past expiry", vault.RotationPolicy{ExpiryTime: "P30D", LifetimeActions: []la{{TimeAfterCreate: "P30D", Type: "Rotate"}}}, nil, ""},
		{"short expiry", vault.RotationPolicy{ExpiryTime: "P27D"}, nil, ""},
		{"not iso", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "30D", Type: "Rotate"}}}, nil, ""},
		{"bare P", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P", Type: "Rotate"}}}, nil, ""},
		{"bare T", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P30DT", Type: "Rotate"}}}, nil, ""},
		{"fraction", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P7.5D", Type: "Rotate"}}}, nil, ""},
		{"two triggers", vault.RotationPolicy{ExpiryTime: "P90D", LifetimeActions: []la{{TimeAfterCreate: "P30D", TimeBeforeExpiry: "P30D", Type: "Rotate"}}}, nil, ""},
		{"no trigger", vault.RotationPolicy{LifetimeActions: []la{{Type: "Rotate"}}}, nil, ""},
		{"notify after create", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P30D", Type: "Notify"}}}, nil, ""},
		{"two rotates", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P30D", Type: "Rotate"}, {TimeAfterCreate: "P60D", Type: "rotate"}}}, nil, ""},
		{"unknown action", vault.RotationPolicy{LifetimeActions: []la{{TimeAfterCreate: "P30D", Type: "Delete"}}}, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.svc.SetRotationPolicy(ctx, caller, kv, "k", tc.in)
			if tc.want == nil {
				wantErr(t, "SetRotationPolicy", err, errkind.Invalid, "BadParameter")
				return
			}
			if err != nil {
				t.Fatalf("SetRotationPolicy err = %v", err)
			}
			if diff := cmp.Diff(tc.want, got.LifetimeActions, cmpopts.EquateEmpty()); diff != "" || got.ExpiryTime != tc.exp {
				t.Errorf("policy (-want +got):\n%s expiry %q want %q", diff, got.ExpiryTime, tc.exp)
			}
			read, err := e.svc.GetRotationPolicy(ctx, kv, "k")
			if err != nil || !cmp.Equal(read, got, cmpopts.EquateEmpty()) {
				t.Errorf("GetRotationPolicy = %+v, %v; want %+v", read, err, got)
			}
		})
	}
	e.createKey(t, "fresh", vault.KeySpec{Type: "EC"})
	def, err := e.svc.GetRotationPolicy(ctx, kv, "fresh")
	if err != nil || !cmp.Equal(def.LifetimeActions, []vault.LifetimeAction{notify30}) || !def.Created.IsZero() {
		t.Errorf("GetRotationPolicy(never set) = %+v, %v; want only the default notify", def, err)
	}
	_, err = e.svc.GetRotationPolicy(ctx, kv, "nope")
	wantErr(t, "GetRotationPolicy(missing)", err, errkind.NotFound, "KeyNotFound")
	_, err = e.svc.SetRotationPolicy(ctx, caller, kv, "nope", vault.RotationPolicy{})
	wantErr(t, "SetRotationPolicy(missing)", err, errkind.NotFound, "KeyNotFound")
}

func TestRotateKey(t *testing.T) {
	e := newKeyEnv(t)
	first := e.createKey(t, "rot", vault.KeySpec{Type: "EC", Curve: "P-384", Ops: []string{"sign"},
		Tags: map[string]string{"team": "crypto"}})
	e.clock.Advance(time.Hour)
	r, err := e.svc.RotateKey(ctx, caller, kv, "rot")
	if err != nil {
		t.Fatalf("RotateKey err = %v", err)
	}
	if r.Ref.Version == first.Ref.Version || r.JWK.Crv != "P-384" || !sameStrings(r.JWK.KeyOps, []string{"sign"}) ||
		r.Tags["team"] != "crypto" || r.Attributes.Expires != nil || !r.Attributes.Created.Equal(day0(e)) {
		t.Errorf("RotateKey = %+v %+v; want a new P-384 version with ops [sign], the tags, no exp", r.Ref, r.Attributes)
	}
	if latest, _ := e.svc.GetKey(ctx, kv, "rot", ""); latest.Ref != r.Ref {
		t.Errorf("latest = %+v, want the rotated version", latest.Ref)
	}
	if _, err := e.svc.SetRotationPolicy(ctx, caller, kv, "rot", vault.RotationPolicy{ExpiryTime: "P90D"}); err != nil {
		t.Fatal(err)
	}
	r2, err := e.svc.RotateKey(ctx, caller, kv, "rot")
	if err != nil || r2.Attributes.Expires == nil || !r2.Attributes.Expires.Equal(r2.Attributes.Created.Add(90*day)) {
		t.Errorf("RotateKey with expiryTime P90D = %+v, %v; want exp = created + 90 days", r2.Attributes, err)
	}
	_, err = e.svc.RotateKey(ctx, caller, kv, "nope")
	wantErr(t, "RotateKey(missing)", err, errkind.NotFound, "KeyNotFound")
	if ev := e.events(t, "keys/rotate"); len(ev) != 2 || ev[0].Actor.ID != userA {
		t.Errorf("keys/rotate events = %+v; want 2 by %s", ev, userA)
	}
}

func TestAutomaticRotation(t *testing.T) {
	e := newKeyEnv(t)
	first := e.createKey(t, "auto", vault.KeySpec{Type: "EC"})
	if _, err := e.svc.SetRotationPolicy(ctx, caller, kv, "auto", vault.RotationPolicy{ExpiryTime: "P60D",
		LifetimeActions: []vault.LifetimeAction{{TimeAfterCreate: "P30D", Type: "Rotate"}}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(29 * day)
	if n, err := e.svc.SweepKeys(ctx); n != 0 || err != nil {
		t.Errorf("SweepKeys at day 29 = %d, %v; want 0", n, err)
	}
	e.clock.Advance(day)
	if n, err := e.svc.SweepKeys(ctx); n != 1 || err != nil {
		t.Fatalf("SweepKeys at day 30 = %d, %v; want 1 rotation", n, err)
	}
	second, err := e.svc.GetKey(ctx, kv, "auto", "")
	if err != nil || second.Ref.Version == first.Ref.Version {
		t.Fatalf("latest after the rotation = %+v, %v; want a new version", second.Ref, err)
	}
	if exp := second.Attributes.Expires; exp == nil || !exp.Equal(second.Attributes.Created.Add(60*day)) {
		t.Errorf("rotated exp = %v; want created + 60 days", exp)
	}
	ev := e.events(t, "keys/rotate")
	if len(ev) != 1 || ev[0].Actor.Type != "system" || ev[0].Target != kv+"/auto/"+second.Ref.Version || ev[0].Reason == "" {
		t.Errorf("keys/rotate events = %+v; want one by the system on the new version", ev)
	}
	if n, _ := e.svc.SweepKeys(ctx); n != 0 {
		t.Errorf("SweepKeys right after = %d, want 0", n)
	}
	// A rotation waits while the subscription is disabled, and happens once it is usable again.
	e.clock.Advance(30 * day)
	e.subs.set(subA, func(s *fakeSub) { s.disabled = true })
	if n, err := e.svc.SweepKeys(ctx); n != 0 || err != nil {
		t.Errorf("SweepKeys with the subscription disabled = %d, %v; want 0", n, err)
	}
	e.subs.set(subA, func(s *fakeSub) { s.disabled = false })
	if n, err := e.svc.SweepKeys(ctx); n != 1 || err != nil {
		t.Errorf("SweepKeys at day 60 = %d, %v; want 1", n, err)
	}
	if vers, _ := e.svc.ListKeyVersions(ctx, kv, "auto", "", 0); len(vers.Items) != 3 {
		t.Errorf("%d versions, want 3", len(vers.Items))
	}
	// Deleting the key cancels its rotations.
	if _, err := e.svc.DeleteKey(ctx, caller, kv, "auto"); err != nil {
		t.Fatal(err)
	}
	assertNoDue(t, e, 1) // its scheduled purge only
	e.clock.Advance(40 * day)
	if n, _ := e.svc.SweepKeys(ctx); n != 0 {
		t.Errorf("SweepKeys after delete = %d rotations, want 0", n)
	}
}
