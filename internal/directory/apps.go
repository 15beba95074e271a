package directory

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// Application is an app registration. It lives in its home tenant; a
// multi-tenant application can also get a service principal in others.
type Application struct {
	ObjectID     string                  `json:"id"`
	AppID        string                  `json:"appId"`
	TenantID     string                  `json:"tenantId"`
	DisplayName  string                  `json:"displayName"`
	MultiTenant  bool                    `json:"multiTenant"`
	PublicClient bool                    `json:"publicClient"`
	RedirectURIs []string                `json:"redirectUris,omitempty"`
	Passwords    []PasswordCredential    `json:"passwordCredentials"`
	Certificates []CertificateCredential `json:"keyCredentials"`
	CreatedAt    time.Time               `json:"createdDateTime"`
}

// SignInAudience is Graph's name for the multi-tenant flag.
func (a Application) SignInAudience() string {
	if a.MultiTenant {
		return "AzureADMultipleOrgs"
	}
	return "AzureADMyOrg"
}

// PasswordCredential is a client secret; only its hash is stored.
type PasswordCredential struct {
	KeyID       string    `json:"keyId"`
	DisplayName string    `json:"displayName,omitempty"`
	Hint        string    `json:"hint"`
	Start       time.Time `json:"startDateTime"`
	End         time.Time `json:"endDateTime"`
	Hash        []byte    `json:"hash"`
}

// CertificateCredential is a certificate whose key signs client assertions.
type CertificateCredential struct {
	KeyID       string `json:"keyId"`
	DisplayName string `json:"displayName,omitempty"`
	// Thumbprint is the base64url SHA-1 of the certificate, the x5t a
	// client assertion names; ThumbprintS256 is the x5t#S256.
	Thumbprint     string    `json:"customKeyIdentifier"`
	ThumbprintS256 string    `json:"thumbprintS256"`
	Start          time.Time `json:"startDateTime"`
	End            time.Time `json:"endDateTime"`
	DER            []byte    `json:"key"`
}

// ServicePrincipal is an application's instance in one tenant.
type ServicePrincipal struct {
	ID                    string    `json:"id"`
	TenantID              string    `json:"tenantId"`
	AppID                 string    `json:"appId"`
	AppOwnerTenantID      string    `json:"appOwnerOrganizationId"`
	DisplayName           string    `json:"displayName"`
	ServicePrincipalNames []string  `json:"servicePrincipalNames"`
	AccountEnabled        bool      `json:"accountEnabled"`
	CreatedAt             time.Time `json:"createdDateTime"`
}

// AppSpec describes a new application.
type AppSpec struct {
	DisplayName  string
	MultiTenant  bool
	PublicClient bool
	RedirectURIs []string
	// AppID forces the application id, for the well-known first-party apps.
	AppID string
}

// Limits on credentials, as Entra ID enforces.
const (
	maxPasswords      = 16
	maxCertificates   = 16
	DefaultSecretLife = 180 * 24 * time.Hour
	MaxSecretLife     = 2 * 365 * 24 * time.Hour
	maxDisplayName    = 256
	maxRedirectURIs   = 64
	maxRedirectURILen = 512
)

// CreateApplication registers an application in tenant tid and creates its
// service principal there, as the portal does.
func (d *Directory) CreateApplication(ctx context.Context, c Caller, tid string, spec AppSpec) (Application, ServicePrincipal, error) {
	const action = "directory/applications/create"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, spec.DisplayName, err)
		return Application{}, ServicePrincipal{}, err
	}
	name := strings.TrimSpace(spec.DisplayName)
	if name == "" || len(name) > maxDisplayName {
		return Application{}, ServicePrincipal{}, errkind.Errorf(errkind.Invalid, "the application needs a displayName of 1 to %d characters", maxDisplayName)
	}
	if err := checkRedirectURIs(spec.RedirectURIs); err != nil {
		return Application{}, ServicePrincipal{}, err
	}
	t, err := d.Tenant(ctx, tid)
	if err != nil {
		return Application{}, ServicePrincipal{}, err
	}
	appID := lower(spec.AppID)
	if appID == "" {
		if appID, err = newID(d.rand); err != nil {
			return Application{}, ServicePrincipal{}, err
		}
	} else if !IsGUID(appID) {
		return Application{}, ServicePrincipal{}, errkind.Errorf(errkind.Invalid, "the appId %q is not a GUID", spec.AppID)
	}
	objID, err := newID(d.rand)
	if err != nil {
		return Application{}, ServicePrincipal{}, err
	}
	now := d.now().UTC()
	app := Application{ObjectID: objID, AppID: appID, TenantID: t.ID, DisplayName: name, MultiTenant: spec.MultiTenant,
		PublicClient: spec.PublicClient, RedirectURIs: spec.RedirectURIs, Passwords: []PasswordCredential{},
		Certificates: []CertificateCredential{}, CreatedAt: now}
	var sp ServicePrincipal
	err = d.store.Update(ctx, func(tx storage.Tx) error {
		if err := storage.PutJSON(tx, kApp+appID, app, storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "an application with appId %s already exists", appID)
			}
			return err
		}
		if _, err := tx.Put(kAppObj+t.ID+"/"+objID, []byte(appID), storage.MustNotExist); err != nil {
			return err
		}
		if err := d.record(ctx, tx, c, t.ID, action, name+" ("+appID+")"); err != nil {
			return err
		}
		sp, err = d.createSPTx(ctx, tx, c, t.ID, app)
		return err
	})
	return app, sp, err
}

func checkRedirectURIs(uris []string) error {
	if len(uris) > maxRedirectURIs {
		return errkind.Errorf(errkind.Invalid, "an application can have at most %d redirect URIs", maxRedirectURIs)
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil || len(s) > maxRedirectURILen || u.Fragment != "" || u.Host == "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			return errkind.Errorf(errkind.Invalid, "the redirect URI %q must be an absolute https URL without a fragment (http only for localhost)", s)
		}
	}
	return nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Application returns an application by application id.
func (d *Directory) Application(ctx context.Context, appID string) (Application, error) {
	var a Application
	if !IsGUID(appID) {
		return a, ErrAppNotFound
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kApp+lower(appID), &a)
		return notFound(err, ErrAppNotFound)
	})
	return a, err
}

// ApplicationInTenant returns an application registered in tenant tid, by
// object id or application id.
func (d *Directory) ApplicationInTenant(ctx context.Context, c Caller, tid, id string) (Application, error) {
	if err := d.CanRead(c, tid); err != nil {
		return Application{}, err
	}
	var a Application
	err := d.store.View(ctx, func(tx storage.Tx) error {
		if !IsGUID(id) || !IsGUID(tid) {
			return ErrAppNotFound
		}
		appID := lower(id)
		if e, err := tx.Get(kAppObj + lower(tid) + "/" + lower(id)); err == nil {
			appID = string(e.Value)
		} else if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if !IsGUID(appID) {
			return ErrAppNotFound
		}
		_, err := storage.GetJSON(tx, kApp+appID, &a)
		if err == nil && a.TenantID != lower(tid) {
			return ErrAppNotFound
		}
		return notFound(err, ErrAppNotFound)
	})
	return a, err
}

// Applications lists the applications registered in tenant tid.
func (d *Directory) Applications(ctx context.Context, c Caller, tid string) ([]Application, error) {
	if err := d.CanRead(c, tid); err != nil {
		return nil, err
	}
	var out []Application
	err := d.store.View(ctx, func(tx storage.Tx) error {
		entries, err := tx.List(kAppObj+lower(tid)+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range entries {
			var a Application
			if _, err := storage.GetJSON(tx, kApp+string(e.Value), &a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// AddPassword adds a client secret to an application of tenant tid and
// returns it: the only time the secret is available.
func (d *Directory) AddPassword(ctx context.Context, c Caller, tid, id, displayName string, lifetime time.Duration) (PasswordCredential, secret.String, error) {
	const action = "directory/applications/addPassword"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, id, err)
		return PasswordCredential{}, secret.String{}, err
	}
	if lifetime == 0 {
		lifetime = DefaultSecretLife
	}
	if lifetime < 0 || lifetime > MaxSecretLife {
		return PasswordCredential{}, secret.String{}, errkind.New(errkind.Invalid, "a client secret must expire within two years of its start")
	}
	if len(displayName) > maxDisplayName {
		return PasswordCredential{}, secret.String{}, errkind.Errorf(errkind.Invalid, "the displayName must have at most %d characters", maxDisplayName)
	}
	app, err := d.ApplicationInTenant(ctx, c, tid, id)
	if err != nil {
		return PasswordCredential{}, secret.String{}, err
	}
	keyID, err := newID(d.rand)
	if err != nil {
		return PasswordCredential{}, secret.String{}, err
	}
	s, err := newClientSecret(d.rand)
	if err != nil {
		return PasswordCredential{}, secret.String{}, err
	}
	now := d.now().UTC()
	pc := PasswordCredential{KeyID: keyID, DisplayName: displayName, Hint: s[:3], Start: now, End: now.Add(lifetime),
		Hash: hashClientSecret(keyID, s)}
	err = d.updateApp(ctx, app.AppID, func(a *Application) error {
		if len(a.Passwords) >= maxPasswords {
			return errkind.Errorf(errkind.FailedPrecondition, "the application already has %d client secrets; remove one first", maxPasswords)
		}
		a.Passwords = append(a.Passwords, pc)
		return nil
	}, func(tx storage.Tx) error {
		return d.record(ctx, tx, c, tid, action, app.AppID+" key "+keyID)
	})
	if err != nil {
		return PasswordCredential{}, secret.String{}, err
	}
	pc.Hash = nil
	return pc, secret.NewString(s), nil
}

// RemovePassword removes a client secret.
func (d *Directory) RemovePassword(ctx context.Context, c Caller, tid, id, keyID string) error {
	const action = "directory/applications/removePassword"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, id, err)
		return err
	}
	app, err := d.ApplicationInTenant(ctx, c, tid, id)
	if err != nil {
		return err
	}
	return d.updateApp(ctx, app.AppID, func(a *Application) error {
		i := slices.IndexFunc(a.Passwords, func(p PasswordCredential) bool { return p.KeyID == lower(keyID) })
		if i < 0 {
			return errkind.Errorf(errkind.NotFound, "the application has no password credential with keyId %s", keyID)
		}
		a.Passwords = slices.Delete(a.Passwords, i, i+1)
		return nil
	}, func(tx storage.Tx) error {
		return d.record(ctx, tx, c, tid, action, app.AppID+" key "+keyID)
	})
}

// AddCertificate registers a certificate whose key may sign client
// assertions for the application.
func (d *Directory) AddCertificate(ctx context.Context, c Caller, tid, id, displayName string, der []byte) (CertificateCredential, error) {
	const action = "directory/applications/addKey"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, id, err)
		return CertificateCredential{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return CertificateCredential{}, errkind.New(errkind.Invalid, "the key credential is not a DER X.509 certificate")
	}
	app, err := d.ApplicationInTenant(ctx, c, tid, id)
	if err != nil {
		return CertificateCredential{}, err
	}
	keyID, err := newID(d.rand)
	if err != nil {
		return CertificateCredential{}, err
	}
	s1 := sha1.Sum(der)
	s256 := sha256.Sum256(der)
	cc := CertificateCredential{KeyID: keyID, DisplayName: displayName,
		Thumbprint:     base64.RawURLEncoding.EncodeToString(s1[:]),
		ThumbprintS256: base64.RawURLEncoding.EncodeToString(s256[:]),
		Start:          cert.NotBefore.UTC(), End: cert.NotAfter.UTC(), DER: der}
	err = d.updateApp(ctx, app.AppID, func(a *Application) error {
		if len(a.Certificates) >= maxCertificates {
			return errkind.Errorf(errkind.FailedPrecondition, "the application already has %d certificates; remove one first", maxCertificates)
		}
		if slices.ContainsFunc(a.Certificates, func(x CertificateCredential) bool { return x.Thumbprint == cc.Thumbprint }) {
			return errkind.New(errkind.AlreadyExists, "the certificate is already registered on the application")
		}
		a.Certificates = append(a.Certificates, cc)
		return nil
	}, func(tx storage.Tx) error {
		return d.record(ctx, tx, c, tid, action, app.AppID+" cert "+cc.Thumbprint)
	})
	return cc, err
}

func (d *Directory) updateApp(ctx context.Context, appID string, change func(*Application) error, audit func(storage.Tx) error) error {
	return d.store.Update(ctx, func(tx storage.Tx) error {
		var a Application
		v, err := storage.GetJSON(tx, kApp+appID, &a)
		if err != nil {
			return notFound(err, ErrAppNotFound)
		}
		if err := change(&a); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, kApp+appID, a, v); err != nil {
			return err
		}
		return audit(tx)
	})
}

// VerifyClientSecret authenticates an application by one of its client
// secrets. An unknown application, an expired secret and a wrong one all
// return ErrBadCredentials after the same work.
func (d *Directory) VerifyClientSecret(ctx context.Context, appID string, s secret.String) (Application, error) {
	app, err := d.Application(ctx, appID)
	if err != nil && !errors.Is(err, ErrAppNotFound) {
		return Application{}, err
	}
	now := d.now()
	matched := false
	for _, p := range app.Passwords {
		h := hashClientSecret(p.KeyID, s.Reveal())
		if subtle.ConstantTimeCompare(h, p.Hash) == 1 && !now.Before(p.Start) && now.Before(p.End) {
			matched = true
		}
	}
	if len(app.Passwords) == 0 {
		_ = hashClientSecret("00000000-0000-0000-0000-000000000000", s.Reveal())
	}
	if !matched {
		return Application{}, ErrBadCredentials
	}
	return app, nil
}

// CertificateFor returns the application's certificate with thumbprint
// x5t (base64url SHA-1) or x5t#S256, valid now.
func (d *Directory) CertificateFor(ctx context.Context, appID, x5t, x5tS256 string) (*x509.Certificate, error) {
	app, err := d.Application(ctx, appID)
	if err != nil {
		return nil, ErrBadCredentials
	}
	now := d.now()
	for _, cc := range app.Certificates {
		if (x5t != "" && cc.Thumbprint == x5t) || (x5tS256 != "" && cc.ThumbprintS256 == x5tS256) {
			if now.Before(cc.Start) || !now.Before(cc.End) {
				return nil, ErrBadCredentials
			}
			return x509.ParseCertificate(cc.DER)
		}
	}
	return nil, ErrBadCredentials
}

// CreateServicePrincipal creates the service principal of application
// appID in tenant tid. A multi-tenant application of another tenant can be
// added by a Global or Application Administrator of tid; a single-tenant
// application only in its home tenant.
func (d *Directory) CreateServicePrincipal(ctx context.Context, c Caller, tid, appID string) (ServicePrincipal, error) {
	const action = "directory/servicePrincipals/create"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, appID, err)
		return ServicePrincipal{}, err
	}
	app, err := d.Application(ctx, appID)
	if err != nil {
		return ServicePrincipal{}, errkind.Errorf(errkind.NotFound, "no application with appId %q exists; check the id", appID).WithCode("ApplicationNotFound")
	}
	if _, err := d.Tenant(ctx, tid); err != nil {
		return ServicePrincipal{}, err
	}
	if app.TenantID != lower(tid) && !app.MultiTenant {
		return ServicePrincipal{}, errkind.Errorf(errkind.FailedPrecondition, "the application %s is single-tenant; it can only have a service principal in its home tenant", app.AppID)
	}
	var sp ServicePrincipal
	err = d.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		sp, err = d.createSPTx(ctx, tx, c, lower(tid), app)
		return err
	})
	return sp, err
}

func (d *Directory) createSPTx(ctx context.Context, tx storage.Tx, c Caller, tid string, app Application) (ServicePrincipal, error) {
	id, err := newID(d.rand)
	if err != nil {
		return ServicePrincipal{}, err
	}
	sp := ServicePrincipal{ID: id, TenantID: tid, AppID: app.AppID, AppOwnerTenantID: app.TenantID, DisplayName: app.DisplayName,
		ServicePrincipalNames: []string{app.AppID}, AccountEnabled: true, CreatedAt: d.now().UTC()}
	if _, err := tx.Put(kSPApp+tid+"/"+app.AppID, []byte(id), storage.MustNotExist); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return ServicePrincipal{}, errkind.Errorf(errkind.AlreadyExists, "the application %s already has a service principal in tenant %s", app.AppID, tid)
		}
		return ServicePrincipal{}, err
	}
	if err := storage.PutJSON(tx, kSP+tid+"/"+id, sp, storage.MustNotExist); err != nil {
		return ServicePrincipal{}, err
	}
	if _, err := tx.Put(kObject+tid+"/"+id, []byte("servicePrincipal"), storage.MustNotExist); err != nil {
		return ServicePrincipal{}, err
	}
	return sp, d.record(ctx, tx, c, tid, "directory/servicePrincipals/create", app.DisplayName+" ("+app.AppID+")")
}

// ServicePrincipal returns a service principal of tenant tid by object id.
func (d *Directory) ServicePrincipal(ctx context.Context, c Caller, tid, id string) (ServicePrincipal, error) {
	if err := d.CanRead(c, tid); err != nil {
		return ServicePrincipal{}, err
	}
	var sp ServicePrincipal
	if !IsGUID(id) {
		return sp, ErrSPNotFound
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kSP+lower(tid)+"/"+lower(id), &sp)
		return notFound(err, ErrSPNotFound)
	})
	return sp, err
}

// ServicePrincipalByAppID returns the service principal of application
// appID in tenant tid. It takes no caller: the token service asks it
// before anyone is signed in.
func (d *Directory) ServicePrincipalByAppID(ctx context.Context, tid, appID string) (ServicePrincipal, error) {
	var sp ServicePrincipal
	if !IsGUID(appID) || !IsGUID(tid) {
		return sp, ErrSPNotFound
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kSPApp + lower(tid) + "/" + lower(appID))
		if err != nil {
			return notFound(err, ErrSPNotFound)
		}
		_, err = storage.GetJSON(tx, kSP+lower(tid)+"/"+string(e.Value), &sp)
		return notFound(err, ErrSPNotFound)
	})
	return sp, err
}

// ServicePrincipals lists the service principals of tenant tid.
func (d *Directory) ServicePrincipals(ctx context.Context, c Caller, tid string) ([]ServicePrincipal, error) {
	if err := d.CanRead(c, tid); err != nil {
		return nil, err
	}
	var out []ServicePrincipal
	err := d.store.View(ctx, func(tx storage.Tx) error {
		var err error
		out, err = listJSON[ServicePrincipal](tx, kSP+lower(tid)+"/")
		return err
	})
	return out, err
}

// DeleteServicePrincipal removes a service principal and its role
// assignments; the application's tokens in that tenant stop being issued.
func (d *Directory) DeleteServicePrincipal(ctx context.Context, c Caller, tid, id string) error {
	const action = "directory/servicePrincipals/delete"
	if err := d.Authorize(ctx, c, tid, ManageApplications); err != nil {
		d.recordDenied(ctx, c, tid, action, id, err)
		return err
	}
	tid = lower(tid)
	return d.store.Update(ctx, func(tx storage.Tx) error {
		var sp ServicePrincipal
		if !IsGUID(id) {
			return ErrSPNotFound
		}
		if _, err := storage.GetJSON(tx, kSP+tid+"/"+lower(id), &sp); err != nil {
			return notFound(err, ErrSPNotFound)
		}
		for _, k := range []string{kSP + tid + "/" + sp.ID, kSPApp + tid + "/" + sp.AppID, kObject + tid + "/" + sp.ID} {
			if err := tx.Delete(k, storage.AnyVersion); err != nil {
				return err
			}
		}
		ras, err := tx.List(kPrincipalRA+tid+"/"+sp.ID+"/", "", 0)
		if err != nil {
			return err
		}
		for _, e := range ras {
			raID := strings.TrimPrefix(e.Key, kPrincipalRA+tid+"/"+sp.ID+"/")
			if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
				return err
			}
			if err := tx.Delete(kRole+tid+"/"+raID, storage.AnyVersion); err != nil {
				return err
			}
		}
		return d.record(ctx, tx, c, tid, action, sp.DisplayName+" ("+sp.AppID+")")
	})
}

// PrincipalKind reports whether id is a "user" or a "servicePrincipal" of
// tenant tid.
func (d *Directory) PrincipalKind(ctx context.Context, tid, id string) (string, error) {
	var kind string
	err := d.store.View(ctx, func(tx storage.Tx) error {
		e, err := tx.Get(kObject + lower(tid) + "/" + lower(id))
		if err != nil {
			return notFound(err, ErrPrincipalNotFound)
		}
		kind = string(e.Value)
		return nil
	})
	return kind, err
}
