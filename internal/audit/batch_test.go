package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

// gatedStore wraps a backend: the first Update waits for release (so that
// later events pile up behind it), and Updates fail with fail while it is
// set. puts counts the writes each failed Update attempted.
type gatedStore struct {
	storage.Backend
	entered chan struct{} // closed when the first Update starts
	release chan struct{} // close to let the first Update go on
	calls   atomic.Int64
	fail    atomic.Pointer[error]

	mu         sync.Mutex
	failedPuts []int
}

func newGated(inner storage.Backend) *gatedStore {
	return &gatedStore{Backend: inner, entered: make(chan struct{}), release: make(chan struct{})}
}

func (g *gatedStore) Update(ctx context.Context, fn func(storage.Tx) error) error {
	if g.calls.Add(1) == 1 {
		close(g.entered)
		<-g.release
	}
	if p := g.fail.Load(); p != nil {
		n := 0
		err := g.Backend.Update(ctx, func(tx storage.Tx) error {
			if err := fn(countTx{tx, &n}); err != nil {
				return err
			}
			return *p // roll back what fn wrote
		})
		g.mu.Lock()
		g.failedPuts = append(g.failedPuts, n)
		g.mu.Unlock()
		return err
	}
	return g.Backend.Update(ctx, fn)
}

type countTx struct {
	storage.Tx
	n *int
}

func (c countTx) Put(k string, v []byte, ver int64) (int64, error) {
	*c.n++
	return c.Tx.Put(k, v, ver)
}

func openBolt(t testing.TB, path string) *bolt.Backend {
	t.Helper()
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// count lists every record of tenant through the public API.
func count(t *testing.T, l *audit.Log, tenant string) (n int, ids map[string]bool) {
	t.Helper()
	ids = map[string]bool{}
	tok := ""
	for {
		p, err := l.List(context.Background(), tenant, tok, 0)
		if err != nil {
			t.Fatalf("List err = %v", err)
		}
		for _, ev := range p.Events {
			ids[ev.ID] = true
		}
		n += len(p.Events)
		if p.Next == "" {
			return n, ids
		}
		tok = p.Next
	}
}

func TestBatcherConcurrentRecordsAreDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st := openBolt(t, path)
	l := audit.New(audit.Options{Store: st})
	b := audit.NewBatcher(l, audit.BatchOptions{MaxBatch: 32, Queue: 64})
	const workers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: fmt.Sprintf("req-%d", w), ClientIP: "127.0.0.1"})
			for i := range each {
				errs <- b.Record(ctx, audit.Event{TenantID: tenantA, Action: fmt.Sprintf("w%d/%d", w, i), Result: audit.Success})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Record err = %v", err)
		}
	}
	stats := b.Stats()
	t.Logf("%d events in %d transactions", stats.Events, stats.Batches)
	if stats.Events != workers*each || stats.Batches > stats.Events {
		t.Errorf("Stats() = %+v, want %d events", stats, workers*each)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	// What Record acknowledged must be in the file, as another process sees it.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2 := openBolt(t, path)
	defer st2.Close()
	n, ids := count(t, audit.New(audit.Options{Store: st2}), tenantA)
	if n != workers*each || len(ids) != n {
		t.Errorf("after reopening: %d records with %d distinct ids, want %d", n, len(ids), workers*each)
	}
	p, err := audit.New(audit.Options{Store: st2}).List(context.Background(), tenantA, "", 1)
	if err != nil || len(p.Events) != 1 || p.Events[0].ClientIP != "127.0.0.1" || p.Events[0].RequestID == "" {
		t.Errorf("first record = %+v, %v; want request id and client ip from the caller's context", p.Events, err)
	}
}

func TestBatcherFailureReachesEveryWaiter(t *testing.T) {
	g := newGated(openBolt(t, filepath.Join(t.TempDir(), "db")))
	defer g.Close()
	l := audit.New(audit.Options{Store: g})
	b := audit.NewBatcher(l, audit.BatchOptions{})
	defer b.Close(context.Background())
	ctx := context.Background()

	first := make(chan error, 1)
	go func() { first <- b.Record(ctx, audit.Event{TenantID: tenantA, Action: "first", Result: audit.Success}) }()
	<-g.entered // the writer is now busy: what follows queues behind it
	boom := errors.New("disk full")
	g.fail.Store(&boom)

	const waiters = 16
	errs := make(chan error, waiters)
	for i := range waiters {
		go func() {
			errs <- b.Record(ctx, audit.Event{TenantID: tenantA, Action: fmt.Sprintf("w%d", i), Result: audit.Success})
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them join one batch; correctness does not depend on it
	close(g.release)
	if err := <-first; !errors.Is(err, boom) {
		t.Errorf("first Record err = %v, want %v (its batch failed too)", err, boom)
	}
	for range waiters {
		if err := <-errs; !errors.Is(err, boom) {
			t.Errorf("Record err = %v, want %v", err, boom)
		}
	}
	g.mu.Lock()
	t.Logf("failed transactions held %v events", g.failedPuts)
	total := 0
	for _, n := range g.failedPuts {
		total += n
	}
	g.mu.Unlock()
	if total != waiters+1 {
		t.Errorf("failed transactions held %d events, want %d", total, waiters+1)
	}
	if n, _ := count(t, l, tenantA); n != 0 {
		t.Errorf("%d records stored by failed transactions, want 0", n)
	}

	// The writer survives a failed batch.
	g.fail.Store(nil)
	if err := b.Record(ctx, audit.Event{TenantID: tenantA, Action: "after", Result: audit.Success}); err != nil {
		t.Errorf("Record after the failure err = %v", err)
	}
	// A bad event fails alone, before it can join a batch.
	if err := b.Record(ctx, audit.Event{TenantID: "a/b", Action: "bad"}); err == nil {
		t.Error("Record(tenant a/b) err = nil, want an error")
	}
}

func TestBatcherContextEndsWhileWaiting(t *testing.T) {
	g := newGated(openBolt(t, filepath.Join(t.TempDir(), "db")))
	defer g.Close()
	l := audit.New(audit.Options{Store: g})
	b := audit.NewBatcher(l, audit.BatchOptions{MaxBatch: 1, Queue: 2})
	bg := context.Background()

	go func() { _ = b.Record(bg, audit.Event{TenantID: tenantA, Action: "held", Result: audit.Success}) }()
	<-g.entered

	// One caller ends up waiting for its commit (it holds slot 2 of 2), the
	// other for room in the full queue; whichever comes first, both must
	// give up when their context ends.
	ctx, cancel := context.WithCancel(bg)
	got := make(chan error, 1)
	go func() { got <- b.Record(ctx, audit.Event{TenantID: tenantA, Action: "queued", Result: audit.Success}) }()
	tctx, tcancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer tcancel()
	if err := b.Record(tctx, audit.Event{TenantID: tenantA, Action: "no room", Result: audit.Success}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Record with a deadline: err = %v, want context.DeadlineExceeded", err)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Record cancelled: err = %v, want context.Canceled", err)
	}

	close(g.release)
	if err := b.Close(bg); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	// An abandoned wait does not abandon the record: it was accepted.
	if n, _ := count(t, l, tenantA); n != 2 {
		t.Errorf("%d records stored, want 2 (held, and the one that got into the queue)", n)
	}
}

func TestBatcherCloseFlushes(t *testing.T) {
	g := newGated(openBolt(t, filepath.Join(t.TempDir(), "db")))
	defer g.Close()
	l := audit.New(audit.Options{Store: g})
	b := audit.NewBatcher(l, audit.BatchOptions{MaxBatch: 4})
	bg := context.Background()

	const n = 10
	errs := make(chan error, n)
	go func() { errs <- b.Record(bg, audit.Event{TenantID: tenantA, Action: "0", Result: audit.Success}) }()
	<-g.entered
	for i := 1; i < n; i++ {
		go func() {
			errs <- b.Record(bg, audit.Event{TenantID: tenantB, Action: fmt.Sprint(i), Result: audit.Success})
		}()
	}
	time.Sleep(100 * time.Millisecond) // let the nine queue behind the held transaction
	closed := make(chan error, 1)
	go func() { closed <- b.Close(bg) }()

	// Close waits for the queued events.
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close while a transaction is held: err = %v, want context.DeadlineExceeded", err)
	}
	cancel()
	close(g.release)
	if err := <-closed; err != nil {
		t.Fatalf("Close err = %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Record err = %v", err)
		}
	}
	a, _ := count(t, l, tenantA)
	bn, _ := count(t, l, tenantB)
	if a+bn != n {
		t.Errorf("%d records after Close, want %d", a+bn, n)
	}
	if err := b.Record(bg, audit.Event{TenantID: tenantA, Action: "late", Result: audit.Success}); !errors.Is(err, audit.ErrBatcherClosed) {
		t.Errorf("Record after Close: err = %v, want ErrBatcherClosed", err)
	}
	if err := b.Close(bg); err != nil {
		t.Errorf("second Close err = %v", err)
	}
}

// The two benchmarks below compare one fsync per record (Log.Record) with
// group commit (Batcher) under the same 32×GOMAXPROCS concurrent callers,
// on bbolt in a temporary directory.

func BenchmarkRecordSync(b *testing.B) {
	l := audit.New(audit.Options{Store: benchStore(b)})
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := l.Record(ctx, audit.Event{TenantID: tenantA, Action: "keys/unwrap/action", Target: "k", Result: audit.Success}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkBatcherParallel(b *testing.B) {
	l := audit.New(audit.Options{Store: benchStore(b)})
	bt := audit.NewBatcher(l, audit.BatchOptions{})
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := bt.Record(ctx, audit.Event{TenantID: tenantA, Action: "keys/unwrap/action", Target: "k", Result: audit.Success}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if err := bt.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	if s := bt.Stats(); s.Batches > 0 {
		b.ReportMetric(float64(s.Events)/float64(s.Batches), "events/txn")
	}
}

func benchStore(b *testing.B) storage.Backend {
	st := openBolt(b, filepath.Join(b.TempDir(), "db"))
	b.Cleanup(func() { st.Close() })
	return st
}
