package arm

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/rbac"
	"github.com/customerkey/customerkey/internal/resourceid"
)

// Roles is what this surface needs of package rbac besides Check.
type Roles interface {
	CreateAssignment(ctx context.Context, c rbac.Principal, spec rbac.AssignmentSpec) (rbac.Assignment, error)
	Assignment(ctx context.Context, c rbac.Principal, scope resourceid.ID, id string) (rbac.Assignment, error)
	Assignments(ctx context.Context, c rbac.Principal, scope resourceid.ID, f rbac.AssignmentFilter) ([]rbac.Assignment, error)
	DeleteAssignment(ctx context.Context, c rbac.Principal, scope resourceid.ID, id string) (rbac.Assignment, error)
	PutDefinition(ctx context.Context, c rbac.Principal, scope resourceid.ID, d rbac.RoleDefinition) (rbac.RoleDefinition, error)
	Definition(ctx context.Context, c rbac.Principal, scope resourceid.ID, id string) (rbac.RoleDefinition, error)
	Definitions(ctx context.Context, c rbac.Principal, scope resourceid.ID, f rbac.DefinitionFilter) ([]rbac.RoleDefinition, error)
	DeleteDefinition(ctx context.Context, c rbac.Principal, scope resourceid.ID, id string) (rbac.RoleDefinition, error)
}

var _ Roles = (*rbac.Service)(nil)

// authorizationVersions: armauthorization v2.2.0 sends 2022-04-01.
var authorizationVersions = []string{"2022-04-01", "2022-01-01-preview", "2020-10-01-preview", "2020-04-01-preview", "2018-01-01-preview", "2015-07-01"}

func (a *API) authorizationRoutes() []route {
	const ra, rd = "/providers/Microsoft.Authorization/roleAssignments", "/providers/Microsoft.Authorization/roleDefinitions"
	scoped := func(method, pattern string, h armHandler) route {
		rt := newRoute(method, pattern, authorizationVersions, h)
		rt.scoped = true
		return rt
	}
	return []route{
		scoped("GET", ra, a.listAssignments),
		scoped("PUT", ra+"/{id}", a.putAssignment),
		scoped("GET", ra+"/{id}", a.getAssignment),
		scoped("DELETE", ra+"/{id}", a.deleteAssignment),
		scoped("GET", rd, a.listDefinitions),
		scoped("PUT", rd+"/{id}", a.putDefinition),
		scoped("GET", rd+"/{id}", a.getDefinition),
		scoped("DELETE", rd+"/{id}", a.deleteDefinition),
	}
}

// parseScope parses the captured scope and checks the subscription is the
// caller's.
func (a *API) parseScope(ctx context.Context, p identity.Principal, m match) (resourceid.ID, error) {
	id, err := resourceid.Parse(m["scope"])
	if err != nil {
		return id, errkind.Errorf(errkind.Invalid, "The scope '%s' is not valid: use /subscriptions/{id}, a resource group or a resource under it.", m["scope"]).WithCode("InvalidScope")
	}
	return id, a.subscriptionFor(ctx, p, id.SubscriptionID)
}

type assignmentOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleDefinitionID string  `json:"roleDefinitionId"`
		PrincipalID      string  `json:"principalId"`
		PrincipalType    string  `json:"principalType"`
		Scope            string  `json:"scope"`
		Description      string  `json:"description,omitempty"`
		Condition        *string `json:"condition"`
		CreatedOn        string  `json:"createdOn"`
		UpdatedOn        string  `json:"updatedOn"`
		CreatedBy        string  `json:"createdBy,omitempty"`
		UpdatedBy        string  `json:"updatedBy,omitempty"`
	} `json:"properties"`
}

func assignmentJSON(as rbac.Assignment) assignmentOut {
	out := assignmentOut{ID: as.ResourceID(), Name: as.ID, Type: "Microsoft.Authorization/roleAssignments"}
	pp := &out.Properties
	pp.RoleDefinitionID, pp.PrincipalID, pp.PrincipalType, pp.Scope = as.RoleDefinitionID, as.PrincipalID, string(as.PrincipalType), as.Scope
	pp.Description, pp.CreatedBy, pp.UpdatedBy = as.Description, as.CreatedBy, as.UpdatedBy
	pp.CreatedOn, pp.UpdatedOn = armTime(as.CreatedOn), armTime(as.UpdatedOn)
	return out
}

func (a *API) putAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	var in struct {
		Properties struct {
			RoleDefinitionID string `json:"roleDefinitionId"`
			PrincipalID      string `json:"principalId"`
			PrincipalType    string `json:"principalType"`
			Description      string `json:"description"`
			Condition        string `json:"condition"`
			ConditionVersion string `json:"conditionVersion"`
		} `json:"properties"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	pp := in.Properties
	spec := rbac.AssignmentSpec{ID: m["id"], Scope: scope, RoleDefinitionID: pp.RoleDefinitionID, PrincipalID: pp.PrincipalID,
		Description: pp.Description, Condition: pp.Condition, ConditionVersion: pp.ConditionVersion}
	if pp.PrincipalType != "" {
		t, ok := rbac.ParsePrincipalType(pp.PrincipalType)
		if !ok {
			return errkind.Errorf(errkind.Invalid, "The principal type '%s' is not valid; use User or ServicePrincipal.", pp.PrincipalType).WithCode("InvalidPrincipalType")
		}
		spec.PrincipalType = t
	}
	as, err := a.o.Roles.CreateAssignment(r.Context(), rbacPrincipal(p), spec)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusCreated, assignmentJSON(as))
}

func (a *API) getAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	as, err := a.o.Roles.Assignment(r.Context(), rbacPrincipal(p), scope, m["id"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, assignmentJSON(as))
}

func (a *API) deleteAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	as, err := a.o.Roles.DeleteAssignment(r.Context(), rbacPrincipal(p), scope, m["id"])
	if errkind.Is(err, errkind.NotFound) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, assignmentJSON(as))
}

func (a *API) listAssignments(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	f, err := rbac.ParseAssignmentFilter(filterParam(r))
	if err != nil {
		return err
	}
	as, err := a.o.Roles.Assignments(r.Context(), rbacPrincipal(p), scope, f)
	if err != nil {
		return err
	}
	out := make([]assignmentOut, 0, len(as))
	for _, x := range as {
		out = append(out, assignmentJSON(x))
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

type permissionJSON struct {
	Actions        []string `json:"actions"`
	NotActions     []string `json:"notActions"`
	DataActions    []string `json:"dataActions"`
	NotDataActions []string `json:"notDataActions"`
}

type definitionOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		RoleName         string           `json:"roleName"`
		Description      string           `json:"description"`
		Type             string           `json:"type"`
		Permissions      []permissionJSON `json:"permissions"`
		AssignableScopes []string         `json:"assignableScopes"`
		CreatedOn        string           `json:"createdOn,omitempty"`
		UpdatedOn        string           `json:"updatedOn,omitempty"`
		CreatedBy        string           `json:"createdBy,omitempty"`
		UpdatedBy        string           `json:"updatedBy,omitempty"`
	} `json:"properties"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// definitionJSON shows d as seen from subscription sub: Azure returns
// every definition, built-in ones too, under the subscription it was read
// through.
func definitionJSON(d rbac.RoleDefinition, sub string) definitionOut {
	out := definitionOut{ID: rbac.DefinitionID(sub, d.ID), Name: d.ID, Type: "Microsoft.Authorization/roleDefinitions"}
	pp := &out.Properties
	pp.RoleName, pp.Description, pp.Type, pp.AssignableScopes = d.RoleName, d.Description, d.RoleType, nonNil(d.AssignableScopes)
	pp.Permissions = []permissionJSON{}
	for _, x := range d.Permissions {
		pp.Permissions = append(pp.Permissions, permissionJSON{nonNil(x.Actions), nonNil(x.NotActions), nonNil(x.DataActions), nonNil(x.NotDataActions)})
	}
	if !d.CreatedOn.IsZero() {
		pp.CreatedOn, pp.UpdatedOn = armTime(d.CreatedOn), armTime(d.UpdatedOn)
	}
	pp.CreatedBy, pp.UpdatedBy = d.CreatedBy, d.UpdatedBy
	return out
}

func (a *API) putDefinition(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	var in struct {
		Properties struct {
			RoleName         string           `json:"roleName"`
			Description      string           `json:"description"`
			Type             string           `json:"type"`
			Permissions      []permissionJSON `json:"permissions"`
			AssignableScopes []string         `json:"assignableScopes"`
		} `json:"properties"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	pp := in.Properties
	if pp.Type != "" && !strings.EqualFold(pp.Type, "CustomRole") {
		return errkind.New(errkind.Invalid, "Only custom roles (type CustomRole) can be created or updated.").WithCode("InvalidRoleDefinitionType")
	}
	d := rbac.RoleDefinition{ID: m["id"], RoleName: pp.RoleName, Description: pp.Description, RoleType: "CustomRole", AssignableScopes: pp.AssignableScopes}
	for _, x := range pp.Permissions {
		d.Permissions = append(d.Permissions, rbac.Permission{Actions: x.Actions, NotActions: x.NotActions, DataActions: x.DataActions, NotDataActions: x.NotDataActions})
	}
	d, err = a.o.Roles.PutDefinition(r.Context(), rbacPrincipal(p), scope, d)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusCreated, definitionJSON(d, scope.SubscriptionID))
}

func (a *API) getDefinition(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	d, err := a.o.Roles.Definition(r.Context(), rbacPrincipal(p), scope, m["id"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, definitionJSON(d, scope.SubscriptionID))
}

func (a *API) deleteDefinition(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	d, err := a.o.Roles.DeleteDefinition(r.Context(), rbacPrincipal(p), scope, m["id"])
	if errkind.Is(err, errkind.NotFound) {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, definitionJSON(d, scope.SubscriptionID))
}

func (a *API) listDefinitions(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope, err := a.parseScope(r.Context(), p, m)
	if err != nil {
		return err
	}
	f, err := rbac.ParseDefinitionFilter(filterParam(r))
	if err != nil {
		return err
	}
	ds, err := a.o.Roles.Definitions(r.Context(), rbacPrincipal(p), scope, f)
	if err != nil {
		return err
	}
	out := make([]definitionOut, 0, len(ds))
	for _, d := range ds {
		out = append(out, definitionJSON(d, scope.SubscriptionID))
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

// filterParam returns $filter decoded. armauthorization appends the filter
// to the query without encoding it, and azcore then escapes what the
// caller wrote, so a filter arrives escaped once more than the query
// syntax needs. Filters here hold GUIDs and role names, never a literal
// "%" or "+", so unescaping until neither is left restores what was meant.
func filterParam(r *http.Request) string {
	v := r.URL.Query().Get("$filter")
	for range 2 {
		if !strings.ContainsAny(v, "%+") {
			break
		}
		u, err := url.QueryUnescape(v)
		if err != nil {
			break
		}
		v = u
	}
	return v
}
