package onboarding

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resources"
	"github.com/customerkey/customerkey/internal/vault"
)

// Rule names: the setup guide's, then ours.
const (
	RuleMandatoryRetentionPeriodState      = "MandatoryRetentionPeriodState"
	RuleSubscriptionInRequestOrganization  = "SubscriptionInRequestOrganization"
	RuleVaultExistsinSubscription          = "VaultExistsinSubscription"
	RuleSubscriptionUniquePerScenario      = "SubscriptionUniquePerScenario"
	RuleSubscriptionsCountPerScenario      = "SubscriptionsCountPerScenario"
	RuleRecoveryLevel                      = "RecoveryLevel"
	RuleKeyOperationsSupported             = "KeyOperationsSupported"
	RuleKeyNeverExpires                    = "KeyNeverExpires"
	RuleKeyAccessPermissions               = "KeyAccessPermissions"
	RuleOrganizationHasRequiredServicePlan = "OrganizationHasRequiredServicePlan"

	RuleKeyIdentifierValid      = "KeyIdentifierValid" // only when a KeyIdentifier was given
	RuleSubscriptionOfferIsPaid = "SubscriptionOfferIsPaid"
	RuleSoftDeleteRetention     = "SoftDeleteRetention"
	RuleKeyExistsInVault        = "KeyExistsInVault"
	RuleKeysInDifferentVaults   = "KeysInDifferentVaults"
	RuleKeyEnabled              = "KeyEnabled"
	RuleKeySizeSupported        = "KeySizeSupported"
)

// Values of ActualValue for rules that could not be evaluated.
const (
	notEvaluatedSub   = "not evaluated: the subscription is not in the organization"
	notEvaluatedKeyID = "not evaluated: the key identifier is not valid"
	notEvaluatedVault = "not evaluated: the vault does not exist"
	notEvaluatedKey   = "not evaluated: the key does not exist"
)

// workload is the application whose service principal uses the keys.
func workload(sc Scenario) (appID, name string) {
	if sc == EXO {
		return directory.ExchangeAppID, "Office 365 Exchange Online"
	}
	return directory.M365DAREAppID, "M365DataAtRestEncryption"
}

type evaluation struct {
	s      *Service
	req    *Request
	tenant func(planID string) bool
	ts     []*target
}

func (e *evaluation) add(ok bool, rule, sc, expected, actual, details string) {
	v := Validation{RuleName: rule, Scope: scope(sc), ExpectedValue: expected, ActualValue: actual, Details: details}
	if ok {
		e.req.PassedValidations = append(e.req.PassedValidations, v)
	} else {
		e.req.FailedValidations = append(e.req.FailedValidations, v)
	}
}

// prepareCmd is the customerkey command that runs Prepare for this request.
func (e *evaluation) prepareCmd() string {
	r := e.req
	b := &strings.Builder{}
	fmt.Fprintf(b, "customerkey onboarding new --organization %s --scenario %s", r.Organization, r.Scenario)
	for _, t := range e.ts {
		fmt.Fprintf(b, " --subscription%d %s", t.n, t.sub)
		if t.keyID != "" {
			fmt.Fprintf(b, " --key-identifier%d %s", t.n, t.keyID)
		} else {
			fmt.Fprintf(b, " --vault-name%d %s --key-name%d %s", t.n, t.vaultName, t.n, t.key)
		}
	}
	b.WriteString(" --onboarding-mode Prepare")
	return b.String()
}

func (e *evaluation) run(ctx context.Context) error {
	r := e.req
	// Tenant-wide rules.
	e.add(e.tenant(directory.CustomerKeyPlan.ID), RuleOrganizationHasRequiredServicePlan, r.Organization,
		directory.CustomerKeyPlan.Name, e.planActual(), ifFail(e.tenant(directory.CustomerKeyPlan.ID), "The organization has a licence that includes Customer Key",
			"The organization needs a licence that includes Customer Key (Office 365 E5, Microsoft 365 E5, Microsoft 365 E5 Compliance, "+
				"Microsoft 365 E5 Information Protection & Governance, Microsoft 365 Security and Compliance for FLW); "+
				"ask the operator to add one: customerkey license add --tenant-id "+r.Organization+" --license \"Microsoft 365 E5\""))
	first := e.ts[0].sub
	subs := map[string]bool{}
	for _, t := range e.ts {
		subs[lower(t.sub)] = true
	}
	e.add(len(e.ts) == 2, RuleSubscriptionsCountPerScenario, first, "2", fmt.Sprint(len(e.ts)),
		"Customer Key needs two keys in two subscriptions: name Subscription2, VaultName2 and KeyName2 (or KeyIdentifier2) as well")
	if len(e.ts) == 2 {
		t2 := e.ts[1]
		e.add(len(subs) == 2, RuleSubscriptionUniquePerScenario, t2.sub, "unique", uniqueActual(len(subs) == 2),
			"Subscription1 and Subscription2 must be two different subscriptions, so that no one administrator can delete both keys; "+
				"create a second one: customerkey subscription create --tenant-id "+r.Organization+" --name NAME --offer PayAsYouGo")
		if e.ts[0].vault != nil && t2.vault != nil {
			same := e.ts[0].vault.UID == t2.vault.UID
			e.add(!same, RuleKeysInDifferentVaults, t2.sub, "two different vaults", uniqueVaultActual(same, t2.vault.Name),
				"The two keys must be in two different vaults, one in each subscription; create a vault in subscription "+t2.sub+
					" (customerkey vault create --subscription "+t2.sub+" --resource-group RG --name NAME --location REGION) and a key in it")
		}
	}
	for _, t := range e.ts {
		if err := e.target(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

func (e *evaluation) planActual() string {
	if e.tenant(directory.CustomerKeyPlan.ID) {
		return directory.CustomerKeyPlan.Name
	}
	return "absent"
}

func uniqueActual(ok bool) string {
	if ok {
		return "unique"
	}
	return "duplicate"
}

func uniqueVaultActual(same bool, name string) string {
	if same {
		return "both keys in vault " + name
	}
	return "two different vaults"
}

// target runs the rules of one subscription, vault and key.
func (e *evaluation) target(ctx context.Context, t *target) error {
	r := e.req
	sc := t.sub
	// The subscription.
	switch {
	case !t.subFound:
		e.add(false, RuleSubscriptionInRequestOrganization, sc, r.Organization, "subscription not found",
			fmt.Sprintf("No subscription %s exists: check the id (customerkey subscription list)", t.sub))
	case !t.inOrg:
		e.add(false, RuleSubscriptionInRequestOrganization, sc, r.Organization, "another tenant",
			fmt.Sprintf("Subscription %s belongs to another tenant: Customer Key's keys must be in subscriptions of the organization's own directory; "+
				"create one there (customerkey subscription create --tenant-id %s --name NAME --offer PayAsYouGo)", t.sub, r.Organization))
	default:
		e.add(true, RuleSubscriptionInRequestOrganization, sc, r.Organization, t.subscription.TenantID,
			"The subscription belongs to the organization's directory")
	}
	if !t.inOrg {
		for _, rule := range []string{RuleSubscriptionOfferIsPaid, RuleMandatoryRetentionPeriodState, RuleVaultExistsinSubscription} {
			e.add(false, rule, sc, expected(rule), notEvaluatedSub, "Fix SubscriptionInRequestOrganization first")
		}
		e.skipVault(t, notEvaluatedSub, "Fix SubscriptionInRequestOrganization first")
		return nil
	}
	offer := t.subscription.Offer
	e.add(offer.Paid(), RuleSubscriptionOfferIsPaid, sc, expected(RuleSubscriptionOfferIsPaid), string(offer),
		ifFail(offer.Paid(), "The subscription has a paid offer",
			fmt.Sprintf("Subscription %s has the offer %s: Free, Trial, Sponsorship, MSDN and Legacy Support subscriptions aren't eligible; "+
				"use a paid subscription (customerkey subscription create --tenant-id %s --name NAME --offer PayAsYouGo)", t.sub, offer, r.Organization)))
	state := t.feature.State
	if state == "" {
		state = resources.NotRegistered
	}
	featureFix := fmt.Sprintf("The mandatory retention period of subscription %s is %s. Register the mandatory retention period: %s, "+
		"then validate again after it shows Registered (customerkey feature show --name %s --namespace %s --subscription %s)",
		t.sub, state, e.prepareCmd(), resources.MandatoryRetentionName, resources.MandatoryRetentionNamespace, t.sub)
	if state == resources.Registering {
		featureFix = fmt.Sprintf("The mandatory retention period of subscription %s is Registering until %s: run Validate again after that "+
			"(customerkey feature show --name %s --namespace %s --subscription %s)", t.sub, t.feature.ReadyAt.UTC().Format(time.RFC3339),
			resources.MandatoryRetentionName, resources.MandatoryRetentionNamespace, t.sub)
	}
	e.add(t.featureRegistered, RuleMandatoryRetentionPeriodState, sc, string(resources.Registered), string(state),
		ifFail(t.featureRegistered, "The subscription cannot be cancelled at once: its mandatory retention period is registered", featureFix))

	// The key identifier, when one was given.
	if t.keyID != "" {
		e.add(t.idErr == "", RuleKeyIdentifierValid, sc, "https://{vault}.{suffix}/keys/{name}[/{version}]", actualKeyID(t),
			ifFail(t.idErr == "", "The key identifier names a vault and a key",
				t.idErr+"; copy the key's kid (customerkey key show --vault-name VAULT --name KEY)"))
		if t.idErr != "" {
			e.add(false, RuleVaultExistsinSubscription, sc, expected(RuleVaultExistsinSubscription), notEvaluatedKeyID, "Fix KeyIdentifierValid first")
			e.skipVault(t, notEvaluatedKeyID, "Fix KeyIdentifierValid first")
			return nil
		}
	}

	// The vault.
	if t.vault == nil {
		e.add(false, RuleVaultExistsinSubscription, sc, expected(RuleVaultExistsinSubscription), "NotFound",
			fmt.Sprintf("No live vault named %s exists in subscription %s: create it (customerkey vault create --subscription %s --resource-group RG --name %s --location REGION) "+
				"or fix the name (customerkey vault list --subscription %s)", t.vaultName, t.sub, t.sub, t.vaultName, t.sub))
		e.skipVault(t, notEvaluatedVault, "Fix VaultExistsinSubscription first")
		return nil
	}
	v := *t.vault
	e.add(true, RuleVaultExistsinSubscription, sc, expected(RuleVaultExistsinSubscription), "Exists",
		"Vault "+v.Name+" is in subscription "+t.sub)
	days := v.SoftDeleteRetentionInDays
	if days <= 0 {
		days = vault.DefaultRetentionDays
	}
	softOK := v.EnableSoftDelete && days == vault.DefaultRetentionDays
	softActual := "disabled"
	if v.EnableSoftDelete {
		softActual = fmt.Sprintf("enabled, %d days", days)
	}
	e.add(softOK, RuleSoftDeleteRetention, sc, expected(RuleSoftDeleteRetention), softActual,
		ifFail(softOK, "Deleted keys stay recoverable for 90 days",
			fmt.Sprintf("Vault %s keeps deleted keys for %s: soft delete must be on with 90 days' retention, which is fixed when a vault is created; "+
				"create a vault with the default retention (customerkey vault create --subscription %s --resource-group %s --name NAME --location %s) and a key in it",
				v.Name, softActual, t.sub, v.ResourceGroup, v.Location)))
	level, _ := vault.RecoveryLevel(v, t.featureRegistered)
	levelOK := level == vault.LevelRecoverableProtectedSubscription
	e.add(levelOK, RuleRecoveryLevel, sc, vault.LevelRecoverableProtectedSubscription, level,
		ifFail(levelOK, "Keys of the vault can be neither purged early nor lost by cancelling the subscription",
			fmt.Sprintf("The keys of vault %s have the recovery level %s: keep soft delete on with 90 days' retention and register the mandatory retention period (%s); "+
				"if it stays so an hour after the feature shows Registered, register the providers again (customerkey provider register --namespace Microsoft.Resources --subscription %s; "+
				"customerkey provider register --namespace Microsoft.KeyVault --subscription %s) and check customerkey key show --vault-name %s --name %s",
				v.Name, level, e.prepareCmd(), t.sub, t.sub, v.Name, t.key)))

	// The key.
	if !t.keyFound {
		e.add(false, RuleKeyExistsInVault, sc, expected(RuleKeyExistsInVault), "NotFound",
			fmt.Sprintf("Vault %s has no key %s%s: create it (customerkey key create --vault-name %s --name %s --kty RSA --size 3072) or fix the name",
				v.Name, t.key, versionSuffix(t.version), v.Name, t.key))
		e.skipKey(t, notEvaluatedKey, "Fix KeyExistsInVault first")
		return nil
	}
	e.add(true, RuleKeyExistsInVault, sc, expected(RuleKeyExistsInVault), "Exists", "Key "+t.key+" is in vault "+v.Name)
	k := t.k
	isRSA := k.Type == vault.KeyTypeRSA || k.Type == vault.KeyTypeRSAHSM
	hasWrap, hasUnwrap := containsFold(k.JWK.KeyOps, vault.OpWrapKey), containsFold(k.JWK.KeyOps, vault.OpUnwrapKey)
	opsOK := isRSA && hasWrap && hasUnwrap
	e.add(opsOK, RuleKeyOperationsSupported, sc, expected(RuleKeyOperationsSupported),
		fmt.Sprintf("%s key with key_ops %s", k.Type, strings.Join(k.JWK.KeyOps, ", ")),
		ifFail(opsOK, "The key is an RSA key that allows wrapKey and unwrapKey", opsFix(isRSA, v.Name, t.key)))
	bits := 0
	if isRSA {
		bits = new(big.Int).SetBytes(k.JWK.N).BitLen()
	}
	sizeOK := isRSA && bits >= 2048 && bits <= 4096
	sizeActual := fmt.Sprintf("RSA %d", bits)
	if !isRSA {
		sizeActual = k.Type
	}
	e.add(sizeOK, RuleKeySizeSupported, sc, expected(RuleKeySizeSupported), sizeActual,
		ifFail(sizeOK, "The key is RSA of 2048 to 4096 bits",
			fmt.Sprintf("Customer Key uses RSA keys of 2048, 3072 or 4096 bits: create one (customerkey key create --vault-name %s --name NAME --kty RSA --size 3072)", v.Name)))
	now := e.s.now()
	active := k.Attributes.Enabled && (k.Attributes.NotBefore == nil || !k.Attributes.NotBefore.After(now))
	enabledActual := "enabled"
	switch {
	case !k.Attributes.Enabled:
		enabledActual = "disabled"
	case !active:
		enabledActual = "not active before " + k.Attributes.NotBefore.UTC().Format(time.RFC3339)
	}
	e.add(active, RuleKeyEnabled, sc, "enabled", enabledActual,
		ifFail(active, "The key is enabled and active",
			fmt.Sprintf("Key %s of vault %s is %s: a disabled key stops every workload it protects; enable it (customerkey key update --vault-name %s --name %s --enable true)",
				t.key, v.Name, enabledActual, v.Name, t.key)))
	exp := k.Attributes.Expires
	e.add(exp == nil, RuleKeyNeverExpires, sc, "none", expiresActual(exp),
		ifFail(exp == nil, "The key has no expiry date",
			fmt.Sprintf("Key %s of vault %s expires on %s: an expiry can be changed but never removed, and the onboarding service accepts only keys without one. "+
				"Create a new key without expiry (customerkey key create --vault-name %s --name NAME --kty RSA --size 3072), or set the expiry to 9999-12-31 "+
				"(customerkey key update --vault-name %s --name %s --expires 12/31/9999) and use the legacy path (customerkey onboarding legacy-request)",
				t.key, v.Name, expiresActual(exp), v.Name, v.Name, t.key)))
	return e.access(ctx, t)
}

// access is rule KeyAccessPermissions: the workload's service principal
// has get, wrapKey and unwrapKey on the key.
func (e *evaluation) access(ctx context.Context, t *target) error {
	r, v := e.req, *t.vault
	appID, name := workload(r.Scenario)
	want := fmt.Sprintf("get, wrapKey, unwrapKey for %s", name)
	sp, err := e.s.dir.ServicePrincipalByAppID(ctx, r.Organization, appID)
	switch {
	case errkind.Is(err, errkind.NotFound):
		e.add(false, RuleKeyAccessPermissions, t.sub, want, fmt.Sprintf("%s (%s) is not registered in the tenant", name, appID),
			fmt.Sprintf("Register the application's service principal in the organization: customerkey New-AzADServicePrincipal -ApplicationId %s "+
				"(customerkey sp create --app-id %s), then grant it the role Key Vault Crypto Service Encryption User on the key", appID, appID))
		return nil
	case err != nil:
		return err
	}
	keyScope := v.ResourceID().Child("keys", t.k.Ref.Name)
	var missing []string
	if v.EnableRbacAuthorization {
		p := rbac.Principal{TenantID: r.Organization, ObjectID: sp.ID, Type: rbac.PrincipalServicePrincipal, Name: appID}
		for _, perm := range []struct{ name, action string }{
			{"get", rbac.DataKeysRead}, {"wrapKey", rbac.DataKeysWrap}, {"unwrapKey", rbac.DataKeysUnwrap},
		} {
			err := e.s.rbac.CheckData(ctx, p, perm.action, keyScope)
			switch {
			case errkind.Is(err, errkind.PermissionDenied):
				missing = append(missing, perm.name)
			case err != nil:
				return err
			}
		}
	} else {
		for _, perm := range []string{"get", vault.OpWrapKey, vault.OpUnwrapKey} {
			if !v.AllowsKeyOperation(r.Organization, sp.ID, "", perm) {
				missing = append(missing, perm)
			}
		}
	}
	ok := len(missing) == 0
	actual := want
	if !ok {
		actual = fmt.Sprintf("%s lacks %s", name, strings.Join(missing, ", "))
	}
	fix := fmt.Sprintf("Grant %s the role Key Vault Crypto Service Encryption User on the key: customerkey role assignment create --assignee %s "+
		"--role \"Key Vault Crypto Service Encryption User\" --scope %s", name, appID, keyScope)
	if !v.EnableRbacAuthorization {
		fix = fmt.Sprintf("Vault %s uses access policies: give %s (object id %s) the key permissions get, wrapKey and unwrapKey in its access policies, "+
			"or switch the vault to RBAC (customerkey vault update --name %s --enable-rbac-authorization true) and grant the role Key Vault Crypto Service "+
			"Encryption User (customerkey role assignment create --assignee %s --role \"Key Vault Crypto Service Encryption User\" --scope %s)",
			v.Name, name, sp.ID, v.Name, appID, keyScope)
	}
	e.add(ok, RuleKeyAccessPermissions, t.sub, want, actual, ifFail(ok, name+" may get, wrap and unwrap with the key", fix))
	return nil
}

// skipVault fails the rules that need the vault.
func (e *evaluation) skipVault(t *target, why, details string) {
	for _, rule := range []string{RuleSoftDeleteRetention, RuleRecoveryLevel, RuleKeyExistsInVault} {
		e.add(false, rule, t.sub, expected(rule), why, details)
	}
	e.skipKey(t, why, details)
}

// skipKey fails the rules that need the key.
func (e *evaluation) skipKey(t *target, why, details string) {
	for _, rule := range []string{RuleKeyOperationsSupported, RuleKeySizeSupported, RuleKeyEnabled, RuleKeyNeverExpires, RuleKeyAccessPermissions} {
		e.add(false, rule, t.sub, expected(rule), why, details)
	}
}

// expected is each per-target rule's ExpectedValue.
func expected(rule string) string {
	switch rule {
	case RuleSubscriptionOfferIsPaid:
		return "a paid offer (PayAsYouGo, EnterpriseAgreement, MicrosoftCustomerAgreement)"
	case RuleMandatoryRetentionPeriodState:
		return string(resources.Registered)
	case RuleVaultExistsinSubscription, RuleKeyExistsInVault:
		return "Exists"
	case RuleSoftDeleteRetention:
		return "enabled, 90 days"
	case RuleRecoveryLevel:
		return vault.LevelRecoverableProtectedSubscription
	case RuleKeyOperationsSupported:
		return "RSA key with key_ops wrapKey, unwrapKey"
	case RuleKeySizeSupported:
		return "RSA 2048 to 4096"
	case RuleKeyEnabled:
		return "enabled"
	case RuleKeyNeverExpires:
		return "none"
	case RuleKeyAccessPermissions:
		return "get, wrapKey, unwrapKey"
	}
	return ""
}

func ifFail(ok bool, passed, failed string) string {
	if ok {
		return passed
	}
	return failed
}

func actualKeyID(t *target) string {
	if t.idErr != "" {
		return t.keyID
	}
	return "vault " + t.vaultName + ", key " + t.key + versionSuffix(t.version)
}

func versionSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " version " + v
}

func expiresActual(t *time.Time) string {
	if t == nil {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

func opsFix(isRSA bool, vaultName, key string) string {
	if !isRSA {
		return fmt.Sprintf("Customer Key wraps with RSA keys (Key Vault cannot wrap with EC keys): create an RSA key (customerkey key create --vault-name %s --name NAME --kty RSA --size 3072)", vaultName)
	}
	return fmt.Sprintf("Allow wrapKey and unwrapKey on the key: customerkey key update --vault-name %s --name %s --ops wrapKey --ops unwrapKey --ops encrypt --ops decrypt", vaultName, key)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
