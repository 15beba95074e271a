package graph_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/directory"
)

type servicePrincipalJSON struct {
	Context                string `json:"@odata.context"`
	ID                     string
	AppID                  string `json:"appId"`
	AppDisplayName         string
	DisplayName            string
	AppOwnerOrganizationID string `json:"appOwnerOrganizationId"`
	ServicePrincipalNames  []string
	ServicePrincipalType   string
	AccountEnabled         bool
	SignInAudience         string
}

func TestCreateServicePrincipal(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		msg    []string
	}{
		// Order matters: the first creates, the later ones see it.
		{"plain user is denied", tokUser, map[string]any{"appId": directory.M365DAREAppID},
			http.StatusForbidden, "Authorization_RequestDenied", []string{"Insufficient privileges", "Global Administrator", "Application Administrator"}},
		{"global admin registers a first-party app", tokAdmin, map[string]any{"appId": directory.M365DAREAppID}, http.StatusCreated, "", nil},
		{"twice", tokAdmin, map[string]any{"appId": directory.M365DAREAppID},
			http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", []string{directory.M365DAREAppID}},
		{"automation app with odata type", tokAdminApp, map[string]any{"@odata.type": "#microsoft.graph.servicePrincipal",
			"appId": directory.ExchangeAppID, "accountEnabled": true}, http.StatusCreated, "", nil},
		{"unknown appId", tokAdmin, map[string]any{"appId": "5a1e0c1d-0000-4000-8000-000000000001"},
			http.StatusNotFound, "Request_ResourceNotFound", []string{"5a1e0c1d-0000-4000-8000-000000000001", "application"}},
		{"appId not a GUID", tokAdmin, map[string]any{"appId": "onboarding"},
			http.StatusNotFound, "Request_ResourceNotFound", []string{"onboarding"}},
		{"another tenant's single-tenant app", tokAdmin, map[string]any{"appId": f.fabrikam.AdminApp.AppID},
			http.StatusBadRequest, "Request_BadRequest", []string{"single-tenant"}},
		{"no appId", tokAdmin, map[string]any{}, http.StatusBadRequest, "Request_BadRequest", []string{"appId"}},
		{"unknown property", tokAdmin, map[string]any{"appId": directory.OnboardingAppID, "tags": []string{}},
			http.StatusBadRequest, "Request_BadRequest", []string{"tags"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("POST", "/v1.0/servicePrincipals", tc.token, tc.body)
			if tc.status != http.StatusCreated {
				wantError(t, r, tc.status, tc.code, tc.msg...)
				return
			}
			sp := want[servicePrincipalJSON](t, r, http.StatusCreated)
			appID := tc.body.(map[string]any)["appId"].(string)
			fp, _ := f.dir.Application(t.Context(), appID)
			want := servicePrincipalJSON{Context: f.contextURL("servicePrincipals/$entity"), ID: sp.ID, AppID: appID,
				AppDisplayName: fp.DisplayName, DisplayName: fp.DisplayName, AppOwnerOrganizationID: f.operator.Tenant.ID,
				ServicePrincipalNames: []string{appID}, ServicePrincipalType: "Application", AccountEnabled: true,
				SignInAudience: "AzureADMultipleOrgs"}
			if diff := cmp.Diff(want, sp); diff != "" || !directory.IsGUID(sp.ID) {
				t.Errorf("POST /servicePrincipals mismatch (-want +got):\n%s", diff)
			}
			if _, err := f.dir.ServicePrincipalByAppID(t.Context(), f.contoso.Tenant.ID, appID); err != nil {
				t.Errorf("the directory has no service principal for %s after 201: %v", appID, err)
			}
		})
	}
}

func TestServicePrincipalLookups(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	dare, err := f.dir.CreateServicePrincipal(ctx, directory.System, f.contoso.Tenant.ID, directory.M365DAREAppID)
	if err != nil {
		t.Fatalf("CreateServicePrincipal() err = %v", err)
	}
	filter := func(s string) string { return "/v1.0/servicePrincipals?" + url.Values{"$filter": {s}}.Encode() }
	tests := []struct {
		name string
		path string
		want []string // ids, in order
	}{
		{"appId eq", filter("appId eq '" + directory.M365DAREAppID + "'"), []string{dare.ID}},
		{"appId eq upper case", filter("appId eq '" + "C066D759-24AE-40E7-A56F-027002B5D3E4" + "'"), []string{dare.ID}},
		{"servicePrincipalNames any", filter("servicePrincipalNames/any(c:c eq '" + directory.M365DAREAppID + "')"), []string{dare.ID}},
		// What Az.Resources' Get-AzADServicePrincipal sends for
		// -ServicePrincipalName and for -ApplicationId (property names
		// capitalized).
		{"Get-AzADServicePrincipal -ServicePrincipalName", filter("ServicePrincipalNames/any(s:s eq '" + directory.M365DAREAppID + "')"), []string{dare.ID}},
		{"Get-AzADServicePrincipal -ApplicationId", filter("AppId eq '" + directory.M365DAREAppID + "'"), []string{dare.ID}},
		{"any with another variable and spaces", filter("servicePrincipalNames/any(x: x eq '" + directory.M365DAREAppID + "')"), []string{dare.ID}},
		{"not registered", filter("servicePrincipalNames/any(c:c eq '" + directory.OnboardingAppID + "')"), []string{}},
		{"and", filter("appId eq '" + directory.M365DAREAppID + "' and displayName eq 'M365DataAtRestEncryption'"), []string{dare.ID}},
		{"and, no match", filter("appId eq '" + directory.M365DAREAppID + "' and displayName eq 'other'"), []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := want[collection[servicePrincipalJSON]](t, f.call("GET", tc.path, tokUser, nil), http.StatusOK)
			got := []string{}
			for _, sp := range c.Value {
				got = append(got, sp.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("GET %s mismatch (-want +got):\n%s", tc.path, diff)
			}
			if c.Context != f.contextURL("servicePrincipals") {
				t.Errorf("@odata.context = %q", c.Context)
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		c := want[collection[servicePrincipalJSON]](t, f.call("GET", "/v1.0/servicePrincipals", tokUser, nil), http.StatusOK)
		// The automation app's, the CLI's (every tenant has it) and DARE's.
		if len(c.Value) != 3 {
			t.Errorf("GET /servicePrincipals returned %d, want 3: %+v", len(c.Value), c.Value)
		}
	})
	for _, path := range []string{"/v1.0/servicePrincipals/" + dare.ID, "/v1.0/servicePrincipals(appId='" + directory.M365DAREAppID + "')"} {
		t.Run("get "+path, func(t *testing.T) {
			sp := want[servicePrincipalJSON](t, f.call("GET", path, tokUser, nil), http.StatusOK)
			if sp.ID != dare.ID || sp.AppID != directory.M365DAREAppID || sp.Context != f.contextURL("servicePrincipals/$entity") {
				t.Errorf("GET %s = %+v, want %s", path, sp, dare.ID)
			}
		})
	}
	notFound := []struct {
		name, path string
		status     int
		code       string
	}{
		{"unknown id", "/v1.0/servicePrincipals/5a1e0c1d-0000-4000-8000-000000000001", http.StatusNotFound, "Request_ResourceNotFound"},
		{"not a GUID", "/v1.0/servicePrincipals/dare", http.StatusBadRequest, "Request_BadRequest"},
		{"unregistered alternate key", "/v1.0/servicePrincipals(appId='" + directory.OnboardingAppID + "')", http.StatusNotFound, "Request_ResourceNotFound"},
		{"other tenant's principal", "/v1.0/servicePrincipals/" + f.fabrikam.AdminSP.ID, http.StatusNotFound, "Request_ResourceNotFound"},
		{"malformed alternate key", "/v1.0/servicePrincipals(appId=" + directory.OnboardingAppID + ")", http.StatusBadRequest, "BadRequest"},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.call("GET", tc.path, tokUser, nil), tc.status, tc.code)
		})
	}
}

func TestDeleteServicePrincipal(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	tid := f.contoso.Tenant.ID
	dare, err := f.dir.CreateServicePrincipal(ctx, directory.System, tid, directory.M365DAREAppID)
	if err != nil {
		t.Fatalf("CreateServicePrincipal() err = %v", err)
	}
	exo, err := f.dir.CreateServicePrincipal(ctx, directory.System, tid, directory.ExchangeAppID)
	if err != nil {
		t.Fatalf("CreateServicePrincipal() err = %v", err)
	}
	tests := []struct {
		name   string
		token  string
		path   string
		status int
		code   string
	}{
		{"plain user", tokUser, "/v1.0/servicePrincipals/" + dare.ID, http.StatusForbidden, "Authorization_RequestDenied"},
		{"other tenant's admin", tokFabrikam, "/v1.0/servicePrincipals/" + dare.ID, http.StatusNotFound, "Request_ResourceNotFound"},
		{"admin", tokAdmin, "/v1.0/servicePrincipals/" + dare.ID, http.StatusNoContent, ""},
		{"again", tokAdmin, "/v1.0/servicePrincipals/" + dare.ID, http.StatusNotFound, "Request_ResourceNotFound"},
		{"by alternate key", tokAdmin, "/v1.0/servicePrincipals(appId='" + directory.ExchangeAppID + "')", http.StatusNoContent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("DELETE", tc.path, tc.token, nil)
			if tc.status == http.StatusNoContent {
				if r.status != tc.status || len(r.body) != 0 {
					t.Fatalf("DELETE %s = %d %s, want 204 without a body", tc.path, r.status, r.body)
				}
				return
			}
			wantError(t, r, tc.status, tc.code)
		})
	}
	for _, id := range []string{dare.ID, exo.ID} {
		if _, err := f.dir.ServicePrincipal(ctx, directory.System, tid, id); !errorsIsNotFound(err) {
			t.Errorf("ServicePrincipal(%s) after DELETE err = %v, want not found", id, err)
		}
	}
}
