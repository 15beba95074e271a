package keyprovider

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/customerkey/customerkey/internal/errkind"
)

// countingTokens issues numbered tokens with a fixed lifetime, or fails.
type countingTokens struct {
	mu       sync.Mutex
	now      func() time.Time
	lifetime time.Duration
	fail     error
	calls    []string // tenant/app/resource of each call
}

func (c *countingTokens) FirstPartyToken(_ context.Context, tenantID, appID, resource string) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, tenantID+"/"+appID+"/"+resource)
	if c.fail != nil {
		return "", time.Time{}, c.fail
	}
	return fmt.Sprintf("token-%d", len(c.calls)), c.now().Add(c.lifetime), nil
}

func (c *countingTokens) count() int { c.mu.Lock(); defer c.mu.Unlock(); return len(c.calls) }

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func TestCredentialCachesUntilShortlyBeforeExpiry(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		lifetime time.Duration
		renewAt  time.Duration // age at which a new token is fetched
	}{
		{"an hour", time.Hour, 55 * time.Minute},
		{"four minutes", 4 * time.Minute, 2 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			tok := &countingTokens{now: clk.Now, lifetime: tc.lifetime}
			c := &credential{tokens: tok, appID: "app", tenantID: "tenant-1", suffix: "vault.localhost", now: clk.Now, cache: map[string]cachedToken{}}
			opts := policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost:8443/.default"}, TenantID: "TENANT-1"}
			first, err := c.GetToken(ctx, opts)
			if err != nil || first.Token != "token-1" || !first.ExpiresOn.Equal(clk.Now().Add(tc.lifetime)) ||
				!first.RefreshOn.Equal(clk.Now().Add(tc.renewAt)) {
				t.Fatalf("GetToken = %+v, %v; want token-1 expiring in %s, refreshing at %s", first, err, tc.lifetime, tc.renewAt)
			}
			if tok.calls[0] != "tenant-1/app/https://vault.localhost:8443" {
				t.Errorf("asked the token service for %q", tok.calls[0])
			}
			clk.Advance(tc.renewAt - time.Second)
			if again, err := c.GetToken(ctx, opts); err != nil || again.Token != "token-1" || tok.count() != 1 {
				t.Errorf("just before the renewal: %s, %v after %d calls; want the cached token", again.Token, err, tok.count())
			}
			clk.Advance(time.Second)
			if renewed, err := c.GetToken(ctx, opts); err != nil || renewed.Token != "token-2" {
				t.Errorf("at the renewal: %s, %v; want a new token", renewed.Token, err)
			}
			// A claims challenge (CAE) always gets a new token.
			claims := opts
			claims.Claims = `{"access_token":{"nbf":{"essential":true}}}`
			if fresh, err := c.GetToken(ctx, claims); err != nil || fresh.Token != "token-3" {
				t.Errorf("with claims: %s, %v; want a new token", fresh.Token, err)
			}
		})
	}
}

func TestCredentialRefusals(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Now()}
	tok := &countingTokens{now: clk.Now, lifetime: time.Hour}
	c := &credential{tokens: tok, appID: "app", tenantID: "tenant-1", suffix: "vault.localhost", now: clk.Now, cache: map[string]cachedToken{}}
	tests := []struct {
		name     string
		opts     policy.TokenRequestOptions
		wantType any
	}{
		{"another tenant", policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost/.default"}, TenantID: "tenant-2"}, &foreignTenantError{}},
		{"two scopes", policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost/.default", "https://graph.microsoft.com/.default"}}, &resourceError{}},
		{"no scope", policy.TokenRequestOptions{}, &resourceError{}},
		{"not /.default", policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost/user_impersonation"}}, &resourceError{}},
		{"another resource", policy.TokenRequestOptions{Scopes: []string{"https://localhost:8443/.default"}}, &resourceError{}},
		{"a subdomain of the suffix", policy.TokenRequestOptions{Scopes: []string{"https://kv1.vault.localhost/.default"}}, &resourceError{}},
		{"plain http", policy.TokenRequestOptions{Scopes: []string{"http://vault.localhost/.default"}}, &resourceError{}},
		{"with a path", policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost/x/.default"}}, &resourceError{}},
		{"with user info", policy.TokenRequestOptions{Scopes: []string{"https://u@vault.localhost/.default"}}, &resourceError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetToken(ctx, tc.opts)
			switch tc.wantType.(type) {
			case *foreignTenantError:
				if _, ok := errors.AsType[*foreignTenantError](err); !ok {
					t.Errorf("GetToken(%+v) err = %v; want a foreign-tenant refusal", tc.opts, err)
				}
			case *resourceError:
				if _, ok := errors.AsType[*resourceError](err); !ok {
					t.Errorf("GetToken(%+v) err = %v; want a resource refusal", tc.opts, err)
				}
			}
		})
	}
	if tok.count() != 0 {
		t.Errorf("the token service was asked %d times for refused requests", tok.count())
	}
	// The token service's refusal comes back recognisable, and nothing
	// is cached from it.
	tok.fail = errkind.New(errkind.PermissionDenied, "AADSTS7000229: missing service principal")
	ok := policy.TokenRequestOptions{Scopes: []string{"https://vault.localhost/.default"}}
	if _, err := c.GetToken(ctx, ok); !errors.Is(err, tok.fail) {
		t.Errorf("GetToken with the token service refusing err = %v; want its refusal", err)
	}
	tok.fail = nil
	if got, err := c.GetToken(ctx, ok); err != nil || got.Token == "" {
		t.Errorf("GetToken after the refusal = %v; want a token", err)
	}
}
