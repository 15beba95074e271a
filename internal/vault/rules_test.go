package vault_test

import (
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestRecoveryLevel(t *testing.T) {
	v := func(soft bool, days int, pp bool) vault.Vault {
		return vault.Vault{EnableSoftDelete: soft, SoftDeleteRetentionInDays: days, EnablePurgeProtection: pp}
	}
	tests := []struct {
		name      string
		v         vault.Vault
		protected bool
		level     string
		days      int
	}{
		{"soft delete off", v(false, 90, false), false, vault.LevelPurgeable, 0},
		{"soft delete off, protected subscription", v(false, 90, false), true, vault.LevelPurgeable, 0},
		{"soft delete, 90 days", v(true, 90, false), false, vault.LevelRecoverablePurgeable, 90},
		{"soft delete, retention unset means 90", v(true, 0, false), false, vault.LevelRecoverablePurgeable, 90},
		{"soft delete, 7 days", v(true, 7, false), false, vault.LevelCustomizedRecoverablePurgeable, 7},
		{"soft delete, 89 days", v(true, 89, false), false, vault.LevelCustomizedRecoverablePurgeable, 89},
		{"purge protection, 90 days", v(true, 90, true), false, vault.LevelRecoverable, 90},
		{"purge protection, 30 days", v(true, 30, true), false, vault.LevelCustomizedRecoverable, 30},
		{"purge protection, 90 days, protected", v(true, 90, true), true, vault.LevelRecoverableProtectedSubscription, 90},
		{"purge protection, 30 days, protected", v(true, 30, true), true, vault.LevelCustomizedRecoverableProtectedSubscription, 30},
		// The seed's reading: a protected subscription is enough; the admin
		// who followed the guide has soft delete on and ran Prepare.
		{"no purge protection, 90 days, protected", v(true, 90, false), true, vault.LevelRecoverableProtectedSubscription, 90},
		{"no purge protection, 7 days, protected", v(true, 7, false), true, vault.LevelCustomizedRecoverableProtectedSubscription, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			level, days := vault.RecoveryLevel(tc.v, tc.protected)
			if level != tc.level || days != tc.days {
				t.Errorf("RecoveryLevel() = %q, %d; want %q, %d", level, days, tc.level, tc.days)
			}
		})
	}
	purgeable := map[string]bool{
		vault.LevelPurgeable: true, vault.LevelRecoverablePurgeable: true, vault.LevelCustomizedRecoverablePurgeable: true,
		vault.LevelRecoverable: false, vault.LevelCustomizedRecoverable: false,
		vault.LevelRecoverableProtectedSubscription: false, vault.LevelCustomizedRecoverableProtectedSubscription: false,
	}
	for level, want := range purgeable {
		if got := vault.PurgeAllowed(level); got != want {
			t.Errorf("PurgeAllowed(%q) = %v, want %v", level, got, want)
		}
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"Contoso-EXO-Vault1", true},
		{"a1b", true},
		{"a-b", true},
		{"a" + strings.Repeat("b", 23), true},  // 24
		{"a" + strings.Repeat("b", 24), false}, // 25
		{"ab", false},
		{"", false},
		{"1abc", false},
		{"-abc", false},
		{"abc-", false},
		{"ab--c", false},
		{"ab_c", false},
		{"ab.c", false},
		{"abç", false},
		{"ab c", false},
	}
	for _, tc := range tests {
		if got := vault.ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestNamesAreGlobal(t *testing.T) {
	e := newEnv(t)
	e.create(t, spec("Contoso-Vault1"))

	// Taken in another subscription and tenant, case-insensitively.
	other := spec("contoso-VAULT1")
	other.SubscriptionID, other.TenantID = subB, tenantB
	other.AccessPolicies = nil
	_, _, err := e.svc.CreateOrUpdate(ctx, caller, other)
	wantErr(t, "create taken name in another subscription", err, errkind.AlreadyExists, "VaultAlreadyExists")
	if err != nil && !strings.Contains(errkind.Public(err), "globally unique") {
		t.Errorf("message = %q, want it to say vault names are globally unique", errkind.Public(err))
	}
	// Taken in another resource group of the same subscription.
	rg2 := spec("CONTOSO-vault1")
	rg2.ResourceGroup = "rg2"
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, rg2)
	wantErr(t, "create taken name in another resource group", err, errkind.AlreadyExists, "VaultAlreadyExists")

	check := func(name string, avail bool, reason string) {
		t.Helper()
		got, err := e.svc.CheckNameAvailability(ctx, name)
		if err != nil || got.NameAvailable != avail || got.Reason != reason || (!avail && got.Message == "") {
			t.Errorf("CheckNameAvailability(%q) = %+v, %v; want available %v, reason %q and a message when unavailable", name, got, err, avail, reason)
		}
	}
	check("contoso-vault1", false, "AlreadyExists")
	check("contoso-vault2", true, "")
	check("1-bad", false, "AccountNameInvalid")
	check("bad--name", false, "AccountNameInvalid")

	// Soft-deleted: still reserved, with a message that says how to free it.
	if err := e.svc.Delete(ctx, caller, subA, "RG1", "contoso-vault1"); err != nil {
		t.Fatalf("Delete() err = %v", err)
	}
	check("contoso-vault1", false, "AlreadyExists")
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, spec("contoso-vault1"))
	wantErr(t, "create over a soft-deleted vault", err, errkind.AlreadyExists, "VaultAlreadyExists")
	if msg := errkind.Public(err); !strings.Contains(msg, "deleted but recoverable") || !strings.Contains(msg, "purge") {
		t.Errorf("message = %q, want it to name the deleted but recoverable state and recover/purge", msg)
	}
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, other)
	wantErr(t, "create over a soft-deleted vault of another subscription", err, errkind.AlreadyExists, "VaultAlreadyExists")

	// Purged: the name is free again, for anyone.
	if err := e.svc.Purge(ctx, caller, subA, "westeurope", "contoso-vault1"); err != nil {
		t.Fatalf("Purge() err = %v", err)
	}
	check("contoso-vault1", true, "")
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, other)
	if err != nil || !created || v.Name != "contoso-VAULT1" || v.SubscriptionID != subB {
		t.Errorf("create after purge = %+v, %v, %v; want a new vault in subB named as given", v.Name, created, err)
	}
}

func TestCreateRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*fakeSub)
		edit  func(*vault.Spec)
		kind  errkind.Kind
		code  string
	}{
		{"invalid name", nil, func(s *vault.Spec) { s.Name = "1vault" }, errkind.Invalid, "VaultNameNotValid"},
		{"consecutive hyphens", nil, func(s *vault.Spec) { s.Name = "my--vault" }, errkind.Invalid, "VaultNameNotValid"},
		{"unknown subscription", nil, func(s *vault.Spec) { s.SubscriptionID = "ffffffff-0000-0000-0000-000000000000" }, errkind.NotFound, "SubscriptionNotFound"},
		{"disabled subscription", func(f *fakeSub) { f.disabled = true }, nil, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription"},
		{"provider not registered", func(f *fakeSub) { f.registered = false }, nil, errkind.Conflict, "MissingSubscriptionRegistration"},
		{"unknown resource group", nil, func(s *vault.Spec) { s.ResourceGroup = "nope" }, errkind.NotFound, "ResourceGroupNotFound"},
		{"unknown location", nil, func(s *vault.Spec) { s.Location = "moonbase" }, errkind.Invalid, "LocationNotAvailableForResourceType"},
		{"tenant of another subscription", nil, func(s *vault.Spec) { s.TenantID = tenantB }, errkind.Invalid, "InvalidTenantId"},
		{"no tenant", nil, func(s *vault.Spec) { s.TenantID = "" }, errkind.Invalid, ""},
		{"no sku", nil, func(s *vault.Spec) { s.SKU = vault.SKU{} }, errkind.Invalid, ""},
		{"bad sku", nil, func(s *vault.Spec) { s.SKU.Name = "gold" }, errkind.Invalid, ""},
		{"bad sku family", nil, func(s *vault.Spec) { s.SKU.Family = "B" }, errkind.Invalid, ""},
		{"soft delete off", nil, func(s *vault.Spec) { s.EnableSoftDelete = ptr(false) }, errkind.Invalid, "SoftDeleteCannotBeDisabled"},
		{"retention 6", nil, func(s *vault.Spec) { s.SoftDeleteRetentionInDays = ptr(6) }, errkind.Invalid, ""},
		{"retention 91", nil, func(s *vault.Spec) { s.SoftDeleteRetentionInDays = ptr(91) }, errkind.Invalid, ""},
		{"bad create mode", nil, func(s *vault.Spec) { s.CreateMode = "clone" }, errkind.Invalid, ""},
		{"bad public network access", nil, func(s *vault.Spec) { s.PublicNetworkAccess = "sometimes" }, errkind.Invalid, ""},
		{"bad network bypass", nil, func(s *vault.Spec) { s.NetworkACLs = &vault.NetworkACLs{Bypass: "Everyone"} }, errkind.Invalid, ""},
		{"51 tags", nil, func(s *vault.Spec) {
			s.Tags = map[string]string{}
			for i := range 51 {
				s.Tags[strings.Repeat("t", i+1)] = "v"
			}
		}, errkind.Invalid, "InvalidTag"},
		{"tag name too long", nil, func(s *vault.Spec) { s.Tags = map[string]string{strings.Repeat("n", 513): "v"} }, errkind.Invalid, "InvalidTag"},
		{"tag value too long", nil, func(s *vault.Spec) { s.Tags = map[string]string{"n": strings.Repeat("v", 257)} }, errkind.Invalid, "InvalidTag"},
		{"tag name with slash", nil, func(s *vault.Spec) { s.Tags = map[string]string{"a/b": "v"} }, errkind.Invalid, "InvalidTagNameCharacters"},
		{"recover with nothing deleted", nil, func(s *vault.Spec) { s.CreateMode = "recover" }, errkind.NotFound, "ResourceNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if tc.setup != nil {
				e.subs.set(subA, tc.setup)
			}
			s := spec("refused-vault")
			if tc.edit != nil {
				tc.edit(&s)
			}
			_, _, err := e.svc.CreateOrUpdate(ctx, caller, s)
			wantErr(t, "CreateOrUpdate()", err, tc.kind, tc.code)
			if got, _ := e.svc.CheckNameAvailability(ctx, "refused-vault"); !got.NameAvailable {
				t.Errorf("after a refused create the name is taken: %+v", got)
			}
		})
	}
}

func TestMissingRegistrationMessage(t *testing.T) {
	e := newEnv(t)
	e.subs.set(subA, func(f *fakeSub) { f.registered = false })
	_, _, err := e.svc.CreateOrUpdate(ctx, caller, spec("unregistered"))
	const want = "The subscription is not registered to use namespace 'Microsoft.KeyVault'. See https://aka.ms/rps-not-found for how to register subscriptions."
	if got := errkind.Public(err); got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	tenantMsg := spec("wrong-tenant")
	tenantMsg.TenantID = tenantB
	e.subs.set(subA, func(f *fakeSub) { f.registered = true })
	_, _, err = e.svc.CreateOrUpdate(ctx, caller, tenantMsg)
	if got := errkind.Public(err); !strings.Contains(got, tenantA) {
		t.Errorf("tenant mismatch message = %q, want it to name the expected tenant %s", got, tenantA)
	}
}

func TestCreateDefaults(t *testing.T) {
	e := newEnv(t)
	s := spec("Defaults-Vault")
	s.Location = "West Europe"
	s.SKU = vault.SKU{Name: "Standard"}
	v := e.create(t, s)
	checks := []struct {
		what      string
		got, want any
	}{
		{"Name", v.Name, "Defaults-Vault"},
		{"Location", v.Location, "westeurope"},
		{"SKU", v.SKU, vault.SKU{Family: "A", Name: "standard"}},
		{"EnableSoftDelete", v.EnableSoftDelete, true},
		{"SoftDeleteRetentionInDays", v.SoftDeleteRetentionInDays, 90},
		{"EnablePurgeProtection", v.EnablePurgeProtection, false},
		{"EnableRbacAuthorization", v.EnableRbacAuthorization, false},
		{"PublicNetworkAccess", v.PublicNetworkAccess, "Enabled"},
		{"ProvisioningState", v.ProvisioningState, "Succeeded"},
		{"VaultURI", v.VaultURI, "https://defaults-vault.vault.test:8443/"},
		{"CreatedBy", v.CreatedBy.ID, userA},
		{"CreatedAt", v.CreatedAt, e.clock.Now()},
		{"ResourceID", v.ResourceID().String(), "/subscriptions/" + subA + "/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/Defaults-Vault"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
	if v.UID == "" {
		t.Error("UID is empty")
	}
	got, err := e.svc.Get(ctx, subA, "RG1", "defaults-vault")
	if err != nil || got.UID != v.UID || got.VaultURI != v.VaultURI {
		t.Errorf("Get() = %+v, %v; want the created vault", got, err)
	}
	byName, err := e.svc.ByName(ctx, "DEFAULTS-VAULT")
	if err != nil || byName.UID != v.UID {
		t.Errorf("ByName() = %+v, %v; want the created vault", byName, err)
	}
	for _, c := range []struct{ sub, rg, name string }{{subA, "rg2", "defaults-vault"}, {subB, "rg1", "defaults-vault"}, {subA, "rg1", "other-vault"}} {
		if _, err := e.svc.Get(ctx, c.sub, c.rg, c.name); !errkind.Is(err, errkind.NotFound) {
			t.Errorf("Get(%s, %s, %s) err = %v, want NotFound", c.sub, c.rg, c.name, err)
		}
	}
}

func TestImmutability(t *testing.T) {
	e := newEnv(t)
	s := spec("fixed-vault")
	s.SoftDeleteRetentionInDays = ptr(30)
	s.EnablePurgeProtection = ptr(true)
	e.create(t, s)

	tests := []struct {
		name string
		put  func(*vault.Spec)
		kind errkind.Kind
		code string
	}{
		{"soft delete off", func(s *vault.Spec) { s.EnableSoftDelete = ptr(false) }, errkind.Invalid, "SoftDeleteCannotBeDisabled"},
		{"retention change", func(s *vault.Spec) { s.SoftDeleteRetentionInDays = ptr(90) }, errkind.Invalid, "SoftDeleteRetentionCannotChange"},
		{"purge protection off", func(s *vault.Spec) { s.EnablePurgeProtection = ptr(false) }, errkind.Invalid, "PurgeProtectionCannotBeDisabled"},
		{"tenant mismatch", func(s *vault.Spec) { s.TenantID = tenantB }, errkind.Invalid, "InvalidTenantId"},
		{"other location", func(s *vault.Spec) { s.Location = "eastus" }, errkind.Conflict, "InvalidResourceLocation"},
	}
	for _, tc := range tests {
		t.Run("PUT "+tc.name, func(t *testing.T) {
			s := spec("fixed-vault")
			tc.put(&s)
			_, _, err := e.svc.CreateOrUpdate(ctx, caller, s)
			wantErr(t, "CreateOrUpdate()", err, tc.kind, tc.code)
		})
	}
	patches := []struct {
		name string
		p    vault.Patch
		code string
	}{
		{"soft delete off", vault.Patch{EnableSoftDelete: ptr(false)}, "SoftDeleteCannotBeDisabled"},
		{"retention change", vault.Patch{SoftDeleteRetentionInDays: ptr(7)}, "SoftDeleteRetentionCannotChange"},
		{"purge protection off", vault.Patch{EnablePurgeProtection: ptr(false)}, "PurgeProtectionCannotBeDisabled"},
		{"tenant mismatch", vault.Patch{TenantID: ptr(tenantB)}, "InvalidTenantId"},
	}
	for _, tc := range patches {
		t.Run("PATCH "+tc.name, func(t *testing.T) {
			_, err := e.svc.Update(ctx, caller, subA, "rg1", "fixed-vault", tc.p)
			wantErr(t, "Update()", err, errkind.Invalid, tc.code)
		})
	}
	// Restating the fixed values, or leaving them out, is fine.
	same := spec("fixed-vault")
	same.SoftDeleteRetentionInDays, same.EnablePurgeProtection, same.EnableSoftDelete = ptr(30), ptr(true), ptr(true)
	if _, created, err := e.svc.CreateOrUpdate(ctx, caller, same); err != nil || created {
		t.Errorf("PUT restating fixed values = created %v, err %v; want an update", created, err)
	}
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, spec("fixed-vault"))
	if err != nil || created || v.SoftDeleteRetentionInDays != 30 || !v.EnablePurgeProtection {
		t.Errorf("PUT leaving fixed values out = %d days, purge protection %v, created %v, err %v; want 30, true, false, nil",
			v.SoftDeleteRetentionInDays, v.EnablePurgeProtection, created, err)
	}
	// Purge protection can be turned on later.
	e.create(t, spec("late-protect"))
	v, err = e.svc.Update(ctx, caller, subA, "rg1", "late-protect", vault.Patch{EnablePurgeProtection: ptr(true)})
	if err != nil || !v.EnablePurgeProtection {
		t.Errorf("PATCH purge protection on = %v, %v; want true, nil", v.EnablePurgeProtection, err)
	}
	// Writes to a disabled subscription are refused; reads work.
	e.subs.set(subA, func(f *fakeSub) { f.disabled = true })
	_, err = e.svc.Update(ctx, caller, subA, "rg1", "late-protect", vault.Patch{Tags: map[string]string{"a": "b"}})
	wantErr(t, "Update() in a disabled subscription", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	err = e.svc.Delete(ctx, caller, subA, "rg1", "late-protect")
	wantErr(t, "Delete() in a disabled subscription", err, errkind.FailedPrecondition, "ReadOnlyDisabledSubscription")
	if _, err := e.svc.Get(ctx, subA, "rg1", "late-protect"); err != nil {
		t.Errorf("Get() in a disabled subscription err = %v, want nil", err)
	}
}

func TestPutReplacesAndPatchMerges(t *testing.T) {
	e := newEnv(t)
	s := spec("merge-vault")
	s.Tags = map[string]string{"env": "prod", "owner": "alice"}
	s.EnabledForDiskEncryption = true
	s.EnableRbacAuthorization = ptr(true)
	s.NetworkACLs = &vault.NetworkACLs{Bypass: "azureservices", DefaultAction: "deny", IPRules: []vault.IPRule{{Value: "10.0.0.0/8"}}}
	v := e.create(t, s)
	if v.NetworkACLs == nil || v.NetworkACLs.Bypass != "AzureServices" || v.NetworkACLs.DefaultAction != "Deny" {
		t.Errorf("NetworkACLs = %+v, want canonical enum spelling", v.NetworkACLs)
	}
	createdAt := v.CreatedAt
	e.clock.Advance(time.Hour)

	// PATCH changes only what it names.
	v, err := e.svc.Update(ctx, caller, subA, "rg1", "merge-vault", vault.Patch{
		Tags: map[string]string{"env": "test"}, SKU: &vault.SKU{Name: "standard"},
	})
	if err != nil {
		t.Fatalf("Update() err = %v", err)
	}
	if len(v.Tags) != 1 || v.Tags["env"] != "test" || v.SKU.Name != "standard" || !v.EnabledForDiskEncryption ||
		!v.EnableRbacAuthorization || len(v.AccessPolicies) != 1 || v.NetworkACLs == nil {
		t.Errorf("after PATCH = %+v; want tags replaced, sku standard, everything else kept", v)
	}
	if !v.CreatedAt.Equal(createdAt) || !v.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("CreatedAt, UpdatedAt = %v, %v; want %v, %v", v.CreatedAt, v.UpdatedAt, createdAt, e.clock.Now())
	}
	v, err = e.svc.Update(ctx, caller, subA, "rg1", "merge-vault", vault.Patch{AccessPolicies: []vault.AccessPolicy{}})
	if err != nil || len(v.AccessPolicies) != 0 || len(v.Tags) != 1 {
		t.Errorf("PATCH with empty access policies = %+v, %v; want them cleared and tags kept", v.AccessPolicies, err)
	}

	// PUT replaces the replaceable properties and keeps the nil ones.
	v, created, err := e.svc.CreateOrUpdate(ctx, caller, spec("merge-vault"))
	if err != nil || created {
		t.Fatalf("PUT update = created %v, err %v", created, err)
	}
	if len(v.Tags) != 0 || v.EnabledForDiskEncryption || v.NetworkACLs != nil || v.SKU.Name != "premium" ||
		len(v.AccessPolicies) != 1 || !v.EnableRbacAuthorization {
		t.Errorf("after PUT = %+v; want tags, disk encryption and network ACLs cleared, premium, one policy, RBAC kept", v)
	}
	v, _, err = e.svc.CreateOrUpdate(ctx, caller, func() vault.Spec { s := spec("merge-vault"); s.EnableRbacAuthorization = ptr(false); return s }())
	if err != nil || v.EnableRbacAuthorization {
		t.Errorf("PUT rbac false = %v, %v; want false", v.EnableRbacAuthorization, err)
	}

	_, err = e.svc.Update(ctx, caller, subA, "rg1", "missing-vault", vault.Patch{})
	wantErr(t, "Update() of a missing vault", err, errkind.NotFound, "ResourceNotFound")
	_, err = e.svc.Update(ctx, caller, subA, "rg2", "merge-vault", vault.Patch{})
	wantErr(t, "Update() in the wrong resource group", err, errkind.NotFound, "ResourceNotFound")
}

func TestListings(t *testing.T) {
	e := newEnv(t)
	e.create(t, spec("list-b"))
	e.create(t, spec("list-a"))
	other := spec("list-c")
	other.ResourceGroup = "rg2"
	e.create(t, other)
	names := func(vs []vault.Vault, err error) string {
		if err != nil {
			return "error: " + err.Error()
		}
		var n []string
		for _, v := range vs {
			n = append(n, v.Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(e.svc.List(ctx, subA, "RG1")); got != "list-a,list-b" {
		t.Errorf("List(rg1) = %s, want list-a,list-b", got)
	}
	if got := names(e.svc.ListBySubscription(ctx, subA)); got != "list-a,list-b,list-c" {
		t.Errorf("ListBySubscription() = %s, want list-a,list-b,list-c", got)
	}
	if got := names(e.svc.ListBySubscription(ctx, subB)); got != "" {
		t.Errorf("ListBySubscription(subB) = %s, want none", got)
	}
	if n, err := e.svc.CountInResourceGroup(ctx, subA, "rg1"); n != 2 || err != nil {
		t.Errorf("CountInResourceGroup(rg1) = %d, %v; want 2", n, err)
	}
	// Deleting the resource group's resources soft-deletes its vaults.
	if err := e.svc.DeleteResourcesIn(ctx, caller, subA, "Rg1"); err != nil {
		t.Fatalf("DeleteResourcesIn() err = %v", err)
	}
	if n, err := e.svc.CountInResourceGroup(ctx, subA, "rg1"); n != 0 || err != nil {
		t.Errorf("CountInResourceGroup(rg1) after DeleteResourcesIn = %d, %v; want 0", n, err)
	}
	if got := names(e.svc.ListDeleted(ctx, subA)); got != "list-a,list-b" {
		t.Errorf("ListDeleted() = %s, want list-a,list-b", got)
	}
	if got := names(e.svc.ListBySubscription(ctx, subA)); got != "list-c" {
		t.Errorf("ListBySubscription() after DeleteResourcesIn = %s, want list-c", got)
	}
}
