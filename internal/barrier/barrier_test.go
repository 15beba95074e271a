package barrier_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/storage/storagetest"
)

// env is a barrier on a bolt file, with the inner backend kept so that
// tests can see and change what actually reaches storage.
type env struct {
	dbPath, keyPath string
	inner           *bolt.Backend
	sealer          *barrier.FileSealer
	b               *barrier.Barrier
}

func openEnv(t *testing.T, dir string) *env {
	t.Helper()
	e := &env{dbPath: filepath.Join(dir, "data.db"), keyPath: filepath.Join(dir, "root.key")}
	var err error
	if e.inner, err = bolt.Open(e.dbPath, bolt.Options{}); err != nil {
		t.Fatalf("bolt.Open err = %v", err)
	}
	t.Cleanup(func() { _ = e.inner.Close() })
	if e.sealer, err = barrier.LoadOrCreateKeyFile(e.keyPath); err != nil {
		t.Fatalf("LoadOrCreateKeyFile err = %v", err)
	}
	t.Cleanup(func() { _ = e.sealer.Close() })
	if e.b, err = barrier.Open(t.Context(), e.inner, e.sealer, nil); err != nil {
		t.Fatalf("barrier.Open err = %v", err)
	}
	t.Cleanup(func() { _ = e.b.Close() })
	return e
}

func put(t *testing.T, b storage.Backend, key string, value []byte) {
	t.Helper()
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		_, err := tx.Put(key, value, storage.AnyVersion)
		return err
	})
	if err != nil {
		t.Fatalf("Put(%q) err = %v", key, err)
	}
}

func get(t *testing.T, b storage.Backend, key string) []byte {
	t.Helper()
	e, err := storage.Get(t.Context(), b, key)
	if err != nil {
		t.Fatalf("Get(%q) err = %v", key, err)
	}
	return e.Value
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return openEnv(t, t.TempDir()).b
	})
}

func TestNoPlaintextOrKeysOnDisk(t *testing.T) {
	e := openEnv(t, t.TempDir())
	var canaries [][]byte
	write := func(n int) {
		for i := range n {
			c := []byte(fmt.Sprintf("PLAINTEXT-CANARY-%03d-%s", len(canaries), strings.Repeat("x", i*50)))
			canaries = append(canaries, c)
			put(t, e.b, fmt.Sprintf("canary/%03d", len(canaries)), c)
		}
	}
	write(20)
	if _, err := e.b.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate err = %v", err)
	}
	write(20)
	keys := barrier.DataKeys(e.b)
	if len(keys) != 2 {
		t.Fatalf("DataKeys = %d keys, want 2", len(keys))
	}
	rootKey, err := os.ReadFile(e.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	raw, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range canaries {
		if bytes.Contains(raw, c[:20]) {
			t.Errorf("data file contains plaintext %q", c[:20])
		}
	}
	if !bytes.Contains(raw, []byte("canary/001")) {
		t.Error("data file lacks the key \"canary/001\"; the scan is not looking at the right file")
	}
	for i, k := range append(keys, rootKey) {
		// Any 16-byte window is far beyond chance in a small file.
		for _, w := range [][]byte{k[:16], k[16:]} {
			if bytes.Contains(raw, w) {
				t.Errorf("data file contains bytes of key %d", i)
			}
		}
	}
}

func TestAADBindsValueToKey(t *testing.T) {
	e := openEnv(t, t.TempDir())
	put(t, e.b, "tenant/a/secret", []byte("value of a"))
	put(t, e.b, "tenant/b/secret", []byte("value of b"))

	var moved []byte
	err := e.inner.Update(t.Context(), func(tx storage.Tx) error {
		a, err := tx.Get("tenant/a/secret")
		if err != nil {
			return err
		}
		moved = a.Value
		_, err = tx.Put("tenant/b/secret", a.Value, storage.AnyVersion)
		return err
	})
	if err != nil {
		t.Fatalf("inner copy err = %v", err)
	}
	_, err = storage.Get(t.Context(), e.b, "tenant/b/secret")
	checkDecryptError(t, err, "tenant/b/secret", moved)
	if got := get(t, e.b, "tenant/a/secret"); string(got) != "value of a" {
		t.Errorf("Get(%q) = %q, want %q", "tenant/a/secret", got, "value of a")
	}
}

// checkDecryptError wants the opaque Internal error that names the key and
// shows nothing of the stored value.
func checkDecryptError(t *testing.T, err error, key string, raw []byte) {
	t.Helper()
	if !errors.Is(err, barrier.ErrDecrypt) {
		t.Fatalf("Get(%q) err = %v, want ErrDecrypt", key, err)
	}
	if k := errkind.KindOf(err); k != errkind.Internal {
		t.Errorf("KindOf(Get(%q) err) = %v, want %v", key, k, errkind.Internal)
	}
	msg := err.Error()
	if want := fmt.Sprintf("barrier: cannot decrypt value at %q", key); !strings.Contains(msg, want) {
		t.Errorf("Get(%q) err = %q, want it to contain %q", key, msg, want)
	}
	if len(raw) > headerLen && (strings.Contains(msg, hex.EncodeToString(raw[headerLen:headerLen+4])) ||
		strings.Contains(msg, string(raw[headerLen:headerLen+4]))) {
		t.Errorf("Get(%q) err = %q shows bytes of the stored value", key, msg)
	}
}

const headerLen = 1 + 4 + 12

func TestTamperedValue(t *testing.T) {
	e := openEnv(t, t.TempDir())
	const key = "t/k"
	put(t, e.b, key, []byte("tamper with me"))
	orig, err := storage.Get(t.Context(), e.inner, key)
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(v []byte) []byte) []byte { return f(bytes.Clone(orig.Value)) }
	tests := []struct {
		name string
		raw  []byte
	}{
		{"format version", mod(func(v []byte) []byte { v[0] = 0x02; return v })},
		{"term zero", mod(func(v []byte) []byte { binary.BigEndian.PutUint32(v[1:], 0); return v })},
		{"unknown term", mod(func(v []byte) []byte { binary.BigEndian.PutUint32(v[1:], 9); return v })},
		{"nonce", mod(func(v []byte) []byte { v[5] ^= 1; return v })},
		{"ciphertext", mod(func(v []byte) []byte { v[headerLen] ^= 1; return v })},
		{"tag", mod(func(v []byte) []byte { v[len(v)-1] ^= 0x80; return v })},
		{"truncated tag", mod(func(v []byte) []byte { return v[:len(v)-1] })},
		{"appended byte", mod(func(v []byte) []byte { return append(v, 0) })},
		{"header only", mod(func(v []byte) []byte { return v[:headerLen] })},
		{"empty", []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			put(t, e.inner, key, tc.raw)
			_, err := storage.Get(t.Context(), e.b, key)
			checkDecryptError(t, err, key, tc.raw)
		})
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	put(t, e.b, "r/k", []byte("survives"))
	if err := e.b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	t.Run("same root key", func(t *testing.T) {
		e := openEnv(t, dir)
		if got := get(t, e.b, "r/k"); string(got) != "survives" {
			t.Errorf("after reopen Get(%q) = %q, want %q", "r/k", got, "survives")
		}
		if err := e.b.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	})

	t.Run("different root key", func(t *testing.T) {
		inner, err := bolt.Open(filepath.Join(dir, "data.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer inner.Close()
		other, err := barrier.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "other.key"))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		b, err := barrier.Open(t.Context(), inner, other, nil)
		if err == nil {
			_ = b.Close()
			t.Fatal("Open with another root key succeeded, want an error")
		}
		if !errors.Is(err, barrier.ErrUnseal) {
			t.Errorf("Open with another root key err = %v, want ErrUnseal", err)
		}
		if !strings.Contains(err.Error(), "wrong root key or corrupted keyring") {
			t.Errorf("Open with another root key err = %q, want it to say wrong root key or corrupted keyring", err)
		}
		rootKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))
		if msg := err.Error(); strings.Contains(msg, hex.EncodeToString(rootKey[:4])) || strings.Contains(msg, string(rootKey[:4])) {
			t.Errorf("Open err = %q shows root key bytes", msg)
		}
	})
}

func TestRotate(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	put(t, e.b, "rot/old", []byte("before"))
	term, err := e.b.Rotate(t.Context())
	if err != nil || term != 2 {
		t.Fatalf("Rotate() = %d, %v, want 2, nil", term, err)
	}
	put(t, e.b, "rot/new", []byte("after"))

	termOf := func(key string) uint32 {
		t.Helper()
		en, err := storage.Get(t.Context(), e.inner, key)
		if err != nil {
			t.Fatalf("inner Get(%q) err = %v", key, err)
		}
		return binary.BigEndian.Uint32(en.Value[1:])
	}
	if got := termOf("rot/old"); got != 1 {
		t.Errorf("term of %q = %d, want 1", "rot/old", got)
	}
	if got := termOf("rot/new"); got != 2 {
		t.Errorf("term of %q = %d, want 2", "rot/new", got)
	}
	check := func(b storage.Backend) {
		t.Helper()
		var got []storage.Entry
		err := b.View(t.Context(), func(tx storage.Tx) error {
			var err error
			got, err = tx.List("rot/", "", 0)
			return err
		})
		if err != nil {
			t.Fatalf("List err = %v", err)
		}
		want := []storage.Entry{
			{Key: "rot/new", Value: []byte("after"), Version: 1},
			{Key: "rot/old", Value: []byte("before"), Version: 1},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("List(%q) mismatch (-want +got):\n%s", "rot/", diff)
		}
	}
	check(e.b)

	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	e = openEnv(t, dir)
	check(e.b)
	put(t, e.b, "rot/again", []byte("x"))
	if got := termOf("rot/again"); got != 2 {
		t.Errorf("after reopen, term of %q = %d, want 2", "rot/again", got)
	}
}

// TestRotationSeenByAnotherNode runs two barriers on one inner backend, as
// two nodes on one PostgreSQL would.
func TestRotationSeenByAnotherNode(t *testing.T) {
	e := openEnv(t, t.TempDir())
	other, err := barrier.Open(t.Context(), e.inner, e.sealer, nil)
	if err != nil {
		t.Fatalf("second barrier.Open err = %v", err)
	}
	if _, err := e.b.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate err = %v", err)
	}
	put(t, e.b, "n/k", []byte("from node 1"))
	if got := get(t, other, "n/k"); string(got) != "from node 1" {
		t.Errorf("other node Get(%q) = %q, want %q", "n/k", got, "from node 1")
	}
	put(t, other, "n/k2", []byte("from node 2"))
	en, err := storage.Get(t.Context(), e.inner, "n/k2")
	if err != nil {
		t.Fatal(err)
	}
	if term := binary.BigEndian.Uint32(en.Value[1:]); term != 2 {
		t.Errorf("after reloading, the other node wrote with term %d, want 2", term)
	}
	if _, err := other.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate on the other node err = %v", err)
	}
	if n := len(barrier.DataKeys(other)); n != 3 {
		t.Errorf("other node holds %d terms after rotating on top of node 1, want 3", n)
	}
}

func TestReservedKeys(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := e.b
	for _, key := range []string{"core/keyring", "core/other"} {
		if _, err := storage.Get(t.Context(), b, key); !errors.Is(err, barrier.ErrReservedKey) || !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) err = %v, want ErrReservedKey and ErrInvalidKey", key, err)
		}
		err := b.Update(t.Context(), func(tx storage.Tx) error {
			if _, err := tx.Put(key, []byte("x"), storage.AnyVersion); !errors.Is(err, barrier.ErrReservedKey) {
				t.Errorf("Put(%q) err = %v, want ErrReservedKey", key, err)
			}
			if err := tx.Delete(key, storage.AnyVersion); !errors.Is(err, barrier.ErrReservedKey) {
				t.Errorf("Delete(%q) err = %v, want ErrReservedKey", key, err)
			}
			if _, err := tx.List(key, "", 0); !errors.Is(err, barrier.ErrReservedKey) {
				t.Errorf("List(%q) err = %v, want ErrReservedKey", key, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}

	// The hidden entry sits between these; paging must step over it.
	want := []string{"c/1", "cor", "core", "core0", "cz"}
	for _, k := range want {
		put(t, b, k, []byte(k))
	}
	for _, limit := range []int{0, 1, 2, 3} {
		var got []string
		after := ""
		for range 10 {
			var page []storage.Entry
			err := b.View(t.Context(), func(tx storage.Tx) error {
				var err error
				page, err = tx.List("c", after, limit)
				return err
			})
			if err != nil {
				t.Fatalf("List(%q, %q, %d) err = %v", "c", after, limit, err)
			}
			if limit > 0 && len(page) > limit {
				t.Fatalf("List(%q, %q, %d) = %d entries", "c", after, limit, len(page))
			}
			for _, en := range page {
				got = append(got, en.Key)
			}
			if len(page) == 0 || limit <= 0 {
				break
			}
			if limit > 1 && len(page) < limit && len(got) < len(want) {
				t.Errorf("List(%q, %q, %d) returned a short page (%d) before the end", "c", after, limit, len(page))
			}
			after = page[len(page)-1].Key
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("paged List(%q) with limit %d mismatch (-want +got):\n%s", "c", limit, diff)
		}
	}
}

// downSealer stands in for an HSM that cannot be reached.
type downSealer struct{}

var errHSMDown = errkind.New(errkind.Unavailable, "hsm: connection refused")

func (downSealer) Seal(context.Context, []byte) ([]byte, error)   { return nil, errHSMDown }
func (downSealer) Unseal(context.Context, []byte) ([]byte, error) { return nil, errHSMDown }

func TestSealerUnavailable(t *testing.T) {
	dir := t.TempDir()
	e := openEnv(t, dir)
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	inner, err := bolt.Open(filepath.Join(dir, "data.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	_, err = barrier.Open(t.Context(), inner, downSealer{}, nil)
	if got := errkind.KindOf(err); got != errkind.Unavailable || errors.Is(err, barrier.ErrUnseal) {
		t.Errorf("Open with an unreachable sealer err = %v (kind %v), want an Unavailable error that is not ErrUnseal", err, got)
	}
}

func TestClosedBarrier(t *testing.T) {
	e := openEnv(t, t.TempDir())
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Rotate(t.Context()); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Rotate after Close err = %v, want ErrClosed", err)
	}
	if keys := barrier.DataKeys(e.b); keys != nil {
		t.Errorf("DataKeys after Close = %d keys, want none", len(keys))
	}
	// The inner backend belongs to the barrier and is closed with it.
	if _, err := storage.Get(t.Context(), e.inner, "x"); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("inner Get after barrier Close err = %v, want ErrClosed", err)
	}
}

func TestValueLimit(t *testing.T) {
	e := openEnv(t, t.TempDir())
	err := e.b.Update(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put("lim/max", make([]byte, barrier.MaxValueLen), storage.AnyVersion); err != nil {
			t.Errorf("Put of MaxValueLen bytes err = %v, want nil", err)
		}
		if _, err := tx.Put("lim/over", make([]byte, barrier.MaxValueLen+1), storage.AnyVersion); !errors.Is(err, storage.ErrTooLarge) {
			t.Errorf("Put of MaxValueLen+1 bytes err = %v, want ErrTooLarge", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
