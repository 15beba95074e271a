package app

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/storage/postgres"
)

// MigrateOptions says what `customerkey store migrate` copies where.
type MigrateOptions struct {
	// From is "bolt:PATH": a data directory or its store file.
	From string
	// To is a postgres:// URL. PasswordFile, when not empty, holds its
	// password (otherwise PGPASSWORD or ~/.pgpass).
	To           string
	PasswordFile string
	// Force replaces whatever the target holds; without it a target that
	// holds any record is refused.
	Force bool
	// ConnectTimeout bounds the wait for an unreachable target; zero means
	// the postgres default.
	ConnectTimeout time.Duration
	// Progress receives one line per step; nil discards them.
	Progress io.Writer
	// Log receives the target's connection retries; nil discards them.
	Log *slog.Logger
}

// Digest sums a store: how many records it holds and a SHA-256 over every
// (key, version, value) in key order.
type Digest struct {
	Records int
	Bytes   int64
	SHA256  string
}

func (d Digest) String() string {
	return fmt.Sprintf("%d records, %d bytes of values, sha256 %s", d.Records, d.Bytes, d.SHA256)
}

// migratePage is how many records one transaction reads or writes.
// Values are at most storage.MaxValueLen, and usually a few hundred bytes.
const migratePage = 256

// MigrateStore copies every record of a bolt store into a PostgreSQL
// database as it is stored: values stay barrier ciphertext (nothing is
// decrypted; the same barrier.key opens the copy) and versions are kept.
// The source must not be in use: bolt's file lock refuses a running
// server. Afterwards both sides are summed and must agree; the digest is
// returned.
func MigrateStore(ctx context.Context, o MigrateOptions) (Digest, error) {
	out := o.Progress
	if out == nil {
		out = io.Discard
	}
	path, ok := strings.CutPrefix(o.From, "bolt:")
	if !ok || path == "" {
		return Digest{}, errkind.New(errkind.Invalid, "store migrate: --from must be bolt:PATH, PATH being a data directory or its "+storeFile)
	}
	if !strings.HasPrefix(o.To, "postgres://") && !strings.HasPrefix(o.To, "postgresql://") {
		return Digest{}, errkind.New(errkind.Invalid, "store migrate: --to must be a postgres:// URL")
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, storeFile)
	}
	// bolt.Open would create a missing file and copy an empty store.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Digest{}, errkind.New(errkind.NotFound, "store migrate: there is no store at "+path)
	}
	src, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		return Digest{}, err
	}
	defer src.Close()
	pass, err := readPasswordFile(o.PasswordFile)
	if err != nil {
		return Digest{}, err
	}
	dst, err := postgres.Open(ctx, postgres.Options{URL: o.To, Password: pass, ConnectTimeout: o.ConnectTimeout, Log: o.Log})
	if err != nil {
		return Digest{}, err
	}
	defer dst.Close()

	want, err := digest(ctx, src)
	if err != nil {
		return Digest{}, fmt.Errorf("store migrate: reading the source: %w", err)
	}
	fmt.Fprintf(out, "source bolt:%s: %s\n", path, want)
	if err := clearTarget(ctx, dst, o.Force, out); err != nil {
		return Digest{}, err
	}
	copied := 0
	err = pages(ctx, src, func(es []storage.Entry) error {
		if err := dst.Import(ctx, es); err != nil {
			return err
		}
		copied += len(es)
		fmt.Fprintf(out, "copied %d/%d records\n", copied, want.Records)
		return nil
	})
	if err != nil {
		return Digest{}, fmt.Errorf("store migrate: copying (after %d records; run again with --force to start over): %w", copied, err)
	}
	got, err := digest(ctx, dst)
	if err != nil {
		return Digest{}, fmt.Errorf("store migrate: reading the target back: %w", err)
	}
	fmt.Fprintf(out, "target %s: %s\n", dst, got)
	if err := verify(want, got); err != nil {
		return Digest{}, err
	}
	fmt.Fprintln(out, "verified: the target holds exactly the source's records")
	return got, nil
}

// clearTarget refuses a target that holds records, or deletes them all
// when forced.
func clearTarget(ctx context.Context, dst storage.Backend, force bool, out io.Writer) error {
	deleted := 0
	for {
		var es []storage.Entry
		err := dst.Update(ctx, func(tx storage.Tx) error {
			var err error
			if es, err = tx.List("", "", migratePage); err != nil || !force {
				return err
			}
			for _, e := range es {
				if err := tx.Delete(e.Key, storage.AnyVersion); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case err != nil:
			return fmt.Errorf("store migrate: clearing the target: %w", err)
		case len(es) == 0:
			if deleted > 0 {
				fmt.Fprintf(out, "deleted %d records from the target\n", deleted)
			}
			return nil
		case !force:
			return errkind.New(errkind.FailedPrecondition,
				"store migrate: the target already holds records; pass --force to delete them and copy the source over them")
		}
		deleted += len(es)
	}
}

// verify compares the sums of both sides.
func verify(want, got Digest) error {
	if want != got {
		return errkind.New(errkind.Internal, fmt.Sprintf(
			"store migrate: verification failed: the source has %s but the target has %s; do not start a server on the target; run the migration again with --force",
			want, got))
	}
	return nil
}

// digest sums every record of b in key order.
func digest(ctx context.Context, b storage.Backend) (Digest, error) {
	var d Digest
	h := sha256.New()
	err := pages(ctx, b, func(es []storage.Entry) error {
		for _, e := range es {
			hashEntry(h, e)
			d.Records++
			d.Bytes += int64(len(e.Value))
		}
		return nil
	})
	d.SHA256 = hex.EncodeToString(h.Sum(nil))
	return d, err
}

// hashEntry writes e with length prefixes, so that no two different
// sequences of records hash the same bytes.
func hashEntry(h hash.Hash, e storage.Entry) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(e.Key)))])
	io.WriteString(h, e.Key)
	h.Write(n[:binary.PutUvarint(n[:], uint64(e.Version))])
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(e.Value)))])
	h.Write(e.Value)
}

// pages calls fn with every record of b in key order, a page per read
// transaction.
func pages(ctx context.Context, b storage.Backend, fn func([]storage.Entry) error) error {
	after := ""
	for {
		var es []storage.Entry
		err := b.View(ctx, func(tx storage.Tx) error {
			var err error
			es, err = tx.List("", after, migratePage)
			return err
		})
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return nil
		}
		if err := fn(es); err != nil {
			return err
		}
		after = es[len(es)-1].Key
	}
}
