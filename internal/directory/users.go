package directory

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
)

// User is a person's account in a tenant.
type User struct {
	ID                string    `json:"id"`
	TenantID          string    `json:"tenantId"`
	UserPrincipalName string    `json:"userPrincipalName"`
	DisplayName       string    `json:"displayName"`
	AccountEnabled    bool      `json:"accountEnabled"`
	CreatedAt         time.Time `json:"createdDateTime"`
}

// userRecord is what is stored: the user and the password hash, which
// never leaves this package.
type userRecord struct {
	User
	PasswordHash string `json:"passwordHash"`
}

// UserSpec describes a new user.
type UserSpec struct {
	UserPrincipalName string
	DisplayName       string
	Password          secret.String
	// Disabled creates the account disabled.
	Disabled bool
}

// CreateUser adds a user to tenant tid. The principal name's domain must
// be one of the tenant's.
func (d *Directory) CreateUser(ctx context.Context, c Caller, tid string, spec UserSpec) (User, error) {
	const action = "directory/users/create"
	if err := d.Authorize(ctx, c, tid, ManageUsers); err != nil {
		d.recordDenied(ctx, c, tid, action, spec.UserPrincipalName, err)
		return User{}, err
	}
	t, err := d.Tenant(ctx, tid)
	if err != nil {
		return User{}, err
	}
	upn := lower(spec.UserPrincipalName)
	if strings.ContainsFunc(upn, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return User{}, errkind.Errorf(errkind.Invalid, "the user principal name must not contain control characters")
	}
	local, domain, ok := strings.Cut(upn, "@")
	if !ok || local == "" || len(upn) > 113 || strings.ContainsAny(local, " @\"<>()[]\\,;:/") {
		return User{}, errkind.Errorf(errkind.Invalid, "the user principal name %q must look like alias@%s", spec.UserPrincipalName, t.DefaultDomain)
	}
	if domain != t.DefaultDomain {
		return User{}, errkind.Errorf(errkind.Invalid, "the user principal name %q must use the tenant's domain %s", spec.UserPrincipalName, t.DefaultDomain)
	}
	n := utf8.RuneCountInString(spec.Password.Reveal())
	if n < minPassword || n > maxPassword {
		return User{}, errkind.Errorf(errkind.Invalid, "the password must have %d to %d characters", minPassword, maxPassword)
	}
	name := strings.TrimSpace(spec.DisplayName)
	if name == "" {
		name = local
	}
	id, err := newID(d.rand)
	if err != nil {
		return User{}, err
	}
	hash, err := hashPassword(d.kdf, spec.Password, d.rand)
	if err != nil {
		return User{}, err
	}
	u := userRecord{User: User{ID: id, TenantID: t.ID, UserPrincipalName: upn, DisplayName: name,
		AccountEnabled: !spec.Disabled, CreatedAt: d.now().UTC()}, PasswordHash: hash}
	err = d.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(kUPN+upn, []byte(t.ID+"/"+id), storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "a user %q already exists", upn)
			}
			return err
		}
		if err := storage.PutJSON(tx, kUser+t.ID+"/"+id, u, storage.MustNotExist); err != nil {
			return err
		}
		if _, err := tx.Put(kObject+t.ID+"/"+id, []byte("user"), storage.MustNotExist); err != nil {
			return err
		}
		return d.record(ctx, tx, c, t.ID, action, upn)
	})
	return u.User, err
}

// User returns a user of tenant tid by object id or principal name.
func (d *Directory) User(ctx context.Context, c Caller, tid, idOrUPN string) (User, error) {
	if err := d.CanRead(c, tid); err != nil {
		return User{}, err
	}
	u, err := d.userRecord(ctx, tid, idOrUPN)
	return u.User, err
}

func (d *Directory) userRecord(ctx context.Context, tid, idOrUPN string) (userRecord, error) {
	var u userRecord
	if !IsGUID(tid) || storage.CheckKey(kUPN+lower(idOrUPN)) != nil {
		return u, ErrUserNotFound
	}
	err := d.store.View(ctx, func(tx storage.Tx) error {
		key := kUser + lower(tid) + "/" + lower(idOrUPN)
		if !IsGUID(idOrUPN) {
			e, err := tx.Get(kUPN + lower(idOrUPN))
			if err != nil {
				return notFound(err, ErrUserNotFound)
			}
			key = kUser + string(e.Value)
		}
		_, err := storage.GetJSON(tx, key, &u)
		if err == nil && u.TenantID != lower(tid) {
			return ErrUserNotFound
		}
		return notFound(err, ErrUserNotFound)
	})
	return u, err
}

// Users lists the users of tenant tid.
func (d *Directory) Users(ctx context.Context, c Caller, tid string) ([]User, error) {
	if err := d.CanRead(c, tid); err != nil {
		return nil, err
	}
	var out []User
	err := d.store.View(ctx, func(tx storage.Tx) error {
		recs, err := listJSON[userRecord](tx, kUser+lower(tid)+"/")
		for _, r := range recs {
			out = append(out, r.User)
		}
		return err
	})
	return out, err
}

// VerifyPassword checks a user's password. An unknown user, a disabled
// account and a wrong password all return ErrBadCredentials after the same
// amount of work.
func (d *Directory) VerifyPassword(ctx context.Context, tid, upn string, password secret.String) (User, error) {
	u, err := d.userRecord(ctx, tid, upn)
	if errors.Is(err, ErrUserNotFound) {
		d.dummyCheck(password)
		return User{}, ErrBadCredentials
	}
	if err != nil {
		return User{}, err
	}
	ok, err := checkPassword(u.PasswordHash, password)
	if err != nil {
		return User{}, err
	}
	if !ok || !u.AccountEnabled {
		return User{}, ErrBadCredentials
	}
	return u.User, nil
}
