package identity

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// kCode holds authorization codes by hash. A redeemed code stays until it
// expires, marked, so that a second use is recognised and revokes what the
// first one got (RFC 6749 §4.1.2).
const kCode = "identity/code/" // {sha256(code)} -> codeRecord

const (
	maxStateLen = 2048
	maxNonceLen = 512
)

type codeRecord struct {
	TenantID    string    `json:"tenantId"`
	ClientID    string    `json:"clientId"`
	RedirectURI string    `json:"redirectUri"`
	Challenge   string    `json:"challenge"`
	Resource    string    `json:"resource"`
	Nonce       string    `json:"nonce,omitempty"`
	User        grantUser `json:"user"`
	Expires     time.Time `json:"expires"`
	Redeemed    bool      `json:"redeemed,omitempty"`
	RefreshKey  string    `json:"refreshKey,omitempty"`
}

// AuthorizeRequest is an authorization request (the query of
// /{tenant}/oauth2/v2.0/authorize).
type AuthorizeRequest struct {
	Tenant              string
	ClientID            string
	ResponseType        string
	RedirectURI         string
	Scope               string
	State               string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	ResponseMode        string
}

// AuthorizeInfo is what the sign-in page shows about a valid request.
type AuthorizeInfo struct {
	TenantID   string
	TenantName string
	AppID      string
	AppName    string
	Resource   string
	// RedirectURI is set as soon as the redirect URI is known to be
	// registered on the application: errors found after that point go back
	// to the client there (RFC 6749 §4.1.2.1); before it they must not.
	RedirectURI string
}

// CheckAuthorize validates an authorization request.
func (s *Service) CheckAuthorize(ctx context.Context, req AuthorizeRequest) (AuthorizeInfo, error) {
	var info AuthorizeInfo
	t, err := s.tenantForGrant(ctx, req.Tenant)
	if err != nil {
		return info, err
	}
	info.TenantID, info.TenantName = t.ID, tenantName(t)
	if req.ClientID == "" {
		return info, errMissingParam("client_id")
	}
	app, err := s.dir.Application(ctx, req.ClientID)
	if errors.Is(err, directory.ErrAppNotFound) {
		return info, newErr(errkind.Invalid, CodeUnauthorizedClient, 700016,
			"Application with identifier '%s' was not found in the directory '%s'.", clip(req.ClientID), t.ID)
	}
	if err != nil {
		return info, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	info.AppID, info.AppName = app.AppID, app.DisplayName
	if req.RedirectURI == "" {
		return info, errMissingParam("redirect_uri")
	}
	if !redirectAllowed(app.RedirectURIs, req.RedirectURI) {
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 50011,
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'.", clip(req.RedirectURI), app.AppID)
	}
	info.RedirectURI = req.RedirectURI
	switch {
	case req.ResponseType != "code":
		return info, newErr(errkind.Invalid, CodeUnsupportedResponseType, 700054, "response_type '%s' is not supported; use 'code'.", clip(req.ResponseType))
	case req.ResponseMode != "" && req.ResponseMode != "query":
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 0, "response_mode '%s' is not supported; use 'query'.", clip(req.ResponseMode))
	case req.CodeChallenge == "":
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 0, "Proof Key for Code Exchange is required: send code_challenge and code_challenge_method=S256.")
	case req.CodeChallengeMethod != "S256":
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 0, "code_challenge_method must be S256; 'plain' and others are refused.")
	case !validChallenge(req.CodeChallenge):
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 501491, "Invalid size of Code_Challenge parameter: it must be the 43-character base64url SHA-256 of the verifier.")
	case len(req.State) > maxStateLen || len(req.Nonce) > maxNonceLen:
		return info, newErr(errkind.Invalid, CodeInvalidRequest, 0, "state must be at most %d and nonce at most %d characters.", maxStateLen, maxNonceLen)
	}
	sr, err := s.parseScope(req.Scope, t, true)
	if err != nil {
		return info, err
	}
	info.Resource = sr.resource
	if _, err := s.servicePrincipalFor(ctx, t, app); err != nil {
		return info, err
	}
	return info, nil
}

// Authorize signs the user in with their password and returns where to
// send the browser: the redirect URI with a single-use code and the state.
func (s *Service) Authorize(ctx context.Context, req AuthorizeRequest, upn string, password secret.String) (string, error) {
	info, err := s.CheckAuthorize(ctx, req)
	if err != nil {
		return "", err
	}
	u, err := s.signIn(ctx, info.TenantID, upn, password, actionAuthorize, info.Resource)
	if err != nil {
		return "", err
	}
	code, err := s.randomID(32)
	if err != nil {
		return "", err
	}
	rec := codeRecord{TenantID: info.TenantID, ClientID: info.AppID, RedirectURI: req.RedirectURI, Challenge: req.CodeChallenge,
		Resource: info.Resource, Nonce: req.Nonce, User: grantUser{OID: u.ID, UPN: u.UserPrincipalName, Name: u.DisplayName},
		Expires: s.now().Add(AuthCodeLifetime).UTC()}
	b, _ := json.Marshal(rec)
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(kCode+hashSecret(code), b, storage.MustNotExist); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, info.TenantID, userActor(u.ID, u.UserPrincipalName), actionAuthorize, info.Resource)
	})
	if err != nil {
		return "", errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
	}
	return withQuery(req.RedirectURI, "code", code, "state", req.State), nil
}

// ErrorRedirect returns where to send the browser to report err to the
// client, when the request's redirect URI was found registered.
func ErrorRedirect(info AuthorizeInfo, state string, err error) (string, bool) {
	if info.RedirectURI == "" {
		return "", false
	}
	e, ok := errkind.As(err)
	if !ok || e.Code == "" || e.Kind == errkind.Internal || e.Kind == errkind.Unavailable {
		return "", false
	}
	return withQuery(info.RedirectURI, "error", e.Code, "error_description", e.Msg, "state", state), true
}

// withQuery adds parameters (skipping empty values) to u's query.
func withQuery(u string, kv ...string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := parsed.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			q.Set(kv[i], kv[i+1])
		}
	}
	parsed.RawQuery = q.Encode()
	return parsed.String()
}

// redirectAllowed matches a redirect URI against the registered ones:
// exactly, or, for http loopback URIs, with any port (RFC 8252 §7.3, as
// Entra ID does).
func redirectAllowed(registered []string, requested string) bool {
	u, err := url.Parse(requested)
	if err != nil || u.Fragment != "" || u.User != nil {
		return false
	}
	for _, r := range registered {
		if r == requested {
			return true
		}
		ru, err := url.Parse(r)
		if err != nil || u.Scheme != "http" || ru.Scheme != "http" || !isLoopback(u.Hostname()) {
			continue
		}
		if strings.EqualFold(ru.Hostname(), u.Hostname()) && strings.TrimSuffix(ru.Path, "/") == strings.TrimSuffix(u.Path, "/") &&
			ru.RawQuery == u.RawQuery {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil
}

// validVerifier checks RFC 7636 §4.1: 43 to 128 unreserved characters.
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// redeemAuthCode exchanges an authorization code and its PKCE verifier.
func (s *Service) redeemAuthCode(ctx context.Context, t directory.Tenant, req TokenRequest) (TokenResponse, error) {
	actor := appActor(req.ClientID, "", "", t.ID)
	target := ""
	resp, err := func() (TokenResponse, error) {
		switch {
		case req.Code.IsZero():
			return TokenResponse{}, errMissingParam("code")
		case req.ClientID == "":
			return TokenResponse{}, errMissingParam("client_id")
		case req.RedirectURI == "":
			return TokenResponse{}, errMissingParam("redirect_uri")
		case req.CodeVerifier.IsZero():
			return TokenResponse{}, errMissingParam("code_verifier")
		}
		badCode := newErr(errkind.Invalid, CodeInvalidGrant, 70000, "The provided value for the input parameter 'code' is not valid.")
		key := kCode + hashSecret(req.Code.Reveal())
		e, err := storage.Get(ctx, s.store, key)
		if errors.Is(err, storage.ErrNotFound) {
			return TokenResponse{}, badCode
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
		}
		var rec codeRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return TokenResponse{}, fmt.Errorf("identity: decoding authorization code: %w", err)
		}
		if rec.TenantID != t.ID || !strings.EqualFold(rec.ClientID, req.ClientID) {
			return TokenResponse{}, badCode
		}
		target = rec.Resource
		actor = userActor(rec.User.OID, rec.User.UPN)
		if rec.Redeemed {
			// A second use means the code leaked: revoke what the first
			// use obtained.
			if rec.RefreshKey != "" {
				_ = s.store.Update(ctx, func(tx storage.Tx) error { return tx.Delete(rec.RefreshKey, storage.AnyVersion) })
			}
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 54005,
				"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		}
		if !s.now().Before(rec.Expires) {
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 70008,
				"The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		}
		if req.RedirectURI != rec.RedirectURI {
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 0, "The redirect_uri does not match the one the authorization code was issued for.")
		}
		v := req.CodeVerifier.Reveal()
		sum := sha256.Sum256([]byte(v))
		if !validVerifier(v) || subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(rec.Challenge)) != 1 {
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 501481,
				"The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		}
		app, err := s.grantClient(ctx, t, req, rec.ClientID)
		if err != nil {
			return TokenResponse{}, err
		}
		if _, err := s.servicePrincipalFor(ctx, t, app); err != nil {
			return TokenResponse{}, err
		}
		user := rec.User
		sub := subject{tenantID: t.ID, appID: app.AppID, appName: app.DisplayName, objectID: user.OID, user: &user}
		resp, rg, err := s.userTokenResponse(ctx, sub, rec.Resource, rec.Nonce)
		if err != nil {
			return TokenResponse{}, err
		}
		rec.Redeemed, rec.RefreshKey = true, rg.key
		b, _ := json.Marshal(rec)
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			if _, err := tx.Put(key, b, e.Version); err != nil {
				return err
			}
			if err := rg.put(tx); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, t.ID, actor, actionToken, rec.Resource)
		})
		if errors.Is(err, storage.ErrConflict) {
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 54005,
				"OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; no token was issued", err)
		}
		return resp, nil
	}()
	if err != nil {
		s.recordRefusal(ctx, t.ID, actor, actionToken, target, err)
	}
	return resp, err
}
