package encryption_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/customerkey/customerkey/client/encryption"
	domain "github.com/customerkey/customerkey/internal/workload/encryption"
)

func newServer(t testing.TB) *testServer {
	t.Helper()
	ts, err := startTestServer()
	if err != nil {
		t.Fatalf("starting the test server: %v", err)
	}
	t.Cleanup(func() { ts.Close() })
	return ts
}

func newClient(t testing.TB, ts *testServer, token string, o *encryption.Options) *encryption.Client {
	t.Helper()
	if o == nil {
		o = &encryption.Options{}
	}
	o.HTTPClient = ts.Client
	c, err := encryption.New(ts.URL, ts.TenantID, credential(token), o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func random(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// Example encrypts through the server and seals locally with a data key.
func Example() {
	srv, err := startTestServer()
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	// In production: azidentity.NewClientSecretCredential(…) and the
	// server's public URL.
	c, err := encryption.New(srv.URL, srv.TenantID, credential("app"), &encryption.Options{HTTPClient: srv.Client})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	ct, err := c.Encrypt(ctx, "crm-prod", []byte("account 42: gold"), []byte("row 42"))
	if err != nil {
		panic(err)
	}
	pt, err := c.Decrypt(ctx, "crm-prod", ct, []byte("row 42"))
	fmt.Println(string(pt), err)

	sealed, err := c.Seal(ctx, "crm-prod", []byte("a large document"), []byte("doc 7"))
	if err != nil {
		panic(err)
	}
	opened, err := c.Open(ctx, "crm-prod", sealed, []byte("doc 7"))
	fmt.Println(string(opened), err)

	_, err = c.Decrypt(ctx, "crm-prod", ct, []byte("row 43"))
	var re *encryption.ResponseError
	fmt.Println(errors.As(err, &re), re.StatusCode, re.ErrorCode)
	// Output:
	// account 42: gold <nil>
	// a large document <nil>
	// true 400 DecryptionFailed
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		endpoint string
		tenant   string
		o        *encryption.Options
		ok       bool
	}{
		{"plain", "https://localhost:8443", "t", nil, true},
		{"trailing slash", "https://localhost:8443/", "t", nil, true},
		{"http", "http://localhost:8443", "t", nil, false},
		{"path", "https://localhost:8443/api", "t", nil, false},
		{"no host", "https://", "t", nil, false},
		{"no tenant", "https://localhost", " ", nil, false},
		{"too many items per key", "https://localhost", "t", &encryption.Options{MaxItemsPerDataKey: encryption.MaxItemsPerDataKeyLimit + 1}, false},
		{"negative lifetime", "https://localhost", "t", &encryption.Options{DataKeyLifetime: -1}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := encryption.New(tc.endpoint, tc.tenant, credential("x"), tc.o)
			if (err == nil) != tc.ok {
				t.Errorf("New(%q, %q) err = %v, want ok=%v", tc.endpoint, tc.tenant, err, tc.ok)
			}
		})
	}
	if _, err := encryption.New("https://localhost", "t", nil, nil); err == nil {
		t.Error("New without a credential succeeded")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	ts := newServer(t)
	app := newClient(t, ts, "app", nil)
	alice := newClient(t, ts, "alice", nil)
	ctx := context.Background()
	for _, size := range []int{0, 1, 4 << 10, 64 << 10, 1 << 20} {
		pt := random(t, size)
		ct, err := app.Encrypt(ctx, "crm-prod", pt, []byte("ctx"))
		if err != nil {
			t.Fatalf("Encrypt(%d bytes): %v", size, err)
		}
		got, err := alice.Decrypt(ctx, "CRM-Prod", ct, []byte("ctx"))
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Decrypt(%d bytes) = %d bytes, %v", size, len(got), err)
		}
	}
	ct, err := app.Encrypt(ctx, "crm-prod", []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		call   func() ([]byte, error)
		status int
		code   string
	}{
		{"wrong aad", func() ([]byte, error) { return app.Decrypt(ctx, "crm-prod", ct, []byte("other")) }, 400, "DecryptionFailed"},
		{"not a ciphertext", func() ([]byte, error) { return app.Decrypt(ctx, "crm-prod", []byte("junk"), nil) }, 400, "MalformedCiphertext"},
		{"unknown scope", func() ([]byte, error) { return app.Encrypt(ctx, "crm-nope", []byte("x"), nil) }, 404, "ScopeNotFound"},
		{"not a principal", func() ([]byte, error) {
			return newClient(t, ts, "admin", nil).Encrypt(ctx, "crm-prod", []byte("x"), nil)
		}, 403, "AuthorizationFailed"},
		{"another tenant", func() ([]byte, error) {
			return newClient(t, ts, "other", nil).Decrypt(ctx, "crm-prod", ct, nil)
		}, 403, "AuthorizationFailed"},
		{"bad token", func() ([]byte, error) { return newClient(t, ts, "nobody", nil).Decrypt(ctx, "crm-prod", ct, nil) }, 401, "InvalidAuthenticationToken"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := tc.call()
			var re *encryption.ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status || re.ErrorCode != tc.code || re.Message == "" || re.RequestID == "" {
				t.Errorf("err = %v (%+v), want %d %s with a message and a request id", err, re, tc.status, tc.code)
			}
			if out != nil {
				t.Errorf("a result came back with the error")
			}
		})
	}
	if _, err := app.Encrypt(ctx, "crm-prod", make([]byte, encryption.MaxItemSize+1), nil); err == nil {
		t.Error("Encrypt of MaxItemSize+1 bytes succeeded")
	}
}

func TestSealOpen(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	app := newClient(t, ts, "app", nil)
	items := make([][]byte, 20)
	sealed := make([][]byte, len(items))
	for i := range items {
		items[i] = random(t, i*1000)
		var err error
		if sealed[i], err = app.Seal(ctx, "crm-prod", items[i], []byte(fmt.Sprint("item ", i))); err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(items[i]) >= 16 && bytes.Contains(sealed[i], items[i][:16]) {
			t.Fatal("the sealed item contains its plaintext")
		}
	}
	if n := ts.Calls("datakey"); n != 1 {
		t.Errorf("20 seals fetched %d data keys, want 1", n)
	}
	// The sealing client opens its own items without a round trip.
	for i := range items {
		got, err := app.Open(ctx, "crm-prod", sealed[i], []byte(fmt.Sprint("item ", i)))
		if err != nil || !bytes.Equal(got, items[i]) {
			t.Fatalf("Open(item %d) = %d bytes, %v", i, len(got), err)
		}
	}
	if n := ts.Calls("datakey/decrypt"); n != 0 {
		t.Errorf("opening its own items made %d unwrap calls, want 0", n)
	}
	// Another principal's client unwraps the data key once for all items.
	alice := newClient(t, ts, "alice", nil)
	for i := range items {
		got, err := alice.Open(ctx, "crm-prod", sealed[i], []byte(fmt.Sprint("item ", i)))
		if err != nil || !bytes.Equal(got, items[i]) {
			t.Fatalf("alice Open(item %d) = %d bytes, %v", i, len(got), err)
		}
	}
	if n := ts.Calls("datakey/decrypt"); n != 1 {
		t.Errorf("opening 20 items of one data key made %d unwrap calls, want 1", n)
	}

	s := sealed[3]
	tests := []struct {
		name  string
		c     *encryption.Client
		scope string
		b     []byte
		aad   []byte
		want  error
	}{
		{"wrong aad", app, "crm-prod", s, []byte("item 4"), encryption.ErrOpen},
		{"flipped ciphertext", app, "crm-prod", flip(s, len(s)-20), []byte("item 3"), encryption.ErrOpen},
		{"flipped tag", alice, "crm-prod", flip(s, len(s)-1), []byte("item 3"), encryption.ErrOpen},
		{"other magic", app, "crm-prod", flip(s, 0), []byte("item 3"), encryption.ErrMalformed},
		{"truncated", app, "crm-prod", s[:10], []byte("item 3"), encryption.ErrMalformed},
		{"empty", app, "crm-prod", nil, nil, encryption.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Open(ctx, tc.scope, tc.b, tc.aad)
			if !errors.Is(err, tc.want) || got != nil {
				t.Errorf("Open = %d bytes, %v; want %v", len(got), err, tc.want)
			}
		})
	}
	// A changed wrapped key is refused by the server.
	var re *encryption.ResponseError
	if _, err := app.Open(ctx, "crm-prod", flip(s, 20), []byte("item 3")); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Errorf("Open with a changed wrapped key = %v, want a 400 from the server", err)
	}
	// A principal of no scope cannot get data keys.
	if _, err := newClient(t, ts, "admin", nil).Seal(ctx, "crm-prod", []byte("x"), nil); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("Seal by a non-principal = %v, want 403", err)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 1
	return c
}

// TestSealInOtherScope checks that an item opens only in the scope that
// sealed it.
func TestSealInOtherScope(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	admin := newClient(t, ts, "app", nil)
	if _, err := ts.Svc.CreateScope(ctx, ts.App, ts.TenantID, domain.ScopeSpec{Name: "hr-prod", Principals: []string{ts.AppID}}); err != nil {
		t.Fatal(err)
	}
	sealed, err := admin.Seal(ctx, "crm-prod", []byte("payroll"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var re *encryption.ResponseError
	if _, err := admin.Open(ctx, "hr-prod", sealed, nil); !errors.As(err, &re) || re.ErrorCode != "WrongScope" {
		t.Errorf("Open in another scope = %v, want the server's WrongScope", err)
	}
}

func TestDataKeyBounds(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	c := newClient(t, ts, "app", &encryption.Options{MaxItemsPerDataKey: 3, MaxBytesPerDataKey: 100})
	for range 7 {
		if _, err := c.Seal(ctx, "crm-prod", []byte("ten bytes!"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.Calls("datakey"); n != 3 {
		t.Errorf("7 seals with at most 3 items per key fetched %d keys, want 3", n)
	}
	// The third key took 10 bytes: a 60-byte item fits, the next two
	// each need a key of their own.
	for range 3 {
		if _, err := c.Seal(ctx, "crm-prod", make([]byte, 60), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := ts.Calls("datakey"); n != 5 {
		t.Errorf("three 60-byte seals with at most 100 bytes per key fetched %d keys in all, want 5", n)
	}
	if _, err := c.Seal(ctx, "crm-prod", make([]byte, 101), nil); err == nil {
		t.Error("Seal of more than MaxBytesPerDataKey succeeded")
	}
}

func TestConcurrentSealFetchesOnce(t *testing.T) {
	ts := newServer(t)
	ctx := context.Background()
	c := newClient(t, ts, "app", nil)
	var wg sync.WaitGroup
	sealed := make([][]byte, 64)
	errs := make([]error, 64)
	for i := range sealed {
		wg.Go(func() { sealed[i], errs[i] = c.Seal(ctx, "crm-prod", []byte{byte(i)}, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Seal %d: %v", i, err)
		}
	}
	if n := ts.Calls("datakey"); n != 1 {
		t.Errorf("64 concurrent first seals fetched %d data keys, want 1", n)
	}
	alice := newClient(t, ts, "alice", nil)
	for i := range sealed {
		wg.Go(func() {
			got, err := alice.Open(ctx, "crm-prod", sealed[i], nil)
			if err != nil || len(got) != 1 || got[0] != byte(i) {
				errs[i] = fmt.Errorf("Open %d = %v, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := ts.Calls("datakey/decrypt"); n != 1 {
		t.Errorf("64 concurrent first opens made %d unwrap calls, want 1", n)
	}
}

func BenchmarkSeal(b *testing.B) {
	ts := newServer(b)
	c := newClient(b, ts, "app", nil)
	ctx := context.Background()
	for _, size := range []int{4 << 10, 1 << 20} {
		pt := random(b, size)
		sealed, err := c.Seal(ctx, "crm-prod", pt, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("Seal/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Seal(ctx, "crm-prod", pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("Open/%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Open(ctx, "crm-prod", sealed, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
