package barrier_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/secret"
)

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "root.key")
	s1, err := barrier.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyFile(new) err = %v", err)
	}
	defer s1.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 32 {
		t.Errorf("key file mode %v size %d, want -rw------- and 32 bytes", fi.Mode().Perm(), fi.Size())
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".root-key-*")); len(m) != 0 {
		t.Errorf("temporary files left behind: %v", m)
	}

	s2, err := barrier.LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateKeyFile(existing) err = %v", err)
	}
	defer s2.Close()
	plain := []byte("keyring plaintext")
	sealed, err := s1.Seal(t.Context(), plain)
	if err != nil {
		t.Fatalf("Seal err = %v", err)
	}
	if bytes.Contains(sealed, plain) {
		t.Error("Seal output contains the plaintext")
	}
	got, err := s2.Unseal(t.Context(), sealed)
	if err != nil || !bytes.Equal(got, plain) {
		t.Errorf("Unseal with the reloaded key = %q, %v, want %q, nil", got, err, plain)
	}
}

func TestKeyFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
	}{
		{"group and world readable", make([]byte, 32), 0o644, "chmod 600"},
		{"group readable", make([]byte, 32), 0o640, "chmod 600"},
		{"short", make([]byte, 31), 0o600, "want exactly 32"},
		{"long", make([]byte, 33), 0o600, "want exactly 32"},
		{"empty", nil, 0o600, "want exactly 32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "root.key")
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			s, err := barrier.LoadOrCreateKeyFile(path)
			if err == nil {
				s.Close()
				t.Fatalf("LoadOrCreateKeyFile(%s) succeeded, want an error", tc.name)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("LoadOrCreateKeyFile err = %q, want it to name the file and say %q", err, tc.want)
			}
			if k := errkind.KindOf(err); k != errkind.FailedPrecondition {
				t.Errorf("KindOf(err) = %v, want %v", k, errkind.FailedPrecondition)
			}
			// The file is the operator's to fix: it must be left untouched.
			if got, _ := os.ReadFile(path); !bytes.Equal(got, tc.content) {
				t.Errorf("key file changed to %d bytes", len(got))
			}
		})
	}
}

func TestFileSealerRejects(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	s1, err := barrier.NewFileSealer(secret.Copy(k1))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := barrier.NewFileSealer(secret.Copy(k2))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s1.Seal(t.Context(), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	tests := []struct {
		name string
		s    *barrier.FileSealer
		in   []byte
	}{
		{"wrong key", s2, sealed},
		{"tampered", s1, flipped},
		{"unknown version", s1, append([]byte{9}, sealed[1:]...)},
		{"short", s1, sealed[:10]},
		{"empty", s1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.s.Unseal(t.Context(), tc.in); err == nil {
				t.Errorf("Unseal = %q, nil, want an error", got)
			}
		})
	}
	if _, err := barrier.NewFileSealer(secret.Copy(make([]byte, 16))); err == nil {
		t.Error("NewFileSealer(16 bytes) err = nil, want an error")
	}
	_ = s1.Close()
	_ = s1.Close()
	if _, err := s1.Seal(t.Context(), []byte("x")); !errkind.Is(err, errkind.Unavailable) {
		t.Errorf("Seal after Close err = %v, want an Unavailable error", err)
	}
}
