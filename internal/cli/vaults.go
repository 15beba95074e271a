package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type vaultOut struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties struct {
		TenantID string `json:"tenantId"`
		SKU      struct {
			Family string `json:"family"`
			Name   string `json:"name"`
		} `json:"sku"`
		VaultURI                  string `json:"vaultUri"`
		EnableSoftDelete          *bool  `json:"enableSoftDelete"`
		SoftDeleteRetentionInDays *int   `json:"softDeleteRetentionInDays"`
		EnablePurgeProtection     *bool  `json:"enablePurgeProtection"`
		EnableRbacAuthorization   *bool  `json:"enableRbacAuthorization"`
		ProvisioningState         string `json:"provisioningState"`
	} `json:"properties"`
}

type deletedVaultOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		VaultID                string    `json:"vaultId"`
		Location               string    `json:"location"`
		DeletionDate           time.Time `json:"deletionDate"`
		ScheduledPurgeDate     time.Time `json:"scheduledPurgeDate"`
		PurgeProtectionEnabled bool      `json:"purgeProtectionEnabled"`
	} `json:"properties"`
}

func yesNo(b *bool) string {
	if b != nil && *b {
		return "True"
	}
	return "False"
}

// resourceGroupOf returns the resource group named in a resource id.
func resourceGroupOf(id string) string {
	parts := strings.Split(id, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return ""
}

func printVault(pr printer, v vaultOut) error {
	days := ""
	if v.Properties.SoftDeleteRetentionInDays != nil {
		days = strconv.Itoa(*v.Properties.SoftDeleteRetentionInDays)
	}
	// The labels are those Get-AzKeyVault prints, which the seed checks.
	return pr.printFields(v, [][2]string{
		{"Vault Name", v.Name}, {"Resource Group Name", resourceGroupOf(v.ID)}, {"Location", v.Location},
		{"Resource ID", v.ID}, {"Vault URI", v.Properties.VaultURI}, {"Tenant ID", v.Properties.TenantID},
		{"SKU", v.Properties.SKU.Name}, {"Enabled For RBAC Authorization?", yesNo(v.Properties.EnableRbacAuthorization)},
		{"Soft Delete Enabled?", yesNo(v.Properties.EnableSoftDelete)}, {"Soft Delete Retention Period (days)", days},
		{"Purge Protection Enabled?", yesNo(v.Properties.EnablePurgeProtection)},
	})
}

func vaultPath(sub, rg, name string) string {
	return "/subscriptions/" + url.PathEscape(sub) + "/resourceGroups/" + url.PathEscape(rg) + "/providers/Microsoft.KeyVault/vaults/" + url.PathEscape(name)
}

// findVault finds a vault by name among the subscriptions the caller sees,
// as Get-AzKeyVault -VaultName does.
func (s *session) findVault(ctx context.Context, sub, name string) (vaultOut, error) {
	subs := []string{sub}
	if sub == "" {
		var out struct {
			Value []subscriptionOut `json:"value"`
		}
		if err := s.call(ctx, armScope, "GET", armPath("/subscriptions", apiSubscriptions), nil, &out); err != nil {
			return vaultOut{}, err
		}
		subs = subs[:0]
		for _, v := range out.Value {
			subs = append(subs, v.SubscriptionID)
		}
	}
	for _, sid := range subs {
		var out struct {
			Value []vaultOut `json:"value"`
		}
		if err := s.call(ctx, armScope, "GET", armPath("/subscriptions/"+url.PathEscape(sid)+"/providers/Microsoft.KeyVault/vaults", apiKeyVault), nil, &out); err != nil {
			return vaultOut{}, err
		}
		for _, v := range out.Value {
			if strings.EqualFold(v.Name, name) {
				return v, nil
			}
		}
	}
	return vaultOut{}, fmt.Errorf("no key vault named %q in the subscriptions you can see", name)
}

func vaultCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vault", Short: "Key vaults (New-/Get-/Update-/Remove-AzKeyVault)"}
	var sub, rg, name, location, sku string
	var retention int
	var purgeProtection, rbacAuth bool
	create := &cobra.Command{
		Use:   "create --subscription ID --resource-group RG --name NAME --location REGION [--sku premium]",
		Short: "Create a key vault (soft delete on, 90-day retention by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var subOut subscriptionOut
			if err := s.call(ctx, armScope, "GET", armPath("/subscriptions/"+url.PathEscape(sub), apiSubscriptions), nil, &subOut); err != nil {
				return err
			}
			props := map[string]any{"tenantId": subOut.TenantID, "sku": map[string]string{"family": "A", "name": sku},
				"enableSoftDelete": true, "softDeleteRetentionInDays": retention, "enableRbacAuthorization": rbacAuth, "accessPolicies": []any{}}
			if purgeProtection {
				props["enablePurgeProtection"] = true
			}
			body := map[string]any{"location": location, "properties": props}
			p := armPath(vaultPath(sub, rg, name), apiKeyVault)
			var v vaultOut
			err = s.call(ctx, armScope, "PUT", p, body, &v)
			if isCode(err, "MissingSubscriptionRegistration") {
				fmt.Fprintln(cmd.ErrOrStderr(), "Registering the Microsoft.KeyVault provider in the subscription...")
				if err = s.registerProvider(ctx, sub, "Microsoft.KeyVault"); err == nil {
					err = s.call(ctx, armScope, "PUT", p, body, &v)
				}
			}
			if err != nil {
				return err
			}
			return printVault(pr, v)
		},
	}
	create.Flags().StringVar(&location, "location", "", "Azure region, e.g. westeurope (required)")
	create.Flags().StringVar(&sku, "sku", "premium", "standard or premium")
	create.Flags().IntVar(&retention, "retention-days", 90, "soft-delete retention in days (7-90; Customer Key requires 90)")
	create.Flags().BoolVar(&purgeProtection, "enable-purge-protection", false, "turn purge protection on (it cannot be turned off)")
	create.Flags().BoolVar(&rbacAuth, "enable-rbac-authorization", true, "authorize data access with Azure RBAC instead of access policies")
	_ = create.MarkFlagRequired("location")

	show := &cobra.Command{
		Use:   "show --name NAME [--subscription ID]",
		Short: "Show a key vault with its soft-delete and purge-protection settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			v, err := s.findVault(cmd.Context(), sub, name)
			if err != nil {
				return err
			}
			return printVault(pr, v)
		},
	}
	var setPurge, setRBAC string
	update := &cobra.Command{
		Use:   "update --name NAME [--subscription ID] [--enable-purge-protection true] [--enable-rbac-authorization true|false]",
		Short: "Update a key vault's settings",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			v, err := s.findVault(ctx, sub, name)
			if err != nil {
				return err
			}
			props := map[string]any{}
			for flag, val := range map[string]string{"enablePurgeProtection": setPurge, "enableRbacAuthorization": setRBAC} {
				if val == "" {
					continue
				}
				b, err := strconv.ParseBool(val)
				if err != nil {
					return fmt.Errorf("%s: %q is not true or false", flag, val)
				}
				props[flag] = b
			}
			if len(props) == 0 {
				return fmt.Errorf("nothing to update: pass --enable-purge-protection or --enable-rbac-authorization")
			}
			var out vaultOut
			if err := s.call(ctx, armScope, "PATCH", armPath(v.ID, apiKeyVault), map[string]any{"properties": props}, &out); err != nil {
				return err
			}
			return printVault(pr, out)
		},
	}
	update.Flags().StringVar(&setPurge, "enable-purge-protection", "", "true turns purge protection on (irreversible)")
	update.Flags().StringVar(&setRBAC, "enable-rbac-authorization", "", "true or false")

	del := &cobra.Command{
		Use:   "delete --name NAME [--subscription ID]",
		Short: "Delete a key vault (soft delete: recoverable for its retention period)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := g.begin(cmd)
			if err != nil {
				return err
			}
			v, err := s.findVault(cmd.Context(), sub, name)
			if err != nil {
				return err
			}
			if err := s.call(cmd.Context(), armScope, "DELETE", armPath(v.ID, apiKeyVault), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted %s; it can be recovered until its retention period ends.\n", v.Name)
			return nil
		},
	}
	recoverCmd := &cobra.Command{
		Use:   "recover --name NAME --subscription ID --resource-group RG --location REGION",
		Short: "Recover a soft-deleted key vault",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var subOut subscriptionOut
			if err := s.call(cmd.Context(), armScope, "GET", armPath("/subscriptions/"+url.PathEscape(sub), apiSubscriptions), nil, &subOut); err != nil {
				return err
			}
			body := map[string]any{"location": location, "properties": map[string]any{"tenantId": subOut.TenantID,
				"sku": map[string]string{"family": "A", "name": "standard"}, "createMode": "recover"}}
			var v vaultOut
			if err := s.call(cmd.Context(), armScope, "PUT", armPath(vaultPath(sub, rg, name), apiKeyVault), body, &v); err != nil {
				return err
			}
			return printVault(pr, v)
		},
	}
	recoverCmd.Flags().StringVar(&location, "location", "", "the deleted vault's region (required)")
	_ = recoverCmd.MarkFlagRequired("location")
	purge := &cobra.Command{
		Use:   "purge --name NAME --subscription ID --location REGION",
		Short: "Purge a soft-deleted key vault for good (refused under purge protection)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := g.begin(cmd)
			if err != nil {
				return err
			}
			p := "/subscriptions/" + url.PathEscape(sub) + "/providers/Microsoft.KeyVault/locations/" + url.PathEscape(location) + "/deletedVaults/" + url.PathEscape(name) + "/purge"
			if err := s.call(cmd.Context(), armScope, "POST", armPath(p, apiKeyVault), nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Purged %s.\n", name)
			return nil
		},
	}
	purge.Flags().StringVar(&location, "location", "", "the deleted vault's region (required)")
	_ = purge.MarkFlagRequired("location")
	var deleted bool
	list := &cobra.Command{
		Use:   "list --subscription ID [--resource-group RG] [--deleted]",
		Short: "List key vaults, or soft-deleted ones",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			base := "/subscriptions/" + url.PathEscape(sub)
			if deleted {
				var out struct {
					Value []deletedVaultOut `json:"value"`
				}
				if err := s.call(cmd.Context(), armScope, "GET", armPath(base+"/providers/Microsoft.KeyVault/deletedVaults", apiKeyVault), nil, &out); err != nil {
					return err
				}
				rows := make([][]string, 0, len(out.Value))
				for _, v := range out.Value {
					rows = append(rows, []string{v.Name, v.Properties.Location, v.Properties.DeletionDate.Format(time.RFC3339),
						v.Properties.ScheduledPurgeDate.Format(time.RFC3339), strconv.FormatBool(v.Properties.PurgeProtectionEnabled)})
				}
				return pr.print(out.Value, []string{"Vault Name", "Location", "Deletion Date", "Scheduled Purge Date", "Purge Protection"}, rows)
			}
			if rg != "" {
				base += "/resourceGroups/" + url.PathEscape(rg)
			}
			var out struct {
				Value []vaultOut `json:"value"`
			}
			if err := s.call(cmd.Context(), armScope, "GET", armPath(base+"/providers/Microsoft.KeyVault/vaults", apiKeyVault), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, v := range out.Value {
				rows = append(rows, []string{v.Name, resourceGroupOf(v.ID), v.Location, v.Properties.SKU.Name, v.Properties.VaultURI})
			}
			return pr.print(out.Value, []string{"Vault Name", "Resource Group", "Location", "SKU", "Vault URI"}, rows)
		},
	}
	list.Flags().BoolVar(&deleted, "deleted", false, "list soft-deleted vaults")
	for _, c := range []*cobra.Command{create, show, update, del, recoverCmd, purge, list} {
		c.Flags().StringVar(&sub, "subscription", os.Getenv("AZURE_SUBSCRIPTION_ID"), "subscription id (default $AZURE_SUBSCRIPTION_ID)")
		if c != list && c != purge {
			c.Flags().StringVar(&rg, "resource-group", "", "resource group")
		}
		if c == list {
			c.Flags().StringVar(&rg, "resource-group", "", "resource group")
			continue
		}
		c.Flags().StringVar(&name, "name", "", "vault name (required)")
		_ = c.MarkFlagRequired("name")
	}
	// Flags registered in the loop above can be required only now.
	if os.Getenv("AZURE_SUBSCRIPTION_ID") == "" {
		for _, c := range []*cobra.Command{create, recoverCmd, purge, list} {
			_ = c.MarkFlagRequired("subscription")
		}
	}
	_ = create.MarkFlagRequired("resource-group")
	_ = recoverCmd.MarkFlagRequired("resource-group")
	cmd.AddCommand(create, show, update, del, recoverCmd, purge, list)
	return cmd
}
