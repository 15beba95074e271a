package files

import (
	"context"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Site is a SharePoint site (or OneDrive personal site).
type Site struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
	URL      string `json:"url"`
	Geo      string `json:"geo"`
	// Owners are the object ids of the users who own the site.
	Owners    []string  `json:"owners"`
	CreatedAt time.Time `json:"createdDateTime"`
}

// siteRecord is what is stored: the site, its wrapped site key and the
// policy version that wraps it.
type siteRecord struct {
	Site
	WrappedKey []byte        `json:"wrappedKey"`
	Ref        dep.PolicyRef `json:"ref"`
}

// SiteSpec describes a new site.
type SiteSpec struct {
	// URL is https://{tenant}.sharepoint.com (the root site),
	// https://{tenant}.sharepoint.com/sites/{name} or …/teams/{name}, or
	// https://{tenant}-my.sharepoint.com/personal/{name} for OneDrive,
	// where {tenant} is the first label of the tenant's domain.
	URL string
	// Geo defaults to dep.DefaultGeo.
	Geo string
	// Owners are users of the tenant (object ids or principal names); at
	// least one.
	Owners []string
}

var siteNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// checkURL validates a site URL of tenant t and returns its normalized form
// (lowercase host, no trailing slash).
func checkURL(raw string, t directory.Tenant) (string, error) {
	name, _, _ := strings.Cut(t.DefaultDomain, ".")
	root, my := name+".sharepoint.com", name+"-my.sharepoint.com"
	bad := errkind.Errorf(errkind.Invalid,
		"the site URL %q must look like https://%s/sites/NAME, https://%s/teams/NAME or https://%s/personal/NAME", raw, root, root, my)
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme != "https" || u.User != nil || u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.Port() != "" || len(raw) > 256 {
		return "", bad
	}
	host := strings.ToLower(u.Hostname())
	path := strings.TrimSuffix(u.Path, "/")
	kind, site, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	switch {
	case host == root && path == "":
	case host == root && (kind == "sites" || kind == "teams") && siteNameRE.MatchString(site):
	case host == my && kind == "personal" && siteNameRE.MatchString(site):
	default:
		return "", bad
	}
	return "https://" + host + path, nil
}

// urlKey is the index key of a site URL, whatever its case and trailing
// slash.
func urlKey(tid, u string) string {
	return kURL + tid + "/" + strings.TrimSuffix(lower(u), "/")
}

// scopeAAD binds a wrapped site key to its tenant and site, so that a
// wrapped key copied to another site record does not unwrap.
func scopeAAD(tid, id string) []byte { return []byte(kSite + tid + "/" + id) }

// CreateSite creates a site in tenant tid. Its site key is wrapped at once
// under the effective policy of the site's geo.
func (s *Service) CreateSite(ctx context.Context, c directory.Caller, tid string, spec SiteSpec) (Site, error) {
	const action = "files/sites/create"
	tid, err := scope.CheckTenant(tid)
	if err != nil {
		return Site{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, action, spec.URL); err != nil {
		return Site{}, err
	}
	t, err := s.dir.Tenant(ctx, tid)
	if err != nil {
		return Site{}, err
	}
	site := Site{TenantID: tid, CreatedAt: s.now().UTC()}
	if site.URL, err = checkURL(spec.URL, t); err != nil {
		return Site{}, err
	}
	if site.Geo, err = dep.ParseGeo(spec.Geo); err != nil {
		return Site{}, err
	}
	if len(spec.Owners) == 0 || len(spec.Owners) > MaxOwners {
		return Site{}, errkind.Errorf(errkind.Invalid, "a site needs 1 to %d owners, got %d", MaxOwners, len(spec.Owners))
	}
	for _, o := range spec.Owners {
		u, err := s.dir.User(ctx, directory.System, tid, o)
		if errors.Is(err, directory.ErrUserNotFound) {
			return Site{}, errkind.Errorf(errkind.Invalid, "the owner %q is not a user of tenant %s", o, tid).WithCode("UserNotFound")
		} else if err != nil {
			return Site{}, err
		}
		if !slices.Contains(site.Owners, u.ID) {
			site.Owners = append(site.Owners, u.ID)
		}
	}
	if site.ID, err = s.newID(); err != nil {
		return Site{}, err
	}
	rec := siteRecord{Site: site}
	if rec.Ref, err = s.dep.EffectiveGeo(ctx, tid, site.Geo); err != nil {
		return Site{}, err
	}
	key, err := envelope.NewKey()
	if err != nil {
		return Site{}, err
	}
	rec.WrappedKey, err = s.dep.WrapScopeKey(ctx, rec.Ref, key, scopeAAD(tid, site.ID))
	key.Wipe()
	if err != nil {
		return Site{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(urlKey(tid, site.URL), []byte(site.ID), storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "a site at %s already exists", site.URL)
			}
			return err
		}
		if err := storage.PutJSON(tx, kSite+tid+"/"+site.ID, rec, storage.MustNotExist); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, c, tid, action, site.URL+" ("+site.Geo+")")
	})
	if err != nil {
		return Site{}, err
	}
	return site, nil
}

// lookup resolves a site by id or URL inside tx.
func lookup(tx storage.Tx, tid, identity string) (siteRecord, error) {
	var rec siteRecord
	id := lower(identity)
	if !isGUID(id) {
		k := urlKey(tid, identity)
		if storage.CheckKey(k) != nil {
			return rec, ErrSiteNotFound
		}
		e, err := tx.Get(k)
		if err != nil {
			return rec, notFound(err, ErrSiteNotFound)
		}
		id = string(e.Value)
	}
	_, err := storage.GetJSON(tx, kSite+tid+"/"+id, &rec)
	return rec, notFound(err, ErrSiteNotFound)
}

// site reads a site of tid that c may see; another tenant's caller gets
// ErrSiteNotFound.
func (s *Service) site(ctx context.Context, c directory.Caller, tid, identity string) (siteRecord, error) {
	tid, err := scope.CheckTenant(tid)
	if err != nil || !scope.InTenant(c, tid) {
		return siteRecord{}, ErrSiteNotFound
	}
	var rec siteRecord
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		rec, err = lookup(tx, tid, identity)
		return err
	})
	return rec, err
}

// GetSite returns a site by id or URL, to its owners and to the tenant's
// Global and SharePoint Administrators.
func (s *Service) GetSite(ctx context.Context, c directory.Caller, tid, identity string) (Site, error) {
	rec, err := s.site(ctx, c, tid, identity)
	if err != nil {
		return Site{}, err
	}
	if err := s.authorizeSite(ctx, c, rec.Site); err != nil {
		return Site{}, err
	}
	return rec.Site, nil
}

// SitePage is one page of sites, in id order, and the token of the next
// page (empty on the last).
type SitePage struct {
	Sites []Site `json:"value"`
	Next  string `json:"nextPageToken,omitempty"`
}

// ListSites lists up to limit sites of tid after pageToken (empty for the
// first page), to the tenant's Global and SharePoint Administrators.
func (s *Service) ListSites(ctx context.Context, c directory.Caller, tid, pageToken string, limit int) (SitePage, error) {
	tid, err := scope.CheckTenant(tid)
	if err != nil {
		return SitePage{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, "files/sites/read", ""); err != nil {
		return SitePage{}, err
	}
	if pageToken != "" && !isGUID(pageToken) {
		return SitePage{}, scope.ErrBadPageToken
	}
	recs, next, err := scope.List[siteRecord](ctx, s.store, kSite+tid+"/", lower(pageToken), limit)
	if err != nil {
		return SitePage{}, err
	}
	page := SitePage{Sites: make([]Site, len(recs)), Next: next}
	for i, r := range recs {
		page.Sites[i] = r.Site
	}
	return page, nil
}

// SiteEncryption is what Get-SPOSiteDataEncryptionPolicy reports about a
// site.
type SiteEncryption struct {
	SiteID string `json:"siteId"`
	URL    string `json:"url"`
	Geo    string `json:"geo"`
	// PolicyID, Kind and KeyVersion name the policy key that wraps the site
	// key now.
	PolicyID   string   `json:"dataEncryptionPolicyId"`
	Kind       dep.Kind `json:"policyKind"`
	KeyVersion int      `json:"keyVersion"`
	// Current: that is the geo's effective policy version; false while a
	// registration or a key roll has not reached the site yet.
	Current bool `json:"current"`
}

// SiteEncryptionStatus reports which policy key version wraps a site's key
// and whether it is the geo's current one, to the tenant's Global and
// SharePoint Administrators.
func (s *Service) SiteEncryptionStatus(ctx context.Context, c directory.Caller, tid, identity string) (SiteEncryption, error) {
	rec, err := s.site(ctx, c, tid, identity)
	if err != nil {
		return SiteEncryption{}, err
	}
	if err := s.authorizeAdmin(ctx, c, rec.TenantID, "files/sites/encryptionStatus", rec.URL); err != nil {
		return SiteEncryption{}, err
	}
	eff, err := s.dep.EffectiveGeo(ctx, rec.TenantID, rec.Geo)
	if err != nil {
		return SiteEncryption{}, err
	}
	return SiteEncryption{SiteID: rec.ID, URL: rec.URL, Geo: rec.Geo, PolicyID: rec.Ref.PolicyID, Kind: rec.Ref.Kind,
		KeyVersion: rec.Ref.KeyVersion, Current: rec.Ref.Same(eff)}, nil
}
