package app_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/customerkey/customerkey/internal/config"
)

// Test servers run on the embedded store unless CUSTOMERKEY_TEST_STORE is
// "postgres"; then each data directory gets a schema of its own in the
// server CUSTOMERKEY_TEST_POSTGRES names (.ci/run sets both for its second
// pass over the storage-touching packages).
const (
	envStore    = "CUSTOMERKEY_TEST_STORE"
	envPostgres = "CUSTOMERKEY_TEST_POSTGRES"
)

// testStore is the store setting for a test server on dataDir. The schema
// is named after the directory, so a restart on the same directory finds
// the same data, and it is dropped when the test ends.
func testStore(t testing.TB, dataDir string) string {
	t.Helper()
	switch kind := os.Getenv(envStore); kind {
	case "", config.StoreBolt:
		return config.StoreBolt
	case "postgres":
		if os.Getenv(envPostgres) == "" {
			t.Fatalf("%s=postgres needs %s, the URL of a throwaway PostgreSQL server", envStore, envPostgres)
		}
		sum := sha256.Sum256([]byte(dataDir))
		return schemaURL(t, "ck_app_"+hex.EncodeToString(sum[:8]))
	default:
		t.Fatalf("%s=%q: want bolt or postgres", envStore, kind)
		return ""
	}
}

// scratchStore is a postgres:// store in a new empty schema; the test is
// skipped when no PostgreSQL server is configured.
func scratchStore(t *testing.T) string {
	t.Helper()
	if os.Getenv(envPostgres) == "" {
		t.Skipf("%s is not set: set it to the URL of a throwaway PostgreSQL server to run this test; .ci/run does", envPostgres)
	}
	return schemaURL(t, "ck_app_"+strings.ToLower(rand.Text()[:16]))
}

// schemaURL creates schema (if missing) and returns the URL selecting it.
func schemaURL(t testing.TB, schema string) string {
	t.Helper()
	base := os.Getenv(envPostgres)
	// The first caller owns the schema: a subtest asking again for the
	// same data directory's store must not drop it when the subtest ends.
	if _, taken := schemas.LoadOrStore(schema, true); !taken {
		pgExec(t, base, "CREATE SCHEMA IF NOT EXISTS "+schema)
		t.Cleanup(func() {
			pgExec(t, base, "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
			schemas.Delete(schema)
		})
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", envPostgres)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// schemas are the test schemas that exist now, by name.
var schemas sync.Map

func pgExec(t testing.TB, u, sql string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context()) // cleanups run after t.Context ends
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connecting to %s: %v", envPostgres, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
