package graph

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/secret"
)

type userJSON struct {
	Context           string   `json:"@odata.context,omitempty"`
	ID                string   `json:"id"`
	DisplayName       string   `json:"displayName"`
	UserPrincipalName string   `json:"userPrincipalName"`
	MailNickname      string   `json:"mailNickname"`
	Mail              *string  `json:"mail"`
	AccountEnabled    bool     `json:"accountEnabled"`
	UserType          string   `json:"userType"`
	CreatedDateTime   dateTime `json:"createdDateTime"`
	BusinessPhones    []string `json:"businessPhones"`
}

func user(u directory.User) userJSON {
	// The directory keeps no mail nickname: it is the principal name's
	// local part, which is also what Entra ID suggests for it.
	nick, _, _ := strings.Cut(u.UserPrincipalName, "@")
	return userJSON{ID: u.ID, DisplayName: u.DisplayName, UserPrincipalName: u.UserPrincipalName, MailNickname: nick,
		AccountEnabled: u.AccountEnabled, UserType: "Member", CreatedDateTime: dateTime(u.CreatedAt), BusinessPhones: []string{}}
}

var users = listing[directory.User, userJSON]{
	set: "users", entity: "User",
	props: []prop[directory.User]{
		{name: "id", values: one(func(u directory.User) string { return u.ID })},
		{name: "userPrincipalName", values: one(func(u directory.User) string { return u.UserPrincipalName })},
		{name: "displayName", values: one(func(u directory.User) string { return u.DisplayName })},
	},
	id: func(u directory.User) string { return u.ID },
	render: func(us []directory.User) ([]userJSON, error) {
		out := make([]userJSON, len(us))
		for i, u := range us {
			out[i] = user(u)
		}
		return out, nil
	},
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	us, err := a.dir.Users(r.Context(), p.Caller(), p.TenantID)
	if err != nil {
		return err
	}
	return users.write(a, w, r, us)
}

func (a *API) writeUser(w http.ResponseWriter, r *http.Request, status int, u directory.User) error {
	out := user(u)
	out.Context = a.context(r, "users/$entity")
	return writeJSON(w, status, out)
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	id := r.PathValue("id")
	if !directory.IsGUID(id) && !plausibleUPN(id) {
		// Not an id and not a principal name: it names nothing, and must
		// not reach a storage key.
		return errNotFound(id)
	}
	u, err := a.dir.User(r.Context(), p.Caller(), p.TenantID, id)
	if err != nil {
		return asNotFound(err, id)
	}
	return a.writeUser(w, r, http.StatusOK, u)
}

// getMe answers /me for a signed-in user; an application has no "me".
func (a *API) getMe(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	if p.Type != identity.UserPrincipal {
		return errkind.New(errkind.Invalid, "/me request is only valid with delegated authentication flow.").WithCode("BadRequest")
	}
	u, err := a.dir.User(r.Context(), p.Caller(), p.TenantID, p.ObjectID)
	if err != nil {
		return err
	}
	return a.writeUser(w, r, http.StatusOK, u)
}

// newUser is the body of POST /users, in Graph's property names.
type newUser struct {
	ODataType         odataType        `json:"@odata.type"`
	AccountEnabled    *bool            `json:"accountEnabled"`
	DisplayName       string           `json:"displayName"`
	MailNickname      string           `json:"mailNickname"`
	UserPrincipalName string           `json:"userPrincipalName"`
	PasswordProfile   *passwordProfile `json:"passwordProfile"`
}

type passwordProfile struct {
	Password string `json:"password"`
	// The directory has no forced password change yet; the flags are
	// accepted because every Graph client sends one of them, and have no
	// effect (see the package's report of what is left undone).
	ForceChangePasswordNextSignIn        *bool `json:"forceChangePasswordNextSignIn"`
	ForceChangePasswordNextSignInWithMfa *bool `json:"forceChangePasswordNextSignInWithMfa"`
}

func required(name string) error {
	return errkind.Errorf(errkind.Invalid, "Property '%s' is required when creating the object.", name)
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request, p identity.Principal) error {
	var in newUser
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := in.ODataType.check("user"); err != nil {
		return err
	}
	switch {
	case in.AccountEnabled == nil:
		return required("accountEnabled")
	case strings.TrimSpace(in.DisplayName) == "":
		return required("displayName")
	case in.UserPrincipalName == "":
		return required("userPrincipalName")
	case in.PasswordProfile == nil || in.PasswordProfile.Password == "":
		return required("passwordProfile.password")
	}
	local, _, _ := strings.Cut(in.UserPrincipalName, "@")
	if in.MailNickname != "" && !strings.EqualFold(in.MailNickname, local) {
		// We cannot store a different nickname, and answering with one
		// the caller did not ask for would be a silent change.
		return errkind.Errorf(errkind.Invalid, "the mailNickname %q must equal the local part of the userPrincipalName (%q); this server derives it", in.MailNickname, local)
	}
	u, err := a.dir.CreateUser(r.Context(), p.Caller(), p.TenantID, directory.UserSpec{
		UserPrincipalName: in.UserPrincipalName, DisplayName: in.DisplayName,
		Password: secret.NewString(in.PasswordProfile.Password), Disabled: !*in.AccountEnabled})
	if err != nil {
		return err
	}
	return a.writeUser(w, r, http.StatusCreated, u)
}

// plausibleUPN reports whether s could be a user principal name: one @,
// printable, and no longer than Entra ID allows.
func plausibleUPN(s string) bool {
	if len(s) > 113 || strings.Count(s, "@") != 1 || !utf8.ValidString(s) {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) })
}
