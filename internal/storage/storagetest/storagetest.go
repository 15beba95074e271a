// Package storagetest owns the conformance suite of the storage port: the
// behaviour every storage.Backend (bolt, postgres, the encryption barrier)
// must share, so that a package written against one backend runs unchanged
// on another. It imports only storage from this module and must not import
// a backend implementation: backends import it from their tests.
//
// Contract decisions the suite pins down, beyond storage.go's comments:
//   - An error returned by fn comes back from View/Update unchanged
//     (errors.Is finds it) and nothing fn wrote is kept.
//   - A panic in fn rolls the transaction back and propagates with its
//     original value; the backend stays usable afterwards. Converting a
//     panic into an error would hide bugs and let callers treat a broken
//     invariant as an ordinary failure.
//   - A context that is already done makes View and Update fail with the
//     context's error (errors.Is(err, context.Canceled)) and write nothing.
//   - List rejects a non-empty prefix or cursor that is not a valid key with
//     ErrInvalidKey; an empty prefix lists everything.
//   - A value of len 0 round-trips (nil or empty slice, either is fine).
//
// Persistence across a reopen is backend-specific and not covered here.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/customerkey/customerkey/internal/storage"
)

// Run runs the whole suite. open returns a new, empty backend for one
// subtest; it may register its own cleanup with t, and the suite also
// closes the backend when the subtest ends, so Close must tolerate a second
// call.
func Run(t *testing.T, open func(t *testing.T) storage.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend)
	}{
		{"GetMissing", testGetMissing},
		{"RoundTrip", testRoundTrip},
		{"Versions", testVersions},
		{"Create", testCreate},
		{"ConditionalPut", testConditionalPut},
		{"ConditionalDelete", testConditionalDelete},
		{"DeleteRecreate", testDeleteRecreate},
		{"ListPrefix", testListPrefix},
		{"ListPaging", testListPaging},
		{"ListEntries", testListEntries},
		{"ValueCopiedOnPut", testValueCopiedOnPut},
		{"UpdateErrorRollsBack", testUpdateErrorRollsBack},
		{"UpdatePanicRollsBack", testUpdatePanicRollsBack},
		{"ViewPanic", testViewPanic},
		{"ReadYourWrites", testReadYourWrites},
		{"ViewReadOnly", testViewReadOnly},
		{"InvalidKeys", testInvalidKeys},
		{"ValueSize", testValueSize},
		{"ConcurrentCAS", testConcurrentCAS},
		{"ContextDone", testContextDone},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := open(t)
			t.Cleanup(func() {
				if err := b.Close(); err != nil {
					t.Errorf("Close() = %v", err)
				}
			})
			tc.fn(t, b)
		})
	}
}

// entryOpts compares values by content, so that nil and an empty slice are
// equal (a backend may return either for an empty value) and large values
// are not walked element by element.
var entryOpts = cmp.Comparer(bytes.Equal)

func put(t *testing.T, b storage.Backend, key string, value []byte, ifVersion int64) int64 {
	t.Helper()
	var v int64
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		var err error
		v, err = tx.Put(key, value, ifVersion)
		return err
	})
	if err != nil {
		t.Fatalf("Put(%q, ifVersion=%d) err = %v, want nil", key, ifVersion, err)
	}
	return v
}

func tryPut(t *testing.T, b storage.Backend, key string, value []byte, ifVersion int64) (int64, error) {
	t.Helper()
	var v int64
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		var err error
		v, err = tx.Put(key, value, ifVersion)
		return err
	})
	return v, err
}

func tryDelete(t *testing.T, b storage.Backend, key string, ifVersion int64) error {
	t.Helper()
	return b.Update(t.Context(), func(tx storage.Tx) error { return tx.Delete(key, ifVersion) })
}

func get(t *testing.T, b storage.Backend, key string) storage.Entry {
	t.Helper()
	e, err := storage.Get(t.Context(), b, key)
	if err != nil {
		t.Fatalf("Get(%q) err = %v, want nil", key, err)
	}
	return e
}

func wantMissing(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	if e, err := storage.Get(t.Context(), b, key); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(%q) = %+v, %v, want ErrNotFound", key, e, err)
	}
}

func list(t *testing.T, b storage.Backend, prefix, after string, limit int) []storage.Entry {
	t.Helper()
	var got []storage.Entry
	err := b.View(t.Context(), func(tx storage.Tx) error {
		var err error
		got, err = tx.List(prefix, after, limit)
		return err
	})
	if err != nil {
		t.Fatalf("List(%q, %q, %d) err = %v, want nil", prefix, after, limit, err)
	}
	return got
}

func keys(es []storage.Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

func testGetMissing(t *testing.T, b storage.Backend) {
	wantMissing(t, b, "missing/key")
}

func testRoundTrip(t *testing.T, b storage.Backend) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name  string
		key   string
		value []byte
	}{
		{"text", "rt/text", []byte("hello")},
		{"binary", "rt/binary", []byte{0, 1, 2, 0xff, 0, 0xfe}},
		{"empty", "rt/empty", []byte{}},
		{"nil", "rt/nil", nil},
		{"1MiB", "rt/big", big},
		{"unicode key", "rt/ключ/🔑", []byte("v")},
		{"max key", strings.Repeat("k", storage.MaxKeyLen), []byte("v")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if v := put(t, b, tc.key, tc.value, storage.AnyVersion); v != 1 {
				t.Errorf("Put(%.20q) version = %d, want 1", tc.key, v)
			}
			want := storage.Entry{Key: tc.key, Value: tc.value, Version: 1}
			if diff := cmp.Diff(want, get(t, b, tc.key), entryOpts); diff != "" {
				t.Errorf("Get(%.20q) mismatch (-want +got):\n%s", tc.key, diff)
			}
		})
	}
}

func testVersions(t *testing.T, b storage.Backend) {
	const key = "ver/k"
	for want := int64(1); want <= 4; want++ {
		v := put(t, b, key, []byte(strconv.FormatInt(want, 10)), storage.AnyVersion)
		if v != want {
			t.Errorf("Put #%d version = %d, want %d", want, v, want)
		}
		if e := get(t, b, key); e.Version != want || string(e.Value) != strconv.FormatInt(want, 10) {
			t.Errorf("Get(%q) = version %d value %q, want version %d value %q", key, e.Version, e.Value, want, strconv.FormatInt(want, 10))
		}
	}
	// Versions are per key.
	if v := put(t, b, "ver/other", []byte("x"), storage.AnyVersion); v != 1 {
		t.Errorf("Put(%q) version = %d, want 1", "ver/other", v)
	}
}

func testCreate(t *testing.T, b storage.Backend) {
	const key = "create/k"
	if v := put(t, b, key, []byte("first"), storage.MustNotExist); v != 1 {
		t.Errorf("create Put(%q) version = %d, want 1", key, v)
	}
	if _, err := tryPut(t, b, key, []byte("second"), storage.MustNotExist); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("create Put(%q) on an existing key err = %v, want ErrConflict", key, err)
	}
	if e := get(t, b, key); string(e.Value) != "first" || e.Version != 1 {
		t.Errorf("after a failed create, Get(%q) = %q v%d, want %q v1", key, e.Value, e.Version, "first")
	}
}

func testConditionalPut(t *testing.T, b storage.Backend) {
	const key = "cas/k"
	put(t, b, key, []byte("v1"), storage.MustNotExist)
	put(t, b, key, []byte("v2"), storage.AnyVersion)

	tests := []struct {
		name      string
		key       string
		ifVersion int64
		want      error
	}{
		{"stale", key, 1, storage.ErrConflict},
		{"future", key, 3, storage.ErrConflict},
		{"missing key with a version", "cas/missing", 1, storage.ErrConflict},
		{"current", key, 2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tryPut(t, b, tc.key, []byte("new"), tc.ifVersion)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Put(%q, ifVersion=%d) err = %v, want %v", tc.key, tc.ifVersion, err, tc.want)
			}
			if tc.want == nil && v != tc.ifVersion+1 {
				t.Errorf("Put(%q, ifVersion=%d) version = %d, want %d", tc.key, tc.ifVersion, v, tc.ifVersion+1)
			}
		})
	}
	if e := get(t, b, key); string(e.Value) != "new" || e.Version != 3 {
		t.Errorf("Get(%q) = %q v%d, want %q v3", key, e.Value, e.Version, "new")
	}
	wantMissing(t, b, "cas/missing")
}

func testConditionalDelete(t *testing.T, b storage.Backend) {
	const key = "del/k"
	put(t, b, key, []byte("a"), storage.AnyVersion)
	put(t, b, key, []byte("b"), storage.AnyVersion) // version 2

	if err := tryDelete(t, b, key, 1); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Delete(%q, ifVersion=1) at version 2 err = %v, want ErrConflict", key, err)
	}
	if err := tryDelete(t, b, key, 3); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Delete(%q, ifVersion=3) at version 2 err = %v, want ErrConflict", key, err)
	}
	get(t, b, key) // still there
	if err := tryDelete(t, b, key, 2); err != nil {
		t.Errorf("Delete(%q, ifVersion=2) err = %v, want nil", key, err)
	}
	wantMissing(t, b, key)

	if err := tryDelete(t, b, "del/missing", storage.AnyVersion); err != nil {
		t.Errorf("Delete(%q, AnyVersion) of a missing key err = %v, want nil", "del/missing", err)
	}
	if err := tryDelete(t, b, "del/missing", 1); !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Delete(%q, ifVersion=1) of a missing key err = %v, want ErrConflict", "del/missing", err)
	}
	put(t, b, "del/any", []byte("x"), storage.AnyVersion)
	if err := tryDelete(t, b, "del/any", storage.AnyVersion); err != nil {
		t.Errorf("Delete(%q, AnyVersion) err = %v, want nil", "del/any", err)
	}
	wantMissing(t, b, "del/any")
}

func testDeleteRecreate(t *testing.T, b storage.Backend) {
	const key = "recreate/k"
	put(t, b, key, []byte("a"), storage.AnyVersion)
	put(t, b, key, []byte("b"), storage.AnyVersion)
	if err := tryDelete(t, b, key, storage.AnyVersion); err != nil {
		t.Fatalf("Delete(%q) err = %v", key, err)
	}
	if v := put(t, b, key, []byte("c"), storage.MustNotExist); v != 1 {
		t.Errorf("recreate Put(%q) version = %d, want 1", key, v)
	}
	if e := get(t, b, key); e.Version != 1 || string(e.Value) != "c" {
		t.Errorf("Get(%q) = %q v%d, want %q v1", key, e.Value, e.Version, "c")
	}
}

// listKeys covers neighbouring prefixes, bytewise order against other
// orders (case, UTF-8 above ASCII), and characters that are wildcards in
// SQL LIKE patterns or their escape.
var listKeys = []string{
	"a", "a/", "a/B", "a/a", "a/b", "a/b/c", "a/c", "a/é", "a/z", "a0", "ab", "b/x",
	"p%/x", "p_/x", "pa/x", `p\/x`, "pz/x",
}

func testListPrefix(t *testing.T, b storage.Backend) {
	for _, k := range listKeys {
		put(t, b, k, []byte("v:"+k), storage.AnyVersion)
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/", "a/B", "a/a", "a/b", "a/b/c", "a/c", "a/z", "a/é"}},
		{"a/b", []string{"a/b", "a/b/c"}},
		{"a/b/", []string{"a/b/c"}},
		{"ab", []string{"ab"}},
		{"a", []string{"a", "a/", "a/B", "a/a", "a/b", "a/b/c", "a/c", "a/z", "a/é", "a0", "ab"}},
		{"b/", []string{"b/x"}},
		{"p_/", []string{"p_/x"}},
		{"p%/", []string{"p%/x"}},
		{`p\/`, []string{`p\/x`}},
		{"c/", []string{}},
		{"", []string{"a", "a/", "a/B", "a/a", "a/b", "a/b/c", "a/c", "a/z", "a/é", "a0", "ab", "b/x",
			"p%/x", `p\/x`, "p_/x", "pa/x", "pz/x"}},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.prefix), func(t *testing.T) {
			got := keys(list(t, b, tc.prefix, "", 0))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("List(%q) keys mismatch (-want +got):\n%s", tc.prefix, diff)
			}
		})
	}
}

func testListPaging(t *testing.T, b storage.Backend) {
	var all []string
	for i := range 10 {
		k := fmt.Sprintf("page/%02d", i)
		all = append(all, k)
		put(t, b, k, []byte{byte(i)}, storage.AnyVersion)
	}
	put(t, b, "page0", []byte("neighbour"), storage.AnyVersion)
	put(t, b, "pag", []byte("neighbour"), storage.AnyVersion)

	t.Run("pages of 3", func(t *testing.T) {
		var got []string
		after := ""
		for range 10 {
			page := list(t, b, "page/", after, 3)
			if len(page) > 3 {
				t.Fatalf("List(%q, %q, 3) returned %d entries, want at most 3", "page/", after, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, keys(page)...)
			after = page[len(page)-1].Key
		}
		if diff := cmp.Diff(all, got); diff != "" {
			t.Errorf("paged List keys mismatch (-want +got):\n%s", diff)
		}
	})

	tests := []struct {
		name  string
		after string
		limit int
		want  []string
	}{
		{"no limit", "", 0, all},
		{"negative limit", "", -1, all},
		{"limit above count", "", 100, all},
		{"after an existing key", "page/07", 0, all[8:]},
		{"after a key that does not exist", "page/04x", 2, all[5:7]},
		{"after sorts before the prefix", "a", 2, all[:2]},
		{"after equals the prefix", "page/", 1, all[:1]},
		{"after the last key", "page/09", 0, []string{}},
		{"after sorts beyond the prefix", "page0", 0, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keys(list(t, b, "page/", tc.after, tc.limit))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("List(%q, %q, %d) keys mismatch (-want +got):\n%s", "page/", tc.after, tc.limit, diff)
			}
		})
	}
}

func testListEntries(t *testing.T, b storage.Backend) {
	put(t, b, "le/a", []byte("a1"), storage.AnyVersion)
	put(t, b, "le/a", []byte("a2"), storage.AnyVersion)
	put(t, b, "le/b", []byte{}, storage.AnyVersion)
	put(t, b, "le/c", []byte("c1"), storage.AnyVersion)
	if err := tryDelete(t, b, "le/c", storage.AnyVersion); err != nil {
		t.Fatalf("Delete(%q) err = %v", "le/c", err)
	}
	want := []storage.Entry{
		{Key: "le/a", Value: []byte("a2"), Version: 2},
		{Key: "le/b", Value: []byte{}, Version: 1},
	}
	if diff := cmp.Diff(want, list(t, b, "le/", "", 0), entryOpts); diff != "" {
		t.Errorf("List(%q) mismatch (-want +got):\n%s", "le/", diff)
	}
}

func testValueCopiedOnPut(t *testing.T, b storage.Backend) {
	const key = "copy/k"
	value := []byte("original")
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put(key, value, storage.AnyVersion); err != nil {
			return err
		}
		copy(value, "MUTATED!")
		e, err := tx.Get(key)
		if err != nil {
			return err
		}
		if string(e.Value) != "original" {
			t.Errorf("in the same tx, Get(%q) = %q after the caller changed its slice, want %q", key, e.Value, "original")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update err = %v", err)
	}
	copy(value, "CHANGED!")
	if e := get(t, b, key); string(e.Value) != "original" {
		t.Errorf("Get(%q) = %q after the caller changed its slice, want %q", key, e.Value, "original")
	}
}

func testUpdateErrorRollsBack(t *testing.T, b storage.Backend) {
	put(t, b, "rb/keep", []byte("kept"), storage.AnyVersion)
	errStop := errors.New("stop")
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put("rb/new", []byte("x"), storage.AnyVersion); err != nil {
			return err
		}
		if _, err := tx.Put("rb/keep", []byte("overwritten"), storage.AnyVersion); err != nil {
			return err
		}
		if err := tx.Delete("rb/keep", storage.AnyVersion); err != nil {
			return err
		}
		return fmt.Errorf("wrapped: %w", errStop)
	})
	if !errors.Is(err, errStop) {
		t.Errorf("Update err = %v, want the error fn returned", err)
	}
	wantMissing(t, b, "rb/new")
	if e := get(t, b, "rb/keep"); string(e.Value) != "kept" || e.Version != 1 {
		t.Errorf("Get(%q) = %q v%d after a failed Update, want %q v1", "rb/keep", e.Value, e.Version, "kept")
	}

	// A storage error inside fn, returned by fn, is the one Update returns.
	err = b.Update(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put("rb/other", []byte("x"), storage.AnyVersion); err != nil {
			return err
		}
		_, err := tx.Put("rb/keep", []byte("x"), 7)
		return err
	})
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Update err = %v, want ErrConflict", err)
	}
	wantMissing(t, b, "rb/other")
}

type panicValue struct{ s string }

func testUpdatePanicRollsBack(t *testing.T, b storage.Backend) {
	put(t, b, "panic/keep", []byte("kept"), storage.AnyVersion)
	want := &panicValue{"boom"}
	got := func() (r any) {
		defer func() { r = recover() }()
		_ = b.Update(t.Context(), func(tx storage.Tx) error {
			if _, err := tx.Put("panic/new", []byte("x"), storage.AnyVersion); err != nil {
				return err
			}
			if err := tx.Delete("panic/keep", storage.AnyVersion); err != nil {
				return err
			}
			panic(want)
		})
		return nil
	}()
	if got != want {
		t.Errorf("recovered %v from Update, want the panic value of fn (%v)", got, want)
	}
	wantMissing(t, b, "panic/new")
	get(t, b, "panic/keep")
	// The backend must have released its locks.
	put(t, b, "panic/after", []byte("x"), storage.AnyVersion)
}

func testViewPanic(t *testing.T, b storage.Backend) {
	want := &panicValue{"view"}
	got := func() (r any) {
		defer func() { r = recover() }()
		_ = b.View(t.Context(), func(storage.Tx) error { panic(want) })
		return nil
	}()
	if got != want {
		t.Errorf("recovered %v from View, want the panic value of fn (%v)", got, want)
	}
	put(t, b, "viewpanic/after", []byte("x"), storage.AnyVersion)
}

func testReadYourWrites(t *testing.T, b storage.Backend) {
	put(t, b, "ryw/gone", []byte("old"), storage.AnyVersion)
	put(t, b, "ryw/stay", []byte("stay"), storage.AnyVersion)
	err := b.Update(t.Context(), func(tx storage.Tx) error {
		if v, err := tx.Put("ryw/new", []byte("n1"), storage.MustNotExist); err != nil || v != 1 {
			t.Errorf("Put(%q) = %d, %v, want 1, nil", "ryw/new", v, err)
		}
		if v, err := tx.Put("ryw/new", []byte("n2"), 1); err != nil || v != 2 {
			t.Errorf("second Put(%q, ifVersion=1) in the same tx = %d, %v, want 2, nil", "ryw/new", v, err)
		}
		if err := tx.Delete("ryw/gone", 1); err != nil {
			t.Errorf("Delete(%q) err = %v", "ryw/gone", err)
		}
		e, err := tx.Get("ryw/new")
		if err != nil || string(e.Value) != "n2" || e.Version != 2 {
			t.Errorf("Get(%q) in the writing tx = %q v%d, %v, want %q v2", "ryw/new", e.Value, e.Version, err, "n2")
		}
		if _, err := tx.Get("ryw/gone"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) after Delete in the same tx err = %v, want ErrNotFound", "ryw/gone", err)
		}
		if _, err := tx.Put("ryw/gone", []byte("again"), storage.MustNotExist); err != nil {
			t.Errorf("create Put(%q) after Delete in the same tx err = %v, want nil", "ryw/gone", err)
		}
		if err := tx.Delete("ryw/gone", 1); err != nil {
			t.Errorf("Delete(%q, ifVersion=1) of the recreated key err = %v, want nil", "ryw/gone", err)
		}
		es, err := tx.List("ryw/", "", 0)
		if err != nil {
			t.Errorf("List(%q) in the writing tx err = %v", "ryw/", err)
		}
		want := []storage.Entry{
			{Key: "ryw/new", Value: []byte("n2"), Version: 2},
			{Key: "ryw/stay", Value: []byte("stay"), Version: 1},
		}
		if diff := cmp.Diff(want, es, entryOpts); diff != "" {
			t.Errorf("List(%q) in the writing tx mismatch (-want +got):\n%s", "ryw/", diff)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update err = %v", err)
	}
	if e := get(t, b, "ryw/new"); e.Version != 2 {
		t.Errorf("Get(%q) after commit version = %d, want 2", "ryw/new", e.Version)
	}
	wantMissing(t, b, "ryw/gone")
}

func testViewReadOnly(t *testing.T, b storage.Backend) {
	put(t, b, "ro/k", []byte("v"), storage.AnyVersion)
	err := b.View(t.Context(), func(tx storage.Tx) error {
		if _, err := tx.Put("ro/new", []byte("x"), storage.AnyVersion); !errors.Is(err, storage.ErrReadOnly) {
			t.Errorf("Put in View err = %v, want ErrReadOnly", err)
		}
		if err := tx.Delete("ro/k", storage.AnyVersion); !errors.Is(err, storage.ErrReadOnly) {
			t.Errorf("Delete in View err = %v, want ErrReadOnly", err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View err = %v", err)
	}
	wantMissing(t, b, "ro/new")
	get(t, b, "ro/k")
}

func testInvalidKeys(t *testing.T, b storage.Backend) {
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"too long", strings.Repeat("k", storage.MaxKeyLen+1)},
		{"NUL", "a\x00b"},
		{"invalid UTF-8", "a/\xff"},
		{"truncated UTF-8", "a/\xc3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := storage.Get(t.Context(), b, tc.key); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Get(%.20q) err = %v, want ErrInvalidKey", tc.key, err)
			}
			if _, err := tryPut(t, b, tc.key, []byte("v"), storage.AnyVersion); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Put(%.20q) err = %v, want ErrInvalidKey", tc.key, err)
			}
			if err := tryDelete(t, b, tc.key, storage.AnyVersion); !errors.Is(err, storage.ErrInvalidKey) {
				t.Errorf("Delete(%.20q) err = %v, want ErrInvalidKey", tc.key, err)
			}
			if tc.key == "" {
				return // an empty prefix and cursor are valid in List
			}
			err := b.View(t.Context(), func(tx storage.Tx) error {
				if _, err := tx.List(tc.key, "", 0); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("List(%.20q, \"\", 0) err = %v, want ErrInvalidKey", tc.key, err)
				}
				if _, err := tx.List("", tc.key, 0); !errors.Is(err, storage.ErrInvalidKey) {
					t.Errorf("List(\"\", %.20q, 0) err = %v, want ErrInvalidKey", tc.key, err)
				}
				return nil
			})
			if err != nil {
				t.Errorf("View err = %v", err)
			}
		})
	}
	if got := list(t, b, "", "", 0); len(got) != 0 {
		t.Errorf("after invalid writes List(\"\") = %v, want nothing", keys(got))
	}
}

// testValueSize checks the limit from above only: a wrapper such as the
// encryption barrier adds overhead and so accepts slightly less than
// MaxValueLen.
func testValueSize(t *testing.T, b storage.Backend) {
	if _, err := tryPut(t, b, "size/big", make([]byte, storage.MaxValueLen+1), storage.AnyVersion); !errors.Is(err, storage.ErrTooLarge) {
		t.Errorf("Put of %d bytes err = %v, want ErrTooLarge", storage.MaxValueLen+1, err)
	}
	wantMissing(t, b, "size/big")
	if v := put(t, b, "size/empty", nil, storage.MustNotExist); v != 1 {
		t.Errorf("Put of an empty value version = %d, want 1", v)
	}
	if e := get(t, b, "size/empty"); len(e.Value) != 0 || e.Version != 1 {
		t.Errorf("Get(%q) = %q v%d, want an empty value v1", "size/empty", e.Value, e.Version)
	}
}

// testConcurrentCAS reads and writes in separate transactions so that the
// version check, not the transaction lock, is what prevents lost updates.
func testConcurrentCAS(t *testing.T, b storage.Backend) {
	const (
		key        = "cas/counter"
		goroutines = 8
		increments = 5
	)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for range increments {
				if err := increment(ctx, b, key); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment err = %v", err)
	}
	e := get(t, b, key)
	if n, _ := strconv.Atoi(string(e.Value)); n != goroutines*increments || e.Version != goroutines*increments {
		t.Errorf("counter = %q at version %d, want %d at version %d", e.Value, e.Version, goroutines*increments, goroutines*increments)
	}
}

func increment(ctx context.Context, b storage.Backend, key string) error {
	for {
		n, ver := 0, storage.MustNotExist
		e, err := storage.Get(ctx, b, key)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		default:
			if n, err = strconv.Atoi(string(e.Value)); err != nil {
				return fmt.Errorf("counter %q: %w", e.Value, err)
			}
			ver = e.Version
		}
		err = b.Update(ctx, func(tx storage.Tx) error {
			_, err := tx.Put(key, []byte(strconv.Itoa(n+1)), ver)
			return err
		})
		if !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
}

func testContextDone(t *testing.T, b storage.Backend) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := b.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Put("ctx/k", []byte("x"), storage.AnyVersion)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context err = %v, want context.Canceled", err)
	}
	if err := b.View(ctx, func(storage.Tx) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled context err = %v, want context.Canceled", err)
	}
	wantMissing(t, b, "ctx/k")
}

func testClosed(t *testing.T, b storage.Backend) {
	put(t, b, "closed/k", []byte("v"), storage.AnyVersion)
	if err := b.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	if _, err := storage.Get(t.Context(), b, "closed/k"); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Get after Close err = %v, want ErrClosed", err)
	}
	if err := b.View(t.Context(), func(storage.Tx) error { return nil }); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("View after Close err = %v, want ErrClosed", err)
	}
	if _, err := tryPut(t, b, "closed/k", []byte("v"), storage.AnyVersion); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Put after Close err = %v, want ErrClosed", err)
	}
}
