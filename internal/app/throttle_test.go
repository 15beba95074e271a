package app_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
)

// TestVaultThrottling: past its per-vault rate a vault answers 429 with
// Retry-After in AKV's format, and the official client's retry policy
// honours it.
func TestVaultThrottling(t *testing.T) {
	s := startConfigured(t, filepath.Join(t.TempDir(), "data"), app.Options{}, func(c *config.Config) { c.VaultRequestsPerSecond = 2 })
	ctx := context.Background()
	e := s.newVault(t, "throttledkv")
	var sp struct {
		Value []struct{ ID string } `json:"value"`
	}
	graphTok, _ := token(ctx, e.admin, graphScope)
	doJSON(t, s, graphTok, "GET", "/v1.0/servicePrincipals?$filter=appId%20eq%20'"+e.c.AdminApp.ClientID+"'", "", &sp)
	s.grant(t, e, sp.Value[0].ID, "ServicePrincipal", "14b46e9e-c2b7-41b4-b07b-48a6ebf60603", e.vaultID)
	noRetry, _ := azkeys.NewClient(e.vaultURL, e.admin, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: s.client,
		Retry: policy.RetryOptions{MaxRetries: -1}}})
	if _, err := noRetry.CreateKey(ctx, "k", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
		t.Fatal(err)
	}
	throttled := 0
	for range 6 {
		_, err := noRetry.GetKey(ctx, "k", "", nil)
		if code, status := respErr(err); status == http.StatusTooManyRequests {
			throttled++
			if code != "Throttled" {
				t.Errorf("429 code = %q, want Throttled", code)
			}
		} else if err != nil {
			t.Fatalf("GetKey err = %v", err)
		}
	}
	if throttled == 0 {
		t.Fatal("six requests at once against a 2/s limit were never throttled")
	}
	// Retry-After is whole seconds, and the SDK's retries get through.
	req, _ := http.NewRequest("GET", e.vaultURL+"/keys/k/?api-version=7.4", nil)
	tok, _ := e.admin.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, TenantID: e.c.TenantID})
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	for range 5 {
		resp, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Errorf("Retry-After = %q, want whole seconds", resp.Header.Get("Retry-After"))
			}
			break
		}
	}
	retrying, _ := azkeys.NewClient(e.vaultURL, e.admin, &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: s.client}})
	for range 4 {
		if _, err := retrying.GetKey(ctx, "k", "", nil); err != nil {
			t.Fatalf("with retries, GetKey err = %v", err)
		}
	}
}
