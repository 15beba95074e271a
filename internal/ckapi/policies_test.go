package ckapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/identity"
	"github.com/customerkey/customerkey/internal/workload/files"
	"github.com/customerkey/customerkey/internal/workload/mail"
)

// These tests drive the handlers of the policies and workloads through a
// real mux with fakes of the domain services: what reaches the domain
// (tenant, caller, identities, decoded bodies) and what the client gets
// back (status, JSON shape). The domain rules are tested in the domain
// packages and end to end in internal/app.

const (
	tenantA = "0b7f3c4e-1f7a-4a52-9d43-6d6f4b7f1a01"
	userA   = "5d1e0a9c-8c2b-4f1e-bb2e-2f5b3c6d7e80"
)

type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, tok string, s identity.Surface) (identity.Principal, error) {
	if tok != "good" || s != identity.ResourceManager {
		return identity.Principal{}, errkind.New(errkind.Unauthenticated, "bad token")
	}
	return identity.Principal{TenantID: tenantA, ObjectID: userA, Type: identity.UserPrincipal, Name: "alex@contoso.onmicrosoft.com"}, nil
}

// call records what a fake was asked.
type call struct {
	method string
	caller directory.Caller
	tid    string
	args   []string
}

type recorder struct {
	calls []call
	err   error // returned by every call when set
}

func (r *recorder) rec(method string, c directory.Caller, tid string, args ...string) error {
	r.calls = append(r.calls, call{method: method, caller: c, tid: tid, args: args})
	return r.err
}

func (r *recorder) last(t *testing.T) call {
	t.Helper()
	if len(r.calls) == 0 {
		t.Fatal("the domain was not called")
	}
	return r.calls[len(r.calls)-1]
}

var (
	created = time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	pct40   = 40
)

func samplePolicy(k dep.Kind) dep.Policy {
	p := dep.Policy{ID: "7a1c2e3f-0000-4000-8000-000000000001", TenantID: tenantA, Kind: k, Name: "Contoso DEP", Enabled: true,
		KeyURIs:    []string{"https://akv1.vault.localhost/keys/k1", "https://akv2.vault.localhost/keys/k2"},
		RootKeyIDs: []string{"https://akv1.vault.localhost/keys/k1/v1", "https://akv2.vault.localhost/keys/k2/v2"},
		State:      dep.Active, KeyVersion: 3, CreatedAt: created, UpdatedAt: created}
	if k == dep.SharePoint {
		p.Name, p.Geo, p.State, p.PercentComplete = "SharePoint NAM", "NAM", dep.Rolling, &pct40
		p.KeyURIs = p.RootKeyIDs
	}
	return p
}

type fakePolicies struct{ recorder }

func (f *fakePolicies) Create(_ context.Context, c directory.Caller, tid string, k dep.Kind, s dep.Spec) (dep.Policy, error) {
	en := "default"
	if s.Enabled != nil {
		en = strconv.FormatBool(*s.Enabled)
	}
	return samplePolicy(k), f.rec("Create", c, tid, append([]string{string(k), s.Name, s.Description, en}, s.KeyURIs...)...)
}
func (f *fakePolicies) Get(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string) (dep.Policy, error) {
	return samplePolicy(k), f.rec("Get", c, tid, string(k), id)
}
func (f *fakePolicies) List(_ context.Context, c directory.Caller, tid string, k dep.Kind) ([]dep.Policy, error) {
	return []dep.Policy{samplePolicy(k)}, f.rec("List", c, tid, string(k))
}
func (f *fakePolicies) Set(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string, ch dep.Change) (dep.Policy, error) {
	str := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	en := "<nil>"
	if ch.Enabled != nil {
		en = strconv.FormatBool(*ch.Enabled)
	}
	return samplePolicy(k), f.rec("Set", c, tid, string(k), id, str(ch.Name), str(ch.Description), en)
}
func (f *fakePolicies) Refresh(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string) (dep.Policy, error) {
	return samplePolicy(k), f.rec("Refresh", c, tid, string(k), id)
}
func (f *fakePolicies) Replace(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string, uris []string) (dep.Policy, error) {
	return samplePolicy(k), f.rec("Replace", c, tid, append([]string{string(k), id}, uris...)...)
}
func (f *fakePolicies) Test(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string) (dep.TestResult, error) {
	return dep.TestResult{PolicyID: "p1", Name: "Contoso DEP", Success: false, Keys: []dep.KeyTest{
		{KeyURI: "https://akv1.vault.localhost/keys/k1", KeyID: "https://akv1.vault.localhost/keys/k1/v1", Result: "Success"},
		{KeyURI: "https://akv2.vault.localhost/keys/k2", KeyID: "https://akv2.vault.localhost/keys/k2/v2", Result: "Failed",
			Failure: "AccessDenied", Message: "no role"},
	}}, f.rec("Test", c, tid, string(k), id)
}
func (f *fakePolicies) Assignment(_ context.Context, c directory.Caller, tid string) (dep.Assignment, error) {
	return dep.Assignment{}, f.rec("Assignment", c, tid)
}
func (f *fakePolicies) Assign(_ context.Context, c directory.Caller, tid, id string) (dep.Assignment, error) {
	return dep.Assignment{PolicyID: "7a1c2e3f-0000-4000-8000-000000000001"}, f.rec("Assign", c, tid, id)
}
func (f *fakePolicies) RequestPurge(_ context.Context, c directory.Caller, tid string, k dep.Kind, id string, req dep.PurgeRequest) (dep.Policy, error) {
	p := samplePolicy(k)
	at := created
	p.State, p.PermanentDataPurgeRequested, p.PermanentDataPurgeReason, p.PermanentDataPurgeContact = dep.PurgeRequested, true, req.Reason, req.Contact
	p.PurgeRequestedAt = &at
	p.PurgeApprovals = []dep.Approval{{By: audit.Actor{Type: "user", ID: "op1", Name: "ops@operator.onmicrosoft.com"}, At: at}}
	return p, f.rec("RequestPurge", c, tid, string(k), id, req.Reason, req.Contact, strconv.FormatBool(req.Force))
}
func (f *fakePolicies) ApprovePurge(_ context.Context, c directory.Caller, tid, id string) (dep.Policy, error) {
	return samplePolicy(dep.Exchange), f.rec("ApprovePurge", c, tid, id)
}
func (f *fakePolicies) SetRecovery(_ context.Context, c directory.Caller, tid, id string, on bool, reason string) (dep.Policy, error) {
	return samplePolicy(dep.Exchange), f.rec("SetRecovery", c, tid, id, strconv.FormatBool(on), reason)
}
func (f *fakePolicies) RegisterSharePoint(_ context.Context, c directory.Caller, tid string, s dep.SharePointSpec) (dep.Policy, error) {
	return samplePolicy(dep.SharePoint), f.rec("RegisterSharePoint", c, tid, s.Geo, s.PrimaryKeyURI, s.SecondaryKeyURI)
}
func (f *fakePolicies) SharePointPolicy(_ context.Context, c directory.Caller, tid, geo string) (dep.Policy, error) {
	return samplePolicy(dep.SharePoint), f.rec("SharePointPolicy", c, tid, geo)
}
func (f *fakePolicies) UpdateSharePoint(_ context.Context, c directory.Caller, tid, geo string, kt dep.KeyType, uri string) (dep.Policy, error) {
	return samplePolicy(dep.SharePoint), f.rec("UpdateSharePoint", c, tid, geo, string(kt), uri)
}
func (f *fakePolicies) RestoreSharePoint(_ context.Context, c directory.Caller, tid string, s dep.SharePointSpec) (dep.Policy, error) {
	return samplePolicy(dep.SharePoint), f.rec("RestoreSharePoint", c, tid, s.Geo, s.PrimaryKeyURI, s.SecondaryKeyURI)
}

var sampleMailbox = mail.Mailbox{ID: "9e4d1c2b-0000-4000-8000-000000000002", TenantID: tenantA, Type: mail.SharedMailbox,
	PrimarySMTPAddress: "info@contoso.onmicrosoft.com", DisplayName: "Info", CreatedAt: created, UpdatedAt: created}

type fakeMail struct {
	recorder
	body []byte // the body GetMessage answers
}

func (f *fakeMail) CreateMailbox(_ context.Context, c directory.Caller, tid string, s mail.Spec) (mail.Mailbox, error) {
	return sampleMailbox, f.rec("CreateMailbox", c, tid, string(s.Type), s.PrimarySMTPAddress, s.DisplayName, s.Owner)
}
func (f *fakeMail) GetMailbox(_ context.Context, c directory.Caller, tid, id string) (mail.Mailbox, error) {
	return sampleMailbox, f.rec("GetMailbox", c, tid, id)
}
func (f *fakeMail) ListMailboxes(_ context.Context, c directory.Caller, tid, tok string, n int) (mail.MailboxPage, error) {
	return mail.MailboxPage{Mailboxes: []mail.Mailbox{sampleMailbox}, Next: "next"}, f.rec("ListMailboxes", c, tid, tok, strconv.Itoa(n))
}
func (f *fakeMail) SetMailboxPolicy(_ context.Context, c directory.Caller, tid, id, policy string) (mail.Mailbox, error) {
	return sampleMailbox, f.rec("SetMailboxPolicy", c, tid, id, policy)
}
func (f *fakeMail) MailboxStatistics(_ context.Context, c directory.Caller, tid, id string) (mail.Statistics, error) {
	return mail.Statistics{MailboxID: sampleMailbox.ID, ItemCount: 2, DataEncryptionPolicyID: "p1", IsEncrypted: true},
		f.rec("MailboxStatistics", c, tid, id)
}
func (f *fakeMail) DeleteMailbox(_ context.Context, c directory.Caller, tid, id string) error {
	return f.rec("DeleteMailbox", c, tid, id)
}
func (f *fakeMail) PutMessage(_ context.Context, c directory.Caller, tid, mbx string, m mail.NewMessage) (mail.MessageSummary, error) {
	return mail.MessageSummary{ID: "m1", MailboxID: sampleMailbox.ID, Subject: m.Subject},
		f.rec("PutMessage", c, tid, append([]string{mbx, m.Subject, m.From, string(m.Body)}, m.To...)...)
}
func (f *fakeMail) GetMessage(_ context.Context, c directory.Caller, tid, mbx, id string) (mail.Message, error) {
	return mail.Message{MessageSummary: mail.MessageSummary{ID: id, Subject: "Hello"}, Body: f.body}, f.rec("GetMessage", c, tid, mbx, id)
}
func (f *fakeMail) ListMessages(_ context.Context, c directory.Caller, tid, mbx, tok string, n int) (mail.MessagePage, error) {
	return mail.MessagePage{Messages: []mail.MessageSummary{}}, f.rec("ListMessages", c, tid, mbx, tok, strconv.Itoa(n))
}
func (f *fakeMail) DeleteMessage(_ context.Context, c directory.Caller, tid, mbx, id string) error {
	return f.rec("DeleteMessage", c, tid, mbx, id)
}

type fakeFiles struct {
	recorder
	content []byte // what GetFile answers
	read    int64  // how many bytes PutFile read
}

var sampleSite = files.Site{ID: "3f2e1d0c-0000-4000-8000-000000000003", TenantID: tenantA, URL: "https://contoso.sharepoint.com/sites/finance",
	Geo: "NAM", Owners: []string{userA}, CreatedAt: created}

func (f *fakeFiles) CreateSite(_ context.Context, c directory.Caller, tid string, s files.SiteSpec) (files.Site, error) {
	return sampleSite, f.rec("CreateSite", c, tid, append([]string{s.URL, s.Geo}, s.Owners...)...)
}
func (f *fakeFiles) GetSite(_ context.Context, c directory.Caller, tid, id string) (files.Site, error) {
	return sampleSite, f.rec("GetSite", c, tid, id)
}
func (f *fakeFiles) ListSites(_ context.Context, c directory.Caller, tid, tok string, n int) (files.SitePage, error) {
	return files.SitePage{Sites: []files.Site{sampleSite}}, f.rec("ListSites", c, tid, tok, strconv.Itoa(n))
}
func (f *fakeFiles) SiteEncryptionStatus(_ context.Context, c directory.Caller, tid, id string) (files.SiteEncryption, error) {
	return files.SiteEncryption{SiteID: sampleSite.ID, URL: sampleSite.URL, Geo: "NAM", PolicyID: "p1", Kind: dep.SharePoint, KeyVersion: 2, Current: true},
		f.rec("SiteEncryptionStatus", c, tid, id)
}
func (f *fakeFiles) PutFile(_ context.Context, c directory.Caller, tid, site, path string, r io.Reader) (files.File, error) {
	n, err := io.Copy(io.Discard, r)
	f.read = n
	if err != nil {
		return files.File{}, err
	}
	return files.File{SiteID: site, Path: path, Size: n}, f.rec("PutFile", c, tid, site, path)
}
func (f *fakeFiles) GetFile(_ context.Context, c directory.Caller, tid, site, path string) (files.File, []byte, error) {
	return files.File{SiteID: site, Path: path, Size: int64(len(f.content)), ModifiedAt: created}, bytes.Clone(f.content),
		f.rec("GetFile", c, tid, site, path)
}
func (f *fakeFiles) ListFiles(_ context.Context, c directory.Caller, tid, site, tok string, n int) (files.FilePage, error) {
	return files.FilePage{Files: []files.File{}}, f.rec("ListFiles", c, tid, site, tok, strconv.Itoa(n))
}
func (f *fakeFiles) DeleteFile(_ context.Context, c directory.Caller, tid, site, path string) error {
	return f.rec("DeleteFile", c, tid, site, path)
}

type env struct {
	srv   *httptest.Server
	pol   *fakePolicies
	mail  *fakeMail
	files *fakeFiles
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{pol: &fakePolicies{}, mail: &fakeMail{}, files: &fakeFiles{}}
	mux := http.NewServeMux()
	New(Options{Verifier: fakeVerifier{}, Policies: e.pol, Mail: e.mail, Files: e.files, PublicURL: "https://localhost:8443"}).Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request as the signed-in user; contentType "" means JSON
// when there is a body.
func (e *env) do(t *testing.T, method, path, body, contentType string) (int, []byte, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer good")
	if body != "" {
		if contentType == "" {
			contentType = "application/json"
		}
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

const base = "/customerkey/v1/tenants/" + tenantA

// TestRoutesReachTheDomain checks every documented route: the method and
// arguments that reach the domain, with the caller and tenant of the
// request, and the status answered.
func TestRoutesReachTheDomain(t *testing.T) {
	tests := []struct {
		method, path, body string
		status             int
		fake               string // "policies", "mail" or "files"
		want               string // the domain method
		args               []string
	}{
		{"POST", "/m365-policies", `{"name":"Contoso DEP","azureKeyIds":["k1","k2"],"description":"d","enabled":false}`, 201, "policies", "Create",
			[]string{"M365DataAtRest", "Contoso DEP", "d", "false", "k1", "k2"}},
		{"POST", "/exchange-policies", `{"name":"EXO","azureKeyIds":["k1","k2"]}`, 201, "policies", "Create",
			[]string{"Exchange", "EXO", "", "default", "k1", "k2"}},
		{"GET", "/m365-policies", "", 200, "policies", "List", []string{"M365DataAtRest"}},
		{"GET", "/exchange-policies/Contoso%20DEP", "", 200, "policies", "Get", []string{"Exchange", "Contoso DEP"}},
		{"GET", "/m365-policies/a%252Fb", "", 200, "policies", "Get", []string{"M365DataAtRest", "a%2Fb"}},
		{"PATCH", "/m365-policies/p1", `{"enabled":false}`, 200, "policies", "Set", []string{"M365DataAtRest", "p1", "<nil>", "<nil>", "false"}},
		{"PATCH", "/exchange-policies/p1", `{"name":"New","description":""}`, 200, "policies", "Set", []string{"Exchange", "p1", "New", "", "<nil>"}},
		{"POST", "/m365-policies/p1/refresh", "", 200, "policies", "Refresh", []string{"M365DataAtRest", "p1"}},
		{"POST", "/exchange-policies/p1/replace", `{"azureKeyIds":["k3","k4"]}`, 200, "policies", "Replace", []string{"Exchange", "p1", "k3", "k4"}},
		{"POST", "/m365-policies/p1/test", "", 200, "policies", "Test", []string{"M365DataAtRest", "p1"}},
		{"GET", "/m365-policy-assignment", "", 200, "policies", "Assignment", nil},
		{"POST", "/exchange-policies/p1/purge-request", `{"reason":"leaving","contact":"kim@contoso.com","force":true}`, 200, "policies", "RequestPurge",
			[]string{"Exchange", "p1", "leaving", "kim@contoso.com", "true"}},
		{"GET", "/sharepoint/policies", "", 200, "policies", "List", []string{"SharePoint"}},
		{"GET", "/sharepoint/policies/EUR", "", 200, "policies", "SharePointPolicy", []string{"EUR"}},
		{"PUT", "/sharepoint/policies/NAM", `{"primaryKeyId":"k1/v1","secondaryKeyId":"k2/v2"}`, 201, "policies", "RegisterSharePoint",
			[]string{"NAM", "k1/v1", "k2/v2"}},
		{"PATCH", "/sharepoint/policies/NAM", `{"keyType":"secondary","keyId":"k3"}`, 200, "policies", "UpdateSharePoint",
			[]string{"NAM", "Secondary", "k3"}},
		{"POST", "/sharepoint/policies/NAM/restore", `{"primaryKeyId":"k5","secondaryKeyId":"k6"}`, 200, "policies", "RestoreSharePoint",
			[]string{"NAM", "k5", "k6"}},
		{"POST", "/sharepoint/policies/NAM/purge-request", `{"reason":"r","contact":"c","force":false}`, 200, "policies", "RequestPurge",
			[]string{"SharePoint", "NAM", "r", "c", "false"}},

		{"POST", "/mailboxes", `{"type":"sharedmailbox","primarySmtpAddress":"info@contoso.onmicrosoft.com","displayName":"Info","owner":""}`, 201, "mail",
			"CreateMailbox", []string{"SharedMailbox", "info@contoso.onmicrosoft.com", "Info", ""}},
		{"GET", "/mailboxes?top=5&pageToken=abc", "", 200, "mail", "ListMailboxes", []string{"abc", "5"}},
		{"GET", "/mailboxes", "", 200, "mail", "ListMailboxes", []string{"", "0"}},
		{"GET", "/mailboxes/info@contoso.onmicrosoft.com", "", 200, "mail", "GetMailbox", []string{"info@contoso.onmicrosoft.com"}},
		{"PATCH", "/mailboxes/info@contoso.onmicrosoft.com", `{"dataEncryptionPolicy":"EXO DEP"}`, 200, "mail", "SetMailboxPolicy",
			[]string{"info@contoso.onmicrosoft.com", "EXO DEP"}},
		{"PATCH", "/mailboxes/m1", `{"dataEncryptionPolicy":null}`, 200, "mail", "SetMailboxPolicy", []string{"m1", ""}},
		{"DELETE", "/mailboxes/m1", "", 204, "mail", "DeleteMailbox", []string{"m1"}},
		{"GET", "/mailboxes/m1/statistics", "", 200, "mail", "MailboxStatistics", []string{"m1"}},
		{"POST", "/mailboxes/m1/messages", `{"subject":"Hi","from":"a@contoso.com","to":["b@contoso.com","c@contoso.com"],"body":"line 1\nline 2 ü"}`,
			201, "mail", "PutMessage", []string{"m1", "Hi", "a@contoso.com", "line 1\nline 2 ü", "b@contoso.com", "c@contoso.com"}},
		{"GET", "/mailboxes/m1/messages?pageToken=t", "", 200, "mail", "ListMessages", []string{"m1", "t", "0"}},
		{"GET", "/mailboxes/m1/messages/x1", "", 200, "mail", "GetMessage", []string{"m1", "x1"}},
		{"DELETE", "/mailboxes/m1/messages/x1", "", 204, "mail", "DeleteMessage", []string{"m1", "x1"}},

		{"POST", "/sites", `{"url":"https://contoso.sharepoint.com/sites/finance","geo":"EUR","owners":["alex@contoso.onmicrosoft.com"]}`, 201, "files",
			"CreateSite", []string{"https://contoso.sharepoint.com/sites/finance", "EUR", "alex@contoso.onmicrosoft.com"}},
		{"GET", "/sites?top=1000", "", 200, "files", "ListSites", []string{"", "1000"}},
		{"GET", "/sites/https:%2F%2Fcontoso.sharepoint.com%2Fsites%2Ffinance", "", 200, "files", "GetSite",
			[]string{"https://contoso.sharepoint.com/sites/finance"}},
		{"GET", "/sites/s1/encryption", "", 200, "files", "SiteEncryptionStatus", []string{"s1"}},
		{"GET", "/sites/s1/files?pageToken=shared%20documents%2Fa.txt", "", 200, "files", "ListFiles", []string{"s1", "shared documents/a.txt", "0"}},
		{"GET", "/sites/s1/files/Shared%20Documents/q1.xlsx", "", 200, "files", "GetFile", []string{"s1", "Shared Documents/q1.xlsx"}},
		{"DELETE", "/sites/s1/files/Shared%20Documents/q1.xlsx", "", 204, "files", "DeleteFile", []string{"s1", "Shared Documents/q1.xlsx"}},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := newEnv(t)
			status, body, _ := e.do(t, tc.method, base+tc.path, tc.body, "")
			if status != tc.status {
				t.Fatalf("status = %d %s, want %d", status, body, tc.status)
			}
			rec := map[string]*recorder{"policies": &e.pol.recorder, "mail": &e.mail.recorder, "files": &e.files.recorder}[tc.fake]
			c := rec.last(t)
			if c.method != tc.want || !slices.Equal(c.args, tc.args) {
				t.Errorf("domain call = %s%q, want %s%q", c.method, c.args, tc.want, tc.args)
			}
			if c.tid != tenantA || c.caller.ID != userA || c.caller.TenantID != tenantA || c.caller.Type != "user" {
				t.Errorf("domain called for tenant %q by %+v; want the request's tenant and signed-in user", c.tid, c.caller)
			}
		})
	}
}

// TestRefusedRequests checks what is refused before the domain is asked.
func TestRefusedRequests(t *testing.T) {
	tests := []struct {
		name, method, path, body, contentType string
		status                                int
		inMessage                             string
	}{
		{"no token", "GET", "/m365-policies", "", "", 401, "bearer token"},
		{"unknown field", "POST", "/m365-policies", `{"name":"x","azureKeyIds":[],"keyUris":[]}`, "", 400, "unknown field"},
		{"policy PATCH with nothing", "PATCH", "/m365-policies/p1", `{}`, "", 400, "nothing to change"},
		{"mailbox PATCH without the field", "PATCH", "/mailboxes/m1", `{}`, "", 400, "nothing to change"},
		{"mailbox PATCH with an empty name", "PATCH", "/mailboxes/m1", `{"dataEncryptionPolicy":" "}`, "", 400, "or null"},
		{"mailbox PATCH with a number", "PATCH", "/mailboxes/m1", `{"dataEncryptionPolicy":5}`, "", 400, "or null"},
		{"unknown mailbox type", "POST", "/mailboxes", `{"type":"Robot","primarySmtpAddress":"a@contoso.onmicrosoft.com"}`, "", 400, "UserMailbox"},
		{"unknown key type", "PATCH", "/sharepoint/policies/NAM", `{"keyType":"Tertiary","keyId":"k"}`, "", 400, "Primary or Secondary"},
		{"top out of range", "GET", "/mailboxes?top=1001", "", "", 400, "1 to 1000"},
		{"top not a number", "GET", "/sites?top=ten", "", "", 400, "whole number"},
		{"file as JSON", "PUT", "/sites/s1/files/a.txt", `{"x":1}`, "application/json", 400, "application/octet-stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			req, _ := http.NewRequest(tc.method, e.srv.URL+base+tc.path, strings.NewReader(tc.body))
			if tc.name != "no token" {
				req.Header.Set("Authorization", "Bearer good")
			}
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb ErrorBody
			_ = json.NewDecoder(resp.Body).Decode(&eb)
			if resp.StatusCode != tc.status || !strings.Contains(eb.Error.Message, tc.inMessage) {
				t.Errorf("= %d %+v, want %d with %q", resp.StatusCode, eb.Error, tc.status, tc.inMessage)
			}
			if n := len(e.pol.calls) + len(e.mail.calls) + len(e.files.calls); n != 0 {
				t.Errorf("the domain was called %d times; want none", n)
			}
		})
	}
}

// TestDomainErrorsRendered checks that a domain refusal reaches the
// client once, with its kind's status and its own code.
func TestDomainErrorsRendered(t *testing.T) {
	e := newEnv(t)
	e.mail.err = errkind.New(errkind.NotFound, "the mailbox was not found").WithCode("ManagementObjectNotFound")
	status, body, _ := e.do(t, "GET", base+"/mailboxes/other@fabrikam.com", "", "")
	var eb ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || status != 404 || eb.Error.Code != "ManagementObjectNotFound" ||
		eb.Error.Message != "the mailbox was not found" {
		t.Errorf("= %d %s, want 404 ManagementObjectNotFound", status, body)
	}
}

// TestPolicyShapes checks the JSON of each kind of policy: the documented
// camelCase names, times in UTC, purge fields only where a purge exists,
// and nothing of the domain's own record names.
func TestPolicyShapes(t *testing.T) {
	e := newEnv(t)
	get := func(path string) map[string]any {
		t.Helper()
		status, body, _ := e.do(t, "GET", base+path, "", "")
		var m map[string]any
		if err := json.Unmarshal(body, &m); status != 200 || err != nil {
			t.Fatalf("GET %s = %d %s", path, status, body)
		}
		return m
	}
	m365 := get("/m365-policies/p1")
	for _, k := range []string{"id", "name", "description", "kind", "enabled", "azureKeyIds", "rootKeys", "keyVersion", "state", "createdTime", "modifiedTime"} {
		if _, ok := m365[k]; !ok {
			t.Errorf("m365 policy lacks %s: %v", k, m365)
		}
	}
	for _, k := range []string{"keyUris", "rootKeyIds", "tenantId", "createdAt", "permanentDataPurgeRequested"} {
		if _, ok := m365[k]; ok {
			t.Errorf("m365 policy has %s: %v", k, m365)
		}
	}
	if m365["createdTime"] != "2026-03-01T09:00:00Z" {
		t.Errorf("createdTime = %v, want RFC 3339 in UTC", m365["createdTime"])
	}
	exo := get("/exchange-policies/p1")
	if exo["permanentDataPurgeRequested"] != false || exo["purgeApprovals"] == nil {
		t.Errorf("exchange policy purge fields = %v, %v; want false and []", exo["permanentDataPurgeRequested"], exo["purgeApprovals"])
	}
	spo := get("/sharepoint/policies/NAM")
	if spo["geo"] != "NAM" || spo["state"] != "Rolling" || spo["percentComplete"] != float64(40) ||
		spo["primaryKeyId"] != "https://akv1.vault.localhost/keys/k1/v1" || spo["secondaryKeyId"] != "https://akv2.vault.localhost/keys/k2/v2" {
		t.Errorf("sharepoint policy = %v", spo)
	}

	status, body, _ := e.do(t, "POST", base+"/exchange-policies/p1/purge-request", `{"reason":"r","contact":"c","force":false}`, "")
	if status != 200 || !strings.Contains(string(body), `"purgeApprovals":[{"approvedBy":"ops@operator.onmicrosoft.com","approvedTime":"2026-03-01T09:00:00Z"}]`) ||
		!strings.Contains(string(body), `"purgeRequestedTime":"2026-03-01T09:00:00Z"`) {
		t.Errorf("purge request = %d %s", status, body)
	}

	status, body, _ = e.do(t, "POST", base+"/m365-policies/p1/test", "", "")
	want := `{"policyId":"p1","name":"Contoso DEP","success":false,"results":[` +
		`{"keyUri":"https://akv1.vault.localhost/keys/k1","keyId":"https://akv1.vault.localhost/keys/k1/v1","result":"Success"},` +
		`{"keyUri":"https://akv2.vault.localhost/keys/k2","keyId":"https://akv2.vault.localhost/keys/k2/v2","result":"Failed","failure":"AccessDenied","message":"no role"}]}`
	if status != 200 || strings.TrimSpace(string(body)) != want {
		t.Errorf("test = %d %s\nwant %s", status, body, want)
	}

	// No assignment is null; an assignment is the policy, read after it.
	if status, body, _ := e.do(t, "GET", base+"/m365-policy-assignment", "", ""); status != 200 || strings.TrimSpace(string(body)) != `{"dataEncryptionPolicy":null}` {
		t.Errorf("assignment = %d %s", status, body)
	}
	status, body, _ = e.do(t, "PUT", base+"/m365-policy-assignment", `{"dataEncryptionPolicy":"Contoso DEP"}`, "")
	if status != 200 || !strings.Contains(string(body), `"dataEncryptionPolicy":{"id":"7a1c2e3f-0000-4000-8000-000000000001"`) {
		t.Errorf("assign = %d %s", status, body)
	}
	if c := e.pol.last(t); c.method != "Get" || !slices.Equal(c.args, []string{"M365DataAtRest", "7a1c2e3f-0000-4000-8000-000000000001"}) {
		t.Errorf("after Assign the handler called %s%q; want Get of the assigned id", c.method, c.args)
	}
}

// TestMessageBodyIsAString checks that a message body travels as a JSON
// string both ways, not as the base64 of its bytes.
func TestMessageBodyIsAString(t *testing.T) {
	e := newEnv(t)
	e.mail.body = []byte("Quarterly numbers attached.\n— Alex")
	status, body, _ := e.do(t, "GET", base+"/mailboxes/m1/messages/x1", "", "")
	var m map[string]any
	if err := json.Unmarshal(body, &m); status != 200 || err != nil || m["body"] != "Quarterly numbers attached.\n— Alex" || m["subject"] != "Hello" {
		t.Errorf("GET message = %d %s", status, body)
	}
}

// TestFileContentIsRaw checks uploads and downloads of raw bytes, and that
// an upload over the largest possible file is refused before its body is
// read.
func TestFileContentIsRaw(t *testing.T) {
	e := newEnv(t)
	content := bytes.Repeat([]byte{0, 1, 2, 0xff}, 3000)
	status, body, _ := e.do(t, "PUT", base+"/sites/s1/files/Shared%20Documents/a%20b.bin", string(content), "application/octet-stream")
	var f map[string]any
	if err := json.Unmarshal(body, &f); status != 200 || err != nil || f["size"] != float64(len(content)) || f["path"] != "Shared Documents/a b.bin" {
		t.Errorf("PUT file = %d %s", status, body)
	}

	e.files.content = content
	status, body, h := e.do(t, "GET", base+"/sites/s1/files/Shared%20Documents/a%20b.bin", "", "")
	if status != 200 || !bytes.Equal(body, content) || h.Get("Content-Type") != "application/octet-stream" ||
		h.Get("Last-Modified") != "Sun, 01 Mar 2026 09:00:00 GMT" {
		t.Errorf("GET file = %d, %d bytes, %v", status, len(body), h)
	}

	// A declared length over the limit: refused, nothing read. The request
	// is written by hand, as a client would start sending such a file.
	e.files.calls, e.files.read = nil, 0
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s/sites/s1/files/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\n"+
		"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", base, files.MaxMaxFileSize+1)
	_, _ = conn.Write(make([]byte, 4096))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to an oversized upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || len(e.files.calls) != 0 || e.files.read != 0 {
		t.Errorf("PUT of %d bytes = %d, %d workload calls, %d bytes read; want 413 before the workload",
			files.MaxMaxFileSize+1, resp.StatusCode, len(e.files.calls), e.files.read)
	}
}
