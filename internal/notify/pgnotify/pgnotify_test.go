package pgnotify_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/customerkey/customerkey/internal/notify"
	"github.com/customerkey/customerkey/internal/notify/pgnotify"
)

const envPostgres = "CUSTOMERKEY_TEST_POSTGRES"

// schemaPool returns a pool on a new schema of the test server; the test
// is skipped without one.
func schemaPool(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	base := os.Getenv(envPostgres)
	if base == "" {
		t.Skipf("%s is not set: set it to the URL of a throwaway PostgreSQL server to run this test; .ci/run does", envPostgres)
	}
	schema := "ck_notify_" + strings.ToLower(rand.Text()[:12])
	admin, err := pgxpool.New(t.Context(), base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if _, err := admin.Exec(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec(context.WithoutCancel(t.Context()), "DROP SCHEMA "+schema+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	p, err := pgxpool.New(t.Context(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, schema
}

// recorder collects what a subscriber hears.
type recorder struct {
	mu   sync.Mutex
	keys []string
	ch   chan struct{}
}

func newRecorder() *recorder { return &recorder{ch: make(chan struct{}, 100)} }

func (r *recorder) hear(key string) {
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

// wait returns the keys heard once n have arrived, or fails after 5 s.
func (r *recorder) wait(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		got := append([]string(nil), r.keys...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("heard %q after 5 s, want %d notifications", got, n)
		}
	}
}

func (r *recorder) heard() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...)
}

func start(t *testing.T, p *pgxpool.Pool) *pgnotify.Bus {
	t.Helper()
	b, err := pgnotify.New(t.Context(), p, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for !b.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("the bus is not listening after 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return b
}

// TestDelivery: a notification reaches the other node's subscribers of its
// topic, with its key (spaces included), and never the publisher's own.
func TestDelivery(t *testing.T) {
	p, _ := schemaPool(t)
	a, b := start(t, p), start(t, p)
	ra, rb, rOther := newRecorder(), newRecorder(), newRecorder()
	a.Subscribe("vault/key", ra.hear)
	b.Subscribe("vault/key", rb.hear)
	b.Subscribe("rbac", rOther.hear)
	// Subscribing after Run started: each bus flushed its subscribers
	// (none yet) when it began listening, so nothing is heard but what
	// is published from here on.
	a.Publish(t.Context(), "vault/key", "uid/name with space")
	a.Publish(t.Context(), "vault/key", notify.All)
	got := rb.wait(t, 2)
	if len(got) != 2 || got[0] != "uid/name with space" || got[1] != notify.All {
		t.Errorf("node B heard %q, want [%q %q]", got, "uid/name with space", notify.All)
	}
	b.Publish(t.Context(), "rbac", "x")
	// Round trip through the database: once A hears B's next message, A's
	// own earlier ones would have arrived too.
	a.Subscribe("marker", ra.hear)
	b.Publish(t.Context(), "marker", "m")
	if got := ra.wait(t, 1); len(got) != 1 || got[0] != "m" {
		t.Errorf("node A heard %q, want only B's marker (never its own notifications)", got)
	}
	if got := rOther.heard(); len(got) != 0 {
		t.Errorf("B's rbac subscriber heard %q from B itself, want nothing", got)
	}
}

// TestSchemasAreSeparate: nodes on another schema of the same database do
// not hear each other.
func TestSchemasAreSeparate(t *testing.T) {
	p1, s1 := schemaPool(t)
	p2, _ := schemaPool(t)
	a, b := start(t, p1), start(t, p2)
	if !strings.Contains(a.Channel(), s1) || a.Channel() == b.Channel() {
		t.Fatalf("channels %q and %q: want one per schema, named after it", a.Channel(), b.Channel())
	}
	a2 := start(t, p1)
	r, rSame := newRecorder(), newRecorder()
	b.Subscribe("t", r.hear)
	a2.Subscribe("t", rSame.hear)
	a.Publish(t.Context(), "t", "k")
	rSame.wait(t, 1)
	if got := r.heard(); len(got) != 0 {
		t.Errorf("a node on another schema heard %q", got)
	}
}

// TestReconnectFlushes: when the listening session is killed, the bus
// reconnects and tells every subscriber to drop everything, since it may
// have missed notifications; then delivery resumes.
func TestReconnectFlushes(t *testing.T) {
	p, _ := schemaPool(t)
	a, b := start(t, p), start(t, p)
	r1, r2 := newRecorder(), newRecorder()
	b.Subscribe("one", r1.hear)
	b.Subscribe("two", r2.hear)
	tag, err := p.Exec(t.Context(),
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query = $1",
		`LISTEN "`+b.Channel()+`"`)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 2 {
		t.Fatalf("terminated %d listening sessions, want both nodes'", tag.RowsAffected())
	}
	if got := r1.wait(t, 1); got[0] != notify.All {
		t.Errorf("after a reconnect subscriber one heard %q, want notify.All first", got)
	}
	if got := r2.wait(t, 1); got[0] != notify.All {
		t.Errorf("after a reconnect subscriber two heard %q, want notify.All first", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !a.Listening() {
		if time.Now().After(deadline) {
			t.Fatal("node A did not listen again within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Publish(t.Context(), "one", "after")
	if got := r1.wait(t, 2); got[1] != "after" {
		t.Errorf("after the reconnect subscriber one heard %q, want [%q %q]", got, notify.All, "after")
	}
}
