package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

var errBadVersion = errkind.New(errkind.Invalid, "storage: postgres: import: an entry's version must be at least 1")

// Import writes entries exactly as given, versions included, in one
// transaction. `customerkey store migrate` copies another backend with it:
// Put would restart every version at 1, and the versions domain records
// hold must stay true. A key that exists already fails the whole import
// with storage.ErrConflict and writes nothing.
func (b *Backend) Import(ctx context.Context, entries []storage.Entry) error {
	for _, e := range entries {
		if err := storage.CheckKey(e.Key); err != nil {
			return err
		}
		if len(e.Value) > storage.MaxValueLen {
			return storage.ErrTooLarge
		}
		if e.Version < 1 {
			return errBadVersion
		}
	}
	return b.Update(ctx, func(st storage.Tx) error {
		t := st.(*tx)
		src := pgx.CopyFromSlice(len(entries), func(i int) ([]any, error) {
			v := entries[i].Value
			if v == nil {
				v = []byte{}
			}
			return []any{entries[i].Key, v, entries[i].Version}, nil
		})
		_, err := t.tx.CopyFrom(t.ctx, pgx.Identifier{"customerkey_kv"}, []string{"key", "value", "version"}, src)
		if err == nil {
			return nil
		}
		werr := t.fail("import", err)
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" {
			return fmt.Errorf("%w: %s", storage.ErrConflict, pe.Detail)
		}
		return werr
	})
}
