package vault

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Spec is the body of a PUT: a new vault, or the full new state of an
// existing one.
//
// On an existing vault, the properties below are replaced as given (an
// absent list or map clears it), except those behind a nil pointer or an
// empty string, which mean "the default" on create and "unchanged" on
// update: EnableSoftDelete, SoftDeleteRetentionInDays,
// EnablePurgeProtection, EnableRbacAuthorization and PublicNetworkAccess.
// Keeping them on update avoids flipping the authorization model or
// tripping an immutability rule because a template left a field out.
type Spec struct {
	SubscriptionID string
	ResourceGroup  string
	Name           string
	Location       string
	Tags           map[string]string
	// CreateMode is "" or "default", or "recover" to bring back a
	// soft-deleted vault of this name (same subscription and location) with
	// all its properties; the other fields are then ignored.
	CreateMode string

	TenantID       string // required; must be the subscription's tenant
	SKU            SKU    // required; Family may be empty
	AccessPolicies []AccessPolicy

	EnabledForDeployment         bool
	EnabledForDiskEncryption     bool
	EnabledForTemplateDeployment bool

	EnableSoftDelete          *bool // default true; false is refused
	SoftDeleteRetentionInDays *int  // default 90; fixed after creation
	EnablePurgeProtection     *bool // default false; never back to false
	EnableRbacAuthorization   *bool // default false

	PublicNetworkAccess string // default "Enabled"
	NetworkACLs         *NetworkACLs
}

// Patch is the body of a PATCH: only non-nil fields change. A non-nil
// empty map or slice clears Tags or AccessPolicies.
type Patch struct {
	Tags           map[string]string
	TenantID       *string
	SKU            *SKU
	AccessPolicies []AccessPolicy

	EnabledForDeployment         *bool
	EnabledForDiskEncryption     *bool
	EnabledForTemplateDeployment *bool

	EnableSoftDelete          *bool
	SoftDeleteRetentionInDays *int
	EnablePurgeProtection     *bool
	EnableRbacAuthorization   *bool

	PublicNetworkAccess *string
	NetworkACLs         *NetworkACLs
}

// patch is the change a PUT makes to an existing vault (or to the defaults
// of a new one).
func (spec Spec) patch() Patch {
	p := Patch{
		Tags: spec.Tags, TenantID: &spec.TenantID, SKU: &spec.SKU, AccessPolicies: spec.AccessPolicies,
		EnabledForDeployment:         &spec.EnabledForDeployment,
		EnabledForDiskEncryption:     &spec.EnabledForDiskEncryption,
		EnabledForTemplateDeployment: &spec.EnabledForTemplateDeployment,
		EnableSoftDelete:             spec.EnableSoftDelete,
		SoftDeleteRetentionInDays:    spec.SoftDeleteRetentionInDays,
		EnablePurgeProtection:        spec.EnablePurgeProtection,
		EnableRbacAuthorization:      spec.EnableRbacAuthorization,
		NetworkACLs:                  spec.NetworkACLs,
	}
	if p.Tags == nil {
		p.Tags = map[string]string{}
	}
	if p.AccessPolicies == nil {
		p.AccessPolicies = []AccessPolicy{}
	}
	if spec.PublicNetworkAccess != "" {
		p.PublicNetworkAccess = &spec.PublicNetworkAccess
	}
	return p
}

// apply returns base changed by p, enforcing the immutability rules. exists
// says whether base is a stored vault or the defaults of a new one; tid is
// the subscription's tenant.
func apply(base Vault, exists bool, p Patch, sub, tid string) (Vault, error) {
	v := base
	if p.TenantID != nil {
		t := fold(strings.TrimSpace(*p.TenantID))
		switch {
		case t == "":
			return Vault{}, errkind.New(errkind.Invalid, "the vault needs a tenantId: the tenant of its subscription")
		case !directory.IsGUID(t):
			return Vault{}, errkind.Errorf(errkind.Invalid, "the tenantId '%s' is not a GUID", *p.TenantID)
		case t != fold(tid):
			return Vault{}, errkind.Errorf(errkind.Invalid,
				"The tenant '%s' is not the tenant of subscription '%s'. A vault must use its subscription's tenant: set tenantId to '%s'.",
				*p.TenantID, sub, tid).WithCode("InvalidTenantId")
		}
		v.TenantID = t
	}
	if p.SKU != nil {
		sku, err := checkSKU(*p.SKU)
		if err != nil {
			return Vault{}, err
		}
		v.SKU = sku
	}
	if p.Tags != nil {
		tags, err := checkTags(p.Tags)
		if err != nil {
			return Vault{}, err
		}
		v.Tags = tags
	}
	if p.AccessPolicies != nil {
		pols, err := checkPolicies(v.TenantID, p.AccessPolicies)
		if err != nil {
			return Vault{}, err
		}
		v.AccessPolicies = pols
	}
	setBool(&v.EnabledForDeployment, p.EnabledForDeployment)
	setBool(&v.EnabledForDiskEncryption, p.EnabledForDiskEncryption)
	setBool(&v.EnabledForTemplateDeployment, p.EnabledForTemplateDeployment)
	setBool(&v.EnableRbacAuthorization, p.EnableRbacAuthorization)

	if p.EnableSoftDelete != nil && !*p.EnableSoftDelete {
		if !exists {
			return Vault{}, errkind.New(errkind.Invalid, "Soft delete cannot be turned off: it is enabled on every new key vault "+
				"and, once on, stays on. Leave enableSoftDelete out or set it to true.").WithCode("SoftDeleteCannotBeDisabled")
		}
		if base.EnableSoftDelete {
			return Vault{}, errkind.Errorf(errkind.Invalid, "Soft delete is enabled on vault '%s' and cannot be turned off: "+
				"enableSoftDelete does not accept false once it is true.", base.Name).WithCode("SoftDeleteCannotBeDisabled")
		}
	}
	if p.EnableSoftDelete != nil {
		v.EnableSoftDelete = *p.EnableSoftDelete
	}
	if d := p.SoftDeleteRetentionInDays; d != nil {
		if err := checkRetention(*d); err != nil {
			return Vault{}, err
		}
		if exists && *d != base.SoftDeleteRetentionInDays {
			return Vault{}, errkind.Errorf(errkind.Invalid, "softDeleteRetentionInDays is fixed when a vault is created: "+
				"it is %d for vault '%s' and cannot become %d.", base.SoftDeleteRetentionInDays, base.Name, *d).
				WithCode("SoftDeleteRetentionCannotChange")
		}
		v.SoftDeleteRetentionInDays = *d
	}
	if pp := p.EnablePurgeProtection; pp != nil {
		if !*pp && base.EnablePurgeProtection {
			return Vault{}, errkind.Errorf(errkind.Invalid, "Purge protection is enabled on vault '%s' and cannot be turned "+
				"off: enabling it is irreversible, so enablePurgeProtection does not accept false.", base.Name).
				WithCode("PurgeProtectionCannotBeDisabled")
		}
		v.EnablePurgeProtection = *pp
	}
	if p.PublicNetworkAccess != nil {
		pna, err := publicNetworkAccess(*p.PublicNetworkAccess)
		if err != nil {
			return Vault{}, err
		}
		v.PublicNetworkAccess = pna
	}
	if p.NetworkACLs != nil {
		acl, err := checkNetworkACLs(p.NetworkACLs)
		if err != nil {
			return Vault{}, err
		}
		v.NetworkACLs = acl
	}
	return v, nil
}

func setBool(dst *bool, p *bool) {
	if p != nil {
		*dst = *p
	}
}

func sameScope(v Vault, sub, rg string) bool {
	return strings.EqualFold(v.SubscriptionID, sub) && strings.EqualFold(v.ResourceGroup, rg)
}

// CreateOrUpdate creates the vault spec describes, or replaces the mutable
// properties of the existing one (PUT). created reports a new (or
// recovered) vault. Rules, in the order checked: the subscription accepts
// writes (FailedPrecondition otherwise) and has Microsoft.KeyVault
// registered (Conflict "MissingSubscriptionRegistration"); the resource
// group exists (NotFound "ResourceGroupNotFound"); name, location and
// properties are valid and the tenant is the subscription's (Invalid); the
// name is free across all subscriptions, soft-deleted vaults included
// (AlreadyExists "VaultAlreadyExists").
func (s *Service) CreateOrUpdate(ctx context.Context, c directory.Caller, spec Spec) (Vault, bool, error) {
	sub, rg, name := spec.SubscriptionID, spec.ResourceGroup, spec.Name
	tid, err := s.writable(ctx, sub)
	if err != nil {
		return Vault{}, false, err
	}
	if err := s.resourceGroup(ctx, sub, rg); err != nil {
		return Vault{}, false, err
	}
	if err := checkName(name); err != nil {
		return Vault{}, false, err
	}
	loc, err := s.location(spec.Location)
	if err != nil {
		return Vault{}, false, err
	}
	switch fold(spec.CreateMode) {
	case "", CreateModeDefault:
	case CreateModeRecover:
		v, err := s.recover(ctx, c, sub, rg, name, loc, tid)
		s.forgetVault(ctx, name)
		return v, err == nil, err
	default:
		return Vault{}, false, errkind.Errorf(errkind.Invalid, "createMode must be 'default' or 'recover'; '%s' was given", spec.CreateMode)
	}
	p := spec.patch()
	// Validate against the defaults first, so that a bad body fails the
	// same way whether or not the vault exists.
	fresh := Vault{Name: name, SubscriptionID: sub, ResourceGroup: rg, Location: loc,
		EnableSoftDelete: true, SoftDeleteRetentionInDays: DefaultRetentionDays,
		PublicNetworkAccess: "Enabled", ProvisioningState: "Succeeded"}
	want, wantErr := apply(fresh, false, p, sub, tid)
	if wantErr != nil && !isSoftDeleteOff(wantErr) {
		return Vault{}, false, wantErr
	}
	var out Vault
	var created bool
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		created = false
		cur, ver, err := load(tx, name)
		switch {
		case isNotFound(err):
			if wantErr != nil { // soft delete off: refused only for a new vault
				return wantErr
			}
			return s.createTx(ctx, tx, c, want, &out, &created)
		case err != nil:
			return err
		case cur.IsDeleted():
			if strings.EqualFold(cur.SubscriptionID, sub) {
				return errNameDeleted(cur)
			}
			return errNameTaken(name)
		case !sameScope(cur, sub, rg):
			return errNameTaken(name)
		case cur.Location != loc:
			return errkind.Errorf(errkind.Conflict, "The resource '%s' already exists in location '%s' in resource group '%s'. "+
				"A resource with the same name cannot be created in location '%s'.", cur.Name, cur.Location, cur.ResourceGroup, loc).
				WithCode("InvalidResourceLocation")
		}
		v, err := apply(cur, true, p, sub, tid)
		if err != nil {
			return err
		}
		if spec.NetworkACLs == nil {
			v.NetworkACLs = nil
		}
		if err := s.touch(tx, c, &v, ver); err != nil {
			return err
		}
		out = v
		return s.record(ctx, tx, c, v, actUpdate, "")
	})
	s.forgetVault(ctx, name)
	if err != nil {
		return Vault{}, false, err
	}
	return s.out(out), created, nil
}

func isSoftDeleteOff(err error) bool {
	e, ok := errkind.As(err)
	return ok && e.Code == "SoftDeleteCannotBeDisabled"
}

// createTx stores the new vault v.
func (s *Service) createTx(ctx context.Context, tx storage.Tx, c directory.Caller, v Vault, out *Vault, created *bool) error {
	uid, err := s.newUID()
	if err != nil {
		return err
	}
	now := s.now().UTC()
	v.UID = uid
	v.CreatedAt, v.UpdatedAt = now, now
	v.CreatedBy = actor(c, v.TenantID)
	v.UpdatedBy = v.CreatedBy
	if err := save(tx, v, storage.MustNotExist); err != nil {
		return err
	}
	if _, err := tx.Put(scopeKey(v.SubscriptionID, v.ResourceGroup, v.Name), nil, storage.AnyVersion); err != nil {
		return err
	}
	*out, *created = v, true
	return s.record(ctx, tx, c, v, actCreate, "")
}

// touch stamps v as changed by c and stores it over version ver.
func (s *Service) touch(tx storage.Tx, c directory.Caller, v *Vault, ver int64) error {
	v.UpdatedAt = s.now().UTC()
	v.UpdatedBy = actor(c, v.TenantID)
	return save(tx, *v, ver)
}

// recover brings back the soft-deleted vault name of subscription sub and
// location loc, with all the properties it had, into resource group rg
// (which may differ from the one it was deleted from: that one may be gone).
func (s *Service) recover(ctx context.Context, c directory.Caller, sub, rg, name, loc, tid string) (Vault, error) {
	var out Vault
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		cur, ver, err := load(tx, name)
		switch {
		case isNotFound(err):
			return errDeletedNotFound(sub, loc, name)
		case err != nil:
			return err
		case !strings.EqualFold(cur.SubscriptionID, sub):
			return errDeletedNotFound(sub, loc, name)
		case !cur.IsDeleted():
			return errkind.Errorf(errkind.Conflict, "The vault '%s' is not deleted: createMode 'recover' applies only to a "+
				"soft-deleted vault. Leave createMode out to update it.", cur.Name).WithCode("VaultNotDeleted")
		case cur.Location != loc:
			return errkind.Errorf(errkind.Invalid, "The deleted vault '%s' was in location '%s'; it can be recovered only "+
				"into that location, not '%s'.", cur.Name, cur.Location, loc).WithCode("LocationMismatch")
		case !strings.EqualFold(cur.TenantID, tid):
			return errkind.Errorf(errkind.FailedPrecondition, "The deleted vault '%s' belongs to tenant '%s', but subscription "+
				"'%s' now belongs to tenant '%s'; it cannot be recovered here.", cur.Name, cur.TenantID, sub, tid)
		}
		if err := dropDeletedIndexes(tx, cur); err != nil {
			return err
		}
		cur.Deleted = nil
		if !strings.EqualFold(cur.ResourceGroup, rg) {
			cur.ResourceGroup = rg
		}
		if _, err := tx.Put(scopeKey(cur.SubscriptionID, cur.ResourceGroup, cur.Name), nil, storage.AnyVersion); err != nil {
			return err
		}
		if err := s.touch(tx, c, &cur, ver); err != nil {
			return err
		}
		out = cur
		return s.record(ctx, tx, c, cur, actRecover, "")
	})
	if err != nil {
		return Vault{}, err
	}
	return s.out(out), nil
}

func dropDeletedIndexes(tx storage.Tx, v Vault) error {
	if err := tx.Delete(deletedKey(v.SubscriptionID, v.Name), storage.AnyVersion); err != nil {
		return err
	}
	if v.Deleted != nil {
		return tx.Delete(dueKey(v.Deleted.ScheduledPurgeDate, v.Name), storage.AnyVersion)
	}
	return nil
}

// Update changes the given properties of a live vault (PATCH), with the
// same rules as CreateOrUpdate.
func (s *Service) Update(ctx context.Context, c directory.Caller, sub, rg, name string, p Patch) (Vault, error) {
	tid, err := s.writable(ctx, sub)
	if err != nil {
		return Vault{}, err
	}
	if err := s.resourceGroup(ctx, sub, rg); err != nil {
		return Vault{}, err
	}
	var out Vault
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		cur, ver, err := s.live(tx, sub, rg, name)
		if err != nil {
			return err
		}
		v, err := apply(cur, true, p, sub, tid)
		if err != nil {
			return err
		}
		if err := s.touch(tx, c, &v, ver); err != nil {
			return err
		}
		out = v
		return s.record(ctx, tx, c, v, actUpdate, "")
	})
	s.forgetVault(ctx, name)
	if err != nil {
		return Vault{}, err
	}
	return s.out(out), nil
}

// live loads the live vault name of sub and rg, or ResourceNotFound.
func (s *Service) live(tx storage.Tx, sub, rg, name string) (Vault, int64, error) {
	if !ValidName(name) {
		return Vault{}, 0, errVaultNotFound(rg, name)
	}
	v, ver, err := load(tx, name)
	switch {
	case isNotFound(err):
		return Vault{}, 0, errVaultNotFound(rg, name)
	case err != nil:
		return Vault{}, 0, err
	case v.IsDeleted() || !sameScope(v, sub, rg):
		return Vault{}, 0, errVaultNotFound(rg, name)
	}
	return v, ver, nil
}

// Access-policy update kinds (PUT …/vaults/{name}/accessPolicies/{kind}).
const (
	PoliciesAdd     = "add"
	PoliciesReplace = "replace"
	PoliciesRemove  = "remove"
)

// UpdateAccessPolicies changes the access policies of a live vault by
// identity (objectId with applicationId): add merges the given permissions
// into the matching entry, replace sets them, and remove takes them away
// (an entry given with no permissions, or left with none, is removed). An
// entry that matches nothing is appended by add and replace, and ignored by
// remove. It returns the vault's new list.
func (s *Service) UpdateAccessPolicies(ctx context.Context, c directory.Caller, sub, rg, name, kind string, entries []AccessPolicy) ([]AccessPolicy, error) {
	kind = fold(kind)
	if kind != PoliciesAdd && kind != PoliciesReplace && kind != PoliciesRemove {
		return nil, errkind.Errorf(errkind.Invalid, "the access policy operation must be 'add', 'replace' or 'remove'; '%s' was given", kind)
	}
	if _, err := s.writable(ctx, sub); err != nil {
		return nil, err
	}
	if err := s.resourceGroup(ctx, sub, rg); err != nil {
		return nil, err
	}
	var out []AccessPolicy
	// The data plane decides by the cached vault's policies: drop it, so
	// a grant or a revocation applies to the next request.
	defer s.forgetVault(ctx, name)
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		cur, ver, err := s.live(tx, sub, rg, name)
		if err != nil {
			return err
		}
		given, err := checkPolicies(cur.TenantID, entries)
		if err != nil {
			return err
		}
		pols := mergePolicies(cur.AccessPolicies, given, kind)
		if len(pols) > MaxAccessPolicies {
			return errkind.Errorf(errkind.Invalid, "a vault can have at most %d access policies", MaxAccessPolicies).
				WithCode("AccessPolicyLimitExceeded")
		}
		cur.AccessPolicies = pols
		if err := s.touch(tx, c, &cur, ver); err != nil {
			return err
		}
		out = pols
		return s.record(ctx, tx, c, cur, actPolicies, kind)
	})
	return out, err
}

func mergePolicies(cur, given []AccessPolicy, kind string) []AccessPolicy {
	out := make([]AccessPolicy, 0, len(cur)+len(given))
	for _, p := range cur {
		p.Permissions = clonePerms(p.Permissions)
		out = append(out, p)
	}
	for _, g := range given {
		i := -1
		for j := range out {
			if out[j].identity() == g.identity() {
				i = j
				break
			}
		}
		switch {
		case i < 0 && kind != PoliciesRemove:
			out = append(out, g)
		case i < 0: // removing from an identity that has no entry: nothing to do
		case kind == PoliciesAdd:
			out[i].Permissions = unionPerms(out[i].Permissions, g.Permissions)
		case kind == PoliciesReplace:
			out[i].Permissions = g.Permissions
		case g.Permissions.empty():
			out[i].Permissions = Permissions{}
		default:
			out[i].Permissions = minusPerms(out[i].Permissions, g.Permissions)
		}
	}
	if kind == PoliciesRemove {
		kept := out[:0]
		for _, p := range out {
			if !p.Permissions.empty() {
				kept = append(kept, p)
			}
		}
		out = kept
	}
	return out
}

func clonePerms(p Permissions) Permissions {
	return Permissions{Keys: clone(p.Keys), Secrets: clone(p.Secrets), Certificates: clone(p.Certificates), Storage: clone(p.Storage)}
}

func clone(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}

func unionPerms(a, b Permissions) Permissions {
	u := func(x, y []string) []string {
		out := clone(x)
		for _, n := range y {
			if !containsFold(out, n) {
				out = append(out, n)
			}
		}
		return out
	}
	return Permissions{Keys: u(a.Keys, b.Keys), Secrets: u(a.Secrets, b.Secrets),
		Certificates: u(a.Certificates, b.Certificates), Storage: u(a.Storage, b.Storage)}
}

func minusPerms(a, b Permissions) Permissions {
	m := func(x, y []string) []string {
		var out []string
		for _, n := range x {
			if !containsFold(y, n) {
				out = append(out, n)
			}
		}
		return out
	}
	return Permissions{Keys: m(a.Keys, b.Keys), Secrets: m(a.Secrets, b.Secrets),
		Certificates: m(a.Certificates, b.Certificates), Storage: m(a.Storage, b.Storage)}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// Get returns the live vault name of resource group rg in subscription sub.
func (s *Service) Get(ctx context.Context, sub, rg, name string) (Vault, error) {
	var v Vault
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		v, _, err = s.live(tx, sub, rg, name)
		return err
	})
	if err != nil {
		return Vault{}, err
	}
	return s.out(v), nil
}

// ByName returns the live vault called name in whichever subscription it
// is: vault names are global, and the data plane knows only the name.
func (s *Service) ByName(ctx context.Context, name string) (Vault, error) {
	notFound := errkind.Errorf(errkind.NotFound, "No vault named '%s' was found.", name).WithCode("VaultNotFound")
	if !ValidName(name) {
		return Vault{}, notFound
	}
	var v Vault
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		v, _, err = load(tx, name)
		return err
	})
	switch {
	case isNotFound(err) || (err == nil && v.IsDeleted()):
		return Vault{}, notFound
	case err != nil:
		return Vault{}, err
	}
	return s.out(v), nil
}

// List returns the live vaults of a resource group, by name.
func (s *Service) List(ctx context.Context, sub, rg string) ([]Vault, error) {
	if checkSegment("subscription id", sub) != nil || checkSegment("resource group name", rg) != nil {
		return nil, nil
	}
	return s.listIndex(ctx, kScope+fold(sub)+"/"+fold(rg)+"/")
}

// ListBySubscription returns the live vaults of a subscription, by
// resource group and name.
func (s *Service) ListBySubscription(ctx context.Context, sub string) ([]Vault, error) {
	if checkSegment("subscription id", sub) != nil {
		return nil, nil
	}
	return s.listIndex(ctx, kScope+fold(sub)+"/")
}

// ListDeleted returns the soft-deleted vaults of a subscription, by name.
func (s *Service) ListDeleted(ctx context.Context, sub string) ([]Vault, error) {
	if checkSegment("subscription id", sub) != nil {
		return nil, nil
	}
	return s.listIndex(ctx, kDeleted+fold(sub)+"/")
}

// listIndex loads the vaults whose names end the keys under prefix.
func (s *Service) listIndex(ctx context.Context, prefix string) ([]Vault, error) {
	var out []Vault
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(prefix, "", 0)
		if err != nil {
			return err
		}
		out = make([]Vault, 0, len(entries))
		for _, e := range entries {
			name := e.Key[strings.LastIndexByte(e.Key, '/')+1:]
			v, _, err := load(tx, name)
			if err != nil {
				return fmt.Errorf("vault: index %s: %w", e.Key, err)
			}
			out = append(out, s.out(v))
		}
		return nil
	})
	return out, err
}

// GetDeleted returns the soft-deleted vault name of subscription sub that
// was in location loc.
func (s *Service) GetDeleted(ctx context.Context, sub, loc, name string) (Vault, error) {
	var v Vault
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		v, _, err = deleted(tx, sub, loc, name)
		return err
	})
	if err != nil {
		return Vault{}, err
	}
	return s.out(v), nil
}

func normLocation(loc string) string {
	return fold(strings.ReplaceAll(strings.TrimSpace(loc), " ", ""))
}

func deleted(tx storage.Tx, sub, loc, name string) (Vault, int64, error) {
	loc = normLocation(loc)
	if !ValidName(name) {
		return Vault{}, 0, errDeletedNotFound(sub, loc, name)
	}
	v, ver, err := load(tx, name)
	switch {
	case isNotFound(err):
		return Vault{}, 0, errDeletedNotFound(sub, loc, name)
	case err != nil:
		return Vault{}, 0, err
	case !v.IsDeleted() || !strings.EqualFold(v.SubscriptionID, sub) || v.Location != loc:
		return Vault{}, 0, errDeletedNotFound(sub, loc, name)
	}
	return v, ver, nil
}

// Delete soft-deletes a live vault: it keeps its name, properties and
// contents in the deleted state until ScheduledPurgeDate (deletion plus the
// retention days), when Sweep purges it, unless recovered or purged first.
// A vault that does not exist is NotFound "ResourceNotFound" (ARM answers
// a DELETE of a missing resource with 204; the adapter decides).
func (s *Service) Delete(ctx context.Context, c directory.Caller, sub, rg, name string) error {
	if _, err := s.writable(ctx, sub); err != nil {
		return err
	}
	defer s.forgetVault(ctx, name)
	return s.store.Update(ctx, func(tx storage.Tx) error {
		v, ver, err := s.live(tx, sub, rg, name)
		if err != nil {
			return err
		}
		return s.softDeleteTx(ctx, tx, c, v, ver)
	})
}

func (s *Service) softDeleteTx(ctx context.Context, tx storage.Tx, c directory.Caller, v Vault, ver int64) error {
	if err := tx.Delete(scopeKey(v.SubscriptionID, v.ResourceGroup, v.Name), storage.AnyVersion); err != nil {
		return err
	}
	if !v.EnableSoftDelete { // only vaults from before soft delete was forced on
		return s.purgeTx(ctx, tx, c, v, "soft delete is off: deleting purges at once")
	}
	now := s.now().UTC()
	days := v.SoftDeleteRetentionInDays
	if days == 0 {
		days = DefaultRetentionDays
	}
	v.Deleted = &Deletion{DeletionDate: now, ScheduledPurgeDate: now.Add(time.Duration(days) * 24 * time.Hour),
		DeletedBy: actor(c, v.TenantID)}
	if _, err := tx.Put(deletedKey(v.SubscriptionID, v.Name), nil, storage.AnyVersion); err != nil {
		return err
	}
	if _, err := tx.Put(dueKey(v.Deleted.ScheduledPurgeDate, v.Name), nil, storage.AnyVersion); err != nil {
		return err
	}
	if err := save(tx, v, ver); err != nil {
		return err
	}
	return s.record(ctx, tx, c, v, actDelete, "")
}

// Purge permanently removes a soft-deleted vault of subscription sub that
// was in location loc, with everything stored under it. Before the
// scheduled purge date it is refused (Conflict) when the vault has purge
// protection ("PurgeProtectionEnabled") or the subscription is protected by
// a mandatory retention period ("SubscriptionProtected"); from that date
// on, Sweep purges it anyway and so may the caller.
func (s *Service) Purge(ctx context.Context, c directory.Caller, sub, loc, name string) error {
	if _, err := s.writable(ctx, sub); err != nil {
		return err
	}
	v, err := s.GetDeleted(ctx, sub, loc, name)
	if err != nil {
		return err
	}
	if now := s.now(); now.Before(v.Deleted.ScheduledPurgeDate) {
		when := v.Deleted.ScheduledPurgeDate.UTC().Format(time.RFC3339)
		if v.EnablePurgeProtection {
			err := errkind.Errorf(errkind.Conflict, "Operation 'purge' is not allowed on vault '%s': it has purge protection "+
				"enabled, so it cannot be purged before its scheduled purge date %s, when it is purged automatically.", v.Name, when).
				WithCode("PurgeProtectionEnabled")
			s.recordRefused(ctx, c, v, actPurge, err)
			return err
		}
		protected, err := s.subs.Protected(ctx, sub)
		if err != nil {
			return err
		}
		if protected {
			err := errkind.Errorf(errkind.Conflict, "Operation 'purge' is not allowed on vault '%s': subscription '%s' is "+
				"protected by a mandatory retention period (Microsoft.Resources/mandatoryRetentionPeriodEnabled), so its "+
				"vaults cannot be purged before their scheduled purge date (%s).", v.Name, sub, when).
				WithCode("SubscriptionProtected")
			s.recordRefused(ctx, c, v, actPurge, err)
			return err
		}
	}
	defer s.forgetVault(ctx, name)
	defer s.dropUID(ctx, v.UID)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		cur, _, err := deleted(tx, sub, loc, name)
		if err != nil {
			return err
		}
		if cur.UID != v.UID || !cur.Deleted.ScheduledPurgeDate.Equal(v.Deleted.ScheduledPurgeDate) {
			return errkind.New(errkind.Conflict, "the vault changed while it was being purged; try again")
		}
		return s.purgeTx(ctx, tx, c, cur, "")
	})
	if err == nil {
		_, _ = s.collectHSM(ctx) // the vault's HSM keys; leftovers go on the next SweepKeys
	}
	return err
}

// purgeTx removes v, its indexes and everything under its data prefix.
func (s *Service) purgeTx(ctx context.Context, tx storage.Tx, c directory.Caller, v Vault, reason string) error {
	contents, err := tx.List(dataPrefix(v.UID), "", 0)
	if err != nil {
		return err
	}
	if err := dropKeyDueTx(tx, v, contents); err != nil {
		return err
	}
	if err := queueHSMTx(tx, contents, dataPrefix(v.UID)+"ver/"); err != nil {
		return err
	}
	for _, e := range contents {
		if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
			return err
		}
	}
	if s.onPurge != nil {
		if err := s.onPurge(ctx, tx, s.out(v)); err != nil {
			return err
		}
	}
	if err := dropDeletedIndexes(tx, v); err != nil {
		return err
	}
	if err := tx.Delete(scopeKey(v.SubscriptionID, v.ResourceGroup, v.Name), storage.AnyVersion); err != nil {
		return err
	}
	if err := tx.Delete(vaultKey(v.Name), storage.AnyVersion); err != nil {
		return err
	}
	return s.record(ctx, tx, c, v, actPurge, reason)
}

// Sweep purges the soft-deleted vaults whose scheduled purge date has
// passed, purge protection and subscription protection notwithstanding
// (they guard against an early purge, not the scheduled one). It returns
// how many it purged; a vault that fails does not stop the others.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.now()
	var due []string
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kDue, "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			rest := strings.TrimPrefix(e.Key, kDue)
			ts, _, _ := strings.Cut(rest, "/")
			n, err := strconv.ParseInt(ts, 10, 64)
			if err != nil {
				continue
			}
			if time.Unix(0, n).After(now) {
				break
			}
			due = append(due, e.Key)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	purged := 0
	var errs []error
	for _, key := range due {
		done := false
		uid := ""
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			done = false
			name := key[strings.LastIndexByte(key, '/')+1:]
			v, _, err := load(tx, name)
			switch {
			case isNotFound(err):
				return tx.Delete(key, storage.AnyVersion) // a stale index entry
			case err != nil:
				return err
			case !v.IsDeleted() || dueKey(v.Deleted.ScheduledPurgeDate, v.Name) != key:
				return tx.Delete(key, storage.AnyVersion)
			case v.Deleted.ScheduledPurgeDate.After(now):
				return nil
			}
			done, uid = true, v.UID
			return s.purgeTx(ctx, tx, directory.System, v, "the scheduled purge date was reached")
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("vault: scheduled purge of %s: %w", key, err))
			continue
		}
		if done {
			purged++
			s.forgetVault(ctx, "")
			s.dropUID(ctx, uid)
		}
	}
	return purged, errors.Join(errs...)
}

// NameAvailability answers CheckNameAvailability.
type NameAvailability struct {
	NameAvailable bool
	// Reason is "AccountNameInvalid" or "AlreadyExists" when the name is
	// not available.
	Reason  string
	Message string
}

// CheckNameAvailability reports whether name can be used for a new vault:
// it must be valid and taken by no vault, live or soft-deleted, in any
// subscription.
func (s *Service) CheckNameAvailability(ctx context.Context, name string) (NameAvailability, error) {
	if !ValidName(name) {
		return NameAvailability{Reason: "AccountNameInvalid", Message: errInvalidName(name).Msg}, nil
	}
	err := s.store.View(ctx, func(tx storage.Tx) error {
		_, err := tx.Get(vaultKey(name))
		return err
	})
	switch {
	case err == nil:
		e, _ := errkind.As(errNameTaken(name))
		return NameAvailability{Reason: "AlreadyExists", Message: e.Msg}, nil
	case isNotFound(err):
		return NameAvailability{NameAvailable: true}, nil
	}
	return NameAvailability{}, err
}

// CountInResourceGroup returns how many live vaults a resource group holds
// (soft-deleted ones do not keep a resource group from being deleted).
func (s *Service) CountInResourceGroup(ctx context.Context, sub, rg string) (int, error) {
	if checkSegment("subscription id", sub) != nil || checkSegment("resource group name", rg) != nil {
		return 0, nil
	}
	n := 0
	err := s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kScope+fold(sub)+"/"+fold(rg)+"/", "", 0)
		n = len(entries)
		return err
	})
	return n, err
}

// DeleteResourcesIn soft-deletes every live vault of a resource group, as
// deleting the resource group does in Azure. The caller (package resources)
// has decided that the resource group goes; subscription state is not
// checked again here.
func (s *Service) DeleteResourcesIn(ctx context.Context, c directory.Caller, sub, rg string) error {
	if err := checkSegment("subscription id", sub); err != nil {
		return err
	}
	if err := checkSegment("resource group name", rg); err != nil {
		return err
	}
	defer s.forgetVault(ctx, "")
	return s.store.Update(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kScope+fold(sub)+"/"+fold(rg)+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			name := e.Key[strings.LastIndexByte(e.Key, '/')+1:]
			v, ver, err := load(tx, name)
			if err != nil {
				return fmt.Errorf("vault: index %s: %w", e.Key, err)
			}
			if err := s.softDeleteTx(ctx, tx, c, v, ver); err != nil {
				return err
			}
		}
		return nil
	})
}
