package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
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

// Type is a mailbox's recipient type.
type Type string

// Recipient types.
const (
	UserMailbox   Type = "UserMailbox"
	SharedMailbox Type = "SharedMailbox"
	GroupMailbox  Type = "GroupMailbox"
	PublicFolder  Type = "PublicFolder"
	MailUser      Type = "MailUser"
)

var types = []Type{UserMailbox, SharedMailbox, GroupMailbox, PublicFolder, MailUser}

// ParseType accepts a recipient type in any case.
func ParseType(s string) (Type, error) {
	for _, t := range types {
		if strings.EqualFold(strings.TrimSpace(s), string(t)) {
			return t, nil
		}
	}
	return "", errkind.Errorf(errkind.Invalid,
		"the mailbox type %q is not known; use UserMailbox, SharedMailbox, GroupMailbox, PublicFolder or MailUser", s)
}

// personal reports whether mailboxes of type t belong to a user, who must
// hold an Exchange licence (rule V17); the others need none.
func (t Type) personal() bool { return t == UserMailbox || t == MailUser }

// Mailbox is an Exchange recipient with mailbox content.
type Mailbox struct {
	ID                 string `json:"id"`
	TenantID           string `json:"tenantId"`
	Type               Type   `json:"recipientTypeDetails"`
	PrimarySMTPAddress string `json:"primarySmtpAddress"`
	DisplayName        string `json:"displayName"`
	// Owner is the object id of the user a UserMailbox or MailUser
	// belongs to; empty for the other types.
	Owner string `json:"owner,omitempty"`
	// DataEncryptionPolicy is the id of the Exchange policy assigned with
	// Set-Mailbox; empty when none is (the mailbox follows the tenant's
	// multi-workload policy or the default).
	DataEncryptionPolicy string    `json:"dataEncryptionPolicy,omitempty"`
	CreatedAt            time.Time `json:"whenCreated"`
	UpdatedAt            time.Time `json:"whenChanged"`
}

// mailboxRecord is what is stored: the mailbox, its wrapped mailbox key and
// the policy version that wraps it.
type mailboxRecord struct {
	Mailbox
	WrappedKey []byte        `json:"wrappedKey"`
	Ref        dep.PolicyRef `json:"ref"`
}

// stats are a mailbox's message count and size, kept with every message
// write.
type stats struct {
	Count int   `json:"count"`
	Size  int64 `json:"size"`
}

// Spec describes a new mailbox.
type Spec struct {
	Type Type
	// PrimarySMTPAddress must use the tenant's domain; empty takes the
	// owner's user principal name.
	PrimarySMTPAddress string
	// DisplayName defaults to the owner's display name, else the address's
	// local part.
	DisplayName string
	// Owner is the user (object id or principal name) a UserMailbox or
	// MailUser belongs to; the other types have none.
	Owner string
}

// exchangePlans are the service plans that give a user an Exchange Online
// mailbox. EXCHANGE_S_FOUNDATION is absent on purpose: it ships in
// non-Exchange SKUs and grants no mailbox.
var exchangePlans = []string{"EXCHANGE_S_STANDARD", "EXCHANGE_S_ENTERPRISE", "EXCHANGE_S_DESKLESS", "EXCHANGE_S_ESSENTIALS"}

// hasExchange reports whether a licence of t includes Exchange Online.
func hasExchange(t directory.Tenant) bool {
	for _, l := range t.Licenses {
		for _, p := range l.ServicePlans {
			if slices.Contains(exchangePlans, p.Name) {
				return true
			}
		}
	}
	return false
}

func errUnlicensed(t directory.Tenant, typ Type) error {
	return errkind.Errorf(errkind.FailedPrecondition,
		"a %s needs an Exchange Online licence and no licence of tenant %s includes one (rule V17); "+
			"the operator adds one with customerkey tenant license add --tenant-id %s --license \"Microsoft 365 E5\" "+
			"(shared, group and public folder mailboxes need none)", typ, t.ID, t.ID).WithCode("LicenseRequired")
}

// checkAddress validates a primary SMTP address of tenant t and returns it
// lowercased.
func checkAddress(addr string, t directory.Tenant) (string, error) {
	a := lower(addr)
	p, err := netmail.ParseAddress(a)
	local, domain, ok := strings.Cut(a, "@")
	if err != nil || p.Name != "" || p.Address != a || !ok || local == "" || len(a) > 320 {
		return "", errkind.Errorf(errkind.Invalid, "the primary SMTP address %q must look like alias@%s", addr, t.DefaultDomain)
	}
	if domain != t.DefaultDomain {
		return "", errkind.Errorf(errkind.Invalid, "the primary SMTP address %q must use the tenant's domain %s", addr, t.DefaultDomain)
	}
	return a, nil
}

// scopeAAD binds a wrapped mailbox key to its tenant and mailbox, so that a
// wrapped key copied to another mailbox record does not unwrap.
func scopeAAD(tid, id string) []byte { return []byte(kMbx + tid + "/" + id) }

// CreateMailbox creates a mailbox in tenant tid. Its mailbox key is
// wrapped at once under the tenant's effective policy for Exchange.
func (s *Service) CreateMailbox(ctx context.Context, c directory.Caller, tid string, spec Spec) (Mailbox, error) {
	const action = "mail/mailboxes/create"
	tid, err := scope.CheckTenant(tid)
	if err != nil {
		return Mailbox{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, action, spec.PrimarySMTPAddress); err != nil {
		return Mailbox{}, err
	}
	if !slices.Contains(types, spec.Type) {
		_, err := ParseType(string(spec.Type))
		return Mailbox{}, err
	}
	t, err := s.dir.Tenant(ctx, tid)
	if err != nil {
		return Mailbox{}, err
	}
	now := s.now().UTC()
	m := Mailbox{TenantID: tid, Type: spec.Type, DisplayName: strings.TrimSpace(spec.DisplayName), CreatedAt: now, UpdatedAt: now}
	addr := spec.PrimarySMTPAddress
	switch {
	case spec.Type.personal() && strings.TrimSpace(spec.Owner) == "":
		return Mailbox{}, errkind.Errorf(errkind.Invalid, "a %s belongs to a user: name its owner (object id or user principal name)", spec.Type)
	case spec.Type.personal():
		u, err := s.dir.User(ctx, directory.System, tid, spec.Owner)
		if errors.Is(err, directory.ErrUserNotFound) {
			return Mailbox{}, errkind.Errorf(errkind.Invalid, "the owner %q is not a user of tenant %s", spec.Owner, tid).WithCode("UserNotFound")
		} else if err != nil {
			return Mailbox{}, err
		}
		if !hasExchange(t) {
			return Mailbox{}, errUnlicensed(t, spec.Type)
		}
		m.Owner = u.ID
		if addr == "" {
			addr = u.UserPrincipalName
		}
		if m.DisplayName == "" {
			m.DisplayName = u.DisplayName
		}
	case spec.Owner != "":
		return Mailbox{}, errkind.Errorf(errkind.Invalid, "a %s has no owner; leave the owner empty and grant access through the administrators", spec.Type)
	}
	if m.PrimarySMTPAddress, err = checkAddress(addr, t); err != nil {
		return Mailbox{}, err
	}
	if m.DisplayName == "" {
		m.DisplayName, _, _ = strings.Cut(m.PrimarySMTPAddress, "@")
	}
	if len(m.DisplayName) > 256 {
		return Mailbox{}, errkind.New(errkind.Invalid, "the display name has more than 256 characters")
	}
	if m.ID, err = s.newID(); err != nil {
		return Mailbox{}, err
	}
	rec := mailboxRecord{Mailbox: m}
	if rec.Ref, err = s.dep.Effective(ctx, tid, dep.Mail); err != nil {
		return Mailbox{}, err
	}
	key, err := envelope.NewKey()
	if err != nil {
		return Mailbox{}, err
	}
	rec.WrappedKey, err = s.dep.WrapScopeKey(ctx, rec.Ref, key, scopeAAD(tid, m.ID))
	key.Wipe()
	if err != nil {
		return Mailbox{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		if _, err := tx.Put(kSMTP+tid+"/"+m.PrimarySMTPAddress, []byte(m.ID), storage.MustNotExist); err != nil {
			if errors.Is(err, storage.ErrConflict) {
				return errkind.Errorf(errkind.AlreadyExists, "the address %s is already the primary SMTP address of another mailbox", m.PrimarySMTPAddress)
			}
			return err
		}
		if m.Owner != "" {
			if _, err := tx.Put(kOwner+tid+"/"+m.Owner, []byte(m.ID), storage.MustNotExist); err != nil {
				if errors.Is(err, storage.ErrConflict) {
					return errkind.Errorf(errkind.AlreadyExists, "the user %s already has a mailbox", m.Owner)
				}
				return err
			}
		}
		if err := storage.PutJSON(tx, kMbx+tid+"/"+m.ID, rec, storage.MustNotExist); err != nil {
			return err
		}
		if err := storage.PutJSON(tx, kStat+tid+"/"+m.ID, stats{}, storage.MustNotExist); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, c, tid, action, m.PrimarySMTPAddress)
	})
	if err != nil {
		return Mailbox{}, err
	}
	return m, nil
}

// lookup resolves a mailbox by id or primary SMTP address inside tx.
func lookup(tx storage.Tx, tid, identity string) (mailboxRecord, int64, error) {
	var rec mailboxRecord
	id := lower(identity)
	if !isGUID(id) {
		if storage.CheckKey(kSMTP+tid+"/"+id) != nil {
			return rec, 0, ErrMailboxNotFound
		}
		e, err := tx.Get(kSMTP + tid + "/" + id)
		if err != nil {
			return rec, 0, notFound(err, ErrMailboxNotFound)
		}
		id = string(e.Value)
	}
	v, err := storage.GetJSON(tx, kMbx+tid+"/"+id, &rec)
	return rec, v, notFound(err, ErrMailboxNotFound)
}

// mailbox reads a mailbox of tid that c may see; another tenant's caller
// gets ErrMailboxNotFound.
func (s *Service) mailbox(ctx context.Context, c directory.Caller, tid, identity string) (mailboxRecord, int64, error) {
	tid, err := scope.CheckTenant(tid)
	if err != nil || !scope.InTenant(c, tid) {
		return mailboxRecord{}, 0, ErrMailboxNotFound
	}
	var rec mailboxRecord
	var ver int64
	err = s.store.View(ctx, func(tx storage.Tx) error {
		var err error
		rec, ver, err = lookup(tx, tid, identity)
		return err
	})
	return rec, ver, err
}

// GetMailbox returns a mailbox by id or primary SMTP address, to its owner
// and to the tenant's Global and Exchange Administrators.
func (s *Service) GetMailbox(ctx context.Context, c directory.Caller, tid, identity string) (Mailbox, error) {
	rec, _, err := s.mailbox(ctx, c, tid, identity)
	if err != nil {
		return Mailbox{}, err
	}
	if rec.Owner != "" && lower(c.ID) == rec.Owner {
		return rec.Mailbox, nil
	}
	if err := s.authorizeAdmin(ctx, c, rec.TenantID, "mail/mailboxes/read", rec.PrimarySMTPAddress); err != nil {
		return Mailbox{}, err
	}
	return rec.Mailbox, nil
}

// MailboxPage is one page of mailboxes, in id order, and the token of the
// next page (empty on the last).
type MailboxPage struct {
	Mailboxes []Mailbox `json:"value"`
	Next      string    `json:"nextPageToken,omitempty"`
}

// ListMailboxes lists up to limit mailboxes of tid after pageToken (empty
// for the first page).
func (s *Service) ListMailboxes(ctx context.Context, c directory.Caller, tid, pageToken string, limit int) (MailboxPage, error) {
	tid, err := scope.CheckTenant(tid)
	if err != nil {
		return MailboxPage{}, err
	}
	if err := s.authorizeAdmin(ctx, c, tid, "mail/mailboxes/read", ""); err != nil {
		return MailboxPage{}, err
	}
	if pageToken != "" && !isGUID(pageToken) {
		return MailboxPage{}, scope.ErrBadPageToken
	}
	recs, next, err := scope.List[mailboxRecord](ctx, s.store, kMbx+tid+"/", lower(pageToken), limit)
	if err != nil {
		return MailboxPage{}, err
	}
	page := MailboxPage{Mailboxes: make([]Mailbox, len(recs)), Next: next}
	for i, r := range recs {
		page.Mailboxes[i] = r.Mailbox
	}
	return page, nil
}

// SetMailboxPolicy assigns the Exchange data encryption policy named by
// policy (name or id) to a mailbox, or with policy "" ($null) removes the
// assignment so that the mailbox follows the tenant's multi-workload policy
// or the default again. The mailbox key is rewrapped by the background job,
// which this call wakes; MailboxStatistics reports the policy that wraps
// the key now.
func (s *Service) SetMailboxPolicy(ctx context.Context, c directory.Caller, tid, identity, policy string) (Mailbox, error) {
	const action = "mail/mailboxes/setDataEncryptionPolicy"
	rec, _, err := s.mailbox(ctx, c, tid, identity)
	if err != nil {
		return Mailbox{}, err
	}
	tid = rec.TenantID
	if err := s.authorizeAdmin(ctx, c, tid, action, rec.PrimarySMTPAddress); err != nil {
		return Mailbox{}, err
	}
	assigned := ""
	if strings.TrimSpace(policy) != "" {
		ref, err := s.dep.ExchangePolicy(ctx, tid, policy)
		if err != nil {
			return Mailbox{}, err
		}
		if rec.Type.personal() {
			t, err := s.dir.Tenant(ctx, tid)
			if err != nil {
				return Mailbox{}, err
			}
			if !hasExchange(t) {
				return Mailbox{}, errUnlicensed(t, rec.Type)
			}
		}
		assigned = ref.PolicyID
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		cur, ver, err := lookup(tx, tid, rec.ID)
		if err != nil {
			return err
		}
		if cur.DataEncryptionPolicy == assigned {
			rec = cur
			return nil
		}
		cur.DataEncryptionPolicy = assigned
		cur.UpdatedAt = s.now().UTC()
		if err := storage.PutJSON(tx, kMbx+tid+"/"+cur.ID, cur, ver); err != nil {
			return err
		}
		rec = cur
		target := cur.PrimarySMTPAddress + " -> " + assigned
		if assigned == "" {
			target = cur.PrimarySMTPAddress + " -> $null"
		}
		return s.audit.Record(ctx, tx, c, tid, action, target)
	})
	if err != nil {
		return Mailbox{}, err
	}
	s.Kick(tid)
	return rec.Mailbox, nil
}

// Statistics is what Get-MailboxStatistics reports about a mailbox's
// encryption and content.
type Statistics struct {
	MailboxID   string `json:"mailboxGuid"`
	DisplayName string `json:"displayName"`
	ItemCount   int    `json:"itemCount"`
	// TotalItemSize is the plaintext size of the messages, in bytes.
	TotalItemSize int64 `json:"totalItemSize"`
	// DataEncryptionPolicyID is the policy that wraps the mailbox key now;
	// it changes when the rewrap job applies an assignment or a key
	// refresh.
	DataEncryptionPolicyID string `json:"dataEncryptionPolicyId"`
	// IsEncrypted: the mailbox key is wrapped under a customer policy and
	// that policy version is the mailbox's effective one.
	IsEncrypted bool `json:"isEncrypted"`
}

// MailboxStatistics reports a mailbox's encryption and content, to the
// tenant's Global and Exchange Administrators.
func (s *Service) MailboxStatistics(ctx context.Context, c directory.Caller, tid, identity string) (Statistics, error) {
	rec, _, err := s.mailbox(ctx, c, tid, identity)
	if err != nil {
		return Statistics{}, err
	}
	if err := s.authorizeAdmin(ctx, c, rec.TenantID, "mail/mailboxes/statistics", rec.PrimarySMTPAddress); err != nil {
		return Statistics{}, err
	}
	var st stats
	err = s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, kStat+rec.TenantID+"/"+rec.ID, &st)
		return notFound(err, ErrMailboxNotFound)
	})
	if err != nil {
		return Statistics{}, err
	}
	eff, err := s.effective(ctx, rec.Mailbox)
	if err != nil {
		return Statistics{}, err
	}
	return Statistics{MailboxID: rec.ID, DisplayName: rec.DisplayName, ItemCount: st.Count, TotalItemSize: st.Size,
		DataEncryptionPolicyID: rec.Ref.PolicyID, IsEncrypted: rec.Ref.IsCustomer() && rec.Ref.Same(eff)}, nil
}

// DeleteMailbox deletes a mailbox with its key and every message.
func (s *Service) DeleteMailbox(ctx context.Context, c directory.Caller, tid, identity string) error {
	const action = "mail/mailboxes/delete"
	rec, _, err := s.mailbox(ctx, c, tid, identity)
	if err != nil {
		return err
	}
	if err := s.authorizeAdmin(ctx, c, rec.TenantID, action, rec.PrimarySMTPAddress); err != nil {
		return err
	}
	return s.destroy(ctx, c, rec.Mailbox, action)
}

// destroyPage bounds the messages one transaction of destroy deletes.
const destroyPage = 500

// destroy deletes m's messages a page per transaction, then, in the last
// transaction, whatever messages remain, the mailbox record (with its
// wrapped key), its indexes and stats. A message written meanwhile either
// lands before the last transaction, which deletes it, or finds the
// mailbox gone. Interrupted, it leaves the mailbox in place, so running it
// again finishes the job.
func (s *Service) destroy(ctx context.Context, c directory.Caller, m Mailbox, action string) error {
	tid, msgs := m.TenantID, kMsg+m.TenantID+"/"+m.ID+"/"
	for {
		last := false
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			entries, err := tx.List(msgs, "", destroyPage+1)
			if err != nil {
				return err
			}
			last = len(entries) <= destroyPage
			for _, e := range entries[:min(len(entries), destroyPage)] {
				id := strings.TrimPrefix(e.Key, msgs)
				if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
					return err
				}
				if err := tx.Delete(kBody+tid+"/"+m.ID+"/"+id, storage.AnyVersion); err != nil {
					return err
				}
			}
			if !last {
				return nil
			}
			for _, k := range []string{kMbx + tid + "/" + m.ID, kSMTP + tid + "/" + m.PrimarySMTPAddress, kStat + tid + "/" + m.ID} {
				if err := tx.Delete(k, storage.AnyVersion); err != nil {
					return err
				}
			}
			if m.Owner != "" {
				if err := tx.Delete(kOwner+tid+"/"+m.Owner, storage.AnyVersion); err != nil {
					return err
				}
			}
			return s.audit.Record(ctx, tx, c, tid, action, m.PrimarySMTPAddress)
		})
		if err != nil {
			return fmt.Errorf("mail: deleting mailbox %s: %w", m.ID, err)
		}
		if last {
			return nil
		}
	}
}
