package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/customerkey/customerkey/internal/app"
	"github.com/customerkey/customerkey/internal/config"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func onStore(store string) func(*config.Config) {
	return func(c *config.Config) { c.Store = store }
}

// TestSecondNodeSharesTheStore starts node B on A's PostgreSQL store with
// an empty data directory: it refuses to start until it has A's
// barrier.key, then serves what A created with A's CA.
func TestSecondNodeSharesTheStore(t *testing.T) {
	store := scratchStore(t)
	dirA := filepath.Join(t.TempDir(), "a")
	a := startConfigured(t, dirA, app.Options{}, onStore(store))
	tenant := a.newTenant(t, "Fabrikam")

	dirB := filepath.Join(t.TempDir(), "b")
	cfg := config.Default()
	cfg.DataDir, cfg.Store, cfg.Listen = dirB, store, "127.0.0.1:0"
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	s, err := app.Open(t.Context(), cfg, slog.New(slog.DiscardHandler), app.Options{})
	if err == nil {
		s.Close()
		t.Fatal("app.Open() without barrier.key on a shared store err = nil, want an error")
	}
	if !errkind.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "copy barrier.key from the data directory of the node that created the store") {
		t.Errorf("app.Open() without barrier.key err = %v, want a FailedPrecondition saying to copy barrier.key", err)
	}
	if _, err := os.Stat(filepath.Join(dirB, "barrier.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused start left a barrier.key behind (stat err = %v)", err)
	}

	key, err := os.ReadFile(filepath.Join(dirA, "barrier.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "barrier.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startConfigured(t, dirB, app.Options{}, onStore(store))

	caA, _ := os.ReadFile(a.CAFile)
	caB, _ := os.ReadFile(b.CAFile)
	if len(caA) == 0 || !bytes.Equal(caA, caB) {
		t.Error("node B wrote a ca.pem that differs from node A's; both must serve the store's CA")
	}
	ctx := context.Background()
	if _, err := token(ctx, b.credential(t, tenant.TenantID, tenant.AdminApp.ClientID, tenant.AdminApp.ClientSecret), armScope); err != nil {
		t.Errorf("the application created through node A cannot sign in through node B: %v", err)
	}
	op := b.Credentials
	if op.TenantID != a.Credentials.TenantID || op.ClientID != a.Credentials.ClientID {
		t.Errorf("node B's operator.json names tenant %s app %s, want node A's operator tenant %s app %s",
			op.TenantID, op.ClientID, a.Credentials.TenantID, a.Credentials.ClientID)
	}
	if _, err := token(ctx, b.credential(t, op.TenantID, op.ClientID, op.ClientSecret), armScope); err != nil {
		t.Errorf("node B's operator.json does not sign in: %v", err)
	}
}

// TestMigrateBoltToPostgres moves a server's embedded store to PostgreSQL
// and starts the server again on the copy, with the same data directory.
func TestMigrateBoltToPostgres(t *testing.T) {
	store := scratchStore(t)
	dir := filepath.Join(t.TempDir(), "data")
	a := startConfigured(t, dir, app.Options{}, onStore(config.StoreBolt))
	tenant := a.newTenant(t, "Northwind")
	opCreds := a.Credentials
	a.stop()

	var out bytes.Buffer
	d, err := app.MigrateStore(t.Context(), app.MigrateOptions{From: "bolt:" + dir, To: store, Progress: &out})
	if err != nil {
		t.Fatalf("MigrateStore() err = %v\n%s", err, out.String())
	}
	if d.Records < 10 || len(d.SHA256) != 64 {
		t.Errorf("MigrateStore() digest = %+v, want the server's records and a SHA-256", d)
	}
	for _, want := range []string{"source bolt:" + filepath.Join(dir, "customerkey.db") + ": " + d.String(), "copied ", "target postgres ", "verified"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress does not mention %q:\n%s", want, out.String())
		}
	}

	b := startConfigured(t, dir, app.Options{}, onStore(store))
	ctx := context.Background()
	if _, err := token(ctx, b.credential(t, tenant.TenantID, tenant.AdminApp.ClientID, tenant.AdminApp.ClientSecret), armScope); err != nil {
		t.Errorf("the tenant's application cannot sign in after the migration: %v", err)
	}
	if got := b.Credentials; got.TenantID != opCreds.TenantID || got.ClientID != opCreds.ClientID || got.ClientSecret != opCreds.ClientSecret {
		t.Error("the migrated server rewrote operator.json: the operator's secret did not survive the copy")
	}
	if _, err := token(ctx, b.credential(t, opCreds.TenantID, opCreds.ClientID, opCreds.ClientSecret), armScope); err != nil {
		t.Errorf("the operator cannot sign in after the migration: %v", err)
	}
	b.stop()

	// The target now holds records: refused without --force.
	_, err = app.MigrateStore(t.Context(), app.MigrateOptions{From: "bolt:" + dir, To: store})
	if !errkind.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "--force") {
		t.Errorf("MigrateStore() into a non-empty target err = %v, want a FailedPrecondition naming --force", err)
	}
	// With --force the target becomes the source again, whatever the
	// second start added to it.
	out.Reset()
	d2, err := app.MigrateStore(t.Context(), app.MigrateOptions{From: "bolt:" + filepath.Join(dir, "customerkey.db"), To: store, Force: true, Progress: &out})
	if err != nil {
		t.Fatalf("MigrateStore(--force) err = %v", err)
	}
	if d2 != d || !strings.Contains(out.String(), "deleted ") {
		t.Errorf("MigrateStore(--force) = %v, progress:\n%s\nwant digest %v after deleting the target's records", d2, out.String(), d)
	}
}

func TestMigrateRefuses(t *testing.T) {
	dir := t.TempDir()
	locked := filepath.Join(dir, "locked.db")
	lb, err := bolt.Open(locked, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Close() })
	const pg = "postgres://ck@127.0.0.1:1/ck?sslmode=disable"
	tests := []struct {
		name     string
		from, to string
		kind     errkind.Kind
		want     string
	}{
		{"source not bolt", "sqlite:" + locked, pg, errkind.Invalid, "--from must be bolt:PATH"},
		{"target not postgres", "bolt:" + locked, "mysql://ck@db/ck", errkind.Invalid, "--to must be a postgres:// URL"},
		{"missing source", "bolt:" + filepath.Join(dir, "nothing.db"), pg, errkind.NotFound, "there is no store at"},
		{"source in use", "bolt:" + locked, pg, errkind.Unavailable, "locked by another customerkey process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := app.MigrateStore(t.Context(), app.MigrateOptions{From: tc.from, To: tc.to, Progress: io.Discard})
			if !errkind.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("MigrateStore(%s → %s) err = %v, want kind %v mentioning %q", tc.from, tc.to, err, tc.kind, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "nothing.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("a refused migration created the missing source file")
	}
}
