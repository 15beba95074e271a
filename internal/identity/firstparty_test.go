package identity_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func TestFirstPartyToken(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sys := directory.System
	a := e.a.Tenant.ID

	// Before the tenant registers Exchange Online, it gets nothing there:
	// the same refusal the token endpoint gives, audited in the tenant.
	_, _, err := e.svc.FirstPartyToken(ctx, a, directory.ExchangeAppID, vaultRes)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
		"AADSTS7000229: The client application "+directory.ExchangeAppID+" is missing service principal in the tenant "+a+".")
	if got := e.auditText(a); !strings.Contains(got, "AADSTS7000229") || !strings.Contains(got, `"result":"denied"`) {
		t.Errorf("tenant's audit log lacks the refusal: %s", got)
	}

	sp, err := e.dir.CreateServicePrincipal(ctx, sys, a, directory.ExchangeAppID)
	if err != nil {
		t.Fatal(err)
	}
	tok, exp, err := e.svc.FirstPartyToken(ctx, a, directory.ExchangeAppID, vaultRes)
	if err != nil {
		t.Fatalf("FirstPartyToken(Exchange) after registration err = %v", err)
	}
	if want := e.clock.Now().Add(identity.DefaultTokenLifetime); !exp.Equal(want) {
		t.Errorf("expires = %v, want %v", exp, want)
	}
	p, err := e.svc.Verify(ctx, tok, identity.KeyVault)
	if err != nil {
		t.Fatalf("Verify(first-party token) err = %v", err)
	}
	want := identity.Principal{TenantID: a, ObjectID: sp.ID, AppID: directory.ExchangeAppID, Type: identity.AppPrincipal,
		Name: "Office 365 Exchange Online", Audience: vaultRes, ExpiresAt: exp, TokenID: p.TokenID}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("principal mismatch (-want +got):\n%s", diff)
	}
	// The claims are those of a client_credentials token.
	claims := decodeClaims(t, tok)
	if claims["azp"] != directory.ExchangeAppID || claims["appid"] != directory.ExchangeAppID || claims["idtyp"] != "app" ||
		claims["iss"] != publicURL+"/"+a+"/v2.0" || claims["sub"] != sp.ID {
		t.Errorf("claims = %v", claims)
	}
	if got := e.auditText(a); !strings.Contains(got, `"action":"identity/token","target":"`+vaultRes+`","result":"success"`) {
		t.Errorf("tenant's audit log lacks the issuance: %s", got)
	}
	// A token for one tenant is useless in another: tenant b never registered Exchange.
	_, _, err = e.svc.FirstPartyToken(ctx, e.b.Tenant.ID, directory.ExchangeAppID, vaultRes)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000229")

	tests := []struct {
		name             string
		tenant, app, res string
		kind             errkind.Kind
		code, contains   string
	}{
		{"the tenant's own app", a, e.a.AdminApp.AppID, vaultRes, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
			"is not a first-party workload application"},
		{"a public first-party client", a, directory.CLIAppID, vaultRes, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
			"is not a first-party workload application"},
		{"not a GUID", a, "exchange", vaultRes, errkind.PermissionDenied, identity.CodeUnauthorizedClient,
			"is not a first-party workload application"},
		{"unknown resource", a, directory.ExchangeAppID, "https://evil.example", errkind.Invalid, identity.CodeInvalidResource,
			"AADSTS500011"},
		{"empty resource", a, directory.ExchangeAppID, "", errkind.Invalid, identity.CodeInvalidScope, "names no resource"},
		{"unknown tenant", "nowhere.onmicrosoft.com", directory.ExchangeAppID, vaultRes, errkind.NotFound, identity.CodeInvalidTenant,
			"AADSTS90002"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := e.svc.FirstPartyToken(ctx, tc.tenant, tc.app, tc.res)
			wantErr(t, err, tc.kind, tc.code, tc.contains)
			if tok != "" {
				t.Errorf("a refusal came with a token")
			}
		})
	}

	// A disabled service principal is refused (the stored flag flipped as
	// Graph's PATCH would), and so is a deleted one.
	setEnabled(t, e.store, a, sp.ID, false)
	_, _, err = e.svc.FirstPartyToken(ctx, a, directory.ExchangeAppID, vaultRes)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000112")
	setEnabled(t, e.store, a, sp.ID, true)
	if _, _, err := e.svc.FirstPartyToken(ctx, a, directory.ExchangeAppID, vaultRes); err != nil {
		t.Fatalf("re-enabled: err = %v", err)
	}
	if err := e.dir.DeleteServicePrincipal(ctx, sys, a, sp.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.FirstPartyToken(ctx, a, directory.ExchangeAppID, vaultRes)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "AADSTS7000229")

	// The lifetime follows the service's configuration, as for every token.
	short := e.newService(func(o *identity.Options) { o.TokenLifetime = 10 * time.Minute })
	if _, err := e.dir.CreateServicePrincipal(ctx, sys, a, directory.SharePointAppID); err != nil {
		t.Fatal(err)
	}
	if _, exp, err := short.FirstPartyToken(ctx, a, directory.SharePointAppID, vaultRes); err != nil || !exp.Equal(e.clock.Now().Add(10*time.Minute)) {
		t.Errorf("FirstPartyToken(SharePoint) with a 10-minute lifetime = expires %v, err %v", exp, err)
	}
}

// TestFirstPartyTokenOutsideOperatorTenant: a well-known application id
// registered in a tenant that is not the operator's gets nothing in
// process, even with a service principal where it asks.
func TestFirstPartyTokenOutsideOperatorTenant(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := directory.New(directory.Options{Store: st, KDF: directory.KDFParams{Time: 1, MemKiB: 64, Threads: 1}})
	cust, err := dir.CreateTenant(ctx, directory.System, directory.TenantSpec{DisplayName: "Impostor"})
	if err != nil {
		t.Fatal(err)
	}
	_, sp, err := dir.CreateApplication(ctx, directory.System, cust.ID, directory.AppSpec{AppID: directory.ExchangeAppID,
		DisplayName: "Not Exchange", MultiTenant: true})
	if err != nil || !sp.AccountEnabled {
		t.Fatalf("CreateApplication = service principal %+v, err %v", sp, err)
	}
	svc, err := identity.New(ctx, identity.Options{Store: st, Directory: dir, PublicURL: publicURL, VaultResource: vaultRes})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = svc.FirstPartyToken(ctx, cust.ID, directory.ExchangeAppID, vaultRes)
	wantErr(t, err, errkind.PermissionDenied, identity.CodeUnauthorizedClient, "registered outside the operator tenant")
}

// setEnabled flips a service principal's accountEnabled in the store; the
// directory has no API for it yet.
func setEnabled(t *testing.T, st storage.Backend, tid, spID string, enabled bool) {
	t.Helper()
	key := "directory/sp/" + tid + "/" + spID
	err := st.Update(context.Background(), func(tx storage.Tx) error {
		en, err := tx.Get(key)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(en.Value, &rec); err != nil {
			return err
		}
		rec["accountEnabled"] = enabled
		b, _ := json.Marshal(rec)
		_, err = tx.Put(key, b, en.Version)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Records that commit with no other change go through the Recorder (the
// server's group-commit batcher) when one is given, and a token is issued
// only once its record is durable there.
func TestTokenRecordsThroughRecorder(t *testing.T) {
	var b *audit.Batcher
	e := newEnv(t, func(o *identity.Options) {
		b = audit.NewBatcher(o.Audit, audit.BatchOptions{})
		o.Recorder = b
	})
	ctx := t.Context()
	req := identity.TokenRequest{Tenant: e.a.Tenant.ID, GrantType: identity.GrantClientCredentials,
		ClientID: e.a.AdminApp.AppID, ClientSecret: e.a.ClientSecret, Scope: vaultRes + "/.default"}
	if _, err := e.svc.Token(ctx, req); err != nil {
		t.Fatalf("Token: %v", err)
	}
	bad := req
	bad.ClientSecret = secret.NewString("not the secret")
	if _, err := e.svc.Token(ctx, bad); err == nil {
		t.Fatal("Token with a wrong secret succeeded")
	}
	if st := b.Stats(); st.Events != 2 {
		t.Errorf("the batcher took %d records, want 2 (the token and the refusal)", st.Events)
	}
	got := e.auditText(e.a.Tenant.ID)
	for _, want := range []string{`"result":"success"`, `"result":"denied"`} {
		if !strings.Contains(got, `"action":"identity/token"`) || !strings.Contains(got, want) {
			t.Errorf("audit records %s lack an identity/token record with %s", got, want)
		}
	}

	// No record, no token.
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.Token(ctx, req)
	wantErr(t, err, errkind.Unavailable, "", "no token was issued")
}
