package ckapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/httpx"
	"github.com/customerkey/customerkey/internal/workload/mail"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

// Mail is the mailbox workload; package workload/mail implements it and
// authorizes every call itself.
type Mail interface {
	CreateMailbox(ctx context.Context, c directory.Caller, tid string, spec mail.Spec) (mail.Mailbox, error)
	GetMailbox(ctx context.Context, c directory.Caller, tid, identity string) (mail.Mailbox, error)
	ListMailboxes(ctx context.Context, c directory.Caller, tid, pageToken string, limit int) (mail.MailboxPage, error)
	SetMailboxPolicy(ctx context.Context, c directory.Caller, tid, identity, policy string) (mail.Mailbox, error)
	MailboxStatistics(ctx context.Context, c directory.Caller, tid, identity string) (mail.Statistics, error)
	DeleteMailbox(ctx context.Context, c directory.Caller, tid, identity string) error
	PutMessage(ctx context.Context, c directory.Caller, tid, mailbox string, m mail.NewMessage) (mail.MessageSummary, error)
	GetMessage(ctx context.Context, c directory.Caller, tid, mailbox, id string) (mail.Message, error)
	ListMessages(ctx context.Context, c directory.Caller, tid, mailbox, pageToken string, limit int) (mail.MessagePage, error)
	DeleteMessage(ctx context.Context, c directory.Caller, tid, mailbox, id string) error
}

var _ Mail = (*mail.Service)(nil)

// maxMessageBody bounds a message request: the largest message mail
// accepts, with room for one escape character per byte of its JSON
// strings, and for the JSON around them.
const maxMessageBody = 2*mail.MaxMessageSize + 64<<10

func (a *API) registerMail(route func(string, int64, httpx.HandlerFunc)) {
	const small = 64 << 10
	const mbx = tenantBase + "/mailboxes"
	route("POST "+mbx, small, a.createMailbox)
	route("GET "+mbx, small, a.listMailboxes)
	route("GET "+mbx+"/{identity}", small, a.getMailbox)
	route("PATCH "+mbx+"/{identity}", small, a.setMailbox)
	route("DELETE "+mbx+"/{identity}", small, a.deleteMailbox)
	route("GET "+mbx+"/{identity}/statistics", small, a.mailboxStatistics)
	route("POST "+mbx+"/{identity}/messages", maxMessageBody, a.putMessage)
	route("GET "+mbx+"/{identity}/messages", small, a.listMessages)
	route("GET "+mbx+"/{identity}/messages/{id}", small, a.getMessage)
	route("DELETE "+mbx+"/{identity}/messages/{id}", small, a.deleteMessage)
}

// pageQuery reads ?top= and ?pageToken= of a list the domain pages; top is 0
// (the domain's default page) when not given.
func pageQuery(r *http.Request, maxTop int) (token string, top int, err error) {
	q := r.URL.Query()
	if s := q.Get("top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxTop {
			return "", 0, errkind.Errorf(errkind.Invalid, "top must be a whole number from 1 to %d", maxTop).WithCode("BadRequest")
		}
		top = n
	}
	return q.Get("pageToken"), top, nil
}

type createMailboxIn struct {
	Type               string `json:"type"`
	PrimarySMTPAddress string `json:"primarySmtpAddress"`
	DisplayName        string `json:"displayName"`
	Owner              string `json:"owner"`
}

func (a *API) createMailbox(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in createMailboxIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	typ, err := mail.ParseType(in.Type)
	if err != nil {
		return err
	}
	m, err := a.o.Mail.CreateMailbox(r.Context(), c, tid,
		mail.Spec{Type: typ, PrimarySMTPAddress: in.PrimarySMTPAddress, DisplayName: in.DisplayName, Owner: in.Owner})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+url.PathEscape(m.TenantID)+"/mailboxes/"+m.ID)
	return httpx.JSON(w, http.StatusCreated, m)
}

func (a *API) listMailboxes(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	token, top, err := pageQuery(r, scope.MaxPage)
	if err != nil {
		return err
	}
	p, err := a.o.Mail.ListMailboxes(r.Context(), c, tid, token, top)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, p)
}

func (a *API) getMailbox(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	m, err := a.o.Mail.GetMailbox(r.Context(), c, tid, r.PathValue("identity"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, m)
}

// setMailbox is Set-Mailbox -DataEncryptionPolicy: a policy's name or id
// assigns it, null ($null) returns the mailbox to the tenant's
// multi-workload policy or the default. An absent field is refused rather
// than read as null, so that a request that forgot it changes nothing.
func (a *API) setMailbox(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in struct {
		// Raw, to tell null from absent: json hands a RawMessage the
		// literal null, and leaves it empty when the field is absent.
		DataEncryptionPolicy json.RawMessage `json:"dataEncryptionPolicy"`
	}
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	policy := ""
	switch raw := in.DataEncryptionPolicy; {
	case len(raw) == 0:
		return errkind.New(errkind.Invalid,
			`nothing to change: give {"dataEncryptionPolicy": "<policy name or id>"}, or null to remove the mailbox's policy`).WithCode("BadRequest")
	case string(raw) == "null":
	default:
		if err := json.Unmarshal(raw, &policy); err != nil || strings.TrimSpace(policy) == "" {
			return errkind.New(errkind.Invalid,
				"dataEncryptionPolicy must be a mailbox policy's name or id, or null to remove the mailbox's policy").WithCode("BadRequest")
		}
	}
	m, err := a.o.Mail.SetMailboxPolicy(r.Context(), c, tid, r.PathValue("identity"), policy)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, m)
}

func (a *API) deleteMailbox(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	if err := a.o.Mail.DeleteMailbox(r.Context(), c, tid, r.PathValue("identity")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) mailboxStatistics(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	st, err := a.o.Mail.MailboxStatistics(r.Context(), c, tid, r.PathValue("identity"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, st)
}

type putMessageIn struct {
	Subject string   `json:"subject"`
	From    string   `json:"from"`
	To      []string `json:"to"`
	Body    string   `json:"body"`
}

// Message is a message with its body, which travels as a JSON string (the
// mail workload keeps it as bytes).
type Message struct {
	mail.MessageSummary
	Body string `json:"body"`
}

func (a *API) putMessage(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	var in putMessageIn
	if err := httpx.DecodeJSON(r, &in); err != nil {
		return err
	}
	sum, err := a.o.Mail.PutMessage(r.Context(), c, tid, r.PathValue("identity"),
		mail.NewMessage{Subject: in.Subject, From: in.From, To: in.To, Body: []byte(in.Body)})
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/customerkey/v1/tenants/"+url.PathEscape(tid)+"/mailboxes/"+sum.MailboxID+"/messages/"+sum.ID)
	return httpx.JSON(w, http.StatusCreated, sum)
}

func (a *API) listMessages(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	token, top, err := pageQuery(r, scope.MaxPage)
	if err != nil {
		return err
	}
	p, err := a.o.Mail.ListMessages(r.Context(), c, tid, r.PathValue("identity"), token, top)
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, p)
}

func (a *API) getMessage(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	m, err := a.o.Mail.GetMessage(r.Context(), c, tid, r.PathValue("identity"), r.PathValue("id"))
	if err != nil {
		return err
	}
	return httpx.JSON(w, http.StatusOK, Message{MessageSummary: m.MessageSummary, Body: string(m.Body)})
}

func (a *API) deleteMessage(w http.ResponseWriter, r *http.Request) error {
	c, tid, err := a.tenantCaller(r)
	if err != nil {
		return err
	}
	if err := a.o.Mail.DeleteMessage(r.Context(), c, tid, r.PathValue("identity"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
