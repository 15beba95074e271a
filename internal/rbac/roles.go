package rbac

import (
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/errkind"
)

// Role types, as Azure names them.
const (
	BuiltInRole = "BuiltInRole"
	CustomRole  = "CustomRole"
)

// RoleDefinition is an Azure role definition.
type RoleDefinition struct {
	// ID is the definition's GUID (the "name" of the ARM resource).
	ID          string `json:"id"`
	RoleName    string `json:"roleName"`
	Description string `json:"description,omitempty"`
	// RoleType is BuiltInRole or CustomRole.
	RoleType         string       `json:"roleType"`
	Permissions      []Permission `json:"permissions"`
	AssignableScopes []string     `json:"assignableScopes"`

	// The fields below are set for custom roles only.
	TenantID  string    `json:"tenantId,omitempty"`
	CreatedOn time.Time `json:"createdOn,omitzero"`
	UpdatedOn time.Time `json:"updatedOn,omitzero"`
	CreatedBy string    `json:"createdBy,omitempty"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

// Permission is one permission block of a role definition.
type Permission struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
	// Condition and ConditionVersion are shown for built-in roles that
	// carry an ABAC condition; customerkey enforces the one it knows in
	// code and refuses conditions on custom roles.
	Condition        string `json:"condition,omitempty"`
	ConditionVersion string `json:"conditionVersion,omitempty"`
}

// Definition id forms.
const defPath = "/providers/Microsoft.Authorization/roleDefinitions/"

// ResourceID is the ARM id of the definition as Azure returns it when read
// in subscription sub: "/subscriptions/{sub}/providers/Microsoft.Authorization/
// roleDefinitions/{id}"; with sub empty, the tenant-level form
// "/providers/Microsoft.Authorization/roleDefinitions/{id}".
func (d RoleDefinition) ResourceID(sub string) string { return DefinitionID(sub, d.ID) }

// DefinitionID formats the ARM id of role definition id, as ResourceID does.
func DefinitionID(sub, id string) string {
	if sub == "" {
		return defPath + id
	}
	return "/subscriptions/" + sub + defPath + id
}

// ParseDefinitionID accepts "/subscriptions/{s}/providers/Microsoft.Authorization/
// roleDefinitions/{guid}", "/providers/Microsoft.Authorization/roleDefinitions/{guid}"
// or a bare GUID, and returns the lower-case GUID and the subscription (empty
// for the other forms). Literal segments are matched without regard to case.
func ParseDefinitionID(s string) (id, sub string, err error) {
	bad := errkind.Errorf(errkind.Invalid, "the role definition id %q is not valid; expected /subscriptions/{subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/{guid}", s).
		WithCode("InvalidRoleDefinitionId")
	rest := strings.TrimSpace(s)
	if hasPrefixFold(rest, "/subscriptions/") {
		sub, rest, _ = strings.Cut(rest[len("/subscriptions/"):], "/")
		if sub == "" {
			return "", "", bad
		}
		rest = "/" + rest
	}
	switch {
	case hasPrefixFold(rest, defPath):
		rest = rest[len(defPath):]
	case strings.HasPrefix(rest, "/"):
		return "", "", bad
	}
	if !isGUID(rest) {
		return "", "", bad
	}
	return strings.ToLower(rest), sub, nil
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	_, err := uuid.Parse(s)
	return err == nil
}

// Built-in role ids: the GUIDs Azure gives them in every tenant.
const (
	OwnerID                               = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	ContributorID                         = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	ReaderID                              = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	UserAccessAdministratorID             = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
	RBACAdministratorID                   = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
	KeyVaultAdministratorID               = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
	KeyVaultContributorID                 = "f25e0fa2-a7c8-4377-a976-54943a77a395"
	KeyVaultReaderID                      = "21090545-7ca7-4776-b22c-e363652d74d2"
	KeyVaultCryptoOfficerID               = "14b46e9e-c2b7-41b4-b07b-48a6ebf60603"
	KeyVaultCryptoUserID                  = "12338af0-0e69-4776-bea7-57ae8d297424"
	KeyVaultCryptoServiceEncryptionUserID = "e147488a-f6f5-4113-8e2d-b22465e65bf6"
	KeyVaultCryptoServiceReleaseUserID    = "08bbd89e-9f13-488c-ac41-acfcb10c90ab"
	KeyVaultDataAccessAdministratorID     = "8b54135c-b56d-4d72-a534-26097cfdc8d8"
	KeyVaultPurgeOperatorID               = "a68e7c17-0ab2-4c09-9a58-125dae29748c"
	KeyVaultSecretsOfficerID              = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
	KeyVaultSecretsUserID                 = "4633458b-17de-408a-b874-0445c86b69e6"
	KeyVaultCertificatesOfficerID         = "a4417e6f-fecd-4de8-b567-7b0420556985"
	KeyVaultCertificateUserID             = "db79e9a7-68ee-4b58-9aeb-b90e7c24fcba"
)

// kvDataRoles are the roles Key Vault Data Access Administrator may assign
// and remove: its ABAC condition, enforced in code.
var kvDataRoles = []string{KeyVaultAdministratorID, KeyVaultCertificatesOfficerID, KeyVaultCryptoOfficerID,
	KeyVaultCryptoServiceEncryptionUserID, KeyVaultCryptoUserID, KeyVaultReaderID, KeyVaultSecretsOfficerID,
	KeyVaultSecretsUserID}

// assignRestrictions maps a role to the only roles it may assign or
// remove, for the built-in roles whose condition limits that.
var assignRestrictions = map[string][]string{KeyVaultDataAccessAdministratorID: kvDataRoles}

const kvDataAccessCondition = "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR " +
	"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{" +
	"00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985, 14b46e9e-c2b7-41b4-b07b-48a6ebf60603, " +
	"e147488a-f6f5-4113-8e2d-b22465e65bf6, 12338af0-0e69-4776-bea7-57ae8d297424, 21090545-7ca7-4776-b22c-e363652d74d2, " +
	"b86a8fe4-44ce-4948-aee5-eccb2c155cd7, 4633458b-17de-408a-b874-0445c86b69e6})) AND " +
	"((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR " +
	"(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals{" +
	"00482a5a-887f-4fb3-b363-3b7fe8e74483, a4417e6f-fecd-4de8-b567-7b0420556985, 14b46e9e-c2b7-41b4-b07b-48a6ebf60603, " +
	"e147488a-f6f5-4113-8e2d-b22465e65bf6, 12338af0-0e69-4776-bea7-57ae8d297424, 21090545-7ca7-4776-b22c-e363652d74d2, " +
	"b86a8fe4-44ce-4948-aee5-eccb2c155cd7, 4633458b-17de-408a-b874-0445c86b69e6}))"

// kvReadActions are the management actions every Key Vault data role but
// the narrow "user" roles carries (Azure's docs list them per role).
var kvReadActions = []string{
	"Microsoft.Authorization/*/read",
	"Microsoft.Insights/alertRules/*",
	"Microsoft.Resources/deployments/*",
	"Microsoft.Resources/subscriptions/resourceGroups/read",
	"Microsoft.Support/*",
	"Microsoft.KeyVault/checkNameAvailability/read",
	"Microsoft.KeyVault/deletedVaults/read",
	"Microsoft.KeyVault/locations/*/read",
	"Microsoft.KeyVault/vaults/*/read",
	"Microsoft.KeyVault/operations/read",
}

const rbacOnly = " Only works for key vaults that use the 'Azure role-based access control' permission model."

func builtIn(id, name, desc string, p Permission) RoleDefinition {
	return RoleDefinition{ID: id, RoleName: name, Description: desc, RoleType: BuiltInRole,
		Permissions: []Permission{p}, AssignableScopes: []string{"/"}}
}

// builtIns is the table of built-in roles. Unless a comment says
// otherwise, each definition is copied exactly from Azure's published
// built-in role reference (the "Privileged", "General" and "Security"
// categories).
var builtIns = []RoleDefinition{
	builtIn(OwnerID, "Owner", "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
		Permission{Actions: []string{"*"}}),
	builtIn(ContributorID, "Contributor", "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
		Permission{Actions: []string{"*"}, NotActions: []string{
			"Microsoft.Authorization/*/Delete",
			"Microsoft.Authorization/*/Write",
			"Microsoft.Authorization/elevateAccess/Action",
			"Microsoft.Blueprint/blueprintAssignments/write",
			"Microsoft.Blueprint/blueprintAssignments/delete",
			"Microsoft.Compute/galleries/share/action",
			"Microsoft.Purview/consents/write",
			"Microsoft.Purview/consents/delete",
			"Microsoft.Resources/deploymentStacks/manageDenySetting/action",
			"Microsoft.Subscription/cancel/action",
			"Microsoft.Subscription/enable/action",
		}}),
	builtIn(ReaderID, "Reader", "View all resources, but does not allow you to make any changes.",
		Permission{Actions: []string{"*/read"}}),
	builtIn(UserAccessAdministratorID, "User Access Administrator", "Lets you manage user access to Azure resources.",
		Permission{Actions: []string{"*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"}}),
	builtIn(RBACAdministratorID, "Role Based Access Control Administrator", "Manage access to Azure resources by assigning roles using Azure RBAC. This role does not allow you to manage access using other ways, such as Azure Policy.",
		Permission{Actions: []string{
			"Microsoft.Authorization/roleAssignments/write",
			"Microsoft.Authorization/roleAssignments/delete",
			"*/read",
			"Microsoft.Support/*",
		}}),
	builtIn(KeyVaultAdministratorID, "Key Vault Administrator", "Perform all data plane operations on a key vault and all objects in it, including certificates, keys, and secrets. Cannot manage key vault resources or manage role assignments."+rbacOnly,
		Permission{Actions: kvReadActions, DataActions: []string{"Microsoft.KeyVault/vaults/*"}}),
	builtIn(KeyVaultCertificatesOfficerID, "Key Vault Certificates Officer", "Perform any action on the certificates of a key vault, except manage permissions."+rbacOnly,
		Permission{Actions: kvReadActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/certificatecas/*",
			"Microsoft.KeyVault/vaults/certificates/*",
			"Microsoft.KeyVault/vaults/certificatecontacts/write",
		}}),
	builtIn(KeyVaultCertificateUserID, "Key Vault Certificate User", "Read certificate contents."+rbacOnly,
		Permission{DataActions: []string{
			"Microsoft.KeyVault/vaults/certificates/read",
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
			"Microsoft.KeyVault/vaults/keys/read",
		}}),
	builtIn(KeyVaultContributorID, "Key Vault Contributor", "Lets you manage key vaults, but not access to them.",
		Permission{Actions: []string{
			"Microsoft.Authorization/*/read",
			"Microsoft.Insights/alertRules/*",
			"Microsoft.KeyVault/*",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Support/*",
		}, NotActions: []string{
			"Microsoft.KeyVault/locations/deletedVaults/purge/action",
			"Microsoft.KeyVault/hsmPools/*",
			"Microsoft.KeyVault/managedHsms/*",
		}}),
	builtIn(KeyVaultCryptoOfficerID, "Key Vault Crypto Officer", "Perform any action on the keys of a key vault, except manage permissions."+rbacOnly,
		Permission{Actions: kvReadActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/*",
			"Microsoft.KeyVault/vaults/keyrotationpolicies/*",
		}}),
	builtIn(KeyVaultCryptoServiceEncryptionUserID, "Key Vault Crypto Service Encryption User", "Read metadata of keys and perform wrap/unwrap operations."+rbacOnly,
		Permission{Actions: []string{
			"Microsoft.EventGrid/eventSubscriptions/write",
			"Microsoft.EventGrid/eventSubscriptions/read",
			"Microsoft.EventGrid/eventSubscriptions/delete",
		}, DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/read",
			"Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action",
		}}),
	builtIn(KeyVaultCryptoServiceReleaseUserID, "Key Vault Crypto Service Release User", "Release keys."+rbacOnly,
		Permission{DataActions: []string{"Microsoft.KeyVault/vaults/keys/release/action"}}),
	builtIn(KeyVaultCryptoUserID, "Key Vault Crypto User", "Perform cryptographic operations using keys."+rbacOnly,
		Permission{DataActions: []string{
			"Microsoft.KeyVault/vaults/keys/read",
			"Microsoft.KeyVault/vaults/keys/update/action",
			"Microsoft.KeyVault/vaults/keys/backup/action",
			"Microsoft.KeyVault/vaults/keys/encrypt/action",
			"Microsoft.KeyVault/vaults/keys/decrypt/action",
			"Microsoft.KeyVault/vaults/keys/wrap/action",
			"Microsoft.KeyVault/vaults/keys/unwrap/action",
			"Microsoft.KeyVault/vaults/keys/sign/action",
			"Microsoft.KeyVault/vaults/keys/verify/action",
		}}),
	builtIn(KeyVaultDataAccessAdministratorID, "Key Vault Data Access Administrator", "Manage access to Azure Key Vault by adding or removing role assignments for the Key Vault Administrator, Key Vault Certificates Officer, Key Vault Crypto Officer, Key Vault Crypto Service Encryption User, Key Vault Crypto User, Key Vault Reader, Key Vault Secrets Officer, or Key Vault Secrets User roles. Includes an ABAC condition to constrain role assignments.",
		Permission{Actions: []string{
			"Microsoft.Authorization/roleAssignments/write",
			"Microsoft.Authorization/roleAssignments/delete",
			"Microsoft.Authorization/*/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Resources/subscriptions/resourceGroups/read",
			"Microsoft.Resources/subscriptions/read",
			"Microsoft.Management/managementGroups/read",
			"Microsoft.Resources/deployments/*",
			"Microsoft.Support/*",
			"Microsoft.KeyVault/vaults/*/read",
		}, Condition: kvDataAccessCondition, ConditionVersion: "2.0"}),
	// Key Vault Purge Operator: the GUID, name and description are Azure's;
	// the action list is ABRIDGED and unverified (Azure's published
	// definition was not at hand): the purge and the reads of deleted
	// vaults it needs, no more.
	builtIn(KeyVaultPurgeOperatorID, "Key Vault Purge Operator", "Allows permanent deletion of soft-deleted vaults.",
		Permission{Actions: []string{
			"Microsoft.KeyVault/locations/deletedVaults/purge/action",
			"Microsoft.KeyVault/deletedVaults/read",
			"Microsoft.KeyVault/locations/deletedVaults/read",
		}}),
	builtIn(KeyVaultReaderID, "Key Vault Reader", "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read sensitive values such as secret contents or key material."+rbacOnly,
		Permission{Actions: kvReadActions, DataActions: []string{
			"Microsoft.KeyVault/vaults/*/read",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}),
	builtIn(KeyVaultSecretsOfficerID, "Key Vault Secrets Officer", "Perform any action on the secrets of a key vault, except manage permissions."+rbacOnly,
		Permission{Actions: kvReadActions, DataActions: []string{"Microsoft.KeyVault/vaults/secrets/*"}}),
	builtIn(KeyVaultSecretsUserID, "Key Vault Secrets User", "Read secret contents."+rbacOnly,
		Permission{DataActions: []string{
			"Microsoft.KeyVault/vaults/secrets/getSecret/action",
			"Microsoft.KeyVault/vaults/secrets/readMetadata/action",
		}}),
}

// BuiltInRoles returns a copy of every built-in role definition.
func BuiltInRoles() []RoleDefinition {
	out := make([]RoleDefinition, len(builtIns))
	for i, d := range builtIns {
		out[i] = d.clone()
	}
	return out
}

// BuiltIn returns the built-in role with GUID id, or false.
func BuiltIn(id string) (RoleDefinition, bool) {
	for _, d := range builtIns {
		if strings.EqualFold(d.ID, id) {
			return d.clone(), true
		}
	}
	return RoleDefinition{}, false
}

// BuiltInByName returns the built-in role named name (any case), or false.
func BuiltInByName(name string) (RoleDefinition, bool) {
	for _, d := range builtIns {
		if strings.EqualFold(d.RoleName, strings.TrimSpace(name)) {
			return d.clone(), true
		}
	}
	return RoleDefinition{}, false
}

func (d RoleDefinition) clone() RoleDefinition {
	c := d
	c.AssignableScopes = slices.Clone(d.AssignableScopes)
	c.Permissions = make([]Permission, len(d.Permissions))
	for i, p := range d.Permissions {
		c.Permissions[i] = Permission{
			Actions: nonNil(p.Actions), NotActions: nonNil(p.NotActions),
			DataActions: nonNil(p.DataActions), NotDataActions: nonNil(p.NotDataActions),
			Condition: p.Condition, ConditionVersion: p.ConditionVersion,
		}
	}
	return c
}

// nonNil copies s, turning nil into an empty slice so that JSON shows [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// keyAdminNoDeleteNS namespaces the ids KeyAdministratorNoDelete derives.
var keyAdminNoDeleteNS = uuid.MustParse("5b0d8f43-7c52-4d53-9a38-0c6f3e0b9a71")

// KeyAdministratorNoDelete is the custom role the Customer Key setup asks
// for the human key administrators of a subscription: keys may be listed,
// read, created, imported, backed up and restored, but never deleted,
// purged or used for cryptography; deleting stays a deliberate, temporary
// grant of another role. Its id is derived from the subscription, so that
// offering it twice is an idempotent PUT, and its name carries the
// subscription, because custom role names are unique per tenant and the
// setup uses two subscriptions.
func KeyAdministratorNoDelete(subscription string) RoleDefinition {
	sub := strings.ToLower(strings.TrimSpace(subscription))
	return RoleDefinition{
		ID:       uuid.NewSHA1(keyAdminNoDeleteNS, []byte("key-administrator-no-delete/"+sub)).String(),
		RoleName: "Key Vault Key Administrator without delete (" + sub + ")",
		Description: "Back up, create, get, import, list and restore the keys of key vaults, without delete or purge. " +
			"Made for the Customer Key key administrators.",
		RoleType: CustomRole,
		Permissions: []Permission{{
			Actions: []string{
				"Microsoft.Authorization/*/read",
				"Microsoft.Resources/subscriptions/read",
				"Microsoft.Resources/subscriptions/resourceGroups/read",
				"Microsoft.KeyVault/checkNameAvailability/read",
				"Microsoft.KeyVault/deletedVaults/read",
				"Microsoft.KeyVault/locations/*/read",
				"Microsoft.KeyVault/vaults/read",
				"Microsoft.KeyVault/vaults/*/read",
			},
			NotActions: []string{},
			DataActions: []string{
				DataKeysRead,
				DataKeysCreate,
				DataKeysImport,
				DataKeysBackup,
				DataKeysRestore,
			},
			NotDataActions: []string{},
		}},
		AssignableScopes: []string{"/subscriptions/" + sub},
	}
}
