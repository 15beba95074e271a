package barrier_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

func TestSealOpenRoundTrip(t *testing.T) {
	e := openEnv(t, t.TempDir())
	tests := []struct {
		name           string
		aad, plaintext []byte
	}{
		{"empty", nil, nil},
		{"aad only", []byte("segment 1 offset 16"), nil},
		{"plaintext only", nil, []byte("audit record")},
		{"both", []byte{0, 1, 2}, bytes.Repeat([]byte("r"), 70_000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sealed, err := e.b.Seal(tc.aad, tc.plaintext)
			if err != nil {
				t.Fatalf("Seal err = %v", err)
			}
			if len(sealed) != len(tc.plaintext)+barrier.Overhead {
				t.Errorf("len(Seal) = %d, want %d (plaintext + Overhead)", len(sealed), len(tc.plaintext)+barrier.Overhead)
			}
			if len(tc.plaintext) > 0 && bytes.Contains(sealed, tc.plaintext) {
				t.Error("Seal output contains the plaintext")
			}
			got, err := e.b.Open(tc.aad, sealed)
			if err != nil {
				t.Fatalf("Open err = %v", err)
			}
			if !bytes.Equal(got, tc.plaintext) {
				t.Errorf("Open = %d bytes, want the %d sealed", len(got), len(tc.plaintext))
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	e := openEnv(t, t.TempDir())
	aad, plaintext := []byte("audit/journal"), []byte("SEALED-CANARY")
	sealed, err := e.b.Seal(aad, plaintext)
	if err != nil {
		t.Fatal(err)
	}
	// A stored value and a blob under the same key bytes must not be
	// interchangeable.
	const key = "audit/journal"
	put(t, e.b, key, plaintext)
	stored, err := storage.Get(t.Context(), e.inner, key)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte { v := bytes.Clone(sealed); v[i] ^= 1; return v }
	tests := []struct {
		name        string
		aad, sealed []byte
	}{
		{"other aad", []byte("audit/journaL"), sealed},
		{"no aad", nil, sealed},
		{"format version", aad, flip(0)},
		{"term", aad, flip(4)},
		{"ciphertext", aad, flip(headerLen)},
		{"tag", aad, flip(len(sealed) - 1)},
		{"truncated", aad, sealed[:len(sealed)-1]},
		{"empty", aad, nil},
		{"a stored value", []byte(key), stored.Value},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := e.b.Open(tc.aad, tc.sealed)
			if !errors.Is(err, barrier.ErrDecrypt) || errkind.KindOf(err) != errkind.Internal {
				t.Fatalf("Open = %q, %v; want an Internal error wrapping ErrDecrypt", got, err)
			}
			if strings.Contains(err.Error(), "CANARY") {
				t.Errorf("Open err = %q shows the plaintext", err)
			}
		})
	}

	// The blob stored as a value is refused by Get.
	err = e.inner.Update(t.Context(), func(tx storage.Tx) error {
		_, err := tx.Put(key, sealed, storage.AnyVersion)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.Get(t.Context(), e.b, key); !errors.Is(err, barrier.ErrDecrypt) {
		t.Errorf("Get of a blob stored as the value of %q err = %v, want ErrDecrypt", key, err)
	}
}

func TestSealAcrossRotationAndClose(t *testing.T) {
	e := openEnv(t, t.TempDir())
	aad := []byte("a")
	old, err := e.b.Seal(aad, []byte("before"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Rotate(t.Context()); err != nil {
		t.Fatalf("Rotate err = %v", err)
	}
	cur, err := e.b.Seal(aad, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	if old[4] != 1 || cur[4] != 2 {
		t.Errorf("terms of the blobs = %d, %d; want 1 before rotation and 2 after", old[4], cur[4])
	}
	for _, s := range [][]byte{old, cur} {
		if _, err := e.b.Open(aad, s); err != nil {
			t.Errorf("Open after rotation err = %v", err)
		}
	}
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.b.Seal(aad, []byte("x")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Seal after Close err = %v, want storage.ErrClosed", err)
	}
	if _, err := e.b.Open(aad, cur); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Open after Close err = %v, want storage.ErrClosed", err)
	}
}
