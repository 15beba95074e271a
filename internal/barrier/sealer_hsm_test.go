package barrier_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
	"github.com/customerkey/customerkey/internal/hsm/hsmtest"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func openHSM(t *testing.T, c hsm.Config) *hsm.HSM {
	t.Helper()
	h, err := hsm.Open(t.Context(), c)
	if err != nil {
		t.Fatalf("hsm.Open err = %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func openBolt(t *testing.T, path string) *bolt.Backend {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("bolt.Open err = %v", err)
	}
	return b
}

// TestHSMSealer: a store sealed by the HSM opens with the HSM only; a copy
// of the data directory opened with a key file, or with another token,
// reveals nothing.
func TestHSMSealer(t *testing.T) {
	c := hsmtest.NewToken(t)
	h := openHSM(t, c)
	dir := t.TempDir()
	db := filepath.Join(dir, "data.db")
	secretValue := []byte("a value only the HSM unlocks")

	inner := openBolt(t, db)
	b, err := barrier.Open(t.Context(), inner, barrier.NewHSMSealer(h), nil)
	if err != nil {
		t.Fatalf("barrier.Open(HSM sealer, new store) err = %v", err)
	}
	put(t, b, "k", secretValue)
	keys := barrier.DataKeys(b)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(keys, secretValue) {
		if bytes.Contains(raw, k) {
			t.Fatal("the data file holds a data key or the plaintext")
		}
	}
	r := openBolt(t, db)
	if got, err := barrier.SealedBy(t.Context(), r); err != nil || got != barrier.SealPKCS11 {
		t.Errorf("SealedBy = %q, %v, want %q", got, err, barrier.SealPKCS11)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("same HSM", func(t *testing.T) {
		b, err := barrier.Open(t.Context(), reopen(t, db), barrier.NewHSMSealer(h), nil)
		if err != nil {
			t.Fatalf("barrier.Open with the same HSM err = %v", err)
		}
		defer b.Close()
		if got := get(t, b, "k"); !bytes.Equal(got, secretValue) {
			t.Errorf("Get = %q, want %q", got, secretValue)
		}
	})
	t.Run("stolen with a key file", func(t *testing.T) {
		fs, err := barrier.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "barrier.key"))
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		inner := reopen(t, db)
		_, err = barrier.Open(t.Context(), inner, fs, nil)
		if !errkind.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "sealed by an HSM (seal: pkcs11)") {
			t.Errorf("barrier.Open with a key file err = %v, want FailedPrecondition naming seal: pkcs11", err)
		}
	})
	t.Run("stolen with another HSM", func(t *testing.T) {
		other := openHSM(t, hsmtest.NewToken(t))
		_, err := barrier.Open(t.Context(), reopen(t, db), barrier.NewHSMSealer(other), nil)
		if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "has no secret key object") {
			t.Errorf("barrier.Open with another token err = %v, want Unavailable: the seal key is missing", err)
		}
	})
}

// reopen opens the bolt file again, closed at the end of the test (a
// barrier that failed to open leaves it to its caller).
func reopen(t *testing.T, path string) *bolt.Backend {
	t.Helper()
	b := openBolt(t, path)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestResealFileToHSM moves a file-sealed store to the HSM and back; the
// values stay readable, and the old sealer stops working each time.
func TestResealFileToHSM(t *testing.T) {
	h := openHSM(t, hsmtest.NewToken(t))
	dir := t.TempDir()
	e := openEnv(t, dir)
	put(t, e.b, "k", []byte("v"))
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	hs := barrier.NewHSMSealer(h)

	inner := reopen(t, e.dbPath)
	if err := barrier.Reseal(t.Context(), inner, e.sealer, hs); err != nil {
		t.Fatalf("Reseal(file to HSM) err = %v", err)
	}
	if got, _ := barrier.SealedBy(t.Context(), inner); got != barrier.SealPKCS11 {
		t.Errorf("SealedBy after Reseal = %q, want %q", got, barrier.SealPKCS11)
	}
	if err := barrier.Reseal(t.Context(), inner, e.sealer, hs); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("Reseal from the key file again err = %v, want FailedPrecondition (sealed by the HSM now)", err)
	}
	if err := inner.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := barrier.Open(t.Context(), reopen(t, e.dbPath), hs, nil)
	if err != nil {
		t.Fatalf("barrier.Open with the HSM after Reseal err = %v", err)
	}
	if got := get(t, b, "k"); string(got) != "v" {
		t.Errorf("Get after Reseal = %q, want v", got)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	inner = reopen(t, e.dbPath)
	fresh, err := barrier.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "new.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := barrier.Reseal(t.Context(), inner, hs, fresh); err != nil {
		t.Fatalf("Reseal(HSM to a new key file) err = %v", err)
	}
	if got, _ := barrier.SealedBy(t.Context(), inner); got != barrier.SealFile {
		t.Errorf("SealedBy after moving back = %q, want %q", got, barrier.SealFile)
	}
}

func TestResealRefusals(t *testing.T) {
	e := openEnv(t, t.TempDir())
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	wrong, err := barrier.LoadOrCreateKeyFile(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	inner := reopen(t, e.dbPath)
	if err := barrier.Reseal(t.Context(), inner, wrong, e.sealer); !strings.Contains(errString(err), "cannot unseal") {
		t.Errorf("Reseal with the wrong key file err = %v, want the unseal error", err)
	}
	empty := reopen(t, filepath.Join(t.TempDir(), "empty.db"))
	if got, err := barrier.SealedBy(t.Context(), empty); got != "" || err != nil {
		t.Errorf("SealedBy(new store) = %q, %v, want \"\", nil", got, err)
	}
	if err := barrier.Reseal(t.Context(), empty, e.sealer, wrong); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("Reseal of a store without a keyring err = %v, want FailedPrecondition", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
