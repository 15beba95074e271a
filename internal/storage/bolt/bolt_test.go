package bolt_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/storage/storagetest"
)

func open(t *testing.T, path string) *bolt.Backend {
	t.Helper()
	b, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("Open(%q) err = %v", path, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return open(t, filepath.Join(t.TempDir(), "data.db"))
	})
}

func TestReopenPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	b := open(t, path)
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		for _, k := range []string{"p/a", "p/b"} {
			if _, err := tx.Put(k, []byte("v-"+k), storage.AnyVersion); err != nil {
				return err
			}
		}
		_, err := tx.Put("p/a", []byte("v2"), 1)
		return err
	})
	if err != nil {
		t.Fatalf("Update err = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	b = open(t, path)
	var got []storage.Entry
	err = b.View(t.Context(), func(tx storage.Tx) error {
		got, err = tx.List("p/", "", 0)
		return err
	})
	if err != nil {
		t.Fatalf("List after reopen err = %v", err)
	}
	want := []storage.Entry{
		{Key: "p/a", Value: []byte("v2"), Version: 2},
		{Key: "p/b", Value: []byte("v-p/b"), Version: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List after reopen mismatch (-want +got):\n%s", diff)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	open(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("data file mode = %v, want -rw-------", got)
	}
}

func TestSecondOpenFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.db")
	open(t, path)

	// bbolt takes a flock on its own file descriptor, so a second Open in the
	// same process contends exactly like a second process would.
	start := time.Now()
	b2, err := bolt.Open(path, bolt.Options{LockTimeout: 100 * time.Millisecond})
	if err == nil {
		_ = b2.Close()
		t.Fatal("second Open on a locked file succeeded, want an error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("second Open took %v, want it to give up after its lock timeout", d)
	}
	if !strings.Contains(err.Error(), "locked by another customerkey process") {
		t.Errorf("second Open err = %q, want it to say the file is locked by another customerkey process", err)
	}
	if got := errkind.KindOf(err); got != errkind.Unavailable {
		t.Errorf("KindOf(second Open err) = %v, want %v", got, errkind.Unavailable)
	}
}

func TestTxAfterReturn(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "data.db"))
	var leaked storage.Tx
	if err := b.Update(t.Context(), func(tx storage.Tx) error { leaked = tx; return nil }); err != nil {
		t.Fatalf("Update err = %v", err)
	}
	if _, err := leaked.Get("k"); err == nil {
		t.Error("Get on a finished tx err = nil, want an error")
	}
	if _, err := leaked.Put("k", nil, storage.AnyVersion); err == nil {
		t.Error("Put on a finished tx err = nil, want an error")
	}
	if _, err := leaked.List("", "", 0); err == nil {
		t.Error("List on a finished tx err = nil, want an error")
	}
}

func TestBadVersionCondition(t *testing.T) {
	b := open(t, filepath.Join(t.TempDir(), "data.db"))
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		_, err := tx.Put("k", nil, -2)
		return err
	})
	if !errkind.Is(err, errkind.Invalid) || errors.Is(err, storage.ErrConflict) {
		t.Errorf("Put(ifVersion=-2) err = %v, want an Invalid error", err)
	}
}
