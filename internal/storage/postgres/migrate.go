package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/customerkey/customerkey/internal/errkind"
)

// migrationFiles are the schema changes, NNNN_name.sql, applied in order.
// A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrations parses the embedded files; their names are checked by a test,
// so an error here is a build mistake.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", n)
		}
		body, err := migrationFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %04d_%s: versions must run 1, 2, 3… without gaps or repeats", m.version, m.name)
		}
	}
	return out, nil
}

// migrationLock names the advisory lock that serialises migrations; the
// schema is part of it so that deployments sharing a database in separate
// schemas do not wait for each other.
const migrationLock = "customerkey.storage.migrate/"

// migrate brings the schema of conn's search_path up to date: it checks the
// database can hold the port's keys, takes the advisory lock, and applies
// each migration not yet recorded, each in its own transaction together
// with its record.
func migrate(ctx context.Context, conn *pgx.Conn) error {
	all, err := migrations()
	if err != nil {
		return errkind.Wrap(errkind.Internal, "storage: postgres: the embedded migrations are broken", err)
	}
	var enc string
	var schema *string
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_encoding'), current_schema()").Scan(&enc, &schema); err != nil {
		return migrateFailure(ctx, "inspecting the database", err)
	}
	if enc != "UTF8" {
		return errkind.Errorf(errkind.FailedPrecondition,
			"storage: postgres: the database encoding is %s; customerkey needs UTF8 (CREATE DATABASE … ENCODING 'UTF8' TEMPLATE template0)", enc)
	}
	if schema == nil {
		return errkind.New(errkind.FailedPrecondition,
			"storage: postgres: no schema of the search_path exists; create it (CREATE SCHEMA …) or fix search_path in the store URL")
	}
	lock := migrationLock + *schema
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", lock); err != nil {
		return migrateFailure(ctx, "waiting for the migration lock", err)
	}
	defer func() {
		// A broken connection releases the lock by itself, so a failed
		// unlock tells nothing that the error already returned does not.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(hashtextextended($1, 0))", lock)
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS customerkey_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return migrateFailure(ctx, "creating customerkey_schema_migrations", err)
	}
	var applied int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM customerkey_schema_migrations").Scan(&applied); err != nil {
		return migrateFailure(ctx, "reading customerkey_schema_migrations", err)
	}
	if applied > len(all) {
		return errkind.Errorf(errkind.FailedPrecondition,
			"storage: postgres: schema %s is at migration %d, but this customerkey knows only %d; upgrade this binary to the version the other nodes run",
			*schema, applied, len(all))
	}
	for _, m := range all[applied:] {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO customerkey_schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return migrateFailure(ctx, fmt.Sprintf("applying migration %04d_%s to schema %s", m.version, m.name, *schema), err)
		}
	}
	return nil
}

func migrateFailure(ctx context.Context, what string, err error) error {
	var pe *pgconn.PgError
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.As(err, &pe) && pe.Code == "42501":
		return errkind.Wrap(errkind.FailedPrecondition, "storage: postgres: "+what+
			" failed: the database user lacks a privilege; grant it CREATE on the schema (PostgreSQL 15 no longer grants it on public by default)", err)
	case transient(err):
		return errkind.Wrap(errkind.Unavailable, "storage: postgres: "+what+" failed: the connection broke; start again", err)
	}
	return errkind.Wrap(errkind.Internal, "storage: postgres: "+what+" failed", err)
}
