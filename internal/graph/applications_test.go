package graph_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type applicationJSON struct {
	Context                string `json:"@odata.context"`
	ID                     string
	AppID                  string `json:"appId"`
	DisplayName            string
	SignInAudience         string
	IsFallbackPublicClient bool
	PublicClient           struct{ RedirectURIs []string }
	Web                    struct{ RedirectURIs []string }
	PasswordCredentials    []passwordCredentialJSON
	KeyCredentials         []map[string]any
}

type passwordCredentialJSON struct {
	Context       string `json:"@odata.context"`
	KeyID         string `json:"keyId"`
	DisplayName   string
	Hint          string
	SecretText    *string
	StartDateTime string
	EndDateTime   string
}

func TestApplications(t *testing.T) {
	f := newFixture(t)
	var app applicationJSON

	create := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		msg    string
	}{
		{"multi-tenant public client", tokAdmin, map[string]any{"displayName": "Contoso tool", "signInAudience": "AzureADMultipleOrgs",
			"isFallbackPublicClient": true, "publicClient": map[string]any{"redirectUris": []string{"http://localhost"}}}, http.StatusCreated, "", ""},
		{"by plain user", tokUser, map[string]any{"displayName": "x"}, http.StatusForbidden, "Authorization_RequestDenied", "Application Administrator"},
		{"personal accounts", tokAdmin, map[string]any{"displayName": "x", "signInAudience": "AzureADandPersonalMicrosoftAccount"},
			http.StatusBadRequest, "Request_BadRequest", "AzureADMultipleOrgs"},
		{"no name", tokAdmin, map[string]any{"signInAudience": "AzureADMyOrg"}, http.StatusBadRequest, "Request_BadRequest", "displayName"},
		{"public and web", tokAdmin, map[string]any{"displayName": "x", "isFallbackPublicClient": true,
			"web": map[string]any{"redirectUris": []string{"https://contoso.example/cb"}}}, http.StatusBadRequest, "Request_BadRequest", "not both"},
		{"bad redirect", tokAdmin, map[string]any{"displayName": "x", "web": map[string]any{"redirectUris": []string{"http://contoso.example/cb"}}},
			http.StatusBadRequest, "Request_BadRequest", "redirect URI"},
		{"unknown property", tokAdmin, map[string]any{"displayName": "x", "requiredResourceAccess": []any{}},
			http.StatusBadRequest, "Request_BadRequest", "requiredResourceAccess"},
		{"wrong odata type", tokAdmin, map[string]any{"@odata.type": "#microsoft.graph.user", "displayName": "x"},
			http.StatusBadRequest, "Request_BadRequest", "@odata.type"},
	}
	for _, tc := range create {
		t.Run("create "+tc.name, func(t *testing.T) {
			r := f.call("POST", "/v1.0/applications", tc.token, tc.body)
			if tc.status != http.StatusCreated {
				wantError(t, r, tc.status, tc.code, tc.msg)
				return
			}
			app = want[applicationJSON](t, r, http.StatusCreated)
			if app.ID == "" || app.AppID == "" || app.DisplayName != "Contoso tool" || app.SignInAudience != "AzureADMultipleOrgs" ||
				!app.IsFallbackPublicClient || len(app.PublicClient.RedirectURIs) != 1 || app.Web.RedirectURIs == nil ||
				app.PasswordCredentials == nil || app.KeyCredentials == nil || app.Context != f.contextURL("applications/$entity") {
				t.Errorf("POST /applications = %+v, want the new multi-tenant public client", app)
			}
		})
	}
	if app.ID == "" {
		t.Fatal("no application was created")
	}

	// Lookups: by object id, by the appId alternate key and by $filter.
	lookups := []struct {
		name   string
		path   string
		status int
	}{
		{"by object id", "/v1.0/applications/" + app.ID, http.StatusOK},
		{"by alternate key", "/v1.0/applications(appId='" + app.AppID + "')", http.StatusOK},
		{"by appId in the object id's place", "/v1.0/applications/" + app.AppID, http.StatusNotFound},
		{"alternate key of another tenant's app", "/v1.0/applications(appId='" + f.fabrikam.AdminApp.AppID + "')", http.StatusNotFound},
		{"not a GUID", "/v1.0/applications/contoso-tool", http.StatusBadRequest},
	}
	for _, tc := range lookups {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call("GET", tc.path, tokUser, nil)
			if tc.status != http.StatusOK {
				if r.status != tc.status {
					t.Errorf("GET %s status = %d, want %d; %s", tc.path, r.status, tc.status, r.body)
				}
				return
			}
			got := want[applicationJSON](t, r, http.StatusOK)
			if got.ID != app.ID || got.AppID != app.AppID {
				t.Errorf("GET %s = %+v, want %s", tc.path, got, app.ID)
			}
		})
	}
	t.Run("filter appId", func(t *testing.T) {
		q := url.Values{"$filter": {"appId eq '" + app.AppID + "'"}}
		c := want[collection[applicationJSON]](t, f.call("GET", "/v1.0/applications?"+q.Encode(), tokUser, nil), http.StatusOK)
		if len(c.Value) != 1 || c.Value[0].ID != app.ID || c.Context != f.contextURL("applications") {
			t.Errorf("GET /applications?%s = %+v, want only %s", q.Encode(), c, app.ID)
		}
		all := want[collection[applicationJSON]](t, f.call("GET", "/v1.0/applications", tokUser, nil), http.StatusOK)
		if len(all.Value) != 2 { // the automation app and the new one
			t.Errorf("GET /applications returned %d applications, want 2", len(all.Value))
		}
	})

	// Secrets: addPassword shows the secret once; nothing else ever does.
	end := fixedNow.Add(90 * 24 * time.Hour).Format(time.RFC3339)
	addPath := "/v1.0/applications/" + app.ID + "/addPassword"
	var pc passwordCredentialJSON
	t.Run("addPassword", func(t *testing.T) {
		wantError(t, f.call("POST", addPath, tokUser, map[string]any{"passwordCredential": map[string]any{"displayName": "x"}}),
			http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges", "Global Administrator")
		wantError(t, f.call("POST", addPath, tokAdmin, map[string]any{"passwordCredential": map[string]any{"endDateTime": "2020-01-01T00:00:00Z"}}),
			http.StatusBadRequest, "Request_BadRequest", "endDateTime")
		wantError(t, f.call("POST", addPath, tokAdmin, map[string]any{"passwordCredential": map[string]any{"endDateTime": "next year"}}),
			http.StatusBadRequest, "Request_BadRequest", "next year")
		r := f.call("POST", addPath, tokAdmin, map[string]any{"passwordCredential": map[string]any{"displayName": "ci", "endDateTime": end}})
		pc = want[passwordCredentialJSON](t, r, http.StatusOK)
		if pc.SecretText == nil || len(*pc.SecretText) < 30 || pc.KeyID == "" || pc.DisplayName != "ci" ||
			pc.Hint != (*pc.SecretText)[:3] || pc.Context != f.contextURL("microsoft.graph.passwordCredential") {
			t.Fatalf("addPassword = %s, want a new secret with its keyId, name and hint", r.body)
		}
		if pc.EndDateTime[:10] != end[:10] {
			t.Errorf("endDateTime = %q, want %q", pc.EndDateTime, end)
		}
		// Without a body the secret gets the default lifetime.
		r = f.call("POST", addPath, tokAdmin, nil)
		if p2 := want[passwordCredentialJSON](t, r, http.StatusOK); p2.SecretText == nil || p2.KeyID == pc.KeyID {
			t.Errorf("addPassword without a body = %s, want a second secret", r.body)
		}
	})
	t.Run("credentials listed without secrets", func(t *testing.T) {
		got := want[applicationJSON](t, f.call("GET", "/v1.0/applications/"+app.ID, tokAdmin, nil), http.StatusOK)
		if len(got.PasswordCredentials) != 2 || got.PasswordCredentials[0].KeyID != pc.KeyID || got.PasswordCredentials[0].Hint != pc.Hint {
			t.Errorf("passwordCredentials = %+v, want the two secrets' metadata", got.PasswordCredentials)
		}
	})
	t.Run("removePassword", func(t *testing.T) {
		removePath := "/v1.0/applications/" + app.ID + "/removePassword"
		wantError(t, f.call("POST", removePath, tokAdmin, map[string]any{}), http.StatusBadRequest, "Request_BadRequest", "keyId")
		wantError(t, f.call("POST", removePath, tokUser, map[string]any{"keyId": pc.KeyID}), http.StatusForbidden, "Authorization_RequestDenied")
		if r := f.call("POST", removePath, tokAdmin, map[string]any{"keyId": pc.KeyID}); r.status != http.StatusNoContent || len(r.body) != 0 {
			t.Fatalf("removePassword status = %d body %q, want 204 and no body", r.status, r.body)
		}
		wantError(t, f.call("POST", removePath, tokAdmin, map[string]any{"keyId": pc.KeyID}), http.StatusNotFound, "Request_ResourceNotFound")
		got := want[applicationJSON](t, f.call("GET", "/v1.0/applications/"+app.ID, tokAdmin, nil), http.StatusOK)
		if len(got.PasswordCredentials) != 1 || got.PasswordCredentials[0].KeyID == pc.KeyID {
			t.Errorf("passwordCredentials after removePassword = %+v, want only the other secret", got.PasswordCredentials)
		}
	})
	t.Run("unknown action", func(t *testing.T) {
		wantError(t, f.call("POST", "/v1.0/applications/"+app.ID+"/addKey", tokAdmin, map[string]any{}), http.StatusBadRequest, "BadRequest", "addKey")
	})

	// Every response the server sent: only addPassword's carry a secret.
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.responses {
		isAdd := strings.HasSuffix(r.path, "/addPassword") && strings.Contains(r.body, `"keyId"`)
		if strings.Contains(r.body, "secretText") != isAdd {
			t.Errorf("%s %s: secretText present = %v, want %v: %s", r.method, r.path, !isAdd, isAdd, r.body)
		}
		if pc.SecretText != nil && !isAdd && strings.Contains(r.body, *pc.SecretText) {
			t.Errorf("%s %s shows a client secret: %s", r.method, r.path, r.body)
		}
		if strings.Contains(r.body, `"hash"`) {
			t.Errorf("%s %s shows a credential hash: %s", r.method, r.path, r.body)
		}
	}
}
