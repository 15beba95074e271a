package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/notify/pgnotify"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/storage/postgres"
)

// openStore opens the raw backend the configuration names: the embedded
// file in the data directory, or a PostgreSQL database that other nodes
// may share. The barrier goes on top of either.
func openStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Backend, error) {
	if !cfg.StoreIsPostgres() {
		b, err := bolt.Open(filepath.Join(cfg.DataDir, storeFile), bolt.Options{})
		if err != nil {
			return nil, err // not a typed nil, which Close would call
		}
		return b, nil
	}
	pass, err := readPasswordFile(cfg.StorePasswordFile)
	if err != nil {
		return nil, err
	}
	b, err := postgres.Open(ctx, postgres.Options{URL: cfg.Store, Password: pass, ConnectTimeout: cfg.StoreConnectTimeout, Log: log})
	if err != nil {
		return nil, err
	}
	log.Info("store: PostgreSQL", "target", b.String())
	return b, nil
}

// openCluster sets up what nodes sharing the store need of each other:
// with PostgreSQL, invalidations over LISTEN/NOTIFY and the advisory lock
// of the background jobs; with the embedded store, which one process
// holds, a bus with no one to tell and a lock that is always held.
func (s *Server) openCluster(ctx context.Context) error {
	pg, ok := s.raw.(*postgres.Backend)
	if !ok {
		s.bus, s.jobs = notify.NewHub().Node(), soleNode{}
		return nil
	}
	bus, err := pgnotify.New(ctx, pg.Pool(), s.log)
	if err != nil {
		return err
	}
	lock, err := newAdvisoryLock(ctx, pg.Pool(), s.log)
	if err != nil {
		return fmt.Errorf("preparing the background jobs lock: %w", err)
	}
	s.bus, s.listen, s.jobs = bus, bus.Run, lock
	return nil
}

// readPasswordFile returns the first line of path, or "" when path is "".
// Secret files mounted by orchestrators usually end in a newline, which is
// not part of the password.
func readPasswordFile(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", errkind.Wrap(errkind.FailedPrecondition, "cannot read the database password file "+path, err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", errkind.New(errkind.FailedPrecondition, "the database password file "+path+" is empty; put the password on its first line")
	}
	return line, nil
}

// loadRootKey reads the barrier's root key file, creating it only while
// the store holds nothing the barrier sealed. A node that joins a shared
// store, or a data directory whose key file was lost, would otherwise
// create a new key that cannot open the keyring, and fail later with a
// less helpful message.
func loadRootKey(ctx context.Context, raw storage.Backend, path string) (*barrier.FileSealer, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		var sealed []storage.Entry
		err := raw.View(ctx, func(tx storage.Tx) error {
			var err error
			sealed, err = tx.List(barrier.ReservedPrefix, "", 1)
			return err
		})
		if err != nil {
			return nil, err
		}
		if len(sealed) > 0 {
			return nil, errkind.New(errkind.FailedPrecondition, fmt.Sprintf(
				"the store already holds data sealed by a barrier root key, but %s does not exist: copy %s from the data directory of the node that created the store (mode 0600), or restore it from its backup",
				path, rootKeyFile))
		}
	}
	return barrier.LoadOrCreateKeyFile(path)
}
