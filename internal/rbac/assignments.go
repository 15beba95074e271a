package rbac

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Assignment is a role assignment: a role given to a principal at a scope.
// Assignments are never changed; they are deleted and made again.
type Assignment struct {
	// ID is the assignment's GUID, chosen by the client (the "name" of
	// the ARM resource).
	ID string `json:"id"`
	// Scope is the canonical scope (resourceid.ID.String()).
	Scope string `json:"scope"`
	// RoleDefinitionID is the full id, as Azure returns it:
	// /subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}.
	RoleDefinitionID string        `json:"roleDefinitionId"`
	PrincipalID      string        `json:"principalId"`
	PrincipalType    PrincipalType `json:"principalType"`
	Description      string        `json:"description,omitempty"`
	// TenantID is the tenant of the scope (and so of the principal).
	TenantID  string    `json:"tenantId"`
	CreatedOn time.Time `json:"createdOn"`
	UpdatedOn time.Time `json:"updatedOn"`
	CreatedBy string    `json:"createdBy,omitempty"`
	UpdatedBy string    `json:"updatedBy,omitempty"`
}

// ResourceID is the ARM id of the assignment:
// {scope}/providers/Microsoft.Authorization/roleAssignments/{id}.
func (a Assignment) ResourceID() string {
	return a.Scope + "/providers/Microsoft.Authorization/roleAssignments/" + a.ID
}

// RoleID is the lower-case GUID of the assigned role.
func (a Assignment) RoleID() string {
	i := strings.LastIndexByte(a.RoleDefinitionID, '/')
	return strings.ToLower(a.RoleDefinitionID[i+1:])
}

// AssignmentSpec is the body of a role assignment PUT.
type AssignmentSpec struct {
	// ID is the GUID the client chose for the assignment.
	ID    string
	Scope resourceid.ID
	// RoleDefinitionID is a full role definition id (either form) or a GUID.
	RoleDefinitionID string
	PrincipalID      string
	// PrincipalType is optional; when given it must match the directory.
	PrincipalType PrincipalType
	Description   string
	// Condition and ConditionVersion must be empty: conditions are not
	// supported (ErrConditionUnsupported).
	Condition        string
	ConditionVersion string
}

func (a Assignment) sameContent(b Assignment) bool {
	return strings.EqualFold(a.Scope, b.Scope) && a.RoleID() == b.RoleID() &&
		strings.EqualFold(a.PrincipalID, b.PrincipalID) && a.PrincipalType == b.PrincipalType
}

const maxDescription = 2048

// CreateAssignment makes a role assignment with PUT semantics: the same id
// with the same content returns the existing assignment; the same id with
// other content is ErrAssignmentUpdate; another id giving the same role to
// the same principal at the same scope is ErrAssignmentExists. c needs
// Microsoft.Authorization/roleAssignments/write at the scope (and, if its
// right comes from Key Vault Data Access Administrator, the role must be
// one of the key vault data roles). The scope must exist in c's tenant,
// the principal must exist in that tenant's directory, and the role must
// be assignable at the scope.
func (s *Service) CreateAssignment(ctx context.Context, c Principal, spec AssignmentSpec) (Assignment, error) {
	const action = ActionRoleAssignmentsWrite
	id := lower(spec.ID)
	if !isGUID(id) {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", spec.ID).
			WithCode("InvalidRoleAssignmentId")
	}
	if strings.TrimSpace(spec.Condition) != "" || strings.TrimSpace(spec.ConditionVersion) != "" {
		return Assignment{}, ErrConditionUnsupported
	}
	if len(spec.Description) > maxDescription {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "the description must have at most %d characters", maxDescription)
	}
	scope := spec.Scope
	if scope.SubscriptionID == "" {
		return Assignment{}, errkind.New(errkind.Invalid, "the role assignment needs a scope: a subscription, resource group or resource").WithCode("InvalidScope")
	}
	roleID, roleSub, err := ParseDefinitionID(spec.RoleDefinitionID)
	if err != nil {
		return Assignment{}, err
	}
	pid := lower(spec.PrincipalID)
	if !isGUID(pid) {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "The principal ID '%s' is not valid. The principal ID must be a GUID.", spec.PrincipalID).
			WithCode("InvalidPrincipalId")
	}
	if spec.PrincipalType != "" {
		t, ok := ParsePrincipalType(string(spec.PrincipalType))
		if !ok {
			return Assignment{}, errkind.Errorf(errkind.Invalid, "The principal type '%s' is not valid; expected User, ServicePrincipal or Group.", spec.PrincipalType).
				WithCode("InvalidPrincipalType")
		}
		spec.PrincipalType = t
	}
	tid, err := s.tenantOfScope(ctx, scope)
	if err != nil {
		return Assignment{}, err
	}
	a := Assignment{ID: id, Scope: scope.String(), PrincipalID: pid, Description: spec.Description, TenantID: tid,
		RoleDefinitionID: DefinitionID(scope.SubscriptionID, roleID)}
	target := a.ResourceID()
	if lower(c.TenantID) != tid {
		err := denied(c, action, scope, false)
		s.recordRefusal(ctx, c, tid, action, target, err)
		return Assignment{}, err
	}
	fail := func(err error) (Assignment, error) {
		s.recordRefusal(ctx, c, tid, action, target, err)
		return Assignment{}, err
	}
	// Whether c may assign roles here at all, before telling it anything
	// about the role; then whether it may assign this one.
	if err := s.decide(ctx, c, action, scope, false, ""); err != nil {
		return fail(err)
	}
	role, err := s.definitionIn(ctx, tid, roleID)
	if err != nil || (roleSub != "" && !strings.EqualFold(roleSub, scope.SubscriptionID)) {
		if err == nil || errkind.Is(err, errkind.NotFound) {
			err = roleNotFound(spec.RoleDefinitionID)
		}
		return fail(err)
	}
	if err := s.decide(ctx, c, action, scope, false, roleID); err != nil {
		return fail(err)
	}
	if !assignableAt(role, scope) {
		return fail(errkind.Errorf(errkind.Invalid, "The role definition '%s' cannot be assigned at scope '%s': the scope is not within its assignable scopes.", role.RoleName, a.Scope).
			WithCode("RoleDefinitionNotAssignableAtScope"))
	}
	if s.dir == nil {
		return fail(errkind.New(errkind.Internal, "rbac: no directory configured"))
	}
	kind, err := s.dir.PrincipalKind(ctx, tid, pid)
	if errkind.Is(err, errkind.NotFound) {
		return fail(errkind.Errorf(errkind.Invalid, "Principal %s does not exist in the directory %s. Check that you have the correct principal ID.", pid, tid).
			WithCode("PrincipalNotFound"))
	}
	if err != nil {
		return Assignment{}, err
	}
	actual := PrincipalUser
	if kind == "servicePrincipal" {
		actual = PrincipalServicePrincipal
	}
	if spec.PrincipalType != "" && spec.PrincipalType != actual {
		return fail(errkind.Errorf(errkind.Invalid, "The PrincipalId '%s' has type '%s', which is different from specified PrincipalType '%s'.", pid, actual, spec.PrincipalType).
			WithCode("UnmatchedPrincipalType"))
	}
	a.PrincipalType = actual
	now := s.now().UTC()
	a.CreatedOn, a.UpdatedOn, a.CreatedBy, a.UpdatedBy = now, now, lower(c.ObjectID), lower(c.ObjectID)

	var out Assignment
	changed := false
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		changed = false
		var old Assignment
		_, err := storage.GetJSON(tx, kAssignment+tid+"/"+id, &old)
		switch {
		case err == nil:
			if !old.sameContent(a) {
				return ErrAssignmentUpdate
			}
			out = old
			return nil
		case !isNotFound(err):
			return err
		}
		if err := checkDuplicate(tx, a); err != nil {
			return err
		}
		if role.RoleType == CustomRole {
			// The role may have been deleted since it was read.
			if _, err := tx.Get(kDefinition + tid + "/" + roleID); err != nil {
				if isNotFound(err) {
					return roleNotFound(spec.RoleDefinitionID)
				}
				return err
			}
		}
		if err := putAssignmentTx(tx, a); err != nil {
			return err
		}
		out, changed = a, true
		return s.record(ctx, tx, c.actor(tid), tid, action, target)
	})
	if err != nil {
		if errkind.Is(err, errkind.Conflict) || errkind.Is(err, errkind.Invalid) {
			s.recordRefusal(ctx, c, tid, action, target, err)
		}
		return Assignment{}, err
	}
	if changed {
		s.changed(ctx)
	}
	return out, nil
}

func roleNotFound(id string) error {
	return errkind.Errorf(errkind.Invalid, "The specified role definition with ID '%s' does not exist.", id).WithCode("RoleDefinitionDoesNotExist")
}

// findSame returns the assignment that already gives a's role to a's
// principal at a's scope, if any.
func findSame(tx storage.Tx, a Assignment) (Assignment, bool, error) {
	same, err := listJSON[Assignment](tx, kPrincipal+a.TenantID+"/"+a.PrincipalID+"/")
	if err != nil {
		return Assignment{}, false, err
	}
	for _, o := range same {
		if strings.EqualFold(o.Scope, a.Scope) && o.RoleID() == a.RoleID() {
			return o, true, nil
		}
	}
	return Assignment{}, false, nil
}

// checkDuplicate refuses a second assignment of the same role to the same
// principal at the same scope.
func checkDuplicate(tx storage.Tx, a Assignment) error {
	_, dup, err := findSame(tx, a)
	if err != nil {
		return err
	}
	if dup {
		return ErrAssignmentExists
	}
	return nil
}

func scopeIndexKey(a Assignment) string {
	return kScope + strings.ToLower(a.Scope) + "|" + a.ID
}

func putAssignmentTx(tx storage.Tx, a Assignment) error {
	if err := storage.PutJSON(tx, kAssignment+a.TenantID+"/"+a.ID, a, storage.MustNotExist); err != nil {
		return err
	}
	if err := storage.PutJSON(tx, kPrincipal+a.TenantID+"/"+a.PrincipalID+"/"+a.ID, a, storage.AnyVersion); err != nil {
		return err
	}
	if err := storage.PutJSON(tx, scopeIndexKey(a), a, storage.AnyVersion); err != nil {
		return err
	}
	_, err := tx.Put(kRole+a.TenantID+"/"+a.RoleID()+"/"+a.ID, []byte(a.Scope), storage.AnyVersion)
	return err
}

func deleteAssignmentTx(tx storage.Tx, a Assignment) error {
	for _, k := range []string{
		kAssignment + a.TenantID + "/" + a.ID,
		kPrincipal + a.TenantID + "/" + a.PrincipalID + "/" + a.ID,
		scopeIndexKey(a),
		kRole + a.TenantID + "/" + a.RoleID() + "/" + a.ID,
	} {
		if err := tx.Delete(k, storage.AnyVersion); err != nil {
			return err
		}
	}
	return nil
}

// assignableAt reports whether role d may be assigned at scope.
func assignableAt(d RoleDefinition, scope resourceid.ID) bool {
	for _, as := range d.AssignableScopes {
		if as == "/" {
			return true
		}
		if id, err := resourceid.Parse(as); err == nil && scope.Within(id) {
			return true
		}
	}
	return false
}

// Assignment returns the assignment id at scope. c needs
// Microsoft.Authorization/roleAssignments/read at the scope.
func (s *Service) Assignment(ctx context.Context, c Principal, scope resourceid.ID, id string) (Assignment, error) {
	tid, err := s.readableScope(ctx, c, ActionRoleAssignmentsRead, scope)
	if err != nil {
		return Assignment{}, err
	}
	a, err := s.loadAssignment(ctx, tid, id)
	if err != nil {
		return Assignment{}, err
	}
	if !strings.EqualFold(a.Scope, scope.String()) {
		return Assignment{}, ErrAssignmentNotFound
	}
	return a, nil
}

func (s *Service) loadAssignment(ctx context.Context, tid, id string) (Assignment, error) {
	var a Assignment
	err := s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kAssignment+tid+"/"+lower(id), &a)
		return err
	})
	if isNotFound(err) {
		return Assignment{}, ErrAssignmentNotFound
	}
	return a, err
}

// readableScope checks that scope exists in c's tenant and that c may do
// action there, and returns the tenant.
func (s *Service) readableScope(ctx context.Context, c Principal, action string, scope resourceid.ID) (string, error) {
	tid, err := s.tenantOfScope(ctx, scope)
	if errkind.Is(err, errkind.NotFound) {
		return "", denied(c, action, scope, false)
	}
	if err != nil {
		return "", err
	}
	if lower(c.TenantID) != tid {
		return "", denied(c, action, scope, false)
	}
	if err := s.decide(ctx, c, action, scope, false, ""); err != nil {
		return "", err
	}
	return tid, nil
}

// DeleteAssignment deletes the assignment id at scope and returns it (the
// ARM DELETE answers with the deleted assignment, or 204 for
// ErrAssignmentNotFound). c needs Microsoft.Authorization/roleAssignments/
// delete at the scope, with the same restriction as CreateAssignment.
func (s *Service) DeleteAssignment(ctx context.Context, c Principal, scope resourceid.ID, id string) (Assignment, error) {
	const action = ActionRoleAssignmentsDelete
	tid, err := s.tenantOfScope(ctx, scope)
	if err != nil {
		return Assignment{}, err
	}
	target := scope.String() + "/providers/Microsoft.Authorization/roleAssignments/" + lower(id)
	if lower(c.TenantID) != tid {
		err := denied(c, action, scope, false)
		s.recordRefusal(ctx, c, tid, action, target, err)
		return Assignment{}, err
	}
	a, err := s.loadAssignment(ctx, tid, id)
	if err == nil && !strings.EqualFold(a.Scope, scope.String()) {
		err = ErrAssignmentNotFound
	}
	if errors.Is(err, ErrAssignmentNotFound) {
		// Tell "not there" only to a caller who could have deleted it.
		if derr := s.decide(ctx, c, action, scope, false, ""); derr != nil {
			s.recordRefusal(ctx, c, tid, action, target, derr)
			return Assignment{}, derr
		}
		return Assignment{}, ErrAssignmentNotFound
	}
	if err != nil {
		return Assignment{}, err
	}
	if err := s.decide(ctx, c, action, scope, false, a.RoleID()); err != nil {
		s.recordRefusal(ctx, c, tid, action, target, err)
		return Assignment{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Get(kAssignment + tid + "/" + a.ID); err != nil {
			if isNotFound(err) {
				return ErrAssignmentNotFound
			}
			return err
		}
		if err := deleteAssignmentTx(tx, a); err != nil {
			return err
		}
		return s.record(ctx, tx, c.actor(tid), tid, action, a.ResourceID())
	})
	if err != nil {
		return Assignment{}, err
	}
	s.changed(ctx)
	return a, nil
}

// AssignmentFilter narrows a list of assignments, as ARM's $filter does.
type AssignmentFilter struct {
	// AtScope keeps the assignments at the scope and above it, dropping
	// those below (atScope()).
	AtScope bool
	// PrincipalID keeps one principal's assignments (principalId eq '…'
	// or assignedTo('…')).
	PrincipalID string
}

var (
	filterPrincipalRE  = regexp.MustCompile(`^(?i)principalId\s+eq\s+'([^']*)'$`)
	filterAssignedToRE = regexp.MustCompile(`^(?i)assignedTo\('([^']*)'\)$`)
	filterAtScopeRE    = regexp.MustCompile(`^(?i)atScope\(\)$`)
	filterAndRE        = regexp.MustCompile(`(?i)\s+and\s+`)
)

// ParseAssignmentFilter parses the $filter of a role assignment list:
// "atScope()", "principalId eq '{id}'", "assignedTo('{id}')", or two of
// them joined by "and". An empty filter is the zero AssignmentFilter.
func ParseAssignmentFilter(f string) (AssignmentFilter, error) {
	var out AssignmentFilter
	f = strings.TrimSpace(f)
	if f == "" {
		return out, nil
	}
	for _, term := range filterAndRE.Split(f, -1) {
		term = strings.TrimSpace(term)
		switch {
		case filterAtScopeRE.MatchString(term):
			out.AtScope = true
		case filterPrincipalRE.MatchString(term) && out.PrincipalID == "":
			out.PrincipalID = filterPrincipalRE.FindStringSubmatch(term)[1]
		case filterAssignedToRE.MatchString(term) && out.PrincipalID == "":
			out.PrincipalID = filterAssignedToRE.FindStringSubmatch(term)[1]
		default:
			return AssignmentFilter{}, errkind.Errorf(errkind.Invalid, "The filter '%s' is not supported. Supported filters are atScope(), principalId eq '{id}' and assignedTo('{id}').", f).
				WithCode("UnsupportedQuery")
		}
	}
	return out, nil
}

// Assignments lists the assignments that concern scope, as Azure's list
// for a scope does: those at the scope, above it (inherited) and below it;
// with f.AtScope, not those below. c needs Microsoft.Authorization/
// roleAssignments/read at the scope. The list is ordered by scope, then id.
func (s *Service) Assignments(ctx context.Context, c Principal, scope resourceid.ID, f AssignmentFilter) ([]Assignment, error) {
	tid, err := s.readableScope(ctx, c, ActionRoleAssignmentsRead, scope)
	if err != nil {
		return nil, err
	}
	pid := lower(f.PrincipalID)
	var out []Assignment
	err = s.store.View(ctx, func(tx storage.Tx) error {
		out = out[:0]
		keep := func(as []Assignment, want func(resourceid.ID) bool) {
			for _, a := range as {
				id, err := resourceid.Parse(a.Scope)
				if err != nil || a.TenantID != tid || !want(id) || (pid != "" && a.PrincipalID != pid) {
					continue
				}
				out = append(out, a)
			}
		}
		chain := scope.Chain()
		for _, above := range chain[:len(chain)-1] {
			as, err := listJSON[Assignment](tx, kScope+above.Key()+"|")
			if err != nil {
				return err
			}
			k := above.Key()
			keep(as, func(id resourceid.ID) bool { return id.Key() == k })
		}
		as, err := listJSON[Assignment](tx, kScope+scope.Key())
		if err != nil {
			return err
		}
		k := scope.Key()
		keep(as, func(id resourceid.ID) bool {
			if f.AtScope {
				return id.Key() == k
			}
			return id.Within(scope)
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Assignment) int {
		if c := strings.Compare(strings.ToLower(a.Scope), strings.ToLower(b.Scope)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Grant is a role assignment the server makes by itself (GrantTx).
type Grant struct {
	// ID is the assignment's GUID; empty picks a random one.
	ID       string
	TenantID string
	Scope    resourceid.ID
	// RoleID is a role GUID or a role definition id; built-in or a custom
	// role of TenantID.
	RoleID        string
	PrincipalID   string
	PrincipalType PrincipalType
}

// GrantTx assigns a role inside the caller's transaction, without the
// checks CreateAssignment makes of the caller, the scope and the principal:
// the composition root uses it to make a subscription's creator its Owner
// in the transaction that creates the subscription (which the scope
// resolver cannot see yet). It is idempotent: if the principal already has
// the role at the scope, that assignment is returned. The cache is
// invalidated at once, but a check racing the commit may cache the old
// state; call Invalidate after the commit to close that window.
func (s *Service) GrantTx(ctx context.Context, tx storage.Tx, by audit.Actor, g Grant) (Assignment, error) {
	tid := lower(g.TenantID)
	if tid == "" || strings.Contains(tid, "/") || g.Scope.SubscriptionID == "" {
		return Assignment{}, errkind.New(errkind.Invalid, "rbac: a grant needs a tenant and a scope")
	}
	roleID, _, err := ParseDefinitionID(g.RoleID)
	if err != nil {
		return Assignment{}, err
	}
	pid := lower(g.PrincipalID)
	if !isGUID(pid) {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "rbac: the principal id %q is not a GUID", g.PrincipalID)
	}
	pt, ok := ParsePrincipalType(string(g.PrincipalType))
	if !ok {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "rbac: the principal type %q is not valid", g.PrincipalType)
	}
	if _, ok := s.builtin[roleID]; !ok {
		var d RoleDefinition
		if _, err := storage.GetJSON(tx, kDefinition+tid+"/"+roleID, &d); err != nil {
			if isNotFound(err) {
				return Assignment{}, roleNotFound(g.RoleID)
			}
			return Assignment{}, err
		}
		if !assignableAt(d, g.Scope) {
			return Assignment{}, errkind.Errorf(errkind.Invalid, "rbac: role %s is not assignable at %s", roleID, g.Scope)
		}
	}
	id := lower(g.ID)
	if id == "" {
		if id, err = s.newID(); err != nil {
			return Assignment{}, err
		}
	}
	if !isGUID(id) {
		return Assignment{}, errkind.Errorf(errkind.Invalid, "rbac: the assignment id %q is not a GUID", g.ID)
	}
	now := s.now().UTC()
	a := Assignment{ID: id, Scope: g.Scope.String(), RoleDefinitionID: DefinitionID(g.Scope.SubscriptionID, roleID),
		PrincipalID: pid, PrincipalType: pt, TenantID: tid, CreatedOn: now, UpdatedOn: now, CreatedBy: by.ID, UpdatedBy: by.ID}
	if o, dup, err := findSame(tx, a); err != nil || dup {
		return o, err
	}
	if err := putAssignmentTx(tx, a); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return Assignment{}, ErrAssignmentUpdate
		}
		return Assignment{}, err
	}
	if err := s.record(ctx, tx, by, tid, ActionRoleAssignmentsWrite, a.ResourceID()); err != nil {
		return Assignment{}, err
	}
	// The caller commits and calls Invalidate, without a context to
	// publish with, so the other nodes are told now. A node that reads
	// the grants between this notification and the commit (milliseconds)
	// keeps the old ones for up to CacheTTL: acceptable, as GrantTx only
	// adds grants (a new subscription's owner).
	s.changed(ctx)
	return a, nil
}

// RemoveScopeTx deletes, inside the caller's transaction, every role
// assignment at or below scope: for a purged vault, a deleted resource
// group or a deleted subscription (Azure drops them with the resource).
// Each removal is audited as done by the system. Call Invalidate after the
// commit, as for GrantTx.
func (s *Service) RemoveScopeTx(ctx context.Context, tx storage.Tx, scope resourceid.ID) error {
	if scope.SubscriptionID == "" {
		return errkind.New(errkind.Invalid, "rbac: removing assignments needs a scope")
	}
	as, err := listJSON[Assignment](tx, kScope+scope.Key())
	if err != nil {
		return err
	}
	for _, a := range as {
		id, err := resourceid.Parse(a.Scope)
		if err != nil || !id.Within(scope) {
			continue
		}
		if err := deleteAssignmentTx(tx, a); err != nil {
			return err
		}
		if s.audit != nil {
			if err := s.audit.RecordTx(ctx, tx, audit.Event{TenantID: a.TenantID, Actor: systemActor,
				Action: ActionRoleAssignmentsDelete, Target: a.ResourceID(), Result: audit.Success,
				Reason: "the scope " + scope.String() + " was deleted"}); err != nil {
				return err
			}
		}
	}
	// As in GrantTx, the other nodes are told before the commit; the
	// grants removed are on a resource deleted in the same transaction,
	// which none of them can reach any more.
	s.changed(ctx)
	return nil
}
