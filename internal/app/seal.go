package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/hsm"
)

// MigrateSeal moves what seals the store's keyring to to: config.SealPKCS11
// (the HSM cfg names; the root key file barrier.key is then overwritten and
// removed) or config.SealFile (a new barrier.key; the HSM's seal key is
// left in the token). The keyring is re-sealed in one transaction and the
// store is opened with the new seal before anything is removed; the data
// keys stay the same, so nothing else is rewritten. Run it with the server
// stopped (on every node of a shared store), then start with seal: to. It
// writes what it did to out.
func MigrateSeal(ctx context.Context, cfg config.Config, to string, out io.Writer) (err error) {
	if to != config.SealPKCS11 && to != config.SealFile {
		return errkind.Errorf(errkind.Invalid, "seal migrate: --to must be %s or %s", config.SealPKCS11, config.SealFile)
	}
	if cfg.HSMModule == "" {
		return errkind.New(errkind.Invalid, "seal migrate: the HSM is needed on both sides of a migration: give "+
			"hsm-module, hsm-token and hsm-pin-file (or CUSTOMERKEY_HSM_PIN)")
	}
	raw, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	rawOpen := true
	defer func() {
		if rawOpen {
			err = errors.Join(err, raw.Close())
		}
	}()
	sealedBy, err := barrier.SealedBy(ctx, raw)
	switch {
	case err != nil:
		return err
	case sealedBy == "":
		return errkind.Errorf(errkind.FailedPrecondition, "seal migrate: the store has no keyring yet; start the "+
			"server once with seal: %s instead", to)
	case sealedBy == to:
		return errkind.Errorf(errkind.FailedPrecondition, "seal migrate: the keyring is already sealed by %s", describeSeal(to, cfg))
	}
	hc, err := hsmConfig(cfg)
	if err != nil {
		return err
	}
	h, err := hsm.Open(ctx, hc)
	if err != nil {
		return err
	}
	defer h.Close()
	keyPath := filepath.Join(cfg.DataDir, rootKeyFile)
	var from, next barrier.Sealer
	var file *barrier.FileSealer
	if to == config.SealPKCS11 {
		if file, err = loadRootKey(ctx, raw, keyPath); err != nil {
			return err
		}
		from, next = file, barrier.NewHSMSealer(h)
	} else {
		if _, err := os.Stat(keyPath); !errors.Is(err, fs.ErrNotExist) {
			return errkind.Errorf(errkind.FailedPrecondition, "seal migrate: %s exists although the keyring is sealed "+
				"by the HSM; it is left from before an earlier migration and cannot unseal this keyring: move it away first", keyPath)
		}
		if file, err = barrier.LoadOrCreateKeyFile(keyPath); err != nil {
			return err
		}
		from, next = barrier.NewHSMSealer(h), file
	}
	defer file.Close()
	if err := barrier.Reseal(ctx, raw, from, next); err != nil {
		if to == config.SealFile {
			_ = os.Remove(keyPath) // the new key file seals nothing
		}
		return err
	}
	fmt.Fprintf(out, "re-sealed the keyring with %s\n", describeSeal(to, cfg))
	b, err := barrier.Open(ctx, raw, next, nil)
	if err != nil {
		return fmt.Errorf("seal migrate: the store does not open with the new seal: %w", err)
	}
	rawOpen = false
	if err := b.Close(); err != nil {
		return err
	}
	fmt.Fprintf(out, "checked: the store opens with the new seal\n")
	if to == config.SealPKCS11 {
		if err := removeKeyFile(keyPath); err != nil {
			return fmt.Errorf("seal migrate: the keyring is sealed by the HSM now, but %s could not be removed; "+
				"remove it by hand: %w", keyPath, err)
		}
		fmt.Fprintf(out, "overwrote and removed %s\n", keyPath)
		if cfg.StoreIsPostgres() {
			fmt.Fprintf(out, "remove %s from the data directory of every other node too\n", rootKeyFile)
		}
	}
	fmt.Fprintf(out, "start the server with seal: %s from now on\n", to)
	return nil
}

func describeSeal(seal string, cfg config.Config) string {
	if seal == config.SealPKCS11 {
		return fmt.Sprintf("the HSM token %q", cfg.HSMToken)
	}
	return "the root key file " + filepath.Join(cfg.DataDir, rootKeyFile)
}

// removeKeyFile overwrites the root key file with zeros before removing
// it, so that the key is not left in the freed blocks of the file system
// where that helps (it does not on copy-on-write or flash storage: treat
// older copies and backups of the data directory as readable with it).
func removeKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Write(make([]byte, fi.Size()))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
