package arm

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/resources"
)

// Resources is what this surface needs of package resources.
type Resources interface {
	Subscription(ctx context.Context, id string) (tenantID string, usable error, err error)
	Get(ctx context.Context, id string) (resources.Subscription, error)
	List(ctx context.Context, tenantID string) ([]resources.Subscription, error)
	Cancel(ctx context.Context, c directory.Caller, id string) (resources.Subscription, error)
	CreateOrUpdateGroup(ctx context.Context, c directory.Caller, sub, name string, spec resources.GroupSpec) (resources.ResourceGroup, bool, error)
	Group(ctx context.Context, sub, name string) (resources.ResourceGroup, error)
	Groups(ctx context.Context, sub string) ([]resources.ResourceGroup, error)
	DeleteGroup(ctx context.Context, c directory.Caller, sub, name string, force bool) error
	Providers(ctx context.Context, sub string) ([]resources.Provider, error)
	Provider(ctx context.Context, sub, ns string) (resources.Provider, error)
	RegisterProvider(ctx context.Context, c directory.Caller, sub, ns string) (resources.Provider, error)
	UnregisterProvider(ctx context.Context, c directory.Caller, sub, ns string) (resources.Provider, error)
	Features(ctx context.Context, sub string) ([]resources.Feature, error)
	Feature(ctx context.Context, sub, ns, name string) (resources.Feature, error)
	RegisterFeature(ctx context.Context, c directory.Caller, sub, ns, name string) (resources.Feature, error)
	UnregisterFeature(ctx context.Context, c directory.Caller, sub, ns, name string) (resources.Feature, error)
}

var _ Resources = (*resources.Service)(nil)

// API versions: the ones the current official clients send, and older
// ones of the published specifications.
var (
	subscriptionVersions = []string{"2022-12-01", "2021-01-01", "2020-01-01", "2016-06-01"}
	resourceVersions     = []string{"2021-04-01", "2022-09-01", "2020-06-01", "2019-05-01", "2019-10-01", "2020-10-01", "2021-01-01", "2023-07-01", "2024-03-01"}
	featureVersions      = []string{"2021-07-01", "2015-12-01"}
	cancelVersions       = []string{"2021-10-01", "2020-09-01", "2019-10-01-preview"}
)

func (a *API) resourceRoutes() []route {
	return []route{
		newRoute("GET", "/subscriptions", subscriptionVersions, a.listSubscriptions),
		newRoute("GET", "/subscriptions/{sub}", subscriptionVersions, a.getSubscription),
		newRoute("POST", "/subscriptions/{sub}/providers/Microsoft.Subscription/cancel", cancelVersions, a.cancelSubscription),
		newRoute("GET", "/subscriptions/{sub}/resourcegroups", resourceVersions, a.listGroups),
		newRoute("PUT", "/subscriptions/{sub}/resourcegroups/{rg}", resourceVersions, a.putGroup),
		newRoute("PATCH", "/subscriptions/{sub}/resourcegroups/{rg}", resourceVersions, a.patchGroup),
		newRoute("GET", "/subscriptions/{sub}/resourcegroups/{rg}", resourceVersions, a.getGroup),
		newRoute("DELETE", "/subscriptions/{sub}/resourcegroups/{rg}", resourceVersions, a.deleteGroup),
		newRoute("GET", "/subscriptions/{sub}/providers", resourceVersions, a.listProviders),
		newRoute("GET", "/subscriptions/{sub}/providers/{ns}", resourceVersions, a.getProvider),
		newRoute("POST", "/subscriptions/{sub}/providers/{ns}/register", resourceVersions, a.registerProvider),
		newRoute("POST", "/subscriptions/{sub}/providers/{ns}/unregister", resourceVersions, a.unregisterProvider),
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.Features/features", featureVersions, a.listFeatures),
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.Features/providers/{ns}/features", featureVersions, a.listFeatures),
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.Features/providers/{ns}/features/{name}", featureVersions, a.getFeature),
		newRoute("POST", "/subscriptions/{sub}/providers/Microsoft.Features/providers/{ns}/features/{name}/register", featureVersions, a.registerFeature),
		newRoute("POST", "/subscriptions/{sub}/providers/Microsoft.Features/providers/{ns}/features/{name}/unregister", featureVersions, a.unregisterFeature),
	}
}

// Management actions checked here.
const (
	actSubscriptionRead  = "Microsoft.Resources/subscriptions/read"
	actSubscriptionCanc  = "Microsoft.Subscription/cancel/action"
	actGroupRead         = "Microsoft.Resources/subscriptions/resourceGroups/read"
	actGroupWrite        = "Microsoft.Resources/subscriptions/resourceGroups/write"
	actGroupDelete       = "Microsoft.Resources/subscriptions/resourceGroups/delete"
	actProvidersRead     = "Microsoft.Resources/subscriptions/providers/read"
	actFeaturesRead      = "Microsoft.Features/features/read"
	actFeatureRegister   = "Microsoft.Features/providers/features/register/action"
	actFeatureUnregister = "Microsoft.Features/providers/features/unregister/action"
)

type subscriptionPolicies struct {
	LocationPlacementID string `json:"locationPlacementId"`
	QuotaID             string `json:"quotaId"`
	SpendingLimit       string `json:"spendingLimit"`
}

type subscriptionOut struct {
	ID                   string               `json:"id"`
	SubscriptionID       string               `json:"subscriptionId"`
	TenantID             string               `json:"tenantId"`
	DisplayName          string               `json:"displayName"`
	State                string               `json:"state"`
	SubscriptionPolicies subscriptionPolicies `json:"subscriptionPolicies"`
	AuthorizationSource  string               `json:"authorizationSource"`
	ManagedByTenants     []any                `json:"managedByTenants"`
	Tags                 map[string]string    `json:"tags"`
}

func subscriptionJSON(s resources.Subscription) subscriptionOut {
	return subscriptionOut{ID: "/subscriptions/" + s.ID, SubscriptionID: s.ID, TenantID: s.TenantID, DisplayName: s.DisplayName,
		State: string(s.State), AuthorizationSource: "RoleBased", ManagedByTenants: []any{}, Tags: map[string]string{},
		SubscriptionPolicies: subscriptionPolicies{LocationPlacementID: "Public_2014-09-01", QuotaID: s.Offer.QuotaID(), SpendingLimit: s.Offer.SpendingLimit()}}
}

// listSubscriptions lists the caller's tenant's subscriptions that it may
// read, as ARM lists the subscriptions a principal has access to.
func (a *API) listSubscriptions(w http.ResponseWriter, r *http.Request, p identity.Principal, _ match) error {
	subs, err := a.o.Subscriptions.List(r.Context(), p.TenantID)
	if err != nil {
		return err
	}
	out := []subscriptionOut{}
	for _, s := range subs {
		if s.State == resources.Deleted {
			continue
		}
		if a.o.RBAC.Check(r.Context(), rbacPrincipal(p), actSubscriptionRead, resourceid.Subscription(s.ID)) == nil {
			out = append(out, subscriptionJSON(s))
		}
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out, "count": map[string]any{"type": "Total", "value": len(out)}})
}

func (a *API) getSubscription(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Subscription(m["sub"])
	if err := a.authorize(r.Context(), p, actSubscriptionRead, scope); err != nil {
		return err
	}
	s, err := a.o.Subscriptions.Get(r.Context(), m["sub"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, subscriptionJSON(s))
}

func (a *API) cancelSubscription(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actSubscriptionCanc, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	s, err := a.o.Subscriptions.Cancel(r.Context(), caller(p), m["sub"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, map[string]string{"subscriptionId": s.ID})
}

type groupOut struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
	} `json:"properties"`
}

func groupJSON(g resources.ResourceGroup) groupOut {
	out := groupOut{ID: g.ResourceID().String(), Name: g.Name, Type: "Microsoft.Resources/resourceGroups", Location: g.Location, Tags: g.Tags}
	out.Properties.ProvisioningState = "Succeeded"
	return out
}

type groupIn struct {
	Location string            `json:"location"`
	Tags     map[string]string `json:"tags"`
}

func (a *API) putGroup(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.ResourceGroup(m["sub"], m["rg"])
	if err := a.authorize(r.Context(), p, actGroupWrite, scope); err != nil {
		return err
	}
	var in groupIn
	if err := decode(r, &in); err != nil {
		return err
	}
	g, created, err := a.o.Subscriptions.CreateOrUpdateGroup(r.Context(), caller(p), m["sub"], m["rg"], resources.GroupSpec{Location: in.Location, Tags: in.Tags})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return httpx.JSON(w, status, groupJSON(g))
}

// patchGroup updates tags only; ARM refuses a location change.
func (a *API) patchGroup(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.ResourceGroup(m["sub"], m["rg"])
	if err := a.authorize(r.Context(), p, actGroupWrite, scope); err != nil {
		return err
	}
	var in groupIn
	if err := decode(r, &in); err != nil {
		return err
	}
	ctx := r.Context()
	g, err := a.o.Subscriptions.Group(ctx, m["sub"], m["rg"])
	if err != nil {
		return err
	}
	if in.Location == "" {
		in.Location = g.Location
	}
	if in.Tags == nil {
		in.Tags = g.Tags
	}
	g, _, err = a.o.Subscriptions.CreateOrUpdateGroup(ctx, caller(p), m["sub"], g.Name, resources.GroupSpec{Location: in.Location, Tags: in.Tags})
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, groupJSON(g))
}

func (a *API) getGroup(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.ResourceGroup(m["sub"], m["rg"])
	if err := a.authorize(r.Context(), p, actGroupRead, scope); err != nil {
		return err
	}
	g, err := a.o.Subscriptions.Group(r.Context(), m["sub"], m["rg"])
	if err != nil {
		return err
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return httpx.JSON(w, http.StatusOK, groupJSON(g))
}

func (a *API) listGroups(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	ctx := r.Context()
	if err := a.subscriptionFor(ctx, p, m["sub"]); err != nil {
		return err
	}
	gs, err := a.o.Subscriptions.Groups(ctx, m["sub"])
	if err != nil {
		return err
	}
	out := []groupOut{}
	for _, g := range gs {
		if a.o.RBAC.Check(ctx, rbacPrincipal(p), actGroupRead, g.ResourceID()) == nil {
			out = append(out, groupJSON(g))
		}
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

// deleteGroup deletes at once; the SDK's poller accepts a 200 as done.
// forceDeletionTypes=Microsoft.KeyVault/vaults deletes the vaults in it.
func (a *API) deleteGroup(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.ResourceGroup(m["sub"], m["rg"])
	if err := a.authorize(r.Context(), p, actGroupDelete, scope); err != nil {
		return err
	}
	force := false
	for _, t := range strings.Split(r.URL.Query().Get("forceDeletionTypes"), ",") {
		if strings.EqualFold(strings.TrimSpace(t), "Microsoft.KeyVault/vaults") {
			force = true
		}
	}
	if err := a.o.Subscriptions.DeleteGroup(r.Context(), caller(p), m["sub"], m["rg"], force); err != nil {
		if errkind.Is(err, errkind.NotFound) {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type providerOut struct {
	ID                 string            `json:"id"`
	Namespace          string            `json:"namespace"`
	RegistrationState  string            `json:"registrationState"`
	RegistrationPolicy string            `json:"registrationPolicy"`
	ResourceTypes      []resourceTypeOut `json:"resourceTypes"`
}

type resourceTypeOut struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
	APIVersions  []string `json:"apiVersions"`
}

// providerTypes lists the resource types each provider serves here.
var providerTypes = map[string][]resourceTypeOut{
	"microsoft.keyvault": {
		{ResourceType: "vaults", APIVersions: vaultVersions},
		{ResourceType: "deletedVaults", APIVersions: vaultVersions},
		{ResourceType: "locations/deletedVaults", APIVersions: vaultVersions},
		{ResourceType: "checkNameAvailability", APIVersions: vaultVersions},
	},
	"microsoft.resources": {{ResourceType: "resourceGroups", APIVersions: resourceVersions}, {ResourceType: "subscriptions", APIVersions: subscriptionVersions}},
	"microsoft.features":  {{ResourceType: "features", APIVersions: featureVersions}, {ResourceType: "providers", APIVersions: featureVersions}},
	"microsoft.authorization": {{ResourceType: "roleAssignments", APIVersions: authorizationVersions},
		{ResourceType: "roleDefinitions", APIVersions: authorizationVersions}},
}

func providerJSON(pr resources.Provider) providerOut {
	policy := "RegistrationFree"
	if strings.EqualFold(pr.Namespace, resources.NamespaceKeyVault) {
		policy = "RegistrationRequired"
	}
	types := providerTypes[strings.ToLower(pr.Namespace)]
	if types == nil {
		types = []resourceTypeOut{}
	}
	return providerOut{ID: "/subscriptions/" + pr.SubscriptionID + "/providers/" + pr.Namespace, Namespace: pr.Namespace,
		RegistrationState: string(pr.State), RegistrationPolicy: policy, ResourceTypes: types}
}

func (a *API) listProviders(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actProvidersRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	ps, err := a.o.Subscriptions.Providers(r.Context(), m["sub"])
	if err != nil {
		return err
	}
	out := make([]providerOut, 0, len(ps))
	for _, pr := range ps {
		out = append(out, providerJSON(pr))
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) getProvider(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actProvidersRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	pr, err := a.o.Subscriptions.Provider(r.Context(), m["sub"], m["ns"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, providerJSON(pr))
}

func (a *API) registerProvider(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, m["ns"]+"/register/action", resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	pr, err := a.o.Subscriptions.RegisterProvider(r.Context(), caller(p), m["sub"], m["ns"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, providerJSON(pr))
}

func (a *API) unregisterProvider(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, m["ns"]+"/unregister/action", resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	pr, err := a.o.Subscriptions.UnregisterProvider(r.Context(), caller(p), m["sub"], m["ns"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, providerJSON(pr))
}

type featureOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		State string `json:"state"`
	} `json:"properties"`
}

func featureJSON(f resources.Feature) featureOut {
	out := featureOut{ID: "/subscriptions/" + f.SubscriptionID + "/providers/Microsoft.Features/providers/" + f.Namespace + "/features/" + f.Name,
		Name: f.Namespace + "/" + f.Name, Type: "Microsoft.Features/providers/features"}
	out.Properties.State = string(f.State)
	return out
}

func (a *API) listFeatures(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actFeaturesRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	fs, err := a.o.Subscriptions.Features(r.Context(), m["sub"])
	if err != nil {
		return err
	}
	out := []featureOut{}
	for _, f := range fs {
		if ns := m["ns"]; ns == "" || strings.EqualFold(ns, f.Namespace) {
			out = append(out, featureJSON(f))
		}
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) getFeature(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actFeaturesRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	f, err := a.o.Subscriptions.Feature(r.Context(), m["sub"], m["ns"], m["name"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, featureJSON(f))
}

func (a *API) registerFeature(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	return a.changeFeature(w, r, p, m, actFeatureRegister, a.o.Subscriptions.RegisterFeature)
}

func (a *API) unregisterFeature(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	return a.changeFeature(w, r, p, m, actFeatureUnregister, a.o.Subscriptions.UnregisterFeature)
}

func (a *API) changeFeature(w http.ResponseWriter, r *http.Request, p identity.Principal, m match, action string,
	change func(context.Context, directory.Caller, string, string, string) (resources.Feature, error)) error {
	if err := a.authorize(r.Context(), p, action, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	f, err := change(r.Context(), caller(p), m["sub"], m["ns"], m["name"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, featureJSON(f))
}

// armTime formats a time as ARM does.
func armTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
