// Package audit owns the append-only audit log: who did what to which
// target, when, with what result, under which request id. Records are kept
// per tenant under the storage prefix "audit/" and are never updated or
// deleted through this package. Domain packages record inside their own
// transaction (RecordTx), so a change and its record commit together.
// Records that need no such transaction go through a Batcher (group
// commit), optionally with an append-only journal of encrypted segment
// files that makes each batch durable with one fdatasync and is drained
// into the store in the background (journal.go, drain.go).
// It imports errkind and storage (same level) only.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Result is the outcome of an audited action.
type Result string

// Results.
const (
	Success Result = "success"
	Failure Result = "failure" // the request was wrong or could not be done
	Denied  Result = "denied"  // authentication or authorization refused it
)

// Actor is who acted.
type Actor struct {
	// Type is "user", "servicePrincipal", "operator" or "system".
	Type string `json:"type"`
	// ID is the object id of the user or service principal, or a name for system actors.
	ID string `json:"id,omitempty"`
	// Name is the user principal name or the application id.
	Name string `json:"name,omitempty"`
	// TenantID is the actor's home tenant when it differs from the record's tenant.
	TenantID string `json:"tenantId,omitempty"`
}

// Event is one audit record.
type Event struct {
	ID        string    `json:"id"`
	Time      time.Time `json:"time"`
	TenantID  string    `json:"tenantId"`
	Actor     Actor     `json:"actor"`
	Action    string    `json:"action"`
	Target    string    `json:"target,omitempty"`
	Result    Result    `json:"result"`
	Reason    string    `json:"reason,omitempty"`
	RequestID string    `json:"requestId,omitempty"`
	ClientIP  string    `json:"clientIp,omitempty"`
}

const prefix = "audit/"

// Log writes and reads audit records.
type Log struct {
	store storage.Backend
	now   func() time.Time
	rand  io.Reader

	mu   sync.Mutex
	last int64 // last timestamp used, so ids stay ordered within a process

	dmu      sync.Mutex
	drainers []*drainer // journals of open Batchers, which List waits for
}

// Options configures a Log.
type Options struct {
	Store storage.Backend
	Now   func() time.Time // default time.Now
	Rand  io.Reader        // default crypto/rand
}

// New returns a Log.
func New(o Options) *Log {
	l := &Log{store: o.Store, now: o.Now, rand: o.Rand}
	if l.now == nil {
		l.now = time.Now
	}
	if l.rand == nil {
		l.rand = rand.Reader
	}
	return l
}

// MaxRecordLen bounds an encoded record. Records are small (ids, names and
// a reason); the bound keeps a batch, and a journal frame, bounded too.
const MaxRecordLen = 64 << 10

// Record appends ev in its own transaction.
func (l *Log) Record(ctx context.Context, ev Event) error {
	return l.store.Update(ctx, func(tx storage.Tx) error { return l.RecordTx(ctx, tx, ev) })
}

// Meta is what the transport knows of the request being served.
type Meta struct {
	RequestID string
	ClientIP  string
}

type metaKey struct{}

// WithJobRequestID returns ctx with a request id for background work that
// no request started (a rewrap pass, a scheduled purge), so that the records
// it makes can still be told apart and correlated: job, a dash and random
// hex. A ctx that already names a request is returned unchanged.
func WithJobRequestID(ctx context.Context, job string) context.Context {
	m := MetaFrom(ctx)
	if m.RequestID != "" {
		return ctx
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	m.RequestID = job + "-" + hex.EncodeToString(b[:])
	return WithMeta(ctx, m)
}

// WithMeta returns ctx carrying m, so that records made while serving the
// request name it without every layer passing it on.
func WithMeta(ctx context.Context, m Meta) context.Context {
	return context.WithValue(ctx, metaKey{}, m)
}

// MetaFrom returns the Meta carried by ctx, if any.
func MetaFrom(ctx context.Context) Meta {
	m, _ := ctx.Value(metaKey{}).(Meta)
	return m
}

// RecordTx appends ev inside tx, so that it commits with the change it
// describes. It fills ID and Time when they are empty, and RequestID and
// ClientIP from ctx.
func (l *Log) RecordTx(ctx context.Context, tx storage.Tx, ev Event) error {
	if m := MetaFrom(ctx); ev.RequestID == "" {
		ev.RequestID, ev.ClientIP = m.RequestID, m.ClientIP
	}
	if ev.TenantID == "" || strings.Contains(ev.TenantID, "/") {
		return fmt.Errorf("audit: record without a valid tenant: %q", ev.TenantID)
	}
	if ev.Time.IsZero() {
		ev.Time = l.now().UTC()
	}
	if ev.ID == "" {
		id, err := l.newID(ev.Time)
		if err != nil {
			return err
		}
		ev.ID = id
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("audit: encoding record: %w", err)
	}
	if len(b) > MaxRecordLen {
		return errkind.Errorf(errkind.TooLarge, "audit: a record of %d bytes exceeds the limit of %d; shorten its target or reason", len(b), MaxRecordLen)
	}
	_, err = tx.Put(prefix+ev.TenantID+"/"+ev.ID, b, storage.MustNotExist)
	return err
}

// newID returns a time-ordered id: 19 decimal digits of Unix nanoseconds
// (never repeating within this process) and 8 random hex digits, so that
// records of several nodes interleave by time and never collide.
func (l *Log) newID(t time.Time) (string, error) {
	l.mu.Lock()
	n := t.UnixNano()
	if n <= l.last {
		n = l.last + 1
	}
	l.last = n
	l.mu.Unlock()
	var r [4]byte
	if _, err := io.ReadFull(l.rand, r[:]); err != nil {
		return "", fmt.Errorf("audit: reading random: %w", err)
	}
	return fmt.Sprintf("%019d", n) + "-" + hex.EncodeToString(r[:]), nil
}

// ErrBadCursor is returned for a page token this package did not issue.
var ErrBadCursor = errkind.New(errkind.Invalid, "the page token is not valid; start again without one")

// MaxPage is the largest page List returns.
const MaxPage = 1000

// Page is one page of records, oldest first, and the token of the next.
type Page struct {
	Events []Event `json:"events"`
	Next   string  `json:"next,omitempty"`
}

// List returns up to limit records of one tenant after the page token
// (empty for the first page). It first waits until the journals of open
// Batchers have moved every record they acknowledged into the store, so
// that a record is listed once Record has returned.
func (l *Log) List(ctx context.Context, tenantID, pageToken string, limit int) (Page, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	if pageToken != "" && !validID(pageToken) {
		return Page{}, ErrBadCursor
	}
	l.dmu.Lock()
	ds := slices.Clone(l.drainers)
	l.dmu.Unlock()
	for _, d := range ds {
		if err := d.sync(ctx); err != nil {
			return Page{}, err
		}
	}
	p := prefix + tenantID + "/"
	after := ""
	if pageToken != "" {
		after = p + pageToken
	}
	var entries []storage.Entry
	err := l.store.View(ctx, func(tx storage.Tx) error {
		var err error
		entries, err = tx.List(p, after, limit+1)
		return err
	})
	if err != nil {
		return Page{}, err
	}
	var page Page
	for i, e := range entries {
		if i == limit {
			page.Next = page.Events[limit-1].ID
			break
		}
		var ev Event
		if err := json.Unmarshal(e.Value, &ev); err != nil {
			return Page{}, fmt.Errorf("audit: decoding record %s: %w", e.Key, err)
		}
		page.Events = append(page.Events, ev)
	}
	return page, nil
}

func (l *Log) addDrainer(d *drainer) {
	l.dmu.Lock()
	l.drainers = append(l.drainers, d)
	l.dmu.Unlock()
}

func (l *Log) removeDrainer(d *drainer) {
	l.dmu.Lock()
	l.drainers = slices.DeleteFunc(l.drainers, func(x *drainer) bool { return x == d })
	l.dmu.Unlock()
}

func validID(s string) bool {
	d, r, ok := strings.Cut(s, "-")
	if !ok || len(d) != 19 || len(r) != 8 {
		return false
	}
	if _, err := strconv.ParseUint(d, 10, 64); err != nil {
		return false
	}
	_, err := hex.DecodeString(r)
	return err == nil
}
