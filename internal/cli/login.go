package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func loginCmd(g *globals) *cobra.Command {
	var tenant, clientID, clientSecret string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in as a user (device code) or as an application, and save the sign-in",
		Long: `Sign in and save the sign-in for later commands (mode 0600).

A user signs in with a device code: open the page shown, enter the code and
your user name and password. An application signs in with --client-id and
--client-secret, with AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or with
--credentials-file (the operator's operator.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := profile{Endpoint: firstNonEmpty(g.endpoint, os.Getenv("CUSTOMERKEY_ENDPOINT")),
				CAFile: firstNonEmpty(g.caFile, os.Getenv("CUSTOMERKEY_CA_FILE")), TenantID: firstNonEmpty(tenant, os.Getenv("AZURE_TENANT_ID")),
				ClientID: firstNonEmpty(clientID, os.Getenv("AZURE_CLIENT_ID")), ClientSecret: firstNonEmpty(clientSecret, os.Getenv("AZURE_CLIENT_SECRET"))}
			if g.credentialsFile != "" {
				s, err := g.resolve()
				if err != nil {
					return err
				}
				p = s.prof
			}
			if p.Endpoint == "" {
				return errors.New("no endpoint: pass --endpoint or set CUSTOMERKEY_ENDPOINT (for example https://localhost:8443)")
			}
			if p.TenantID == "" {
				return errors.New("no tenant: pass --tenant (a tenant id or domain) or set AZURE_TENANT_ID")
			}
			if (p.ClientID == "") != (p.ClientSecret == "") {
				return errors.New("an application signs in with both a client id and a client secret")
			}
			hc, err := httpClient(p.CAFile)
			if err != nil {
				return err
			}
			s := &session{prof: p, http: hc, tokens: map[string]string{}}
			ctx := cmd.Context()
			if p.ClientSecret == "" {
				if err := s.deviceCode(ctx, cmd); err != nil {
					return err
				}
			} else if _, err := s.token(ctx, armScope); err != nil {
				return err
			}
			if err := saveProfile(s.prof); err != nil {
				return fmt.Errorf("saving the sign-in: %w", err)
			}
			who := s.prof.User
			if who == "" {
				who = "application " + s.prof.ClientID
			}
			pr, err := g.printer(cmd)
			if err != nil {
				return err
			}
			out := map[string]string{"endpoint": s.prof.Endpoint, "tenantId": s.prof.TenantID, "signedInAs": who}
			return pr.printFields(out, [][2]string{{"Endpoint", out["endpoint"]}, {"Tenant", out["tenantId"]}, {"SignedInAs", who}})
		},
	}
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant id or domain to sign in to (default $AZURE_TENANT_ID)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "application (client) id; default $AZURE_CLIENT_ID")
	cmd.Flags().StringVar(&clientSecret, "client-secret", "", "application client secret; default $AZURE_CLIENT_SECRET")
	return cmd
}

func logoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Forget the saved sign-in",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := profilePath()
			if err != nil {
				return err
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "Signed out.")
			return nil
		},
	}
}

type deviceCodeResponse struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
	Error           string `json:"error"`
	Description     string `json:"error_description"`
}

// deviceCode runs the device authorization grant (RFC 8628) and keeps the
// refresh token it yields.
func (s *session) deviceCode(ctx context.Context, cmd *cobra.Command) error {
	tenant := "/" + url.PathEscape(s.prof.TenantID)
	form := url.Values{"client_id": {cliAppID}, "scope": {armScope + " offline_access openid profile"}}
	req, err := newFormRequest(ctx, s.prof.Endpoint+tenant+"/oauth2/v2.0/devicecode", form)
	if err != nil {
		return err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", s.prof.Endpoint, err)
	}
	var dc deviceCodeResponse
	err = json.NewDecoder(resp.Body).Decode(&dc)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("the device code endpoint answered %s with a body that is not JSON", resp.Status)
	}
	if dc.Error != "" {
		return &oauthError{dc.Error, dc.Description}
	}
	fmt.Fprintln(cmd.ErrOrStderr(), dc.Message)
	interval := time.Duration(max(dc.Interval, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(dc.ExpiresIn) * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		tr, err := s.postForm(ctx, tenant+"/oauth2/v2.0/token", url.Values{
			"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "client_id": {cliAppID}, "device_code": {dc.DeviceCode}})
		var oe *oauthError
		switch {
		case errors.As(err, &oe) && oe.code == "authorization_pending":
			continue
		case errors.As(err, &oe) && oe.code == "slow_down":
			interval += 5 * time.Second
			continue
		case err != nil:
			return err
		}
		s.prof.RefreshToken = tr.RefreshToken
		s.prof.User = userOf(tr.AccessToken)
		s.tokens[armScope] = tr.AccessToken
		return nil
	}
	return errors.New("the device code expired before sign-in finished; run `customerkey login` again")
}

// userOf reads the user principal name from an access token's payload, for
// display only: the server verifies tokens, the CLI only shows who it is.
func userOf(tok string) string {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := decodeSegment(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		UPN string `json:"upn"`
		PUN string `json:"preferred_username"`
	}
	_ = json.Unmarshal(b, &c)
	return firstNonEmpty(c.UPN, c.PUN)
}
