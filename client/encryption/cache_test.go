package encryption

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// keyServer is a stand-in for the data key endpoints, enough to exercise
// the client's caches with a clock of the test's own: it issues random
// keys under random wrapped names and unwraps the names it issued. The
// real endpoints are tested against the real server in client_test.go.
type keyServer struct {
	mu      sync.Mutex
	keys    map[string][]byte // wrapped (base64url) -> key
	issued  atomic.Int64
	unwraps atomic.Int64
}

func (ks *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	enc := base64.RawURLEncoding
	ks.mu.Lock()
	defer ks.mu.Unlock()
	switch {
	case strings.HasSuffix(r.URL.Path, "/datakey"):
		ks.issued.Add(1)
		key, wrapped := make([]byte, 32), make([]byte, 40)
		_, _ = rand.Read(key)
		_, _ = rand.Read(wrapped)
		ks.keys[enc.EncodeToString(wrapped)] = key
		_ = json.NewEncoder(w).Encode(map[string]string{"key": enc.EncodeToString(key), "wrappedKey": enc.EncodeToString(wrapped)})
	case strings.HasSuffix(r.URL.Path, "/datakey/decrypt"):
		ks.unwraps.Add(1)
		var in struct{ WrappedKey string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		key, ok := ks.keys[in.WrappedKey]
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"code":"DecryptionFailed","message":"no such key"}}`))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"key": enc.EncodeToString(key)})
	default:
		http.NotFound(w, r)
	}
}

type countingCred struct {
	n   atomic.Int64
	ttl time.Duration
	now func() time.Time
}

func (c *countingCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	n := c.n.Add(1)
	return azcore.AccessToken{Token: "t" + string(rune('0'+n)), ExpiresOn: c.now().Add(c.ttl)}, nil
}

type fixture struct {
	ks   *keyServer
	c    *Client
	cred *countingCred
	now  time.Time
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{ks: &keyServer{keys: map[string][]byte{}}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	srv := httptest.NewTLSServer(f.ks)
	t.Cleanup(srv.Close)
	f.cred = &countingCred{ttl: time.Hour, now: func() time.Time { return f.now }}
	o.HTTPClient = srv.Client()
	c, err := New(srv.URL, "tenant", f.cred, &o)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return f.now }
	f.c = c
	return f
}

func TestDataKeyLifetime(t *testing.T) {
	f := newFixture(t, Options{DataKeyLifetime: 10 * time.Minute})
	ctx := context.Background()
	first, err := f.c.Seal(ctx, "s", []byte("one"), nil)
	if err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(9 * time.Minute)
	if _, err := f.c.Seal(ctx, "s", []byte("two"), nil); err != nil || f.ks.issued.Load() != 1 {
		t.Fatalf("Seal within the lifetime: %v, %d keys issued, want 1", err, f.ks.issued.Load())
	}
	f.now = f.now.Add(2 * time.Minute)
	if _, err := f.c.Seal(ctx, "s", []byte("three"), nil); err != nil || f.ks.issued.Load() != 2 {
		t.Fatalf("Seal after the lifetime: %v, %d keys issued, want 2", err, f.ks.issued.Load())
	}
	// The first key left Open's cache too: opening its item unwraps again.
	got, err := f.c.Open(ctx, "s", first, nil)
	if err != nil || string(got) != "one" || f.ks.unwraps.Load() != 1 {
		t.Errorf("Open after the lifetime = %q, %v, %d unwraps; want one unwrap", got, err, f.ks.unwraps.Load())
	}
	if _, err := f.c.Open(ctx, "s", first, nil); err != nil || f.ks.unwraps.Load() != 1 {
		t.Errorf("second Open: %v, %d unwraps, want the cached key", err, f.ks.unwraps.Load())
	}
}

func TestOpenCacheBounded(t *testing.T) {
	f := newFixture(t, Options{MaxItemsPerDataKey: 1, MaxCachedDataKeys: 2})
	ctx := context.Background()
	var sealed [][]byte
	for i := range 5 {
		f.now = f.now.Add(time.Second) // later keys expire later
		s, err := f.c.Seal(ctx, "s", []byte{byte(i)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sealed = append(sealed, s)
	}
	f.c.keys.mu.Lock()
	n := len(f.c.keys.keys)
	f.c.keys.mu.Unlock()
	if n != 2 {
		t.Errorf("Open's cache holds %d keys, want at most 2", n)
	}
	// The newest keys stayed; the oldest needs a round trip.
	if _, err := f.c.Open(ctx, "s", sealed[4], nil); err != nil || f.ks.unwraps.Load() != 0 {
		t.Errorf("Open of the newest item: %v, %d unwraps", err, f.ks.unwraps.Load())
	}
	if _, err := f.c.Open(ctx, "s", sealed[0], nil); err != nil || f.ks.unwraps.Load() != 1 {
		t.Errorf("Open of the oldest item: %v, %d unwraps, want 1", err, f.ks.unwraps.Load())
	}
}

func TestTokenReuse(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	for range 3 {
		if _, err := f.c.Seal(ctx, "s", []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := f.c.token(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.cred.n.Load(); n != 1 {
		t.Errorf("%d tokens fetched, want 1 while it is fresh", n)
	}
	f.now = f.now.Add(59 * time.Minute) // within two minutes of expiry
	if _, err := f.c.token(ctx); err != nil || f.cred.n.Load() != 2 {
		t.Errorf("token near expiry: %v, %d fetched, want a new one", err, f.cred.n.Load())
	}
}
