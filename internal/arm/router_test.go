package arm

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
)

// segments splits a request path as ServeHTTP does (before unescaping).
func segments(path string) []string { return strings.Split(strings.Trim(path, "/"), "/") }

func TestRouteMatch(t *testing.T) {
	plain := newRoute("GET", "/subscriptions/{sub}/resourcegroups/{rg}", nil, nil)
	literal := newRoute("GET", "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults", nil, nil)
	scoped := newRoute("GET", "/providers/Microsoft.Authorization/roleAssignments/{id}", nil, nil)
	scoped.scoped = true
	scopedList := newRoute("GET", "/providers/Microsoft.Authorization/roleAssignments", nil, nil)
	scopedList.scoped = true

	tests := []struct {
		name  string
		rt    route
		path  string
		want  match
		match bool
	}{
		{"captures", plain, "/subscriptions/s1/resourcegroups/rg1", match{"sub": "s1", "rg": "rg1"}, true},
		{"literals ignore case", plain, "/SUBSCRIPTIONS/s1/ResourceGroups/rg1", match{"sub": "s1", "rg": "rg1"}, true},
		{"captures keep their case", plain, "/subscriptions/S1/resourceGroups/MyRG", match{"sub": "S1", "rg": "MyRG"}, true},
		{"leading double slash", plain, "//subscriptions/s1/resourcegroups/rg1", match{"sub": "s1", "rg": "rg1"}, true},
		{"trailing slash", plain, "/subscriptions/s1/resourcegroups/rg1/", match{"sub": "s1", "rg": "rg1"}, true},
		{"empty capture", plain, "/subscriptions//resourcegroups/rg1", nil, false},
		{"too short", plain, "/subscriptions/s1/resourcegroups", nil, false},
		{"too long", plain, "/subscriptions/s1/resourcegroups/rg1/x", nil, false},
		{"wrong literal", plain, "/subscriptions/s1/resourcegroupz/rg1", nil, false},
		{"dotted literal ignores case", literal, "/subscriptions/s1/providers/microsoft.keyvault/VAULTS", match{"sub": "s1"}, true},
		{"dotted literal differs", literal, "/subscriptions/s1/providers/Microsoft.Compute/vaults", nil, false},
		{"scoped at the root", scopedList, "/providers/Microsoft.Authorization/roleAssignments", match{"scope": "/"}, true},
		{"scoped under a subscription", scoped, "/subscriptions/s1/providers/microsoft.authorization/roleassignments/a1",
			match{"scope": "/subscriptions/s1", "id": "a1"}, true},
		{"scoped under a vault", scoped,
			"/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1/providers/Microsoft.Authorization/roleAssignments/a1",
			match{"scope": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v1", "id": "a1"}, true},
		{"scoped with leading double slash", scoped, "//subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1",
			match{"scope": "/subscriptions/s1", "id": "a1"}, true},
		{"scoped path too short", scoped, "/providers/Microsoft.Authorization", nil, false},
		{"scoped suffix differs", scoped, "/subscriptions/s1/providers/Microsoft.Authorization/roleDefinitions/a1", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.rt.match(segments(tc.path))
			if ok != tc.match {
				t.Fatalf("match(%q) ok = %v, want %v", tc.path, ok, tc.match)
			}
			if !ok {
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("match(%q) captures (-want +got):\n%s", tc.path, diff)
			}
		})
	}
}

func TestOwns(t *testing.T) {
	tests := []struct {
		path string
		want bool
	}{
		{"/subscriptions", true},
		{"/subscriptions/", true},
		{"/subscriptions/s1/resourcegroups", true},
		{"/SUBSCRIPTIONS/s1", true},
		{"//subscriptions/s1/providers/Microsoft.Authorization/roleAssignments", true},
		{"/providers", true},
		{"/providers/Microsoft.Authorization/roleDefinitions", true},
		{"/Providers/Microsoft.Features/features", true},
		{"/subscriptionsx", false},
		{"/providersfoo/x", false},
		{"/", false},
		{"", false},
		{"/customerkey/v1/subscriptions", false},
		{"/v1.0/users", false},
		{"/healthz", false},
		{"/keys/subscriptions", false},
	}
	for _, tc := range tests {
		if got := Owns(tc.path); got != tc.want {
			t.Errorf("Owns(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestCheckAPIVersion(t *testing.T) {
	versions := []string{"2024-11-01", "2023-02-01"}
	tests := []struct {
		name     string
		query    string
		versions []string
		code     string   // "" means accepted
		mentions []string // what the message must name
	}{
		{"current", "api-version=2024-11-01", versions, "", nil},
		{"older swagger", "api-version=2023-02-01", versions, "", nil},
		{"missing", "", versions, "MissingApiVersionParameter", []string{"api-version"}},
		{"empty", "api-version=", versions, "MissingApiVersionParameter", []string{"api-version"}},
		{"unknown", "api-version=2099-01-01", versions, "InvalidApiVersionParameter", []string{"'2099-01-01'", "2024-11-01, 2023-02-01"}},
		{"preview suffix", "api-version=2024-11-01-preview", versions, "InvalidApiVersionParameter", []string{"2024-11-01-preview", "2023-02-01"}},
		{"no list accepts any", "api-version=1999-01-01", nil, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/subscriptions?"+tc.query, nil)
			err := checkAPIVersion(r, tc.versions)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("checkAPIVersion(%q) err = %v, want nil", tc.query, err)
				}
				return
			}
			e, ok := errkind.As(err)
			if !ok || e.Kind != errkind.Invalid || e.Code != tc.code {
				t.Fatalf("checkAPIVersion(%q) err = %#v, want kind invalid code %s", tc.query, err, tc.code)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(e.Msg, m) {
					t.Errorf("checkAPIVersion(%q) message %q does not name %q", tc.query, e.Msg, m)
				}
			}
		})
	}
}

// fakeVerifier is the test double of Verifier, the interface this package
// declares for what it needs of the token service.
type fakeVerifier struct {
	p       identity.Principal
	err     error
	calls   int
	surface identity.Surface
	token   string
}

func (f *fakeVerifier) Verify(_ context.Context, token string, s identity.Surface) (identity.Principal, error) {
	f.calls++
	f.surface, f.token = s, token
	return f.p, f.err
}

type armError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// testAPI serves a few routes whose handlers echo what they captured, so
// that dispatch is seen apart from the domain.
func testAPI(v Verifier) *API {
	echo := func(w http.ResponseWriter, r *http.Request, p identity.Principal, m match) error {
		m["principal"] = p.ObjectID
		m["method"] = r.Method
		if r.Method == http.MethodHead {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		return json.NewEncoder(w).Encode(m)
	}
	fail := func(http.ResponseWriter, *http.Request, identity.Principal, match) error {
		return errkind.New(errkind.Conflict, "the group is busy").WithCode("Busy")
	}
	ra := newRoute("PUT", "/providers/Microsoft.Authorization/roleAssignments/{id}", []string{"2022-04-01"}, echo)
	ra.scoped = true
	return &API{o: Options{Verifier: v}, routes: []route{
		newRoute("GET", "/subscriptions/{sub}/resourcegroups/{rg}", []string{"2021-04-01"}, echo),
		newRoute("PUT", "/subscriptions/{sub}/resourcegroups/{rg}", []string{"2021-04-01"}, fail),
		newRoute("DELETE", "/subscriptions/{sub}/resourcegroups/{rg}", []string{"2021-04-01"}, echo),
		ra,
	}}
}

func TestServeHTTPDispatch(t *testing.T) {
	const v = "?api-version=2021-04-01"
	tests := []struct {
		name, method, target, auth string
		status                     int
		want                       match  // captures echoed by the handler
		code                       string // ARM error code, for failures
		mentions                   []string
		verified                   bool // whether the token was checked
	}{
		{"captures", "GET", "/subscriptions/s1/resourcegroups/rg1" + v, "Bearer t", 200,
			match{"sub": "s1", "rg": "rg1", "principal": "oid-1", "method": "GET"}, "", nil, true},
		{"literals ignore case", "GET", "/SUBSCRIPTIONS/s1/ResourceGroups/RG1" + v, "Bearer t", 200,
			match{"sub": "s1", "rg": "RG1", "principal": "oid-1", "method": "GET"}, "", nil, true},
		{"leading double slash", "GET", "//subscriptions/s1/resourcegroups/rg1" + v, "Bearer t", 200,
			match{"sub": "s1", "rg": "rg1", "principal": "oid-1", "method": "GET"}, "", nil, true},
		{"escaped segment is unescaped", "GET", "/subscriptions/s1/resourcegroups/my%20rg" + v, "Bearer t", 200,
			match{"sub": "s1", "rg": "my rg", "principal": "oid-1", "method": "GET"}, "", nil, true},
		{"HEAD runs the GET route", "HEAD", "/subscriptions/s1/resourcegroups/rg1" + v, "Bearer t", 204, nil, "", nil, true},
		{"scoped route", "PUT", "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Authorization/roleAssignments/a1?api-version=2022-04-01",
			"Bearer t", 200, match{"scope": "/subscriptions/s1/resourceGroups/rg1", "id": "a1", "principal": "oid-1", "method": "PUT"}, "", nil, true},
		{"scoped route at the root", "PUT", "/providers/Microsoft.Authorization/roleAssignments/a1?api-version=2022-04-01",
			"Bearer t", 200, match{"scope": "/", "id": "a1", "principal": "oid-1", "method": "PUT"}, "", nil, true},
		{"scoped route with leading double slash", "PUT", "//subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1?api-version=2022-04-01",
			"Bearer t", 200, match{"scope": "/subscriptions/s1", "id": "a1", "principal": "oid-1", "method": "PUT"}, "", nil, true},
		{"handler error is rendered", "PUT", "/subscriptions/s1/resourcegroups/rg1" + v, "Bearer t", 409, nil, "Busy", []string{"busy"}, true},
		{"wrong method", "PATCH", "/subscriptions/s1/resourcegroups/rg1" + v, "Bearer t", 405, nil, "MethodNotAllowed",
			[]string{"PATCH", "GET", "PUT", "DELETE"}, false},
		{"wrong method on a scoped route", "GET", "/subscriptions/s1/providers/Microsoft.Authorization/roleAssignments/a1?api-version=2022-04-01",
			"Bearer t", 405, nil, "MethodNotAllowed", []string{"GET", "PUT"}, false},
		{"unknown path", "GET", "/subscriptions/s1/providers/Microsoft.Compute/virtualMachines/vm1" + v, "Bearer t", 404, nil,
			"InvalidResourceType", []string{"/subscriptions/s1/providers/Microsoft.Compute/virtualMachines/vm1"}, false},
		{"unknown path at the root", "GET", "/providers/Microsoft.Nothing" + v, "Bearer t", 404, nil, "InvalidResourceType",
			[]string{"/providers/Microsoft.Nothing"}, false},
		{"missing api-version", "GET", "/subscriptions/s1/resourcegroups/rg1", "Bearer t", 400, nil, "MissingApiVersionParameter",
			[]string{"api-version"}, false},
		{"unknown api-version", "GET", "/subscriptions/s1/resourcegroups/rg1?api-version=2099-01-01", "Bearer t", 400, nil,
			"InvalidApiVersionParameter", []string{"2099-01-01", "2021-04-01"}, false},
		{"another route's api-version", "GET", "/subscriptions/s1/resourcegroups/rg1?api-version=2022-04-01", "Bearer t", 400, nil,
			"InvalidApiVersionParameter", []string{"2022-04-01", "2021-04-01"}, false},
		{"no token", "GET", "/subscriptions/s1/resourcegroups/rg1" + v, "", 401, nil, "AuthenticationFailed", []string{"Authorization"}, false},
		{"not a bearer token", "GET", "/subscriptions/s1/resourcegroups/rg1" + v, "Basic dTpw", 401, nil, "AuthenticationFailed",
			[]string{"Authorization"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fv := &fakeVerifier{p: identity.Principal{TenantID: "tid-1", ObjectID: "oid-1"}}
			a := testAPI(fv)
			r := httptest.NewRequest(tc.method, tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			a.ServeHTTP(w, r)
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.target, res.StatusCode, body, tc.status)
			}
			if (fv.calls > 0) != tc.verified {
				t.Errorf("%s %s: Verify called %d times, want called = %v", tc.method, tc.target, fv.calls, tc.verified)
			}
			if fv.calls > 0 && (fv.surface != identity.ResourceManager || fv.token != "t") {
				t.Errorf("Verify(%q, %v), want (\"t\", ResourceManager)", fv.token, fv.surface)
			}
			switch {
			case tc.want != nil:
				var got match
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("%s %s body %q: %v", tc.method, tc.target, body, err)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("%s %s captures (-want +got):\n%s", tc.method, tc.target, diff)
				}
			case tc.code != "":
				var e armError
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("%s %s body %q is not ARM's error format: %v", tc.method, tc.target, body, err)
				}
				if e.Error.Code != tc.code || e.Error.Message == "" {
					t.Errorf("%s %s = %s, want code %s with a message", tc.method, tc.target, body, tc.code)
				}
				for _, m := range tc.mentions {
					if !strings.Contains(e.Error.Message, m) {
						t.Errorf("%s %s message %q does not name %q", tc.method, tc.target, e.Error.Message, m)
					}
				}
			}
			if tc.status == http.StatusMethodNotAllowed {
				for _, m := range tc.mentions[1:] {
					if !strings.Contains(res.Header.Get("Allow"), m) {
						t.Errorf("Allow = %q, want it to list %s", res.Header.Get("Allow"), m)
					}
				}
			}
			if tc.status == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("401 WWW-Authenticate = %q, want a Bearer challenge", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestServeHTTPRejectedToken(t *testing.T) {
	fv := &fakeVerifier{err: errkind.New(errkind.Unauthenticated, "the token has expired")}
	a := testAPI(fv)
	r := httptest.NewRequest("GET", "/subscriptions/s1/resourcegroups/rg1?api-version=2021-04-01", nil)
	r.Header.Set("Authorization", "Bearer expired")
	w := httptest.NewRecorder()
	a.ServeHTTP(w, r)
	var e armError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != 401 || e.Error.Code != "InvalidAuthenticationToken" ||
		!strings.Contains(e.Error.Message, "expired") {
		t.Errorf("GET with a rejected token = %d %s, want 401 InvalidAuthenticationToken naming the reason", w.Code, w.Body)
	}
	if h := w.Header().Get("WWW-Authenticate"); !strings.Contains(h, "InvalidAuthenticationToken") {
		t.Errorf("WWW-Authenticate = %q, want the error code in error_description", h)
	}
}

// TestNewRoutesMatchOnce checks the real route table: every method and
// path the official clients use finds exactly one route, so no route
// shadows another.
func TestNewRoutesMatchOnce(t *testing.T) {
	a := New(Options{Verifier: &fakeVerifier{}})
	const rgv = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults"
	const ra = "/providers/Microsoft.Authorization/roleAssignments"
	tests := []struct{ method, path string }{
		{"GET", "/subscriptions"},
		{"GET", "/subscriptions/s"},
		{"POST", "/subscriptions/s/providers/Microsoft.Subscription/cancel"},
		{"PUT", "/subscriptions/s/resourcegroups/rg"},
		{"GET", "/subscriptions/s/providers"},
		{"GET", "/subscriptions/s/providers/Microsoft.KeyVault"},
		{"POST", "/subscriptions/s/providers/Microsoft.KeyVault/register"},
		{"GET", "/subscriptions/s/providers/Microsoft.Features/features"},
		{"GET", "/subscriptions/s/providers/Microsoft.Features/providers/Microsoft.Resources/features"},
		{"GET", "/subscriptions/s/providers/Microsoft.Features/providers/Microsoft.Resources/features/mandatoryRetentionPeriodEnabled"},
		{"POST", "/subscriptions/s/providers/Microsoft.Features/providers/Microsoft.Resources/features/mandatoryRetentionPeriodEnabled/register"},
		{"GET", "/subscriptions/s/providers/Microsoft.KeyVault/vaults"},
		{"GET", "/subscriptions/s/providers/Microsoft.KeyVault/deletedVaults"},
		{"GET", "/subscriptions/s/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/v"},
		{"POST", "/subscriptions/s/providers/Microsoft.KeyVault/locations/westeurope/deletedVaults/v/purge"},
		{"POST", "/subscriptions/s/providers/Microsoft.KeyVault/checkNameAvailability"},
		{"GET", rgv},
		{"PUT", rgv + "/v"},
		{"PATCH", rgv + "/v"},
		{"PUT", rgv + "/v/accessPolicies/add"},
		{"PUT", rgv + "/v" + ra + "/a"},
		{"GET", "/subscriptions/s" + ra},
		{"GET", "/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/d"},
	}
	for _, tc := range tests {
		n := 0
		for _, rt := range a.routes {
			if _, ok := rt.match(segments(tc.path)); ok && rt.method == tc.method {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s %s matches %d routes, want 1", tc.method, tc.path, n)
		}
	}
}

func TestRenderer(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		msg    string
	}{
		{"invalid", errkind.New(errkind.Invalid, "bad body"), 400, "InvalidRequestContent", "bad body"},
		{"not found", errkind.New(errkind.NotFound, "no such vault"), 404, "ResourceNotFound", "no such vault"},
		{"already exists", errkind.New(errkind.AlreadyExists, "taken"), 409, "Conflict", "taken"},
		{"conflict", errkind.New(errkind.Conflict, "busy"), 409, "Conflict", "busy"},
		{"failed precondition", errkind.New(errkind.FailedPrecondition, "disabled"), 400, "BadRequest", "disabled"},
		{"unauthenticated", errkind.New(errkind.Unauthenticated, "no token"), 401, "InvalidAuthenticationToken", "no token"},
		{"permission denied", errkind.New(errkind.PermissionDenied, "not allowed"), 403, "AuthorizationFailed", "not allowed"},
		{"too many requests", errkind.New(errkind.TooManyRequests, "slow down"), 429, "TooManyRequests", "slow down"},
		{"too large", errkind.New(errkind.TooLarge, "too big"), 413, "RequestEntityTooLarge", "too big"},
		{"unavailable", errkind.New(errkind.Unavailable, "store down"), 503, "ServiceUnavailable", "store down"},
		{"domain code wins", errkind.New(errkind.NotFound, "no group").WithCode("ResourceGroupNotFound"), 404, "ResourceGroupNotFound", "no group"},
		{"wrapped", errors.Join(errkind.New(errkind.AlreadyExists, "name in use").WithCode("VaultAlreadyExists")), 409, "VaultAlreadyExists", "name in use"},
		{"disabled subscription", errkind.New(errkind.FailedPrecondition, "read only").WithCode("ReadOnlyDisabledSubscription"), 409,
			"ReadOnlyDisabledSubscription", "read only"},
		{"method not allowed", errkind.New(errkind.Invalid, "no PATCH here").WithCode(codeMethodNotAllowed), 405, "MethodNotAllowed", "no PATCH here"},
		{"internal hides code and message", errkind.Wrap(errkind.Internal, "disk on fire", io.EOF).WithCode("Secret"), 500,
			"InternalServerError", errkind.Public(io.EOF)},
		{"plain error is internal", io.ErrUnexpectedEOF, 500, "InternalServerError", errkind.Public(io.EOF)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			renderer{"https://ck.example"}.RenderError(w, httptest.NewRequest("GET", "/subscriptions", nil), tc.err)
			if w.Code != tc.status {
				t.Errorf("RenderError(%v) status = %d, want %d", tc.err, w.Code, tc.status)
			}
			// The body is exactly {"error":{"code","message"}}.
			var raw map[string]map[string]string
			if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
				t.Fatalf("RenderError(%v) body %q: %v", tc.err, w.Body, err)
			}
			want := map[string]map[string]string{"error": {"code": tc.code, "message": tc.msg}}
			if diff := cmp.Diff(want, raw); diff != "" {
				t.Errorf("RenderError(%v) body (-want +got):\n%s", tc.err, diff)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			if got := w.Header().Get("x-ms-failure-cause"); got != "gateway" {
				t.Errorf("x-ms-failure-cause = %q, want gateway", got)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			if (tc.status == 401) != (challenge != "") {
				t.Errorf("status %d with WWW-Authenticate %q", tc.status, challenge)
			}
			if tc.status == 401 && (!strings.Contains(challenge, `authorization_uri="https://ck.example/common/oauth2/authorize"`) ||
				!strings.Contains(challenge, `error="invalid_token"`)) {
				t.Errorf("WWW-Authenticate = %q, want the authority and invalid_token", challenge)
			}
		})
	}
}

func TestRendererHEAD(t *testing.T) {
	w := httptest.NewRecorder()
	renderer{}.RenderError(w, httptest.NewRequest("HEAD", "/subscriptions/s/resourcegroups/rg", nil),
		errkind.New(errkind.NotFound, "no group").WithCode("ResourceGroupNotFound"))
	if w.Code != 404 || w.Body.Len() != 0 {
		t.Errorf("HEAD error = %d with %d body bytes, want 404 and no body", w.Code, w.Body.Len())
	}
}

func TestFilterParam(t *testing.T) {
	const want = "principalId eq '5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11'"
	tests := []struct{ name, query, want string }{
		{"absent", "", ""},
		{"plain", "$filter=principalId%20eq%20'5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11'", want},
		{"plus for space", "$filter=principalId+eq+'5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11'", want},
		{"escaped plus", "$filter=principalId%2Beq%2B'5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11'", want},
		{"double-escaped space", "$filter=principalId%2520eq%2520'5b0e3a02-77f2-4d6c-9f36-0c2e3c1b1a11'", want},
		{"double-escaped quote", "$filter=principalId%2520eq%2520%2527x%2527", "principalId eq 'x'"},
		{"function", "$filter=atScope()", "atScope()"},
		{"role name", "$filter=roleName%2520eq%2520'Key%2520Vault%2520Crypto%2520Service%2520Encryption%2520User'",
			"roleName eq 'Key Vault Crypto Service Encryption User'"},
		{"bad escape is kept", "$filter=principalId%2525zz", "principalId%zz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments?"+tc.query, nil)
			if got := filterParam(r); got != tc.want {
				t.Errorf("filterParam(%q) = %q, want %q", tc.query, got, tc.want)
			}
		})
	}
}
