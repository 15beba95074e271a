package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armfeatures"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/directory"
)

// clock is a settable clock for the resource manager's schedules.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// armOptions points the official ARM clients at the server.
func (s *server) armOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: azcore.ClientOptions{
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.url + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: s.url, Audience: "https://management.azure.com"}}},
		Transport: s.client,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}
}

// respErr returns the ARM error code and status of err.
func respErr(err error) (string, int) {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode, re.StatusCode
	}
	return "", 0
}

type tenantCreds struct {
	TenantID      string `json:"tenantId"`
	DefaultDomain string `json:"defaultDomain"`
	GlobalAdmin   struct{ UserPrincipalName, Password string }
	AdminApp      struct{ ClientID, ClientSecret string }
}

func (s *server) newTenant(t testing.TB, name string) tenantCreds {
	t.Helper()
	op := s.Credentials
	tok, err := token(context.Background(), s.credential(t, op.TenantID, op.ClientID, op.ClientSecret), armScope)
	if err != nil {
		t.Fatal(err)
	}
	var c tenantCreds
	if code := doJSON(t, s, tok, "POST", "/customerkey/v1/tenants", `{"displayName":"`+name+`","licenses":["Microsoft 365 E5"]}`, &c); code != http.StatusCreated {
		t.Fatalf("create tenant %s = %d", name, code)
	}
	return c
}

func (s *server) newSubscription(t *testing.T, tok, tenant, offer string) string {
	t.Helper()
	var out struct {
		SubscriptionID string `json:"subscriptionId"`
	}
	body := `{"tenantId":"` + tenant + `","displayName":"Customer Key A","offer":"` + offer + `"}`
	if code := doJSON(t, s, tok, "POST", "/customerkey/v1/subscriptions", body, &out); code != http.StatusCreated {
		t.Fatalf("create subscription = %d", code)
	}
	return out.SubscriptionID
}

// TestResourceManagerWithOfficialClients follows the seed's Azure steps
// with the official Go clients: a subscription, a resource group, a
// premium vault (the client registers Microsoft.KeyVault by itself),
// soft delete, purge protection, the mandatory retention period, and the
// Key Vault Crypto Service Encryption User role for Exchange Online.
func TestResourceManagerWithOfficialClients(t *testing.T) {
	clk := &clock{now: time.Now()}
	s := startWith(t, filepath.Join(t.TempDir(), "data"), app.Options{Now: clk.Now})
	ctx := context.Background()
	c := s.newTenant(t, "Contoso")
	admin := s.credential(t, c.TenantID, c.AdminApp.ClientID, c.AdminApp.ClientSecret)
	adminARM, _ := token(ctx, admin, armScope)
	sub := s.newSubscription(t, adminARM, c.TenantID, "PayAsYouGo")
	opts := s.armOptions()

	// Subscriptions: the tenant's admin owns it and sees it.
	subs, err := armsubscriptions.NewClient(admin, opts)
	if err != nil {
		t.Fatal(err)
	}
	got, err := subs.Get(ctx, sub, nil)
	if err != nil {
		t.Fatalf("subscriptions Get err = %v", err)
	}
	if *got.TenantID != c.TenantID || *got.State != armsubscriptions.SubscriptionStateEnabled || !strings.HasPrefix(*got.SubscriptionPolicies.QuotaID, "PayAsYouGo") {
		t.Errorf("subscription = tenant %s state %s quota %s", *got.TenantID, *got.State, *got.SubscriptionPolicies.QuotaID)
	}
	n := 0
	for pager := subs.NewListPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("subscriptions List err = %v", err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Errorf("subscriptions List = %d, want 1", n)
	}

	// Resource group.
	groups, _ := armresources.NewResourceGroupsClient(sub, admin, opts)
	rg, err := groups.CreateOrUpdate(ctx, "ContosoCK", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	if err != nil || *rg.Name != "ContosoCK" || *rg.Location != "westeurope" || *rg.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("resource group CreateOrUpdate = %+v, %v", rg, err)
	}
	if ex, err := groups.CheckExistence(ctx, "contosock", nil); err != nil || !ex.Success {
		t.Errorf("CheckExistence(contosock) = %v, %v; want true (names ignore case)", ex.Success, err)
	}
	if _, err := groups.CreateOrUpdate(ctx, "rg2", armresources.ResourceGroup{Location: to.Ptr("atlantis")}, nil); err == nil {
		t.Error("a resource group in an unknown region was created")
	}

	// Key vault: the first PUT gets MissingSubscriptionRegistration and the
	// client registers Microsoft.KeyVault itself, then retries.
	providers, _ := armresources.NewProvidersClient(sub, admin, opts)
	if p, err := providers.Get(ctx, "Microsoft.KeyVault", nil); err != nil || *p.RegistrationState != "NotRegistered" {
		t.Fatalf("provider before = %v, %v; want NotRegistered", p.RegistrationState, err)
	}
	vaults, _ := armkeyvault.NewVaultsClient(sub, admin, opts)
	params := armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"), Properties: &armkeyvault.VaultProperties{
		TenantID: to.Ptr(c.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA), Name: to.Ptr(armkeyvault.SKUNamePremium)},
		EnableRbacAuthorization: to.Ptr(true), AccessPolicies: []*armkeyvault.AccessPolicyEntry{}}}
	poller, err := vaults.BeginCreateOrUpdate(ctx, "ContosoCK", "ContosoEXOAKV01", params, nil)
	if err != nil {
		t.Fatalf("vault BeginCreateOrUpdate err = %v", err)
	}
	v, err := poller.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatalf("vault PollUntilDone err = %v", err)
	}
	pr := v.Properties
	if *pr.VaultURI != "https://contosoexoakv01.vault.localhost:"+s.port()+"/" || !*pr.EnableSoftDelete || *pr.SoftDeleteRetentionInDays != 90 ||
		*pr.SKU.Name != armkeyvault.SKUNamePremium || !*pr.EnableRbacAuthorization || pr.EnablePurgeProtection != nil {
		t.Errorf("vault = uri %s softDelete %v days %d sku %s rbac %v purgeProtection %v", *pr.VaultURI, *pr.EnableSoftDelete,
			*pr.SoftDeleteRetentionInDays, *pr.SKU.Name, *pr.EnableRbacAuthorization, pr.EnablePurgeProtection)
	}
	if p, _ := providers.Get(ctx, "Microsoft.KeyVault", nil); *p.RegistrationState != "Registered" {
		t.Errorf("provider after = %s; want Registered by the client's registration policy", *p.RegistrationState)
	}
	// Soft delete cannot be turned off; purge protection can be turned on.
	if _, err := vaults.Update(ctx, "ContosoCK", "ContosoEXOAKV01", armkeyvault.VaultPatchParameters{
		Properties: &armkeyvault.VaultPatchProperties{EnableSoftDelete: to.Ptr(false)}}, nil); err == nil {
		t.Error("soft delete was turned off")
	} else if _, status := respErr(err); status != http.StatusBadRequest && status != http.StatusConflict {
		t.Errorf("turning soft delete off: status %d, want 400 or 409: %v", status, err)
	}
	up, err := vaults.Update(ctx, "ContosoCK", "ContosoEXOAKV01", armkeyvault.VaultPatchParameters{
		Properties: &armkeyvault.VaultPatchProperties{EnablePurgeProtection: to.Ptr(true)}}, nil)
	if err != nil || !*up.Properties.EnablePurgeProtection {
		t.Fatalf("enable purge protection = %v", err)
	}
	if _, err := vaults.Update(ctx, "ContosoCK", "ContosoEXOAKV01", armkeyvault.VaultPatchParameters{
		Properties: &armkeyvault.VaultPatchProperties{EnablePurgeProtection: to.Ptr(false)}}, nil); err == nil {
		t.Error("purge protection was turned off")
	}
	// Names are global.
	if na, err := vaults.CheckNameAvailability(ctx, armkeyvault.VaultCheckNameAvailabilityParameters{Name: to.Ptr("contosoexoakv01"),
		Type: to.Ptr("Microsoft.KeyVault/vaults")}, nil); err != nil || *na.NameAvailable || *na.Reason != armkeyvault.ReasonAlreadyExists {
		t.Errorf("CheckNameAvailability = %+v, %v", na, err)
	}
	count := 0
	for pager := vaults.NewListByResourceGroupPager("ContosoCK", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count += len(page.Value)
	}
	if count != 1 {
		t.Errorf("vaults in the group = %d, want 1", count)
	}

	// The mandatory retention period: Registering, then Registered after the delay.
	features, _ := armfeatures.NewClient(sub, admin, opts)
	f, err := features.Register(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil)
	if err != nil || *f.Properties.State != "Registering" {
		t.Fatalf("feature Register = %v, %v; want Registering", f.Properties, err)
	}
	clk.Advance(61 * time.Second)
	if g, err := features.Get(ctx, "Microsoft.Resources", "mandatoryRetentionPeriodEnabled", nil); err != nil || *g.Properties.State != "Registered" {
		t.Fatalf("feature after the delay = %v, %v; want Registered", g.Properties, err)
	}

	// Roles: Exchange Online's principal gets wrap/unwrap/get on the vault.
	graphTok, _ := token(ctx, admin, graphScope)
	var sp struct {
		ID string `json:"id"`
	}
	if code := doJSON(t, s, graphTok, "POST", "/v1.0/servicePrincipals", `{"appId":"`+directory.ExchangeAppID+`"}`, &sp); code != http.StatusCreated {
		t.Fatalf("register Exchange Online = %d", code)
	}
	vaultScope := *v.ID
	defs, _ := armauthorization.NewRoleDefinitionsClient(admin, opts)
	var roleID string
	for pager := defs.NewListPager(vaultScope, &armauthorization.RoleDefinitionsClientListOptions{Filter: to.Ptr(odataFilter("roleName eq 'Key Vault Crypto Service Encryption User'"))}); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("role definitions List err = %v", err)
		}
		for _, d := range page.Value {
			roleID = *d.ID
			if !strings.HasSuffix(roleID, "e147488a-f6f5-4113-8e2d-b22465e65bf6") {
				t.Errorf("Key Vault Crypto Service Encryption User id = %s", roleID)
			}
		}
	}
	assignments, _ := armauthorization.NewRoleAssignmentsClient(sub, admin, opts)
	const raName = "5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11"
	ra, err := assignments.Create(ctx, vaultScope, raName, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		RoleDefinitionID: to.Ptr(roleID), PrincipalID: to.Ptr(sp.ID), PrincipalType: to.Ptr(armauthorization.PrincipalTypeServicePrincipal)}}, nil)
	if err != nil || !strings.EqualFold(*ra.Properties.Scope, vaultScope) || *ra.Properties.PrincipalID != sp.ID {
		t.Fatalf("role assignment Create = %+v, %v", ra.Properties, err)
	}
	found := false
	filter := odataFilter("principalId eq '" + sp.ID + "'")
	for pager := assignments.NewListForScopePager(vaultScope, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr(filter)}); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatalf("role assignments List err = %v", err)
		}
		for _, a := range page.Value {
			found = found || *a.Name == raName
		}
	}
	if !found {
		t.Error("the new assignment is not listed at the vault scope")
	}
	// A custom role the seed asks for: key administrators who cannot delete.
	custom := "/subscriptions/" + sub
	def, err := defs.CreateOrUpdate(ctx, custom, "0d5c3a5e-3a4f-4b55-9f2e-8b3c2d1e0f01", armauthorization.RoleDefinition{Properties: &armauthorization.RoleDefinitionProperties{
		RoleName: to.Ptr("Key Vault Key Administrator (no delete)"), RoleType: to.Ptr("CustomRole"), AssignableScopes: []*string{to.Ptr(custom)},
		Permissions: []*armauthorization.Permission{{DataActions: []*string{to.Ptr("Microsoft.KeyVault/vaults/keys/read"),
			to.Ptr("Microsoft.KeyVault/vaults/keys/create/action"), to.Ptr("Microsoft.KeyVault/vaults/keys/import/action"),
			to.Ptr("Microsoft.KeyVault/vaults/keys/backup/action"), to.Ptr("Microsoft.KeyVault/vaults/keys/restore/action")}}}}}, nil)
	if err != nil || *def.Properties.RoleType != "CustomRole" {
		t.Fatalf("custom role CreateOrUpdate = %v", err)
	}

	// A principal without a role is refused, with the caller, action and scope named.
	user := createUser(t, s, graphTok, "kim@"+c.DefaultDomain)
	kim := s.userCredential(t, c.TenantID, "kim@"+c.DefaultDomain, "Kim-password-123")
	kimGroups, _ := armresources.NewResourceGroupsClient(sub, kim, opts)
	_, err = kimGroups.CreateOrUpdate(ctx, "KimRG", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	if code, status := respErr(err); code != "AuthorizationFailed" || status != http.StatusForbidden ||
		!strings.Contains(err.Error(), user) || !strings.Contains(err.Error(), "Microsoft.Resources/subscriptions/resourceGroups/write") {
		t.Errorf("unprivileged CreateOrUpdate err = %v; want 403 AuthorizationFailed naming the caller and the action", err)
	}

	// Deleting the vault soft-deletes it; purge protection refuses the purge; recover brings it back.
	if _, err := vaults.Delete(ctx, "ContosoCK", "ContosoEXOAKV01", nil); err != nil {
		t.Fatalf("vault Delete err = %v", err)
	}
	del, err := vaults.GetDeleted(ctx, "ContosoEXOAKV01", "westeurope", nil)
	if err != nil || !del.Properties.ScheduledPurgeDate.After(del.Properties.DeletionDate.Add(89*24*time.Hour)) || !*del.Properties.PurgeProtectionEnabled {
		t.Fatalf("GetDeleted = %+v, %v", del.Properties, err)
	}
	pp, err := vaults.BeginPurgeDeleted(ctx, "ContosoEXOAKV01", "westeurope", nil)
	if err == nil {
		_, err = pp.PollUntilDone(ctx, nil)
	}
	if err == nil {
		t.Error("a purge-protected vault was purged")
	}
	params.Properties.CreateMode = to.Ptr(armkeyvault.CreateModeRecover)
	rp, err := vaults.BeginCreateOrUpdate(ctx, "ContosoCK", "ContosoEXOAKV01", params, nil)
	if err == nil {
		_, err = rp.PollUntilDone(ctx, nil)
	}
	if err != nil {
		t.Fatalf("recover err = %v", err)
	}
	// The resource group still holds the vault: deleting it is refused.
	gp, err := groups.BeginDelete(ctx, "ContosoCK", nil)
	if err == nil {
		_, err = gp.PollUntilDone(ctx, nil)
	}
	if _, status := respErr(err); status != http.StatusConflict {
		t.Errorf("deleting a group that holds a vault err = %v; want 409", err)
	}
}

// createUser creates a user through Graph and returns its object id.
func createUser(t *testing.T, s *server, graphTok, upn string) string {
	t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	nick := strings.Split(upn, "@")[0]
	body, _ := json.Marshal(map[string]any{"accountEnabled": true, "displayName": nick, "mailNickname": nick, "userPrincipalName": upn,
		"passwordProfile": map[string]any{"password": "Kim-password-123"}})
	if code := doJSON(t, s, graphTok, "POST", "/v1.0/users", string(body), &u); code != http.StatusCreated {
		t.Fatalf("create user = %d", code)
	}
	return u.ID
}

func (s *server) port() string { return s.url[strings.LastIndex(s.url, ":")+1:] }

// userCredential signs a user in with the official device code credential,
// approving the code on the server's page as the user would.
func (s *server) userCredential(t *testing.T, tenant, upn, password string) azcore.TokenCredential {
	t.Helper()
	c, err := azidentity.NewDeviceCodeCredential(&azidentity.DeviceCodeCredentialOptions{
		TenantID: tenant,
		ClientOptions: azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: s.url + "/"},
			Transport: s.client, Retry: policy.RetryOptions{MaxRetries: -1}},
		DisableInstanceDiscovery: true,
		UserPrompt: func(ctx context.Context, m azidentity.DeviceCodeMessage) error {
			approve(t, s, m.VerificationURL, m.UserCode, upn, password)
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// odataFilter prepares a $filter for armauthorization, which sends it
// without encoding: a space is not valid in an HTTP request line and Go's
// server (like any strict one) refuses it before a handler runs, while
// azcore re-escapes a "%". A "+" is the one spelling of a space that
// passes through unchanged and decodes back to a space.
func odataFilter(f string) string { return strings.ReplaceAll(f, " ", "+") }
