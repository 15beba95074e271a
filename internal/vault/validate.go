package vault

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// nameRE is Azure's rule for vault names: 3 to 24 characters, letters,
// digits and hyphens, starting with a letter and ending with a letter or
// digit. Consecutive hyphens are refused separately.
var nameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// ValidName reports whether name may name a vault. The names are DNS labels
// under the vault suffix, so they are compared without regard to case.
func ValidName(name string) bool {
	return nameRE.MatchString(name) && !strings.Contains(name, "--")
}

func errInvalidName(name string) *errkind.Error {
	return errkind.Errorf(errkind.Invalid, "The vault name '%s' is invalid. A vault's name must be between 3-24 "+
		"alphanumeric characters. The name must begin with a letter, end with a letter or digit, and not "+
		"contain consecutive hyphens.", name).WithCode("VaultNameNotValid")
}

func checkName(name string) error {
	if !ValidName(name) {
		return errInvalidName(name)
	}
	return nil
}

var plainLocationRE = regexp.MustCompile(`^[a-z][a-z0-9]{1,63}$`)

// location normalizes a region name ("West Europe" -> "westeurope") and
// checks that it is known.
func (s *Service) location(loc string) (string, error) {
	n := normLocation(loc)
	known := plainLocationRE.MatchString(n)
	if known && s.locs != nil {
		known = s.locs.KnownLocation(n)
	}
	if !known {
		return "", errkind.Errorf(errkind.Invalid,
			"The provided location '%s' is not available for resource type 'Microsoft.KeyVault/vaults'.", loc).
			WithCode("LocationNotAvailableForResourceType")
	}
	return n, nil
}

// ARM tag limits.
const (
	maxTags        = 50
	maxTagNameLen  = 512
	maxTagValueLen = 256
)

func checkTags(tags map[string]string) (map[string]string, error) {
	if len(tags) > maxTags {
		return nil, errkind.Errorf(errkind.Invalid, "a resource can have at most %d tags; %d were given", maxTags, len(tags)).
			WithCode("InvalidTag")
	}
	if len(tags) == 0 {
		return nil, nil
	}
	seen := make(map[string]bool, len(tags))
	out := make(map[string]string, len(tags))
	for k, v := range tags {
		switch {
		case strings.TrimSpace(k) == "":
			return nil, errkind.New(errkind.Invalid, "a tag name must not be empty").WithCode("InvalidTagNameCharacters")
		case len(k) > maxTagNameLen:
			return nil, errkind.Errorf(errkind.Invalid, "the tag name '%.40s…' is longer than %d characters", k, maxTagNameLen).
				WithCode("InvalidTag")
		case strings.ContainsAny(k, `<>%&\?/`):
			return nil, errkind.Errorf(errkind.Invalid, "the tag name '%s' has a character tags may not use (<, >, %%, &, \\, ?, /)", k).
				WithCode("InvalidTagNameCharacters")
		case len(v) > maxTagValueLen:
			return nil, errkind.Errorf(errkind.Invalid, "the value of tag '%s' is longer than %d characters", k, maxTagValueLen).
				WithCode("InvalidTag")
		case seen[fold(k)]:
			return nil, errkind.Errorf(errkind.Invalid, "the tag name '%s' is given twice; tag names are compared without regard to case", k).
				WithCode("InvalidTag")
		}
		seen[fold(k)] = true
		out[k] = v
	}
	return out, nil
}

func checkSKU(in SKU) (SKU, error) {
	if in.Family != "" && !strings.EqualFold(in.Family, Family) {
		return SKU{}, errkind.Errorf(errkind.Invalid, "the SKU family '%s' is not valid; the only family is 'A'", in.Family)
	}
	switch n := fold(in.Name); n {
	case Standard, Premium:
		return SKU{Family: Family, Name: n}, nil
	case "":
		return SKU{}, errkind.New(errkind.Invalid, "the vault needs a SKU: 'standard' or 'premium'")
	}
	return SKU{}, errkind.Errorf(errkind.Invalid, "the SKU name '%s' is not valid; use 'standard' or 'premium'", in.Name)
}

func checkRetention(days int) error {
	if days < MinRetentionDays || days > MaxRetentionDays {
		return errkind.Errorf(errkind.Invalid, "softDeleteRetentionInDays must be between %d and %d; %d was given",
			MinRetentionDays, MaxRetentionDays, days)
	}
	return nil
}

// publicNetworkAccess canonicalizes "enabled"/"disabled"; empty is
// Enabled, the default.
func publicNetworkAccess(s string) (string, error) {
	switch fold(s) {
	case "", "enabled":
		return "Enabled", nil
	case "disabled":
		return "Disabled", nil
	}
	return "", errkind.Errorf(errkind.Invalid, "publicNetworkAccess must be 'Enabled' or 'Disabled'; '%s' was given", s)
}

// Network rule bounds (Azure Key Vault's service limits).
const (
	maxIPRules   = 1000
	maxVNetRules = 200
)

func checkNetworkACLs(n *NetworkACLs) (*NetworkACLs, error) {
	if n == nil {
		return nil, nil
	}
	c := *n
	switch fold(c.Bypass) {
	case "":
	case "azureservices":
		c.Bypass = "AzureServices"
	case "none":
		c.Bypass = "None"
	default:
		return nil, errkind.Errorf(errkind.Invalid, "networkAcls.bypass must be 'AzureServices' or 'None'; '%s' was given", n.Bypass)
	}
	switch fold(c.DefaultAction) {
	case "":
	case "allow":
		c.DefaultAction = "Allow"
	case "deny":
		c.DefaultAction = "Deny"
	default:
		return nil, errkind.Errorf(errkind.Invalid, "networkAcls.defaultAction must be 'Allow' or 'Deny'; '%s' was given", n.DefaultAction)
	}
	if len(c.IPRules) > maxIPRules || len(c.VirtualNetworkRules) > maxVNetRules {
		return nil, errkind.Errorf(errkind.Invalid, "networkAcls allow at most %d IP rules and %d virtual network rules",
			maxIPRules, maxVNetRules)
	}
	for _, r := range c.IPRules {
		if r.Value == "" || len(r.Value) > 64 {
			return nil, errkind.New(errkind.Invalid, "every networkAcls.ipRules entry needs a value: an address or CIDR range")
		}
	}
	for _, r := range c.VirtualNetworkRules {
		if r.ID == "" || len(r.ID) > 1024 {
			return nil, errkind.New(errkind.Invalid, "every networkAcls.virtualNetworkRules entry needs the id of a subnet")
		}
	}
	c.IPRules = slices.Clone(c.IPRules)
	c.VirtualNetworkRules = slices.Clone(c.VirtualNetworkRules)
	return &c, nil
}

// AccessPolicy grants an identity permissions on the vault's data plane
// while EnableRbacAuthorization is false.
type AccessPolicy struct {
	TenantID string `json:"tenantId"`
	// ObjectID is a user, service principal or group of the tenant.
	ObjectID string `json:"objectId"`
	// ApplicationID, when set, makes a compound identity: the entry applies
	// only to that application acting on behalf of the user ObjectID.
	ApplicationID string      `json:"applicationId,omitempty"`
	Permissions   Permissions `json:"permissions"`
}

// Permissions are the names of the granted operations, in the spelling of
// the ARM 2023-02-01 swagger's enums.
type Permissions struct {
	Keys         []string `json:"keys,omitempty"`
	Secrets      []string `json:"secrets,omitempty"`
	Certificates []string `json:"certificates,omitempty"`
	Storage      []string `json:"storage,omitempty"`
}

func (p Permissions) empty() bool {
	return len(p.Keys)+len(p.Secrets)+len(p.Certificates)+len(p.Storage) == 0
}

// The permission enums of the swagger (KeyPermissions, SecretPermissions,
// CertificatePermissions, StoragePermissions), in their spelling.
var (
	keyPerms = []string{"all", "encrypt", "decrypt", "wrapKey", "unwrapKey", "sign", "verify", "get", "list",
		"create", "update", "import", "delete", "backup", "restore", "recover", "purge", "release", "rotate",
		"getrotationpolicy", "setrotationpolicy"}
	secretPerms = []string{"all", "get", "list", "set", "delete", "backup", "restore", "recover", "purge"}
	certPerms   = []string{"all", "get", "list", "delete", "create", "import", "update", "managecontacts",
		"getissuers", "listissuers", "setissuers", "deleteissuers", "manageissuers", "recover", "purge",
		"backup", "restore"}
	storagePerms = []string{"all", "get", "list", "delete", "set", "update", "regeneratekey", "recover", "purge",
		"backup", "restore", "setsas", "listsas", "getsas", "deletesas"}
)

// canonical maps the folded permission names of each enum to their spelling.
var canonical = map[string]map[string]string{
	"keys": index(keyPerms), "secrets": index(secretPerms), "certificates": index(certPerms), "storage": index(storagePerms),
}

func index(names []string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[fold(n)] = n
	}
	return m
}

var enumLists = map[string][]string{"keys": keyPerms, "secrets": secretPerms, "certificates": certPerms, "storage": storagePerms}

// canonPerms validates names against the enum of kind (case-insensitive)
// and returns them in the swagger's spelling, without duplicates, in the
// order given.
func canonPerms(i int, kind string, names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	m := canonical[kind]
	out := make([]string, 0, len(names))
	for _, n := range names {
		c, ok := m[fold(strings.TrimSpace(n))]
		if !ok {
			return nil, errkind.Errorf(errkind.Invalid, "access policy %d: '%s' is not a %s permission; valid: %s",
				i, n, strings.TrimSuffix(kind, "s"), strings.Join(enumLists[kind], ", "))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func canonPermissions(i int, p Permissions) (Permissions, error) {
	var out Permissions
	var err error
	if out.Keys, err = canonPerms(i, "keys", p.Keys); err != nil {
		return Permissions{}, err
	}
	if out.Secrets, err = canonPerms(i, "secrets", p.Secrets); err != nil {
		return Permissions{}, err
	}
	if out.Certificates, err = canonPerms(i, "certificates", p.Certificates); err != nil {
		return Permissions{}, err
	}
	if out.Storage, err = canonPerms(i, "storage", p.Storage); err != nil {
		return Permissions{}, err
	}
	return out, nil
}

// checkPolicy validates one entry for a vault of tenant tid and returns it
// with lowercased ids and canonical permission names.
func checkPolicy(i int, tid string, p AccessPolicy) (AccessPolicy, error) {
	out := AccessPolicy{TenantID: fold(p.TenantID), ObjectID: fold(p.ObjectID), ApplicationID: fold(p.ApplicationID)}
	switch {
	case !directory.IsGUID(out.TenantID):
		return AccessPolicy{}, errkind.Errorf(errkind.Invalid, "access policy %d: tenantId '%s' is not a GUID", i, p.TenantID)
	case out.TenantID != fold(tid):
		return AccessPolicy{}, errkind.Errorf(errkind.Invalid,
			"access policy %d: tenantId '%s' is not the vault's tenant '%s'; every identity in the access policies must use the vault's tenant",
			i, p.TenantID, tid)
	case !directory.IsGUID(out.ObjectID):
		return AccessPolicy{}, errkind.Errorf(errkind.Invalid, "access policy %d: objectId '%s' is not a GUID", i, p.ObjectID)
	case out.ApplicationID != "" && !directory.IsGUID(out.ApplicationID):
		return AccessPolicy{}, errkind.Errorf(errkind.Invalid, "access policy %d: applicationId '%s' is not a GUID", i, p.ApplicationID)
	}
	perms, err := canonPermissions(i, p.Permissions)
	if err != nil {
		return AccessPolicy{}, err
	}
	out.Permissions = perms
	return out, nil
}

// checkPolicies validates a whole list: at most MaxAccessPolicies entries,
// each identity (objectId with applicationId) at most once.
func checkPolicies(tid string, in []AccessPolicy) ([]AccessPolicy, error) {
	if len(in) > MaxAccessPolicies {
		return nil, errkind.Errorf(errkind.Invalid, "a vault can have at most %d access policies; %d were given",
			MaxAccessPolicies, len(in)).WithCode("AccessPolicyLimitExceeded")
	}
	out := make([]AccessPolicy, 0, len(in))
	seen := make(map[string]int, len(in))
	for i, p := range in {
		c, err := checkPolicy(i, tid, p)
		if err != nil {
			return nil, err
		}
		id := c.identity()
		if j, dup := seen[id]; dup {
			return nil, errkind.Errorf(errkind.Invalid,
				"access policies %d and %d name the same identity (objectId %s%s); merge their permissions into one entry",
				j, i, c.ObjectID, appSuffix(c.ApplicationID))
		}
		seen[id] = i
		out = append(out, c)
	}
	return out, nil
}

func (p AccessPolicy) identity() string { return p.ObjectID + "|" + p.ApplicationID }

func appSuffix(app string) string {
	if app == "" {
		return ""
	}
	return fmt.Sprintf(" with applicationId %s", app)
}
