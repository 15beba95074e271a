package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/keyprovider"
	"github.com/customerkey/customerkey/internal/rbac"
)

// TestRootKeysThroughTheVault drives the key provider against the real
// server: Exchange Online reaches a customer's root key over HTTPS with
// the official client, as a workload identity in the customer's tenant,
// and every customer action on the vault side shows up as the failure
// class the unwrap rules depend on.
func TestRootKeysThroughTheVault(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"))
	ctx := context.Background()
	e := s.newVault(t, "contosoexo1")
	tid := e.c.TenantID
	graphTok, err := token(ctx, e.admin, graphScope)
	if err != nil {
		t.Fatal(err)
	}
	// The tenant's admin registers Exchange Online, as the seed asks, and
	// makes itself a key administrator to create the root key.
	if code := doJSON(t, s, graphTok, "POST", "/v1.0/servicePrincipals", `{"appId":"`+directory.ExchangeAppID+`"}`, nil); code != http.StatusCreated {
		t.Fatalf("registering Exchange Online = %d", code)
	}
	exo := servicePrincipalOf(t, s, graphTok, directory.ExchangeAppID)
	s.grant(t, e, servicePrincipalOf(t, s, graphTok, e.c.AdminApp.ClientID), "ServicePrincipal", rbac.KeyVaultCryptoOfficerID, e.vaultID)
	kc := keysClient(t, s, e.vaultURL, e.admin)
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	imported, err := kc.ImportKey(ctx, "root1", azkeys.ImportKeyParameters{Key: importJWK(priv)}, nil)
	if err != nil {
		t.Fatalf("ImportKey err = %v", err)
	}
	keyURI := e.vaultURL + "/keys/root1"
	kid := string(*imported.Key.KID)

	p, err := s.RootKeys()
	if err != nil {
		t.Fatalf("RootKeys() err = %v", err)
	}
	policyKey := make([]byte, 32)
	_, _ = rand.Read(policyKey)
	wrap := func(p *keyprovider.Provider, uri string) (dep.WrappedRoot, error) {
		return p.Wrap(ctx, directory.ExchangeAppID, tid, uri, policyKey)
	}

	// Registered but without a role: refused by the vault's RBAC.
	_, err = wrap(p, keyURI)
	wantKeyError(t, "Wrap without a role", err, dep.AccessDenied, "Key Vault Crypto Service Encryption User", "Office 365 Exchange Online", "contosoexo1")

	// With the role the seed names, at the vault: wrap, unwrap, describe.
	ra, err := armauthorization.NewRoleAssignmentsClient(e.sub, e.admin, s.armOptions())
	if err != nil {
		t.Fatal(err)
	}
	assignment := newGUID(t)
	if _, err := ra.Create(ctx, e.vaultID, assignment, roleAssignment(e.sub, rbac.KeyVaultCryptoServiceEncryptionUserID, exo, "ServicePrincipal"), nil); err != nil {
		t.Fatalf("assigning Key Vault Crypto Service Encryption User: %v", err)
	}
	w, err := wrap(p, keyURI)
	if err != nil {
		t.Fatalf("Wrap with the role err = %v", err)
	}
	if w.KeyID != kid || w.Alg != "RSA-OAEP-256" {
		t.Errorf("Wrap = kid %s alg %s, want %s RSA-OAEP-256", w.KeyID, w.Alg, kid)
	}
	// It really is RSA-OAEP-256 under the root key.
	if got, err := rsa.DecryptOAEP(sha256.New(), nil, priv, w.Value, nil); err != nil || !bytes.Equal(got, policyKey) {
		t.Errorf("the wrapped value does not decrypt with RSA-OAEP-256 under the root key: %v", err)
	}
	got, err := p.Unwrap(ctx, directory.ExchangeAppID, tid, w)
	if err != nil || !bytes.Equal(got, policyKey) {
		t.Fatalf("Unwrap = match %v, err %v", bytes.Equal(got, policyKey), err)
	}
	info, err := p.Describe(ctx, directory.ExchangeAppID, tid, keyURI)
	if err != nil {
		t.Fatalf("Describe err = %v", err)
	}
	var ops []string
	for _, op := range imported.Key.KeyOps {
		ops = append(ops, string(*op))
	}
	if info.KeyID != kid || info.Kty != string(*imported.Key.Kty) || info.Size != 2048 || !slices.Equal(info.Ops, ops) ||
		!slices.Contains(info.Ops, "wrapKey") || !slices.Contains(info.Ops, "unwrapKey") || !info.Enabled ||
		info.NotBefore != nil || info.Expires != nil || info.RecoveryLevel != "Recoverable+Purgeable" {
		t.Errorf("Describe = %+v; want kid %s, kty %s, 2048 bits, ops %v, enabled, no dates, Recoverable+Purgeable", info, kid, *imported.Key.Kty, ops)
	}
	// The versioned URI reaches the same version.
	if info, err := p.Describe(ctx, directory.ExchangeAppID, tid, kid); err != nil || info.KeyID != kid {
		t.Errorf("Describe(versioned) = %s, %v", info.KeyID, err)
	}
	// The issuance is in the tenant's audit log, attributed to Exchange Online.
	armTok, _ := token(ctx, e.admin, armScope)
	var page struct {
		Events []struct {
			Action, Result string
			Actor          struct{ ID, Name string }
		} `json:"events"`
	}
	doJSON(t, s, armTok, "GET", "/customerkey/v1/tenants/"+tid+"/audit", "", &page)
	if !slices.ContainsFunc(page.Events, func(ev struct {
		Action, Result string
		Actor          struct{ ID, Name string }
	}) bool {
		return ev.Action == "identity/token" && ev.Result == "success" && ev.Actor.ID == exo
	}) {
		t.Errorf("the tenant's audit log lacks Exchange Online's token: %+v", page.Events)
	}

	update := func(attrs azkeys.KeyAttributes) {
		t.Helper()
		if _, err := kc.UpdateKey(ctx, "root1", "", azkeys.UpdateKeyParameters{KeyAttributes: &attrs}, nil); err != nil {
			t.Fatalf("UpdateKey(%+v) err = %v", attrs, err)
		}
	}
	// Disabled: both directions refused, as KeyDisabled.
	update(azkeys.KeyAttributes{Enabled: to.Ptr(false)})
	_, err = wrap(p, keyURI)
	wantKeyError(t, "Wrap with the key disabled", err, dep.KeyDisabled, "is disabled", "Update-AzKeyVaultKey")
	_, err = p.Unwrap(ctx, directory.ExchangeAppID, tid, w)
	wantKeyError(t, "Unwrap with the key disabled", err, dep.KeyDisabled, kid)
	update(azkeys.KeyAttributes{Enabled: to.Ptr(true)})

	// Expired, and not yet valid: no new wraps (KeyExpired); unwrapping
	// what was wrapped while it was valid still works, as Key Vault does.
	update(azkeys.KeyAttributes{Expires: to.Ptr(time.Now().Add(-time.Minute).UTC().Truncate(time.Second))})
	_, err = wrap(p, keyURI)
	wantKeyError(t, "Wrap with the key expired", err, dep.KeyExpired, "expired or not yet valid")
	if got, err := p.Unwrap(ctx, directory.ExchangeAppID, tid, w); err != nil || !bytes.Equal(got, policyKey) {
		t.Errorf("Unwrap with the key expired = %v; want the key back", err)
	}
	if info, err := p.Describe(ctx, directory.ExchangeAppID, tid, keyURI); err != nil || info.Expires == nil || !info.Expires.Before(time.Now()) {
		t.Errorf("Describe with the key expired = %+v, %v; want the past expiry", info, err)
	}
	update(azkeys.KeyAttributes{Expires: to.Ptr(time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)),
		NotBefore: to.Ptr(time.Now().Add(time.Hour).UTC().Truncate(time.Second))})
	_, err = wrap(p, keyURI)
	wantKeyError(t, "Wrap before the key's nbf", err, dep.KeyExpired, "expired or not yet valid")
	update(azkeys.KeyAttributes{NotBefore: to.Ptr(time.Now().Add(-time.Hour).UTC().Truncate(time.Second))})
	if _, err := wrap(p, keyURI); err != nil {
		t.Fatalf("Wrap with the key valid again err = %v", err)
	}

	// Deleted (soft delete): NotFound, with the way back in the message.
	if _, err := kc.CreateKey(ctx, "doomed", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
		t.Fatal(err)
	}
	doomed := e.vaultURL + "/keys/doomed"
	dw, err := wrap(p, doomed)
	if err != nil {
		t.Fatalf("Wrap(doomed) err = %v", err)
	}
	if _, err := kc.DeleteKey(ctx, "doomed", nil); err != nil {
		t.Fatal(err)
	}
	_, err = wrap(p, doomed)
	wantKeyError(t, "Wrap with the key deleted", err, dep.NotFound, "Undo-AzKeyVaultKeyRemoval")
	_, err = p.Unwrap(ctx, directory.ExchangeAppID, tid, dw)
	wantKeyError(t, "Unwrap with the key deleted", err, dep.NotFound, dw.KeyID)
	_, err = p.Describe(ctx, directory.ExchangeAppID, tid, doomed)
	wantKeyError(t, "Describe with the key deleted", err, dep.NotFound, "was not found")

	// The role removed again: refused at once, although the token is cached.
	if _, err := ra.Delete(ctx, e.vaultID, assignment, nil); err != nil {
		t.Fatalf("removing the role assignment: %v", err)
	}
	_, err = p.Unwrap(ctx, directory.ExchangeAppID, tid, w)
	wantKeyError(t, "Unwrap with the role removed", err, dep.AccessDenied, "Key Vault Crypto Service Encryption User")

	// A vault host of this deployment that no vault has: NotFound.
	host := strings.TrimPrefix(e.vaultURL, "https://contosoexo1.")
	_, err = wrap(p, "https://nosuchvault."+host+"/keys/root1")
	wantKeyError(t, "Wrap in an unknown vault", err, dep.NotFound, "Vault nosuchvault does not exist")
	// A key elsewhere is refused before anything is sent.
	_, err = wrap(p, "https://x.vault.azure.net/keys/root1")
	wantKeyError(t, "Wrap with a foreign key URI", err, dep.NotFound, "not a key of this deployment's vaults")

	// The service principal deleted: no token, so no access, even with
	// the role assigned. Tokens already issued live until they expire (as
	// in Entra ID); a provider without one, as after its token's renewal
	// or on another node, is refused at once.
	if _, err := ra.Create(ctx, e.vaultID, newGUID(t), roleAssignment(e.sub, rbac.KeyVaultCryptoServiceEncryptionUserID, exo, "ServicePrincipal"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := wrap(p, keyURI); err != nil {
		t.Fatalf("Wrap with the role given back err = %v", err)
	}
	if code, err := deleteSP(t, s, e.c, exo); err != nil || code != http.StatusNoContent {
		t.Fatalf("deleting Exchange Online's service principal = %d, %v", code, err)
	}
	fresh, err := s.RootKeys()
	if err != nil {
		t.Fatal(err)
	}
	_, err = fresh.Unwrap(ctx, directory.ExchangeAppID, tid, w)
	wantKeyError(t, "Unwrap with the service principal deleted", err, dep.AccessDenied, "AADSTS7000229", "New-AzADServicePrincipal -ApplicationId "+directory.ExchangeAppID)

	// Another first-party application never registered in the tenant is
	// refused the same way.
	_, err = p.Describe(ctx, directory.SharePointAppID, tid, keyURI)
	wantKeyError(t, "Describe as SharePoint Online", err, dep.AccessDenied, "Office 365 SharePoint Online", "AADSTS7000229")
}

// wantKeyError checks that err is a *dep.KeyError of class want whose
// message contains every part, and never any key material.
func wantKeyError(t *testing.T, what string, err error, want dep.Failure, parts ...string) {
	t.Helper()
	var ke *dep.KeyError
	if !errors.As(err, &ke) {
		t.Errorf("%s: err = %v; want a *dep.KeyError of class %v", what, err, want)
		return
	}
	if ke.Class != want {
		t.Errorf("%s: class %v (%v); want %v", what, ke.Class, err, want)
	}
	for _, part := range parts {
		if !strings.Contains(ke.Message, part) {
			t.Errorf("%s: message %q lacks %q", what, ke.Message, part)
		}
	}
}
