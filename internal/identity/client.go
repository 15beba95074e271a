package identity

import (
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// ClientAssertionType is the only client_assertion_type accepted.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

const (
	maxAssertionLen = 16 << 10
	maxJTILen       = 256
	kJTI            = "identity/jti/" // {sha256(client, jti)} -> expiry
)

// hasClientCredential reports whether the request authenticates its client.
func hasClientCredential(req TokenRequest) bool {
	return !req.ClientSecret.IsZero() || !req.ClientAssertion.IsZero() || req.ClientAssertionType != ""
}

// authenticateClient checks the client's secret or certificate assertion
// and returns the application. Every credential failure is an *Error of
// kind Unauthenticated that counts towards throttling.
func (s *Service) authenticateClient(ctx context.Context, t directory.Tenant, req TokenRequest) (directory.Application, error) {
	hasSecret := !req.ClientSecret.IsZero()
	hasAssertion := !req.ClientAssertion.IsZero() || req.ClientAssertionType != ""
	switch {
	case hasSecret && hasAssertion:
		return directory.Application{}, newErr(errkind.Invalid, CodeInvalidRequest, 0,
			"The request must use one client authentication method: client_secret or client_assertion, not both.")
	case hasSecret:
		// No shortcut before the directory: it does the same work for an
		// unknown client as for a wrong secret, so timing tells nothing.
		app, err := s.dir.VerifyClientSecret(ctx, req.ClientID, req.ClientSecret)
		if errors.Is(err, directory.ErrBadCredentials) {
			return app, errBadClientSecret()
		}
		if err != nil {
			return app, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
		}
		return app, nil
	case hasAssertion:
		if req.ClientAssertionType != ClientAssertionType {
			return directory.Application{}, newErr(errkind.Invalid, CodeInvalidRequest, 0,
				"The client_assertion_type must be %s.", ClientAssertionType)
		}
		if req.ClientAssertion.IsZero() {
			return directory.Application{}, errMissingParam("client_assertion")
		}
		return s.verifyAssertion(ctx, t, req)
	default:
		return directory.Application{}, newErr(errkind.Unauthenticated, CodeInvalidClient, 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
	}
}

// assertionHeader is what the JOSE header of a client assertion names.
type assertionHeader struct {
	alg, x5t, x5tS256 string
}

// parseAssertion parses a client assertion without verifying it. It is
// the first code to touch the untrusted bytes, and is fuzzed.
func parseAssertion(raw string) (*jwt.JSONWebToken, assertionHeader, error) {
	var h assertionHeader
	if len(raw) > maxAssertionLen {
		return nil, h, errBadAssertion("it is larger than 16 KiB")
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.PS256})
	if err != nil {
		return nil, h, errBadAssertion("it is not a compact JWS signed with RS256 or PS256").withCause(err)
	}
	if len(tok.Headers) != 1 {
		return nil, h, errBadAssertion("it must carry exactly one signature")
	}
	hd := tok.Headers[0]
	h.alg = hd.Algorithm
	var ok1, ok2 bool
	h.x5t, ok1 = thumbprintHeader(hd, "x5t", 20)
	h.x5tS256, ok2 = thumbprintHeader(hd, "x5t#S256", 32)
	if !ok1 || !ok2 {
		return nil, h, errBadAssertion("its x5t or x5t#S256 header is not a base64 certificate thumbprint")
	}
	if h.x5t == "" && h.x5tS256 == "" {
		return nil, h, errBadAssertion("its header names no certificate (x5t or x5t#S256)")
	}
	return tok, h, nil
}

// thumbprintHeader returns the header's thumbprint re-encoded as base64url
// without padding, the form the directory stores. Clients differ: MSAL
// sends standard base64 with padding, RFC 7515 says base64url.
func thumbprintHeader(h jose.Header, name string, size int) (string, bool) {
	v, present := h.ExtraHeaders[jose.HeaderKey(name)]
	if !present {
		return "", true
	}
	str, ok := v.(string)
	if !ok || len(str) > 64 {
		return "", false
	}
	str = strings.TrimRight(str, "=")
	b, err := base64.RawURLEncoding.DecodeString(str)
	if err != nil {
		b, err = base64.RawStdEncoding.DecodeString(str)
	}
	if err != nil || len(b) != size {
		return "", false
	}
	return base64.RawURLEncoding.EncodeToString(b), true
}

// verifyAssertion authenticates a client by a JWT signed with the key of a
// certificate registered on the application (RFC 7523, as Entra ID does).
func (s *Service) verifyAssertion(ctx context.Context, t directory.Tenant, req TokenRequest) (directory.Application, error) {
	var none directory.Application
	tok, h, err := parseAssertion(req.ClientAssertion.Reveal())
	if err != nil {
		return none, err
	}
	cert, err := s.dir.CertificateFor(ctx, req.ClientID, h.x5t, h.x5tS256)
	if err != nil {
		if errors.Is(err, directory.ErrBadCredentials) {
			return none, newErr(errkind.Unauthenticated, CodeInvalidClient, 700027,
				"The certificate with the identifier used to sign the client assertion is not registered on the application, or is outside its validity period.")
		}
		return none, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() < 2048 || pub.N.BitLen() > jose.MaxRSAModulusBits {
		return none, errBadAssertion("the registered certificate's key is not RSA of 2048 to 4096 bits")
	}
	var c jwt.Claims
	if err := tok.Claims(pub, &c); err != nil {
		return none, errBadAssertion("its signature is not valid for the registered certificate").withCause(err)
	}
	if !strings.EqualFold(c.Issuer, req.ClientID) || !strings.EqualFold(c.Subject, req.ClientID) {
		return none, newErr(errkind.Unauthenticated, CodeInvalidClient, 700021,
			"Client assertion application identifier doesn't match 'client_id' parameter: iss and sub must both be the client id.")
	}
	if !s.assertionAudienceOK(c.Audience, req.Tenant, t.ID) {
		return none, errBadAssertion("its audience must be the token endpoint " + s.TokenEndpoint(t.ID))
	}
	now := s.now()
	switch {
	case c.Expiry == nil:
		return none, errBadAssertion("it has no exp claim")
	case !now.Before(c.Expiry.Time().Add(ClockSkew)),
		c.NotBefore != nil && now.Add(ClockSkew).Before(c.NotBefore.Time()),
		c.IssuedAt != nil && now.Add(ClockSkew).Before(c.IssuedAt.Time()):
		return none, newErr(errkind.Unauthenticated, CodeInvalidClient, 700024, "Client assertion is not within its valid time range.")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + ClockSkew)):
		return none, errBadAssertion("it expires more than 10 minutes ahead")
	case c.ID == "" || len(c.ID) > maxJTILen:
		return none, errBadAssertion("it needs a jti claim of at most 256 characters")
	}
	if err := s.useJTI(ctx, req.ClientID, c.ID, c.Expiry.Time()); err != nil {
		return none, err
	}
	app, err := s.dir.Application(ctx, req.ClientID)
	if err != nil {
		return none, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	return app, nil
}

func (s *Service) assertionAudienceOK(aud jwt.Audience, pathTenant, tid string) bool {
	for _, a := range aud {
		if a == s.TokenEndpoint(tid) || strings.EqualFold(a, s.TokenEndpoint(pathTenant)) {
			return true
		}
	}
	return false
}

// useJTI records an assertion's jti until the assertion expires, and
// refuses one already seen. The set is in the store, so a replay to
// another node is refused too.
func (s *Service) useJTI(ctx context.Context, clientID, jti string, exp time.Time) error {
	sum := sha256.Sum256([]byte(strings.ToLower(clientID) + "\x00" + jti))
	key := kJTI + hex.EncodeToString(sum[:])
	rec, _ := json.Marshal(expiring{Expires: exp.Add(ClockSkew).UTC()})
	now := s.now()
	replay := false
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		replay = false
		e, err := tx.Get(key)
		if errors.Is(err, storage.ErrNotFound) {
			_, err = tx.Put(key, rec, storage.MustNotExist)
			return err
		}
		if err != nil {
			return err
		}
		var old expiring
		if json.Unmarshal(e.Value, &old) == nil && now.Before(old.Expires) {
			replay = true
			return nil
		}
		_, err = tx.Put(key, rec, e.Version)
		return err
	})
	if errors.Is(err, storage.ErrConflict) {
		replay = true // a concurrent request used it first
	} else if err != nil {
		return errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
	}
	if replay {
		return errBadAssertion("its jti was already used; a client assertion is good for one request")
	}
	return nil
}

// expiring is the common part of every record this package sweeps.
type expiring struct {
	Expires time.Time `json:"expires"`
}

// servicePrincipalFor enforces the cross-tenant rule: an application gets
// a token in tenant t only while its service principal exists there and
// is enabled.
func (s *Service) servicePrincipalFor(ctx context.Context, t directory.Tenant, app directory.Application) (directory.ServicePrincipal, error) {
	sp, err := s.dir.ServicePrincipalByAppID(ctx, t.ID, app.AppID)
	if errors.Is(err, directory.ErrSPNotFound) {
		if !app.MultiTenant && app.TenantID != t.ID {
			return sp, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 700016,
				"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
				app.AppID, t.ID)
		}
		return sp, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 7000229,
			"The client application %s is missing service principal in the tenant %s. A tenant administrator must create it first (Microsoft Graph: POST /v1.0/servicePrincipals with {\"appId\":\"%s\"}).",
			app.AppID, t.ID, app.AppID)
	}
	if err != nil {
		return sp, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	if !sp.AccountEnabled {
		return sp, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 7000112,
			"Application '%s'(%s) is disabled in the tenant %s.", app.AppID, app.DisplayName, t.ID)
	}
	return sp, nil
}

// isCredentialFailure reports whether err is a wrong credential, which
// counts towards throttling (as opposed to a refusal after success).
func isCredentialFailure(err error) bool {
	e, ok := errors.AsType[*Error](err)
	if !ok {
		return false
	}
	return errkind.KindOf(e) == errkind.Unauthenticated
}
