package identity

import (
	"context"
	"log/slog"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

// Grant types.
const (
	GrantClientCredentials = "client_credentials"
	GrantDeviceCode        = "urn:ietf:params:oauth:grant-type:device_code"
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
)

// TokenRequest is a token endpoint request as the surface parsed it.
// Credentials are secret.String so that logging the request is harmless.
type TokenRequest struct {
	// Tenant is the path segment: a tenant id or one of its domains.
	Tenant    string
	GrantType string
	ClientID  string
	// Client authentication: a secret (form field or HTTP Basic) or a
	// certificate assertion.
	ClientSecret        secret.String
	ClientAssertionType string
	ClientAssertion     secret.String
	Scope               string
	// Grant-specific.
	DeviceCode   secret.String
	Code         secret.String
	CodeVerifier secret.String
	RedirectURI  string
	RefreshToken secret.String
}

// LogValue names the request without its credentials.
func (r TokenRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant", clip(r.Tenant)), slog.String("grant_type", clip(r.GrantType)),
		slog.String("client_id", clip(r.ClientID)), slog.String("scope", clip(r.Scope)))
}

// Token answers a token endpoint request. Every outcome is audited in the
// tenant asked (or logged when that tenant does not exist).
func (s *Service) Token(ctx context.Context, req TokenRequest) (TokenResponse, error) {
	actor := appActor(req.ClientID, "", "", "")
	t, err := s.tenantForGrant(ctx, req.Tenant)
	if err != nil {
		s.recordRefusal(ctx, "", actor, actionToken, req.Scope, err)
		return TokenResponse{}, err
	}
	switch req.GrantType {
	case GrantClientCredentials:
		return s.clientCredentials(ctx, t, req)
	case GrantDeviceCode, "device_code":
		return s.redeemDeviceCode(ctx, t, req)
	case GrantAuthorizationCode:
		return s.redeemAuthCode(ctx, t, req)
	case GrantRefreshToken:
		return s.redeemRefreshToken(ctx, t, req)
	case "":
		err = errMissingParam("grant_type")
	default:
		err = newErr(errkind.Invalid, CodeUnsupportedGrantType, 70003, "The app requested an unsupported grant type '%s'.", clip(req.GrantType))
	}
	s.recordRefusal(ctx, t.ID, actor, actionToken, req.Scope, err)
	return TokenResponse{}, err
}

// clientCredentials issues an app token: the client authenticates, then
// its service principal must exist in the tenant asked.
func (s *Service) clientCredentials(ctx context.Context, t directory.Tenant, req TokenRequest) (TokenResponse, error) {
	actor := appActor(req.ClientID, "", "", t.ID)
	resp, target, err := func() (TokenResponse, string, error) {
		if req.ClientID == "" {
			return TokenResponse{}, req.Scope, errMissingParam("client_id")
		}
		sr, err := s.parseScope(req.Scope, t, false)
		if err != nil {
			return TokenResponse{}, req.Scope, err
		}
		app, err := s.checkedClient(ctx, t, req)
		if err != nil {
			return TokenResponse{}, sr.resource, err
		}
		sp, err := s.servicePrincipalFor(ctx, t, app)
		if err != nil {
			return TokenResponse{}, sr.resource, err
		}
		actor = appActor(app.AppID, sp.ID, app.TenantID, t.ID)
		resp, err := s.appTokenResponse(ctx, subject{tenantID: t.ID, appID: app.AppID, appName: app.DisplayName, objectID: sp.ID}, sr.resource)
		if err != nil {
			return TokenResponse{}, sr.resource, err
		}
		if err := s.recordSuccess(ctx, t.ID, actor, actionToken, sr.resource); err != nil {
			return TokenResponse{}, sr.resource, errkind.Wrap(errkind.Unavailable, "the audit log is unavailable; no token was issued", err)
		}
		return resp, sr.resource, nil
	}()
	if err != nil {
		s.recordRefusal(ctx, t.ID, actor, actionToken, target, err)
	}
	return resp, err
}

// checkedClient authenticates the client under throttling: a locked
// client or address is refused without looking at the credential, and a
// wrong credential counts against both.
func (s *Service) checkedClient(ctx context.Context, t directory.Tenant, req TokenRequest) (directory.Application, error) {
	keys := []string{clientKey(t.ID, req.ClientID), ipKey(audit.MetaFrom(ctx).ClientIP)}
	if wait, locked := s.throttle.check(s.now(), keys...); locked {
		return directory.Application{}, errThrottled(wait)
	}
	app, err := s.authenticateClient(ctx, t, req)
	if err != nil && isCredentialFailure(err) {
		s.throttle.fail(s.now(), keys...)
	}
	return app, err
}
