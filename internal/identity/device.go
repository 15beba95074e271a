package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Device code state. Keys hold hashes, never the device code itself.
const (
	kDevice   = "identity/device/"   // {sha256(device_code)} -> deviceRecord
	kUserCode = "identity/usercode/" // {user code} -> sha256(device_code)

	// userCodeAlphabet has no vowels (no words) and none of 0/O, 1/I/L,
	// so a code read aloud or from a screen is typed right.
	userCodeAlphabet = "BCDFGHJKMNPQRSTVWXZ23456789"
	userCodeLen      = 8
)

// Device code statuses.
const (
	devicePending  = "pending"
	deviceApproved = "approved"
	deviceDenied   = "denied"
)

type deviceRecord struct {
	TenantID string     `json:"tenantId"`
	ClientID string     `json:"clientId"`
	AppName  string     `json:"appName"`
	Resource string     `json:"resource"`
	UserCode string     `json:"userCode"`
	Expires  time.Time  `json:"expires"`
	Interval int        `json:"interval"`
	LastPoll time.Time  `json:"lastPoll,omitzero"`
	Status   string     `json:"status"`
	User     *grantUser `json:"user,omitempty"`
}

// DeviceAuthorization is the device authorization response (RFC 8628).
// DeviceCode is a bearer secret for the polling client only.
type DeviceAuthorization struct {
	DeviceCode      string `json:"device_code"`
	UserCode        string `json:"user_code"`
	VerificationURI string `json:"verification_uri"`
	ExpiresIn       int    `json:"expires_in"`
	Interval        int    `json:"interval"`
	Message         string `json:"message"`
}

// DeviceRequest describes a pending device code to the sign-in page.
type DeviceRequest struct {
	UserCode   string
	AppID      string
	AppName    string
	TenantID   string
	TenantName string
	Resource   string
	Expires    time.Time
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// StartDeviceCode begins a device code sign-in for a public client whose
// service principal exists in the tenant.
func (s *Service) StartDeviceCode(ctx context.Context, tenant, clientID, scope string) (DeviceAuthorization, error) {
	actor := appActor(clientID, "", "", "")
	t, err := s.tenantForGrant(ctx, tenant)
	if err != nil {
		s.recordRefusal(ctx, "", actor, actionDeviceStart, scope, err)
		return DeviceAuthorization{}, err
	}
	actor = appActor(clientID, "", "", t.ID)
	target := scope
	da, err := func() (DeviceAuthorization, error) {
		if clientID == "" {
			return DeviceAuthorization{}, errMissingParam("client_id")
		}
		app, err := s.publicClient(ctx, t, clientID)
		if err != nil {
			return DeviceAuthorization{}, err
		}
		sr, err := s.parseScope(scope, t, true)
		if err != nil {
			return DeviceAuthorization{}, err
		}
		target = sr.resource
		sp, err := s.servicePrincipalFor(ctx, t, app)
		if err != nil {
			return DeviceAuthorization{}, err
		}
		actor = appActor(app.AppID, sp.ID, app.TenantID, t.ID)
		deviceCode, err := s.randomID(32)
		if err != nil {
			return DeviceAuthorization{}, err
		}
		now := s.now()
		interval := int((s.devInterval + time.Second - 1) / time.Second)
		rec := deviceRecord{TenantID: t.ID, ClientID: app.AppID, AppName: app.DisplayName, Resource: sr.resource,
			Expires: now.Add(DeviceCodeLifetime).UTC(), Interval: interval, Status: devicePending}
		h := hashSecret(deviceCode)
		for attempt := 0; ; attempt++ {
			if rec.UserCode, err = newUserCode(s.rand); err != nil {
				return DeviceAuthorization{}, err
			}
			b, _ := json.Marshal(rec)
			err = s.store.Update(ctx, func(tx storage.Tx) error {
				if _, err := tx.Put(kUserCode+rec.UserCode, []byte(h), storage.MustNotExist); err != nil {
					return err
				}
				if _, err := tx.Put(kDevice+h, b, storage.MustNotExist); err != nil {
					return err
				}
				return s.recordTx(ctx, tx, t.ID, actor, actionDeviceStart, sr.resource)
			})
			if errors.Is(err, storage.ErrConflict) && attempt < 5 {
				continue // the user code is taken by a live sign-in: draw another
			}
			if err != nil {
				return DeviceAuthorization{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
			}
			break
		}
		uri := s.DeviceLoginURL()
		return DeviceAuthorization{DeviceCode: deviceCode, UserCode: formatUserCode(rec.UserCode), VerificationURI: uri,
			ExpiresIn: int(DeviceCodeLifetime / time.Second), Interval: interval,
			Message: fmt.Sprintf("To sign in, use a web browser to open the page %s and enter the code %s to authenticate.", uri, formatUserCode(rec.UserCode))}, nil
	}()
	if err != nil {
		s.recordRefusal(ctx, t.ID, actor, actionDeviceStart, target, err)
	}
	return da, err
}

// publicClient returns an application that may use the public-client
// flows (device code; authorization code without a secret).
func (s *Service) publicClient(ctx context.Context, t directory.Tenant, clientID string) (directory.Application, error) {
	app, err := s.dir.Application(ctx, clientID)
	if errors.Is(err, directory.ErrAppNotFound) {
		return app, newErr(errkind.PermissionDenied, CodeUnauthorizedClient, 700016,
			"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
			clip(clientID), t.ID)
	}
	if err != nil {
		return app, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	if !app.PublicClient {
		return app, newErr(errkind.Unauthenticated, CodeInvalidClient, 7000218,
			"The request body must contain the following parameter: 'client_assertion' or 'client_secret'. The application %s is not a public client, so it cannot use the device code flow.", app.AppID)
	}
	return app, nil
}

func newUserCode(r io.Reader) (string, error) {
	b := make([]byte, 0, userCodeLen)
	var one [1]byte
	const limit = 256 - 256%len(userCodeAlphabet) // an int: never wraps to 0
	for len(b) < userCodeLen {
		if _, err := io.ReadFull(r, one[:]); err != nil {
			return "", fmt.Errorf("identity: reading random: %w", err)
		}
		if int(one[0]) >= limit {
			continue // rejection sampling keeps the letters equally likely
		}
		b = append(b, userCodeAlphabet[int(one[0])%len(userCodeAlphabet)])
	}
	return string(b), nil
}

func formatUserCode(c string) string { return c[:4] + "-" + c[4:] }

// normalizeUserCode accepts what a person types: any case, with or
// without the dash and spaces.
func normalizeUserCode(in string) (string, bool) {
	if len(in) > 32 {
		return "", false
	}
	var b strings.Builder
	for _, r := range strings.ToUpper(in) {
		switch {
		case r == '-' || r == ' ':
		case strings.ContainsRune(userCodeAlphabet, r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return b.String(), b.Len() == userCodeLen
}

// errBadUserCode is the one answer for a code that is malformed, unknown,
// expired or already used, so that the page tells a guesser nothing.
func errBadUserCode() *Error {
	return newErr(errkind.NotFound, CodeInvalidGrant, 0, "The code you entered is not valid or has expired. Check the code on your device and try again.")
}

// lookupUserCode returns the pending device record a user code names.
// Wrong codes count against the client address.
func (s *Service) lookupUserCode(ctx context.Context, userCode string) (string, deviceRecord, error) {
	var rec deviceRecord
	ip := ipKey(audit.MetaFrom(ctx).ClientIP)
	now := s.now()
	if wait, locked := s.throttle.check(now, ip); locked {
		return "", rec, errThrottled(wait)
	}
	code, ok := normalizeUserCode(userCode)
	var h string
	err := error(errBadUserCode())
	if ok {
		err = s.store.View(ctx, func(tx storage.Tx) error {
			e, err := tx.Get(kUserCode + code)
			if err != nil {
				return err
			}
			h = string(e.Value)
			d, err := tx.Get(kDevice + h)
			if err != nil {
				return err
			}
			return json.Unmarshal(d.Value, &rec)
		})
		if err == nil && (rec.Status != devicePending || !now.Before(rec.Expires)) {
			err = errBadUserCode()
		}
		if errors.Is(err, storage.ErrNotFound) {
			err = errBadUserCode()
		}
	}
	if err != nil {
		if _, ok := errors.AsType[*Error](err); ok {
			s.throttle.fail(now, ip)
			return "", rec, err
		}
		return "", rec, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
	}
	return h, rec, nil
}

// DescribeUserCode tells the sign-in page what a user code is for.
func (s *Service) DescribeUserCode(ctx context.Context, userCode string) (DeviceRequest, error) {
	_, rec, err := s.lookupUserCode(ctx, userCode)
	if err != nil {
		return DeviceRequest{}, err
	}
	name := rec.TenantID
	if t, err := s.dir.Tenant(ctx, rec.TenantID); err == nil {
		name = tenantName(t)
	}
	return DeviceRequest{UserCode: formatUserCode(rec.UserCode), AppID: rec.ClientID, AppName: rec.AppName, TenantID: rec.TenantID,
		TenantName: name, Resource: rec.Resource, Expires: rec.Expires}, nil
}

// ApproveDeviceCode signs the user in with their password and approves
// the device code; the polling client then gets its tokens.
func (s *Service) ApproveDeviceCode(ctx context.Context, userCode, upn string, password secret.String) (DeviceRequest, error) {
	h, rec, err := s.lookupUserCode(ctx, userCode)
	if err != nil {
		return DeviceRequest{}, err
	}
	u, err := s.signIn(ctx, rec.TenantID, upn, password, actionDeviceApprove, rec.Resource)
	if err != nil {
		return DeviceRequest{}, err
	}
	user := &grantUser{OID: u.ID, UPN: u.UserPrincipalName, Name: u.DisplayName}
	err = s.decideDevice(ctx, h, deviceApproved, user, userActor(u.ID, u.UserPrincipalName), actionDeviceApprove)
	if err != nil {
		return DeviceRequest{}, err
	}
	return DeviceRequest{UserCode: formatUserCode(rec.UserCode), AppID: rec.ClientID, AppName: rec.AppName,
		TenantID: rec.TenantID, Resource: rec.Resource, Expires: rec.Expires}, nil
}

// DenyDeviceCode declines a device code: the polling client gets
// access_denied. Knowing the code is enough, as on Entra ID's page.
func (s *Service) DenyDeviceCode(ctx context.Context, userCode string) error {
	h, _, err := s.lookupUserCode(ctx, userCode)
	if err != nil {
		return err
	}
	return s.decideDevice(ctx, h, deviceDenied, nil, audit.Actor{Type: "user"}, actionDeviceDeny)
}

// decideDevice moves a pending device code to approved or denied. It
// reads the record again inside the transaction: the client's polls
// write to it meanwhile, and must not make the user's decision fail.
func (s *Service) decideDevice(ctx context.Context, h, status string, user *grantUser, actor audit.Actor, action string) error {
	now := s.now()
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kDevice + h)
		if err != nil {
			return err
		}
		var rec deviceRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return err
		}
		if rec.Status != devicePending || !now.Before(rec.Expires) {
			return errBadUserCode()
		}
		rec.Status, rec.User = status, user
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		if _, err := tx.Put(kDevice+h, b, e.Version); err != nil {
			return err
		}
		return s.recordTx(ctx, tx, rec.TenantID, actor, action, rec.Resource)
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrConflict):
		return errBadUserCode()
	case errkind.KindOf(err) == errkind.NotFound:
		return err // errBadUserCode from inside the transaction
	}
	return errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
}

// signIn checks a user's password under throttling (per user and per
// address) and audits a failure.
func (s *Service) signIn(ctx context.Context, tid, upn string, password secret.String, action, target string) (directory.User, error) {
	keys := []string{userKey(tid, upn), ipKey(audit.MetaFrom(ctx).ClientIP)}
	now := s.now()
	var u directory.User
	var err error
	if wait, locked := s.throttle.check(now, keys...); locked {
		err = errThrottled(wait)
	} else if upn == "" || password.IsZero() {
		err = newErr(errkind.Invalid, CodeInvalidRequest, 900144, "Enter your user name and password.")
	} else if u, err = s.dir.VerifyPassword(ctx, tid, upn, password); errors.Is(err, directory.ErrBadCredentials) {
		s.throttle.fail(now, keys...)
		err = errBadPassword()
	} else if err != nil {
		return u, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	if err != nil {
		s.recordRefusal(ctx, tid, userActor("", upn), action, target, err)
	}
	return u, err
}

// redeemDeviceCode is the polling client's side (RFC 8628 §3.4).
func (s *Service) redeemDeviceCode(ctx context.Context, t directory.Tenant, req TokenRequest) (TokenResponse, error) {
	actor := appActor(req.ClientID, "", "", t.ID)
	target := ""
	resp, err := func() (TokenResponse, error) {
		if req.DeviceCode.IsZero() {
			return TokenResponse{}, errMissingParam("device_code")
		}
		if req.ClientID == "" {
			return TokenResponse{}, errMissingParam("client_id")
		}
		h := hashSecret(req.DeviceCode.Reveal())
		badCode := newErr(errkind.Invalid, CodeInvalidGrant, 70000, "The provided value for the input parameter 'device_code' is not valid.")
		var rec deviceRecord
		e, err := storage.Get(ctx, s.store, kDevice+h)
		if errors.Is(err, storage.ErrNotFound) {
			return TokenResponse{}, badCode
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
		}
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return TokenResponse{}, fmt.Errorf("identity: decoding device code: %w", err)
		}
		if rec.TenantID != t.ID || !strings.EqualFold(rec.ClientID, req.ClientID) {
			return TokenResponse{}, badCode
		}
		target = rec.Resource
		now := s.now()
		if !now.Before(rec.Expires) {
			return TokenResponse{}, newErr(errkind.Invalid, CodeExpiredToken, 70020,
				"The provided value for the input parameter 'device_code' is not valid. This device code has expired.")
		}
		switch rec.Status {
		case deviceDenied:
			_ = s.store.Update(ctx, func(tx storage.Tx) error { return tx.Delete(kDevice+h, e.Version) })
			return TokenResponse{}, newErr(errkind.PermissionDenied, CodeAccessDenied, 0, "The user declined the sign-in request.")
		case devicePending:
			tooFast := !rec.LastPoll.IsZero() && now.Sub(rec.LastPoll) < time.Duration(rec.Interval)*time.Second
			rec.LastPoll = now.UTC()
			b, _ := json.Marshal(rec)
			// Losing this write to a concurrent poll or the approval is
			// harmless: the client polls again.
			_ = s.store.Update(ctx, func(tx storage.Tx) error { _, err := tx.Put(kDevice+h, b, e.Version); return err })
			if tooFast {
				return TokenResponse{}, newErr(errkind.Invalid, CodeSlowDown, 0,
					"Polling too fast: wait at least %d seconds between requests.", rec.Interval)
			}
			return TokenResponse{}, newErr(errkind.Invalid, CodeAuthorizationPending, 70016,
				"OAuth 2.0 device flow error. Authorization is pending. Continue polling.")
		case deviceApproved:
		default:
			return TokenResponse{}, badCode
		}
		app, err := s.dir.Application(ctx, rec.ClientID)
		if err != nil {
			return TokenResponse{}, badCode.withCause(err)
		}
		// The service principal may have been removed since the start.
		if _, err := s.servicePrincipalFor(ctx, t, app); err != nil {
			return TokenResponse{}, err
		}
		actor = userActor(rec.User.OID, rec.User.UPN)
		sub := subject{tenantID: t.ID, appID: app.AppID, appName: app.DisplayName, objectID: rec.User.OID, user: rec.User}
		resp, rg, err := s.userTokenResponse(ctx, sub, rec.Resource, "")
		if err != nil {
			return TokenResponse{}, err
		}
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			if err := tx.Delete(kDevice+h, e.Version); err != nil {
				return err
			}
			if err := tx.Delete(kUserCode+rec.UserCode, storage.AnyVersion); err != nil {
				return err
			}
			if err := rg.put(tx); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, t.ID, actor, actionToken, rec.Resource)
		})
		if errors.Is(err, storage.ErrConflict) {
			return TokenResponse{}, badCode // a concurrent poll redeemed it
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; no token was issued", err)
		}
		return resp, nil
	}()
	if err != nil {
		if c := codeOf(err); c != CodeAuthorizationPending && c != CodeSlowDown {
			// Pending polls are the normal rhythm of the flow, not refusals.
			s.recordRefusal(ctx, t.ID, actor, actionToken, target, err)
		}
	}
	return resp, err
}

func codeOf(err error) string {
	if e, ok := errkind.As(err); ok {
		return e.Code
	}
	return ""
}
