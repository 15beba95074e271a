package encryption

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Scope is an encryption scope as callers see it.
type Scope struct {
	Name     string `json:"name"`
	TenantID string `json:"tenantId"`
	// Principals are the object ids of the users and service principals of
	// the tenant that may encrypt and decrypt in the scope, sorted.
	Principals []string `json:"principals"`
	// KeyVersion is the version of the scope key, named in every item.
	KeyVersion uint32 `json:"keyVersion"`
	// Policy is the policy key version the scope key is wrapped under.
	Policy    dep.PolicyRef `json:"policy"`
	CreatedAt time.Time     `json:"createdDateTime"`
	UpdatedAt time.Time     `json:"lastModifiedDateTime"`
}

// scopeRecord is what the store keeps: the scope and its wrapped key.
type scopeRecord struct {
	Scope
	WrappedKey []byte `json:"wrappedKey"`
}

// ScopeSpec is what a caller asks for when creating a scope.
type ScopeSpec struct {
	Name       string
	Principals []string
}

// firstKeyVersion is the version of a new scope's key. The format names
// the version so that a scope key can be rotated later without changing it.
const firstKeyVersion = 1

// admins may create, change, delete and list a tenant's scopes.
var admins = scope.Admins{
	Roles:  []directory.RoleDefinition{directory.GlobalAdministrator, directory.ComplianceAdministrator},
	Scopes: "encryption scopes", Code: "AuthorizationFailed",
}

// checkName normalizes a scope name: 3 to 63 lowercase letters, digits and
// hyphens, starting with a letter and ending with a letter or a digit.
// Names are case-insensitive.
func checkName(name string) (string, error) {
	n := lower(name)
	ok := len(n) >= 3 && len(n) <= 63 && n[0] >= 'a' && n[0] <= 'z' && n[len(n)-1] != '-'
	for i := 0; ok && i < len(n); i++ {
		c := n[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return "", errkind.Errorf(errkind.Invalid,
			"the scope name %q is not valid: use 3 to 63 letters, digits and hyphens, starting with a letter and not ending with a hyphen (for example crm-prod)",
			clip(name)).WithCode("InvalidScopeName")
	}
	return n, nil
}

// clip shortens text a caller sent before it is quoted in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func errScopeNotFound(tid, name string) error {
	return errkind.Errorf(errkind.NotFound,
		"the encryption scope %q does not exist in tenant %s; list the tenant's scopes, or ask a Global or Compliance Administrator to create it",
		name, tid).WithCode("ScopeNotFound")
}

// scopeKeyAAD binds a wrapped scope key to its tenant, scope and version,
// so that a wrapped key copied into another scope's record fails to unwrap.
func scopeKeyAAD(tid, name string, version uint32) []byte {
	b := make([]byte, 0, 64+len(tid)+len(name))
	b = append(b, "customerkey/encryption/scope-key/v1\x00"...)
	b = append(b, tid...)
	b = append(b, 0)
	b = append(b, name...)
	b = append(b, 0)
	return binary.BigEndian.AppendUint32(b, version)
}

func actor(c directory.Caller, tid string) audit.Actor {
	a := c.Actor
	if c.TenantID != "" && lower(c.TenantID) != tid {
		a.TenantID = c.TenantID
	}
	return a
}

func errOtherTenant(c directory.Caller, tid string) error {
	return errkind.Errorf(errkind.PermissionDenied,
		"the caller %s belongs to tenant %s and cannot use the encryption scopes of tenant %s; sign in to %s",
		c.ID, c.TenantID, tid, tid).WithCode("AuthorizationFailed")
}

// authorizeAdmin returns nil when c may manage tid's scopes, and otherwise
// audits and returns the refusal.
func (s *Service) authorizeAdmin(ctx context.Context, c directory.Caller, tid, action, target string) error {
	denied := func(err error) { s.recordDenied(ctx, c, tid, action, target, err) }
	if !scope.InTenant(c, tid) {
		err := errOtherTenant(c, tid)
		denied(err)
		return err
	}
	return admins.Authorize(ctx, s.dir, c, tid, denied)
}

// recordDenied audits a refusal in its own transaction: the refusal changed
// nothing else. Refusals in tenants that do not exist are not recorded.
func (s *Service) recordDenied(ctx context.Context, c directory.Caller, tid, action, target string, why error) {
	if _, err := s.dir.Tenant(ctx, tid); err != nil {
		return
	}
	if err := s.audit.Record(ctx, audit.Event{TenantID: tid, Actor: actor(c, tid), Action: action, Target: target,
		Result: audit.Denied, Reason: errkind.Public(why)}); err != nil {
		s.log.Warn("recording a refused encryption scope change", "tenant", tid, "action", action, "err", err)
	}
}

// record writes an audit event inside tx.
func (s *Service) record(ctx context.Context, tx storage.Tx, by audit.Actor, tid, action, target, reason string) error {
	return s.audit.RecordTx(ctx, tx, audit.Event{TenantID: tid, Actor: by, Action: action, Target: target,
		Result: audit.Success, Reason: reason})
}

// checkPrincipals normalizes, deduplicates and sorts principal object ids
// and checks that each is a user or service principal of tid.
func (s *Service) checkPrincipals(ctx context.Context, tid string, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = lower(id)
		if !directory.IsGUID(id) {
			return nil, errkind.Errorf(errkind.Invalid,
				"the principal %q is not an object id (a GUID) of a user or service principal", clip(id)).WithCode("InvalidPrincipal")
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if len(out) > MaxPrincipals {
		return nil, errkind.Errorf(errkind.Invalid,
			"a scope has at most %d principals, got %d; grant a service principal that serves many users instead", MaxPrincipals, len(out)).
			WithCode("TooManyPrincipals")
	}
	for _, id := range out {
		kind, err := s.dir.PrincipalKind(ctx, tid, id)
		if errkind.Is(err, errkind.NotFound) {
			return nil, errkind.Errorf(errkind.Invalid,
				"the principal %s is not a user or service principal of tenant %s; give object ids from the tenant's directory", id, tid).
				WithCode("PrincipalNotFound")
		}
		if err != nil {
			return nil, err
		}
		if kind != "user" && kind != "servicePrincipal" {
			return nil, errkind.Errorf(errkind.Invalid,
				"the principal %s is a %s; only users and service principals can use a scope", id, kind).WithCode("InvalidPrincipal")
		}
	}
	slices.Sort(out)
	return out, nil
}

// CreateScope creates a scope with a new scope key wrapped under the
// tenant's effective policy for dep.Encryption. Global and Compliance
// Administrators of the tenant may create scopes.
func (s *Service) CreateScope(ctx context.Context, c directory.Caller, tenantID string, spec ScopeSpec) (Scope, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Scope{}, err
	}
	name, err := checkName(spec.Name)
	if err != nil {
		return Scope{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, actionCreate, name); err != nil {
		return Scope{}, err
	}
	principals, err := s.checkPrincipals(ctx, tid, spec.Principals)
	if err != nil {
		return Scope{}, err
	}
	ref, err := s.dep.Effective(ctx, tid, dep.Encryption)
	if err != nil {
		return Scope{}, err
	}
	key, err := envelope.NewKey()
	if err != nil {
		return Scope{}, err
	}
	wrapped, err := s.dep.WrapScopeKey(ctx, ref, key, scopeKeyAAD(tid, name, firstKeyVersion))
	key.Wipe()
	if err != nil {
		return Scope{}, err
	}
	now := s.now().UTC()
	rec := scopeRecord{Scope: Scope{Name: name, TenantID: tid, Principals: principals, KeyVersion: firstKeyVersion,
		Policy: ref, CreatedAt: now, UpdatedAt: now}, WrappedKey: wrapped}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		existing, err := tx.List(kScope+tid+"/", "", MaxScopes+1)
		if err != nil {
			return err
		}
		if len(existing) >= MaxScopes {
			return errkind.Errorf(errkind.FailedPrecondition,
				"tenant %s has %d encryption scopes, the most it may have; delete scopes it no longer uses", tid, MaxScopes).
				WithCode("TooManyScopes")
		}
		if err := storage.PutJSON(tx, scopeKey(tid, name), rec, storage.MustNotExist); err != nil {
			if errkind.Is(err, errkind.Conflict) {
				return errkind.Errorf(errkind.AlreadyExists, "the encryption scope %q already exists in tenant %s", name, tid).
					WithCode("ScopeExists")
			}
			return err
		}
		return s.record(ctx, tx, actor(c, tid), tid, actionCreate, name,
			fmt.Sprintf("scope key wrapped under %s policy %s version %d; principals: %s",
				ref.Kind, ref.PolicyID, ref.KeyVersion, principalsText(principals)))
	})
	if err != nil {
		return Scope{}, err
	}
	s.invalidate(ctx, cacheKey{tid, name})
	return rec.Scope, nil
}

func principalsText(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// read loads a scope record and its version.
func (s *Service) read(ctx context.Context, tid, name string) (scopeRecord, int64, error) {
	var rec scopeRecord
	var ver int64
	err := s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		ver, err = storage.GetJSON(tx, scopeKey(tid, name), &rec)
		if errkind.Is(err, errkind.NotFound) {
			return errScopeNotFound(tid, name)
		}
		return err
	})
	return rec, ver, err
}

// Scope returns one scope, to the tenant's Global and Compliance
// Administrators and to the scope's principals.
func (s *Service) Scope(ctx context.Context, c directory.Caller, tenantID, name string) (Scope, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Scope{}, err
	}
	if name, err = checkName(name); err != nil {
		return Scope{}, err
	}
	if !scope.InTenant(c, tid) {
		return Scope{}, errOtherTenant(c, tid)
	}
	rec, _, err := s.read(ctx, tid, name)
	if err != nil {
		return Scope{}, err
	}
	if slices.Contains(rec.Principals, lower(c.ID)) {
		return rec.Scope, nil
	}
	admin, err := admins.Is(ctx, s.dir, c, tid)
	if err != nil {
		return Scope{}, err
	}
	if !admin {
		return Scope{}, errNotPrincipal(c, name)
	}
	return rec.Scope, nil
}

// Scopes lists a tenant's scopes in name order: all of them to its Global
// and Compliance Administrators, to anyone else of the tenant those it is
// a principal of.
func (s *Service) Scopes(ctx context.Context, c directory.Caller, tenantID string) ([]Scope, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return nil, err
	}
	if !scope.InTenant(c, tid) {
		return nil, errOtherTenant(c, tid)
	}
	admin, err := admins.Is(ctx, s.dir, c, tid)
	if err != nil {
		return nil, err
	}
	me := lower(c.ID)
	out := []Scope{}
	err = s.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kScope+tid+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var rec scopeRecord
			if err := json.Unmarshal(e.Value, &rec); err != nil {
				return fmt.Errorf("encryption: decoding %s: %w", e.Key, err)
			}
			if admin || slices.Contains(rec.Principals, me) {
				out = append(out, rec.Scope)
			}
		}
		return nil
	})
	return out, err
}

// SetPrincipals replaces the principals of a scope. Global and Compliance
// Administrators of the tenant may change them; the change takes effect at
// once on this node and within KeyCacheLifetime on others.
func (s *Service) SetPrincipals(ctx context.Context, c directory.Caller, tenantID, name string, principals []string) (Scope, error) {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return Scope{}, err
	}
	if name, err = checkName(name); err != nil {
		return Scope{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, actionSetPrincipals, name); err != nil {
		return Scope{}, err
	}
	ids, err := s.checkPrincipals(ctx, tid, principals)
	if err != nil {
		return Scope{}, err
	}
	var rec scopeRecord
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		ver, err := storage.GetJSON(tx, scopeKey(tid, name), &rec)
		if errkind.Is(err, errkind.NotFound) {
			return errScopeNotFound(tid, name)
		}
		if err != nil {
			return err
		}
		rec.Principals, rec.UpdatedAt = ids, s.now().UTC()
		if err := storage.PutJSON(tx, scopeKey(tid, name), rec, ver); err != nil {
			return err
		}
		return s.record(ctx, tx, actor(c, tid), tid, actionSetPrincipals, name, "principals: "+principalsText(ids))
	})
	if err != nil {
		return Scope{}, err
	}
	s.invalidate(ctx, cacheKey{tid, name})
	return rec.Scope, nil
}

// DeleteScope deletes a scope and its key: every item encrypted in it, and
// every data key it issued, can never be decrypted again. Global and
// Compliance Administrators of the tenant may delete scopes.
func (s *Service) DeleteScope(ctx context.Context, c directory.Caller, tenantID, name string) error {
	tid, err := checkTenant(tenantID)
	if err != nil {
		return err
	}
	if name, err = checkName(name); err != nil {
		return err
	}
	if err := s.authorizeAdmin(ctx, c, tid, actionDelete, name); err != nil {
		return err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Get(scopeKey(tid, name)); err != nil {
			if errkind.Is(err, errkind.NotFound) {
				return errScopeNotFound(tid, name)
			}
			return err
		}
		if err := tx.Delete(scopeKey(tid, name), storage.AnyVersion); err != nil {
			return err
		}
		return s.record(ctx, tx, actor(c, tid), tid, actionDelete, name, "the scope key is destroyed; its items cannot be decrypted")
	})
	if err != nil {
		return err
	}
	s.invalidate(ctx, cacheKey{tid, name})
	return nil
}

func errNotPrincipal(c directory.Caller, name string) error {
	return errkind.Errorf(errkind.PermissionDenied,
		"the caller %s is not a principal of the encryption scope %q; a Global or Compliance Administrator adds it with PUT …/encryption/scopes/%s/principals",
		c.ID, name, name).WithCode("AuthorizationFailed")
}

// use returns the cached scope for a request of c, with a reference the
// caller must release: c must be in the tenant and a principal of the
// scope. It reads nothing when the scope is cached.
func (s *Service) use(ctx context.Context, c directory.Caller, tid, name string) (*entry, error) {
	if !scope.InTenant(c, tid) {
		return nil, errOtherTenant(c, tid)
	}
	e, err := s.cache.get(ctx, cacheKey{tid, name}, func(ctx context.Context) (*entry, error) { return s.load(ctx, tid, name) })
	if err != nil {
		return nil, err
	}
	if !e.allowed[lower(c.ID)] {
		e.release()
		return nil, errNotPrincipal(c, name)
	}
	return e, nil
}

// load reads a scope and unwraps its key for a user request.
func (s *Service) load(ctx context.Context, tid, name string) (*entry, error) {
	rec, _, err := s.read(ctx, tid, name)
	if err != nil {
		return nil, err
	}
	key, err := s.dep.UnwrapScopeKey(ctx, tid, rec.WrappedKey, scopeKeyAAD(tid, name, rec.KeyVersion), scope.Purpose(ctx))
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	sealer, err := envelope.NewSealer(key, name, rec.KeyVersion)
	if err != nil {
		return nil, err
	}
	items, err := newItemKDF(key)
	if err != nil {
		return nil, err
	}
	e := &entry{scope: rec.Scope, items: items, sealer: sealer, allowed: make(map[string]bool, len(rec.Principals))}
	for _, p := range rec.Principals {
		e.allowed[p] = true
	}
	return e, nil
}
