package graph

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
)

type applicationJSON struct {
	Context                string                   `json:"@odata.context,omitempty"`
	ID                     string                   `json:"id"`
	AppID                  string                   `json:"appId"`
	DisplayName            string                   `json:"displayName"`
	SignInAudience         string                   `json:"signInAudience"`
	CreatedDateTime        dateTime                 `json:"createdDateTime"`
	IsFallbackPublicClient bool                     `json:"isFallbackPublicClient"`
	PublicClient           redirectsJSON            `json:"publicClient"`
	Web                    redirectsJSON            `json:"web"`
	PasswordCredentials    []passwordCredentialJSON `json:"passwordCredentials"`
	KeyCredentials         []keyCredentialJSON      `json:"keyCredentials"`
}

type redirectsJSON struct {
	RedirectURIs []string `json:"redirectUris"`
}

// passwordCredentialJSON never carries a hash. SecretText is set only in
// the answer to addPassword, the one time Graph shows a secret; everywhere
// else the property is left out altogether.
type passwordCredentialJSON struct {
	Context             string   `json:"@odata.context,omitempty"`
	CustomKeyIdentifier *string  `json:"customKeyIdentifier"`
	DisplayName         *string  `json:"displayName"`
	EndDateTime         dateTime `json:"endDateTime"`
	Hint                string   `json:"hint"`
	KeyID               string   `json:"keyId"`
	SecretText          *string  `json:"secretText,omitempty"`
	StartDateTime       dateTime `json:"startDateTime"`
}

// keyCredentialJSON never carries the certificate: Graph returns key as
// null unless $select asks for it, and this subset never does.
type keyCredentialJSON struct {
	CustomKeyIdentifier string   `json:"customKeyIdentifier"`
	DisplayName         *string  `json:"displayName"`
	EndDateTime         dateTime `json:"endDateTime"`
	Key                 *string  `json:"key"`
	KeyID               string   `json:"keyId"`
	StartDateTime       dateTime `json:"startDateTime"`
	Type                string   `json:"type"`
	Usage               string   `json:"usage"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func passwordCredential(p directory.PasswordCredential) passwordCredentialJSON {
	return passwordCredentialJSON{DisplayName: optional(p.DisplayName), EndDateTime: dateTime(p.End), Hint: p.Hint,
		KeyID: p.KeyID, StartDateTime: dateTime(p.Start)}
}

func application(app directory.Application) applicationJSON {
	out := applicationJSON{ID: app.ObjectID, AppID: app.AppID, DisplayName: app.DisplayName, SignInAudience: app.SignInAudience(),
		CreatedDateTime: dateTime(app.CreatedAt), IsFallbackPublicClient: app.PublicClient,
		PublicClient: redirectsJSON{RedirectURIs: []string{}}, Web: redirectsJSON{RedirectURIs: []string{}},
		PasswordCredentials: []passwordCredentialJSON{}, KeyCredentials: []keyCredentialJSON{}}
	// The directory keeps one list of redirect URIs; a public client's are
	// native-app URIs, anyone else's are web URIs.
	if app.PublicClient {
		out.PublicClient.RedirectURIs = append(out.PublicClient.RedirectURIs, app.RedirectURIs...)
	} else {
		out.Web.RedirectURIs = append(out.Web.RedirectURIs, app.RedirectURIs...)
	}
	for _, p := range app.Passwords {
		out.PasswordCredentials = append(out.PasswordCredentials, passwordCredential(p))
	}
	for _, c := range app.Certificates {
		// Graph's customKeyIdentifier is the SHA-1 thumbprint as
		// Edm.Binary, that is standard base64; the directory keeps it
		// base64url for client assertions' x5t.
		thumb := c.Thumbprint
		if b, err := base64.RawURLEncoding.DecodeString(c.Thumbprint); err == nil {
			thumb = base64.StdEncoding.EncodeToString(b)
		}
		out.KeyCredentials = append(out.KeyCredentials, keyCredentialJSON{CustomKeyIdentifier: thumb,
			DisplayName: optional(c.DisplayName), EndDateTime: dateTime(c.End), KeyID: c.KeyID,
			StartDateTime: dateTime(c.Start), Type: "AsymmetricX509Cert", Usage: "Verify"})
	}
	return out
}

var applications = listing[directory.Application, applicationJSON]{
	set: "applications", entity: "Application",
	props: []prop[directory.Application]{
		{name: "appId", values: one(func(a directory.Application) string { return a.AppID })},
		{name: "id", values: one(func(a directory.Application) string { return a.ObjectID })},
		{name: "displayName", values: one(func(a directory.Application) string { return a.DisplayName })},
	},
	id: func(a directory.Application) string { return a.ObjectID },
	render: func(as []directory.Application) ([]applicationJSON, error) {
		out := make([]applicationJSON, len(as))
		for i, a := range as {
			out[i] = application(a)
		}
		return out, nil
	},
}

func (a *API) listApplications(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	apps, err := a.dir.Applications(r.Context(), p.Caller(), p.TenantID)
	if err != nil {
		return err
	}
	return applications.write(a, w, r, apps)
}

func (a *API) writeApplication(w http.ResponseWriter, r *http.Request, status int, app directory.Application) error {
	out := application(app)
	out.Context = a.context(r, "applications/$entity")
	return writeJSON(w, status, out)
}

// applicationByObjectID finds an application of the caller's tenant by
// its object id. The directory also accepts an application id there;
// Graph does not, and neither do we, so that a script that works here
// works against Entra ID.
func (a *API) applicationByObjectID(r *http.Request, p identity.Principal, id string) (directory.Application, error) {
	if !directory.IsGUID(id) {
		return directory.Application{}, invalidID(id)
	}
	app, err := a.dir.ApplicationInTenant(r.Context(), p.Caller(), p.TenantID, id)
	if err == nil && !strings.EqualFold(app.ObjectID, id) {
		err = directory.ErrAppNotFound
	}
	if err != nil {
		return directory.Application{}, asNotFound(err, id)
	}
	return app, nil
}

func (a *API) getApplication(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	app, err := a.applicationByObjectID(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	return a.writeApplication(w, r, http.StatusOK, app)
}

// getApplicationByAppID serves applications(appId='…'), which finds only
// applications registered in the caller's tenant, as in Graph.
func (a *API) getApplicationByAppID(w http.ResponseWriter, r *http.Request, p identity.Principal, appID string) error {
	app, err := a.dir.ApplicationInTenant(r.Context(), p.Caller(), p.TenantID, appID)
	if err == nil && !strings.EqualFold(app.AppID, appID) {
		err = directory.ErrAppNotFound
	}
	if err != nil {
		return asNotFound(err, appID)
	}
	return a.writeApplication(w, r, http.StatusOK, app)
}

// Sign-in audiences this subset has; the personal-account ones need a
// Microsoft account system it does not have.
const (
	audienceMyOrg        = "AzureADMyOrg"
	audienceMultipleOrgs = "AzureADMultipleOrgs"
)

type newApplication struct {
	ODataType              odataType  `json:"@odata.type"`
	DisplayName            string     `json:"displayName"`
	SignInAudience         string     `json:"signInAudience"`
	IsFallbackPublicClient *bool      `json:"isFallbackPublicClient"`
	PublicClient           *redirects `json:"publicClient"`
	Web                    *redirects `json:"web"`
}

type redirects struct {
	RedirectURIs []string `json:"redirectUris"`
}

func (in newApplication) spec() (directory.AppSpec, error) {
	if err := in.ODataType.check("application"); err != nil {
		return directory.AppSpec{}, err
	}
	if strings.TrimSpace(in.DisplayName) == "" {
		return directory.AppSpec{}, required("displayName")
	}
	spec := directory.AppSpec{DisplayName: in.DisplayName}
	switch in.SignInAudience {
	case "", audienceMyOrg:
	case audienceMultipleOrgs:
		spec.MultiTenant = true
	default:
		return spec, errkind.Errorf(errkind.Invalid, "the signInAudience %q is not supported; use %s or %s",
			in.SignInAudience, audienceMyOrg, audienceMultipleOrgs)
	}
	var public, web []string
	if in.PublicClient != nil {
		public = in.PublicClient.RedirectURIs
	}
	if in.Web != nil {
		web = in.Web.RedirectURIs
	}
	fallback := in.IsFallbackPublicClient != nil && *in.IsFallbackPublicClient
	spec.PublicClient = fallback || len(public) > 0
	if len(web) > 0 && spec.PublicClient {
		// The directory keeps one kind of client per application; mixing
		// would make one of the lists mean something it does not.
		return spec, errkind.New(errkind.Invalid, "an application here is either a public client (publicClient.redirectUris, isFallbackPublicClient) or a web application (web.redirectUris), not both")
	}
	spec.RedirectURIs = slices.Concat(public, web)
	return spec, nil
}

func (a *API) createApplication(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in newApplication
	if err := decode(r, &in); err != nil {
		return err
	}
	spec, err := in.spec()
	if err != nil {
		return err
	}
	app, _, err := a.dir.CreateApplication(r.Context(), p.Caller(), p.TenantID, spec)
	if err != nil {
		return err
	}
	return a.writeApplication(w, r, http.StatusCreated, app)
}

// applicationAction serves the actions bound to an application.
func (a *API) applicationAction(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	switch action := r.PathValue("action"); action {
	case "addPassword":
		return a.addPassword(w, r, p)
	case "removePassword":
		return a.removePassword(w, r, p)
	default:
		return errSegment(action)
	}
}

// otherApplicationAction answers the methods the actions do not support;
// a segment that is no action stays a 400 whatever the method, as in Graph.
func otherApplicationAction(w http.ResponseWriter, r *http.Request) error {
	switch action := r.PathValue("action"); action {
	case "addPassword", "removePassword":
		w.Header().Set("Allow", "POST")
		return &statusError{status: http.StatusMethodNotAllowed, code: "Request_BadRequest",
			msg: "The HTTP method " + r.Method + " is not allowed for this resource; allowed: POST."}
	default:
		return errSegment(action)
	}
}

type addPasswordIn struct {
	PasswordCredential *struct {
		DisplayName   string    `json:"displayName"`
		StartDateTime *dateTime `json:"startDateTime"`
		EndDateTime   *dateTime `json:"endDateTime"`
	} `json:"passwordCredential"`
}

// clockSkew is how far in the future a startDateTime may lie and still be
// taken as "now": clients stamp it from their own clocks.
const clockSkew = 5 * time.Minute

func (a *API) addPassword(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in addPasswordIn
	// Graph accepts the action without a body; the secret then gets the
	// default lifetime.
	if r.ContentLength != 0 {
		if err := decode(r, &in); err != nil {
			return err
		}
	}
	var name string
	var lifetime time.Duration
	if pc := in.PasswordCredential; pc != nil {
		name = pc.DisplayName
		now := a.now()
		if pc.StartDateTime != nil && time.Time(*pc.StartDateTime).After(now.Add(clockSkew)) {
			return errkind.New(errkind.Invalid, "a startDateTime in the future is not supported; a new secret is valid from now")
		}
		if pc.EndDateTime != nil && !time.Time(*pc.EndDateTime).IsZero() {
			if lifetime = time.Time(*pc.EndDateTime).Sub(now); lifetime <= 0 {
				return errkind.New(errkind.Invalid, "the endDateTime must be in the future")
			}
		}
	}
	app, err := a.applicationByObjectID(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	pc, s, err := a.dir.AddPassword(r.Context(), p.Caller(), p.TenantID, app.AppID, name, lifetime)
	if err != nil {
		return err
	}
	out := passwordCredential(pc)
	out.Context = a.context(r, "microsoft.graph.passwordCredential")
	out.SecretText = reveal(s)
	return writeJSON(w, http.StatusOK, out)
}

// reveal is the one place a client secret leaves its secret type: the
// answer to addPassword.
func reveal(s secret.String) *string {
	v := s.Reveal()
	return &v
}

type removePasswordIn struct {
	KeyID string `json:"keyId"`
}

func (a *API) removePassword(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in removePasswordIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.KeyID == "" {
		return required("keyId")
	}
	app, err := a.applicationByObjectID(r, p, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.dir.RemovePassword(r.Context(), p.Caller(), p.TenantID, app.AppID, in.KeyID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
