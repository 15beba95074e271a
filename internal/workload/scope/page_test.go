package scope_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/customerkey/customerkey/internal/storage"
	"github.com/customerkey/customerkey/internal/storage/bolt"
	"github.com/customerkey/customerkey/internal/workload/scope"
)

func TestList(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "data.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	type item struct{ N int }
	ctx := t.Context()
	put := func(key string, v any) {
		t.Helper()
		if err := st.Update(ctx, func(tx storage.Tx) error { return storage.PutJSON(tx, key, v, storage.AnyVersion) }); err != nil {
			t.Fatal(err)
		}
	}
	const prefix = "test/t1/"
	for i := range 7 {
		put(fmt.Sprintf("%s%02d", prefix, i), item{i})
	}
	// Neighbours under other prefixes are never listed.
	for _, k := range []string{"test/t0/99", "test/t2/00"} {
		put(k, item{-1})
	}
	var got []int
	var pages []string
	after := ""
	for {
		recs, next, err := scope.List[item](ctx, st, prefix, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, r.N)
		}
		pages = append(pages, next)
		if next == "" {
			break
		}
		after = next
	}
	if !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6}) || !slices.Equal(pages, []string{"02", "05", ""}) {
		t.Errorf("pages of 3 gave %v with tokens %q", got, pages)
	}
	recs, next, err := scope.List[item](ctx, st, prefix, "", 0)
	if err != nil || len(recs) != 7 || next != "" {
		t.Errorf("the default page: %d records, next %q, %v", len(recs), next, err)
	}
	put(prefix+"99", "not an item")
	if _, _, err := scope.List[item](ctx, st, prefix, "05", 10); err == nil {
		t.Error("a record that does not decode was listed")
	}
}
