package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

type roleDefOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RoleName         string   `json:"roleName"`
		Description      string   `json:"description"`
		Type             string   `json:"type"`
		AssignableScopes []string `json:"assignableScopes"`
		Permissions      []struct {
			Actions        []string `json:"actions"`
			NotActions     []string `json:"notActions"`
			DataActions    []string `json:"dataActions"`
			NotDataActions []string `json:"notDataActions"`
		} `json:"permissions"`
	} `json:"properties"`
}

type roleAssignmentOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		Scope            string `json:"scope"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
		PrincipalType    string `json:"principalType"`
	} `json:"properties"`
}

func newGUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func lastSegment(id string) string { return id[strings.LastIndex(id, "/")+1:] }

// scopePath makes sure a scope starts with a slash and has none at the end.
func scopePath(scope string) string { return "/" + strings.Trim(scope, "/") }

// roleDefinitions lists the role definitions usable at scope.
func (s *session) roleDefinitions(ctx context.Context, scope string) ([]roleDefOut, error) {
	var out struct {
		Value []roleDefOut `json:"value"`
	}
	err := s.call(ctx, armScope, "GET", armPath(scopePath(scope)+"/providers/Microsoft.Authorization/roleDefinitions", apiAuthorization), nil, &out)
	return out.Value, err
}

// resolveRole finds a role definition by name or GUID.
func (s *session) resolveRole(ctx context.Context, scope, role string) (roleDefOut, error) {
	defs, err := s.roleDefinitions(ctx, scope)
	if err != nil {
		return roleDefOut{}, err
	}
	for _, d := range defs {
		if strings.EqualFold(d.Properties.RoleName, role) || strings.EqualFold(d.Name, role) || strings.EqualFold(d.ID, role) {
			return d, nil
		}
	}
	return roleDefOut{}, fmt.Errorf("no role named %q at scope %s; list them with `customerkey role definition list --scope %s`", role, scope, scope)
}

// resolvePrincipal turns an object id, a user principal name or an
// application id into an object id and a principal type, through Graph.
func (s *session) resolvePrincipal(ctx context.Context, assignee string) (string, string, error) {
	if strings.Contains(assignee, "@") {
		var u user
		if err := s.call(ctx, graphScope, "GET", "/v1.0/users/"+url.PathEscape(assignee), nil, &u); err != nil {
			return "", "", err
		}
		return u.ID, "User", nil
	}
	var sps struct {
		Value []servicePrincipal `json:"value"`
	}
	q := "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq "+odataQuote(assignee))
	if err := s.call(ctx, graphScope, "GET", q, nil, &sps); err != nil {
		return "", "", err
	}
	if len(sps.Value) == 1 {
		return sps.Value[0].ID, "ServicePrincipal", nil
	}
	var sp servicePrincipal
	if err := s.call(ctx, graphScope, "GET", "/v1.0/servicePrincipals/"+url.PathEscape(assignee), nil, &sp); err == nil {
		return sp.ID, "ServicePrincipal", nil
	}
	var u user
	if err := s.call(ctx, graphScope, "GET", "/v1.0/users/"+url.PathEscape(assignee), nil, &u); err == nil {
		return u.ID, "User", nil
	}
	return "", "", fmt.Errorf("%q is neither a user, a service principal's object id, nor an application id with a service principal in this tenant", assignee)
}

func roleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Azure role-based access control: role definitions and assignments"}
	assignment := &cobra.Command{Use: "assignment", Short: "Role assignments (New-/Get-/Remove-AzRoleAssignment)"}
	definition := &cobra.Command{Use: "definition", Short: "Role definitions (Get-/New-AzRoleDefinition)"}
	cmd.AddCommand(assignment, definition)

	var assignee, role, scope string
	create := &cobra.Command{
		Use:   "create --assignee ID|UPN|APP_ID --role NAME|GUID --scope SCOPE",
		Short: "Assign a role at a scope (subscription, resource group, vault or key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			def, err := s.resolveRole(ctx, scope, role)
			if err != nil {
				return err
			}
			oid, typ, err := s.resolvePrincipal(ctx, assignee)
			if err != nil {
				return err
			}
			body := map[string]any{"properties": map[string]string{"roleDefinitionId": def.ID, "principalId": oid, "principalType": typ}}
			var out roleAssignmentOut
			p := armPath(scopePath(scope)+"/providers/Microsoft.Authorization/roleAssignments/"+newGUID(), apiAuthorization)
			if err := s.call(ctx, armScope, "PUT", p, body, &out); err != nil {
				return err
			}
			return pr.printFields(out, [][2]string{{"RoleAssignmentId", out.ID}, {"Scope", out.Properties.Scope},
				{"RoleDefinitionName", def.Properties.RoleName}, {"ObjectId", out.Properties.PrincipalID}, {"ObjectType", out.Properties.PrincipalType}})
		},
	}
	create.Flags().StringVar(&assignee, "assignee", "", "object id, user principal name or application id (required)")
	create.Flags().StringVar(&role, "role", "", "role name or id, e.g. \"Key Vault Crypto Service Encryption User\" (required)")
	_ = create.MarkFlagRequired("assignee")
	_ = create.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list --scope SCOPE [--assignee ID|UPN|APP_ID]",
		Short: "List role assignments that apply at a scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			q := []string{}
			if assignee != "" {
				oid, _, err := s.resolvePrincipal(ctx, assignee)
				if err != nil {
					return err
				}
				q = append(q, "$filter", "principalId eq '"+oid+"'")
			}
			var out struct {
				Value []roleAssignmentOut `json:"value"`
			}
			if err := s.call(ctx, armScope, "GET", armPath(scopePath(scope)+"/providers/Microsoft.Authorization/roleAssignments", apiAuthorization, q...), nil, &out); err != nil {
				return err
			}
			names := map[string]string{}
			if defs, err := s.roleDefinitions(ctx, scope); err == nil {
				for _, d := range defs {
					names[strings.ToLower(d.Name)] = d.Properties.RoleName
				}
			}
			rows := make([][]string, 0, len(out.Value))
			for _, a := range out.Value {
				rows = append(rows, []string{names[strings.ToLower(lastSegment(a.Properties.RoleDefinitionID))], a.Properties.PrincipalID,
					a.Properties.PrincipalType, a.Properties.Scope, a.Name})
			}
			return pr.print(out.Value, []string{"ROLE", "PRINCIPAL", "TYPE", "SCOPE", "NAME"}, rows)
		},
	}
	list.Flags().StringVar(&assignee, "assignee", "", "only this principal's assignments")

	var id string
	del := &cobra.Command{
		Use:   "delete --id ASSIGNMENT_ID",
		Short: "Delete a role assignment by its full id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := g.begin(cmd)
			if err != nil {
				return err
			}
			if err := s.call(cmd.Context(), armScope, "DELETE", armPath(scopePath(id), apiAuthorization), nil, nil); err != nil {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Deleted the role assignment.")
			return nil
		},
	}
	del.Flags().StringVar(&id, "id", "", "role assignment id, as `role assignment list -o json` shows it (required)")
	_ = del.MarkFlagRequired("id")
	for _, c := range []*cobra.Command{create, list} {
		c.Flags().StringVar(&scope, "scope", "", "scope, e.g. /subscriptions/S/resourceGroups/RG/providers/Microsoft.KeyVault/vaults/V (required)")
		_ = c.MarkFlagRequired("scope")
	}
	assignment.AddCommand(create, list, del)

	var defScope, file string
	defList := &cobra.Command{
		Use:   "list --scope SCOPE",
		Short: "List role definitions usable at a scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			defs, err := s.roleDefinitions(cmd.Context(), defScope)
			if err != nil {
				return err
			}
			rows := make([][]string, 0, len(defs))
			for _, d := range defs {
				rows = append(rows, []string{d.Properties.RoleName, d.Name, d.Properties.Type})
			}
			return pr.print(defs, []string{"NAME", "ID", "TYPE"}, rows)
		},
	}
	var defName string
	defShow := &cobra.Command{
		Use:   "show --name NAME|GUID --scope SCOPE",
		Short: "Show a role definition with its actions and data actions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			d, err := s.resolveRole(cmd.Context(), defScope, defName)
			if err != nil {
				return err
			}
			fields := [][2]string{{"Name", d.Properties.RoleName}, {"Id", d.Name}, {"IsCustom", fmt.Sprint(d.Properties.Type == "CustomRole")},
				{"Description", d.Properties.Description}}
			for _, p := range d.Properties.Permissions {
				fields = append(fields, [2]string{"Actions", strings.Join(p.Actions, ", ")}, [2]string{"NotActions", strings.Join(p.NotActions, ", ")},
					[2]string{"DataActions", strings.Join(p.DataActions, ", ")}, [2]string{"NotDataActions", strings.Join(p.NotDataActions, ", ")})
			}
			fields = append(fields, [2]string{"AssignableScopes", strings.Join(d.Properties.AssignableScopes, ", ")})
			return pr.printFields(d, fields)
		},
	}
	defShow.Flags().StringVar(&defName, "name", "", "role name or id (required)")
	_ = defShow.MarkFlagRequired("name")
	defCreate := &cobra.Command{
		Use:   "create --file ROLE.json",
		Short: "Create a custom role from a JSON definition (Name, Description, Actions, NotActions, DataActions, NotDataActions, AssignableScopes)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			raw, err := os.ReadFile(file)
			if err != nil {
				return err
			}
			var in struct {
				Name, Description                                string
				Actions, NotActions, DataActions, NotDataActions []string
				AssignableScopes                                 []string
			}
			if err := json.Unmarshal(raw, &in); err != nil {
				return fmt.Errorf("%s is not a role definition: %w", file, err)
			}
			if len(in.AssignableScopes) == 0 {
				return fmt.Errorf("%s names no AssignableScopes; give the subscription, e.g. /subscriptions/<id>", file)
			}
			body := map[string]any{"properties": map[string]any{"roleName": in.Name, "description": in.Description, "type": "CustomRole",
				"assignableScopes": in.AssignableScopes, "permissions": []map[string][]string{{"actions": nonNil(in.Actions),
					"notActions": nonNil(in.NotActions), "dataActions": nonNil(in.DataActions), "notDataActions": nonNil(in.NotDataActions)}}}}
			var out roleDefOut
			p := armPath(scopePath(in.AssignableScopes[0])+"/providers/Microsoft.Authorization/roleDefinitions/"+newGUID(), apiAuthorization)
			if err := s.call(cmd.Context(), armScope, "PUT", p, body, &out); err != nil {
				return err
			}
			return pr.printFields(out, [][2]string{{"Name", out.Properties.RoleName}, {"Id", out.Name}})
		},
	}
	defCreate.Flags().StringVar(&file, "file", "", "JSON role definition (required)")
	_ = defCreate.MarkFlagRequired("file")
	for _, c := range []*cobra.Command{defList, defShow} {
		c.Flags().StringVar(&defScope, "scope", "", "scope, e.g. /subscriptions/S (required)")
		_ = c.MarkFlagRequired("scope")
	}
	definition.AddCommand(defList, defShow, defCreate)
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
