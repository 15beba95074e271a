package arm

import (
	"context"
	"net/http"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/resourceid"
	"github.com/customerkey/customerkey/internal/vault"
)

// Vaults is what this surface needs of package vault.
type Vaults interface {
	CreateOrUpdate(ctx context.Context, c directory.Caller, spec vault.Spec) (vault.Vault, bool, error)
	Update(ctx context.Context, c directory.Caller, sub, rg, name string, p vault.Patch) (vault.Vault, error)
	UpdateAccessPolicies(ctx context.Context, c directory.Caller, sub, rg, name, kind string, entries []vault.AccessPolicy) ([]vault.AccessPolicy, error)
	Get(ctx context.Context, sub, rg, name string) (vault.Vault, error)
	List(ctx context.Context, sub, rg string) ([]vault.Vault, error)
	ListBySubscription(ctx context.Context, sub string) ([]vault.Vault, error)
	ListDeleted(ctx context.Context, sub string) ([]vault.Vault, error)
	GetDeleted(ctx context.Context, sub, loc, name string) (vault.Vault, error)
	Delete(ctx context.Context, c directory.Caller, sub, rg, name string) error
	Purge(ctx context.Context, c directory.Caller, sub, loc, name string) error
	CheckNameAvailability(ctx context.Context, name string) (vault.NameAvailability, error)
}

var _ Vaults = (*vault.Service)(nil)

// vaultVersions: armkeyvault v1.5.0 sends 2024-11-01; the published
// swagger beside this project is 2023-02-01.
var vaultVersions = []string{"2024-11-01", "2023-07-01", "2023-02-01", "2022-07-01", "2021-10-01", "2019-09-01"}

const (
	actVaultRead         = "Microsoft.KeyVault/vaults/read"
	actVaultWrite        = "Microsoft.KeyVault/vaults/write"
	actVaultDelete       = "Microsoft.KeyVault/vaults/delete"
	actAccessPolicyWrite = "Microsoft.KeyVault/vaults/accessPolicies/write"
	actDeletedVaultsRead = "Microsoft.KeyVault/deletedVaults/read"
	actDeletedVaultRead  = "Microsoft.KeyVault/locations/deletedVaults/read"
	actDeletedVaultPurge = "Microsoft.KeyVault/locations/deletedVaults/purge/action"
	actCheckName         = "Microsoft.KeyVault/checkNameAvailability/read"
)

func (a *API) vaultRoutes() []route {
	const rgv = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults"
	return []route{
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", vaultVersions, a.listVaults),
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/deletedVaults", vaultVersions, a.listDeletedVaults),
		newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}", vaultVersions, a.getDeletedVault),
		newRoute("POST", "/subscriptions/{sub}/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}/purge", vaultVersions, a.purgeVault),
		newRoute("POST", "/subscriptions/{sub}/providers/Microsoft.KeyVault/checkNameAvailability", vaultVersions, a.checkVaultName),
		newRoute("GET", rgv, vaultVersions, a.listVaults),
		newRoute("PUT", rgv+"/{name}", vaultVersions, a.putVault),
		newRoute("PATCH", rgv+"/{name}", vaultVersions, a.patchVault),
		newRoute("GET", rgv+"/{name}", vaultVersions, a.getVault),
		newRoute("DELETE", rgv+"/{name}", vaultVersions, a.deleteVault),
		newRoute("PUT", rgv+"/{name}/accessPolicies/{kind}", vaultVersions, a.putAccessPolicies),
	}
}

type sku struct {
	Family string `json:"family"`
	Name   string `json:"name"`
}

type vaultProps struct {
	TenantID                     string               `json:"tenantId"`
	SKU                          sku                  `json:"sku"`
	AccessPolicies               []vault.AccessPolicy `json:"accessPolicies"`
	VaultURI                     string               `json:"vaultUri"`
	EnabledForDeployment         bool                 `json:"enabledForDeployment"`
	EnabledForDiskEncryption     bool                 `json:"enabledForDiskEncryption"`
	EnabledForTemplateDeployment bool                 `json:"enabledForTemplateDeployment"`
	EnableSoftDelete             bool                 `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays    int                  `json:"softDeleteRetentionInDays"`
	EnableRbacAuthorization      bool                 `json:"enableRbacAuthorization"`
	// Azure omits enablePurgeProtection until it is turned on.
	EnablePurgeProtection *bool              `json:"enablePurgeProtection,omitempty"`
	NetworkACLs           *vault.NetworkACLs `json:"networkAcls,omitempty"`
	PublicNetworkAccess   string             `json:"publicNetworkAccess"`
	ProvisioningState     string             `json:"provisioningState"`
}

type systemData struct {
	CreatedBy          string `json:"createdBy"`
	CreatedByType      string `json:"createdByType"`
	CreatedAt          string `json:"createdAt"`
	LastModifiedBy     string `json:"lastModifiedBy"`
	LastModifiedByType string `json:"lastModifiedByType"`
	LastModifiedAt     string `json:"lastModifiedAt"`
}

type vaultOut struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	SystemData systemData        `json:"systemData"`
	Properties vaultProps        `json:"properties"`
}

func actorType(a audit.Actor) string {
	switch a.Type {
	case "user":
		return "User"
	case "servicePrincipal":
		return "Application"
	}
	return "Key"
}

func vaultJSON(v vault.Vault) vaultOut {
	tags := v.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	policies := v.AccessPolicies
	if policies == nil {
		policies = []vault.AccessPolicy{}
	}
	out := vaultOut{ID: v.ResourceID().String(), Name: v.Name, Type: vault.ResourceType, Location: v.Location, Tags: tags,
		SystemData: systemData{CreatedBy: v.CreatedBy.Name, CreatedByType: actorType(v.CreatedBy), CreatedAt: armTime(v.CreatedAt),
			LastModifiedBy: v.UpdatedBy.Name, LastModifiedByType: actorType(v.UpdatedBy), LastModifiedAt: armTime(v.UpdatedAt)},
		Properties: vaultProps{TenantID: v.TenantID, SKU: sku{Family: v.SKU.Family, Name: v.SKU.Name}, AccessPolicies: policies,
			VaultURI: v.VaultURI, EnabledForDeployment: v.EnabledForDeployment, EnabledForDiskEncryption: v.EnabledForDiskEncryption,
			EnabledForTemplateDeployment: v.EnabledForTemplateDeployment, EnableSoftDelete: v.EnableSoftDelete,
			SoftDeleteRetentionInDays: v.SoftDeleteRetentionInDays, EnableRbacAuthorization: v.EnableRbacAuthorization,
			NetworkACLs: v.NetworkACLs, PublicNetworkAccess: v.PublicNetworkAccess, ProvisioningState: v.ProvisioningState}}
	if v.EnablePurgeProtection {
		t := true
		out.Properties.EnablePurgeProtection = &t
	}
	return out
}

// vaultIn is the body of a create or update (PUT) and of a PATCH.
type vaultIn struct {
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags"`
	Properties *struct {
		TenantID                     *string              `json:"tenantId"`
		SKU                          *sku                 `json:"sku"`
		AccessPolicies               []vault.AccessPolicy `json:"accessPolicies"`
		EnabledForDeployment         *bool                `json:"enabledForDeployment"`
		EnabledForDiskEncryption     *bool                `json:"enabledForDiskEncryption"`
		EnabledForTemplateDeployment *bool                `json:"enabledForTemplateDeployment"`
		EnableSoftDelete             *bool                `json:"enableSoftDelete"`
		SoftDeleteRetentionInDays    *int                 `json:"softDeleteRetentionInDays"`
		EnableRbacAuthorization      *bool                `json:"enableRbacAuthorization"`
		EnablePurgeProtection        *bool                `json:"enablePurgeProtection"`
		CreateMode                   string               `json:"createMode"`
		NetworkACLs                  *vault.NetworkACLs   `json:"networkAcls"`
		PublicNetworkAccess          *string              `json:"publicNetworkAccess"`
	} `json:"properties"`
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (a *API) putVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Vault(m["sub"], m["rg"], m["name"])
	if err := a.authorize(r.Context(), p, actVaultWrite, scope); err != nil {
		return err
	}
	var in vaultIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Properties == nil {
		return errkind.New(errkind.Invalid, "The request content was invalid: properties is required.").WithCode("InvalidRequestContent")
	}
	pp := in.Properties
	spec := vault.Spec{SubscriptionID: m["sub"], ResourceGroup: m["rg"], Name: m["name"], Location: in.Location, Tags: in.Tags,
		CreateMode: pp.CreateMode, TenantID: deref(pp.TenantID), AccessPolicies: pp.AccessPolicies,
		EnabledForDeployment: deref(pp.EnabledForDeployment), EnabledForDiskEncryption: deref(pp.EnabledForDiskEncryption),
		EnabledForTemplateDeployment: deref(pp.EnabledForTemplateDeployment), EnableSoftDelete: pp.EnableSoftDelete,
		SoftDeleteRetentionInDays: pp.SoftDeleteRetentionInDays, EnablePurgeProtection: pp.EnablePurgeProtection,
		EnableRbacAuthorization: pp.EnableRbacAuthorization, PublicNetworkAccess: deref(pp.PublicNetworkAccess), NetworkACLs: pp.NetworkACLs}
	if pp.SKU != nil {
		spec.SKU = vault.SKU{Family: pp.SKU.Family, Name: pp.SKU.Name}
	}
	v, created, err := a.o.Vaults.CreateOrUpdate(r.Context(), caller(p), spec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return httpx.JSON(w, status, vaultJSON(v))
}

func (a *API) patchVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Vault(m["sub"], m["rg"], m["name"])
	if err := a.authorize(r.Context(), p, actVaultWrite, scope); err != nil {
		return err
	}
	var in vaultIn
	if err := decode(r, &in); err != nil {
		return err
	}
	patch := vault.Patch{Tags: in.Tags}
	if pp := in.Properties; pp != nil {
		patch.TenantID, patch.AccessPolicies = pp.TenantID, pp.AccessPolicies
		patch.EnabledForDeployment, patch.EnabledForDiskEncryption, patch.EnabledForTemplateDeployment =
			pp.EnabledForDeployment, pp.EnabledForDiskEncryption, pp.EnabledForTemplateDeployment
		patch.EnableSoftDelete, patch.SoftDeleteRetentionInDays = pp.EnableSoftDelete, pp.SoftDeleteRetentionInDays
		patch.EnablePurgeProtection, patch.EnableRbacAuthorization = pp.EnablePurgeProtection, pp.EnableRbacAuthorization
		patch.PublicNetworkAccess, patch.NetworkACLs = pp.PublicNetworkAccess, pp.NetworkACLs
		if pp.SKU != nil {
			patch.SKU = &vault.SKU{Family: pp.SKU.Family, Name: pp.SKU.Name}
		}
	}
	v, err := a.o.Vaults.Update(r.Context(), caller(p), m["sub"], m["rg"], m["name"], patch)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, vaultJSON(v))
}

func (a *API) getVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Vault(m["sub"], m["rg"], m["name"])
	if err := a.authorize(r.Context(), p, actVaultRead, scope); err != nil {
		return err
	}
	v, err := a.o.Vaults.Get(r.Context(), m["sub"], m["rg"], m["name"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, vaultJSON(v))
}

// listVaults lists the vaults of a subscription or resource group that the
// caller may read.
func (a *API) listVaults(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	ctx := r.Context()
	if err := a.subscriptionFor(ctx, p, m["sub"]); err != nil {
		return err
	}
	var vs []vault.Vault
	var err error
	if rg := m["rg"]; rg != "" {
		vs, err = a.o.Vaults.List(ctx, m["sub"], rg)
	} else {
		vs, err = a.o.Vaults.ListBySubscription(ctx, m["sub"])
	}
	if err != nil {
		return err
	}
	out := []vaultOut{}
	for _, v := range vs {
		if a.o.RBAC.Check(ctx, rbacPrincipal(p), actVaultRead, v.ResourceID()) == nil {
			out = append(out, vaultJSON(v))
		}
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) deleteVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Vault(m["sub"], m["rg"], m["name"])
	if err := a.authorize(r.Context(), p, actVaultDelete, scope); err != nil {
		return err
	}
	err := a.o.Vaults.Delete(r.Context(), caller(p), m["sub"], m["rg"], m["name"])
	if errkind.Is(err, errkind.NotFound) {
		w.WriteHeader(http.StatusNoContent) // ARM: deleting what is not there succeeds
		return nil
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

type accessPoliciesIn struct {
	Properties struct {
		AccessPolicies []vault.AccessPolicy `json:"accessPolicies"`
	} `json:"properties"`
}

func (a *API) putAccessPolicies(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	scope := resourceid.Vault(m["sub"], m["rg"], m["name"])
	if err := a.authorize(r.Context(), p, actAccessPolicyWrite, scope); err != nil {
		return err
	}
	var in accessPoliciesIn
	if err := decode(r, &in); err != nil {
		return err
	}
	ps, err := a.o.Vaults.UpdateAccessPolicies(r.Context(), caller(p), m["sub"], m["rg"], m["name"], m["kind"], in.Properties.AccessPolicies)
	if err != nil {
		return err
	}
	if ps == nil {
		ps = []vault.AccessPolicy{}
	}
	out := map[string]any{"id": scope.String() + "/accessPolicies/" + m["kind"], "name": m["kind"],
		"type": "Microsoft.KeyVault/vaults/accessPolicies", "properties": map[string]any{"accessPolicies": ps}}
	return httpx.JSON(w, http.StatusOK, out)
}

type deletedVaultOut struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Properties struct {
		VaultID                string            `json:"vaultId"`
		Location               string            `json:"location"`
		DeletionDate           string            `json:"deletionDate"`
		ScheduledPurgeDate     string            `json:"scheduledPurgeDate"`
		Tags                   map[string]string `json:"tags"`
		PurgeProtectionEnabled bool              `json:"purgeProtectionEnabled"`
	} `json:"properties"`
}

func deletedVaultJSON(v vault.Vault) deletedVaultOut {
	out := deletedVaultOut{ID: "/subscriptions/" + v.SubscriptionID + "/providers/Microsoft.KeyVault/locations/" + v.Location + "/deletedVaults/" + v.Name,
		Name: v.Name, Type: "Microsoft.KeyVault/deletedVaults"}
	out.Properties.VaultID = v.ResourceID().String()
	out.Properties.Location = v.Location
	if v.Deleted != nil {
		out.Properties.DeletionDate = armTime(v.Deleted.DeletionDate)
		out.Properties.ScheduledPurgeDate = armTime(v.Deleted.ScheduledPurgeDate)
	}
	out.Properties.Tags = v.Tags
	if out.Properties.Tags == nil {
		out.Properties.Tags = map[string]string{}
	}
	out.Properties.PurgeProtectionEnabled = v.EnablePurgeProtection
	return out
}

func (a *API) listDeletedVaults(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actDeletedVaultsRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	vs, err := a.o.Vaults.ListDeleted(r.Context(), m["sub"])
	if err != nil {
		return err
	}
	out := make([]deletedVaultOut, 0, len(vs))
	for _, v := range vs {
		out = append(out, deletedVaultJSON(v))
	}
	return httpx.JSON(w, http.StatusOK, map[string]any{"value": out})
}

func (a *API) getDeletedVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actDeletedVaultRead, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	v, err := a.o.Vaults.GetDeleted(r.Context(), m["sub"], m["loc"], m["name"])
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, deletedVaultJSON(v))
}

// purgeVault purges at once; the SDK's poller takes a 200 as done.
func (a *API) purgeVault(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actDeletedVaultPurge, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	if err := a.o.Vaults.Purge(r.Context(), caller(p), m["sub"], m["loc"], m["name"]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (a *API) checkVaultName(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
	if err := a.authorize(r.Context(), p, actCheckName, resourceid.Subscription(m["sub"])); err != nil {
		return err
	}
	var in struct {
		Name string `json:"name"`
		Type string `json:"type"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Type != "" && in.Type != vault.ResourceType {
		return errkind.Errorf(errkind.Invalid, "The type '%s' is not supported; use %s.", in.Type, vault.ResourceType).WithCode("InvalidRequestContent")
	}
	na, err := a.o.Vaults.CheckNameAvailability(r.Context(), in.Name)
	if err != nil {
		return err
	}
	out := map[string]any{"nameAvailable": na.NameAvailable}
	if !na.NameAvailable {
		out["reason"], out["message"] = na.Reason, na.Message
	}
	return httpx.JSON(w, http.StatusOK, out)
}
