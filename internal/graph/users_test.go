package graph_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

type userJSON struct {
	Context           string `json:"@odata.context"`
	ID                string
	DisplayName       string
	UserPrincipalName string
	MailNickname      string
	AccountEnabled    bool
	UserType          string
}

func TestUsers(t *testing.T) {
	f := newFixture(t)
	admin := f.contoso.Admin

	t.Run("list", func(t *testing.T) {
		c := want[collection[userJSON]](t, f.call("GET", "/v1.0/users", tokUser, nil), http.StatusOK)
		got := map[string]string{}
		for _, u := range c.Value {
			got[u.UserPrincipalName] = u.ID
		}
		if c.Context != f.contextURL("users") || len(c.Value) != 2 || got[admin.UserPrincipalName] != admin.ID || got[contosoPlain] != f.plain.ID {
			t.Errorf("GET /users = %+v, want Contoso's admin and plain user only", c)
		}
	})
	t.Run("filter by userPrincipalName", func(t *testing.T) {
		q := url.Values{"$filter": {"userPrincipalName eq '" + strings.ToUpper(contosoPlain) + "'"}}
		c := want[collection[userJSON]](t, f.call("GET", "/v1.0/users?"+q.Encode(), tokUser, nil), http.StatusOK)
		if len(c.Value) != 1 || c.Value[0].ID != f.plain.ID {
			t.Errorf("GET /users?%s = %+v, want the plain user", q.Encode(), c.Value)
		}
	})
	for _, key := range []string{admin.ID, admin.UserPrincipalName} {
		t.Run("get "+key, func(t *testing.T) {
			u := want[userJSON](t, f.call("GET", "/v1.0/users/"+key, tokUser, nil), http.StatusOK)
			if u.ID != admin.ID || u.UserPrincipalName != admin.UserPrincipalName || !u.AccountEnabled ||
				u.MailNickname != "admin" || u.UserType != "Member" || u.Context != f.contextURL("users/$entity") {
				t.Errorf("GET /users/%s = %+v, want the admin", key, u)
			}
		})
	}
	t.Run("me", func(t *testing.T) {
		u := want[userJSON](t, f.call("GET", "/v1.0/me", tokUser, nil), http.StatusOK)
		if u.ID != f.plain.ID {
			t.Errorf("GET /me = %+v, want the plain user", u)
		}
		wantError(t, f.call("GET", "/v1.0/me", tokAdminApp, nil), http.StatusBadRequest, "BadRequest", "delegated")
	})
	t.Run("other tenant's user", func(t *testing.T) {
		wantError(t, f.call("GET", "/v1.0/users/"+f.fabrikam.Admin.ID, tokUser, nil), http.StatusNotFound, "Request_ResourceNotFound", "does not exist")
	})

	newUser := func(upn string) map[string]any {
		return map[string]any{"accountEnabled": true, "displayName": "Adele Vance", "mailNickname": strings.Split(upn, "@")[0],
			"userPrincipalName": upn, "passwordProfile": map[string]any{"password": "xWwvJ]6NMw+bWH-d", "forceChangePasswordNextSignIn": true}}
	}
	domain := f.contoso.Tenant.DefaultDomain
	create := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
		msg    string
	}{
		{"by admin", tokAdmin, newUser("adelev@" + domain), http.StatusCreated, "", ""},
		{"by admin app", tokAdminApp, newUser("meganb@" + domain), http.StatusCreated, "", ""},
		{"twice", tokAdmin, newUser("adelev@" + domain), http.StatusConflict, "Request_MultipleObjectsWithSameKeyValue", "already exists"},
		{"by plain user", tokUser, newUser("x@" + domain), http.StatusForbidden, "Authorization_RequestDenied", "User Administrator"},
		{"foreign domain", tokAdmin, newUser("x@fabrikam.onmicrosoft.com"), http.StatusBadRequest, "Request_BadRequest", domain},
		{"missing password", tokAdmin, map[string]any{"accountEnabled": true, "displayName": "X", "userPrincipalName": "y@" + domain},
			http.StatusBadRequest, "Request_BadRequest", "passwordProfile.password"},
		{"missing accountEnabled", tokAdmin, map[string]any{"displayName": "X", "userPrincipalName": "y@" + domain,
			"passwordProfile": map[string]any{"password": "long enough pw"}}, http.StatusBadRequest, "Request_BadRequest", "accountEnabled"},
		{"nickname differs", tokAdmin, func() any { u := newUser("z@" + domain); u["mailNickname"] = "zz"; return u }(),
			http.StatusBadRequest, "Request_BadRequest", "mailNickname"},
		{"unknown property", tokAdmin, func() any { u := newUser("w@" + domain); u["usageLocation"] = "US"; return u }(),
			http.StatusBadRequest, "Request_BadRequest", "usageLocation"},
	}
	for _, tc := range create {
		t.Run("create "+tc.name, func(t *testing.T) {
			r := f.call("POST", "/v1.0/users", tc.token, tc.body)
			if tc.status != http.StatusCreated {
				wantError(t, r, tc.status, tc.code, tc.msg)
				return
			}
			u := want[userJSON](t, r, http.StatusCreated)
			b := tc.body.(map[string]any)
			if u.ID == "" || u.UserPrincipalName != b["userPrincipalName"] || u.DisplayName != "Adele Vance" || !u.AccountEnabled {
				t.Errorf("POST /users = %+v, want the new user", u)
			}
			if strings.Contains(string(r.body), "xWwvJ]6NMw") || strings.Contains(string(r.body), "password") {
				t.Errorf("POST /users response shows the password: %s", r.body)
			}
			got := want[userJSON](t, f.call("GET", "/v1.0/users/"+u.ID, tokUser, nil), http.StatusOK)
			if got.UserPrincipalName != u.UserPrincipalName {
				t.Errorf("GET the new user = %+v, want %+v", got, u)
			}
		})
	}
}
