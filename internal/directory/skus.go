package directory

import "strings"

// ServicePlan is one service inside a licence.
type ServicePlan struct {
	ID   string `json:"servicePlanId"`
	Name string `json:"servicePlanName"`
}

// SKU is a licence product a tenant can subscribe to.
type SKU struct {
	ID           string        `json:"skuId"`
	PartNumber   string        `json:"skuPartNumber"`
	Name         string        `json:"displayName"`
	ServicePlans []ServicePlan `json:"servicePlans"`
}

// Service plans. CustomerKeyPlan is the one the onboarding rule
// OrganizationHasRequiredServicePlan looks for.
var (
	CustomerKeyPlan = ServicePlan{ID: "6db1f1db-2b46-403f-be40-e39395f08dbb", Name: "CUSTOMER_KEY"}
	exchangePlan    = ServicePlan{ID: "efb87545-963c-4e0d-99df-69c6916d9eb0", Name: "EXCHANGE_S_ENTERPRISE"}
	sharePointPlan  = ServicePlan{ID: "5dbe027f-2339-4123-9542-606e4d348a72", Name: "SHAREPOINTENTERPRISE"}
	exchangeK1Plan  = ServicePlan{ID: "4a82b400-a79f-41a4-b4e2-e94f5787b113", Name: "EXCHANGE_S_DESKLESS"}
	equivioPlan     = ServicePlan{ID: "4de31727-a228-4ec3-a5bf-8e45b5ca48cc", Name: "EQUIVIO_ANALYTICS"}
)

// SKUs is the catalogue, in the order the seed lists the qualifying ones.
// Part numbers and ids are Microsoft's where Microsoft publishes them.
var SKUs = []SKU{
	{ID: "c7df2760-2c81-4ef7-b578-5b5392b571df", PartNumber: "ENTERPRISEPREMIUM", Name: "Office 365 E5",
		ServicePlans: []ServicePlan{exchangePlan, sharePointPlan, CustomerKeyPlan}},
	{ID: "06ebc4ee-1bb5-47dd-8120-11324bc54e06", PartNumber: "SPE_E5", Name: "Microsoft 365 E5",
		ServicePlans: []ServicePlan{exchangePlan, sharePointPlan, CustomerKeyPlan}},
	{ID: "184efa21-98c3-4e5d-95ab-d07053a96e67", PartNumber: "INFORMATION_PROTECTION_COMPLIANCE", Name: "Microsoft 365 E5 Compliance",
		ServicePlans: []ServicePlan{equivioPlan, CustomerKeyPlan}},
	{ID: "e2be619b-b125-455f-8660-fb503e431a5d", PartNumber: "M365_E5_IP_GOVERNANCE", Name: "Microsoft 365 E5 Information Protection & Governance",
		ServicePlans: []ServicePlan{CustomerKeyPlan}},
	{ID: "2347355b-4e81-41a4-9c22-55057a399791", PartNumber: "M365_SECURITY_COMPLIANCE_FOR_FLW", Name: "Microsoft 365 Security and Compliance for FLW",
		ServicePlans: []ServicePlan{CustomerKeyPlan}},
	{ID: "1b1b1f7a-8355-43b6-829f-336cfccb744c", PartNumber: "EQUIVIO_ANALYTICS", Name: "Office 365 Advanced Compliance",
		ServicePlans: []ServicePlan{equivioPlan, CustomerKeyPlan}},
	{ID: "6fd2c87f-b296-42f0-b197-1e91e994b900", PartNumber: "ENTERPRISEPACK", Name: "Office 365 E3",
		ServicePlans: []ServicePlan{exchangePlan, sharePointPlan}},
	{ID: "05e9a617-0261-4cee-bb44-138d3ef5d965", PartNumber: "SPE_E3", Name: "Microsoft 365 E3",
		ServicePlans: []ServicePlan{exchangePlan, sharePointPlan}},
	{ID: "18181a46-0d4e-45cd-891e-60aabd171b4e", PartNumber: "STANDARDPACK", Name: "Office 365 E1",
		ServicePlans: []ServicePlan{exchangeK1Plan}},
}

// LookupSKU finds a SKU by display name, part number or id, ignoring case.
func LookupSKU(s string) (SKU, bool) {
	s = strings.TrimSpace(s)
	for _, k := range SKUs {
		if strings.EqualFold(k.Name, s) || strings.EqualFold(k.PartNumber, s) || strings.EqualFold(k.ID, s) {
			return k, true
		}
	}
	return SKU{}, false
}

// SKUNames lists the display names, for error messages.
func SKUNames() string {
	names := make([]string, len(SKUs))
	for i, k := range SKUs {
		names[i] = "\"" + k.Name + "\""
	}
	return strings.Join(names, ", ")
}
