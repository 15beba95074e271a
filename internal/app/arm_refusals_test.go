package app_test

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/app"
)

// The api-versions the refusal tests send when the version is not what is
// being tested.
const (
	refSubV     = "?api-version=2022-12-01"
	refGroupV   = "?api-version=2021-04-01"
	refVaultV   = "?api-version=2024-11-01"
	refRoleV    = "?api-version=2022-04-01"
	refFeatureV = "?api-version=2021-07-01"
	refCancelV  = "?api-version=2021-10-01"
)

// refusalReply is an answer of the Resource Manager (or of the operator
// API): its status and its error body.
type refusalReply struct {
	status int
	code   string
	msg    string
	body   []byte
}

// armCall sends one raw request with a bearer token and reads the error
// body, if any.
func armCall(t *testing.T, s *server, tok, method, path, body string) refusalReply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rep := refusalReply{status: resp.StatusCode, body: b}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("%s %s = %d %q: not ARM's error format {\"error\":{\"code\",\"message\"}}", method, path, resp.StatusCode, b)
		}
		rep.code, rep.msg = e.Error.Code, e.Error.Message
	}
	return rep
}

// armMust sends a request that must succeed with status want and decodes
// its body into out (when not nil).
func armMust(t *testing.T, s *server, tok, method, path, body string, want int, out any) {
	t.Helper()
	rep := armCall(t, s, tok, method, path, body)
	if rep.status != want {
		t.Fatalf("%s %s = %d %s, want %d", method, path, rep.status, rep.body, want)
	}
	if out != nil {
		if err := json.Unmarshal(rep.body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, rep.body)
		}
	}
}

// vaultBody is a premium vault of tenant with RBAC authorization, changed
// by props.
func vaultBody(tenant string, props map[string]any) string {
	p := map[string]any{"tenantId": tenant, "sku": map[string]string{"family": "A", "name": "premium"},
		"accessPolicies": []any{}, "enableRbacAuthorization": true}
	maps.Copy(p, props)
	b, _ := json.Marshal(map[string]any{"location": "westeurope", "properties": p})
	return string(b)
}

func assignmentBody(roleDefinitionID, principal string) string {
	b, _ := json.Marshal(map[string]any{"properties": map[string]string{"roleDefinitionId": roleDefinitionID, "principalId": principal}})
	return string(b)
}

type vaultProperties struct {
	TenantID                  string `json:"tenantId"`
	EnableSoftDelete          bool   `json:"enableSoftDelete"`
	SoftDeleteRetentionInDays int    `json:"softDeleteRetentionInDays"`
	EnablePurgeProtection     *bool  `json:"enablePurgeProtection"`
}

func getVaultProperties(t *testing.T, s *server, tok, path string) vaultProperties {
	t.Helper()
	var v struct {
		Properties vaultProperties `json:"properties"`
	}
	armMust(t, s, tok, "GET", path+refVaultV, "", http.StatusOK, &v)
	return v.Properties
}

// listCount returns the length of the "value" list GET path answers.
func listCount(t *testing.T, s *server, tok, path string) int {
	t.Helper()
	var l struct {
		Value []json.RawMessage `json:"value"`
	}
	armMust(t, s, tok, "GET", path, "", http.StatusOK, &l)
	return len(l.Value)
}

// TestResourceManagerRefusals sends the Resource Manager what it must
// refuse: each refusal is a 4xx in ARM's format with ARM's code and a
// message that names what is wrong, and nothing is created or changed by
// it. Then the subscription cancellation with and without the mandatory
// retention period, and who may create which offer.
func TestResourceManagerRefusals(t *testing.T) {
	clk := &clock{now: time.Now()}
	s := startWith(t, filepath.Join(t.TempDir(), "data"), app.Options{Now: clk.Now})
	ctx := context.Background()

	a := s.newTenant(t, "Contoso")
	adminA := s.credential(t, a.TenantID, a.AdminApp.ClientID, a.AdminApp.ClientSecret)
	tokA, err := token(ctx, adminA, armScope)
	if err != nil {
		t.Fatal(err)
	}
	b := s.newTenant(t, "Fabrikam")
	tokB, err := token(ctx, s.credential(t, b.TenantID, b.AdminApp.ClientID, b.AdminApp.ClientSecret), armScope)
	if err != nil {
		t.Fatal(err)
	}
	subA := s.newSubscription(t, tokA, a.TenantID, "PayAsYouGo")
	subB := s.newSubscription(t, tokB, b.TenantID, "PayAsYouGo")
	subUnregistered := s.newSubscription(t, tokA, a.TenantID, "PayAsYouGo")

	// A user of tenant A without any role, signed in as a person would.
	graphA, _ := token(ctx, adminA, graphScope)
	kimID := createUser(t, s, graphA, "kim@"+a.DefaultDomain)
	graphB, _ := token(ctx, s.credential(t, b.TenantID, b.AdminApp.ClientID, b.AdminApp.ClientSecret), graphScope)
	leeID := createUser(t, s, graphB, "lee@"+b.DefaultDomain)
	tokKim, err := token(ctx, s.userCredential(t, a.TenantID, "kim@"+a.DefaultDomain, "Kim-password-123"), armScope)
	if err != nil {
		t.Fatalf("kim's Resource Manager token err = %v", err)
	}

	subPath := func(sub string) string { return "/subscriptions/" + sub }
	groupPath := func(sub, rg string) string { return subPath(sub) + "/resourcegroups/" + rg }
	vaultPath := func(sub, rg, name string) string {
		return subPath(sub) + "/resourceGroups/" + rg + "/providers/Microsoft.KeyVault/vaults/" + name
	}
	roleAssignmentPath := func(scope, id string) string {
		return scope + "/providers/Microsoft.Authorization/roleAssignments/" + id
	}
	roleDefinition := func(sub, id string) string {
		return subPath(sub) + "/providers/Microsoft.Authorization/roleDefinitions/" + id
	}
	featurePath := func(sub string) string {
		return subPath(sub) + "/providers/Microsoft.Features/providers/Microsoft.Resources/features/mandatoryRetentionPeriodEnabled"
	}
	const (
		readerID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
		ownerID  = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
		// GUIDs nobody uses: assignment names, a principal and a role.
		raVersion   = "0b6f3c1e-1d2a-4c5b-8e9f-000000000001"
		raUnknown   = "0b6f3c1e-1d2a-4c5b-8e9f-000000000002"
		raNoRole    = "0b6f3c1e-1d2a-4c5b-8e9f-000000000003"
		raCross     = "0b6f3c1e-1d2a-4c5b-8e9f-000000000004"
		raKim       = "0b6f3c1e-1d2a-4c5b-8e9f-000000000005"
		raForeign   = "0b6f3c1e-1d2a-4c5b-8e9f-000000000006"
		ghost       = "7d1a9f3e-5c2b-4e8d-9a6f-1b2c3d4e5f60"
		noSuchRole  = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
		noSuchSub   = "3c2b1a0f-9e8d-4c7b-a6f5-e4d3c2b1a0f9"
		mainVault   = "refusals-contoso-01"
		mainGroup   = "ContosoCK"
		bGroup      = "FabrikamCK"
		otherGroup  = "no-such-group"
		newGroup    = "rg-refused"
		locationArg = `{"location":"westeurope"}`
	)

	// Tenant A: Microsoft.KeyVault registered, a resource group and a
	// purge-protected vault. Tenant B: the same, without the vault.
	for _, sub := range []struct{ id, tok, rg string }{{subA, tokA, mainGroup}, {subB, tokB, bGroup}} {
		armMust(t, s, sub.tok, "POST", subPath(sub.id)+"/providers/Microsoft.KeyVault/register"+refGroupV, "", http.StatusOK, nil)
		armMust(t, s, sub.tok, "PUT", groupPath(sub.id, sub.rg)+refGroupV, locationArg, http.StatusCreated, nil)
	}
	armMust(t, s, tokA, "PUT", groupPath(subUnregistered, mainGroup)+refGroupV, locationArg, http.StatusCreated, nil)
	mainVaultPath := vaultPath(subA, mainGroup, mainVault)
	// The older api-version of the published swagger is accepted.
	armMust(t, s, tokA, "PUT", mainVaultPath+"?api-version=2023-02-01", vaultBody(a.TenantID, nil), http.StatusCreated, nil)
	armMust(t, s, tokA, "PATCH", mainVaultPath+refVaultV, `{"properties":{"enablePurgeProtection":true}}`, http.StatusOK, nil)

	assignmentsA := subPath(subA) + "/providers/Microsoft.Authorization/roleAssignments" + refRoleV
	groupsA := subPath(subA) + "/resourcegroups" + refGroupV
	vaultsA := subPath(subA) + "/providers/Microsoft.KeyVault/vaults" + refVaultV
	vaultsB := subPath(subB) + "/providers/Microsoft.KeyVault/vaults" + refVaultV
	before := map[string]int{assignmentsA: listCount(t, s, tokA, assignmentsA), groupsA: listCount(t, s, tokA, groupsA),
		vaultsA: listCount(t, s, tokA, vaultsA), vaultsB: listCount(t, s, tokB, vaultsB)}

	// absent checks that GET path (with its api-version) answers 404.
	absent := func(tok, path string) func(*testing.T) {
		return func(t *testing.T) {
			t.Helper()
			if rep := armCall(t, s, tok, "GET", path, ""); rep.status != http.StatusNotFound {
				t.Errorf("after the refusal GET %s = %d %s, want 404: the refused request left something behind", path, rep.status, rep.body)
			}
		}
	}
	// mainVaultIntact checks the vault kept soft delete, its retention and
	// purge protection.
	mainVaultIntact := func(t *testing.T) {
		t.Helper()
		p := getVaultProperties(t, s, tokA, mainVaultPath)
		if !p.EnableSoftDelete || p.SoftDeleteRetentionInDays != 90 || p.EnablePurgeProtection == nil || !*p.EnablePurgeProtection ||
			p.TenantID != a.TenantID {
			t.Errorf("after the refusal the vault is %+v; want soft delete on for 90 days, purge protection on, tenant %s", p, a.TenantID)
		}
	}
	mainGroupIntact := func(t *testing.T) {
		t.Helper()
		var g struct{ Location string }
		armMust(t, s, tokA, "GET", groupPath(subA, mainGroup)+refGroupV, "", http.StatusOK, &g)
		if g.Location != "westeurope" {
			t.Errorf("after the refusal the resource group is in %q, want westeurope", g.Location)
		}
		mainVaultIntact(t)
	}
	featureNotRegistered := func(t *testing.T) {
		t.Helper()
		var f struct {
			Properties struct{ State string } `json:"properties"`
		}
		armMust(t, s, tokA, "GET", featurePath(subA)+refFeatureV, "", http.StatusOK, &f)
		if f.Properties.State != "NotRegistered" {
			t.Errorf("after the refusal the feature is %s, want NotRegistered", f.Properties.State)
		}
	}
	subscriptionEnabled := func(t *testing.T) {
		t.Helper()
		var sub struct{ State string }
		armMust(t, s, tokA, "GET", subPath(subA)+refSubV, "", http.StatusOK, &sub)
		if sub.State != "Enabled" {
			t.Errorf("after the refusal the subscription is %s, want Enabled", sub.State)
		}
	}

	tests := []struct {
		name, tok, method, path, body string
		status                        int
		code                          string
		mentions                      []string // what the message must name
		after                         func(*testing.T)
	}{
		// api-versions, one area at a time.
		{"subscriptions: unknown api-version", tokA, "GET", subPath(subA) + "?api-version=2015-01-01", "",
			400, "InvalidApiVersionParameter", []string{"'2015-01-01'", "2022-12-01"}, nil},
		{"subscriptions: no api-version", tokA, "GET", "/subscriptions", "",
			400, "MissingApiVersionParameter", []string{"api-version"}, nil},
		{"subscription cancel: unknown api-version", tokA, "POST", subPath(subA) + "/providers/Microsoft.Subscription/cancel?api-version=2015-01-01", "",
			400, "InvalidApiVersionParameter", []string{"'2015-01-01'", "2021-10-01"}, subscriptionEnabled},
		{"resource groups: unknown api-version", tokA, "PUT", groupPath(subA, newGroup) + "?api-version=2015-01-01", locationArg,
			400, "InvalidApiVersionParameter", []string{"'2015-01-01'", "2021-04-01"}, absent(tokA, groupPath(subA, newGroup)+refGroupV)},
		{"vaults: unknown api-version", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-version") + "?api-version=2015-06-01", vaultBody(a.TenantID, nil),
			400, "InvalidApiVersionParameter", []string{"'2015-06-01'", "2024-11-01", "2023-02-01"},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-version")+refVaultV)},
		{"role assignments: unknown api-version", tokA, "PUT", roleAssignmentPath(subPath(subA), raVersion) + "?api-version=2014-01-01",
			assignmentBody(roleDefinition(subA, readerID), kimID),
			400, "InvalidApiVersionParameter", []string{"'2014-01-01'", "2022-04-01"}, absent(tokA, roleAssignmentPath(subPath(subA), raVersion)+refRoleV)},
		{"features: unknown api-version", tokA, "POST", featurePath(subA) + "/register?api-version=2014-08-01-preview", "",
			400, "InvalidApiVersionParameter", []string{"'2014-08-01-preview'", "2021-07-01"}, featureNotRegistered},

		// Tokens.
		{"no token", "", "GET", "/subscriptions" + refSubV, "",
			401, "AuthenticationFailed", []string{"Authorization"}, nil},
		{"a Graph token", graphA, "PUT", groupPath(subA, newGroup) + refGroupV, locationArg,
			401, "InvalidAuthenticationToken", nil, absent(tokA, groupPath(subA, newGroup)+refGroupV)},

		// Paths and methods.
		{"unknown resource type", tokA, "GET", subPath(subA) + "/resourceGroups/" + mainGroup + "/providers/Microsoft.Compute/virtualMachines/vm1" + refGroupV, "",
			404, "InvalidResourceType", []string{"Microsoft.Compute/virtualMachines/vm1"}, nil},
		{"method a resource does not have", tokA, "PATCH", subPath(subA) + refSubV, `{}`,
			405, "MethodNotAllowed", []string{"PATCH", "GET"}, subscriptionEnabled},
		{"resource group that does not exist", tokA, "GET", groupPath(subA, otherGroup) + refGroupV, "",
			404, "ResourceGroupNotFound", []string{otherGroup}, nil},
		{"vault that does not exist", tokA, "GET", vaultPath(subA, mainGroup, "refusals-missing") + refVaultV, "",
			404, "ResourceNotFound", []string{"refusals-missing", mainGroup}, nil},

		// Bodies that cannot be read.
		{"vault: no body", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-nobody") + refVaultV, "",
			400, "InvalidRequestContent", []string{"empty"}, absent(tokA, vaultPath(subA, mainGroup, "refusals-nobody")+refVaultV)},
		{"vault: body over the limit", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-huge") + refVaultV,
			vaultBody(a.TenantID, map[string]any{"padding": strings.Repeat("x", 2<<20)}),
			413, "RequestEntityTooLarge", []string{"too large"}, absent(tokA, vaultPath(subA, mainGroup, "refusals-huge")+refVaultV)},
		{"resource group: malformed JSON", tokA, "PUT", groupPath(subA, newGroup) + refGroupV, `{"location":`,
			400, "InvalidRequestContent", []string{"could not be deserialized", "JSON"}, absent(tokA, groupPath(subA, newGroup)+refGroupV)},
		{"vault: malformed JSON", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-malformed") + refVaultV, `{"location":"westeurope","properties":{`,
			400, "InvalidRequestContent", []string{"could not be deserialized", "JSON"}, absent(tokA, vaultPath(subA, mainGroup, "refusals-malformed")+refVaultV)},
		{"vault: a number given as text", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-type") + refVaultV,
			vaultBody(a.TenantID, map[string]any{"softDeleteRetentionInDays": "ninety"}),
			400, "InvalidRequestContent", []string{"softDeleteRetentionInDays", "number"}, absent(tokA, vaultPath(subA, mainGroup, "refusals-type")+refVaultV)},

		// Vault rules.
		{"vault: tenant of another tenant", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-tenant") + refVaultV, vaultBody(b.TenantID, nil),
			400, "InvalidTenantId", []string{b.TenantID, subA, "set tenantId to '" + a.TenantID + "'"},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-tenant")+refVaultV)},
		{"vault: retention of 6 days", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-retention6") + refVaultV,
			vaultBody(a.TenantID, map[string]any{"softDeleteRetentionInDays": 6}),
			400, "InvalidRequestContent", []string{"softDeleteRetentionInDays", "between 7 and 90", "6 was given"},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-retention6")+refVaultV)},
		{"vault: retention of 91 days", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-retention91") + refVaultV,
			vaultBody(a.TenantID, map[string]any{"softDeleteRetentionInDays": 91}),
			400, "InvalidRequestContent", []string{"softDeleteRetentionInDays", "between 7 and 90", "91 was given"},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-retention91")+refVaultV)},
		{"vault: created without soft delete", tokA, "PUT", vaultPath(subA, mainGroup, "refusals-nosoftdelete") + refVaultV,
			vaultBody(a.TenantID, map[string]any{"enableSoftDelete": false}),
			400, "SoftDeleteCannotBeDisabled", []string{"Soft delete cannot be turned off", "enableSoftDelete"},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-nosoftdelete")+refVaultV)},
		{"vault: soft delete turned off by PUT", tokA, "PUT", mainVaultPath + refVaultV, vaultBody(a.TenantID, map[string]any{"enableSoftDelete": false}),
			400, "SoftDeleteCannotBeDisabled", []string{mainVault, "cannot be turned off"}, mainVaultIntact},
		{"vault: soft delete turned off by PATCH", tokA, "PATCH", mainVaultPath + refVaultV, `{"properties":{"enableSoftDelete":false}}`,
			400, "SoftDeleteCannotBeDisabled", []string{mainVault, "cannot be turned off"}, mainVaultIntact},
		{"vault: purge protection turned off by PATCH", tokA, "PATCH", mainVaultPath + refVaultV, `{"properties":{"enablePurgeProtection":false}}`,
			400, "PurgeProtectionCannotBeDisabled", []string{mainVault, "Purge protection", "cannot be turned off"}, mainVaultIntact},
		{"vault: purge protection turned off by PUT", tokA, "PUT", mainVaultPath + refVaultV,
			vaultBody(a.TenantID, map[string]any{"enablePurgeProtection": false}),
			400, "PurgeProtectionCannotBeDisabled", []string{mainVault, "Purge protection", "cannot be turned off"}, mainVaultIntact},
		{"vault: retention changed after creation", tokA, "PATCH", mainVaultPath + refVaultV, `{"properties":{"softDeleteRetentionInDays":30}}`,
			400, "SoftDeleteRetentionCannotChange", []string{mainVault, "90", "30"}, mainVaultIntact},
		{"vault: unknown resource group", tokA, "PUT", vaultPath(subA, otherGroup, "refusals-nogroup") + refVaultV, vaultBody(a.TenantID, nil),
			404, "ResourceGroupNotFound", []string{otherGroup}, absent(tokA, vaultPath(subA, otherGroup, "refusals-nogroup")+refVaultV)},
		{"vault: name taken in another subscription", tokB, "PUT", vaultPath(subB, bGroup, mainVault) + refVaultV, vaultBody(b.TenantID, nil),
			409, "VaultAlreadyExists", []string{mainVault, "already in use"}, func(t *testing.T) {
				absent(tokB, vaultPath(subB, bGroup, mainVault)+refVaultV)(t)
				mainVaultIntact(t)
			}},
		{"vault: name taken, in other letters", tokB, "PUT", vaultPath(subB, bGroup, strings.ToUpper(mainVault)) + refVaultV, vaultBody(b.TenantID, nil),
			409, "VaultAlreadyExists", []string{strings.ToUpper(mainVault)}, absent(tokB, vaultPath(subB, bGroup, mainVault)+refVaultV)},
		{"vault: invalid name", tokA, "PUT", vaultPath(subA, mainGroup, "1-bad--name") + refVaultV, vaultBody(a.TenantID, nil),
			400, "VaultNameNotValid", []string{"'1-bad--name'", "3-24"}, absent(tokA, vaultPath(subA, mainGroup, "1-bad--name")+refVaultV)},
		{"vault: Microsoft.KeyVault not registered", tokA, "PUT", vaultPath(subUnregistered, mainGroup, "refusals-unregistered") + refVaultV,
			vaultBody(a.TenantID, nil), 409, "MissingSubscriptionRegistration", []string{"Microsoft.KeyVault", "register"},
			absent(tokA, vaultPath(subUnregistered, mainGroup, "refusals-unregistered")+refVaultV)},

		// Role assignments.
		{"role assignment: unknown principal", tokA, "PUT", roleAssignmentPath(subPath(subA), raUnknown) + refRoleV,
			assignmentBody(roleDefinition(subA, readerID), ghost),
			400, "PrincipalNotFound", []string{ghost, a.TenantID}, absent(tokA, roleAssignmentPath(subPath(subA), raUnknown)+refRoleV)},
		{"role assignment: principal of another tenant", tokA, "PUT", roleAssignmentPath(subPath(subA), raForeign) + refRoleV,
			assignmentBody(roleDefinition(subA, readerID), leeID),
			400, "PrincipalNotFound", []string{leeID, a.TenantID}, absent(tokA, roleAssignmentPath(subPath(subA), raForeign)+refRoleV)},
		{"role assignment: name not a GUID", tokA, "PUT", roleAssignmentPath(subPath(subA), "not-a-guid") + refRoleV,
			assignmentBody(roleDefinition(subA, readerID), kimID),
			400, "InvalidRoleAssignmentId", []string{"'not-a-guid'", "GUID"}, nil},
		{"role assignment: role that does not exist", tokA, "PUT", roleAssignmentPath(subPath(subA), raNoRole) + refRoleV,
			assignmentBody(roleDefinition(subA, noSuchRole), kimID),
			400, "RoleDefinitionDoesNotExist", []string{noSuchRole}, absent(tokA, roleAssignmentPath(subPath(subA), raNoRole)+refRoleV)},

		// Another tenant's subscription is not there for B, exactly like a
		// subscription that does not exist.
		{"unknown subscription", tokA, "GET", subPath(noSuchSub) + refSubV, "",
			404, "SubscriptionNotFound", []string{noSuchSub}, nil},
		{"another tenant reads the subscription", tokB, "GET", subPath(subA) + refSubV, "",
			404, "SubscriptionNotFound", []string{subA}, nil},
		{"another tenant, with a leading double slash", tokB, "GET", "/" + subPath(subA) + refSubV, "",
			404, "SubscriptionNotFound", []string{subA}, nil},
		{"another tenant lists its resource groups", tokB, "GET", groupsA, "",
			404, "SubscriptionNotFound", []string{subA}, nil},
		{"another tenant lists its vaults", tokB, "GET", vaultsA, "",
			404, "SubscriptionNotFound", []string{subA}, nil},
		{"another tenant reads its vault", tokB, "GET", mainVaultPath + refVaultV, "",
			404, "SubscriptionNotFound", []string{subA}, nil},
		{"another tenant creates a resource group in it", tokB, "PUT", groupPath(subA, newGroup) + refGroupV, locationArg,
			404, "SubscriptionNotFound", []string{subA}, absent(tokA, groupPath(subA, newGroup)+refGroupV)},
		{"another tenant creates a vault in it", tokB, "PUT", vaultPath(subA, mainGroup, "refusals-foreign") + refVaultV, vaultBody(b.TenantID, nil),
			404, "SubscriptionNotFound", []string{subA}, absent(tokA, vaultPath(subA, mainGroup, "refusals-foreign")+refVaultV)},
		{"another tenant assigns a role in it", tokB, "PUT", roleAssignmentPath(subPath(subA), raCross) + refRoleV,
			assignmentBody(roleDefinition(subA, ownerID), kimID),
			404, "SubscriptionNotFound", []string{subA}, absent(tokA, roleAssignmentPath(subPath(subA), raCross)+refRoleV)},
		{"another tenant cancels it", tokB, "POST", subPath(subA) + "/providers/Microsoft.Subscription/cancel" + refCancelV, "",
			404, "SubscriptionNotFound", []string{subA}, subscriptionEnabled},

		// Conflicts with what exists.
		{"resource group moved to another region", tokA, "PUT", groupPath(subA, mainGroup) + refGroupV, `{"location":"northeurope"}`,
			409, "InvalidResourceGroupLocation", []string{"northeurope", "westeurope"}, mainGroupIntact},
		{"resource group that holds a vault deleted", tokA, "DELETE", groupPath(subA, mainGroup) + refGroupV, "",
			409, "ResourceGroupDeletionBlocked", []string{mainGroup, "1 resource"}, mainGroupIntact},

		// A user of the tenant without any role.
		{"no role: create a resource group", tokKim, "PUT", groupPath(subA, newGroup) + refGroupV, locationArg,
			403, "AuthorizationFailed", []string{kimID, "Microsoft.Resources/subscriptions/resourceGroups/write", "/subscriptions/" + subA + "/resourceGroups/" + newGroup},
			absent(tokA, groupPath(subA, newGroup)+refGroupV)},
		{"no role: create a vault", tokKim, "PUT", vaultPath(subA, mainGroup, "refusals-kim") + refVaultV, vaultBody(a.TenantID, nil),
			403, "AuthorizationFailed", []string{kimID, "Microsoft.KeyVault/vaults/write", vaultPath(subA, mainGroup, "refusals-kim")},
			absent(tokA, vaultPath(subA, mainGroup, "refusals-kim")+refVaultV)},
		{"no role: read the subscription", tokKim, "GET", subPath(subA) + refSubV, "",
			403, "AuthorizationFailed", []string{kimID, "Microsoft.Resources/subscriptions/read", "'/subscriptions/" + subA + "'"}, nil},
		{"no role: make itself Owner", tokKim, "PUT", roleAssignmentPath(subPath(subA), raKim) + refRoleV,
			assignmentBody(roleDefinition(subA, ownerID), kimID),
			403, "AuthorizationFailed", []string{kimID, "Microsoft.Authorization/roleAssignments/write", "/subscriptions/" + subA},
			absent(tokA, roleAssignmentPath(subPath(subA), raKim)+refRoleV)},
		{"no role: cancel the subscription", tokKim, "POST", subPath(subA) + "/providers/Microsoft.Subscription/cancel" + refCancelV, "",
			403, "AuthorizationFailed", []string{kimID, "Microsoft.Subscription/cancel/action"}, subscriptionEnabled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep := armCall(t, s, tc.tok, tc.method, tc.path, tc.body)
			if rep.status != tc.status || rep.code != tc.code || rep.msg == "" {
				t.Errorf("%s %s = %d %s; want %d %s with a message", tc.method, tc.path, rep.status, rep.body, tc.status, tc.code)
			}
			for _, m := range tc.mentions {
				if !strings.Contains(rep.msg, m) {
					t.Errorf("%s %s message %q does not name %q", tc.method, tc.path, rep.msg, m)
				}
			}
			if tc.after != nil {
				tc.after(t)
			}
		})
	}
	// Nothing was added anywhere.
	after := map[string]int{assignmentsA: listCount(t, s, tokA, assignmentsA), groupsA: listCount(t, s, tokA, groupsA),
		vaultsA: listCount(t, s, tokA, vaultsA), vaultsB: listCount(t, s, tokB, vaultsB)}
	for path, n := range before {
		if after[path] != n {
			t.Errorf("after the refusals GET %s lists %d items, before %d", path, after[path], n)
		}
	}

	// cancel cancels sub and returns its state as Resource Manager shows it.
	cancel := func(t *testing.T, sub string) string {
		t.Helper()
		armMust(t, s, tokA, "POST", subPath(sub)+"/providers/Microsoft.Subscription/cancel"+refCancelV, "", http.StatusOK, nil)
		var got struct{ State string }
		armMust(t, s, tokA, "GET", subPath(sub)+refSubV, "", http.StatusOK, &got)
		return got.State
	}
	newCustodySub := func(t *testing.T) string {
		t.Helper()
		sub := s.newSubscription(t, tokA, a.TenantID, "PayAsYouGo")
		armMust(t, s, tokA, "POST", subPath(sub)+"/providers/Microsoft.KeyVault/register"+refGroupV, "", http.StatusOK, nil)
		armMust(t, s, tokA, "PUT", groupPath(sub, mainGroup)+refGroupV, locationArg, http.StatusCreated, nil)
		return sub
	}

	t.Run("cancel without the mandatory retention period", func(t *testing.T) {
		sub := newCustodySub(t)
		if st := cancel(t, sub); st != "Disabled" {
			t.Fatalf("state after cancel = %s, want Disabled at once", st)
		}
		path := vaultPath(sub, mainGroup, "refusals-disabled")
		rep := armCall(t, s, tokA, "PUT", path+refVaultV, vaultBody(a.TenantID, nil))
		if rep.status != http.StatusConflict || rep.code != "ReadOnlyDisabledSubscription" || !strings.Contains(rep.msg, sub) ||
			!strings.Contains(rep.msg, "disabled") {
			t.Errorf("PUT vault in the cancelled subscription = %d %s; want 409 ReadOnlyDisabledSubscription naming it and saying it is disabled",
				rep.status, rep.body)
		}
		absent(tokA, path+refVaultV)(t)
		rep = armCall(t, s, tokA, "PUT", groupPath(sub, newGroup)+refGroupV, locationArg)
		if rep.status != http.StatusConflict || rep.code != "ReadOnlyDisabledSubscription" || !strings.Contains(rep.msg, sub) {
			t.Errorf("PUT resource group in the cancelled subscription = %d %s; want 409 ReadOnlyDisabledSubscription", rep.status, rep.body)
		}
		absent(tokA, groupPath(sub, newGroup)+refGroupV)(t)
	})

	t.Run("cancel with the mandatory retention period", func(t *testing.T) {
		sub := newCustodySub(t)
		var f struct {
			Properties struct{ State string } `json:"properties"`
		}
		armMust(t, s, tokA, "POST", featurePath(sub)+"/register"+refFeatureV, "", http.StatusOK, &f)
		if f.Properties.State != "Registering" {
			t.Fatalf("feature after register = %s, want Registering", f.Properties.State)
		}
		clk.Advance(61 * time.Second) // past the default registration delay of one minute
		armMust(t, s, tokA, "GET", featurePath(sub)+refFeatureV, "", http.StatusOK, &f)
		if f.Properties.State != "Registered" {
			t.Fatalf("feature after the delay = %s, want Registered", f.Properties.State)
		}
		if st := cancel(t, sub); st != "Enabled" {
			t.Fatalf("state after cancel = %s, want Enabled for the retention period", st)
		}
		// The subscription keeps working: a vault can still be created.
		armMust(t, s, tokA, "PUT", vaultPath(sub, mainGroup, "refusals-retained")+refVaultV, vaultBody(a.TenantID, nil), http.StatusCreated, nil)
	})

	t.Run("offers", func(t *testing.T) {
		op := s.Credentials
		tokOp, err := token(ctx, s.credential(t, op.TenantID, op.ClientID, op.ClientSecret), armScope)
		if err != nil {
			t.Fatal(err)
		}
		// The unpaid offers exist: the operator creates them.
		for _, offer := range []string{"FreeTrial", "MSDN", "Sponsorship", "LegacySupport"} {
			var got struct{ SubscriptionID, TenantID, Offer, State string }
			armMust(t, s, tokOp, "POST", "/customerkey/v1/subscriptions", `{"tenantId":"`+a.TenantID+`","offer":"`+offer+`"}`, http.StatusCreated, &got)
			if got.Offer != offer || got.TenantID != a.TenantID || got.State != "Enabled" || got.SubscriptionID == "" {
				t.Errorf("operator creates %s = %+v", offer, got)
			}
		}
		// The tenant's Global Administrator signs up for Pay-As-You-Go only.
		subsA := "/subscriptions" + refSubV
		n := listCount(t, s, tokA, subsA)
		for _, tc := range []struct{ offer, display string }{{"EnterpriseAgreement", "Enterprise Agreement"}, {"MSDN", "MSDN"}} {
			rep := armCall(t, s, tokA, "POST", "/customerkey/v1/subscriptions", `{"tenantId":"`+a.TenantID+`","offer":"`+tc.offer+`"}`)
			if rep.status != http.StatusForbidden || rep.code != "AuthorizationFailed" || !strings.Contains(rep.msg, "Pay-As-You-Go") ||
				!strings.Contains(rep.msg, tc.display) {
				t.Errorf("Global Administrator creates %s = %d %s; want 403 AuthorizationFailed naming the offer and Pay-As-You-Go",
					tc.offer, rep.status, rep.body)
			}
		}
		rep := armCall(t, s, tokA, "POST", "/customerkey/v1/subscriptions", `{"tenantId":"`+a.TenantID+`","offer":"Platinum"}`)
		if rep.status != http.StatusBadRequest || rep.code != "InvalidSubscription" || !strings.Contains(rep.msg, "Platinum") ||
			!strings.Contains(rep.msg, "PayAsYouGo") {
			t.Errorf("unknown offer = %d %s; want 400 InvalidSubscription naming it and the known offers", rep.status, rep.body)
		}
		if m := listCount(t, s, tokA, subsA); m != n {
			t.Errorf("after the refused sign-ups the tenant's admin sees %d subscriptions, before %d", m, n)
		}
	})
}
