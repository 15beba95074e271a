package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/postgres"
	"github.com/customerkey/customerkey/internal/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return open(t, postgres.Options{URL: scratchURL(t)})
	})
}

func TestReopenPersists(t *testing.T) {
	u := scratchURL(t)
	b := open(t, postgres.Options{URL: u})
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put("p/a", []byte("a1"), storage.MustNotExist); err != nil {
			return err
		}
		_, err := tx.Put("p/a", []byte("a2"), 1)
		return err
	})
	if err != nil {
		t.Fatalf("Update err = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	b = open(t, postgres.Options{URL: u})
	e, err := storage.Get(t.Context(), b, "p/a")
	if err != nil || string(e.Value) != "a2" || e.Version != 2 {
		t.Errorf("Get(%q) after reopen = %q v%d, %v; want %q v2", "p/a", e.Value, e.Version, err, "a2")
	}
}

// TestMigrationsOnce starts several nodes at once on an empty schema: the
// advisory lock lets exactly one apply each migration, and a later start
// applies nothing.
func TestMigrationsOnce(t *testing.T) {
	u := scratchURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			b, err := postgres.Open(t.Context(), postgres.Options{URL: u})
			if err == nil {
				_, err = put(t.Context(), b, "node/"+strconv.Itoa(i))
				_ = b.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: Open or Put err = %v", i, err)
		}
	}
	// Pool reaches the same schema as the storage port.
	rows, err := open(t, postgres.Options{URL: u}).Pool().Query(t.Context(), "SELECT version::text || '_' || name FROM customerkey_schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1_kv"}, applied); diff != "" {
		t.Errorf("customerkey_schema_migrations mismatch (-want +got):\n%s", diff)
	}
}

func TestOpenRefuses(t *testing.T) {
	base := baseURL(t)
	newer := scratchURL(t)
	open(t, postgres.Options{URL: newer}).Close()
	admin(t, newer, "INSERT INTO customerkey_schema_migrations (version, name) VALUES (999, 'future')")

	tests := []struct {
		name string
		url  string
		kind errkind.Kind
		want string
	}{
		{"schema of a newer binary", newer, errkind.FailedPrecondition, "is at migration 999, but this customerkey knows only 1"},
		{"missing schema", withParam(t, base, "search_path", "ck_surely_missing"), errkind.FailedPrecondition, "CREATE SCHEMA"},
		{"missing database", withPath(t, base, "/ck_surely_missing_db"), errkind.FailedPrecondition, "that the database exists"},
		{"not a connection string", "postgres://[::1", errkind.Invalid, "not a valid connection string"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			b, err := postgres.Open(t.Context(), postgres.Options{URL: tc.url, ConnectTimeout: 20 * time.Second})
			if err == nil {
				b.Close()
				t.Fatal("Open() err = nil, want an error")
			}
			if got := errkind.KindOf(err); got != tc.kind || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open() err = %v (kind %v), want kind %v mentioning %q", err, got, tc.kind, tc.want)
			}
			// Retrying cannot cure any of these, so Open must not wait.
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open() took %v to fail, want it to fail at once", d)
			}
		})
	}
}

// TestUnreachableAtStart needs no database: nothing listens on the port.
func TestUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	start := time.Now()
	b, err := postgres.Open(t.Context(), postgres.Options{
		URL:            "postgres://ck:hunter2@127.0.0.1:" + port + "/ck?sslmode=disable",
		ConnectTimeout: 1200 * time.Millisecond,
		Log:            log,
	})
	if err == nil {
		b.Close()
		t.Fatal("Open() on a closed port err = nil, want an error")
	}
	d := time.Since(start)
	if got := errkind.KindOf(err); got != errkind.Unavailable {
		t.Errorf("KindOf(Open() err) = %v, want %v", got, errkind.Unavailable)
	}
	if msg := err.Error(); !strings.Contains(msg, "cannot reach the database ck@127.0.0.1:"+port+"/ck") || !strings.Contains(msg, "check that PostgreSQL is running") {
		t.Errorf("Open() err = %q, want it to name the target and say what to check", msg)
	}
	if d < time.Second || d > 10*time.Second {
		t.Errorf("Open() gave up after %v, want about its 1.2s timeout", d)
	}
	if n := strings.Count(logs.String(), "retrying"); n < 2 {
		t.Errorf("log has %d retry warnings, want at least 2:\n%s", n, logs.String())
	}
	for _, s := range []string{err.Error(), logs.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("the password appears in %q", s)
		}
	}
}

func TestBadURLHidesPassword(t *testing.T) {
	_, err := postgres.Open(t.Context(), postgres.Options{URL: "postgres://ck:hunter2@127.0.0.1:notaport/ck"})
	if err == nil || strings.Contains(err.Error(), "hunter2") || !errkind.Is(err, errkind.Invalid) {
		t.Errorf("Open(bad URL) err = %v, want an Invalid error without the password", err)
	}
}

// TestComesUpDuringRetry starts the database (a proxy to it) only after
// Open has failed to reach it a few times.
func TestComesUpDuringRetry(t *testing.T) {
	u := scratchURL(t)
	target := hostPort(t, u)
	port := freePort(t)
	go func() {
		time.Sleep(700 * time.Millisecond)
		proxy(t, "127.0.0.1:"+port, target)
	}()
	b := open(t, postgres.Options{URL: withHost(t, u, "127.0.0.1:"+port), ConnectTimeout: 20 * time.Second})
	if _, err := put(t.Context(), b, "late/k"); err != nil {
		t.Errorf("Put after a late start err = %v", err)
	}
}

func TestPassword(t *testing.T) {
	u, _ := url.Parse(scratchURL(t))
	pass, ok := u.User.Password()
	if !ok {
		t.Skipf("%s has no password; nothing to move out of the URL", envURL)
	}
	u.User = url.User(u.User.Username())
	t.Setenv("PGPASSWORD", "")

	b := open(t, postgres.Options{URL: u.String(), Password: pass})
	if _, err := put(t.Context(), b, "pw/k"); err != nil {
		t.Errorf("Put with the password from Options err = %v", err)
	}

	start := time.Now()
	b, err := postgres.Open(t.Context(), postgres.Options{URL: u.String(), Password: "wrong-" + pass, ConnectTimeout: 20 * time.Second})
	if err == nil {
		b.Close()
		t.Skip("the test server accepts any password (trust authentication)")
	}
	if !errkind.Is(err, errkind.FailedPrecondition) || !strings.Contains(err.Error(), "password") {
		t.Errorf("Open() with a wrong password err = %v, want a FailedPrecondition about the password", err)
	}
	if strings.Contains(err.Error(), "wrong-"+pass) {
		t.Error("the error holds the password")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open() with a wrong password took %v, want it to fail at once", d)
	}
}

// TestConnectionKilledMidTransaction terminates the backend of a running
// Update from another session: Update fails as Unavailable, nothing it
// wrote is visible, and the pool replaces the connection.
func TestConnectionKilledMidTransaction(t *testing.T) {
	appName := "ck-test-kill-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	u := withParam(t, scratchURL(t), "application_name", appName)
	b := open(t, postgres.Options{URL: u})
	calls := 0
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		calls++
		if _, err := tx.Put("kill/a", []byte("a"), storage.AnyVersion); err != nil {
			return err
		}
		rows := query(t, baseURL(t), `SELECT pg_terminate_backend(pid, 10000)::text FROM pg_stat_activity
			WHERE application_name = $1 AND state = 'idle in transaction'`, appName)
		if diff := cmp.Diff([]string{"true"}, rows); diff != "" {
			t.Errorf("pg_terminate_backend results mismatch (-want +got):\n%s", diff)
		}
		_, err := tx.Put("kill/b", []byte("b"), storage.AnyVersion)
		return err
	})
	if !errkind.Is(err, errkind.Unavailable) || !strings.Contains(err.Error(), "nothing of it was written") {
		t.Errorf("Update on a killed connection err = %v, want Unavailable saying nothing was written", err)
	}
	if calls != 1 {
		t.Errorf("fn ran %d times, want once: a lost connection is not retried", calls)
	}
	for _, k := range []string{"kill/a", "kill/b"} {
		if e, err := storage.Get(t.Context(), b, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) after the failed Update = %+v, %v, want ErrNotFound", k, e, err)
		}
	}
	if _, err := put(t.Context(), b, "kill/after"); err != nil {
		t.Errorf("Put after the killed connection err = %v, want the pool to recover", err)
	}
}

// TestSerializationConflictRetried makes two read-modify-write Updates of
// one key read before either writes: one of them fails to serialize, runs
// again, and both succeed without the caller seeing it. The server aborts
// the transaction whatever fn does with the error, so a fn that swallows
// it is retried too rather than reported as committed.
func TestSerializationConflictRetried(t *testing.T) {
	for _, swallow := range []bool{false, true} {
		t.Run("swallow="+strconv.FormatBool(swallow), func(t *testing.T) {
			b := open(t, postgres.Options{URL: scratchURL(t)})
			const key = "ser/counter"
			if _, err := put(t.Context(), b, key); err != nil { // "1" at version 1
				t.Fatal(err)
			}
			var (
				calls  atomic.Int32
				bothIn sync.WaitGroup
			)
			bothIn.Add(2)
			inc := func() error {
				first := true
				return b.Update(t.Context(), func(tx storage.Tx) error {
					calls.Add(1)
					e, err := tx.Get(key)
					if err != nil {
						return err
					}
					if first {
						first = false
						bothIn.Done()
						bothIn.Wait()
					}
					n, _ := strconv.Atoi(string(e.Value))
					_, err = tx.Put(key, []byte(strconv.Itoa(n+1)), e.Version)
					if swallow {
						return nil
					}
					return err
				})
			}
			errs := make(chan error, 2)
			for range 2 {
				go func() { errs <- inc() }()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("concurrent Update err = %v, want nil", err)
				}
			}
			e, err := storage.Get(t.Context(), b, key)
			if err != nil || string(e.Value) != "3" || e.Version != 3 {
				t.Errorf("Get(%q) = %q v%d, %v; want %q v3", key, e.Value, e.Version, err, "3")
			}
			if n := calls.Load(); n < 3 {
				t.Errorf("fn ran %d times, want at least 3 (one Update retried)", n)
			}
		})
	}
}

// TestCreateRace has writers create one key with MustNotExist at once, some
// after reading that it is missing: exactly one wins, the others get
// ErrConflict.
func TestCreateRace(t *testing.T) {
	// Every writer holds a connection while it waits for the others.
	b := open(t, postgres.Options{URL: withParam(t, scratchURL(t), "pool_max_conns", "8")})
	const writers = 6
	var (
		ready sync.WaitGroup
		wg    sync.WaitGroup
		wins  atomic.Int32
	)
	ready.Add(writers)
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			first := true
			err := b.Update(t.Context(), func(tx storage.Tx) error {
				if first {
					first = false
					if i%2 == 0 { // half look first, taking a snapshot without the key
						if _, err := tx.Get("race/k"); !errors.Is(err, storage.ErrNotFound) {
							return fmt.Errorf("Get before create err = %v, want ErrNotFound", err)
						}
					}
					ready.Done()
					ready.Wait()
				}
				_, err := tx.Put("race/k", []byte(strconv.Itoa(i)), storage.MustNotExist)
				return err
			})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, storage.ErrConflict):
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("create err = %v, want nil or ErrConflict", err)
	}
	if n := wins.Load(); n != 1 {
		t.Errorf("%d writers created the key, want exactly 1", n)
	}
	if e, err := storage.Get(t.Context(), b, "race/k"); err != nil || e.Version != 1 {
		t.Errorf("Get(%q) = v%d, %v; want version 1", "race/k", e.Version, err)
	}
}

func TestImport(t *testing.T) {
	b := open(t, postgres.Options{URL: scratchURL(t)})
	in := []storage.Entry{
		{Key: "imp/a", Value: []byte("a"), Version: 7},
		{Key: "imp/b", Value: nil, Version: 1},
		{Key: "imp/é", Value: bytes.Repeat([]byte{0, 0xff}, 1000), Version: 42},
	}
	if err := b.Import(t.Context(), in); err != nil {
		t.Fatalf("Import() err = %v", err)
	}
	var got []storage.Entry
	err := b.View(t.Context(), func(tx storage.Tx) error {
		var err error
		got, err = tx.List("imp/", "", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got, cmp.Comparer(bytes.Equal)); diff != "" {
		t.Errorf("List after Import mismatch (-want +got):\n%s", diff)
	}
	// The next Put continues from the imported version.
	err = b.Update(t.Context(), func(tx storage.Tx) error {
		v, err := tx.Put("imp/a", []byte("a8"), 7)
		if err == nil && v != 8 {
			t.Errorf("Put(ifVersion=7) after Import version = %d, want 8", v)
		}
		return err
	})
	if err != nil {
		t.Errorf("Put after Import err = %v", err)
	}

	tests := []struct {
		name    string
		entries []storage.Entry
		want    error
	}{
		{"existing key", []storage.Entry{{Key: "imp/new", Value: []byte("x"), Version: 1}, {Key: "imp/b", Value: []byte("x"), Version: 1}}, storage.ErrConflict},
		{"version 0", []storage.Entry{{Key: "imp/new", Value: []byte("x"), Version: 0}}, nil},
		{"invalid key", []storage.Entry{{Key: "imp/\xff", Value: []byte("x"), Version: 1}}, storage.ErrInvalidKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Import(t.Context(), tc.entries)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("Import() err = %v, want %v", err, tc.want)
			}
			if _, err := storage.Get(t.Context(), b, "imp/new"); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("after a failed Import, Get(%q) err = %v, want ErrNotFound", "imp/new", err)
			}
		})
	}
}

func TestTxAfterReturn(t *testing.T) {
	b := open(t, postgres.Options{URL: scratchURL(t)})
	var leaked storage.Tx
	if err := b.Update(t.Context(), func(tx storage.Tx) error { leaked = tx; return nil }); err != nil {
		t.Fatalf("Update err = %v", err)
	}
	if _, err := leaked.Get("k"); err == nil {
		t.Error("Get on a finished tx err = nil, want an error")
	}
	if _, err := leaked.Put("k", nil, storage.AnyVersion); err == nil {
		t.Error("Put on a finished tx err = nil, want an error")
	}
	if _, err := leaked.List("", "", 0); err == nil {
		t.Error("List on a finished tx err = nil, want an error")
	}
}

func TestBadVersionCondition(t *testing.T) {
	b := open(t, postgres.Options{URL: scratchURL(t)})
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		_, err := tx.Put("k", nil, -2)
		return err
	})
	if !errkind.Is(err, errkind.Invalid) || errors.Is(err, storage.ErrConflict) {
		t.Errorf("Put(ifVersion=-2) err = %v, want an Invalid error", err)
	}
}

func query(t testing.TB, u, sql string, args ...any) []string {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Port() == "" {
		t.Skipf("%s does not name a TCP host:port", envURL)
	}
	return u.Host
}

func withHost(t *testing.T, raw, host string) string {
	t.Helper()
	u, _ := url.Parse(raw)
	u.Host = host
	return u.String()
}

func withPath(t *testing.T, raw, path string) string {
	t.Helper()
	u, _ := url.Parse(raw)
	u.Path = path
	return u.String()
}

// proxy forwards connections on addr to target until the test ends.
func proxy(t *testing.T, addr, target string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return
	}
	context.AfterFunc(t.Context(), func() { ln.Close() })
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer d.Close()
			go func() { _, _ = io.Copy(d, c); d.Close() }()
			_, _ = io.Copy(c, d)
		}()
	}
}
