package cli

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type tenantOut struct {
	TenantID      string `json:"tenantId"`
	DisplayName   string `json:"displayName"`
	DefaultDomain string `json:"defaultDomain"`
	Licenses      []struct {
		Name                string   `json:"name"`
		SkuPartNumber       string   `json:"skuPartNumber"`
		SkuID               string   `json:"skuId"`
		PrepaidUnits        int      `json:"prepaidUnits"`
		ServicePlans        []string `json:"servicePlans"`
		CustomerKeyEligible bool     `json:"customerKeyEligible"`
	} `json:"licenses"`
	Operator             bool      `json:"operator,omitempty"`
	CreatedAt            time.Time `json:"createdDateTime"`
	CustomerKeyScenarios []string  `json:"customerKeyScenarios"`
}

func (t tenantOut) licenseNames() string {
	var names []string
	for _, l := range t.Licenses {
		names = append(names, l.Name)
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

func tenantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Create and inspect tenants and their licences (operator)"}
	cmd.AddCommand(tenantCreateCmd(g), tenantListCmd(g), tenantShowCmd(g), tenantLicenseCmd(g))
	return cmd
}

func tenantCreateCmd(g *globals) *cobra.Command {
	var name, domain string
	var licenses []string
	cmd := &cobra.Command{
		Use:   "create --name NAME [--domain DOMAIN] [--license SKU]...",
		Short: "Create a tenant with a first Global Administrator and an automation application",
		Long: `Create a tenant. The answer holds the first Global Administrator's password
and the automation application's client secret: they are shown only once.

Licences are SKU names such as "Microsoft 365 E5" or part numbers such as SPE_E5.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				TenantID      string `json:"tenantId"`
				DefaultDomain string `json:"defaultDomain"`
				GlobalAdmin   struct {
					UserPrincipalName string `json:"userPrincipalName"`
					Password          string `json:"password"`
				} `json:"globalAdmin"`
				AdminApp struct {
					ClientID     string `json:"clientId"`
					ClientSecret string `json:"clientSecret"`
				} `json:"adminApp"`
			}
			in := map[string]any{"displayName": name, "domain": domain, "licenses": licenses}
			if err := s.call(cmd.Context(), armScope, "POST", "/customerkey/v1/tenants", in, &out); err != nil {
				return err
			}
			return pr.printFields(out, [][2]string{
				{"TenantId", out.TenantID}, {"DefaultDomain", out.DefaultDomain},
				{"GlobalAdmin", out.GlobalAdmin.UserPrincipalName}, {"GlobalAdminPassword", out.GlobalAdmin.Password},
				{"AdminAppClientId", out.AdminApp.ClientID}, {"AdminAppClientSecret", out.AdminApp.ClientSecret},
			})
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the tenant's display name (required)")
	cmd.Flags().StringVar(&domain, "domain", "", "default domain (default <name>.onmicrosoft.com)")
	cmd.Flags().StringArrayVar(&licenses, "license", nil, "licence SKU to subscribe to (repeatable)")
	_ = cmd.MarkFlagRequired("name")
	return cmd
}

func tenantListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []tenantOut `json:"value"`
			}
			if err := s.call(cmd.Context(), armScope, "GET", "/customerkey/v1/tenants", nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, t := range out.Value {
				rows = append(rows, []string{t.TenantID, t.DisplayName, t.DefaultDomain, t.licenseNames()})
			}
			return pr.print(out.Value, []string{"TENANT ID", "NAME", "DOMAIN", "LICENCES"}, rows)
		},
	}
}

func tenantShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show TENANT",
		Short: "Show a tenant (by id or domain)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var t tenantOut
			if err := s.call(cmd.Context(), armScope, "GET", "/customerkey/v1/tenants/"+url.PathEscape(args[0]), nil, &t); err != nil {
				return err
			}
			return printTenant(pr, t)
		},
	}
}

func printTenant(pr printer, t tenantOut) error {
	eligible := "No"
	for _, l := range t.Licenses {
		if l.CustomerKeyEligible {
			eligible = "Yes"
		}
	}
	return pr.printFields(t, [][2]string{{"TenantId", t.TenantID}, {"DisplayName", t.DisplayName},
		{"DefaultDomain", t.DefaultDomain}, {"Licenses", t.licenseNames()}, {"CustomerKeyEligible", eligible},
		{"CustomerKeyEnabledFor", strings.Join(t.CustomerKeyScenarios, ", ")},
		{"Created", t.CreatedAt.Format(time.RFC3339)}})
}

func tenantLicenseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "license", Short: "Add or remove a tenant's licences (operator)"}
	for _, verb := range []string{"add", "remove"} {
		var tenant, sku string
		c := &cobra.Command{
			Use:   verb + " --tenant-id TENANT --license SKU",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a licence",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, pr, err := g.begin(cmd)
				if err != nil {
					return err
				}
				var t tenantOut
				path := "/customerkey/v1/tenants/" + url.PathEscape(tenant) + "/licenses"
				if verb == "add" {
					err = s.call(cmd.Context(), armScope, "POST", path, map[string]string{"sku": sku}, &t)
				} else {
					err = s.call(cmd.Context(), armScope, "DELETE", path+"/"+url.PathEscape(sku), nil, &t)
				}
				if err != nil {
					return fmt.Errorf("%s licence: %w", verb, err)
				}
				return printTenant(pr, t)
			},
		}
		c.Flags().StringVar(&tenant, "tenant-id", "", "tenant id (required)")
		c.Flags().StringVar(&sku, "license", "", "licence SKU name, part number or id (required)")
		_ = c.MarkFlagRequired("tenant-id")
		_ = c.MarkFlagRequired("license")
		cmd.AddCommand(c)
	}
	return cmd
}
