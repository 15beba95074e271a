package rbac

import (
	"regexp"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
)

// Key data actions: what the key vault keys data plane checks, named as
// Azure publishes them (Azure resource provider operations,
// Microsoft.KeyVault DataActions). Azure has no separate data action for
// deleted keys: getting and listing deleted keys checks DataKeysRead, and
// the versions list checks DataKeysRead too. "Microsoft.KeyVault/vaults/
// keys/write" is not a data action: it is the Resource Manager "create key
// if it does not exist" operation (see ActionVaultKeysWrite).
const (
	DataKeysRead    = "Microsoft.KeyVault/vaults/keys/read"          // get, list, list versions, get/list deleted
	DataKeysUpdate  = "Microsoft.KeyVault/vaults/keys/update/action" // update attributes
	DataKeysCreate  = "Microsoft.KeyVault/vaults/keys/create/action"
	DataKeysImport  = "Microsoft.KeyVault/vaults/keys/import/action"
	DataKeysDelete  = "Microsoft.KeyVault/vaults/keys/delete"
	DataKeysRecover = "Microsoft.KeyVault/vaults/keys/recover/action"
	DataKeysBackup  = "Microsoft.KeyVault/vaults/keys/backup/action"
	DataKeysRestore = "Microsoft.KeyVault/vaults/keys/restore/action"
	DataKeysPurge   = "Microsoft.KeyVault/vaults/keys/purge/action"
	DataKeysEncrypt = "Microsoft.KeyVault/vaults/keys/encrypt/action"
	DataKeysDecrypt = "Microsoft.KeyVault/vaults/keys/decrypt/action"
	DataKeysWrap    = "Microsoft.KeyVault/vaults/keys/wrap/action"
	DataKeysUnwrap  = "Microsoft.KeyVault/vaults/keys/unwrap/action"
	DataKeysSign    = "Microsoft.KeyVault/vaults/keys/sign/action"
	DataKeysVerify  = "Microsoft.KeyVault/vaults/keys/verify/action"
	DataKeysRelease = "Microsoft.KeyVault/vaults/keys/release/action"
	DataKeysRotate  = "Microsoft.KeyVault/vaults/keys/rotate/action"

	DataKeyRotationPolicyRead  = "Microsoft.KeyVault/vaults/keyrotationpolicies/read"
	DataKeyRotationPolicyWrite = "Microsoft.KeyVault/vaults/keyrotationpolicies/write"

	// DataRandomBytes is a customerkey extension: Azure publishes a random
	// bytes data action for Managed HSM only ("Microsoft.KeyVault/
	// managedHsm/rng/action"). Under vaults/* it is granted by Key Vault
	// Administrator and by nothing narrower.
	DataRandomBytes = "Microsoft.KeyVault/vaults/rng/action"
)

// KeyDataActions is the complete catalogue of key data actions Azure
// publishes for vaults, in the order of its documentation.
var KeyDataActions = []string{
	DataKeysRead, DataKeysUpdate, DataKeysCreate, DataKeysImport, DataKeysRecover, DataKeysRestore,
	DataKeysDelete, DataKeysBackup, DataKeysPurge, DataKeysEncrypt, DataKeysDecrypt, DataKeysWrap,
	DataKeysUnwrap, DataKeysSign, DataKeysVerify, DataKeysRelease, DataKeysRotate,
	DataKeyRotationPolicyRead, DataKeyRotationPolicyWrite,
}

// Management actions the Resource Manager surface checks.
const (
	ActionSubscriptionRead   = "Microsoft.Resources/subscriptions/read"
	ActionSubscriptionCancel = "Microsoft.Subscription/cancel/action"
	ActionSubscriptionEnable = "Microsoft.Subscription/enable/action"

	ActionResourceGroupRead   = "Microsoft.Resources/subscriptions/resourceGroups/read"
	ActionResourceGroupWrite  = "Microsoft.Resources/subscriptions/resourceGroups/write"
	ActionResourceGroupDelete = "Microsoft.Resources/subscriptions/resourceGroups/delete"

	// ActionProvidersRead covers GET /subscriptions/{s}/providers[/{ns}].
	ActionProvidersRead = "Microsoft.Resources/subscriptions/providers/read"
	// ActionFeaturesRead lists a subscription's features; ActionFeatureRead
	// and ActionFeatureRegister act on one feature of one provider.
	ActionFeaturesRead      = "Microsoft.Features/features/read"
	ActionFeatureRead       = "Microsoft.Features/providers/features/read"
	ActionFeatureRegister   = "Microsoft.Features/providers/features/register/action"
	ActionFeatureUnregister = "Microsoft.Features/providers/features/unregister/action"

	ActionVaultRead                = "Microsoft.KeyVault/vaults/read"
	ActionVaultWrite               = "Microsoft.KeyVault/vaults/write"
	ActionVaultDelete              = "Microsoft.KeyVault/vaults/delete"
	ActionVaultAccessPoliciesWrite = "Microsoft.KeyVault/vaults/accessPolicies/write"
	// ActionVaultKeysWrite is Resource Manager's "create the first version
	// of a key if it does not exist" (PUT …/vaults/{v}/keys/{k}).
	ActionVaultKeysWrite = "Microsoft.KeyVault/vaults/keys/write"
	// ActionVaultKeysRead reads key properties through Resource Manager.
	ActionVaultKeysRead = "Microsoft.KeyVault/vaults/keys/read"

	// ActionDeletedVaultsList lists deleted vaults (GET /subscriptions/{s}/
	// providers/Microsoft.KeyVault/deletedVaults).
	ActionDeletedVaultsList = "Microsoft.KeyVault/deletedVaults/read"
	// ActionDeletedVaultRead gets one deleted vault (…/locations/{l}/deletedVaults/{v}).
	ActionDeletedVaultRead  = "Microsoft.KeyVault/locations/deletedVaults/read"
	ActionDeletedVaultPurge = "Microsoft.KeyVault/locations/deletedVaults/purge/action"

	ActionCheckNameAvailability = "Microsoft.KeyVault/checkNameAvailability/read"

	ActionRoleAssignmentsRead   = "Microsoft.Authorization/roleAssignments/read"
	ActionRoleAssignmentsWrite  = "Microsoft.Authorization/roleAssignments/write"
	ActionRoleAssignmentsDelete = "Microsoft.Authorization/roleAssignments/delete"
	ActionRoleDefinitionsRead   = "Microsoft.Authorization/roleDefinitions/read"
	ActionRoleDefinitionsWrite  = "Microsoft.Authorization/roleDefinitions/write"
	ActionRoleDefinitionsDelete = "Microsoft.Authorization/roleDefinitions/delete"
)

// RegisterAction is the action that registers resource provider namespace
// ns in a subscription, e.g. "Microsoft.KeyVault/register/action".
func RegisterAction(ns string) string { return ns + "/register/action" }

// knownLower maps every constant above to its lower-case form, so that the
// hot path does not allocate to fold case.
var knownLower = func() map[string]string {
	m := map[string]string{}
	for _, a := range append(append([]string(nil), KeyDataActions...), DataRandomBytes,
		ActionSubscriptionRead, ActionSubscriptionCancel, ActionSubscriptionEnable,
		ActionResourceGroupRead, ActionResourceGroupWrite, ActionResourceGroupDelete,
		ActionProvidersRead, ActionFeaturesRead, ActionFeatureRead, ActionFeatureRegister, ActionFeatureUnregister,
		ActionVaultRead, ActionVaultWrite, ActionVaultDelete, ActionVaultAccessPoliciesWrite, ActionVaultKeysWrite,
		ActionDeletedVaultsList, ActionDeletedVaultRead, ActionDeletedVaultPurge, ActionCheckNameAvailability,
		ActionRoleAssignmentsRead, ActionRoleAssignmentsWrite, ActionRoleAssignmentsDelete,
		ActionRoleDefinitionsRead, ActionRoleDefinitionsWrite, ActionRoleDefinitionsDelete) {
		m[a] = strings.ToLower(a)
	}
	return m
}()

func lowerAction(a string) string {
	if l, ok := knownLower[a]; ok {
		return l
	}
	return strings.ToLower(a)
}

// pattern is a compiled action pattern: the lower-cased text split at "*".
type pattern []string

func compilePattern(p string) pattern { return strings.Split(strings.ToLower(p), "*") }

// match reports whether the lower-cased action s matches p. A "*" matches
// any run of characters, including "/" and the empty run.
func (p pattern) match(s string) bool {
	if len(p) == 1 {
		return s == p[0]
	}
	if !strings.HasPrefix(s, p[0]) {
		return false
	}
	s = s[len(p[0]):]
	for _, mid := range p[1 : len(p)-1] {
		i := strings.Index(s, mid)
		if i < 0 {
			return false
		}
		s = s[i+len(mid):]
	}
	return strings.HasSuffix(s, p[len(p)-1])
}

// MatchAction reports whether action matches the Azure action pattern pat
// ("*", "*/read", "Microsoft.KeyVault/*", "Microsoft.KeyVault/vaults/*/read"),
// without regard to case.
func MatchAction(pat, action string) bool {
	return compilePattern(pat).match(lowerAction(action))
}

const maxActionLen = 512

var (
	segmentRE   = regexp.MustCompile(`^[A-Za-z0-9_.*-]+$`)
	namespaceRE = regexp.MustCompile(`^(\*|[A-Za-z0-9*]+(\.[A-Za-z0-9*]+)+)$`)
)

// ValidateAction checks the syntax of an action or data action pattern of
// a custom role: "Provider.Namespace/type/…/verb", where any segment may
// hold "*" wildcards, or "*" alone.
func ValidateAction(a string) error {
	bad := func(why string) error {
		return errkind.Errorf(errkind.Invalid, "the action %q is not valid: %s; expected Provider.Namespace/resourceType/…/verb, with * as a wildcard", a, why).
			WithCode("InvalidActionOrNotAction")
	}
	if a == "" || len(a) > maxActionLen {
		return bad("it must have 1 to 512 characters")
	}
	segs := strings.Split(a, "/")
	if len(segs) == 1 {
		if a != "*" {
			return bad("it has no resource type or verb")
		}
		return nil
	}
	for _, s := range segs {
		if s == "" {
			return bad("it has an empty segment")
		}
		if !segmentRE.MatchString(s) {
			return bad("a segment holds a character other than letters, digits, '.', '_', '-' and '*'")
		}
	}
	if !namespaceRE.MatchString(segs[0]) {
		return bad("the first segment must be a provider namespace such as Microsoft.KeyVault, or *")
	}
	return nil
}
