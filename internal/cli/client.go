package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/config"
)

// Resources the CLI asks tokens for.
const (
	armScope   = "https://management.azure.com/.default"
	graphScope = "https://graph.microsoft.com/.default"
	// cliAppID is the public client the CLI signs users in with.
	cliAppID = "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
)

// profile is what `customerkey login` saves (mode 0600).
type profile struct {
	Endpoint string `json:"endpoint"`
	CAFile   string `json:"caFile,omitempty"`
	TenantID string `json:"tenantId"`
	// Either an application's credentials ...
	ClientID     string `json:"clientId,omitempty"`
	ClientSecret string `json:"clientSecret,omitempty"`
	// ... or a signed-in user's refresh token.
	User         string `json:"user,omitempty"`
	RefreshToken string `json:"refreshToken,omitempty"`
}

func profilePath() (string, error) {
	if p := os.Getenv("CUSTOMERKEY_PROFILE"); p != "" {
		return p, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the configuration directory: %w", err)
	}
	return filepath.Join(d, "customerkey", "profile.json"), nil
}

func loadProfile() (profile, bool, error) {
	var p profile
	path, err := profilePath()
	if err != nil {
		return p, false, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return p, false, nil
	}
	if err != nil {
		return p, false, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, false, fmt.Errorf("the saved login %s is damaged; run `customerkey login` again", path)
	}
	return p, true, nil
}

func saveProfile(p profile) error {
	path, err := profilePath()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// session is a resolved endpoint and identity.
type session struct {
	prof   profile
	http   *http.Client
	tokens map[string]string
	// saved is true when prof came from the saved login, whose refresh
	// token must be saved again after each use (it rotates).
	saved bool
}

// resolve finds the endpoint and credentials: --credentials-file, then the
// CUSTOMERKEY_* and AZURE_* environment variables, then the saved login.
func (g *globals) resolve() (*session, error) {
	var p profile
	saved := false
	switch {
	case g.credentialsFile != "":
		c, err := config.ReadCredentials(g.credentialsFile)
		if err != nil {
			return nil, err
		}
		p = profile{Endpoint: c.Endpoint, CAFile: c.CAFile, TenantID: c.TenantID, ClientID: c.ClientID, ClientSecret: c.ClientSecret}
	case os.Getenv("AZURE_CLIENT_ID") != "" && os.Getenv("AZURE_CLIENT_SECRET") != "":
		p = profile{TenantID: os.Getenv("AZURE_TENANT_ID"), ClientID: os.Getenv("AZURE_CLIENT_ID"), ClientSecret: os.Getenv("AZURE_CLIENT_SECRET")}
		if p.TenantID == "" {
			return nil, errors.New("AZURE_CLIENT_ID is set but AZURE_TENANT_ID is not: set the tenant the application signs in to")
		}
	default:
		var ok bool
		var err error
		if p, ok, err = loadProfile(); err != nil {
			return nil, err
		} else if !ok {
			return nil, errors.New("not signed in: run `customerkey login`, set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, or pass --credentials-file <data-dir>/operator.json")
		}
		saved = true
	}
	if v := firstNonEmpty(g.endpoint, os.Getenv("CUSTOMERKEY_ENDPOINT")); v != "" {
		p.Endpoint = v
	}
	if v := firstNonEmpty(g.caFile, os.Getenv("CUSTOMERKEY_CA_FILE")); v != "" {
		p.CAFile = v
	}
	if p.Endpoint == "" {
		return nil, errors.New("no endpoint: set CUSTOMERKEY_ENDPOINT (for example https://localhost:8443) or pass --endpoint")
	}
	p.Endpoint = strings.TrimSuffix(p.Endpoint, "/")
	hc, err := httpClient(p.CAFile)
	if err != nil {
		return nil, err
	}
	return &session{prof: p, http: hc, tokens: map[string]string{}, saved: saved}, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// httpClient trusts the CA file (besides the system roots) and resolves
// *.localhost names to the loopback address, which Go's resolver does not.
func httpClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("the CA file %s holds no PEM certificate", caFile)
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2:   true,
		TLSHandshakeTimeout: 10 * time.Second,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Transport: tr, Timeout: 60 * time.Second}, nil
}

// tokenResponse is the OAuth token endpoint's answer.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int    `json:"expires_in"`
	Error        string `json:"error"`
	Description  string `json:"error_description"`
}

// oauthError is an error answer of the token service.
type oauthError struct{ code, desc string }

func (e *oauthError) Error() string {
	d := e.desc
	// Entra-style descriptions end with trace ids, which only add noise here.
	if i := strings.Index(d, " Trace ID:"); i > 0 {
		d = d[:i]
	}
	return "sign-in failed: " + e.code + ": " + d
}

func (s *session) postForm(ctx context.Context, path string, form url.Values) (tokenResponse, error) {
	var tr tokenResponse
	req, err := newFormRequest(ctx, s.prof.Endpoint+path, form)
	if err != nil {
		return tr, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return tr, fmt.Errorf("reaching %s: %w", s.prof.Endpoint, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return tr, fmt.Errorf("the token service answered %s with a body that is not JSON", resp.Status)
	}
	if tr.Error != "" {
		return tr, &oauthError{tr.Error, tr.Description}
	}
	if resp.StatusCode != http.StatusOK {
		return tr, fmt.Errorf("the token service answered %s", resp.Status)
	}
	return tr, nil
}

// token returns an access token for scope, as the application or by
// redeeming the saved refresh token.
func (s *session) token(ctx context.Context, scope string) (string, error) {
	if t, ok := s.tokens[scope]; ok {
		return t, nil
	}
	form := url.Values{"scope": {scope}}
	switch {
	case s.prof.ClientSecret != "":
		form.Set("grant_type", "client_credentials")
		form.Set("client_id", s.prof.ClientID)
		form.Set("client_secret", s.prof.ClientSecret)
	case s.prof.RefreshToken != "":
		form.Set("grant_type", "refresh_token")
		form.Set("client_id", cliAppID)
		form.Set("refresh_token", s.prof.RefreshToken)
		form.Set("scope", scope+" offline_access")
	default:
		return "", errors.New("the saved login holds no credential; run `customerkey login` again")
	}
	tr, err := s.postForm(ctx, "/"+url.PathEscape(s.prof.TenantID)+"/oauth2/v2.0/token", form)
	if err != nil {
		return "", err
	}
	if tr.RefreshToken != "" && s.prof.RefreshToken != "" && s.saved {
		s.prof.RefreshToken = tr.RefreshToken
		if err := saveProfile(s.prof); err != nil {
			return "", fmt.Errorf("saving the renewed sign-in: %w", err)
		}
	}
	s.tokens[scope] = tr.AccessToken
	return tr.AccessToken, nil
}

// apiError is an error answer of one of the server's APIs.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("the server answered %d: %s", e.Status, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// call sends a JSON request to the server with a token for scope (none
// when scope is empty) and decodes the JSON answer into out (unless nil).
func (s *session) call(ctx context.Context, scope, method, path string, in, out any) error {
	return s.callURL(ctx, scope, method, s.prof.Endpoint+path, in, out)
}

// callURL is call for an absolute URL, such as a vault's.
func (s *session) callURL(ctx context.Context, scope, method, u string, in, out any) error {
	tok := ""
	if scope != "" {
		var err error
		if tok, err = s.token(ctx, scope); err != nil {
			return err
		}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("reaching %s: %w", s.prof.Endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error.Message != "" {
			return &apiError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return &apiError{Status: resp.StatusCode, Message: strings.TrimSpace(string(raw))}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding the answer of %s %s: %w", method, u, err)
	}
	return nil
}

func newFormRequest(ctx context.Context, u string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// sleep waits n seconds or until ctx ends.
func sleep(ctx context.Context, n int) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Duration(n) * time.Second):
		return nil
	}
}
