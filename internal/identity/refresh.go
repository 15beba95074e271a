package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// kRefresh holds refresh tokens by hash: the token itself is never stored.
const kRefresh = "identity/refresh/" // {sha256(token)} -> refreshRecord

type refreshRecord struct {
	TenantID string    `json:"tenantId"`
	ClientID string    `json:"clientId"`
	User     grantUser `json:"user"`
	Resource string    `json:"resource"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
}

// refreshGrant is a new refresh token and the record to store for it.
type refreshGrant struct {
	token string
	key   string
	rec   refreshRecord
}

func (s *Service) newRefreshGrant(sub subject, resource string, now time.Time) (refreshGrant, error) {
	tok, err := s.randomID(32)
	if err != nil {
		return refreshGrant{}, err
	}
	return refreshGrant{token: tok, key: kRefresh + hashSecret(tok), rec: refreshRecord{TenantID: sub.tenantID,
		ClientID: sub.appID, User: *sub.user, Resource: resource, Created: now.UTC(), Expires: now.Add(RefreshTokenLifetime).UTC()}}, nil
}

func (g refreshGrant) put(tx storage.Tx) error {
	b, err := json.Marshal(g.rec)
	if err != nil {
		return fmt.Errorf("identity: encoding refresh token: %w", err)
	}
	_, err = tx.Put(g.key, b, storage.MustNotExist)
	return err
}

func errBadRefreshToken() *Error {
	return newErr(errkind.Invalid, CodeInvalidGrant, 70000,
		"The provided value for the input parameter 'refresh_token' is not valid: it is unknown, was already used (refresh tokens are single-use), was revoked, or belongs to another client or tenant.")
}

// redeemRefreshToken exchanges a refresh token for tokens, possibly for
// another resource, and rotates it: the old one stops working.
func (s *Service) redeemRefreshToken(ctx context.Context, t directory.Tenant, req TokenRequest) (TokenResponse, error) {
	actor := appActor(req.ClientID, "", "", t.ID)
	target := req.Scope
	resp, err := func() (TokenResponse, error) {
		if req.RefreshToken.IsZero() {
			return TokenResponse{}, errMissingParam("refresh_token")
		}
		if req.ClientID == "" {
			return TokenResponse{}, errMissingParam("client_id")
		}
		h := hashSecret(req.RefreshToken.Reveal())
		e, err := storage.Get(ctx, s.store, kRefresh+h)
		if errors.Is(err, storage.ErrNotFound) {
			return TokenResponse{}, errBadRefreshToken()
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the token service's store is unavailable; retry later", err)
		}
		var rec refreshRecord
		if err := json.Unmarshal(e.Value, &rec); err != nil {
			return TokenResponse{}, fmt.Errorf("identity: decoding refresh token: %w", err)
		}
		if rec.TenantID != t.ID || !strings.EqualFold(rec.ClientID, req.ClientID) {
			return TokenResponse{}, errBadRefreshToken()
		}
		actor = userActor(rec.User.OID, rec.User.UPN)
		if !s.now().Before(rec.Expires) {
			return TokenResponse{}, newErr(errkind.Invalid, CodeInvalidGrant, 70008,
				"The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
		}
		app, err := s.grantClient(ctx, t, req, rec.ClientID)
		if err != nil {
			return TokenResponse{}, err
		}
		resource := rec.Resource
		if strings.TrimSpace(req.Scope) != "" {
			sr, err := s.parseScope(req.Scope, t, true)
			if err != nil {
				return TokenResponse{}, err
			}
			resource = sr.resource
		}
		target = resource
		u, err := s.dir.User(ctx, directory.System, t.ID, rec.User.OID)
		if errors.Is(err, directory.ErrUserNotFound) || (err == nil && !u.AccountEnabled) {
			return TokenResponse{}, newErr(errkind.PermissionDenied, CodeInvalidGrant, 50057, "The user account is disabled or was deleted.")
		}
		if err != nil {
			return TokenResponse{}, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
		}
		if _, err := s.servicePrincipalFor(ctx, t, app); err != nil {
			return TokenResponse{}, err
		}
		user := &grantUser{OID: u.ID, UPN: u.UserPrincipalName, Name: u.DisplayName}
		sub := subject{tenantID: t.ID, appID: app.AppID, appName: app.DisplayName, objectID: u.ID, user: user}
		resp, rg, err := s.userTokenResponse(ctx, sub, resource, "")
		if err != nil {
			return TokenResponse{}, err
		}
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			if err := tx.Delete(kRefresh+h, e.Version); err != nil {
				return err
			}
			if err := rg.put(tx); err != nil {
				return err
			}
			return s.recordTx(ctx, tx, t.ID, actor, actionToken, resource)
		})
		if errors.Is(err, storage.ErrConflict) {
			return TokenResponse{}, errBadRefreshToken() // used concurrently: one use wins
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

// grantClient returns the application redeeming a user grant. A public
// client needs no credential (PKCE or the grant itself binds it); a
// confidential client must authenticate, and so must anyone who sends a
// credential.
func (s *Service) grantClient(ctx context.Context, t directory.Tenant, req TokenRequest, clientID string) (directory.Application, error) {
	app, err := s.dir.Application(ctx, clientID)
	if err != nil {
		if errors.Is(err, directory.ErrAppNotFound) {
			return app, newErr(errkind.Invalid, CodeInvalidGrant, 700016, "Application with identifier '%s' was not found.", clip(clientID))
		}
		return app, errkind.Wrap(errkind.Unavailable, "the directory is unavailable; retry later", err)
	}
	if app.PublicClient && !hasClientCredential(req) {
		return app, nil
	}
	return s.checkedClient(ctx, t, req)
}
