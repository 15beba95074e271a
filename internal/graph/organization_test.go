package graph_test

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/directory"
)

type organizationJSON struct {
	Context         string `json:"@odata.context"`
	ID              string
	DisplayName     string
	TenantType      string
	CreatedDateTime string
	VerifiedDomains []struct {
		Name                 string
		IsDefault, IsInitial bool
		Type                 string
	}
	AssignedPlans []struct {
		ServicePlanID    string `json:"servicePlanId"`
		Service          string
		CapabilityStatus string
	}
}

func TestOrganization(t *testing.T) {
	f := newFixture(t)
	contoso := f.contoso.Tenant
	tests := []struct {
		name    string
		path    string
		context string
		single  bool
	}{
		{"collection", "/v1.0/organization", "organization", false},
		{"by id", "/v1.0/organization/" + contoso.ID, "organization/$entity", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("GET", tc.path, tokUser, nil)
			if r.header.Get("request-id") == "" || r.header.Get("request-id") != r.header.Get("x-ms-request-id") {
				t.Errorf("request-id header = %q, want the request's id %q", r.header.Get("request-id"), r.header.Get("x-ms-request-id"))
			}
			var o organizationJSON
			if tc.single {
				o = want[organizationJSON](t, r, http.StatusOK)
			} else {
				c := want[collection[organizationJSON]](t, r, http.StatusOK)
				if len(c.Value) != 1 {
					t.Fatalf("GET %s returned %d organizations, want only the caller's", tc.path, len(c.Value))
				}
				o, o.Context = c.Value[0], c.Context
			}
			if o.Context != f.contextURL(tc.context) {
				t.Errorf("@odata.context = %q, want %q", o.Context, f.contextURL(tc.context))
			}
			if o.ID != contoso.ID || o.DisplayName != "Contoso" || o.TenantType != "AAD" || o.CreatedDateTime == "" {
				t.Errorf("organization = %+v, want Contoso's id, name, tenantType AAD and createdDateTime", o)
			}
			if len(o.VerifiedDomains) != 1 || o.VerifiedDomains[0].Name != contoso.DefaultDomain ||
				!o.VerifiedDomains[0].IsDefault || !o.VerifiedDomains[0].IsInitial || o.VerifiedDomains[0].Type != "Managed" {
				t.Errorf("verifiedDomains = %+v, want the one managed default domain %s", o.VerifiedDomains, contoso.DefaultDomain)
			}
			var plans []string
			for _, p := range o.AssignedPlans {
				plans = append(plans, p.ServicePlanID)
				if p.CapabilityStatus != "Enabled" {
					t.Errorf("assigned plan %s capabilityStatus = %q, want Enabled", p.Service, p.CapabilityStatus)
				}
			}
			sku, _ := directory.LookupSKU("Office 365 E5")
			var wantPlans []string
			for _, p := range sku.ServicePlans {
				wantPlans = append(wantPlans, p.ID)
			}
			if diff := cmp.Diff(wantPlans, plans); diff != "" {
				t.Errorf("assignedPlans mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("other tenant's id", func(t *testing.T) {
		r := f.call("GET", "/v1.0/organization/"+f.fabrikam.Tenant.ID, tokUser, nil)
		wantError(t, r, http.StatusNotFound, "Request_ResourceNotFound")
	})
	t.Run("tenant gone", func(t *testing.T) {
		r := f.call("GET", "/v1.0/organization", tokNoTenant, nil)
		wantError(t, r, http.StatusNotFound, "Request_ResourceNotFound")
	})
}

type subscribedSkuJSON struct {
	Context          string `json:"@odata.context"`
	ID               string
	SkuID            string `json:"skuId"`
	SkuPartNumber    string
	CapabilityStatus string
	AppliesTo        string
	ConsumedUnits    int
	PrepaidUnits     struct{ Enabled, Suspended, Warning, LockedOut int }
	ServicePlans     []struct {
		ServicePlanID      string `json:"servicePlanId"`
		ServicePlanName    string
		ProvisioningStatus string
		AppliesTo          string
	}
}

func TestSubscribedSkus(t *testing.T) {
	f := newFixture(t)
	tid := f.contoso.Tenant.ID
	sku, _ := directory.LookupSKU("ENTERPRISEPREMIUM")

	c := want[collection[subscribedSkuJSON]](t, f.call("GET", "/v1.0/subscribedSkus", tokAdmin, nil), http.StatusOK)
	if c.Context != f.contextURL("subscribedSkus") || len(c.Value) != 1 {
		t.Fatalf("GET /subscribedSkus = %+v, want one SKU with context %s", c, f.contextURL("subscribedSkus"))
	}
	s := c.Value[0]
	if s.ID != tid+"_"+sku.ID || s.SkuID != sku.ID || s.SkuPartNumber != "ENTERPRISEPREMIUM" ||
		s.CapabilityStatus != "Enabled" || s.AppliesTo != "User" || s.PrepaidUnits.Enabled != directory.DefaultLicenseUnits {
		t.Errorf("subscribedSku = %+v, want E5 with id {tenant}_{sku} and %d enabled units", s, directory.DefaultLicenseUnits)
	}
	var names []string
	for _, p := range s.ServicePlans {
		names = append(names, p.ServicePlanName)
		if p.ProvisioningStatus != "Success" || p.AppliesTo != "User" {
			t.Errorf("service plan %+v, want provisioningStatus Success, appliesTo User", p)
		}
	}
	if diff := cmp.Diff([]string{"EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE", "CUSTOMER_KEY"}, names); diff != "" {
		t.Errorf("servicePlans mismatch (-want +got):\n%s", diff)
	}

	one := want[subscribedSkuJSON](t, f.call("GET", "/v1.0/subscribedSkus/"+s.ID, tokAdmin, nil), http.StatusOK)
	if one.SkuID != sku.ID || one.Context != f.contextURL("subscribedSkus/$entity") {
		t.Errorf("GET /subscribedSkus/{id} = %+v, want the E5 SKU", one)
	}
	wantError(t, f.call("GET", "/v1.0/subscribedSkus/"+tid+"_nope", tokAdmin, nil), http.StatusNotFound, "Request_ResourceNotFound")

	// A tenant without licences has an empty collection, not null.
	empty := f.call("GET", "/v1.0/subscribedSkus", tokFabrikam, nil)
	if ce := want[collection[subscribedSkuJSON]](t, empty, http.StatusOK); ce.Value == nil || len(ce.Value) != 0 {
		t.Errorf("GET /subscribedSkus for an unlicensed tenant = %s, want \"value\":[]", empty.body)
	}
}
