package encryption

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	e := newEnv(t)
	e.scope("crm-prod", e.alice.ID, e.app.ID)
	tests := []struct {
		name string
		size int
		aad  []byte
	}{
		{"empty", 0, nil},
		{"one byte", 1, []byte("row 17")},
		{"4 KiB", 4 << 10, nil},
		{"64 KiB with aad", 64 << 10, []byte("customer/42")},
		{"largest", MaxItemSize, []byte("x")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt := randBytes(t, tc.size)
			ct := e.encrypt(e.alice, "CRM-Prod", pt, tc.aad)
			if len(ct) != len(pt)+Overhead(len("crm-prod")) {
				t.Errorf("len(ciphertext) = %d, want %d + overhead %d", len(ct), len(pt), Overhead(len("crm-prod")))
			}
			if tc.size >= 16 && bytes.Contains(ct, pt[:16]) {
				t.Error("the ciphertext contains the plaintext")
			}
			// Another principal of the scope decrypts it, appending to dst.
			prefix := []byte("prefix:")
			got, err := e.svc.Decrypt(e.ctx, e.app, e.tid, "crm-prod", prefix, ct, tc.aad)
			if err != nil || !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], pt) {
				t.Fatalf("Decrypt = %d bytes, %v; want the prefix and the plaintext", len(got), err)
			}
			// Every item has its own salt and nonce.
			if ct2 := e.encrypt(e.alice, "crm-prod", pt, tc.aad); bytes.Equal(ct, ct2) {
				t.Error("two encryptions of the same plaintext are equal")
			}
		})
	}
	// Encrypt appends to dst.
	dst := []byte("head")
	ct, err := e.svc.Encrypt(e.ctx, e.alice, e.tid, "crm-prod", dst, []byte("body"), nil)
	if err != nil || string(ct[:4]) != "head" {
		t.Fatalf("Encrypt with dst = %q, %v", ct, err)
	}
	if pt, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, ct[4:], nil); err != nil || string(pt) != "body" {
		t.Errorf("Decrypt = %q, %v", pt, err)
	}
}

func TestItemHeader(t *testing.T) {
	e := newEnv(t)
	e.scope("crm-prod", e.alice.ID)
	ct := e.encrypt(e.alice, "crm-prod", []byte("data"), nil)
	name, ver, n, err := itemHeader(ct)
	if err != nil || string(name) != "crm-prod" || ver != 1 || n != len(itemMagic)+1+len("crm-prod")+4+saltLen {
		t.Errorf("itemHeader = %q, %d, %d, %v", name, ver, n, err)
	}
	if string(ct[:4]) != "CKE\x01" {
		t.Errorf("the item starts with %q, want the magic CKE and version 1", ct[:4])
	}
}

func TestBinding(t *testing.T) {
	e := newEnv(t)
	e.scope("crm-prod", e.alice.ID)
	e.scope("crm-test", e.alice.ID)
	if _, err := e.svc.CreateScope(e.ctx, e.otherAdmin, e.otherTID, ScopeSpec{Name: "crm-prod", Principals: []string{e.other.Admin.ID}}); err != nil {
		t.Fatal(err)
	}
	aad := []byte("invoice 1")
	ct := e.encrypt(e.alice, "crm-prod", []byte("amount 100"), aad)
	tests := []struct {
		name  string
		c     func() ([]byte, error)
		want  error
		kindW errkind.Kind
	}{
		{"other aad", func() ([]byte, error) {
			return e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, ct, []byte("invoice 2"))
		}, ErrDecrypt, errkind.Invalid},
		{"no aad", func() ([]byte, error) { return e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, ct, nil) }, ErrDecrypt, errkind.Invalid},
		{"other scope", func() ([]byte, error) { return e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-test", nil, ct, aad) }, nil, errkind.Invalid},
		{"same scope name in another tenant", func() ([]byte, error) {
			return e.svc.Decrypt(e.ctx, e.otherAdmin, e.otherTID, "crm-prod", nil, ct, aad)
		}, ErrDecrypt, errkind.Invalid},
		{"caller of another tenant", func() ([]byte, error) {
			return e.svc.Decrypt(e.ctx, e.otherAdmin, e.tid, "crm-prod", nil, ct, aad)
		}, nil, errkind.PermissionDenied},
		{"administrator who is not a principal", func() ([]byte, error) {
			return e.svc.Decrypt(e.ctx, e.admin, e.tid, "crm-prod", nil, ct, aad)
		}, nil, errkind.PermissionDenied},
		{"missing scope", func() ([]byte, error) { return e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-nope", nil, ct, aad) }, nil, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.c()
			if pt != nil {
				t.Errorf("Decrypt returned %d bytes with the error", len(pt))
			}
			wantKind(t, "Decrypt", err, tc.kindW)
			if tc.want != nil && err != tc.want {
				t.Errorf("Decrypt err = %v, want %v", err, tc.want)
			}
		})
	}
	if pt, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, ct, aad); err != nil || string(pt) != "amount 100" {
		t.Errorf("Decrypt with the right context = %q, %v", pt, err)
	}
}

func TestTamper(t *testing.T) {
	e := newEnv(t)
	e.scope("crm-prod", e.alice.ID)
	ct := e.encrypt(e.alice, "crm-prod", []byte("the quick brown fox"), []byte("ctx"))
	nameAt := len(itemMagic) + 1
	verAt := nameAt + len("crm-prod")
	saltAt := verAt + 4
	nonceAt := saltAt + saltLen
	ctAt := nonceAt + nonceLen
	tests := []struct {
		name string
		edit func([]byte) []byte
		kind errkind.Kind
	}{
		{"magic", func(b []byte) []byte { b[0] ^= 1; return b }, errkind.Invalid},
		{"format version", func(b []byte) []byte { b[3] = 2; return b }, errkind.Invalid},
		{"name length", func(b []byte) []byte { b[nameAt-1] = 200; return b }, errkind.Invalid},
		{"name", func(b []byte) []byte { b[nameAt+3] = 'x'; return b }, errkind.Invalid},
		{"key version", func(b []byte) []byte { b[verAt+3] = 2; return b }, errkind.Invalid},
		{"salt", func(b []byte) []byte { b[saltAt+5] ^= 0x80; return b }, errkind.Invalid},
		{"nonce", func(b []byte) []byte { b[nonceAt] ^= 1; return b }, errkind.Invalid},
		{"ciphertext", func(b []byte) []byte { b[ctAt+2] ^= 1; return b }, errkind.Invalid},
		{"tag", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, errkind.Invalid},
		{"truncated tag", func(b []byte) []byte { return b[:len(b)-1] }, errkind.Invalid},
		{"truncated to the header", func(b []byte) []byte { return b[:nonceAt] }, errkind.Invalid},
		{"appended byte", func(b []byte) []byte { return append(b, 0) }, errkind.Invalid},
		{"empty", func([]byte) []byte { return nil }, errkind.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(ct))
			pt, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "crm-prod", nil, b, []byte("ctx"))
			if err == nil || pt != nil {
				t.Fatalf("Decrypt of a changed item = %q, %v; want an error", pt, err)
			}
			wantKind(t, "Decrypt", err, tc.kind)
			if !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrMalformed) {
				if k, _ := errkind.As(err); k.Code != "WrongScope" {
					t.Errorf("Decrypt err = %v, want ErrDecrypt, ErrMalformed or WrongScope", err)
				}
			}
		})
	}
}

func TestTooLarge(t *testing.T) {
	e := newEnv(t)
	e.scope("big", e.alice.ID)
	_, err := e.svc.Encrypt(e.ctx, e.alice, e.tid, "big", nil, make([]byte, MaxItemSize+1), nil)
	wantKind(t, "Encrypt of MaxItemSize+1 bytes", err, errkind.TooLarge)
	_, err = e.svc.Decrypt(e.ctx, e.alice, e.tid, "big", nil, make([]byte, MaxCiphertextSize+1), nil)
	wantKind(t, "Decrypt of MaxCiphertextSize+1 bytes", err, errkind.TooLarge)
	big := make([]byte, MaxAADSize+1)
	_, err = e.svc.Encrypt(e.ctx, e.alice, e.tid, "big", nil, []byte("x"), big)
	wantKind(t, "Encrypt with MaxAADSize+1 bytes of aad", err, errkind.TooLarge)
	ct := e.encrypt(e.alice, "big", []byte("x"), big[:MaxAADSize])
	_, err = e.svc.Decrypt(e.ctx, e.alice, e.tid, "big", nil, ct, big)
	wantKind(t, "Decrypt with MaxAADSize+1 bytes of aad", err, errkind.TooLarge)
	if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "big", nil, ct, big[:MaxAADSize]); err != nil {
		t.Errorf("Decrypt with MaxAADSize bytes of aad: %v", err)
	}
}

func TestDataKeys(t *testing.T) {
	e := newEnv(t)
	e.scope("files", e.alice.ID, e.bob.ID)
	e.scope("other", e.alice.ID)
	key, sealed, err := e.svc.GenerateDataKey(e.ctx, e.alice, e.tid, "files")
	if err != nil {
		t.Fatalf("GenerateDataKey: %v", err)
	}
	defer key.Wipe()
	if key.Len() != 32 || bytes.Contains(sealed, key.Reveal()) {
		t.Fatalf("GenerateDataKey: %d-byte key, sealed form holds it: %v", key.Len(), bytes.Contains(sealed, key.Reveal()))
	}
	got, err := e.svc.DecryptDataKey(e.ctx, e.bob, e.tid, "files", sealed)
	if err != nil || !got.Equal(key) {
		t.Fatalf("DecryptDataKey by another principal = %v, %v; want the same key", got, err)
	}
	got.Wipe()
	key2, _, err := e.svc.GenerateDataKey(e.ctx, e.alice, e.tid, "files")
	if err != nil || key2.Equal(key) {
		t.Errorf("a second data key equals the first (%v)", err)
	}
	key2.Wipe()

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-3] ^= 1
	tests := []struct {
		name   string
		c      func() (secret.Bytes, error)
		kind   errkind.Kind
		reason string
	}{
		{"tampered", func() (secret.Bytes, error) { return e.svc.DecryptDataKey(e.ctx, e.alice, e.tid, "files", tampered) }, errkind.Invalid, "DecryptionFailed"},
		{"other scope", func() (secret.Bytes, error) { return e.svc.DecryptDataKey(e.ctx, e.alice, e.tid, "other", sealed) }, errkind.Invalid, "WrongScope"},
		{"not a sealed key", func() (secret.Bytes, error) {
			return e.svc.DecryptDataKey(e.ctx, e.alice, e.tid, "files", []byte("junk"))
		}, errkind.Invalid, "MalformedCiphertext"},
		{"not a principal", func() (secret.Bytes, error) { return e.svc.DecryptDataKey(e.ctx, e.admin, e.tid, "files", sealed) }, errkind.PermissionDenied, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.c()
			if !k.IsZero() {
				t.Error("a key came back with the error")
			}
			wantKind(t, "DecryptDataKey", err, tc.kind)
			if ek, _ := errkind.As(err); tc.reason != "" && (ek == nil || ek.Code != tc.reason) {
				t.Errorf("DecryptDataKey err = %v, want code %s", err, tc.reason)
			}
		})
	}
	_, _, err = e.svc.GenerateDataKey(e.ctx, e.admin, e.tid, "files")
	wantKind(t, "GenerateDataKey by a non-principal", err, errkind.PermissionDenied)
}

// TestHotPathReadsNothing checks that a warm scope costs no store read and
// no unwrap, however many items go through it.
func TestHotPathReadsNothing(t *testing.T) {
	e := newEnv(t)
	e.scope("hot", e.alice.ID)
	ct := e.encrypt(e.alice, "hot", []byte("warm up"), nil) // loads the scope
	ops, unwraps := e.store.ops(), e.dep.unwraps.Load()
	for range 100 {
		c := e.encrypt(e.alice, "hot", []byte("item"), nil)
		if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "hot", nil, c, nil); err != nil {
			t.Fatal(err)
		}
		k, sealed, err := e.svc.GenerateDataKey(e.ctx, e.alice, e.tid, "hot")
		if err != nil {
			t.Fatal(err)
		}
		k.Wipe()
		if k, err = e.svc.DecryptDataKey(e.ctx, e.alice, e.tid, "hot", sealed); err != nil {
			t.Fatal(err)
		}
		k.Wipe()
	}
	if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "hot", nil, ct, nil); err != nil {
		t.Fatal(err)
	}
	if d := e.store.ops() - ops; d != 0 {
		t.Errorf("400 warm operations made %d store transactions, want 0", d)
	}
	if d := e.dep.unwraps.Load() - unwraps; d != 0 {
		t.Errorf("400 warm operations made %d scope key unwraps, want 0", d)
	}
}

// TestColdLoadCoalesced checks that concurrent requests for a cold scope
// cost one store read and one unwrap between them.
func TestColdLoadCoalesced(t *testing.T) {
	e := newEnv(t)
	e.scope("cold", e.alice.ID)
	gate := make(chan struct{})
	e.dep.mu.Lock()
	e.dep.gate = gate
	e.dep.mu.Unlock()
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.svc.Encrypt(e.ctx, e.alice, e.tid, "cold", nil, []byte("x"), nil)
		})
	}
	// Release the one unwrap once every request waits for it.
	k := cacheKey{e.tid, "cold"}
	for deadline := time.Now().Add(10 * time.Second); ; {
		e.svc.cache.mu.Lock()
		cl := e.svc.cache.flight[k]
		waiting := cl != nil && cl.waiters == n
		e.svc.cache.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the requests never all waited for one load")
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("request %d: %v", i, err)
		}
	}
	if u := e.dep.unwraps.Load(); u != 1 {
		t.Errorf("%d concurrent cold requests made %d unwraps, want 1", n, u)
	}
}

// TestCacheLifetimeAndRevocation checks the documented bound: a revoked
// policy still serves a cached scope until KeyCacheLifetime has passed,
// and nothing after.
func TestCacheLifetimeAndRevocation(t *testing.T) {
	e := newEnv(t)
	e.scope("rev", e.alice.ID)
	ct := e.encrypt(e.alice, "rev", []byte("data"), nil)
	u := e.dep.unwraps.Load()

	e.dep.revoke(defaultRef(e.tid).PolicyID)
	e.clock.Advance(cacheLife - time.Second)
	if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "rev", nil, ct, nil); err != nil {
		t.Errorf("Decrypt within the cache lifetime after revocation: %v, want the cached key to serve", err)
	}
	if e.dep.unwraps.Load() != u {
		t.Error("a cached scope was unwrapped again within its lifetime")
	}
	e.clock.Advance(2 * time.Second)
	_, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "rev", nil, ct, nil)
	wantKind(t, "Decrypt after the cache lifetime", err, errkind.PermissionDenied)
	if e.dep.unwraps.Load() != u+1 {
		t.Errorf("unwraps = %d, want one more after expiry", e.dep.unwraps.Load()-u)
	}
	// A failure is not cached: once the customer restores access, the next
	// request works.
	e.dep.mu.Lock()
	clear(e.dep.revoked)
	e.dep.mu.Unlock()
	if _, err := e.svc.Decrypt(e.ctx, e.alice, e.tid, "rev", nil, ct, nil); err != nil {
		t.Errorf("Decrypt after access was restored: %v", err)
	}
}

func TestCacheDisabled(t *testing.T) {
	e := newEnv(t)
	e.svc = New(Options{Store: e.store, Audit: e.audit, Policies: e.dep, Directory: e.dir, KeyCacheLifetime: -1, Now: e.clock.Now})
	e.scope("nocache", e.alice.ID)
	for range 3 {
		e.encrypt(e.alice, "nocache", []byte("x"), nil)
	}
	if u := e.dep.unwraps.Load(); u != 3 {
		t.Errorf("3 requests without a cache made %d unwraps, want 3", u)
	}
}

// TestEvictionWipesAfterUse checks that an evicted key is wiped only when
// the last request using it is done.
func TestEvictionWipesAfterUse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newCache(time.Minute, 2, func() time.Time { return now })
	load := func(name string) func(context.Context) (*entry, error) {
		return func(context.Context) (*entry, error) {
			return &entry{items: testItemKDF(t, name), scope: Scope{Name: name}}, nil
		}
	}
	ctx := context.Background()
	a, err := c.get(ctx, cacheKey{"t", "a"}, load("a"))
	if err != nil {
		t.Fatal(err)
	}
	raw := a.items.inner.Reveal()
	c.invalidate(cacheKey{"t", "a"})
	if a.items.inner.IsZero() || !slices.ContainsFunc(raw, func(b byte) bool { return b != 0 }) {
		t.Fatal("the key was wiped while a request still held it")
	}
	a.release()
	if !a.items.inner.IsZero() || !a.items.outer.IsZero() || slices.ContainsFunc(raw, func(b byte) bool { return b != 0 }) {
		t.Error("the key was not wiped after the last reference was released")
	}
	if a.acquire() {
		t.Error("a released entry could be acquired again")
	}

	// The cache holds at most max entries; the one it drops is wiped.
	var got []*entry
	for _, n := range []string{"b", "c", "d"} {
		e, err := c.get(ctx, cacheKey{"t", n}, load(n))
		if err != nil {
			t.Fatal(err)
		}
		e.release()
		got = append(got, e)
	}
	if len(c.m) != 2 {
		t.Errorf("the cache holds %d entries, want at most 2", len(c.m))
	}
	wiped := 0
	for _, e := range got {
		if e.items.inner.IsZero() {
			wiped++
		}
	}
	if wiped != 1 {
		t.Errorf("%d evicted keys wiped, want 1", wiped)
	}
	// An expired entry is loaded again.
	now = now.Add(2 * time.Minute)
	calls := 0
	e, err := c.get(ctx, cacheKey{"t", "d"}, func(ctx context.Context) (*entry, error) { calls++; return load("d")(ctx) })
	if err != nil || calls != 1 {
		t.Errorf("get after expiry: %d loads, %v", calls, err)
	}
	e.release()
}

// TestWaiterGivesUp checks that a request whose context ends while a load
// is in flight returns, and that the load still serves the others.
func TestWaiterGivesUp(t *testing.T) {
	c := newCache(time.Minute, 10, time.Now)
	release := make(chan struct{})
	loaded := &entry{items: testItemKDF(t, "k")}
	load := func(context.Context) (*entry, error) { <-release; return loaded, nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := c.get(ctx, cacheKey{"t", "s"}, load)
		done <- err
	}()
	for {
		c.mu.Lock()
		cl := c.flight[cacheKey{"t", "s"}]
		ok := cl != nil && cl.waiters == 1
		c.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("get with a canceled context = %v, want context.Canceled", err)
	}
	close(release)
	e, err := c.get(context.Background(), cacheKey{"t", "s"}, load)
	if err != nil || e != loaded {
		t.Fatalf("get after the load finished = %v, %v", e, err)
	}
	if n := e.refs.Load(); n != 2 {
		t.Errorf("refs = %d, want 2 (the cache and this request; none for the one that gave up)", n)
	}
	e.release()
}

// testItemKDF is the item key derivation of a scope key made from seed.
func testItemKDF(t *testing.T, seed string) itemKDF {
	t.Helper()
	k := sha256.Sum256([]byte(seed))
	d, err := newItemKDF(secret.Copy(k[:]))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestItemKDFIsHKDF checks the precomputed derivation against
// crypto/hkdf's: items written before it existed must still open.
func TestItemKDFIsHKDF(t *testing.T) {
	for _, tc := range []struct {
		name, tid string
		headerLen int
	}{
		{"short header", "00000000-0000-0000-0000-000000000001", 1},
		{"item header", "11111111-2222-3333-4444-555555555555", len(itemMagic) + 1 + 8 + 4 + saltLen},
		{"longest scope name", "66666666-7777-8888-9999-aaaaaaaaaaaa", len(itemMagic) + 1 + 63 + 4 + saltLen},
		{"info across blocks", strings.Repeat("t", 100), 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := make([]byte, 32)
			header := make([]byte, tc.headerLen)
			_, _ = rand.Read(key)
			_, _ = rand.Read(header)
			d, err := newItemKDF(secret.Copy(key))
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.aead(tc.tid, header)
			if err != nil {
				t.Fatal(err)
			}
			want, err := hkdf.Expand(sha256.New, key, itemKeyInfo+tc.tid+"\x00"+string(header), 32)
			if err != nil {
				t.Fatal(err)
			}
			block, err := aes.NewCipher(want)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := cipher.NewGCMWithRandomNonce(block)
			if err != nil {
				t.Fatal(err)
			}
			// Each opens what the other sealed only if the keys are equal.
			if _, err := ref.Open(nil, nil, got.Seal(nil, nil, []byte("item"), nil), nil); err != nil {
				t.Error("an item sealed with the precomputed derivation does not open with HKDF's key")
			}
			if _, err := got.Open(nil, nil, ref.Seal(nil, nil, []byte("item"), nil), nil); err != nil {
				t.Error("an item sealed with HKDF's key does not open with the precomputed derivation")
			}
		})
	}
	if _, err := newItemKDF(secret.Copy(make([]byte, 16))); err == nil {
		t.Error("a 16-byte scope key was accepted")
	}
}
