package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnboardingRefusals: bad requests get a 4xx in the control API's
// format with a message that says what to do; the wrong callers are
// refused; nothing is stored for a refused request.
func TestOnboardingRefusals(t *testing.T) {
	s := start(t, filepath.Join(t.TempDir(), "data"))
	ctx := context.Background()
	a := s.newTenant(t, "Contoso")
	b := s.newTenant(t, "Fabrikam")
	tokA, _ := token(ctx, s.credential(t, a.TenantID, a.AdminApp.ClientID, a.AdminApp.ClientSecret), armScope)
	tokB, _ := token(ctx, s.credential(t, b.TenantID, b.AdminApp.ClientID, b.AdminApp.ClientSecret), armScope)
	sub := s.newSubscription(t, tokA, a.TenantID, "PayAsYouGo")
	body := func(fields map[string]string) string {
		m := map[string]string{"Organization": a.TenantID, "Scenario": "EXO", "OnboardingMode": "Validate",
			"Subscription1": sub, "VaultName1": "nosuchvault1", "KeyName1": "k", "Subscription2": sub, "VaultName2": "nosuchvault2", "KeyName2": "k"}
		for k, v := range fields {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, tok, body string
		status          int
		code, mention   string
	}{
		{"unknown scenario", tokA, body(map[string]string{"Scenario": "SPO"}), 400, "BadRequest", "legacy"},
		{"unknown mode", tokA, body(map[string]string{"OnboardingMode": "Destroy"}), 400, "BadRequest", "Validate"},
		{"no organization", tokA, body(map[string]string{"Organization": ""}), 400, "BadRequest", "rganization"},
		{"another tenant's organization", tokB, body(nil), 403, "", a.TenantID},
		{"unknown field", tokA, `{"Organisation":"x"}`, 400, "BadRequest", "Organisation"},
		{"no token", "", body(nil), 401, "InvalidAuthenticationToken", "token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", s.url+"/customerkey/v1/onboarding/requests", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			resp, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string }
			}
			_ = json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.status || (tc.code != "" && e.Error.Code != tc.code) || !strings.Contains(e.Error.Message, tc.mention) {
				t.Errorf("= %d %s %q; want %d %s mentioning %q", resp.StatusCode, e.Error.Code, e.Error.Message, tc.status, tc.code, tc.mention)
			}
		})
	}
	var list struct {
		Value []json.RawMessage `json:"value"`
	}
	doJSON(t, s, tokA, "GET", "/customerkey/v1/onboarding/requests?organizationId="+a.TenantID, "", &list)
	if len(list.Value) != 0 {
		t.Errorf("refused requests left %d records", len(list.Value))
	}
	// A request that names missing vaults is not refused: it fails its rules.
	var r struct {
		ID                string
		ValidationResult  string
		FailedValidations []struct{ RuleName string }
	}
	if code := doJSON(t, s, tokA, "POST", "/customerkey/v1/onboarding/requests", body(nil), &r); code != http.StatusCreated || r.ValidationResult != "Failed" {
		t.Fatalf("request with missing vaults = %d %s", code, r.ValidationResult)
	}
	rules := map[string]bool{}
	for _, v := range r.FailedValidations {
		rules[v.RuleName] = true
	}
	for _, want := range []string{"VaultExistsinSubscription", "SubscriptionUniquePerScenario", "MandatoryRetentionPeriodState"} {
		if !rules[want] {
			t.Errorf("failed rules %v lack %s", rules, want)
		}
	}
	// Another tenant cannot read it.
	if code := doJSON(t, s, tokB, "GET", "/customerkey/v1/onboarding/requests/"+r.ID+"?organizationId="+a.TenantID, "", nil); code != http.StatusNotFound && code != http.StatusForbidden {
		t.Errorf("another tenant reading the request = %d, want 404 or 403", code)
	}
}
