package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/keyvault/armkeyvault"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// vaultEnv is a tenant with a subscription, a group and an RBAC vault.
type vaultEnv struct {
	c        tenantCreds
	sub      string
	vaultID  string
	vaultURL string
	admin    azcore.TokenCredential
}

func (s *server) newVault(t *testing.T, name string) vaultEnv {
	t.Helper()
	ctx := context.Background()
	c := s.newTenant(t, "Fabrikam "+name)
	admin := s.credential(t, c.TenantID, c.AdminApp.ClientID, c.AdminApp.ClientSecret)
	tok, _ := token(ctx, admin, armScope)
	sub := s.newSubscription(t, tok, c.TenantID, "PayAsYouGo")
	opts := s.armOptions()
	groups, _ := armresources.NewResourceGroupsClient(sub, admin, opts)
	if _, err := groups.CreateOrUpdate(ctx, "rg", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	vaults, _ := armkeyvault.NewVaultsClient(sub, admin, opts)
	p, err := vaults.BeginCreateOrUpdate(ctx, "rg", name, armkeyvault.VaultCreateOrUpdateParameters{Location: to.Ptr("westeurope"),
		Properties: &armkeyvault.VaultProperties{TenantID: to.Ptr(c.TenantID), SKU: &armkeyvault.SKU{Family: to.Ptr(armkeyvault.SKUFamilyA),
			Name: to.Ptr(armkeyvault.SKUNameStandard)}, EnableRbacAuthorization: to.Ptr(true)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return vaultEnv{c: c, sub: sub, vaultID: *v.ID, vaultURL: strings.TrimSuffix(*v.Properties.VaultURI, "/"), admin: admin}
}

// grant gives a principal a built-in role at a scope.
func (s *server) grant(t *testing.T, e vaultEnv, principalID, principalType, roleGUID, scope string) {
	t.Helper()
	ra, _ := armauthorization.NewRoleAssignmentsClient(e.sub, e.admin, s.armOptions())
	_, err := ra.Create(context.Background(), scope, newGUID(t), armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		RoleDefinitionID: to.Ptr("/subscriptions/" + e.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + roleGUID),
		PrincipalID:      to.Ptr(principalID), PrincipalType: to.Ptr(armauthorization.PrincipalType(principalType))}}, nil)
	if err != nil {
		t.Fatalf("grant %s: %v", roleGUID, err)
	}
}

func newGUID(t *testing.T) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := big.NewInt(0).SetBytes(b).Text(16)
	h = strings.Repeat("0", 32-len(h)) + h
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// countingTransport counts requests and their statuses.
type countingTransport struct {
	next     policy.Transporter
	requests int
	status   []int
}

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	resp, err := c.next.Do(r)
	c.requests++
	if err == nil {
		c.status = append(c.status, resp.StatusCode)
	}
	return resp, err
}

// TestKeyVaultWithOfficialClient drives the data plane with azkeys, its
// challenge resource verification left on.
func TestKeyVaultWithOfficialClient(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"))
	ctx := context.Background()
	e := s.newVault(t, "fabrikamkv1")
	// The automation app is Owner: no data access until it holds a data role.
	var adminSP struct {
		Value []struct{ ID string } `json:"value"`
	}
	graphTok, _ := token(ctx, e.admin, graphScope)
	doJSON(t, s, graphTok, "GET", "/v1.0/servicePrincipals?$filter=appId%20eq%20'"+e.c.AdminApp.ClientID+"'", "", &adminSP)
	ct := &countingTransport{next: s.client}
	kc, err := azkeys.NewClient(e.vaultURL, e.admin, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: ct, Retry: policy.RetryOptions{MaxRetries: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.CreateKey(ctx, "ContosoEXOKey1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if code, status := respErr(err); status != http.StatusForbidden || !strings.Contains(err.Error(), "ForbiddenByRbac") {
		t.Fatalf("Owner without a data role: CreateKey = %d %s %v; want 403 ForbiddenByRbac", status, code, err)
	}
	if ct.status[0] != http.StatusUnauthorized {
		t.Errorf("first request status = %d, want the 401 challenge", ct.status[0])
	}
	s.grant(t, e, adminSP.Value[0].ID, "ServicePrincipal", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", e.vaultID) // Key Vault Crypto Officer
	created, err := kc.CreateKey(ctx, "ContosoEXOKey1", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048)),
		Tags: map[string]*string{"use": to.Ptr("customer-key")}}, nil)
	if err != nil {
		t.Fatalf("CreateKey err = %v", err)
	}
	kid := string(*created.Key.KID)
	if !strings.HasPrefix(kid, e.vaultURL+"/keys/ContosoEXOKey1/") || len(created.Key.KID.Version()) != 32 || created.Key.N == nil ||
		created.Key.D != nil || *created.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *created.Attributes.RecoverableDays != 90 {
		t.Fatalf("created key = kid %s, version %q, private part %v, level %v", kid, created.Key.KID.Version(), created.Key.D != nil, *created.Attributes.RecoveryLevel)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(created.Key.N), E: int(new(big.Int).SetBytes(created.Key.E).Int64())}
	// Wrap locally with the public key; unwrap in the vault.
	dek := make([]byte, 32)
	_, _ = rand.Read(dek)
	wrapped, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := kc.UnwrapKey(ctx, "ContosoEXOKey1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped}, nil)
	if err != nil || string(un.Result) != string(dek) || string(*un.KID) != kid {
		t.Fatalf("UnwrapKey = kid %v, match %v, err %v", un.KID, string(un.Result) == string(dek), err)
	}
	// Wrap in the vault; unwrap again.
	w, err := kc.WrapKey(ctx, "ContosoEXOKey1", created.Key.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if err != nil {
		t.Fatalf("WrapKey err = %v", err)
	}
	if un, err := kc.UnwrapKey(ctx, "ContosoEXOKey1", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil); err != nil || string(un.Result) != string(dek) {
		t.Fatalf("unwrap of the vault's own wrap failed: %v", err)
	}
	// The seed's expiry rule: 12/31/9999 is accepted and the expiry cannot be removed afterwards.
	if _, err := kc.UpdateKey(ctx, "ContosoEXOKey1", "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Expires: to.Ptr(time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC))}}, nil); err != nil {
		t.Fatalf("UpdateKey expires 9999-12-31 err = %v", err)
	}
	got, err := kc.GetKey(ctx, "ContosoEXOKey1", "", nil)
	if err != nil || got.Attributes.Expires == nil || got.Attributes.Expires.Year() != 9999 {
		t.Fatalf("GetKey after the update = %v, %v", got.Attributes, err)
	}
	// Every data-plane operation is in the tenant's audit log, with the
	// caller, the vault, the key and the version, and without key material.
	armTok, _ := token(ctx, e.admin, armScope)
	var page struct {
		Events []struct {
			Action, Target, Result string
			Actor                  struct{ ID string }
		} `json:"events"`
	}
	doJSON(t, s, armTok, "GET", "/customerkey/v1/tenants/"+e.c.TenantID+"/audit", "", &page)
	seen := map[string]bool{}
	for _, ev := range page.Events {
		if strings.HasPrefix(ev.Action, "vault/") && ev.Actor.ID == adminSP.Value[0].ID {
			seen[ev.Action+" "+ev.Result] = true
			if ev.Action == "vault/keys/unwrapKey" && ev.Target != "fabrikamkv1/ContosoEXOKey1" && !strings.HasPrefix(ev.Target, "fabrikamkv1/ContosoEXOKey1/") {
				t.Errorf("unwrap audit target = %q", ev.Target)
			}
		}
	}
	for _, want := range []string{"vault/keys/create denied", "vault/keys/create success", "vault/keys/unwrapKey success", "vault/keys/wrapKey success", "vault/keys/update success"} {
		if !seen[want] {
			t.Errorf("audit log lacks %q; has %v", want, seen)
		}
	}

	// Only a few challenges: the client reuses its token.
	n401 := 0
	for _, st := range ct.status {
		if st == http.StatusUnauthorized {
			n401++
		}
	}
	if n401 != 1 {
		t.Errorf("the client met %d challenges, want 1", n401)
	}
}
