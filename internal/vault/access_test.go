package vault_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

func TestAccessPolicyValidation(t *testing.T) {
	ok := vault.AccessPolicy{TenantID: tenantA, ObjectID: userA, Permissions: vault.Permissions{Keys: []string{"get"}}}
	with := func(f func(*vault.AccessPolicy)) []vault.AccessPolicy {
		p := ok
		f(&p)
		return []vault.AccessPolicy{p}
	}
	tests := []struct {
		name     string
		policies []vault.AccessPolicy
		wantErr  bool
	}{
		{"valid", []vault.AccessPolicy{ok}, false},
		{"every enum, any case", with(func(p *vault.AccessPolicy) {
			p.Permissions = vault.Permissions{
				Keys:         []string{"ALL", "Encrypt", "decrypt", "WRAPKEY", "unwrapkey", "sign", "verify", "get", "list", "create", "update", "import", "delete", "backup", "restore", "recover", "purge", "release", "rotate", "GetRotationPolicy", "setrotationpolicy"},
				Secrets:      []string{"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"},
				Certificates: []string{"all", "get", "list", "delete", "create", "import", "update", "ManageContacts", "getissuers", "listissuers", "setissuers", "deleteissuers", "manageissuers", "recover", "purge", "backup", "restore"},
				Storage:      []string{"all", "get", "list", "delete", "set", "update", "regeneratekey", "recover", "purge", "backup", "restore", "setsas", "listsas", "getsas", "deletesas"},
			}
		}), false},
		{"unknown key permission", with(func(p *vault.AccessPolicy) { p.Permissions.Keys = []string{"frobnicate"} }), true},
		{"secret permission as key permission", with(func(p *vault.AccessPolicy) { p.Permissions.Keys = []string{"set"} }), true},
		{"unknown secret permission", with(func(p *vault.AccessPolicy) { p.Permissions.Secrets = []string{"wrapKey"} }), true},
		{"unknown certificate permission", with(func(p *vault.AccessPolicy) { p.Permissions.Certificates = []string{"sign"} }), true},
		{"unknown storage permission", with(func(p *vault.AccessPolicy) { p.Permissions.Storage = []string{"encrypt"} }), true},
		{"other tenant", with(func(p *vault.AccessPolicy) { p.TenantID = tenantB }), true},
		{"tenant not a GUID", with(func(p *vault.AccessPolicy) { p.TenantID = "contoso" }), true},
		{"object not a GUID", with(func(p *vault.AccessPolicy) { p.ObjectID = "alice" }), true},
		{"application not a GUID", with(func(p *vault.AccessPolicy) { p.ApplicationID = "app" }), true},
		{"duplicate identity", []vault.AccessPolicy{ok, ok}, true},
		{"same object, with and without application", []vault.AccessPolicy{ok, with(func(p *vault.AccessPolicy) { p.ApplicationID = appX })[0]}, false},
		{"1024 entries", manyPolicies(1024), false},
		{"1025 entries", manyPolicies(1025), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			s := spec("policy-vault")
			s.AccessPolicies = tc.policies
			_, _, err := e.svc.CreateOrUpdate(ctx, caller, s)
			if tc.wantErr {
				wantErr(t, "CreateOrUpdate()", err, errkind.Invalid, "")
			} else if err != nil {
				t.Errorf("CreateOrUpdate() err = %v, want nil", err)
			}
		})
	}
}

func manyPolicies(n int) []vault.AccessPolicy {
	out := make([]vault.AccessPolicy, n)
	for i := range out {
		out[i] = vault.AccessPolicy{TenantID: tenantA, ObjectID: guid(i), Permissions: vault.Permissions{Keys: []string{"get"}}}
	}
	return out
}

func guid(i int) string { return fmt.Sprintf("e0000000-0000-0000-0000-%012d", i) }

func TestPermissionNamesAreCanonical(t *testing.T) {
	e := newEnv(t)
	s := spec("canon-vault")
	s.AccessPolicies = []vault.AccessPolicy{{TenantID: strings.ToUpper(tenantA), ObjectID: strings.ToUpper(userA),
		Permissions: vault.Permissions{Keys: []string{"WRAPKEY", "unwrapkey", "Get", "get", "GETROTATIONPOLICY"}}}}
	v := e.create(t, s)
	p := v.AccessPolicies[0]
	if want := []string{"wrapKey", "unwrapKey", "get", "getrotationpolicy"}; !slices.Equal(p.Permissions.Keys, want) {
		t.Errorf("Keys = %v, want %v (swagger spelling, no duplicates)", p.Permissions.Keys, want)
	}
	if p.TenantID != tenantA || p.ObjectID != userA {
		t.Errorf("ids = %s, %s; want lowercased", p.TenantID, p.ObjectID)
	}
}

func TestAllowsKeyOperation(t *testing.T) {
	v := vault.Vault{TenantID: tenantA, EnableSoftDelete: true, AccessPolicies: []vault.AccessPolicy{
		{TenantID: tenantA, ObjectID: spX, Permissions: vault.Permissions{Keys: []string{"get", "wrapKey", "unwrapKey"}}},
		// Compound identity: app X acting for user A.
		{TenantID: tenantA, ObjectID: userA, ApplicationID: appX, Permissions: vault.Permissions{Keys: []string{"sign"}}},
		{TenantID: tenantA, ObjectID: guid(7), Permissions: vault.Permissions{Keys: []string{"all"}, Secrets: []string{"get"}}},
	}}
	rbac := v
	rbac.EnableRbacAuthorization = true
	tests := []struct {
		name                      string
		v                         vault.Vault
		tenant, object, app, perm string
		want                      bool
	}{
		{"granted", v, tenantA, spX, "", "wrapKey", true},
		{"granted, any case", v, strings.ToUpper(tenantA), strings.ToUpper(spX), "", "WRAPKEY", true},
		{"granted whatever the client app", v, tenantA, spX, appX, "unwrapKey", true},
		{"not granted", v, tenantA, spX, "", "decrypt", false},
		{"unknown permission", v, tenantA, spX, "", "frobnicate", false},
		{"a secret permission name is no key operation", v, tenantA, guid(7), "", "set", false},
		{"all covers every key permission", v, tenantA, guid(7), "", "purge", true},
		{"'all' itself is not an operation", v, tenantA, spX, "", "all", false},
		{"other tenant's token", v, tenantB, spX, "", "wrapKey", false},
		{"unknown object", v, tenantA, guid(8), "", "get", false},
		{"compound: app for user", v, tenantA, userA, appX, "sign", true},
		{"compound: user through another app", v, tenantA, userA, guid(9), "sign", false},
		{"compound: user without app", v, tenantA, userA, "", "sign", false},
		{"compound: the app's own principal", v, tenantA, appX, appX, "sign", false},
		{"RBAC vault ignores access policies", rbac, tenantA, spX, "", "wrapKey", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.AllowsKeyOperation(tc.tenant, tc.object, tc.app, tc.perm); got != tc.want {
				t.Errorf("AllowsKeyOperation(%s, %s, %q, %s) = %v, want %v", tc.tenant, tc.object, tc.app, tc.perm, got, tc.want)
			}
		})
	}
}

func TestUpdateAccessPolicies(t *testing.T) {
	e := newEnv(t)
	e.create(t, spec("ops-vault")) // userA: get, list, create
	pol := func(oid string, keys ...string) vault.AccessPolicy {
		return vault.AccessPolicy{TenantID: tenantA, ObjectID: oid, Permissions: vault.Permissions{Keys: keys}}
	}
	steps := []struct {
		kind    string
		entries []vault.AccessPolicy
		want    string
	}{
		{"add", []vault.AccessPolicy{pol(userA, "get", "delete"), pol(spX, "wrapKey")}, userA + ":get,list,create,delete " + spX + ":wrapKey"},
		{"replace", []vault.AccessPolicy{pol(userA, "get")}, userA + ":get " + spX + ":wrapKey"},
		{"remove", []vault.AccessPolicy{pol(spX, "wrapKey")}, userA + ":get"},
		{"Add", []vault.AccessPolicy{pol(spX, "unwrapKey")}, userA + ":get " + spX + ":unwrapKey"},
		{"remove", []vault.AccessPolicy{pol(userA)}, spX + ":unwrapKey"},
		{"remove", []vault.AccessPolicy{pol(guid(3), "get")}, spX + ":unwrapKey"},
	}
	for i, st := range steps {
		got, err := e.svc.UpdateAccessPolicies(ctx, caller, subA, "rg1", "ops-vault", st.kind, st.entries)
		if err != nil {
			t.Fatalf("step %d %s: err = %v", i, st.kind, err)
		}
		var parts []string
		for _, p := range got {
			parts = append(parts, p.ObjectID+":"+strings.Join(p.Permissions.Keys, ","))
		}
		if s := strings.Join(parts, " "); s != st.want {
			t.Errorf("step %d %s: policies = %s, want %s", i, st.kind, s, st.want)
		}
	}
	v, _ := e.svc.Get(ctx, subA, "rg1", "ops-vault")
	if len(v.AccessPolicies) != 1 || !v.AllowsKeyOperation(tenantA, spX, "", "unwrapKey") {
		t.Errorf("stored policies = %+v; want the result of the last step", v.AccessPolicies)
	}
	_, err := e.svc.UpdateAccessPolicies(ctx, caller, subA, "rg1", "ops-vault", "merge", nil)
	wantErr(t, "UpdateAccessPolicies(merge)", err, errkind.Invalid, "")
	_, err = e.svc.UpdateAccessPolicies(ctx, caller, subA, "rg1", "ops-vault", "add", []vault.AccessPolicy{pol(spX, "fly")})
	wantErr(t, "UpdateAccessPolicies(add unknown permission)", err, errkind.Invalid, "")
	_, err = e.svc.UpdateAccessPolicies(ctx, caller, subA, "rg1", "no-vault", "add", []vault.AccessPolicy{pol(spX, "get")})
	wantErr(t, "UpdateAccessPolicies(missing vault)", err, errkind.NotFound, "ResourceNotFound")
}
