package rbac_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
)

func TestKeyAdministratorNoDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	def := rbac.KeyAdministratorNoDelete(e.a.sub.SubscriptionID)
	if again := rbac.KeyAdministratorNoDelete(strings.ToUpper(e.a.sub.SubscriptionID)); again.ID != def.ID {
		t.Errorf("the id is not derived from the subscription alone: %s != %s", again.ID, def.ID)
	}
	got, err := e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, def)
	if err != nil {
		t.Fatalf("PutDefinition() err = %v", err)
	}
	if got.RoleType != rbac.CustomRole || got.TenantID != e.a.p.Tenant.ID || got.CreatedBy != e.a.admin.ObjectID {
		t.Errorf("PutDefinition() = %+v", got)
	}
	// PUT again: an idempotent update.
	if _, err := e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, def); err != nil {
		t.Fatalf("second PutDefinition() err = %v", err)
	}
	keyAdmin := e.user(t, e.a, "keyadmin")
	a := e.assign(t, e.a.admin, keyAdmin, def.ID, e.a.vault)

	allowed := "read create import backup restore"
	for _, act := range keyDataActions {
		err := e.svc.CheckData(ctx, keyAdmin, act.action, e.a.key1)
		if slices.Contains(strings.Fields(allowed), act.short) {
			if err != nil {
				t.Errorf("key administrator without delete: CheckData(%s) err = %v, want allowed", act.short, err)
			}
		} else if !isDenied(err) {
			t.Errorf("key administrator without delete: CheckData(%s) err = %v, want denied", act.short, err)
		}
	}
	// It can see the vault through Resource Manager, and change nothing there.
	if err := e.svc.Check(ctx, keyAdmin, rbac.ActionVaultRead, e.a.vault); err != nil {
		t.Errorf("Check(vault read) err = %v", err)
	}
	if err := e.svc.Check(ctx, keyAdmin, rbac.ActionVaultDelete, e.a.vault); !isDenied(err) {
		t.Errorf("Check(vault delete) err = %v, want denied", err)
	}

	// In use: it cannot be deleted, nor lose the scope its assignment needs.
	_, err = e.svc.DeleteDefinition(ctx, e.a.admin, e.a.sub, def.ID)
	wantCode(t, "DeleteDefinition(in use)", err, errkind.Conflict, "RoleDefinitionHasAssignments")
	narrowed := def
	narrowed.AssignableScopes = []string{e.a.rg2.String()}
	_, err = e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, narrowed)
	wantCode(t, "PutDefinition(dropping a used scope)", err, errkind.Conflict, "RoleAssignmentOutsideAssignableScopes")

	// Not assignable outside its scopes: narrow it to the resource group first.
	if _, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.vault, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, narrowed); err != nil {
		t.Fatalf("PutDefinition(narrowed) err = %v", err)
	}
	_, err = e.svc.CreateAssignment(ctx, e.a.admin, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: e.a.vault,
		RoleDefinitionID: rbac.DefinitionID(e.a.sub.SubscriptionID, def.ID), PrincipalID: keyAdmin.ObjectID})
	wantCode(t, "CreateAssignment outside the assignable scopes", err, errkind.Invalid, "RoleDefinitionNotAssignableAtScope")

	deleted, err := e.svc.DeleteDefinition(ctx, e.a.admin, e.a.sub, def.ID)
	if err != nil || deleted.ID != def.ID {
		t.Fatalf("DeleteDefinition() = %+v, %v", deleted, err)
	}
	if _, err := e.svc.Definition(ctx, e.a.admin, e.a.sub, def.ID); !errors.Is(err, rbac.ErrDefinitionNotFound) {
		t.Errorf("Definition() after delete err = %v, want ErrDefinitionNotFound", err)
	}
	// The name is free again.
	if _, err := e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, def); err != nil {
		t.Errorf("PutDefinition() after delete err = %v", err)
	}
	tid := e.a.p.Tenant.ID
	if n := len(e.auditEvents(t, tid, rbac.ActionRoleDefinitionsWrite)); n < 4 {
		t.Errorf("%d roleDefinitions/write events, want >= 4", n)
	}
	dels := e.auditEvents(t, tid, rbac.ActionRoleDefinitionsDelete)
	if !slices.ContainsFunc(dels, func(ev audit.Event) bool { return ev.Result == audit.Success }) ||
		!slices.ContainsFunc(dels, func(ev audit.Event) bool { return ev.Result == audit.Failure }) {
		t.Errorf("roleDefinitions/delete events = %+v, want a failure and a success", dels)
	}
}

func TestPutDefinitionRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reader := e.user(t, e.a, "reader")
	e.assign(t, e.a.admin, reader, rbac.ReaderID, e.a.sub)
	rgOwner := e.user(t, e.a, "rgowner")
	e.assign(t, e.a.admin, rgOwner, rbac.OwnerID, e.a.rg)
	taken := rbac.RoleDefinition{ID: uuid.NewString(), RoleName: "Key Reader Plus",
		Permissions:      []rbac.Permission{{DataActions: []string{rbac.DataKeysRead}}},
		AssignableScopes: []string{e.a.sub.String()}}
	if _, err := e.svc.PutDefinition(ctx, e.a.admin, e.a.sub, taken); err != nil {
		t.Fatal(err)
	}
	valid := func(change func(*rbac.RoleDefinition)) rbac.RoleDefinition {
		d := rbac.RoleDefinition{ID: uuid.NewString(), RoleName: "Custom " + uuid.NewString()[:8],
			Permissions:      []rbac.Permission{{Actions: []string{"Microsoft.KeyVault/vaults/read"}, DataActions: []string{rbac.DataKeysRead}}},
			AssignableScopes: []string{e.a.rg.String()}}
		change(&d)
		return d
	}
	tests := []struct {
		name   string
		caller rbac.Principal
		scope  resourceid.ID
		def    rbac.RoleDefinition
		kind   errkind.Kind
		code   string
	}{
		{"valid", e.a.admin, e.a.sub, valid(func(*rbac.RoleDefinition) {}), 0, ""},
		{"no roleDefinitions/write", reader, e.a.sub, valid(func(*rbac.RoleDefinition) {}), errkind.PermissionDenied, "AuthorizationFailed"},
		{"write at the assignable scope only is not enough at the subscription", rgOwner, e.a.sub, valid(func(*rbac.RoleDefinition) {}),
			errkind.PermissionDenied, "AuthorizationFailed"},
		{"another tenant's subscription", e.b.admin, e.a.sub, valid(func(*rbac.RoleDefinition) {}), errkind.PermissionDenied, "AuthorizationFailed"},
		{"bad action", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.Permissions[0].Actions = []string{"vaults read"} }),
			errkind.Invalid, "InvalidActionOrNotAction"},
		{"bad not data action", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.Permissions[0].NotDataActions = []string{"keys"} }),
			errkind.Invalid, "InvalidActionOrNotAction"},
		{"no actions", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.Permissions = []rbac.Permission{{NotActions: []string{"*"}}} }),
			errkind.Invalid, "InvalidRoleDefinition"},
		{"condition", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.Permissions[0].Condition = "x" }),
			errkind.Invalid, "RoleDefinitionConditionNotSupported"},
		{"scope in another subscription", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.AssignableScopes = []string{e.b.sub.String()} }),
			errkind.Invalid, "InvalidAssignableScope"},
		{"root scope", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.AssignableScopes = []string{"/"} }),
			errkind.Invalid, "InvalidAssignableScope"},
		{"no scopes", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.AssignableScopes = nil }),
			errkind.Invalid, "InvalidAssignableScope"},
		{"empty name", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.RoleName = "  " }), errkind.Invalid, "InvalidRoleName"},
		{"name taken (any case)", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.RoleName = "KEY reader plus" }),
			errkind.Conflict, "RoleDefinitionWithSameNameExists"},
		{"built-in name", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.RoleName = "key vault administrator" }),
			errkind.Conflict, "RoleDefinitionWithSameNameExists"},
		{"built-in id", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.ID = rbac.OwnerID }), errkind.Invalid, "CannotModifyBuiltInRole"},
		{"id not a GUID", e.a.admin, e.a.sub, valid(func(d *rbac.RoleDefinition) { d.ID = "x" }), errkind.Invalid, "InvalidRoleDefinitionId"},
		{"unknown subscription", e.a.admin, resourceid.Subscription(uuid.NewString()), valid(func(*rbac.RoleDefinition) {}),
			errkind.NotFound, "ResourceNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.PutDefinition(ctx, tc.caller, tc.scope, tc.def)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("PutDefinition() err = %v", err)
				}
				return
			}
			wantCode(t, "PutDefinition", err, tc.kind, tc.code)
		})
	}
	// The same name in another tenant is fine.
	other := taken
	other.ID, other.AssignableScopes = uuid.NewString(), []string{e.b.sub.String()}
	if _, err := e.svc.PutDefinition(ctx, e.b.admin, e.b.sub, other); err != nil {
		t.Errorf("PutDefinition(same name, other tenant) err = %v", err)
	}
	// Built-in roles cannot be deleted.
	if _, err := e.svc.DeleteDefinition(ctx, e.a.admin, e.a.sub, rbac.OwnerID); !errors.Is(err, rbac.ErrBuiltInRole) {
		t.Errorf("DeleteDefinition(Owner) err = %v, want ErrBuiltInRole", err)
	}
	// A reader cannot delete a custom role.
	_, err := e.svc.DeleteDefinition(ctx, reader, e.a.sub, taken.ID)
	wantCode(t, "DeleteDefinition by Reader", err, errkind.PermissionDenied, "AuthorizationFailed")
}

func TestListDefinitions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	atRG := rbac.RoleDefinition{ID: uuid.NewString(), RoleName: "RG role",
		Permissions: []rbac.Permission{{Actions: []string{"*/read"}}}, AssignableScopes: []string{e.a.rg.String()}}
	atRG2 := rbac.RoleDefinition{ID: uuid.NewString(), RoleName: "RG2 role",
		Permissions: []rbac.Permission{{Actions: []string{"*/read"}}}, AssignableScopes: []string{e.a.rg2.String()}}
	inB := rbac.RoleDefinition{ID: uuid.NewString(), RoleName: "B role",
		Permissions: []rbac.Permission{{Actions: []string{"*/read"}}}, AssignableScopes: []string{e.b.sub.String()}}
	for _, d := range []struct {
		c rbac.Principal
		s resourceid.ID
		d rbac.RoleDefinition
	}{{e.a.admin, e.a.sub, atRG}, {e.a.admin, e.a.sub, atRG2}, {e.b.admin, e.b.sub, inB}} {
		if _, err := e.svc.PutDefinition(ctx, d.c, d.s, d.d); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ds []rbac.RoleDefinition) []string {
		var out []string
		for _, d := range ds {
			if d.RoleType == rbac.CustomRole {
				out = append(out, d.RoleName)
			}
		}
		return out
	}
	tests := []struct {
		scope    resourceid.ID
		filter   string
		builtins int
		custom   []string
	}{
		{e.a.sub, "", len(rbac.BuiltInRoles()), []string{"RG role", "RG2 role"}},
		{e.a.vault, "", len(rbac.BuiltInRoles()), []string{"RG role"}},
		{e.a.sub, "type eq 'CustomRole'", 0, []string{"RG role", "RG2 role"}},
		{e.a.sub, "type eq 'BuiltInRole'", len(rbac.BuiltInRoles()), nil},
		{e.a.sub, "roleName eq 'key vault crypto user'", 1, nil},
		{e.a.sub, "roleName eq 'rg2 ROLE'", 0, []string{"RG2 role"}},
	}
	for _, tc := range tests {
		f, err := rbac.ParseDefinitionFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.svc.Definitions(ctx, e.a.admin, tc.scope, f)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(got) - len(names(got)); n != tc.builtins || !slices.Equal(names(got), tc.custom) {
			t.Errorf("Definitions(%s, %q) = %d built-in, custom %v; want %d, %v", tc.scope, tc.filter, n, names(got), tc.builtins, tc.custom)
		}
	}
	if _, err := rbac.ParseDefinitionFilter("roleName ne 'x'"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("ParseDefinitionFilter(ne) err = %v, want Invalid", err)
	}
	// Tenant A cannot read tenant B's role.
	if _, err := e.svc.Definition(ctx, e.a.admin, e.a.sub, inB.ID); !errors.Is(err, rbac.ErrDefinitionNotFound) {
		t.Errorf("Definition(other tenant's role) err = %v, want ErrDefinitionNotFound", err)
	}
	d, err := e.svc.Definition(ctx, e.a.admin, e.a.vault, rbac.KeyVaultCryptoServiceEncryptionUserID)
	if err != nil || d.RoleName != "Key Vault Crypto Service Encryption User" {
		t.Errorf("Definition(built-in) = %+v, %v", d, err)
	}
}
