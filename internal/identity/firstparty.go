package identity

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
)

// FirstPartyToken issues an access token for resource to appID, one of
// the operator's first-party workload applications (Exchange Online,
// SharePoint Online, M365DataAtRestEncryption, Onboarding), in customer
// tenant tenantID. The workloads run inside this service, so they ask in
// process rather than presenting a client secret to the token endpoint;
// what they get is exactly what client_credentials would give (same
// claims, same signing key, same lifetime), and under the same rule: the
// application's service principal must exist and be enabled in tenantID.
// That rule is what lets a tenant's administrators revoke a workload by
// deleting or disabling its service principal. Issuance and refusals are
// audited in tenantID like token endpoint requests.
//
// An application that is not a confidential first-party application
// registered in the operator tenant is refused (PermissionDenied,
// unauthorized_client), as is a missing or disabled service principal
// (AADSTS7000229, AADSTS7000112); an unknown tenant is NotFound
// (invalid_tenant); resource must be one this service issues tokens for.
func (s *Service) FirstPartyToken(ctx context.Context, tenantID, appID, resource string) (token string, expires time.Time, err error) {
	actor := appActor(appID, "", "", "")
	t, err := s.ResolveTenant(ctx, tenantID)
	if err != nil {
		if _, ok := errors.AsType[*Error](err); !ok {
			err = errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
		}
		s.recordRefusal(ctx, "", actor, actionToken, resource, err)
		return "", time.Time{}, err
	}
	actor = appActor(appID, "", "", t.ID)
	token, expires, err = func() (string, time.Time, error) {
		// The resource is checked as a client_credentials scope would be,
		// so both paths accept the same audiences.
		sr, err := s.parseScope(resource+"/.default", t, false)
		if err != nil {
			return "", time.Time{}, err
		}
		app, err := s.firstPartyApp(ctx, appID)
		if err != nil {
			return "", time.Time{}, err
		}
		sp, err := s.servicePrincipalFor(ctx, t, app)
		if err != nil {
			return "", time.Time{}, err
		}
		actor = appActor(app.AppID, sp.ID, app.TenantID, t.ID)
		tok, exp, err := s.accessToken(ctx, subject{tenantID: t.ID, appID: app.AppID, appName: app.DisplayName, objectID: sp.ID}, sr.resource, s.now())
		if err != nil {
			return "", time.Time{}, err
		}
		if err := s.recordSuccess(ctx, t.ID, actor, actionToken, sr.resource); err != nil {
			return "", time.Time{}, errkind.Wrap(errkind.Unavailable, "the audit log is unavailable; no token was issued", err)
		}
		return tok, exp, nil
	}()
	if err != nil {
		s.recordRefusal(ctx, t.ID, actor, actionToken, resource, err)
		return "", time.Time{}, err
	}
	return token, expires, nil
}

// firstPartyApp returns appID's registration if it is one of the
// operator's confidential first-party applications. Both the well-known
// list and the registration's home tenant are checked, so that an
// application registered elsewhere under a well-known id (which the
// directory should never allow) still gets nothing in process.
func (s *Service) firstPartyApp(ctx context.Context, appID string) (directory.Application, error) {
	var none directory.Application
	known := false
	for _, fp := range directory.FirstPartyApps {
		if strings.EqualFold(fp.AppID, appID) && !fp.PublicClient {
			known = true
			break
		}
	}
	if !known {
		return none, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 0,
			"Application '%s' is not a first-party workload application of this service; only those get tokens in process. Other applications use the token endpoint with their own credential.",
			clip(appID))
	}
	app, err := s.dir.Application(ctx, appID)
	if errors.Is(err, directory.ErrAppNotFound) {
		return none, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 700016,
			"Application with identifier '%s' is not registered in the operator tenant; the server registers its first-party applications when it starts.", clip(appID))
	}
	if err != nil {
		return none, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	home, err := s.dir.Tenant(ctx, app.TenantID)
	if err != nil && !errors.Is(err, directory.ErrTenantNotFound) {
		return none, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	if err != nil || !home.Operator {
		return none, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 0,
			"Application '%s' is registered outside the operator tenant, so it is not this service's first-party application.", app.AppID)
	}
	return app, nil
}
