package rbac_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/rbac"
)

// keyDataActions is the key data action catalogue, written out here rather
// than taken from the package, so that a typo in a constant shows.
var keyDataActions = []struct{ short, action string }{
	{"read", "Microsoft.KeyVault/vaults/keys/read"},
	{"update", "Microsoft.KeyVault/vaults/keys/update/action"},
	{"create", "Microsoft.KeyVault/vaults/keys/create/action"},
	{"import", "Microsoft.KeyVault/vaults/keys/import/action"},
	{"recover", "Microsoft.KeyVault/vaults/keys/recover/action"},
	{"restore", "Microsoft.KeyVault/vaults/keys/restore/action"},
	{"delete", "Microsoft.KeyVault/vaults/keys/delete"},
	{"backup", "Microsoft.KeyVault/vaults/keys/backup/action"},
	{"purge", "Microsoft.KeyVault/vaults/keys/purge/action"},
	{"encrypt", "Microsoft.KeyVault/vaults/keys/encrypt/action"},
	{"decrypt", "Microsoft.KeyVault/vaults/keys/decrypt/action"},
	{"wrap", "Microsoft.KeyVault/vaults/keys/wrap/action"},
	{"unwrap", "Microsoft.KeyVault/vaults/keys/unwrap/action"},
	{"sign", "Microsoft.KeyVault/vaults/keys/sign/action"},
	{"verify", "Microsoft.KeyVault/vaults/keys/verify/action"},
	{"release", "Microsoft.KeyVault/vaults/keys/release/action"},
	{"rotate", "Microsoft.KeyVault/vaults/keys/rotate/action"},
	{"policyread", "Microsoft.KeyVault/vaults/keyrotationpolicies/read"},
	{"policywrite", "Microsoft.KeyVault/vaults/keyrotationpolicies/write"},
	{"rng", "Microsoft.KeyVault/vaults/rng/action"},
}

func TestCatalogue(t *testing.T) {
	var want []string
	for _, a := range keyDataActions[:len(keyDataActions)-1] {
		want = append(want, a.action)
	}
	if diff := cmp.Diff(want, rbac.KeyDataActions); diff != "" {
		t.Errorf("KeyDataActions mismatch (-want +got):\n%s", diff)
	}
	if rbac.DataRandomBytes != keyDataActions[len(keyDataActions)-1].action {
		t.Errorf("DataRandomBytes = %q", rbac.DataRandomBytes)
	}
	consts := map[string]string{
		"DataKeysRead": rbac.DataKeysRead, "DataKeysUpdate": rbac.DataKeysUpdate, "DataKeysCreate": rbac.DataKeysCreate,
		"DataKeysImport": rbac.DataKeysImport, "DataKeysRecover": rbac.DataKeysRecover, "DataKeysRestore": rbac.DataKeysRestore,
		"DataKeysDelete": rbac.DataKeysDelete, "DataKeysBackup": rbac.DataKeysBackup, "DataKeysPurge": rbac.DataKeysPurge,
		"DataKeysEncrypt": rbac.DataKeysEncrypt, "DataKeysDecrypt": rbac.DataKeysDecrypt, "DataKeysWrap": rbac.DataKeysWrap,
		"DataKeysUnwrap": rbac.DataKeysUnwrap, "DataKeysSign": rbac.DataKeysSign, "DataKeysVerify": rbac.DataKeysVerify,
		"DataKeysRelease": rbac.DataKeysRelease, "DataKeysRotate": rbac.DataKeysRotate,
		"DataKeyRotationPolicyRead": rbac.DataKeyRotationPolicyRead, "DataKeyRotationPolicyWrite": rbac.DataKeyRotationPolicyWrite,
	}
	for name, v := range consts {
		if !slices.Contains(want, v) {
			t.Errorf("%s = %q is not in the published catalogue", name, v)
		}
	}
}

// TestKeyDataMatrix checks every built-in role against every key data
// action, allowed and denied, with the expectations written out by hand
// from Azure's published role definitions.
func TestKeyDataMatrix(t *testing.T) {
	const all = "read update create import recover restore delete backup purge encrypt decrypt wrap unwrap sign verify release rotate policyread policywrite"
	allowed := map[string]string{
		rbac.OwnerID:                               "",
		rbac.ContributorID:                         "",
		rbac.ReaderID:                              "",
		rbac.UserAccessAdministratorID:             "",
		rbac.RBACAdministratorID:                   "",
		rbac.KeyVaultAdministratorID:               all + " rng",
		rbac.KeyVaultContributorID:                 "",
		rbac.KeyVaultReaderID:                      "read policyread",
		rbac.KeyVaultCryptoOfficerID:               all,
		rbac.KeyVaultCryptoUserID:                  "read update backup encrypt decrypt wrap unwrap sign verify",
		rbac.KeyVaultCryptoServiceEncryptionUserID: "read wrap unwrap",
		rbac.KeyVaultCryptoServiceReleaseUserID:    "release",
		rbac.KeyVaultDataAccessAdministratorID:     "",
		rbac.KeyVaultPurgeOperatorID:               "",
		rbac.KeyVaultSecretsOfficerID:              "",
		rbac.KeyVaultSecretsUserID:                 "",
		rbac.KeyVaultCertificatesOfficerID:         "",
		rbac.KeyVaultCertificateUserID:             "read",
	}
	if len(allowed) != len(rbac.BuiltInRoles()) {
		t.Fatalf("the matrix covers %d roles, the package has %d built-in roles", len(allowed), len(rbac.BuiltInRoles()))
	}
	e := newEnv(t)
	ctx := context.Background()
	for _, role := range rbac.BuiltInRoles() {
		want, ok := allowed[role.ID]
		if !ok {
			t.Errorf("role %s (%s) has no row in the matrix", role.RoleName, role.ID)
			continue
		}
		p := randomPrincipal(e.a)
		e.grant(t, e.svc, p, role.ID, e.a.vault)
		for _, a := range keyDataActions {
			t.Run(role.RoleName+"/"+a.short, func(t *testing.T) {
				wantAllowed := slices.Contains(strings.Fields(want), a.short)
				err := e.svc.CheckData(ctx, p, a.action, e.a.key1)
				if wantAllowed && err != nil {
					t.Errorf("CheckData(%s, %s) err = %v, want allowed", role.RoleName, a.action, err)
				}
				if !wantAllowed && !isDenied(err) {
					t.Errorf("CheckData(%s, %s) err = %v, want denied", role.RoleName, a.action, err)
				}
			})
		}
	}
}

var mgmtActions = []struct{ short, action string }{
	{"subRead", "Microsoft.Resources/subscriptions/read"},
	{"rgRead", "Microsoft.Resources/subscriptions/resourceGroups/read"},
	{"rgWrite", "Microsoft.Resources/subscriptions/resourceGroups/write"},
	{"rgDelete", "Microsoft.Resources/subscriptions/resourceGroups/delete"},
	{"vaultRead", "Microsoft.KeyVault/vaults/read"},
	{"vaultWrite", "Microsoft.KeyVault/vaults/write"},
	{"vaultDelete", "Microsoft.KeyVault/vaults/delete"},
	{"deletedList", "Microsoft.KeyVault/deletedVaults/read"},
	{"deletedRead", "Microsoft.KeyVault/locations/deletedVaults/read"},
	{"purge", "Microsoft.KeyVault/locations/deletedVaults/purge/action"},
	{"checkName", "Microsoft.KeyVault/checkNameAvailability/read"},
	{"raRead", "Microsoft.Authorization/roleAssignments/read"},
	{"raWrite", "Microsoft.Authorization/roleAssignments/write"},
	{"raDelete", "Microsoft.Authorization/roleAssignments/delete"},
	{"rdRead", "Microsoft.Authorization/roleDefinitions/read"},
	{"rdWrite", "Microsoft.Authorization/roleDefinitions/write"},
	{"rdDelete", "Microsoft.Authorization/roleDefinitions/delete"},
	{"registerKV", "Microsoft.KeyVault/register/action"},
	{"featureRead", "Microsoft.Features/providers/features/read"},
	{"featureRegister", "Microsoft.Features/providers/features/register/action"},
	{"cancel", "Microsoft.Subscription/cancel/action"},
}

// TestManagementMatrix checks the management actions of the Resource
// Manager surface for the roles that matter to it, at subscription scope.
func TestManagementMatrix(t *testing.T) {
	const reads = "subRead rgRead vaultRead deletedList deletedRead checkName raRead rdRead featureRead"
	allowed := map[string]string{
		rbac.OwnerID: "subRead rgRead rgWrite rgDelete vaultRead vaultWrite vaultDelete deletedList deletedRead purge checkName " +
			"raRead raWrite raDelete rdRead rdWrite rdDelete registerKV featureRead featureRegister cancel",
		// Contributor: everything but writing access and cancelling the subscription.
		rbac.ContributorID: "subRead rgRead rgWrite rgDelete vaultRead vaultWrite vaultDelete deletedList deletedRead purge checkName " +
			"raRead rdRead registerKV featureRead featureRegister",
		rbac.ReaderID:                  reads,
		rbac.UserAccessAdministratorID: reads + " raWrite raDelete rdWrite rdDelete",
		rbac.RBACAdministratorID:       reads + " raWrite raDelete",
		// Key Vault Contributor: Microsoft.KeyVault/* but the purge; no
		// subscription read, no resource group changes.
		rbac.KeyVaultContributorID: "rgRead vaultRead vaultWrite vaultDelete deletedList deletedRead checkName raRead rdRead registerKV",
		// Key Vault Administrator: the KV-read set; "vaults/*/read" does
		// not match "vaults/read" itself, as in Azure.
		rbac.KeyVaultAdministratorID:               "rgRead deletedList deletedRead checkName raRead rdRead",
		rbac.KeyVaultDataAccessAdministratorID:     "subRead rgRead raRead raWrite raDelete rdRead",
		rbac.KeyVaultPurgeOperatorID:               "deletedList deletedRead purge",
		rbac.KeyVaultCryptoServiceEncryptionUserID: "",
		rbac.KeyVaultCryptoUserID:                  "",
	}
	e := newEnv(t)
	ctx := context.Background()
	for roleID, want := range allowed {
		role, _ := rbac.BuiltIn(roleID)
		p := randomPrincipal(e.a)
		e.grant(t, e.svc, p, roleID, e.a.sub)
		for _, a := range mgmtActions {
			t.Run(role.RoleName+"/"+a.short, func(t *testing.T) {
				wantAllowed := slices.Contains(strings.Fields(want), a.short)
				err := e.svc.Check(ctx, p, a.action, e.a.sub)
				if wantAllowed && err != nil {
					t.Errorf("Check(%s, %s) err = %v, want allowed", role.RoleName, a.action, err)
				}
				if !wantAllowed && !isDenied(err) {
					t.Errorf("Check(%s, %s) err = %v, want denied", role.RoleName, a.action, err)
				}
			})
		}
	}
}

func TestMatchAction(t *testing.T) {
	tests := []struct {
		pattern, action string
		want            bool
	}{
		{"*", "Microsoft.KeyVault/vaults/write", true},
		{"*/read", "Microsoft.KeyVault/vaults/read", true},
		{"*/read", "Microsoft.KeyVault/vaults/write", false},
		{"*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action", false},
		{"Microsoft.KeyVault/*", "Microsoft.KeyVault/vaults/keys/read", true},
		{"Microsoft.KeyVault/*", "Microsoft.KeyVaultX/vaults/read", false},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/read", true},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/read", false},
		{"Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/keys/versions/read", true},
		{"Microsoft.Authorization/*/Write", "microsoft.authorization/roleassignments/write", true},
		{"microsoft.keyvault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/READ", true},
		{"Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/readx", false},
		{"Microsoft.*/read", "Microsoft.Resources/subscriptions/read", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"a*a", "a", false},
	}
	for _, tc := range tests {
		if got := rbac.MatchAction(tc.pattern, tc.action); got != tc.want {
			t.Errorf("MatchAction(%q, %q) = %v, want %v", tc.pattern, tc.action, got, tc.want)
		}
	}
}

func TestValidateAction(t *testing.T) {
	tests := []struct {
		action string
		ok     bool
	}{
		{"*", true},
		{"*/read", true},
		{"Microsoft.KeyVault/*", true},
		{"Microsoft.KeyVault/vaults/keys/read", true},
		{"Microsoft.KeyVault/vaults/*/read", true},
		{"Microsoft.Authorization/*/Write", true},
		{"", false},
		{"read", false},
		{"KeyVault/vaults/read", false},
		{"Microsoft.KeyVault//read", false},
		{"Microsoft.KeyVault/vaults/read/", false},
		{"Microsoft.KeyVault/vaults read", false},
		{"Microsoft.KeyVault/vaults/{name}/read", false},
		{strings.Repeat("a", 600), false},
	}
	for _, tc := range tests {
		err := rbac.ValidateAction(tc.action)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateAction(%q) err = %v, want ok=%v", tc.action, err, tc.ok)
		}
	}
}

func TestParseDefinitionID(t *testing.T) {
	const g = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	tests := []struct {
		in, id, sub string
		ok          bool
	}{
		{"/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/" + g, g, "s1", true},
		{"/SUBSCRIPTIONS/s1/PROVIDERS/microsoft.authorization/ROLEDEFINITIONS/" + strings.ToUpper(g), g, "s1", true},
		{"/providers/Microsoft.Authorization/roleDefinitions/" + g, g, "", true},
		{g, g, "", true},
		{"/subscriptions/s1", "", "", false},
		{"/subscriptions//providers/Microsoft.Authorization/roleDefinitions/" + g, "", "", false},
		{"/providers/Microsoft.Authorization/roleDefinitions/not-a-guid", "", "", false},
		{"/providers/Microsoft.Authorization/roleAssignments/" + g, "", "", false},
		{"", "", "", false},
	}
	for _, tc := range tests {
		id, sub, err := rbac.ParseDefinitionID(tc.in)
		if (err == nil) != tc.ok || id != tc.id || sub != tc.sub {
			t.Errorf("ParseDefinitionID(%q) = %q, %q, %v; want %q, %q, ok=%v", tc.in, id, sub, err, tc.id, tc.sub, tc.ok)
		}
	}
}

func TestBuiltInRolesShape(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range rbac.BuiltInRoles() {
		if seen[r.ID] || seen[strings.ToLower(r.RoleName)] {
			t.Errorf("duplicate role %s %s", r.ID, r.RoleName)
		}
		seen[r.ID], seen[strings.ToLower(r.RoleName)] = true, true
		if r.RoleType != rbac.BuiltInRole || !slices.Equal(r.AssignableScopes, []string{"/"}) || len(r.Permissions) != 1 || r.Description == "" {
			t.Errorf("role %s has an unexpected shape: %+v", r.RoleName, r)
		}
		for _, p := range r.Permissions {
			for _, a := range slices.Concat(p.Actions, p.NotActions, p.DataActions, p.NotDataActions) {
				if err := rbac.ValidateAction(a); err != nil {
					t.Errorf("role %s: %v", r.RoleName, err)
				}
			}
		}
	}
	// The copy is the caller's: changing it changes nothing.
	r, _ := rbac.BuiltIn(rbac.ReaderID)
	r.Permissions[0].Actions[0] = "*"
	if again, _ := rbac.BuiltIn(rbac.ReaderID); again.Permissions[0].Actions[0] != "*/read" {
		t.Error("BuiltIn returned shared state")
	}
	if got := (rbac.RoleDefinition{ID: rbac.OwnerID}).ResourceID("s1"); got != "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/"+rbac.OwnerID {
		t.Errorf("ResourceID = %q", got)
	}
}
