package graph_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/graph"
)

func errorsIsNotFound(err error) bool { return errkind.Is(err, errkind.NotFound) }

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	if s == nil {
		s = []string{}
	}
	return s
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		header string
		msg    string
	}{
		{"no header", "", "Access token is empty"},
		{"empty bearer", "Bearer ", "Access token is empty"},
		{"basic", "Basic YWRtaW46cGFzcw==", "Access token is empty"},
		{"unknown token", "Bearer nonsense", "not valid"},
		{"Resource Manager audience", "Bearer " + tokARM, "audience"},
	}
	paths := []struct{ method, path string }{
		{"GET", "/v1.0/organization"},
		{"GET", "/v1.0/servicePrincipals"},
		{"POST", "/v1.0/servicePrincipals"},
		{"GET", "/v1.0/servicePrincipals(appId='" + directory.M365DAREAppID + "')"},
		{"DELETE", "/v1.0/roleManagement/directory/roleAssignments/5a1e0c1d-0000-4000-8000-000000000001"},
	}
	for _, tc := range tests {
		for _, p := range paths {
			t.Run(tc.name+" "+p.method+" "+p.path, func(t *testing.T) {
				req, _ := http.NewRequestWithContext(t.Context(), p.method, f.srv.URL+p.path, strings.NewReader(`{"appId":"`+directory.M365DAREAppID+`"}`))
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				req.Header.Set("client-request-id", "test-client-request")
				resp, err := f.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				r := readResponse(t, resp)
				wantError(t, r, http.StatusUnauthorized, "InvalidAuthenticationToken", tc.msg)
				ch := r.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, `authorization_uri="`+f.srv.URL+`/`) {
					t.Errorf("WWW-Authenticate = %q, want a Bearer challenge naming our authority", ch)
				}
			})
		}
	}
	// Nothing was created by the refused POSTs.
	if _, err := f.dir.ServicePrincipalByAppID(t.Context(), f.contoso.Tenant.ID, directory.M365DAREAppID); !errorsIsNotFound(err) {
		t.Errorf("a refused POST created a service principal: err = %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	spFilter := func(s string) string { return "/v1.0/servicePrincipals?" + url.Values{"$filter": {s}}.Encode() }
	big := `{"appId":"` + strings.Repeat("a", 70<<10) + `"}`
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		status int
		code   string
		msg    []string
	}{
		{"malformed JSON", "POST", "/v1.0/servicePrincipals", `{"appId":`, 400, "Request_BadRequest", []string{"JSON"}},
		{"not JSON at all", "POST", "/v1.0/users", `appId=x`, 400, "Request_BadRequest", []string{"JSON"}},
		{"two JSON values", "POST", "/v1.0/servicePrincipals", `{"appId":"x"}{}`, 400, "Request_BadRequest", nil},
		{"wrong type", "POST", "/v1.0/servicePrincipals", `{"appId":42}`, 400, "Request_BadRequest", []string{"appId"}},
		{"unknown property", "POST", "/v1.0/servicePrincipals", `{"appId":"x","owner":"me"}`, 400, "Request_BadRequest", []string{"owner"}},
		{"empty body", "POST", "/v1.0/roleManagement/directory/roleAssignments", ``, 400, "Request_BadRequest", []string{"empty"}},
		{"oversized body", "POST", "/v1.0/servicePrincipals", big, 413, "Request_EntityTooLarge", nil},
		{"oversized addPassword", "POST", "/v1.0/applications/" + f.contoso.AdminApp.ObjectID + "/addPassword", big, 413, "Request_EntityTooLarge", nil},
		{"filter syntax", "GET", spFilter("appId eq "), nil, 400, "BadRequest", []string{"Invalid filter clause", "appId eq '…'", "servicePrincipalNames/any(x:x eq '…')"}},
		{"filter operator", "GET", spFilter("appId ne 'x'"), nil, 400, "BadRequest", []string{"'eq'"}},
		{"filter function", "GET", spFilter("startswith(displayName,'M365')"), nil, 400, "BadRequest", []string{"supported $filter forms"}},
		{"filter unquoted", "GET", spFilter("appId eq " + directory.M365DAREAppID), nil, 400, "BadRequest", nil},
		{"filter unterminated", "GET", spFilter("appId eq 'x"), nil, 400, "BadRequest", []string{"unterminated"}},
		{"filter or", "GET", spFilter("appId eq 'x' or appId eq 'y'"), nil, 400, "BadRequest", []string{"'and'"}},
		{"filter lambda variable mismatch", "GET", spFilter("servicePrincipalNames/any(c:d eq 'x')"), nil, 400, "BadRequest", []string{"lambda variable"}},
		{"filter unknown property", "GET", spFilter("homepage eq 'x'"), nil, 400, "Request_UnsupportedQuery", []string{"homepage", "ServicePrincipal"}},
		{"filter collection with eq", "GET", spFilter("servicePrincipalNames eq 'x'"), nil, 400, "Request_UnsupportedQuery", []string{"servicePrincipalNames/any"}},
		{"filter scalar with any", "GET", spFilter("appId/any(x:x eq 'y')"), nil, 400, "Request_UnsupportedQuery", []string{"appId eq"}},
		{"filter on role assignments", "GET", "/v1.0/roleManagement/directory/roleAssignments?$filter=appId%20eq%20'x'", nil, 400, "Request_UnsupportedQuery", []string{"principalId eq '…'"}},
		{"filter twice", "GET", "/v1.0/users?$filter=id%20eq%20'x'&$filter=id%20eq%20'y'", nil, 400, "BadRequest", []string{"more than once"}},
		{"orderby", "GET", "/v1.0/users?$orderby=displayName", nil, 400, "Request_UnsupportedQuery", []string{"$orderby"}},
		{"top zero", "GET", "/v1.0/users?$top=0", nil, 400, "BadRequest", []string{"999"}},
		{"top huge", "GET", "/v1.0/users?$top=1000", nil, 400, "BadRequest", []string{"999"}},
		{"bad skiptoken", "GET", "/v1.0/users?$skiptoken=%%%", nil, 400, "BadRequest", nil},
		{"bad query string", "GET", "/v1.0/users?$top=%zz", nil, 400, "BadRequest", nil},
		{"wrong method", "PATCH", "/v1.0/servicePrincipals", `{}`, 405, "Request_BadRequest", []string{"PATCH", "GET, POST"}},
		{"wrong method on an item", "PUT", "/v1.0/users/" + f.plain.ID, `{}`, 405, "Request_BadRequest", []string{"GET"}},
		{"wrong method on an alternate key", "POST", "/v1.0/servicePrincipals(appId='" + directory.M365DAREAppID + "')", `{}`, 405, "Request_BadRequest", nil},
		{"unknown segment", "GET", "/v1.0/groups", nil, 400, "BadRequest", []string{"groups"}},
		{"unknown application segment", "GET", "/v1.0/applications/" + f.contoso.AdminApp.ObjectID + "/owners", nil, 400, "BadRequest", []string{"owners"}},
		{"GET an action", "GET", "/v1.0/applications/" + f.contoso.AdminApp.ObjectID + "/addPassword", nil, 405, "Request_BadRequest", []string{"POST"}},
		{"unknown segment, other method", "POST", "/v1.0/groups", `{}`, 400, "BadRequest", []string{"groups"}},
		{"unknown alternate key property", "GET", "/v1.0/applications(displayName='x')", nil, 400, "BadRequest", nil},
		{"not a GUID", "DELETE", "/v1.0/servicePrincipals/x'--", nil, 400, "Request_BadRequest", []string{"Invalid object identifier"}},
		{"control characters", "GET", "/v1.0/users/%00%01", nil, 404, "Request_ResourceNotFound", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(tc.method, tc.path, tokAdmin, tc.body)
			wantError(t, r, tc.status, tc.code, tc.msg...)
			if tc.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
}

func TestPaging(t *testing.T) {
	f := newFixture(t)
	all := want[collection[roleDefinitionJSON]](t, f.call("GET", "/v1.0/roleManagement/directory/roleDefinitions", tokUser, nil), http.StatusOK)
	var wantIDs []string
	for _, d := range all.Value {
		wantIDs = append(wantIDs, d.ID)
	}
	var got []string
	next := "/v1.0/roleManagement/directory/roleDefinitions?$top=2&$count=true&$filter=" + url.QueryEscape("displayName eq 'Global Administrator' and id eq '"+directory.GlobalAdministrator.ID+"'")
	first := want[collection[roleDefinitionJSON]](t, f.call("GET", next, tokUser, nil), http.StatusOK)
	if len(first.Value) != 1 || first.NextLink != "" || first.Count == nil || *first.Count != 1 {
		t.Errorf("filtered page = %+v, want one definition, a count of 1 and no nextLink", first)
	}
	next = "/v1.0/roleManagement/directory/roleDefinitions?$top=2&$select=id"
	for pages := 0; next != ""; pages++ {
		if pages > len(wantIDs) {
			t.Fatalf("paging does not end")
		}
		c := want[collection[roleDefinitionJSON]](t, f.call("GET", next, tokUser, nil), http.StatusOK)
		if len(c.Value) > 2 {
			t.Fatalf("page of %d items, want at most $top=2", len(c.Value))
		}
		for _, d := range c.Value {
			got = append(got, d.ID)
		}
		next = ""
		if c.NextLink != "" {
			if !strings.HasPrefix(c.NextLink, f.srv.URL+"/v1.0/roleManagement/directory/roleDefinitions?") || !strings.Contains(c.NextLink, "$select=id") || !strings.Contains(c.NextLink, "$skiptoken=") {
				t.Fatalf("@odata.nextLink = %q, want an absolute link keeping the query", c.NextLink)
			}
			next = strings.TrimPrefix(c.NextLink, f.srv.URL)
		}
	}
	if diff := cmp.Diff(wantIDs, got); diff != "" {
		t.Errorf("paged ids mismatch (-want +got):\n%s", diff)
	}
}

// TestRegisterBesideOtherSurfaces registers the Graph routes on a mux that
// also holds patterns of the shape the identity and Resource Manager
// surfaces use; ServeMux panics on conflicting patterns.
func TestRegisterBesideOtherSurfaces(t *testing.T) {
	mux := http.NewServeMux()
	for _, p := range []string{
		"POST /{tenant}/oauth2/v2.0/token", "POST /{tenant}/oauth2/v2.0/devicecode", "POST /{tenant}/oauth2/token",
		"GET /{tenant}/v2.0/.well-known/openid-configuration", "GET /{tenant}/.well-known/openid-configuration",
		"GET /{tenant}/discovery/v2.0/keys", "GET /{tenant}/discovery/keys", "GET /subscriptions/{sub}",
		"/customerkey/v1/", "GET /{$}",
	} {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	graph.New(graph.Options{}).Register(mux)
	if _, pattern := mux.Handler(mustRequest(t, "POST", "/v1.0/oauth2/v2.0/token")); pattern != "POST /{tenant}/oauth2/v2.0/token" {
		t.Errorf("POST /v1.0/oauth2/v2.0/token routes to %q, want the identity pattern", pattern)
	}
}

func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://localhost"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
