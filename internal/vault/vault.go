// Package vault owns key vaults: the Microsoft.KeyVault/vaults resource
// (its properties, access policies, soft delete, recovery and purge) and
// the keys inside a vault: their versions, attributes, soft delete,
// backup and restore, rotation policies, and the key operations (encrypt,
// decrypt, wrap, unwrap, sign, verify), served from a bounded in-memory
// cache of parsed keys. Premium vaults keep the private keys of RSA-HSM and
// EC-HSM keys in an HSM, reached through the interface HSM (the store holds
// their object ids only). It enforces every resource rule but authorizes
// nothing: the adapters decide with RBAC first and then call in.
//
// It owns the storage prefix "vault/" and records every change in the
// audit log in the same transaction, under the vault's tenant. It reads
// subscriptions, resource groups, provider registration, subscription
// protection and known regions through the small interfaces Subscriptions
// and Locations, which package resources implements (it never imports
// package resources itself); of its own level it imports directory only,
// for Caller, System and IsGUID. Below that it uses errkind, secret,
// kcrypto and jwk, the storage port, audit and resourceid, hsm for the
// types of the HSM interface, and notify, which carries its cache
// invalidations to the other nodes on the store. It must not import net/http or any storage
// implementation.
package vault

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Namespace is the resource provider namespace of vaults; it must be
// registered in a subscription before vaults can be created there.
const Namespace = "Microsoft.KeyVault"

// ResourceType is the full ARM type of a vault.
const ResourceType = "Microsoft.KeyVault/vaults"

// SKU names. The family is always "A".
const (
	Standard = "standard"
	Premium  = "premium"
	// Family is the only SKU family of key vaults.
	Family = "A"
)

// Retention bounds, in days, of soft-deleted vaults (and their keys).
const (
	MinRetentionDays     = 7
	MaxRetentionDays     = 90
	DefaultRetentionDays = 90
)

// MaxAccessPolicies bounds the access policies of one vault.
const MaxAccessPolicies = 1024

// Create modes.
const (
	CreateModeDefault = "default"
	CreateModeRecover = "recover"
)

// Subscriptions is what this package needs to know about subscriptions and
// resource groups. Package resources implements it; the composition root
// wires it in.
type Subscriptions interface {
	// Subscription returns the tenant a subscription belongs to. usable is
	// nil when the subscription accepts writes and otherwise says why not
	// (disabled, cancelled: kind FailedPrecondition, code for example
	// "ReadOnlyDisabledSubscription"); reads still work then. err is for
	// an unknown subscription (kind NotFound, code "SubscriptionNotFound")
	// or a failure to look.
	Subscription(ctx context.Context, id string) (tenantID string, usable error, err error)
	// ResourceGroupExists reports whether the resource group exists in the
	// subscription (names compared without regard to case).
	ResourceGroupExists(ctx context.Context, subscriptionID, resourceGroup string) (bool, error)
	// ProviderRegistered reports whether namespace (Namespace here) is in
	// state Registered in the subscription.
	ProviderRegistered(ctx context.Context, subscriptionID, namespace string) (bool, error)
	// Protected reports whether the subscription has the feature
	// Microsoft.Resources/mandatoryRetentionPeriodEnabled in state
	// Registered: it cannot be cancelled at once, and this package refuses
	// to purge its vaults before their scheduled purge date.
	Protected(ctx context.Context, subscriptionID string) (bool, error)
}

// Locations says which Azure regions exist. Package resources implements
// it. Names are given lowercased without spaces ("westeurope").
type Locations interface {
	KnownLocation(name string) bool
}

// Options configures a Service.
type Options struct {
	Store         storage.Backend // required
	Audit         *audit.Log      // nil records nothing (tests only)
	Subscriptions Subscriptions   // required
	// Locations nil accepts any lowercase alphanumeric region name.
	Locations Locations
	Now       func() time.Time // default time.Now
	Rand      io.Reader        // default crypto/rand
	// VaultURI builds a vault's data-plane URI from its lowercased name,
	// e.g. "https://{name}.vault.localhost:8443/". Default: that example.
	VaultURI func(name string) string
	// OnPurge, when set, runs inside the transaction that purges v (by
	// Purge or Sweep), after this package has removed everything it keeps
	// under the vault, so that other owners drop what hangs off the vault
	// (role assignments at its scope, for example) atomically with it.
	OnPurge func(ctx context.Context, tx storage.Tx, v Vault) error
	// KeyCacheTTL is how long the key operations trust what they cached
	// about vaults, subscriptions and keys: the time a change made through
	// another node (or another Service on the same store) takes to be seen
	// here when no notification of it arrives through Bus (subscription
	// state, which package resources owns, is only ever refreshed by it). Zero means DefaultKeyCacheTTL; a negative value turns the cache
	// off (every operation reads the store).
	KeyCacheTTL time.Duration
	// KeyCacheSize bounds the parsed key versions kept in memory. Zero
	// means DefaultKeyCacheSize.
	KeyCacheSize int
	// HSM keeps the private keys of RSA-HSM and EC-HSM keys. nil refuses
	// those types (HSMNotConfigured), or, when HSMError is set, answers
	// them with HSMError: the HSM is configured but failed to start, and
	// everything else keeps working.
	HSM      HSM
	HSMError error
	// Bus carries cache invalidations to and from the other nodes on the
	// store; nil means this Service is alone on it.
	Bus notify.Bus
}

// Service manages vaults. It is safe for concurrent use.
type Service struct {
	store    storage.Backend
	audit    *audit.Log
	subs     Subscriptions
	locs     Locations
	now      func() time.Time
	rand     io.Reader
	vaultURI func(string) string
	onPurge  func(context.Context, storage.Tx, Vault) error
	keys     *keyCache
	hsm      HSM
	hsmErr   error
	bus      notify.Bus
}

// New returns a Service. It panics when Store or Subscriptions is missing,
// which is a wiring mistake of the composition root.
func New(o Options) *Service {
	if o.Store == nil || o.Subscriptions == nil {
		panic("vault: Options.Store and Options.Subscriptions are required")
	}
	s := &Service{store: o.Store, audit: o.Audit, subs: o.Subscriptions, locs: o.Locations,
		now: o.Now, rand: o.Rand, vaultURI: o.VaultURI, onPurge: o.OnPurge, hsm: o.HSM, hsmErr: o.HSMError}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.vaultURI == nil {
		s.vaultURI = func(name string) string { return "https://" + name + ".vault.localhost:8443/" }
	}
	ttl := o.KeyCacheTTL
	if ttl == 0 {
		ttl = DefaultKeyCacheTTL
	}
	s.keys = newKeyCache(ttl, o.KeyCacheSize)
	s.bus = o.Bus
	if s.bus == nil {
		s.bus = notify.Nop{}
	}
	s.subscribe()
	return s
}

// Vault is a key vault, live or soft-deleted.
type Vault struct {
	// Name is as given when the vault was created; names are compared
	// without regard to case and are unique across all subscriptions,
	// soft-deleted vaults included.
	Name           string            `json:"name"`
	SubscriptionID string            `json:"subscriptionId"`
	ResourceGroup  string            `json:"resourceGroup"`
	Location       string            `json:"location"` // lowercased, e.g. "westeurope"
	Tags           map[string]string `json:"tags,omitempty"`

	TenantID       string         `json:"tenantId"`
	SKU            SKU            `json:"sku"`
	AccessPolicies []AccessPolicy `json:"accessPolicies"`

	EnabledForDeployment         bool `json:"enabledForDeployment"`
	EnabledForDiskEncryption     bool `json:"enabledForDiskEncryption"`
	EnabledForTemplateDeployment bool `json:"enabledForTemplateDeployment"`

	EnableSoftDelete          bool `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays int  `json:"softDeleteRetentionInDays"`
	EnablePurgeProtection     bool `json:"enablePurgeProtection"`
	EnableRbacAuthorization   bool `json:"enableRbacAuthorization"`

	PublicNetworkAccess string       `json:"publicNetworkAccess"` // "Enabled" or "Disabled"
	NetworkACLs         *NetworkACLs `json:"networkAcls,omitempty"`

	ProvisioningState string `json:"provisioningState"` // always "Succeeded"
	// VaultURI is computed from Options.VaultURI on every read.
	VaultURI string `json:"-"`

	CreatedAt time.Time   `json:"createdAt"`
	CreatedBy audit.Actor `json:"createdBy"`
	UpdatedAt time.Time   `json:"updatedAt"`
	UpdatedBy audit.Actor `json:"updatedBy"`

	// Deleted is set while the vault is soft-deleted.
	Deleted *Deletion `json:"deleted,omitempty"`

	// UID is an internal identifier, never reused, under which the vault's
	// contents are stored; it survives recovery and dies with the purge.
	UID string `json:"uid"`
}

// SKU is a vault's pricing tier.
type SKU struct {
	Family string `json:"family"` // "A"
	Name   string `json:"name"`   // Standard or Premium
}

// Deletion describes a soft-deleted vault.
type Deletion struct {
	DeletionDate       time.Time   `json:"deletionDate"`
	ScheduledPurgeDate time.Time   `json:"scheduledPurgeDate"`
	DeletedBy          audit.Actor `json:"deletedBy"`
}

// NetworkACLs are stored as given and not enforced.
type NetworkACLs struct {
	Bypass              string               `json:"bypass,omitempty"`        // AzureServices or None
	DefaultAction       string               `json:"defaultAction,omitempty"` // Allow or Deny
	IPRules             []IPRule             `json:"ipRules,omitempty"`
	VirtualNetworkRules []VirtualNetworkRule `json:"virtualNetworkRules,omitempty"`
}

// IPRule is an address or CIDR range.
type IPRule struct {
	Value string `json:"value"`
}

// VirtualNetworkRule names a subnet.
type VirtualNetworkRule struct {
	ID                               string `json:"id"`
	IgnoreMissingVnetServiceEndpoint bool   `json:"ignoreMissingVnetServiceEndpoint,omitempty"`
}

// ResourceID is the ARM id of the vault.
func (v Vault) ResourceID() resourceid.ID {
	return resourceid.Vault(v.SubscriptionID, v.ResourceGroup, v.Name)
}

// IsDeleted reports whether the vault is soft-deleted.
func (v Vault) IsDeleted() bool { return v.Deleted != nil }

// Storage layout. Names, subscription ids and resource group names are
// lowercased in keys; none of them may contain "/".
//
//	vault/v/{name}                     -> Vault (JSON), live or soft-deleted: the global name registry
//	vault/scope/{sub}/{rg}/{name}      -> ""  live vaults by subscription and resource group
//	vault/deleted/{sub}/{name}         -> ""  soft-deleted vaults by subscription
//	vault/due/{unixnano:019}/{name}    -> ""  soft-deleted vaults by scheduled purge date (Sweep)
//	vault/data/{uid}/...               -> the vault's contents
//
// The contents of a vault live under dataPrefix(v.UID): keys as
// vault/data/{uid}/key/{name}, versions as vault/data/{uid}/ver/{name}/{version}
// and so on (see keys.go). Using the UID rather than the name means a purged vault's
// leftovers can never surface in a new vault of the same name, and a purge
// removes the vault's whole subtree with one ranged delete.
const (
	pfx      = "vault/"
	kVault   = pfx + "v/"
	kScope   = pfx + "scope/"
	kDeleted = pfx + "deleted/"
	kDue     = pfx + "due/"
	kData    = pfx + "data/"
)

func fold(s string) string { return strings.ToLower(s) }

func vaultKey(name string) string { return kVault + fold(name) }

func scopeKey(sub, rg, name string) string {
	return kScope + fold(sub) + "/" + fold(rg) + "/" + fold(name)
}

func deletedKey(sub, name string) string { return kDeleted + fold(sub) + "/" + fold(name) }

func dueKey(at time.Time, name string) string {
	return kDue + fmt.Sprintf("%019d", at.UnixNano()) + "/" + fold(name)
}

// dataPrefix is where the contents of the vault with uid live.
func dataPrefix(uid string) string { return kData + uid + "/" }

func (s *Service) newUID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("vault: reading random: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// load reads the record of name; storage.ErrNotFound when there is none.
func load(tx storage.Tx, name string) (Vault, int64, error) {
	e, err := tx.Get(vaultKey(name))
	if err != nil {
		return Vault{}, 0, err
	}
	var v Vault
	if err := json.Unmarshal(e.Value, &v); err != nil {
		return Vault{}, 0, fmt.Errorf("vault: decoding %s: %w", e.Key, err)
	}
	return v, e.Version, nil
}

func save(tx storage.Tx, v Vault, ifVersion int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("vault: encoding %s: %w", v.Name, err)
	}
	_, err = tx.Put(vaultKey(v.Name), b, ifVersion)
	return err
}

// out fills what is computed on read.
func (s *Service) out(v Vault) Vault {
	v.VaultURI = s.vaultURI(fold(v.Name))
	return v
}

// actor is who to record for c acting on a vault of tenant tid.
func actor(c directory.Caller, tid string) audit.Actor {
	a := c.Actor
	if c.TenantID != "" && !strings.EqualFold(c.TenantID, tid) {
		a.TenantID = c.TenantID
	}
	return a
}

// record writes an audit event in tx under the vault's tenant.
func (s *Service) record(ctx context.Context, tx storage.Tx, c directory.Caller, v Vault, action, reason string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: v.TenantID, Actor: actor(c, v.TenantID),
		Action: action, Target: v.ResourceID().String(), Result: audit.Success, Reason: reason})
}

// recordRefused writes an audit event for a refused destructive request in
// its own transaction; the refusal itself changed nothing.
func (s *Service) recordRefused(ctx context.Context, c directory.Caller, v Vault, action string, why error) {
	if s.audit == nil || v.TenantID == "" {
		return
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: v.TenantID, Actor: actor(c, v.TenantID), Action: action,
		Target: v.ResourceID().String(), Result: audit.Failure, Reason: errkind.Public(why)})
}

// Audit actions.
const (
	actCreate   = "vault/vaults/create"
	actUpdate   = "vault/vaults/update"
	actPolicies = "vault/vaults/accessPolicies/update"
	actDelete   = "vault/vaults/delete"
	actRecover  = "vault/vaults/recover"
	actPurge    = "vault/vaults/purge"
)

// Errors with Azure's codes. Messages that name a vault are built per call.
var errMissingRegistration = errkind.New(errkind.Conflict,
	"The subscription is not registered to use namespace 'Microsoft.KeyVault'. See https://aka.ms/rps-not-found for how to register subscriptions.").
	WithCode("MissingSubscriptionRegistration")

func errVaultNotFound(rg, name string) error {
	return errkind.Errorf(errkind.NotFound,
		"The Resource 'Microsoft.KeyVault/vaults/%s' under resource group '%s' was not found.", name, rg).
		WithCode("ResourceNotFound")
}

func errDeletedNotFound(sub, location, name string) error {
	return errkind.Errorf(errkind.NotFound,
		"No deleted vault named '%s' was found in location '%s' of subscription '%s'.", name, location, sub).
		WithCode("ResourceNotFound")
}

func errNameTaken(name string) error {
	return errkind.Errorf(errkind.AlreadyExists, "The vault name '%s' is already in use. Vault names are globally unique "+
		"so it is possible that the name is already taken. If the vault was recently deleted, it may be in a "+
		"deleted but recoverable state: it must be recovered or purged before the name can be reused.", name).
		WithCode("VaultAlreadyExists")
}

func errNameDeleted(v Vault) error {
	return errkind.Errorf(errkind.AlreadyExists, "The vault name '%s' is already in use: a vault of that name is in "+
		"a deleted but recoverable state in this subscription (deleted %s, scheduled for purge %s). Recover it "+
		"(createMode 'recover') or purge it first.", v.Name,
		v.Deleted.DeletionDate.UTC().Format(time.RFC3339), v.Deleted.ScheduledPurgeDate.UTC().Format(time.RFC3339)).
		WithCode("VaultAlreadyExists")
}

// writable checks that sub accepts writes to vaults and returns its tenant.
func (s *Service) writable(ctx context.Context, sub string) (string, error) {
	if err := checkSegment("subscription id", sub); err != nil {
		return "", err
	}
	tid, usable, err := s.subs.Subscription(ctx, sub)
	if err != nil {
		return "", err
	}
	if usable != nil {
		if _, ok := errkind.As(usable); ok {
			return "", usable
		}
		return "", errkind.Wrap(errkind.FailedPrecondition,
			fmt.Sprintf("The subscription '%s' does not accept changes in its current state.", sub), usable).
			WithCode("ReadOnlyDisabledSubscription")
	}
	ok, err := s.subs.ProviderRegistered(ctx, sub, Namespace)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errMissingRegistration
	}
	return tid, nil
}

// resourceGroup checks that rg exists in sub.
func (s *Service) resourceGroup(ctx context.Context, sub, rg string) error {
	if err := checkSegment("resource group name", rg); err != nil {
		return err
	}
	ok, err := s.subs.ResourceGroupExists(ctx, sub, rg)
	if err != nil {
		return err
	}
	if !ok {
		return errkind.Errorf(errkind.NotFound, "Resource group '%s' could not be found.", rg).WithCode("ResourceGroupNotFound")
	}
	return nil
}

// checkSegment refuses values that cannot be a segment of a storage key.
func checkSegment(what, s string) error {
	if s == "" || len(s) > 128 || strings.ContainsAny(s, "/\x00") {
		return errkind.Errorf(errkind.Invalid, "the %s %q is not valid", what, s)
	}
	return nil
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }
