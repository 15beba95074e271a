package vault

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/jwk"
)

// Key types (kty). RSA and EC keys are software-protected: their private
// keys are kept in the store (encrypted by the barrier). RSA-HSM and EC-HSM
// keys live in the HSM (see HSM) and need a premium vault; oct keys exist
// only on Managed HSM.
const (
	KeyTypeRSA    = "RSA"
	KeyTypeRSAHSM = "RSA-HSM"
	KeyTypeEC     = "EC"
	KeyTypeECHSM  = "EC-HSM"
	KeyTypeOct    = "oct"
	KeyTypeOctHSM = "oct-HSM"
)

// Key operations (key_ops), in the spelling of the AKV swagger.
const (
	OpEncrypt   = "encrypt"
	OpDecrypt   = "decrypt"
	OpSign      = "sign"
	OpVerify    = "verify"
	OpWrapKey   = "wrapKey"
	OpUnwrapKey = "unwrapKey"
	OpImport    = "import"
	OpExport    = "export"
)

// Key limits.
const (
	// MaxKeyTags is the most tags a key version may carry (Key Vault's limit).
	MaxKeyTags = 15
	// MaxKeyPage is the largest page the list calls return (AKV's maxresults).
	MaxKeyPage = 25
	// DefaultKeyCacheTTL is how long a node trusts what it cached about a
	// vault, a key or a key version before reading the store again: the time
	// a change made through another node (or another Service on the same
	// store) takes to be seen here. Changes made through this Service are
	// seen at once.
	DefaultKeyCacheTTL = 5 * time.Second
	// DefaultKeyCacheSize bounds the parsed key versions kept in memory.
	DefaultKeyCacheSize = 4096
)

// maxKeyTime is the latest nbf or exp accepted: the end of 9999 (the
// largest DateTime of the service; the setup guide's 12/31/9999 fits).
var maxKeyTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// KeyRef names a key version: the vault (its global name, which the
// data-plane host carries), the key and the version. The REST surface
// builds kid URLs from it. Version is empty where a reference means the
// key as a whole (list items of ListKeys and ListDeletedKeys).
type KeyRef struct {
	Vault   string
	Name    string
	Version string
}

// String is "vault/name/version", the audit target of key changes.
func (r KeyRef) String() string {
	if r.Version == "" {
		return r.Vault + "/" + r.Name
	}
	return r.Vault + "/" + r.Name + "/" + r.Version
}

// LogValue logs the three parts.
func (r KeyRef) LogValue() slog.Value {
	return slog.GroupValue(slog.String("vault", r.Vault), slog.String("key", r.Name), slog.String("ver", r.Version))
}

// KeyAttributes are a key version's attributes as AKV reports them.
type KeyAttributes struct {
	Enabled bool
	// NotBefore and Expires are nil when not set; they have whole seconds.
	NotBefore *time.Time
	Expires   *time.Time
	Created   time.Time
	Updated   time.Time
	// Exportable is always false: key release is not supported.
	Exportable bool
	// HSMPlatform is "2" for a version whose private key lives in the HSM
	// and "0" for a software-protected one, as Key Vault reports it.
	HSMPlatform string
	// RecoveryLevel and RecoverableDays come from the vault's settings and
	// its subscription's protection (see RecoveryLevel).
	RecoveryLevel   string
	RecoverableDays int
}

// KeyDeletion describes a soft-deleted key. The REST surface renders
// recoveryId from the vault and key name.
type KeyDeletion struct {
	DeletedDate time.Time
	// ScheduledPurgeDate is DeletedDate plus the vault's retention days.
	// It is zero when the vault has soft delete off and the key was purged
	// at once: render no recoveryId and no scheduledPurgeDate then.
	ScheduledPurgeDate time.Time
}

// KeyProperties is what AKV's KeyItem and DeletedKeyItem carry: a key (or
// key version) without its key material.
type KeyProperties struct {
	Ref        KeyRef
	Type       string // kty of the version
	Attributes KeyAttributes
	Tags       map[string]string
	// Managed is true for keys that back a certificate; never here.
	Managed bool
	// Deleted is set for soft-deleted keys.
	Deleted *KeyDeletion
}

// Key is what AKV's KeyBundle and DeletedKeyBundle carry: a key version
// with its public JSON Web Key. JWK never holds private parts; its kid is
// left for the surface to fill from Ref.
type Key struct {
	KeyProperties
	JWK jwk.Key
}

// KeyPage is one page of a list call. Next is the cursor of the next page,
// empty on the last; it is opaque to callers and valid only for the same
// list call.
type KeyPage struct {
	Items []KeyProperties
	Next  string
}

// KeySpec is the body of CreateKey.
type KeySpec struct {
	Type string // RSA, EC, RSA-HSM or EC-HSM (the -HSM types in premium vaults with an HSM)
	// Size is the RSA modulus length: 2048 (default), 3072 or 4096.
	Size int
	// PublicExponent is 0 or 65537.
	PublicExponent int
	// Curve is the EC curve: P-256 (default), P-384, P-521 or P-256K.
	Curve string
	// Ops nil means the defaults of the type: all six RSA operations, or
	// sign and verify for EC. ["import"] alone makes an RSA-HSM key a key
	// exchange key for Bring Your Own Key (see ImportKey).
	Ops        []string
	Enabled    *bool // default true
	NotBefore  *time.Time
	Expires    *time.Time
	Exportable bool // true is refused: key release is not supported
	Tags       map[string]string
}

// KeyImport is the body of ImportKey.
type KeyImport struct {
	// Key holds the private parts of an RSA or EC key, or, for Bring Your
	// Own Key, a key transfer blob in T (key_hsm) with kty RSA-HSM. Its
	// key_ops are kept (validated against the type); none given means the
	// defaults.
	Key jwk.Key
	// HSM asks for an HSM-protected key (the wire's "Hsm"), like a -HSM kty.
	HSM        bool
	Enabled    *bool
	NotBefore  *time.Time
	Expires    *time.Time
	Exportable bool
	Tags       map[string]string
}

// KeyUpdate is the body of UpdateKey: nil fields are left as they are; a
// non-nil Tags replaces the tags (empty clears them), a non-nil Ops the
// operations. An expiry date, once set, can be changed but never removed:
// a non-nil Expires holding the zero time asks for that and is refused.
type KeyUpdate struct {
	Ops       []string
	Enabled   *bool
	NotBefore *time.Time
	Expires   *time.Time
	Tags      map[string]string
}

// Storage layout of keys. Everything of a vault lives under
// dataPrefix(uid) ("vault/data/{uid}/") and dies with the vault's purge;
// key names and versions are lowercased in storage keys (names compare
// without regard to case and are stored as first given).
//
//	vault/data/{uid}/key/{name}            -> keyRecord (JSON): a live key: latest version, rotation policy
//	vault/data/{uid}/deleted/{name}        -> keyRecord (JSON): a soft-deleted key, with its deletion
//	vault/data/{uid}/ver/{name}/{version}  -> versionRecord (JSON): attributes, tags, ops, public JWK,
//	                                          and for an -HSM version the HSM object's id
//	vault/data/{uid}/mat/{name}/{version}  -> the private key, as kcrypto.MarshalPrivate bytes
//	                                          (software versions only: HSM keys never leave the HSM)
//	vault/kdue/{unixnano:019}/{vault}/{uid}/{p|r}/{name} -> ""  a scheduled purge (p) of a deleted
//	                                          key or a due automatic rotation (r), for SweepKeys
//	vault/secret/backup                    -> 32 random bytes: the service-wide secret the
//	                                          per-subscription backup keys derive from
//	vault/hsmgc/{object id hex}            -> ""  an HSM object of a purged version, destroyed
//	                                          after the purge commits (collectHSM)
//
// A key is either under key/ or under deleted/, never both; its versions
// stay put when it is deleted and recovered. The latest version is a
// pointer in the key record, so it is one read away; versions list in
// version-id order, which AKV leaves unspecified. Material is kept apart
// from the version record so that refreshing a cached version, listing
// and reading attributes never decode the private key. Every value passes
// the barrier below the store, which encrypts it under its storage key.
// The due index is global so that one ranged read finds what is due in
// every vault; an entry names the vault and its uid, and entries whose key
// or vault is gone are dropped when met.
const (
	kKeyDue       = pfx + "kdue/"
	kBackupSecret = pfx + "secret/backup"
	kHSMGarbage   = pfx + "hsmgc/"
)

func keyKey(uid, name string) string      { return dataPrefix(uid) + "key/" + fold(name) }
func delKeyKey(uid, name string) string   { return dataPrefix(uid) + "deleted/" + fold(name) }
func verPrefix(uid, name string) string   { return dataPrefix(uid) + "ver/" + fold(name) + "/" }
func matPrefix(uid, name string) string   { return dataPrefix(uid) + "mat/" + fold(name) + "/" }
func verKey(uid, name, ver string) string { return verPrefix(uid, name) + fold(ver) }
func matKey(uid, name, ver string) string { return matPrefix(uid, name) + fold(ver) }

// Kinds of due entries.
const (
	duePurge  = "p"
	dueRotate = "r"
)

func keyDueKey(at time.Time, v Vault, kind, name string) string {
	return kKeyDue + fmt.Sprintf("%019d", at.UnixNano()) + "/" + fold(v.Name) + "/" + v.UID + "/" + kind + "/" + fold(name)
}

// parseKeyDue splits a due entry's key.
func parseKeyDue(key string) (at time.Time, vaultName, uid, kind, name string, ok bool) {
	parts := strings.Split(strings.TrimPrefix(key, kKeyDue), "/")
	if len(parts) != 5 {
		return time.Time{}, "", "", "", "", false
	}
	n, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return time.Time{}, "", "", "", "", false
	}
	return time.Unix(0, n).UTC(), parts[1], parts[2], parts[3], parts[4], true
}

// keyRecord is a key as a whole.
type keyRecord struct {
	Name    string    `json:"name"`
	Latest  string    `json:"latest"`
	Created time.Time `json:"created"`
	// Policy is the rotation policy set on the key, if any.
	Policy *RotationPolicy `json:"policy,omitempty"`
	// NextRotation is when the policy rotates the key next; it names the
	// key's rotation entry in the due index.
	NextRotation *time.Time  `json:"nextRotation,omitempty"`
	Deleted      *keyDeleted `json:"deleted,omitempty"`
}

type keyDeleted struct {
	DeletedDate        time.Time   `json:"deletedDate"`
	ScheduledPurgeDate time.Time   `json:"scheduledPurgeDate"`
	DeletedBy          audit.Actor `json:"deletedBy"`
}

// versionRecord is one key version without its private key.
type versionRecord struct {
	Name       string            `json:"name"` // the key's name as stored
	Version    string            `json:"version"`
	Type       string            `json:"kty"`
	Size       int               `json:"size,omitempty"`
	Curve      string            `json:"crv,omitempty"`
	Ops        []string          `json:"ops"`
	Enabled    bool              `json:"enabled"`
	NotBefore  *time.Time        `json:"nbf,omitempty"`
	Expires    *time.Time        `json:"exp,omitempty"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	Exportable bool              `json:"exportable,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Imported   bool              `json:"imported,omitempty"`
	// Public is the public JWK, without kid and key_ops (the ops above are
	// authoritative).
	Public    jwk.Key     `json:"public"`
	CreatedBy audit.Actor `json:"createdBy"`
	// HSM names the HSM object of an -HSM version; the version then has no
	// material record.
	HSM *hsmRef `json:"hsm,omitempty"`
}

// hsmRef names the object holding an -HSM version's private key in the HSM.
type hsmRef struct {
	ID []byte `json:"id"` // CKA_ID
}

// hsmPlatform is attributes.hsmPlatform of a version.
func (m versionRecord) hsmPlatform() string {
	if m.HSM != nil {
		return "2"
	}
	return "0"
}

func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// Key rules.

var keyNameRE = regexp.MustCompile(`^[0-9a-zA-Z-]{1,127}$`)

// ValidKeyName reports whether name may name a key: 1 to 127 letters,
// digits and hyphens.
func ValidKeyName(name string) bool { return keyNameRE.MatchString(name) }

func validVersion(v string) bool {
	if len(v) != 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i] | 0x20 // versions compare without regard to case
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func errBadParameter(format string, args ...any) *errkind.Error {
	return errkind.Errorf(errkind.Invalid, format, args...).WithCode("BadParameter")
}

func errKeyNotFound(name string) error {
	return errkind.Errorf(errkind.NotFound, "A key with (name/id) %s was not found in this key vault. If you recently "+
		"deleted this key you may be able to recover it using the correct recovery command.", name).WithCode("KeyNotFound")
}

func errKeyVersionNotFound(name, version string) error {
	return errkind.Errorf(errkind.NotFound, "A key with (name/id) %s/%s was not found in this key vault.", name, version).
		WithCode("KeyNotFound")
}

func errDeletedKeyNotFound(name string) error {
	return errkind.Errorf(errkind.NotFound, "Deleted Key not found: %s", name).WithCode("KeyNotFound")
}

func errKeyIsDeleted(name string) error {
	return errkind.Errorf(errkind.Conflict, "Key %s is currently in a deleted but recoverable state, and its name cannot "+
		"be reused; in this state, the key can only be recovered or purged.", name).WithCode("ObjectIsDeletedButRecoverable")
}

func checkKeyName(name string) error {
	if !ValidKeyName(name) {
		return errBadParameter("The key name '%s' is not valid: a key name is 1 to 127 characters, letters, digits and "+
			"hyphens only.", name)
	}
	return nil
}

// keyOpsByType lists the operations each type supports; the six (or two)
// first are, in the order AKV returns them, the defaults of the type.
var keyOpsByType = map[string][]string{
	KeyTypeRSA:    {OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrapKey},
	KeyTypeEC:     {OpSign, OpVerify},
	KeyTypeRSAHSM: {OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrapKey, OpImport},
	KeyTypeECHSM:  {OpSign, OpVerify},
}

var allKeyOps = []string{OpEncrypt, OpDecrypt, OpSign, OpVerify, OpWrapKey, OpUnwrapKey, OpImport, OpExport}

// baseType is the software type of kty: RSA for RSA-HSM, EC for EC-HSM.
func baseType(kty string) string { return strings.TrimSuffix(kty, "-HSM") }

// isKEK reports whether ops make a key exchange key: import, alone.
func isKEK(ops []string) bool { return slices.Contains(ops, OpImport) }

// checkOps validates ops for kty and returns them canonically spelled and
// without duplicates; nil gives the type's defaults. import is allowed for
// RSA-HSM only, and alone: the HSM object of a key exchange key can unwrap
// transfer blobs and do nothing else.
func checkOps(kty string, ops []string) ([]string, error) {
	allowed := keyOpsByType[kty]
	if ops == nil {
		return slices.Clone(keyOpsByType[baseType(kty)]), nil
	}
	out := make([]string, 0, len(ops))
	for _, o := range ops {
		c := ""
		for _, a := range allKeyOps {
			if strings.EqualFold(strings.TrimSpace(o), a) {
				c = a
			}
		}
		switch {
		case c == "":
			return nil, errBadParameter("'%s' is not a key operation; valid: %s.", o, strings.Join(allKeyOps, ", "))
		case !slices.Contains(allowed, c):
			why := ""
			if kty == KeyTypeEC && (c == OpEncrypt || c == OpDecrypt || c == OpWrapKey || c == OpUnwrapKey) {
				why = " EC keys can sign and verify only: they cannot encrypt, decrypt, wrap or unwrap."
			}
			return nil, errBadParameter("The key operation '%s' is not supported by %s keys; valid: %s.%s",
				c, kty, strings.Join(allowed, ", "), why)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	if isKEK(out) && len(out) > 1 {
		return nil, errBadParameter("A key exchange key has the key operation 'import' alone (it unwraps Bring Your " +
			"Own Key transfer blobs and nothing else); give key_ops [\"import\"], or leave 'import' out.")
	}
	return out, nil
}

// checkKeyTags applies Key Vault's tag limits.
func checkKeyTags(tags map[string]string) (map[string]string, error) {
	if len(tags) > MaxKeyTags {
		return nil, errBadParameter("A key can have at most %d tags; %d were given.", MaxKeyTags, len(tags))
	}
	for k, v := range tags {
		switch {
		case k == "":
			return nil, errBadParameter("A tag name must not be empty.")
		case len(k) > maxTagNameLen:
			return nil, errBadParameter("The tag name '%.40s…' is longer than %d characters.", k, maxTagNameLen)
		case len(v) > maxTagValueLen:
			return nil, errBadParameter("The value of tag '%s' is longer than %d characters.", k, maxTagValueLen)
		}
	}
	return cloneTags(tags), nil
}

// keyTime checks a nbf or exp value and truncates it to whole seconds, as
// the wire carries it.
func keyTime(what string, t *time.Time) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	if t.IsZero() {
		return nil, errBadParameter("The %s attribute must be a date.", what)
	}
	u := t.UTC().Truncate(time.Second)
	if u.After(maxKeyTime) {
		return nil, errBadParameter("The %s attribute %s is after the latest date supported (%s).", what,
			u.Format(time.RFC3339), maxKeyTime.Format(time.RFC3339))
	}
	return &u, nil
}

// checkWindow refuses exp at or before nbf.
func checkWindow(nbf, exp *time.Time) error {
	if nbf != nil && exp != nil && !exp.After(*nbf) {
		return errBadParameter("The expiry date (exp %s) must be later than the activation date (nbf %s).",
			exp.Format(time.RFC3339), nbf.Format(time.RFC3339))
	}
	return nil
}

func errExportable() error {
	return errBadParameter("Exportable keys need a release policy, and key release is not supported by this " +
		"service: leave exportable out or false.")
}

// checkHSM says whether an HSM-protected key of type kty may be made in v:
// a premium vault, on a service whose HSM is configured and running.
func (s *Service) checkHSM(v Vault, kty string) error {
	if v.SKU.Name != Premium {
		return errBadParameter("HSM-protected keys (%s) need a premium vault: vault '%s' is standard. Create the key "+
			"as %s, or use a premium vault.", kty, v.Name, baseType(kty))
	}
	return s.hsmReady()
}

// hsmReady says why the HSM cannot be used, if it cannot.
func (s *Service) hsmReady() error {
	switch {
	case s.hsm != nil:
		return nil
	case s.hsmErr != nil:
		return errkind.Wrap(errkind.Unavailable, "HSM-protected keys are unavailable: the HSM of this service failed "+
			"to start ("+errkind.Public(s.hsmErr)+"). Software-protected keys and standard vaults are not affected; "+
			"the operator must fix the HSM configuration and restart the service.", s.hsmErr).WithCode("HSMUnavailable")
	}
	return errkind.New(errkind.FailedPrecondition, "HSM-protected keys (RSA-HSM, EC-HSM) are not available: the HSM "+
		"backend (PKCS#11) of this service is not configured (hsm-module, hsm-token, hsm-pin-file). Create the key "+
		"as RSA or EC (software-protected), or ask the operator to configure the HSM.").WithCode("HSMNotConfigured")
}

// Allowed RSA sizes and EC curves.
var (
	rsaSizes = []int{2048, 3072, 4096}
	ecCurves = []string{"P-256", "P-384", "P-521", "P-256K"}
)

func checkRSASize(size int) error {
	if !slices.Contains(rsaSizes, size) {
		return errBadParameter("The RSA key size %d is not supported; allowed sizes: 2048, 3072, 4096.", size)
	}
	return nil
}

func canonCurve(crv string) (string, error) {
	for _, c := range ecCurves {
		if strings.EqualFold(crv, c) {
			return c, nil
		}
	}
	return "", errBadParameter("The curve '%s' is not supported; allowed curves: %s.", crv, strings.Join(ecCurves, ", "))
}

// canonType checks kty. hsm reports a -HSM type; base is the software type.
func canonType(kty string) (base string, hsm bool, err error) {
	switch {
	case strings.EqualFold(kty, KeyTypeRSA):
		return KeyTypeRSA, false, nil
	case strings.EqualFold(kty, KeyTypeEC):
		return KeyTypeEC, false, nil
	case strings.EqualFold(kty, KeyTypeRSAHSM):
		return KeyTypeRSA, true, nil
	case strings.EqualFold(kty, KeyTypeECHSM):
		return KeyTypeEC, true, nil
	case strings.EqualFold(kty, KeyTypeOct), strings.EqualFold(kty, KeyTypeOctHSM):
		return "", false, errBadParameter("Symmetric keys (kty %s) are supported only by Managed HSM, not by key vaults; "+
			"use RSA or EC.", kty)
	case kty == "":
		return "", false, errBadParameter("The key type (kty) is required: RSA or EC.")
	}
	return "", false, errBadParameter("The key type '%s' is not valid; use RSA or EC.", kty)
}
