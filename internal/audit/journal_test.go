package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/barrier"
	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// env is the server's arrangement in small: a bolt file under a barrier,
// which is both the audit log's store and the journal's sealer.
type env struct {
	dir     string
	barrier *barrier.Barrier
	log     *audit.Log
}

func openEnv(t testing.TB, dir string) *env {
	t.Helper()
	inner := openBolt(t, filepath.Join(dir, "data.db"))
	sealer, err := barrier.LoadOrCreateKeyFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := barrier.Open(context.Background(), inner, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = b.Close() // closes inner too
		_ = sealer.Close()
	})
	return &env{dir: dir, barrier: b, log: audit.New(audit.Options{Store: b})}
}

func (e *env) journal() string { return filepath.Join(e.dir, "journal") }

// opts are the options of a journaled Batcher whose drainer waits period
// before it moves records on its own.
func (e *env) opts(period time.Duration) audit.BatchOptions {
	return audit.WithDrainPeriod(audit.BatchOptions{Journal: e.journal(), Sealer: e.barrier}, period)
}

// segments returns the segment files of a journal directory, oldest first.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// journalFiles returns the names of the files in a journal directory
// other than its lock: segments and the spare the next one is made of.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		if de.Name() != "LOCK" {
			names = append(names, de.Name())
		}
	}
	return names
}

// copyJournal copies the journal's files, which is what a process killed
// at this moment leaves behind.
func copyJournal(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range journalFiles(t, from) {
		p := filepath.Join(from, n)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, filepath.Base(p)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// actions lists every record of tenant and counts each action; a record
// id seen twice is an error.
func actions(t *testing.T, l *audit.Log, tenant string) map[string]int {
	t.Helper()
	got, ids, tok := map[string]int{}, map[string]bool{}, ""
	for {
		p, err := l.List(t.Context(), tenant, tok, 0)
		if err != nil {
			t.Fatalf("List err = %v", err)
		}
		for _, ev := range p.Events {
			if ids[ev.ID] {
				t.Errorf("record id %s listed twice", ev.ID)
			}
			ids[ev.ID] = true
			got[ev.Action]++
		}
		if p.Next == "" {
			return got
		}
		tok = p.Next
	}
}

// wantActions checks that exactly the actions of want are listed, once each.
func wantActions(t *testing.T, got map[string]int, want []string) {
	t.Helper()
	for _, a := range want {
		if got[a] != 1 {
			t.Errorf("action %s listed %d times, want once", a, got[a])
		}
	}
	if n := len(got); n != len(want) {
		t.Errorf("%d distinct actions listed, want %d", n, len(want))
	}
}

func record(t *testing.T, b *audit.Batcher, action string) {
	t.Helper()
	if err := b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: action, Result: audit.Success}); err != nil {
		t.Fatalf("Record(%s) err = %v", action, err)
	}
}

// recordConcurrently records workers×each events and returns their actions.
func recordConcurrently(t *testing.T, b *audit.Batcher, prefix string, workers, each int) []string {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want []string
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				a := fmt.Sprintf("%s/w%d/%d", prefix, w, i)
				if err := b.Record(context.Background(), audit.Event{TenantID: tenantA, Action: a, Result: audit.Success}); err != nil {
					t.Errorf("Record(%s) err = %v", a, err)
					continue
				}
				mu.Lock()
				want = append(want, a)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return want
}

// gatedSealer holds the first Seal until release is closed, so that the
// events recorded meanwhile queue for the next batch; and fails while fail
// is set.
type gatedSealer struct {
	audit.Sealer
	calls   atomic.Int64
	entered chan struct{}
	release chan struct{}
	fail    atomic.Bool
}

var errSealerDown = errkind.New(errkind.Unavailable, "sealer down")

func (g *gatedSealer) Seal(aad, plaintext []byte) ([]byte, error) {
	if g.calls.Add(1) == 1 && g.entered != nil {
		close(g.entered)
		<-g.release
	}
	if g.fail.Load() {
		return nil, errSealerDown
	}
	return g.Sealer.Seal(aad, plaintext)
}

// failingUpdates is a store whose writes all fail, so that nothing
// leaves the journal.
type failingUpdates struct{ storage.Backend }

var errStoreDown = errkind.New(errkind.Unavailable, "store down")

func (failingUpdates) Update(context.Context, func(storage.Tx) error) error { return errStoreDown }

func TestJournalGroupCommit(t *testing.T) {
	e := openEnv(t, t.TempDir())
	gate := &gatedSealer{Sealer: e.barrier, entered: make(chan struct{}), release: make(chan struct{})}
	b := audit.NewBatcher(e.log, audit.BatchOptions{Journal: e.journal(), Sealer: gate})

	first := make(chan error, 1)
	go func() {
		first <- b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: "first", Result: audit.Success})
	}()
	<-gate.entered // the writer is busy with the first batch: the rest queue
	done := make(chan []string)
	go func() { done <- recordConcurrently(t, b, "group", 64, 10) }()
	time.Sleep(50 * time.Millisecond)
	close(gate.release)
	if err := <-first; err != nil {
		t.Fatalf("Record(first) err = %v", err)
	}
	want := append(<-done, "first")

	s := b.Stats()
	t.Logf("%d events in %d journal frames", s.Events, s.Batches)
	if s.Events != uint64(len(want)) || s.Batches >= s.Events {
		t.Errorf("Stats() = %+v, want %d events in fewer frames", s, len(want))
	}
	wantActions(t, actions(t, e.log, tenantA), want)
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	if segs := segments(t, e.journal()); len(segs) != 0 {
		t.Errorf("after Close the journal holds %v, want no segment", segs)
	}
}

func TestJournalReplayAfterCrash(t *testing.T) {
	tests := []struct {
		name    string
		drained bool // the drainer had moved every record before the crash
	}{
		{"never drained", false},
		{"drained, segment not yet deleted", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := openEnv(t, t.TempDir())
			var st storage.Backend = failingUpdates{e.barrier}
			if tc.drained {
				st = e.barrier
			}
			l1 := audit.New(audit.Options{Store: st})
			b1 := audit.NewBatcher(l1, e.opts(time.Hour))
			want := recordConcurrently(t, b1, "crash", 10, 5)
			plain := audit.New(audit.Options{Store: e.barrier}) // sees the store only
			if tc.drained {
				wantActions(t, actions(t, l1, tenantA), want) // List forces the drain
			} else if n, _ := count(t, plain, tenantA); n != 0 {
				t.Fatalf("%d records reached the store through failing writes", n)
			}

			crashed := filepath.Join(e.dir, "crashed")
			copyJournal(t, e.journal(), crashed)
			err := b1.Close(t.Context())
			if tc.drained && err != nil {
				t.Errorf("Close err = %v", err)
			}
			if !tc.drained && (!errors.Is(err, errStoreDown) || !strings.Contains(err.Error(), "stay in the journal")) {
				t.Errorf("Close with a failing store err = %v, want errStoreDown saying the records stay in the journal", err)
			}

			l2 := audit.New(audit.Options{Store: e.barrier})
			b2 := audit.NewBatcher(l2, audit.BatchOptions{Journal: crashed, Sealer: e.barrier})
			wantActions(t, actions(t, l2, tenantA), want)
			if err := b2.Close(t.Context()); err != nil {
				t.Fatalf("Close after replay err = %v", err)
			}
			wantActions(t, actions(t, plain, tenantA), want)
			if segs := segments(t, crashed); len(segs) != 0 {
				t.Errorf("after Close the journal holds %v, want no segment", segs)
			}
		})
	}
}

// tornJournal records k events one batch each and returns the segment's
// name, its bytes up to the last frame, its bytes as written (with the
// zeros of its preallocation after the last frame), and the end of its
// frames after each batch (so frame i spans sizes[i-1]..sizes[i], and
// frame 0 starts after the segment header).
func tornJournal(t *testing.T, e *env, k int) (name string, data, file []byte, sizes []int64) {
	t.Helper()
	b := audit.NewBatcher(e.log, e.opts(time.Hour))
	for i := range k {
		record(t, b, fmt.Sprintf("torn/%d", i))
		if segs := segments(t, e.journal()); len(segs) != 1 {
			t.Fatalf("journal holds %v, want one segment", segs)
		}
		sizes = append(sizes, audit.JournalEnd(b))
	}
	seg := segments(t, e.journal())[0]
	file, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(file)) <= sizes[k-1] || !bytes.Equal(file[sizes[k-1]:], make([]byte, len(file)-int(sizes[k-1]))) {
		t.Fatalf("segment of %d bytes with frames up to %d: want the rest preallocated with zeros", len(file), sizes[k-1])
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(seg), file[:sizes[k-1]], file, sizes
}

// reopen writes files into a fresh journal directory, opens a Batcher on
// it over a fresh store, and returns the Batcher and its Log.
func reopen(t *testing.T, e *env, files map[string][]byte) (*audit.Batcher, *audit.Log, string) {
	t.Helper()
	dir := t.TempDir()
	jd := filepath.Join(dir, "journal")
	if err := os.Mkdir(jd, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(jd, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st := openBolt(t, filepath.Join(dir, "db"))
	t.Cleanup(func() { st.Close() })
	l := audit.New(audit.Options{Store: st})
	return audit.NewBatcher(l, audit.BatchOptions{Journal: jd, Sealer: e.barrier}), l, jd
}

func tornActions(n int) []string {
	var a []string
	for i := range n {
		a = append(a, fmt.Sprintf("torn/%d", i))
	}
	return a
}

func TestJournalSegments(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, audit.WithSegmentSize(e.opts(time.Hour), 2048))
	want := recordConcurrently(t, b, "seg", 4, 25)
	if n := len(segments(t, e.journal())); n < 4 {
		t.Fatalf("%d segments after %d records in segments of 2 KiB, want several", n, len(want))
	}
	crashed := filepath.Join(e.dir, "crashed")
	copyJournal(t, e.journal(), crashed)

	wantActions(t, actions(t, e.log, tenantA), want)
	if segs := segments(t, e.journal()); len(segs) != 1 {
		t.Errorf("after a full drain the journal holds %v, want only the segment being appended to", segs)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Replay reads across segments, into a store that has none of it.
	files := map[string][]byte{}
	for _, p := range segments(t, crashed) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = b
	}
	r, l, jd := reopen(t, e, files)
	wantActions(t, actions(t, l, tenantA), want)
	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if names := journalFiles(t, jd); len(names) != 0 {
		t.Errorf("after Close the journal holds %v, want nothing but its lock", names)
	}
}

func TestJournalTornTail(t *testing.T) {
	e := openEnv(t, t.TempDir())
	const k = 4
	name, data, file, sizes := tornJournal(t, e, k)
	lastFrame := sizes[k-2]

	// Every cut inside the last frame leaves the k-1 acknowledged before.
	for cut := lastFrame; cut < sizes[k-1]; cut++ {
		b, l, _ := reopen(t, e, map[string][]byte{name: data[:cut]})
		got := actions(t, l, tenantA)
		if err := b.Close(t.Context()); err != nil {
			t.Fatalf("cut at %d: Close err = %v", cut, err)
		}
		if t.Failed() {
			t.Fatalf("cut at %d of a %d-byte last frame at %d", cut, sizes[k-1]-lastFrame, lastFrame)
		}
		wantActions(t, got, tornActions(k-1))
	}

	zeroed := bytes.Clone(data)
	clear(zeroed[lastFrame:])
	tornInPlace := bytes.Clone(file)
	clear(tornInPlace[(lastFrame+sizes[k-1])/2 : sizes[k-1]])
	flipped := bytes.Clone(data)
	flipped[(lastFrame+sizes[k-1])/2] ^= 0x10
	tests := []struct {
		name  string
		files map[string][]byte
		want  int // records listed
	}{
		// The file grew but the data never reached the disk.
		{"last frame zeroed", map[string][]byte{name: zeroed}, k - 1},
		// Indistinguishable from a torn write: nothing comes after it.
		{"last frame damaged", map[string][]byte{name: flipped}, k - 1},
		{"zeros after the last frame", map[string][]byte{name: append(bytes.Clone(data), make([]byte, 4096)...)}, k},
		// The newest segment as the writer leaves it: frames, then zeros.
		{"the preallocated segment as written", map[string][]byte{name: file}, k},
		{"a frame torn in the preallocated segment", map[string][]byte{name: tornInPlace}, k - 1},
		{"a segment created but not yet written", map[string][]byte{name: data, "00000000000000ff.seg": []byte("CKAJ\x01\x00")}, k},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, l, jd := reopen(t, e, tc.files)
			wantActions(t, actions(t, l, tenantA), tornActions(tc.want))
			// The journal goes on working after the repair.
			record(t, b, "after")
			if err := b.Close(t.Context()); err != nil {
				t.Fatalf("Close err = %v", err)
			}
			if segs := segments(t, jd); len(segs) != 0 {
				t.Errorf("after Close the journal holds %v, want no segment", segs)
			}
		})
	}
}

func TestJournalCorruptionIsRefused(t *testing.T) {
	e := openEnv(t, t.TempDir())
	const k = 4
	name, data, file, sizes := tornJournal(t, e, k)
	flip := func(i int64) []byte { d := bytes.Clone(data); d[i] ^= 0x01; return d }
	const segHeader, frameHeader = 16, 12
	second := append([]byte("CKAJ\x01\x00\x00\x00"), binary.BigEndian.AppendUint64(nil, 2)...) // the header of a valid, empty segment 2
	tests := []struct {
		name  string
		files map[string][]byte
		file  string // the damaged segment
		off   int64  // where the damage is reported
	}{
		{"payload of an earlier frame", map[string][]byte{name: flip(sizes[0] + frameHeader + 5)}, name, sizes[0]},
		{"length of an earlier frame", map[string][]byte{name: flip(sizes[0] + 3)}, name, sizes[0]},
		{"header checksum of the first frame", map[string][]byte{name: flip(segHeader + 8)}, name, segHeader},
		{"segment header", map[string][]byte{name: flip(0)}, name, 0},
		{"torn tail in an older segment", map[string][]byte{name: data[:sizes[k-1]-5], "0000000000000002.seg": second}, name, sizes[k-2]},
		// Appends move on only after cutting a segment to its last frame.
		{"zeros after the frames of an older segment", map[string][]byte{name: file, "0000000000000002.seg": second}, name, sizes[k-1]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, jd := reopen(t, e, tc.files)
			err := b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: "x", Result: audit.Success})
			if !errors.Is(err, audit.ErrJournalCorrupt) {
				t.Fatalf("Record err = %v, want ErrJournalCorrupt", err)
			}
			msg := err.Error()
			for _, want := range []string{filepath.Join(jd, tc.file), fmt.Sprintf("at offset %d ", tc.off), "move it out of"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Record err = %q, want it to say %q", msg, want)
				}
			}
			if cerr := b.Close(t.Context()); !errors.Is(cerr, audit.ErrJournalCorrupt) {
				t.Errorf("Close err = %v, want ErrJournalCorrupt", cerr)
			}
			for n, want := range tc.files {
				if got, _ := os.ReadFile(filepath.Join(jd, n)); !bytes.Equal(got, want) {
					t.Errorf("segment %s was changed (%d bytes, was %d); a refused journal must stay as found", n, len(got), len(want))
				}
			}
		})
	}
}

func TestJournalHoldsNoPlaintext(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, e.opts(time.Hour))
	const canary = "PLAINTEXT-CANARY"
	for i := range 20 {
		ev := audit.Event{TenantID: tenantA, Actor: audit.Actor{Type: "user", Name: canary + "-actor@contoso"},
			Action: "vault/unwrapKey", Target: fmt.Sprintf("%s-vault/key%d", canary, i), Result: audit.Failure, Reason: canary + " reason"}
		if err := b.Record(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	segs := segments(t, e.journal())
	var raw []byte
	for _, p := range segs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	if len(raw) < 20*100 {
		t.Fatalf("the journal holds %d bytes in %v; the scan is not looking at the records", len(raw), segs)
	}
	for _, s := range []string{canary, tenantA, "vault/unwrapKey", `"result"`} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the journal holds %q in the clear", s)
		}
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestJournalCloseDrains(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, e.opts(time.Hour))
	want := recordConcurrently(t, b, "close", 8, 8)
	plain := audit.New(audit.Options{Store: e.barrier}) // does not wait for the journal
	if n, _ := count(t, plain, tenantA); n != 0 {
		t.Fatalf("%d records in the store before any drain; the records did not go through the journal", n)
	}
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close err = %v", err)
	}
	wantActions(t, actions(t, plain, tenantA), want)
	if names := journalFiles(t, e.journal()); len(names) != 0 {
		t.Errorf("after Close the journal holds %v, want nothing but its lock (no segment, no spare)", names)
	}
	if err := b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: "late", Result: audit.Success}); !errors.Is(err, audit.ErrBatcherClosed) {
		t.Errorf("Record after Close err = %v, want ErrBatcherClosed", err)
	}
}

func TestJournalDrainsOnItsOwn(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, e.opts(10*time.Millisecond))
	defer b.Close(t.Context())
	want := recordConcurrently(t, b, "timer", 4, 4)
	plain := audit.New(audit.Options{Store: e.barrier})
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, _ := count(t, plain, tenantA)
		if n == len(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records in the store after 10 s; the drainer's timer did not move them", n, len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJournalListSeesAcknowledged(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, e.opts(time.Hour)) // only List makes the drainer run
	defer b.Close(t.Context())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				a := fmt.Sprintf("list/w%d/%d", w, i)
				if err := b.Record(context.Background(), audit.Event{TenantID: tenantA, Action: a, Result: audit.Success}); err != nil {
					t.Errorf("Record err = %v", err)
					return
				}
				p, err := e.log.List(context.Background(), tenantA, "", 0)
				if err != nil {
					t.Errorf("List err = %v", err)
					return
				}
				found := false
				for _, ev := range p.Events {
					found = found || ev.Action == a
				}
				if !found {
					t.Errorf("List after Record(%s) returned does not show it", a)
				}
			}
		})
	}
	wg.Wait()

	// List is bounded by its context while the drain it waits for fails.
	failing := audit.New(audit.Options{Store: failingUpdates{e.barrier}})
	fb := audit.NewBatcher(failing, audit.WithDrainPeriod(audit.BatchOptions{Journal: filepath.Join(e.dir, "j2"), Sealer: e.barrier}, time.Hour))
	record(t, fb, "stuck")
	if _, err := failing.List(t.Context(), tenantA, "", 0); !errors.Is(err, errStoreDown) {
		t.Errorf("List while the store fails err = %v, want errStoreDown", err)
	}
	if err := fb.Close(t.Context()); !errors.Is(err, errStoreDown) {
		t.Errorf("Close while the store fails err = %v, want errStoreDown", err)
	}
}

func TestJournalSealFailureFailsTheBatchOnly(t *testing.T) {
	e := openEnv(t, t.TempDir())
	s := &gatedSealer{Sealer: e.barrier}
	b := audit.NewBatcher(e.log, audit.BatchOptions{Journal: e.journal(), Sealer: s})
	s.fail.Store(true)
	if err := b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: "lost", Result: audit.Success}); !errors.Is(err, errSealerDown) {
		t.Errorf("Record while sealing fails err = %v, want errSealerDown", err)
	}
	s.fail.Store(false)
	record(t, b, "kept")
	wantActions(t, actions(t, e.log, tenantA), []string{"kept"})
	if err := b.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestJournalOpenErrors(t *testing.T) {
	e := openEnv(t, t.TempDir())
	held := audit.NewBatcher(e.log, e.opts(time.Hour))
	defer held.Close(t.Context())
	file := filepath.Join(e.dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		o    audit.BatchOptions
		kind errkind.Kind
		msg  string
	}{
		{"no sealer", audit.BatchOptions{Journal: t.TempDir()}, errkind.Internal, "needs a Sealer"},
		{"in use", audit.BatchOptions{Journal: e.journal(), Sealer: e.barrier}, errkind.Unavailable, "in use by another"},
		{"not a directory", audit.BatchOptions{Journal: file, Sealer: e.barrier}, errkind.Internal, "cannot create the journal directory"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := audit.NewBatcher(e.log, tc.o)
			err := b.Record(t.Context(), audit.Event{TenantID: tenantA, Action: "x", Result: audit.Success})
			if errkind.KindOf(err) != tc.kind || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Errorf("Record err = %v (kind %v), want kind %v saying %q", err, errkind.KindOf(err), tc.kind, tc.msg)
			}
			if cerr := b.Close(t.Context()); cerr != err {
				t.Errorf("Close err = %v, want the open error %v", cerr, err)
			}
		})
	}
	record(t, held, "still fine")
}

func TestRecordTooLarge(t *testing.T) {
	e := openEnv(t, t.TempDir())
	b := audit.NewBatcher(e.log, e.opts(time.Hour))
	defer b.Close(t.Context())
	ev := audit.Event{TenantID: tenantA, Action: "x", Target: strings.Repeat("k", audit.MaxRecordLen), Result: audit.Success}
	if err := e.log.Record(t.Context(), ev); errkind.KindOf(err) != errkind.TooLarge {
		t.Errorf("Log.Record(%d-byte target) err = %v, want TooLarge", len(ev.Target), err)
	}
	if err := b.Record(t.Context(), ev); errkind.KindOf(err) != errkind.TooLarge {
		t.Errorf("Batcher.Record(%d-byte target) err = %v, want TooLarge", len(ev.Target), err)
	}
	ev.Target = strings.Repeat("k", audit.MaxRecordLen-1000)
	if err := b.Record(t.Context(), ev); err != nil {
		t.Errorf("Batcher.Record(%d-byte target) err = %v", len(ev.Target), err)
	}
}

// crashChildEnv makes TestJournalSurvivesKill the child process: it
// records in the journal named by the variable until it is killed.
const crashChildEnv = "CK_AUDIT_JOURNAL_CRASH_CHILD"

// TestJournalSurvivesKill runs the test binary again as a child that
// records with 16 concurrent callers and prints each action once Record
// has returned it acknowledged, kills it with SIGKILL in mid-flight, and
// checks that every printed action is in the store after reopening,
// exactly once.
func TestJournalSurvivesKill(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestJournalSurvivesKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // no orphan if the test ends early
	acked := map[string]bool{}
	sc := bufio.NewScanner(out)
	start := time.Now()
	// Long enough for the drainer to have moved some records (its period
	// is 200 ms) and to be in the middle of moving others.
	for sc.Scan() && (len(acked) < 3000 || time.Since(start) < 700*time.Millisecond) {
		if a, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked[a] = true
		}
	}
	_ = cmd.Process.Kill() // fails only if the child has died already, which the count below reports
	// Lines written before the kill are acknowledged records too.
	for sc.Scan() {
		if a, ok := strings.CutPrefix(sc.Text(), "acked "); ok {
			acked[a] = true
		}
	}
	_ = cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("the child acknowledged %d records before it was killed, want 3000; its stderr:\n%s", len(acked), stderr.String())
	}

	e := openEnv(t, dir)
	b := audit.NewBatcher(e.log, e.opts(time.Hour))
	got := actions(t, e.log, tenantA)
	missing := 0
	for a := range acked {
		if got[a] != 1 {
			missing++
			if missing <= 5 {
				t.Errorf("acknowledged action %s is listed %d times after the crash, want once", a, got[a])
			}
		}
	}
	for a, n := range got {
		if n != 1 {
			t.Errorf("action %s listed %d times, want once", a, n)
		}
	}
	t.Logf("%d records acknowledged before SIGKILL, %d in the store after replay (%d acknowledged ones missing)", len(acked), len(got), missing)
	if err := b.Close(t.Context()); err != nil {
		t.Fatalf("Close err = %v", err)
	}
}

func crashChild(t *testing.T, dir string) {
	e := openEnv(t, dir)
	// Small segments, so that segments are started and deleted while it runs.
	b := audit.NewBatcher(e.log, audit.WithSegmentSize(audit.BatchOptions{Journal: e.journal(), Sealer: e.barrier}, 64<<10))
	var mu sync.Mutex
	for w := range 16 {
		go func() {
			for i := 0; ; i++ {
				a := fmt.Sprintf("kill/w%d/%d", w, i)
				if err := b.Record(context.Background(), audit.Event{TenantID: tenantA, Action: a, Result: audit.Success}); err != nil {
					fmt.Fprintf(os.Stderr, "Record(%s) err = %v\n", a, err)
					os.Exit(2)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "acked %s\n", a) // one write: in the pipe before Record's next call
				mu.Unlock()
			}
		}()
	}
	select {} // until killed
}

// BenchmarkBatcher compares the two ways a Batcher makes a batch durable,
// a store transaction (bbolt: two fdatasyncs and copy-on-write pages) and
// a journal frame (one write, one fdatasync), with 1 and 64 concurrent
// recorders, on the server's stack: bolt under the barrier, in a
// temporary directory. The drainer's transactions run during the timed
// part, as they do in the server; only the last one (at Close) is left
// out.
func BenchmarkBatcher(b *testing.B) {
	for _, mode := range []string{"store", "journal"} {
		for _, recorders := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/recorders=%d", mode, recorders), func(b *testing.B) {
				e := openEnv(b, b.TempDir())
				var o audit.BatchOptions
				if mode == "journal" {
					o = audit.BatchOptions{Journal: e.journal(), Sealer: e.barrier}
				}
				bt := audit.NewBatcher(e.log, o)
				ev := audit.Event{TenantID: tenantA, Actor: audit.Actor{Type: "servicePrincipal", ID: tenantB, Name: "00000002-0000-0ff1-ce00-000000000000"},
					Action: "vault/unwrapKey", Target: "contosoekoakv01/exo-root/0123456789abcdef0123456789abcdef", Result: audit.Success}
				var next atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range recorders {
					wg.Go(func() {
						ctx := context.Background()
						for next.Add(1) <= int64(b.N) {
							if err := bt.Record(ctx, ev); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				if err := bt.Close(context.Background()); err != nil {
					b.Fatal(err)
				}
				if s := bt.Stats(); s.Batches > 0 {
					b.ReportMetric(float64(s.Events)/float64(s.Batches), "events/batch")
				}
			})
		}
	}
}
