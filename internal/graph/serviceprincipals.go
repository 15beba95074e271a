package graph

import (
	"context"
	"net/http"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
)

type servicePrincipalJSON struct {
	Context                string   `json:"@odata.context,omitempty"`
	ID                     string   `json:"id"`
	AppID                  string   `json:"appId"`
	AppDisplayName         string   `json:"appDisplayName"`
	DisplayName            string   `json:"displayName"`
	AppOwnerOrganizationID string   `json:"appOwnerOrganizationId"`
	ServicePrincipalNames  []string `json:"servicePrincipalNames"`
	ServicePrincipalType   string   `json:"servicePrincipalType"`
	AccountEnabled         bool     `json:"accountEnabled"`
	SignInAudience         string   `json:"signInAudience"`
	Tags                   []string `json:"tags"`
}

// apps caches the applications behind service principals for one
// response: the application's name and audience are part of the service
// principal's Graph shape, and many principals share a few applications.
type apps struct {
	dir   Directory
	cache map[string]directory.Application
}

func (c *apps) servicePrincipal(ctx context.Context, sp directory.ServicePrincipal) (servicePrincipalJSON, error) {
	app, ok := c.cache[sp.AppID]
	if !ok {
		var err error
		app, err = c.dir.Application(ctx, sp.AppID)
		if err != nil && !errkind.Is(err, errkind.NotFound) {
			return servicePrincipalJSON{}, err
		}
		if err != nil {
			// A principal outliving its application still shows, as in
			// Entra ID, with what it knows itself.
			app = directory.Application{AppID: sp.AppID, DisplayName: sp.DisplayName}
		}
		c.cache[sp.AppID] = app
	}
	names := append([]string{}, sp.ServicePrincipalNames...)
	return servicePrincipalJSON{ID: sp.ID, AppID: sp.AppID, AppDisplayName: app.DisplayName, DisplayName: sp.DisplayName,
		AppOwnerOrganizationID: sp.AppOwnerTenantID, ServicePrincipalNames: names, ServicePrincipalType: "Application",
		AccountEnabled: sp.AccountEnabled, SignInAudience: app.SignInAudience(), Tags: []string{}}, nil
}

var spProps = []prop[directory.ServicePrincipal]{
	{name: "appId", values: one(func(s directory.ServicePrincipal) string { return s.AppID })},
	{name: "servicePrincipalNames", collection: true, values: func(s directory.ServicePrincipal) []string { return s.ServicePrincipalNames }},
	{name: "id", values: one(func(s directory.ServicePrincipal) string { return s.ID })},
	{name: "displayName", values: one(func(s directory.ServicePrincipal) string { return s.DisplayName })},
}

func (a *API) listServicePrincipals(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	sps, err := a.dir.ServicePrincipals(r.Context(), p.Caller(), p.TenantID)
	if err != nil {
		return err
	}
	c := &apps{dir: a.dir, cache: map[string]directory.Application{}}
	l := listing[directory.ServicePrincipal, servicePrincipalJSON]{
		set: "servicePrincipals", entity: "ServicePrincipal", props: spProps,
		id: func(s directory.ServicePrincipal) string { return s.ID },
		render: func(sps []directory.ServicePrincipal) ([]servicePrincipalJSON, error) {
			out := make([]servicePrincipalJSON, len(sps))
			for i, sp := range sps {
				var err error
				if out[i], err = c.servicePrincipal(r.Context(), sp); err != nil {
					return nil, err
				}
			}
			return out, nil
		},
	}
	return l.write(a, w, r, sps)
}

func (a *API) writeServicePrincipal(w http.ResponseWriter, r *http.Request, status int, sp directory.ServicePrincipal) error {
	c := &apps{dir: a.dir, cache: map[string]directory.Application{}}
	out, err := c.servicePrincipal(r.Context(), sp)
	if err != nil {
		return err
	}
	out.Context = a.context(r, "servicePrincipals/$entity")
	return writeJSON(w, status, out)
}

func (a *API) getServicePrincipal(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	if !directory.IsGUID(id) {
		return invalidID(id)
	}
	sp, err := a.dir.ServicePrincipal(r.Context(), p.Caller(), p.TenantID, id)
	if err != nil {
		return asNotFound(err, id)
	}
	return a.writeServicePrincipal(w, r, http.StatusOK, sp)
}

// servicePrincipalByAppID finds the principal of appID in the caller's
// tenant. The directory's lookup by application id takes no caller (the
// token service uses it before anyone is signed in), so the directory is
// asked first whether the caller may read the tenant.
func (a *API) servicePrincipalByAppID(ctx context.Context, p identity.Principal, appID string) (directory.ServicePrincipal, error) {
	if err := a.dir.CanRead(p.Caller(), p.TenantID); err != nil {
		return directory.ServicePrincipal{}, err
	}
	sp, err := a.dir.ServicePrincipalByAppID(ctx, p.TenantID, appID)
	if err != nil {
		return directory.ServicePrincipal{}, asNotFound(err, appID)
	}
	return sp, nil
}

type newServicePrincipal struct {
	ODataType odataType `json:"@odata.type"`
	AppID     string    `json:"appId"`
	// AccountEnabled may be sent as true (the Azure CLI's and PowerShell's
	// default); a disabled principal at creation is not supported.
	AccountEnabled *bool `json:"accountEnabled"`
}

func (a *API) createServicePrincipal(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in newServicePrincipal
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.ODataType.check("servicePrincipal"); err != nil {
		return err
	}
	if in.AppID == "" {
		return required("appId")
	}
	if in.AccountEnabled != nil && !*in.AccountEnabled {
		return errkind.New(errkind.Invalid, "creating a disabled service principal (accountEnabled false) is not supported")
	}
	sp, err := a.dir.CreateServicePrincipal(r.Context(), p.Caller(), p.TenantID, in.AppID)
	if err != nil {
		return err
	}
	return a.writeServicePrincipal(w, r, http.StatusCreated, sp)
}

func (a *API) deleteServicePrincipal(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	if !directory.IsGUID(id) {
		return invalidID(id)
	}
	if err := a.dir.DeleteServicePrincipal(r.Context(), p.Caller(), p.TenantID, id); err != nil {
		return asNotFound(err, id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
