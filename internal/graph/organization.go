package graph

import (
	"net/http"
	"strings"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/identity"
)

type organizationJSON struct {
	Context         string               `json:"@odata.context,omitempty"`
	ID              string               `json:"id"`
	DisplayName     string               `json:"displayName"`
	TenantType      string               `json:"tenantType"`
	CreatedDateTime dateTime             `json:"createdDateTime"`
	VerifiedDomains []verifiedDomainJSON `json:"verifiedDomains"`
	AssignedPlans   []assignedPlanJSON   `json:"assignedPlans"`
}

type verifiedDomainJSON struct {
	Capabilities string `json:"capabilities"`
	IsDefault    bool   `json:"isDefault"`
	IsInitial    bool   `json:"isInitial"`
	Name         string `json:"name"`
	Type         string `json:"type"`
}

type assignedPlanJSON struct {
	AssignedDateTime dateTime `json:"assignedDateTime"`
	CapabilityStatus string   `json:"capabilityStatus"`
	Service          string   `json:"service"`
	ServicePlanID    string   `json:"servicePlanId"`
}

func organization(t directory.Tenant) organizationJSON {
	o := organizationJSON{ID: t.ID, DisplayName: t.DisplayName, TenantType: "AAD", CreatedDateTime: dateTime(t.CreatedAt),
		// A tenant has one domain, its initial *.onmicrosoft.com one, which
		// is therefore also the default.
		VerifiedDomains: []verifiedDomainJSON{{Capabilities: "Email, OfficeCommunicationsOnline", IsDefault: true,
			IsInitial: true, Name: t.DefaultDomain, Type: "Managed"}},
		AssignedPlans: []assignedPlanJSON{}}
	seen := map[string]bool{}
	for _, l := range t.Licenses {
		for _, p := range l.ServicePlans {
			// Two licences may carry the same plan; the tenant has it once.
			if seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			o.AssignedPlans = append(o.AssignedPlans, assignedPlanJSON{AssignedDateTime: dateTime(l.AddedAt),
				CapabilityStatus: "Enabled", Service: p.Name, ServicePlanID: p.ID})
		}
	}
	return o
}

// callerTenant returns the tenant the caller's token was issued in: the
// only organization a caller sees, as in Graph.
func (a *API) callerTenant(r *http.Request, p identity.Principal) (directory.Tenant, error) {
	return a.dir.Tenant(r.Context(), p.TenantID)
}

func (a *API) listOrganization(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	t, err := a.callerTenant(r, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, collection[organizationJSON]{Context: a.context(r, "organization"),
		Value: []organizationJSON{organization(t)}})
}

func (a *API) getOrganization(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	t, err := a.callerTenant(r, p)
	if err != nil {
		return err
	}
	if !strings.EqualFold(id, t.ID) {
		return directory.ErrTenantNotFound
	}
	o := organization(t)
	o.Context = a.context(r, "organization/$entity")
	return writeJSON(w, http.StatusOK, o)
}

type subscribedSkuJSON struct {
	Context          string            `json:"@odata.context,omitempty"`
	ID               string            `json:"id"`
	AccountID        string            `json:"accountId"`
	AccountName      string            `json:"accountName"`
	AppliesTo        string            `json:"appliesTo"`
	CapabilityStatus string            `json:"capabilityStatus"`
	ConsumedUnits    int               `json:"consumedUnits"`
	SkuID            string            `json:"skuId"`
	SkuPartNumber    string            `json:"skuPartNumber"`
	SubscriptionIDs  []string          `json:"subscriptionIds"`
	PrepaidUnits     prepaidUnitsJSON  `json:"prepaidUnits"`
	ServicePlans     []servicePlanJSON `json:"servicePlans"`
}

type prepaidUnitsJSON struct {
	Enabled   int `json:"enabled"`
	LockedOut int `json:"lockedOut"`
	Suspended int `json:"suspended"`
	Warning   int `json:"warning"`
}

type servicePlanJSON struct {
	ServicePlanID      string `json:"servicePlanId"`
	ServicePlanName    string `json:"servicePlanName"`
	ProvisioningStatus string `json:"provisioningStatus"`
	AppliesTo          string `json:"appliesTo"`
}

func subscribedSku(t directory.Tenant, l directory.License) subscribedSkuJSON {
	s := subscribedSkuJSON{ID: t.ID + "_" + l.ID, AccountID: t.ID, AccountName: t.DisplayName, AppliesTo: "User",
		CapabilityStatus: "Enabled",
		// The directory does not assign licences to users, so none is
		// consumed; the tenant-wide plans are what Customer Key checks.
		ConsumedUnits: 0, SkuID: l.ID, SkuPartNumber: l.PartNumber, SubscriptionIDs: []string{},
		PrepaidUnits: prepaidUnitsJSON{Enabled: l.PrepaidUnits}, ServicePlans: []servicePlanJSON{}}
	for _, p := range l.ServicePlans {
		s.ServicePlans = append(s.ServicePlans, servicePlanJSON{ServicePlanID: p.ID, ServicePlanName: p.Name,
			ProvisioningStatus: "Success", AppliesTo: "User"})
	}
	return s
}

func (a *API) listSubscribedSkus(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	t, err := a.callerTenant(r, p)
	if err != nil {
		return err
	}
	out := collection[subscribedSkuJSON]{Context: a.context(r, "subscribedSkus"), Value: []subscribedSkuJSON{}}
	for _, l := range t.Licenses {
		out.Value = append(out.Value, subscribedSku(t, l))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) getSubscribedSku(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	t, err := a.callerTenant(r, p)
	if err != nil {
		return err
	}
	for _, l := range t.Licenses {
		if strings.EqualFold(id, t.ID+"_"+l.ID) {
			s := subscribedSku(t, l)
			s.Context = a.context(r, "subscribedSkus/$entity")
			return writeJSON(w, http.StatusOK, s)
		}
	}
	return errNotFound(id)
}
