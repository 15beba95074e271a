package dep

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/onboarding"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/vault"
)

// Directory is what dep asks of the directory. *directory.Directory
// implements it.
type Directory interface {
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	// RolesOf returns the directory role ids a user or service principal
	// holds in a tenant.
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
	// IsOperator returns nil when c is a Global Administrator of the
	// operator tenant (or the system).
	IsOperator(ctx context.Context, c directory.Caller) error
}

// Scenarios tells which Customer Key scenarios a tenant has enabled.
// *onboarding.Service implements it.
type Scenarios interface {
	EnabledScenarios(ctx context.Context, tenantID string) ([]onboarding.Scenario, error)
}

// Vaults finds a live vault by name, for the subscription that holds it.
// *vault.Service implements it.
type Vaults interface {
	ByName(ctx context.Context, name string) (vault.Vault, error)
}

// Subscriptions tells whether a subscription's mandatory retention period
// is Registered (rule V18). *resources.Service implements it.
type Subscriptions interface {
	Protected(ctx context.Context, subscriptionID string) (bool, error)
}

// Scopes is a workload that keeps scope keys under policies. Each workload
// implements it; app hands them to AddScopes.
type Scopes interface {
	Workload() Workload
	// Progress: how many of the tenant's scopes (in geo, for Files; geo ""
	// otherwise) are wrapped under exactly ref, of how many.
	Progress(ctx context.Context, tenantID, geo string, ref PolicyRef) (done, total int, err error)
	// PurgePolicy deletes every item whose scope key is wrapped under any
	// version of policyID; returns how many scopes.
	PurgePolicy(ctx context.Context, tenantID, policyID string) (int, error)
	// Kick asks the workload to rewrap the tenant's scopes onto their
	// effective policy now (asynchronous).
	Kick(tenantID string)
}

var (
	_ Directory = (*directory.Directory)(nil)
	_ Scenarios = (*onboarding.Service)(nil)
	_ Vaults    = (*vault.Service)(nil)
)

// Defaults of Options.
const (
	DefaultCacheLifetime = 10 * time.Minute
	DefaultCacheSize     = 10000
	DefaultHedgeDelay    = 75 * time.Millisecond
	DefaultRootTimeout   = 30 * time.Second
)

// Options configures a Service. Store, Audit, Directory, Scenarios, Vaults,
// Subscriptions and RootKeys are required; the workloads join later through
// AddScopes, because they are built on the Service.
type Options struct {
	// Store keeps policies, wrapped policy keys, availability keys and the
	// operator key: it must be the barrier (encrypting) store.
	Store storage.Backend
	// Audit receives every change, in the same transaction, and every use
	// of an availability key.
	Audit *audit.Log
	// Directory answers roles and operator checks; Scenarios the enabled
	// onboarding scenarios; Vaults and Subscriptions rule V18 and a forced
	// purge; RootKeys reaches the customer root keys.
	Directory     Directory
	Scenarios     Scenarios
	Vaults        Vaults
	Subscriptions Subscriptions
	RootKeys      RootKeys

	// CacheLifetime is how long an unwrapped policy key stays usable in
	// memory, and so the revocation latency of a node; default
	// DefaultCacheLifetime. Keys in use are refreshed from the root keys
	// during the last quarter of it.
	CacheLifetime time.Duration
	// CacheSize bounds the cached policy key versions; default
	// DefaultCacheSize. The entry closest to expiry goes first.
	CacheSize int
	// HedgeDelay is how long a SharePoint unwrap waits for the first root
	// key before asking the second as well; default DefaultHedgeDelay.
	HedgeDelay time.Duration
	// RootTimeout bounds one unwrap from the root keys that callers share
	// (coalesced misses and background refreshes), whose own contexts may
	// end earlier; default DefaultRootTimeout.
	RootTimeout time.Duration
	// Now stamps records; default time.Now. The cache runs on the runtime
	// clock.
	Now func() time.Time
	// Rand makes policy ids; default crypto/rand. Keys always come from
	// crypto/rand.
	Rand io.Reader
	// Logger receives background refresh failures; default discards.
	Logger *slog.Logger
	// Bus carries the invalidation of a policy's cached keys to and from
	// the other nodes on the store; nil means this Service is alone.
	Bus notify.Bus
	// HSM, when set, keeps the availability key of every new policy: an
	// AES-256 key generated inside it that never leaves it, which a purge
	// destroys there. nil keeps availability keys in the store, where a
	// purged one may linger on disk until the store reuses the space.
	// Policies keep the kind of availability key they were created with.
	HSM HSMKeys
}

// Service keeps the policies. It is safe for concurrent use. Close stops
// its background work and drops the cached keys.
type Service struct {
	store   storage.Backend
	audit   *audit.Log
	dir     Directory
	sc      Scenarios
	vaults  Vaults
	subs    Subscriptions
	roots   RootKeys
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	hedge   time.Duration
	rootTTL time.Duration

	scopesMu sync.RWMutex
	scopes   []Scopes

	cache *cache
	bus   notify.Bus
	hsm   HSMKeys // nil: availability keys are kept in the store
}

// New returns a Service. It panics when a required option is missing,
// which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Audit == nil || o.Directory == nil || o.Scenarios == nil || o.Vaults == nil ||
		o.Subscriptions == nil || o.RootKeys == nil {
		panic("dep: Options.Store, Audit, Directory, Scenarios, Vaults, Subscriptions and RootKeys are required")
	}
	s := &Service{store: o.Store, audit: o.Audit, dir: o.Directory, sc: o.Scenarios, vaults: o.Vaults,
		subs: o.Subscriptions, roots: o.RootKeys, now: o.Now, rand: o.Rand, log: o.Logger,
		hedge: o.HedgeDelay, rootTTL: o.RootTimeout}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.hedge <= 0 {
		s.hedge = DefaultHedgeDelay
	}
	if s.rootTTL <= 0 {
		s.rootTTL = DefaultRootTimeout
	}
	life, size := o.CacheLifetime, o.CacheSize
	if life <= 0 {
		life = DefaultCacheLifetime
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	s.cache = newCache(life, size)
	s.bus = o.Bus
	s.hsm = o.HSM
	if s.bus == nil {
		s.bus = notify.Nop{}
	}
	s.subscribe()
	return s
}

// AddScopes registers workloads: they are told to rewrap (Kick) after
// policy changes, report progress of SharePoint rolls and delete data in a
// purge. Call it while wiring, before serving.
func (s *Service) AddScopes(sc ...Scopes) {
	s.scopesMu.Lock()
	defer s.scopesMu.Unlock()
	s.scopes = append(s.scopes, sc...)
}

func (s *Service) workloads() []Scopes {
	s.scopesMu.RLock()
	defer s.scopesMu.RUnlock()
	return slices.Clone(s.scopes)
}

// kick tells every workload to move tenantID's scopes onto their
// effective policies.
func (s *Service) kick(tenantID string) {
	for _, w := range s.workloads() {
		w.Kick(tenantID)
	}
}

// Close stops background refreshes and drops every cached key. The
// Service must not be used afterwards.
func (s *Service) Close() { s.cache.close() }

// Storage layout; tenant and policy ids are lowercase GUIDs.
//
//	dep/policy/{tid}/{id}                -> Policy
//	dep/name/{tid}/{kind}/{lower(name)}  -> id (unique names of M365 and Exchange policies)
//	dep/geo/{tid}/{GEO}                  -> id (the geo's SharePoint policy)
//	dep/default/{tid}/{workload}         -> id (the service-managed default)
//	dep/keys/{tid}/{id}/{version:%010d}  -> keyVersion (wrapped copies of one policy key version)
//	dep/ak/{tid}/{id}                    -> the availability key, 32 raw bytes, or akRecord (kept in the HSM)
//	dep/operator/{version}               -> an operator key, 32 raw bytes
//	dep/assignment/{tid}                 -> Assignment (the assigned M365 policy)
//	dep/purgejob/{tid}/{id}              -> purgeJob
const (
	pfx          = "dep/"
	kPolicy      = pfx + "policy/"
	kName        = pfx + "name/"
	kGeo         = pfx + "geo/"
	kDefault     = pfx + "default/"
	kKeys        = pfx + "keys/"
	kAK          = pfx + "ak/"
	kOperator    = pfx + "operator/"
	kAssignment  = pfx + "assignment/"
	kPurgeJob    = pfx + "purgejob/"
	operatorKeyV = 1
)

func policyKey(tid, id string) string  { return kPolicy + tid + "/" + id }
func akKey(tid, id string) string      { return kAK + tid + "/" + id }
func keysPrefix(tid, id string) string { return kKeys + tid + "/" + id + "/" }
func versionKey(tid, id string, v int) string {
	return fmt.Sprintf("%s%010d", keysPrefix(tid, id), v)
}
func nameKey(tid string, k Kind, name string) string {
	return kName + tid + "/" + strings.ToLower(string(k)) + "/" + strings.ToLower(name)
}

// Audit actions.
const (
	actionCreate         = "dep/policies/create"
	actionUpdate         = "dep/policies/update"
	actionRefresh        = "dep/policies/refresh"
	actionReplace        = "dep/policies/replace"
	actionRead           = "dep/policies/read"
	actionAssign         = "dep/assignment/set"
	actionPurgeRequest   = "dep/policies/purgeRequest"
	actionPurgeApprove   = "dep/policies/purgeApprove"
	actionPurge          = "dep/policies/purge"
	actionPurgeAK        = "dep/policies/purgeAvailabilityKey"
	actionRegister       = "dep/sharepoint/register"
	actionRoll           = "dep/sharepoint/update"
	actionRegistered     = "dep/sharepoint/registered"
	actionRestore        = "dep/sharepoint/restore"
	actionDefault        = "dep/defaults/create"
	ActivityAKFallback   = "Fallback to Availability Key" // the activity of an availability key use (spec §a.1)
	recordTypeAKFallback = "Customer Key Service Encryption"
)

// systemActor is who acts for the service itself.
var systemActor = audit.Actor{Type: "system", ID: "customerkey"}

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (s *Service) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", errkind.Wrap(errkind.Internal, "dep: reading random bytes for a policy id", err)
	}
	return u.String(), nil
}

// checkTenant normalizes a tenant id.
func checkTenant(tid string) (string, error) {
	t := lower(tid)
	if !directory.IsGUID(t) {
		return "", errkind.Errorf(errkind.Invalid, "%q is not a tenant id (a GUID)", tid)
	}
	return t, nil
}

// actorOf is c as tenant tid's audit log names it.
func actorOf(c directory.Caller, tid string) audit.Actor {
	a := c.Actor
	if c.TenantID != "" && !strings.EqualFold(c.TenantID, tid) {
		a.TenantID = c.TenantID
	}
	return a
}

func isSystem(c directory.Caller) bool { return c.Type == "system" }

// Who may manage and read each kind of policy, by directory role.
var (
	managers = map[Kind][]directory.RoleDefinition{
		M365:       {directory.GlobalAdministrator, directory.ComplianceAdministrator},
		Exchange:   {directory.GlobalAdministrator, directory.ComplianceAdministrator, directory.ExchangeAdministrator},
		SharePoint: {directory.GlobalAdministrator, directory.SharePointAdministrator},
	}
)

// authorize allows c to manage (and read) tenant tid's policies of kind k:
// the system, or a user or application of tid holding one of the kind's
// roles. A refusal is audited in tid's log.
func (s *Service) authorize(ctx context.Context, c directory.Caller, tid string, k Kind, action string) error {
	if isSystem(c) {
		return nil
	}
	deny := func(err error) error {
		s.recordDenied(ctx, c, tid, action, err)
		return err
	}
	roles := managers[k]
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.DisplayName
	}
	if c.ID == "" || !strings.EqualFold(c.TenantID, tid) {
		return deny(errkind.Errorf(errkind.PermissionDenied,
			"the caller %s of tenant %s cannot manage the encryption policies of tenant %s: sign in to %s as one of %s",
			c.ID, c.TenantID, tid, tid, strings.Join(names, ", ")).WithCode("AuthorizationFailed"))
	}
	held, err := s.dir.RolesOf(ctx, tid, c.ID)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if slices.Contains(held, r.ID) {
			return nil
		}
	}
	return deny(errkind.Errorf(errkind.PermissionDenied,
		"the caller %s needs one of the directory roles %s to manage %s encryption policies (customerkey directory-role assign --role %q --principal-id %s)",
		c.ID, strings.Join(names, ", "), kindName(k), roles[0].DisplayName, c.ID).WithCode("AuthorizationFailed"))
}

// authorizeOperator allows Global Administrators of the operator tenant.
// With person set, the system is refused too: an approval must name who
// gave it.
func (s *Service) authorizeOperator(ctx context.Context, c directory.Caller, person bool, what string) error {
	refusal := errkind.Errorf(errkind.PermissionDenied, "only the operator's Global Administrators can %s", what).
		WithCode("AuthorizationFailed")
	if person && (isSystem(c) || c.ID == "") {
		return refusal
	}
	if err := s.dir.IsOperator(ctx, c); err != nil {
		if errkind.Is(err, errkind.PermissionDenied) {
			return refusal
		}
		return err
	}
	return nil
}

// recordDenied audits a refusal in tid's log when tid is a tenant; the
// refusal changed nothing, so it gets its own transaction.
func (s *Service) recordDenied(ctx context.Context, c directory.Caller, tid, action string, why error) {
	if _, err := s.dir.Tenant(ctx, tid); err != nil {
		return
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: tid, Actor: actorOf(c, tid), Action: action, Target: tid,
		Result: audit.Denied, Reason: errkind.Public(why)})
}

func kindName(k Kind) string {
	switch k {
	case M365:
		return "multi-workload (M365DataAtRestEncryptionPolicy)"
	case Exchange:
		return "Exchange mailbox (DataEncryptionPolicy)"
	case SharePoint:
		return "SharePoint geo (SPODataEncryptionPolicy)"
	}
	return "service-managed"
}

// appOf is the workload identity that reaches the root keys of kind k.
func appOf(k Kind) (appID, name string) {
	switch k {
	case Exchange:
		return directory.ExchangeAppID, "Office 365 Exchange Online"
	case SharePoint:
		return directory.SharePointAppID, "Office 365 SharePoint Online"
	}
	return directory.M365DAREAppID, "M365DataAtRestEncryption"
}
