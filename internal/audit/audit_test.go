package audit_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/customerkey/customerkey/internal/audit"
	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
)

func newLog(t *testing.T, now func() time.Time) (*audit.Log, storage.Backend) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return audit.New(audit.Options{Store: st, Now: now}), st
}

const tenantA, tenantB = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"

func TestPagingInOrder(t *testing.T) {
	// A frozen clock: ids must still be unique and ordered.
	frozen := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	l, _ := newLog(t, func() time.Time { return frozen })
	ctx := audit.WithMeta(context.Background(), audit.Meta{RequestID: "req-1", ClientIP: "127.0.0.1"})
	for i := range 25 {
		if err := l.Record(ctx, audit.Event{TenantID: tenantA, Action: fmt.Sprintf("a%02d", i), Result: audit.Success}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Record(ctx, audit.Event{TenantID: tenantB, Action: "other", Result: audit.Success}); err != nil {
		t.Fatal(err)
	}
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		p, err := l.List(ctx, tenantA, token, 10)
		if err != nil {
			t.Fatalf("List(page %d) err = %v", pages, err)
		}
		for _, ev := range p.Events {
			got = append(got, ev.Action)
			if ev.RequestID != "req-1" || ev.ClientIP != "127.0.0.1" {
				t.Errorf("event %s meta = %q/%q, want req-1/127.0.0.1", ev.Action, ev.RequestID, ev.ClientIP)
			}
		}
		if p.Next == "" {
			if pages != 2 {
				t.Errorf("pages = %d, want 3 pages of 10, 10, 5", pages+1)
			}
			break
		}
		token = p.Next
	}
	if len(got) != 25 {
		t.Fatalf("listed %d events of tenant A, want 25", len(got))
	}
	for i, a := range got {
		if want := fmt.Sprintf("a%02d", i); a != want {
			t.Fatalf("event %d = %s, want %s (records must come oldest first)", i, a, want)
		}
	}
}

func TestBadInput(t *testing.T) {
	l, _ := newLog(t, nil)
	ctx := context.Background()
	for _, tok := range []string{"x", "../../directory/tenant", "0000000000000000001-zzzzzzzz"} {
		if _, err := l.List(ctx, tenantA, tok, 10); !errors.Is(err, audit.ErrBadCursor) {
			t.Errorf("List(token %q) err = %v, want ErrBadCursor", tok, err)
		}
	}
	for _, tid := range []string{"", "a/b"} {
		if err := l.Record(ctx, audit.Event{TenantID: tid, Action: "x"}); err == nil {
			t.Errorf("Record(tenant %q) err = nil, want an error", tid)
		}
	}
}

func TestRecordTxRollsBackWithTheChange(t *testing.T) {
	l, st := newLog(t, nil)
	ctx := context.Background()
	boom := errors.New("change failed")
	err := st.Update(ctx, func(tx storage.Tx) error {
		if err := l.RecordTx(ctx, tx, audit.Event{TenantID: tenantA, Action: "x", Result: audit.Success}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v", err)
	}
	if p, _ := l.List(ctx, tenantA, "", 0); len(p.Events) != 0 {
		t.Errorf("a rolled-back change left %d audit records", len(p.Events))
	}
}
