package files

import (
	"context"

	"github.com/customerkey/customerkey/internal/storage"
)

// ChunkMap returns the chunk ids and wrapped chunk keys of a file, so that
// tests can see that an update replaced every one of them.
func ChunkMap(ctx context.Context, s *Service, tid, siteID, path string) (ids []string, wrapped [][]byte, err error) {
	var f fileRecord
	err = s.store.View(ctx, func(tx storage.Tx) error {
		_, err := storage.GetJSON(tx, fileKey(tid, siteID, path), &f)
		return err
	})
	for _, ch := range f.Chunks {
		ids = append(ids, ch.ID)
		wrapped = append(wrapped, ch.WrappedKey)
	}
	return ids, wrapped, err
}
