package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// API versions the CLI speaks, the ones the official clients send.
const (
	apiSubscriptions = "2022-12-01"
	apiResources     = "2021-04-01"
	apiFeatures      = "2021-07-01"
	apiKeyVault      = "2024-11-01"
	apiAuthorization = "2022-04-01"
	apiCancel        = "2021-10-01"
)

func armPath(path, version string, query ...string) string {
	q := url.Values{"api-version": {version}}
	for i := 0; i+1 < len(query); i += 2 {
		q.Set(query[i], query[i+1])
	}
	return path + "?" + q.Encode()
}

type subscriptionOut struct {
	ID                   string `json:"id"`
	SubscriptionID       string `json:"subscriptionId"`
	TenantID             string `json:"tenantId"`
	DisplayName          string `json:"displayName"`
	State                string `json:"state"`
	SubscriptionPolicies struct {
		QuotaID string `json:"quotaId"`
	} `json:"subscriptionPolicies"`
}

func subscriptionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "subscription", Short: "Azure subscriptions: the key custody domains"}
	var tenant, name, offer string
	var owners []string
	create := &cobra.Command{
		Use:   "create --tenant-id T --name NAME --offer OFFER [--owner OBJECT_ID]...",
		Short: "Create a subscription (operator: any offer; a tenant's Global Administrator: PayAsYouGo)",
		Long: `Create a subscription for a tenant.

Paid offers: PayAsYouGo, EnterpriseAgreement, MicrosoftCustomerAgreement.
Not paid (Customer Key refuses them): FreeTrial, MSDN, Sponsorship, LegacySupport.
Owners default to the tenant's first Global Administrator and automation application.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			if tenant == "" {
				tenant = s.prof.TenantID
			}
			var out struct {
				SubscriptionID string `json:"subscriptionId"`
			}
			in := map[string]any{"tenantId": tenant, "displayName": name, "offer": offer, "owners": owners}
			if err := s.call(cmd.Context(), armScope, "POST", "/customerkey/v1/subscriptions", in, &out); err != nil {
				return err
			}
			return pr.printFields(out, [][2]string{{"SubscriptionId", out.SubscriptionID}})
		},
	}
	create.Flags().StringVar(&tenant, "tenant-id", "", "tenant the subscription belongs to (default the signed-in tenant)")
	create.Flags().StringVar(&name, "name", "", "display name (required)")
	create.Flags().StringVar(&offer, "offer", "PayAsYouGo", "offer")
	create.Flags().StringArrayVar(&owners, "owner", nil, "object id of an Owner (repeatable)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the subscriptions the signed-in identity can see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []subscriptionOut `json:"value"`
			}
			if err := s.call(cmd.Context(), armScope, "GET", armPath("/subscriptions", apiSubscriptions), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, v := range out.Value {
				rows = append(rows, []string{v.DisplayName, v.SubscriptionID, v.State, v.TenantID})
			}
			return pr.print(out.Value, []string{"Name", "Id", "State", "TenantId"}, rows)
		},
	}
	var id string
	show := &cobra.Command{
		Use:   "show --subscription ID",
		Short: "Show a subscription",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var v subscriptionOut
			if err := s.call(cmd.Context(), armScope, "GET", armPath("/subscriptions/"+url.PathEscape(id), apiSubscriptions), nil, &v); err != nil {
				return err
			}
			return pr.printFields(v, [][2]string{{"Name", v.DisplayName}, {"Id", v.SubscriptionID}, {"TenantId", v.TenantID},
				{"State", v.State}, {"QuotaId", v.SubscriptionPolicies.QuotaID}})
		},
	}
	subscriptionFlag(show, &id)
	var cancelID string
	cancel := &cobra.Command{
		Use:   "cancel --subscription ID",
		Short: "Cancel a subscription (under the mandatory retention period it takes effect only when the period ends)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := s.call(cmd.Context(), armScope, "POST", armPath("/subscriptions/"+url.PathEscape(cancelID)+"/providers/Microsoft.Subscription/cancel", apiCancel), nil, &out); err != nil {
				return err
			}
			var v subscriptionOut
			if err := s.call(cmd.Context(), armScope, "GET", armPath("/subscriptions/"+url.PathEscape(cancelID), apiSubscriptions), nil, &v); err != nil {
				return err
			}
			return pr.printFields(v, [][2]string{{"Id", v.SubscriptionID}, {"State", v.State}})
		},
	}
	subscriptionFlag(cancel, &cancelID)
	cmd.AddCommand(create, list, show, cancel)
	return cmd
}

type providerOut struct {
	Namespace         string `json:"namespace"`
	RegistrationState string `json:"registrationState"`
}

func providerCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "provider", Short: "Resource providers (Register-AzResourceProvider)"}
	for _, verb := range []string{"register", "show", "unregister"} {
		var ns, sub string
		c := &cobra.Command{
			Use:   verb + " --namespace NS --subscription ID",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a resource provider in a subscription",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, pr, err := g.begin(cmd)
				if err != nil {
					return err
				}
				base := "/subscriptions/" + url.PathEscape(sub) + "/providers/" + url.PathEscape(ns)
				var p providerOut
				if verb == "show" {
					err = s.call(cmd.Context(), armScope, "GET", armPath(base, apiResources), nil, &p)
				} else {
					err = s.call(cmd.Context(), armScope, "POST", armPath(base+"/"+verb, apiResources), nil, &p)
				}
				if err != nil {
					return err
				}
				return pr.printFields(p, [][2]string{{"ProviderNamespace", p.Namespace}, {"RegistrationState", p.RegistrationState}})
			},
		}
		c.Flags().StringVar(&ns, "namespace", "", "provider namespace, e.g. Microsoft.KeyVault (required)")
		subscriptionFlag(c, &sub)
		_ = c.MarkFlagRequired("namespace")
		cmd.AddCommand(c)
	}
	return cmd
}

type featureOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		State string `json:"state"`
	} `json:"properties"`
}

func featureCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "feature", Short: "Subscription features (Get-/Register-AzProviderFeature)"}
	for _, verb := range []string{"show", "register", "unregister"} {
		var name, ns, sub string
		c := &cobra.Command{
			Use:   verb + " --name FEATURE --namespace NS --subscription ID",
			Short: strings.ToUpper(verb[:1]) + verb[1:] + " a feature, e.g. Microsoft.Resources/mandatoryRetentionPeriodEnabled",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				s, pr, err := g.begin(cmd)
				if err != nil {
					return err
				}
				base := "/subscriptions/" + url.PathEscape(sub) + "/providers/Microsoft.Features/providers/" + url.PathEscape(ns) + "/features/" + url.PathEscape(name)
				var f featureOut
				if verb == "show" {
					err = s.call(cmd.Context(), armScope, "GET", armPath(base, apiFeatures), nil, &f)
				} else {
					err = s.call(cmd.Context(), armScope, "POST", armPath(base+"/"+verb, apiFeatures), nil, &f)
				}
				if err != nil {
					return err
				}
				fname, _ := strings.CutPrefix(f.Name, ns+"/")
				return pr.printFields(f, [][2]string{{"FeatureName", fname}, {"ProviderName", ns}, {"RegistrationState", f.Properties.State}})
			},
		}
		c.Flags().StringVar(&name, "name", "", "feature name, e.g. mandatoryRetentionPeriodEnabled (required)")
		c.Flags().StringVar(&ns, "namespace", "", "provider namespace, e.g. Microsoft.Resources (required)")
		subscriptionFlag(c, &sub)
		_ = c.MarkFlagRequired("name")
		_ = c.MarkFlagRequired("namespace")
		cmd.AddCommand(c)
	}
	return cmd
}

type groupOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Location   string `json:"location"`
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
	} `json:"properties"`
}

func groupCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "group", Short: "Resource groups"}
	var sub, name, location string
	var force bool
	create := &cobra.Command{
		Use:   "create --subscription ID --name RG --location REGION",
		Short: "Create or update a resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out groupOut
			p := armPath("/subscriptions/"+url.PathEscape(sub)+"/resourcegroups/"+url.PathEscape(name), apiResources)
			if err := s.call(cmd.Context(), armScope, "PUT", p, map[string]string{"location": location}, &out); err != nil {
				return err
			}
			return pr.printFields(out, [][2]string{{"ResourceGroupName", out.Name}, {"Location", out.Location},
				{"ProvisioningState", out.Properties.ProvisioningState}, {"ResourceId", out.ID}})
		},
	}
	create.Flags().StringVar(&location, "location", "", "Azure region, e.g. westeurope (required)")
	_ = create.MarkFlagRequired("location")
	del := &cobra.Command{
		Use:   "delete --subscription ID --name RG [--force]",
		Short: "Delete a resource group (refused while it holds vaults, unless --force)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, _, err := g.begin(cmd)
			if err != nil {
				return err
			}
			q := []string{}
			if force {
				q = append(q, "forceDeletionTypes", "Microsoft.KeyVault/vaults")
			}
			return s.call(cmd.Context(), armScope, "DELETE", armPath("/subscriptions/"+url.PathEscape(sub)+"/resourcegroups/"+url.PathEscape(name), apiResources, q...), nil, nil)
		},
	}
	del.Flags().BoolVar(&force, "force", false, "also delete the vaults in it")
	list := &cobra.Command{
		Use:   "list --subscription ID",
		Short: "List resource groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, pr, err := g.begin(cmd)
			if err != nil {
				return err
			}
			var out struct {
				Value []groupOut `json:"value"`
			}
			if err := s.call(cmd.Context(), armScope, "GET", armPath("/subscriptions/"+url.PathEscape(sub)+"/resourcegroups", apiResources), nil, &out); err != nil {
				return err
			}
			rows := make([][]string, 0, len(out.Value))
			for _, v := range out.Value {
				rows = append(rows, []string{v.Name, v.Location, v.Properties.ProvisioningState})
			}
			return pr.print(out.Value, []string{"Name", "Location", "ProvisioningState"}, rows)
		},
	}
	for _, c := range []*cobra.Command{create, del, list} {
		subscriptionFlag(c, &sub)
		if c != list {
			c.Flags().StringVar(&name, "name", "", "resource group name (required)")
			_ = c.MarkFlagRequired("name")
		}
	}
	cmd.AddCommand(create, del, list)
	return cmd
}

// registerProvider registers ns and waits until it is Registered, as the
// ARM SDK does on MissingSubscriptionRegistration.
func (s *session) registerProvider(ctx context.Context, sub, ns string) error {
	base := "/subscriptions/" + url.PathEscape(sub) + "/providers/" + url.PathEscape(ns)
	var p providerOut
	if err := s.call(ctx, armScope, "POST", armPath(base+"/register", apiResources), nil, &p); err != nil {
		return err
	}
	for i := 0; p.RegistrationState != "Registered"; i++ {
		if i == 60 {
			return fmt.Errorf("the provider %s is still %s; try again later", ns, p.RegistrationState)
		}
		if err := sleep(ctx, 1); err != nil {
			return err
		}
		if err := s.call(ctx, armScope, "GET", armPath(base, apiResources), nil, &p); err != nil {
			return err
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var ae *apiError
	return errors.As(err, &ae) && strings.EqualFold(ae.Code, code)
}

// subscriptionFlag adds --subscription, which defaults to
// AZURE_SUBSCRIPTION_ID as Azure tools do (the seed's Set-AzContext).
func subscriptionFlag(c *cobra.Command, p *string) {
	def := os.Getenv("AZURE_SUBSCRIPTION_ID")
	c.Flags().StringVar(p, "subscription", def, "subscription id (default $AZURE_SUBSCRIPTION_ID)")
	if def == "" {
		_ = c.MarkFlagRequired("subscription")
	}
}
