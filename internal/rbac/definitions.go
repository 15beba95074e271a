package rbac

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/storage"
)

// Limits on custom roles.
const (
	maxRoleName    = 256
	maxPermissions = 8
	maxPatterns    = 512 // per list
	maxAssignable  = 64
)

// definitionIn returns the built-in role id, or the custom role id of
// tenant tid, or ErrDefinitionNotFound.
func (s *Service) definitionIn(ctx context.Context, tid, id string) (RoleDefinition, error) {
	id = lower(id)
	if d, ok := BuiltIn(id); ok {
		return d, nil
	}
	if !isGUID(id) {
		return RoleDefinition{}, ErrDefinitionNotFound
	}
	var d RoleDefinition
	err := s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kDefinition+tid+"/"+id, &d)
		return err
	})
	if isNotFound(err) {
		return RoleDefinition{}, ErrDefinitionNotFound
	}
	if err != nil {
		return RoleDefinition{}, err
	}
	return d.clone(), nil
}

// checkCustom validates d as a custom role of subscription sub and returns
// it in canonical form (trimmed name, canonical and unique scopes, no nil
// lists).
func checkCustom(d RoleDefinition, sub resourceid.ID) (RoleDefinition, error) {
	out := d.clone()
	out.ID = lower(d.ID)
	out.RoleType = CustomRole
	out.RoleName = strings.TrimSpace(d.RoleName)
	if out.RoleName == "" || len(out.RoleName) > maxRoleName || strings.ContainsFunc(out.RoleName, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "the role name must have 1 to %d characters and no control characters", maxRoleName).
			WithCode("InvalidRoleName")
	}
	if len(d.Description) > maxDescription {
		return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "the description must have at most %d characters", maxDescription)
	}
	if len(d.Permissions) == 0 || len(d.Permissions) > maxPermissions {
		return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "a role definition needs 1 to %d permission blocks", maxPermissions).
			WithCode("InvalidRoleDefinition")
	}
	total := 0
	for _, p := range out.Permissions {
		if p.Condition != "" || p.ConditionVersion != "" {
			return RoleDefinition{}, errkind.New(errkind.Invalid, "Conditions in custom role definitions are not supported by this service.").
				WithCode("RoleDefinitionConditionNotSupported")
		}
		for _, list := range [][]string{p.Actions, p.NotActions, p.DataActions, p.NotDataActions} {
			if len(list) > maxPatterns {
				return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "a permission list may hold at most %d entries", maxPatterns)
			}
			for _, a := range list {
				if err := ValidateAction(a); err != nil {
					return RoleDefinition{}, err
				}
			}
		}
		total += len(p.Actions) + len(p.DataActions)
	}
	if total == 0 {
		return RoleDefinition{}, errkind.New(errkind.Invalid, "a role definition must allow at least one action or data action").
			WithCode("InvalidRoleDefinition")
	}
	if len(d.AssignableScopes) == 0 || len(d.AssignableScopes) > maxAssignable {
		return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "a custom role needs 1 to %d assignable scopes", maxAssignable).
			WithCode("InvalidAssignableScope")
	}
	out.AssignableScopes = out.AssignableScopes[:0]
	seen := map[string]bool{}
	for _, as := range d.AssignableScopes {
		id, err := resourceid.Parse(strings.TrimSpace(as))
		if err != nil || !id.Within(sub) {
			return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "The assignable scope '%s' is not valid: custom roles defined in subscription '%s' may only be assignable within it.", as, sub.SubscriptionID).
				WithCode("InvalidAssignableScope")
		}
		if !seen[id.Key()] {
			seen[id.Key()] = true
			out.AssignableScopes = append(out.AssignableScopes, id.String())
		}
	}
	return out, nil
}

// PutDefinition creates or updates custom role d, defined at scope (its
// subscription is the role's home; every assignable scope must be within
// it). Role names are unique per tenant, built-in names included. c needs
// Microsoft.Authorization/roleDefinitions/write at scope and at every
// assignable scope. An update may not drop an assignable scope that an
// assignment of the role depends on.
func (s *Service) PutDefinition(ctx context.Context, c Principal, scope resourceid.ID, d RoleDefinition) (RoleDefinition, error) {
	const action = ActionRoleDefinitionsWrite
	id := lower(d.ID)
	if !isGUID(id) {
		return RoleDefinition{}, errkind.Errorf(errkind.Invalid, "The role definition ID '%s' is not valid. The role definition ID must be a GUID.", d.ID).
			WithCode("InvalidRoleDefinitionId")
	}
	if _, ok := BuiltIn(id); ok {
		return RoleDefinition{}, ErrBuiltInRole
	}
	if scope.SubscriptionID == "" {
		return RoleDefinition{}, errkind.New(errkind.Invalid, "a custom role is defined at a subscription scope").WithCode("InvalidScope")
	}
	sub := resourceid.Subscription(scope.SubscriptionID)
	tid, err := s.tenantOfScope(ctx, sub)
	if err != nil {
		return RoleDefinition{}, err
	}
	target := DefinitionID(scope.SubscriptionID, id)
	fail := func(err error) (RoleDefinition, error) {
		s.recordRefusal(ctx, c, tid, action, target, err)
		return RoleDefinition{}, err
	}
	if lower(c.TenantID) != tid {
		return fail(denied(c, action, scope, false))
	}
	def, err := checkCustom(d, sub)
	if err != nil {
		return fail(err)
	}
	if _, ok := BuiltInByName(def.RoleName); ok {
		return fail(ErrDefinitionName)
	}
	if err := s.decide(ctx, c, action, scope, false, ""); err != nil {
		return fail(err)
	}
	for _, as := range def.AssignableScopes {
		id, _ := resourceid.Parse(as)
		if err := s.decide(ctx, c, action, id, false, ""); err != nil {
			return fail(err)
		}
	}
	now := s.now().UTC()
	def.TenantID = tid
	def.CreatedOn, def.UpdatedOn, def.CreatedBy, def.UpdatedBy = now, now, lower(c.ObjectID), lower(c.ObjectID)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		var old RoleDefinition
		ver, err := storage.GetJSON(tx, kDefinition+tid+"/"+id, &old)
		switch {
		case err == nil:
			def.CreatedOn, def.CreatedBy = old.CreatedOn, old.CreatedBy
			if err := stillAssignable(tx, tid, id, def); err != nil {
				return err
			}
			if !strings.EqualFold(old.RoleName, def.RoleName) {
				if err := tx.Delete(kDefName+tid+"/"+strings.ToLower(old.RoleName), storage.AnyVersion); err != nil {
					return err
				}
			}
		case isNotFound(err):
			ver = storage.MustNotExist
		default:
			return err
		}
		nameKey := kDefName + tid + "/" + strings.ToLower(def.RoleName)
		if e, err := tx.Get(nameKey); err == nil && string(e.Value) != id {
			return ErrDefinitionName
		} else if err != nil && !isNotFound(err) {
			return err
		}
		if _, err := tx.Put(nameKey, []byte(id), storage.AnyVersion); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, kDefinition+tid+"/"+id, def, ver); err != nil {
			return err
		}
		return s.record(ctx, tx, c.actor(tid), tid, action, target)
	})
	if err != nil {
		if errkind.Is(err, errkind.Conflict) {
			s.recordRefusal(ctx, c, tid, action, target, err)
		}
		return RoleDefinition{}, err
	}
	s.changed(ctx)
	return def.clone(), nil
}

// stillAssignable refuses a new version of role id that would leave one of
// its assignments outside its assignable scopes.
func stillAssignable(tx storage.Tx, tid, id string, def RoleDefinition) error {
	entries, err := tx.List(kRole+tid+"/"+id+"/", "", 0)
	if err != nil {
		return err
	}
	for _, e := range entries {
		scope, err := resourceid.Parse(string(e.Value))
		if err == nil && !assignableAt(def, scope) {
			return errkind.Errorf(errkind.Conflict, "The role is assigned at scope '%s', which the new assignable scopes do not include; delete that assignment first.", scope).
				WithCode("RoleAssignmentOutsideAssignableScopes")
		}
	}
	return nil
}

// Definition returns role definition id (built-in, or a custom role of the
// scope's tenant). c needs Microsoft.Authorization/roleDefinitions/read at
// scope.
func (s *Service) Definition(ctx context.Context, c Principal, scope resourceid.ID, id string) (RoleDefinition, error) {
	tid, err := s.readableScope(ctx, c, ActionRoleDefinitionsRead, scope)
	if err != nil {
		return RoleDefinition{}, err
	}
	return s.definitionIn(ctx, tid, id)
}

// DefinitionFilter narrows a list of role definitions.
type DefinitionFilter struct {
	// RoleName keeps the role of that name (any case).
	RoleName string
	// Type keeps BuiltInRole or CustomRole definitions.
	Type string
}

var (
	filterRoleNameRE = regexp.MustCompile(`^(?i)roleName\s+eq\s+'([^']*)'$`)
	filterTypeRE     = regexp.MustCompile(`^(?i)type\s+eq\s+'(BuiltInRole|CustomRole)'$`)
)

// ParseDefinitionFilter parses the $filter of a role definition list:
// "roleName eq '{name}'", "type eq 'BuiltInRole'|'CustomRole'", or both
// joined by "and".
func ParseDefinitionFilter(f string) (DefinitionFilter, error) {
	var out DefinitionFilter
	f = strings.TrimSpace(f)
	if f == "" {
		return out, nil
	}
	for _, term := range filterAndRE.Split(f, -1) {
		term = strings.TrimSpace(term)
		switch {
		case filterRoleNameRE.MatchString(term) && out.RoleName == "":
			out.RoleName = filterRoleNameRE.FindStringSubmatch(term)[1]
		case filterTypeRE.MatchString(term) && out.Type == "":
			t := filterTypeRE.FindStringSubmatch(term)[1]
			out.Type = BuiltInRole
			if strings.EqualFold(t, CustomRole) {
				out.Type = CustomRole
			}
		default:
			return DefinitionFilter{}, errkind.Errorf(errkind.Invalid, "The filter '%s' is not supported. Supported filters are roleName eq '{name}' and type eq 'BuiltInRole' or 'CustomRole'.", f).
				WithCode("UnsupportedQuery")
		}
	}
	return out, nil
}

// Definitions lists the built-in roles and the custom roles of the scope's
// tenant that can be assigned at, above or below scope. c needs
// Microsoft.Authorization/roleDefinitions/read at scope.
func (s *Service) Definitions(ctx context.Context, c Principal, scope resourceid.ID, f DefinitionFilter) ([]RoleDefinition, error) {
	tid, err := s.readableScope(ctx, c, ActionRoleDefinitionsRead, scope)
	if err != nil {
		return nil, err
	}
	keep := func(d RoleDefinition) bool {
		return (f.RoleName == "" || strings.EqualFold(strings.TrimSpace(f.RoleName), d.RoleName)) &&
			(f.Type == "" || strings.EqualFold(f.Type, d.RoleType))
	}
	var out []RoleDefinition
	for _, d := range builtIns {
		if keep(d) {
			out = append(out, d.clone())
		}
	}
	var custom []RoleDefinition
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		custom, err = listJSON[RoleDefinition](tx, kDefinition+tid+"/")
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(custom, func(a, b RoleDefinition) int {
		return strings.Compare(strings.ToLower(a.RoleName), strings.ToLower(b.RoleName))
	})
	for _, d := range custom {
		if keep(d) && related(d, scope) {
			out = append(out, d.clone())
		}
	}
	return out, nil
}

// related reports whether one of d's assignable scopes contains scope or
// lies below it.
func related(d RoleDefinition, scope resourceid.ID) bool {
	for _, as := range d.AssignableScopes {
		id, err := resourceid.Parse(as)
		if err == nil && (scope.Within(id) || id.Within(scope)) {
			return true
		}
	}
	return false
}

// DeleteDefinition deletes custom role id and returns it (the ARM DELETE
// answers with the deleted definition, or 204 for ErrDefinitionNotFound).
// A role still assigned anywhere cannot be deleted (ErrDefinitionInUse).
// c needs Microsoft.Authorization/roleDefinitions/delete at scope and at
// the role's assignable scopes.
func (s *Service) DeleteDefinition(ctx context.Context, c Principal, scope resourceid.ID, id string) (RoleDefinition, error) {
	const action = ActionRoleDefinitionsDelete
	id = lower(id)
	if _, ok := BuiltIn(id); ok {
		return RoleDefinition{}, ErrBuiltInRole
	}
	if scope.SubscriptionID == "" {
		return RoleDefinition{}, errkind.New(errkind.Invalid, "a custom role is deleted at a subscription scope").WithCode("InvalidScope")
	}
	tid, err := s.tenantOfScope(ctx, resourceid.Subscription(scope.SubscriptionID))
	if err != nil {
		return RoleDefinition{}, err
	}
	target := DefinitionID(scope.SubscriptionID, id)
	fail := func(err error) (RoleDefinition, error) {
		s.recordRefusal(ctx, c, tid, action, target, err)
		return RoleDefinition{}, err
	}
	if lower(c.TenantID) != tid {
		return fail(denied(c, action, scope, false))
	}
	if err := s.decide(ctx, c, action, scope, false, ""); err != nil {
		return fail(err)
	}
	d, err := s.definitionIn(ctx, tid, id)
	if err != nil {
		return RoleDefinition{}, err
	}
	for _, as := range d.AssignableScopes {
		sid, _ := resourceid.Parse(as)
		if err := s.decide(ctx, c, action, sid, false, ""); err != nil {
			return fail(err)
		}
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		used, err := tx.List(kRole+tid+"/"+id+"/", "", 1)
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return ErrDefinitionInUse
		}
		var cur RoleDefinition
		ver, err := storage.GetJSON(tx, kDefinition+tid+"/"+id, &cur)
		if isNotFound(err) {
			return ErrDefinitionNotFound
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(kDefinition+tid+"/"+id, ver); err != nil {
			return err
		}
		if err := tx.Delete(kDefName+tid+"/"+strings.ToLower(cur.RoleName), storage.AnyVersion); err != nil {
			return err
		}
		return s.record(ctx, tx, c.actor(tid), tid, action, target)
	})
	if err != nil {
		if errkind.Is(err, errkind.Conflict) {
			s.recordRefusal(ctx, c, tid, action, target, err)
		}
		return RoleDefinition{}, err
	}
	s.changed(ctx)
	return d, nil
}
