package cli

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type servicePrincipal struct {
	ID                     string   `json:"id"`
	AppID                  string   `json:"appId"`
	DisplayName            string   `json:"displayName"`
	AppOwnerOrganizationID string   `json:"appOwnerOrganizationId"`
	ServicePrincipalNames  []string `json:"servicePrincipalNames"`
	AccountEnabled         bool     `json:"accountEnabled"`
}

func odataQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func spCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "sp", Short: "Service principals (Get-/New-AzADServicePrincipal)"}
	var appID string
	show := &cobra.Command{
		Use:   "show --app-id APP_ID",
		Short: "Show the service principal of an application in the signed-in tenant",
		Long:  "Show the service principal of an application in the signed-in tenant.\nThe seed's `Get-AzADServicePrincipal -ServicePrincipalName ID` is accepted too.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []servicePrincipal `json:"value"`
			}
			q := "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("servicePrincipalNames/any(c:c eq "+odataQuote(appID)+")")
			if err := s.call(cmd.Context(), graphScope, "GET", q, nil, &out); err != nil {
				return err
			}
			if len(out.Value) == 0 {
				return fmt.Errorf("the application %s has no service principal in tenant %s; register it with `customerkey sp create --app-id %s` (New-AzADServicePrincipal -ApplicationId %s)",
					appID, s.prof.TenantID, appID, appID)
			}
			return printSPs(pr, out.Value)
		},
	}
	show.Flags().StringVar(&appID, "app-id", "", "application id, also accepted as -ServicePrincipalName (required)")
	_ = show.MarkFlagRequired("app-id")

	var createAppID string
	create := &cobra.Command{
		Use:   "create --app-id APP_ID",
		Short: "Register an application's service principal in the signed-in tenant",
		Long:  "Register an application's service principal in the signed-in tenant (needs Global\nAdministrator or Application Administrator). The seed's\n`New-AzADServicePrincipal -ApplicationId ID` is accepted too.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var sp servicePrincipal
			if err := s.call(cmd.Context(), graphScope, "POST", "/v1.0/servicePrincipals", map[string]string{"appId": createAppID}, &sp); err != nil {
				return err
			}
			return printSPs(pr, []servicePrincipal{sp})
		},
	}
	create.Flags().StringVar(&createAppID, "app-id", "", "application id, also accepted as -ApplicationId (required)")
	_ = create.MarkFlagRequired("app-id")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the service principals of the signed-in tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []servicePrincipal `json:"value"`
			}
			if err := s.call(cmd.Context(), graphScope, "GET", "/v1.0/servicePrincipals", nil, &out); err != nil {
				return err
			}
			return printSPs(pr, out.Value)
		},
	}
	cmd.AddCommand(show, create, list)
	return cmd
}

func printSPs(pr printer, sps []servicePrincipal) error {
	rows := make([][]string, 0, len(sps))
	for _, sp := range sps {
		rows = append(rows, []string{sp.DisplayName, sp.ID, sp.AppID})
	}
	if pr.format == "json" && len(sps) == 1 {
		return pr.print(sps[0], nil, nil)
	}
	return pr.print(sps, []string{"DisplayName", "Id", "AppId"}, rows)
}

type user struct {
	ID                string `json:"id"`
	UserPrincipalName string `json:"userPrincipalName"`
	DisplayName       string `json:"displayName"`
	AccountEnabled    bool   `json:"accountEnabled"`
}

func userCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Users of the signed-in tenant"}
	var upn, name, password string
	create := &cobra.Command{
		Use:   "create --upn USER@DOMAIN [--display-name NAME] [--password PASSWORD]",
		Short: "Create a user; without --password one is generated and shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			generated := password == ""
			if generated {
				password = "Ck-" + rand.Text()
			}
			nick, _, _ := strings.Cut(upn, "@")
			in := map[string]any{"accountEnabled": true, "displayName": firstNonEmpty(name, nick), "mailNickname": nick,
				"userPrincipalName": upn, "passwordProfile": map[string]any{"password": password, "forceChangePasswordNextSignIn": false}}
			var u user
			if err := s.call(cmd.Context(), graphScope, "POST", "/v1.0/users", in, &u); err != nil {
				return err
			}
			out := struct {
				user
				Password string `json:"password,omitempty"`
			}{user: u}
			fields := [][2]string{{"Id", u.ID}, {"UserPrincipalName", u.UserPrincipalName}, {"DisplayName", u.DisplayName}}
			if generated {
				out.Password = password
				fields = append(fields, [2]string{"Password", password})
			}
			return pr.printFields(out, fields)
		},
	}
	create.Flags().StringVar(&upn, "upn", "", "user principal name, alias@<tenant domain> (required)")
	create.Flags().StringVar(&name, "display-name", "", "display name (default the alias)")
	create.Flags().StringVar(&password, "password", "", "initial password (default: generated and shown once)")
	_ = create.MarkFlagRequired("upn")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []user `json:"value"`
			}
			if err := s.call(cmd.Context(), graphScope, "GET", "/v1.0/users", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, u := range out.Value {
				rows = append(rows, []string{u.UserPrincipalName, u.DisplayName, u.ID})
			}
			return pr.print(out.Value, []string{"UserPrincipalName", "DisplayName", "Id"}, rows)
		},
	}
	cmd.AddCommand(create, list)
	return cmd
}

type roleDefinition struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
}

type roleAssignment struct {
	ID               string `json:"id"`
	PrincipalID      string `json:"principalId"`
	RoleDefinitionID string `json:"roleDefinitionId"`
	DirectoryScopeID string `json:"directoryScopeId"`
}

func directoryRoleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "directory-role", Short: "Directory role assignments (Global Administrator, Compliance Administrator, ...)"}
	var role, principalID, upn, appID string
	assign := &cobra.Command{
		Use:   "assign --role ROLE (--principal-id ID | --user UPN | --app-id APP_ID)",
		Short: "Assign a directory role to a user or service principal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, v := range []string{principalID, upn, appID} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				return errors.New("name the assignee with exactly one of --principal-id, --user or --app-id")
			}
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var defs struct {
				Value []roleDefinition `json:"value"`
			}
			if err := s.call(ctx, graphScope, "GET", "/v1.0/roleManagement/directory/roleDefinitions", nil, &defs); err != nil {
				return err
			}
			roleID := ""
			var names []string
			for _, d := range defs.Value {
				names = append(names, d.DisplayName)
				if strings.EqualFold(d.DisplayName, role) || strings.EqualFold(d.ID, role) {
					roleID = d.ID
				}
			}
			if roleID == "" {
				return fmt.Errorf("unknown directory role %q; known roles: %s", role, strings.Join(names, ", "))
			}
			switch {
			case upn != "":
				var u user
				if err := s.call(ctx, graphScope, "GET", "/v1.0/users/"+url.PathEscape(upn), nil, &u); err != nil {
					return err
				}
				principalID = u.ID
			case appID != "":
				var out struct {
					Value []servicePrincipal `json:"value"`
				}
				q := "/v1.0/servicePrincipals?$filter=" + url.QueryEscape("appId eq "+odataQuote(appID))
				if err := s.call(ctx, graphScope, "GET", q, nil, &out); err != nil {
					return err
				}
				if len(out.Value) == 0 {
					return fmt.Errorf("the application %s has no service principal in this tenant; create it with `customerkey sp create --app-id %s`", appID, appID)
				}
				principalID = out.Value[0].ID
			}
			var ra roleAssignment
			in := map[string]string{"principalId": principalID, "roleDefinitionId": roleID, "directoryScopeId": "/"}
			if err := s.call(ctx, graphScope, "POST", "/v1.0/roleManagement/directory/roleAssignments", in, &ra); err != nil {
				return err
			}
			return pr.printFields(ra, [][2]string{{"Id", ra.ID}, {"Role", role}, {"PrincipalId", ra.PrincipalID}, {"Scope", ra.DirectoryScopeID}})
		},
	}
	assign.Flags().StringVar(&role, "role", "", "role name or id, e.g. \"Compliance Administrator\" (required)")
	assign.Flags().StringVar(&principalID, "principal-id", "", "object id of the user or service principal")
	assign.Flags().StringVar(&upn, "user", "", "user principal name")
	assign.Flags().StringVar(&appID, "app-id", "", "application id (its service principal in this tenant)")
	_ = assign.MarkFlagRequired("role")

	list := &cobra.Command{
		Use:   "list",
		Short: "List directory role assignments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var defs struct {
				Value []roleDefinition `json:"value"`
			}
			if err := s.call(ctx, graphScope, "GET", "/v1.0/roleManagement/directory/roleDefinitions", nil, &defs); err != nil {
				return err
			}
			names := map[string]string{}
			for _, d := range defs.Value {
				names[d.ID] = d.DisplayName
			}
			var out struct {
				Value []roleAssignment `json:"value"`
			}
			if err := s.call(ctx, graphScope, "GET", "/v1.0/roleManagement/directory/roleAssignments", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, ra := range out.Value {
				rows = append(rows, []string{names[ra.RoleDefinitionID], ra.PrincipalID, ra.ID})
			}
			return pr.print(out.Value, []string{"ROLE", "PRINCIPAL", "ASSIGNMENT ID"}, rows)
		},
	}
	cmd.AddCommand(assign, list)
	return cmd
}

func auditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log"}
	var tenant, pageToken string
	var top int
	var all bool
	list := &cobra.Command{
		Use:   "list [--tenant-id T] [--top N] [--page-token TOKEN | --all]",
		Short: "List audit records, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			if tenant == "" {
				tenant = s.prof.TenantID
			}
			type event struct {
				ID    string    `json:"id"`
				Time  time.Time `json:"time"`
				Actor struct {
					Type string `json:"type"`
					ID   string `json:"id"`
					Name string `json:"name"`
				} `json:"actor"`
				Action    string `json:"action"`
				Target    string `json:"target"`
				Result    string `json:"result"`
				Reason    string `json:"reason"`
				RequestID string `json:"requestId"`
			}
			var events []event
			next := pageToken
			for {
				var page struct {
					Events []event `json:"events"`
					Next   string  `json:"next"`
				}
				q := url.Values{"top": {fmt.Sprint(top)}}
				if next != "" {
					q.Set("pageToken", next)
				}
				if err := s.call(cmd.Context(), armScope, "GET", "/customerkey/v1/tenants/"+url.PathEscape(tenant)+"/audit?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				events = append(events, page.Events...)
				next = page.Next
				if !all || next == "" {
					break
				}
			}
			rows := make([][]string, 0, len(events))
			for _, e := range events {
				who := firstNonEmpty(e.Actor.Name, e.Actor.ID, e.Actor.Type)
				rows = append(rows, []string{e.Time.Format(time.RFC3339), e.Action, e.Result, who, e.Target, e.Reason})
			}
			if pr.format == "json" {
				return pr.print(map[string]any{"events": events, "next": next}, nil, nil)
			}
			if err := pr.print(nil, []string{"TIME", "ACTION", "RESULT", "ACTOR", "TARGET", "REASON"}, rows); err != nil {
				return err
			}
			if next != "" {
				fmt.Fprintf(cmd.ErrOrStderr(), "More records: --page-token %s (or --all)\n", next)
			}
			return nil
		},
	}
	list.Flags().StringVar(&tenant, "tenant-id", "", "tenant whose records to list (default the signed-in tenant)")
	list.Flags().IntVar(&top, "top", 100, "records per page (1-1000)")
	list.Flags().StringVar(&pageToken, "page-token", "", "continue after this page token")
	list.Flags().BoolVar(&all, "all", false, "fetch every page")
	cmd.AddCommand(list)
	return cmd
}
