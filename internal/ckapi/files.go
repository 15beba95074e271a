package ckapi

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/workload/files"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Files is the sites and files workload; package workload/files implements
// it and authorizes every call itself.
type Files interface {
	CreateSite(ctx context.Context, c directory.Caller, tid string, spec files.SiteSpec) (files.Site, error)
	GetSite(ctx context.Context, c directory.Caller, tid, identity string) (files.Site, error)
	ListSites(ctx context.Context, c directory.Caller, tid, pageToken string, limit int) (files.SitePage, error)
	SiteEncryptionStatus(ctx context.Context, c directory.Caller, tid, identity string) (files.SiteEncryption, error)
	PutFile(ctx context.Context, c directory.Caller, tid, site, path string, r io.Reader) (files.File, error)
	GetFile(ctx context.Context, c directory.Caller, tid, site, path string) (files.File, []byte, error)
	ListFiles(ctx context.Context, c directory.Caller, tid, site, pageToken string, limit int) (files.FilePage, error)
	DeleteFile(ctx context.Context, c directory.Caller, tid, site, path string) error
}

var _ Files = (*files.Service)(nil)

// maxFileBody is the route's bound on an upload: one byte more than the
// largest file the workload can be configured to take, so that the
// workload, which reads at most one byte past its configured limit, always
// sees the excess itself and refuses it as too large.
const maxFileBody = files.MaxMaxFileSize + 1

func (a *API) registerFiles(route func(string, int64, httpx.HandlerFunc)) {
	const small = 64 << 10
	const sites = tenantBase + "/sites"
	route("POST "+sites, small, a.createSite)
	route("GET "+sites, small, a.listSites)
	route("GET "+sites+"/{site}", small, a.getSite)
	route("GET "+sites+"/{site}/encryption", small, a.siteEncryption)
	route("GET "+sites+"/{site}/files", small, a.listFiles)
	route("PUT "+sites+"/{site}/files/{path...}", maxFileBody, a.putFile)
	route("GET "+sites+"/{site}/files/{path...}", small, a.getFile)
	route("DELETE "+sites+"/{site}/files/{path...}", small, a.deleteFile)
}

type createSiteIn struct {
	URL    string   `json:"url"`
	Geo    string   `json:"geo"`
	Owners []string `json:"owners"`
}

func (a *API) createSite(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in createSiteIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	s, err := a.o.Files.CreateSite(r.Context(), c, tid, files.SiteSpec{URL: in.URL, Geo: in.Geo, Owners: in.Owners})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+url.PathEscape(s.TenantID)+"/sites/"+s.ID)
	return httpx.JSON(w, http.StatusCreated, s)
}

func (a *API) listSites(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	token, top, err := pageQuery(r, scope.MaxPage)
	if err != nil {
		return err
	}
	p, err := a.o.Files.ListSites(r.Context(), c, tid, token, top)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, p)
}

func (a *API) getSite(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	s, err := a.o.Files.GetSite(r.Context(), c, tid, r.PathValue("site"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, s)
}

// SiteEncryption is what Get-SPOSiteDataEncryptionPolicy reports of a
// site: the policy key version its site key is wrapped under, and whether
// that is the geo's current one (false while a registration or a key roll
// has not reached the site yet).
type SiteEncryption struct {
	SiteID     string `json:"siteId"`
	URL        string `json:"url"`
	Geo        string `json:"geo"`
	PolicyID   string `json:"policyId"`
	PolicyKind string `json:"policyKind"`
	KeyVersion int    `json:"keyVersion"`
	Current    bool   `json:"current"`
}

func (a *API) siteEncryption(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	e, err := a.o.Files.SiteEncryptionStatus(r.Context(), c, tid, r.PathValue("site"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, SiteEncryption{SiteID: e.SiteID, URL: e.URL, Geo: e.Geo, PolicyID: e.PolicyID,
		PolicyKind: string(e.Kind), KeyVersion: e.KeyVersion, Current: e.Current})
}

func (a *API) listFiles(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	token, top, err := pageQuery(r, scope.MaxPage)
	if err != nil {
		return err
	}
	p, err := a.o.Files.ListFiles(r.Context(), c, tid, r.PathValue("site"), token, top)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, p)
}

var errFileMediaType = errkind.New(errkind.Invalid,
	"a file's content is sent raw: Content-Type: application/octet-stream").WithCode("UnsupportedMediaType")

// putFile streams the body into the workload, which seals it chunk by
// chunk and stops reading one byte past its limit; a declared length over
// the largest possible limit is refused before reading anything.
func (a *API) putFile(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != octetStream {
		return errFileMediaType
	}
	if r.ContentLength > files.MaxMaxFileSize {
		return errkind.Errorf(errkind.TooLarge, "the file has %d bytes; no file may be larger than %d", r.ContentLength, files.MaxMaxFileSize).
			WithCode("FileTooLarge")
	}
	f, err := a.o.Files.PutFile(r.Context(), c, tid, r.PathValue("site"), r.PathValue("path"), r.Body)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, f)
}

// getFile answers the file's content raw. The workload decrypts the whole
// file into memory; the copy is wiped once written, as the workload wipes
// its own buffers.
func (a *API) getFile(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	f, content, err := a.o.Files.GetFile(r.Context(), c, tid, r.PathValue("site"), r.PathValue("path"))
	if err != nil {
		return err
	}
	defer secret.Wipe(content)
	h := w.Header()
	h.Set("Content-Type", octetStream)
	h.Set("Content-Length", strconv.Itoa(len(content)))
	h.Set("Cache-Control", "no-store")
	h.Set("Last-Modified", f.ModifiedAt.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(content)
	return err
}

func (a *API) deleteFile(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	if err := a.o.Files.DeleteFile(r.Context(), c, tid, r.PathValue("site"), r.PathValue("path")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
