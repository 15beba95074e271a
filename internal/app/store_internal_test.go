package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// TestDigestDetectsDifferences: the migration's verification must tell
// apart stores that differ in any one key, version or value byte, and
// must not depend on how the records were written.
func TestDigestDetectsDifferences(t *testing.T) {
	base := []storage.Entry{
		{Key: "a/1", Value: []byte("one"), Version: 1},
		{Key: "a/2", Value: []byte("two"), Version: 3},
		{Key: "b/é", Value: []byte{0, 1, 2}, Version: 1},
	}
	variant := func(change func([]storage.Entry) []storage.Entry) []storage.Entry {
		es := make([]storage.Entry, len(base))
		for i, e := range base {
			es[i] = storage.Entry{Key: e.Key, Value: append([]byte(nil), e.Value...), Version: e.Version}
		}
		return change(es)
	}
	tests := []struct {
		name    string
		entries []storage.Entry
		same    bool
	}{
		{"identical", variant(func(es []storage.Entry) []storage.Entry { return es }), true},
		{"one value byte", variant(func(es []storage.Entry) []storage.Entry { es[2].Value[2] = 9; return es }), false},
		{"one version", variant(func(es []storage.Entry) []storage.Entry { es[1].Version = 4; return es }), false},
		{"one key missing", variant(func(es []storage.Entry) []storage.Entry { return es[:2] }), false},
		{"one key more", variant(func(es []storage.Entry) []storage.Entry {
			return append(es, storage.Entry{Key: "c", Value: nil, Version: 1})
		}), false},
		{"value moved across keys", variant(func(es []storage.Entry) []storage.Entry {
			es[0].Key, es[0].Value = "a/", []byte("1one") // same bytes, other split
			return es
		}), false},
	}
	want := digestOf(t, base)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := digestOf(t, tc.entries)
			if (got == want) != tc.same {
				t.Errorf("digest = %v, base digest = %v; want same = %v", got, want, tc.same)
			}
			err := verify(want, got)
			if tc.same != (err == nil) {
				t.Errorf("verify() err = %v, want an error = %v", err, !tc.same)
			}
			if err != nil && (!errkind.Is(err, errkind.Internal) || !strings.Contains(err.Error(), "verification failed") || !strings.Contains(err.Error(), "--force")) {
				t.Errorf("verify() err = %v, want it to say verification failed and what to do", err)
			}
		})
	}
}

// digestOf writes entries to a new bolt store, reaching each version by
// successive Puts, and sums it.
func digestOf(t *testing.T, entries []storage.Entry) Digest {
	t.Helper()
	b, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = b.Update(t.Context(), func(tx storage.Tx) error {
		for _, e := range entries {
			for range e.Version {
				if _, err := tx.Put(e.Key, e.Value, storage.AnyVersion); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := digest(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       string
		wantErr    string
	}{
		{"one line", "s3cret\n", "s3cret", ""},
		{"no newline", "s3cret", "s3cret", ""},
		{"CRLF", "s3cret\r\nignored\r\n", "s3cret", ""},
		{"spaces kept", " pass word \n", " pass word ", ""},
		{"empty", "\n", "", "is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := readPasswordFile(path)
			if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("readPasswordFile() = %q, %v; want %q, an error mentioning %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
	if _, err := readPasswordFile(filepath.Join(dir, "missing")); !errkind.Is(err, errkind.FailedPrecondition) {
		t.Errorf("readPasswordFile(missing) err = %v, want FailedPrecondition", err)
	}
	if got, err := readPasswordFile(""); got != "" || err != nil {
		t.Errorf(`readPasswordFile("") = %q, %v; want "", nil`, got, err)
	}
}
