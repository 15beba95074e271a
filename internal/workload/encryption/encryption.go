// Package encryption owns the general encryption API that any workload may
// use: named scopes per tenant (such as "crm-prod"), each with an AES-256
// scope key kept only wrapped by the policy key of the tenant's effective
// data encryption policy for dep.Encryption (the assigned multi-workload
// policy, else the service-managed default), and the principals (users and
// service principals of the tenant) allowed to encrypt and decrypt with it.
// Encrypt and Decrypt protect items of up to MaxItemSize bytes, each under a
// key of its own derived from the scope key; GenerateDataKey and
// DecryptDataKey hand out AES-256 data keys sealed under the scope key, for
// clients that encrypt locally. A background job rewraps scope keys whose
// effective policy changed (Kick, Run, Sweep) and reports its progress to
// dep (Progress); PurgePolicy destroys the scopes of a purged policy.
//
// Hot path and revocation. Encrypt, Decrypt and the data-key calls read
// neither the store nor the vault while the scope is cached: the scope's
// record and its unwrapped key are kept in memory for at most
// Options.KeyCacheLifetime (K), concurrent misses of one scope are
// coalesced into one load, and a cold request costs one store read and one
// UnwrapScopeKey, which reaches a root key at most once (dep caches the
// policy key for its own Options.CacheLifetime, L). A customer's revocation
// therefore takes effect within L + K: dep stops unwrapping within L, and
// the last scope key unwrapped before that leaves this cache within K (15
// minutes with both defaults; K defaults to half of dep's default L). A
// change made through this process (principals, deletion, rewrap, purge)
// takes effect at once here, on other nodes as soon as its notification
// arrives through Options.Bus (milliseconds), and within K on a node that
// missed it.
//
// Audit. Creating, changing, deleting, rewrapping and purging scopes is
// recorded in the tenant's audit log in the same transaction, and so are
// refused management attempts. Single encrypt and decrypt calls are not:
// what a workload does with its items is its own business (it keeps its
// own access log if it needs one), a durable record per call would put a
// store write on the hot path, and the keys that matter are audited where
// they are used: every use of a customer's root key by the vault, and every
// fallback to the availability key by dep.
//
// Of its own level it imports dep (the policy service, reached only through
// the interface Policies declared here, and the PolicyRef, Purpose and
// Workload types of its contract), envelope (the sealed format of scope
// keys' data keys), directory (Caller and the role ids, read through the
// interface Directory) and workload/scope (who administers scopes, and the
// set of tenants waiting for Run). Below that it uses errkind, secret, the
// storage port, audit and notify (scope invalidations between the nodes on
// the store). It owns the storage prefix "encryption/". It must not import
// net/http or any storage implementation.
package encryption

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Policies is what this package asks of the data encryption policies.
// *dep.Service implements it.
type Policies interface {
	// Effective returns the ref a scope of workload w is to be wrapped
	// under: the assigned multi-workload policy, else the service-managed
	// default.
	Effective(ctx context.Context, tenantID string, w dep.Workload) (dep.PolicyRef, error)
	WrapScopeKey(ctx context.Context, ref dep.PolicyRef, key secret.Bytes, aad []byte) ([]byte, error)
	// UnwrapScopeKey fails for user purposes once the customer revoked the
	// root keys; system purposes may still use the availability key.
	UnwrapScopeKey(ctx context.Context, tenantID string, wrapped []byte, aad []byte, p dep.Purpose) (secret.Bytes, error)
}

// Directory is what this package asks of the directory.
// *directory.Directory implements it.
type Directory interface {
	Tenant(ctx context.Context, id string) (directory.Tenant, error)
	RolesOf(ctx context.Context, tid, principalID string) ([]string, error)
	// PrincipalKind reports whether id is a "user" or a
	// "servicePrincipal" of tenant tid.
	PrincipalKind(ctx context.Context, tid, id string) (string, error)
}

var (
	_ Policies   = (*dep.Service)(nil)
	_ Directory  = (*directory.Directory)(nil)
	_ dep.Scopes = (*Service)(nil)
)

// Limits.
const (
	// MaxItemSize bounds the plaintext of one Encrypt.
	MaxItemSize = 4 << 20
	// MaxAADSize bounds the additional data of one call.
	MaxAADSize = 64 << 10
	// MaxPrincipals bounds the principals of one scope.
	MaxPrincipals = 100
	// MaxScopes bounds the scopes of one tenant.
	MaxScopes = 1000
	// DefaultKeyCacheLifetime is used when Options.KeyCacheLifetime is
	// zero: half of dep's default policy key cache lifetime.
	DefaultKeyCacheLifetime = dep.DefaultCacheLifetime / 2
	// DefaultSweepInterval is used when Options.SweepInterval is zero.
	DefaultSweepInterval = time.Hour
	// DefaultMaxCachedScopes is used when Options.MaxCachedScopes is zero.
	DefaultMaxCachedScopes = 4096
	// maxKicked bounds the tenants waiting for Run; beyond it the periodic
	// sweep catches up.
	maxKicked = 10000
)

// Options configures a Service. Store, Audit, Policies and Directory are
// required.
type Options struct {
	Store     storage.Backend
	Audit     *audit.Log
	Policies  Policies
	Directory Directory
	// KeyCacheLifetime bounds how long a scope's record and unwrapped key
	// stay cached, and so adds to dep's CacheLifetime in the time a
	// revocation takes to apply (see the package doc); keep it at most
	// dep's. Zero means DefaultKeyCacheLifetime; a negative value turns
	// caching off.
	KeyCacheLifetime time.Duration
	// MaxCachedScopes bounds the cache; zero means DefaultMaxCachedScopes.
	MaxCachedScopes int
	// SweepInterval is how often Run sweeps every tenant; zero means
	// DefaultSweepInterval.
	SweepInterval time.Duration
	// Log receives the failures of background work; nil discards them.
	Log  *slog.Logger
	Now  func() time.Time // default time.Now
	Rand io.Reader        // salts of items; default crypto/rand
	// Bus carries scope invalidations to and from the other nodes on the
	// store; nil means this Service is alone on it.
	Bus notify.Bus
}

// Service owns encryption scopes. It is safe for concurrent use.
type Service struct {
	store storage.Backend
	audit *audit.Log
	dep   Policies
	dir   Directory
	log   *slog.Logger
	now   func() time.Time
	rand  io.Reader
	sweep time.Duration
	cache *cache
	bus   notify.Bus
	kicks *scope.Kicks // tenants waiting for Run
}

// New returns a Service. It panics when a required option is missing,
// which is a wiring mistake.
func New(o Options) *Service {
	if o.Store == nil || o.Audit == nil || o.Policies == nil || o.Directory == nil {
		panic("encryption: Options.Store, Audit, Policies and Directory are required")
	}
	s := &Service{store: o.Store, audit: o.Audit, dep: o.Policies, dir: o.Directory, log: o.Log, now: o.Now, rand: o.Rand,
		sweep: o.SweepInterval, kicks: scope.NewKicks(maxKicked)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.sweep <= 0 {
		s.sweep = DefaultSweepInterval
	}
	ttl := o.KeyCacheLifetime
	if ttl == 0 {
		ttl = DefaultKeyCacheLifetime
	}
	size := o.MaxCachedScopes
	if size <= 0 {
		size = DefaultMaxCachedScopes
	}
	s.cache = newCache(ttl, size, s.now)
	s.bus = o.Bus
	if s.bus == nil {
		s.bus = notify.Nop{}
	}
	s.bus.Subscribe(topicScope, s.dropNotified)
	return s
}

// Workload is dep.Encryption: the workload whose scopes this package keeps.
func (s *Service) Workload() dep.Workload { return dep.Encryption }

// Storage layout; tenant ids are lowercase GUIDs, names are scope names.
//
//	encryption/scope/{tid}/{name} -> scopeRecord
const (
	pfx    = "encryption/"
	kScope = pfx + "scope/"
)

// Audit actions.
const (
	actionCreate        = "encryption/scopes/create"
	actionSetPrincipals = "encryption/scopes/principals/write"
	actionDelete        = "encryption/scopes/delete"
	actionRewrap        = "encryption/scopes/rewrap"
	actionPurge         = "encryption/scopes/purge"
)

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func scopeKey(tid, name string) string { return kScope + tid + "/" + name }

// checkTenant normalizes a tenant id.
func checkTenant(tid string) (string, error) {
	t := lower(tid)
	if !directory.IsGUID(t) {
		return "", errkind.Errorf(errkind.Invalid, "the tenant %q is not a tenant id (a GUID)", tid)
	}
	return t, nil
}
