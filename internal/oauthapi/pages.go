package oauthapi

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
)

// The sign-in pages are plain HTML forms: no script at all, one inline
// style allowed by its hash, and a CSP that forbids everything else.
const pageCSS = `body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}
h1{font-size:1rem;color:#555;margin:0}h2{font-size:1.5rem;margin:.25rem 0 1rem}
label{display:block;margin-top:1rem;font-weight:600}input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;box-sizing:border-box}
button{margin-top:1.25rem;margin-right:.5rem;padding:.5rem 1.25rem;font-size:1rem}
.error{border-left:4px solid #b00020;padding:.5rem .75rem;background:#fdecee}.meta{color:#555;font-size:.9rem}`

var styleHash = func() string {
	sum := sha256.Sum256([]byte(pageCSS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

var pages = template.Must(template.New("layout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>{{.Title}} – {{.Server}}</title><style>` + pageCSS + `</style></head>
<body><main>
<h1>{{.Server}}</h1>
<h2>{{.Title}}</h2>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
{{if eq .View "code"}}
<p>Enter the code displayed on your device or in your terminal.</p>
<form method="post" action="/devicelogin" autocomplete="off">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="step" value="code">
<label for="user_code">Code</label>
<input type="text" id="user_code" name="user_code" required autofocus maxlength="32" autocapitalize="characters" spellcheck="false">
<button type="submit">Next</button>
</form>
{{else if eq .View "device-signin"}}
<p>{{.AppName}} (<span class="meta">{{.AppID}}</span>) is asking to access <strong>{{.Resource}}</strong> as you in the organization <strong>{{.TenantName}}</strong>.
Only continue if you started this sign-in on your own device.</p>
<form method="post" action="/devicelogin">
<input type="hidden" name="csrf" value="{{.CSRF}}"><input type="hidden" name="step" value="signin">
<input type="hidden" name="user_code" value="{{.UserCode}}">
<label for="username">User principal name</label>
<input type="text" id="username" name="username" required autocomplete="username" value="{{.Username}}" autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" name="action" value="approve">Sign in</button>
<button type="submit" name="action" value="deny" formnovalidate>Cancel and decline</button>
</form>
{{else if eq .View "authorize"}}
<p>{{.AppName}} (<span class="meta">{{.AppID}}</span>) is asking to access <strong>{{.Resource}}</strong> as you in the organization <strong>{{.TenantName}}</strong>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<label for="username">User principal name</label>
<input type="text" id="username" name="username" required autocomplete="username" value="{{.Username}}" autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" name="action" value="signin">Sign in</button>
<button type="submit" name="action" value="cancel" formnovalidate>Cancel</button>
</form>
{{else if eq .View "message"}}
<p>{{.Message}}</p>
{{end}}
</main></body></html>
`))

type hiddenField struct{ Name, Value string }

// pageData is everything a page shows; html/template escapes each field.
type pageData struct {
	Server, Title, View, Error, Message, CSRF      string
	AppName, AppID, Resource, TenantName, UserCode string
	Username, Action                               string
	Hidden                                         []hiddenField
	// formAction lists extra origins the page's form may end up at (the
	// authorize page's POST redirects to the client).
	formAction string
}

// writePage renders a page with the headers every page gets.
func writePage(w http.ResponseWriter, status int, d pageData) error {
	d.Server = serverName
	var buf bytes.Buffer
	if err := pages.Execute(&buf, d); err != nil {
		return err
	}
	h := w.Header()
	formAction := "'self'"
	if d.formAction != "" {
		formAction += " " + d.formAction
	}
	h.Set("Content-Security-Policy", "default-src 'none'; style-src "+styleHash+"; form-action "+formAction+
		"; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// pageRenderer renders errors of the HTML routes as a page.
type pageRenderer struct {
	svc *identity.Service
}

func (p pageRenderer) RenderError(w http.ResponseWriter, r *http.Request, err error) {
	_, status := classify(err)
	msg := errkind.Public(err)
	setRetryAfter(w, err)
	if errors.Is(err, errCSRF) {
		status = http.StatusForbidden
	}
	_ = writePage(w, status, pageData{Title: "Something went wrong", View: "message", Error: msg,
		Message: "Go back to the application and start the sign-in again."})
}

// CSRF protection: a random token in a __Host- cookie (host-only, Secure,
// path /, so a sibling host such as a vault subdomain cannot plant one),
// SameSite=Strict, echoed in a hidden field; plus an Origin check when the
// browser sends one. It needs no server state, so it works across nodes.
const csrfCookie = "__Host-ck-csrf"

var errCSRF = errkind.New(errkind.PermissionDenied,
	"The form expired or was sent from another site. Reload the page and try again.").WithCode(identity.CodeInvalidRequest)

func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	tok := newToken()
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: 3600})
	return tok
}

func (h *handler) checkCSRF(r *http.Request, f url.Values) error {
	c, err := r.Cookie(csrfCookie)
	field := f.Get("csrf")
	if err != nil || field == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(field)) != 1 {
		return errCSRF
	}
	if o := r.Header.Get("Origin"); o != "" && o != h.svc.PublicURL() && o != "https://"+r.Host {
		return errCSRF
	}
	return nil
}

// pageError turns a refusal into the status and text a page shows, and
// sets Retry-After when the refusal is throttling.
func pageError(w http.ResponseWriter, err error) (int, string) {
	_, status := classify(err)
	if status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	setRetryAfter(w, err)
	return status, errkind.Public(err)
}

// deviceLoginForm shows the code entry page.
func (h *handler) deviceLoginForm(w http.ResponseWriter, r *http.Request) error {
	return writePage(w, http.StatusOK, pageData{Title: "Enter code", View: "code", CSRF: csrfToken(w, r)})
}

// deviceLoginSubmit handles both steps: the code, then the user's
// credentials (or their refusal).
func (h *handler) deviceLoginSubmit(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(r)
	if err != nil {
		return err
	}
	if err := h.checkCSRF(r, f); err != nil {
		return err
	}
	csrf := csrfToken(w, r)
	ctx := r.Context()
	codePage := func(err error) error {
		status, msg := pageError(w, err)
		return writePage(w, status, pageData{Title: "Enter code", View: "code", CSRF: csrf, Error: msg})
	}
	switch f.Get("step") {
	case "code":
		req, err := h.svc.DescribeUserCode(ctx, f.Get("user_code"))
		if err != nil {
			return codePage(err)
		}
		return writePage(w, http.StatusOK, pageData{Title: "Sign in", View: "device-signin", CSRF: csrf,
			AppName: req.AppName, AppID: req.AppID, Resource: req.Resource, TenantName: req.TenantName, UserCode: req.UserCode})
	case "signin":
		code := f.Get("user_code")
		if f.Get("action") == "deny" {
			if err := h.svc.DenyDeviceCode(ctx, code); err != nil {
				return codePage(err)
			}
			return writePage(w, http.StatusOK, pageData{Title: "Sign-in declined", View: "message",
				Message: "You declined the sign-in on the other device. You can close this window."})
		}
		req, err := h.svc.ApproveDeviceCode(ctx, code, f.Get("username"), secret.NewString(f.Get("password")))
		if err == nil {
			return writePage(w, http.StatusOK, pageData{Title: "You have signed in", View: "message",
				Message: "You have signed in to " + req.AppName + " on your device. You can close this window."})
		}
		if e, ok := errkind.As(err); ok && e.Kind == errkind.NotFound {
			return codePage(err) // the code expired or was used meanwhile
		}
		if errkind.KindOf(err) == errkind.Unavailable || errkind.KindOf(err) == errkind.Internal {
			return err
		}
		// Show the sign-in step again, keeping the user name.
		d, derr := h.svc.DescribeUserCode(ctx, code)
		if derr != nil {
			return codePage(derr)
		}
		status, msg := pageError(w, err)
		return writePage(w, status, pageData{Title: "Sign in", View: "device-signin", CSRF: csrf, Error: msg,
			AppName: d.AppName, AppID: d.AppID, Resource: d.Resource, TenantName: d.TenantName, UserCode: d.UserCode,
			Username: f.Get("username")})
	default:
		return codePage(errkind.New(errkind.Invalid, "Enter the code shown on your device."))
	}
}

// authorizeParams are the request parameters the sign-in form carries
// through as hidden fields, so the POST needs no server-side session.
var authorizeParams = []string{"client_id", "response_type", "redirect_uri", "scope", "state", "code_challenge",
	"code_challenge_method", "nonce", "response_mode"}

func authorizeRequest(tenant string, v url.Values) identity.AuthorizeRequest {
	return identity.AuthorizeRequest{Tenant: tenant, ClientID: v.Get("client_id"), ResponseType: v.Get("response_type"),
		RedirectURI: v.Get("redirect_uri"), Scope: v.Get("scope"), State: v.Get("state"),
		CodeChallenge: v.Get("code_challenge"), CodeChallengeMethod: v.Get("code_challenge_method"),
		Nonce: v.Get("nonce"), ResponseMode: v.Get("response_mode")}
}

// authorizeForm validates the request and shows the sign-in form.
func (h *handler) authorizeForm(w http.ResponseWriter, r *http.Request) error {
	if err := refuseSecretsInQuery(r); err != nil {
		return err
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	req := authorizeRequest(r.PathValue("tenant"), q)
	info, err := h.svc.CheckAuthorize(r.Context(), req)
	if err != nil {
		return h.authorizeFailed(w, r, info, req, err)
	}
	return h.signInPage(w, r, http.StatusOK, info, req, q.Get("login_hint"), "")
}

func (h *handler) signInPage(w http.ResponseWriter, r *http.Request, status int, info identity.AuthorizeInfo, req identity.AuthorizeRequest, user, errMsg string) error {
	src := map[string]string{"client_id": req.ClientID, "response_type": req.ResponseType, "redirect_uri": req.RedirectURI,
		"scope": req.Scope, "state": req.State, "code_challenge": req.CodeChallenge,
		"code_challenge_method": req.CodeChallengeMethod, "nonce": req.Nonce, "response_mode": req.ResponseMode}
	var hidden []hiddenField
	for _, p := range authorizeParams {
		if src[p] != "" {
			hidden = append(hidden, hiddenField{p, src[p]})
		}
	}
	return writePage(w, status, pageData{Title: "Sign in", View: "authorize", CSRF: csrfToken(w, r), Error: errMsg,
		AppName: info.AppName, AppID: info.AppID, Resource: info.Resource, TenantName: info.TenantName,
		Username: user, Action: r.URL.Path, Hidden: hidden, formAction: formActionFor(info.RedirectURI)})
}

// formActionFor allows the form's submission to end at the client's
// redirect URI: browsers apply form-action to the redirect after a POST.
func formActionFor(redirect string) string {
	u, err := url.Parse(redirect)
	if err != nil || u.Host == "" {
		return ""
	}
	if u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1") {
		host := u.Hostname()
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return "http://" + host + ":*"
	}
	return u.Scheme + "://" + u.Host
}

// authorizeFailed reports a refused request: back to the client when its
// redirect URI is trusted, else on a page.
func (h *handler) authorizeFailed(w http.ResponseWriter, r *http.Request, info identity.AuthorizeInfo, req identity.AuthorizeRequest, err error) error {
	if to, ok := identity.ErrorRedirect(info, req.State, err); ok {
		http.Redirect(w, r, to, http.StatusFound)
		return nil
	}
	return err
}

// authorizeSubmit signs the user in and sends the browser back to the
// client with a code.
func (h *handler) authorizeSubmit(w http.ResponseWriter, r *http.Request) error {
	f, err := parseForm(r)
	if err != nil {
		return err
	}
	if err := h.checkCSRF(r, f); err != nil {
		return err
	}
	ctx := r.Context()
	req := authorizeRequest(r.PathValue("tenant"), f)
	if f.Get("action") == "cancel" {
		info, err := h.svc.CheckAuthorize(ctx, req)
		if err != nil {
			return h.authorizeFailed(w, r, info, req, err)
		}
		declined := errkind.New(errkind.PermissionDenied, "AADSTS65004: User declined to consent to access the app.").WithCode(identity.CodeAccessDenied)
		return h.authorizeFailed(w, r, info, req, declined)
	}
	to, err := h.svc.Authorize(ctx, req, f.Get("username"), secret.NewString(f.Get("password")))
	if err == nil {
		http.Redirect(w, r, to, http.StatusSeeOther)
		return nil
	}
	info, cerr := h.svc.CheckAuthorize(ctx, req)
	if cerr != nil {
		return h.authorizeFailed(w, r, info, req, cerr)
	}
	switch errkind.KindOf(err) {
	case errkind.Unauthenticated, errkind.TooManyRequests, errkind.Invalid:
		status, msg := pageError(w, err)
		return h.signInPage(w, r, status, info, req, f.Get("username"), msg)
	}
	return err
}
