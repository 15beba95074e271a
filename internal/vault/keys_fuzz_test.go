package vault_test

import (
	"testing"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/vault"
)

// FuzzRestoreKey feeds arbitrary blobs to RestoreKey: it must never panic
// and must refuse anything but a blob it made with Invalid (or Conflict
// once the name exists).
func FuzzRestoreKey(f *testing.F) {
	e := newKeyEnv(f)
	e.createKey(f, "seed", vault.KeySpec{Type: "EC"})
	blob, err := e.svc.BackupKey(ctx, kv, "seed")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob)
	f.Add(blob[:len(blob)-1])
	f.Add([]byte("CKKB\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := e.svc.RestoreKey(ctx, caller, kv, b)
		if err != nil && !errkind.Is(err, errkind.Invalid) && !errkind.Is(err, errkind.Conflict) {
			t.Errorf("RestoreKey err = %v (kind %v), want Invalid or Conflict", err, errkind.KindOf(err))
		}
	})
}
