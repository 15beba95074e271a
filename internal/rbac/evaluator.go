package rbac

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// PrincipalType is the kind of principal a role is assigned to, as Azure
// names it.
type PrincipalType string

// Principal types. Groups are accepted in the vocabulary, but the directory
// has none, so an assignment to a group cannot be made.
const (
	PrincipalUser             PrincipalType = "User"
	PrincipalServicePrincipal PrincipalType = "ServicePrincipal"
	PrincipalGroup            PrincipalType = "Group"
)

// ParsePrincipalType accepts Azure's principal types in any case.
func ParsePrincipalType(s string) (PrincipalType, bool) {
	for _, t := range []PrincipalType{PrincipalUser, PrincipalServicePrincipal, PrincipalGroup} {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// Principal is who asks: the verified subject of a token.
type Principal struct {
	// TenantID is the tenant the token was issued in.
	TenantID string
	// ObjectID is the user's or service principal's object id in TenantID.
	ObjectID string
	Type     PrincipalType
	// Name is the user principal name or application id, for the audit log only.
	Name string
}

func (p Principal) actor(recordTenant string) audit.Actor {
	a := audit.Actor{Type: "user", ID: p.ObjectID, Name: p.Name}
	if p.Type == PrincipalServicePrincipal {
		a.Type = "servicePrincipal"
	}
	if !strings.EqualFold(p.TenantID, recordTenant) {
		a.TenantID = p.TenantID
	}
	return a
}

// DeniedError describes a refusal. It is wrapped in an *errkind.Error of
// kind PermissionDenied (Code "AuthorizationFailed" for management actions,
// "ForbiddenByRbac" for data actions) whose public message is Azure's;
// adapters that want another wording find it with errors.AsType.
type DeniedError struct {
	Principal Principal
	Action    string
	// Scope is the scope as the caller named it (resourceid.ID.String()).
	Scope string
	// DataAction tells a data action from a management action.
	DataAction bool
}

func (e *DeniedError) Error() string {
	kind := "action"
	if e.DataAction {
		kind = "data action"
	}
	return fmt.Sprintf("rbac: principal %s of tenant %s holds no role allowing %s %s at %s",
		e.Principal.ObjectID, e.Principal.TenantID, kind, e.Action, e.Scope)
}

// ManagementMessage is Azure Resource Manager's AuthorizationFailed text.
func (e *DeniedError) ManagementMessage() string {
	return fmt.Sprintf("The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials.",
		e.Principal.ObjectID, e.Principal.ObjectID, e.Action, e.Scope)
}

// DataMessage is the key vault data plane's ForbiddenByRbac text.
func (e *DeniedError) DataMessage() string {
	return "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: oid=" + e.Principal.ObjectID + ";tid=" + e.Principal.TenantID + "\r\n" +
		"Action: '" + e.Action + "'\r\n" +
		"Resource: '" + strings.ToLower(e.Scope) + "'\r\n" +
		"Assignment: (not found)\r\n" +
		"DenyAssignmentId: null\r\n"
}

func denied(p Principal, action string, scope resourceid.ID, data bool) error {
	d := &DeniedError{Principal: p, Action: action, Scope: scope.String(), DataAction: data}
	if data {
		return &errkind.Error{Kind: errkind.PermissionDenied, Code: "ForbiddenByRbac", Msg: d.DataMessage(), Err: d}
	}
	return &errkind.Error{Kind: errkind.PermissionDenied, Code: "AuthorizationFailed", Msg: d.ManagementMessage(), Err: d}
}

// Check decides a management action of p at scope: nil when allowed, an
// error of kind PermissionDenied (wrapping *DeniedError) when not, or the
// error that kept it from deciding. Restrictions on what a role may assign
// (Key Vault Data Access Administrator) are not applied here: CreateAssignment
// and DeleteAssignment apply them, knowing the role in question. Check
// and CheckData read the store (and the ScopeResolver) on a cache miss, so
// they must not be called inside a storage transaction: with bbolt a read
// inside a write on the same goroutine can deadlock.
func (s *Service) Check(ctx context.Context, p Principal, action string, scope resourceid.ID) error {
	return s.decide(ctx, p, action, scope, false, "")
}

// CheckData decides a data action of p at scope (a vault or a key), as
// Check does. The key vault data plane calls it on every operation; its
// inputs are cached (see Options.CacheTTL).
func (s *Service) CheckData(ctx context.Context, p Principal, dataAction string, scope resourceid.ID) error {
	return s.decide(ctx, p, dataAction, scope, true, "")
}

// decide is the evaluator. target, when not empty, is the GUID of the role
// being assigned or removed, for roles whose assignments are restricted.
func (s *Service) decide(ctx context.Context, p Principal, action string, scope resourceid.ID, data bool, target string) error {
	if p.TenantID == "" || p.ObjectID == "" || scope.SubscriptionID == "" {
		return denied(p, action, scope, data)
	}
	tid := lower(p.TenantID)
	// Defence in depth: the scope must belong to the principal's tenant,
	// whatever the assignments say.
	if s.scopes != nil {
		owner, err := s.subscriptionTenant(ctx, scope.SubscriptionID)
		if errkind.Is(err, errkind.NotFound) {
			return denied(p, action, scope, data)
		}
		if err != nil {
			return err
		}
		if owner != tid {
			return denied(p, action, scope, data)
		}
	}
	grants, err := s.grantsFor(ctx, tid, lower(p.ObjectID))
	if err != nil {
		return err
	}
	key := scope.Key()
	act := lowerAction(action)
	for i := range grants {
		g := &grants[i]
		if g.tenantID != tid || (key != g.scopeKey && !strings.HasPrefix(key, g.scopePrefix)) {
			continue
		}
		if !g.role.allows(act, data) {
			continue
		}
		if target != "" && g.role.onlyAssign != nil && !g.role.onlyAssign[target] {
			continue
		}
		return nil
	}
	return denied(p, action, scope, data)
}

// compiledRole is a role definition ready for matching.
type compiledRole struct {
	id    string
	perms []compiledPerm
	// onlyAssign, when not nil, is the set of roles this role may assign
	// and remove.
	onlyAssign map[string]bool
}

type compiledPerm struct {
	actions, notActions, dataActions, notDataActions []pattern
}

func compilePatterns(ps []string) []pattern {
	out := make([]pattern, len(ps))
	for i, p := range ps {
		out[i] = compilePattern(p)
	}
	return out
}

func compileRole(d RoleDefinition) *compiledRole {
	r := &compiledRole{id: lower(d.ID)}
	for _, p := range d.Permissions {
		r.perms = append(r.perms, compiledPerm{
			actions: compilePatterns(p.Actions), notActions: compilePatterns(p.NotActions),
			dataActions: compilePatterns(p.DataActions), notDataActions: compilePatterns(p.NotDataActions),
		})
	}
	if only, ok := assignRestrictions[r.id]; ok {
		r.onlyAssign = make(map[string]bool, len(only))
		for _, id := range only {
			r.onlyAssign[id] = true
		}
	}
	return r
}

// allows reports whether a permission block of r allows the lower-cased
// action: one of its actions matches and none of its notActions does.
func (r *compiledRole) allows(act string, data bool) bool {
	for i := range r.perms {
		p := &r.perms[i]
		yes, no := p.actions, p.notActions
		if data {
			yes, no = p.dataActions, p.notDataActions
		}
		if anyMatch(yes, act) && !anyMatch(no, act) {
			return true
		}
	}
	return false
}

func anyMatch(ps []pattern, act string) bool {
	for _, p := range ps {
		if p.match(act) {
			return true
		}
	}
	return false
}

// grant is one effective assignment of a principal.
type grant struct {
	tenantID    string
	scopeKey    string // resourceid.ID.Key() of the assignment's scope
	scopePrefix string // scopeKey + "/"
	role        *compiledRole
}

// grantsFor returns the effective assignments of principal tid/oid.
func (s *Service) grantsFor(ctx context.Context, tid, oid string) ([]grant, error) {
	key := tid + "/" + oid
	now := s.now()
	if g, ok := s.cache.grants(key, now); ok {
		return g, nil
	}
	gen := s.cache.generation()
	var out []grant
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		out, err = s.loadGrants(tx, tid, oid)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cache.putGrants(key, out, gen, now)
	return out, nil
}

func (s *Service) loadGrants(tx storage.Tx, tid, oid string) ([]grant, error) {
	as, err := listJSON[Assignment](tx, kPrincipal+tid+"/"+oid+"/")
	if err != nil {
		return nil, err
	}
	custom := map[string]*compiledRole{}
	out := make([]grant, 0, len(as))
	for _, a := range as {
		scope, err := resourceid.Parse(a.Scope)
		if err != nil {
			continue // not written by this package; never grants anything
		}
		rid := a.RoleID()
		role := s.builtin[rid]
		if role == nil {
			role = custom[rid]
		}
		if role == nil {
			var d RoleDefinition
			if _, err := storage.GetJSON(tx, kDefinition+tid+"/"+rid, &d); err != nil {
				if isNotFound(err) {
					continue
				}
				return nil, err
			}
			role = compileRole(d)
			custom[rid] = role
		}
		k := scope.Key()
		out = append(out, grant{tenantID: lower(a.TenantID), scopeKey: k, scopePrefix: k + "/", role: role})
	}
	return out, nil
}

// subscriptionTenant returns the tenant of subscription sub, cached.
func (s *Service) subscriptionTenant(ctx context.Context, sub string) (string, error) {
	key := lower(sub)
	now := s.now()
	if t, ok := s.cache.tenant(key, now); ok {
		return t, nil
	}
	gen := s.cache.generation()
	t, err := s.tenantOfScope(ctx, resourceid.Subscription(sub))
	if err != nil {
		return "", err
	}
	s.cache.putTenant(key, t, gen, now)
	return t, nil
}

// cache holds the evaluator's inputs for a short time. Every write through
// this process bumps gen and empties it; an entry loaded before a bump is
// dropped instead of stored, so that a load racing a change cannot bring
// back what the change removed.
type cache struct {
	ttl time.Duration // <= 0: off
	max int

	mu      sync.RWMutex
	gen     uint64
	byPrin  map[string]grantsEntry
	bySub   map[string]tenantEntry
	enabled bool
}

type grantsEntry struct {
	grants  []grant
	expires time.Time
}

type tenantEntry struct {
	tenant  string
	expires time.Time
}

func newCache(ttl time.Duration, max int) *cache {
	return &cache{ttl: ttl, max: max, enabled: ttl > 0,
		byPrin: map[string]grantsEntry{}, bySub: map[string]tenantEntry{}}
}

func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *cache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.byPrin)
	clear(c.bySub)
	c.mu.Unlock()
}

func (c *cache) grants(key string, now time.Time) ([]grant, bool) {
	if !c.enabled {
		return nil, false
	}
	c.mu.RLock()
	e, ok := c.byPrin[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return nil, false
	}
	return e.grants, true
}

func (c *cache) tenant(key string, now time.Time) (string, bool) {
	if !c.enabled {
		return "", false
	}
	c.mu.RLock()
	e, ok := c.bySub[key]
	c.mu.RUnlock()
	if !ok || !now.Before(e.expires) {
		return "", false
	}
	return e.tenant, true
}

func (c *cache) putGrants(key string, g []grant, gen uint64, now time.Time) {
	if !c.enabled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	makeRoom(c.byPrin, c.max, now, func(e grantsEntry) time.Time { return e.expires })
	c.byPrin[key] = grantsEntry{grants: g, expires: now.Add(c.ttl)}
}

func (c *cache) putTenant(key, t string, gen uint64, now time.Time) {
	if !c.enabled {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	makeRoom(c.bySub, c.max, now, func(e tenantEntry) time.Time { return e.expires })
	c.bySub[key] = tenantEntry{tenant: t, expires: now.Add(c.ttl)}
}

// makeRoom keeps m below max entries: it drops the expired ones, and if
// that is not enough, an arbitrary eighth of the rest (Go's map order).
func makeRoom[E any](m map[string]E, max int, now time.Time, expires func(E) time.Time) {
	if len(m) < max {
		return
	}
	for k, e := range m {
		if !now.Before(expires(e)) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < max-max/8 {
			break
		}
		delete(m, k)
	}
}
