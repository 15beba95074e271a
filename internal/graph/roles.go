package graph

import (
	"net/http"
	"strings"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
)

type roleDefinitionJSON struct {
	Context        string   `json:"@odata.context,omitempty"`
	ID             string   `json:"id"`
	DisplayName    string   `json:"displayName"`
	Description    string   `json:"description"`
	IsBuiltIn      bool     `json:"isBuiltIn"`
	IsEnabled      bool     `json:"isEnabled"`
	TemplateID     string   `json:"templateId"`
	ResourceScopes []string `json:"resourceScopes"`
}

// roleDefinition shows a built-in role; its id is Entra ID's template id,
// which is also what Entra ID uses as the id of built-in definitions.
func roleDefinition(d directory.RoleDefinition) roleDefinitionJSON {
	return roleDefinitionJSON{ID: d.ID, DisplayName: d.DisplayName, Description: d.Description, IsBuiltIn: true,
		IsEnabled: true, TemplateID: d.ID, ResourceScopes: []string{"/"}}
}

var roleDefinitions = listing[directory.RoleDefinition, roleDefinitionJSON]{
	set: "roleManagement/directory/roleDefinitions", entity: "UnifiedRoleDefinition",
	props: []prop[directory.RoleDefinition]{
		{name: "id", values: one(func(d directory.RoleDefinition) string { return d.ID })},
		{name: "displayName", values: one(func(d directory.RoleDefinition) string { return d.DisplayName })},
		{name: "templateId", values: one(func(d directory.RoleDefinition) string { return d.ID })},
	},
	id: func(d directory.RoleDefinition) string { return d.ID },
	render: func(ds []directory.RoleDefinition) ([]roleDefinitionJSON, error) {
		out := make([]roleDefinitionJSON, len(ds))
		for i, d := range ds {
			out[i] = roleDefinition(d)
		}
		return out, nil
	},
}

// The role catalogue is public knowledge, the same in every tenant; a
// verified token is all it takes to read it.
func (a *API) listRoleDefinitions(w http.ResponseWriter, r *http.Request, _ identity.Principal) error {
	return roleDefinitions.write(a, w, r, append([]directory.RoleDefinition{}, directory.RoleDefinitions...))
}

func (a *API) getRoleDefinition(w http.ResponseWriter, r *http.Request, _ identity.Principal) error {
	id := r.PathValue("id")
	// Only ids here: LookupRole also takes display names, which Graph's
	// key does not.
	d, ok := directory.LookupRole(id)
	if !ok || !strings.EqualFold(d.ID, id) {
		return errNotFound(id)
	}
	out := roleDefinition(d)
	out.Context = a.context(r, "roleManagement/directory/roleDefinitions/$entity")
	return writeJSON(w, http.StatusOK, out)
}

type roleAssignmentJSON struct {
	Context          string `json:"@odata.context,omitempty"`
	ID               string `json:"id"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

func roleAssignment(ra directory.RoleAssignment) roleAssignmentJSON {
	return roleAssignmentJSON{ID: ra.ID, PrincipalID: ra.PrincipalID, RoleDefinitionID: ra.RoleDefinitionID,
		DirectoryScopeID: ra.DirectoryScopeID}
}

var roleAssignments = listing[directory.RoleAssignment, roleAssignmentJSON]{
	set: "roleManagement/directory/roleAssignments", entity: "UnifiedRoleAssignment",
	props: []prop[directory.RoleAssignment]{
		{name: "principalId", values: one(func(ra directory.RoleAssignment) string { return ra.PrincipalID })},
		{name: "roleDefinitionId", values: one(func(ra directory.RoleAssignment) string { return ra.RoleDefinitionID })},
		{name: "id", values: one(func(ra directory.RoleAssignment) string { return ra.ID })},
		{name: "directoryScopeId", values: one(func(ra directory.RoleAssignment) string { return ra.DirectoryScopeID })},
	},
	id: func(ra directory.RoleAssignment) string { return ra.ID },
	render: func(ras []directory.RoleAssignment) ([]roleAssignmentJSON, error) {
		out := make([]roleAssignmentJSON, len(ras))
		for i, ra := range ras {
			out[i] = roleAssignment(ra)
		}
		return out, nil
	},
}

func (a *API) listRoleAssignments(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	// All of the tenant's assignments are fetched and the $filter applied
	// here, so that principalId and roleDefinitionId filter alike (and
	// case-insensitively); a tenant has few assignments.
	ras, err := a.dir.RoleAssignments(r.Context(), p.Caller(), p.TenantID, "")
	if err != nil {
		return err
	}
	return roleAssignments.write(a, w, r, ras)
}

func (a *API) writeRoleAssignment(w http.ResponseWriter, r *http.Request, status int, ra directory.RoleAssignment) error {
	out := roleAssignment(ra)
	out.Context = a.context(r, "roleManagement/directory/roleAssignments/$entity")
	return writeJSON(w, status, out)
}

func (a *API) getRoleAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	// The directory's ids are GUIDs; anything else names nothing and must
	// not reach a storage key.
	if !directory.IsGUID(id) {
		return errNotFound(id)
	}
	ra, err := a.dir.RoleAssignment(r.Context(), p.Caller(), p.TenantID, strings.ToLower(id))
	if err != nil {
		return asNotFound(err, id)
	}
	return a.writeRoleAssignment(w, r, http.StatusOK, ra)
}

type newRoleAssignment struct {
	ODataType        odataType `json:"@odata.type"`
	PrincipalID      string    `json:"principalId"`
	RoleDefinitionID string    `json:"roleDefinitionId"`
	DirectoryScopeID *string   `json:"directoryScopeId"`
}

func (a *API) createRoleAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in newRoleAssignment
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.ODataType.check("unifiedRoleAssignment"); err != nil {
		return err
	}
	switch {
	case in.PrincipalID == "":
		return required("principalId")
	case in.RoleDefinitionID == "":
		return required("roleDefinitionId")
	case in.DirectoryScopeID == nil:
		// Graph requires a scope (or an appScopeId, which this subset
		// lacks); "/" is the whole tenant.
		return required("directoryScopeId")
	case *in.DirectoryScopeID != "/":
		return errkind.Errorf(errkind.Invalid, "the directoryScopeId %q is not supported; only \"/\" (the whole tenant) is", *in.DirectoryScopeID)
	case !directory.IsGUID(in.PrincipalID):
		return errkind.Errorf(errkind.Invalid, "the principalId %q is not a GUID; use the object id of a user or service principal", in.PrincipalID)
	}
	// Display names are the directory's convenience for its own callers;
	// Graph's roleDefinitionId is an id.
	if d, ok := directory.LookupRole(in.RoleDefinitionID); ok && !strings.EqualFold(d.ID, in.RoleDefinitionID) {
		return errkind.Errorf(errkind.Invalid, "the roleDefinitionId %q is not an id; use one of the ids of GET /v1.0/roleManagement/directory/roleDefinitions", in.RoleDefinitionID)
	}
	ra, err := a.dir.AssignRole(r.Context(), p.Caller(), p.TenantID, in.RoleDefinitionID, strings.ToLower(in.PrincipalID))
	if err != nil {
		return err
	}
	return a.writeRoleAssignment(w, r, http.StatusCreated, ra)
}

func (a *API) deleteRoleAssignment(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	if !directory.IsGUID(id) {
		return errNotFound(id)
	}
	if err := a.dir.RemoveRoleAssignment(r.Context(), p.Caller(), p.TenantID, strings.ToLower(id)); err != nil {
		return asNotFound(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
