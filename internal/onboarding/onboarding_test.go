package onboarding_test

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/vault"
)

var (
	vaultDeps = []string{onboarding.RuleSoftDeleteRetention, onboarding.RuleRecoveryLevel, onboarding.RuleKeyExistsInVault}
	keyDeps   = []string{onboarding.RuleKeyOperationsSupported, onboarding.RuleKeySizeSupported, onboarding.RuleKeyEnabled,
		onboarding.RuleKeyNeverExpires, onboarding.RuleKeyAccessPermissions}
)

func failedNames(r onboarding.Request) []string {
	var out []string
	for _, v := range r.FailedValidations {
		if !slices.Contains(out, v.RuleName) {
			out = append(out, v.RuleName)
		}
	}
	sort.Strings(out)
	return out
}

func TestAllPass(t *testing.T) {
	e := newEnv(t)
	for _, sc := range []string{"mdep", "EXO"} {
		r, err := e.svc.Submit(e.ctx, e.admin, e.spec(sc, "Enable"))
		if err != nil {
			t.Fatalf("Submit(%s, Enable) err = %v", sc, err)
		}
		if r.ValidationResult != onboarding.Success || r.EnablementResult != onboarding.Success {
			t.Fatalf("Submit(%s, Enable) = %s/%s, want Success/Success; failed: %+v", sc, r.ValidationResult, r.EnablementResult, r.FailedValidations)
		}
		// 12 rules per subscription (no KeyIdentifierValid without identifiers) + 4 request-wide.
		if got := len(r.PassedValidations); got != 2*12+4 {
			t.Errorf("PassedValidations = %d, want %d", got, 2*12+4)
		}
		for _, v := range r.PassedValidations {
			if v.Scope == "" || v.ExpectedValue == "" || v.ActualValue == "" || v.Details == "" {
				t.Errorf("incomplete validation %+v", v)
			}
		}
		e.clock.Advance(time.Second)
	}
	got, err := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID)
	if err != nil || !slices.Equal(got, []onboarding.Scenario{onboarding.EXO, onboarding.MDEP}) {
		t.Errorf("EnabledScenarios = %v, %v; want [EXO MDEP]", got, err)
	}
	if got, _ := e.svc.EnabledScenarios(e.ctx, e.other.Tenant.ID); len(got) != 0 {
		t.Errorf("EnabledScenarios(other) = %v, want none", got)
	}
	// Stored, listed, and audited.
	list, err := e.svc.List(e.ctx, e.admin, e.org.Tenant.ID)
	if err != nil || len(list) != 2 || list[0].Scenario != onboarding.MDEP {
		t.Fatalf("List = %+v, %v", list, err)
	}
	one, err := e.svc.Get(e.ctx, e.admin, e.org.Tenant.ID, list[1].ID)
	if err != nil || one.ID != list[1].ID || one.EnablementResult != onboarding.Success {
		t.Errorf("Get = %+v, %v", one, err)
	}
	page, err := e.audit.List(e.ctx, e.org.Tenant.ID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var creates, enables int
	for _, ev := range page.Events {
		switch ev.Action {
		case "onboarding/requests/create":
			creates++
		case "onboarding/scenarios/enable":
			enables++
		}
	}
	if creates != 2 || enables != 2 {
		t.Errorf("audit: %d creates, %d enables; want 2, 2", creates, enables)
	}
	// The wire names are the seed's.
	b, _ := json.Marshal(one)
	for _, f := range []string{`"ID"`, `"CreatedDate"`, `"Organization"`, `"Scenario"`, `"Subscription1"`, `"VaultName2"`, `"KeyName2"`,
		`"OnboardingMode"`, `"ValidationResult"`, `"EnablementResult"`, `"PassedValidations"`, `"FailedValidations"`, `"RuleName"`,
		`"Scope"`, `"ExpectedValue"`, `"ActualValue"`, `"Details"`} {
		if !strings.Contains(string(b), f) {
			t.Errorf("JSON lacks %s: %s", f, b)
		}
	}
	if strings.Contains(string(b), "KeyIdentifier1") {
		t.Errorf("JSON has an empty KeyIdentifier1: %s", b)
	}
}

func TestKeyIdentifiers(t *testing.T) {
	e := newEnv(t)
	k1, err := e.kv.GetKey(e.ctx, "ckvault1", "key1", "")
	if err != nil {
		t.Fatal(err)
	}
	s := e.spec("MDEP", "Validate")
	s.VaultName1, s.KeyName1, s.VaultName2, s.KeyName2 = "", "", "", ""
	s.KeyIdentifier1 = "https://ckvault1.vault.test:8443/keys/key1/" + k1.Ref.Version
	s.KeyIdentifier2 = "https://ckvault2.vault.test/keys/key2"
	r, err := e.svc.Submit(e.ctx, e.admin, s)
	if err != nil || r.ValidationResult != onboarding.Success {
		t.Fatalf("Submit = %s, %v; failed %+v", r.ValidationResult, err, r.FailedValidations)
	}
	if r.VaultName1 != "ckvault1" || r.KeyName2 != "key2" || r.EnablementResult != onboarding.NotApplicable {
		t.Errorf("request = %+v", r)
	}
	s.Subscription2 = ""
	if _, err := e.svc.Submit(e.ctx, e.admin, s); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("KeyIdentifier2 without Subscription2: err = %v, want Invalid", err)
	}
}

func TestSpecErrors(t *testing.T) {
	e := newEnv(t)
	for _, sc := range []string{"SPO", "", "sharepoint"} {
		_, err := e.svc.Submit(e.ctx, e.admin, e.spec(sc, "Validate"))
		if !errkind.Is(err, errkind.Invalid) || !strings.Contains(err.Error(), "MDEP") || !strings.Contains(err.Error(), "EXO") ||
			!strings.Contains(err.Error(), "legacy") || !strings.Contains(err.Error(), "Managed HSM") {
			t.Errorf("Submit(scenario %q) err = %v, want Invalid naming MDEP, EXO and the legacy path", sc, err)
		}
	}
	if _, err := e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Frobnicate")); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("bad mode: err = %v, want Invalid", err)
	}
}

// TestRules makes each rule fail alone where it can; where a rule is
// derived from others (RecoveryLevel from soft delete and the retention
// period) or presupposes them, the others that must fail with it are named.
func TestRules(t *testing.T) {
	type mutate func(e *env, s *onboarding.Spec)
	cases := []struct {
		name      string
		scenario  string
		mutate    mutate
		rule      string
		scope     string
		expected  string
		actual    string // prefix
		alsoFails []string
	}{
		{name: "MandatoryRetentionPeriodState", rule: onboarding.RuleMandatoryRetentionPeriodState, scope: sub2[:5],
			expected: "Registered", actual: "NotRegistered", alsoFails: []string{onboarding.RuleRecoveryLevel},
			mutate: func(e *env, _ *onboarding.Spec) { e.unregisterFeature(sub2) }},
		{name: "RecoveryLevel", rule: onboarding.RuleRecoveryLevel, scope: sub2[:5],
			expected: "Recoverable+ProtectedSubscription", actual: "Recoverable+Purgeable",
			alsoFails: []string{onboarding.RuleMandatoryRetentionPeriodState},
			mutate:    func(e *env, _ *onboarding.Spec) { e.unregisterFeature(sub2) }},
		{name: "SubscriptionInRequestOrganization", rule: onboarding.RuleSubscriptionInRequestOrganization, scope: subOther[:5],
			actual: "another tenant",
			alsoFails: append(append([]string{onboarding.RuleSubscriptionOfferIsPaid, onboarding.RuleMandatoryRetentionPeriodState,
				onboarding.RuleVaultExistsinSubscription}, vaultDeps...), keyDeps...),
			mutate: func(e *env, s *onboarding.Spec) { s.Subscription2 = subOther }},
		{name: "VaultExistsinSubscription", rule: onboarding.RuleVaultExistsinSubscription, scope: sub2[:5],
			expected: "Exists", actual: "NotFound", alsoFails: append(slices.Clone(vaultDeps), keyDeps...),
			mutate: func(e *env, s *onboarding.Spec) { s.VaultName2 = "ckvault1" }}, // exists, but in the other subscription
		{name: "SubscriptionUniquePerScenario", rule: onboarding.RuleSubscriptionUniquePerScenario, scope: sub1[:5],
			expected: "unique", actual: "duplicate",
			mutate: func(e *env, s *onboarding.Spec) {
				e.domain(sub1, "ckvault3", "key3", domainOpts{})
				s.Subscription2, s.VaultName2, s.KeyName2 = sub1, "ckvault3", "key3"
			}},
		{name: "SubscriptionsCountPerScenario", rule: onboarding.RuleSubscriptionsCountPerScenario, scope: sub1[:5],
			expected: "2", actual: "1",
			mutate: func(e *env, s *onboarding.Spec) { s.Subscription2, s.VaultName2, s.KeyName2 = "", "", "" }},
		{name: "KeysInDifferentVaults", rule: onboarding.RuleKeysInDifferentVaults, scope: sub1[:5],
			expected: "two different vaults", actual: "both keys in vault ckvault1",
			alsoFails: []string{onboarding.RuleSubscriptionUniquePerScenario},
			mutate: func(e *env, s *onboarding.Spec) {
				e.key("ckvault1", "key1b", vault.KeySpec{Type: vault.KeyTypeRSA})
				s.Subscription2, s.VaultName2, s.KeyName2 = sub1, "ckvault1", "key1b"
			}},
		{name: "KeyOperationsSupported", rule: onboarding.RuleKeyOperationsSupported, scope: sub2[:5],
			expected: "RSA key with key_ops wrapKey, unwrapKey", actual: "RSA key with key_ops encrypt, decrypt",
			mutate: func(e *env, s *onboarding.Spec) {
				e.key("ckvault2", "noWrap", vault.KeySpec{Type: vault.KeyTypeRSA, Ops: []string{"encrypt", "decrypt"}})
				s.KeyName2 = "noWrap"
			}},
		{name: "KeySizeSupported", rule: onboarding.RuleKeySizeSupported, scope: sub2[:5],
			expected: "RSA 2048 to 4096", actual: "EC", alsoFails: []string{onboarding.RuleKeyOperationsSupported},
			mutate: func(e *env, s *onboarding.Spec) {
				e.key("ckvault2", "ec", vault.KeySpec{Type: vault.KeyTypeEC})
				s.KeyName2 = "ec"
			}},
		{name: "KeyNeverExpires", rule: onboarding.RuleKeyNeverExpires, scope: sub2[:5],
			expected: "none", actual: "2030-01-01T00:00:00Z",
			mutate: func(e *env, s *onboarding.Spec) {
				e.key("ckvault2", "expiring", vault.KeySpec{Type: vault.KeyTypeRSA, Expires: ptr(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))})
				s.KeyName2 = "expiring"
			}},
		{name: "KeyEnabled", rule: onboarding.RuleKeyEnabled, scope: sub2[:5], expected: "enabled", actual: "disabled",
			mutate: func(e *env, s *onboarding.Spec) {
				if _, err := e.kv.UpdateKey(e.ctx, e.adminDir(), "ckvault2", "key2", "", vault.KeyUpdate{Enabled: ptr(false)}); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "KeyAccessPermissions not granted", rule: onboarding.RuleKeyAccessPermissions, scope: sub2[:5],
			expected: "get, wrapKey, unwrapKey for M365DataAtRestEncryption", actual: "M365DataAtRestEncryption lacks get, wrapKey, unwrapKey",
			mutate: func(e *env, s *onboarding.Spec) {
				e.keyNoGrant("ckvault2", "ungranted", vault.KeySpec{Type: vault.KeyTypeRSA})
				s.KeyName2 = "ungranted"
			}},
		{name: "KeyAccessPermissions workload not registered", scenario: "EXO", rule: onboarding.RuleKeyAccessPermissions, scope: sub1[:5],
			expected: "get, wrapKey, unwrapKey for Office 365 Exchange Online", actual: "Office 365 Exchange Online (00000002-0000-0ff1-ce00-000000000000) is not registered in the tenant",
			mutate: func(e *env, s *onboarding.Spec) {
				if err := e.dir.DeleteServicePrincipal(e.ctx, e.adminDir(), e.org.Tenant.ID, e.sps[directory.ExchangeAppID].ID); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "OrganizationHasRequiredServicePlan", rule: onboarding.RuleOrganizationHasRequiredServicePlan, expected: "CUSTOMER_KEY", actual: "absent",
			mutate: func(e *env, s *onboarding.Spec) {
				if _, err := e.dir.RemoveLicense(e.ctx, directory.System, e.org.Tenant.ID, "Microsoft 365 E5"); err != nil {
					e.t.Fatal(err)
				}
			}},
		{name: "SubscriptionOfferIsPaid", rule: onboarding.RuleSubscriptionOfferIsPaid, scope: "33333", actual: "FreeTrial",
			mutate: func(e *env, s *onboarding.Spec) {
				e.domain("33333ddd-0000-0000-0000-000000000003", "ckvault3", "key3", domainOpts{offer: resources.FreeTrial})
				e.clock.Advance(2 * featDur)
				s.Subscription2, s.VaultName2, s.KeyName2 = "33333ddd-0000-0000-0000-000000000003", "ckvault3", "key3"
			}},
		{name: "SoftDeleteRetention", rule: onboarding.RuleSoftDeleteRetention, scope: "33333", expected: "enabled, 90 days", actual: "enabled, 30 days",
			alsoFails: []string{onboarding.RuleRecoveryLevel},
			mutate: func(e *env, s *onboarding.Spec) {
				e.domain("33333ddd-0000-0000-0000-000000000003", "ckvault3", "key3", domainOpts{retentionDays: 30})
				e.clock.Advance(2 * featDur)
				s.Subscription2, s.VaultName2, s.KeyName2 = "33333ddd-0000-0000-0000-000000000003", "ckvault3", "key3"
			}},
		{name: "KeyExistsInVault", rule: onboarding.RuleKeyExistsInVault, scope: sub2[:5], expected: "Exists", actual: "NotFound",
			alsoFails: keyDeps,
			mutate:    func(e *env, s *onboarding.Spec) { s.KeyName2 = "nokey" }},
		{name: "KeyIdentifierValid", rule: onboarding.RuleKeyIdentifierValid, scope: sub2[:5], actual: "https://ckvault2.vault.test/secrets/key2",
			alsoFails: append(append([]string{onboarding.RuleVaultExistsinSubscription}, vaultDeps...), keyDeps...),
			mutate: func(e *env, s *onboarding.Spec) {
				s.VaultName2, s.KeyName2, s.KeyIdentifier2 = "", "", "https://ckvault2.vault.test/secrets/key2"
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			sc := tc.scenario
			if sc == "" {
				sc = "MDEP"
			}
			s := e.spec(sc, "Validate")
			tc.mutate(e, &s)
			r, err := e.svc.Submit(e.ctx, e.admin, s)
			if err != nil {
				t.Fatalf("Submit err = %v", err)
			}
			want := append([]string{tc.rule}, tc.alsoFails...)
			sort.Strings(want)
			want = slices.Compact(want)
			if got := failedNames(r); !slices.Equal(got, want) {
				t.Fatalf("failed rules = %v, want %v\n%+v", got, want, r.FailedValidations)
			}
			if r.ValidationResult != onboarding.Failed || r.EnablementResult != onboarding.NotApplicable {
				t.Errorf("results = %s/%s, want Failed/NotApplicable", r.ValidationResult, r.EnablementResult)
			}
			scope := tc.scope
			if scope == "" && tc.rule == onboarding.RuleOrganizationHasRequiredServicePlan {
				scope = e.org.Tenant.ID[:5]
			}
			if tc.rule == onboarding.RuleSubscriptionInRequestOrganization {
				tc.expected = e.org.Tenant.ID
			}
			if tc.rule == onboarding.RuleSubscriptionOfferIsPaid {
				tc.expected = "a paid offer (PayAsYouGo, EnterpriseAgreement, MicrosoftCustomerAgreement)"
			}
			if tc.rule == onboarding.RuleKeyIdentifierValid {
				tc.expected = "https://{vault}.{suffix}/keys/{name}[/{version}]"
			}
			i := slices.IndexFunc(r.FailedValidations, func(v onboarding.Validation) bool { return v.RuleName == tc.rule && v.Scope == scope })
			if i < 0 {
				t.Fatalf("no failed %s with Scope %q: %+v", tc.rule, scope, r.FailedValidations)
			}
			v := r.FailedValidations[i]
			if v.ExpectedValue != tc.expected || !strings.HasPrefix(v.ActualValue, tc.actual) || v.Details == "" {
				t.Errorf("%s = {Expected %q, Actual %q}, want {%q, %q...} with Details", tc.rule, v.ExpectedValue, v.ActualValue, tc.expected, tc.actual)
			}
			for _, f := range r.FailedValidations {
				if f.RuleName != tc.rule && slices.Contains(append(slices.Clone(vaultDeps), keyDeps...), f.RuleName) &&
					slices.Contains(tc.alsoFails, onboarding.RuleVaultExistsinSubscription) && !strings.HasPrefix(f.ActualValue, "not evaluated") {
					t.Errorf("dependent rule %+v should say not evaluated", f)
				}
			}
			// Enable refuses the same request and enables nothing.
			s.Mode = "Enable"
			r, err = e.svc.Submit(e.ctx, e.admin, s)
			if err != nil || r.ValidationResult != onboarding.Failed || r.EnablementResult != onboarding.Failed {
				t.Errorf("Enable = %s/%s, %v; want Failed/Failed", r.ValidationResult, r.EnablementResult, err)
			}
			if got, _ := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID); len(got) != 0 {
				t.Errorf("EnabledScenarios = %v after a failed Enable", got)
			}
		})
	}
}

func TestMandatoryRetentionDetails(t *testing.T) {
	e := newEnv(t)
	e.unregisterFeature(sub2)
	r, err := e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Validate"))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(r.FailedValidations, func(v onboarding.Validation) bool {
		return v.RuleName == onboarding.RuleMandatoryRetentionPeriodState
	})
	d := r.FailedValidations[i].Details
	for _, want := range []string{"customerkey onboarding new", "--onboarding-mode Prepare",
		"customerkey feature show --name mandatoryRetentionPeriodEnabled --namespace Microsoft.Resources --subscription " + sub2} {
		if !strings.Contains(d, want) {
			t.Errorf("Details %q lacks %q", d, want)
		}
	}
}

func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	t.Run("not a Global Administrator", func(t *testing.T) {
		u := e.user(e.org, "reader")
		_, err := e.svc.Submit(e.ctx, u, e.spec("MDEP", "Validate"))
		if !errkind.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "Global Administrator") {
			t.Errorf("err = %v, want PermissionDenied naming Global Administrator", err)
		}
	})
	t.Run("another tenant", func(t *testing.T) {
		_, err := e.svc.Submit(e.ctx, e.otherAdmin, e.spec("MDEP", "Validate"))
		if !errkind.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "tenant") {
			t.Errorf("err = %v, want PermissionDenied at the tenant boundary", err)
		}
	})
	ga := e.user(e.org, "ga", directory.GlobalAdministrator.ID)
	t.Run("no Reader on a vault", func(t *testing.T) {
		e.grant(e.vaultID("ckvault1"), rbac.ReaderID, ga.ObjectID, rbac.PrincipalUser)
		_, err := e.svc.Submit(e.ctx, ga, e.spec("MDEP", "Validate"))
		if !errkind.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "Reader") ||
			!strings.Contains(err.Error(), e.vaultID("ckvault2").String()) {
			t.Errorf("err = %v, want PermissionDenied naming Reader and %s", err, e.vaultID("ckvault2"))
		}
		e.grant(e.vaultID("ckvault2"), rbac.ReaderID, ga.ObjectID, rbac.PrincipalUser)
		r, err := e.svc.Submit(e.ctx, ga, e.spec("MDEP", "Validate"))
		if err != nil || r.ValidationResult != onboarding.Success {
			t.Errorf("with Reader on both: %s, %v", r.ValidationResult, err)
		}
	})
	t.Run("a missing vault is a rule, not a refusal", func(t *testing.T) {
		s := e.spec("MDEP", "Validate")
		s.VaultName2 = "nosuchvault"
		r, err := e.svc.Submit(e.ctx, ga, s)
		if err != nil || !slices.Contains(failedNames(r), onboarding.RuleVaultExistsinSubscription) {
			t.Errorf("Submit = %v, %v", failedNames(r), err)
		}
	})
	t.Run("Prepare without the right to register features", func(t *testing.T) {
		e.unregisterFeature(sub2)
		before := e.feature(sub2)
		_, err := e.svc.Submit(e.ctx, ga, e.spec("MDEP", "Prepare"))
		if !errkind.Is(err, errkind.PermissionDenied) || !strings.Contains(err.Error(), "/subscriptions/"+sub1) {
			t.Errorf("err = %v, want PermissionDenied naming subscription %s", err, sub1)
		}
		if after := e.feature(sub2); after.State != resources.NotRegistered || !after.ChangedAt.Equal(before.ChangedAt) {
			t.Errorf("feature changed by a refused Prepare: %+v", after)
		}
	})
	t.Run("another tenant's requests are not visible", func(t *testing.T) {
		r, err := e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Validate"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.svc.Get(e.ctx, e.otherAdmin, e.org.Tenant.ID, r.ID); !errkind.Is(err, errkind.NotFound) {
			t.Errorf("Get(other tenant) err = %v, want NotFound", err)
		}
		if _, err := e.svc.Get(e.ctx, e.otherAdmin, e.other.Tenant.ID, r.ID); !errkind.Is(err, errkind.NotFound) {
			t.Errorf("Get(own org, foreign id) err = %v, want NotFound", err)
		}
		if l, err := e.svc.List(e.ctx, e.otherAdmin, e.org.Tenant.ID); err != nil || len(l) != 0 {
			t.Errorf("List(other tenant) = %d, %v; want none", len(l), err)
		}
		if _, err := e.svc.Get(e.ctx, e.admin, e.org.Tenant.ID, r.ID); err != nil {
			t.Errorf("Get(own) err = %v", err)
		}
	})
}

func TestPrepare(t *testing.T) {
	e := newEnv(t)
	e.unregisterFeature(sub1)
	e.unregisterFeature(sub2)
	r, err := e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Validate"))
	if err != nil || r.ValidationResult != onboarding.Failed {
		t.Fatalf("Validate before Prepare = %s, %v", r.ValidationResult, err)
	}
	r, err = e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Prepare"))
	if err != nil {
		t.Fatal(err)
	}
	if r.EnablementResult != onboarding.NotApplicable || r.ValidationResult != onboarding.Failed {
		t.Errorf("Prepare results = %s/%s", r.ValidationResult, r.EnablementResult)
	}
	f1 := e.feature(sub1)
	if f1.State != resources.Registering || e.feature(sub2).State != resources.Registering {
		t.Fatalf("after Prepare: %s, %s; want Registering", f1.State, e.feature(sub2).State)
	}
	if len(r.Messages) != 2 || !strings.Contains(r.Messages[0], "Registering") || !strings.Contains(r.Messages[0], f1.ReadyAt.UTC().Format(time.RFC3339)) ||
		!strings.Contains(r.Messages[0], "Validate again") {
		t.Errorf("Messages = %q", r.Messages)
	}
	i := slices.IndexFunc(r.FailedValidations, func(v onboarding.Validation) bool {
		return v.RuleName == onboarding.RuleMandatoryRetentionPeriodState
	})
	if i < 0 || r.FailedValidations[i].ActualValue != "Registering" {
		t.Errorf("MandatoryRetentionPeriodState = %+v", r.FailedValidations)
	}
	// Idempotent: a second Prepare changes nothing.
	if _, err := e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Prepare")); err != nil {
		t.Fatal(err)
	}
	if again := e.feature(sub1); again.State != resources.Registering || !again.ReadyAt.Equal(f1.ReadyAt) {
		t.Errorf("second Prepare: %+v, want unchanged %+v", again, f1)
	}
	e.clock.Advance(featDur)
	r, err = e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Validate"))
	if err != nil || r.ValidationResult != onboarding.Success {
		t.Fatalf("Validate after the delay = %s, %v: %+v", r.ValidationResult, err, r.FailedValidations)
	}
	r, err = e.svc.Submit(e.ctx, e.admin, e.spec("MDEP", "Prepare"))
	if err != nil || r.ValidationResult != onboarding.Success || !strings.Contains(strings.Join(r.Messages, "\n"), "is Registered") {
		t.Errorf("Prepare when Registered = %s, %q, %v", r.ValidationResult, r.Messages, err)
	}
	if got, _ := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID); len(got) != 0 {
		t.Errorf("Prepare enabled %v", got)
	}
}

func TestLegacy(t *testing.T) {
	e := newEnv(t)
	y9999 := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	e.key("ckvault1", "legacy1", vault.KeySpec{Type: vault.KeyTypeRSA, Expires: &y9999})
	e.key("ckvault2", "legacy2", vault.KeySpec{Type: vault.KeyTypeRSA, Expires: &y9999})
	e.key("ckvault2", "soon", vault.KeySpec{Type: vault.KeyTypeRSA, Expires: ptr(time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC))})
	uri := func(v, k string) string { return "https://" + v + ".vault.test:8443/keys/" + k }
	spec := onboarding.LegacySpec{Organization: e.org.Tenant.ID, Scenario: "mdep", Reason: "ManagedHSM",
		KeyURIs: []string{uri("ckvault1", "legacy1"), uri("ckvault2", "legacy2")}}

	bad := spec
	bad.KeyURIs = []string{uri("ckvault1", "legacy1"), uri("ckvault2", "soon")}
	if _, err := e.svc.SubmitLegacy(e.ctx, e.admin, bad); !errkind.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "9999-12-31") {
		t.Errorf("SubmitLegacy(expiry 2031) err = %v, want FailedPrecondition", err)
	}
	if _, err := e.svc.SubmitLegacy(e.ctx, e.otherAdmin, spec); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("SubmitLegacy(other tenant) err = %v, want PermissionDenied", err)
	}
	r, err := e.svc.SubmitLegacy(e.ctx, e.admin, spec)
	if err != nil || r.State != onboarding.Pending || r.Scenario != "MDEP" {
		t.Fatalf("SubmitLegacy = %+v, %v", r, err)
	}
	if _, err := e.svc.ApproveLegacy(e.ctx, e.admin, r.ID); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("ApproveLegacy(tenant admin) err = %v, want PermissionDenied", err)
	}
	op2 := e.user(e.op, "operator2", directory.GlobalAdministrator.ID)
	r, err = e.svc.ApproveLegacy(e.ctx, e.operator, r.ID)
	if err != nil || r.State != onboarding.Pending || len(r.Approvals) != 1 {
		t.Fatalf("first approval = %+v, %v", r, err)
	}
	if _, err := e.svc.ApproveLegacy(e.ctx, e.operator, r.ID); !errkind.Is(err, errkind.Conflict) {
		t.Errorf("same operator twice: err = %v, want Conflict", err)
	}
	if got, _ := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID); len(got) != 0 {
		t.Errorf("enabled after one approval: %v", got)
	}
	r, err = e.svc.ApproveLegacy(e.ctx, op2, r.ID)
	if err != nil || r.State != onboarding.Approved || len(r.Approvals) != 2 {
		t.Fatalf("second approval = %+v, %v", r, err)
	}
	if got, _ := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID); !slices.Equal(got, []onboarding.Scenario{onboarding.MDEP}) {
		t.Errorf("EnabledScenarios = %v, want [MDEP]", got)
	}

	// The keys are checked again at the final approval.
	spec.Scenario, spec.Reason = "SPO", "SharePoint"
	r, err = e.svc.SubmitLegacy(e.ctx, e.admin, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.ApproveLegacy(e.ctx, e.operator, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kv.UpdateKey(e.ctx, e.adminDir(), "ckvault2", "legacy2", "", vault.KeyUpdate{Expires: ptr(time.Date(2032, 1, 1, 0, 0, 0, 0, time.UTC))}); err != nil {
		t.Fatal(err)
	}
	r, err = e.svc.ApproveLegacy(e.ctx, op2, r.ID)
	if err != nil || r.State != onboarding.Rejected || len(r.FailedValidations) != 1 {
		t.Fatalf("final approval of a changed key = %+v, %v", r, err)
	}
	if got, _ := e.svc.EnabledScenarios(e.ctx, e.org.Tenant.ID); slices.Contains(got, onboarding.SPO) {
		t.Errorf("SPO enabled though its key changed: %v", got)
	}
	list, err := e.svc.LegacyRequests(e.ctx, e.operator, e.org.Tenant.ID)
	if err != nil || len(list) != 2 {
		t.Errorf("LegacyRequests(operator) = %d, %v", len(list), err)
	}
	if list, err := e.svc.LegacyRequests(e.ctx, e.otherAdmin, e.org.Tenant.ID); err != nil || len(list) != 0 {
		t.Errorf("LegacyRequests(other tenant) = %d, %v", len(list), err)
	}
}
