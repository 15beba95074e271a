package rbac

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Directory is what rbac needs of the directory: whether an object id is a
// user or a service principal of a tenant. directory.Directory has it.
type Directory interface {
	// PrincipalKind returns "user" or "servicePrincipal", or an error of
	// kind NotFound when tenantID has no such object.
	PrincipalKind(ctx context.Context, tenantID, objectID string) (string, error)
}

// ScopeResolver tells which tenant a scope belongs to. The composition root
// implements it over subscriptions, resource groups, vaults and keys.
type ScopeResolver interface {
	// TenantOf returns the tenant of the subscription that holds scope, or
	// an error of kind NotFound when scope does not exist. rbac calls it
	// with subscription scopes on every uncached check, and with the exact
	// scope of a role assignment or definition being written.
	TenantOf(ctx context.Context, scope resourceid.ID) (tenantID string, err error)
}

// Options configures a Service.
type Options struct {
	Store     storage.Backend
	Audit     *audit.Log // nil records nothing
	Directory Directory
	Scopes    ScopeResolver
	Now       func() time.Time // default time.Now
	Rand      io.Reader        // default crypto/rand
	// CacheTTL is how long a principal's effective assignments and a
	// subscription's tenant are reused without reading the store: the
	// longest a change made on another node goes unseen here. Zero means
	// DefaultCacheTTL; a negative value turns the cache off.
	CacheTTL time.Duration
	// CacheSize bounds the number of principals (and of subscriptions)
	// cached; zero means DefaultCacheSize.
	CacheSize int
	// Bus carries invalidations to and from the other nodes on the store,
	// so that a change is seen there in milliseconds; CacheTTL then bounds
	// only a lost notification. nil means this Service is alone.
	Bus notify.Bus
}

// Cache defaults.
const (
	DefaultCacheTTL  = 5 * time.Second
	DefaultCacheSize = 10000
)

// Service is role-based access control. It is safe for concurrent use.
type Service struct {
	store  storage.Backend
	audit  *audit.Log
	dir    Directory
	scopes ScopeResolver
	now    func() time.Time
	rand   io.Reader
	cache  *cache
	bus    notify.Bus
	// builtin holds the compiled built-in roles by lower-case GUID.
	builtin map[string]*compiledRole
}

// New returns a Service.
func New(o Options) *Service {
	s := &Service{store: o.Store, audit: o.Audit, dir: o.Directory, scopes: o.Scopes, now: o.Now, rand: o.Rand}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	ttl, size := o.CacheTTL, o.CacheSize
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if size <= 0 {
		size = DefaultCacheSize
	}
	s.cache = newCache(ttl, size)
	s.bus = o.Bus
	if s.bus == nil {
		s.bus = notify.Nop{}
	}
	// Any change may touch any principal's grants: the whole cache goes.
	s.bus.Subscribe(topic, func(string) { s.cache.invalidate() })
	s.builtin = make(map[string]*compiledRole, len(builtIns))
	for _, d := range builtIns {
		s.builtin[d.ID] = compileRole(d)
	}
	return s
}

// Invalidate drops every cached decision input. The composition root calls
// it after committing a transaction that used GrantTx or RemoveScopeTx.
func (s *Service) Invalidate() { s.cache.invalidate() }

// topic is what rbac publishes on its Bus after a change; the key is
// always notify.All.
const topic = "rbac"

// changed drops the cache after a committed change, here and on the other
// nodes.
func (s *Service) changed(ctx context.Context) {
	s.cache.invalidate()
	s.bus.Publish(ctx, topic, notify.All)
}

// Errors.
var (
	ErrAssignmentNotFound = errkind.New(errkind.NotFound, "The role assignment does not exist.").WithCode("RoleAssignmentNotFound")
	// ErrAssignmentExists: another assignment already gives the principal
	// the role at the scope.
	ErrAssignmentExists = errkind.New(errkind.Conflict, "The role assignment already exists.").WithCode("RoleAssignmentExists")
	// ErrAssignmentUpdate: role assignments cannot be changed, only
	// deleted and made again.
	ErrAssignmentUpdate = errkind.New(errkind.Conflict, "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.").
				WithCode("RoleAssignmentUpdateNotPermitted")
	ErrConditionUnsupported = errkind.New(errkind.Invalid, "Role assignment conditions are not supported by this service; send the role assignment without condition and conditionVersion.").
				WithCode("RoleAssignmentConditionNotSupported")
	ErrDefinitionNotFound = errkind.New(errkind.NotFound, "The role definition does not exist.").WithCode("RoleDefinitionDoesNotExist")
	ErrDefinitionInUse    = errkind.New(errkind.Conflict, "There are existing role assignments referencing role.").WithCode("RoleDefinitionHasAssignments")
	ErrDefinitionName     = errkind.New(errkind.Conflict, "A custom role with the same name already exists in this directory. Use a different name.").
				WithCode("RoleDefinitionWithSameNameExists")
	ErrBuiltInRole = errkind.New(errkind.Invalid, "Built-in role definitions cannot be created, changed or deleted.").WithCode("CannotModifyBuiltInRole")
	errNoResolver  = errkind.New(errkind.Internal, "rbac: no scope resolver configured")
)

// Storage layout. Ids and tenant ids in keys are lower case.
const (
	pfx         = "rbac/"
	kAssignment = pfx + "assignment/" // {tid}/{id} -> Assignment
	kPrincipal  = pfx + "principal/"  // {tid}/{oid}/{id} -> Assignment (the evaluator's index)
	kScope      = pfx + "scope"       // {scope.Key()}|{id} -> Assignment (scope.Key starts with "/")
	kRole       = pfx + "role/"       // {tid}/{roleGUID}/{id} -> scope string
	kDefinition = pfx + "definition/" // {tid}/{guid} -> RoleDefinition (custom roles)
	kDefName    = pfx + "defname/"    // {tid}/{lower(roleName)} -> guid
)

func lower(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

func (s *Service) newID() (string, error) {
	u, err := uuid.NewRandomFromReader(s.rand)
	if err != nil {
		return "", fmt.Errorf("rbac: reading random: %w", err)
	}
	return u.String(), nil
}

func listJSON[T any](tx storage.Tx, prefix string) ([]T, error) {
	entries, err := tx.List(prefix, "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(entries))
	for _, e := range entries {
		var v T
		if err := json.Unmarshal(e.Value, &v); err != nil {
			return nil, fmt.Errorf("rbac: decoding %s: %w", e.Key, err)
		}
		out = append(out, v)
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, storage.ErrNotFound) }

// tenantOfScope asks the resolver for the tenant of scope.
func (s *Service) tenantOfScope(ctx context.Context, scope resourceid.ID) (string, error) {
	if s.scopes == nil {
		return "", errNoResolver
	}
	tid, err := s.scopes.TenantOf(ctx, scope)
	if err != nil {
		return "", err
	}
	return lower(tid), nil
}

// record appends a success event for a change inside tx.
func (s *Service) record(ctx context.Context, tx storage.Tx, actor audit.Actor, tid, action, target string) error {
	if s.audit == nil {
		return nil
	}
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: actor, Action: action, Target: target, Result: audit.Success})
}

// recordRefusal writes an event for a refused or failed change; the refusal
// changed nothing, so it gets its own transaction, and a failure to record
// it does not hide the refusal from the caller.
func (s *Service) recordRefusal(ctx context.Context, c Principal, tid, action, target string, reason error) {
	if s.audit == nil || tid == "" {
		return
	}
	res := audit.Failure
	if errkind.Is(reason, errkind.PermissionDenied) {
		res = audit.Denied
	}
	_ = s.audit.Record(ctx, audit.Event{TenantID: tid, Actor: c.actor(tid), Action: action, Target: target,
		Result: res, Reason: errkind.Public(reason)})
}

// systemActor is the actor of changes the server makes by itself.
var systemActor = audit.Actor{Type: "system", ID: "customerkey"}
