package graph_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/directory"
)

type roleDefinitionJSON struct {
	Context     string `json:"@odata.context"`
	ID          string
	DisplayName string
	Description string
	IsBuiltIn   bool
	IsEnabled   bool
	TemplateID  string
}

func TestRoleDefinitions(t *testing.T) {
	f := newFixture(t)
	c := want[collection[roleDefinitionJSON]](t, f.call("GET", "/v1.0/roleManagement/directory/roleDefinitions", tokUser, nil), http.StatusOK)
	if c.Context != f.contextURL("roleManagement/directory/roleDefinitions") || len(c.Value) != len(directory.RoleDefinitions) {
		t.Fatalf("GET roleDefinitions = %+v, want the %d built-in roles", c, len(directory.RoleDefinitions))
	}
	for _, d := range c.Value {
		r, ok := directory.LookupRole(d.ID)
		if !ok || d.DisplayName != r.DisplayName || d.Description != r.Description || !d.IsBuiltIn || !d.IsEnabled || d.TemplateID != r.ID {
			t.Errorf("role definition %+v does not match the built-in %+v", d, r)
		}
	}
	ga := directory.GlobalAdministrator
	one := want[roleDefinitionJSON](t, f.call("GET", "/v1.0/roleManagement/directory/roleDefinitions/"+ga.ID, tokUser, nil), http.StatusOK)
	if one.DisplayName != "Global Administrator" || one.Context != f.contextURL("roleManagement/directory/roleDefinitions/$entity") {
		t.Errorf("GET roleDefinitions/%s = %+v", ga.ID, one)
	}
	// A display name is not a key.
	wantError(t, f.call("GET", "/v1.0/roleManagement/directory/roleDefinitions/Global%20Administrator", tokUser, nil),
		http.StatusNotFound, "Request_ResourceNotFound")
	q := url.Values{"$filter": {"displayName eq 'Compliance Administrator'"}}
	byName := want[collection[roleDefinitionJSON]](t, f.call("GET", "/v1.0/roleManagement/directory/roleDefinitions?"+q.Encode(), tokUser, nil), http.StatusOK)
	if len(byName.Value) != 1 || byName.Value[0].ID != directory.ComplianceAdministrator.ID {
		t.Errorf("roleDefinitions?%s = %+v, want Compliance Administrator", q.Encode(), byName.Value)
	}
}

type roleAssignmentJSON struct {
	Context          string `json:"@odata.context"`
	ID               string
	PrincipalID      string
	RoleDefinitionID string
	DirectoryScopeID string
}

func TestRoleAssignments(t *testing.T) {
	f := newFixture(t)
	const base = "/v1.0/roleManagement/directory/roleAssignments"
	compliance := directory.ComplianceAdministrator.ID
	var created roleAssignmentJSON

	create := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		msg    string
	}{
		{"plain user", tokUser, map[string]any{"principalId": f.plain.ID, "roleDefinitionId": compliance, "directoryScopeId": "/"},
			http.StatusForbidden, "Authorization_RequestDenied", "Privileged Role Administrator"},
		{"admin", tokAdmin, map[string]any{"@odata.type": "#microsoft.graph.unifiedRoleAssignment",
			"principalId": f.plain.ID, "roleDefinitionId": compliance, "directoryScopeId": "/"}, http.StatusCreated, "", ""},
		{"unknown role", tokAdmin, map[string]any{"principalId": f.plain.ID, "roleDefinitionId": "5a1e0c1d-0000-4000-8000-000000000001", "directoryScopeId": "/"},
			http.StatusBadRequest, "Request_BadRequest", "roleDefinitions"},
		{"role by display name", tokAdmin, map[string]any{"principalId": f.plain.ID, "roleDefinitionId": "Compliance Administrator", "directoryScopeId": "/"},
			http.StatusBadRequest, "Request_BadRequest", "not an id"},
		{"unknown principal", tokAdmin, map[string]any{"principalId": "5a1e0c1d-0000-4000-8000-000000000001", "roleDefinitionId": compliance, "directoryScopeId": "/"},
			http.StatusNotFound, "Request_ResourceNotFound", ""},
		{"other tenant's principal", tokAdmin, map[string]any{"principalId": f.fabrikam.Admin.ID, "roleDefinitionId": compliance, "directoryScopeId": "/"},
			http.StatusNotFound, "Request_ResourceNotFound", ""},
		{"principal not a GUID", tokAdmin, map[string]any{"principalId": "plain", "roleDefinitionId": compliance, "directoryScopeId": "/"},
			http.StatusBadRequest, "Request_BadRequest", "GUID"},
		{"administrative unit scope", tokAdmin, map[string]any{"principalId": f.plain.ID, "roleDefinitionId": compliance,
			"directoryScopeId": "/administrativeUnits/5a1e0c1d-0000-4000-8000-000000000001"}, http.StatusBadRequest, "Request_BadRequest", "directoryScopeId"},
		{"no scope", tokAdmin, map[string]any{"principalId": f.plain.ID, "roleDefinitionId": compliance},
			http.StatusBadRequest, "Request_BadRequest", "directoryScopeId"},
	}
	for _, tc := range create {
		t.Run("create "+tc.name, func(t *testing.T) {
			r := f.call("POST", base, tc.token, tc.body)
			if tc.status != http.StatusCreated {
				wantError(t, r, tc.status, tc.code, tc.msg)
				return
			}
			created = want[roleAssignmentJSON](t, r, http.StatusCreated)
			want := roleAssignmentJSON{Context: f.contextURL("roleManagement/directory/roleAssignments/$entity"), ID: created.ID,
				PrincipalID: f.plain.ID, RoleDefinitionID: compliance, DirectoryScopeID: "/"}
			if diff := cmp.Diff(want, created); diff != "" || created.ID == "" {
				t.Errorf("POST roleAssignments mismatch (-want +got):\n%s", diff)
			}
		})
	}
	if created.ID == "" {
		t.Fatal("no role assignment was created")
	}
	roles, err := f.dir.RolesOf(t.Context(), f.contoso.Tenant.ID, f.plain.ID)
	if err != nil || len(roles) != 1 || roles[0] != compliance {
		t.Errorf("RolesOf(plain) = %v, %v; want [Compliance Administrator]", roles, err)
	}

	filter := func(s string) string { return base + "?" + url.Values{"$filter": {s}}.Encode() }
	lists := []struct {
		name string
		path string
		want []string // principal ids, sorted
	}{
		{"principalId", filter("principalId eq '" + f.plain.ID + "'"), []string{f.plain.ID}},
		{"principalId upper case", filter("principalId eq '" + strings.ToUpper(f.plain.ID) + "'"), []string{f.plain.ID}},
		{"roleDefinitionId", filter("roleDefinitionId eq '" + compliance + "'"), []string{f.plain.ID}},
		{"roleDefinitionId of Global Administrator", filter("roleDefinitionId eq '" + directory.GlobalAdministrator.ID + "'"),
			sorted(f.contoso.Admin.ID, f.contoso.AdminSP.ID)},
		{"and", filter("principalId eq '" + f.plain.ID + "' and roleDefinitionId eq '" + directory.GlobalAdministrator.ID + "'"), []string{}},
		{"all", base, sorted(f.contoso.Admin.ID, f.contoso.AdminSP.ID, f.plain.ID)},
	}
	for _, tc := range lists {
		t.Run("list "+tc.name, func(t *testing.T) {
			c := want[collection[roleAssignmentJSON]](t, f.call("GET", tc.path, tokUser, nil), http.StatusOK)
			got := []string{}
			for _, ra := range c.Value {
				got = append(got, ra.PrincipalID)
			}
			if diff := cmp.Diff(tc.want, sorted(got...)); diff != "" {
				t.Errorf("GET %s principals mismatch (-want +got):\n%s", tc.path, diff)
			}
		})
	}

	t.Run("get", func(t *testing.T) {
		got := want[roleAssignmentJSON](t, f.call("GET", base+"/"+created.ID, tokUser, nil), http.StatusOK)
		if got.ID != created.ID || got.PrincipalID != f.plain.ID {
			t.Errorf("GET %s = %+v, want %+v", created.ID, got, created)
		}
		wantError(t, f.call("GET", base+"/not-an-id", tokUser, nil), http.StatusNotFound, "Request_ResourceNotFound")
	})
	t.Run("delete", func(t *testing.T) {
		wantError(t, f.call("DELETE", base+"/"+created.ID, tokUser, nil), http.StatusForbidden, "Authorization_RequestDenied")
		if r := f.call("DELETE", base+"/"+created.ID, tokAdmin, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE = %d %s, want 204", r.status, r.body)
		}
		wantError(t, f.call("GET", base+"/"+created.ID, tokUser, nil), http.StatusNotFound, "Request_ResourceNotFound")
		wantError(t, f.call("DELETE", base+"/"+created.ID, tokAdmin, nil), http.StatusNotFound, "Request_ResourceNotFound")
		if roles, _ := f.dir.RolesOf(t.Context(), f.contoso.Tenant.ID, f.plain.ID); len(roles) != 0 {
			t.Errorf("RolesOf(plain) after DELETE = %v, want none", roles)
		}
	})
}
