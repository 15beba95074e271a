package mail_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/dep/deptest"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/mail"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

func TestCreateMailbox(t *testing.T) {
	e := newEnv(t)
	noLicAdmin := caller(e.nolic.Tenant.ID, e.nolic.Admin.ID)
	noLicUser := e.user(e.nolic, "carol")
	e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr("taken")})
	tests := []struct {
		name     string
		c        directory.Caller
		tid      string
		spec     mail.Spec
		wantKind errkind.Kind // 0 (Internal) with wantOK
		wantOK   bool
		wantAddr string
	}{
		{name: "user mailbox takes the owner's UPN", c: e.admin, spec: mail.Spec{Type: mail.UserMailbox, Owner: e.alice.ID},
			wantOK: true, wantAddr: e.addr("alice")},
		{name: "owner by UPN, by the Exchange Administrator", c: e.exch,
			spec:   mail.Spec{Type: mail.MailUser, Owner: e.addr("bob"), PrimarySMTPAddress: e.addr("Bob.Smith")},
			wantOK: true, wantAddr: e.addr("bob.smith")},
		{name: "shared mailbox", c: e.admin, spec: mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr("sales")},
			wantOK: true, wantAddr: e.addr("sales")},
		{name: "group and public folder", c: e.admin, spec: mail.Spec{Type: mail.GroupMailbox, PrimarySMTPAddress: e.addr("team")},
			wantOK: true, wantAddr: e.addr("team")},
		{name: "user already has a mailbox", c: e.admin, spec: mail.Spec{Type: mail.UserMailbox, Owner: e.alice.ID, PrimarySMTPAddress: e.addr("alice2")},
			wantKind: errkind.AlreadyExists},
		{name: "address taken", c: e.admin, spec: mail.Spec{Type: mail.PublicFolder, PrimarySMTPAddress: e.addr("TAKEN")},
			wantKind: errkind.AlreadyExists},
		{name: "foreign domain", c: e.admin, spec: mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: "x@example.com"},
			wantKind: errkind.Invalid},
		{name: "not an address", c: e.admin, spec: mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: "Sales <" + e.addr("s") + ">"},
			wantKind: errkind.Invalid},
		{name: "user mailbox without owner", c: e.admin, spec: mail.Spec{Type: mail.UserMailbox, PrimarySMTPAddress: e.addr("u")},
			wantKind: errkind.Invalid},
		{name: "shared mailbox with owner", c: e.admin, spec: mail.Spec{Type: mail.SharedMailbox, Owner: e.bob.ID, PrimarySMTPAddress: e.addr("s2")},
			wantKind: errkind.Invalid},
		{name: "owner of another tenant", c: e.admin, spec: mail.Spec{Type: mail.UserMailbox, Owner: e.other.Admin.ID},
			wantKind: errkind.Invalid},
		{name: "unknown type", c: e.admin, spec: mail.Spec{Type: "RoomMailbox", PrimarySMTPAddress: e.addr("room")},
			wantKind: errkind.Invalid},
		{name: "plain user", c: e.alice, spec: mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr("s3")},
			wantKind: errkind.PermissionDenied},
		{name: "admin of another tenant", c: e.oAdmin, spec: mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr("s4")},
			wantKind: errkind.PermissionDenied},
		{name: "V17: user mailbox needs an Exchange licence", c: noLicAdmin, tid: e.nolic.Tenant.ID,
			spec: mail.Spec{Type: mail.UserMailbox, Owner: noLicUser.ID}, wantKind: errkind.FailedPrecondition},
		{name: "V17: mail user needs one too", c: noLicAdmin, tid: e.nolic.Tenant.ID,
			spec: mail.Spec{Type: mail.MailUser, Owner: noLicUser.ID}, wantKind: errkind.FailedPrecondition},
		{name: "V17: a shared mailbox needs none", c: noLicAdmin, tid: e.nolic.Tenant.ID,
			spec:   mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: "info@" + e.nolic.Tenant.DefaultDomain},
			wantOK: true, wantAddr: "info@" + e.nolic.Tenant.DefaultDomain},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tid := tc.tid
			if tid == "" {
				tid = e.tid()
			}
			m, err := e.svc.CreateMailbox(e.ctx, tc.c, tid, tc.spec)
			if !tc.wantOK {
				if errkind.KindOf(err) != tc.wantKind {
					t.Fatalf("CreateMailbox(%+v) err = %v (kind %v), want kind %v", tc.spec, err, errkind.KindOf(err), tc.wantKind)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateMailbox(%+v) err = %v", tc.spec, err)
			}
			if m.PrimarySMTPAddress != tc.wantAddr || m.TenantID != tid || m.Type != tc.spec.Type {
				t.Errorf("CreateMailbox(%+v) = %+v, want address %s in tenant %s", tc.spec, m, tc.wantAddr, tid)
			}
			got, err := e.svc.GetMailbox(e.ctx, tc.c, tid, tc.wantAddr)
			if err != nil {
				t.Fatalf("GetMailbox(%s): %v", tc.wantAddr, err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("GetMailbox by address differs from the created mailbox (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseType(t *testing.T) {
	for _, s := range []string{"usermailbox", " SharedMailbox ", "GROUPMAILBOX", "PublicFolder", "mailuser"} {
		if _, err := mail.ParseType(s); err != nil {
			t.Errorf("ParseType(%q) err = %v", s, err)
		}
	}
	if _, err := mail.ParseType("RoomMailbox"); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("ParseType(RoomMailbox) err = %v, want Invalid", err)
	}
}

func TestMessageRoundTrip(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	bodies := map[string][]byte{
		"empty":  {},
		"small":  []byte("Quarterly numbers attached."),
		"binary": bytes.Repeat([]byte{0, 0xff, 0x10}, 40000),
		"max":    make([]byte, mail.MaxMessageSize-200),
	}
	var total int64
	var ids []string
	for _, name := range []string{"empty", "small", "binary", "max"} {
		in := mail.NewMessage{Subject: "Re: " + name, From: "Kim Akers <kim@example.com>", To: []string{"alice@example.com", "bob@example.com"},
			Body: bodies[name]}
		sum, err := e.svc.PutMessage(e.ctx, e.alice, e.tid(), box.PrimarySMTPAddress, in)
		if err != nil {
			t.Fatalf("PutMessage(%s): %v", name, err)
		}
		ids = append(ids, sum.ID)
		total += sum.Size
		got, err := e.svc.GetMessage(e.ctx, e.alice, e.tid(), box.ID, sum.ID)
		if err != nil {
			t.Fatalf("GetMessage(%s): %v", name, err)
		}
		if !bytes.Equal(got.Body, in.Body) || got.Subject != in.Subject || got.From != `"Kim Akers" <kim@example.com>` ||
			!slices.Equal(got.To, []string{"<alice@example.com>", "<bob@example.com>"}) || got.MailboxID != box.ID {
			t.Errorf("GetMessage(%s) = %q from %q to %q (%d body bytes), want what was put", name, got.Subject, got.From, got.To, len(got.Body))
		}
		if diff := cmp.Diff(sum, got.MessageSummary); diff != "" {
			t.Errorf("GetMessage(%s) summary differs from PutMessage's (-put +get):\n%s", name, diff)
		}
	}
	page, err := e.svc.ListMessages(e.ctx, e.alice, e.tid(), box.ID, "", 0)
	if err != nil {
		t.Fatalf("ListMessages: %v", err)
	}
	var listed []string
	for _, m := range page.Messages {
		listed = append(listed, m.ID)
	}
	if !slices.Equal(listed, ids) || page.Next != "" {
		t.Errorf("ListMessages = %v (next %q), want %v in arrival order", listed, page.Next, ids)
	}
	st := e.stats(box.ID)
	if st.ItemCount != 4 || st.TotalItemSize != total {
		t.Errorf("MailboxStatistics = %d items of %d bytes, want 4 of %d", st.ItemCount, st.TotalItemSize, total)
	}
	if err := e.svc.DeleteMessage(e.ctx, e.alice, e.tid(), box.ID, ids[1]); err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if _, err := e.svc.GetMessage(e.ctx, e.alice, e.tid(), box.ID, ids[1]); !errors.Is(err, mail.ErrMessageNotFound) {
		t.Errorf("GetMessage after DeleteMessage err = %v, want ErrMessageNotFound", err)
	}
	if err := e.svc.DeleteMessage(e.ctx, e.alice, e.tid(), box.ID, ids[1]); !errors.Is(err, mail.ErrMessageNotFound) {
		t.Errorf("second DeleteMessage err = %v, want ErrMessageNotFound", err)
	}
	if st := e.stats(box.ID); st.ItemCount != 3 {
		t.Errorf("ItemCount after delete = %d, want 3", st.ItemCount)
	}
}

func TestMessageValidation(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	ok := mail.NewMessage{Subject: "hello", From: "a@example.com", To: []string{"b@example.com"}}
	tests := []struct {
		name string
		edit func(*mail.NewMessage)
		want errkind.Kind
	}{
		{"too large", func(m *mail.NewMessage) { m.Body = make([]byte, mail.MaxMessageSize) }, errkind.TooLarge},
		{"no recipient", func(m *mail.NewMessage) { m.To = nil }, errkind.Invalid},
		{"too many recipients", func(m *mail.NewMessage) {
			m.To = slices.Repeat([]string{"b@example.com"}, mail.MaxRecipients+1)
		}, errkind.Invalid},
		{"bad sender", func(m *mail.NewMessage) { m.From = "not an address" }, errkind.Invalid},
		{"bad recipient", func(m *mail.NewMessage) { m.To = []string{"b@"} }, errkind.Invalid},
		{"header injection in subject", func(m *mail.NewMessage) { m.Subject = "hi\r\nBcc: x@example.com" }, errkind.Invalid},
		{"subject too long", func(m *mail.NewMessage) { m.Subject = strings.Repeat("s", mail.MaxSubjectLen+1) }, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.edit(&m)
			if _, err := e.svc.PutMessage(e.ctx, e.alice, e.tid(), box.ID, m); errkind.KindOf(err) != tc.want {
				t.Errorf("PutMessage err = %v, want kind %v", err, tc.want)
			}
		})
	}
	if st := e.stats(box.ID); st.ItemCount != 0 {
		t.Errorf("refused messages were stored: ItemCount = %d", st.ItemCount)
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t)
	user := e.aliceBox()
	shared := e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr("support")})
	userMsg := e.put(e.alice, user.ID, "mine", []byte("x"))
	sharedMsg := e.put(e.exch, shared.ID, "ours", []byte("y"))
	system := directory.System
	tests := []struct {
		name string
		c    directory.Caller
		box  mail.Mailbox
		msg  string
		want error // nil, an error value, or an errkind.Kind via wantKind
		kind errkind.Kind
	}{
		{name: "owner", c: e.alice, box: user, msg: userMsg.ID},
		{name: "system", c: system, box: user, msg: userMsg.ID},
		{name: "another user", c: e.bob, box: user, msg: userMsg.ID, kind: errkind.PermissionDenied},
		{name: "admins do not read a user's mail", c: e.admin, box: user, msg: userMsg.ID, kind: errkind.PermissionDenied},
		{name: "other tenant's admin", c: e.oAdmin, box: user, msg: userMsg.ID, want: mail.ErrMailboxNotFound},
		{name: "shared: Exchange Administrator", c: e.exch, box: shared, msg: sharedMsg.ID},
		{name: "shared: Global Administrator", c: e.admin, box: shared, msg: sharedMsg.ID},
		{name: "shared: plain user", c: e.bob, box: shared, msg: sharedMsg.ID, kind: errkind.PermissionDenied},
		{name: "shared: other tenant's admin", c: e.oAdmin, box: shared, msg: sharedMsg.ID, want: mail.ErrMailboxNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				switch {
				case tc.want != nil && !errors.Is(err, tc.want):
					t.Errorf("%s err = %v, want %v", op, err, tc.want)
				case tc.want == nil && tc.kind == 0 && err != nil:
					t.Errorf("%s err = %v, want success", op, err)
				case tc.kind != 0 && errkind.KindOf(err) != tc.kind:
					t.Errorf("%s err = %v, want kind %v", op, err, tc.kind)
				}
			}
			_, err := e.svc.GetMessage(e.ctx, tc.c, e.tid(), tc.box.ID, tc.msg)
			check("GetMessage", err)
			_, err = e.svc.ListMessages(e.ctx, tc.c, e.tid(), tc.box.PrimarySMTPAddress, "", 10)
			check("ListMessages", err)
			_, err = e.svc.PutMessage(e.ctx, tc.c, e.tid(), tc.box.ID, mail.NewMessage{Subject: "s", From: "a@example.com", To: []string{"b@example.com"}})
			check("PutMessage", err)
		})
	}
	// Management: the owner may read its mailbox; only admins may list,
	// read statistics, assign policies and delete; other tenants see nothing.
	if _, err := e.svc.GetMailbox(e.ctx, e.alice, e.tid(), user.ID); err != nil {
		t.Errorf("GetMailbox by its owner: %v", err)
	}
	for name, fn := range map[string]func(directory.Caller) error{
		"GetMailbox": func(c directory.Caller) error { _, err := e.svc.GetMailbox(e.ctx, c, e.tid(), shared.ID); return err },
		"MailboxStatistics": func(c directory.Caller) error {
			_, err := e.svc.MailboxStatistics(e.ctx, c, e.tid(), shared.ID)
			return err
		},
		"SetMailboxPolicy": func(c directory.Caller) error {
			_, err := e.svc.SetMailboxPolicy(e.ctx, c, e.tid(), shared.ID, "")
			return err
		},
		"DeleteMailbox": func(c directory.Caller) error { return e.svc.DeleteMailbox(e.ctx, c, e.tid(), shared.ID) },
	} {
		if err := fn(e.bob); !errkind.Is(err, errkind.PermissionDenied) {
			t.Errorf("%s by a plain user err = %v, want PermissionDenied", name, err)
		}
		if err := fn(e.oAdmin); !errors.Is(err, mail.ErrMailboxNotFound) {
			t.Errorf("%s by another tenant's admin err = %v, want ErrMailboxNotFound", name, err)
		}
	}
	if _, err := e.svc.ListMailboxes(e.ctx, e.bob, e.tid(), "", 0); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("ListMailboxes by a plain user err = %v, want PermissionDenied", err)
	}
	if _, err := e.svc.ListMailboxes(e.ctx, e.oAdmin, e.tid(), "", 0); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("ListMailboxes by another tenant's admin err = %v, want PermissionDenied", err)
	}
}

func TestNoPlaintextInStore(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	subject := "SUBJECT-MARKER-7d1f0c"
	body := bytes.Repeat([]byte("BODY-MARKER-3a9e44 "), 2000)
	in := mail.NewMessage{Subject: subject, From: "sender-marker-51c2@example.com", To: []string{"rcpt-marker-88b0@example.com"}, Body: body}
	if _, err := e.svc.PutMessage(e.ctx, e.alice, e.tid(), box.ID, in); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	for _, marker := range []string{subject, "BODY-MARKER-3a9e44", "sender-marker-51c2", "rcpt-marker-88b0"} {
		if bytes.Contains(raw, []byte(marker)) {
			t.Errorf("the store file holds %q in plaintext", marker)
		}
	}
	// The mailbox address is directory data, not content: it is there,
	// which shows the search would find plaintext.
	if !bytes.Contains(raw, []byte(box.PrimarySMTPAddress)) {
		t.Errorf("the store file does not hold the mailbox address; the search proves nothing")
	}
}

func TestPolicyChangeRewrapsEveryMailbox(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	var boxes []mail.Mailbox
	var msgs []mail.MessageSummary
	for i := range 7 {
		b := e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr(fmt.Sprintf("box%d", i))})
		boxes = append(boxes, b)
		msgs = append(msgs, e.put(e.admin, b.ID, fmt.Sprintf("before %d", i), []byte(fmt.Sprintf("body %d", i))))
	}
	def, _ := e.deps.Effective(e.ctx, tid, dep.Mail)
	if st := e.stats(boxes[0].ID); st.DataEncryptionPolicyID != def.PolicyID || st.IsEncrypted {
		t.Fatalf("new mailbox statistics = %+v, want the default policy %s, not encrypted with a customer key", st, def.PolicyID)
	}
	progress := func(ref dep.PolicyRef) (int, int) {
		t.Helper()
		done, total, err := e.svc.Progress(e.ctx, tid, "", ref)
		if err != nil {
			t.Fatalf("Progress: %v", err)
		}
		return done, total
	}
	readAll := func(when string) {
		t.Helper()
		for i, b := range boxes {
			m, err := e.svc.GetMessage(e.ctx, e.admin, tid, b.ID, msgs[i].ID)
			if err != nil || string(m.Body) != fmt.Sprintf("body %d", i) {
				t.Fatalf("%s: GetMessage(box%d) = %q, %v", when, i, m.Body, err)
			}
		}
	}

	// A multi-workload policy is assigned: every mailbox moves to it.
	mdep := e.deps.create(t, tid, dep.M365, "mdep")
	e.deps.assignMDEP(tid, mdep.PolicyID)
	if d, n := progress(mdep); d != 0 || n != 7 {
		t.Errorf("Progress before the sweep = %d/%d, want 0/7", d, n)
	}
	if n := e.sweep(); n != 7 {
		t.Errorf("Sweep rewrapped %d mailboxes, want 7", n)
	}
	if d, n := progress(mdep); d != 7 || n != 7 {
		t.Errorf("Progress after the sweep = %d/%d, want 7/7", d, n)
	}
	if n := e.sweep(); n != 0 {
		t.Errorf("a second Sweep rewrapped %d mailboxes, want 0", n)
	}
	readAll("after the multi-workload policy")
	if st := e.stats(boxes[0].ID); st.DataEncryptionPolicyID != mdep.PolicyID || !st.IsEncrypted {
		t.Errorf("statistics under the multi-workload policy = %+v, want %s and encrypted", st, mdep.PolicyID)
	}
	// Mailbox policy beats the multi-workload policy.
	exo := e.deps.create(t, tid, dep.Exchange, "EXO-DEP-1")
	if _, err := e.svc.SetMailboxPolicy(e.ctx, e.exch, tid, boxes[1].PrimarySMTPAddress, "EXO-DEP-1"); err != nil {
		t.Fatalf("SetMailboxPolicy: %v", err)
	}
	if st := e.stats(boxes[1].ID); st.DataEncryptionPolicyID != mdep.PolicyID || st.IsEncrypted {
		t.Errorf("statistics before the rewrap = %+v, want still %s and not (yet) encrypted with its effective policy", st, mdep.PolicyID)
	}
	if n := e.sweep(); n != 1 {
		t.Errorf("Sweep after Set-Mailbox rewrapped %d, want 1", n)
	}
	if st := e.stats(boxes[1].ID); st.DataEncryptionPolicyID != exo.PolicyID || !st.IsEncrypted {
		t.Errorf("statistics after the rewrap = %+v, want %s and encrypted", st, exo.PolicyID)
	}
	// A key refresh moves the mailbox to the new version of the same policy.
	exo2 := e.deps.refresh(t, exo.PolicyID)
	if n := e.sweep(); n != 1 {
		t.Errorf("Sweep after a refresh rewrapped %d, want 1", n)
	}
	if d, _ := progress(exo2); d != 1 {
		t.Errorf("Progress of the refreshed version = %d, want 1", d)
	}
	// $null sends it back to the multi-workload policy.
	m, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, boxes[1].ID, "")
	if err != nil || m.DataEncryptionPolicy != "" {
		t.Fatalf("SetMailboxPolicy($null) = %+v, %v", m, err)
	}
	e.sweep()
	if d, _ := progress(mdep); d != 7 {
		t.Errorf("Progress of the multi-workload policy after $null = %d, want 7", d)
	}
	readAll("after every change")
}

func TestUserPurposeNamesTheRequest(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	msg := e.put(e.alice, box.ID, "s", []byte("b"))
	ctx := audit.WithMeta(e.ctx, audit.Meta{RequestID: "req-42"})
	if _, err := e.svc.GetMessage(ctx, e.alice, e.tid(), box.ID, msg.ID); err != nil {
		t.Fatal(err)
	}
	ps := e.deps.Purposes()
	if got := ps[len(ps)-1]; got != (dep.Purpose{RequestID: "req-42"}) {
		t.Errorf("GetMessage unwrapped with purpose %+v, want a user purpose naming request req-42", got)
	}
}

func TestRunServesKicks(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	for i := range 3 {
		e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr(fmt.Sprintf("k%d", i))})
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	mdep := e.deps.create(t, tid, dep.M365, "mdep")
	e.deps.assignMDEP(tid, mdep.PolicyID)
	e.svc.Kick(tid)
	e.svc.Kick(tid) // merged with the first
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, n, err := e.svc.Progress(e.ctx, tid, "", mdep)
		if err != nil {
			t.Fatal(err)
		}
		if d == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Run did not rewrap after Kick: progress %d/%d", d, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run returned %v after its context ended, want nil", err)
	}
}

func TestRevokedKeys(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	exo := e.deps.create(t, tid, dep.Exchange, "EXO-DEP-1")
	box := e.aliceBox()
	if _, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, box.ID, exo.PolicyID); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	msg := e.put(e.alice, box.ID, "secret plans", []byte("the plans"))
	e.deps.Update(exo.PolicyID, func(p *deptest.Policy) { p.Revoked = true })

	for name, fn := range map[string]func() error{
		"GetMessage": func() error { _, err := e.svc.GetMessage(e.ctx, e.alice, tid, box.ID, msg.ID); return err },
		"ListMessages": func() error {
			_, err := e.svc.ListMessages(e.ctx, e.alice, tid, box.ID, "", 0)
			return err
		},
		"PutMessage": func() error {
			_, err := e.svc.PutMessage(e.ctx, e.alice, tid, box.ID, mail.NewMessage{Subject: "s", From: "a@example.com", To: []string{"b@example.com"}})
			return err
		},
	} {
		if err := fn(); err != errRevoked { // dep's error comes back unchanged, not wrapped
			t.Errorf("%s with revoked keys err = %v, want dep's revocation error unchanged", name, err)
		}
	}
	// The customer moves the mailbox to a new policy: the rewrap is system
	// work and still reaches the key.
	exo2 := e.deps.create(t, tid, dep.Exchange, "EXO-DEP-2")
	before := len(e.deps.Purposes())
	if _, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, box.ID, "EXO-DEP-2"); err != nil {
		t.Fatal(err)
	}
	if n := e.sweep(); n != 1 {
		t.Fatalf("Sweep rewrapped %d, want 1", n)
	}
	after := e.deps.Purposes()[before:]
	if len(after) == 0 || slices.ContainsFunc(after, func(p dep.Purpose) bool { return !p.System }) {
		t.Errorf("rewrap unwrapped with purposes %+v, want only System", after)
	}
	got, err := e.svc.GetMessage(e.ctx, e.alice, tid, box.ID, msg.ID)
	if err != nil || string(got.Body) != "the plans" {
		t.Errorf("GetMessage after moving to %s = %q, %v", exo2.PolicyID, got.Body, err)
	}
}

func TestSetMailboxPolicyRefusals(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	box := e.aliceBox()
	exo := e.deps.create(t, tid, dep.Exchange, "EXO-DEP-1")
	disabled := e.deps.create(t, tid, dep.Exchange, "EXO-OFF")
	e.deps.Update(disabled.PolicyID, func(p *deptest.Policy) { p.Disabled = true })
	foreign := e.deps.create(t, e.other.Tenant.ID, dep.Exchange, "EXO-FOREIGN")
	tests := []struct {
		name   string
		c      directory.Caller
		policy string
		want   errkind.Kind
	}{
		{"unknown policy", e.admin, "nope", errkind.NotFound},
		{"disabled policy", e.admin, "EXO-OFF", errkind.FailedPrecondition},
		{"another tenant's policy", e.admin, foreign.PolicyID, errkind.NotFound},
		{"the owner is no admin", e.alice, exo.PolicyID, errkind.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.SetMailboxPolicy(e.ctx, tc.c, tid, box.ID, tc.policy); errkind.KindOf(err) != tc.want {
				t.Errorf("SetMailboxPolicy(%s) err = %v, want kind %v", tc.policy, err, tc.want)
			}
		})
	}
	// V17 again at assignment: the tenant lost its Exchange licence.
	if _, err := e.dir.RemoveLicense(e.ctx, directory.System, tid, "Microsoft 365 E5"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, box.ID, exo.PolicyID); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("SetMailboxPolicy on an unlicensed user mailbox err = %v, want FailedPrecondition", err)
	}
	if m, _ := e.svc.GetMailbox(e.ctx, e.admin, tid, box.ID); m.DataEncryptionPolicy != "" {
		t.Errorf("a refused assignment was stored: %+v", m)
	}
}

func TestPurgePolicy(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	purged := e.deps.create(t, tid, dep.Exchange, "EXO-PURGE")
	kept := e.deps.create(t, tid, dep.Exchange, "EXO-KEEP")
	type box struct {
		m      mail.Mailbox
		msg    mail.MessageSummary
		policy string // assigned
		sweep  bool   // rewrapped before the purge
		gone   bool
	}
	boxes := []*box{
		{policy: purged.PolicyID, sweep: true, gone: true},  // wrapped under it
		{policy: purged.PolicyID, sweep: false, gone: true}, // assigned, not yet rewrapped
		{policy: kept.PolicyID, sweep: true},
		{}, // default policy
	}
	for i, b := range boxes {
		b.m = e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr(fmt.Sprintf("p%d", i))})
		for j := range 3 {
			b.msg = e.put(e.admin, b.m.ID, fmt.Sprintf("m%d", j), []byte("content"))
		}
	}
	for _, b := range boxes {
		if b.sweep && b.policy != "" {
			if _, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, b.m.ID, b.policy); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.sweep()
	if _, err := e.svc.SetMailboxPolicy(e.ctx, e.admin, tid, boxes[1].m.ID, purged.PolicyID); err != nil {
		t.Fatal(err)
	}
	// The other tenant has a mailbox under its own policies: untouched.
	otherBox, err := e.svc.CreateMailbox(e.ctx, e.oAdmin, e.other.Tenant.ID, mail.Spec{Type: mail.SharedMailbox,
		PrimarySMTPAddress: "x@" + e.other.Tenant.DefaultDomain})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.PurgePolicy(e.ctx, tid, purged.PolicyID)
	if err != nil || n != 2 {
		t.Fatalf("PurgePolicy = %d, %v; want 2 mailboxes", n, err)
	}
	for i, b := range boxes {
		_, err := e.svc.GetMailbox(e.ctx, e.admin, tid, b.m.ID)
		left := 0
		for _, k := range e.keys("mail/") {
			if strings.Contains(k, b.m.ID) || strings.HasSuffix(k, "/"+b.m.PrimarySMTPAddress) {
				left++
			}
		}
		if b.gone {
			if !errors.Is(err, mail.ErrMailboxNotFound) || left != 0 {
				t.Errorf("box %d under the purged policy: GetMailbox err = %v, %d store keys left; want gone", i, err, left)
			}
			continue
		}
		if err != nil {
			t.Errorf("box %d: GetMailbox err = %v, want it kept", i, err)
		}
		if m, err := e.svc.GetMessage(e.ctx, e.admin, tid, b.m.ID, b.msg.ID); err != nil || string(m.Body) != "content" {
			t.Errorf("box %d: GetMessage after the purge = %q, %v", i, m.Body, err)
		}
	}
	if _, err := e.svc.GetMailbox(e.ctx, e.oAdmin, e.other.Tenant.ID, otherBox.ID); err != nil {
		t.Errorf("the other tenant's mailbox after the purge: %v", err)
	}
	if n, err := e.svc.PurgePolicy(e.ctx, tid, purged.PolicyID); err != nil || n != 0 {
		t.Errorf("PurgePolicy again = %d, %v; want 0, nil", n, err)
	}
}

func TestDeleteMailbox(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	for i := range 3 {
		e.put(e.alice, box.ID, fmt.Sprintf("m%d", i), []byte("x"))
	}
	if err := e.svc.DeleteMailbox(e.ctx, e.exch, e.tid(), box.PrimarySMTPAddress); err != nil {
		t.Fatalf("DeleteMailbox: %v", err)
	}
	if left := e.keys("mail/"); len(left) != 0 {
		t.Errorf("store keys left after DeleteMailbox: %v", left)
	}
	// The user may get a new mailbox at the same address.
	e.aliceBox()
}

func TestListMailboxesPages(t *testing.T) {
	e := newEnv(t)
	want := map[string]bool{}
	for i := range 5 {
		want[e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr(fmt.Sprintf("l%d", i))}).ID] = true
	}
	got := map[string]bool{}
	token, pages := "", 0
	for {
		p, err := e.svc.ListMailboxes(e.ctx, e.exch, e.tid(), token, 2)
		if err != nil {
			t.Fatalf("ListMailboxes(%q): %v", token, err)
		}
		pages++
		for _, m := range p.Mailboxes {
			got[m.ID] = true
		}
		if token = p.Next; token == "" {
			break
		}
	}
	if diff := cmp.Diff(want, got); diff != "" || pages != 3 {
		t.Errorf("ListMailboxes in pages of 2 took %d pages (want 3), diff (-want +got):\n%s", pages, diff)
	}
	if _, err := e.svc.ListMailboxes(e.ctx, e.exch, e.tid(), "mail/../x", 2); !errors.Is(err, scope.ErrBadPageToken) {
		t.Errorf("ListMailboxes with a forged token err = %v, want ErrBadPageToken", err)
	}
	p, err := e.svc.ListMailboxes(e.ctx, e.oAdmin, e.other.Tenant.ID, "", 0)
	if err != nil || len(p.Mailboxes) != 0 {
		t.Errorf("the other tenant lists %d mailboxes, %v; want none", len(p.Mailboxes), err)
	}
}

func TestListMessagesPages(t *testing.T) {
	e := newEnv(t)
	box := e.aliceBox()
	var want []string
	for i := range 5 {
		want = append(want, e.put(e.alice, box.ID, fmt.Sprintf("m%d", i), []byte("x")).ID)
	}
	var got []string
	token := ""
	for {
		p, err := e.svc.ListMessages(e.ctx, e.alice, e.tid(), box.ID, token, 2)
		if err != nil {
			t.Fatalf("ListMessages(%q): %v", token, err)
		}
		for _, m := range p.Messages {
			got = append(got, m.ID)
		}
		if token = p.Next; token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListMessages in pages = %v, want %v", got, want)
	}
}

func TestConcurrentUseDuringRewrap(t *testing.T) {
	e := newEnv(t)
	tid := e.tid()
	var boxes []mail.Mailbox
	for i := range 4 {
		boxes = append(boxes, e.mailbox(mail.Spec{Type: mail.SharedMailbox, PrimarySMTPAddress: e.addr(fmt.Sprintf("c%d", i))}))
	}
	mdep := e.deps.create(t, tid, dep.M365, "mdep")
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i, b := range boxes {
		wg.Go(func() {
			for j := range 10 {
				body := []byte(fmt.Sprintf("box %d message %d", i, j))
				m, err := e.svc.PutMessage(e.ctx, e.admin, tid, b.ID, mail.NewMessage{Subject: "s", From: "a@example.com", To: []string{"b@example.com"}, Body: body})
				if err != nil {
					errs <- err
					return
				}
				got, err := e.svc.GetMessage(e.ctx, e.admin, tid, b.ID, m.ID)
				if err != nil || !bytes.Equal(got.Body, body) {
					errs <- fmt.Errorf("GetMessage = %q, %v; want %q", got.Body, err, body)
					return
				}
			}
		})
	}
	wg.Go(func() {
		e.deps.assignMDEP(tid, mdep.PolicyID)
		for range 3 {
			if _, err := e.svc.Sweep(e.ctx); err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e.sweep()
	if d, n, _ := e.svc.Progress(e.ctx, tid, "", mdep); d != n || n != 4 {
		t.Errorf("Progress = %d/%d, want 4/4", d, n)
	}
	for _, b := range boxes {
		if st := e.stats(b.ID); st.ItemCount != 10 {
			t.Errorf("mailbox %s has %d messages, want 10", b.PrimarySMTPAddress, st.ItemCount)
		}
	}
}

func TestProgressRefusesAGeo(t *testing.T) {
	e := newEnv(t)
	if _, _, err := e.svc.Progress(e.ctx, e.tid(), "EUR", dep.PolicyRef{}); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Progress with a geo err = %v, want Invalid", err)
	}
	if w := e.svc.Workload(); w != dep.Mail {
		t.Errorf("Workload() = %v, want %v", w, dep.Mail)
	}
}
