package scope

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/customerkey/customerkey/internal/errkind"
	"github.com/customerkey/customerkey/internal/storage"
)

// Page sizes of the workloads' listings: MaxPage is the largest page a
// list returns; DefaultPage is used when the caller asks for none.
const (
	MaxPage     = 1000
	DefaultPage = 100
)

// ErrBadPageToken is returned for a page token that no listing issued.
var ErrBadPageToken = errkind.New(errkind.Invalid, "the page token is not valid; start again without one")

// List reads one page of the JSON records stored under prefix, in key
// order, after the record whose key is prefix+after ("" starts at the
// first). limit <= 0 means DefaultPage; it is at most MaxPage. next is the
// key of the last record returned without prefix, the token of the next
// page, when more records follow; "" on the last page.
func List[R any](ctx context.Context, store storage.Backend, prefix, after string, limit int) (recs []R, next string, err error) {
	if limit <= 0 {
		limit = DefaultPage
	}
	limit = min(limit, MaxPage)
	start := ""
	if after != "" {
		start = prefix + after
	}
	var entries []storage.Entry
	err = store.View(ctx, func(tx storage.Tx) error {
		var err error
		entries, err = tx.List(prefix, start, limit+1)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	if len(entries) > limit {
		entries = entries[:limit]
		next = strings.TrimPrefix(entries[limit-1].Key, prefix)
	}
	recs = make([]R, len(entries))
	for i, e := range entries {
		if err := json.Unmarshal(e.Value, &recs[i]); err != nil {
			return nil, "", fmt.Errorf("decoding %s: %w", e.Key, err)
		}
	}
	return recs, next, nil
}
