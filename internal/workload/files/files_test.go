package files_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/dep"
	"github.com/customerkey/customerkey/internal/directory"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/workload/files"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

func TestCreateSite(t *testing.T) {
	e := newEnv(t, files.Options{})
	host, _, _ := strings.Cut(e.org.Tenant.DefaultDomain, ".")
	root, my := "https://"+host+".sharepoint.com", "https://"+host+"-my.sharepoint.com"
	e.site("taken", "")
	owners := []string{e.alice.ID}
	tests := []struct {
		name    string
		c       directory.Caller
		spec    files.SiteSpec
		want    errkind.Kind
		wantOK  bool
		wantURL string
		wantGeo string
	}{
		{name: "team site, default geo", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/Finance", Owners: owners},
			wantOK: true, wantURL: root + "/sites/Finance", wantGeo: "NAM"},
		{name: "upper-case host, trailing slash, by the SharePoint Administrator", c: e.spo,
			spec:   files.SiteSpec{URL: strings.ToUpper(root[:8]) + strings.ToUpper(root[8:]) + "/teams/eng/", Geo: "eur", Owners: owners},
			wantOK: true, wantURL: root + "/teams/eng", wantGeo: "EUR"},
		{name: "root site", c: e.admin, spec: files.SiteSpec{URL: root, Owners: owners}, wantOK: true, wantURL: root, wantGeo: "NAM"},
		{name: "OneDrive", c: e.admin, spec: files.SiteSpec{URL: my + "/personal/alice_contoso_onmicrosoft_com", Geo: "GBR",
			Owners: []string{e.alice.ID, "alice@" + e.org.Tenant.DefaultDomain}},
			wantOK: true, wantURL: my + "/personal/alice_contoso_onmicrosoft_com", wantGeo: "GBR"},
		{name: "URL taken, other case", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/TAKEN", Owners: owners}, want: errkind.AlreadyExists},
		{name: "http", c: e.admin, spec: files.SiteSpec{URL: "http://" + host + ".sharepoint.com/sites/x", Owners: owners}, want: errkind.Invalid},
		{name: "another tenant's host", c: e.admin, spec: files.SiteSpec{URL: "https://fabrikam.sharepoint.com/sites/x", Owners: owners}, want: errkind.Invalid},
		{name: "query", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/x?a=b", Owners: owners}, want: errkind.Invalid},
		{name: "port", c: e.admin, spec: files.SiteSpec{URL: root + ":8443/sites/x", Owners: owners}, want: errkind.Invalid},
		{name: "no site name", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/", Owners: owners}, want: errkind.Invalid},
		{name: "nested path", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/a/b", Owners: owners}, want: errkind.Invalid},
		{name: "personal on the root host", c: e.admin, spec: files.SiteSpec{URL: root + "/personal/a", Owners: owners}, want: errkind.Invalid},
		{name: "unknown geo", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/g", Geo: "XYZ", Owners: owners}, want: errkind.Invalid},
		{name: "no owner", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/o"}, want: errkind.Invalid},
		{name: "owner of another tenant", c: e.admin, spec: files.SiteSpec{URL: root + "/sites/o", Owners: []string{e.other.Admin.ID}}, want: errkind.Invalid},
		{name: "plain user", c: e.bob, spec: files.SiteSpec{URL: root + "/sites/p", Owners: owners}, want: errkind.PermissionDenied},
		{name: "admin of another tenant", c: e.oAdmin, spec: files.SiteSpec{URL: root + "/sites/p", Owners: owners}, want: errkind.PermissionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.svc.CreateSite(e.ctx, tc.c, e.tid(), tc.spec)
			if !tc.wantOK {
				if errkind.KindOf(err) != tc.want {
					t.Fatalf("CreateSite(%+v) err = %v, want kind %v", tc.spec, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("CreateSite(%+v) err = %v", tc.spec, err)
			}
			if s.URL != tc.wantURL || s.Geo != tc.wantGeo || !slices.Equal(s.Owners, []string{e.alice.ID}) {
				t.Errorf("CreateSite = %+v, want URL %s, geo %s, owner alice once", s, tc.wantURL, tc.wantGeo)
			}
			got, err := e.svc.GetSite(e.ctx, e.alice, e.tid(), strings.ToUpper(tc.wantURL)+"/")
			if err != nil {
				t.Fatalf("GetSite by URL: %v", err)
			}
			if diff := cmp.Diff(s, got); diff != "" {
				t.Errorf("GetSite by URL differs (-created +got):\n%s", diff)
			}
		})
	}
}

func TestChunking(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("docs", "")
	tests := []struct {
		name   string
		size   int
		chunks int
	}{
		{"empty file", 0, 0},
		{"one byte", 1, 1},
		{"one byte short of a chunk", chunk - 1, 1},
		{"exactly one chunk", chunk, 1},
		{"one byte over", chunk + 1, 2},
		{"exact multiple", 3 * chunk, 3},
		{"multiple plus one byte", 3*chunk + 1, 4},
		{"the largest file", 64 << 10, 64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			content := make([]byte, tc.size)
			for i := range content {
				content[i] = byte(i*7 + tc.size)
			}
			path := "Shared Documents/" + strings.ReplaceAll(tc.name, " ", "-") + ".bin"
			f := e.put(e.alice, site.ID, path, content)
			if f.Size != int64(tc.size) || f.ChunkCount != tc.chunks {
				t.Errorf("PutFile(%d bytes) = size %d in %d chunks, want %d chunks", tc.size, f.Size, f.ChunkCount, tc.chunks)
			}
			ids, _, err := files.ChunkMap(e.ctx, e.svc, e.tid(), site.ID, path)
			if err != nil || len(ids) != tc.chunks {
				t.Errorf("chunk map has %d chunks, %v; want %d", len(ids), err, tc.chunks)
			}
			got, body, err := e.svc.GetFile(e.ctx, e.alice, e.tid(), site.URL, "/"+path)
			if err != nil {
				t.Fatalf("GetFile: %v", err)
			}
			if !bytes.Equal(body, content) || got.Path != path {
				t.Errorf("GetFile = %d bytes at %q, want the %d bytes put at %q", len(body), got.Path, tc.size, path)
			}
		})
	}
	if _, err := e.svc.PutFile(e.ctx, e.alice, e.tid(), site.ID, "big.bin", bytes.NewReader(make([]byte, 64<<10+1))); !errkind.Is(err, errkind.TooLarge) {
		t.Errorf("PutFile of one byte over the limit err = %v, want TooLarge", err)
	}
	var chunks int
	for _, tc := range tests {
		chunks += tc.chunks
	}
	if n := len(e.keys("files/chunk/")); n != chunks {
		t.Errorf("the store holds %d chunk records, want %d", n, chunks)
	}
}

func TestUpdateReplacesEveryChunkKey(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("docs", "")
	const path = "plan.docx"
	e.put(e.alice, site.ID, path, bytes.Repeat([]byte("v1"), 2*chunk))
	ids1, keys1, err := files.ChunkMap(e.ctx, e.svc, e.tid(), site.ID, path)
	if err != nil {
		t.Fatal(err)
	}
	v2 := bytes.Repeat([]byte("v2"), 2*chunk) // the same size: nothing may be reused
	e.put(e.spo, site.ID, path, v2)
	ids2, keys2, err := files.ChunkMap(e.ctx, e.svc, e.tid(), site.ID, path)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids2) != len(ids1) {
		t.Fatalf("the update has %d chunks, the original %d", len(ids2), len(ids1))
	}
	for i := range ids2 {
		if slices.Contains(ids1, ids2[i]) {
			t.Errorf("chunk %s survived the update", ids2[i])
		}
		for _, k := range keys1 {
			if bytes.Equal(k, keys2[i]) {
				t.Errorf("wrapped chunk key %d survived the update", i)
			}
		}
	}
	stored := e.keys("files/chunk/")
	if len(stored) != len(ids2) {
		t.Errorf("the store holds %d chunk records after the update, want %d", len(stored), len(ids2))
	}
	for _, k := range stored {
		if slices.ContainsFunc(ids1, func(id string) bool { return strings.HasSuffix(k, id) }) {
			t.Errorf("old chunk record %s was not deleted", k)
		}
	}
	if got := e.get(e.alice, site.ID, path); !bytes.Equal(got, v2) {
		t.Errorf("GetFile after the update = %.20q…, want v2", got)
	}
}

// failingReader yields n bytes and then fails.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("connection reset by peer")
	}
	k := min(len(p), r.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	r.n -= k
	return k, nil
}

func TestFailedWriteKeepsThePreviousContent(t *testing.T) {
	e := newEnv(t, files.Options{MaxFileSize: 8 * chunk})
	site := e.site("docs", "")
	const path = "ledger.xlsx"
	v1 := bytes.Repeat([]byte("v1"), chunk)
	e.put(e.alice, site.ID, path, v1)
	before := e.keys("files/")
	tests := []struct {
		name string
		r    io.Reader
		want errkind.Kind
	}{
		{"the reader fails after two and a half chunks", &failingReader{n: 5 * chunk / 2}, errkind.Invalid},
		{"one byte over the limit", bytes.NewReader(make([]byte, 8*chunk+1)), errkind.TooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.PutFile(e.ctx, e.alice, e.tid(), site.ID, path, tc.r); errkind.KindOf(err) != tc.want {
				t.Errorf("PutFile err = %v, want kind %v", err, tc.want)
			}
			if got := e.get(e.alice, site.ID, path); !bytes.Equal(got, v1) {
				t.Errorf("after a failed write GetFile = %d bytes, want the previous %d", len(got), len(v1))
			}
			if diff := cmp.Diff(before, e.keys("files/")); diff != "" {
				t.Errorf("a failed write changed the store (-before +after):\n%s", diff)
			}
		})
	}
}

func TestNoPlaintextInStore(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("finance", "")
	marker := "CONTENT-MARKER-c0ffee"
	e.put(e.alice, site.ID, "Shared Documents/budget.xlsx", bytes.Repeat([]byte(marker+" "), 300))
	e.put(e.alice, site.ID, "tiny.txt", []byte(marker))
	raw, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Errorf("the store file holds file content in plaintext")
	}
	// Paths are metadata, which Customer Key does not cover: finding one
	// shows the search would find plaintext.
	if !bytes.Contains(raw, []byte("budget.xlsx")) {
		t.Errorf("the store file does not hold the file path; the search proves nothing")
	}
}

func TestGeoPolicyRewrapsEverySite(t *testing.T) {
	e := newEnv(t, files.Options{})
	tid := e.tid()
	type placed struct {
		site    files.Site
		content []byte
	}
	var all []placed
	for i, geo := range []string{"NAM", "NAM", "NAM", "EUR", "EUR"} {
		s := e.site(fmt.Sprintf("s%d", i), geo)
		c := bytes.Repeat([]byte{byte(i)}, 3*chunk/2)
		e.put(e.alice, s.ID, "f.bin", c)
		all = append(all, placed{s, c})
	}
	progress := func(geo string, ref dep.PolicyRef) (int, int) {
		t.Helper()
		d, n, err := e.svc.Progress(e.ctx, tid, geo, ref)
		if err != nil {
			t.Fatalf("Progress(%s): %v", geo, err)
		}
		return d, n
	}
	readAll := func(when string) {
		t.Helper()
		for _, p := range all {
			if got := e.get(e.alice, p.site.ID, "f.bin"); !bytes.Equal(got, p.content) {
				t.Fatalf("%s: site %s reads %d bytes, want its content", when, p.site.URL, len(got))
			}
		}
	}
	def, _ := e.deps.EffectiveGeo(e.ctx, tid, "NAM")
	eur := e.deps.register(t, tid, "EUR")
	if d, n := progress("eur", eur); d != 0 || n != 2 {
		t.Errorf("Progress(EUR) while Registering = %d/%d, want 0/2", d, n)
	}
	if st, err := e.svc.SiteEncryptionStatus(e.ctx, e.spo, tid, all[3].site.URL); err != nil || st.Current || st.PolicyID != def.PolicyID {
		t.Errorf("SiteEncryptionStatus before the rewrap = %+v, %v; want the default, not current", st, err)
	}
	if n := e.sweep(); n != 2 {
		t.Errorf("Sweep rewrapped %d sites, want the 2 of EUR", n)
	}
	if d, n := progress("EUR", eur); d != 2 || n != 2 {
		t.Errorf("Progress(EUR) after the sweep = %d/%d, want 2/2", d, n)
	}
	if d, n := progress("NAM", def); d != 3 || n != 3 {
		t.Errorf("Progress(NAM) = %d/%d, want the 3 sites still on the default", d, n)
	}
	if d, n := progress("", def); d != 3 || n != 5 {
		t.Errorf("Progress(every geo) = %d/%d, want 3/5", d, n)
	}
	st, err := e.svc.SiteEncryptionStatus(e.ctx, e.admin, tid, all[4].site.ID)
	want := files.SiteEncryption{SiteID: all[4].site.ID, URL: all[4].site.URL, Geo: "EUR", PolicyID: eur.PolicyID, Kind: dep.SharePoint,
		KeyVersion: 1, Current: true}
	if diff := cmp.Diff(want, st); err != nil || diff != "" {
		t.Errorf("SiteEncryptionStatus after the rewrap (err %v), diff (-want +got):\n%s", err, diff)
	}
	readAll("after registering EUR")
	// Rolling the geo key: sites are not current until the job reaches them.
	eur2 := e.deps.roll(t, eur.PolicyID)
	if st, _ := e.svc.SiteEncryptionStatus(e.ctx, e.admin, tid, all[4].site.ID); st.Current || st.KeyVersion != 1 {
		t.Errorf("SiteEncryptionStatus while Rolling = %+v, want key version 1, not current", st)
	}
	if n := e.sweep(); n != 2 {
		t.Errorf("Sweep after the roll rewrapped %d, want 2", n)
	}
	if d, n := progress("EUR", eur2); d != 2 || n != 2 {
		t.Errorf("Progress(EUR) after the roll = %d/%d, want 2/2", d, n)
	}
	readAll("after the roll")
	if _, _, err := e.svc.Progress(e.ctx, tid, "MARS", eur2); !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Progress of an unknown geo err = %v, want Invalid", err)
	}
}

func TestRunServesKicks(t *testing.T) {
	e := newEnv(t, files.Options{})
	tid := e.tid()
	e.site("a", "EUR")
	e.site("b", "EUR")
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.Run(ctx) }()
	eur := e.deps.register(t, tid, "EUR")
	e.svc.Kick(tid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, n, err := e.svc.Progress(e.ctx, tid, "EUR", eur)
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
	e := newEnv(t, files.Options{})
	tid := e.tid()
	eur := e.deps.register(t, tid, "EUR")
	site := e.site("legal", "EUR")
	e.put(e.alice, site.ID, "contract.pdf", []byte("terms"))
	e.deps.revoke(eur.PolicyID)
	for name, fn := range map[string]func() error{
		"GetFile": func() error { _, _, err := e.svc.GetFile(e.ctx, e.alice, tid, site.ID, "contract.pdf"); return err },
		"PutFile": func() error {
			_, err := e.svc.PutFile(e.ctx, e.alice, tid, site.ID, "new.txt", strings.NewReader("x"))
			return err
		},
	} {
		if err := fn(); err != errRevoked { // dep's error comes back unchanged, not wrapped
			t.Errorf("%s with revoked keys err = %v, want dep's revocation error unchanged", name, err)
		}
	}
	// Metadata needs no key.
	if p, err := e.svc.ListFiles(e.ctx, e.alice, tid, site.ID, "", 0); err != nil || len(p.Files) != 1 {
		t.Errorf("ListFiles with revoked keys = %d files, %v; want 1", len(p.Files), err)
	}
	// Rewrap work after a roll is system work.
	e.deps.roll(t, eur.PolicyID)
	before := len(e.deps.Purposes())
	if n := e.sweep(); n != 1 {
		t.Fatalf("Sweep rewrapped %d, want 1", n)
	}
	after := e.deps.Purposes()[before:]
	if len(after) == 0 || slices.ContainsFunc(after, func(p dep.Purpose) bool { return !p.System }) {
		t.Errorf("rewrap unwrapped with purposes %+v, want only System", after)
	}
}

func TestAccess(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("team", "")
	e.put(e.alice, site.ID, "a.txt", []byte("a"))
	tests := []struct {
		name string
		c    directory.Caller
		want error
		kind errkind.Kind
	}{
		{name: "owner", c: e.alice},
		{name: "Global Administrator", c: e.admin},
		{name: "SharePoint Administrator", c: e.spo},
		{name: "system", c: directory.System},
		{name: "another user", c: e.bob, kind: errkind.PermissionDenied},
		{name: "another tenant's admin", c: e.oAdmin, want: files.ErrSiteNotFound},
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
			_, _, err := e.svc.GetFile(e.ctx, tc.c, e.tid(), site.ID, "a.txt")
			check("GetFile", err)
			_, err = e.svc.PutFile(e.ctx, tc.c, e.tid(), site.URL, "b.txt", strings.NewReader("b"))
			check("PutFile", err)
			_, err = e.svc.ListFiles(e.ctx, tc.c, e.tid(), site.ID, "", 0)
			check("ListFiles", err)
			_, err = e.svc.GetSite(e.ctx, tc.c, e.tid(), site.ID)
			check("GetSite", err)
		})
	}
	if _, err := e.svc.SiteEncryptionStatus(e.ctx, e.alice, e.tid(), site.ID); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("SiteEncryptionStatus by an owner err = %v, want PermissionDenied (an admin cmdlet)", err)
	}
	if _, err := e.svc.SiteEncryptionStatus(e.ctx, e.oAdmin, e.tid(), site.ID); !errors.Is(err, files.ErrSiteNotFound) {
		t.Errorf("SiteEncryptionStatus by another tenant err = %v, want ErrSiteNotFound", err)
	}
	if _, err := e.svc.ListSites(e.ctx, e.alice, e.tid(), "", 0); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("ListSites by a plain user err = %v, want PermissionDenied", err)
	}
	if err := e.svc.DeleteFile(e.ctx, e.bob, e.tid(), site.ID, "a.txt"); !errkind.Is(err, errkind.PermissionDenied) {
		t.Errorf("DeleteFile by a non-owner err = %v, want PermissionDenied", err)
	}
}

func TestPathsAndDelete(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("docs", "")
	for _, bad := range []string{"", "/", "a//b", "a/../b", "./a", "a/b:c", "a/b?", " a", "a /b", "x\x00y", strings.Repeat("p", files.MaxPathLen+1)} {
		if _, err := e.svc.PutFile(e.ctx, e.alice, e.tid(), site.ID, bad, strings.NewReader("x")); !errkind.Is(err, errkind.Invalid) {
			t.Errorf("PutFile(%q) err = %v, want Invalid", bad, err)
		}
	}
	e.put(e.alice, site.ID, "Shared Documents/Report.docx", []byte("one"))
	// Paths are case-insensitive: the same file.
	e.put(e.alice, site.ID, "shared documents/REPORT.DOCX", []byte("two"))
	if got := e.get(e.alice, site.ID, "Shared Documents/report.docx"); string(got) != "two" {
		t.Errorf("GetFile in another case = %q, want two", got)
	}
	if err := e.svc.DeleteFile(e.ctx, e.alice, e.tid(), site.ID, "SHARED DOCUMENTS/report.docx"); err != nil {
		t.Fatalf("DeleteFile: %v", err)
	}
	if _, _, err := e.svc.GetFile(e.ctx, e.alice, e.tid(), site.ID, "Shared Documents/Report.docx"); !errors.Is(err, files.ErrFileNotFound) {
		t.Errorf("GetFile after DeleteFile err = %v, want ErrFileNotFound", err)
	}
	if err := e.svc.DeleteFile(e.ctx, e.alice, e.tid(), site.ID, "Shared Documents/Report.docx"); !errors.Is(err, files.ErrFileNotFound) {
		t.Errorf("second DeleteFile err = %v, want ErrFileNotFound", err)
	}
	if left := e.keys("files/chunk/"); len(left) != 0 {
		t.Errorf("chunk records left after DeleteFile: %v", left)
	}
}

func TestListPages(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("docs", "")
	var want []string
	for _, p := range []string{"b.txt", "A.txt", "a/b.txt", "c/d/e.txt", "C.md"} {
		e.put(e.alice, site.ID, p, []byte(p))
		want = append(want, p)
	}
	var got []string
	token, pages := "", 0
	for {
		p, err := e.svc.ListFiles(e.ctx, e.alice, e.tid(), site.ID, token, 2)
		if err != nil {
			t.Fatalf("ListFiles(%q): %v", token, err)
		}
		pages++
		for _, f := range p.Files {
			got = append(got, f.Path)
		}
		if token = p.Next; token == "" {
			break
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) || pages != 3 {
		t.Errorf("ListFiles in pages of 2 = %v in %d pages, want %v in 3", got, pages, want)
	}
	if _, err := e.svc.ListFiles(e.ctx, e.alice, e.tid(), site.ID, "../x", 2); !errors.Is(err, scope.ErrBadPageToken) {
		t.Errorf("ListFiles with a forged token err = %v, want ErrBadPageToken", err)
	}
	for i := range 3 {
		e.site(fmt.Sprintf("more%d", i), "")
	}
	n, token := 0, ""
	for {
		p, err := e.svc.ListSites(e.ctx, e.spo, e.tid(), token, 3)
		if err != nil {
			t.Fatalf("ListSites: %v", err)
		}
		n += len(p.Sites)
		if token = p.Next; token == "" {
			break
		}
	}
	if n != 4 {
		t.Errorf("ListSites listed %d sites, want 4", n)
	}
}

func TestPurgePolicy(t *testing.T) {
	e := newEnv(t, files.Options{})
	tid := e.tid()
	eur := e.deps.register(t, tid, "EUR")
	gone := []files.Site{e.site("eu1", "EUR"), e.site("eu2", "EUR")}
	kept := e.site("us1", "NAM")
	for _, s := range append(gone, kept) {
		e.put(e.alice, s.ID, "a.bin", bytes.Repeat([]byte("a"), 2*chunk))
		e.put(e.alice, s.ID, "b.bin", []byte("b"))
	}
	// A roll leaves one site on version 1, one on version 2: both go.
	e.deps.roll(t, eur.PolicyID)
	if _, err := e.svc.Sweep(e.ctx); err != nil {
		t.Fatal(err)
	}
	otherSite, err := e.svc.CreateSite(e.ctx, e.oAdmin, e.other.Tenant.ID, files.SiteSpec{URL: "https://fabrikam.sharepoint.com/sites/x",
		Geo: "EUR", Owners: []string{e.other.Admin.ID}})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.svc.PurgePolicy(e.ctx, tid, eur.PolicyID)
	if err != nil || n != 2 {
		t.Fatalf("PurgePolicy = %d, %v; want 2 sites", n, err)
	}
	for _, s := range gone {
		if _, err := e.svc.GetSite(e.ctx, e.admin, tid, s.URL); !errors.Is(err, files.ErrSiteNotFound) {
			t.Errorf("GetSite(%s) after the purge err = %v, want ErrSiteNotFound", s.URL, err)
		}
		for _, k := range e.keys("files/") {
			if strings.Contains(k, s.ID) || strings.HasSuffix(k, strings.ToLower(s.URL)) {
				t.Errorf("store key %s of a purged site is left", k)
			}
		}
	}
	if got := e.get(e.alice, kept.ID, "a.bin"); len(got) != 2*chunk {
		t.Errorf("the kept site reads %d bytes, want %d", len(got), 2*chunk)
	}
	if _, err := e.svc.GetSite(e.ctx, e.oAdmin, e.other.Tenant.ID, otherSite.ID); err != nil {
		t.Errorf("the other tenant's site after the purge: %v", err)
	}
	if n, err := e.svc.PurgePolicy(e.ctx, tid, eur.PolicyID); err != nil || n != 0 {
		t.Errorf("PurgePolicy again = %d, %v; want 0, nil", n, err)
	}
}

func TestConcurrentPutGet(t *testing.T) {
	e := newEnv(t, files.Options{})
	site := e.site("busy", "")
	const path = "shared.bin"
	e.put(e.alice, site.ID, path, bytes.Repeat([]byte{'0'}, 5*chunk/2))
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 3 {
		wg.Go(func() {
			for i := range 8 {
				// Every version is one byte value repeated, in a size of
				// its own: a read mixing two versions shows.
				v := bytes.Repeat([]byte{byte('a' + w*8 + i)}, chunk*(1+w)+i)
				if _, err := e.svc.PutFile(e.ctx, e.alice, e.tid(), site.ID, path, bytes.NewReader(v)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for range 12 {
				f, got, err := e.svc.GetFile(e.ctx, e.alice, e.tid(), site.ID, path)
				if err != nil {
					errs <- err
					return
				}
				if int64(len(got)) != f.Size || len(got) == 0 || bytes.Count(got, got[:1]) != len(got) {
					errs <- fmt.Errorf("GetFile returned a torn file: %d bytes (record says %d)", len(got), f.Size)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids, _, err := files.ChunkMap(e.ctx, e.svc, e.tid(), site.ID, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.keys("files/chunk/")); n != len(ids) {
		t.Errorf("the store holds %d chunk records, the file %d: concurrent updates leaked chunks", n, len(ids))
	}
}

func TestOptionsBounds(t *testing.T) {
	e := newEnv(t, files.Options{})
	for _, o := range []files.Options{{ChunkSize: files.MinChunkSize - 1}, {ChunkSize: files.MaxChunkSize + 1}, {MaxFileSize: files.MaxMaxFileSize + 1},
		{ChunkSize: chunk}} {
		o.Store, o.Policies, o.Directory = e.store, e.deps, e.dir
		func() {
			defer func() {
				if r := recover(); (r == nil) != (o.ChunkSize == chunk) {
					t.Errorf("New(chunk %d, max %d) panic = %v; want a panic exactly for sizes out of bounds", o.ChunkSize, o.MaxFileSize, r)
				}
			}()
			files.New(o)
		}()
	}
}
