package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

func TestInheritance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := resourceid.Vault(e.a.sub.SubscriptionID, "other-rg", "elsewhere").Child("keys", "k")
	e.scopes.add(e.a.p.Tenant.ID, other)
	type probe struct {
		scope resourceid.ID
		want  bool
	}
	tests := []struct {
		name   string
		at     resourceid.ID
		probes []probe
	}{
		{"subscription reaches everything below", e.a.sub, []probe{
			{e.a.sub, true}, {e.a.rg, true}, {e.a.vault, true}, {e.a.key1, true}, {e.a.key2, true}, {other, true}}},
		{"resource group reaches its vaults only", e.a.rg, []probe{
			{e.a.sub, false}, {e.a.rg, true}, {e.a.vault, true}, {e.a.key1, true}, {e.a.key2, true}, {other, false}}},
		{"vault reaches its keys but not another vault", e.a.vault, []probe{
			{e.a.sub, false}, {e.a.rg, false}, {e.a.vault, true}, {e.a.key1, true}, {e.a.key10, true}, {e.a.vault2, false}, {e.a.key2, false}}},
		{"key reaches only that key", e.a.key1, []probe{
			{e.a.vault, false}, {e.a.key1, true}, {e.a.key10, false}, {e.a.key2, false},
			{e.a.vault.Child("keys", "K1"), true}}, // scopes compare without case
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := randomPrincipal(e.a)
			e.grant(t, e.svc, p, rbac.KeyVaultCryptoServiceEncryptionUserID, tc.at)
			for _, pr := range tc.probes {
				err := e.svc.CheckData(ctx, p, rbac.DataKeysUnwrap, pr.scope)
				if pr.want && err != nil {
					t.Errorf("CheckData(unwrap at %s) err = %v, want allowed", pr.scope, err)
				}
				if !pr.want && !isDenied(err) {
					t.Errorf("CheckData(unwrap at %s) err = %v, want denied", pr.scope, err)
				}
			}
		})
	}
}

func TestDeniedMessages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := randomPrincipal(e.a)
	err := e.svc.Check(ctx, p, rbac.ActionVaultWrite, e.a.vault)
	wantCode(t, "Check", err, errkind.PermissionDenied, "AuthorizationFailed")
	want := fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.KeyVault/vaults/write' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		p.ObjectID, p.ObjectID, e.a.vault)
	if got := errkind.Public(err); got != want {
		t.Errorf("Public(Check err) =\n%q\nwant\n%q", got, want)
	}
	d, ok := errors.AsType[*rbac.DeniedError](err)
	if !ok || d.Principal != p || d.Action != rbac.ActionVaultWrite || d.Scope != e.a.vault.String() || d.DataAction {
		t.Errorf("DeniedError = %+v", d)
	}

	err = e.svc.CheckData(ctx, p, rbac.DataKeysWrap, e.a.key1)
	wantCode(t, "CheckData", err, errkind.PermissionDenied, "ForbiddenByRbac")
	if d, ok := errors.AsType[*rbac.DeniedError](err); !ok || !d.DataAction || d.Action != rbac.DataKeysWrap {
		t.Errorf("DeniedError = %+v", d)
	}

	// A scope of a subscription nobody knows is "invalid": the same refusal.
	ghost := resourceid.Subscription(uuid.NewString())
	if err := e.svc.Check(ctx, e.a.admin, rbac.ActionSubscriptionRead, ghost); !isDenied(err) {
		t.Errorf("Check(unknown subscription) err = %v, want denied", err)
	}
	// A principal without tenant or object id is refused.
	if err := e.svc.Check(ctx, rbac.Principal{ObjectID: p.ObjectID}, rbac.ActionSubscriptionRead, e.a.sub); !isDenied(err) {
		t.Errorf("Check(no tenant) err = %v, want denied", err)
	}
}

func TestCreateAssignmentRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reader := e.user(t, e.a, "reader")
	e.assign(t, e.a.admin, reader, rbac.ReaderID, e.a.sub)
	alice := e.user(t, e.a, "alice")
	workload := e.app(t, e.a, "workload")
	bobB := e.user(t, e.b, "bob")

	spec := func(id string, scope resourceid.ID, role string, to rbac.Principal) rbac.AssignmentSpec {
		return rbac.AssignmentSpec{ID: id, Scope: scope, RoleDefinitionID: rbac.DefinitionID(scope.SubscriptionID, role),
			PrincipalID: to.ObjectID, PrincipalType: to.Type}
	}
	id1 := uuid.NewString()
	tests := []struct {
		name   string
		caller rbac.Principal
		spec   rbac.AssignmentSpec
		kind   errkind.Kind
		code   string
	}{
		{"caller without roleAssignments/write", reader, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice),
			errkind.PermissionDenied, "AuthorizationFailed"},
		{"unknown principal", e.a.admin, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, randomPrincipal(e.a)),
			errkind.Invalid, "PrincipalNotFound"},
		{"principal of another tenant", e.a.admin, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, bobB),
			errkind.Invalid, "PrincipalNotFound"},
		{"principal type does not match", e.a.admin, func() rbac.AssignmentSpec {
			s := spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice)
			s.PrincipalType = rbac.PrincipalServicePrincipal
			return s
		}(), errkind.Invalid, "UnmatchedPrincipalType"},
		{"group principal type", e.a.admin, func() rbac.AssignmentSpec {
			s := spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice)
			s.PrincipalType = rbac.PrincipalGroup
			return s
		}(), errkind.Invalid, "UnmatchedPrincipalType"},
		{"condition", e.a.admin, func() rbac.AssignmentSpec {
			s := spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice)
			s.Condition, s.ConditionVersion = "@Resource[x] StringEquals 'y'", "2.0"
			return s
		}(), errkind.Invalid, "RoleAssignmentConditionNotSupported"},
		{"id not a GUID", e.a.admin, spec("not-a-guid", e.a.vault, rbac.KeyVaultCryptoUserID, alice),
			errkind.Invalid, "InvalidRoleAssignmentId"},
		{"unknown role", e.a.admin, spec(uuid.NewString(), e.a.vault, uuid.NewString(), alice),
			errkind.Invalid, "RoleDefinitionDoesNotExist"},
		{"role id of another subscription", e.a.admin, func() rbac.AssignmentSpec {
			s := spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice)
			s.RoleDefinitionID = rbac.DefinitionID(e.b.sub.SubscriptionID, rbac.KeyVaultCryptoUserID)
			return s
		}(), errkind.Invalid, "RoleDefinitionDoesNotExist"},
		{"scope that does not exist", e.a.admin, spec(uuid.NewString(), e.a.vault.Child("keys", "nope"), rbac.KeyVaultCryptoUserID, alice),
			errkind.NotFound, "ResourceNotFound"},
		{"scope of another tenant", e.a.admin, spec(uuid.NewString(), e.b.vault, rbac.KeyVaultCryptoUserID, bobB),
			errkind.PermissionDenied, "AuthorizationFailed"},
		{"first assignment", e.a.admin, spec(id1, e.a.vault, rbac.KeyVaultCryptoUserID, alice), 0, ""},
		{"idempotent PUT", e.a.admin, spec(id1, e.a.vault, rbac.KeyVaultCryptoUserID, alice), 0, ""},
		{"idempotent PUT without principal type", e.a.admin, func() rbac.AssignmentSpec {
			s := spec(id1, e.a.vault, rbac.KeyVaultCryptoUserID, alice)
			s.PrincipalType = ""
			return s
		}(), 0, ""},
		{"same id, other role", e.a.admin, spec(id1, e.a.vault, rbac.KeyVaultReaderID, alice),
			errkind.Conflict, "RoleAssignmentUpdateNotPermitted"},
		{"same id, other scope", e.a.admin, spec(id1, e.a.key1, rbac.KeyVaultCryptoUserID, alice),
			errkind.Conflict, "RoleAssignmentUpdateNotPermitted"},
		{"other id, same scope, role and principal", e.a.admin, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice),
			errkind.Conflict, "RoleAssignmentExists"},
		{"service principal", e.a.admin, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoServiceEncryptionUserID, workload), 0, ""},
	}
	var first rbac.Assignment
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := e.svc.CreateAssignment(ctx, tc.caller, tc.spec)
			if tc.code != "" {
				wantCode(t, "CreateAssignment", err, tc.kind, tc.code)
				return
			}
			if err != nil {
				t.Fatalf("CreateAssignment() err = %v", err)
			}
			if tc.spec.ID != id1 {
				return
			}
			if first.ID == "" {
				first = a
				return
			}
			if diff := cmp.Diff(first, a); diff != "" {
				t.Errorf("idempotent PUT returned another assignment (-first +again):\n%s", diff)
			}
		})
	}
	if first.PrincipalType != rbac.PrincipalUser || first.CreatedBy != e.a.admin.ObjectID || first.TenantID != e.a.p.Tenant.ID ||
		first.RoleDefinitionID != "/subscriptions/"+e.a.sub.SubscriptionID+"/providers/Microsoft.Authorization/roleDefinitions/"+rbac.KeyVaultCryptoUserID ||
		first.ResourceID() != e.a.vault.String()+"/providers/Microsoft.Authorization/roleAssignments/"+id1 {
		t.Errorf("assignment = %+v", first)
	}
	// The message names the caller, the action and the scope.
	_, err := e.svc.CreateAssignment(ctx, reader, spec(uuid.NewString(), e.a.vault, rbac.KeyVaultCryptoUserID, alice))
	want := fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action 'Microsoft.Authorization/roleAssignments/write' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		reader.ObjectID, reader.ObjectID, e.a.vault)
	if got := errkind.Public(err); got != want {
		t.Errorf("refusal message =\n%q\nwant\n%q", got, want)
	}
	if err := e.svc.CheckData(ctx, alice, rbac.DataKeysEncrypt, e.a.key1); err != nil {
		t.Errorf("alice (Crypto User at vault) CheckData(encrypt) err = %v", err)
	}
	// Audit: one success for the assignment (the idempotent PUTs changed
	// nothing), and the refused attempts.
	tid := e.a.p.Tenant.ID
	evs := e.auditEvents(t, tid, rbac.ActionRoleAssignmentsWrite)
	var ok, denied, failed int
	for _, ev := range evs {
		switch ev.Result {
		case audit.Success:
			ok++
		case audit.Denied:
			denied++
			if ev.Actor.ID != reader.ObjectID && ev.Actor.ID != e.a.admin.ObjectID {
				t.Errorf("denied event names actor %+v", ev.Actor)
			}
		case audit.Failure:
			failed++
		}
	}
	// Successes: the admin's Owner (GrantTx), reader's Reader, alice's
	// Crypto User, the workload's role.
	if ok != 4 || denied != 2 || failed < 8 {
		t.Errorf("audit: %d successes, %d denied, %d failures; want 4, 2, >= 8: %+v", ok, denied, failed, evs)
	}
	if !slices.ContainsFunc(evs, func(ev audit.Event) bool {
		return ev.Result == audit.Success && ev.Target == first.ResourceID() && ev.Actor.ID == e.a.admin.ObjectID
	}) {
		t.Errorf("no success event for %s", first.ResourceID())
	}
}

func TestDataAccessAdministrator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	daa := e.user(t, e.a, "daa")
	workload := e.app(t, e.a, "workload")
	e.assign(t, e.a.admin, daa, rbac.KeyVaultDataAccessAdministratorID, e.a.vault)
	ownerAtVault := e.assign(t, e.a.admin, e.user(t, e.a, "vaultowner"), rbac.OwnerID, e.a.vault)

	for _, role := range []string{rbac.KeyVaultCryptoServiceEncryptionUserID, rbac.KeyVaultCryptoUserID, rbac.KeyVaultReaderID,
		rbac.KeyVaultAdministratorID, rbac.KeyVaultCryptoOfficerID, rbac.KeyVaultSecretsOfficerID, rbac.KeyVaultSecretsUserID,
		rbac.KeyVaultCertificatesOfficerID} {
		a := e.assign(t, daa, workload, role, e.a.vault)
		if _, err := e.svc.DeleteAssignment(ctx, daa, e.a.vault, a.ID); err != nil {
			t.Errorf("DeleteAssignment(%s) by KV Data Access Administrator err = %v", role, err)
		}
	}
	for _, role := range []string{rbac.OwnerID, rbac.ContributorID, rbac.UserAccessAdministratorID,
		rbac.KeyVaultDataAccessAdministratorID, rbac.KeyVaultCryptoServiceReleaseUserID, rbac.KeyVaultContributorID} {
		_, err := e.svc.CreateAssignment(ctx, daa, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: e.a.vault,
			RoleDefinitionID: rbac.DefinitionID(e.a.sub.SubscriptionID, role), PrincipalID: workload.ObjectID})
		wantCode(t, "CreateAssignment("+role+") by KV Data Access Administrator", err, errkind.PermissionDenied, "AuthorizationFailed")
	}
	// Nor may it remove an assignment of another role.
	_, err := e.svc.DeleteAssignment(ctx, daa, e.a.vault, ownerAtVault.ID)
	wantCode(t, "DeleteAssignment(Owner) by KV Data Access Administrator", err, errkind.PermissionDenied, "AuthorizationFailed")
	// And it has no power above its scope.
	_, err = e.svc.CreateAssignment(ctx, daa, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: e.a.vault2,
		RoleDefinitionID: rbac.DefinitionID(e.a.sub.SubscriptionID, rbac.KeyVaultCryptoUserID), PrincipalID: workload.ObjectID})
	wantCode(t, "CreateAssignment at another vault", err, errkind.PermissionDenied, "AuthorizationFailed")
	// Check, not knowing the role, says it may write assignments here.
	if err := e.svc.Check(ctx, daa, rbac.ActionRoleAssignmentsWrite, e.a.vault); err != nil {
		t.Errorf("Check(roleAssignments/write) for KV Data Access Administrator err = %v", err)
	}
}

func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bob := e.user(t, e.b, "bob")
	// An assignment record that claims tenant B's user holds a role at
	// tenant A's vault (it cannot be made through CreateAssignment).
	err := e.store.Update(ctx, func(tx storage.Tx) error {
		_, err := e.svc.GrantTx(ctx, tx, audit.Actor{Type: "system"}, rbac.Grant{TenantID: e.b.p.Tenant.ID, Scope: e.a.vault,
			RoleID: rbac.KeyVaultAdministratorID, PrincipalID: bob.ObjectID, PrincipalType: rbac.PrincipalUser})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Invalidate()
	if err := e.svc.CheckData(ctx, bob, rbac.DataKeysRead, e.a.key1); !isDenied(err) {
		t.Errorf("tenant B user CheckData at tenant A key err = %v, want denied", err)
	}
	// The owner of B's subscription has no power in A.
	if err := e.svc.Check(ctx, e.b.admin, rbac.ActionVaultRead, e.a.vault); !isDenied(err) {
		t.Errorf("tenant B owner Check at tenant A vault err = %v, want denied", err)
	}
	if _, err := e.svc.Assignments(ctx, e.b.admin, e.a.vault, rbac.AssignmentFilter{}); !isDenied(err) {
		t.Errorf("tenant B owner lists tenant A assignments: err = %v, want denied", err)
	}
	// A principal claiming tenant A with B's object id gets nothing either.
	forged := rbac.Principal{TenantID: e.a.p.Tenant.ID, ObjectID: bob.ObjectID}
	if err := e.svc.CheckData(ctx, forged, rbac.DataKeysRead, e.a.key1); !isDenied(err) {
		t.Errorf("forged principal CheckData err = %v, want denied", err)
	}
	// The refused attempt at tenant A's scope is in A's audit log, naming B.
	_, err = e.svc.CreateAssignment(ctx, e.b.admin, rbac.AssignmentSpec{ID: uuid.NewString(), Scope: e.a.vault,
		RoleDefinitionID: rbac.DefinitionID(e.a.sub.SubscriptionID, rbac.OwnerID), PrincipalID: e.b.admin.ObjectID})
	wantCode(t, "CreateAssignment across tenants", err, errkind.PermissionDenied, "AuthorizationFailed")
	evs := e.auditEvents(t, e.a.p.Tenant.ID, rbac.ActionRoleAssignmentsWrite)
	if !slices.ContainsFunc(evs, func(ev audit.Event) bool {
		return ev.Result == audit.Denied && ev.Actor.ID == e.b.admin.ObjectID && ev.Actor.TenantID == e.b.p.Tenant.ID
	}) {
		t.Errorf("no denied event naming tenant B's admin in tenant A's log: %+v", evs)
	}
}

func TestListAssignments(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.user(t, e.a, "alice")
	bob := e.user(t, e.a, "bob")
	atRG := e.assign(t, e.a.admin, alice, rbac.ReaderID, e.a.rg)
	atVault := e.assign(t, e.a.admin, bob, rbac.KeyVaultCryptoUserID, e.a.vault)
	atKey := e.assign(t, e.a.admin, alice, rbac.KeyVaultCryptoServiceEncryptionUserID, e.a.key1)
	atVault2 := e.assign(t, e.a.admin, alice, rbac.KeyVaultReaderID, e.a.vault2)
	e.assign(t, e.a.admin, alice, rbac.ReaderID, e.a.rg2)
	e.assign(t, e.b.admin, e.user(t, e.b, "carol"), rbac.ReaderID, e.b.sub)
	owner, err := e.svc.Assignments(ctx, e.a.admin, e.a.sub, rbac.AssignmentFilter{PrincipalID: e.a.admin.ObjectID})
	if err != nil || len(owner) != 1 {
		t.Fatalf("owner assignments = %v, %v", owner, err)
	}
	atSub := owner[0]

	ids := func(as []rbac.Assignment) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		slices.Sort(out)
		return out
	}
	sorted := func(as ...rbac.Assignment) []string { return ids(as) }
	tests := []struct {
		name   string
		scope  resourceid.ID
		filter string
		want   []string
	}{
		{"vault: above, at and below", e.a.vault, "", sorted(atSub, atRG, atVault, atKey)},
		{"vault atScope()", e.a.vault, "atScope()", sorted(atSub, atRG, atVault)},
		{"vault principalId", e.a.vault, "principalId eq '" + alice.ObjectID + "'", sorted(atRG, atKey)},
		{"vault atScope and principalId", e.a.vault, "atScope() and principalId eq '" + alice.ObjectID + "'", sorted(atRG)},
		{"key", e.a.key1, "", sorted(atSub, atRG, atVault, atKey)},
		{"resource group", e.a.rg, "", sorted(atSub, atRG, atVault, atKey, atVault2)},
		{"assignedTo", e.a.rg, "assignedTo('" + bob.ObjectID + "')", sorted(atVault)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := rbac.ParseAssignmentFilter(tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.svc.Assignments(ctx, e.a.admin, tc.scope, f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, ids(got)); diff != "" {
				t.Errorf("Assignments(%s, %q) mismatch (-want +got):\n%s", tc.scope, tc.filter, diff)
			}
		})
	}
	all, _ := e.svc.Assignments(ctx, e.a.admin, e.a.sub, rbac.AssignmentFilter{})
	if len(all) != 6 {
		t.Errorf("subscription lists %d assignments, want 6", len(all))
	}
	got, err := e.svc.Assignment(ctx, e.a.admin, e.a.vault, atVault.ID)
	if err != nil || got != atVault {
		t.Errorf("Assignment() = %+v, %v; want %+v", got, err, atVault)
	}
	if _, err := e.svc.Assignment(ctx, e.a.admin, e.a.vault2, atVault.ID); !errors.Is(err, rbac.ErrAssignmentNotFound) {
		t.Errorf("Assignment() at the wrong scope err = %v, want ErrAssignmentNotFound", err)
	}
	// Reading needs roleAssignments/read: bob (Crypto User) has none.
	if _, err := e.svc.Assignments(ctx, bob, e.a.vault, rbac.AssignmentFilter{}); !isDenied(err) {
		t.Errorf("Assignments() by Crypto User err = %v, want denied", err)
	}
	for _, bad := range []string{"principalId eq 1", "roleDefinitionId eq 'x'", "atScope() or principalId eq 'x'"} {
		if _, err := rbac.ParseAssignmentFilter(bad); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("ParseAssignmentFilter(%q) err = %v, want Invalid", bad, err)
		}
	}
}

func TestDeleteAssignment(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.user(t, e.a, "alice")
	reader := e.user(t, e.a, "reader")
	e.assign(t, e.a.admin, reader, rbac.ReaderID, e.a.sub)
	a := e.assign(t, e.a.admin, alice, rbac.KeyVaultCryptoUserID, e.a.vault)

	_, err := e.svc.DeleteAssignment(ctx, reader, e.a.vault, a.ID)
	wantCode(t, "DeleteAssignment by Reader", err, errkind.PermissionDenied, "AuthorizationFailed")
	_, err = e.svc.DeleteAssignment(ctx, reader, e.a.vault, uuid.NewString())
	wantCode(t, "DeleteAssignment of a missing id by Reader", err, errkind.PermissionDenied, "AuthorizationFailed")
	if _, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.vault2, a.ID); !errors.Is(err, rbac.ErrAssignmentNotFound) {
		t.Errorf("DeleteAssignment at the wrong scope err = %v, want ErrAssignmentNotFound", err)
	}
	got, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.vault, a.ID)
	if err != nil || got.ID != a.ID {
		t.Fatalf("DeleteAssignment() = %+v, %v", got, err)
	}
	if _, err := e.svc.DeleteAssignment(ctx, e.a.admin, e.a.vault, a.ID); !errors.Is(err, rbac.ErrAssignmentNotFound) {
		t.Errorf("second DeleteAssignment err = %v, want ErrAssignmentNotFound", err)
	}
	// The id is free again, and so is the (scope, role, principal).
	e.assign(t, e.a.admin, alice, rbac.KeyVaultCryptoUserID, e.a.vault)
	evs := e.auditEvents(t, e.a.p.Tenant.ID, rbac.ActionRoleAssignmentsDelete)
	if !slices.ContainsFunc(evs, func(ev audit.Event) bool { return ev.Result == audit.Success && ev.Target == a.ResourceID() }) {
		t.Errorf("no success event for the deletion: %+v", evs)
	}
}

func TestRemoveScopeTx(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice := e.user(t, e.a, "alice")
	e.assign(t, e.a.admin, alice, rbac.KeyVaultCryptoUserID, e.a.vault)
	e.assign(t, e.a.admin, alice, rbac.KeyVaultCryptoServiceReleaseUserID, e.a.key1)
	e.assign(t, e.a.admin, alice, rbac.KeyVaultReaderID, e.a.vault2)
	e.assign(t, e.a.admin, alice, rbac.KeyVaultSecretsUserID, e.a.rg)
	if err := e.svc.CheckData(ctx, alice, rbac.DataKeysRelease, e.a.key1); err != nil {
		t.Fatal(err)
	}
	err := e.store.Update(ctx, func(tx storage.Tx) error { return e.svc.RemoveScopeTx(ctx, tx, e.a.vault) })
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Invalidate()
	for _, d := range []string{rbac.DataKeysEncrypt, rbac.DataKeysRelease} {
		if err := e.svc.CheckData(ctx, alice, d, e.a.key1); !isDenied(err) {
			t.Errorf("CheckData(%s) after the vault was purged err = %v, want denied", d, err)
		}
	}
	if err := e.svc.CheckData(ctx, alice, rbac.DataKeysRead, e.a.key2); err != nil {
		t.Errorf("the other vault lost its assignment: %v", err)
	}
	left, err := e.svc.Assignments(ctx, e.a.admin, e.a.sub, rbac.AssignmentFilter{PrincipalID: alice.ObjectID})
	if err != nil || len(left) != 2 {
		t.Errorf("left = %+v, %v; want the vault2 and resource group assignments", left, err)
	}
	evs := e.auditEvents(t, e.a.p.Tenant.ID, rbac.ActionRoleAssignmentsDelete)
	if len(evs) != 2 || evs[0].Actor.Type != "system" {
		t.Errorf("audit = %+v, want 2 system deletions", evs)
	}
}

func TestGrantTxIdempotent(t *testing.T) {
	e := newEnv(t)
	p := randomPrincipal(e.a)
	a1 := e.grant(t, e.svc, p, rbac.OwnerID, e.a.rg)
	a2 := e.grant(t, e.svc, p, rbac.DefinitionID("", rbac.OwnerID), e.a.rg)
	if a1 != a2 {
		t.Errorf("second GrantTx = %+v, want %+v", a2, a1)
	}
	err := e.store.Update(context.Background(), func(tx storage.Tx) error {
		_, err := e.svc.GrantTx(context.Background(), tx, audit.Actor{Type: "system"}, rbac.Grant{TenantID: e.a.p.Tenant.ID,
			Scope: e.a.rg, RoleID: uuid.NewString(), PrincipalID: p.ObjectID, PrincipalType: rbac.PrincipalUser})
		return err
	})
	wantCode(t, "GrantTx(unknown role)", err, errkind.Invalid, "RoleDefinitionDoesNotExist")
}
