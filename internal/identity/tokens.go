package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// TokenResponse is a successful answer of the token endpoint, in the
// shape MSAL reads. It holds bearer credentials: never log it (its
// LogValue redacts them).
type TokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope,omitempty"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	// ClientInfo is base64url JSON {"uid": oid, "utid": tid}: MSAL builds
	// the account's home id from it.
	ClientInfo string `json:"client_info,omitempty"`
}

// LogValue names only the harmless fields.
func (r TokenResponse) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token_type", r.TokenType), slog.String("scope", r.Scope),
		slog.Int("expires_in", r.ExpiresIn), slog.Bool("refresh_token", r.RefreshToken != ""))
}

// The OpenID Connect scopes azidentity (MSAL) always appends; they ask for
// an ID token and a refresh token and name no resource.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "offline_access": true, "email": true}

const (
	maxScopeLen      = 2048
	userImpersonated = "user_impersonation"
)

// scopeRequest is a parsed scope parameter.
type scopeRequest struct {
	// resource is the audience of the token: the resource exactly as
	// requested, without "/.default".
	resource string
	// offline is whether offline_access was asked (a refresh token).
	offline bool
}

// parseScope reads "{resource}/.default" plus optional OpenID scopes. App
// flows need the /.default form; user flows also accept
// "{resource}/user_impersonation" and, with OpenID scopes only, get a
// Microsoft Graph token as Entra ID gives.
func (s *Service) parseScope(scope string, t directory.Tenant, userFlow bool) (scopeRequest, error) {
	var sr scopeRequest
	if strings.TrimSpace(scope) == "" {
		return sr, errMissingParam("scope")
	}
	if len(scope) > maxScopeLen {
		return sr, newErr(errkind.Invalid, CodeInvalidScope, 70011, "The provided value for the input parameter 'scope' is not valid: it is longer than %d characters.", maxScopeLen)
	}
	var resources []string
	for _, sc := range strings.Fields(scope) {
		low := strings.ToLower(sc)
		switch {
		case oidcScopes[low]:
			sr.offline = sr.offline || low == "offline_access"
			continue
		case strings.HasSuffix(sc, "/.default"):
			sc = strings.TrimSuffix(sc, "/.default")
		case userFlow && strings.HasSuffix(sc, "/"+userImpersonated):
			sc = strings.TrimSuffix(sc, "/"+userImpersonated)
		case !userFlow:
			return sr, newErr(errkind.Invalid, CodeInvalidScope, 1002012,
				"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", clip(sc))
		default:
			return sr, newErr(errkind.Invalid, CodeInvalidScope, 70011,
				"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid; ask for {resource}/.default.", clip(sc))
		}
		if sc == "" {
			return sr, newErr(errkind.Invalid, CodeInvalidScope, 70011, "The provided value for the input parameter 'scope' is not valid. The scope /.default names no resource.")
		}
		if !containsFold(resources, sc) {
			resources = append(resources, sc)
		}
	}
	switch {
	case len(resources) > 1:
		return sr, newErr(errkind.Invalid, CodeInvalidScope, 28000,
			"Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", clip(scope))
	case len(resources) == 0 && !userFlow:
		return sr, newErr(errkind.Invalid, CodeInvalidScope, 1002012,
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", clip(scope))
	case len(resources) == 0:
		resources = []string{GraphResource}
	}
	if !s.knownResource(resources[0]) {
		return sr, newErr(errkind.Invalid, CodeInvalidResource, 500011,
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			clip(resources[0]), tenantName(t))
	}
	sr.resource = resources[0]
	return sr, nil
}

func tenantName(t directory.Tenant) string {
	if t.DisplayName != "" {
		return t.DisplayName
	}
	return t.ID
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// sameResource compares resource identifiers as Entra ID does: ignoring
// case and a trailing slash.
func sameResource(a, b string) bool {
	return strings.EqualFold(strings.TrimSuffix(a, "/"), strings.TrimSuffix(b, "/"))
}

// audiences returns the resources a surface accepts.
func (s *Service) audiences(sf Surface) []string {
	switch sf {
	case Graph:
		return []string{GraphResource}
	case ResourceManager:
		return []string{ARMResource, ARMLegacyResource, s.publicURL}
	case KeyVault:
		if s.vaultRes != "" {
			return []string{s.vaultRes, VaultResource}
		}
		return []string{VaultResource}
	}
	return nil
}

func (s *Service) knownResource(r string) bool {
	for _, sf := range []Surface{Graph, ResourceManager, KeyVault} {
		for _, a := range s.audiences(sf) {
			if sameResource(a, r) {
				return true
			}
		}
	}
	return false
}

// accessClaims are the claims beyond the registered ones, as Entra ID v2
// access tokens name them.
type accessClaims struct {
	TenantID          string `json:"tid"`
	ObjectID          string `json:"oid"`
	AppID             string `json:"appid"`
	AuthorizedParty   string `json:"azp"`
	IDType            string `json:"idtyp"`
	Version           string `json:"ver"`
	UTI               string `json:"uti"`
	AppDisplayName    string `json:"app_displayname,omitempty"`
	UPN               string `json:"upn,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Name              string `json:"name,omitempty"`
	Scope             string `json:"scp,omitempty"`
}

// idClaims are an ID token's claims beyond the registered ones.
type idClaims struct {
	TenantID          string `json:"tid"`
	ObjectID          string `json:"oid"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Name              string `json:"name,omitempty"`
	Nonce             string `json:"nonce,omitempty"`
	Version           string `json:"ver"`
}

// subject is who a token is issued to.
type subject struct {
	tenantID string
	appID    string
	appName  string
	// objectID is the service principal's object id in tenantID for app
	// tokens, the user's for user tokens.
	objectID string
	user     *grantUser
}

// grantUser is the signed-in user a user token names.
type grantUser struct {
	OID  string `json:"oid"`
	UPN  string `json:"upn"`
	Name string `json:"name"`
}

func (s *Service) randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("identity: reading random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// accessToken signs an access token for sub and resource.
func (s *Service) accessToken(ctx context.Context, sub subject, resource string, now time.Time) (string, time.Time, error) {
	kr, err := s.signingKeyring(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	jti, err := s.randomID(16)
	if err != nil {
		return "", time.Time{}, err
	}
	uti, err := s.randomID(16)
	if err != nil {
		return "", time.Time{}, err
	}
	exp := now.Add(s.tokenLife).Truncate(time.Second)
	std := jwt.Claims{Issuer: s.Issuer(sub.tenantID), Subject: sub.objectID, Audience: jwt.Audience{resource},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp), ID: jti}
	ac := accessClaims{TenantID: sub.tenantID, ObjectID: sub.objectID, AppID: sub.appID, AuthorizedParty: sub.appID,
		IDType: string(AppPrincipal), Version: "2.0", UTI: uti}
	if sub.user != nil {
		ac.IDType = string(UserPrincipal)
		ac.UPN, ac.PreferredUsername, ac.Name = sub.user.UPN, sub.user.UPN, sub.user.Name
		ac.Scope = userImpersonated
	} else {
		ac.AppDisplayName = sub.appName
	}
	tok, err := jwt.Signed(kr.current.signer).Claims(std).Claims(ac).Serialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("identity: signing access token: %w", err)
	}
	return tok, exp, nil
}

// idToken signs an OpenID Connect ID token for a user, audience the client.
func (s *Service) idToken(ctx context.Context, sub subject, nonce string, now time.Time) (string, error) {
	kr, err := s.signingKeyring(ctx)
	if err != nil {
		return "", err
	}
	std := jwt.Claims{Issuer: s.Issuer(sub.tenantID), Subject: sub.user.OID, Audience: jwt.Audience{sub.appID},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(s.tokenLife))}
	ic := idClaims{TenantID: sub.tenantID, ObjectID: sub.user.OID, PreferredUsername: sub.user.UPN, Name: sub.user.Name,
		Nonce: nonce, Version: "2.0"}
	tok, err := jwt.Signed(kr.current.signer).Claims(std).Claims(ic).Serialize()
	if err != nil {
		return "", fmt.Errorf("identity: signing ID token: %w", err)
	}
	return tok, nil
}

func clientInfo(oid, tid string) string {
	b, _ := json.Marshal(map[string]string{"uid": oid, "utid": tid})
	return base64.RawURLEncoding.EncodeToString(b)
}

// appTokenResponse is the client credentials answer: an access token only.
func (s *Service) appTokenResponse(ctx context.Context, sub subject, resource string) (TokenResponse, error) {
	now := s.now()
	at, exp, err := s.accessToken(ctx, sub, resource, now)
	if err != nil {
		return TokenResponse{}, err
	}
	secs := int(exp.Sub(now) / time.Second)
	return TokenResponse{TokenType: "Bearer", ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: at}, nil
}

// userTokenResponse is the answer of the user flows: an access token, an
// ID token, client_info and a new refresh token. The refresh token's
// record is returned for the caller to store in its transaction.
func (s *Service) userTokenResponse(ctx context.Context, sub subject, resource, nonce string) (TokenResponse, refreshGrant, error) {
	now := s.now()
	at, exp, err := s.accessToken(ctx, sub, resource, now)
	if err != nil {
		return TokenResponse{}, refreshGrant{}, err
	}
	it, err := s.idToken(ctx, sub, nonce, now)
	if err != nil {
		return TokenResponse{}, refreshGrant{}, err
	}
	rg, err := s.newRefreshGrant(sub, resource, now)
	if err != nil {
		return TokenResponse{}, refreshGrant{}, err
	}
	secs := int(exp.Sub(now) / time.Second)
	// Entra ID answers a /.default request with the resource's scopes and
	// /.default itself; MSAL refuses a response that seems to decline a
	// requested scope, so both forms are named.
	scope := resource + "/" + userImpersonated + " " + resource + "/.default"
	return TokenResponse{TokenType: "Bearer", Scope: scope, ExpiresIn: secs, ExtExpiresIn: secs, AccessToken: at,
		RefreshToken: rg.token, IDToken: it, ClientInfo: clientInfo(sub.user.OID, sub.tenantID)}, rg, nil
}
