package postgres_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/postgres"
)

// envURL names a throwaway PostgreSQL server; .ci/run starts one and sets
// it. Each test works in a schema of its own and drops it at the end, so
// runs and packages sharing the server do not see each other's rows.
const envURL = "CUSTOMERKEY_TEST_POSTGRES"

func baseURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		t.Skipf("%s is not set: set it to the URL of a throwaway PostgreSQL server (postgres://user:pass@127.0.0.1:5432/db?sslmode=disable) to run this test; .ci/run does", envURL)
	}
	return u
}

// scratchURL creates an empty schema and returns the URL that selects it.
func scratchURL(t testing.TB) string {
	t.Helper()
	base := baseURL(t)
	schema := "ck_test_" + strings.ToLower(rand.Text()[:16])
	admin(t, base, "CREATE SCHEMA "+schema)
	t.Cleanup(func() { admin(t, base, "DROP SCHEMA "+schema+" CASCADE") })
	return withParam(t, base, "search_path", schema)
}

// admin runs one statement on its own connection.
func admin(t testing.TB, url, sql string, args ...any) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context()) // cleanups run after t.Context ends
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connecting to %s: %v", envURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func withParam(t testing.TB, raw, key, value string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("%s must be a postgres:// URL, got an unparsable one", envURL)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(t testing.TB, o postgres.Options) *postgres.Backend {
	t.Helper()
	b, err := postgres.Open(t.Context(), o)
	if err != nil {
		t.Fatalf("Open() err = %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// put stores "1" under key in its own transaction.
func put(ctx context.Context, b storage.Backend, key string) (int64, error) {
	var v int64
	err := b.Update(ctx, func(tx storage.Tx) error {
		var err error
		v, err = tx.Put(key, []byte("1"), storage.AnyVersion)
		return err
	})
	return v, err
}
