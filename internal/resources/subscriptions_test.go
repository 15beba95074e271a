package resources_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/storage"
)

func TestOffers(t *testing.T) {
	tests := []struct {
		offer   resources.Offer
		paid    bool
		quotaID string
		limit   string
	}{
		{resources.PayAsYouGo, true, "PayAsYouGo_2014-09-01", "Off"},
		{resources.EnterpriseAgreement, true, "EnterpriseAgreement_2014-09-01", "Off"},
		{resources.MicrosoftCustomerAgreement, true, "PayAsYouGo_2014-09-01", "Off"},
		{resources.FreeTrial, false, "FreeTrial_2014-09-01", "On"},
		{resources.MSDN, false, "MSDN_2014-09-01", "On"},
		{resources.Sponsorship, false, "Sponsored_2016-01-01", "On"},
		{resources.LegacySupport, false, "Default_2014-09-01", "On"},
	}
	if len(tests) != len(resources.Offers) {
		t.Fatalf("the table covers %d offers, the package has %d", len(tests), len(resources.Offers))
	}
	for _, tc := range tests {
		t.Run(string(tc.offer), func(t *testing.T) {
			if got := tc.offer.Paid(); got != tc.paid {
				t.Errorf("Paid() = %v, want %v", got, tc.paid)
			}
			if got := tc.offer.QuotaID(); got != tc.quotaID {
				t.Errorf("QuotaID() = %q, want %q", got, tc.quotaID)
			}
			if got := tc.offer.SpendingLimit(); got != tc.limit {
				t.Errorf("SpendingLimit() = %q, want %q", got, tc.limit)
			}
			if tc.offer.DisplayName() == "" {
				t.Error("DisplayName() is empty")
			}
			if got, err := resources.ParseOffer(strings.ToLower(string(tc.offer))); err != nil || got != tc.offer {
				t.Errorf("ParseOffer(%q) = %q, %v", strings.ToLower(string(tc.offer)), got, err)
			}
		})
	}
	for in, want := range map[string]resources.Offer{"": resources.PayAsYouGo, "Pay-As-You-Go": resources.PayAsYouGo, "ms-azr-0017p": resources.EnterpriseAgreement} {
		if got, err := resources.ParseOffer(in); err != nil || got != want {
			t.Errorf("ParseOffer(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := resources.ParseOffer("Gold")
	wantErr(t, `ParseOffer("Gold")`, err, errkind.Invalid, "")
}

func TestCreateAuthorization(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	contoso := e.contoso.Tenant.ID
	tests := []struct {
		name   string
		caller directory.Caller
		tenant string
		offer  resources.Offer
		want   errkind.Kind
	}{
		{"operator any offer", e.operator(), contoso, resources.EnterpriseAgreement, none},
		{"operator unpaid offer", e.operator(), contoso, resources.FreeTrial, none},
		{"system", directory.System, contoso, resources.MicrosoftCustomerAgreement, none},
		{"GA Pay-As-You-Go", e.ga(), contoso, resources.PayAsYouGo, none},
		{"GA default offer", e.ga(), "", "", none},
		{"GA service principal", spCaller(e.contoso), contoso, resources.PayAsYouGo, none},
		{"GA Enterprise Agreement", e.ga(), contoso, resources.EnterpriseAgreement, errkind.PermissionDenied},
		{"GA free trial", e.ga(), contoso, resources.FreeTrial, errkind.PermissionDenied},
		{"plain user", userCaller(e.alice), contoso, resources.PayAsYouGo, errkind.PermissionDenied},
		{"GA of another tenant", userCaller(e.fabrikam.Admin), contoso, resources.PayAsYouGo, errkind.PermissionDenied},
		{"unknown offer", e.operator(), contoso, "Gold", errkind.Invalid},
		{"unknown tenant", e.operator(), "6a0f1c33-1a9b-4f5b-9a57-0d8b2f1d9a11", resources.PayAsYouGo, errkind.NotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.svc.Create(ctx, tc.caller, resources.SubscriptionSpec{TenantID: tc.tenant, Offer: tc.offer})
			code := ""
			if tc.want == errkind.PermissionDenied {
				code = resources.CodeAuthorizationFailed
			}
			wantErr(t, "Create()", err, tc.want, code)
			if tc.want != none {
				return
			}
			want := tc.offer
			if want == "" {
				want = resources.PayAsYouGo
			}
			if s.TenantID != contoso || s.Offer != want || s.State != resources.Enabled || !directory.IsGUID(s.ID) {
				t.Errorf("Create() = %+v, want an Enabled %s subscription of %s", s, want, contoso)
			}
			if s.DisplayName != want.DisplayName() {
				t.Errorf("DisplayName = %q, want the offer's %q", s.DisplayName, want.DisplayName())
			}
			got, err := e.svc.Get(ctx, strings.ToUpper(s.ID))
			if err != nil || got.ID != s.ID {
				t.Errorf("Get(%s) = %+v, %v", s.ID, got, err)
			}
		})
	}
	if denied := e.events(contoso, "resources/subscriptions/create"); !slices.ContainsFunc(denied, func(ev auditEvent) bool {
		return ev.Result == "denied" && ev.Actor.ID == e.alice.ID
	}) {
		t.Error("the plain user's refused create left no denied audit record in the tenant")
	}
	list, err := e.svc.List(ctx, contoso)
	if err != nil || len(list) != 6 {
		t.Errorf("List(contoso) = %d subscriptions, %v; want 6", len(list), err)
	}
	all, err := e.svc.List(ctx, "")
	if err != nil || len(all) != 6 {
		t.Errorf("List(\"\") = %d subscriptions, %v; want 6", len(all), err)
	}
	if list, _ := e.svc.List(ctx, e.fabrikam.Tenant.ID); len(list) != 0 {
		t.Errorf("List(fabrikam) = %v, want none", list)
	}
}

func TestCreateOwners(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		caller func(t *testing.T, e *env) directory.Caller
		owners func(e *env) []string
		want   func(e *env) []string
		kind   errkind.Kind
	}{
		{"operator: first admins", asOperator, nil,
			func(e *env) []string { return e.contoso.Tenant.FirstAdmins }, none},
		{"first admin: no duplicate", asGA, nil,
			func(e *env) []string { return e.contoso.Tenant.FirstAdmins }, none},
		{"another Global Administrator: first admins and creator", func(t *testing.T, e *env) directory.Caller {
			if _, err := e.dir.AssignRole(ctx, directory.System, e.contoso.Tenant.ID, directory.GlobalAdministrator.ID, e.alice.ID); err != nil {
				t.Fatal(err)
			}
			return userCaller(e.alice)
		}, nil, func(e *env) []string { return append(slices.Clone(e.contoso.Tenant.FirstAdmins), e.alice.ID) }, none},
		{"named owners", asOperator, func(e *env) []string { return []string{strings.ToUpper(e.alice.ID), e.alice.ID} },
			func(e *env) []string { return []string{e.alice.ID} }, none},
		{"named owner of another tenant", asOperator, func(e *env) []string { return []string{e.fabrikam.Admin.ID} }, nil, errkind.Invalid},
		{"named owner not a GUID", asOperator, func(e *env) []string { return []string{"alice"} }, nil, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			spec := resources.SubscriptionSpec{TenantID: e.contoso.Tenant.ID}
			if tc.owners != nil {
				spec.Owners = tc.owners(e)
			}
			s, err := e.svc.Create(ctx, tc.caller(t, e), spec)
			wantErr(t, "Create()", err, tc.kind, "")
			if tc.kind != none {
				if got := grants(t, e.st); len(got) != 0 {
					t.Errorf("grants after a refused create = %v", got)
				}
				return
			}
			var want []string
			for _, o := range tc.want(e) {
				want = append(want, s.ResourceID().Key()+"|"+o)
			}
			slices.Sort(want)
			if got := grants(t, e.st); !slices.Equal(got, want) {
				t.Errorf("committed grants = %v, want %v", got, want)
			}
		})
	}
}

func asOperator(_ *testing.T, e *env) directory.Caller { return e.operator() }
func asGA(_ *testing.T, e *env) directory.Caller       { return e.ga() }

// TestCreateGrantsInOneTransaction makes the second owner grant fail and
// checks that nothing of the subscription, its first grant or its audit
// record was kept.
func TestCreateGrantsInOneTransaction(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.granter.failOn = e.contoso.Tenant.FirstAdmins[1]
	const id = "0b7c5f0e-3c1d-4c55-8a0e-5f2f9e3d6a01"
	_, err := e.svc.Create(ctx, e.operator(), resources.SubscriptionSpec{TenantID: e.contoso.Tenant.ID, ID: id})
	if err == nil {
		t.Fatal("Create() with a failing granter succeeded")
	}
	if len(e.granter.calls) != 2 || !strings.HasPrefix(e.granter.calls[0], "/subscriptions/"+id+" ") {
		t.Errorf("granter calls = %v, want two at /subscriptions/%s", e.granter.calls, id)
	}
	_, err = e.svc.Get(ctx, id)
	wantErr(t, "Get() after the failed create", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
	if list, _ := e.svc.List(ctx, e.contoso.Tenant.ID); len(list) != 0 {
		t.Errorf("List() after the failed create = %v", list)
	}
	if got := grants(t, e.st); len(got) != 0 {
		t.Errorf("grants after the failed create = %v, want none (the first one rolled back)", got)
	}
	if evs := e.events(e.contoso.Tenant.ID, "resources/subscriptions/create"); len(evs) != 0 {
		t.Errorf("audit records of the failed create = %v", evs)
	}
	e.granter.failOn = ""
	if _, err := e.svc.Create(ctx, e.operator(), resources.SubscriptionSpec{TenantID: e.contoso.Tenant.ID, ID: id}); err != nil {
		t.Fatalf("Create() once the granter works: %v", err)
	}
	if got := grants(t, e.st); len(got) != 2 {
		t.Errorf("grants = %v, want 2", got)
	}
	calls := e.granter.calls[len(e.granter.calls)-2:]
	wantCalls := []string{
		"/subscriptions/" + id + " " + e.contoso.Admin.ID + " user " + e.op.Admin.ID,
		"/subscriptions/" + id + " " + e.contoso.AdminSP.ID + " servicePrincipal " + e.op.Admin.ID,
	}
	if !slices.Equal(calls, wantCalls) {
		t.Errorf("granter calls = %q, want %q", calls, wantCalls)
	}
	if e.granter.invalidated != 1 {
		t.Errorf("Invalidate() called %d times, want once (after the one commit)", e.granter.invalidated)
	}
	_, err = e.svc.Create(ctx, e.operator(), resources.SubscriptionSpec{TenantID: e.contoso.Tenant.ID, ID: id})
	wantErr(t, "Create() with a taken id", err, errkind.AlreadyExists, "")
}

// checkpoint is a state expected at an offset from the cancellation.
type checkpoint struct {
	at   time.Duration
	want resources.State
}

// TestCancel drives the cancellation rules under the fake clock, with and
// without the mandatory retention period.
func TestCancel(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		retention time.Duration // Options.RetentionPeriod; 0 is the default 90 days
		register  bool          // register the mandatory retention period first
		retained  bool
		points    []checkpoint
	}{
		{name: "without retention", points: []checkpoint{
			{0, resources.Disabled}, {90*day - time.Nanosecond, resources.Disabled}, {90 * day, resources.Deleted}}},
		{name: "with retention", register: true, retained: true, points: []checkpoint{
			{0, resources.Enabled}, {90*day - time.Nanosecond, resources.Enabled}, {90 * day, resources.Disabled},
			{180*day - time.Nanosecond, resources.Disabled}, {180 * day, resources.Deleted}}},
		{name: "with a 7-day retention option", retention: 7 * day, register: true, retained: true, points: []checkpoint{
			{0, resources.Enabled}, {7*day - time.Second, resources.Enabled}, {7 * day, resources.Disabled}, {97 * day, resources.Deleted}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *resources.Options) { o.RetentionPeriod = tc.retention })
			s := e.sub()
			if tc.register {
				if _, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled"); err != nil {
					t.Fatal(err)
				}
				e.clock.Advance(featureDelay)
			}
			cancelledAt := e.clock.Now()
			got, err := e.svc.Cancel(ctx, e.ga(), s.ID)
			if err != nil {
				t.Fatalf("Cancel() err = %v", err)
			}
			if !got.Cancelled() || got.Cancellation.Retained != tc.retained || !got.Cancellation.RequestedAt.Equal(cancelledAt) {
				t.Errorf("Cancel() cancellation = %+v, want retained=%v requested at %v", got.Cancellation, tc.retained, cancelledAt)
			}
			if got.State != tc.points[0].want {
				t.Errorf("Cancel() state = %s, want %s", got.State, tc.points[0].want)
			}
			for _, p := range tc.points {
				e.clock.Set(cancelledAt.Add(p.at))
				got, err := e.svc.Get(ctx, s.ID)
				if err != nil || got.State != p.want {
					t.Fatalf("at +%v: Get() state = %s, %v; want %s", p.at, got.State, err, p.want)
				}
				err = resources.Usable(got)
				switch p.want {
				case resources.Enabled:
					wantErr(t, "Usable()", err, none, "")
				case resources.Disabled:
					wantErr(t, "Usable()", err, errkind.FailedPrecondition, resources.CodeReadOnlyDisabledSubscription)
					if !strings.Contains(err.Error(), "is disabled (cancelled on "+cancelledAt.Format("2006-01-02")) ||
						!strings.Contains(err.Error(), "its vaults cannot be used until it is reactivated") {
						t.Errorf("Usable() message = %q", err)
					}
				case resources.Deleted:
					wantErr(t, "Usable()", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
				}
				if err2 := e.svc.CheckUsable(ctx, s.ID); errkind.KindOf(err2) != errkind.KindOf(err) || (err == nil) != (err2 == nil) {
					t.Errorf("CheckUsable() = %v, Usable() = %v", err2, err)
				}
				// Disabled subscriptions are read-only.
				_, _, err = e.svc.CreateOrUpdateGroup(ctx, e.ga(), s.ID, "rg", resources.GroupSpec{Location: "westeurope"})
				if (err == nil) != (p.want == resources.Enabled) {
					t.Errorf("at +%v (%s): CreateOrUpdateGroup() err = %v", p.at, p.want, err)
				}
			}
			again, err := e.svc.Cancel(ctx, e.ga(), s.ID)
			if err != nil || !again.Cancellation.RequestedAt.Equal(cancelledAt) {
				t.Errorf("Cancel() again = %+v, %v; want the first cancellation unchanged", again.Cancellation, err)
			}
		})
	}
}

func TestCancelAuthorization(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tests := []struct {
		name   string
		caller directory.Caller
		want   errkind.Kind
	}{
		{"plain user", userCaller(e.alice), errkind.PermissionDenied},
		{"GA of another tenant", userCaller(e.fabrikam.Admin), errkind.PermissionDenied},
		{"GA", e.ga(), none},
		{"operator", e.operator(), none},
		{"GA service principal", spCaller(e.contoso), none},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := e.sub()
			_, err := e.svc.Cancel(ctx, tc.caller, s.ID)
			wantErr(t, "Cancel()", err, tc.want, "")
			_, err = e.svc.Reactivate(ctx, tc.caller, s.ID)
			wantErr(t, "Reactivate()", err, tc.want, "")
		})
	}
	_, err := e.svc.Cancel(ctx, e.ga(), "8d1f0c9e-2b6a-4a43-9d1e-5c4b3a2f1e00")
	wantErr(t, "Cancel(unknown)", err, errkind.NotFound, resources.CodeSubscriptionNotFound)
}

func TestReactivate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()

	// Disabled (no retention) -> reactivated.
	s := e.sub()
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * day)
	got, err := e.svc.Reactivate(ctx, e.ga(), s.ID)
	if err != nil || got.State != resources.Enabled || got.Cancelled() {
		t.Fatalf("Reactivate() of a disabled subscription = %+v, %v", got, err)
	}
	e.clock.Advance(200 * day)
	if got, _ := e.svc.Get(ctx, s.ID); got.State != resources.Enabled {
		t.Errorf("a reactivated subscription later has state %s, want Enabled", got.State)
	}

	// Deleted -> refused.
	s2 := e.sub()
	if _, err := e.svc.Cancel(ctx, e.ga(), s2.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(90 * day)
	_, err = e.svc.Reactivate(ctx, e.ga(), s2.ID)
	wantErr(t, "Reactivate() of a deleted subscription", err, errkind.FailedPrecondition, resources.CodeSubscriptionDeleted)

	// Not cancelled -> no change.
	s3 := e.sub()
	if got, err := e.svc.Reactivate(ctx, e.ga(), s3.ID); err != nil || got.State != resources.Enabled {
		t.Errorf("Reactivate() of an enabled subscription = %+v, %v", got, err)
	}
}

func TestSetState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	for _, st := range []resources.State{resources.Warned, resources.PastDue, resources.Enabled} {
		got, err := e.svc.SetState(ctx, e.operator(), s.ID, st)
		if err != nil || got.State != st {
			t.Fatalf("SetState(%s) = %s, %v", st, got.State, err)
		}
		if err := resources.Usable(got); err != nil {
			t.Errorf("Usable() of a %s subscription = %v", st, err)
		}
	}
	if evs := e.events(e.contoso.Tenant.ID, "resources/subscriptions/setState"); len(evs) != 3 {
		t.Errorf("setState audit records = %d, want 3", len(evs))
	}
	tests := []struct {
		name   string
		caller directory.Caller
		state  resources.State
		want   errkind.Kind
	}{
		{"GA may not", e.ga(), resources.Warned, errkind.PermissionDenied},
		{"Disabled is reached by cancelling", e.operator(), resources.Disabled, errkind.Invalid},
		{"Deleted is reached by cancelling", e.operator(), resources.Deleted, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.SetState(ctx, tc.caller, s.ID, tc.state)
			wantErr(t, "SetState()", err, tc.want, "")
		})
	}
	// A Warned subscription under retention stays Warned until the period ends.
	if _, err := e.svc.SetState(ctx, e.operator(), s.ID, resources.Warned); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(featureDelay)
	if got, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil || got.State != resources.Warned {
		t.Fatalf("Cancel() under retention = %s, %v; want Warned", got.State, err)
	}
	_, err := e.svc.SetState(ctx, e.operator(), s.ID, resources.Enabled)
	wantErr(t, "SetState() of a cancelled subscription", err, errkind.Conflict, resources.CodeSubscriptionCancelled)
}

// TestSweepAndRestart checks that Sweep materializes and audits each
// transition once, and that a restarted service derives the same states
// from what is stored.
func TestSweepAndRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tid := e.contoso.Tenant.ID
	protected, plain := e.sub(), e.sub()
	if _, err := e.svc.RegisterFeature(ctx, e.ga(), protected.ID, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if f, err := e.svc.Feature(ctx, protected.ID, "microsoft.resources", "MANDATORYRETENTIONPERIODENABLED"); err != nil || f.State != resources.Registering {
		t.Fatalf("after a restart, the feature is %s, %v; want Registering", f.State, err)
	}
	e.clock.Advance(featureDelay)
	if err := e.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := storedState(t, e.st, "resources/feature/"+protected.ID+"/microsoft.resources/mandatoryretentionperiodenabled"); got != "Registered" {
		t.Errorf("stored feature state after Sweep = %q, want Registered", got)
	}
	fevs := e.events(tid, "resources/features/stateChange")
	if len(fevs) != 1 || fevs[0].Actor.Type != "system" || !strings.Contains(fevs[0].Reason, "Registering -> Registered") {
		t.Errorf("feature stateChange records = %+v, want one by the system", fevs)
	}

	cancelledAt := e.clock.Now()
	for _, s := range []resources.Subscription{protected, plain} {
		if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	e.restart()
	steps := []struct {
		at                  time.Duration
		protected, plain    resources.State
		stateChangesSoFar   int
		storedProtectedWant string
	}{
		{1 * day, resources.Enabled, resources.Disabled, 0, "Enabled"},
		{90 * day, resources.Disabled, resources.Deleted, 2, "Disabled"},
		{180 * day, resources.Deleted, resources.Deleted, 3, "Deleted"},
	}
	for _, st := range steps {
		e.clock.Set(cancelledAt.Add(st.at))
		for i := 0; i < 2; i++ { // a second Sweep finds nothing to do
			if err := e.svc.Sweep(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := storedState(t, e.st, "resources/sub/"+protected.ID); got != st.storedProtectedWant {
			t.Errorf("at +%v: stored state = %q, want %q", st.at, got, st.storedProtectedWant)
		}
		if evs := e.events(tid, "resources/subscriptions/stateChange"); len(evs) != st.stateChangesSoFar {
			t.Errorf("at +%v: %d stateChange records, want %d: %+v", st.at, len(evs), st.stateChangesSoFar, evs)
		}
		e.restart()
		list, err := e.svc.List(ctx, tid)
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]resources.State{}
		for _, s := range list {
			states[s.ID] = s.State
		}
		if states[protected.ID] != st.protected || states[plain.ID] != st.plain {
			t.Errorf("at +%v after a restart: protected %s plain %s; want %s and %s",
				st.at, states[protected.ID], states[plain.ID], st.protected, st.plain)
		}
	}
	for _, ev := range e.events(tid, "resources/subscriptions/stateChange") {
		if ev.Actor.Type != "system" || ev.Result != "success" {
			t.Errorf("stateChange record %+v, want a successful one by the system", ev)
		}
	}
}

// TestLazyStateWithoutSweep checks that readers never depend on Sweep, and
// that a write settling a stale record audits each milestone it passed.
func TestLazyStateWithoutSweep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	s := e.sub()
	if _, err := e.svc.RegisterFeature(ctx, e.ga(), s.ID, resources.MandatoryRetentionNamespace, resources.MandatoryRetentionName); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(featureDelay)
	if ok, err := e.svc.Protected(ctx, s.ID); err != nil || !ok {
		t.Fatalf("Protected() = %v, %v; want true without a Sweep", ok, err)
	}
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(200 * day)
	if got, _ := e.svc.Get(ctx, s.ID); got.State != resources.Deleted {
		t.Fatalf("Get() = %s, want Deleted without a Sweep", got.State)
	}
	// Cancelling again settles the record: both milestones are audited.
	if _, err := e.svc.Cancel(ctx, e.ga(), s.ID); err != nil {
		t.Fatal(err)
	}
	evs := e.events(e.contoso.Tenant.ID, "resources/subscriptions/stateChange")
	if len(evs) != 2 || !strings.Contains(evs[0].Reason, "Enabled -> Disabled") || !strings.Contains(evs[1].Reason, "Disabled -> Deleted") {
		t.Errorf("stateChange records = %+v, want Enabled -> Disabled and Disabled -> Deleted", evs)
	}
}

func storedState(t *testing.T, st storage.Backend, key string) string {
	t.Helper()
	e, err := storage.Get(context.Background(), st, key)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	var v struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(e.Value, &v); err != nil {
		t.Fatal(err)
	}
	return v.State
}
