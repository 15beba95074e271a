// Package resources owns the Azure Resource Manager side of a key custody
// domain: subscriptions (offer, billing state, cancellation under the
// mandatory retention period), resource groups, resource-provider
// registration per subscription and subscription features
// (Microsoft.Resources/mandatoryRetentionPeriodEnabled). Time-driven states
// are derived from stored timestamps and the injected clock, so nothing is
// lost on restart; Sweep materializes them and audits each transition.
// Every change is audited in the same storage transaction.
//
// It owns the storage prefix "resources/". It imports errkind, storage,
// audit, resourceid and the same-level package directory (for Caller,
// Tenant and the role ids); it declares what it needs of directory, rbac and
// vault as small interfaces (Directory, OwnerGranter, Contents). It must not
// import net/http or any storage implementation.
package resources

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Directory is what this package asks of the directory: whether a caller
// is the operator, which directory roles a principal holds, a tenant (for
// its first administrators) and whether an object id is a principal of a
// tenant. *directory.Directory implements it.
type Directory interface {
	// IsOperator returns nil when c may act as the operator and an
	// errkind.PermissionDenied error when it may not.
	IsOperator(ctx context.Context, c directory.Caller) error
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	// PrincipalKind returns "user" or "servicePrincipal", or an error when
	// id is no principal of tenant tid.
	PrincipalKind(ctx context.Context, tid, id string) (string, error)
}

var _ Directory = (*directory.Directory)(nil)

// OwnerGrant is one Owner role assignment a new subscription makes.
type OwnerGrant struct {
	TenantID string
	Scope    resourceid.ID // the subscription
	// PrincipalID is the object id of a user or service principal of
	// TenantID; PrincipalType is "user" or "servicePrincipal", as
	// directory's PrincipalKind says (rbac.ParsePrincipalType accepts both).
	PrincipalID   string
	PrincipalType string
}

// OwnerGranter grants the Owner role inside the caller's transaction, so
// that a subscription and its owners commit together; by is who created
// the subscription. The composition root implements it over rbac's GrantTx
// (role rbac.OwnerID). If it also has an Invalidate() method, Create calls
// it after the commit (rbac caches assignments).
type OwnerGranter interface {
	GrantOwnerTx(ctx context.Context, tx storage.Tx, by audit.Actor, g OwnerGrant) error
}

// Contents reports and removes the resources a resource group holds. The
// vault package implements it.
type Contents interface {
	// CountInResourceGroup returns how many resources (live vaults, not
	// soft-deleted ones) resource group rg of subscription sub holds.
	CountInResourceGroup(ctx context.Context, sub, rg string) (int, error)
	// DeleteResourcesIn deletes every resource of the group on behalf of c,
	// as a forced group deletion asks; vaults go to soft delete as a
	// vault deletion would.
	DeleteResourcesIn(ctx context.Context, c directory.Caller, sub, rg string) error
}

// Defaults.
const (
	// DefaultRetentionPeriod is how long the mandatory retention period
	// holds a cancellation before the subscription is disabled.
	DefaultRetentionPeriod = 90 * 24 * time.Hour
	// DefaultDeletionDelay is how long a disabled (cancelled) subscription
	// stays recoverable before it is deleted for good.
	DefaultDeletionDelay = 90 * 24 * time.Hour
	// DefaultFeatureRegistrationDelay is how long a feature stays
	// Registering (and Unregistering). Azure says "up to one hour"; a local
	// system needs no hour, but a visible Registering state keeps clients
	// (and the onboarding Validate mode) honest about polling.
	DefaultFeatureRegistrationDelay = time.Minute
)

// Options configures a Service. Store and Directory are required.
type Options struct {
	Store     storage.Backend
	Audit     *audit.Log // nil records nothing (tests only)
	Directory Directory
	// Owners grants the Owner role on a new subscription; nil grants
	// nothing (a deployment without RBAC, or tests).
	Owners OwnerGranter
	// Contents tells what a resource group holds; nil means groups are
	// always empty.
	Contents Contents
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // default crypto/rand
	// RetentionPeriod is the mandatory retention period; zero means
	// DefaultRetentionPeriod.
	RetentionPeriod time.Duration
	// DeletionDelay is how long a cancelled subscription stays Disabled
	// before it is Deleted; zero means DefaultDeletionDelay.
	DeletionDelay time.Duration
	// FeatureRegistrationDelay is how long registering or unregistering a
	// feature takes; zero means DefaultFeatureRegistrationDelay and a
	// negative value means at once.
	FeatureRegistrationDelay time.Duration
	// ProviderRegistrationDelay is how long registering or unregistering a
	// resource provider takes; zero (the default) means at once. The ARM
	// SDK polls, so a few seconds is fine too.
	ProviderRegistrationDelay time.Duration
}

// Service is the resources service. It is safe for concurrent use.
type Service struct {
	store         storage.Backend
	audit         *audit.Log
	dir           Directory
	granter       OwnerGranter
	contents      Contents
	now           func() time.Time
	rand          io.Reader
	retention     time.Duration
	deletionDelay time.Duration
	featureDelay  time.Duration
	providerDelay time.Duration
}

// New returns a Service. It panics when Store or Directory is missing,
// which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Directory == nil {
		panic("resources: Options.Store and Options.Directory are required")
	}
	s := &Service{store: o.Store, audit: o.Audit, dir: o.Directory, granter: o.Owners, contents: o.Contents,
		now: o.Now, rand: o.Rand, retention: o.RetentionPeriod, deletionDelay: o.DeletionDelay,
		featureDelay: o.FeatureRegistrationDelay, providerDelay: max(o.ProviderRegistrationDelay, 0)}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.retention <= 0 {
		s.retention = DefaultRetentionPeriod
	}
	if s.deletionDelay <= 0 {
		s.deletionDelay = DefaultDeletionDelay
	}
	switch {
	case s.featureDelay == 0:
		s.featureDelay = DefaultFeatureRegistrationDelay
	case s.featureDelay < 0:
		s.featureDelay = 0
	}
	return s
}

// Error codes the ARM adapter can pass through. Most are Azure Resource
// Manager's own codes; the ones marked (ours) have no known ARM twin.
const (
	CodeSubscriptionNotFound            = "SubscriptionNotFound"
	CodeResourceGroupNotFound           = "ResourceGroupNotFound"
	CodeInvalidResourceGroup            = "InvalidResourceGroup"
	CodeInvalidResourceGroupLocation    = "InvalidResourceGroupLocation"
	CodeLocationNotAvailable            = "LocationNotAvailableForResourceGroup"
	CodeLocationRequired                = "LocationRequired"
	CodeInvalidTag                      = "InvalidTag" // (ours)
	CodeResourceGroupDeletionBlocked    = "ResourceGroupDeletionBlocked"
	CodeReadOnlyDisabledSubscription    = "ReadOnlyDisabledSubscription"
	CodeMissingSubscriptionRegistration = "MissingSubscriptionRegistration"
	CodeInvalidResourceNamespace        = "InvalidResourceNamespace"
	CodeAuthorizationFailed             = "AuthorizationFailed"
	CodeFeatureNotFound                 = "FeatureNotFound"                // (ours)
	CodeProviderUnregistrationBlocked   = "ProviderUnregistrationBlocked"  // (ours)
	CodeRetentionPeriodActive           = "MandatoryRetentionPeriodActive" // (ours)
	CodeSubscriptionCancelled           = "SubscriptionCancelled"          // (ours)
	CodeSubscriptionDeleted             = "SubscriptionDeleted"            // (ours)
	CodeInvalidSubscription             = "InvalidSubscription"            // (ours)
)

func errSubscriptionNotFound(id string) error {
	return errkind.Errorf(errkind.NotFound, "the subscription '%s' could not be found", id).WithCode(CodeSubscriptionNotFound)
}

func errGroupNotFound(name string) error {
	return errkind.Errorf(errkind.NotFound, "resource group '%s' could not be found", name).WithCode(CodeResourceGroupNotFound)
}

func errDenied(format string, args ...any) error {
	return errkind.Errorf(errkind.PermissionDenied, format, args...).WithCode(CodeAuthorizationFailed)
}

// Storage layout; ids are lower case, names are case-folded.
const (
	pfx        = "resources/"
	kSub       = pfx + "sub/"      // {sub} -> subRecord
	kTenantSub = pfx + "tenant/"   // {tid}/{sub} -> ""
	kGroup     = pfx + "group/"    // {sub}/{fold(rg)} -> ResourceGroup
	kProvider  = pfx + "provider/" // {sub}/{fold(ns)} -> registration
	kFeature   = pfx + "feature/"  // {sub}/{fold(ns)}/{fold(name)} -> registration
)

func fold(s string) string { return strings.ToLower(s) }

func newID(r io.Reader) (string, error) {
	u, err := uuid.NewRandomFromReader(r)
	if err != nil {
		return "", fmt.Errorf("resources: reading random: %w", err)
	}
	return u.String(), nil
}

// notFound turns storage.ErrNotFound into the domain's error.
func notFound(err, domainErr error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return domainErr
	}
	return err
}

// actor is c as the audit log names it in tenant tid.
func actor(c directory.Caller, tid string) audit.Actor {
	a := c.Actor
	if c.TenantID != "" && c.TenantID != tid {
		a.TenantID = c.TenantID
	}
	return a
}

// record writes an audit event for a change made by c in tenant tid.
func (s *Service) record(ctx context.Context, tx storage.Tx, c directory.Caller, tid, action, target, reason string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: actor(c, tid), Action: action,
		Target: target, Result: audit.Success, Reason: reason})
}

// recordDenied writes an audit event for a refused change in its own
// transaction (the refusal changed nothing else); only into a tenant that
// exists.
func (s *Service) recordDenied(ctx context.Context, c directory.Caller, tid, action, target string, reason error) {
	if s.audit == nil || tid == "" {
		return
	}
	if _, err := s.dir.Tenant(ctx, tid); err != nil {
		return
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: tid, Actor: actor(c, tid), Action: action, Target: target,
		Result: audit.Denied, Reason: errkind.Public(reason)})
}

// isOperator reports whether c is the operator (or the system).
func (s *Service) isOperator(ctx context.Context, c directory.Caller) (bool, error) {
	err := s.dir.IsOperator(ctx, c)
	switch {
	case err == nil:
		return true, nil
	case errkind.Is(err, errkind.PermissionDenied):
		return false, nil
	}
	return false, err
}

// isGlobalAdmin reports whether c holds Global Administrator in tenant tid.
func (s *Service) isGlobalAdmin(ctx context.Context, c directory.Caller, tid string) (bool, error) {
	if c.TenantID != tid || c.ID == "" {
		return false, nil
	}
	roles, err := s.dir.RolesOf(ctx, tid, c.ID)
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if r == directory.GlobalAdministrator.ID {
			return true, nil
		}
	}
	return false, nil
}

// authorizeMember allows the operator and callers of the subscription's
// tenant. Finer authorization (RBAC actions at a scope) is the ARM
// adapter's, through the rbac package; this is the tenant boundary only.
func (s *Service) authorizeMember(ctx context.Context, c directory.Caller, sub Subscription, action string) error {
	if c.TenantID != "" && c.TenantID == sub.TenantID {
		return nil
	}
	op, err := s.isOperator(ctx, c)
	if err != nil || op {
		return err
	}
	err = errDenied("the caller '%s' of tenant '%s' cannot change subscription '%s', which belongs to another tenant",
		c.ID, c.TenantID, sub.ID)
	s.recordDenied(ctx, c, sub.TenantID, action, subTarget(sub.ID), err)
	return err
}

// authorizeAdmin allows the operator and Global Administrators of the
// subscription's tenant: cancelling and reactivating are billing-account
// decisions, not resource ones.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, sub Subscription, action, what string) error {
	op, err := s.isOperator(ctx, c)
	if err != nil || op {
		return err
	}
	ga, err := s.isGlobalAdmin(ctx, c, sub.TenantID)
	if err != nil || ga {
		return err
	}
	err = errDenied("only the operator or a Global Administrator of the subscription's tenant can %s subscription '%s'", what, sub.ID)
	s.recordDenied(ctx, c, sub.TenantID, action, subTarget(sub.ID), err)
	return err
}

func subTarget(id string) string { return resourceid.Subscription(id).String() }
