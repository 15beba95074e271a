package mail

import (
	"context"
	"encoding/json"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/envelope"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// NewMessage is a message to store.
type NewMessage struct {
	Subject string
	From    string   // an RFC 5322 address, with or without a display name
	To      []string // 1 to MaxRecipients addresses
	Body    []byte
}

// MessageSummary is a message without its body.
type MessageSummary struct {
	ID         string    `json:"id"`
	MailboxID  string    `json:"mailboxId"`
	Subject    string    `json:"subject"`
	From       string    `json:"from"`
	To         []string  `json:"toRecipients"`
	Size       int64     `json:"size"`
	ReceivedAt time.Time `json:"receivedDateTime"`
}

// Message is a message with its body.
type Message struct {
	MessageSummary
	Body []byte `json:"body"`
}

// messageRecord is what is stored of a message besides its body: the data
// key sealed by the mailbox key and the header sealed by the data key.
type messageRecord struct {
	ID         string    `json:"id"`
	ReceivedAt time.Time `json:"receivedAt"`
	Size       int64     `json:"size"`
	WrappedKey []byte    `json:"wrappedKey"`
	Header     []byte    `json:"header"`
}

// header is the sealed part of a message that lists show.
type header struct {
	Subject string   `json:"subject"`
	From    string   `json:"from"`
	To      []string `json:"to"`
}

// Key ids name what sealed each blob: the mailbox key seals data keys, a
// message's data key seals its header and body. Mailbox keys are never
// replaced (a policy change rewraps the same key), so their version is 1.
func mailboxKeyID(id string) string { return "mailbox/" + id }
func messageKeyID(id string) string { return "message/" + id }

const keyVersion = 1

// Additional data binds each blob to its place: a data key, header or
// body moved to another message or mailbox does not open.
func msgKey(tid, mbx, id string) string  { return kMsg + tid + "/" + mbx + "/" + id }
func bodyKey(tid, mbx, id string) string { return kBody + tid + "/" + mbx + "/" + id }

func checkMessage(m NewMessage) (header, int64, error) {
	h := header{Subject: m.Subject}
	if len(m.Subject) > MaxSubjectLen || !utf8.ValidString(m.Subject) ||
		strings.ContainsFunc(m.Subject, func(r rune) bool { return unicode.IsControl(r) && r != '\t' }) {
		return h, 0, errkind.Errorf(errkind.Invalid, "the subject must be valid UTF-8 of at most %d bytes without control characters", MaxSubjectLen)
	}
	from, err := netmail.ParseAddress(m.From)
	if err != nil {
		return h, 0, errkind.Errorf(errkind.Invalid, "the sender %q is not an email address such as Alex <alex@contoso.com>", m.From)
	}
	h.From = from.String()
	if len(m.To) == 0 || len(m.To) > MaxRecipients {
		return h, 0, errkind.Errorf(errkind.Invalid, "a message needs 1 to %d recipients, got %d", MaxRecipients, len(m.To))
	}
	size := int64(len(m.Body) + len(h.Subject) + len(h.From))
	for _, t := range m.To {
		a, err := netmail.ParseAddress(t)
		if err != nil {
			return h, 0, errkind.Errorf(errkind.Invalid, "the recipient %q is not an email address such as kim@contoso.com", t)
		}
		h.To = append(h.To, a.String())
		size += int64(len(h.To[len(h.To)-1]))
	}
	if size > MaxMessageSize {
		return h, 0, errkind.Errorf(errkind.TooLarge, "the message has %d bytes; the limit is %d (4 MiB)", size, MaxMessageSize).
			WithCode("MessageTooLarge")
	}
	return h, size, nil
}

// contentAccess returns the mailbox named by identity once c may use its
// messages.
func (s *Service) contentAccess(ctx context.Context, c directory.Caller, tid, identity string) (mailboxRecord, error) {
	rec, _, err := s.mailbox(ctx, c, tid, identity)
	if err != nil {
		return rec, err
	}
	return rec, s.authorizeContent(ctx, c, rec.Mailbox)
}

// mailboxSealer unwraps rec's mailbox key through dep, for a user request,
// and returns a sealer for it; the key itself is wiped before returning.
// Revocation errors of dep come back unchanged.
func (s *Service) mailboxSealer(ctx context.Context, rec mailboxRecord) (*envelope.Sealer, error) {
	key, err := s.dep.UnwrapScopeKey(ctx, rec.TenantID, rec.WrappedKey, scopeAAD(rec.TenantID, rec.ID), scope.Purpose(ctx))
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	return envelope.NewSealer(key, mailboxKeyID(rec.ID), keyVersion)
}

// PutMessage stores a message in a mailbox, sealed under a fresh data key
// that the mailbox key wraps.
func (s *Service) PutMessage(ctx context.Context, c directory.Caller, tid, mailbox string, m NewMessage) (MessageSummary, error) {
	rec, err := s.contentAccess(ctx, c, tid, mailbox)
	if err != nil {
		return MessageSummary{}, err
	}
	h, size, err := checkMessage(m)
	if err != nil {
		return MessageSummary{}, err
	}
	mbx, err := s.mailboxSealer(ctx, rec)
	if err != nil {
		return MessageSummary{}, err
	}
	tid = rec.TenantID
	sum := MessageSummary{MailboxID: rec.ID, Subject: h.Subject, From: h.From, To: h.To, Size: size, ReceivedAt: s.now().UTC()}
	if sum.ID, err = s.newTimeID(); err != nil {
		return MessageSummary{}, err
	}
	mr := messageRecord{ID: sum.ID, ReceivedAt: sum.ReceivedAt, Size: size}
	hdr, err := json.Marshal(h)
	if err != nil {
		return MessageSummary{}, fmt.Errorf("mail: encoding a message header: %w", err)
	}
	var body []byte
	if err := s.withDataKey(sum.ID, func(data *envelope.Sealer, dk secret.Bytes) {
		mr.WrappedKey = mbx.Seal(dk.Reveal(), []byte(msgKey(tid, rec.ID, sum.ID)))
		mr.Header = data.Seal(hdr, []byte(msgKey(tid, rec.ID, sum.ID)))
		body = data.Seal(m.Body, []byte(bodyKey(tid, rec.ID, sum.ID)))
	}); err != nil {
		return MessageSummary{}, err
	}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		// The mailbox may have been deleted since it was read.
		if _, err := tx.Get(kMbx + tid + "/" + rec.ID); err != nil {
			return notFound(err, ErrMailboxNotFound)
		}
		if err := storage.PutJSON(tx, msgKey(tid, rec.ID, sum.ID), mr, storage.MustNotExist); err != nil {
			return err
		}
		if _, err := tx.Put(bodyKey(tid, rec.ID, sum.ID), body, storage.MustNotExist); err != nil {
			return err
		}
		return addStats(tx, tid, rec.ID, 1, size)
	})
	if err != nil {
		return MessageSummary{}, err
	}
	return sum, nil
}

// withDataKey makes a fresh data key for message id, hands it and a sealer
// for it to fn, and wipes it.
func (s *Service) withDataKey(id string, fn func(*envelope.Sealer, secret.Bytes)) error {
	dk, err := envelope.NewKey()
	if err != nil {
		return err
	}
	defer dk.Wipe()
	data, err := envelope.NewSealer(dk, messageKeyID(id), keyVersion)
	if err != nil {
		return err
	}
	fn(data, dk)
	return nil
}

// addStats changes a mailbox's count and size inside tx.
func addStats(tx storage.Tx, tid, mbx string, n int, size int64) error {
	var st stats
	v, err := storage.GetJSON(tx, kStat+tid+"/"+mbx, &st)
	if err != nil {
		return notFound(err, ErrMailboxNotFound)
	}
	st.Count += n
	st.Size += size
	return storage.PutJSON(tx, kStat+tid+"/"+mbx, st, v)
}

// openMessage unseals a message's data key with the mailbox sealer and
// returns a sealer for it and the header.
func openMessage(mbx *envelope.Sealer, tid, mailboxID string, mr messageRecord) (*envelope.Sealer, header, error) {
	var h header
	raw, err := mbx.Open(mr.WrappedKey, []byte(msgKey(tid, mailboxID, mr.ID)))
	if err != nil {
		return nil, h, scope.Damaged("data key of message "+mr.ID, err)
	}
	dk := secret.New(raw)
	defer dk.Wipe()
	data, err := envelope.NewSealer(dk, messageKeyID(mr.ID), keyVersion)
	if err != nil {
		return nil, h, err
	}
	hdr, err := data.Open(mr.Header, []byte(msgKey(tid, mailboxID, mr.ID)))
	if err != nil {
		return nil, h, scope.Damaged("header of message "+mr.ID, err)
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, h, scope.Damaged("header of message "+mr.ID, err)
	}
	return data, h, nil
}

func summary(mailboxID string, mr messageRecord, h header) MessageSummary {
	return MessageSummary{ID: mr.ID, MailboxID: mailboxID, Subject: h.Subject, From: h.From, To: h.To, Size: mr.Size, ReceivedAt: mr.ReceivedAt}
}

// GetMessage returns a message with its body. When the customer has revoked
// the policy's root keys, the error is dep's (PermissionDenied).
func (s *Service) GetMessage(ctx context.Context, c directory.Caller, tid, mailbox, id string) (Message, error) {
	rec, err := s.contentAccess(ctx, c, tid, mailbox)
	if err != nil {
		return Message{}, err
	}
	tid, id = rec.TenantID, lower(id)
	if !isGUID(id) {
		return Message{}, ErrMessageNotFound
	}
	var mr messageRecord
	var body []byte
	err = s.store.View(ctx, func(tx storage.Tx) error {
		if _, err := storage.GetJSON(tx, msgKey(tid, rec.ID, id), &mr); err != nil {
			return notFound(err, ErrMessageNotFound)
		}
		e, err := tx.Get(bodyKey(tid, rec.ID, id))
		if err != nil {
			return notFound(err, ErrMessageNotFound)
		}
		body = e.Value
		return nil
	})
	if err != nil {
		return Message{}, err
	}
	mbx, err := s.mailboxSealer(ctx, rec)
	if err != nil {
		return Message{}, err
	}
	data, h, err := openMessage(mbx, tid, rec.ID, mr)
	if err != nil {
		return Message{}, err
	}
	plain, err := data.Open(body, []byte(bodyKey(tid, rec.ID, id)))
	if err != nil {
		return Message{}, scope.Damaged("body of message "+id, err)
	}
	return Message{MessageSummary: summary(rec.ID, mr, h), Body: plain}, nil
}

// MessagePage is one page of message summaries, oldest first, and the
// token of the next page (empty on the last).
type MessagePage struct {
	Messages []MessageSummary `json:"value"`
	Next     string           `json:"nextPageToken,omitempty"`
}

// ListMessages lists up to limit message summaries of a mailbox after
// pageToken (empty for the first page), oldest first.
func (s *Service) ListMessages(ctx context.Context, c directory.Caller, tid, mailbox, pageToken string, limit int) (MessagePage, error) {
	rec, err := s.contentAccess(ctx, c, tid, mailbox)
	if err != nil {
		return MessagePage{}, err
	}
	if pageToken != "" && !isGUID(pageToken) {
		return MessagePage{}, scope.ErrBadPageToken
	}
	tid = rec.TenantID
	recs, next, err := scope.List[messageRecord](ctx, s.store, kMsg+tid+"/"+rec.ID+"/", lower(pageToken), limit)
	if err != nil {
		return MessagePage{}, err
	}
	page := MessagePage{Messages: make([]MessageSummary, 0, len(recs)), Next: next}
	if len(recs) == 0 {
		return page, nil
	}
	mbx, err := s.mailboxSealer(ctx, rec)
	if err != nil {
		return MessagePage{}, err
	}
	for _, mr := range recs {
		_, h, err := openMessage(mbx, tid, rec.ID, mr)
		if err != nil {
			return MessagePage{}, err
		}
		page.Messages = append(page.Messages, summary(rec.ID, mr, h))
	}
	return page, nil
}

// DeleteMessage deletes a message. It needs no key: deleting the sealed
// record and its wrapped data key is enough.
func (s *Service) DeleteMessage(ctx context.Context, c directory.Caller, tid, mailbox, id string) error {
	rec, err := s.contentAccess(ctx, c, tid, mailbox)
	if err != nil {
		return err
	}
	tid, id = rec.TenantID, lower(id)
	if !isGUID(id) {
		return ErrMessageNotFound
	}
	return s.store.Update(ctx, func(tx storage.Tx) error {
		var mr messageRecord
		if _, err := storage.GetJSON(tx, msgKey(tid, rec.ID, id), &mr); err != nil {
			return notFound(err, ErrMessageNotFound)
		}
		if err := tx.Delete(msgKey(tid, rec.ID, id), storage.AnyVersion); err != nil {
			return err
		}
		if err := tx.Delete(bodyKey(tid, rec.ID, id), storage.AnyVersion); err != nil {
			return err
		}
		return addStats(tx, tid, rec.ID, -1, -mr.Size)
	})
}
